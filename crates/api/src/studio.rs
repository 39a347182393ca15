//! AI21's library surface (`/studio/v1/library`): the shapes its `ai21` SDK sends and
//! reads (`ai21/models/responses/file_response.py`, `ai21/models/upload_mode.py`), over
//! the same files as `/v2`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FileStatus;

/// A file's status in AI21's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LibraryStatus {
    /// Reserved; no bytes yet (`pending`).
    DbRecordCreated,
    /// Bytes arrived, not yet verified (never reported: filegate verifies a file in
    /// the same step that stores it; accepted as a filter, which matches no file).
    Uploaded,
    /// Bytes are streaming through filegate, or an import is under way (`pending`).
    Processing,
    /// Verified and served (`ready`).
    Processed,
    /// Rejected by verification, or never uploaded in its window (`rejected`,
    /// `expired`); `errorMessage` says why.
    UploadFailed,
    /// Never reported (filegate does nothing to a file after it is ready); accepted as
    /// a filter, which matches no file.
    ProcessingFailed,
}

impl LibraryStatus {
    /// The status of a file in `status`, `in_flight` when its bytes are on their way
    /// through filegate.
    #[must_use]
    pub fn of(status: FileStatus, in_flight: bool) -> Self {
        match status {
            FileStatus::Pending if in_flight => Self::Processing,
            FileStatus::Pending => Self::DbRecordCreated,
            FileStatus::Ready => Self::Processed,
            FileStatus::Rejected | FileStatus::Expired => Self::UploadFailed,
        }
    }

    /// The lifecycle states a list filtered by this status shows (none: no file).
    #[must_use]
    pub fn states(self) -> &'static [FileStatus] {
        match self {
            Self::DbRecordCreated | Self::Processing => &[FileStatus::Pending],
            Self::Processed => &[FileStatus::Ready],
            Self::UploadFailed => &[FileStatus::Rejected, FileStatus::Expired],
            Self::Uploaded | Self::ProcessingFailed => &[],
        }
    }

    /// Whether the files this status shows have bytes on their way through filegate
    /// (`None`: either).
    #[must_use]
    pub fn in_flight(self) -> Option<bool> {
        match self {
            Self::Processing => Some(true),
            Self::DbRecordCreated => Some(false),
            _ => None,
        }
    }

    /// The status's name on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DbRecordCreated => "DB_RECORD_CREATED",
            Self::Uploaded => "UPLOADED",
            Self::Processing => "PROCESSING",
            Self::Processed => "PROCESSED",
            Self::UploadFailed => "UPLOAD_FAILED",
            Self::ProcessingFailed => "PROCESSING_FAILED",
        }
    }

    /// Every status, in the order of the lifecycle.
    pub const ALL: [Self; 6] = [
        Self::DbRecordCreated,
        Self::Uploaded,
        Self::Processing,
        Self::Processed,
        Self::UploadFailed,
        Self::ProcessingFailed,
    ];

    /// The status named `raw` (as on the wire), if any.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A file as AI21's library answers it (`FileResponse`). Dates are calendar dates
/// (UTC), as the SDK parses them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LibraryFile {
    pub file_id: Uuid,
    pub name: String,
    /// The file's content type.
    pub file_type: String,
    /// The verified size; the declared size (or 0) before completion.
    pub size_bytes: i64,
    /// The API key that reserved the file.
    pub created_by: Uuid,
    pub creation_date: NaiveDate,
    pub last_updated: NaiveDate,
    pub status: LibraryStatus,
    pub path: String,
    pub labels: Vec<String>,
    pub public_url: Option<String>,
    /// The HTTP status that describes a failure (`422` rejected, `410` expired).
    pub error_code: Option<u16>,
    /// Why the file failed.
    pub error_message: Option<String>,
}

/// `200` of `POST /studio/v1/library/files`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LibraryCreated {
    pub file_id: Uuid,
}

/// `PUT /studio/v1/library/files/{file_uuid}`: AI21's update (labels and the public
/// URL). `publicUrl: null` clears the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LibraryUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub labels: Option<Vec<String>>,
    #[serde(
        default,
        rename = "publicUrl",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 2048))]
    pub public_url: Option<Option<String>>,
}

/// Absent → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One status's count in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchStatusCount {
    pub status: LibraryStatus,
    pub count: i64,
}

/// `200` of `GET /studio/v1/library/batches/{batch_id}/status` (`BatchStatusResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchStatus {
    pub batch_id: String,
    pub total_documents: i64,
    /// Only the statuses some file of the batch is in.
    pub statuses: Vec<BatchStatusCount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lifecycle_state_has_a_status_its_filter_finds() {
        for state in [
            FileStatus::Pending,
            FileStatus::Ready,
            FileStatus::Rejected,
            FileStatus::Expired,
        ] {
            for in_flight in [false, true] {
                let status = LibraryStatus::of(state, in_flight);
                assert!(
                    status.states().contains(&state)
                        && status.in_flight().is_none_or(|f| f == in_flight),
                    "{state:?} shows as {status:?}, whose filter misses it"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip_by_name() {
        for s in LibraryStatus::ALL {
            assert_eq!(LibraryStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::String(s.as_str().to_owned()))
            );
        }
        assert_eq!(LibraryStatus::parse("processed"), None);
    }

    #[test]
    fn an_update_tells_an_absent_url_from_a_null_one() {
        let absent: LibraryUpdate = serde_json::from_str(r#"{"labels":["a"]}"#).unwrap_or_default();
        assert_eq!(absent.public_url, None);
        let null: LibraryUpdate = serde_json::from_str(r#"{"publicUrl":null}"#).unwrap_or_default();
        assert_eq!(null.public_url, Some(None));
        assert!(serde_json::from_str::<LibraryUpdate>(r#"{"name":"x"}"#).is_err());
    }
}
