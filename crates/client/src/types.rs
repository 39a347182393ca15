//! The API's wire types, as a client sees them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v2/files` request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateFiles {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<Uuid>,
    pub files: Vec<NewFile>,
}

/// One requested upload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
}

/// `POST /v2/files` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedFiles {
    pub workspace_uuid: Uuid,
    pub files: Vec<CreatedFile>,
}

/// One reserved upload.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedFile {
    pub file_uuid: Uuid,
    pub local_file_path: Option<String>,
    pub name: String,
    pub path: String,
    pub remote_file_path: String,
    pub status: String,
    pub file_url: String,
    pub upload_method: String,
    pub upload_headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// The file object.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct File {
    pub file_uuid: Uuid,
    pub workspace_uuid: Uuid,
    pub name: String,
    pub path: String,
    pub labels: Vec<String>,
    pub public_url: Option<String>,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
    pub status: String,
    pub rejection_reason: Option<String>,
    pub remote_file_path: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub download_url: Option<String>,
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

/// One page of files.
#[derive(Debug, Clone, Deserialize)]
pub struct FilePage {
    pub files: Vec<File>,
    pub next_cursor: Option<String>,
}

/// A workspace's usage.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Usage {
    pub workspace_uuid: Uuid,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub reserved_bytes: i64,
    pub file_count: i64,
    pub max_file_bytes: i64,
    pub allowed_content_types: Vec<String>,
}
