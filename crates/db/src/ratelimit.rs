//! The `postgres` rate-limit store: one token bucket per row, checked and charged by
//! one atomic statement, so every replica enforces one shared limit per key; idle
//! buckets that have refilled are evicted in batches.

use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::DbError;
use crate::query::{self, FromRow, col};

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub allowed: bool,
    /// Tokens left after this check.
    pub tokens: f64,
}

/// Refills the bucket for the time since its last check, then takes one token if there
/// is one, all in one statement (the row lock serializes concurrent checks).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn take(pool: &Pool, key: &str, rate: f64, burst: f64) -> Result<BucketState, DbError> {
    // In ON CONFLICT DO UPDATE every `b.` is the locked, latest row, so concurrent
    // checks of one key serialize and each sees the previous one's result.
    const REFILLED: &str =
        "least($3, b.tokens + greatest(0, extract(epoch FROM now() - b.updated_at)) * $2)";
    let sql = format!(
        "INSERT INTO rate_limit_buckets AS b (key, tokens, updated_at, full_at, last_allowed)
         VALUES ($1::text, $3::float8 - 1, now(), now() + make_interval(secs => 1 / $2::float8), true)
         ON CONFLICT (key) DO UPDATE SET
             last_allowed = {REFILLED} >= 1,
             tokens = {REFILLED} - CASE WHEN {REFILLED} >= 1 THEN 1 ELSE 0 END,
             updated_at = greatest(b.updated_at, now()),
             full_at = greatest(b.updated_at, now())
                 + make_interval(secs => ($3 - {REFILLED} + CASE WHEN {REFILLED} >= 1 THEN 1 ELSE 0 END) / $2)
         RETURNING last_allowed, tokens"
    );
    let row = query::query_one(pool, &sql, &[&key, &rate, &burst]).await?;
    BucketState::from_row(&row)
}

impl FromRow for BucketState {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            allowed: col(row, "last_allowed")?,
            tokens: col(row, "tokens")?,
        })
    }
}

/// Deletes up to `batch` buckets that have refilled completely (idle keys).
///
/// # Errors
/// [`DbError`] on database failure.
#[tracing::instrument(skip_all, err(Display, level = "warn"))]
pub async fn evict_full(pool: &Pool, batch: i64) -> Result<u64, DbError> {
    query::execute(
        pool,
        "DELETE FROM rate_limit_buckets WHERE key IN (
            SELECT key FROM rate_limit_buckets WHERE full_at < clock_timestamp()
             LIMIT $1 FOR UPDATE SKIP LOCKED)",
        &[&batch],
    )
    .await
}
