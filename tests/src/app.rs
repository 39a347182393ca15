//! [`TestApp`]: a running filegate with its own database, bucket and tenant, and
//! everything a test does with it: requests as the tenant or another key, uploads
//! through presigned URLs, looks at the rows and the objects, and more instances.
//! [`spawn_app`](crate::spawn_app) starts one.

use filegate::http::server::Application;
use filegate::settings::ServeSettings;
use filegate_db::Pool;
use filegate_domain::Limits;
use filegate_storage::Storage;
use reqwest::header::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use crate::{Answer, Tenant, backends, filegate_bin, sha256_b64, storage, tenant, upload};

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
    /// What the app's start-up probe found the store to do.
    pub store: Option<filegate_storage::probe::Report>,
}

impl TestApp {
    // Tenants, written straight into the database.

    /// A new organization with one workspace of `limits` and an org-wide key defaulting to it.
    pub async fn create_tenant(&self, limits: &Limits) -> Tenant {
        tenant::create_tenant(&self.pool, limits).await
    }

    /// A new workspace in `org`.
    pub async fn create_workspace(&self, org: Uuid, limits: &Limits) -> Uuid {
        tenant::create_workspace(&self.pool, org, limits).await
    }

    /// A new key; returns the secret and the id.
    pub async fn create_key(
        &self,
        org: Uuid,
        scope: Option<Vec<Uuid>>,
        default: Option<Uuid>,
    ) -> (String, Uuid) {
        tenant::create_key(&self.pool, org, scope, default).await
    }

    // Requests to the API.

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

    /// A plain `GET` without credentials.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// The app's `/metrics` exposition, scraped without credentials.
    pub async fn metrics_text(&self) -> String {
        self.get_anonymous("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
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

    /// Reserves `bytes` as `name` with `key` (declaring size and digest), uploads them
    /// through the presigned URL and asks for completion: the reservation's entry and
    /// the completion's answer.
    pub async fn reserve_upload_complete_as(
        &self,
        key: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (serde_json::Value, Answer) {
        let res = self
            .create_files_as(
                key,
                &serde_json::json!({ "files": [{ "name": name, "size_bytes": bytes.len(), "checksum_sha256": sha256_b64(&bytes) }] }),
            )
            .await;
        assert_eq!(res.status, 200, "{name}: {:?}", res.body);
        let file = res.body["files"][0].clone();
        assert_eq!(self.upload(&file, bytes).await, 200, "PUT {name}");
        let id = file["file_uuid"].as_str().expect("file_uuid").to_owned();
        let done = Answer::of(
            self.request_as(
                key,
                reqwest::Method::POST,
                &format!("/v2/files/{id}/complete"),
            )
            .send()
            .await
            .expect("complete"),
        )
        .await;
        (file, done)
    }

    /// Whether the store was seen to do `capability`. A test whose assertion rests on
    /// it asks here and, where the store lacks it, asserts what filegate does instead;
    /// it says so on stderr, by the capability's name.
    #[must_use]
    pub fn store_has(&self, capability: filegate_storage::probe::Capability) -> bool {
        let has = self.store.as_ref().is_some_and(|r| r.has(capability));
        if !has {
            eprintln!(
                "store lacks {}: asserting filegate's fallback instead",
                capability.name()
            );
        }
        has
    }

    /// The typed API client, as the tenant.
    #[must_use]
    pub fn client(&self) -> filegate_client::Client {
        filegate_client::Client::new(&self.address, &self.tenant.key).expect("client")
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

    /// Reads a ready file's bytes through its `download_url`, as a user would.
    pub async fn download(&self, file: &Value) -> Vec<u8> {
        let id: Uuid = file["file_uuid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("file_uuid");
        let got = self.client().get(id).await.expect("GET file");
        let url = got
            .download_url
            .as_deref()
            .unwrap_or_else(|| panic!("no download_url in {got:?}"));
        let res = self.http.get(url).send().await.expect("GET download_url");
        assert_eq!(res.status(), 200, "download");
        res.bytes().await.expect("download body").to_vec()
    }

    // Uploads through presigned URLs.

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
        let mut headers = upload::upload_headers(created);
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

    // What the database holds.

    /// The workspace's `(used_bytes, reserved_bytes)` counters. Read in the same
    /// statement as its file rows, and panics unless its file counters (live and
    /// pending) equal the rows: every test that reads the byte counters checks the
    /// file counts too.
    pub async fn counters(&self, workspace: Uuid) -> (i64, i64) {
        let client = self.pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT used_bytes, reserved_bytes, live_files, pending_files,
                        (SELECT count(*) FROM files f WHERE f.workspace_id = w.id
                            AND f.status IN ('pending', 'ready')) AS live_rows,
                        (SELECT count(*) FROM files f WHERE f.workspace_id = w.id
                            AND f.status = 'pending') AS pending_rows
                   FROM workspaces w WHERE id = $1",
                &[&workspace],
            )
            .await
            .expect("counters");
        let (live, pending): (i64, i64) = (row.get(2), row.get(3));
        let (live_rows, pending_rows): (i64, i64) = (row.get(4), row.get(5));
        assert_eq!(
            (live, pending),
            (live_rows, pending_rows),
            "the workspace's (live, pending) file counters disagree with its rows"
        );
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

    /// Every object the store holds under a workspace (served, upload and derived keys).
    pub async fn objects_of(&self, workspace: Uuid) -> usize {
        let mut n = 0;
        for prefix in [
            format!("{workspace}/"),
            format!("uploads/{workspace}/"),
            format!("derived/{workspace}/"),
        ] {
            let listed = self
                .s3()
                .await
                .list_objects_v2()
                .bucket(&self.settings.storage.s3_bucket)
                .prefix(prefix)
                .send()
                .await
                .expect("list objects");
            n += listed.contents().len();
        }
        n
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

    // What the bucket holds.

    /// A plain S3 client for the app's bucket.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        storage::s3_client().await
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

    /// True when the object exists in the app's bucket.
    pub async fn object_exists(&self, key: &str) -> bool {
        self.storage.head(key).await.expect("HeadObject").is_some()
    }

    // More instances: another replica, or filegate as a separate process.

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
