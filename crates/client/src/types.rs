//! The API's wire types: those of `filegate-api`, and the list filters as a client
//! sends them.

pub use filegate_api::{
    CompleteFilesRequest, CompleteFilesResponse, CompletedFile, CreateFilesRequest,
    CreateFilesResponse, CreatedFile, EntryFailure, ErrorCode, File, FileEntry, FileError,
    FileFailure, FileProcessing, FileStatus, FileWithDownload, ListResponse, MultipartUpload,
    PartToSign, PartUrl, ProcessingStatus, ReservationStatus, SignPartsRequest, StoredPart,
    StoredParts, UploadMethod, UploadedFile, UsageResponse,
};
use uuid::Uuid;

/// A file sent through the API (`POST /v2/files/-/uploads`) rather than to the store.
#[derive(Debug, Clone, Default)]
pub struct DirectUpload<'a> {
    /// The workspace (default: the key's default workspace).
    pub workspace_uuid: Option<Uuid>,
    /// The file's name (its part's file name).
    pub name: &'a str,
    /// Its type; `None`: the type its name's extension names.
    pub content_type: Option<&'a str>,
    /// Library path.
    pub path: &'a str,
    pub labels: &'a [String],
    pub public_url: Option<&'a str>,
}

/// `GET /v2/files` filters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub workspace_uuid: Option<Uuid>,
    pub name: Option<String>,
    pub path: Option<String>,
    pub labels: Vec<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}
