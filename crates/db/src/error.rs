//! [`DbError`](crate::DbError): the database was unavailable (a retry may succeed) or a
//! statement failed, and which [`Constraint`](crate::Constraint) it violated.

use tokio_postgres::error::SqlState;

use crate::Constraint;

/// A database failure. Expected outcomes are never errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had, or the server went away, is shutting down or timed
    /// out: the request may succeed when retried.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server answered with an error a retry would not fix.
    #[error("a database query failed")]
    Query(#[source] tokio_postgres::Error),
    /// A row did not hold what the code reads from it: a column renamed or dropped,
    /// another type, or a value outside its domain (a status no file can have).
    #[error("the database returned an unreadable `{column}`")]
    Decode {
        column: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// One statement's failure, shared by every request that was in it (see
    /// [`DbError::shared`]).
    #[error(transparent)]
    Shared(std::sync::Arc<DbError>),
}

impl DbError {
    /// A failure several requests share (one statement ran for all of them), as one
    /// request's own; it answers [`Self::constraint`], [`Self::is_deadlock`] and
    /// [`Self::is_unavailable`] as the original does.
    #[must_use]
    pub fn shared(e: std::sync::Arc<DbError>) -> Self {
        std::sync::Arc::try_unwrap(e).unwrap_or_else(Self::Shared)
    }

    /// The request may succeed when retried (see [`Self::Unavailable`]).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Shared(e) => e.is_unavailable(),
            Self::Query(_) | Self::Decode { .. } => false,
        }
    }

    /// The constraint a failed statement violated, when it is one the code reacts to
    /// (a violation of any other constraint is `None`).
    #[must_use]
    pub fn constraint(&self) -> Option<Constraint> {
        match self {
            Self::Query(e) => e
                .as_db_error()
                .and_then(|d| d.constraint())
                .and_then(Constraint::from_name),
            Self::Unavailable(_) | Self::Decode { .. } => None,
            Self::Shared(e) => e.constraint(),
        }
    }

    /// Postgres broke a deadlock by failing this statement: running it again may
    /// succeed.
    #[must_use]
    pub fn is_deadlock(&self) -> bool {
        let code = match self {
            Self::Query(e) => e.code(),
            Self::Unavailable(e) => e
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(tokio_postgres::Error::code),
            Self::Decode { .. } => None,
            Self::Shared(e) => return e.is_deadlock(),
        };
        code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        let transient = match e.as_db_error() {
            // No server answer: a closed connection or an I/O error is transient; a
            // client-side error (a parameter that does not serialize) is not.
            None => {
                e.is_closed()
                    || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            }
            Some(db) => {
                let code = db.code();
                code.code().starts_with("08")
                    || [
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                        SqlState::QUERY_CANCELED,
                        // The victim of a deadlock: nothing it did remains; a retry
                        // may go through.
                        SqlState::T_R_DEADLOCK_DETECTED,
                    ]
                    .contains(code)
            }
        };
        if transient {
            Self::Unavailable(Box::new(e))
        } else {
            Self::Query(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}
