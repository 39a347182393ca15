use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::content_type::truncate;
use crate::{RuleViolation, has_control, normalize_text};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, EnumString, IntoStaticStr};

/// A file's name inside its library path: 1–255 bytes, no `/`, no control characters,
/// and not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// The longest name, in bytes.
    pub const MAX_BYTES: usize = 255;

    /// # Errors
    /// `invalid_metadata` when the name breaks a rule.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let normalized = normalize_text("name", raw)?;
        let raw = normalized.as_str();
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(RuleViolation::metadata(format!(
                "name must be 1 to {} bytes long (got {})",
                Self::MAX_BYTES,
                raw.len()
            )));
        }
        if raw.contains('/') {
            return Err(RuleViolation::metadata("name must not contain '/'"));
        }
        if has_control(raw) {
            return Err(RuleViolation::metadata(
                "name must not contain control characters",
            ));
        }
        if raw == "." || raw == ".." {
            return Err(RuleViolation::metadata("name must not be '.' or '..'"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A name as stored: it passed [`FileName::parse`] under the rules of its day, which
    /// later rules (NFC, format characters) must not turn into a failure to serve it.
    #[must_use]
    pub fn from_stored(stored: &str) -> Self {
        Self(stored.to_owned())
    }

    /// The name from the last segment of a client-side path (`reports/q3.pdf` → `q3.pdf`).
    /// Both `/` and `\` separate segments, so Windows paths work too.
    ///
    /// # Errors
    /// `invalid_metadata` when the last segment is not a valid name.
    pub fn from_local_path(local: &str) -> Result<Self, RuleViolation> {
        let last = local.rsplit(['/', '\\']).next().unwrap_or_default();
        Self::parse(last).map_err(|e| RuleViolation::metadata(format!("local_file_path: {e}")))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A library path, matched case-sensitively: at most 1024 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LibraryPath(String);

impl LibraryPath {
    /// The longest path, in bytes.
    pub const MAX_BYTES: usize = 1024;

    /// # Errors
    /// `invalid_metadata` when the path breaks a rule.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let normalized = normalize_text("path", raw)?;
        let raw = normalized.as_str();
        if raw.len() > Self::MAX_BYTES {
            return Err(RuleViolation::metadata(format!(
                "path must be at most {} bytes long (got {})",
                Self::MAX_BYTES,
                raw.len()
            )));
        }
        if has_control(raw) {
            return Err(RuleViolation::metadata(
                "path must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One label: 1–64 bytes, case-sensitive, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(String);

impl Label {
    /// The longest label, in bytes.
    pub const MAX_BYTES: usize = 64;

    /// # Errors
    /// `invalid_metadata` when the label breaks a rule.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let normalized = normalize_text("labels", raw)?;
        let raw = normalized.as_str();
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(RuleViolation::metadata(format!(
                "each label must be 1 to {} bytes long (got {})",
                Self::MAX_BYTES,
                raw.len()
            )));
        }
        if has_control(raw) {
            return Err(RuleViolation::metadata(
                "labels must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A file's labels: at most 20, each a [`Label`]. Repeats collapse, first occurrence wins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The most labels one file may carry.
    pub const MAX_COUNT: usize = 20;

    /// # Errors
    /// `invalid_metadata` when there are too many labels or one is invalid.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, RuleViolation> {
        if raw.len() > Self::MAX_COUNT {
            return Err(RuleViolation::metadata(format!(
                "a file may carry at most {} labels (got {})",
                Self::MAX_COUNT,
                raw.len()
            )));
        }
        let mut labels: Vec<Label> = Vec::with_capacity(raw.len());
        for item in raw {
            let label = Label::parse(item.as_ref())?;
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        Ok(Self(labels))
    }

    /// The labels as strings, in order.
    #[must_use]
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|l| l.0.clone()).collect()
    }

    #[must_use]
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }
}

/// A public URL stored as given (never fetched): at most 2048 bytes, an absolute
/// `http` or `https` URL without whitespace or control characters, so that every
/// client can render it as a link safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The longest URL, in bytes.
    pub const MAX_BYTES: usize = 2048;

    /// # Errors
    /// `invalid_metadata` when the URL breaks a rule.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        if raw.len() > Self::MAX_BYTES {
            return Err(RuleViolation::metadata(format!(
                "public_url must be at most {} bytes long (got {})",
                Self::MAX_BYTES,
                raw.len()
            )));
        }
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let rest = if lower.starts_with("https://") {
            &raw[8..]
        } else if lower.starts_with("http://") {
            &raw[7..]
        } else {
            return Err(RuleViolation::metadata(
                "public_url must be an absolute http or https URL",
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(RuleViolation::metadata("public_url must name a host"));
        }
        if has_control(raw) || raw.chars().any(char::is_whitespace) {
            return Err(RuleViolation::metadata(
                "public_url must not contain whitespace or control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 digest, sent and reported as standard base64 (the form of `x-amz-checksum-sha256`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// # Errors
    /// `invalid_metadata` unless `raw` is standard base64 of exactly 32 bytes.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let bytes = STANDARD.decode(raw.trim()).map_err(|_| {
            RuleViolation::metadata(format!(
                "checksum_sha256 must be the base64 of a SHA-256 digest (got {:?})",
                truncate(raw, 64)
            ))
        })?;
        let digest: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            RuleViolation::metadata(format!(
                "checksum_sha256 must decode to 32 bytes (got {})",
                b.len()
            ))
        })?;
        Ok(Self(digest))
    }

    #[must_use]
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_base64())
    }
}

/// Where a file is in its lifecycle. Its names (in the database and the API) come from
/// the derives: serde's for the wire, strum's for the database column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum FileStatus {
    /// Reserved; waiting for its bytes and the completion callback.
    Pending,
    /// Verified; its bytes count as usage.
    Ready,
    /// Failed verification; its object was deleted and its reservation released.
    Rejected,
    /// Never completed within its upload window; reservation released.
    Expired,
}

impl FileStatus {
    /// The lowercase name used in the database and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the lowercase name used in the database and the API.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleCode;

    fn code<T>(r: Result<T, RuleViolation>) -> Option<RuleCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn names_accept_255_bytes_and_refuse_256() {
        assert!(FileName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            code(FileName::parse(&"a".repeat(256))),
            Some(RuleCode::InvalidMetadata)
        );
        // 127 two-byte characters plus one byte is 255 bytes.
        assert!(FileName::parse(&format!("{}a", "é".repeat(127))).is_ok());
        assert!(FileName::parse(&"é".repeat(128)).is_err());
    }

    #[test]
    fn names_refuse_slashes_controls_and_dots() {
        for bad in [
            "",
            "a/b",
            "a\u{0}b",
            "tab\there",
            "new\nline",
            ".",
            "..",
            "\u{7f}",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FileName::parse("a\\b.txt").is_ok());
    }

    #[test]
    fn names_come_from_the_last_local_segment() {
        assert_eq!(
            FileName::from_local_path("reports/q3.pdf").map(|n| n.0),
            Ok("q3.pdf".into())
        );
        assert_eq!(
            FileName::from_local_path("C:\\docs\\a.txt").map(|n| n.0),
            Ok("a.txt".into())
        );
        assert!(FileName::from_local_path("reports/").is_err());
    }

    #[test]
    fn paths_accept_1024_bytes_and_refuse_1025() {
        assert!(LibraryPath::parse("").is_ok());
        assert!(LibraryPath::parse(&"p".repeat(1024)).is_ok());
        assert!(LibraryPath::parse(&"p".repeat(1025)).is_err());
        assert!(LibraryPath::parse("a\u{1b}b").is_err());
    }

    #[test]
    fn labels_accept_20_of_64_bytes_and_refuse_more() {
        let twenty: Vec<String> = (0..20).map(|i| format!("{i}{}", "x".repeat(62))).collect();
        assert!(Labels::parse(&twenty).is_ok());
        let mut twenty_one = twenty.clone();
        twenty_one.push("extra".into());
        assert!(Labels::parse(&twenty_one).is_err());
        assert!(Labels::parse(&["x".repeat(64)]).is_ok());
        assert!(Labels::parse(&["x".repeat(65)]).is_err());
        assert!(Labels::parse(&[""]).is_err());
    }

    #[test]
    fn labels_are_case_sensitive_and_repeats_collapse() {
        let labels = Labels::parse(&["A", "a", "A"]).map(|l| l.to_strings());
        assert_eq!(labels, Ok(vec!["A".to_owned(), "a".to_owned()]));
    }

    #[test]
    fn public_urls_accept_2048_bytes_and_refuse_2049() {
        let base = "https://example.com/";
        assert!(PublicUrl::parse(&format!("{base}{}", "a".repeat(2048 - base.len()))).is_ok());
        assert!(PublicUrl::parse(&format!("{base}{}", "a".repeat(2049 - base.len()))).is_err());
        for bad in [
            "javascript:alert(1)",
            "ftp://x",
            "https://",
            "https:///x",
            "http://a b",
            "/relative",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(PublicUrl::parse("HTTP://Example.com/Q3.pdf").is_ok());
    }

    #[test]
    fn checksums_are_base64_of_32_bytes() {
        let ok = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(
            Checksum::parse(ok).map(|c| c.to_base64()),
            Ok(ok.to_owned())
        );
        assert!(Checksum::parse("AAAA").is_err());
        assert!(Checksum::parse("not base64!").is_err());
    }
}

impl FileName {
    /// A `Content-Disposition` that downloads the file as an attachment under its name
    /// (RFC 6266), with an ASCII fallback and the exact name in `filename*` (RFC 5987).
    #[must_use]
    pub fn attachment_disposition(&self) -> String {
        let fallback: String = self
            .0
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut encoded = String::with_capacity(self.0.len() * 3);
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    }
}

#[cfg(test)]
mod disposition_tests {
    use super::FileName;

    #[test]
    fn non_ascii_names_are_percent_encoded_with_an_ascii_fallback() {
        let name = FileName::parse("résumé \"2026\" ✓.txt").map(|n| n.attachment_disposition());
        assert_eq!(
            name.as_deref(),
            Ok(
                "attachment; filename=\"r_sum_ _2026_ _.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%222026%22%20%E2%9C%93.txt"
            )
        );
        let plain = FileName::parse("q3.pdf").map(|n| n.attachment_disposition());
        assert_eq!(
            plain.as_deref(),
            Ok("attachment; filename=\"q3.pdf\"; filename*=UTF-8''q3.pdf")
        );
    }
}
