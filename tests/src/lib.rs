//! The filegate test harness.
//!
//! [`spawn_app`] starts the real application on port 0 against real Postgres (a fresh
//! database cloned from a migrated template) and a real S3 server (a fresh bucket),
//! and returns a [`TestApp`] with a tenant (organization, workspace, key) ready to use.
//!
//! Backends come from the environment `scripts/test` sets (`FILEGATE_TEST_*`), or, with
//! `FILEGATE_TEST_BACKEND=containers`, from Postgres and S3 (MinIO or Garage)
//! containers started with testcontainers (see [`containers`]).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod containers;
pub mod proxy;
pub mod samples;

use std::sync::OnceLock;

use filegate::settings::{
    DatabaseSettings, EventSettings, HttpSettings, RateLimitSettings, RateLimitStore,
    ReaperSettings, ServeSettings, StorageArgs,
};
use filegate::startup::Application;
use filegate_db::Pool;
use filegate_domain::Limits;
use filegate_storage::Storage;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Where the real services are.
#[derive(Debug, Clone)]
pub struct Backends {
    /// A URL of the Postgres server's maintenance database (`…/postgres`).
    pub database_url: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// Prefix of every database this process creates (dropped by `scripts/test`).
    pub run: String,
}

static BACKENDS: OnceCell<Backends> = OnceCell::const_new();

/// The backends of this test process.
///
/// # Panics
/// When neither `scripts/test`'s environment nor `FILEGATE_TEST_BACKEND=containers` is set.
pub async fn backends() -> &'static Backends {
    BACKENDS
        .get_or_init(|| async {
            if std::env::var("FILEGATE_TEST_BACKEND").as_deref() == Ok("containers") {
                return containers::start().await;
            }
            let var = |name: &str| {
                std::env::var(name).unwrap_or_else(|_| {
                    panic!("{name} is not set: run the tests with scripts/test (or FILEGATE_TEST_BACKEND=containers)")
                })
            };
            Backends {
                database_url: var("FILEGATE_TEST_DATABASE_URL"),
                s3_endpoint: var("FILEGATE_TEST_S3_ENDPOINT"),
                s3_region: var("FILEGATE_TEST_S3_REGION"),
                s3_access_key_id: var("FILEGATE_TEST_S3_ACCESS_KEY_ID"),
                s3_secret_access_key: var("FILEGATE_TEST_S3_SECRET_ACCESS_KEY"),
                run: var("FILEGATE_TEST_RUN"),
            }
        })
        .await
}

/// `postgres://…/NAME` on the same server as `url`.
#[must_use]
pub fn database_url(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{name}")
}

/// Connects one plain client (for setup statements).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to Postgres");
    tokio::spawn(conn);
    client
}

/// A digest of the migrations, so a changed schema gets a new template.
fn migrations_digest() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(std::fs::read(&f).expect("read migration"));
    }
    hex_prefix(&hasher.finalize(), 6)
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The migrated template database, created once per run under an advisory lock.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let b = backends().await;
            let name = format!("fgt_{}_tpl_{}", b.run, migrations_digest());
            let admin = connect(&b.database_url).await;
            admin
                .execute("SELECT pg_advisory_lock(hashtext($1))", &[&name])
                .await
                .expect("template lock");
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("query pg_database")
                .is_some();
            if !exists {
                admin
                    .execute(&format!("CREATE DATABASE \"{name}\""), &[])
                    .await
                    .expect("create template");
                filegate_db::migrate(&database_url(&b.database_url, &name))
                    .await
                    .expect("migrate template");
            }
            admin
                .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&name])
                .await
                .expect("template unlock");
            name
        })
        .await
}

/// A fresh database cloned from the template; returns its URL.
pub async fn fresh_database() -> String {
    let b = backends().await;
    let template = template().await;
    let name = format!(
        "fgt_{}_{}",
        b.run,
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let admin = connect(&b.database_url).await;
    // Cloning fails while another session is briefly connected to the template.
    for attempt in 0.. {
        match admin
            .execute(
                &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                &[],
            )
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 50 => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clone template: {e}"),
        }
    }
    database_url(&b.database_url, &name)
}

/// A fresh, unique bucket name.
#[must_use]
pub fn fresh_bucket() -> String {
    format!("fgt-{}", &Uuid::new_v4().simple().to_string()[..20])
}

/// Background settings for tests: nothing runs by itself (tests drive passes), no
/// grace after expiry, a 1-second margin for in-flight PUTs, and `batch` rows per step.
#[must_use]
pub fn reaper_settings(batch: i64) -> ReaperSettings {
    ReaperSettings {
        reaper_interval_secs: 0,
        reaper_grace_secs: 0,
        reaper_batch: batch,
        upload_margin_secs: 1,
        finalizer_interval_secs: 0,
        finalizer_min_interval_secs: 1,
        finalizer_max_interval_secs: 60,
        finalizer_batch: 64,
        reconcile_interval_secs: 0,
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
            shutdown_timeout_secs: 1,
            auth_cache_ttl_secs: 1,
            migrate_on_start: false,
            upload_page: false,
            metrics_listen: None,
        },
        database: DatabaseSettings {
            database_url: database_url.to_owned().into(),
            database_pool_size: 8,
            database_timeout_ms: 10_000,
            database_statement_timeout_ms: 10_000,
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
            s3_timeout_ms: 2000,
            s3_create_bucket: true,
            s3_apply_cors: false,
            s3_trust_copy_precondition: false,
            presign_ttl_secs: 900,
            download_ttl_secs: 300,
        },
        rate_limit: RateLimitSettings {
            rate_limit_per_second: 10_000.0,
            rate_limit_burst: 10_000,
            rate_limit_store: RateLimitStore::Local,
            rate_limit_max_buckets: 100_000,
            trusted_proxies: Vec::new(),
        },
        // Reaper, finalizer and reconciliation tests drive passes themselves.
        reaper: reaper_settings(100),
        events: EventSettings {
            events_secret: Some(EVENTS_SECRET.into()),
        },
    }
}

/// An organization with one workspace and a key limited to nothing (org-wide) whose
/// default is that workspace.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org: Uuid,
    pub workspace: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

/// A running filegate with its own database and bucket.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub database_url: String,
    pub pool: Pool,
    /// A client straight to the app's bucket (never through a test's fault proxy), for
    /// checking objects.
    pub storage: Storage,
    pub settings: ServeSettings,
    pub http: reqwest::Client,
    pub tenant: Tenant,
}

/// Spawns the app with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

static TRACING: OnceLock<()> = OnceLock::new();

/// Spawns the app talking to the object store through a [`proxy::FaultProxy`] the test
/// can cut, with a 1-second store timeout so a cut shows quickly.
pub async fn spawn_app_behind_store_proxy(
    customize: impl FnOnce(&mut ServeSettings),
) -> (TestApp, proxy::FaultProxy) {
    let upstream = backends()
        .await
        .s3_endpoint
        .trim_start_matches("http://")
        .to_owned();
    let proxy = proxy::FaultProxy::start(&upstream).await;
    let url = proxy.url();
    let app = spawn_app_with(|s| {
        s.storage.s3_endpoint = Some(url);
        s.storage.s3_timeout_ms = 1000;
        customize(s);
    })
    .await;
    (app, proxy)
}

/// Spawns the app after `customize` has adjusted the settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut ServeSettings)) -> TestApp {
    TRACING.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            filegate::telemetry::init(&filegate::settings::LogSettings {
                log_format: filegate::settings::LogFormat::Text,
                log: "info".into(),
            });
        }
    });
    let database_url = fresh_database().await;
    let mut settings = test_settings(&database_url, &fresh_bucket()).await;
    customize(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("build the application");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let pool = filegate_db::connect(&settings.database.pool()).expect("pool");
    // Straight to the store, even when the app goes through a fault proxy.
    let mut direct = settings.storage.storage();
    direct.endpoint = Some(backends().await.s3_endpoint.clone());
    let storage = Storage::new(&direct).await;
    let mut app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        database_url,
        pool,
        storage,
        settings,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        tenant: Tenant {
            org: Uuid::nil(),
            workspace: Uuid::nil(),
            key: String::new(),
            key_id: Uuid::nil(),
        },
    };
    app.tenant = app.create_tenant(&Limits::default()).await;
    app
}

impl TestApp {
    /// A new organization with one workspace of `limits` and an org-wide key defaulting to it.
    pub async fn create_tenant(&self, limits: &Limits) -> Tenant {
        let org = filegate_db::orgs::create(&self.pool, "test org")
            .await
            .expect("create org");
        let workspace = self.create_workspace(org, limits).await;
        let (key, key_id) = self.create_key(org, None, Some(workspace)).await;
        Tenant {
            org,
            workspace,
            key,
            key_id,
        }
    }

    /// A new workspace in `org`.
    pub async fn create_workspace(&self, org: Uuid, limits: &Limits) -> Uuid {
        filegate_db::workspaces::create(&self.pool, org, "test", limits)
            .await
            .expect("create workspace")
            .id
    }

    /// A new key; returns the secret and the id.
    pub async fn create_key(
        &self,
        org: Uuid,
        scope: Option<Vec<Uuid>>,
        default: Option<Uuid>,
    ) -> (String, Uuid) {
        let minted = filegate::auth::mint().expect("randomness");
        filegate_db::keys::create(
            &self.pool,
            &filegate_db::keys::NewKey {
                id: minted.id,
                organization_id: org,
                workspace_scope: scope,
                default_workspace_id: default,
                secret_sha256: minted.sha256,
            },
        )
        .await
        .expect("create key");
        (minted.secret, minted.id)
    }

    /// `METHOD address+path` with the tenant's key as a bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(&self.tenant.key, method, path)
    }

    /// `METHOD address+path` with `key` as a bearer token.
    pub fn request_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
    }

    /// `POST /v2/files` with `body`, as the tenant.
    pub async fn create_files(&self, body: &Value) -> Answer {
        self.create_files_as(&self.tenant.key, body).await
    }

    /// `POST /v2/files` with `body`, as `key`.
    pub async fn create_files_as(&self, key: &str, body: &Value) -> Answer {
        let res = self
            .request_as(key, reqwest::Method::POST, "/v2/files")
            .json(body)
            .send()
            .await;
        Answer::of(res.expect("request")).await
    }

    /// PUTs `bytes` to a created file's `file_url` with its `upload_headers` (the HTTP
    /// client sets Content-Length from the body, as every real client does).
    /// Returns the store's status.
    pub async fn upload(&self, created: &Value, bytes: Vec<u8>) -> u16 {
        self.upload_with(created, bytes, |_| {}).await
    }

    /// Like [`TestApp::upload`], after `edit` has changed the headers.
    pub async fn upload_with(
        &self,
        created: &Value,
        bytes: Vec<u8>,
        edit: impl FnOnce(&mut HeaderMap),
    ) -> u16 {
        let mut headers = HeaderMap::new();
        for (k, v) in created["upload_headers"]
            .as_object()
            .expect("upload_headers")
        {
            if !k.eq_ignore_ascii_case("content-length") {
                headers.insert(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    HeaderValue::from_str(v.as_str().expect("header value")).expect("header value"),
                );
            }
        }
        edit(&mut headers);
        let url = created["file_url"].as_str().expect("file_url");
        let res = self
            .http
            .put(url)
            .headers(headers)
            .body(bytes)
            .send()
            .await
            .expect("PUT to the store");
        res.status().as_u16()
    }

    /// The workspace's `(used_bytes, reserved_bytes)` counters.
    pub async fn counters(&self, workspace: Uuid) -> (i64, i64) {
        let client = self.pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT used_bytes, reserved_bytes FROM workspaces WHERE id = $1",
                &[&workspace],
            )
            .await
            .expect("counters");
        (row.get(0), row.get(1))
    }

    /// What the file rows add up to: `(bytes of ready files, bytes reserved by pending files)`.
    pub async fn row_sums(&self, workspace: Uuid) -> (i64, i64) {
        let client = self.pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT coalesce(sum(reserved_bytes) FILTER (WHERE status = 'ready'), 0)::int8,                         coalesce(sum(reserved_bytes) FILTER (WHERE status = 'pending'), 0)::int8                  FROM files WHERE workspace_id = $1",
                &[&workspace],
            )
            .await
            .expect("row sums");
        (row.get(0), row.get(1))
    }

    /// Number of file rows in a workspace, any status.
    pub async fn file_rows(&self, workspace: Uuid) -> i64 {
        let client = self.pool.get().await.expect("connection");
        client
            .query_one(
                "SELECT count(*) FROM files WHERE workspace_id = $1",
                &[&workspace],
            )
            .await
            .expect("count")
            .get(0)
    }

    /// Reserves one file described by `entry` and returns its `files[0]` answer.
    pub async fn reserve(&self, entry: Value) -> Value {
        let res = self
            .create_files(&serde_json::json!({ "files": [entry] }))
            .await;
        assert_eq!(res.status, 200, "reserve: {:?}", res.body);
        res.body["files"][0].clone()
    }

    /// Reserves `bytes` as `name` (declaring size and digest), uploads them through the
    /// presigned URL and returns the created file.
    pub async fn reserve_and_upload(&self, name: &str, bytes: Vec<u8>) -> Value {
        let file = self
            .reserve(serde_json::json!({ "name": name, "size_bytes": bytes.len(), "checksum_sha256": sha256_b64(&bytes) }))
            .await;
        assert_eq!(self.upload(&file, bytes).await, 200, "upload {name}");
        file
    }

    /// `POST /v2/files/{id}/complete`.
    pub async fn complete(&self, file: &Value) -> Answer {
        let id = file["file_uuid"].as_str().expect("file_uuid");
        let res = self
            .request(reqwest::Method::POST, &format!("/v2/files/{id}/complete"))
            .send()
            .await;
        Answer::of(res.expect("request")).await
    }

    /// Writes an object straight into the app's bucket (what a presigned URL would refuse).
    pub async fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        checksum: Option<String>,
    ) {
        self.s3()
            .await
            .put_object()
            .bucket(&self.settings.storage.s3_bucket)
            .key(key)
            .content_type(content_type)
            .set_checksum_sha256(checksum)
            .body(bytes.into())
            .send()
            .await
            .expect("direct PutObject");
    }

    /// Reads a ready file's bytes through its `download_url`, as a user would.
    pub async fn download(&self, file: &Value) -> Vec<u8> {
        let id = file["file_uuid"].as_str().expect("file_uuid");
        let res = Answer::of(
            self.request(reqwest::Method::GET, &format!("/v2/files/{id}"))
                .send()
                .await
                .expect("GET file"),
        )
        .await;
        assert_eq!(res.status, 200, "{:?}", res.body);
        let url = res.body["download_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no download_url in {:?}", res.body));
        let got = self.http.get(url).send().await.expect("GET download_url");
        assert_eq!(got.status(), 200, "download");
        got.bytes().await.expect("download body").to_vec()
    }

    /// True when the object exists in the app's bucket.
    pub async fn object_exists(&self, key: &str) -> bool {
        self.storage.head(key).await.expect("HeadObject").is_some()
    }

    /// A plain S3 client for the app's bucket.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let b = backends().await;
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&b.s3_endpoint)
            .region(aws_sdk_s3::config::Region::new(b.s3_region.clone()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &b.s3_access_key_id,
                &b.s3_secret_access_key,
                None,
                None,
                "test",
            ))
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A file's status and rejection reason, read from its row.
    pub async fn file_status(&self, file: &Value) -> (String, Option<String>) {
        let id: Uuid = file["file_uuid"]
            .as_str()
            .expect("file_uuid")
            .parse()
            .expect("uuid");
        let client = self.pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT status, rejection_reason FROM files WHERE id = $1",
                &[&id],
            )
            .await
            .expect("file row");
        (row.get(0), row.get(1))
    }

    /// Starts another instance on the same database and bucket (another replica);
    /// returns its base URL.
    pub async fn spawn_replica(&self) -> String {
        let app = Application::build(self.settings.clone())
            .await
            .expect("build a replica");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        format!("http://127.0.0.1:{port}")
    }

    /// A plain `GET` without credentials.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }
}

/// A response decoded for assertions: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Reads a response whole.
    pub async fn of(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// The error code of an envelope.
    #[must_use]
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// A header as a string.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }

    /// Asserts the response is the contract's error envelope with `status` and `code`,
    /// carrying the same request id in the body and the `X-Request-Id` header.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.code(), code, "code of {:?}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "message in {:?}",
            self.body
        );
        assert!(
            self.body["error"]["details"].is_object(),
            "details in {:?}",
            self.body
        );
        let id = self.body["request_id"]
            .as_str()
            .expect("request_id in the envelope");
        assert_eq!(
            self.header("x-request-id"),
            Some(id),
            "X-Request-Id matches the envelope"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "JSON content type"
        );
    }
}

/// `target/<profile>/filegate`, which `scripts/test` builds before the suites run.
///
/// # Panics
/// When the binary has not been built.
#[must_use]
pub fn filegate_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let bin = dir.join("filegate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p filegate` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A loopback port nothing listens on right now.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends SIGTERM to a process (graceful shutdown).
pub fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
}

/// Waits (up to 20 s) until a filegate on `port` answers `/healthz`.
pub async fn wait_healthy(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "filegate did not start on port {port}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// `filegate serve` (a separate process) on `port` with this app's database and
    /// bucket and nothing from the caller's environment.
    pub async fn serve_command(&self, port: u16) -> tokio::process::Command {
        let mut cmd = self.command("serve").await;
        cmd.env("FILEGATE_LISTEN", format!("127.0.0.1:{port}"));
        cmd
    }

    /// `filegate SUBCOMMAND` (a separate process) with this app's database and bucket
    /// and nothing from the caller's environment.
    pub async fn command(&self, subcommand: &str) -> tokio::process::Command {
        let b = backends().await;
        let mut cmd = tokio::process::Command::new(filegate_bin());
        cmd.arg(subcommand)
            .env_clear()
            .env("FILEGATE_DATABASE_URL", &self.database_url)
            .env("FILEGATE_S3_ENDPOINT", &b.s3_endpoint)
            .env("FILEGATE_S3_REGION", &b.s3_region)
            .env("FILEGATE_S3_BUCKET", &self.settings.storage.s3_bucket)
            .env("FILEGATE_S3_ACCESS_KEY_ID", &b.s3_access_key_id)
            .env("FILEGATE_S3_SECRET_ACCESS_KEY", &b.s3_secret_access_key)
            .kill_on_drop(true);
        cmd
    }
}

/// The object key a created file's presigned PUT writes (its upload key).
#[must_use]
pub fn upload_key(file: &Value) -> String {
    filegate_domain::keys::upload_key(file["remote_file_path"].as_str().expect("remote_file_path"))
}

/// Standard base64 of the SHA-256 of `bytes`, as `checksum_sha256` wants it.
#[must_use]
pub fn sha256_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// The whole path a client takes, against any running filegate at `url`: reserve
/// `bytes` as `name` (size and digest declared), PUT them to the presigned URL with its
/// headers, complete (`ready`), then read the file back through its download URL.
/// Asserts every step; returns the file's answer to `GET /v2/files/{id}`.
///
/// # Panics
/// When any step does not answer as a client expects.
pub async fn upload_round_trip(url: &str, api_key: &str, name: &str, bytes: Vec<u8>) -> Value {
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{url}/v2/files"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({ "files": [{
            "name": name,
            "size_bytes": bytes.len(),
            "checksum_sha256": sha256_b64(&bytes),
        }] }))
        .send()
        .await
        .expect("reserve");
    assert_eq!(res.status(), 200, "reserve");
    let created: Value = res.json().await.expect("reservation JSON");
    let file = &created["files"][0];
    let mut put = http
        .put(file["file_url"].as_str().expect("file_url"))
        .body(bytes.clone());
    for (k, v) in file["upload_headers"].as_object().expect("upload_headers") {
        if !k.eq_ignore_ascii_case("content-length") {
            put = put.header(k, v.as_str().expect("header value"));
        }
    }
    let put = put.send().await.expect("PUT to the presigned URL");
    assert_eq!(
        put.status(),
        200,
        "PUT: {}",
        put.text().await.unwrap_or_default()
    );
    let id = file["file_uuid"].as_str().expect("file_uuid");
    let done = http
        .post(format!("{url}/v2/files/{id}/complete"))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("complete");
    assert_eq!(done.status(), 200, "complete");
    let done: Value = done.json().await.expect("completion JSON");
    assert_eq!(done["status"], "ready", "{done}");
    let got: Value = http
        .get(format!("{url}/v2/files/{id}"))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("file JSON");
    let download = got["download_url"]
        .as_str()
        .expect("a ready file has a download_url");
    let served = http.get(download).send().await.expect("download");
    assert_eq!(served.status(), 200, "download");
    assert_eq!(
        served.bytes().await.expect("downloaded bytes").as_ref(),
        bytes.as_slice(),
        "the download serves the uploaded bytes"
    );
    got
}
