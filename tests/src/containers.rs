//! `FILEGATE_TEST_BACKEND=containers`: Postgres and MinIO from testcontainers, for
//! machines with a Docker engine and no local services. The containers live as long
//! as the test process.

use testcontainers::ContainerAsync;
use testcontainers::runners::AsyncRunner;
use testcontainers_modules::minio::MinIO;
use testcontainers_modules::postgres::Postgres;
use tokio::sync::OnceCell;

use crate::Backends;

/// MinIO's default root credentials, which the module's image uses.
pub const MINIO_USER: &str = "minioadmin";
pub const MINIO_PASSWORD: &str = "minioadmin";

struct Running {
    _postgres: ContainerAsync<Postgres>,
    _minio: ContainerAsync<MinIO>,
}

static RUNNING: OnceCell<Running> = OnceCell::const_new();

/// Starts (once per process) Postgres and MinIO and describes them as [`Backends`].
///
/// # Panics
/// When Docker is not reachable or a container does not start.
pub async fn start() -> Backends {
    let postgres = Postgres::default()
        .start()
        .await
        .expect("start the Postgres container (is Docker running?)");
    let minio = MinIO::default()
        .start()
        .await
        .expect("start the MinIO container (is Docker running?)");
    let pg_host = postgres.get_host().await.expect("postgres host");
    let pg_port = postgres
        .get_host_port_ipv4(5432)
        .await
        .expect("postgres port");
    let s3_host = minio.get_host().await.expect("minio host");
    let s3_port = minio.get_host_port_ipv4(9000).await.expect("minio port");
    let backends = Backends {
        database_url: format!("postgres://postgres:postgres@{pg_host}:{pg_port}/postgres"),
        s3_endpoint: format!("http://{s3_host}:{s3_port}"),
        s3_region: "us-east-1".into(),
        s3_access_key_id: MINIO_USER.into(),
        s3_secret_access_key: MINIO_PASSWORD.into(),
        run: format!("c{}", std::process::id()),
    };
    let _ = RUNNING.set(Running {
        _postgres: postgres,
        _minio: minio,
    });
    backends
}

/// A whole filegate stack in containers, for downstream test suites: Postgres, MinIO
/// and a filegate container built from `deploy/Dockerfile`, on one Docker network,
/// migrated, with a demo tenant.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// // docker build -f deploy/Dockerfile -t filegate:local .
/// let stack = filegate_tests::containers::FilegateStack::start("filegate", "local").await?;
/// let res = reqwest::Client::new()
///     .post(format!("{}/v2/files", stack.url))
///     .bearer_auth(&stack.api_key)
///     .json(&serde_json::json!({ "files": [{ "name": "a.txt", "size_bytes": 5 }] }))
///     .send()
///     .await?;
/// assert_eq!(res.status(), 200);
/// // Presigned URLs point at MinIO's host port, so the test process can PUT to them.
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
    /// MinIO from the host (also the public endpoint signed into URLs).
    pub s3_endpoint: String,
    _postgres: ContainerAsync<Postgres>,
    _minio: ContainerAsync<MinIO>,
    _filegate: ContainerAsync<testcontainers::GenericImage>,
}

impl std::fmt::Debug for FilegateStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilegateStack")
            .field("url", &self.url)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl FilegateStack {
    /// Starts the stack with the filegate image `name:tag`.
    ///
    /// # Errors
    /// When Docker is unreachable, an image is missing, or a container does not start.
    pub async fn start(name: &str, tag: &str) -> Result<Self, BoxError> {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::{GenericImage, ImageExt};

        let id = uuid::Uuid::new_v4().simple().to_string();
        let network = format!("filegate-{}", &id[..12]);
        let (pg_name, minio_name) = (
            format!("fg-postgres-{}", &id[..12]),
            format!("fg-minio-{}", &id[..12]),
        );
        let postgres = Postgres::default()
            .with_network(&network)
            .with_container_name(&pg_name)
            .start()
            .await?;
        let minio = MinIO::default()
            .with_network(&network)
            .with_container_name(&minio_name)
            .start()
            .await?;
        let host = postgres.get_host().await?;
        let database_url = format!(
            "postgres://postgres:postgres@{host}:{}/postgres",
            postgres.get_host_port_ipv4(5432).await?
        );
        let s3_endpoint = format!(
            "http://{}:{}",
            minio.get_host().await?,
            minio.get_host_port_ipv4(9000).await?
        );

        filegate_db::migrate(&database_url).await?;
        let pool = filegate_db::connect(&filegate_db::PoolSettings {
            url: database_url.clone(),
            ca_file: None,
            max_size: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(10),
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
        let minted = filegate::auth::mint()?;
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

        let filegate = GenericImage::new(name, tag)
            .with_exposed_port(8080.tcp())
            .with_wait_for(WaitFor::message_on_stderr("filegate listening"))
            .with_network(&network)
            .with_env_var("FILEGATE_LISTEN", "0.0.0.0:8080")
            .with_env_var(
                "FILEGATE_DATABASE_URL",
                format!("postgres://postgres:postgres@{pg_name}:5432/postgres"),
            )
            .with_env_var("FILEGATE_S3_ENDPOINT", format!("http://{minio_name}:9000"))
            .with_env_var("FILEGATE_S3_PUBLIC_ENDPOINT", &s3_endpoint)
            .with_env_var("FILEGATE_S3_REGION", "us-east-1")
            .with_env_var("FILEGATE_S3_BUCKET", "filegate")
            .with_env_var("FILEGATE_S3_CREATE_BUCKET", "true")
            .with_env_var("FILEGATE_S3_ACCESS_KEY_ID", MINIO_USER)
            .with_env_var("FILEGATE_S3_SECRET_ACCESS_KEY", MINIO_PASSWORD)
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
            s3_endpoint,
            _postgres: postgres,
            _minio: minio,
            _filegate: filegate,
        })
    }
}
