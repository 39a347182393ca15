//! filegate's HTTP wire types, defined once. The service serializes the answers and
//! deserializes the requests; the client (`filegate-client`) does the reverse with the
//! same types, so a field renamed here is renamed in both. The contract's values are
//! types here too: [`ErrorCode`], [`FileStatus`], [`UploadMethod`], [`RejectionCheck`].
//! The end-to-end tests read the wire as JSON (or through the client), so a rename
//! that changes the contract shows there.
//!
//! With the `openapi` feature the types also derive their OpenAPI schemas (the
//! service's `docs/openapi.json` is generated from them).

mod errors;
mod files;
mod studio;
pub mod webhooks;
mod workspaces;

pub use errors::{EntryFailure, ErrorCode, RejectionCheck};
pub use filegate_domain::multipart::UploadMethod;
pub use filegate_domain::{FileKind, FileStatus};
pub use files::{
    CompleteFilesRequest, CompleteFilesResponse, CompletedFile, CreateFilesRequest,
    CreateFilesResponse, CreatedFile, File, FileEntry, FileError, FileFailure, FileFrames,
    FileProcessing, FileWithDownload, ListResponse, MultipartUpload, PartToSign, PartUrl,
    ProcessingStatus, ReservationStatus, SignPartsRequest, StoredPart, StoredParts, UploadedFile,
};
#[cfg(feature = "openapi")]
pub use files::{FileKindSchema, FileStatusSchema, UploadMethodSchema};
pub use studio::{
    BatchStatus, BatchStatusCount, LibraryCreated, LibraryFile, LibraryStatus, LibraryUpdate,
};
pub use webhooks::{
    CreateWebhookRequest, DeliveryList, DeliveryStatus, EventType, RedeliverRequest,
    RedeliverResponse, UpdateWebhookRequest, Webhook, WebhookDelivery, WebhookEvent,
    WebhookEventData, WebhookList, WebhookWithSecret,
};
pub use workspaces::UsageResponse;
