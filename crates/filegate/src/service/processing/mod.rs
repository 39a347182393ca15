//! Processing after `ready`: a [`Processor`] per type derives files from a ready file
//! (a video's frames), run by a worker in every replica from a job queue in Postgres.
//!
//! A job is written by the statement that makes its file ready (see the V15
//! migration). A run claims it under a lease its heartbeat renews, downloads the
//! verified version (by ETag) into a private directory, runs the processor's tools as
//! bounded child processes, uploads what they made under the file's own prefix
//! (`derived/{workspace}/{file}/{run}/…`), and records it all in one transaction: the
//! derived objects' rows, their bytes added to the file's held bytes (so to the
//! workspace's used bytes, within its quota), the metadata, the job done. A run that
//! loses its lease or its file deletes what it uploaded; one that dies leaves objects
//! no row owns, which reconciliation finds. The file stays ready throughout.
//!
//! Adding a processor is one module: implement [`Processor`] and list it in
//! [`available`].

mod child;
pub mod video;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use filegate_db::Pool;
use filegate_db::processing::{self, Claimed, Failed, Finished, NewDerived};
use filegate_domain::Checksum;
use filegate_storage::Storage;
use futures_util::{StreamExt as _, TryStreamExt as _};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use child::Bounds;

use crate::metrics::{self, ProcessingRun};
use crate::settings::ProcessingSettings;

/// A boxed future (processors are held as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Derives files from a ready file of its types.
pub trait Processor: Send + Sync + 'static {
    /// Its name: what `--processors` lists and jobs record.
    fn name(&self) -> &'static str;
    /// The types it processes (canonical MIME types).
    fn content_types(&self) -> &'static [&'static str];
    /// Whether its tools are at hand (run at start, in a scratch directory).
    fn check<'a>(&'a self, dir: &'a Path, bounds: Bounds) -> BoxFuture<'a, Result<(), String>>;
    /// Derives files from `input` (a file name in `dir`, the verified object's bytes,
    /// of `content_type`), writing them under `dir`, with its tools bounded by `bounds`.
    fn process<'a>(
        &'a self,
        dir: &'a Path,
        input: &'a str,
        content_type: &'a str,
        bounds: Bounds,
    ) -> BoxFuture<'a, Result<Output, Failure>>;
}

/// What a processor made of a file.
#[derive(Debug)]
pub struct Output {
    /// What it learnt of the file (a video's `video_metadata`).
    pub metadata: serde_json::Value,
    /// The files it derived, in order.
    pub derived: Vec<DerivedFile>,
}

/// A file a processor derived, on disk.
#[derive(Debug)]
pub struct DerivedFile {
    /// What it is (`frame`).
    pub kind: &'static str,
    /// Its number among its kind, from 1.
    pub seq: i32,
    pub path: PathBuf,
    pub content_type: &'static str,
    pub extension: &'static str,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The file's own fault (malformed, hostile, past a bound): not retried.
    #[error("{0}")]
    Input(String),
    /// The host's or the store's: retried with backoff.
    #[error("{0}")]
    Transient(String),
}

/// The processors `names` asks for.
///
/// # Errors
/// A name no processor has.
pub fn available(
    names: &[String],
    settings: &ProcessingSettings,
) -> Result<Vec<Arc<dyn Processor>>, String> {
    let mut out: Vec<Arc<dyn Processor>> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let p: Arc<dyn Processor> = match name {
            "video" => Arc::new(video::Video::new(settings)),
            other => return Err(format!("no processor is named {other:?} (known: video)")),
        };
        if !out.iter().any(|q| q.name() == p.name()) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Scratch directories of runs older than this are a dead process's: a live run's is
/// younger than its download and its time bound.
const SCRATCH_STALE: Duration = Duration::from_secs(24 * 3600);

/// Removes the scratch directories runs of a killed process left in `TMPDIR` (a run
/// removes its own when it ends), once they are older than a run can be.
fn sweep_scratch(settings: &ProcessingSettings) {
    let stale = SCRATCH_STALE.max(settings.processing_timeout * 2);
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > stale));
        if old
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(SCRATCH_PREFIX)
        {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(dir = %entry.path().display(), "removed a stale processing directory")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not remove a stale processing directory")
                }
            }
        }
    }
}

/// The prefix of a run's scratch directory.
const SCRATCH_PREFIX: &str = "filegate-processing-";

/// This replica, as a job's `worker` names it: `host/pid`.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{host}/{}", std::process::id())
}

/// The processing worker's services. Cheap to clone.
#[derive(Clone)]
pub struct Processing {
    pool: Pool,
    storage: Storage,
    settings: ProcessingSettings,
    processors: Arc<Vec<Arc<dyn Processor>>>,
}

impl std::fmt::Debug for Processing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.processors.iter().map(|p| p.name()).collect();
        f.debug_struct("Processing")
            .field("processors", &names)
            .finish_non_exhaustive()
    }
}

/// Derived files a run uploads at once.
const UPLOADS_AT_ONCE: usize = 4;

/// How long a start-up check of a processor's tools may take.
const CHECK_BOUND: Duration = Duration::from_secs(30);

impl Processing {
    /// The processors `settings` names, their tools checked, and their types
    /// registered (so ready files of those types get jobs from now on). When the
    /// database cannot be reached now, the worker registers them when it starts.
    ///
    /// # Errors
    /// An unknown processor or a missing tool.
    pub async fn start(
        pool: Pool,
        storage: Storage,
        settings: &ProcessingSettings,
    ) -> Result<Self, String> {
        let processors = available(&settings.processors, settings)?;
        let scratch =
            tempfile::tempdir().map_err(|e| format!("could not make a scratch directory: {e}"))?;
        sweep_scratch(settings);
        for p in &processors {
            let bounds = Bounds {
                deadline: Instant::now() + CHECK_BOUND,
                memory_bytes: settings.processing_memory_bytes,
            };
            p.check(scratch.path(), bounds).await?;
        }
        let me = Self {
            pool,
            storage,
            settings: settings.clone(),
            processors: Arc::new(processors),
        };
        // Only a replica that runs a worker registers: a type is processed once some
        // replica will take its jobs up.
        if me.runs_worker()
            && let Err(e) = me.register().await
        {
            tracing::warn!(error = %e, "could not register the processors; the worker will");
        }
        Ok(me)
    }

    /// Registers every processor's types.
    async fn register(&self) -> Result<(), filegate_db::DbError> {
        for p in self.processors.iter() {
            processing::register(&self.pool, p.name(), p.content_types()).await?;
        }
        Ok(())
    }

    /// Whether this replica runs a processing worker (a processor, and a poll).
    #[must_use]
    pub fn runs_worker(&self) -> bool {
        !self.processors.is_empty() && !self.settings.processing_poll.is_zero()
    }

    /// Gives the jobs this replica's worker holds back to the queue, their run not
    /// counted (at shutdown, once its runs are stopped): a rolling deploy costs a job
    /// neither its lease's wait nor one of its attempts.
    pub async fn release(&self) {
        if !self.runs_worker() {
            return;
        }
        match processing::release(&self.pool, &worker_id()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "gave processing jobs back to the queue"),
            Err(e) => {
                tracing::warn!(error = %e, "could not give processing jobs back; their leases will")
            }
        }
    }

    /// Claims and runs jobs until the task is dropped (runs in flight with it: their
    /// leases bring their jobs back).
    pub async fn run(self) {
        const SAMPLE_EVERY: Duration = Duration::from_secs(10);
        const BACKOFF: Duration = Duration::from_secs(1);
        let names: Vec<String> = self
            .processors
            .iter()
            .map(|p| p.name().to_owned())
            .collect();
        while let Err(e) = self.register().await {
            tracing::warn!(error = %e, "could not register the processors; will retry");
            tokio::time::sleep(BACKOFF).await;
        }
        let worker = worker_id();
        let mut runs = JoinSet::new();
        let mut sampled: Option<Instant> = None;
        loop {
            while runs.try_join_next().is_some() {}
            if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                sampled = Some(Instant::now());
                self.sample_queue().await;
            }
            let free = self
                .settings
                .processing_concurrency
                .saturating_sub(runs.len());
            if free == 0 {
                runs.join_next().await;
                continue;
            }
            let limit = i64::try_from(free).unwrap_or(1);
            let claimed = processing::claim(
                &self.pool,
                &names,
                limit,
                self.settings.processing_lease,
                &worker,
            )
            .await;
            match claimed {
                Ok(claimed) if !claimed.is_empty() => {
                    for job in claimed {
                        let me = self.clone();
                        runs.spawn(async move { me.run_job(job).await });
                    }
                }
                Ok(_) => tokio::time::sleep(self.settings.processing_poll).await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim processing jobs; will retry");
                    tokio::time::sleep(BACKOFF.max(self.settings.processing_poll)).await;
                }
            }
        }
    }

    async fn sample_queue(&self) {
        match processing::depth(&self.pool).await {
            Ok(d) => {
                let g = &metrics::get().processing_queued;
                g.with_label_values(&["queued"]).set(d.queued);
                g.with_label_values(&["running"]).set(d.running);
            }
            Err(e) => tracing::debug!(error = %e, "could not count the processing queue"),
        }
    }

    /// One run of a claimed job, its lease renewed while it works; what it ended in.
    pub async fn run_job(&self, job: Claimed) -> ProcessingRun {
        let started = std::time::Instant::now();
        let outcome = self.heartbeating(&job).await;
        let m = metrics::get();
        m.processing_runs
            .with_label_values(&[job.processor.as_str(), outcome.as_str()])
            .inc();
        m.processing_duration
            .with_label_values(&[job.processor.as_str()])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn heartbeating(&self, job: &Claimed) -> ProcessingRun {
        let lease = self.settings.processing_lease;
        let beat = async {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match processing::heartbeat(&self.pool, job.file_id, job.run_token, lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    // The lease may still hold: try again at the next beat.
                    Err(e) => {
                        tracing::warn!(error = %e, file = %job.file_id, "could not renew a processing lease")
                    }
                }
            }
        };
        let uploaded = std::sync::Mutex::new(Vec::new());
        let outcome = tokio::select! {
            // The run first: when both are ready, its own outcome is the truer one.
            biased;
            outcome = self.attempt(job, &uploaded) => outcome,
            () = beat => {
                tracing::warn!(file = %job.file_id, "a processing run lost its job; stopping it");
                ProcessingRun::Lost
            }
        };
        if outcome == ProcessingRun::Completed {
            return outcome;
        }
        let keys = std::mem::take(
            &mut *uploaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.remove(job, keys, outcome).await
    }

    /// Deletes a run's uploads that no row records, and says what the run ended in. A
    /// run whose heartbeat found the job gone may have recorded its frames just before
    /// (the beat's update waited for the record's commit): those are the file's, never
    /// deleted; when the rows cannot be read, nothing is (reconciliation finds what is
    /// left).
    async fn remove(
        &self,
        job: &Claimed,
        keys: Vec<String>,
        outcome: ProcessingRun,
    ) -> ProcessingRun {
        if keys.is_empty() {
            return outcome;
        }
        let recorded = match processing::recorded(&self.pool, &keys).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::warn!(error = %e, file = %job.file_id, "could not tell a run's uploads from its record; leaving them");
                return outcome;
            }
        };
        if !recorded.is_empty() {
            return ProcessingRun::Completed;
        }
        for key in &keys {
            if let Err(e) = self.storage.delete(key).await {
                tracing::warn!(error = %e, key, "could not delete a derived object no file owns");
            }
        }
        outcome
    }

    async fn attempt(
        &self,
        job: &Claimed,
        uploaded: &std::sync::Mutex<Vec<String>>,
    ) -> ProcessingRun {
        let result = if job.attempts > self.settings.processing_max_attempts {
            Err(Failure::Input(format!(
                "processing stopped before it finished {} times (its replica died or lost the job)",
                job.attempts - 1
            )))
        } else {
            self.derive(job, uploaded).await
        };
        let failure = match result {
            Ok((metadata, derived)) => {
                return match processing::complete(
                    &self.pool,
                    job.file_id,
                    job.run_token,
                    &metadata,
                    &derived,
                )
                .await
                {
                    Ok(Finished::Completed) => {
                        for d in &derived {
                            metrics::get()
                                .derived_files
                                .with_label_values(&[d.kind.as_str()])
                                .inc();
                        }
                        tracing::info!(file = %job.file_id, processor = job.processor, derived = derived.len(), "processed a file");
                        ProcessingRun::Completed
                    }
                    Ok(Finished::QuotaFull) => {
                        tracing::info!(file = %job.file_id, "no room in the quota for a file's derived files");
                        ProcessingRun::Failed
                    }
                    Ok(Finished::Lost) => ProcessingRun::Lost,
                    Err(e) => {
                        tracing::warn!(error = %e, file = %job.file_id, "could not record a processing run; its lease brings it back");
                        ProcessingRun::Lost
                    }
                };
            }
            Err(f) => f,
        };
        let retry_in = match &failure {
            Failure::Transient(_) if job.attempts < self.settings.processing_max_attempts => {
                Some(self.backoff(job.attempts))
            }
            Failure::Transient(_) | Failure::Input(_) => None,
        };
        let reason = failure.to_string();
        match processing::fail(&self.pool, job.file_id, job.run_token, &reason, retry_in).await {
            Ok(Failed::Retried) => {
                tracing::info!(file = %job.file_id, reason, "a processing run failed; will retry");
                ProcessingRun::Retried
            }
            Ok(Failed::Dead) => {
                tracing::info!(file = %job.file_id, reason, "a file's processing failed");
                ProcessingRun::Failed
            }
            Ok(Failed::Lost) => ProcessingRun::Lost,
            Err(e) => {
                tracing::warn!(error = %e, file = %job.file_id, "could not record a failed processing run");
                ProcessingRun::Lost
            }
        }
    }

    /// The delay before retry `attempts` + 1: the base doubled per run, up to an hour.
    fn backoff(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        (self.settings.processing_retry_base * 2u32.pow(doublings)).min(Duration::from_secs(3600))
    }

    /// Downloads the verified object, runs the processor, uploads what it made.
    async fn derive(
        &self,
        job: &Claimed,
        uploaded: &std::sync::Mutex<Vec<String>>,
    ) -> Result<(serde_json::Value, Vec<NewDerived>), Failure> {
        let Some(processor) = self.processors.iter().find(|p| p.name() == job.processor) else {
            return Err(Failure::Transient(format!(
                "this replica has no {} processor",
                job.processor
            )));
        };
        let transient =
            |what: &str, e: &dyn std::fmt::Display| Failure::Transient(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir()
            .map_err(|e| transient("could not make a working directory", &e.kind()))?;
        let input = "input";
        let size = u64::try_from(job.size_bytes.unwrap_or(0)).unwrap_or(0);
        if size > self.settings.processing_max_input_bytes {
            return Err(Failure::Input(format!(
                "the file is larger than the {} bytes a processor takes",
                self.settings.processing_max_input_bytes
            )));
        }
        match self
            .storage
            .download_to(
                &job.object_key,
                job.etag.as_deref(),
                &dir.path().join(input),
                size,
            )
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Failure::Transient(
                    "the file's verified object is not in the store".to_owned(),
                ));
            }
            Err(e) => return Err(transient("could not read the file's object", &e)),
        }
        let bounds = Bounds {
            deadline: Instant::now() + self.settings.processing_timeout,
            memory_bytes: self.settings.processing_memory_bytes,
        };
        let output = processor
            .process(dir.path(), input, &job.content_type, bounds)
            .await?;
        // Frames that cannot fit the quota are not uploaded at all (the record checks
        // again, under the workspace's lock).
        let mut sizes = Vec::with_capacity(output.derived.len());
        for d in &output.derived {
            let meta = tokio::fs::metadata(&d.path)
                .await
                .map_err(|e| transient("could not read a derived file", &e.kind()))?;
            sizes.push(meta.len());
        }
        let total: u64 = sizes.iter().sum();
        let room = processing::room(&self.pool, job.workspace_id)
            .await
            .map_err(|e| transient("could not read the workspace's quota", &e))?;
        if i64::try_from(total).unwrap_or(i64::MAX) > room {
            return Err(Failure::Input(format!(
                "the workspace's quota has no room for the {} derived files ({total} bytes)",
                output.derived.len()
            )));
        }
        // Uploaded a few at a time: each is a round trip the next need not wait for.
        let put = |d: &DerivedFile| {
            let key = filegate_domain::keys::derived_key(
                job.workspace_id,
                job.file_id,
                job.attempts,
                d.kind,
                d.seq,
                d.extension,
            );
            // Noted before the PUT: a run that stops midway deletes what it may have sent.
            uploaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(key.clone());
            let (path, content_type) = (d.path.clone(), d.content_type);
            let (kind, seq) = (d.kind, d.seq);
            async move {
                let body = tokio::fs::read(&path)
                    .await
                    .map_err(|e| transient("could not read a derived file", &e.kind()))?;
                let digest: [u8; 32] = Sha256::digest(&body).into();
                let size_bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
                self.storage
                    .put_object(
                        &key,
                        body.into(),
                        content_type,
                        Checksum::from_digest(digest),
                    )
                    .await
                    .map_err(|e| transient("could not store a derived file", &e))?;
                Ok::<_, Failure>(NewDerived {
                    object_key: key,
                    kind: kind.to_owned(),
                    seq,
                    content_type: content_type.to_owned(),
                    size_bytes,
                })
            }
        };
        let mut derived: Vec<NewDerived> =
            futures_util::stream::iter(output.derived.iter().map(put))
                .buffer_unordered(UPLOADS_AT_ONCE)
                .try_collect()
                .await?;
        derived.sort_by_key(|d| d.seq);
        Ok((output.metadata, derived))
    }
}
