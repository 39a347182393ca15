//! "Ready means verified bytes", against every client: one that PUTs again after
//! `ready`, one that never calls complete, S3 event deliveries, and objects that outlive
//! their rows. Real Postgres and a real S3 store; `scripts/test` runs them on Garage,
//! Ceph RGW (which ignores signed checksums and copy preconditions) and s3s-fs.

use std::time::{Duration, Instant};

use filegate_domain::Limits;
use filegate_tests::{
    Answer, EVENTS_SECRET, TestApp, samples, sha256_b64, spawn_app, spawn_app_with, upload_key,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

fn id(file: &Value) -> &str {
    file["file_uuid"].as_str().unwrap()
}

/// `bytes` padded (or cut) to `len`, so a swap keeps the declared length.
fn sized(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
    bytes.resize(len, 0);
    bytes
}

/// Reserves `entry`, uploads `original`, completes, then PUTs an ELF through the same
/// URL with the same headers, and checks the download still serves `original`.
async fn swap_after_ready(app: &TestApp, entry: Value, original: Vec<u8>) {
    let file = app.reserve(entry).await;
    assert_eq!(app.upload(&file, original.clone()).await, 200);
    let ready = app.complete(&file).await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(
        app.download(&file).await,
        original,
        "serves what was verified"
    );

    let impostor = sized(samples::elf(), original.len());
    let status = app.upload(&file, impostor.clone()).await;
    // Without a pinned digest every store takes the PUT; with one, Garage refuses it
    // and Ceph RGW (which ignores checksums) takes it. Either way nothing served changes.
    assert!(
        status == 200 || (400..500).contains(&status),
        "the store answered {status}"
    );
    assert_eq!(
        app.download(&file).await,
        original,
        "a PUT after ready does not change what the file serves"
    );
    // Completing again neither re-reads nor moves anything.
    let again = app.complete(&file).await;
    assert_eq!((again.status, &again.body), (200, &ready.body));
    assert_eq!(app.download(&file).await, original);
    let len = original.len() as i64;
    assert_eq!(app.counters(app.tenant.workspace).await, (len, 0));
    assert_eq!(app.row_sums(app.tenant.workspace).await, (len, 0));
}

#[tokio::test]
async fn ready_bytes_never_change_when_nothing_was_declared() {
    let app = spawn_app().await;
    swap_after_ready(&app, json!({ "name": "q3.pdf" }), samples::pdf()).await;
}

#[tokio::test]
async fn ready_bytes_never_change_when_only_the_size_was_declared() {
    let app = spawn_app().await;
    let pdf = samples::pdf();
    swap_after_ready(
        &app,
        json!({ "name": "q3.pdf", "size_bytes": pdf.len() }),
        pdf,
    )
    .await;
}

#[tokio::test]
async fn ready_bytes_never_change_when_size_and_digest_were_declared() {
    let app = spawn_app().await;
    let pdf = samples::pdf();
    swap_after_ready(
        &app,
        json!({ "name": "q3.pdf", "size_bytes": pdf.len(), "checksum_sha256": sha256_b64(&pdf) }),
        pdf,
    )
    .await;
}

/// Garage honours copy preconditions, so trusting them (as SSE-KMS buckets on AWS need,
/// whose ETags are not content hashes) keeps the guarantee there.
#[tokio::test]
async fn with_a_trusted_copy_precondition_ready_bytes_still_never_change() {
    let app = spawn_app_with(|s| s.storage.s3_trust_copy_precondition = true).await;
    swap_after_ready(&app, json!({ "name": "q3.pdf" }), samples::pdf()).await;
}

#[tokio::test]
async fn ready_bytes_are_the_version_checked_when_the_upload_is_replaced_before_completion() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "notes.txt" })).await;
    assert_eq!(app.upload(&file, samples::elf()).await, 200);
    // The client thinks better of it and PUTs again before completing: the last
    // version is the one inspected, and the one served.
    let text = samples::txt();
    assert_eq!(app.upload(&file, text.clone()).await, 200);
    let res = app.complete(&file).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["size_bytes"], text.len());
    assert_eq!(app.download(&file).await, text);
}

/// A hostile client PUTs the declared bytes, then other bytes of the same length
/// through the same URL, which the store refuses for their digest. s3s-fs 0.14 writes
/// the refused body over the accepted one anyway and keeps the old ETag and digest, so
/// neither names the stored bytes; Ceph RGW takes the other bytes. Whatever the store
/// did, the file is ready only with the declared bytes, or rejected.
#[tokio::test]
async fn ready_bytes_are_the_declared_ones_after_a_refused_put_the_store_half_wrote() {
    refused_put_half_written(spawn_app().await).await;
}

/// The same with `FILEGATE_S3_TRUST_COPY_PRECONDITION`: a successful conditional copy
/// is not taken as the verified version on a store whose ETags do not pin bytes.
#[tokio::test]
async fn ready_bytes_are_the_declared_ones_after_a_half_written_refusal_even_with_a_trusted_copy() {
    refused_put_half_written(spawn_app_with(|s| s.storage.s3_trust_copy_precondition = true).await)
        .await;
}

async fn refused_put_half_written(app: TestApp) {
    // Both are plain text of one length: only the digest tells them apart.
    let good = b"the declared bytes of a plain text file\n".to_vec();
    let bad = good.to_ascii_uppercase();
    let file = app
        .reserve(json!({ "name": "notes.txt", "size_bytes": good.len(), "checksum_sha256": sha256_b64(&good) }))
        .await;
    assert_eq!(app.upload(&file, good.clone()).await, 200);
    let second = app.upload(&file, bad).await;
    assert!(
        second == 400 || second == 200,
        "the store answered {second}"
    );
    let res = app.complete(&file).await;
    if res.status == 200 {
        assert_eq!(
            app.download(&file).await,
            good,
            "ready serves the declared bytes"
        );
    } else {
        res.assert_error(422, "upload_mismatch");
        let (status, _) = app.file_status(&file).await;
        assert_eq!(status, "rejected");
    }
}

/// The guarantee rests on this: a conditional copy either refuses another version or
/// reports the ETag of what it copied, so the caller can always tell.
#[tokio::test]
async fn store_copies_tell_which_version_they_copied() {
    let app = spawn_app().await;
    let (from, to) = (
        format!("uploads/{}/{}", Uuid::now_v7(), Uuid::now_v7()),
        format!("{}/{}", Uuid::now_v7(), Uuid::now_v7()),
    );
    app.put_object(&from, samples::txt(), "text/plain", None)
        .await;
    let head = app.storage.head(&from).await.unwrap().unwrap();
    let etag = head.etag.clone().expect("HeadObject carries an ETag");
    let same = app
        .storage
        .copy(&from, &to, &etag, head.size)
        .await
        .unwrap();
    let copied = match same {
        filegate_storage::CopyOutcome::Copied { etag: Some(e) } => e,
        filegate_storage::CopyOutcome::Copied { etag: None } => {
            app.storage.head(&to).await.unwrap().unwrap().etag.unwrap()
        }
        other => panic!("a copy of the named version failed: {other:?}"),
    };
    assert_eq!(copied.trim_matches('"'), etag.trim_matches('"'));
    // Another version now: the condition names the old one.
    app.put_object(&from, samples::markdown(), "text/plain", None)
        .await;
    match app
        .storage
        .copy(&from, &to, &etag, head.size)
        .await
        .unwrap()
    {
        filegate_storage::CopyOutcome::SourceChanged => {}
        filegate_storage::CopyOutcome::Copied { etag: reported } => {
            let reported = match reported {
                Some(e) => e,
                None => app.storage.head(&to).await.unwrap().unwrap().etag.unwrap(),
            };
            assert_ne!(
                reported.trim_matches('"'),
                etag.trim_matches('"'),
                "a store that ignores the precondition reports the other version"
            );
        }
    }
}

/// Counts every status change of every file, from inside Postgres.
async fn record_transitions(app: &TestApp) {
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE test_transitions (file_id uuid, old text, new text);
             CREATE FUNCTION test_log_transition() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.status <> OLD.status THEN
                     INSERT INTO test_transitions VALUES (NEW.id, OLD.status, NEW.status);
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER test_transitions AFTER UPDATE ON files
                 FOR EACH ROW EXECUTE FUNCTION test_log_transition();",
        )
        .await
        .unwrap();
}

/// `(old, new)` status changes recorded for a file.
async fn transitions(app: &TestApp, file: &Value) -> Vec<(String, String)> {
    let client = app.pool.get().await.unwrap();
    let id: Uuid = id(file).parse().unwrap();
    client
        .query(
            "SELECT old, new FROM test_transitions WHERE file_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Polls the file's row until it leaves `pending` or `within` runs out.
async fn wait_settled(app: &TestApp, file: &Value, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (status, _) = app.file_status(file).await;
        if status != "pending" || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn uploads_nobody_completes_are_settled_by_two_finalizing_processes_exactly_once() {
    let app = spawn_app_with(|s| {
        s.reaper.finalizer_interval = std::time::Duration::from_secs(1);
        s.reaper.finalizer_min_interval = std::time::Duration::from_secs(1);
    })
    .await;
    record_transitions(&app).await;
    // A second replica: another process on the same database and bucket.
    let port = filegate_tests::free_port();
    let mut replica = app
        .serve_command(port)
        .await
        .env("FILEGATE_FINALIZER_INTERVAL_SECS", "1")
        .env("FILEGATE_FINALIZER_MIN_INTERVAL_SECS", "1")
        .env("FILEGATE_RECONCILE_INTERVAL_SECS", "0")
        .spawn()
        .unwrap();
    filegate_tests::wait_healthy(port).await;
    let small = app
        .create_tenant(&Limits {
            max_file_bytes: 1000,
            ..Limits::default()
        })
        .await;

    // Reserve and PUT the way Aymara's SDK does (a local path, a guessed type), and never complete.
    let mut valid = Vec::new();
    for i in 0..12 {
        let bytes = samples::pdf();
        let file = app
            .reserve(json!({ "local_file_path": format!("evals/run-{i}.pdf"), "size_bytes": bytes.len() }))
            .await;
        assert_eq!(app.upload(&file, bytes).await, 200);
        valid.push(file);
    }
    let undeclared = app.reserve(json!({ "local_file_path": "notes.txt" })).await;
    assert_eq!(app.upload(&undeclared, samples::txt()).await, 200);
    let elf = app.reserve(json!({ "name": "invoice.pdf" })).await;
    assert_eq!(app.upload(&elf, samples::elf()).await, 200);
    let res = app
        .create_files_as(&small.key, &json!({ "files": [{ "name": "big.txt" }] }))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let oversize = res.body["files"][0].clone();
    // Its URL (filegate's own) cuts the body off; the finalizer must still reject an
    // upload key that holds more than the file may (written past filegate).
    assert_eq!(app.upload(&oversize, vec![b'a'; 5000]).await, 413);
    app.put_object(&upload_key(&oversize), vec![b'a'; 5000], "text/plain", None)
        .await;
    let started = Instant::now();

    for file in valid.iter().chain([&undeclared]) {
        assert_eq!(
            wait_settled(&app, file, Duration::from_secs(30)).await,
            "ready"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        wait_settled(&app, &elf, Duration::from_secs(30)).await,
        "rejected"
    );
    assert!(
        !app.object_exists(&upload_key(&elf)).await,
        "the ELF is gone"
    );
    assert_eq!(
        wait_settled(&app, &oversize, Duration::from_secs(60)).await,
        "rejected"
    );
    assert!(
        app.file_status(&oversize)
            .await
            .1
            .unwrap_or_default()
            .contains("more than the 1000 bytes allowed")
    );
    assert!(!app.object_exists(&upload_key(&oversize)).await);
    assert!(started.elapsed() < Duration::from_secs(60));

    // Each file made exactly one transition, whichever process made it.
    for file in valid.iter().chain([&undeclared]) {
        assert_eq!(
            transitions(&app, file).await,
            vec![("pending".to_owned(), "ready".to_owned())]
        );
        assert_eq!(app.download(file).await.len() as i64, {
            let (status, _) = app.file_status(file).await;
            assert_eq!(status, "ready");
            let body = app
                .request(Method::GET, &format!("/v2/files/{}", id(file)))
                .send()
                .await
                .unwrap();
            Answer::of(body).await.body["size_bytes"].as_i64().unwrap()
        });
    }
    for file in [&elf, &oversize] {
        assert_eq!(
            transitions(&app, file).await,
            vec![("pending".to_owned(), "rejected".to_owned())]
        );
    }
    for ws in [app.tenant.workspace, small.workspace] {
        assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
    }
    assert_eq!(app.counters(small.workspace).await, (0, 0));
    replica.kill().await.unwrap();
}

#[tokio::test]
async fn a_get_of_a_pending_file_completes_an_upload_that_arrived() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    let get = || async {
        Answer::of(
            app.request(Method::GET, &format!("/v2/files/{}", id(&file)))
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let before = get().await;
    assert_eq!(before.body["status"], "pending", "nothing uploaded yet");
    assert!(before.body.get("download_url").is_none());
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
    let after = get().await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body["status"], "ready");
    assert!(after.body["download_url"].is_string());
    assert_eq!(app.download(&file).await, samples::txt());
}

/// An S3 event notification (AWS/MinIO shape) naming `keys` in `bucket`.
fn event(bucket: &str, keys: &[&str], name: &str) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
                "s3": { "bucket": { "name": bucket }, "object": { "key": k, "size": 1 } }
            })
        })
        .collect();
    json!({ "Records": records })
}

async fn deliver(app: &TestApp, auth: Option<&str>, body: String) -> Answer {
    let mut req = app
        .http
        .post(format!("{}/v2/events/s3", app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    Answer::of(req.send().await.unwrap()).await
}

fn bearer() -> String {
    format!("Bearer {EVENTS_SECRET}")
}

#[tokio::test]
async fn an_s3_event_makes_the_named_file_ready_at_once() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "a.pdf" })).await;
    assert_eq!(app.upload(&file, samples::pdf()).await, 200);
    let bucket = &app.settings.storage.s3_bucket;
    let res = deliver(
        &app,
        Some(&bearer()),
        event(bucket, &[&upload_key(&file)], "s3:ObjectCreated:Put").to_string(),
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(
        res.body["files"],
        json!([{ "file_uuid": id(&file), "status": "ready" }])
    );
    assert_eq!(app.file_status(&file).await.0, "ready");
    assert_eq!(app.download(&file).await, samples::pdf());
    // A redelivery changes nothing.
    let again = deliver(
        &app,
        Some(&bearer()),
        event(bucket, &[&upload_key(&file)], "s3:ObjectCreated:Put").to_string(),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        app.row_sums(app.tenant.workspace).await
    );
}

#[tokio::test]
async fn an_sns_wrapped_event_with_basic_auth_completes_and_rejects() {
    let app = spawn_app().await;
    let good = app.reserve(json!({ "name": "a.txt" })).await;
    assert_eq!(app.upload(&good, samples::txt()).await, 200);
    let bad = app.reserve(json!({ "name": "b.pdf" })).await;
    assert_eq!(app.upload(&bad, samples::elf()).await, 200);
    let bucket = &app.settings.storage.s3_bucket;
    // AWS URL-encodes keys in events.
    let keys = [upload_key(&good).replace('/', "%2F"), upload_key(&bad)];
    let inner = event(bucket, &[&keys[0], &keys[1]], "ObjectCreated:Put");
    let sns = json!({ "Type": "Notification", "MessageId": "m1", "Message": inner.to_string() });
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sns:{EVENTS_SECRET}"));
    let res = deliver(&app, Some(&format!("Basic {basic}")), sns.to_string()).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(app.file_status(&good).await.0, "ready");
    assert_eq!(app.file_status(&bad).await.0, "rejected");
    assert!(!app.object_exists(&upload_key(&bad)).await);
}

#[tokio::test]
async fn event_deliveries_without_the_right_secret_get_401() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
    let body = event(
        &app.settings.storage.s3_bucket,
        &[&upload_key(&file)],
        "s3:ObjectCreated:Put",
    )
    .to_string();
    for auth in [
        None,
        Some("Bearer wrong-secret-wrong-secret"),
        Some(app.tenant.key.as_str()),
        Some("Bearer "),
    ] {
        let res = deliver(&app, auth, body.clone()).await;
        res.assert_error(401, "unauthenticated");
    }
    assert_eq!(
        app.file_status(&file).await.0,
        "pending",
        "nothing happened"
    );
}

#[tokio::test]
async fn events_for_keys_filegate_does_not_know_are_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let bucket = app.settings.storage.s3_bucket.clone();
    let unknown = format!("uploads/{}/{}", Uuid::now_v7(), Uuid::now_v7());
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
    let mut records = event(
        &bucket,
        &[
            &unknown,
            "backups/db.tar",
            file["remote_file_path"].as_str().unwrap(),
        ],
        "s3:ObjectCreated:Put",
    )["Records"]
        .as_array()
        .unwrap()
        .clone();
    records.extend(
        event(
            "another-bucket",
            &[&upload_key(&file)],
            "s3:ObjectCreated:Put",
        )["Records"]
            .as_array()
            .unwrap()
            .clone(),
    );
    records.extend(
        event(&bucket, &[&upload_key(&file)], "s3:ObjectRemoved:Delete")["Records"]
            .as_array()
            .unwrap()
            .clone(),
    );
    let res = deliver(
        &app,
        Some(&bearer()),
        json!({ "Records": records }).to_string(),
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["records"], 5);
    assert_eq!(res.body["ignored"], 5);
    assert_eq!(res.body["files"], json!([]));
    assert_eq!(app.file_status(&file).await.0, "pending");
    // S3's test event when a notification is configured.
    let test = deliver(
        &app,
        Some(&bearer()),
        json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket }).to_string(),
    )
    .await;
    assert_eq!(test.status, 200);
}

#[tokio::test]
async fn malformed_event_deliveries_get_400_with_the_envelope() {
    let app = spawn_app().await;
    for body in [
        "not json",
        "{\"Records\": ",
        "[]",
        "{\"Records\": 5}",
        "{\"Type\": \"Notification\", \"Message\": 7}",
        "{}",
    ] {
        let res = deliver(&app, Some(&bearer()), body.to_owned()).await;
        res.assert_error(400, "invalid_request");
    }
    let huge = "x".repeat(2 << 20);
    let res = deliver(
        &app,
        Some(&bearer()),
        format!("{{\"Records\": [\"{huge}\"]}}"),
    )
    .await;
    assert_eq!(res.status, 413, "{:?}", res.body);
}

/// Runs `filegate reconcile` (a separate process) against the app's database and bucket.
async fn reconcile_cli(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = app
        .command("reconcile")
        .await
        .args(args)
        .env("FILEGATE_PRESIGN_TTL_SECS", "1")
        .env("FILEGATE_UPLOAD_MARGIN_SECS", "1")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn reconcile(app: &TestApp, dry_run: bool) -> filegate::jobs::ReconcileReport {
    filegate::jobs::Reconciler::new(
        app.pool.clone(),
        app.storage.clone(),
        app.settings.storage.presign_ttl,
        app.settings.reaper.upload_margin,
        dry_run,
    )
    .pass()
    .await
    .unwrap()
}

#[tokio::test]
async fn reconcile_deletes_planted_orphans_after_the_margin_and_never_before() {
    // Upload URLs live 3 s (long enough to PUT on a loaded machine), the margin 1 s.
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(3)).await;
    let kept = app.reserve_and_upload("kept.txt", samples::txt()).await;
    assert_eq!(app.complete(&kept).await.status, 200);
    let pending = app.reserve(json!({ "name": "p.txt" })).await;
    assert_eq!(app.upload(&pending, samples::txt()).await, 200);
    let ws = app.tenant.workspace;
    let planted = [
        format!("{ws}/{}", Uuid::now_v7()),
        format!("uploads/{ws}/{}", Uuid::now_v7()),
    ];
    for key in &planted {
        app.put_object(key, samples::txt(), "text/plain", None)
            .await;
    }
    // A ready file's upload object is owned by nothing either (its copy is served; the
    // upload waits for its deletion once the URL has expired).
    let orphans = [planted[0].clone(), planted[1].clone(), upload_key(&kept)];
    app.put_object("backups/not-ours.txt", samples::txt(), "text/plain", None)
        .await;

    let young = reconcile(&app, false).await;
    assert_eq!(
        (
            young.orphans_found,
            young.orphans_due,
            young.orphans_deleted
        ),
        (3, 0, 0)
    );
    assert_eq!(young.foreign_objects, 1);
    for key in &orphans {
        assert!(
            app.object_exists(key).await,
            "younger than the upload window plus the margin"
        );
    }
    // Past the upload window (3 s) and the margin (1 s).
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let (code, out) = reconcile_cli(&app, &["--dry-run", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let dry: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["orphans_due"], 3);
    assert_eq!(dry["orphans_deleted"], 0);
    for key in &orphans {
        assert!(app.object_exists(key).await, "a dry run changes nothing");
    }
    let done = reconcile(&app, false).await;
    assert_eq!((done.orphans_found, done.orphans_deleted), (3, 3));
    for key in &orphans {
        assert!(!app.object_exists(key).await);
    }
    assert!(
        app.object_exists("backups/not-ours.txt").await,
        "foreign keys are left alone"
    );
    assert!(
        app.object_exists(kept["remote_file_path"].as_str().unwrap())
            .await
    );
    assert!(
        app.object_exists(&upload_key(&pending)).await,
        "a pending file's upload is owned"
    );
    assert_eq!(done.missing_objects, 0);
}

#[tokio::test]
async fn a_put_that_lands_after_its_file_was_deleted_is_removed() {
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(3)).await;
    // A declared size: the presigned URL is the store's, and outlives the row (an
    // undeclared size's URL is filegate's own, and dies with it).
    let file = app
        .reserve(json!({ "name": "late.txt", "size_bytes": samples::txt().len() }))
        .await;
    let res = app
        .request(Method::DELETE, &format!("/v2/files/{}", id(&file)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // The URL is still valid: the store takes the PUT, and no row owns it.
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
    assert!(app.object_exists(&upload_key(&file)).await);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let report = reconcile(&app, false).await;
    assert_eq!(report.orphans_deleted, 1, "{report:?}");
    assert!(!app.object_exists(&upload_key(&file)).await);
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
}

#[tokio::test]
async fn reconcile_reports_a_ready_file_whose_object_vanished() {
    let app = spawn_app().await;
    let gone = app.reserve_and_upload("gone.txt", samples::txt()).await;
    let fine = app.reserve_and_upload("fine.txt", samples::txt()).await;
    for f in [&gone, &fine] {
        assert_eq!(app.complete(f).await.status, 200);
    }
    app.storage
        .delete(gone["remote_file_path"].as_str().unwrap())
        .await
        .unwrap();
    let (code, out) = reconcile_cli(&app, &["--json"]).await;
    assert_eq!(code, 1, "missing objects fail the command: {out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["missing_objects"], 1);
    assert_eq!(
        report["missing"],
        json!([{ "file_uuid": id(&gone), "workspace_uuid": app.tenant.workspace, "remote_file_path": gone["remote_file_path"] }])
    );
    // The row is reported, never dropped.
    assert_eq!(app.file_status(&gone).await.0, "ready");
    let lib = reconcile(&app, true).await;
    assert_eq!(lib.missing_objects, 1);
    let metrics = app.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "filegate_reconcile_missing_objects 1"),
        "the gauge shows the missing object"
    );
}

/// Whole seconds from now to a file's next finalizer look (`None`: no more looks).
async fn seconds_to_next_look(client: &tokio_postgres::Client, id: Uuid) -> Option<f64> {
    let next: Option<f64> = client
        .query_one(
            "SELECT extract(epoch FROM next_check_at - now())::float8 FROM files WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    next.map(f64::round)
}

#[tokio::test]
async fn the_finalizer_paces_its_looks_by_age_and_looks_once_more_after_expiry() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "slow.txt" })).await;
    let file_id: Uuid = id(&file).parse().unwrap();
    let schedule = filegate_db::completion::LookSchedule {
        min_interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(60),
        after_expiry: Duration::from_secs(30),
    };
    let client = app.pool.get().await.unwrap();
    // Ages the file (`age` seconds old, URL expiring in `expires_in`), makes its look
    // due, claims it, and returns the seconds from now to its next look (None: no more).
    let pool = &app.pool;
    let key = upload_key(&file);
    let key = &key;
    let look_after = |age: f64, expires_in: f64| {
        let client = &client;
        async move {
            client
                .execute(
                    "UPDATE files SET created_at = now() - make_interval(secs => $2),
                            upload_expires_at = now() + make_interval(secs => $3),
                            next_check_at = now() - interval '1 second'
                      WHERE id = $1",
                    &[&file_id, &age, &expires_in],
                )
                .await
                .unwrap();
            let due = filegate_db::completion::due_for_look(pool, 10, schedule)
                .await
                .unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!(&due[0].upload_key, key);
            seconds_to_next_look(client, file_id).await
        }
    };
    assert_eq!(look_after(0.5, 900.0).await, Some(2.0), "the shortest gap");
    assert_eq!(
        look_after(10.0, 900.0).await,
        Some(10.0),
        "a gap as long as the file's age"
    );
    assert_eq!(
        look_after(600.0, 300.0).await,
        Some(60.0),
        "the longest gap"
    );
    assert_eq!(
        look_after(600.0, 20.0).await,
        Some(50.0),
        "past the expiry: once more, 30 s after it"
    );
    assert_eq!(
        look_after(930.0, -30.0).await,
        None,
        "that was the last look"
    );
    // Not due: not claimed.
    let none = filegate_db::completion::due_for_look(&app.pool, 10, schedule)
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn all_completion_paths_racing_make_exactly_one_transition() {
    let app = spawn_app().await;
    record_transitions(&app).await;
    let bucket = app.settings.storage.s3_bucket.clone();
    let mut files = Vec::new();
    for i in 0..4 {
        let file = app
            .reserve(json!({ "name": format!("race-{i}.pdf") }))
            .await;
        assert_eq!(app.upload(&file, samples::pdf()).await, 200);
        files.push(file);
    }
    let keys: Vec<String> = files.iter().map(upload_key).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let body = event(&bucket, &key_refs, "s3:ObjectCreated:Put").to_string();
    let auth = bearer();
    let mut clients = Vec::new();
    let mut others = Vec::new();
    for _ in 0..5 {
        for f in &files {
            clients.push(app.complete(f));
            others.push(Box::pin(async {
                Answer::of(
                    app.request(Method::GET, &format!("/v2/files/{}", id(f)))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + '_>>);
        }
        others.push(Box::pin(deliver(&app, Some(&auth), body.clone())));
    }
    let (completed, seen) = tokio::join!(
        futures_util::future::join_all(clients),
        futures_util::future::join_all(others)
    );
    for res in &completed {
        assert_eq!(res.status, 200, "{:?}", res.body);
        assert_eq!(res.body["status"], "ready");
    }
    for res in &seen {
        assert_eq!(res.status, 200, "{:?}", res.body);
    }
    for f in &files {
        assert_eq!(
            transitions(&app, f).await,
            vec![("pending".to_owned(), "ready".to_owned())]
        );
        assert_eq!(app.download(f).await, samples::pdf());
    }
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

#[tokio::test]
async fn a_rejection_also_removes_a_copy_an_earlier_attempt_left_at_the_object_key() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "a.pdf" })).await;
    // What an attempt that copied and then saw the upload change would leave behind.
    let served = file["remote_file_path"].as_str().unwrap();
    app.put_object(served, samples::pdf(), "application/pdf", None)
        .await;
    assert_eq!(app.upload(&file, samples::elf()).await, 200);
    app.complete(&file)
        .await
        .assert_error(422, "upload_mismatch");
    assert!(!app.object_exists(served).await, "no orphaned copy");
    assert!(!app.object_exists(&upload_key(&file)).await);
}

#[tokio::test]
async fn lowering_the_max_file_size_does_not_reject_uploads_already_reserved() {
    let app = spawn_app().await;
    let text = vec![b'a'; 2000];
    let file = app.reserve_and_upload("big.txt", text.clone()).await;
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE workspaces SET max_file_bytes = 1000 WHERE id = $1",
            &[&app.tenant.workspace],
        )
        .await
        .unwrap();
    let res = app.complete(&file).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    // New reservations get the new limit.
    let res = app
        .create_files(&json!({ "files": [{ "name": "b.txt", "size_bytes": 2000 }] }))
        .await;
    res.assert_error(422, "file_too_large");
}

#[tokio::test]
async fn a_ready_file_stored_under_older_name_rules_is_still_served() {
    let app = spawn_app().await;
    let file = app.reserve_and_upload("a.txt", samples::txt()).await;
    assert_eq!(app.complete(&file).await.status, 200);
    let client = app.pool.get().await.unwrap();
    let id: Uuid = id(&file).parse().unwrap();
    // A name today's rules refuse (a zero-width space), as rows from before them hold.
    client
        .execute(
            "UPDATE files SET name = 'a\u{200b}b.txt' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(app.download(&file).await, samples::txt());
}

#[tokio::test]
async fn a_failed_last_look_is_looked_at_again() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "late.txt" })).await;
    let file_id: Uuid = id(&file).parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE files SET next_check_at = NULL WHERE id = $1",
            &[&file_id],
        )
        .await
        .unwrap();
    filegate_db::completion::retry_look(&app.pool, file_id, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(seconds_to_next_look(&client, file_id).await, Some(2.0));
}

#[tokio::test]
async fn an_interrupted_reconciliation_leaves_no_lock_behind() {
    let app = spawn_app().await;
    let pass = tokio::time::sleep(Duration::from_secs(30));
    let interrupted = tokio::time::timeout(
        Duration::from_millis(300),
        filegate_db::reconcile::exclusively(&app.pool, pass),
    )
    .await;
    assert!(interrupted.is_err(), "the pass was cut short");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another session (another replica) can take the lock now.
    let other = filegate_tests::connect(&app.database_url).await;
    let free: bool = other
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&filegate_db::reconcile::RECONCILE_LOCK],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        free,
        "the interrupted pass still holds the reconciliation lock"
    );
}

#[tokio::test]
async fn a_delivery_without_the_secret_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A body under the limit is announced and never sent: only the headers can answer.
    conn.write_all(
        b"POST /v2/events/s3 HTTP/1.1\r\nHost: filegate\r\nAuthorization: Bearer wrong-secret\r\n\
          Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test]
async fn refused_deliveries_drain_their_addresss_own_bucket_and_not_the_secrets() {
    let app = spawn_app_with(|s| {
        s.rate_limit.rate_limit_burst = 3;
        s.rate_limit.rate_limit_per_second = 0.001;
    })
    .await;
    let body = event(&app.settings.storage.s3_bucket, &[], "s3:ObjectCreated:Put").to_string();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(deliver(&app, Some("Bearer wrong-secret"), body.clone()).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status).collect();
    assert_eq!(codes, [401, 401, 401, 429, 429]);
    statuses[3].assert_error(429, "rate_limited");
    assert!(statuses[3].headers.contains_key("retry-after"));
    // The store's own deliveries, with the secret, are not charged.
    for _ in 0..5 {
        assert_eq!(
            deliver(&app, Some(&bearer()), body.clone()).await.status,
            200
        );
    }
    // Nor are the address's API requests: a failed key has a bucket of its own.
    let res = app
        .http
        .get(format!("{}/v2/files", app.address))
        .bearer_auth("fg_not_a_key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_finalizers_looks_share_one_listing_per_workspace_instead_of_a_head_per_file() {
    // Counted by a proxy in front of the store. 48 files nobody uploads and 2 uploaded
    // without a complete call, reserved together, their 8-second window looked at
    // about five times (at 1, 2, 4 and 8 s, and once its URL expired).
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|s| {
        s.storage.presign_ttl = Duration::from_secs(8);
        s.reaper.finalizer_interval = Duration::from_secs(1);
        s.reaper.finalizer_min_interval = Duration::from_secs(1);
    })
    .await;
    let files: Vec<Value> = (0..50)
        .map(|i| json!({ "name": format!("{i}.txt"), "size_bytes": samples::txt().len() }))
        .collect();
    let before = proxy.requests().len();
    let res = app.create_files(&json!({ "files": files })).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let created = res.body["files"].as_array().unwrap().clone();
    for file in &created[..2] {
        assert_eq!(app.upload(file, samples::txt()).await, 200);
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    for file in &created[..2] {
        assert_eq!(app.file_status(file).await.0, "ready", "found by a listing");
    }
    let requests: Vec<String> = proxy.requests()[before..].to_vec();
    let count = |what: &dyn Fn(&str) -> bool| requests.iter().filter(|r| what(r)).count();
    let listings = count(&|r| r.starts_with("GET ") && r.contains("list-type=2"));
    let heads = count(&|r| r.starts_with("HEAD "));
    let looks = filegate_tests::metric_sample(
        &app.metrics_text().await,
        "filegate_finalizer_looks_total{outcome=\"absent\"}",
    );
    assert!(
        looks >= 48.0 * 4.0,
        "every file was looked at, about five times: {looks}"
    );
    // A HEAD per file per look made more than 200; the two completions make a few.
    assert!(
        listings <= 12,
        "one listing per look of the batch, not one per file: {listings} in {requests:#?}"
    );
    assert!(
        heads <= 6,
        "HEADs only to verify the two arrived uploads: {heads}"
    );
    assert!(
        (listings + heads) as f64 / 48.0 < 0.5,
        "under half a store request per never-uploaded file over its window"
    );
}
