//! Every setting is a flag and an environment variable `FILEGATE_…`; `filegate --help`
//! and the README's table list them. Secrets have no defaults and their environment
//! values are never shown in `--help`; their `Debug` output is redacted. Durations are
//! given in whole seconds (`…_SECS`) or milliseconds (`…_MS`), checked against their
//! range, and held as [`Duration`]s.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use filegate_domain::{ContentType, Limits};
use secrecy::SecretString;
use uuid::Uuid;

/// How filegate logs.
#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log format.
    #[arg(long, env = "FILEGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` env-filter syntax (e.g. `info,filegate=debug`).
    #[arg(long, env = "FILEGATE_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `filegate serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub rate_limit: RateLimitSettings,
    #[command(flatten)]
    pub reaper: ReaperSettings,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    #[command(flatten)]
    pub processing: ProcessingSettings,
}

/// Processing after `ready`: the processors a replica runs (each needs its tools), the
/// worker that claims their jobs, and the bounds of each run.
#[derive(Debug, Clone, Args)]
pub struct ProcessingSettings {
    /// The processors this replica runs, comma-separated (`video`: frames of MP4 and
    /// WebM videos, with ffmpeg and ffprobe); empty: none. A processor's tools must be
    /// found at start.
    #[arg(
        long,
        env = "FILEGATE_PROCESSORS",
        value_delimiter = ',',
        default_value = "video"
    )]
    pub processors: Vec<String>,
    /// Jobs one replica runs at once (each is a child process). 1..=64.
    #[arg(long, env = "FILEGATE_PROCESSING_CONCURRENCY", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub processing_concurrency: usize,
    /// Milliseconds the worker waits before it looks for due jobs again once none are
    /// due (0: no worker in this replica). 0..=60000.
    #[arg(long = "processing-poll-ms", env = "FILEGATE_PROCESSING_POLL_MS", value_name = "MS",
          default_value = "1000", value_parser = millis::<0, 60_000>)]
    pub processing_poll: Duration,
    /// Seconds a claimed job is held without a heartbeat (the worker renews it every
    /// third of it): a replica that dies mid-job loses it this long after. 1..=3600.
    #[arg(long = "processing-lease-secs", env = "FILEGATE_PROCESSING_LEASE_SECS", value_name = "SECS",
          default_value = "30", value_parser = secs::<1, 3_600>)]
    pub processing_lease: Duration,
    /// Runs a job gets before it ends `failed` (a run that fails for a reason of the
    /// file's own, such as a malformed video, is not retried). 1..=100.
    #[arg(long, env = "FILEGATE_PROCESSING_MAX_ATTEMPTS", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub processing_max_attempts: i32,
    /// Milliseconds before a failed run's first retry; each later one waits twice as
    /// long, up to an hour. 10..=3600000.
    #[arg(long = "processing-retry-base-ms", env = "FILEGATE_PROCESSING_RETRY_BASE_MS", value_name = "MS",
          default_value = "10000", value_parser = millis::<10, 3_600_000>)]
    pub processing_retry_base: Duration,
    /// Milliseconds a processor's child processes may run for one file, all together;
    /// past it they are killed and the job fails. 100..=86400000.
    #[arg(long = "processing-timeout-ms", env = "FILEGATE_PROCESSING_TIMEOUT_MS", value_name = "MS",
          default_value = "300000", value_parser = millis::<100, 86_400_000>)]
    pub processing_timeout: Duration,
    /// Bytes a file may hold for a processor to take it (downloaded whole to
    /// `TMPDIR`); a larger one's processing fails. 1..=1 TiB.
    #[arg(long, env = "FILEGATE_PROCESSING_MAX_INPUT_BYTES", default_value_t = 1 << 30,
          value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    pub processing_max_input_bytes: u64,
    /// Bytes of address space each child process may map (its memory bound); past it
    /// its allocations fail and the job fails. 64 MiB..=64 GiB.
    #[arg(long, env = "FILEGATE_PROCESSING_MEMORY_BYTES", default_value_t = 2 << 30,
          value_parser = clap::value_parser!(u64).range(64 << 20..=64 << 30))]
    pub processing_memory_bytes: u64,
    /// Frames taken per second of video. 0.001..=60.
    #[arg(long, env = "FILEGATE_VIDEO_FRAME_RATE", default_value_t = 1.0,
          value_parser = frame_rate)]
    pub video_frame_rate: f64,
    /// The most frames taken from one video (the first ones, at the rate). 1..=10000.
    #[arg(long, env = "FILEGATE_VIDEO_MAX_FRAMES", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub video_max_frames: u32,
    /// The ffmpeg the video processor runs (a name on `PATH`, or a path).
    #[arg(long, env = "FILEGATE_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: String,
    /// The ffprobe the video processor runs (a name on `PATH`, or a path).
    #[arg(long, env = "FILEGATE_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: String,
    /// Seconds a frame URL (`GET /v2/files/{file_uuid}/frames`) stays valid. 1..=604800.
    #[arg(long = "frame-url-ttl-secs", env = "FILEGATE_FRAME_URL_TTL_SECS", value_name = "SECS",
          default_value = "1800", value_parser = secs::<1, 604_800>)]
    pub frame_url_ttl: Duration,
}

fn frame_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if (0.001..=60.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not within 0.001..=60"))
    }
}

/// Webhooks: the delivery worker every replica runs, its retries, and secret rotation.
/// Endpoint URLs pass the imports' SSRF guard (`--import-allowed-hosts` exempts hosts
/// from its address rules for webhooks too).
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Milliseconds the delivery worker waits before it looks for due deliveries again
    /// once none are due (0: no worker in this replica). 0..=60000.
    #[arg(long = "webhook-poll-ms", env = "FILEGATE_WEBHOOK_POLL_MS", value_name = "MS",
          default_value = "250", value_parser = millis::<0, 60_000>)]
    pub webhook_poll: Duration,
    /// Deliveries one replica sends at once. 1..=1000.
    #[arg(long, env = "FILEGATE_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub webhook_concurrency: usize,
    /// Seconds an endpoint has to answer a delivery (connecting included); longer is a
    /// failed attempt. 1..=300.
    #[arg(long = "webhook-timeout-secs", env = "FILEGATE_WEBHOOK_TIMEOUT_SECS", value_name = "SECS",
          default_value = "10", value_parser = secs::<1, 300>)]
    pub webhook_timeout: Duration,
    /// Milliseconds before a delivery's first retry; each later one waits twice as long
    /// (up to `--webhook-retry-max-secs`), each delay drawn between half and all of
    /// that. 10..=3600000.
    #[arg(long = "webhook-retry-base-ms", env = "FILEGATE_WEBHOOK_RETRY_BASE_MS", value_name = "MS",
          default_value = "5000", value_parser = millis::<10, 3_600_000>)]
    pub webhook_retry_base: Duration,
    /// The longest delay between two attempts of a delivery. 1..=604800.
    #[arg(long = "webhook-retry-max-secs", env = "FILEGATE_WEBHOOK_RETRY_MAX_SECS", value_name = "SECS",
          default_value = "43200", value_parser = secs::<1, 604_800>)]
    pub webhook_retry_max: Duration,
    /// Seconds a delivery is retried for, from its first attempt; then it fails, and
    /// an endpoint that acknowledged nothing in that time is disabled. 1..=2592000.
    #[arg(long = "webhook-retry-horizon-secs", env = "FILEGATE_WEBHOOK_RETRY_HORIZON_SECS", value_name = "SECS",
          default_value = "259200", value_parser = secs::<1, 2_592_000>)]
    pub webhook_retry_horizon: Duration,
    /// Seconds a rotated-out secret keeps signing deliveries beside the new one.
    /// 0..=2592000.
    #[arg(long = "webhook-secret-grace-secs", env = "FILEGATE_WEBHOOK_SECRET_GRACE_SECS", value_name = "SECS",
          default_value = "86400", value_parser = secs::<0, 2_592_000>)]
    pub webhook_secret_grace: Duration,
}

/// Uploads that stream through filegate: those of files whose size was not declared
/// (the store cannot be told their length, so filegate counts it).
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// The URL clients reach filegate at (scheme and authority, e.g.
    /// `https://files.example.com`), for the upload URLs filegate signs itself; unset:
    /// each request's own (its scheme and `Host`, or `Forwarded`/`X-Forwarded-*`).
    #[arg(long, env = "FILEGATE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Uploads one process streams at once; more are answered `503` with
    /// `Retry-After`. With `--ingest-buffer-bytes`, this bounds their memory. 1..=10000.
    #[arg(long, env = "FILEGATE_INGEST_MAX_CONCURRENT", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub ingest_max_concurrent: u32,
    /// Bytes an upload buffers before it writes a part to the store (a body of at most
    /// this many is one `PutObject`). 5 MiB..=64 MiB.
    #[arg(long, env = "FILEGATE_INGEST_BUFFER_BYTES", default_value_t = 8 << 20,
          value_parser = clap::value_parser!(u32).range(5 << 20..=64 << 20))]
    pub ingest_buffer_bytes: u32,
    /// Bytes all uploads of a process may buffer at once: an upload that needs a part's
    /// buffer while they are taken waits (reading nothing, so its client waits too)
    /// instead of growing memory. At least one part (`--ingest-buffer-bytes`).
    /// 5 MiB..=64 GiB.
    #[arg(long, env = "FILEGATE_INGEST_MEMORY_BYTES", default_value_t = 32 << 20,
          value_parser = clap::value_parser!(u64).range(5 << 20..=64 << 30))]
    pub ingest_memory_bytes: u64,
    /// Seconds an upload may wait for its next bytes before it is cut off (`408`).
    /// 1..=3600.
    #[arg(long = "ingest-idle-timeout-secs", env = "FILEGATE_INGEST_IDLE_TIMEOUT_SECS", value_name = "SECS",
          default_value = "30", value_parser = secs::<1, 3600>)]
    pub ingest_idle_timeout: Duration,
    /// The slowest average an upload may arrive at, in bytes a second, once its first
    /// `--ingest-rate-grace-secs` have passed (0: only the idle timeout applies).
    #[arg(
        long,
        env = "FILEGATE_INGEST_MIN_BYTES_PER_SEC",
        default_value_t = 16_384
    )]
    pub ingest_min_bytes_per_sec: u64,
    /// Seconds an upload may take before the minimum rate applies. 0..=3600.
    #[arg(long = "ingest-rate-grace-secs", env = "FILEGATE_INGEST_RATE_GRACE_SECS", value_name = "SECS",
          default_value = "10", value_parser = secs::<0, 3600>)]
    pub ingest_rate_grace: Duration,
    /// Hosts `remote_uri` imports may reach whatever their addresses (comma-separated
    /// `host` or `host:port`, an IPv6 address in brackets): internal sources an
    /// operator trusts. Every other host must resolve to public addresses only.
    #[arg(long, env = "FILEGATE_IMPORT_ALLOWED_HOSTS", value_delimiter = ',',
          value_parser = parse_allowed_host)]
    pub import_allowed_hosts: Vec<crate::service::imports::guard::AllowedHost>,
    /// Seconds one import may take, from its request to its last byte. 1..=86400.
    #[arg(long = "import-timeout-secs", env = "FILEGATE_IMPORT_TIMEOUT_SECS", value_name = "SECS",
          default_value = "600", value_parser = secs::<1, 86_400>)]
    pub import_timeout: Duration,
    /// Seconds between passes of the import worker in `serve`, which takes up imports
    /// whose replica died (new imports start at once) (0: none). 0..=3600.
    #[arg(long = "import-interval-secs", env = "FILEGATE_IMPORT_INTERVAL_SECS", value_name = "SECS",
          default_value = "10", value_parser = secs::<0, 3600>)]
    pub import_interval: Duration,
}

fn parse_allowed_host(raw: &str) -> Result<crate::service::imports::guard::AllowedHost, String> {
    crate::service::imports::guard::AllowedHost::parse(raw)
}

/// A public URL: `http` or `https`, an authority, and no query or fragment; kept
/// without a trailing slash.
fn parse_public_url(raw: &str) -> Result<String, String> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or("the public URL must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') || raw.contains(['?', '#', ' ']) {
        return Err("the public URL must name a host, with no query or fragment".into());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// `POST /v2/events/s3`: S3 event notifications that complete files at once.
#[derive(Debug, Clone, Args)]
pub struct EventSettings {
    /// Shared secret S3 event deliveries must present (`Authorization: Bearer <secret>`,
    /// the bare secret, or HTTP Basic with the secret as password). Unset: the event
    /// route refuses every delivery.
    #[arg(long, env = "FILEGATE_EVENTS_SECRET", hide_env_values = true,
          value_parser = parse_events_secret)]
    pub events_secret: Option<SecretString>,
}

/// An events secret: 16 to 1024 visible ASCII characters, so it fits any header.
fn parse_events_secret(s: &str) -> Result<SecretString, String> {
    if (16..=1024).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.into())
    } else {
        Err("the events secret must be 16 to 1024 visible ASCII characters".into())
    }
}

/// The background work of every replica: the reaper of abandoned uploads and queued
/// deletions, the finalizer that completes uploads nobody completed, and the slow
/// reconciliation of the bucket with the database.
#[derive(Debug, Clone, Args)]
pub struct ReaperSettings {
    /// Seconds between reaper passes in `serve` (0: no background reaper, e.g. when a
    /// cron job runs `filegate reap --once`). 0..=86400.
    #[arg(long = "reaper-interval-secs", env = "FILEGATE_REAPER_INTERVAL_SECS", value_name = "SECS", default_value = "30",
          value_parser = secs::<0, 86_400>)]
    pub reaper_interval: Duration,
    /// Seconds past a file's upload expiry before it is expired, so a completion racing
    /// the deadline still wins. 0..=86400.
    #[arg(long = "reaper-grace-secs", env = "FILEGATE_REAPER_GRACE_SECS", value_name = "SECS", default_value = "60",
          value_parser = secs::<0, 86_400>)]
    pub reaper_grace: Duration,
    /// Rows per reaper statement.
    #[arg(long, env = "FILEGATE_REAPER_BATCH", default_value_t = 100,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub reaper_batch: i64,
    /// Seconds a rejected or expired file's row is kept (its status and reason stay
    /// readable) before the reaper deletes it. 86400..=315360000 (at least the
    /// 24 hours an Idempotency-Key replays).
    #[arg(long = "settled-retention-secs", env = "FILEGATE_SETTLED_RETENTION_SECS", value_name = "SECS",
          default_value = "604800", value_parser = secs::<86_400, 315_360_000>)]
    pub settled_retention: Duration,
    /// Seconds after an upload URL expires during which a PUT that started in time may
    /// still land: final deletions of rejected, expired and deleted files' uploads wait
    /// this long, and reconciliation never deletes an unowned object younger than the
    /// upload URL lifetime plus this. 0..=604800.
    #[arg(long = "upload-margin-secs", env = "FILEGATE_UPLOAD_MARGIN_SECS", value_name = "SECS", default_value = "900",
          value_parser = secs::<0, 604_800>)]
    pub upload_margin: Duration,
    /// Seconds between finalizer passes in `serve`, which look for uploads of pending
    /// files that nobody completed (0: no finalizer). 0..=3600.
    #[arg(long = "finalizer-interval-secs", env = "FILEGATE_FINALIZER_INTERVAL_SECS", value_name = "SECS", default_value = "1",
          value_parser = secs::<0, 3600>)]
    pub finalizer_interval: Duration,
    /// Seconds before the finalizer's first look at a new pending file, and the shortest
    /// gap between two looks; gaps then grow with the file's age. 1..=3600.
    #[arg(long = "finalizer-min-interval-secs", env = "FILEGATE_FINALIZER_MIN_INTERVAL_SECS", value_name = "SECS", default_value = "2",
          value_parser = secs::<1, 3600>)]
    pub finalizer_min_interval: Duration,
    /// The longest gap between two looks at one pending file. 1..=86400.
    #[arg(long = "finalizer-max-interval-secs", env = "FILEGATE_FINALIZER_MAX_INTERVAL_SECS", value_name = "SECS", default_value = "60",
          value_parser = secs::<1, 86_400>)]
    pub finalizer_max_interval: Duration,
    /// Pending files claimed per finalizer statement.
    #[arg(long, env = "FILEGATE_FINALIZER_BATCH", default_value_t = 64,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub finalizer_batch: i64,
    /// Most files one claiming or settling statement takes for concurrent completions
    /// (a batch's files always go together); completions that reach their claim or
    /// settlement while one statement runs share the next, so each pays a fraction
    /// of a commit. 0: every completion claims and settles in statements of its own.
    /// 0..=10000.
    #[arg(long, env = "FILEGATE_COMPLETION_GROUP_MAX", default_value_t = 256,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    pub completion_group_max: usize,
    /// Most files one reservation statement takes for concurrent requests of up to 8
    /// files without an `Idempotency-Key` (a request's files always go together, all
    /// or none of them); requests that reserve while one statement runs share the next, so each
    /// pays a fraction of a commit and of the workspace row's lock. 0: every request
    /// reserves in a statement of its own. 0..=10000.
    #[arg(long, env = "FILEGATE_RESERVATION_GROUP_MAX", default_value_t = 256,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    pub reservation_group_max: usize,
    /// Seconds between reconciliation passes in `serve` (0: none; `filegate reconcile`
    /// runs one). One replica at a time runs a pass. 0..=604800.
    #[arg(long = "reconcile-interval-secs", env = "FILEGATE_RECONCILE_INTERVAL_SECS", value_name = "SECS", default_value = "3600",
          value_parser = secs::<0, 604_800>)]
    pub reconcile_interval: Duration,
}

#[derive(Debug, Args)]
pub struct ReapArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub reaper: ReaperSettings,
    /// One pass, then exit (prints a JSON report).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub reaper: ReaperSettings,
    /// Report what would be deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON (default: a summary in plain text).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FILEGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "FILEGATE_WORKERS")]
    pub workers: Option<usize>,
    /// Largest accepted request body, in bytes; larger bodies get 413. 1024..=67108864.
    #[arg(long, env = "FILEGATE_MAX_BODY_BYTES", default_value_t = 1 << 20,
          value_parser = body_size)]
    pub max_body_bytes: usize,
    /// Browser origins allowed to upload to and download from the bucket (comma-separated);
    /// applied to the bucket's CORS at start when `--s3-create-bucket` or `--s3-apply-cors` is on.
    #[arg(long, env = "FILEGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Seconds in-flight requests get to finish after SIGTERM. 0..=3600.
    #[arg(long = "shutdown-timeout-secs", env = "FILEGATE_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS", default_value = "30",
          value_parser = secs::<0, 3600>)]
    pub shutdown_timeout: Duration,
    /// Seconds an API key lookup is cached; a revocation takes effect within this time.
    /// 0..=3600.
    #[arg(long = "auth-cache-ttl-secs", env = "FILEGATE_AUTH_CACHE_TTL_SECS", value_name = "SECS", default_value = "5",
          value_parser = secs::<0, 3600>)]
    pub auth_cache_ttl: Duration,
    /// Apply database migrations before serving.
    #[arg(long, env = "FILEGATE_MIGRATE_ON_START")]
    pub migrate_on_start: bool,
    /// Serve the browser upload page at `/` (it uses the API with a key the user pastes;
    /// list the page's origin in `--cors-origins` so browsers may PUT to the bucket).
    #[arg(long, env = "FILEGATE_UPLOAD_PAGE")]
    pub upload_page: bool,
    /// Serve `/metrics` on this address only (e.g. `0.0.0.0:9090`, for the scraper's
    /// network), and not on the API's; unset: `/metrics` is on the API's address.
    #[arg(long, env = "FILEGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// Postgres URL, e.g. `postgres://filegate:secret@db:5432/filegate`.
    #[arg(long, env = "FILEGATE_DATABASE_URL", hide_env_values = true, value_parser = secret)]
    pub database_url: SecretString,
    /// Most Postgres connections per process (reconciliation holds one while it uses
    /// another). 2..=1000.
    #[arg(long, env = "FILEGATE_DATABASE_POOL_SIZE", default_value_t = 16,
          value_parser = pool_size)]
    pub database_pool_size: usize,
    /// Milliseconds to wait for a connection (connecting or from the pool) before 503.
    /// 100..=600000.
    #[arg(long = "database-timeout-ms", env = "FILEGATE_DATABASE_TIMEOUT_MS", value_name = "MS", default_value = "3000",
          value_parser = millis::<100, 600_000>)]
    pub database_timeout: Duration,
    /// Server-side statement timeout, in milliseconds. 100..=3600000.
    #[arg(long = "database-statement-timeout-ms", env = "FILEGATE_DATABASE_STATEMENT_TIMEOUT_MS", value_name = "MS", default_value = "10000",
          value_parser = millis::<100, 3_600_000>)]
    pub database_statement_timeout: Duration,
    /// CA bundle (PEM) that a verifying `sslmode` (`verify-ca`, `verify-full`, or
    /// `require` with a CA) checks the server's certificate against; default: the URL's
    /// `sslrootcert`, else the system's roots.
    #[arg(long, env = "FILEGATE_DATABASE_CA_FILE")]
    pub database_ca_file: Option<String>,
}

impl DatabaseSettings {
    /// The pool settings for `filegate-db`.
    #[must_use]
    pub fn pool(&self) -> filegate_db::PoolSettings {
        filegate_db::PoolSettings {
            url: self.database_url.clone(),
            ca_file: self.database_ca_file.clone(),
            max_size: self.database_pool_size,
            connect_timeout: self.database_timeout,
            statement_timeout: self.database_statement_timeout,
        }
    }
}

/// A secret setting: `Debug` prints `[REDACTED]`, and reading it takes `expose_secret`.
#[allow(clippy::unnecessary_wraps)] // clap's value parsers return a Result.
fn secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(s.into())
}

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// S3 endpoint filegate talks to (e.g. `http://minio:9000`); unset for AWS S3.
    #[arg(long, env = "FILEGATE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 endpoint clients reach, signed into presigned URLs (default: `--s3-endpoint`).
    #[arg(long, env = "FILEGATE_S3_PUBLIC_ENDPOINT")]
    pub s3_public_endpoint: Option<String>,
    /// Signing region (Garage: its `s3_region`).
    #[arg(long, env = "FILEGATE_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// The bucket holding every workspace's objects.
    #[arg(long, env = "FILEGATE_S3_BUCKET", default_value = "filegate")]
    pub s3_bucket: String,
    /// Access key id; unset to use the AWS default credential chain.
    #[arg(long, env = "FILEGATE_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// Secret access key; unset to use the AWS default credential chain.
    #[arg(long, env = "FILEGATE_S3_SECRET_ACCESS_KEY", hide_env_values = true,
          value_parser = secret)]
    pub s3_secret_access_key: Option<SecretString>,
    /// Use virtual-hosted addressing instead of path style (AWS S3 accepts both).
    #[arg(long, env = "FILEGATE_S3_VIRTUAL_HOSTED")]
    pub s3_virtual_hosted: bool,
    /// Milliseconds each object-store call may take, retries included; a copy or an
    /// assembly also has its bytes at 8 MiB/s. 100..=600000.
    #[arg(long = "s3-timeout-ms", env = "FILEGATE_S3_TIMEOUT_MS", value_name = "MS", default_value = "5000",
          value_parser = millis::<100, 600_000>)]
    pub s3_timeout: Duration,
    /// Create the bucket at start when it is missing (and apply CORS).
    #[arg(long, env = "FILEGATE_S3_CREATE_BUCKET")]
    pub s3_create_bucket: bool,
    /// Apply `--cors-origins` to the bucket at start.
    #[arg(long, env = "FILEGATE_S3_APPLY_CORS")]
    pub s3_apply_cors: bool,
    /// Trust the store's `x-amz-copy-source-if-match`: a conditional copy that
    /// succeeded is taken as the verified version without comparing the ETag the copy
    /// reports. Only for stores that honour the condition and whose ETags are not
    /// content hashes (AWS S3 with SSE-KMS); never for Ceph RGW 16, which ignores it.
    #[arg(long, env = "FILEGATE_S3_TRUST_COPY_PRECONDITION")]
    pub s3_trust_copy_precondition: bool,
    /// Do not probe the store at start (see `filegate doctor`). Its capabilities are
    /// then unknown, and completion takes the safe path everywhere: it hashes every
    /// object itself and compares every copy's ETag.
    #[arg(long, env = "FILEGATE_S3_SKIP_PROBE")]
    pub s3_skip_probe: bool,
    /// UNSAFE: start even when the probe finds that the store checks no signature, or
    /// enforces none of the signed Content-Type, Content-Length and checksum. Anyone
    /// can then write any bytes to the bucket, served objects included, and "ready"
    /// no longer means verified bytes. For throwaway development stores only; every
    /// start with it set logs a warning.
    #[arg(long, env = "FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE")]
    pub unsafe_allow_unenforcing_store: bool,
    /// Seconds a presigned upload URL stays valid. 1..=604800 (SigV4 allows 7 days).
    #[arg(long = "presign-ttl-secs", env = "FILEGATE_PRESIGN_TTL_SECS", value_name = "SECS", default_value = "900",
          value_parser = secs::<1, 604_800>)]
    pub presign_ttl: Duration,
    /// Seconds a presigned download URL (`download_url`) stays valid. 1..=604800.
    #[arg(long = "download-ttl-secs", env = "FILEGATE_DOWNLOAD_TTL_SECS", value_name = "SECS", default_value = "300",
          value_parser = secs::<1, 604_800>)]
    pub download_ttl: Duration,
    /// Declared sizes above this many bytes upload in parts (multipart) unless the
    /// client asks for one PUT. 5 MiB..=5 GiB.
    #[arg(long, env = "FILEGATE_MULTIPART_THRESHOLD_BYTES", default_value_t = 64 << 20,
          value_parser = clap::value_parser!(i64).range(5 << 20..=5 << 30))]
    pub multipart_threshold_bytes: i64,
    /// The part size of multipart uploads whose client did not choose one (grown where
    /// a file would need more than 10,000 parts). 5 MiB..=5 GiB.
    #[arg(long, env = "FILEGATE_MULTIPART_PART_SIZE_BYTES", default_value_t = 8 << 20,
          value_parser = clap::value_parser!(i64).range(5 << 20..=5 << 30))]
    pub multipart_part_size_bytes: i64,
    /// Part URLs a reservation signs at once, for a client that sent its parts'
    /// digests; the rest come from `POST /v2/files/{id}/parts`. 0..=1000.
    #[arg(long, env = "FILEGATE_MULTIPART_FIRST_PARTS", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub multipart_first_parts: u64,
    /// Seconds a multipart upload may take from reservation to completion (its parts'
    /// URLs are signed as it goes, each for `--presign-ttl-secs` at most); then the
    /// file expires and the upload is aborted. 60..=604800.
    #[arg(long = "multipart-window-secs", env = "FILEGATE_MULTIPART_WINDOW_SECS", value_name = "SECS", default_value = "86400",
          value_parser = secs::<60, 604_800>)]
    pub multipart_window: Duration,
}

impl StorageArgs {
    /// When declared sizes go multipart, and in what parts.
    #[must_use]
    pub fn multipart_policy(&self) -> filegate_domain::multipart::MultipartPolicy {
        filegate_domain::multipart::MultipartPolicy {
            threshold: self.multipart_threshold_bytes,
            part_size: self.multipart_part_size_bytes,
        }
    }

    /// The client settings for `filegate-storage`.
    #[must_use]
    pub fn storage(&self) -> filegate_storage::StorageSettings {
        filegate_storage::StorageSettings {
            endpoint: self.s3_endpoint.clone(),
            public_endpoint: self.s3_public_endpoint.clone(),
            region: self.s3_region.clone(),
            bucket: self.s3_bucket.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
            path_style: !self.s3_virtual_hosted,
            timeout: self.s3_timeout,
        }
    }
}

/// `filegate doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Browser origins the bucket's CORS rules must admit (the same setting as `serve`'s).
    #[arg(long, env = "FILEGATE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Limits given to workspaces created without their own.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Default workspace quota (ready + reserved bytes).
    #[arg(long, env = "FILEGATE_DEFAULT_QUOTA_BYTES", default_value_t = Limits::DEFAULT_QUOTA_BYTES,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub default_quota_bytes: i64,
    /// Default largest file, up to S3's 5 TiB (files over the multipart threshold
    /// upload in parts).
    #[arg(long, env = "FILEGATE_DEFAULT_MAX_FILE_BYTES", default_value_t = Limits::DEFAULT_MAX_FILE_BYTES,
          value_parser = clap::value_parser!(i64).range(1..=filegate_domain::multipart::MAX_OBJECT_BYTES))]
    pub default_max_file_bytes: i64,
    /// Default allowed content types (comma-separated MIME types).
    #[arg(long, env = "FILEGATE_DEFAULT_ALLOWED_TYPES", value_delimiter = ',', value_parser = parse_content_type,
          default_value = "application/pdf,application/vnd.openxmlformats-officedocument.wordprocessingml.document,text/html,text/plain,text/markdown")]
    pub default_allowed_types: Vec<ContentType>,
    /// Default most live (pending or ready) files per workspace, empty files included.
    #[arg(long, env = "FILEGATE_DEFAULT_MAX_FILES", default_value_t = Limits::DEFAULT_MAX_FILES,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub default_max_files: i64,
    /// Default most pending files (reserved, not yet completed or expired) per workspace.
    #[arg(long, env = "FILEGATE_DEFAULT_MAX_PENDING_FILES", default_value_t = Limits::DEFAULT_MAX_PENDING_FILES,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub default_max_pending_files: i64,
}

impl LimitSettings {
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            quota_bytes: self.default_quota_bytes,
            max_file_bytes: self.default_max_file_bytes,
            allowed_types: self.default_allowed_types.clone(),
            unique_names: true,
            max_files: self.default_max_files,
            max_pending_files: self.default_max_pending_files,
        }
    }
}

fn positive_f64(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("{raw:?} is not a positive number"))
}

/// A number within `range`, with clap's wording for integer ranges.
fn within<T>(raw: &str, range: std::ops::RangeInclusive<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let n: T = raw.parse().map_err(|e| format!("{e}"))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is not in {}..={}", range.start(), range.end()))
    }
}

/// A whole number of seconds within `MIN..=MAX`, as a [`Duration`].
fn secs<const MIN: u64, const MAX: u64>(raw: &str) -> Result<Duration, String> {
    within(raw, MIN..=MAX).map(Duration::from_secs)
}

/// A whole number of milliseconds within `MIN..=MAX`, as a [`Duration`].
fn millis<const MIN: u64, const MAX: u64>(raw: &str) -> Result<Duration, String> {
    within(raw, MIN..=MAX).map(Duration::from_millis)
}

fn pool_size(raw: &str) -> Result<usize, String> {
    within(raw, 2..=1000)
}

fn body_size(raw: &str) -> Result<usize, String> {
    within(raw, 1024..=64 << 20)
}

fn bucket_count(raw: &str) -> Result<usize, String> {
    within(raw, 16..=100_000_000)
}

fn parse_content_type(raw: &str) -> Result<ContentType, String> {
    ContentType::parse(raw).map_err(|e| e.message)
}

/// The token bucket every API key (and every unauthenticated client IP) draws from.
#[derive(Debug, Clone, Args)]
pub struct RateLimitSettings {
    /// Tokens added per second to each bucket.
    #[arg(long, env = "FILEGATE_RATE_LIMIT_PER_SECOND", default_value_t = 50.0, value_parser = positive_f64)]
    pub rate_limit_per_second: f64,
    /// Bucket size: the most requests admitted at once.
    #[arg(long, env = "FILEGATE_RATE_LIMIT_BURST", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Where buckets live: `local` (per process), `postgres` (shared by every replica), or `off`.
    #[arg(long, env = "FILEGATE_RATE_LIMIT_STORE", value_enum, default_value_t = RateLimitStore::Local)]
    pub rate_limit_store: RateLimitStore,
    /// Most buckets the `local` store keeps (idle ones are evicted first).
    /// 16..=100000000.
    #[arg(
        long,
        env = "FILEGATE_RATE_LIMIT_MAX_BUCKETS",
        default_value_t = 100_000,
        value_parser = bucket_count
    )]
    pub rate_limit_max_buckets: usize,
    /// Seconds the rate limiter remembers a workspace's organization and rate-limit
    /// override, so that requests naming it (or its files) are charged without a
    /// database look-up; an override set with `filegate admin` takes effect within
    /// this time. 0..=3600.
    #[arg(long = "rate-scope-ttl-secs", env = "FILEGATE_RATE_SCOPE_TTL_SECS", value_name = "SECS", default_value = "60",
          value_parser = secs::<0, 3600>)]
    pub rate_scope_ttl: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (comma-separated IPs or CIDR ranges).
    #[arg(long, env = "FILEGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::net::IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStore {
    /// In-process buckets; each replica limits on its own.
    Local,
    /// Buckets in Postgres; N replicas enforce one shared limit per key.
    Postgres,
    /// No rate limiting.
    Off,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// A workspace's limits as `admin create-workspace` and `admin set-workspace` take
/// them; what is not given defaults (create) or stays as it is (set).
#[derive(Debug, Args)]
pub struct WorkspaceLimitArgs {
    /// Quota (ready + reserved bytes); never below what the workspace holds.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub quota_bytes: Option<i64>,
    /// Largest file (applies to new reservations), up to S3's 5 TiB.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=filegate_domain::multipart::MAX_OBJECT_BYTES))]
    pub max_file_bytes: Option<i64>,
    /// Allowed content types (comma-separated or repeated): any registered type.
    #[arg(long, value_delimiter = ',', value_parser = parse_content_type)]
    pub allowed_types: Vec<ContentType>,
    /// Most live (pending or ready) files; lowering it below the count blocks new
    /// reservations, it removes nothing.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub max_files: Option<i64>,
    /// Most pending files.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub max_pending_files: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization.
    CreateOrg {
        /// The organization's name.
        name: String,
    },
    /// Create a workspace in an organization (limits default to the `--default-*` settings).
    CreateWorkspace {
        /// The organization id.
        #[arg(long)]
        org: Uuid,
        /// A display name.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        limits: WorkspaceLimitArgs,
        /// Live files unique by name and path (`false`: the same name may be uploaded
        /// again as a new file).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        unique_names: bool,
        /// Rate-limit override for keys defaulting to this workspace (with `--rate-limit-burst`).
        #[arg(long, value_parser = positive_f64, requires = "rate_limit_burst")]
        rate_limit_per_second: Option<f64>,
        /// Rate-limit bucket size override (with `--rate-limit-per-second`).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..), requires = "rate_limit_per_second")]
        rate_limit_burst: Option<i32>,
    },
    /// Change a workspace's limits; settings not given stay as they are.
    SetWorkspace {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        #[command(flatten)]
        limits: WorkspaceLimitArgs,
        /// Live files unique by name and path (applies to new reservations).
        #[arg(long, action = clap::ArgAction::Set)]
        unique_names: Option<bool>,
    },
    /// Set or clear a workspace's rate-limit override (applies to keys whose default
    /// workspace it is, within `--auth-cache-ttl-secs`).
    SetRateLimit {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// Tokens per second.
        #[arg(long, value_parser = positive_f64, required_unless_present = "clear", requires = "burst")]
        per_second: Option<f64>,
        /// Bucket size.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..), requires = "per_second")]
        burst: Option<i32>,
        /// Remove the override (back to the service settings).
        #[arg(long, conflicts_with_all = ["per_second", "burst"])]
        clear: bool,
    },
    /// Create an API key; its secret is printed once and never stored.
    CreateKey {
        /// The organization id.
        #[arg(long)]
        org: Uuid,
        /// Limit the key to these workspaces (repeatable; default: every workspace of the organization).
        #[arg(long = "workspace")]
        workspaces: Vec<Uuid>,
        /// The workspace used when a request names none.
        #[arg(long)]
        default_workspace: Option<Uuid>,
    },
    /// Revoke an API key (takes effect within `--auth-cache-ttl-secs`).
    RevokeKey {
        /// The key id.
        id: Uuid,
    },
    /// A workspace's webhook endpoints (as `/v2/workspaces/{id}/webhooks` manages them).
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Queue processing again for ready files whose processing failed, or never ran
    /// (ready before a replica registered their type's processor): their jobs start
    /// over with all their attempts.
    Reprocess {
        /// Only this workspace's files (default: every workspace).
        #[arg(long)]
        workspace: Option<Uuid>,
    },
}

/// `filegate admin webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Create an endpoint; its signing secret is printed once.
    Create {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// Where deliveries are POSTed (checked by the imports' SSRF guard).
        #[arg(long)]
        url: String,
        /// An event type it wants (repeatable; default: all of them).
        #[arg(long = "event", value_parser = parse_event_type)]
        events: Vec<filegate_api::EventType>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        /// Hosts exempt from the guard's address rules, as `serve` has them.
        #[arg(long, env = "FILEGATE_IMPORT_ALLOWED_HOSTS", value_delimiter = ',',
              value_parser = parse_allowed_host)]
        import_allowed_hosts: Vec<crate::service::imports::guard::AllowedHost>,
    },
    /// List a workspace's endpoints.
    List {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
    },
    /// Enable or disable an endpoint (enabling clears the reason it was disabled).
    Set {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// The endpoint id.
        id: Uuid,
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// Give an endpoint a new secret (printed once); the old one keeps signing beside
    /// it for the grace period.
    RotateSecret {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// The endpoint id.
        id: Uuid,
        /// Seconds the old secret keeps signing. 0..=2592000.
        #[arg(long = "grace-secs", value_name = "SECS", default_value = "86400",
              value_parser = secs::<0, 2_592_000>)]
        grace: Duration,
    },
    /// Delete an endpoint and its deliveries.
    Delete {
        /// The workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// The endpoint id.
        id: Uuid,
    },
}

fn parse_event_type(raw: &str) -> Result<filegate_api::EventType, String> {
    raw.parse().map_err(|_| {
        let all: Vec<&str> = filegate_api::EventType::all().map(|t| t.as_str()).collect();
        format!("{raw:?} is not an event type ({})", all.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_url_and_the_events_secret() {
        let db = DatabaseSettings {
            database_url: SecretString::from("postgres://u:hunter2@h:5432/db"),
            database_pool_size: 2,
            database_timeout: Duration::from_millis(100),
            database_statement_timeout: Duration::from_millis(100),
            database_ca_file: None,
        };
        let events = EventSettings {
            events_secret: Some(SecretString::from("sixteen-chars-secret")),
        };
        let debug = format!("{db:?} {events:?} {:?}", db.pool());
        assert!(
            !debug.contains("hunter2") && !debug.contains("sixteen-chars-secret"),
            "{debug}"
        );
    }

    #[test]
    fn debug_output_redacts_credentials() {
        let debug = format!(
            "{:?}",
            StorageArgs {
                s3_endpoint: None,
                s3_public_endpoint: None,
                s3_region: "r".into(),
                s3_bucket: "b".into(),
                s3_access_key_id: Some("GKKEYID".into()),
                s3_secret_access_key: Some("topsecret".into()),
                s3_virtual_hosted: false,
                s3_timeout: Duration::from_millis(1),
                s3_create_bucket: false,
                s3_apply_cors: false,
                s3_trust_copy_precondition: false,
                s3_skip_probe: false,
                unsafe_allow_unenforcing_store: false,
                presign_ttl: Duration::from_secs(1),
                download_ttl: Duration::from_secs(1),
                multipart_threshold_bytes: 64 << 20,
                multipart_part_size_bytes: 8 << 20,
                multipart_first_parts: 16,
                multipart_window: Duration::from_secs(86_400),
            }
        );
        // The key id names the key and is shown; the secret never is.
        assert!(
            !debug.contains("topsecret") && debug.contains("GKKEYID"),
            "{debug}"
        );
    }
}
