//! filegate's HTTP wire types, defined once. The service serializes the answers and
//! deserializes the requests; the client (`filegate-client`) and the end-to-end tests
//! do the reverse with the same types, so a field renamed here is renamed everywhere.
//!
//! With the `openapi` feature the types also derive their OpenAPI schemas (the
//! service's `docs/openapi.json` is generated from them).

mod files;
mod workspaces;

pub use filegate_domain::FileStatus;
#[cfg(feature = "openapi")]
pub use files::FileStatusSchema;
pub use files::{
    CompleteFilesRequest, CompleteFilesResponse, CompletedFile, CreateFilesRequest,
    CreateFilesResponse, CreatedFile, File, FileEntry, FileError, FileFailure, FileWithDownload,
    ListResponse, MultipartUpload, PartToSign, PartUrl, SignPartsRequest, StoredPart, StoredParts,
};
pub use workspaces::UsageResponse;
