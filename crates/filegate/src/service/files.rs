//! The file object: a file's row as every surface shows it (`/v2`'s answers, webhook
//! payloads).

use filegate_api::{File, ProcessingStatus};
use filegate_db::files::{FileRow, Processing};
use filegate_domain::FileKind;

/// Where a file is in its processing, as Aymara's SDK reads it.
#[must_use]
pub fn processing_status(f: &FileRow) -> ProcessingStatus {
    let derived = f.processing.map(|p| match p {
        Processing::Processing => ProcessingStatus::Processing,
        Processing::Completed => ProcessingStatus::Completed,
        Processing::Failed => ProcessingStatus::Failed,
    });
    ProcessingStatus::of(f.status, f.on_the_way(), derived)
}

/// The file object of a row.
#[must_use]
pub fn file_object(f: FileRow) -> File {
    let processing_status = processing_status(&f);
    let video_metadata = f
        .media_metadata
        .filter(|_| f.content_type.kind() == FileKind::Video);
    File {
        processing_status,
        video_metadata,
        file_type: f.content_type.kind(),
        organization_uuid: f.organization_id,
        file_size_bytes: f.size_bytes,
        uploaded_by_uuid: f.created_by,
        file_uuid: f.id,
        workspace_uuid: f.workspace_id,
        name: f.name,
        path: f.path,
        labels: f.labels,
        public_url: f.public_url,
        content_type: f.content_type.mime().to_owned(),
        size_bytes: f.size_bytes,
        checksum_sha256: f.checksum_sha256.map(|c| c.to_base64()),
        status: f.status,
        rejection_reason: f.rejection_reason,
        remote_file_path: f.object_key,
        created_by: f.created_by,
        created_at: f.created_at,
        updated_at: f.updated_at,
        completed_at: f.completed_at,
    }
}
