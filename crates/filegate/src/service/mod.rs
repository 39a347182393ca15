//! The services: what filegate does, below HTTP. Nothing here knows a request, a
//! status code or the application state; each service owns what it needs and fails
//! with its own error type, which the HTTP layer turns into answers in one place
//! (`crate::http::error`).
//!
//! - [`completion`]: the one way a file leaves `pending` (claim, inspect, settle),
//!   for every path that completes files.
//! - [`uploads`]: presigned upload URLs, multipart uploads' part URLs and aborts, and
//!   the sweep of uploads no file owns.
//! - [`ingest`]: uploads that stream through filegate (files of undeclared size), cut
//!   off at their reservation as the bytes arrive, and the URLs that name them.
//! - [`imports`]: `remote_uri` imports, fetched through the SSRF guard and streamed
//!   through the ingest.
//! - [`files`]: the file object every surface shows.
//! - [`webhooks`]: webhook endpoints' URLs and secrets, and delivering their events.
//! - [`processing`]: processors that derive files from ready ones (a video's frames),
//!   and the worker that runs their jobs.
//! - [`group_commit`]: completions' transitions settled together under load.
//! - [`keys`]: API keys' format and the per-process cache of their rows.
//! - [`trust`]: what completion takes the store's word for, from the start-up probe.
//! - [`store`]: the object-store calls completion makes, as a trait.

pub mod completion;
pub mod files;
pub mod group_commit;
pub mod imports;
pub mod ingest;
pub mod keys;
pub mod processing;
pub mod store;
pub mod trust;
pub mod uploads;
pub mod webhooks;
