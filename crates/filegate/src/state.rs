//! What every handler shares.

use std::sync::Arc;

use filegate_db::Pool;
use filegate_storage::Storage;

use crate::auth::KeyCache;
use crate::ratelimit::Limiter;
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
    pub rate_scopes: crate::ratelimit::Scopes,
    /// What the start-up probe found the store to do (`None`: it did not run).
    pub store_report: Option<filegate_storage::probe::Report>,
    /// What completion may take the store's word for, from that report.
    pub store_trust: crate::doctor::StoreTrust,
    /// Where completions settle their transitions, grouped under load.
    pub group_commit: Arc<crate::group_commit::GroupCommit>,
}
