//! (i) Instructions per request, a figure the machine's load does not move: filegate
//! runs under valgrind's callgrind (this VM has no hardware counters for `perf stat`),
//! takes requests until warm, has its counters zeroed (`callgrind_control -z`), serves
//! a counted number of one-file reservations, then of single completions, each
//! followed by a dump (`callgrind_control -d`) whose total is the instructions the
//! process executed, every thread included. Background jobs are off, so the count is
//! the requests' own. A database of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use uuid::Uuid;

use super::instance::{Instance, drop_database, fresh_database};
use super::{Target, complete_one, prepare, reserve_op};

/// Requests counted per figure (after as many to warm up).
const COUNTED: usize = 400;

/// Runs (i); its lines as markdown.
pub async fn run(db: &str) -> String {
    let url = fresh_database(db, "i").await;
    let client = filegate_tests::connect(&url).await;
    let tenant = super::tenant(&client).await;
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let dir = std::env::temp_dir().join(format!("fg-callgrind-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let instance = Instance::start_under(
        &["valgrind", "--tool=callgrind", "--quiet", &out_arg],
        &url,
        &[],
    )
    .await;
    let target = Target {
        http: reqwest::Client::new(),
        key,
        url: instance.url.clone(),
    };
    // Uploaded objects for the completions, made first (they warm the server too).
    let objects = prepare(&target, &ws, 4, 2 * COUNTED).await;
    let reserve = |n: usize| {
        let op = reserve_op(&target, &ws, 1, true);
        async move {
            let mut done = 0;
            for i in 0..n as u64 {
                done += usize::from(op(0, i).await == Some(true));
            }
            done
        }
    };
    let complete = |ids: Vec<Uuid>| {
        let target = target.clone();
        async move {
            let mut done = 0;
            for id in ids {
                done += usize::from(complete_one(&target, id).await);
            }
            done
        }
    };
    let ids: Vec<Uuid> = objects.iter().map(|(id, _)| *id).collect();
    let (warm, counted) = ids.split_at(ids.len() / 2);

    reserve(COUNTED).await;
    let reservations = counted_run(&instance.pid, &out, || reserve(COUNTED)).await;
    complete(warm.to_vec()).await;
    let completions = counted_run(&instance.pid, &out, || complete(counted.to_vec())).await;
    drop(instance);
    drop_database(db, "i").await;
    let line = |what: &str, (instructions, n, _): &(u64, usize, PathBuf)| {
        let (instructions, n) = (*instructions, *n);
        format!(
            "{what}: {:.0} k instructions each ({n} counted, {:.1} M in all)",
            instructions as f64 / n.max(1) as f64 / 1000.0,
            instructions as f64 / 1e6,
        )
    };
    let text = format!(
        "(i) instructions per request in filegate's process (`BENCH_ONLY=i scripts/bench`: callgrind, one client, \
         background jobs off, after a warm-up): {}; {}.\n",
        line("a one-file reservation", &reservations),
        line(
            "a single completion (claim, HEAD and ranged GET, copy, settle)",
            &completions
        ),
    ) + &format!(
        "\n(i) where a reservation's instructions go (callgrind's self cost by crate): {}.\n\n\
         (i) where a completion's instructions go: {}.\n",
        profile(&reservations.2),
        profile(&completions.2),
    );
    let _ = std::fs::remove_dir_all(&dir);
    text
}

/// Zeroes the process's counters, runs `work` (which returns how many requests
/// succeeded), dumps, and returns the instructions executed meanwhile with the count
/// and the dump.
async fn counted_run<F, Fut>(pid: &str, out: &Path, work: F) -> (u64, usize, PathBuf)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = usize>,
{
    control(pid, "-z");
    let n = work().await;
    // Dumps go to the out file with a numbered suffix; the newest is this one.
    let dir = out.parent().unwrap();
    let before: Vec<_> = dumps(dir);
    control(pid, "-d");
    let after = dumps(dir);
    let newest = after
        .iter()
        .find(|p| !before.contains(p))
        .cloned()
        .or_else(|| after.last().cloned())
        .expect("a callgrind dump");
    (instructions(&newest), n, newest)
}

fn control(pid: &str, flag: &str) {
    let status = Command::new("callgrind_control")
        .args([flag, pid])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("callgrind_control");
    assert!(status.success(), "callgrind_control {flag} failed");
}

fn dumps(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// The `summary:` (or `totals:`) of a callgrind dump: instructions executed.
fn instructions(dump: &Path) -> u64 {
    let text = std::fs::read_to_string(dump).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", dump.display()))
}

/// The shares of a dump's instructions by the crate of the function that executed
/// them (C libraries by object: malloc and memcpy are libc's), the largest first.
fn profile(dump: &Path) -> String {
    let out = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no", "--show-percs=no"])
        .arg(dump)
        .output()
        .expect("callgrind_annotate");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("PROGRAM TOTALS") {
            continue;
        }
        let Some((_, function)) = rest.split_once(':') else {
            continue;
        };
        total += count;
        *by.entry(crate_of(function)).or_default() += count;
    }
    let mut shares: Vec<(String, u64)> = by.into_iter().collect();
    shares.sort_by_key(|s| std::cmp::Reverse(s.1));
    let mut parts: Vec<String> = shares
        .iter()
        .take(12)
        .map(|(name, n)| format!("{name} {:.1}%", *n as f64 * 100.0 / total.max(1) as f64))
        .collect();
    let rest: u64 = shares.iter().skip(12).map(|s| s.1).sum();
    parts.push(format!(
        "the rest {:.1}%",
        rest as f64 * 100.0 / total.max(1) as f64
    ));
    parts.join(", ")
}

/// The crate a demangled function belongs to: its first path segment (past `<`, `&`
/// and `dyn`), or the shared object's name for code without Rust symbols.
fn crate_of(function: &str) -> String {
    let (name, object) = match function.rsplit_once(" [") {
        Some((name, object)) => (name, object.trim_end_matches(']')),
        None => (function, ""),
    };
    let name = name.trim_start_matches(['<', '&', '(', '*']);
    let name = name.strip_prefix("dyn ").unwrap_or(name);
    let name = name.strip_prefix("mut ").unwrap_or(name);
    match name.split_once("::") {
        Some((krate, _))
            if !krate.is_empty() && krate.chars().all(|c| c.is_alphanumeric() || c == '_') =>
        {
            krate.to_owned()
        }
        _ if !object.is_empty() && !object.ends_with("/filegate") => object
            .rsplit('/')
            .next()
            .unwrap_or(object)
            .split(".so")
            .next()
            .unwrap_or(object)
            .to_owned(),
        _ => "unnamed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn functions_are_counted_to_their_crate_or_object() {
        for (function, expected) in [
            (
                "aws_smithy_runtime::client::orchestrator::invoke [/x/target/release/filegate]",
                "aws_smithy_runtime",
            ),
            (
                "<hyper::proto::h1::conn::Conn<I,B,T>>::poll_read [/x/filegate]",
                "hyper",
            ),
            (
                "<&dyn tokio_postgres::to_statement::ToStatement>::f [/x/filegate]",
                "tokio_postgres",
            ),
            ("_int_malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]", "libc"),
            ("0x0000000000014cb0 [/x/target/release/filegate]", "unnamed"),
            ("memcpy", "unnamed"),
        ] {
            assert_eq!(crate_of(function), expected, "{function}");
        }
    }
}
