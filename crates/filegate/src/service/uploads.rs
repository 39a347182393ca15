//! Uploads under way: the presigned URLs a reservation hands out (one PUT, or a
//! multipart upload and its part URLs, each part's length and SHA-256 signed in), the
//! abort of a multipart upload nobody will finish, and the sweep of uploads in progress
//! that no pending file owns. `POST /v2/files`, its idempotent replays, `…/parts` and
//! `DELETE` call this; completion assembles the parts ([`crate::service::completion`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use filegate_api::PartUrl;
use filegate_domain::Checksum;
use filegate_domain::keys::KeyKind;
use filegate_domain::multipart::PartPlan;
use filegate_storage::{PartSpec, Presigned, PutSpec, Storage, StorageError};

use crate::metrics::{self, ReaperAction};

/// The shortest life a part URL is signed for: a window closing sooner than this is
/// closed (a URL that dies before its PUT arrives helps nobody).
const MIN_URL_LIFE: Duration = Duration::from_secs(1);

/// Why an upload URL could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file's upload window has closed: no URL may be signed for it.
    #[error("the file's upload window has closed")]
    WindowClosed,
    #[error(transparent)]
    Store(#[from] StorageError),
}

/// Signs upload URLs and starts and aborts multipart uploads.
#[derive(Debug, Clone)]
pub struct Uploads {
    storage: Storage,
    /// How long an upload URL lives.
    presign_ttl: Duration,
}

impl Uploads {
    /// Uploads to `storage`, with URLs that live `presign_ttl`.
    #[must_use]
    pub fn new(storage: Storage, presign_ttl: Duration) -> Self {
        Self {
            storage,
            presign_ttl,
        }
    }

    /// A presigned PUT to `key` whose signed headers pin what `spec` declares.
    ///
    /// # Errors
    /// [`UploadError::Store`] when signing fails.
    pub async fn presign_put(
        &self,
        key: &str,
        spec: &PutSpec<'_>,
    ) -> Result<Presigned, UploadError> {
        Ok(self
            .storage
            .presign_put(key, spec, self.presign_ttl)
            .await?)
    }

    /// A presigned PUT like [`Uploads::presign_put`] that expires no later than
    /// `until` (whole seconds before it), the end of its file's recorded window.
    ///
    /// # Errors
    /// [`UploadError::WindowClosed`] when less than a second is left;
    /// [`UploadError::Store`] when signing fails.
    pub async fn presign_put_until(
        &self,
        key: &str,
        spec: &PutSpec<'_>,
        until: DateTime<Utc>,
    ) -> Result<Presigned, UploadError> {
        let left = Duration::from_secs(
            u64::try_from((until - Utc::now()).num_seconds()).unwrap_or_default(),
        );
        if left < MIN_URL_LIFE {
            return Err(UploadError::WindowClosed);
        }
        Ok(self.storage.presign_put(key, spec, left).await?)
    }

    /// Starts a multipart upload of `key`; its upload id.
    ///
    /// # Errors
    /// [`UploadError::Store`] when the store is unreachable or refuses.
    pub async fn start_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, UploadError> {
        Ok(self.storage.create_multipart(key, content_type).await?)
    }

    /// Presigned `UploadPart` URLs for `parts`, each valid for the presign TTL but never
    /// past the upload window (`closes`).
    ///
    /// # Errors
    /// [`UploadError::WindowClosed`] when the window has closed; the store's error when
    /// signing fails.
    pub async fn sign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartSpec],
        closes: DateTime<Utc>,
    ) -> Result<Vec<PartUrl>, UploadError> {
        let left = (closes - Utc::now()).to_std().unwrap_or_default();
        if left < MIN_URL_LIFE {
            return Err(UploadError::WindowClosed);
        }
        let ttl = self.presign_ttl.min(left);
        let mut signed = Vec::with_capacity(parts.len());
        for part in parts {
            let url = self.storage.presign_part(key, upload_id, part, ttl).await?;
            signed.push(PartUrl {
                part_number: part.number,
                url: url.url,
                method: url.method,
                headers: url.headers.into_iter().collect::<BTreeMap<_, _>>(),
                expires_at: url.expires_at,
            });
        }
        Ok(signed)
    }

    /// Aborts a multipart upload now; `false` when the store failed (a queued deletion
    /// or the sweep of uploads no pending file owns aborts it later).
    pub async fn abort(&self, key: &str, upload_id: &str) -> bool {
        match self.storage.abort_multipart(key, upload_id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, key, "could not abort a multipart upload; it is aborted later");
                false
            }
        }
    }
}

/// The parts to sign: each number with its length in the plan and its digest.
#[must_use]
pub fn part_specs(plan: &PartPlan, parts: &[(i32, Checksum)]) -> Vec<PartSpec> {
    parts
        .iter()
        .filter_map(|(number, checksum)| {
            Some(PartSpec {
                number: *number,
                length: plan.part_length(*number)?,
                checksum: *checksum,
            })
        })
        .collect()
}

/// What one sweep of uploads in progress did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UploadSweep {
    /// Multipart uploads under filegate's keys that the store listed.
    pub listed: u64,
    /// Of those, uploads no pending file owns that were old enough to abort.
    pub orphaned: u64,
    /// Aborted (0 in a dry run).
    pub aborted: u64,
    /// Aborts that failed (tried again next sweep).
    pub failures: u64,
    /// The store does not list uploads in progress (s3s-fs 0.14): nothing was swept.
    pub unlisted: bool,
}

/// Aborts multipart uploads under filegate's keys that no pending file owns and that
/// were started before `cutoff` (a reservation starts its uploads just before it
/// inserts their files, so younger ones may still be about to be owned).
///
/// # Errors
/// When the database or the store fails; what was aborted stays aborted.
pub async fn sweep_uploads(
    pool: &filegate_db::Pool,
    storage: &Storage,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> Result<UploadSweep, SweepError> {
    let mut sweep = UploadSweep::default();
    let mut after = None;
    let mut pages = 0usize;
    loop {
        let page = match storage.list_uploads_page(after.clone()).await {
            Ok(page) => page,
            Err(StorageError::NotImplemented(_)) => {
                sweep.unlisted = true;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let ours: Vec<_> = page
            .uploads
            .iter()
            .filter(|u| KeyKind::of(&u.key) != KeyKind::Foreign)
            .collect();
        sweep.listed += ours.len() as u64;
        let ids: Vec<&str> = ours.iter().map(|u| u.upload_id.as_str()).collect();
        // An upload streaming through filegate writes its parts to its file's upload
        // key; the lease on the file's row owns them while it runs.
        let streaming: Vec<(uuid::Uuid, &str)> = ours
            .iter()
            .filter_map(|u| {
                let parsed = filegate_domain::keys::parse(&u.key)?;
                (parsed.kind == KeyKind::Upload).then_some((parsed.file, u.upload_id.as_str()))
            })
            .collect();
        let owned = filegate_db::files::owned_uploads(pool, &ids, &streaming).await?;
        for upload in ours {
            if owned.contains(&upload.upload_id) || upload.initiated.is_none_or(|t| t >= cutoff) {
                continue;
            }
            sweep.orphaned += 1;
            if dry_run {
                continue;
            }
            match storage
                .abort_multipart(&upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => {
                    tracing::info!(key = upload.key, "aborted a multipart upload no file owns");
                    sweep.aborted += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key = upload.key, "could not abort an orphaned multipart upload");
                    sweep.failures += 1;
                }
            }
        }
        match page.next {
            Some(next) => {
                // Uploads list by key (several may share one): the key may stay but
                // never go back, and the marker must move, or the sweep would spin.
                pages += 1;
                if pages > SWEEP_PAGES_MAX
                    || after
                        .as_ref()
                        .is_some_and(|a: &(String, String)| next.0 < a.0 || next == *a)
                {
                    return Err(SweepError::Storage(filegate_storage::misbehaved(format!(
                        "the multipart upload listing went from {after:?} to {next:?} after {pages} pages"
                    ))));
                }
                after = Some(next);
            }
            None => break,
        }
    }
    metrics::reaper(ReaperAction::MultipartAborted, sweep.aborted);
    Ok(sweep)
}

/// The most pages (of up to 1,000 uploads) one sweep lists: past them the store is
/// taken to be looping, and the sweep stops until the next pass.
const SWEEP_PAGES_MAX: usize = 10_000;

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Database(#[from] filegate_db::DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
