//! What the limiter remembers of workspaces (their organization and override, for the
//! auth cache's TTL, like key rows) and of files (the workspace each lives in; a file
//! never moves, so that is kept until the map is full).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use filegate_db::workspaces::RateScope;
use uuid::Uuid;

/// Workspaces remembered before the map is swept.
const WORKSPACE_CAPACITY: usize = 10_000;
/// Files remembered before the map is emptied.
const FILE_CAPACITY: usize = 100_000;

/// Per-process cache of rate scopes; see the module docs.
#[derive(Debug)]
pub struct Scopes {
    ttl: Duration,
    workspaces: Mutex<HashMap<Uuid, (Instant, Option<RateScope>)>>,
    files: Mutex<HashMap<Uuid, Uuid>>,
}

impl Scopes {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            workspaces: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// What is known of a workspace: `Some(None)` when it does not exist, `None` when it
    /// must be looked up.
    pub fn workspace(&self, id: Uuid) -> Option<Option<RateScope>> {
        let entries = self.workspaces.lock().ok()?;
        entries
            .get(&id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, scope)| *scope)
    }

    /// The workspace a file lives in, if known.
    pub fn file(&self, id: Uuid) -> Option<Uuid> {
        self.files.lock().ok()?.get(&id).copied()
    }

    /// Remembers a look-up of workspace `id` (`None`: there is no such workspace).
    pub fn remember_workspace(&self, id: Uuid, scope: Option<RateScope>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.workspaces.lock() else {
            return;
        };
        if entries.len() >= WORKSPACE_CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (at, scope)| scope.is_some() && at.elapsed() < ttl);
            if entries.len() >= WORKSPACE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(id, (Instant::now(), scope));
    }

    /// Remembers that `files` live in `workspace`.
    pub fn remember_files(&self, workspace: Uuid, files: impl IntoIterator<Item = Uuid>) {
        let Ok(mut entries) = self.files.lock() else {
            return;
        };
        for file in files {
            if entries.len() >= FILE_CAPACITY {
                entries.clear();
            }
            entries.insert(file, workspace);
        }
    }

    /// Workspaces and files held, for tests.
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        (
            self.workspaces.lock().map_or(0, |e| e.len()),
            self.files.lock().map_or(0, |e| e.len()),
        )
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
}
