use crate::ContentType;

/// The most files one `POST /v2/files` may reserve.
pub const MAX_FILES_PER_REQUEST: usize = 50;

/// A workspace's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Ready plus reserved bytes may never exceed this.
    pub quota_bytes: i64,
    /// No single file may be larger.
    pub max_file_bytes: i64,
    /// The types this workspace accepts.
    pub allowed_types: Vec<ContentType>,
    /// Live files are unique by name and path (a document library); when off, the same
    /// name can be uploaded again as a new file (an eval-file store).
    pub unique_names: bool,
    /// Live files (pending or ready), empty ones included, may never exceed this.
    pub max_files: i64,
    /// Pending files (reserved, not yet completed or expired) may never exceed this.
    pub max_pending_files: i64,
}

impl Limits {
    /// 1 GiB per workspace.
    pub const DEFAULT_QUOTA_BYTES: i64 = 1 << 30;
    /// 5 MiB per file.
    pub const DEFAULT_MAX_FILE_BYTES: i64 = 5 << 20;
    /// 100,000 live files per workspace.
    pub const DEFAULT_MAX_FILES: i64 = 100_000;
    /// 10,000 pending files per workspace: 200 full batches in flight.
    pub const DEFAULT_MAX_PENDING_FILES: i64 = 10_000;

    /// True when the workspace accepts `ty`.
    #[must_use]
    pub fn allows(&self, ty: ContentType) -> bool {
        self.allowed_types.contains(&ty)
    }

    /// The bytes to reserve for a file: its declared size, or the max file size when
    /// the size is not declared (completion settles it to the real size).
    #[must_use]
    pub fn reservation_for(&self, declared: Option<i64>) -> i64 {
        declared.unwrap_or(self.max_file_bytes)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            quota_bytes: Self::DEFAULT_QUOTA_BYTES,
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            allowed_types: ContentType::DEFAULT_ALLOWED.to_vec(),
            unique_names: true,
            max_files: Self::DEFAULT_MAX_FILES,
            max_pending_files: Self::DEFAULT_MAX_PENDING_FILES,
        }
    }
}
