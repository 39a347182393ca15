//! The settings of test instances: port 0, one worker, short timeouts, and background
//! passes that never run by themselves (tests drive them).

use filegate::settings::{
    DatabaseSettings, EventSettings, HttpSettings, IngestArgs, ProcessingSettings,
    RateLimitSettings, RateLimitStore, ReaperSettings, ServeSettings, StorageArgs, WebhookSettings,
};

use crate::backends;

/// Background settings for tests: nothing runs by itself (tests drive passes), no
/// grace after expiry, a 1-second margin for in-flight PUTs, and `batch` rows per step.
#[must_use]
pub fn reaper_settings(batch: i64) -> ReaperSettings {
    ReaperSettings {
        reaper_interval: std::time::Duration::from_secs(0),
        reaper_grace: std::time::Duration::from_secs(0),
        reaper_batch: batch,
        settled_retention: std::time::Duration::from_secs(86_400),
        upload_margin: std::time::Duration::from_secs(1),
        finalizer_interval: std::time::Duration::from_secs(0),
        finalizer_min_interval: std::time::Duration::from_secs(1),
        finalizer_max_interval: std::time::Duration::from_secs(60),
        finalizer_batch: 64,
        completion_group_max: 256,
        reservation_group_max: 256,
        reconcile_interval: std::time::Duration::from_secs(0),
    }
}

/// The events secret of test instances.
pub const EVENTS_SECRET: &str = "test-events-secret-0123456789";

/// Settings for a test instance: port 0, one worker, short timeouts, the given database
/// and bucket, and a 1-second key cache so revocation tests stay quick.
pub async fn test_settings(database_url: &str, bucket: &str) -> ServeSettings {
    let b = backends().await;
    ServeSettings {
        http: HttpSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            workers: Some(1),
            max_body_bytes: 1 << 20,
            cors_origins: vec!["http://localhost:5173".into()],
            shutdown_timeout: std::time::Duration::from_secs(1),
            auth_cache_ttl: std::time::Duration::from_secs(1),
            migrate_on_start: false,
            upload_page: false,
            metrics_listen: None,
        },
        database: DatabaseSettings {
            database_url: database_url.to_owned().into(),
            database_pool_size: 8,
            database_timeout: std::time::Duration::from_millis(10_000),
            database_statement_timeout: std::time::Duration::from_millis(10_000),
            database_ca_file: None,
        },
        storage: StorageArgs {
            s3_endpoint: Some(b.s3_endpoint.clone()),
            s3_public_endpoint: None,
            s3_region: b.s3_region.clone(),
            s3_bucket: bucket.to_owned(),
            s3_access_key_id: Some(b.s3_access_key_id.clone()),
            s3_secret_access_key: Some(b.s3_secret_access_key.clone().into()),
            s3_virtual_hosted: false,
            s3_timeout: std::time::Duration::from_millis(2000),
            s3_create_bucket: true,
            s3_apply_cors: false,
            s3_trust_copy_precondition: false,
            s3_skip_probe: false,
            unsafe_allow_unenforcing_store: false,
            presign_ttl: std::time::Duration::from_secs(900),
            download_ttl: std::time::Duration::from_secs(300),
            multipart_threshold_bytes: 64 << 20,
            multipart_part_size_bytes: 8 << 20,
            multipart_first_parts: 16,
            multipart_window: std::time::Duration::from_secs(86_400),
        },
        rate_limit: RateLimitSettings {
            rate_limit_per_second: 10_000.0,
            rate_limit_burst: 10_000,
            rate_limit_store: RateLimitStore::Local,
            rate_limit_max_buckets: 100_000,
            // As short as the key cache's, so overrides a test sets show soon.
            rate_scope_ttl: std::time::Duration::from_secs(1),
            trusted_proxies: Vec::new(),
        },
        // Reaper, finalizer and reconciliation tests drive passes themselves.
        reaper: reaper_settings(100),
        events: EventSettings {
            events_secret: Some(EVENTS_SECRET.into()),
        },
        ingest: IngestArgs {
            public_url: None,
            ingest_max_concurrent: 16,
            ingest_memory_bytes: 32 << 20,
            ingest_buffer_bytes: 8 << 20,
            ingest_idle_timeout: std::time::Duration::from_secs(30),
            ingest_min_bytes_per_sec: 16_384,
            ingest_rate_grace: std::time::Duration::from_secs(10),
            import_allowed_hosts: Vec::new(),
            import_timeout: std::time::Duration::from_secs(30),
            import_interval: std::time::Duration::from_secs(0),
        },
        webhooks: webhook_settings(),
        processing: processing_settings(),
    }
}

/// Processing settings for tests: the video processor, a worker that looks every
/// 100 ms, a 3-second lease, 3 runs, retries from 200 ms, a minute per run.
#[must_use]
pub fn processing_settings() -> ProcessingSettings {
    ProcessingSettings {
        processors: vec!["video".into()],
        processing_concurrency: 2,
        processing_poll: std::time::Duration::from_millis(100),
        processing_lease: std::time::Duration::from_secs(3),
        processing_max_attempts: 3,
        processing_retry_base: std::time::Duration::from_millis(200),
        processing_timeout: std::time::Duration::from_secs(60),
        processing_max_input_bytes: 1 << 30,
        processing_memory_bytes: 2 << 30,
        video_frame_rate: 1.0,
        video_max_frames: 600,
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
        frame_url_ttl: std::time::Duration::from_secs(1800),
    }
}

/// Webhook settings for tests: a worker that looks every 50 ms, a 2-second timeout,
/// and retries from 200 ms doubling up to 2 s within an hour.
#[must_use]
pub fn webhook_settings() -> WebhookSettings {
    WebhookSettings {
        webhook_poll: std::time::Duration::from_millis(50),
        webhook_concurrency: 8,
        webhook_timeout: std::time::Duration::from_secs(2),
        webhook_retry_base: std::time::Duration::from_millis(200),
        webhook_retry_max: std::time::Duration::from_secs(2),
        webhook_retry_horizon: std::time::Duration::from_secs(3600),
        webhook_secret_grace: std::time::Duration::from_secs(86_400),
    }
}
