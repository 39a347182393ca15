//! Prometheus metrics, served at `/metrics`. Labels have bounded values only (route
//! patterns, and the enums below, whose spellings are the label values), never ids.

use std::sync::LazyLock;
use std::time::Duration;

use filegate_api::RejectionCheck;
use filegate_storage::probe::{Capability, Support};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use strum::IntoEnumIterator as _;

/// Label values: each enum is one label of one metric, spelled in snake case.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The label value.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}

label!(
    /// How one `POST /v2/files` ended (`filegate_reservations_total{outcome}`).
    Reservation {
        Reserved,
        QuotaExceeded,
        Duplicate,
        Invalid,
        Replayed,
        /// A key reused with another body.
        IdempotencyConflict,
    }
);

label!(
    /// How one webhook delivery attempt ended (`filegate_webhook_deliveries_total{outcome}`).
    WebhookAttempt {
        /// The endpoint answered 2xx.
        Delivered,
        /// It did not; the delivery is tried again later.
        Retried,
        /// It did not, and the delivery's retries ran out.
        Failed,
    }
);

label!(
    /// How one processing run ended (`filegate_processing_runs_total{processor,outcome}`).
    ProcessingRun {
        /// Its derived files are recorded: the file's processing is complete.
        Completed,
        /// It failed; the job runs again later.
        Retried,
        /// It failed for good (the file's own fault, the quota, or out of attempts).
        Failed,
        /// Another worker took the job over, or the file was deleted meanwhile.
        Lost,
    }
);

label!(
    /// Who asked for a completion (`filegate_completion_paths_total{path}`).
    Trigger {
        /// `POST /v2/files/{id}/complete` or `POST /v2/files/complete`.
        Client,
        /// The finalizer found the upload without being asked.
        Finalizer,
        /// An S3 event notification named the upload.
        Event,
        /// `GET /v2/files/{id}` on a pending file.
        Read,
        /// Bytes streamed through filegate (`POST /v2/files/-/uploads`).
        Ingest,
        /// A `remote_uri` fetched by filegate.
        Import,
    }
);

label!(
    /// How a completion a path asked for ended (`filegate_completion_paths_total{outcome}`).
    PathOutcome {
        Ready,
        Rejected,
        Missing,
        /// The file was settled already (or another completion had it).
        Settled,
        Error,
    }
);

label!(
    /// A statement concurrent requests share (`filegate_grouped_requests{statement}`;
    /// see `service::group_commit`).
    Grouped {
        /// Completions' claims of their files.
        Claim,
        /// Completions' transitions out of pending.
        Settle,
        /// Reservations of `POST /v2/files` (and the other routes that reserve).
        Reserve,
        /// Webhook deliveries their endpoints acknowledged.
        Acknowledge,
    }
);

label!(
    /// What one look of the finalizer found (`filegate_finalizer_looks_total{outcome}`).
    Look {
        Absent,
        Arrived,
        Error,
    }
);

label!(
    /// A store request the finalizer made to look for uploads
    /// (`filegate_finalizer_store_requests_total{op}`).
    LookRequest {
        /// A page of a folder's listing, shared by every due file it covers.
        List,
        /// A HEAD of one file's upload (past a listing's page cap).
        Head,
        /// A ListParts of one multipart file.
        ListParts,
    }
);

label!(
    /// How one S3 event delivery ended (`filegate_s3_event_deliveries_total{outcome}`).
    Delivery {
        Accepted,
        Unauthenticated,
        Malformed,
    }
);

label!(
    /// What reconciliation found or did (`filegate_reconcile_objects_total{action}`).
    ReconcileAction {
        Listed,
        OrphanFound,
        OrphanDeleted,
        Missing,
    }
);

label!(
    /// What the reaper did (`filegate_reaper_actions_total{action}`).
    ReaperAction {
        Expired,
        ObjectDeleted,
        DeletionFailed,
        MultipartAborted,
        MultipartSweepFailed,
        IdempotencyPurged,
        SettledPurged,
        DeliveriesPurged,
        RateLimitBucketEvicted,
    }
);

label!(
    /// How an upload streaming through filegate ended (`filegate_ingest_uploads_total{outcome}`).
    IngestOutcome {
        /// Written to the store.
        Stored,
        /// Cut off past the file's limit (`413`).
        TooLarge,
        /// The body stopped or came too slowly (`408`).
        TooSlow,
        /// The client's body failed (it hung up).
        ClientFailed,
        /// The file was settled, deleted or being uploaded already.
        Refused,
        /// Every upload slot of the process was taken (`503`).
        Busy,
        /// The store or the database failed (`503`).
        Unavailable,
    }
);

label!(
    /// Which bucket refused a request (`filegate_rate_limited_total{bucket}`).
    Bucket {
        /// An API key's.
        Key,
        /// A client IP's (requests that failed authentication).
        Ip,
    }
);

label!(
    /// What the limiter looked up to charge a request (`filegate_rate_scope_lookups_total{of}`).
    ScopeLookup {
        /// A workspace's organization and override.
        Workspace,
        /// The workspace a file lives in.
        File,
    }
);

label!(
    /// What a database look-up of a key id found (`filegate_api_key_lookups_total{outcome}`).
    KeyLookup {
        Found,
        Unknown,
    }
);

/// Every metric filegate exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `filegate_http_requests_total{route,method,status}`
    pub http_requests: IntCounterVec,
    /// `filegate_http_request_duration_seconds{route,method,status}`
    pub http_duration: HistogramVec,
    /// `filegate_reservations_total{outcome}`: reserved, quota_exceeded, duplicate, invalid,
    /// replayed, idempotency_conflict (a key reused with another body)
    pub reservations: IntCounterVec,
    /// `filegate_files_reserved_total`
    pub files_reserved: IntCounter,
    /// `filegate_completions_total{outcome}`: ready, rejected, missing
    pub completions: IntCounterVec,
    /// `filegate_rejections_total{reason}`: size, content_type, checksum, content, changed
    pub rejections: IntCounterVec,
    /// `filegate_completion_commit_transitions`: files moved out of pending per settling
    /// statement (concurrent completions and batches share one; see `group_commit`)
    pub completion_group_transitions: HistogramVec,
    /// `filegate_grouped_requests{statement}`: requests that shared one statement
    /// (claim, settle, reserve, acknowledge)
    pub grouped_requests: HistogramVec,
    /// `filegate_grouped_alone_total{statement}`: requests of a shared statement that
    /// it could not settle and that ran alone after it (reserve: no room after the
    /// requests before them, or the statement failed whole)
    pub grouped_alone: IntCounterVec,
    /// `filegate_completion_paths_total{path,outcome}`: path client, finalizer, event,
    /// read; outcome ready, rejected, missing, settled, error
    pub completion_paths: IntCounterVec,
    /// `filegate_finalizer_looks_total{outcome}`: absent, arrived, error
    pub finalizer_looks: IntCounterVec,
    /// `filegate_finalizer_store_requests_total{op}`: list, head, list_parts; divided by
    /// the looks, a look's share of the store
    pub finalizer_store_requests: IntCounterVec,
    /// `filegate_s3_event_deliveries_total{outcome}`: accepted, unauthenticated, malformed
    pub event_deliveries: IntCounterVec,
    /// `filegate_s3_event_records_total{outcome}`: completed, ignored
    pub event_records: IntCounterVec,
    /// `filegate_reconcile_objects_total{action}`: listed, orphan_found, orphan_deleted,
    /// missing
    pub reconcile: IntCounterVec,
    /// `filegate_reconcile_missing_objects`: ready files whose object the last
    /// reconciliation pass did not find
    pub missing_objects: IntGauge,
    /// `filegate_reaper_actions_total{action}`
    pub reaper: IntCounterVec,
    /// `filegate_quota_bytes_total{change}`: reserved, used (settled on completion), released
    pub quota_bytes: IntCounterVec,
    /// `filegate_rate_limited_total{bucket}`: key, ip
    pub rate_limited: IntCounterVec,
    /// `filegate_ingest_uploads_total{outcome}`: uploads streamed through filegate
    pub ingest_uploads: IntCounterVec,
    /// `filegate_ingest_bytes_total`: bytes those uploads wrote to the store
    pub ingest_bytes: IntCounter,
    /// `filegate_api_key_lookups_total{outcome}`: found, unknown (database look-ups of
    /// key ids the cache could not answer)
    pub key_lookups: IntCounterVec,
    /// `filegate_rate_scope_lookups_total{of}`: workspace, file (database look-ups the
    /// limiter made, only for organizations with per-workspace overrides)
    pub scope_lookups: IntCounterVec,
    /// `filegate_db_pool_connections{state}`: size, available, waiting (sampled at scrape)
    pub db_pool: IntGaugeVec,
    /// `filegate_object_store_call_duration_seconds{op,outcome}`
    pub store_calls: HistogramVec,
    /// `filegate_webhook_deliveries_total{outcome}`: delivery attempts: delivered,
    /// retried, failed (for good)
    pub webhook_deliveries: IntCounterVec,
    /// `filegate_webhook_delivery_latency_seconds`: from a transition to its
    /// delivery's acknowledgement
    pub webhook_latency: HistogramVec,
    /// `filegate_webhook_queued`: deliveries not yet acknowledged (sampled by the
    /// delivery worker)
    pub webhook_queued: IntGauge,
    /// `filegate_webhook_endpoints_disabled_total`: endpoints disabled because their
    /// deliveries kept failing
    pub webhook_disabled: IntCounter,
    /// `filegate_store_capability{capability,result}`: 1 for what the start-up probe
    /// found (see `filegate doctor`)
    pub store_capability: IntGaugeVec,
    /// `filegate_processing_runs_total{processor,outcome}`: processing runs: completed,
    /// retried, failed, lost
    pub processing_runs: IntCounterVec,
    /// `filegate_processing_run_duration_seconds{processor}`: a run from its claim to
    /// its end (download, tools, uploads, record)
    pub processing_duration: HistogramVec,
    /// `filegate_derived_files_total{kind}`: derived files recorded (e.g. frames)
    pub derived_files: IntCounterVec,
    /// `filegate_processing_queued{state}`: jobs queued and running (sampled by the
    /// processing worker)
    pub processing_queued: IntGaugeVec,
}

#[allow(clippy::expect_used)] // Constant definitions: a failure is a programming error the unit test catches.
fn build() -> Metrics {
    let registry = Registry::new_custom(Some("filegate".into()), None).expect("registry");
    let counter = |name: &str, help: &str, labels: &[&str]| {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("counter");
        registry
            .register(Box::new(c.clone()))
            .expect("register counter");
        c
    };
    let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
        let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("histogram");
        registry
            .register(Box::new(h.clone()))
            .expect("register histogram");
        h
    };
    let latency = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let files_reserved =
        IntCounter::new("files_reserved_total", "Files reserved by POST /v2/files")
            .expect("counter");
    registry
        .register(Box::new(files_reserved.clone()))
        .expect("register counter");
    let ingest_bytes = IntCounter::new(
        "ingest_bytes_total",
        "Bytes uploads streamed through filegate wrote to the store",
    )
    .expect("counter");
    registry
        .register(Box::new(ingest_bytes.clone()))
        .expect("register counter");
    let db_pool = IntGaugeVec::new(
        Opts::new("db_pool_connections", "Postgres pool connections"),
        &["state"],
    )
    .expect("gauge");
    registry
        .register(Box::new(db_pool.clone()))
        .expect("register gauge");
    let store_capability = IntGaugeVec::new(
        Opts::new(
            "store_capability",
            "What the start-up probe found the object store to do (1 on the result seen)",
        ),
        &["capability", "result"],
    )
    .expect("gauge");
    registry
        .register(Box::new(store_capability.clone()))
        .expect("register gauge");
    let missing_objects = IntGauge::new(
        "reconcile_missing_objects",
        "Ready files whose object the last reconciliation pass did not find",
    )
    .expect("gauge");
    registry
        .register(Box::new(missing_objects.clone()))
        .expect("register gauge");
    let webhook_queued =
        IntGauge::new("webhook_queued", "Webhook deliveries not yet acknowledged").expect("gauge");
    registry
        .register(Box::new(webhook_queued.clone()))
        .expect("register gauge");
    let webhook_disabled = IntCounter::new(
        "webhook_endpoints_disabled_total",
        "Webhook endpoints disabled because their deliveries kept failing",
    )
    .expect("counter");
    registry
        .register(Box::new(webhook_disabled.clone()))
        .expect("register counter");
    let processing_queued = IntGaugeVec::new(
        Opts::new(
            "processing_queued",
            "Processing jobs not finished, by state",
        ),
        &["state"],
    )
    .expect("gauge");
    registry
        .register(Box::new(processing_queued.clone()))
        .expect("register gauge");
    Metrics {
        processing_runs: counter(
            "processing_runs_total",
            "Processing runs by processor and how they ended",
            &["processor", "outcome"],
        ),
        processing_duration: histogram(
            "processing_run_duration_seconds",
            "A processing run from its claim to its end",
            &["processor"],
            vec![
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
            ],
        ),
        derived_files: counter(
            "derived_files_total",
            "Derived files recorded, by kind",
            &["kind"],
        ),
        processing_queued,
        webhook_deliveries: counter(
            "webhook_deliveries_total",
            "Webhook delivery attempts by how they ended",
            &["outcome"],
        ),
        webhook_latency: histogram(
            "webhook_delivery_latency_seconds",
            "From a file's transition to the acknowledgement of its webhook delivery",
            &[],
            vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86_400.0,
            ],
        ),
        webhook_queued,
        webhook_disabled,
        http_requests: counter(
            "http_requests_total",
            "HTTP requests",
            &["route", "method", "status"],
        ),
        http_duration: histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            &["route", "method", "status"],
            latency.clone(),
        ),
        reservations: counter(
            "reservations_total",
            "POST /v2/files outcomes",
            &["outcome"],
        ),
        files_reserved,
        completions: counter("completions_total", "Completion outcomes", &["outcome"]),
        rejections: counter(
            "rejections_total",
            "Rejected uploads by reason",
            &["reason"],
        ),
        completion_paths: counter(
            "completion_paths_total",
            "Completions by the path that asked for them",
            &["path", "outcome"],
        ),
        finalizer_looks: counter(
            "finalizer_looks_total",
            "The finalizer's looks for uploads of pending files",
            &["outcome"],
        ),
        finalizer_store_requests: counter(
            "finalizer_store_requests_total",
            "Store requests the finalizer made for its looks",
            &["op"],
        ),
        event_deliveries: counter(
            "s3_event_deliveries_total",
            "POST /v2/events/s3 deliveries",
            &["outcome"],
        ),
        event_records: counter(
            "s3_event_records_total",
            "Records of S3 event deliveries",
            &["outcome"],
        ),
        reconcile: counter(
            "reconcile_objects_total",
            "Reconciliation findings and actions",
            &["action"],
        ),
        missing_objects,
        reaper: counter("reaper_actions_total", "Reaper actions", &["action"]),
        quota_bytes: counter(
            "quota_bytes_total",
            "Bytes moved in workspace quotas",
            &["change"],
        ),
        rate_limited: counter(
            "rate_limited_total",
            "Requests refused by the rate limiter",
            &["bucket"],
        ),
        ingest_uploads: counter(
            "ingest_uploads_total",
            "Uploads streamed through filegate, by how they ended",
            &["outcome"],
        ),
        ingest_bytes,
        key_lookups: counter(
            "api_key_lookups_total",
            "Database look-ups of API key ids",
            &["outcome"],
        ),
        scope_lookups: counter(
            "rate_scope_lookups_total",
            "Database look-ups of workspaces and files the rate limiter made",
            &["of"],
        ),
        db_pool,
        store_calls: histogram(
            "object_store_call_duration_seconds",
            "Object-store call latency",
            &["op", "outcome"],
            latency,
        ),
        completion_group_transitions: histogram(
            "completion_commit_transitions",
            "Files moved out of pending per settling statement",
            &[],
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        ),
        grouped_alone: counter(
            "grouped_alone_total",
            "Requests of a shared statement that ran alone after it",
            &["statement"],
        ),
        grouped_requests: histogram(
            "grouped_requests",
            "Requests that shared one statement",
            &["statement"],
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        ),
        store_capability,
        registry,
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(build);

/// The process-wide metrics.
#[must_use]
pub fn get() -> &'static Metrics {
    &METRICS
}

/// A request was refused by an empty bucket of `kind`.
pub fn rate_limited(kind: Bucket) {
    get().rate_limited.with_label_values(&[kind.as_str()]).inc();
}

/// The limiter looked up a workspace or a file.
pub fn scope_lookup(of: ScopeLookup) {
    get().scope_lookups.with_label_values(&[of.as_str()]).inc();
}

/// An upload through filegate ended with `outcome`, having written `bytes`.
pub fn ingest(outcome: IngestOutcome, bytes: u64) {
    let m = get();
    m.ingest_uploads
        .with_label_values(&[outcome.as_str()])
        .inc();
    m.ingest_bytes.inc_by(bytes);
}

/// One `POST /v2/files` ended with `outcome` (see `reservations`).
pub fn reservation(outcome: Reservation) {
    get()
        .reservations
        .with_label_values(&[outcome.as_str()])
        .inc();
}

/// A batch of `files` was reserved, holding `bytes` of quota.
pub fn reserved(files: usize, bytes: i64) {
    let m = get();
    reservation(Reservation::Reserved);
    m.files_reserved.inc_by(files as u64);
    m.quota_bytes
        .with_label_values(&["reserved"])
        .inc_by(u64::try_from(bytes).unwrap_or(0));
}

/// The start-up probe found `capability` to be `support` (the other values go to 0).
pub fn store_capability(capability: Capability, support: Support) {
    for other in Support::iter() {
        get()
            .store_capability
            .with_label_values(&[capability.name(), other.as_str()])
            .set(i64::from(other == support));
    }
}

/// A completion found nothing uploaded yet (`ready` and `rejected` count below).
pub fn completion_missing() {
    get().completions.with_label_values(&["missing"]).inc();
}

/// A completion asked for by `trigger` ended with `outcome`.
pub fn completion_path(trigger: Trigger, outcome: PathOutcome) {
    get()
        .completion_paths
        .with_label_values(&[trigger.as_str(), outcome.as_str()])
        .inc();
}

/// Counts one settling statement of `files` transitions.
pub fn settling_statement(files: usize) {
    #[allow(clippy::cast_precision_loss)] // At most a few thousand.
    get()
        .completion_group_transitions
        .with_label_values::<&str>(&[])
        .observe(files as f64);
}

/// `n` requests shared one statement of `kind`.
pub fn grouped(kind: Grouped, n: usize) {
    #[allow(clippy::cast_precision_loss)] // At most a few thousand.
    get()
        .grouped_requests
        .with_label_values(&[kind.as_str()])
        .observe(n as f64);
}

/// `n` requests of a shared statement of `kind` ran alone after it.
pub fn grouped_alone(kind: Grouped, n: usize) {
    get()
        .grouped_alone
        .with_label_values(&[kind.as_str()])
        .inc_by(n as u64);
}

/// The finalizer made `n` store requests of `op` for its looks.
pub fn finalizer_store_requests(op: LookRequest, n: u64) {
    get()
        .finalizer_store_requests
        .with_label_values(&[op.as_str()])
        .inc_by(n);
}

/// One look of the finalizer found `outcome`.
pub fn finalizer_look(outcome: Look) {
    get()
        .finalizer_looks
        .with_label_values(&[outcome.as_str()])
        .inc();
}

/// An S3 event delivery ended with `outcome`.
pub fn event_delivery(outcome: Delivery) {
    get()
        .event_deliveries
        .with_label_values(&[outcome.as_str()])
        .inc();
}

/// An accepted delivery's records: `completed` named a pending upload, `ignored` not.
pub fn event_records(completed: usize, ignored: usize) {
    let m = get();
    m.event_records
        .with_label_values(&["completed"])
        .inc_by(completed as u64);
    m.event_records
        .with_label_values(&["ignored"])
        .inc_by(ignored as u64);
}

/// The reaper did `action` `n` times.
pub fn reaper(action: ReaperAction, n: u64) {
    get().reaper.with_label_values(&[action.as_str()]).inc_by(n);
}

/// Reconciliation found or did `action` `n` times.
pub fn reconcile(action: ReconcileAction, n: u64) {
    get()
        .reconcile
        .with_label_values(&[action.as_str()])
        .inc_by(n);
}

/// The last reconciliation pass found `n` ready files without their object.
pub fn missing_objects(n: u64) {
    get()
        .missing_objects
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// A database look-up of a key id found `outcome`.
pub fn key_lookup(outcome: KeyLookup) {
    get()
        .key_lookups
        .with_label_values(&[outcome.as_str()])
        .inc();
}

/// A file became ready: it held `reserved` bytes and now uses `used` of them.
pub fn count_ready(reserved: i64, used: i64) {
    let m = get();
    m.completions.with_label_values(&["ready"]).inc();
    m.quota_bytes
        .with_label_values(&["used"])
        .inc_by(u64::try_from(used).unwrap_or(0));
    m.quota_bytes
        .with_label_values(&["released"])
        .inc_by(u64::try_from(reserved - used).unwrap_or(0));
}

/// A file was rejected by `check`, releasing the `reserved` bytes it held.
pub fn count_rejected(check: RejectionCheck, reserved: i64) {
    let m = get();
    m.rejections.with_label_values(&[check.as_str()]).inc();
    m.quota_bytes
        .with_label_values(&["released"])
        .inc_by(u64::try_from(reserved).unwrap_or(0));
    m.completions.with_label_values(&["rejected"]).inc();
}

/// Records one object-store call (installed as the storage client's observer).
pub fn observe_store_call(op: &'static str, elapsed: Duration, ok: bool) {
    get()
        .store_calls
        .with_label_values(&[op, if ok { "ok" } else { "error" }])
        .observe(elapsed.as_secs_f64());
}

/// Records one HTTP request: its route pattern, method and status.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let m = get();
    let status = status.to_string();
    let labels = [route, method, status.as_str()];
    m.http_requests.with_label_values(&labels).inc();
    m.http_duration
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
}

/// A webhook delivery attempt ended with `outcome`; a delivered one `latency` after
/// its transition.
pub fn webhook_attempt(outcome: WebhookAttempt, latency: Option<Duration>) {
    let m = get();
    m.webhook_deliveries
        .with_label_values(&[outcome.as_str()])
        .inc();
    if let Some(latency) = latency {
        m.webhook_latency
            .with_label_values::<&str>(&[])
            .observe(latency.as_secs_f64());
    }
}

/// An endpoint was disabled for failing.
pub fn webhook_endpoint_disabled() {
    get().webhook_disabled.inc();
}

/// Deliveries waiting, as last counted.
pub fn webhook_queued(n: i64) {
    get().webhook_queued.set(n);
}

/// The text exposition, with the pool gauges sampled now.
#[must_use]
pub fn render(pool: &filegate_db::Pool) -> String {
    let m = get();
    let status = pool.status();
    m.db_pool
        .with_label_values(&["size"])
        .set(i64::try_from(status.size).unwrap_or(i64::MAX));
    m.db_pool
        .with_label_values(&["available"])
        .set(i64::try_from(status.available).unwrap_or(i64::MAX));
    m.db_pool
        .with_label_values(&["waiting"])
        .set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&m.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_definitions_are_valid() {
        let m = super::get();
        m.reservations.with_label_values(&["reserved"]).inc();
        assert!(
            m.registry
                .gather()
                .iter()
                .any(|f| f.name() == "filegate_reservations_total")
        );
    }
}
