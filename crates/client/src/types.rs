//! The API's wire types: those of `filegate-api`, and the list filters as a client
//! sends them.

pub use filegate_api::{
    CompleteFilesRequest, CompleteFilesResponse, CompletedFile, CreateFilesRequest,
    CreateFilesResponse, CreatedFile, EntryFailure, ErrorCode, File, FileEntry, FileError,
    FileFailure, FileStatus, FileWithDownload, ListResponse, MultipartUpload, PartToSign, PartUrl,
    ReservationStatus, SignPartsRequest, StoredPart, StoredParts, UploadMethod, UsageResponse,
};
use uuid::Uuid;

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
