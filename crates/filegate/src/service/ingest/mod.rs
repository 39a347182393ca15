//! Bytes that stream through filegate into the store: a file's upload when its size
//! was not declared (its URL is filegate's own, see [`signing`]), counted, hashed and
//! cut off at the file's reservation as they arrive, so what an upload can make the
//! store hold is bounded by the quota at every moment, not only at completion.
//!
//! A body that fits one part is buffered and written with one `PutObject` carrying
//! its SHA-256; a longer one goes as a multipart upload of parts of that size, each
//! with its digest, so memory stays at one part per upload whatever the body's size,
//! and a slow store slows the client (nothing more is read while a part is written).
//! Each part's buffer is allocated at the part's size once (never grown by doubling)
//! out of a budget all uploads share (a part waits for its buffer, reading nothing,
//! when the budget is taken),
//! and each byte is hashed once: by its part's digest, which the store checks (the
//! request's own payload is not hashed again for its signature: the signed digest
//! header covers it), plus a whole-body digest only where the caller wants one.
//! One upload per file runs at a time (a lease on its row, renewed as bytes arrive);
//! an upload that fails, is cut off or is dropped (the client hung up) writes nothing,
//! and aborts the parts it wrote. The file stays `pending`: completion inspects what
//! was written, as it does a presigned PUT's object.

mod buffer;
pub mod signing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use filegate_db::files::{IngestTarget, Lease};
use filegate_db::{DbError, Pool};
use filegate_domain::keys::KeyKind;
use filegate_domain::{Checksum, FileStatus};
use filegate_storage::{Storage, StorageError, StoredPart};
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use self::buffer::PartBuffer;
use crate::metrics::{self, IngestOutcome, Trigger};
use crate::service::completion::{Completer, CompletionError, Outcome};

/// How long one lease holds an upload's file; it is renewed once a third of it has
/// passed while bytes keep arriving.
const LEASE: Duration = Duration::from_secs(30);

/// What bounds uploads through filegate.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Bytes buffered before a part is written (and the largest body written with one
    /// `PutObject`); at least S3's 5 MiB part minimum.
    pub part_size: usize,
    /// Uploads one process streams at once; more are answered `503`.
    pub max_concurrent: usize,
    /// Bytes all uploads may buffer at once (at least one part): beyond it, an upload
    /// waits for a buffer, reading nothing meanwhile.
    pub memory_bytes: usize,
    /// The longest wait for the next bytes of a body.
    pub idle_timeout: Duration,
    /// After the first `rate_grace`, a body must keep arriving at this many bytes a
    /// second on average, or it is cut off (one byte a second holds nothing for long).
    pub min_bytes_per_sec: u64,
    pub rate_grace: Duration,
    /// How long after an upload URL expired a PUT that began in time may still land
    /// (the final deletion of a deleted file's upload waits this long).
    pub upload_margin: Duration,
}

impl IngestSettings {
    /// The ingest settings of `serve`'s arguments; `upload_margin` is the reaper's.
    #[must_use]
    pub fn of(args: &crate::settings::IngestArgs, upload_margin: Duration) -> Self {
        Self {
            upload_margin,
            part_size: args.ingest_buffer_bytes as usize,
            max_concurrent: args.ingest_max_concurrent as usize,
            memory_bytes: usize::try_from(args.ingest_memory_bytes).unwrap_or(usize::MAX),
            idle_timeout: args.ingest_idle_timeout,
            min_bytes_per_sec: args.ingest_min_bytes_per_sec,
            rate_grace: args.ingest_rate_grace,
        }
    }
}

/// Why an upload through filegate stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Every upload slot of this process is taken.
    #[error("this server is streaming as many uploads as it may; retry shortly")]
    Busy,
    /// Another upload of the same file, or its completion, is under way.
    #[error("another upload or the verification of this file is under way; retry")]
    InProgress,
    /// The file left `pending` before or while the bytes arrived.
    #[error("the file is {}; it takes no more uploads", .0.as_str())]
    Settled(FileStatus),
    /// The file was deleted before or while the bytes arrived.
    #[error("the file was deleted")]
    Gone,
    /// The body passed the file's limit (a declared length, or the bytes as they came).
    #[error("the body is larger than the {limit} bytes this file may hold")]
    TooLarge { limit: u64 },
    /// The body stopped, or came slower than the minimum rate.
    #[error("the body arrived too slowly")]
    TooSlow,
    /// The client's body failed (it hung up, or sent a malformed chunk).
    #[error("the request body failed: {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error(transparent)]
    Database(#[from] DbError),
    /// The bytes were written, but their completion failed (the file stays pending
    /// with its whole upload, for the finalizer).
    #[error(transparent)]
    Completion(#[from] CompletionError),
}

impl IngestError {
    /// Whether a file reserved for bytes that stopped with this is given up (deleted
    /// or rejected, as `on_failure` says). Never when another path has the file (it is
    /// being uploaded, settled or gone); for an import, not when the store, the
    /// database or the server's room failed, which a later attempt may not meet.
    fn gives_up(&self, on_failure: OnFailure) -> bool {
        match self {
            Self::InProgress | Self::Settled(_) | Self::Gone | Self::Completion(_) => false,
            Self::Busy | Self::Store(_) | Self::Database(_) => on_failure == OnFailure::Delete,
            Self::TooLarge { .. } | Self::TooSlow | Self::Body(_) => true,
        }
    }

    fn outcome(&self) -> IngestOutcome {
        match self {
            Self::Busy => IngestOutcome::Busy,
            Self::InProgress | Self::Settled(_) | Self::Gone => IngestOutcome::Refused,
            Self::TooLarge { .. } => IngestOutcome::TooLarge,
            Self::TooSlow => IngestOutcome::TooSlow,
            Self::Body(_) => IngestOutcome::ClientFailed,
            Self::Store(_) | Self::Database(_) | Self::Completion(_) => IngestOutcome::Unavailable,
        }
    }
}

/// What an upload wrote.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: i64,
    /// The whole body's SHA-256: always for a body of one part, and for a longer one
    /// when the caller asked for it.
    pub checksum: Option<Checksum>,
    /// The new version's entity tag, as the store reported it.
    pub etag: Option<String>,
}

/// What becomes of a file reserved for bytes that could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// It is deleted: its client is answered with the error (an upload in a request).
    Delete,
    /// It is rejected with the reason: its client reads it from the file (an import).
    Reject,
}

/// Streams uploads into the store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingest {
    pool: Pool,
    storage: Storage,
    settings: IngestSettings,
    permits: Arc<Semaphore>,
    /// The buffers' budget, in KiB.
    memory: Arc<Semaphore>,
    /// Whole-part buffers kept for the next part.
    buffers: Arc<buffer::Pool>,
    completer: Arc<Completer>,
}

/// Bytes to the budget's units (KiB, rounded up).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

impl Ingest {
    #[must_use]
    pub fn new(
        pool: Pool,
        storage: Storage,
        settings: IngestSettings,
        completer: Arc<Completer>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_concurrent));
        // Never less than one part: an upload waiting for more than there is would wait
        // for ever.
        let memory = Arc::new(Semaphore::new(
            kib(settings.memory_bytes.max(settings.part_size)).min(Semaphore::MAX_PERMITS),
        ));
        Self {
            pool,
            storage,
            settings,
            permits,
            memory,
            buffers: Arc::default(),
            completer,
        }
    }

    /// Streams `body` into `target`, a pending file reserved for it, and completes it at
    /// once (the claim, inspection and transition every completion makes): the file is
    /// ready or rejected when this returns. When the bytes cannot be had (the body is
    /// too large or too slow, the client went away, the store failed), the file does
    /// not stay pending with nothing behind it: it is deleted or rejected as
    /// `on_failure` says, also when this future is dropped midway.
    ///
    /// # Errors
    /// [`IngestError`]: what stopped the bytes, or the completion's failure.
    pub async fn ingest<S, E>(
        &self,
        target: &IngestTarget,
        declared: Option<u64>,
        body: S,
        token: Uuid,
        trigger: Trigger,
        on_failure: OnFailure,
    ) -> Result<Outcome, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut abandoned = Abandoned {
            ingest: self,
            target,
            trigger,
            on_failure,
            armed: true,
        };
        // The completion inspects what was written; nothing needs the whole digest.
        let stored = self.upload(target, declared, body, token, false).await;
        abandoned.armed = false;
        match stored {
            Ok(_) => {
                let outcome = self
                    .completer
                    .complete(
                        target.id,
                        filegate_db::completion::Reach::default(),
                        trigger,
                        true,
                    )
                    .await?;
                if matches!(outcome, Outcome::Ready(_))
                    && KeyKind::of(&target.upload_key) == KeyKind::Upload
                {
                    // A staged upload of a file filegate filled itself: it goes now
                    // rather than when a URL would have expired. (A form upload or an
                    // import was written to its object key: nothing to delete.)
                    self.completer.delete_now(&target.upload_key).await;
                }
                Ok(outcome)
            }
            Err(e) => {
                if e.gives_up(on_failure) {
                    // The lease goes first: a rejection is a completion, which does not
                    // claim a file whose bytes are still said to stream.
                    if let Err(e) =
                        filegate_db::files::release_ingest(&self.pool, target.id, token).await
                    {
                        tracing::warn!(error = %e, file = %target.id, "could not release an ingest's lease; it lapses by itself");
                    }
                    give_up(
                        self.clone(),
                        target.clone(),
                        e.to_string(),
                        trigger,
                        on_failure,
                    )
                    .await;
                }
                Err(e)
            }
        }
    }

    /// Uploads this process may start now.
    #[must_use]
    pub fn room(&self) -> usize {
        self.permits.available_permits()
    }

    /// Streams `body` (of `declared` length, when the client said) into `target`'s
    /// upload key.
    ///
    /// # Errors
    /// [`IngestError`]: nothing was written (what a multipart upload wrote is aborted).
    pub async fn upload<S, E>(
        &self,
        target: &IngestTarget,
        declared: Option<u64>,
        body: S,
        token: Uuid,
        whole_digest: bool,
    ) -> Result<Stored, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let result = self.run(target, declared, body, token, whole_digest).await;
        match &result {
            Ok(stored) => metrics::ingest(
                IngestOutcome::Stored,
                u64::try_from(stored.size).unwrap_or_default(),
            ),
            Err(e) => metrics::ingest(e.outcome(), 0),
        }
        result
    }

    async fn run<S, E>(
        &self,
        target: &IngestTarget,
        declared: Option<u64>,
        mut body: S,
        token: Uuid,
        whole_digest: bool,
    ) -> Result<Stored, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limit = u64::try_from(target.reserved_bytes).unwrap_or_default();
        if declared.is_some_and(|n| n > limit) {
            return Err(IngestError::TooLarge { limit });
        }
        if target.status != FileStatus::Pending {
            return Err(IngestError::Settled(target.status));
        }
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| IngestError::Busy)?;
        let mut run = Run::start(self, target, permit, token).await?;
        let part_size = self.settings.part_size;
        let started = Instant::now();
        // Time spent on filegate's side (waiting for a buffer, writing a part): the
        // client is not read meanwhile, so its rate is not held against it.
        let mut paused = Duration::ZERO;
        let mut whole = whole_digest.then(Sha256::new);
        let mut received: u64 = 0;
        let mut buf: Option<PartBuffer> = None;
        loop {
            let wait = self.wait_for_more(started.elapsed().saturating_sub(paused), received);
            let next = tokio::time::timeout(wait, body.next())
                .await
                .map_err(|_| IngestError::TooSlow)?;
            let mut chunk = match next {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(IngestError::Body(e.to_string())),
            };
            received = received.saturating_add(chunk.len() as u64);
            if received > limit {
                return Err(IngestError::TooLarge { limit });
            }
            if let Some(whole) = whole.as_mut() {
                whole.update(&chunk);
            }
            while !chunk.is_empty() {
                // A part goes only once more bytes than a part are here: a body that
                // ends at a part's length is one PutObject, and a last part is never
                // empty.
                if let Some(full) = buf.take_if(|b| b.len() == part_size || b.room() == 0) {
                    let writing = Instant::now();
                    run.write_part(full.freeze()).await?;
                    paused += writing.elapsed();
                }
                let part = match &mut buf {
                    Some(part) => part,
                    None => {
                        // The part's whole buffer at once (what the body may still
                        // send, at most a part), out of the budget first: this upload
                        // holds none of it now, so waiting cannot deadlock.
                        let want = part_size.min(
                            usize::try_from(limit.saturating_sub(received) + chunk.len() as u64)
                                .unwrap_or(part_size),
                        );
                        let waiting = Instant::now();
                        let budget = self.buffer_budget(want).await?;
                        paused += waiting.elapsed();
                        let made = if want == part_size {
                            PartBuffer::part(&self.buffers, want, budget)
                        } else {
                            PartBuffer::new(want, declared.is_some(), budget)
                        };
                        buf.insert(made.map_err(|e| {
                            tracing::warn!(error = %e, "could not map an upload's buffer");
                            IngestError::Busy
                        })?)
                    }
                };
                let take = (part_size - part.len()).min(part.room()).min(chunk.len());
                part.extend(&chunk.split_to(take));
            }
            run.renew_if_due(LEASE).await?;
        }
        let size = i64::try_from(received).unwrap_or(i64::MAX);
        // The write may take as long as its bytes need: the lease covers it (renewed
        // only when what is left of it may not).
        let write = self.storage_bound(size);
        if run.renewed.elapsed() + write + LEASE / 3 > LEASE {
            run.renew(LEASE + write).await?;
        }
        let checksum = whole.map(|w| Checksum::from_digest(w.finalize().into()));
        let rest = buf.map(PartBuffer::freeze).unwrap_or_default();
        let (etag, checksum) = run.finish(rest, checksum).await?;
        Ok(Stored {
            size,
            checksum,
            etag,
        })
    }

    /// How long to wait for the next bytes: the idle timeout, or less when the body is
    /// behind the minimum rate's schedule (`reading`: the time spent waiting for the
    /// client so far).
    fn wait_for_more(&self, reading: Duration, received: u64) -> Duration {
        let s = &self.settings;
        #[allow(clippy::cast_precision_loss)] // A schedule need not be exact to the byte.
        let due = s.rate_grace
            + Duration::from_secs_f64(received as f64 / s.min_bytes_per_sec.max(1) as f64);
        let left = due.saturating_sub(reading);
        s.idle_timeout.min(left)
    }

    /// `bytes` of the buffers' budget, once other uploads have given back enough.
    async fn buffer_budget(&self, bytes: usize) -> Result<OwnedSemaphorePermit, IngestError> {
        let units = u32::try_from(kib(bytes)).unwrap_or(u32::MAX);
        Arc::clone(&self.memory)
            .acquire_many_owned(units)
            .await
            // The budget is never closed.
            .map_err(|_| IngestError::Busy)
    }

    /// Time for the store to take `bytes` written by filegate.
    fn storage_bound(&self, bytes: i64) -> Duration {
        #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
        Duration::from_secs_f64(bytes.max(0) as f64 / (8.0 * 1024.0 * 1024.0))
    }
}

/// An ingest under way; dropped before its bytes were had (the request went away, the
/// server is stopping), it gives its file up on a task of its own.
struct Abandoned<'a> {
    ingest: &'a Ingest,
    target: &'a IngestTarget,
    trigger: Trigger,
    on_failure: OnFailure,
    armed: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        // An import dropped midway (the server stopping) is tried again once its
        // lease lapses; only an upload whose request went away is given up.
        if !self.armed || self.on_failure != OnFailure::Delete {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // The file expires with its upload window.
        };
        runtime.spawn(give_up(
            self.ingest.clone(),
            self.target.clone(),
            "the upload stopped before its bytes arrived".to_owned(),
            self.trigger,
            self.on_failure,
        ));
    }
}

/// Deletes or rejects a file whose bytes could not be had. A failure here leaves the
/// file pending with nothing written, and the reaper expires it with its window.
async fn give_up(
    ingest: Ingest,
    target: IngestTarget,
    reason: String,
    trigger: Trigger,
    on_failure: OnFailure,
) {
    match on_failure {
        OnFailure::Delete => {
            match filegate_db::files::delete(
                &ingest.pool,
                target.id,
                target.workspace_id,
                ingest.settings.upload_margin,
            )
            .await
            {
                Ok(Some(key)) => {
                    ingest.completer.delete_now(&key).await;
                    ingest.completer.delete_now(&target.upload_key).await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, file = %target.id, "could not delete a file whose upload failed; it expires with its window");
                }
            }
        }
        OnFailure::Reject => {
            if let Err(e) = ingest.completer.fail(target.id, reason, trigger).await {
                tracing::warn!(error = %e, file = %target.id, "could not reject a file whose import failed; it expires with its window");
            }
        }
    }
}

/// One upload under way: its lease, and the multipart upload it started, if any. When
/// dropped before it finished, it aborts that upload and gives the lease back on a
/// task of its own.
struct Run<'a> {
    ingest: &'a Ingest,
    target: &'a IngestTarget,
    token: Uuid,
    renewed: Instant,
    multipart: Option<(String, Vec<StoredPart>)>,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl<'a> Run<'a> {
    async fn start(
        ingest: &'a Ingest,
        target: &'a IngestTarget,
        permit: OwnedSemaphorePermit,
        token: Uuid,
    ) -> Result<Self, IngestError> {
        let mut run = Self {
            ingest,
            target,
            token,
            renewed: Instant::now(),
            multipart: None,
            done: false,
            _permit: permit,
        };
        run.renew(LEASE).await.map_err(|e| match e {
            // Taking it: another holder is an upload under way, not a lost lease.
            IngestError::Settled(FileStatus::Pending) => IngestError::InProgress,
            e => e,
        })?;
        Ok(run)
    }

    /// Holds the lease for `length` from now; an error when the file is settled, gone
    /// or (after a lapse) another upload's.
    async fn renew(&mut self, length: Duration) -> Result<(), IngestError> {
        let lease =
            filegate_db::files::lease_ingest(&self.ingest.pool, self.target.id, self.token, length)
                .await?;
        self.renewed = Instant::now();
        match lease {
            Lease::Held(_) => Ok(()),
            Lease::Busy => Err(IngestError::Settled(FileStatus::Pending)),
            Lease::Settled(status) => Err(IngestError::Settled(status)),
            Lease::Gone => Err(IngestError::Gone),
        }
    }

    async fn renew_if_due(&mut self, length: Duration) -> Result<(), IngestError> {
        if self.renewed.elapsed() < length / 3 {
            return Ok(());
        }
        self.renew(length).await.map_err(|e| match e {
            // A lease that lapsed to another upload: this one stops.
            IngestError::Settled(FileStatus::Pending) => IngestError::InProgress,
            e => e,
        })
    }

    /// Writes one part (starting the multipart upload with the first).
    async fn write_part(&mut self, part: Bytes) -> Result<(), IngestError> {
        let storage = &self.ingest.storage;
        let key = &self.target.upload_key;
        if self.multipart.is_none() {
            let id = storage
                .create_multipart(key, self.target.content_type.mime())
                .await?;
            self.multipart = Some((id, Vec::new()));
        }
        let Some((upload_id, parts)) = &mut self.multipart else {
            return Err(IngestError::Store(filegate_storage::misbehaved(
                "no multipart upload".into(),
            )));
        };
        let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
        let checksum = Checksum::from_digest(Sha256::digest(&part).into());
        let stored = storage
            .upload_part(key, upload_id, number, part, checksum)
            .await?;
        parts.push(stored);
        Ok(())
    }

    /// Writes what is left: the whole body in one `PutObject`, or the last part and
    /// the assembly. Then gives the lease back and, when the file was settled or
    /// deleted meanwhile, deletes what it wrote (nobody will complete it).
    async fn finish(
        mut self,
        rest: Bytes,
        whole: Option<Checksum>,
    ) -> Result<(Option<String>, Option<Checksum>), IngestError> {
        let storage = &self.ingest.storage;
        let key = self.target.upload_key.clone();
        let (etag, whole) = if self.multipart.is_none() {
            // One part: its digest is the whole body's.
            let checksum =
                whole.unwrap_or_else(|| Checksum::from_digest(Sha256::digest(&rest).into()));
            let etag = storage
                .put_object(&key, rest, self.target.content_type.mime(), checksum)
                .await?;
            (etag, Some(checksum))
        } else {
            self.write_part(rest).await?;
            let Some((upload_id, parts)) = &self.multipart else {
                return Err(IngestError::Store(filegate_storage::misbehaved(
                    "no multipart upload".into(),
                )));
            };
            match storage.complete_multipart(&key, upload_id, parts).await? {
                filegate_storage::Assembled::Done => {}
                other => {
                    return Err(IngestError::Store(filegate_storage::misbehaved(format!(
                        "the store did not assemble the parts it took: {other:?}"
                    ))));
                }
            }
            (None, whole)
        };
        self.multipart = None;
        self.done = true;
        let now =
            filegate_db::files::release_ingest(&self.ingest.pool, self.target.id, self.token).await;
        match now {
            Ok(Some(FileStatus::Pending)) => Ok((etag, whole)),
            Ok(settled) => {
                // Written after the file was deleted or expired under the lease: nobody
                // completes it, and its queued deletion may have run already. (A file
                // cannot have become ready meanwhile: no completion claims a file whose
                // lease is live; its key is never deleted here.)
                if settled != Some(FileStatus::Ready)
                    && KeyKind::of(&key) != KeyKind::Foreign
                    && let Err(e) = storage.delete(&key).await
                {
                    tracing::warn!(error = %e, key, "could not delete an upload that landed after its file settled; reconciliation will");
                }
                Err(settled.map_or(IngestError::Gone, IngestError::Settled))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime left: the lease lapses; the sweep aborts the upload.
        };
        let (pool, storage) = (self.ingest.pool.clone(), self.ingest.storage.clone());
        let (id, token, key) = (self.target.id, self.token, self.target.upload_key.clone());
        let multipart = self.multipart.take().map(|(upload_id, _)| upload_id);
        runtime.spawn(async move {
            if let Some(upload_id) = multipart
                && let Err(e) = storage.abort_multipart(&key, &upload_id).await
            {
                tracing::warn!(error = %e, key, "could not abort a failed upload's parts; the sweep of uploads no file owns will");
            }
            if let Err(e) = filegate_db::files::release_ingest(&pool, id, token).await {
                tracing::warn!(error = %e, file = %id, "could not give back an upload's lease; it lapses by itself");
            }
        });
    }
}
