//! `/v2/files…`: the create request and answer, the file object, a page of files.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use filegate_domain::multipart::UploadMethod;
use filegate_domain::{FileInput, FileKind, FileStatus};

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// `POST /v2/files`.
/// The request body.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateFilesRequest {
    /// The workspace; `null` or absent: the key's default workspace.
    #[serde(default)]
    pub workspace_uuid: Option<Uuid>,
    /// One to fifty files, reserved all or nothing.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub files: Vec<FileEntry>,
}

// Absent fields serialize as `null`: the `Idempotency-Key` digest is taken over this
// serialization, so its shape is part of what a stored key means.
/// One requested upload. One of `local_file_path` or `name` is required.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The client-side path; `name` defaults to its last segment.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 4096, example = "reports/q3.pdf")
    )]
    pub local_file_path: Option<String>,
    /// 1–255 bytes in Unicode NFC, no `/`, no control or invisible format (Cf)
    /// characters; its extension must not name another registered type than the
    /// file's, nor an executable or a script.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$",
            example = "q3.pdf"
        )
    )]
    pub name: Option<String>,
    /// Library path, at most 1024 bytes in NFC, case-sensitive, no control or
    /// invisible format characters (default `""`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 1024, example = "finance/2026/")
    )]
    pub path: Option<String>,
    /// At most 20 labels of 1–64 bytes each.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20, example = json!(["finance"])))]
    pub labels: Option<Vec<String>>,
    /// An absolute http(s) URL of at most 2048 bytes, stored as given.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, example = "https://example.com/q3.pdf")
    )]
    pub public_url: Option<String>,
    /// A registered type (canonical MIME or an alias) the workspace allows. Default:
    /// the type the name's extension names.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "application/pdf"))]
    pub content_type: Option<String>,
    /// Signed into the upload URL when given.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, example = 48213))]
    pub size_bytes: Option<u64>,
    /// Base64 of the SHA-256 digest; signed into the upload URL when given.
    #[serde(default)]
    pub checksum_sha256: Option<String>,
    // The multipart fields are left out when absent, so that requests without them
    // digest as they did before multipart existed.
    /// `PUT` or `MULTIPART`; absent: multipart when `size_bytes` is over the server's
    /// threshold. Multipart needs `size_bytes` of at least 5 MiB (5242880, the smallest part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(example = "MULTIPART", pattern = "^(PUT|MULTIPART)$")
    )]
    pub upload_method: Option<String>,
    /// The part size, 5 MiB to 5 GiB, at most 10,000 parts (asks for multipart).
    /// Default: the server's part size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5242880))]
    pub part_size_bytes: Option<u64>,
    /// Base64 SHA-256 of every part, in order (needs `part_size_bytes`): the answer
    /// then carries signed URLs for the first parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10000))]
    pub part_checksums_sha256: Option<Vec<String>>,
    /// An http(s) URI filegate fetches the file from (an import), instead of an upload
    /// by the client: SSRF-guarded (public addresses only, unless the operator allowed
    /// the host), at most 2048 bytes. `name` defaults to its last path segment. The
    /// file is `pending` (`processing_status: processing`) until the import ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, example = "https://example.com/q3.pdf")
    )]
    pub remote_uri: Option<String>,
}

impl FileEntry {
    /// The entry as the domain parses it.
    #[must_use]
    pub fn input(&self) -> FileInput<'_> {
        FileInput {
            local_file_path: self.local_file_path.as_deref(),
            name: self.name.as_deref(),
            path: self.path.as_deref(),
            labels: self.labels.as_deref(),
            public_url: self.public_url.as_deref(),
            content_type: self.content_type.as_deref(),
            size_bytes: self.size_bytes,
            checksum_sha256: self.checksum_sha256.as_deref(),
            upload_method: self.upload_method.as_deref(),
            part_size_bytes: self.part_size_bytes,
            part_checksums_sha256: self.part_checksums_sha256.as_deref(),
        }
    }
}

/// `200` of `POST /v2/files`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateFilesResponse {
    pub workspace_uuid: Uuid,
    pub files: Vec<CreatedFile>,
}

/// One reserved upload and how to send its bytes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedFile {
    pub file_uuid: Uuid,
    pub local_file_path: Option<String>,
    pub name: String,
    pub path: String,
    /// The file's object key in the bucket (`{workspace_uuid}/{file_uuid}`), for its
    /// whole life: what downloads serve once it is ready. The upload itself lands
    /// under `uploads/` and is copied here once verified.
    pub remote_file_path: String,
    pub status: ReservationStatus,
    /// The presigned PUT URL; `null` for a multipart upload (its parts have URLs).
    pub file_url: Option<String>,
    /// `PUT` or `MULTIPART`.
    #[cfg_attr(feature = "openapi", schema(value_type = UploadMethodSchema))]
    pub upload_method: UploadMethod,
    /// Exactly the headers the PUT must send (empty for multipart).
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({ "Content-Type": "application/pdf", "Content-Length": "48213" })))]
    pub upload_headers: BTreeMap<String, String>,
    /// When the upload URL expires; for multipart, when the upload window closes.
    pub expires_at: DateTime<Utc>,
    /// The multipart upload (`upload_method: MULTIPART` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartUpload>,
    /// The file's type (canonical MIME).
    #[serde(default)]
    pub content_type: String,
    /// `pending` (waiting for the client's upload) or `processing` (an import filegate
    /// runs); a replay tells where the file is now.
    #[serde(default = "pending")]
    pub processing_status: ProcessingStatus,
    /// The URI an import fetches (imports only; no `file_url` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_uri: Option<String>,
}

fn pending() -> ProcessingStatus {
    ProcessingStatus::Pending
}

/// What a reservation's entry says of its file: `pending` when it is made; a replay
/// of it tells the file's status now, or `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    Pending,
    Ready,
    Rejected,
    Expired,
    /// The file was deleted since the reservation.
    Deleted,
}

impl From<FileStatus> for ReservationStatus {
    fn from(status: FileStatus) -> Self {
        match status {
            FileStatus::Pending => Self::Pending,
            FileStatus::Ready => Self::Ready,
            FileStatus::Rejected => Self::Rejected,
            FileStatus::Expired => Self::Expired,
        }
    }
}

/// How a file's bytes are sent.
#[cfg(feature = "openapi")]
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = UploadMethod)]
#[serde(rename_all = "UPPERCASE")]
pub enum UploadMethodSchema {
    Put,
    Multipart,
}

/// A multipart upload: how the file is cut, and signed URLs for parts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MultipartUpload {
    /// The store's upload id.
    pub upload_id: String,
    /// Every part is this long but the last, which holds the rest.
    pub part_size_bytes: i64,
    pub part_count: i32,
    /// Signed part URLs: in a reservation, the first parts whose digests it was sent;
    /// from `POST …/parts`, the parts asked for.
    pub parts: Vec<PartUrl>,
}

/// A presigned `UploadPart` request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartUrl {
    pub part_number: i32,
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(example = "PUT"))]
    pub method: String,
    /// Exactly the headers the PUT must send: the part's length and SHA-256.
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({ "Content-Length": "8388608", "x-amz-checksum-sha256": "…" })))]
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

// `POST /v2/files/{file_uuid}/parts`.
/// Parts to sign, each with its SHA-256.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignPartsRequest {
    /// 1 to 1000 parts.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub parts: Vec<PartToSign>,
}

/// A part to sign.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PartToSign {
    /// 1 to the file's `part_count`.
    pub part_number: i32,
    /// Base64 SHA-256 of the part's bytes; signed into its URL.
    pub checksum_sha256: String,
}

/// `200` of `GET /v2/files/{file_uuid}/parts`: the parts the store holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredParts {
    pub file_uuid: Uuid,
    pub upload_id: String,
    pub part_size_bytes: i64,
    pub part_count: i32,
    pub parts: Vec<StoredPart>,
    /// The part numbers the store does not hold yet.
    pub missing: Vec<i32>,
}

/// A part the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredPart {
    pub part_number: i32,
    pub size_bytes: i64,
    /// The digest the store keeps for it (`null` on stores that keep none).
    pub checksum_sha256: Option<String>,
    pub etag: Option<String>,
}

// `POST /v2/files/complete`.
/// Files to complete together.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteFilesRequest {
    /// 1 to 50 distinct file ids.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub file_uuids: Vec<Uuid>,
}

/// `200` of `POST /v2/files/complete`: one entry per file, in the request's order.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteFilesResponse {
    pub files: Vec<CompletedFile>,
}

/// One file's outcome in a batch completion: the file object (ready, also when it was
/// ready already), or the error the single route would have answered.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
// One per file of an answer, built and serialized once: boxing the file buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum CompletedFile {
    Ready(File),
    Failed(FileFailure),
}

/// A file of a batch that did not end ready.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileFailure {
    pub file_uuid: Uuid,
    pub error: FileError,
}

/// The code, sentence and details the single route answers with for this file
/// (`upload_missing`, `upload_mismatch`, `invalid_state`, `not_found`, `unavailable`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// A file's lifecycle state.
#[cfg(feature = "openapi")]
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatusSchema {
    Pending,
    Ready,
    Rejected,
    Expired,
}

/// What a file holds, as Aymara's `file_type` names it.
#[cfg(feature = "openapi")]
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileKindSchema {
    Text,
    Image,
    Video,
    Audio,
    Document,
}

/// The file object of the API contract (with the fields Aymara's SDK reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct File {
    pub file_uuid: Uuid,
    pub workspace_uuid: Uuid,
    pub name: String,
    pub path: String,
    pub labels: Vec<String>,
    pub public_url: Option<String>,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    /// Base64 SHA-256, when declared.
    pub checksum_sha256: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = FileStatusSchema))]
    pub status: FileStatus,
    pub rejection_reason: Option<String>,
    /// The object key in the bucket.
    pub remote_file_path: String,
    /// The id of the API key that created the file.
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// What the file holds, by its type: `text`, `image`, `video`, `audio` or
    /// `document` (Aymara's `file_type`; `GET /v2/files?file_type=` filters by it).
    #[cfg_attr(feature = "openapi", schema(value_type = FileKindSchema))]
    pub file_type: FileKind,
    /// The organization that owns the file (Aymara's `organization_uuid`).
    pub organization_uuid: Uuid,
    /// Its size in bytes: the real one once ready, else the declared one (Aymara's
    /// `file_size_bytes`).
    pub file_size_bytes: Option<i64>,
    /// The id of the API key that created the file (Aymara's `uploaded_by_uuid`).
    pub uploaded_by_uuid: Uuid,
    /// Where the file is in its processing (as `GET …/status` tells it): for a ready
    /// video, `processing` until its frames are made, then `completed` (or `failed`).
    pub processing_status: ProcessingStatus,
    /// A processed video's `duration_seconds`, `fps`, `width`, `height`, `codec`,
    /// `frame_count` and `frame_rate` (frames taken per second of video); `null` for
    /// other files and before processing completes (Aymara's `video_metadata`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub video_metadata: Option<serde_json::Value>,
}

/// A file, with a download URL when it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileWithDownload {
    #[serde(flatten)]
    pub file: File,
    /// A short-lived presigned GET that downloads as an attachment (ready files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_expires_at: Option<DateTime<Utc>>,
    /// The download URL again, under the name Aymara's SDK reads (`null` until ready).
    #[serde(default)]
    pub file_url: Option<String>,
}

/// A page of files, as filegate's clients read it (`files`, `next_cursor`) and as
/// Aymara's SDK reads it (`items`, `count`): both sets of fields, one answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListResponse {
    /// The workspace listed (the key's default when the query named none).
    pub workspace_uuid: Uuid,
    pub files: Vec<File>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The same page, under the name Aymara's SDK reads.
    #[serde(default)]
    pub items: Vec<File>,
    /// How many files match the filters, over all pages (offset paging reads it),
    /// counted up to 1,000 past the end of this page: when more match, it is this
    /// page's offset + limit + 1,000 (so a client paging by offset always sees that
    /// more follow) and `count_exact` is false.
    #[serde(default)]
    pub count: i64,
    /// `count` is every match (false: at least that many match).
    #[serde(default = "exact")]
    pub count_exact: bool,
}

fn exact() -> bool {
    true
}

/// Where a file is in its processing, as Aymara's `processing_status` names it:
/// `pending` (reserved, no bytes yet), `processing` (bytes streaming through filegate,
/// a `remote_uri` being fetched, or a ready file's derived files, such as a video's
/// frames, being made), `completed` (ready, with its derived files if its type has a
/// processor) or `failed` (rejected or expired, or its processing failed: the file
/// itself then stays ready; `error_message` says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProcessingStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl ProcessingStatus {
    /// A file's processing status: its lifecycle state, for a pending file whether its
    /// bytes are on their way through filegate, and for a ready one where its derived
    /// files are (`derived`: `None` when its type has none).
    #[must_use]
    pub fn of(status: FileStatus, in_flight: bool, derived: Option<Self>) -> Self {
        match status {
            FileStatus::Pending if in_flight => Self::Processing,
            FileStatus::Pending => Self::Pending,
            FileStatus::Ready => derived.unwrap_or(Self::Completed),
            FileStatus::Rejected | FileStatus::Expired => Self::Failed,
        }
    }
}

/// `200` of `GET /v2/files/{file_uuid}/status` (Aymara's `FileStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileProcessing {
    pub file_uuid: Uuid,
    pub processing_status: ProcessingStatus,
    /// Why it failed (`failed` only).
    pub error_message: Option<String>,
    /// The object key, once the file is ready.
    pub remote_file_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `200` of `POST /v2/files/-/uploads`: the file, ready (Aymara's `FileUpload` fields
/// with the whole file object).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadedFile {
    #[serde(flatten)]
    pub file: FileWithDownload,
    /// The form part's file name, as sent.
    pub local_file_path: Option<String>,
}

/// `200` of `GET /v2/files/{file_uuid}/frames`: a processed video's frames (Aymara's
/// `FileFrames`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileFrames {
    pub file_uuid: Uuid,
    pub frame_count: i64,
    /// Presigned GETs of the frames (JPEG), in frame order, each valid for
    /// `frame_urls_expire_at`.
    pub frame_urls: Vec<String>,
    /// When the URLs expire.
    pub frame_urls_expire_at: DateTime<Utc>,
}
