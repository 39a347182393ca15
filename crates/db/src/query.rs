//! How every statement of the crate runs: a connection from the pool, the connection's
//! cached prepared statement for the SQL (each statement is parsed and planned once per
//! connection), then the call, with any failure turned into a [`DbError`].
//!
//! The free functions take a connection for one statement; [`Conn`] keeps one for a
//! function that runs several statements on the same session. Only two places talk to
//! a client directly: reconciliation's lock, which lives in a transaction, and the
//! migrations, which run on a connection of their own outside the pool.

use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::DbError;

/// A statement's parameters, in `$n` order.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A pooled connection held across statements (it goes back to the pool when dropped).
pub(crate) struct Conn(Object);

impl Conn {
    /// Takes a connection from the pool.
    pub(crate) async fn get(pool: &Pool) -> Result<Self, DbError> {
        Ok(Self(pool.get().await?))
    }

    /// Every row the statement returns.
    pub(crate) async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, DbError> {
        let stmt = self.0.prepare_cached(sql).await?;
        Ok(self.0.query(&stmt, params).await?)
    }

    /// The one row the statement returns, or `None`; more than one row is an error.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, DbError> {
        let stmt = self.0.prepare_cached(sql).await?;
        Ok(self.0.query_opt(&stmt, params).await?)
    }

    /// The one row the statement returns; none or more than one is an error.
    pub(crate) async fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, DbError> {
        let stmt = self.0.prepare_cached(sql).await?;
        Ok(self.0.query_one(&stmt, params).await?)
    }

    /// Runs the statement and returns how many rows it affected.
    pub(crate) async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, DbError> {
        let stmt = self.0.prepare_cached(sql).await?;
        Ok(self.0.execute(&stmt, params).await?)
    }
}

/// [`Conn::query`] on a connection of its own.
pub(crate) async fn query(
    pool: &Pool,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, DbError> {
    Conn::get(pool).await?.query(sql, params).await
}

/// [`Conn::query_opt`] on a connection of its own.
pub(crate) async fn query_opt(
    pool: &Pool,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, DbError> {
    Conn::get(pool).await?.query_opt(sql, params).await
}

/// [`Conn::query_one`] on a connection of its own.
pub(crate) async fn query_one(pool: &Pool, sql: &str, params: &Params<'_>) -> Result<Row, DbError> {
    Conn::get(pool).await?.query_one(sql, params).await
}

/// [`Conn::execute`] on a connection of its own.
pub(crate) async fn execute(pool: &Pool, sql: &str, params: &Params<'_>) -> Result<u64, DbError> {
    Conn::get(pool).await?.execute(sql, params).await
}
