//! The service crate's layout holds its layers: no module imports one that imports it
//! back (no cycle among the files of `src/`), and the services and jobs know nothing of
//! HTTP. Run with `cargo test -p filegate --test layers`.
//!
//! Imports are read from the source as text: every `crate::…`, `super::…` and
//! `self::…` path outside the unit tests names the file of the longest module it
//! reaches. The unit tests (`#[cfg(test)] mod tests`, and the modules only tests
//! compile) may import across layers, and are left out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file's module path (`["http", "routes", "table"]`), from its path under `src/`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its unit tests, line comments and doc comments.
fn code(text: &str) -> String {
    // `#[cfg(test)]`, any further attributes, then `mod tests {`.
    let cut = text
        .match_indices("#[cfg(test)]\n")
        .map(|(at, m)| at + m.len())
        .find(|&after| {
            text[after..]
                .lines()
                .find(|l| !l.trim_start().starts_with("#["))
                .is_some_and(|l| l.starts_with("mod tests {"))
        })
        .map_or(text.len(), |after| after - "#[cfg(test)]\n".len());
    text[..cut]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path the code reaches through `crate::`, `super::` or `self::`,
/// resolved against the module `at` (the file's own).
fn references(code: &str, at: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let preceded = i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':');
        let root = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|r| rest.starts_with(r));
        let Some(root) = root.filter(|_| !preceded) else {
            i += 1;
            continue;
        };
        let mut base: Vec<String> = match root {
            "crate::" => Vec::new(),
            "super::" => at[..at.len().saturating_sub(1)].to_vec(),
            _ => at.to_vec(),
        };
        i += root.len();
        // `super::super::…`
        while bytes[i..].iter().collect::<String>().starts_with("super::") {
            base.pop();
            i += "super::".len();
        }
        let mut segs = Vec::new();
        loop {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            if start == i {
                break;
            }
            segs.push(bytes[start..i].iter().collect::<String>());
            if bytes[i..].iter().take(2).collect::<String>() == "::" {
                i += 2;
            } else {
                break;
            }
        }
        if i < bytes.len() && bytes[i] == '{' {
            // `path::{a, b::c, self}`: each item's first segment.
            let close = (i..bytes.len()).find(|&j| bytes[j] == '}').unwrap_or(i);
            let inner: String = bytes[i + 1..close].iter().collect();
            for item in inner.split(',') {
                let first: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                let mut path = base.clone();
                path.extend(segs.iter().cloned());
                if !first.is_empty() && first != "self" {
                    path.push(first);
                }
                out.push(path);
            }
            i = close;
        } else {
            let mut path = base;
            path.extend(segs);
            out.push(path);
        }
    }
    out
}

/// The files of `src/` and, for each, the files it imports from.
fn graph() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut modules: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let name = rel.to_string_lossy().into_owned();
        // Modules only the unit tests compile.
        let text = std::fs::read_to_string(f).unwrap();
        if text.contains("//! In-memory stand-ins") || rel.ends_with("tests.rs") {
            continue;
        }
        if name != "main.rs" {
            modules.insert(module_of(rel), name.clone());
        }
        texts.insert(name, (module_of(rel), text));
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut code_of = BTreeMap::new();
    for (name, (module, text)) in &texts {
        let code = code(text);
        let to = edges.entry(name.clone()).or_default();
        for mut path in references(&code, module) {
            while !path.is_empty() && !modules.contains_key(&path) {
                path.pop();
            }
            if let Some(target) = modules.get(&path)
                && target != name
                && !path.is_empty()
            {
                to.insert(target.clone());
            }
        }
        code_of.insert(name.clone(), code);
    }
    (edges, code_of)
}

/// A cycle through the import graph, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut found = stack[from..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node)
            && let Some(found) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let (edges, _) = graph();
    assert!(
        edges.len() > 30,
        "the source files were not found: {edges:?}"
    );
    for (file, imports) in [
        ("http/routes/files/complete.rs", "http/state.rs"),
        ("service/completion/mod.rs", "service/trust.rs"),
    ] {
        assert!(
            edges[file].contains(imports),
            "the reader sees imports: {file}: {:?}",
            edges[file]
        );
    }
    if let Some(found) = cycle(&edges) {
        panic!("an import cycle: {}", found.join(" -> "));
    }
}

#[test]
fn services_and_jobs_know_nothing_of_http() {
    let (edges, code) = graph();
    let below_http = |f: &str| {
        f.starts_with("service/")
            || f.starts_with("jobs/")
            || [
                "settings.rs",
                "metrics.rs",
                "net.rs",
                "causes.rs",
                "telemetry.rs",
            ]
            .contains(&f)
    };
    let mut checked = 0;
    for (file, to) in &edges {
        if !below_http(file) {
            continue;
        }
        checked += 1;
        for target in to {
            assert!(
                !target.starts_with("http/")
                    && !target.starts_with("commands/")
                    && target != "cli.rs",
                "{file} imports {target}"
            );
        }
        for word in ["actix_web", "ApiError", "AppState"] {
            assert!(!code[file].contains(word), "{file} names {word}");
        }
    }
    assert!(
        checked >= 10,
        "only {checked} files of the lower layers found"
    );
}

#[test]
fn the_reader_resolves_each_kind_of_path() {
    let at = ["http".to_owned(), "routes".to_owned(), "table".to_owned()];
    let refs = references(
        "use super::{events, files::create};\nuse crate::http::error::ApiError;\nlet x = self::y;",
        &at,
    );
    assert_eq!(
        refs,
        vec![
            vec!["http", "routes", "events"],
            vec!["http", "routes", "files"],
            vec!["http", "error", "ApiError"],
            vec!["http", "routes", "table", "y"],
        ]
    );
}
