//! POST /v2/files/{id}/complete and the reaper, against real Postgres and Garage.

use filegate::jobs::Job as _;
use std::time::Duration;

use filegate_domain::Limits;
use filegate_tests::{TestApp, samples, sha256_b64, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// Where downloads are served from.
fn key(file: &Value) -> &str {
    file["remote_file_path"].as_str().unwrap()
}

/// Where the file's presigned PUT writes.
fn upload(file: &Value) -> String {
    filegate_tests::upload_key(file)
}

/// The file was rejected, its object is gone, and the quota is back to `(0, 0)`.
async fn assert_rejected(app: &TestApp, file: &Value, reason_contains: &str) {
    let res = app.complete(file).await;
    res.assert_error(422, "upload_mismatch");
    let (status, reason) = app.file_status(file).await;
    assert_eq!(status, "rejected");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains(reason_contains),
        "reason {reason:?} should mention {reason_contains:?}"
    );
    assert_eq!(
        res.body["error"]["details"]["rejection_reason"],
        reason.as_str()
    );
    assert!(
        !app.object_exists(&upload(file)).await,
        "the rejected upload is deleted"
    );
    assert!(
        !app.object_exists(key(file)).await,
        "nothing was ever served"
    );
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        (0, 0),
        "the reservation is released"
    );
    assert_eq!(app.row_sums(app.tenant.workspace).await, (0, 0));
    // Completing again is a state conflict, not a second rejection.
    app.complete(file).await.assert_error(409, "invalid_state");
}

#[tokio::test]
async fn each_allowed_type_completes_to_ready_and_counts_as_usage() {
    let app = spawn_app().await;
    let samples = [
        ("q3.pdf", samples::pdf(), "application/pdf"),
        (
            "memo.docx",
            samples::docx(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("page.html", samples::html(), "text/html"),
        ("notes.txt", samples::txt(), "text/plain"),
        ("readme.md", samples::markdown(), "text/markdown"),
    ];
    let mut total = 0;
    for (name, bytes, mime) in samples {
        let len = bytes.len() as i64;
        let file = app.reserve_and_upload(name, bytes.clone()).await;
        let res = app.complete(&file).await;
        assert_eq!(res.status, 200, "{name}: {:?}", res.body);
        assert_eq!(res.body["status"], "ready");
        assert_eq!(res.body["content_type"], mime);
        assert_eq!(res.body["size_bytes"], len);
        assert_eq!(res.body["checksum_sha256"], sha256_b64(&bytes));
        assert_eq!(res.body["remote_file_path"], file["remote_file_path"]);
        assert!(res.body["completed_at"].is_string());
        total += len;
        // A repeat answers the same 200 with the same object.
        let again = app.complete(&file).await;
        assert_eq!((again.status, &again.body), (200, &res.body));
    }
    assert_eq!(app.counters(app.tenant.workspace).await, (total, 0));
    assert_eq!(app.row_sums(app.tenant.workspace).await, (total, 0));
}

#[tokio::test]
async fn a_size_other_than_the_declared_one_is_rejected() {
    let app = spawn_app().await;
    let file = app
        .reserve(json!({ "name": "a.txt", "size_bytes": 10 }))
        .await;
    app.put_object(&upload(&file), b"twelve bytes".to_vec(), "text/plain", None)
        .await;
    assert_rejected(&app, &file, "but 10 were declared").await;
}

#[tokio::test]
async fn a_stored_content_type_other_than_the_declared_one_is_rejected() {
    let app = spawn_app().await;
    let file = app
        .reserve(json!({ "name": "a.txt", "size_bytes": 5 }))
        .await;
    app.put_object(&upload(&file), b"hello".to_vec(), "text/html", None)
        .await;
    assert_rejected(&app, &file, "content type").await;
}

#[tokio::test]
async fn a_wrong_digest_is_rejected_whether_or_not_the_store_kept_one() {
    let app = spawn_app().await;
    // The store keeps the digest of what was written, which is not the declared one.
    let file = app
        .reserve(
            json!({ "name": "a.txt", "size_bytes": 5, "checksum_sha256": sha256_b64(b"hello") }),
        )
        .await;
    app.put_object(
        &upload(&file),
        b"HELLO".to_vec(),
        "text/plain",
        Some(sha256_b64(b"HELLO")),
    )
    .await;
    assert_rejected(&app, &file, "SHA-256").await;
    // Written without a digest: filegate hashes the object itself.
    let file = app
        .reserve(
            json!({ "name": "b.txt", "size_bytes": 5, "checksum_sha256": sha256_b64(b"hello") }),
        )
        .await;
    app.put_object(&upload(&file), b"HELLO".to_vec(), "text/plain", None)
        .await;
    assert_rejected(&app, &file, "SHA-256").await;
    // And the right bytes without a stored digest pass.
    let file = app
        .reserve(
            json!({ "name": "c.txt", "size_bytes": 5, "checksum_sha256": sha256_b64(b"hello") }),
        )
        .await;
    app.put_object(&upload(&file), b"hello".to_vec(), "text/plain", None)
        .await;
    assert_eq!(app.complete(&file).await.status, 200);
}

#[tokio::test]
async fn first_bytes_that_contradict_the_type_are_rejected() {
    let app = spawn_app().await;
    for (name, bytes, says) in [
        ("elf.pdf", samples::elf(), "application/x-executable"),
        (
            "pe.pdf",
            samples::pe(),
            "application/vnd.microsoft.portable-executable",
        ),
        ("png.txt", samples::png(), "image/png"),
        ("random.docx", samples::random(2048), "DOCX"),
        (
            "zip.docx",
            samples::zip(&[("photo.jpg", "not a document")]),
            "application/zip",
        ),
    ] {
        // The presigned URL accepts them: the declared type and length are right.
        let file = app.reserve_and_upload(name, bytes).await;
        assert_rejected(&app, &file, says).await;
    }
}

#[tokio::test]
async fn an_undeclared_size_settles_to_the_real_size() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        (0, 5 << 20),
        "reserves the max file size"
    );
    assert_eq!(app.upload(&file, vec![b'x'; 1234]).await, 200);
    let res = app.complete(&file).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["size_bytes"], 1234);
    assert_eq!(app.counters(app.tenant.workspace).await, (1234, 0));
}

#[tokio::test]
async fn an_undeclared_size_over_the_max_file_size_is_cut_off_as_it_arrives() {
    let app = spawn_app().await;
    let small = app
        .create_tenant(&Limits {
            max_file_bytes: 1000,
            ..Limits::default()
        })
        .await;
    let res = app
        .create_files_as(&small.key, &json!({ "files": [{ "name": "a.txt" }] }))
        .await;
    let file = res.body["files"][0].clone();
    assert_eq!(
        app.upload(&file, vec![b'x'; 1001]).await,
        413,
        "the upload URL of an undeclared size counts the bytes"
    );
    assert!(
        !app.object_exists(&upload(&file)).await,
        "nothing of it was stored"
    );
    let id = file["file_uuid"].as_str().unwrap();
    let complete = || async {
        let res = app
            .request_as(
                &small.key,
                Method::POST,
                &format!("/v2/files/{id}/complete"),
            )
            .send()
            .await
            .unwrap();
        filegate_tests::Answer::of(res).await
    };
    complete().await.assert_error(422, "upload_missing");
    assert_eq!(app.counters(small.workspace).await, (0, 1000));
    // The most it may hold is taken, and settles to its real size.
    assert_eq!(app.upload(&file, vec![b'x'; 1000]).await, 200);
    let ready = complete().await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["size_bytes"], 1000);
    assert_eq!(app.counters(small.workspace).await, (1000, 0));
}

#[tokio::test]
async fn concurrent_completions_make_one_transition_and_agree() {
    let app = spawn_app().await;
    let bytes = samples::pdf();
    let file = app.reserve_and_upload("race.pdf", bytes.clone()).await;
    let answers = futures_util::future::join_all((0..20).map(|_| app.complete(&file))).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(
            a.body, answers[0].body,
            "every caller sees the same file object"
        );
    }
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        (bytes.len() as i64, 0),
        "usage counted once"
    );
}

#[tokio::test]
async fn a_missing_object_is_upload_missing_and_the_file_stays_pending() {
    let app = spawn_app().await;
    let file = app
        .reserve(json!({ "name": "a.pdf", "size_bytes": 100 }))
        .await;
    app.complete(&file)
        .await
        .assert_error(422, "upload_missing");
    assert_eq!(app.file_status(&file).await.0, "pending");
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 100));
}

#[tokio::test]
async fn another_tenants_file_is_not_found() {
    let app = spawn_app().await;
    let file = app.reserve_and_upload("a.txt", samples::txt()).await;
    let other = app.create_tenant(&Limits::default()).await;
    let id = file["file_uuid"].as_str().unwrap();
    let res = app
        .request_as(
            &other.key,
            Method::POST,
            &format!("/v2/files/{id}/complete"),
        )
        .send()
        .await
        .unwrap();
    filegate_tests::Answer::of(res)
        .await
        .assert_error(404, "not_found");
    let unknown = format!("/v2/files/{}/complete", uuid::Uuid::new_v4());
    filegate_tests::Answer::of(app.request(Method::POST, &unknown).send().await.unwrap())
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.file_status(&file).await.0, "pending");
}

#[tokio::test]
async fn with_the_object_store_unreachable_complete_is_503_and_the_file_stays_pending() {
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|_| {}).await;
    let file = app.reserve_and_upload("a.md", samples::markdown()).await;
    proxy.cut();
    let res = app.complete(&file).await;
    res.assert_error(503, "unavailable");
    assert!(
        res.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1))
    );
    assert_eq!(app.file_status(&file).await.0, "pending");
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        (0, samples::markdown().len() as i64)
    );

    proxy.restore();
    let res = app.complete(&file).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["status"], "ready");
}

fn reaper_settings() -> filegate::settings::ReaperSettings {
    filegate_tests::reaper_settings(7)
}

/// Upload window of the reaper tests: long enough that a PUT right after the
/// reservation lands on a loaded machine (URLs are dated to the second, so a TTL of
/// `n` seconds can leave as little as `n - 1`), short enough to wait out.
const SHORT_TTL_SECS: u64 = 3;

/// Waits until every pending upload window of the app (`SHORT_TTL_SECS`) has closed.
async fn past_expiry() {
    // The TTL plus the tests' 1-second margin for in-flight PUTs, and half a second.
    tokio::time::sleep(Duration::from_millis(SHORT_TTL_SECS * 1000 + 1500)).await;
}

#[tokio::test]
async fn the_reaper_expires_abandoned_uploads_releases_them_and_deletes_strays() {
    let app =
        spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(SHORT_TTL_SECS))
            .await;
    // A ready file that must be left alone.
    let kept = app.reserve_and_upload("kept.txt", samples::txt()).await;
    assert_eq!(app.complete(&kept).await.status, 200);
    let before = app.counters(app.tenant.workspace).await;
    // An upload that was PUT but never completed, and one never uploaded.
    let stray = app.reserve_and_upload("stray.txt", samples::txt()).await;
    let abandoned = app
        .reserve(json!({ "name": "never.pdf", "size_bytes": 1000 }))
        .await;
    assert!(app.counters(app.tenant.workspace).await.1 > 0);
    past_expiry().await;

    let report =
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), reaper_settings())
            .run_once()
            .await
            .unwrap();
    assert_eq!(report.expired, 2);
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        before,
        "reserved bytes back to their prior value"
    );
    assert_eq!(app.row_sums(app.tenant.workspace).await, before);
    assert!(
        !app.object_exists(&upload(&stray)).await,
        "the stray upload is deleted"
    );
    assert!(app.object_exists(key(&kept)).await, "ready objects stay");
    for f in [&stray, &abandoned] {
        assert_eq!(app.file_status(f).await.0, "expired");
        app.complete(f).await.assert_error(409, "invalid_state");
    }
    // Nothing left to do.
    let again =
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), reaper_settings())
            .run_once()
            .await
            .unwrap();
    assert_eq!((again.expired, again.objects_deleted), (0, 0));
}

#[tokio::test]
async fn two_reapers_at_once_never_double_release() {
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(1)).await;
    let files: Vec<Value> = (0..40)
        .map(|i| json!({ "name": format!("f{i}.txt"), "size_bytes": 100 }))
        .collect();
    for chunk in files.chunks(20) {
        assert_eq!(
            app.create_files(&json!({ "files": chunk })).await.status,
            200
        );
    }
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 4000));
    past_expiry().await;
    let settings = reaper_settings();
    let reaper =
        || filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), settings.clone());
    let (one, two) = (reaper(), reaper());
    let (a, b) = tokio::join!(one.run_once(), two.run_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.expired + b.expired,
        40,
        "each file expired exactly once: {a:?} {b:?}"
    );
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
    assert_eq!(app.row_sums(app.tenant.workspace).await, (0, 0));
}

#[tokio::test]
async fn a_deletion_that_fails_is_retried_by_the_reaper() {
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|s| {
        s.storage.presign_ttl = std::time::Duration::from_secs(SHORT_TTL_SECS);
    })
    .await;
    let file = app.reserve_and_upload("x.pdf", samples::png()).await;
    // Verification reads through the proxy; cut it only for the deletion that follows.
    let verdict = app.complete(&file).await;
    verdict.assert_error(422, "upload_mismatch");
    assert!(!app.object_exists(&upload(&file)).await);
    // Now a rejection whose deletion fails: write the object back (as the still-valid
    // URL allows) and let the reaper run with the store cut, then restored.
    app.put_object(&upload(&file), samples::png(), "application/pdf", None)
        .await;
    past_expiry().await;
    // The reaper talks to the store the way the app does: through the proxy.
    let proxied = filegate_storage::Storage::new(&app.settings.storage.storage()).await;
    proxy.cut();
    let failed = filegate::jobs::Reaper::new(app.pool.clone(), proxied.clone(), reaper_settings())
        .run_once()
        .await
        .unwrap();
    assert_eq!(failed.deletion_failures, 1);
    assert!(app.object_exists(&upload(&file)).await);
    proxy.restore();
    // The failed claim holds a lease; make it due now, as time would.
    let client = app.pool.get().await.unwrap();
    client
        .execute("UPDATE object_deletions SET due_at = now()", &[])
        .await
        .unwrap();
    let retried = filegate::jobs::Reaper::new(app.pool.clone(), proxied.clone(), reaper_settings())
        .run_once()
        .await
        .unwrap();
    assert_eq!(retried.objects_deleted, 1);
    assert!(
        !app.object_exists(&upload(&file)).await,
        "the object is gone after the retry"
    );
    let left: i64 = client
        .query_one("SELECT count(*) FROM object_deletions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing left queued once the upload window closed");
}

/// The count of a store call in the metrics text.
fn store_calls(metrics: &str, op: &str) -> u64 {
    let prefix =
        format!("filegate_object_store_call_duration_seconds_count{{op=\"{op}\",outcome=\"ok\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_completion_that_reads_the_whole_object_takes_the_first_bytes_from_that_read() {
    // Nothing the store reports is trusted: a declared digest is checked by streaming
    // the object, and that stream also supplies the bytes the type check needs.
    let app = spawn_app_with(|s| s.storage.s3_skip_probe = true).await;
    let before = app.metrics_text().await;
    let good = app.reserve_and_upload("q3.pdf", samples::pdf()).await;
    assert_eq!(app.complete(&good).await.status, 200);
    let elf = samples::elf();
    let spoof = app
        .reserve(json!({ "name": "invoice.pdf", "size_bytes": elf.len(), "checksum_sha256": sha256_b64(&elf) }))
        .await;
    assert_eq!(app.upload(&spoof, elf).await, 200);
    app.complete(&spoof)
        .await
        .assert_error(422, "upload_mismatch");
    assert_eq!(app.file_status(&spoof).await.0, "rejected");
    let after = app.metrics_text().await;
    let delta = |op: &str| store_calls(&after, op) - store_calls(&before, op);
    assert_eq!(
        delta("get_object_stream"),
        2,
        "one full read per completion"
    );
    assert_eq!(delta("get_object_range"), 0, "and no ranged read beside it");
    assert_eq!(app.download(&good).await, samples::pdf());

    // Without a declared digest nothing streams: the ranged read is what checks the type.
    let plain = app
        .reserve(json!({ "name": "notes.txt", "size_bytes": samples::txt().len() }))
        .await;
    assert_eq!(app.upload(&plain, samples::txt()).await, 200);
    let before = app.metrics_text().await;
    assert_eq!(app.complete(&plain).await.status, 200);
    let after = app.metrics_text().await;
    assert_eq!(
        store_calls(&after, "get_object_range") - store_calls(&before, "get_object_range"),
        1
    );
    assert_eq!(
        store_calls(&after, "get_object_stream") - store_calls(&before, "get_object_stream"),
        0
    );
}

/// A PUT with the exact signed headers plus `Content-Encoding: gzip`: stores keep the
/// unsigned header and would serve it, and every browser (and `curl --compressed`)
/// would then decode the download into other bytes than those hashed and sniffed.
#[tokio::test]
async fn an_upload_stored_with_a_content_encoding_is_rejected_and_deleted() {
    let app = spawn_app().await;
    let pdf = samples::pdf();
    let file = app
        .reserve(json!({ "name": "report.pdf", "size_bytes": pdf.len(), "checksum_sha256": sha256_b64(&pdf) }))
        .await;
    let status = app
        .upload_with(&file, pdf, |h| {
            h.insert("content-encoding", "gzip".parse().unwrap());
        })
        .await;
    if status == 200 {
        assert_rejected(&app, &file, "Content-Encoding \"gzip\"").await;
    } else {
        eprintln!("the store refused the unsigned Content-Encoding with {status}");
        assert!(!app.object_exists(&upload(&file)).await);
    }
}

/// Whatever encoding a store holds for a ready file's object (written behind
/// filegate's back here), its download URL says the bytes are not encoded.
#[tokio::test]
async fn a_download_url_pins_the_identity_encoding() {
    let app = spawn_app().await;
    let bytes = samples::txt();
    let file = app.reserve_and_upload("plain.txt", bytes.clone()).await;
    assert_eq!(app.complete(&file).await.status, 200);
    app.s3()
        .await
        .put_object()
        .bucket(&app.settings.storage.s3_bucket)
        .key(key(&file))
        .content_type("text/plain")
        .content_encoding("gzip")
        .body(bytes.clone().into())
        .send()
        .await
        .expect("direct PutObject");
    let id: uuid::Uuid = file["file_uuid"].as_str().unwrap().parse().unwrap();
    let got = app.client().get(id).await.unwrap();
    let res = app
        .http
        .get(got.download_url.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let encoding = res
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        encoding.as_deref().is_none_or(|e| e == "identity"),
        "a decoding client would decode {encoding:?}"
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn the_reaper_purges_rejected_and_expired_rows_once_their_retention_has_passed() {
    let app =
        spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(SHORT_TTL_SECS))
            .await;
    let ws = app.tenant.workspace;
    let ready = app.reserve_and_upload("kept.txt", samples::txt()).await;
    assert_eq!(app.complete(&ready).await.status, 200);
    let elf = samples::elf();
    let spoof = app
        .reserve(json!({ "name": "invoice.pdf", "size_bytes": elf.len(), "checksum_sha256": sha256_b64(&elf) }))
        .await;
    assert_eq!(app.upload(&spoof, elf).await, 200);
    app.complete(&spoof)
        .await
        .assert_error(422, "upload_mismatch");
    app.reserve(json!({ "name": "abandoned.txt", "size_bytes": 5 }))
        .await;
    past_expiry().await;
    let reaper =
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), reaper_settings());
    let report = reaper.run_once().await.unwrap();
    assert_eq!((report.expired, report.settled_purged), (1, 0));
    assert_eq!(
        app.file_rows(ws).await,
        3,
        "settled rows stay readable for a day"
    );
    let id = spoof["file_uuid"].as_str().unwrap();
    let res = app
        .request(Method::GET, &format!("/v2/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A day and a second later, for every row, ready included.
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE files SET updated_at = now() - interval '1 day 1 second' WHERE workspace_id = $1",
            &[&ws],
        )
        .await
        .unwrap();
    let report = reaper.run_once().await.unwrap();
    assert_eq!(report.settled_purged, 2);
    assert_eq!(app.file_rows(ws).await, 1, "the ready file stays");
    assert_eq!(app.file_status(&ready).await.0, "ready");
    let res = app
        .request(Method::GET, &format!("/v2/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

/// Whether a completion holds a claim on `file` now.
async fn claimed(app: &TestApp, file: &Value) -> bool {
    let id: uuid::Uuid = file["file_uuid"].as_str().unwrap().parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT completion_claim_until > now() FROM files WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get::<_, Option<bool>>(0)
        .unwrap_or(false)
}

fn is_head(head: &str) -> bool {
    head.starts_with("HEAD ")
}

#[tokio::test]
async fn a_completion_whose_client_hangs_up_still_finishes_and_frees_its_claim() {
    // Its lease is twelve store timeouts (two minutes here). The server does not drop a
    // request whose client went away: the completion runs to its end, settles the
    // file and frees its claim (one dropped inside the server gives its claim back on
    // a task of its own; see the completion unit tests).
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|s| {
        s.storage.s3_timeout = Duration::from_secs(10);
    })
    .await;
    let file = app.reserve_and_upload("hung.txt", samples::txt()).await;
    proxy.hold_requests(is_head, Duration::from_secs(2));
    let id = file["file_uuid"].as_str().unwrap();
    let hung = app
        .request(Method::POST, &format!("/v2/files/{id}/complete"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err(), "the client gave up first: {hung:?}");
    assert!(claimed(&app, &file).await, "the completion is under way");
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while claimed(&app, &file).await && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !claimed(&app, &file).await,
        "the claim ended with its completion"
    );
    assert_eq!(app.file_status(&file).await.0, "ready");
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}
