//! Where the real services are: Postgres and the S3 server, read once per test process
//! from `scripts/test`'s environment (`FILEGATE_TEST_*`) or started as containers.

use tokio::sync::OnceCell;

use crate::containers;

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
