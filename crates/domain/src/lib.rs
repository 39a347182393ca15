//! filegate's domain: values that are parsed once at the edge and trusted afterwards.
//!
//! Nothing in here performs I/O. Every constructor named `parse` checks one rule of
//! the API contract and returns a [`RuleViolation`] carrying the stable error code
//! the HTTP layer answers with.

mod content_type;
mod file;
pub mod keys;
mod limits;
pub mod listing;
pub mod multipart;
mod sniff;
mod spec;

pub use content_type::{ContentType, FileKind, REGISTRY, Registration, names_an_executable};
pub use file::{Checksum, FileName, FileStatus, Label, Labels, LibraryPath, PublicUrl};
pub use limits::{Limits, MAX_FILES_PER_REQUEST};
pub use sniff::SNIFF_BYTES;
pub use spec::{BatchError, FileInput, FileSpec, MAX_LOCAL_PATH_BYTES, check_name_for};

/// Which rule a value broke; maps one-to-one onto an API error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum RuleCode {
    /// `422 invalid_metadata`
    InvalidMetadata,
    /// `422 unsupported_type`
    UnsupportedType,
    /// `422 file_too_large`
    FileTooLarge,
    /// `422 duplicate_file`: the same name and path twice in one batch (a workspace
    /// with unique names).
    DuplicateFile,
}

impl RuleCode {
    /// The stable code string of the API contract.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A value that failed one of the contract's rules, with a one-sentence message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleViolation {
    /// The rule that failed.
    pub code: RuleCode,
    /// A human-readable sentence naming the field and the rule.
    pub message: String,
}

impl RuleViolation {
    pub(crate) fn metadata(message: impl Into<String>) -> Self {
        Self {
            code: RuleCode::InvalidMetadata,
            message: message.into(),
        }
    }
}

/// True when `s` contains a character a name, path or label may not hold.
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A name, path, label or list filter as filegate compares it: in Unicode NFC, so that
/// composed and decomposed spellings (`é` and `e` + U+0301) are the same text, and
/// without invisible format characters (category Cf: bidi controls such as U+202E,
/// zero-width characters, U+FEFF), which would make a name display as another.
///
/// # Errors
/// `invalid_metadata` naming `field` and the first format character found.
pub fn normalize_text(field: &str, raw: &str) -> Result<String, RuleViolation> {
    use unicode_normalization::UnicodeNormalization as _;
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    if let Some(c) = raw
        .chars()
        .find(|c| c.general_category() == GeneralCategory::Format)
    {
        return Err(RuleViolation::metadata(format!(
            "{field} must not contain invisible format characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(raw.nfc().collect())
}
