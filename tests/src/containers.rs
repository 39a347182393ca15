//! Containers for tests: `FILEGATE_TEST_BACKEND=containers` runs the suites against
//! Postgres and an S3 server in containers, and [`FilegateStack`] gives downstream
//! suites a whole filegate (Postgres, an S3 server, filegate) on one Docker network.
//!
//! Images come from the environment, defaulting to the public images users pull:
//!
//! | variable | default |
//! |---|---|
//! | `FILEGATE_TEST_POSTGRES_IMAGE` | `postgres:16-alpine` |
//! | `FILEGATE_TEST_S3_IMAGE` | `minio/minio:RELEASE.2025-04-22T22-12-26Z` |
//! | `FILEGATE_TEST_S3_KIND` | `minio`, or `garage` (the default when the S3 image's name has "garage" in it) |
//! | `FILEGATE_TEST_FILEGATE_IMAGE` | `filegate:local` |
//!
//! Any Postgres image that honours `POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB` and
//! logs "ready to accept connections" on stderr works (Docker Hub's, or the Debian one
//! `scripts/images` builds). For Garage, the helper writes a single-node configuration
//! into the container and sets up layout, key and bucket through Garage's admin API.
//!
//! With `FILEGATE_TEST_CONTAINERS_SESSION` set, the backend containers are named after
//! it and reused by every test process of the session (one Postgres and one S3 server
//! for a whole suite, even when each test runs in its own process); the session's
//! owner removes them (`scripts/test` does, by the label `filegate.test-session`).

use std::time::Duration;

use testcontainers::core::{ContainerPort, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt, ReuseDirective};
use tokio::sync::OnceCell;

use crate::Backends;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The label every container of a test session carries (value: the session).
pub const SESSION_LABEL: &str = "filegate.test-session";

/// MinIO's default root credentials, which Docker Hub's image starts with.
pub const MINIO_USER: &str = "minioadmin";
pub const MINIO_PASSWORD: &str = "minioadmin";

/// Garage's credentials in a test container (key ids are GK + 24 hex; secrets 64 hex,
/// and Garage refuses anything shorter than 16 characters, such as MinIO's).
const GARAGE_KEY_ID: &str = "GK0123456789abcdef01234567";
const GARAGE_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const GARAGE_ADMIN_TOKEN: &str = "filegate-test-admin-token";
const GARAGE_CONFIG: &str = r#"metadata_dir = "/var/lib/garage/meta"
data_dir = "/var/lib/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "[::]:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "1111111111111111111111111111111111111111111111111111111111111111"

[s3_api]
s3_region = "garage"
api_bind_addr = "[::]:3900"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "[::]:3903"
admin_token = "filegate-test-admin-token"
"#;

/// Which S3 server an image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    Minio,
    Garage,
}

/// An image name and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
}

impl ImageRef {
    /// `name:tag` (a missing tag is `latest`; a registry port is not taken for a tag).
    #[must_use]
    pub fn parse(image: &str) -> Self {
        match image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((name, tag)) => Self {
                name: name.to_owned(),
                tag: tag.to_owned(),
            },
            None => Self {
                name: image.to_owned(),
                tag: "latest".to_owned(),
            },
        }
    }

    fn generic(&self) -> GenericImage {
        GenericImage::new(self.name.as_str(), self.tag.as_str())
    }
}

/// The images a stack runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub postgres: ImageRef,
    pub s3: ImageRef,
    pub s3_kind: S3Kind,
    pub filegate: ImageRef,
}

impl Images {
    /// From the environment (see the module docs), with the public images as defaults.
    #[must_use]
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let s3 = var(
            "FILEGATE_TEST_S3_IMAGE",
            "minio/minio:RELEASE.2025-04-22T22-12-26Z",
        );
        let s3_kind = match std::env::var("FILEGATE_TEST_S3_KIND").as_deref() {
            Ok("garage") => S3Kind::Garage,
            Ok("minio") => S3Kind::Minio,
            _ if s3.contains("garage") => S3Kind::Garage,
            _ => S3Kind::Minio,
        };
        Self {
            postgres: ImageRef::parse(&var("FILEGATE_TEST_POSTGRES_IMAGE", "postgres:16-alpine")),
            s3: ImageRef::parse(&s3),
            s3_kind,
            filegate: ImageRef::parse(&var("FILEGATE_TEST_FILEGATE_IMAGE", "filegate:local")),
        }
    }
}

/// Where a container is asked to run: its name and network, and the session it belongs
/// to (reused across processes when there is one).
#[derive(Debug, Clone, Default)]
struct Placement {
    name: Option<String>,
    network: Option<String>,
    session: Option<String>,
}

impl Placement {
    fn apply<I: testcontainers::Image>(&self, req: ContainerRequest<I>) -> ContainerRequest<I> {
        let mut req = req.with_startup_timeout(Duration::from_secs(120));
        if let Some(name) = &self.name {
            req = req.with_container_name(name);
        }
        if let Some(network) = &self.network {
            req = req.with_network(network);
        }
        if let Some(session) = &self.session {
            req = req
                .with_label(SESSION_LABEL, session)
                .with_reuse(ReuseDirective::Always);
        }
        req
    }
}

/// Postgres with user, password and database `postgres`.
async fn start_postgres(
    image: &ImageRef,
    at: &Placement,
) -> Result<ContainerAsync<GenericImage>, BoxError> {
    let req = image
        .generic()
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::message_on_stderr(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_USER", "postgres")
        .with_env_var("POSTGRES_PASSWORD", "postgres")
        .with_env_var("POSTGRES_DB", "postgres")
        // The suites clone many databases and hold pools to several at once.
        .with_cmd(["postgres", "-c", "max_connections=300", "-c", "fsync=off"]);
    Ok(at.apply(req).start().await?)
}

/// An S3 server's container and how to reach it from the host.
struct S3Container {
    container: ContainerAsync<GenericImage>,
    endpoint: String,
    region: &'static str,
    key_id: &'static str,
    secret: &'static str,
}

async fn start_s3(kind: S3Kind, image: &ImageRef, at: &Placement) -> Result<S3Container, BoxError> {
    match kind {
        S3Kind::Minio => {
            let req = image
                .generic()
                .with_exposed_port(9000.tcp())
                .with_wait_for(WaitFor::message_on_stderr("API:"))
                .with_env_var("MINIO_ROOT_USER", MINIO_USER)
                .with_env_var("MINIO_ROOT_PASSWORD", MINIO_PASSWORD)
                .with_cmd(["server", "/data"]);
            let container = at.apply(req).start().await?;
            let endpoint = host_url(&container, 9000.tcp()).await?;
            Ok(S3Container {
                container,
                endpoint,
                region: "us-east-1",
                key_id: MINIO_USER,
                secret: MINIO_PASSWORD,
            })
        }
        S3Kind::Garage => {
            let req = image
                .generic()
                .with_exposed_port(3900.tcp())
                .with_exposed_port(3903.tcp())
                .with_copy_to("/etc/garage.toml", GARAGE_CONFIG.as_bytes().to_vec());
            let container = at.apply(req).start().await?;
            let endpoint = host_url(&container, 3900.tcp()).await?;
            let admin = host_url(&container, 3903.tcp()).await?;
            garage_setup(&admin).await?;
            Ok(S3Container {
                container,
                endpoint,
                region: "garage",
                key_id: GARAGE_KEY_ID,
                secret: GARAGE_SECRET,
            })
        }
    }
}

async fn host_url(
    container: &ContainerAsync<GenericImage>,
    port: ContainerPort,
) -> Result<String, BoxError> {
    Ok(format!(
        "http://{}:{}",
        container.get_host().await?,
        container.get_host_port_ipv4(port).await?
    ))
}

/// A fresh single-node Garage: the layout, the test key (allowed to create buckets),
/// and the `filegate` bucket with the key on it. Idempotent, so a reused container
/// passes through unchanged.
async fn garage_setup(admin: &str) -> Result<(), BoxError> {
    use serde_json::{Value, json};
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{admin}/v2/{path}"))
            .bearer_auth(GARAGE_ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match call(get.clone(), "GetClusterHealth", None).await {
            Ok(r) if r.status().is_success() => break,
            _ if std::time::Instant::now() > deadline => {
                return Err("Garage's admin API did not answer within 60 s".into());
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let status: Value = call(get.clone(), "GetClusterStatus", None)
        .await?
        .error_for_status()?
        .json()
        .await?;
    let node = status["nodes"][0]["id"]
        .as_str()
        .ok_or("Garage reported no node")?
        .to_owned();
    let layout: Value = call(get.clone(), "GetClusterLayout", None)
        .await?
        .error_for_status()?
        .json()
        .await?;
    if layout["roles"].as_array().is_none_or(Vec::is_empty) {
        let role = json!({ "roles": [{ "id": node, "zone": "dc1", "capacity": 1_000_000_000u64, "tags": [] }] });
        call(post.clone(), "UpdateClusterLayout", Some(role))
            .await?
            .error_for_status()?;
        call(
            post.clone(),
            "ApplyClusterLayout",
            Some(json!({ "version": 1 })),
        )
        .await?
        .error_for_status()?;
    }
    // Already there on a reused container: that answer is an error, and fine.
    let _ = call(
        post.clone(),
        "ImportKey",
        Some(json!({ "name": "filegate-test", "accessKeyId": GARAGE_KEY_ID, "secretAccessKey": GARAGE_SECRET })),
    )
    .await?;
    call(
        post.clone(),
        &format!("UpdateKey?id={GARAGE_KEY_ID}"),
        Some(json!({ "allow": { "createBucket": true } })),
    )
    .await?
    .error_for_status()?;
    let bucket: Value = match call(get.clone(), "GetBucketInfo?globalAlias=filegate", None).await? {
        r if r.status().is_success() => r.json().await?,
        _ => {
            call(
                post.clone(),
                "CreateBucket",
                Some(json!({ "globalAlias": "filegate" })),
            )
            .await?
            .error_for_status()?
            .json()
            .await?
        }
    };
    let bucket_id = bucket["id"]
        .as_str()
        .ok_or("Garage gave the bucket no id")?;
    call(
        post,
        "AllowBucketKey",
        Some(json!({
            "bucketId": bucket_id,
            "accessKeyId": GARAGE_KEY_ID,
            "permissions": { "read": true, "write": true, "owner": true },
        })),
    )
    .await?
    .error_for_status()?;
    Ok(())
}

struct Running {
    _postgres: ContainerAsync<GenericImage>,
    _s3: ContainerAsync<GenericImage>,
}

static RUNNING: OnceCell<Running> = OnceCell::const_new();

/// Starts (once per process, or once per session) Postgres and an S3 server, and
/// describes them as [`Backends`].
///
/// # Panics
/// When Docker is not reachable or a container does not start.
pub async fn start() -> Backends {
    let images = Images::from_env();
    let session = std::env::var("FILEGATE_TEST_CONTAINERS_SESSION")
        .ok()
        .filter(|s| !s.is_empty());
    let at = |what: &str| Placement {
        name: session.as_ref().map(|s| format!("fgt-{s}-{what}")),
        network: None,
        session: session.clone(),
    };
    // Processes of one session start the shared containers one at a time; the first
    // creates them, the others find and reuse them.
    let _lock = session.as_ref().map(|s| {
        let path = std::env::temp_dir().join(format!("fgt-{s}-containers.lock"));
        let file = std::fs::File::create(path).expect("session lock file");
        file.lock().expect("lock the session");
        file
    });
    let postgres = start_postgres(&images.postgres, &at("postgres"))
        .await
        .expect("start the Postgres container (is Docker running, and the image local?)");
    let s3 = start_s3(images.s3_kind, &images.s3, &at("s3"))
        .await
        .expect("start the S3 container (is Docker running, and the image local?)");
    let pg_host = postgres.get_host().await.expect("postgres host");
    let pg_port = postgres
        .get_host_port_ipv4(5432)
        .await
        .expect("postgres port");
    let backends = Backends {
        database_url: format!("postgres://postgres:postgres@{pg_host}:{pg_port}/postgres"),
        s3_endpoint: s3.endpoint.clone(),
        s3_region: s3.region.into(),
        s3_access_key_id: s3.key_id.into(),
        s3_secret_access_key: s3.secret.into(),
        run: format!("c{}", std::process::id()),
    };
    let _ = RUNNING.set(Running {
        _postgres: postgres,
        _s3: s3.container,
    });
    backends
}

/// A whole filegate stack in containers, for downstream test suites: Postgres, an S3
/// server (MinIO or Garage) and filegate, on one Docker network, migrated, with a demo
/// tenant. The images are [`Images::from_env`]'s unless given.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// // docker build -f deploy/Dockerfile -t filegate:local .
/// let stack = filegate_tests::containers::FilegateStack::start().await?;
/// let res = reqwest::Client::new()
///     .post(format!("{}/v2/files", stack.url))
///     .bearer_auth(&stack.api_key)
///     .json(&serde_json::json!({ "files": [{ "name": "a.txt", "size_bytes": 5 }] }))
///     .send()
///     .await?;
/// assert_eq!(res.status(), 200);
/// // Presigned URLs point at the S3 server's host port, so the test process can PUT to them.
/// # Ok(()) }
/// ```
pub struct FilegateStack {
    /// filegate's base URL, from the host (`http://127.0.0.1:PORT`).
    pub url: String,
    /// An API key of the demo organization, defaulting to `workspace`.
    pub api_key: String,
    pub workspace: uuid::Uuid,
    /// Postgres from the host, for direct inspection.
    pub database_url: String,
    /// The S3 server from the host (also the public endpoint signed into URLs).
    pub s3_endpoint: String,
    _postgres: ContainerAsync<GenericImage>,
    _s3: ContainerAsync<GenericImage>,
    _filegate: ContainerAsync<GenericImage>,
}

impl std::fmt::Debug for FilegateStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilegateStack")
            .field("url", &self.url)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl FilegateStack {
    /// Starts the stack with the images the environment names (see the module docs).
    ///
    /// # Errors
    /// When Docker is unreachable, an image is missing, or a container does not start.
    pub async fn start() -> Result<Self, BoxError> {
        Self::start_with(&Images::from_env()).await
    }

    /// Starts the stack with these images.
    ///
    /// # Errors
    /// When Docker is unreachable, an image is missing, or a container does not start.
    pub async fn start_with(images: &Images) -> Result<Self, BoxError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let network = format!("filegate-{}", &id[..12]);
        let (pg_name, s3_name) = (
            format!("fg-postgres-{}", &id[..12]),
            format!("fg-s3-{}", &id[..12]),
        );
        let at = |name: &str| Placement {
            name: Some(name.to_owned()),
            network: Some(network.clone()),
            session: None,
        };
        let postgres = start_postgres(&images.postgres, &at(&pg_name)).await?;
        let s3 = start_s3(images.s3_kind, &images.s3, &at(&s3_name)).await?;
        let database_url = format!(
            "postgres://postgres:postgres@{}:{}/postgres",
            postgres.get_host().await?,
            postgres.get_host_port_ipv4(5432).await?
        );

        filegate_db::migrate(&database_url).await?;
        let pool = filegate_db::connect(&filegate_db::PoolSettings {
            url: database_url.clone().into(),
            ca_file: None,
            max_size: 2,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        })?;
        let org = filegate_db::orgs::create(&pool, "demo").await?;
        let workspace = filegate_db::workspaces::create(
            &pool,
            org,
            "demo",
            &filegate_domain::Limits::default(),
        )
        .await?
        .id;
        let minted = filegate::service::keys::mint()?;
        filegate_db::keys::create(
            &pool,
            &filegate_db::keys::NewKey {
                id: minted.id,
                organization_id: org,
                workspace_scope: None,
                default_workspace_id: Some(workspace),
                secret_sha256: minted.sha256,
            },
        )
        .await?;

        let s3_port = match images.s3_kind {
            S3Kind::Minio => 9000,
            S3Kind::Garage => 3900,
        };
        let filegate = images
            .filegate
            .generic()
            .with_exposed_port(8080.tcp())
            .with_wait_for(WaitFor::message_on_stderr("filegate listening"))
            .with_network(&network)
            .with_env_var("FILEGATE_LISTEN", "0.0.0.0:8080")
            .with_env_var(
                "FILEGATE_DATABASE_URL",
                format!("postgres://postgres:postgres@{pg_name}:5432/postgres"),
            )
            .with_env_var(
                "FILEGATE_S3_ENDPOINT",
                format!("http://{s3_name}:{s3_port}"),
            )
            .with_env_var("FILEGATE_S3_PUBLIC_ENDPOINT", &s3.endpoint)
            .with_env_var("FILEGATE_S3_REGION", s3.region)
            .with_env_var("FILEGATE_S3_BUCKET", "filegate")
            .with_env_var("FILEGATE_S3_CREATE_BUCKET", "true")
            .with_env_var("FILEGATE_S3_ACCESS_KEY_ID", s3.key_id)
            .with_env_var("FILEGATE_S3_SECRET_ACCESS_KEY", s3.secret)
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await?;
        let url = format!(
            "http://{}:{}",
            filegate.get_host().await?,
            filegate.get_host_port_ipv4(8080).await?
        );
        Ok(Self {
            url,
            api_key: minted.secret,
            workspace,
            database_url,
            s3_endpoint: s3.endpoint,
            _postgres: postgres,
            _s3: s3.container,
            _filegate: filegate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_at_the_tag() {
        assert_eq!(
            ImageRef::parse("postgres:16-alpine"),
            ImageRef {
                name: "postgres".into(),
                tag: "16-alpine".into()
            }
        );
        assert_eq!(ImageRef::parse("filegate-local/garage:2.5.0").tag, "2.5.0");
        assert_eq!(ImageRef::parse("registry:5000/minio").tag, "latest");
        assert_eq!(ImageRef::parse("alpine").name, "alpine");
    }
}
