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
