//! The database statements completion makes, as a trait: [`PgLedger`] runs them on
//! Postgres (claims and settlements grouped by [`GroupCommit`]), and the unit tests of completion
//! keep the same rules in memory.

use std::sync::Arc;
use std::time::Duration;

use filegate_db::completion::{ClaimRequest, Claimed, Lease, Reach, Transition};
use filegate_db::files::FileRow;
use filegate_db::{DbError, Pool};
use uuid::Uuid;

use crate::service::group_commit::{Claims, GroupCommit, Settlements};

/// Claims, transitions and the reads around them.
pub trait Ledger: Send + Sync {
    /// Claims the pending files `ids` within `reach` under `token` for their lease
    /// (see [`filegate_db::completion::claim`]).
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn claim(
        &self,
        ids: &[Uuid],
        reach: Reach<'_>,
        token: Uuid,
        lease: Lease,
    ) -> impl Future<Output = Result<Vec<Claimed>, DbError>> + Send;

    /// Gives back the claims `token` holds on `ids`.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn release(
        &self,
        ids: &[Uuid],
        token: Uuid,
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Gives back the claims `token` holds on `ids` on a task of its own: a completion
    /// dropped midway (its client hung up, the server is stopping) calls it from a
    /// destructor, where nothing can be awaited.
    fn release_detached(&self, ids: Vec<Uuid>, token: Uuid);

    /// Holds the claim `token` has on `id` for `lease` from now; `false` when the
    /// claim is no longer that one.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn extend(
        &self,
        id: Uuid,
        token: Uuid,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// Moves claimed files out of pending (one guarded statement, possibly shared with
    /// other completions); the files that moved, as they are now.
    ///
    /// # Errors
    /// The statement's failure, shared by every completion that was in it.
    fn settle(
        &self,
        transitions: Vec<Transition>,
    ) -> impl Future<Output = Result<Vec<FileRow>, Arc<DbError>>> + Send;

    /// A file, whoever's it is.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn find(&self, id: Uuid) -> impl Future<Output = Result<Option<FileRow>, DbError>> + Send;

    /// The digests signed for a multipart file's parts, by part number.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn part_digests(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Vec<(i32, String)>, DbError>> + Send;

    /// The store confirmed an object's deletion: its queue entry goes.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    fn finish_deletion(&self, key: &str) -> impl Future<Output = Result<(), DbError>> + Send;
}

/// The ledger in Postgres. Its statements' futures are boxed, as the store's calls are
/// (see [`crate::service::store`]).
#[derive(Debug, Clone)]
pub struct PgLedger {
    pool: Pool,
    claims: Arc<GroupCommit<Claims>>,
    settlements: Arc<GroupCommit<Settlements>>,
}

impl PgLedger {
    /// Claims and settlements of concurrent completions share statements of at most
    /// `group_max` files (0: each has its own); a settled file's upload is deleted
    /// `margin` after its URL expired.
    #[must_use]
    pub fn new(pool: Pool, margin: Duration, group_max: usize) -> Self {
        Self {
            claims: GroupCommit::new(Claims { pool: pool.clone() }, group_max),
            settlements: GroupCommit::new(
                Settlements {
                    pool: pool.clone(),
                    margin,
                },
                group_max,
            ),
            pool,
        }
    }
}

impl Ledger for PgLedger {
    fn claim(
        &self,
        ids: &[Uuid],
        reach: Reach<'_>,
        token: Uuid,
        lease: Lease,
    ) -> impl Future<Output = Result<Vec<Claimed>, DbError>> + Send {
        let request = ClaimRequest::new(ids, reach, token, lease);
        let claims = self.claims.clone();
        Box::pin(async move { claims.run(request).await.map_err(DbError::shared) })
    }

    fn release(
        &self,
        ids: &[Uuid],
        token: Uuid,
    ) -> impl Future<Output = Result<(), DbError>> + Send {
        Box::pin(filegate_db::completion::release(&self.pool, ids, token))
    }

    fn release_detached(&self, ids: Vec<Uuid>, token: Uuid) {
        let pool = self.pool.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime left to run it on: the claims lapse with their lease.
        };
        runtime.spawn(async move {
            if let Err(e) = filegate_db::completion::release(&pool, &ids, token).await {
                tracing::warn!(error = %e, files = ids.len(), "could not release the claims of a dropped completion; they lapse by themselves");
            }
        });
    }

    fn extend(
        &self,
        id: Uuid,
        token: Uuid,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, DbError>> + Send {
        Box::pin(filegate_db::completion::extend(
            &self.pool, id, token, lease,
        ))
    }

    fn settle(
        &self,
        transitions: Vec<Transition>,
    ) -> impl Future<Output = Result<Vec<FileRow>, Arc<DbError>>> + Send {
        let settlements = self.settlements.clone();
        Box::pin(async move {
            if transitions.is_empty() {
                return Ok(Vec::new());
            }
            settlements.run(transitions).await
        })
    }

    fn find(&self, id: Uuid) -> impl Future<Output = Result<Option<FileRow>, DbError>> + Send {
        Box::pin(filegate_db::files::find(&self.pool, id))
    }

    fn part_digests(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Vec<(i32, String)>, DbError>> + Send {
        Box::pin(filegate_db::files::part_digests(&self.pool, id))
    }

    fn finish_deletion(&self, key: &str) -> impl Future<Output = Result<(), DbError>> + Send {
        Box::pin(filegate_db::lifecycle::finish_deletion(&self.pool, key))
    }
}
