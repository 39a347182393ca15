//! Every branch of completion, over the in-memory store and ledger ([`super::fake`]):
//! the copy made first where ETags do not pin bytes, the copy of the verified version
//! where they do, an upload that changes during its inspection, a copy of another
//! version, a race lost to a delete or to another completion, a busy assembly, a claim
//! that lapses, and each reason a file is rejected for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use filegate_db::completion::{Lease, Reach, Target};
use filegate_db::files::{FileRow, Multipart};
use filegate_domain::{Checksum, ContentType, FileStatus};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fake::{FakeLedger, FakeStore, Upload};
use super::{Completer, CompletionError, Outcome, Trigger};
use crate::service::trust::StoreTrust;

const ORG: Uuid = Uuid::from_u128(1);
const WS: Uuid = Uuid::from_u128(2);
const TEXT: &[u8] = b"hello, world\n";
const MIB: usize = 1 << 20;

fn sha256(bytes: &[u8]) -> Checksum {
    Checksum::from_digest(Sha256::digest(bytes).into())
}

/// A store seen to refuse what it must and keep what it reports (Garage 2.5).
fn trusted() -> StoreTrust {
    StoreTrust {
        stored_checksum: true,
        copy_precondition: false,
        etag_pins_bytes: true,
        part_checksums: true,
    }
}

/// A store whose ETags name versions, but whose digests are not taken on its word.
fn pins_bytes() -> StoreTrust {
    StoreTrust {
        etag_pins_bytes: true,
        ..StoreTrust::default()
    }
}

/// A pending file of `content_type` holding `reserved` bytes, declaring `size`.
fn pending(content_type: &str, size: Option<i64>, reserved: i64) -> FileRow {
    let id = Uuid::now_v7();
    let now = chrono::Utc::now();
    let object_key = format!("{WS}/{id}");
    FileRow {
        id,
        workspace_id: WS,
        organization_id: ORG,
        name: "a.txt".into(),
        path: String::new(),
        local_file_path: None,
        labels: Vec::new(),
        public_url: None,
        content_type: ContentType::parse(content_type).unwrap(),
        size_bytes: size,
        reserved_bytes: reserved,
        checksum_sha256: None,
        status: FileStatus::Pending,
        rejection_reason: None,
        upload_key: format!("uploads/{object_key}"),
        object_key,
        etag: None,
        created_by: Uuid::nil(),
        created_at: now,
        updated_at: now,
        completed_at: None,
        upload_expires_at: now + chrono::Duration::minutes(15),
        multipart: None,
        remote_uri: None,
        in_flight: false,
        processing: None,
        processing_error: None,
        media_metadata: None,
    }
}

fn text_file() -> FileRow {
    let len = i64::try_from(TEXT.len()).unwrap();
    pending("text/plain", Some(len), len)
}

struct Rig {
    store: FakeStore,
    ledger: FakeLedger,
    completer: Completer<FakeStore, FakeLedger>,
}

fn rig_with(trust: StoreTrust, lease: Lease) -> Rig {
    let (store, ledger) = (FakeStore::default(), FakeLedger::default());
    let completer = Completer::with_lease(store.clone(), ledger.clone(), trust, lease);
    Rig {
        store,
        ledger,
        completer,
    }
}

fn rig_for(trust: StoreTrust) -> Rig {
    rig_with(trust, super::lease(Duration::from_secs(5)))
}

impl Rig {
    fn add(&self, file: &FileRow) {
        self.ledger.with(|b| b.files.insert(file.id, file.clone()));
    }

    /// The client PUTs `bytes` of `content_type` to the file's upload key.
    fn upload(&self, file: &FileRow, content_type: &str, bytes: &[u8]) {
        self.store
            .with(|w| w.put(&file.upload_key, content_type, bytes));
    }

    async fn complete(&self, file: &FileRow) -> Result<Outcome, CompletionError> {
        self.completer
            .complete(file.id, Reach::default(), Trigger::Client, false)
            .await
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .with(|w| w.objects.get(key).map(|o| o.bytes.clone()))
    }

    fn etag(&self, key: &str) -> Option<String> {
        self.store
            .with(|w| w.objects.get(key).and_then(|o| o.etag.clone()))
    }

    fn calls(&self) -> Vec<String> {
        self.store.with(|w| w.calls.clone())
    }

    fn count(&self, op: &str) -> usize {
        self.store.with(|w| w.count(op))
    }

    fn released(&self, file: &FileRow) -> bool {
        self.ledger.with(|b| b.released.contains(&file.id))
    }

    fn claimed(&self, file: &FileRow) -> bool {
        self.ledger.with(|b| b.is_claimed(file.id))
    }

    /// The targets of every settling statement, in order.
    fn targets(&self) -> Vec<Target> {
        self.ledger.with(|b| {
            b.settlements
                .iter()
                .flatten()
                .map(|t| t.target.clone())
                .collect()
        })
    }
}

/// A rig over a store `trust` describes, with a text file reserved and uploaded.
fn uploaded(trust: StoreTrust) -> (Rig, FileRow) {
    let rig = rig_for(trust);
    let file = text_file();
    rig.add(&file);
    rig.upload(&file, "text/plain", TEXT);
    (rig, file)
}

fn ready(outcome: Result<Outcome, CompletionError>) -> FileRow {
    match outcome {
        Ok(Outcome::Ready(f)) => f,
        other => panic!("not ready: {other:?}"),
    }
}

fn rejected(outcome: Result<Outcome, CompletionError>) -> FileRow {
    match outcome {
        Ok(Outcome::Rejected(f)) => f,
        other => panic!("not rejected: {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_upload_is_copied_to_the_object_key_as_the_version_checked_and_made_ready() {
    let (rig, file) = uploaded(pins_bytes());
    let checked = rig.etag(&file.upload_key).unwrap();
    let row = ready(rig.complete(&file).await);
    assert_eq!(row.status, FileStatus::Ready);
    assert_eq!(row.etag.as_deref(), Some(checked.as_str()));
    assert_eq!(rig.object(&file.object_key).as_deref(), Some(TEXT));
    assert_eq!(
        rig.targets(),
        vec![Target::Ready {
            size: 13,
            etag: checked
        }]
    );
    // The upload stays until its URL expires (the settlement queued its deletion).
    assert!(rig.object(&file.upload_key).is_some());
    assert!(
        !rig.claimed(&file) && !rig.released(&file),
        "settled, not released"
    );
}

#[tokio::test]
async fn where_etags_do_not_pin_bytes_the_copy_is_inspected_and_never_the_upload() {
    let (rig, file) = uploaded(StoreTrust::default());
    // A refused PUT on such a store replaces the upload's bytes under its old ETag:
    // after the copy, the upload says nothing about what is served.
    let key = file.upload_key.clone();
    rig.store.on("head", 2, move |w| {
        w.objects.get_mut(&key).unwrap().bytes = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0".to_vec();
    });
    let row = ready(rig.complete(&file).await);
    assert_eq!(rig.object(&file.object_key).as_deref(), Some(TEXT));
    assert_eq!(row.status, FileStatus::Ready);
    let calls = rig.calls();
    let copy = calls
        .iter()
        .position(|c| c.starts_with("copy "))
        .expect("a copy");
    assert!(
        calls[copy + 1..]
            .iter()
            .all(|c| !c.ends_with(&file.upload_key) || c.starts_with("copy")),
        "nothing of the upload is read after the copy: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c == &format!("read_prefix {}", file.object_key)),
        "the copy's first bytes are what is sniffed: {calls:?}"
    );
    assert_eq!(rig.count("copy"), 1, "the inspected copy is what is served");
}

#[tokio::test]
async fn an_upload_replaced_during_its_inspection_is_looked_at_again_and_the_new_version_verified()
{
    let (rig, file) = uploaded(pins_bytes());
    let key = file.upload_key.clone();
    // Between the HEAD and the ranged read, another PUT of the same length lands.
    rig.store.on("read_prefix", 1, move |w| {
        w.put(&key, "text/plain", b"hello, again\n");
    });
    let row = ready(rig.complete(&file).await);
    assert_eq!(rig.count("head"), 2, "looked twice");
    assert_eq!(row.etag, rig.etag(&file.upload_key));
    assert_eq!(
        rig.object(&file.object_key).as_deref(),
        Some(&b"hello, again\n"[..]),
        "what is served is the version verified"
    );
}

#[tokio::test]
async fn an_upload_that_keeps_changing_is_rejected_and_deleted() {
    let (rig, file) = uploaded(pins_bytes());
    for n in 1..=3 {
        let key = file.upload_key.clone();
        rig.store.on("read_prefix", n, move |w| {
            w.put(&key, "text/plain", TEXT);
        });
    }
    let row = rejected(rig.complete(&file).await);
    assert_eq!(
        row.rejection_reason.as_deref(),
        Some("the object kept changing while it was being verified")
    );
    assert_eq!(rig.count("head"), 3);
    assert!(
        rig.object(&file.upload_key).is_none(),
        "the upload is deleted"
    );
    assert!(rig.ledger.with(|b| b.finished.contains(&file.upload_key)));
}

#[tokio::test]
async fn a_copy_of_another_version_is_not_taken_for_the_verified_one() {
    // Ceph RGW 16 ignores the copy precondition and copies whatever the upload holds.
    let (rig, file) = uploaded(pins_bytes());
    rig.store.with(|w| w.copies_ignore_condition = true);
    let key = file.upload_key.clone();
    rig.store.on("copy", 1, move |w| {
        w.put(&key, "text/plain", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0");
    });
    let row = rejected(rig.complete(&file).await);
    assert_eq!(
        rig.count("copy"),
        1,
        "the changed version fails before its copy"
    );
    assert!(
        rig.object(&file.object_key).is_none(),
        "the copy of the other version is deleted"
    );
    assert!(
        row.rejection_reason.unwrap().contains("text"),
        "the second look verified the new version, and it is no text"
    );
}

#[tokio::test]
async fn a_conditional_copy_that_fails_makes_the_completion_look_again() {
    let (rig, file) = uploaded(pins_bytes());
    let key = file.upload_key.clone();
    rig.store.on("copy", 1, move |w| {
        w.put(&key, "text/plain", b"hello, there\n");
    });
    let row = ready(rig.complete(&file).await);
    assert_eq!(rig.count("copy"), 2);
    assert_eq!(row.etag, rig.etag(&file.upload_key));
    assert_eq!(
        rig.object(&file.object_key).as_deref(),
        Some(&b"hello, there\n"[..])
    );
}

#[tokio::test]
async fn a_copy_reported_with_another_etag_is_inspected_itself() {
    // An object assembled from parts (an upload streamed through filegate in parts)
    // has an ETag no copy of it keeps: the copy, which is what is served, is what is
    // inspected, and no third look at the upload is made.
    let (rig, file) = uploaded(pins_bytes());
    rig.store.with(|w| w.copies_get_new_etags = true);
    let row = ready(rig.complete(&file).await);
    assert_eq!(rig.count("copy"), 1, "{:?}", rig.calls());
    assert_eq!(row.etag, rig.etag(&file.object_key), "the copy's version");
    assert_eq!(rig.object(&file.object_key).as_deref(), Some(TEXT));
    assert!(
        rig.calls()
            .contains(&format!("read_prefix {}", file.object_key)),
        "{:?}",
        rig.calls()
    );
}

#[tokio::test]
async fn a_copy_reported_without_an_etag_is_checked_with_a_head() {
    let (rig, file) = uploaded(pins_bytes());
    rig.store.with(|w| w.copies_report_no_etag = true);
    ready(rig.complete(&file).await);
    assert!(
        rig.calls().contains(&format!("head {}", file.object_key)),
        "{:?}",
        rig.calls()
    );
}

#[tokio::test]
async fn a_file_deleted_during_its_completion_leaves_no_copy_behind() {
    let (rig, file) = uploaded(pins_bytes());
    let id = file.id;
    rig.ledger.before_settle(move |b| {
        b.files.remove(&id);
    });
    assert!(matches!(rig.complete(&file).await, Ok(Outcome::NotFound)));
    assert!(
        rig.object(&file.object_key).is_none(),
        "the copy nobody serves is deleted"
    );
}

#[tokio::test]
async fn a_copy_first_completion_that_finds_the_upload_invalid_and_loses_the_race_leaves_no_copy() {
    // Where ETags do not pin bytes the upload is copied before it is inspected, so an
    // invalid verdict was reached on a copy too; the file is deleted meanwhile.
    for lost_to in [None, Some(FileStatus::Rejected), Some(FileStatus::Expired)] {
        let rig = rig_for(StoreTrust::default());
        let file = text_file();
        rig.add(&file);
        rig.upload(&file, "text/plain", b"hello\0world!\n");
        let id = file.id;
        rig.ledger.before_settle(move |b| match lost_to {
            None => {
                b.files.remove(&id);
            }
            Some(status) => b.files.get_mut(&id).unwrap().status = status,
        });
        let outcome = rig.complete(&file).await;
        assert!(
            matches!(outcome, Ok(Outcome::NotFound | Outcome::Settled(_))),
            "{outcome:?}"
        );
        assert!(rig.count("copy") >= 1, "the copy-first path copied");
        assert!(
            rig.object(&file.object_key).is_none(),
            "the copy nobody serves is deleted ({lost_to:?})"
        );
    }
}

#[tokio::test]
async fn a_file_another_completion_made_ready_keeps_the_copy_it_serves() {
    let (rig, file) = uploaded(pins_bytes());
    let id = file.id;
    // This completion's claim lapsed and another one made the file ready first.
    rig.ledger.before_settle(move |b| {
        let f = b.files.get_mut(&id).unwrap();
        f.status = FileStatus::Ready;
    });
    match rig.complete(&file).await {
        Ok(Outcome::Settled(f)) => assert_eq!(f.status, FileStatus::Ready),
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.object(&file.object_key).as_deref(), Some(TEXT));
}

#[tokio::test]
async fn a_completion_past_half_its_lease_copies_nothing() {
    for trust in [pins_bytes(), StoreTrust::default()] {
        let instant = Lease {
            base: Duration::ZERO,
            bytes_per_sec: 1e12,
        };
        let rig = rig_with(trust, instant);
        let file = text_file();
        rig.add(&file);
        rig.upload(&file, "text/plain", TEXT);
        assert!(
            matches!(rig.complete(&file).await, Err(CompletionError::TooSlow)),
            "{trust:?}"
        );
        assert_eq!(rig.count("copy"), 0, "{trust:?}");
        assert!(rig.released(&file), "the claim is given back");
        assert_eq!(
            rig.ledger.file(file.id).unwrap().status,
            FileStatus::Pending
        );
    }
}

#[tokio::test]
async fn waiting_for_a_claim_held_past_its_lease_gives_up() {
    let short = Lease {
        base: Duration::from_millis(50),
        bytes_per_sec: 1e12,
    };
    let rig = rig_with(pins_bytes(), short);
    let file = text_file();
    rig.add(&file);
    rig.upload(&file, "text/plain", TEXT);
    rig.ledger
        .with(|b| b.claim_for_another(file.id, Duration::from_secs(3600)));
    let started = std::time::Instant::now();
    let waited = rig
        .completer
        .complete(file.id, Reach::default(), Trigger::Client, true)
        .await;
    assert!(
        matches!(waited, Err(CompletionError::ClaimOutlived)),
        "{waited:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up one second past the lease: {:?}",
        started.elapsed()
    );
    let without = rig.complete(&file).await;
    assert!(matches!(without, Ok(Outcome::Busy)), "{without:?}");
}

#[tokio::test]
async fn waiting_for_a_claim_backs_off_instead_of_polling_every_20_ms() {
    let rig = rig_with(
        pins_bytes(),
        Lease {
            base: Duration::from_secs(2),
            bytes_per_sec: 1e12,
        },
    );
    let file = text_file();
    rig.add(&file);
    rig.upload(&file, "text/plain", TEXT);
    rig.ledger
        .with(|b| b.claim_for_another(file.id, Duration::from_secs(3600)));
    let waited = rig
        .completer
        .complete(file.id, Reach::default(), Trigger::Client, true)
        .await;
    assert!(matches!(waited, Err(CompletionError::ClaimOutlived)));
    // Three seconds of waiting: 150 statements at a fixed 20 ms; with the pause
    // doubling from 20 ms to 500 ms, about ten.
    let statements = rig.ledger.with(|b| b.claim_statements);
    assert!(statements <= 15, "{statements} claim statements");
}

#[tokio::test]
async fn a_completion_dropped_midway_gives_its_claims_back() {
    for many in [false, true] {
        let (rig, file) = uploaded(pins_bytes());
        rig.store.with(|w| w.stall = Some("head"));
        let completion = async {
            if many {
                rig.completer
                    .complete_many(&[file.id], Reach::default(), Trigger::Client, true)
                    .await
                    .map(|_| ())
            } else {
                rig.complete(&file).await.map(|_| ())
            }
        };
        // The client hangs up, or the server stops: the future is dropped mid-HEAD.
        let dropped = tokio::time::timeout(Duration::from_millis(100), completion).await;
        assert!(dropped.is_err(), "the HEAD never answers");
        assert!(
            !rig.ledger.with(|b| b.is_claimed(file.id)),
            "the claim is given back, not left to its lease (many: {many})"
        );
        assert_eq!(rig.ledger.with(|b| b.released.clone()), vec![file.id]);
        rig.store.with(|w| w.stall = None);
        ready(rig.complete(&file).await);
    }
}

#[tokio::test]
async fn an_undeclared_size_is_claimed_for_the_base_lease_and_held_for_its_real_size() {
    // One byte a second: a lease of the 5 TiB reservation would outlive any crash by
    // 170,000 years; the claim counts the 13 bytes the HEAD found.
    let rig = rig_with(
        pins_bytes(),
        Lease {
            base: Duration::from_secs(10),
            bytes_per_sec: 1.0,
        },
    );
    let file = pending("text/plain", None, 5 << 40);
    rig.add(&file);
    rig.upload(&file, "text/plain", TEXT);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let id = file.id;
    rig.ledger.before_settle({
        let seen = seen.clone();
        move |b| *seen.lock().unwrap() = b.claim_left(id)
    });
    ready(rig.complete(&file).await);
    let left = seen.lock().unwrap().expect("claimed while settling");
    assert!(
        left > Duration::from_secs(20) && left <= Duration::from_secs(23),
        "10 s of base and 13 s for 13 bytes: {left:?}"
    );
}

#[tokio::test]
async fn a_settled_file_is_answered_as_it_is() {
    let rig = rig_for(pins_bytes());
    let mut file = text_file();
    file.status = FileStatus::Expired;
    rig.add(&file);
    assert!(matches!(
        rig.complete(&file).await,
        Ok(Outcome::Settled(f)) if f.status == FileStatus::Expired
    ));
    assert!(rig.calls().is_empty(), "the store is not asked");
}

#[tokio::test]
async fn nothing_uploaded_leaves_the_file_pending_and_its_claim_given_back() {
    let rig = rig_for(pins_bytes());
    let file = text_file();
    rig.add(&file);
    assert!(matches!(rig.complete(&file).await, Ok(Outcome::Missing(_, p)) if p.is_empty()));
    assert!(rig.released(&file));
    assert!(rig.targets().is_empty(), "no transition");
}

#[tokio::test]
async fn a_store_failure_leaves_the_file_pending_and_its_claim_given_back() {
    let (rig, file) = uploaded(pins_bytes());
    rig.store.with(|w| w.down = Some("copy"));
    assert!(matches!(
        rig.complete(&file).await,
        Err(CompletionError::Store(_))
    ));
    assert!(rig.released(&file));
    assert_eq!(
        rig.ledger.file(file.id).unwrap().status,
        FileStatus::Pending
    );
}

#[tokio::test]
async fn an_object_without_an_etag_cannot_be_pinned_and_is_not_trusted() {
    // No ETag, an empty one, and an empty one in quotes: none names one version.
    for etag in [None, Some(""), Some("\"\"")] {
        let (rig, file) = uploaded(pins_bytes());
        rig.store.with(|w| {
            w.objects.get_mut(&file.upload_key).unwrap().etag = etag.map(str::to_owned);
        });
        assert!(
            matches!(rig.complete(&file).await, Err(CompletionError::NoEtag)),
            "{etag:?}"
        );
        assert!(rig.released(&file));
        assert!(rig.targets().is_empty(), "{etag:?}: nothing settled");
    }
}

#[tokio::test]
async fn a_failed_settlement_fails_the_completion_and_gives_the_claim_back() {
    let (rig, file) = uploaded(pins_bytes());
    rig.ledger.with(|b| b.settle_fails = true);
    assert!(matches!(
        rig.complete(&file).await,
        Err(CompletionError::Settlement(_))
    ));
    assert!(rig.released(&file));
}

/// One rejection case: the file as reserved, the upload as stored, and words of the
/// reason its rejection keeps.
struct Case {
    what: &'static str,
    file: FileRow,
    stored_type: &'static str,
    /// The `Content-Encoding` the PUT stored.
    encoding: Option<&'static str>,
    bytes: Vec<u8>,
    reason: &'static str,
}

fn rejection_cases() -> Vec<Case> {
    let mut declared_sum = text_file();
    declared_sum.checksum_sha256 = Some(sha256(b"other bytes!\n"));
    vec![
        Case {
            what: "another size than declared",
            file: text_file(),
            stored_type: "text/plain",
            encoding: None,
            bytes: b"hello, world!!\n".to_vec(),
            reason: "but 13 were declared",
        },
        Case {
            what: "more than reserved",
            file: pending("text/plain", None, 5),
            stored_type: "text/plain",
            encoding: None,
            bytes: TEXT.to_vec(),
            reason: "more than the 5 bytes allowed",
        },
        Case {
            what: "another stored type",
            file: text_file(),
            stored_type: "application/pdf",
            encoding: None,
            bytes: TEXT.to_vec(),
            reason: "content type is \"application/pdf\"",
        },
        Case {
            what: "another digest than declared",
            file: declared_sum,
            stored_type: "text/plain",
            encoding: None,
            bytes: TEXT.to_vec(),
            reason: "SHA-256 does not match checksum_sha256",
        },
        Case {
            what: "a stored Content-Encoding",
            file: text_file(),
            stored_type: "text/plain",
            encoding: Some("gzip"),
            bytes: TEXT.to_vec(),
            reason: "Content-Encoding \"gzip\"",
        },
        Case {
            what: "first bytes of another type",
            file: pending("application/pdf", Some(13), 13),
            stored_type: "application/pdf",
            encoding: None,
            bytes: b"\x7fELF\x02\x01\x01\0\0\0\0\0\0".to_vec(),
            reason: "PDF",
        },
    ]
}

#[tokio::test]
async fn each_failed_check_rejects_the_file_and_deletes_its_upload_and_copy() {
    // On a trusted store (the store's digest settles the declared one) and on one
    // whose digests filegate computes itself.
    for trust in [trusted(), pins_bytes(), StoreTrust::default()] {
        for case in rejection_cases() {
            let rig = rig_for(trust);
            rig.add(&case.file);
            rig.upload(&case.file, case.stored_type, &case.bytes);
            rig.store.with(|w| {
                if let Some(o) = w.objects.get_mut(&case.file.upload_key) {
                    o.content_encoding = case.encoding.map(str::to_owned);
                }
            });
            let row = rejected(rig.complete(&case.file).await);
            let reason = row.rejection_reason.clone().unwrap_or_default();
            assert!(
                reason.contains(case.reason),
                "{}: {reason:?} ({trust:?})",
                case.what
            );
            assert!(
                matches!(&rig.targets()[..], [Target::Rejected { .. }]),
                "{}",
                case.what
            );
            assert!(
                rig.object(&case.file.upload_key).is_none()
                    && rig.object(&case.file.object_key).is_none(),
                "{}: nothing of a rejected file stays ({trust:?})",
                case.what
            );
        }
    }
}

#[tokio::test]
async fn a_declared_digest_is_settled_by_a_trusted_store_and_computed_otherwise() {
    for (trust, streams) in [(trusted(), 0), (pins_bytes(), 1)] {
        let rig = rig_for(trust);
        let mut file = text_file();
        file.checksum_sha256 = Some(sha256(TEXT));
        rig.add(&file);
        rig.upload(&file, "text/plain", TEXT);
        ready(rig.complete(&file).await);
        assert_eq!(rig.count("digests"), streams, "{trust:?}");
        // A whole read supplies the first bytes too: no ranged read beside it.
        assert_eq!(rig.count("read_prefix"), 1 - streams, "{trust:?}");
    }
}

/// A pending multipart file of two parts (5 MiB and 10 bytes) with its upload started
/// and the parts' digests signed; the parts' bytes.
fn multipart(rig: &Rig, part_digests: bool) -> (FileRow, Vec<Vec<u8>>) {
    let parts = vec![vec![b'a'; 5 * MIB], b"0123456789".to_vec()];
    let size = i64::try_from(parts.iter().map(Vec::len).sum::<usize>()).unwrap();
    let mut file = pending("text/plain", Some(size), size);
    file.upload_key = file.object_key.clone();
    file.multipart = Some(Multipart {
        upload_id: "upload-1".into(),
        part_size: i64::try_from(5 * MIB).unwrap(),
        part_count: 2,
    });
    rig.add(&file);
    let signed: Vec<(i32, String)> = (1..)
        .zip(&parts)
        .map(|(n, p)| (n, sha256(p).to_base64()))
        .collect();
    rig.ledger.with(|b| b.parts.insert(file.id, signed));
    rig.store.with(|w| {
        w.uploads.insert(
            "upload-1".into(),
            Upload {
                content_type: "text/plain".into(),
                parts: Default::default(),
                part_digests,
            },
        );
    });
    (file, parts)
}

fn send_part(rig: &Rig, n: i32, bytes: &[u8]) {
    rig.store.with(|w| {
        w.uploads
            .get_mut("upload-1")
            .unwrap()
            .parts
            .insert(n, bytes.to_vec());
    });
}

#[tokio::test]
async fn a_multipart_file_with_every_part_is_assembled_and_made_ready() {
    let rig = rig_for(trusted());
    let (file, parts) = multipart(&rig, true);
    send_part(&rig, 1, &parts[0]);
    assert!(
        matches!(rig.complete(&file).await, Ok(Outcome::Missing(_, m)) if m == vec![2]),
        "part 2 is missing"
    );
    send_part(&rig, 2, &parts[1]);
    let row = ready(rig.complete(&file).await);
    assert_eq!(row.size_bytes, Some(5 * 1024 * 1024 + 10));
    assert_eq!(rig.count("copy"), 0, "assembled in place: nothing to copy");
}

#[tokio::test]
async fn a_part_of_other_bytes_than_signed_is_missing_or_rejected() {
    // A store that reports part digests: the part is not there until sent right.
    let rig = rig_for(trusted());
    let (file, parts) = multipart(&rig, true);
    send_part(&rig, 1, &parts[0]);
    send_part(&rig, 2, b"9876543210");
    assert!(matches!(rig.complete(&file).await, Ok(Outcome::Missing(_, m)) if m == vec![2]));
    // A store that reports none assembles it, and the assembled object fails.
    let other = rig_for(pins_bytes());
    let (file, parts) = multipart(&other, false);
    send_part(&other, 1, &parts[0]);
    send_part(&other, 2, b"9876543210");
    let row = rejected(other.complete(&file).await);
    assert_eq!(
        row.rejection_reason.as_deref(),
        Some("part 2 of the object does not match the SHA-256 signed for it")
    );
}

#[tokio::test]
async fn a_busy_assembly_is_tried_again_and_then_answered_unavailable() {
    let rig = rig_for(trusted());
    let (file, parts) = multipart(&rig, true);
    send_part(&rig, 1, &parts[0]);
    send_part(&rig, 2, &parts[1]);
    rig.store.with(|w| w.busy_assemblies = 3);
    assert!(matches!(
        rig.complete(&file).await,
        Err(CompletionError::AssemblyBusy)
    ));
    assert_eq!(rig.count("complete_multipart"), 3);
    assert!(rig.released(&file));
    rig.store.with(|w| w.busy_assemblies = 1);
    ready(rig.complete(&file).await);
}

#[tokio::test]
async fn a_batch_settles_every_file_in_one_statement_and_answers_in_order() {
    let rig = rig_for(pins_bytes());
    let (good, bad, missing) = (text_file(), text_file(), text_file());
    for f in [&good, &bad, &missing] {
        rig.add(f);
    }
    rig.upload(&good, "text/plain", TEXT);
    rig.upload(&bad, "application/pdf", TEXT);
    let unknown = Uuid::now_v7();
    let ids = [unknown, missing.id, bad.id, good.id];
    let answers = rig
        .completer
        .complete_many(&ids, Reach::default(), Trigger::Client, false)
        .await
        .unwrap();
    let ids_back: Vec<Uuid> = answers.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids_back, ids);
    assert!(matches!(answers[0].1, Ok(Outcome::NotFound)));
    assert!(matches!(answers[1].1, Ok(Outcome::Missing(..))));
    assert!(matches!(answers[2].1, Ok(Outcome::Rejected(_))));
    assert!(matches!(answers[3].1, Ok(Outcome::Ready(_))));
    assert_eq!(
        rig.ledger.with(|b| b.settlements.len()),
        1,
        "one settling statement"
    );
}

/// A completion whose claim lapsed must never delete what a ready file serves.
#[test]
fn only_a_copy_no_live_file_serves_is_removed_after_a_lost_race() {
    use super::conclude::copy_is_orphaned;
    let with = |status| {
        let mut f = text_file();
        f.status = status;
        Outcome::Settled(f)
    };
    assert!(copy_is_orphaned(&Outcome::NotFound));
    assert!(copy_is_orphaned(&with(FileStatus::Rejected)));
    assert!(copy_is_orphaned(&with(FileStatus::Expired)));
    assert!(!copy_is_orphaned(&with(FileStatus::Ready)));
    assert!(!copy_is_orphaned(&with(FileStatus::Pending)));
}

/// A completion's future over the real store and ledger stays small: each store call
/// and statement is boxed. Inlined, the SDK's futures made it some 34 KiB in a debug
/// build, moved across the stack at every level, and a pending file's `GET` overflowed
/// a worker's stack on Ceph RGW in a test run.
#[tokio::test]
async fn a_completions_future_over_the_real_store_stays_small() {
    let storage = filegate_storage::Storage::new(&filegate_storage::StorageSettings {
        endpoint: Some("http://127.0.0.1:1".into()),
        public_endpoint: None,
        region: "us-east-1".into(),
        bucket: "b".into(),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".to_owned().into()),
        path_style: true,
        timeout: Duration::from_secs(1),
    })
    .await;
    let pool = filegate_db::connect(&filegate_db::PoolSettings {
        url: "postgres://postgres@127.0.0.1:1/x".to_owned().into(),
        ca_file: None,
        max_size: 2,
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
    })
    .unwrap();
    let c: Completer = Completer::new(
        storage.clone(),
        super::PgLedger::new(pool, Duration::ZERO, 0),
        pins_bytes(),
        Duration::from_secs(1),
    );
    let file = text_file();
    let complete = c.complete(file.id, Reach::default(), Trigger::Client, false);
    let look = c.look(file.id, "k", None, Trigger::Read);
    let many = c.complete_many(&[], Reach::default(), Trigger::Client, false);
    for (what, size) in [
        ("complete", std::mem::size_of_val(&complete)),
        ("look", std::mem::size_of_val(&look)),
        ("complete_many", std::mem::size_of_val(&many)),
    ] {
        assert!(size < 8 << 10, "{what}: {size} bytes");
    }
}
