//! `GET /v2/workspaces/{workspace_uuid}/usage`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A workspace's limits and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageResponse {
    pub workspace_uuid: Uuid,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub reserved_bytes: i64,
    /// Live files: pending or ready.
    pub file_count: i64,
    /// Of those, pending: reserved, not yet completed or expired.
    pub pending_file_count: i64,
    /// Most live files the workspace may hold (empty files count too).
    pub max_files: i64,
    /// Most pending files it may hold at once.
    pub max_pending_files: i64,
    pub max_file_bytes: i64,
    pub allowed_content_types: Vec<String>,
    /// Live files are unique by name and path; when `false` the same name may be
    /// uploaded again as a new file.
    pub unique_names: bool,
}
