//! Organizations: the tenants.

use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::DbError;
use crate::query;

/// Creates an organization and returns its id.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn create(pool: &Pool, name: &str) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    query::execute(
        pool,
        "INSERT INTO organizations (id, name) VALUES ($1, $2)",
        &[&id, &name],
    )
    .await?;
    Ok(id)
}

/// True when the organization exists.
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn exists(pool: &Pool, id: Uuid) -> Result<bool, DbError> {
    let row = query::query_opt(pool, "SELECT 1 FROM organizations WHERE id = $1", &[&id]).await?;
    Ok(row.is_some())
}
