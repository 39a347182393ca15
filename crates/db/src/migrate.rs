//! The embedded migrations (`migrations/` at the repository root), applied under an
//! advisory lock.

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Why migrations could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("could not connect to the database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("could not set up TLS to the database")]
    Tls(#[source] crate::tls::TlsError),
    #[error("could not take the migration lock")]
    Lock(#[source] tokio_postgres::Error),
    #[error("a migration failed")]
    Migration(#[source] refinery::Error),
}

/// An arbitrary constant: the advisory lock that serializes migrating replicas.
const MIGRATION_LOCK: i64 = 0x66_69_6c_65_67_61_74_65; // "filegate"

/// Applies every embedded migration not yet applied, under an advisory lock so that
/// replicas starting together do not race. Applying twice is a no-op.
/// Returns the names of the migrations applied by this call.
///
/// # Errors
/// [`MigrateError`] when the database cannot be reached or a migration fails.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn migrate(url: &str) -> Result<Vec<String>, MigrateError> {
    migrate_with_ca(url, None).await
}

/// [`migrate`], trusting `ca_file` for a verifying `sslmode` (see [`crate::tls`]).
///
/// # Errors
/// [`MigrateError`] when the database cannot be reached or a migration fails.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn migrate_with_ca(
    url: &str,
    ca_file: Option<&str>,
) -> Result<Vec<String>, MigrateError> {
    let split = crate::tls::split(url).map_err(MigrateError::Tls)?;
    let tls = crate::tls::connector(split.mode, ca_file.or(split.root_cert.as_deref()))
        .map_err(MigrateError::Tls)?;
    let (mut client, connection) = tokio_postgres::connect(&split.url, tls)
        .await
        .map_err(MigrateError::Connect)?;
    let conn = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "migration connection closed with an error");
        }
    });
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(MigrateError::Lock)?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    // The lock is released with the session either way; unlock explicitly for tidiness.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = conn.await;
    let report = result.map_err(MigrateError::Migration)?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}
