//! The connection pool: its settings, building it, and a readiness ping.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret as _, SecretString};

use crate::DbError;

/// How to reach Postgres and how many connections to keep. `Debug` never shows the
/// URL, which may hold a password.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// A libpq-style URL (`postgres://user@host:port/db`); its `sslmode` and
    /// `sslrootcert` are honoured (see [`crate::tls`]).
    pub url: SecretString,
    /// A CA bundle (PEM) for a verifying `sslmode`; overrides `sslrootcert`.
    pub ca_file: Option<String>,
    /// Most connections the pool opens.
    pub max_size: usize,
    /// How long a request waits for a connection, and how long connecting may take.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` for every session.
    pub statement_timeout: Duration,
}

/// Builds the pool. Connections are opened lazily, so this succeeds while Postgres is
/// down; requests then fail fast with [`DbError::Unavailable`] until it is back.
///
/// # Errors
/// [`DbError::Unavailable`] when the URL cannot be parsed or the pool cannot be built.
pub fn connect(settings: &PoolSettings) -> Result<Pool, DbError> {
    let split = crate::tls::split(settings.url.expose_secret())
        .map_err(|e| DbError::Unavailable(Box::new(e)))?;
    let tls = crate::tls::connector(
        split.mode,
        settings.ca_file.as_deref().or(split.root_cert.as_deref()),
    )
    .map_err(|e| DbError::Unavailable(Box::new(e)))?;
    let mut config = tokio_postgres::Config::from_str(&split.url)
        .map_err(|e| DbError::Unavailable(Box::new(e)))?;
    config.connect_timeout(settings.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("filegate");
    }
    let options = format!(
        "{} -c statement_timeout={}",
        config.get_options().unwrap_or_default(),
        settings.statement_timeout.as_millis()
    );
    config.options(options.trim());
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.connect_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .build()
        .map_err(|e| DbError::Unavailable(Box::new(e)))
}

/// One round trip to the server, for readiness checks.
///
/// # Errors
/// [`DbError`] when no connection can be had or the query fails.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    crate::query::query_one(pool, "SELECT 1", &[]).await?;
    Ok(())
}
