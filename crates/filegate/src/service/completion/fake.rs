//! In-memory stand-ins for the store and the ledger, for the unit tests of completion.
//! They keep the rules the real ones keep where completion relies on them (ETags name
//! versions, a conditional copy refuses another version, a claim is one holder's until
//! its lease ends, a transition moves only a pending file under its claim), and let a
//! test change the world between two calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use filegate_db::DbError;
use filegate_db::completion::{Claimed, Lease, Reach, Target, Transition};
use filegate_db::files::FileRow;
use filegate_domain::{Checksum, FileStatus};
use filegate_storage::{
    Assembled, CopyOutcome, Digests, ObjectBytes, ObjectInfo, StorageError, StoredPart,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Ledger;
use crate::service::store::ObjectStore;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sha256(bytes: &[u8]) -> Checksum {
    Checksum::from_digest(Sha256::digest(bytes).into())
}

/// One stored version.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The `Content-Encoding` the PUT stored.
    pub content_encoding: Option<String>,
    /// `None`: a store that reports no ETag.
    pub etag: Option<String>,
    /// The SHA-256 the store keeps (base64).
    pub checksum: Option<String>,
}

/// A multipart upload in progress: the parts it holds.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub content_type: String,
    pub parts: BTreeMap<i32, Vec<u8>>,
    /// Whether the store reports each part's digest.
    pub part_digests: bool,
}

type Hook = Box<dyn FnOnce(&mut World) + Send>;

/// What the store holds, and what tests have it do.
#[derive(Default)]
pub struct World {
    pub objects: HashMap<String, Object>,
    pub uploads: HashMap<String, Upload>,
    /// Every call, as `op key`.
    pub calls: Vec<String>,
    /// Copies ignore `x-amz-copy-source-if-match` (Ceph RGW 16).
    pub copies_ignore_condition: bool,
    /// Copies report no ETag of the new object.
    pub copies_report_no_etag: bool,
    /// Copies get an ETag of their own (as a copy of an object assembled from parts
    /// does on every store: the source's ETag names its parts).
    pub copies_get_new_etags: bool,
    /// Assemblies answer "busy" this many times first.
    pub busy_assemblies: usize,
    /// Calls of this op fail as if the store were down.
    pub down: Option<&'static str>,
    /// Calls of this op never answer (a store that hangs).
    pub stall: Option<&'static str>,
    next_etag: u64,
    /// Run just before the `n`th call of an op answers: `(op, n, what)`.
    hooks: Vec<(&'static str, usize, Hook)>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("objects", &self.objects.keys())
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

impl World {
    /// Stores `bytes` of `content_type` at `key` as a new version (a new ETag, its
    /// SHA-256 kept).
    pub fn put(&mut self, key: &str, content_type: &str, bytes: &[u8]) {
        let etag = self.etag();
        self.objects.insert(
            key.to_owned(),
            Object {
                bytes: bytes.to_vec(),
                content_type: Some(content_type.to_owned()),
                content_encoding: None,
                etag: Some(etag),
                checksum: Some(sha256(bytes).to_base64()),
            },
        );
    }

    fn etag(&mut self) -> String {
        self.next_etag += 1;
        format!("\"etag-{}\"", self.next_etag)
    }

    /// The calls made of `op`.
    pub fn count(&self, op: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| c.split(' ').next() == Some(op))
            .count()
    }
}

/// The store, in memory.
#[derive(Clone, Default)]
pub struct FakeStore {
    pub world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for FakeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        lock(&self.world).fmt(f)
    }
}

impl FakeStore {
    /// Runs `what` just before the `nth` (from 1) call of `op` answers.
    pub fn on(&self, op: &'static str, nth: usize, what: impl FnOnce(&mut World) + Send + 'static) {
        lock(&self.world).hooks.push((op, nth, Box::new(what)));
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut lock(&self.world))
    }

    /// Records a call of `op` on `key`, runs its hooks, and hands the world over.
    fn call(&self, op: &'static str, key: &str) -> Result<MutexGuard<'_, World>, StorageError> {
        let mut w = lock(&self.world);
        w.calls.push(format!("{op} {key}"));
        let n = w.count(op);
        let due: Vec<Hook> = {
            let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut w.hooks)
                .into_iter()
                .partition(|(o, at, _)| *o == op && *at == n);
            w.hooks = kept;
            due.into_iter().map(|(_, _, h)| h).collect()
        };
        for hook in due {
            hook(&mut w);
        }
        if w.down == Some(op) {
            return Err(StorageError::Unavailable(format!("{op}: down").into()));
        }
        Ok(w)
    }
}

impl ObjectStore for FakeStore {
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        if lock(&self.world).stall == Some("head") {
            std::future::pending::<()>().await;
        }
        let w = self.call("head", key)?;
        Ok(w.objects.get(key).map(|o| ObjectInfo {
            size: i64::try_from(o.bytes.len()).unwrap_or(i64::MAX),
            content_type: o.content_type.clone(),
            content_encoding: o.content_encoding.clone(),
            checksum_sha256: o.checksum.clone(),
            etag: o.etag.clone(),
            last_modified: None,
        }))
    }

    async fn read_prefix(
        &self,
        key: &str,
        len: usize,
    ) -> Result<Option<ObjectBytes>, StorageError> {
        let w = self.call("read_prefix", key)?;
        Ok(w.objects.get(key).map(|o| {
            if o.bytes.is_empty() {
                // A range of an empty object is not satisfiable: no ETag comes back.
                return ObjectBytes {
                    bytes: Vec::new(),
                    etag: None,
                };
            }
            ObjectBytes {
                bytes: o.bytes[..len.min(o.bytes.len())].to_vec(),
                etag: o.etag.clone(),
            }
        }))
    }

    async fn digests(
        &self,
        key: &str,
        if_match: Option<&str>,
        slice_len: Option<u64>,
        prefix_len: usize,
    ) -> Result<Option<Digests>, StorageError> {
        let w = self.call("digests", key)?;
        let Some(o) = w.objects.get(key) else {
            return Ok(None);
        };
        if if_match.is_some_and(|m| o.etag.as_deref() != Some(m)) {
            return Ok(None);
        }
        let slices = match slice_len.and_then(|l| usize::try_from(l).ok()) {
            Some(l) if l > 0 => o.bytes.chunks(l).map(sha256).collect(),
            _ => Vec::new(),
        };
        Ok(Some(Digests {
            len: o.bytes.len() as u64,
            whole: sha256(&o.bytes),
            slices,
            prefix: o.bytes[..prefix_len.min(o.bytes.len())].to_vec(),
        }))
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
        _size: i64,
    ) -> Result<CopyOutcome, StorageError> {
        let mut w = self.call("copy", &format!("{from} {to}"))?;
        let Some(source) = w.objects.get(from).cloned() else {
            return Ok(CopyOutcome::SourceChanged);
        };
        if !w.copies_ignore_condition && source.etag.as_deref() != Some(if_match) {
            return Ok(CopyOutcome::SourceChanged);
        }
        // The copy keeps the source's ETag (content-addressed, as Garage's).
        let mut copy = source;
        if w.copies_get_new_etags {
            copy.etag = Some(w.etag());
        }
        let reported = (!w.copies_report_no_etag)
            .then(|| copy.etag.clone())
            .flatten();
        w.objects.insert(to.to_owned(), copy);
        Ok(CopyOutcome::Copied { etag: reported })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let mut w = self.call("delete", key)?;
        w.objects.remove(key);
        Ok(())
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<StoredPart>>, StorageError> {
        let w = self.call("list_parts", key)?;
        Ok(w.uploads.get(upload_id).map(|u| {
            u.parts
                .iter()
                .map(|(n, bytes)| StoredPart {
                    number: *n,
                    size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                    etag: Some(format!("\"part-{n}\"")),
                    checksum_sha256: u.part_digests.then(|| sha256(bytes).to_base64()),
                })
                .collect()
        }))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<Assembled, StorageError> {
        let mut w = self.call("complete_multipart", key)?;
        if w.busy_assemblies > 0 {
            w.busy_assemblies -= 1;
            return Ok(Assembled::Busy);
        }
        let Some(upload) = w.uploads.remove(upload_id) else {
            return Ok(Assembled::Gone);
        };
        let mut bytes = Vec::new();
        for p in parts {
            match upload.parts.get(&p.number) {
                // A store that keeps part digests refuses a part they do not match.
                Some(b)
                    if !upload.part_digests
                        || p.checksum_sha256
                            .as_deref()
                            .is_none_or(|c| c == sha256(b).to_base64()) =>
                {
                    bytes.extend_from_slice(b);
                }
                _ => {
                    w.uploads.insert(upload_id.to_owned(), upload);
                    return Ok(Assembled::PartsChanged);
                }
            }
        }
        let content_type = upload.content_type.clone();
        w.put(key, &content_type, &bytes);
        // S3 keeps a composite digest for an assembled object, not the whole one's.
        if let Some(o) = w.objects.get_mut(key) {
            o.checksum = None;
        }
        Ok(Assembled::Done)
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let mut w = self.call("abort_multipart", key)?;
        w.uploads.remove(upload_id);
        Ok(())
    }
}

/// A claim: its holder and when it lapses.
#[derive(Debug, Clone, Copy)]
struct Held {
    token: Uuid,
    until: Instant,
}

type LedgerHook = Box<dyn FnOnce(&mut Books) + Send>;

/// What the ledger holds.
#[derive(Default)]
pub struct Books {
    pub files: HashMap<Uuid, FileRow>,
    claims: HashMap<Uuid, Held>,
    pub parts: HashMap<Uuid, Vec<(i32, String)>>,
    /// Every settling statement's transitions.
    pub settlements: Vec<Vec<Transition>>,
    /// Files whose claims were given back.
    pub released: Vec<Uuid>,
    /// Claim statements made.
    pub claim_statements: usize,
    /// Deletions the store confirmed.
    pub finished: Vec<String>,
    /// The settling statement fails.
    pub settle_fails: bool,
    /// Run just before the next settling statement.
    before_settle: Option<LedgerHook>,
}

impl Books {
    /// Another completion claims `id` under `token` for `lease`.
    pub fn claim_for_another(&mut self, id: Uuid, lease: std::time::Duration) {
        self.claims.insert(
            id,
            Held {
                token: Uuid::new_v4(),
                until: Instant::now() + lease,
            },
        );
    }

    /// How long the claim on `id` has left, if one is held.
    pub fn claim_left(&self, id: Uuid) -> Option<std::time::Duration> {
        self.claims
            .get(&id)
            .and_then(|h| h.until.checked_duration_since(Instant::now()))
    }

    /// Whether a claim on `id` is held now.
    pub fn is_claimed(&self, id: Uuid) -> bool {
        self.claims
            .get(&id)
            .is_some_and(|h| h.until > Instant::now())
    }
}

/// The ledger, in memory.
#[derive(Clone, Default)]
pub struct FakeLedger {
    pub books: Arc<Mutex<Books>>,
}

impl std::fmt::Debug for FakeLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeLedger")
    }
}

impl FakeLedger {
    pub fn with<T>(&self, f: impl FnOnce(&mut Books) -> T) -> T {
        f(&mut lock(&self.books))
    }

    /// Runs `what` just before the next settling statement.
    pub fn before_settle(&self, what: impl FnOnce(&mut Books) + Send + 'static) {
        lock(&self.books).before_settle = Some(Box::new(what));
    }

    pub fn file(&self, id: Uuid) -> Option<FileRow> {
        lock(&self.books).files.get(&id).cloned()
    }
}

impl Ledger for FakeLedger {
    async fn claim(
        &self,
        ids: &[Uuid],
        reach: Reach<'_>,
        token: Uuid,
        lease: Lease,
    ) -> Result<Vec<Claimed>, DbError> {
        let mut b = lock(&self.books);
        b.claim_statements += 1;
        let now = Instant::now();
        let mut out = Vec::new();
        for id in ids {
            let Some(file) = b.files.get(id).cloned() else {
                continue;
            };
            if reach
                .organization_id
                .is_some_and(|o| o != file.organization_id)
                || reach
                    .workspaces
                    .is_some_and(|w| !w.contains(&file.workspace_id))
            {
                continue;
            }
            let free = b.claims.get(id).is_none_or(|h| h.until < now);
            let held = file.status == FileStatus::Pending && free;
            if held {
                b.claims.insert(
                    *id,
                    Held {
                        token,
                        until: now + lease.of(file.size_bytes.unwrap_or(0)),
                    },
                );
            }
            out.push(Claimed { file, held });
        }
        Ok(out)
    }

    async fn release(&self, ids: &[Uuid], token: Uuid) -> Result<(), DbError> {
        let mut b = lock(&self.books);
        for id in ids {
            if b.claims.get(id).is_some_and(|h| h.token == token) {
                b.claims.remove(id);
                b.released.push(*id);
            }
        }
        Ok(())
    }

    fn release_detached(&self, ids: Vec<Uuid>, token: Uuid) {
        let mut b = lock(&self.books);
        for id in ids {
            if b.claims.get(&id).is_some_and(|h| h.token == token) {
                b.claims.remove(&id);
                b.released.push(id);
            }
        }
    }

    async fn extend(
        &self,
        id: Uuid,
        token: Uuid,
        lease: std::time::Duration,
    ) -> Result<bool, DbError> {
        let mut b = lock(&self.books);
        let pending = b
            .files
            .get(&id)
            .is_some_and(|f| f.status == FileStatus::Pending);
        Ok(match b.claims.get_mut(&id) {
            Some(h) if h.token == token && pending => {
                h.until = h.until.max(Instant::now() + lease);
                true
            }
            _ => false,
        })
    }

    async fn settle(&self, transitions: Vec<Transition>) -> Result<Vec<FileRow>, Arc<DbError>> {
        let mut b = lock(&self.books);
        if let Some(hook) = b.before_settle.take() {
            hook(&mut b);
        }
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        b.settlements.push(transitions.clone());
        if b.settle_fails {
            return Err(Arc::new(DbError::Unavailable("settle: down".into())));
        }
        let mut moved = Vec::new();
        for t in transitions {
            let claimed = b.claims.get(&t.id).is_some_and(|h| h.token == t.token);
            let Some(file) = b.files.get_mut(&t.id) else {
                continue;
            };
            if file.status != FileStatus::Pending || !claimed {
                continue;
            }
            match t.target {
                Target::Ready { size, etag } => {
                    if size > file.reserved_bytes {
                        continue;
                    }
                    file.status = FileStatus::Ready;
                    file.size_bytes = Some(size);
                    file.reserved_bytes = size;
                    file.etag = Some(etag);
                }
                Target::Rejected { reason } => {
                    file.status = FileStatus::Rejected;
                    file.reserved_bytes = 0;
                    file.rejection_reason = Some(reason);
                }
            }
            moved.push(file.clone());
            b.claims.remove(&t.id);
        }
        Ok(moved)
    }

    async fn find(&self, id: Uuid) -> Result<Option<FileRow>, DbError> {
        Ok(self.file(id))
    }

    async fn part_digests(&self, id: Uuid) -> Result<Vec<(i32, String)>, DbError> {
        Ok(lock(&self.books)
            .parts
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }

    async fn finish_deletion(&self, key: &str) -> Result<(), DbError> {
        lock(&self.books).finished.push(key.to_owned());
        Ok(())
    }
}
