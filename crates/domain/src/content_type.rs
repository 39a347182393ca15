use std::fmt;
use std::str::FromStr;

use crate::{RuleCode, RuleViolation};

/// A content type filegate knows how to verify: the type registry. Anything else is
/// `unsupported_type`: accepting a type whose bytes cannot be checked would make
/// completion meaningless. Each type has its canonical MIME type, the aliases clients
/// send for it, its extensions and a verifier of its first bytes (see
/// [`ContentType::sniff`]). No type is ever served inline: downloads are attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentType {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Html,
    Txt,
    Markdown,
    Csv,
    Tsv,
    Json,
    Jsonl,
    Png,
    Jpeg,
    Gif,
    Webp,
    Mp3,
    Wav,
    Mp4,
    Webm,
}

/// What a type holds, as Aymara's `file_type` names it (its list filters by these).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum FileKind {
    /// Plain text and text-based data: TXT, Markdown, CSV, TSV, JSON, JSON Lines.
    Text,
    Image,
    Video,
    Audio,
    /// Documents: PDF, DOCX, XLSX, PPTX, HTML.
    Document,
}

impl FileKind {
    /// The lowercase name (`text`, `image`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the lowercase name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Every registered type of this kind, by canonical MIME type.
    pub fn mimes(self) -> impl Iterator<Item = &'static str> {
        REGISTRY
            .iter()
            .filter(move |r| r.kind == self)
            .map(|r| r.mime)
    }
}

/// One entry of the registry.
#[derive(Debug)]
pub struct Registration {
    pub ty: ContentType,
    /// Stored, signed into upload URLs and reported.
    pub mime: &'static str,
    /// Other MIME types clients send for it (e.g. what Python's `mimetypes` guesses).
    pub aliases: &'static [&'static str],
    /// Lowercase, without the dot; the first is the usual one.
    pub extensions: &'static [&'static str],
    /// A short human name used in messages ("PDF").
    pub label: &'static str,
    /// What the verifier checks, in a few words (the README's type table).
    pub verifier: &'static str,
    /// Its kind (Aymara's `file_type`).
    pub kind: FileKind,
}

const fn reg(
    ty: ContentType,
    mime: &'static str,
    aliases: &'static [&'static str],
    extensions: &'static [&'static str],
    label: &'static str,
    verifier: &'static str,
) -> Registration {
    Registration {
        ty,
        mime,
        aliases,
        extensions,
        label,
        verifier,
        kind: kind_of(ty),
    }
}

/// The kind of each type.
const fn kind_of(ty: ContentType) -> FileKind {
    match ty {
        ContentType::Pdf
        | ContentType::Docx
        | ContentType::Xlsx
        | ContentType::Pptx
        | ContentType::Html => FileKind::Document,
        ContentType::Txt
        | ContentType::Markdown
        | ContentType::Csv
        | ContentType::Tsv
        | ContentType::Json
        | ContentType::Jsonl => FileKind::Text,
        ContentType::Png | ContentType::Jpeg | ContentType::Gif | ContentType::Webp => {
            FileKind::Image
        }
        ContentType::Mp3 | ContentType::Wav => FileKind::Audio,
        ContentType::Mp4 | ContentType::Webm => FileKind::Video,
    }
}

const TEXT: &str = "UTF-8 text without NUL bytes";

/// Every registered type, in a stable order (the order of [`ContentType`]'s variants).
pub static REGISTRY: [Registration; 19] = ENTRIES;

const ENTRIES: [Registration; 19] = [
    reg(
        ContentType::Pdf,
        "application/pdf",
        &["application/x-pdf"],
        &["pdf"],
        "PDF",
        "starts with `%PDF-`",
    ),
    reg(
        ContentType::Docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &[],
        &["docx"],
        "DOCX",
        "a ZIP (OOXML) whose document parts are `word/`, and no `xl/` or `ppt/`",
    ),
    reg(
        ContentType::Xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &[],
        &["xlsx"],
        "XLSX",
        "a ZIP (OOXML) whose document parts are `xl/`, and no `word/` or `ppt/`",
    ),
    reg(
        ContentType::Pptx,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        &[],
        &["pptx"],
        "PPTX",
        "a ZIP (OOXML) whose document parts are `ppt/`, and no `word/` or `xl/`",
    ),
    reg(
        ContentType::Html,
        "text/html",
        &[],
        &["html", "htm"],
        "HTML",
        TEXT,
    ),
    reg(
        ContentType::Txt,
        "text/plain",
        &[],
        &["txt", "text"],
        "text",
        TEXT,
    ),
    reg(
        ContentType::Markdown,
        "text/markdown",
        &["text/x-markdown"],
        &["md", "markdown"],
        "Markdown",
        TEXT,
    ),
    reg(
        ContentType::Csv,
        "text/csv",
        &["application/csv"],
        &["csv"],
        "CSV",
        TEXT,
    ),
    reg(
        ContentType::Tsv,
        "text/tab-separated-values",
        &[],
        &["tsv", "tab"],
        "TSV",
        TEXT,
    ),
    reg(
        ContentType::Json,
        "application/json",
        &["text/json"],
        &["json"],
        "JSON",
        "parses as JSON (as far as it was read; whole when it fits)",
    ),
    reg(
        ContentType::Jsonl,
        "application/jsonl",
        &[
            "application/x-ndjson",
            "application/x-jsonlines",
            "application/jsonlines",
            "application/ndjson",
        ],
        &["jsonl", "ndjson"],
        "JSON Lines",
        "every line read parses as JSON (the last may be cut where the read ended)",
    ),
    reg(
        ContentType::Png,
        "image/png",
        &[],
        &["png"],
        "PNG",
        "the PNG signature, then an `IHDR` chunk",
    ),
    reg(
        ContentType::Jpeg,
        "image/jpeg",
        &["image/pjpeg"],
        &["jpg", "jpeg"],
        "JPEG",
        "the JPEG start-of-image marker and a marker segment",
    ),
    reg(
        ContentType::Gif,
        "image/gif",
        &[],
        &["gif"],
        "GIF",
        "`GIF87a` or `GIF89a`",
    ),
    reg(
        ContentType::Webp,
        "image/webp",
        &[],
        &["webp"],
        "WebP",
        "a RIFF `WEBP` container starting with a `VP8 `, `VP8L` or `VP8X` chunk",
    ),
    reg(
        ContentType::Mp3,
        "audio/mpeg",
        &["audio/mp3", "audio/mpeg3"],
        &["mp3"],
        "MP3",
        "an ID3v2 tag, or an MPEG layer III frame header",
    ),
    reg(
        ContentType::Wav,
        "audio/wav",
        &["audio/x-wav", "audio/wave", "audio/vnd.wave"],
        &["wav"],
        "WAV",
        "a RIFF `WAVE` container",
    ),
    reg(
        ContentType::Mp4,
        "video/mp4",
        &[],
        &["mp4", "m4v"],
        "MP4",
        "an ISO BMFF `ftyp` box of an MP4 brand",
    ),
    reg(
        ContentType::Webm,
        "video/webm",
        &[],
        &["webm"],
        "WebM",
        "an EBML header of doctype `webm`",
    ),
];

/// Extensions of executables and scripts: never a file name, whatever type is declared.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "com", "scr", "pif", "cpl", "msi", "msp", "dll", "sys", "bat", "cmd", "ps1", "psm1",
    "vbs", "vbe", "js", "jse", "mjs", "cjs", "wsf", "wsh", "hta", "jar", "sh", "bash", "zsh",
    "csh", "ksh", "command", "app", "apk", "dmg", "pkg", "deb", "rpm", "run", "so", "dylib", "py",
    "pyw", "pl", "rb", "php", "lnk", "reg", "appimage",
];

impl Registration {
    /// This type's row of the README's type table.
    #[must_use]
    pub fn table_row(&self) -> String {
        let quote = |s: &str| format!("`{s}`");
        let mut mimes = quote(self.mime);
        if !self.aliases.is_empty() {
            let aliases: Vec<String> = self.aliases.iter().map(|a| quote(a)).collect();
            mimes.push_str(&format!(" ({})", aliases.join(", ")));
        }
        let extensions: Vec<String> = self.extensions.iter().map(|e| format!("`.{e}`")).collect();
        format!(
            "| {} | {mimes} | {} | {} | {} |",
            self.label,
            extensions.join(", "),
            self.kind.as_str(),
            self.verifier
        )
    }
}

impl ContentType {
    /// Every type filegate can verify, in a stable order.
    pub const ALL: [Self; 19] = {
        let mut all = [Self::Pdf; 19];
        let mut i = 0;
        while i < ENTRIES.len() {
            all[i] = ENTRIES[i].ty;
            i += 1;
        }
        all
    };

    /// The server-wide default allow-list: a document library's five types.
    pub const DEFAULT_ALLOWED: [Self; 5] =
        [Self::Pdf, Self::Docx, Self::Html, Self::Txt, Self::Markdown];

    /// This type's registry entry.
    #[must_use]
    pub fn registration(self) -> &'static Registration {
        // ALL is built from REGISTRY in order, so the index always hits.
        &REGISTRY[self as usize]
    }

    /// The canonical MIME type: stored, signed into upload URLs and reported.
    #[must_use]
    pub fn mime(self) -> &'static str {
        self.registration().mime
    }

    /// What the type holds (Aymara's `file_type`).
    #[must_use]
    pub fn kind(self) -> FileKind {
        kind_of(self)
    }

    /// A short human name used in messages ("PDF").
    #[must_use]
    pub fn label(self) -> &'static str {
        self.registration().label
    }

    /// True for the types whose bytes must be UTF-8 text (a `charset` parameter must
    /// then say UTF-8).
    #[must_use]
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::Html
                | Self::Txt
                | Self::Markdown
                | Self::Csv
                | Self::Tsv
                | Self::Json
                | Self::Jsonl
        )
    }

    /// Parses a MIME type as a client sends it: the canonical one or an alias.
    ///
    /// Matching is case-insensitive and ignores surrounding whitespace. Parameters are
    /// dropped, except that a `charset` on a text type must be UTF-8 (or its ASCII
    /// subset), because completion verifies text as UTF-8.
    ///
    /// # Errors
    /// `unsupported_type` for any type outside the registry or a foreign charset.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let unsupported = || RuleViolation {
            code: RuleCode::UnsupportedType,
            message: format!(
                "Unsupported document type: content type {:?} is not supported",
                truncate(raw, 100)
            ),
        };
        let mut parts = raw.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let ty = REGISTRY
            .iter()
            .find(|r| r.mime == essence || r.aliases.contains(&essence.as_str()))
            .map(|r| r.ty)
            .ok_or_else(unsupported)?;
        for param in parts {
            let (key, value) = param.split_once('=').ok_or_else(unsupported)?;
            let value = value.trim().trim_matches('"').to_ascii_lowercase();
            if key.trim().eq_ignore_ascii_case("charset")
                && !(ty.is_text() && matches!(value.as_str(), "utf-8" | "utf8" | "us-ascii"))
            {
                return Err(unsupported());
            }
        }
        Ok(ty)
    }

    /// The type a stored value names: its canonical MIME type compared exactly (what
    /// filegate writes, without an allocation), else as [`Self::parse`] reads it.
    ///
    /// # Errors
    /// As [`Self::parse`].
    pub fn from_stored(mime: &str) -> Result<Self, RuleViolation> {
        REGISTRY
            .iter()
            .find(|r| r.mime == mime)
            .map_or_else(|| Self::parse(mime), |r| Ok(r.ty))
    }

    /// The type a file name's extension names, if it names a registered one.
    #[must_use]
    pub fn from_file_name(name: &str) -> Option<Self> {
        let ext = extension(name)?;
        REGISTRY
            .iter()
            .find(|r| r.extensions.contains(&ext.as_str()))
            .map(|r| r.ty)
    }
}

/// A name's extension, lowercased (`None` for `README` or `.bashrc`). Trailing dots and
/// white space do not hide it: Windows drops them when it saves `invoice.exe. `.
fn extension(name: &str) -> Option<String> {
    let name = name.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// True when a name's extension is an executable's or a script's.
#[must_use]
pub fn names_an_executable(name: &str) -> bool {
    extension(name).is_some_and(|ext| EXECUTABLE_EXTENSIONS.contains(&ext.as_str()))
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

impl FromStr for ContentType {
    type Err = RuleViolation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_in_declaration_order_and_unambiguous() {
        for (i, r) in REGISTRY.iter().enumerate() {
            assert_eq!(r.ty as usize, i, "{:?} out of order", r.ty);
            assert_eq!(ContentType::parse(r.mime), Ok(r.ty));
            assert_eq!(ContentType::from_stored(r.mime), Ok(r.ty));
            for alias in r.aliases {
                assert_eq!(ContentType::parse(alias), Ok(r.ty), "{alias}");
                assert_eq!(ContentType::from_stored(alias), Ok(r.ty), "{alias}");
            }
            for ext in r.extensions {
                assert_eq!(ContentType::from_file_name(&format!("a.{ext}")), Some(r.ty));
                assert!(!names_an_executable(&format!("a.{ext}")), "{ext}");
            }
        }
        let mut mimes: Vec<&str> = REGISTRY
            .iter()
            .flat_map(|r| std::iter::once(r.mime).chain(r.aliases.iter().copied()))
            .collect();
        let n = mimes.len();
        mimes.sort_unstable();
        mimes.dedup();
        assert_eq!(mimes.len(), n, "a MIME type names two registered types");
    }

    #[test]
    fn parameters_are_normalized_consistently() {
        assert_eq!(
            ContentType::parse("text/plain; charset=utf-8"),
            Ok(ContentType::Txt)
        );
        assert_eq!(
            ContentType::parse(" Text/HTML ;charset=\"UTF-8\""),
            Ok(ContentType::Html)
        );
        assert_eq!(
            ContentType::parse("application/json; charset=utf-8"),
            Ok(ContentType::Json)
        );
        assert_eq!(
            ContentType::parse("audio/x-wav").map(ContentType::mime),
            Ok("audio/wav")
        );
    }

    #[test]
    fn foreign_charsets_and_unknown_types_are_unsupported() {
        for raw in [
            "text/plain; charset=iso-8859-1",
            "image/svg+xml",
            "application/octet-stream",
            "",
            "application/pdf; charset=utf-8",
            "image/png; charset=utf-8",
            "text/plain; x",
        ] {
            let err = ContentType::parse(raw).err();
            assert_eq!(
                err.map(|e| e.code),
                Some(RuleCode::UnsupportedType),
                "{raw}"
            );
        }
    }

    #[test]
    fn extensions_imply_types() {
        assert_eq!(
            ContentType::from_file_name("q3.PDF"),
            Some(ContentType::Pdf)
        );
        assert_eq!(
            ContentType::from_file_name("run-1.jsonl"),
            Some(ContentType::Jsonl)
        );
        assert_eq!(ContentType::from_file_name("a.tar.gz"), None);
        assert_eq!(ContentType::from_file_name("README"), None);
        assert_eq!(ContentType::from_file_name(".csv"), None);
    }

    #[test]
    fn executables_and_scripts_are_named_by_their_extension() {
        for name in [
            "report.exe",
            "run.bat",
            "setup.sh",
            "app.js",
            "x.PS1",
            "a.pdf.exe",
            "invoice.exe.",
            "invoice.exe ",
            "invoice.exe. .",
        ] {
            assert!(names_an_executable(name), "{name}");
        }
        for name in ["report.pdf", "exe", "notes.txt", "archive.tar.gz", ".sh"] {
            assert!(!names_an_executable(name), "{name}");
        }
    }
}
