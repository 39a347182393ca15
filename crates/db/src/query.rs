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
use tokio_postgres::types::{FromSql, ToSql};

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

/// A value read from a row: every column through [`col`], so a column that is missing
/// or of another type is a [`DbError::Decode`] naming it, never a panic.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, DbError>;
}

/// Column `column` of `row` as a `T`.
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, column: &'static str) -> Result<T, DbError> {
    row.try_get(column).map_err(|e| DbError::Decode {
        column,
        source: Box::new(e),
    })
}

/// Column `column` of `row`, text parsed by `parse` (a domain type's constructor).
pub(crate) fn parsed<T, E>(
    row: &Row,
    column: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, DbError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    parse(col::<&str>(row, column)?).map_err(|e| DbError::Decode {
        column,
        source: e.into(),
    })
}

/// Column `column` of `row` when not NULL, parsed by `parse`.
pub(crate) fn parsed_opt<T, E>(
    row: &Row,
    column: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, DbError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    col::<Option<&str>>(row, column)?
        .map(parse)
        .transpose()
        .map_err(|e| DbError::Decode {
            column,
            source: e.into(),
        })
}

/// Every row read as a `T`.
pub(crate) fn all<T: FromRow>(rows: &[Row]) -> Result<Vec<T>, DbError> {
    rows.iter().map(T::from_row).collect()
}

/// The row, if any, read as a `T`.
pub(crate) fn one<T: FromRow>(row: Option<&Row>) -> Result<Option<T>, DbError> {
    row.map(T::from_row).transpose()
}
