//! What every handler shares: the services, and what the HTTP layer keeps of its own
//! (the key cache, the rate limiter).

use std::sync::Arc;

use filegate_db::Pool;
use filegate_storage::Storage;

use crate::http::ratelimit::limiter::Limiter;
use crate::http::ratelimit::scopes::Scopes;
use crate::service::completion::Completer;
use crate::service::group_commit::{GroupCommit, Reservations};
use crate::service::imports::Imports;
use crate::service::ingest::Ingest;
use crate::service::keys::KeyCache;
use crate::service::processing::Processing;
use crate::service::uploads::Uploads;
use crate::service::webhooks::Webhooks;
use crate::settings::ServeSettings;

/// Shared by all workers of one process.
#[derive(Debug)]
pub struct AppState {
    pub pool: Pool,
    pub storage: Storage,
    pub keys: KeyCache,
    pub settings: Arc<ServeSettings>,
    pub limiter: Limiter,
    /// Workspaces' rate-limit overrides and files' workspaces, for the limiter.
    pub rate_scopes: Scopes,
    /// What the start-up probe found the store to do (`None`: it did not run).
    pub store_report: Option<filegate_storage::probe::Report>,
    /// Every completion path's one way out of `pending`.
    pub completer: Arc<Completer>,
    /// Reservations of concurrent requests, grouped.
    pub reservations: Arc<GroupCommit<Reservations>>,
    /// Upload URLs and multipart uploads.
    pub uploads: Uploads,
    /// Uploads that stream through filegate.
    pub ingest: Ingest,
    /// `remote_uri` imports.
    pub imports: Imports,
    /// Webhook endpoints' checks and deliveries.
    pub webhooks: Webhooks,
    /// The processors this replica runs, and their worker.
    pub processing: Processing,
}
