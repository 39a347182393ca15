//! What the limiter remembers of workspaces (their organization and override, for
//! `FILEGATE_RATE_SCOPE_TTL_SECS`: an organization never changes, an override only
//! through `filegate admin`) and of files (the workspace each lives in; a file
//! never moves, so that is kept while it is used).
//!
//! Both maps are bounded caches with a scan-resistant policy (`quick_cache`'s S3-FIFO):
//! an entry seen once waits in a small probation queue and goes first, while entries
//! that are used again stay. A client naming a flood of new files or workspaces (each
//! look-up paid with a token) churns only that queue; it cannot empty the cache that
//! other clients' requests are charged with.

use std::time::{Duration, Instant};

use filegate_db::workspaces::RateScope;
use quick_cache::sync::Cache;
use uuid::Uuid;

/// Workspaces remembered at most.
const WORKSPACE_CAPACITY: usize = 10_000;
/// Files remembered at most.
const FILE_CAPACITY: usize = 100_000;

/// Per-process cache of rate scopes; see the module docs.
#[derive(Debug)]
pub struct Scopes {
    ttl: Duration,
    workspaces: Cache<Uuid, (Instant, Option<RateScope>)>,
    files: Cache<Uuid, Uuid>,
}

impl Scopes {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            workspaces: Cache::new(WORKSPACE_CAPACITY),
            files: Cache::new(FILE_CAPACITY),
        }
    }

    /// What is known of a workspace: `Some(None)` when it does not exist, `None` when it
    /// must be looked up.
    pub fn workspace(&self, id: Uuid) -> Option<Option<RateScope>> {
        self.workspaces
            .get(&id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, scope)| scope)
    }

    /// The workspace a file lives in, if known.
    pub fn file(&self, id: Uuid) -> Option<Uuid> {
        self.files.get(&id)
    }

    /// Remembers a look-up of workspace `id` (`None`: there is no such workspace).
    pub fn remember_workspace(&self, id: Uuid, scope: Option<RateScope>) {
        if self.ttl.is_zero() {
            return;
        }
        self.workspaces.insert(id, (Instant::now(), scope));
    }

    /// Remembers that `files` live in `workspace`.
    pub fn remember_files(&self, workspace: Uuid, files: impl IntoIterator<Item = Uuid>) {
        for file in files {
            self.files.insert(file, workspace);
        }
    }

    /// Workspaces and files held, for tests.
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        (self.workspaces.len(), self.files.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(ws: Uuid) -> RateScope {
        RateScope {
            workspace_id: ws,
            organization_id: Uuid::new_v4(),
            rate_limit: Some((1.0, 2)),
        }
    }

    #[test]
    fn workspaces_are_forgotten_after_the_ttl_and_files_are_kept() {
        let scopes = Scopes::new(Duration::from_millis(30));
        let (ws, gone, file) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(scopes.workspace(ws), None);
        let known = scope(ws);
        scopes.remember_workspace(ws, Some(known));
        scopes.remember_workspace(gone, None);
        scopes.remember_files(ws, [file]);
        assert_eq!(scopes.workspace(ws), Some(Some(known)));
        assert_eq!(scopes.workspace(gone), Some(None));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(scopes.workspace(ws), None);
        assert_eq!(scopes.workspace(gone), None);
        assert_eq!(scopes.file(file), Some(ws));
    }

    #[test]
    fn a_zero_ttl_caches_no_workspace() {
        let scopes = Scopes::new(Duration::ZERO);
        let ws = Uuid::new_v4();
        scopes.remember_workspace(ws, Some(scope(ws)));
        assert_eq!(scopes.workspace(ws), None);
    }

    #[test]
    fn the_maps_stay_within_their_capacity() {
        let scopes = Scopes::new(Duration::from_secs(60));
        let ws = Uuid::new_v4();
        scopes.remember_files(ws, (0..FILE_CAPACITY + 10).map(|_| Uuid::new_v4()));
        for _ in 0..WORKSPACE_CAPACITY + 10 {
            scopes.remember_workspace(Uuid::new_v4(), None);
        }
        let (workspaces, files) = scopes.len();
        assert!(workspaces <= WORKSPACE_CAPACITY && files <= FILE_CAPACITY);
    }

    #[test]
    fn a_flood_of_new_entries_does_not_push_out_the_ones_in_use() {
        // Once, the maps were emptied when full: one client reserving or naming enough
        // new files and workspaces made every other client's requests look theirs up
        // again.
        let scopes = Scopes::new(Duration::from_secs(60));
        let ws = Uuid::new_v4();
        let hot_files: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        let hot_workspaces: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        scopes.remember_files(ws, hot_files.iter().copied());
        for w in &hot_workspaces {
            scopes.remember_workspace(*w, Some(scope(*w)));
        }
        for round in 0..3 {
            // Other clients keep using theirs...
            for f in &hot_files {
                assert_eq!(scopes.file(*f), Some(ws), "round {round}");
            }
            for w in &hot_workspaces {
                assert!(scopes.workspace(*w).is_some(), "round {round}");
            }
            // ...while one floods both maps with entries it never names again.
            scopes.remember_files(ws, (0..2 * FILE_CAPACITY).map(|_| Uuid::new_v4()));
            for _ in 0..2 * WORKSPACE_CAPACITY {
                scopes.remember_workspace(Uuid::new_v4(), None);
            }
        }
        let kept = hot_files
            .iter()
            .filter(|f| scopes.file(**f).is_some())
            .count();
        assert_eq!(kept, hot_files.len(), "every file in use is still known");
        let kept = hot_workspaces
            .iter()
            .filter(|w| scopes.workspace(**w).is_some())
            .count();
        assert_eq!(kept, hot_workspaces.len());
    }
}
