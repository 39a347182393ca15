//! POST /v2/files: presigned uploads that the store itself enforces, the rules table
//! at each boundary, the one-statement reservation under races, and Idempotency-Key.

use std::time::Duration;

use filegate_domain::{ContentType, Limits};
use filegate_storage::probe::Capability;
use filegate_tests::{Answer, TestApp, sha256_b64, spawn_app, spawn_app_with, upload_key};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const MIB: i64 = 1 << 20;

fn one(file: Value) -> Value {
    json!({ "files": [file] })
}

#[track_caller]
fn assert_failing_index(res: &Answer, status: u16, code: &str, index: usize) {
    res.assert_error(status, code);
    let files = res.body["error"]["details"]["files"]
        .as_array()
        .expect("details.files");
    assert!(
        files
            .iter()
            .any(|f| f["index"] == index && f["code"] == code && f["message"].as_str().is_some()),
        "index {index} with {code} in {files:?}"
    );
}

#[tokio::test]
async fn presigned_puts_with_the_upload_headers_store_each_object() {
    let app = spawn_app().await;
    let pdf = b"%PDF-1.7\n%test\n".to_vec();
    let text = b"hello, library".to_vec();
    let md = b"# notes\n".to_vec();
    let res = app
        .create_files(&json!({ "files": [
            { "local_file_path": "reports/q3.pdf", "path": "finance/2026/", "labels": ["finance"],
              "public_url": "https://example.com/q3.pdf", "size_bytes": pdf.len(), "checksum_sha256": sha256_b64(&pdf) },
            { "name": "a.txt", "size_bytes": text.len() },
            { "name": "notes.md" },
        ]}))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["workspace_uuid"], app.tenant.workspace.to_string());
    let files = res.body["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 3);

    let first = &files[0];
    assert_eq!(first["name"], "q3.pdf");
    assert_eq!(first["local_file_path"], "reports/q3.pdf");
    assert_eq!(first["path"], "finance/2026/");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["upload_method"], "PUT");
    let id = first["file_uuid"].as_str().unwrap();
    assert_eq!(
        first["remote_file_path"],
        format!("{}/{id}", app.tenant.workspace)
    );
    assert!(chrono::DateTime::parse_from_rfc3339(first["expires_at"].as_str().unwrap()).is_ok());
    // upload_headers lists exactly what is signed: type always, length and digest when given.
    assert_eq!(
        first["upload_headers"],
        json!({ "Content-Type": "application/pdf", "Content-Length": pdf.len().to_string(),
                "x-amz-checksum-sha256": sha256_b64(&pdf) })
    );
    assert_eq!(
        files[1]["upload_headers"],
        json!({ "Content-Type": "text/plain", "Content-Length": "14" })
    );
    assert_eq!(
        files[2]["upload_headers"],
        json!({ "Content-Type": "text/markdown" })
    );

    for (file, bytes) in files.iter().zip([pdf, text, md]) {
        let len = bytes.len() as i64;
        assert_eq!(app.upload(file, bytes).await, 200, "PUT {}", file["name"]);
        let head = app
            .storage
            .head(&filegate_tests::upload_key(file))
            .await
            .unwrap();
        assert_eq!(
            head.map(|h| h.size),
            Some(len),
            "the PUT lands on the file's upload key"
        );
        // remote_file_path holds verified bytes only: nothing until completion.
        assert!(
            !app.object_exists(file["remote_file_path"].as_str().unwrap())
                .await
        );
    }
}

#[tokio::test]
async fn the_store_refuses_another_content_type() {
    let app = spawn_app().await;
    let res = app
        .create_files(&one(json!({ "name": "a.txt", "size_bytes": 5 })))
        .await;
    let file = &res.body["files"][0];
    let status = app
        .upload_with(file, b"hello".to_vec(), |h| {
            h.insert("content-type", "text/html".parse().unwrap());
        })
        .await;
    assert_eq!(status, 403);
    assert!(
        !app.object_exists(file["remote_file_path"].as_str().unwrap())
            .await
    );
}

#[tokio::test]
async fn the_store_refuses_a_longer_body_than_declared() {
    let app = spawn_app().await;
    let res = app
        .create_files(&one(json!({ "name": "a.txt", "size_bytes": 5 })))
        .await;
    let file = &res.body["files"][0];
    let status = app.upload(file, b"hello, more than five".to_vec()).await;
    assert!(status == 403 || status == 400, "refused, got {status}");
    assert!(
        !app.object_exists(file["remote_file_path"].as_str().unwrap())
            .await
    );
}

#[tokio::test]
async fn the_store_refuses_other_bytes_of_the_same_length_when_a_checksum_is_given() {
    let app = spawn_app().await;
    let body = json!({ "name": "a.txt", "size_bytes": 5, "checksum_sha256": sha256_b64(b"hello") });
    let res = app.create_files(&one(body)).await;
    let file = &res.body["files"][0];
    if !app.store_has(Capability::SignedChecksum) {
        // Ceph RGW 16 takes the other bytes: completion hashes them and rejects the
        // file, and the upload is deleted.
        assert_eq!(app.upload(file, b"HELLO".to_vec()).await, 200);
        app.complete(file)
            .await
            .assert_error(422, "upload_mismatch");
        assert!(!app.object_exists(&upload_key(file)).await);
        return;
    }
    assert_eq!(app.upload(file, b"HELLO".to_vec()).await, 400);
    if !app.store_has(Capability::RefusedPutKeepsObject) {
        // s3s-fs keeps the body it refused at the upload key: completion inspects a
        // copy of it, hashes it and rejects the file.
        app.complete(file)
            .await
            .assert_error(422, "upload_mismatch");
        return;
    }
    assert!(!app.object_exists(&upload_key(file)).await);
    // The right bytes still go through the same URL.
    assert_eq!(app.upload(file, b"hello".to_vec()).await, 200);
}

#[tokio::test]
async fn the_store_refuses_a_put_after_expires_at() {
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(1)).await;
    let res = app
        .create_files(&one(json!({ "name": "a.txt", "size_bytes": 5 })))
        .await;
    let file = &res.body["files"][0];
    let expires =
        chrono::DateTime::parse_from_rfc3339(file["expires_at"].as_str().unwrap()).unwrap();
    let wait = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    assert!(wait <= Duration::from_secs(1), "expires_at follows the TTL");
    tokio::time::sleep(wait + Duration::from_millis(1500)).await;
    let status = app.upload(file, b"hello".to_vec()).await;
    assert!(
        status == 403 || status == 400,
        "an expired URL is refused, got {status}"
    );
    assert!(
        !app.object_exists(file["remote_file_path"].as_str().unwrap())
            .await
    );
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_quota() {
    let app = spawn_app().await;
    let requests = (0..300).map(|i| {
        let app = &app;
        async move {
            app.create_files(&one(
                json!({ "name": format!("f{i}.pdf"), "size_bytes": 5 * MIB }),
            ))
            .await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let quota = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "quota_exceeded")
        .count();
    assert_eq!(ok, 204, "1 GiB holds 204 files of 5 MiB");
    assert_eq!(quota, 96, "every other request is refused for quota");
    let (used, reserved) = app.counters(app.tenant.workspace).await;
    assert_eq!(
        (used, reserved),
        app.row_sums(app.tenant.workspace).await,
        "counters equal the rows"
    );
    assert_eq!(reserved, 204 * 5 * MIB);
    assert_eq!(app.file_rows(app.tenant.workspace).await, 204);
}

#[tokio::test]
async fn concurrent_requests_for_one_name_and_path_reserve_it_once() {
    let app = spawn_app().await;
    let requests = (0..50).map(|_| {
        let app = &app;
        async move {
            app.create_files(&one(
                json!({ "name": "same.pdf", "path": "p/", "size_bytes": 10 }),
            ))
            .await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 1);
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_failing_index(a, 422, "duplicate_file", 0);
    }
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 10));
    assert_eq!(app.file_rows(app.tenant.workspace).await, 1);
}

#[tokio::test]
async fn names_of_255_bytes_pass_and_256_fail() {
    let app = spawn_app().await;
    let ok = format!("{}.pdf", "n".repeat(251));
    assert_eq!(
        app.create_files(&one(json!({ "name": ok }))).await.status,
        200
    );
    let long = format!("{}.pdf", "n".repeat(252));
    assert_failing_index(
        &app.create_files(&one(json!({ "name": long }))).await,
        422,
        "invalid_metadata",
        0,
    );
    for bad in ["a/b.pdf", "tab\t.pdf", ""] {
        assert_failing_index(
            &app.create_files(&one(json!({ "name": bad }))).await,
            422,
            "invalid_metadata",
            0,
        );
    }
}

#[tokio::test]
async fn paths_of_1024_bytes_pass_and_1025_fail() {
    let app = spawn_app().await;
    let res = app
        .create_files(&one(json!({ "name": "a.pdf", "path": "p".repeat(1024) })))
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .create_files(&one(json!({ "name": "a.pdf", "path": "p".repeat(1025) })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
    let res = app
        .create_files(&one(json!({ "name": "a.pdf", "path": "a\u{0}b" })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
}

#[tokio::test]
async fn twenty_labels_of_64_bytes_pass_and_more_fail() {
    let app = spawn_app().await;
    let twenty: Vec<String> = (0..20)
        .map(|i| format!("{i:02}{}", "l".repeat(62)))
        .collect();
    let res = app
        .create_files(&one(json!({ "name": "a.pdf", "labels": twenty })))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let mut twenty_one = twenty.clone();
    twenty_one.push("x".into());
    let res = app
        .create_files(&one(json!({ "name": "b.pdf", "labels": twenty_one })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
    let res = app
        .create_files(&one(json!({ "name": "c.pdf", "labels": ["l".repeat(65)] })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
    let res = app
        .create_files(&one(json!({ "name": "d.pdf", "labels": [""] })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
}

#[tokio::test]
async fn public_urls_of_2048_bytes_pass_and_2049_fail() {
    let app = spawn_app().await;
    let base = "https://example.com/";
    let ok = format!("{base}{}", "u".repeat(2048 - base.len()));
    assert_eq!(
        app.create_files(&one(json!({ "name": "a.pdf", "public_url": ok })))
            .await
            .status,
        200
    );
    let long = format!("{base}{}", "u".repeat(2049 - base.len()));
    let res = app
        .create_files(&one(json!({ "name": "b.pdf", "public_url": long })))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
    let res = app
        .create_files(&one(
            json!({ "name": "c.pdf", "public_url": "javascript:alert(1)" }),
        ))
        .await;
    assert_failing_index(&res, 422, "invalid_metadata", 0);
}

#[tokio::test]
async fn fifty_files_pass_and_fifty_one_fail() {
    let app = spawn_app().await;
    let files = |n: usize, tag: &str| -> Value {
        json!({ "files": (0..n).map(|i| json!({ "name": format!("{tag}{i}.txt"), "size_bytes": 1 })).collect::<Vec<_>>() })
    };
    let res = app.create_files(&files(50, "a")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["files"].as_array().map(Vec::len), Some(50));
    let res = app.create_files(&files(51, "b")).await;
    res.assert_error(422, "invalid_metadata");
    let res = app.create_files(&json!({ "files": [] })).await;
    res.assert_error(422, "invalid_metadata");
    assert_eq!(app.file_rows(app.tenant.workspace).await, 50);
}

#[tokio::test]
async fn files_up_to_the_max_size_pass_and_one_byte_more_is_too_large() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_files(&one(json!({ "name": "a.pdf", "size_bytes": 5 * MIB })))
            .await
            .status,
        200
    );
    let res = app
        .create_files(&one(json!({ "name": "b.pdf", "size_bytes": 5 * MIB + 1 })))
        .await;
    assert_failing_index(&res, 422, "file_too_large", 0);
}

#[tokio::test]
async fn a_reservation_of_exactly_the_quota_passes_and_one_byte_more_is_refused() {
    let app = spawn_app().await;
    let tenant = app
        .create_tenant(&Limits {
            quota_bytes: 100,
            ..Limits::default()
        })
        .await;
    let post = |body: Value| {
        let (app, key) = (&app, tenant.key.clone());
        async move { app.create_files_as(&key, &body).await }
    };
    let res = post(one(json!({ "name": "a.txt", "size_bytes": 101 }))).await;
    res.assert_error(409, "quota_exceeded");
    assert_eq!(res.body["error"]["details"]["available_bytes"], 100);
    let res = post(json!({ "files": [{ "name": "a.txt", "size_bytes": 60 }, { "name": "b.txt", "size_bytes": 40 }] })).await;
    assert_eq!(res.status, 200, "exactly the quota fits");
    post(one(json!({ "name": "c.txt", "size_bytes": 1 })))
        .await
        .assert_error(409, "quota_exceeded");
    post(one(json!({ "name": "c.txt", "size_bytes": 0 }))).await;
    assert_eq!(app.counters(tenant.workspace).await, (0, 100));
    // An undeclared size reserves the max file size, which does not fit either.
    post(one(json!({ "name": "d.txt" })))
        .await
        .assert_error(409, "quota_exceeded");
}

#[tokio::test]
async fn types_outside_the_allow_list_are_unsupported() {
    let app = spawn_app().await;
    let pdf_only = app
        .create_tenant(&Limits {
            allowed_types: vec![ContentType::Pdf],
            ..Limits::default()
        })
        .await;
    let post = |body: Value| {
        let (app, key) = (&app, pdf_only.key.clone());
        async move { app.create_files_as(&key, &body).await }
    };
    assert_eq!(post(one(json!({ "name": "a.pdf" }))).await.status, 200);
    assert_failing_index(
        &post(one(json!({ "name": "a.md" }))).await,
        422,
        "unsupported_type",
        0,
    );
    // A registered type the workspace does not allow, and a type nobody registered.
    for name in ["a.png", "a.tar.gz"] {
        assert_failing_index(
            &post(one(json!({ "name": name }))).await,
            422,
            "unsupported_type",
            0,
        );
    }
    let res = post(one(json!({ "name": "x", "content_type": "image/png" }))).await;
    assert_failing_index(&res, 422, "unsupported_type", 0);
    // The type is judged before the name: an executable's name implies no supported
    // type, and says so; declared as an allowed type, the name is invalid metadata.
    assert_failing_index(
        &post(one(json!({ "name": "a.exe" }))).await,
        422,
        "unsupported_type",
        0,
    );
    assert_failing_index(
        &post(one(
            json!({ "name": "a.exe", "content_type": "application/pdf" }),
        ))
        .await,
        422,
        "invalid_metadata",
        0,
    );
    // A declared type the workspace does not allow is unsupported whatever the name.
    let res = post(one(json!({ "name": "x.pdf", "content_type": "image/png" }))).await;
    assert_failing_index(&res, 422, "unsupported_type", 0);
}

#[tokio::test]
async fn content_type_parameters_are_normalized_into_the_signed_header() {
    let app = spawn_app().await;
    let res = app
        .create_files(&one(
            json!({ "name": "a.txt", "content_type": "Text/Plain; charset=UTF-8" }),
        ))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(
        res.body["files"][0]["upload_headers"]["Content-Type"],
        "text/plain"
    );
    let res = app
        .create_files(&one(
            json!({ "name": "b.txt", "content_type": "text/plain; charset=latin1" }),
        ))
        .await;
    assert_failing_index(&res, 422, "unsupported_type", 0);
}

#[tokio::test]
async fn a_duplicate_of_a_live_file_or_within_the_batch_is_refused_with_its_index() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_files(&one(json!({ "name": "a.pdf", "path": "x/" })))
            .await
            .status,
        200
    );
    // Same name in another path, and another case, are different files.
    let res = app
        .create_files(&json!({ "files": [{ "name": "a.pdf", "path": "y/" }, { "name": "A.pdf", "path": "x/" }] }))
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .create_files(&json!({ "files": [{ "name": "new.pdf", "path": "x/" }, { "name": "a.pdf", "path": "x/" }] }))
        .await;
    assert_failing_index(&res, 422, "duplicate_file", 1);
    let res = app
        .create_files(&json!({ "files": [{ "name": "b.pdf" }, { "name": "c.pdf" }, { "local_file_path": "z/b.pdf" }] }))
        .await;
    assert_failing_index(&res, 422, "duplicate_file", 2);
    assert_eq!(
        app.file_rows(app.tenant.workspace).await,
        3,
        "refused batches insert nothing"
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_entry_reserves_nothing_and_lists_every_failure() {
    let app = spawn_app().await;
    let res = app
        .create_files(&json!({ "files": [
            { "name": "ok.pdf", "size_bytes": 10 },
            { "name": "big.pdf", "size_bytes": 6 * MIB },
            { "name": "ok2.pdf" },
            { "name": "x.exe" },
        ]}))
        .await;
    res.assert_error(422, "file_too_large");
    let failures = res.body["error"]["details"]["files"].as_array().unwrap();
    let indexes: Vec<_> = failures
        .iter()
        .map(|f| (f["index"].as_u64().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        indexes,
        vec![(1, "file_too_large"), (3, "unsupported_type")]
    );
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
    assert_eq!(app.file_rows(app.tenant.workspace).await, 0);
}

#[tokio::test]
async fn an_undeclared_size_reserves_the_max_file_size() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_files(&one(json!({ "name": "a.pdf" })))
            .await
            .status,
        200
    );
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 5 * MIB));
    assert_eq!(app.row_sums(app.tenant.workspace).await, (0, 5 * MIB));
}

async fn post_idempotent(app: &TestApp, key: &str, body: &Value) -> Answer {
    let res = app
        .request(Method::POST, "/v2/files")
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_returns_the_same_files_and_reserves_once() {
    let app = spawn_app().await;
    let body = one(json!({ "name": "a.pdf", "size_bytes": 100 }));
    let first = post_idempotent(&app, "k-1", &body).await;
    assert_eq!(first.status, 200);
    // The same body with its keys in another order is the same request.
    let reordered: Value =
        serde_json::from_str(r#"{"files":[{"size_bytes":100,"name":"a.pdf"}]}"#).unwrap();
    let second = post_idempotent(&app, "k-1", &reordered).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        second.body["files"][0]["file_uuid"],
        first.body["files"][0]["file_uuid"]
    );
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 100));
    assert_eq!(app.file_rows(app.tenant.workspace).await, 1);

    let other = post_idempotent(
        &app,
        "k-1",
        &one(json!({ "name": "b.pdf", "size_bytes": 100 })),
    )
    .await;
    other.assert_error(409, "idempotency_conflict");
    assert_eq!(app.file_rows(app.tenant.workspace).await, 1);
    // Another key is another request.
    assert_eq!(
        post_idempotent(&app, "k-2", &one(json!({ "name": "b.pdf" })))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_replay_after_the_url_expired_hands_out_fresh_urls_for_pending_files() {
    // 3 s: URLs are dated to the second, so this leaves at least 2 s for each PUT.
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(3)).await;
    let text = b"hello, library".to_vec();
    let body = json!({ "files": [
        { "name": "a.txt", "size_bytes": text.len() },
        { "name": "b.txt", "size_bytes": text.len() },
    ] });
    let first = post_idempotent(&app, "k-late", &body).await;
    assert_eq!(first.status, 200);
    let done = first.body["files"][1].clone();
    assert_eq!(app.upload(&done, text.clone()).await, 200);
    assert_eq!(app.complete(&done).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let stale = &first.body["files"][0];
    assert_ne!(
        app.upload(stale, text.clone()).await,
        200,
        "the first URL has expired"
    );

    let replay = post_idempotent(&app, "k-late", &body).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let fresh = &replay.body["files"][0];
    assert_eq!(fresh["file_uuid"], stale["file_uuid"], "the same file");
    assert_eq!(fresh["status"], "pending");
    let expires =
        chrono::DateTime::parse_from_rfc3339(fresh["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > chrono::Utc::now(), "a fresh URL");
    assert_eq!(fresh["upload_headers"], stale["upload_headers"]);
    assert_eq!(app.upload(fresh, text.clone()).await, 200);
    assert_eq!(app.complete(fresh).await.status, 200);
    // A file that is no longer pending is reported as it is now.
    assert_eq!(replay.body["files"][1]["status"], "ready");
    assert_eq!(
        app.counters(app.tenant.workspace).await,
        app.row_sums(app.tenant.workspace).await
    );
}

#[tokio::test]
async fn a_replay_racing_the_files_expiry_signs_no_url_past_its_final_deletion() {
    let app = spawn_app().await;
    let body = one(json!({ "name": "late.txt", "size_bytes": 14 }));
    let first = post_idempotent(&app, "k-race", &body).await;
    assert_eq!(first.status, 200);
    let id = Uuid::parse_str(first.body["files"][0]["file_uuid"].as_str().unwrap()).unwrap();
    let ws = app.tenant.workspace;

    // The reaper's expiry holds the row while the replay runs: the replay's write of
    // the new window waits for it, and must then see the file expired.
    let mut conn = app.pool.get().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.execute("SELECT 1 FROM files WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .unwrap();
    let replay = {
        let (url, key, body) = (
            format!("{}/v2/files", app.address),
            app.tenant.key.clone(),
            body.clone(),
        );
        let http = app.http.clone();
        tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "k-race")
                .json(&body)
                .send()
                .await
                .unwrap();
            Answer::of(res).await
        })
    };
    let watcher = filegate_tests::connect(&app.database_url).await;
    let mut waited = 0;
    loop {
        let blocked: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE wait_event_type = 'Lock' AND query ILIKE 'UPDATE files SET upload_expires_at%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if blocked > 0 || replay.is_finished() {
            break;
        }
        waited += 1;
        assert!(waited < 200, "the replay never wrote its window");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tx.execute(
        "UPDATE files SET status = 'expired', reserved_bytes = 0, next_check_at = NULL WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE workspaces SET reserved_bytes = reserved_bytes - 14, pending_files = pending_files - 1,
                               live_files = live_files - 1 WHERE id = $1",
        &[&ws],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let replay = replay.await.unwrap();
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    let entry = &replay.body["files"][0];
    assert_eq!(
        entry["status"], "expired",
        "the replay reports the expiry it waited for: {entry}"
    );
    assert_eq!(
        entry["expires_at"], first.body["files"][0]["expires_at"],
        "no fresh URL was signed for the expired file"
    );
    let window: chrono::DateTime<chrono::Utc> = watcher
        .query_one("SELECT upload_expires_at FROM files WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    let original = chrono::DateTime::parse_from_rfc3339(
        first.body["files"][0]["expires_at"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        window <= original + chrono::Duration::seconds(1),
        "the expired file's window was not moved past its final deletion"
    );
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_reserve_once() {
    let app = spawn_app().await;
    let body = one(json!({ "name": "a.pdf", "size_bytes": 7 }));
    let answers =
        futures_util::future::join_all((0..10).map(|_| post_idempotent(&app, "same-key", &body)))
            .await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| {
            a.body["files"][0]["file_uuid"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect();
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(ids.len(), 1, "one set of file ids: {ids:?}");
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 7));
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_a_bad_request() {
    let app = spawn_app().await;
    post_idempotent(&app, &"k".repeat(256), &one(json!({ "name": "a.pdf" })))
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn the_workspace_defaults_to_the_keys_and_must_be_within_reach() {
    let app = spawn_app().await;
    let res = app
        .create_files(&json!({ "workspace_uuid": null, "files": [{ "name": "a.pdf" }] }))
        .await;
    assert_eq!(res.body["workspace_uuid"], app.tenant.workspace.to_string());
    let other = app.create_tenant(&Limits::default()).await;
    let res = app
        .create_files(&json!({ "workspace_uuid": other.workspace, "files": [{ "name": "a.pdf" }] }))
        .await;
    res.assert_error(403, "forbidden");
    assert_eq!(app.file_rows(other.workspace).await, 0);
    let (no_default, _) = app.create_key(app.tenant.org, None, None).await;
    app.create_files_as(&no_default, &one(json!({ "name": "a.pdf" })))
        .await
        .assert_error(400, "invalid_request");
}

/// Caps the default tenant's workspace at `max_files` live and `max_pending` pending files.
async fn cap_files(app: &TestApp, max_files: i64, max_pending: i64) {
    filegate_db::workspaces::set_limits(
        &app.pool,
        app.tenant.workspace,
        &filegate_db::workspaces::LimitsPatch {
            max_files: Some(max_files),
            max_pending_files: Some(max_pending),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn empty_files_count_against_the_pending_cap_which_answers_429_until_one_settles() {
    let app = spawn_app().await;
    cap_files(&app, 100, 2).await;
    let ws = app.tenant.workspace;
    // Empty files reserve no bytes, but each is a row, a URL and a finalizer look.
    let res = app
        .create_files(&json!({ "files": [
            { "name": "a.txt", "size_bytes": 0 }, { "name": "b.txt", "size_bytes": 0 }] }))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let refused = app
        .create_files(&one(json!({ "name": "c.txt", "size_bytes": 0 })))
        .await;
    refused.assert_error(429, "rate_limited");
    let details = &refused.body["error"]["details"];
    assert_eq!(details["limit"], "pending_files");
    assert_eq!(details["pending_file_count"], 2);
    assert_eq!(details["max_pending_files"], 2);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(app.file_rows(ws).await, 2, "nothing of the refused batch");
    assert_eq!(app.counters(ws).await, (0, 0));
    // Deleting a pending file frees its slot at once.
    let b = res.body["files"][1]["file_uuid"].as_str().unwrap();
    let del = app
        .request(Method::DELETE, &format!("/v2/files/{b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(
        app.create_files(&one(json!({ "name": "c.txt", "size_bytes": 0 })))
            .await
            .status,
        200
    );
    let usage = app.client().usage(ws).await.unwrap();
    assert_eq!(
        (usage.file_count, usage.pending_file_count),
        (2, 2),
        "usage reports the counts"
    );
    assert_eq!((usage.max_files, usage.max_pending_files), (100, 2));
}

#[tokio::test]
async fn the_live_file_cap_answers_409_until_a_file_is_deleted_and_a_completion_keeps_its_slot() {
    let app = spawn_app().await;
    cap_files(&app, 2, 2).await;
    let ws = app.tenant.workspace;
    let a = app.reserve_and_upload("a.txt", b"hello".to_vec()).await;
    assert_eq!(app.complete(&a).await.status, 200);
    app.reserve(json!({ "name": "b.txt", "size_bytes": 5 }))
        .await;
    // One ready and one pending: the workspace holds as many files as it may.
    let refused = app
        .create_files(&one(json!({ "name": "c.txt", "size_bytes": 0 })))
        .await;
    refused.assert_error(409, "quota_exceeded");
    assert_eq!(refused.body["error"]["details"]["limit"], "files");
    assert_eq!(refused.body["error"]["details"]["file_count"], 2);
    assert_eq!(app.counters(ws).await, (5, 5));
    let id = a["file_uuid"].as_str().unwrap();
    let del = app
        .request(Method::DELETE, &format!("/v2/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    app.reserve(json!({ "name": "c.txt", "size_bytes": 0 }))
        .await;
    assert_eq!(app.counters(ws).await, (0, 5));
}

#[tokio::test]
async fn concurrent_reservations_never_pass_the_pending_cap() {
    let app = spawn_app().await;
    cap_files(&app, 100, 5).await;
    let answers = futures_util::future::join_all((0..20).map(|i| {
        let app = &app;
        async move {
            app.create_files(&one(json!({ "name": format!("{i}.txt"), "size_bytes": 1 })))
                .await
                .status
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        5,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 429),
        "{answers:?}"
    );
    assert_eq!(app.file_rows(app.tenant.workspace).await, 5);
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 5));
}
