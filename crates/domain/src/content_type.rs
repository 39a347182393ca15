use std::fmt;
use std::str::FromStr;

use crate::{RuleCode, RuleViolation};

/// A content type filegate knows how to verify. Anything else is `unsupported_type`:
/// accepting a type whose bytes cannot be checked would make completion meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentType {
    Pdf,
    Docx,
    Html,
    Txt,
    Markdown,
}

impl ContentType {
    /// Every type filegate can verify, in a stable order (the default allow-list).
    pub const ALL: [Self; 5] = [Self::Pdf, Self::Docx, Self::Html, Self::Txt, Self::Markdown];

    /// The canonical MIME type: stored, signed into upload URLs and reported.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html",
            Self::Txt => "text/plain",
            Self::Markdown => "text/markdown",
        }
    }

    /// True for the types whose bytes must be UTF-8 text.
    #[must_use]
    pub fn is_text(self) -> bool {
        matches!(self, Self::Html | Self::Txt | Self::Markdown)
    }

    /// Parses a MIME type as a client sends it.
    ///
    /// Matching is case-insensitive and ignores surrounding whitespace. Parameters are
    /// dropped, except that a `charset` on a text type must be UTF-8 (or its ASCII
    /// subset), because completion verifies text as UTF-8.
    ///
    /// # Errors
    /// `unsupported_type` for any type outside [`ContentType::ALL`] or a foreign charset.
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let unsupported = || RuleViolation {
            code: RuleCode::UnsupportedType,
            message: format!("content type {:?} is not supported", truncate(raw, 100)),
        };
        let mut parts = raw.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let ty = match essence.as_str() {
            "application/pdf" | "application/x-pdf" => Self::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Self::Docx,
            "text/html" => Self::Html,
            "text/plain" => Self::Txt,
            "text/markdown" | "text/x-markdown" => Self::Markdown,
            _ => return Err(unsupported()),
        };
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

    /// The type implied by a file name's extension, if it names one filegate knows.
    #[must_use]
    pub fn from_file_name(name: &str) -> Option<Self> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            "html" | "htm" => Some(Self::Html),
            "txt" | "text" => Some(Self::Txt),
            "md" | "markdown" => Some(Self::Markdown),
            _ => None,
        }
    }

    /// A short human name used in messages ("PDF").
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Docx => "DOCX",
            Self::Html => "HTML",
            Self::Txt => "text",
            Self::Markdown => "Markdown",
        }
    }
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
            ContentType::parse("text/plain").map(ContentType::mime),
            Ok("text/plain")
        );
    }

    #[test]
    fn foreign_charsets_and_unknown_types_are_unsupported() {
        for raw in [
            "text/plain; charset=iso-8859-1",
            "image/png",
            "",
            "application/pdf; charset=utf-8",
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
            ContentType::from_file_name("notes.md"),
            Some(ContentType::Markdown)
        );
        assert_eq!(ContentType::from_file_name("a.tar.gz"), None);
        assert_eq!(ContentType::from_file_name("README"), None);
    }
}
