//! The error vocabulary of the contract: the stable [`ErrorCode`]s (each with the one
//! status it is answered with), the entries a refused batch lists in `details`, and the
//! checks an upload can fail.

use filegate_domain::RuleCode;
use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, IntoStaticStr};

/// The stable error codes, by status: 400 `invalid_request`; 401 `unauthenticated`;
/// 403 `forbidden`; 404 `not_found`; 405 `method_not_allowed`; 408 `request_timeout` (an
/// upload body that stopped or came too slowly); 409 `quota_exceeded`,
/// `idempotency_conflict`, `invalid_state`; 413 `payload_too_large`; 422
/// `unsupported_type`, `file_too_large`, `duplicate_file`, `invalid_metadata`,
/// `upload_missing`, `upload_mismatch`; 429 `rate_limited`; 500 `internal`; 503 `unavailable`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    IntoStaticStr,
    Display,
    EnumIter,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    QuotaExceeded,
    IdempotencyConflict,
    InvalidState,
    PayloadTooLarge,
    UnsupportedType,
    FileTooLarge,
    DuplicateFile,
    InvalidMetadata,
    UploadMissing,
    UploadMismatch,
    RateLimited,
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The code as the envelope spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The one HTTP status each code is answered with.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::QuotaExceeded | Self::IdempotencyConflict | Self::InvalidState => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedType
            | Self::FileTooLarge
            | Self::DuplicateFile
            | Self::InvalidMetadata
            | Self::UploadMissing
            | Self::UploadMismatch => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

impl From<RuleCode> for ErrorCode {
    fn from(code: RuleCode) -> Self {
        match code {
            RuleCode::InvalidMetadata => Self::InvalidMetadata,
            RuleCode::UnsupportedType => Self::UnsupportedType,
            RuleCode::FileTooLarge => Self::FileTooLarge,
            RuleCode::DuplicateFile => Self::DuplicateFile,
        }
    }
}

/// One failing entry of a refused request, as `details.files` (or, for parts,
/// `details.parts`) lists it: its index in the request, its code and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryFailure {
    /// The entry's position in the request, from 0.
    pub index: usize,
    pub code: ErrorCode,
    /// One sentence.
    pub message: String,
}

impl EntryFailure {
    /// Entry `index` failed with `code`, for `message`.
    #[must_use]
    pub fn new(index: usize, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            index,
            code,
            message: message.into(),
        }
    }
}

/// The check an upload failed (the `reason` label of `filegate_rejections_total`; the
/// rejection's sentence is the file's `rejection_reason`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, IntoStaticStr, EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RejectionCheck {
    /// Its size is not the declared one, or over what the file reserved.
    Size,
    /// Its stored type is not the declared one.
    ContentType,
    /// It was stored with a `Content-Encoding`: a client would decode it into other
    /// bytes than those verified.
    Encoding,
    /// Its SHA-256 (or a part's) is not the declared one.
    Checksum,
    /// Its first bytes are not what the declared type begins with.
    Content,
    /// It kept changing while it was being inspected.
    Changed,
    /// Its bytes could not be had: an import whose source failed, refused or sent
    /// more than the file may hold.
    Source,
}

impl RejectionCheck {
    /// The check as the metric label spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn each_code_is_spelled_as_serialized_and_has_an_error_status() {
        for code in ErrorCode::iter() {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::from(code.as_str()))
            );
            assert!((400..600).contains(&code.status()), "{code}");
            let back: ErrorCode = serde_json::from_value(code.as_str().into()).unwrap_or(code);
            assert_eq!(back, code);
        }
    }

    #[test]
    fn rule_codes_keep_their_names() {
        for rule in RuleCode::iter() {
            assert_eq!(ErrorCode::from(rule).as_str(), rule.as_str());
        }
    }

    #[test]
    fn rejection_checks_are_spelled_as_serialized() {
        for check in RejectionCheck::iter() {
            assert_eq!(
                serde_json::to_value(check).ok(),
                Some(serde_json::Value::from(check.as_str()))
            );
        }
    }
}
