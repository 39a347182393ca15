//! filegate's Postgres layer: the connection pool, the embedded migrations and every
//! query the service issues, one module per concern (files, completion, lifecycle,
//! workspaces, keys, orgs, rate limits, reconciliation). Each function holds its
//! statement and runs it through one private helper (prepared and cached per
//! connection); rows are read by column name.
//!
//! Expected outcomes (not found, quota full, duplicate) are values in the return
//! types; [`DbError`] is only for failures, and names the [`Constraint`] a failed
//! statement violated when the code reacts to that one.

mod constraint;
mod error;
mod migrate;
mod pool;
mod query;

pub mod completion;
pub mod files;
pub mod keys;
pub mod lifecycle;
pub mod orgs;
pub mod processing;
pub mod ratelimit;
pub mod reconcile;
pub mod tls;
pub mod webhooks;
pub mod workspaces;

pub use constraint::Constraint;
pub use deadpool_postgres::Pool;
pub use error::DbError;
pub use migrate::{MigrateError, migrate, migrate_with_ca};
pub use pool::{PoolSettings, connect, ping};
