//! Uploads through filegate: a file reserved without `size_bytes` gets an upload URL of
//! filegate's own (`PUT /v2/uploads/{id}`), which counts the body as it arrives and
//! cuts it off at the file's reservation, so what an undeclared size can make the
//! store hold is bounded by the quota at every moment.

use std::time::Duration;

use filegate_domain::Limits;
use filegate_tests::raw::{self, answer_within, send_chunk};
use filegate_tests::{Answer, TestApp, samples, sha256_b64, spawn_app, spawn_app_with, upload_key};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

fn id(file: &Value) -> &str {
    file["file_uuid"].as_str().unwrap()
}

/// A tenant whose files may hold at most `max_file_bytes`, and the key's reservation of
/// one undeclared text file there.
async fn undeclared(app: &TestApp, max_file_bytes: i64, quota_bytes: i64) -> (Value, String) {
    let tenant = app
        .create_tenant(&Limits {
            max_file_bytes,
            quota_bytes,
            ..Limits::default()
        })
        .await;
    let res = app
        .create_files_as(&tenant.key, &json!({ "files": [{ "name": "notes.txt" }] }))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    (res.body["files"][0].clone(), tenant.key)
}

/// The bytes stored under a workspace's upload keys (what uploads hold in the store).
async fn held_under_uploads(app: &TestApp, file: &Value) -> i64 {
    let key = upload_key(file);
    let prefix = &key[..=key.rfind('/').unwrap()];
    let listed = app
        .s3()
        .await
        .list_objects_v2()
        .bucket(&app.settings.storage.s3_bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed.contents().iter().filter_map(|o| o.size()).sum()
}

/// A raw HTTP/1.1 request for `url` on a socket of its own: the tests below send
/// bodies the way hostile clients do (chunked, slow, cut off) and read the answer
/// while the body is still open.
async fn open_put(url: &str, headers: &[(&str, String)]) -> TcpStream {
    let url = reqwest::Url::parse(url).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    raw::open(
        url.host_str().unwrap(),
        url.port().unwrap(),
        "PUT",
        &target,
        headers,
    )
    .await
}

fn chunked_headers(file: &Value) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Type",
            file["upload_headers"]["Content-Type"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        ("Transfer-Encoding", "chunked".to_owned()),
    ]
}

#[tokio::test]
async fn an_undeclared_size_uploads_through_filegate_and_completes_as_any_upload() {
    let app = spawn_app().await;
    let file = app
        .reserve(json!({ "local_file_path": "notes/a.txt" }))
        .await;
    let url = file["file_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v2/uploads/{}?", app.address, id(&file))),
        "{url}"
    );
    assert_eq!(
        file["upload_headers"],
        json!({ "Content-Type": "text/plain" }),
        "no length or digest to send"
    );
    let bytes = samples::txt();
    let put = app
        .http
        .put(url)
        .header("Content-Type", "text/plain")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert!(
        put.headers().get("etag").is_some(),
        "the stored version's ETag"
    );
    let stored: Value = put.json().await.unwrap();
    assert_eq!(stored["status"], "pending");
    assert_eq!(stored["size_bytes"], bytes.len());
    assert_eq!(stored["checksum_sha256"], sha256_b64(&bytes));
    assert_eq!(app.file_status(&file).await.0, "pending");

    let done = app.complete(&file).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["size_bytes"], bytes.len());
    assert_eq!(app.download(&file).await, bytes);
    let ws = app.tenant.workspace;
    assert_eq!(
        app.counters(ws).await,
        (i64::try_from(bytes.len()).unwrap(), 0)
    );

    // A chunked body (no Content-Length), as Aymara's async helper sends one.
    let chunked = app.reserve(json!({ "name": "b.txt" })).await;
    let stream = futures_util::stream::iter(
        [b"hello, ".to_vec(), b"chunked world\n".to_vec()].map(Ok::<_, std::io::Error>),
    );
    let put = app
        .http
        .put(chunked["file_url"].as_str().unwrap())
        .header("Content-Type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(app.complete(&chunked).await.status, 200);
    assert_eq!(app.download(&chunked).await, b"hello, chunked world\n");
}

#[tokio::test]
async fn a_body_past_the_limit_is_cut_off_as_it_arrives_and_stores_nothing() {
    let app = spawn_app().await;
    let (file, _) = undeclared(&app, 64 << 10, 1 << 30).await;
    let url = file["file_url"].as_str().unwrap();

    // A declared length over the limit is refused before a byte is read.
    let mut headers = chunked_headers(&file);
    headers[1] = ("Content-Length", ((64 << 10) + 1).to_string());
    let mut socket = open_put(url, &headers).await;
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(5)).await,
        Some(413)
    );

    // A chunked body is answered 413 the moment it passes the limit, while the client
    // is still sending: the rest is never read.
    let mut socket = open_put(url, &chunked_headers(&file)).await;
    for _ in 0..16 {
        send_chunk(&mut socket, &[b'a'; 4 << 10]).await.unwrap();
    }
    assert_eq!(
        answer_within(&mut socket, Duration::from_millis(500)).await,
        None,
        "exactly the limit is still taken"
    );
    send_chunk(&mut socket, b"a").await.unwrap();
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(5)).await,
        Some(413)
    );
    drop(socket);

    assert_eq!(held_under_uploads(&app, &file).await, 0, "nothing stored");
    assert_eq!(app.file_status(&file).await.0, "pending");
    let ws: uuid::Uuid = file["remote_file_path"].as_str().unwrap()[..36]
        .parse()
        .unwrap();
    assert_eq!(app.counters(ws).await, (0, 64 << 10));
}

#[tokio::test]
async fn reserve_put_over_the_limit_delete_put_again_never_holds_more_than_the_reservation() {
    // The sequence a presigned URL without a signed length allowed: reserve, PUT far
    // more than the limit, delete (the reservation goes), PUT again through the URL
    // that still lived. Through filegate's URL the store holds at most the file's
    // reservation at any moment, and nothing once the file is deleted.
    let app = spawn_app().await;
    let limit = 256 << 10;
    let (file, key) = undeclared(&app, limit, 3 * limit).await;
    let url = file["file_url"].as_str().unwrap().to_owned();
    let put = |bytes: Vec<u8>| {
        let (http, url) = (app.http.clone(), url.clone());
        async move {
            http.put(url)
                .header("Content-Type", "text/plain")
                .body(bytes)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(put(vec![b'x'; 5 << 20]).await, 413);
    assert_eq!(held_under_uploads(&app, &file).await, 0);
    assert_eq!(put(vec![b'x'; usize::try_from(limit).unwrap()]).await, 200);
    assert_eq!(
        held_under_uploads(&app, &file).await,
        limit,
        "at most the reservation"
    );

    let res = app
        .request_as(&key, Method::DELETE, &format!("/v2/files/{}", id(&file)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        held_under_uploads(&app, &file).await,
        0,
        "the upload went with it"
    );
    // The URL died with the row: nothing it sends is read or stored.
    let again = Answer::of(
        app.http
            .put(&url)
            .header("Content-Type", "text/plain")
            .body(vec![b'x'; 5 << 20])
            .send()
            .await
            .unwrap(),
    )
    .await;
    again.assert_error(403, "forbidden");
    assert_eq!(held_under_uploads(&app, &file).await, 0);
}

#[tokio::test]
async fn an_upload_racing_its_files_deletion_leaves_nothing_behind() {
    // The one window left: bytes streaming in while the file is deleted. They are
    // written only once they have all arrived, then found to be nobody's and deleted.
    let app = spawn_app().await;
    let (file, key) = undeclared(&app, 1 << 20, 1 << 30).await;
    let mut socket = open_put(file["file_url"].as_str().unwrap(), &chunked_headers(&file)).await;
    send_chunk(&mut socket, &[b'x'; 100 << 10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = app
        .request_as(&key, Method::DELETE, &format!("/v2/files/{}", id(&file)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    send_chunk(&mut socket, &[b'x'; 100 << 10]).await.unwrap();
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(10)).await,
        Some(404),
        "the file is gone"
    );
    assert_eq!(held_under_uploads(&app, &file).await, 0);
}

#[tokio::test]
async fn one_upload_of_a_file_at_a_time_and_a_client_that_hangs_up_leaves_nothing() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "one.txt" })).await;
    let url = file["file_url"].as_str().unwrap();
    let mut first = open_put(url, &chunked_headers(&file)).await;
    send_chunk(&mut first, b"first, ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let second = Answer::of(
        app.http
            .put(url)
            .header("Content-Type", "text/plain")
            .body(samples::txt())
            .send()
            .await
            .unwrap(),
    )
    .await;
    second.assert_error(409, "invalid_state");

    // The first client hangs up mid-body: nothing is written, and its lease goes back.
    drop(first);
    let mut status = 0;
    for _ in 0..50 {
        let res = app
            .http
            .put(url)
            .header("Content-Type", "text/plain")
            .body(samples::txt())
            .send()
            .await
            .unwrap();
        status = res.status().as_u16();
        if status != 409 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the hung-up upload gave its lease back");
    assert_eq!(app.complete(&file).await.status, 200);
    assert_eq!(app.download(&file).await, samples::txt());
}

#[tokio::test]
async fn a_body_that_stops_or_trickles_is_cut_off_with_408() {
    let app = spawn_app_with(|s| {
        s.ingest.ingest_idle_timeout = Duration::from_secs(1);
        s.ingest.ingest_min_bytes_per_sec = 1000;
        s.ingest.ingest_rate_grace = Duration::from_secs(1);
    })
    .await;
    let stalled = app.reserve(json!({ "name": "stalled.txt" })).await;
    let mut socket = open_put(
        stalled["file_url"].as_str().unwrap(),
        &chunked_headers(&stalled),
    )
    .await;
    send_chunk(&mut socket, b"a").await.unwrap();
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(5)).await,
        Some(408),
        "no bytes for the idle timeout"
    );

    // One byte every 200 ms never stalls, but falls behind 1000 bytes a second.
    let slow = app.reserve(json!({ "name": "slow.txt" })).await;
    let mut socket = open_put(slow["file_url"].as_str().unwrap(), &chunked_headers(&slow)).await;
    let started = std::time::Instant::now();
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(6) {
        if send_chunk(&mut socket, b"a").await.is_err() {
            break;
        }
        if let Some(code) = answer_within(&mut socket, Duration::from_millis(200)).await {
            answer = Some(code);
            break;
        }
    }
    assert_eq!(answer, Some(408), "a slow-loris body is cut off");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for f in [&stalled, &slow] {
        assert!(!app.object_exists(&upload_key(f)).await);
    }
}

#[tokio::test]
async fn an_upload_url_is_refused_when_tampered_expired_revoked_or_used_with_another_type() {
    let app = spawn_app_with(|s| s.storage.presign_ttl = Duration::from_secs(2)).await;
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    let url = file["file_url"].as_str().unwrap().to_owned();
    let put = |url: String, content_type: &'static str| {
        let http = app.http.clone();
        async move {
            Answer::of(
                http.put(url)
                    .header("Content-Type", content_type)
                    .body(samples::txt())
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let mut tampered = url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let other_file = url.replace(id(&file), &uuid::Uuid::now_v7().to_string());
    let later = {
        let (head, query) = url.split_once('?').unwrap();
        let expires: i64 = query
            .split('&')
            .find_map(|p| p.strip_prefix("expires="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(head.ends_with(id(&file)));
        url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        )
    };
    let unsigned = url.split_once('?').unwrap().0.to_owned();
    for bad in [tampered, other_file, later, unsigned] {
        put(bad.clone(), "text/plain")
            .await
            .assert_error(403, "forbidden");
    }
    let wrong_type = put(url.clone(), "application/pdf").await;
    wrong_type.assert_error(403, "forbidden");
    assert_eq!(
        wrong_type.body["error"]["details"]["content_type"],
        "text/plain"
    );
    assert!(!app.object_exists(&upload_key(&file)).await);

    // Good until it expires (checked when a request starts), then refused.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    put(url.clone(), "text/plain")
        .await
        .assert_error(403, "forbidden");
    assert!(!app.object_exists(&upload_key(&file)).await);
}

#[tokio::test]
async fn a_file_that_is_no_longer_pending_takes_no_upload() {
    let app = spawn_app().await;
    let file = app.reserve(json!({ "name": "done.txt" })).await;
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
    assert_eq!(app.complete(&file).await.status, 200);
    let again = Answer::of(
        app.http
            .put(file["file_url"].as_str().unwrap())
            .header("Content-Type", "text/plain")
            .body(b"other bytes".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    again.assert_error(409, "invalid_state");
    assert_eq!(again.body["error"]["details"]["status"], "ready");
    assert_eq!(app.download(&file).await, samples::txt());
}

#[tokio::test]
async fn an_undeclared_upload_larger_than_the_buffer_goes_in_parts_and_completes() {
    let app = spawn_app_with(|s| s.ingest.ingest_buffer_bytes = 5 << 20).await;
    let (file, key) = undeclared(&app, 16 << 20, 1 << 30).await;
    let bytes: Vec<u8> = (0..(11 << 20) + 123)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let stream = futures_util::stream::iter(
        bytes
            .chunks(256 << 10)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let put = app
        .http
        .put(file["file_url"].as_str().unwrap())
        .header("Content-Type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let stored: Value = put.json().await.unwrap();
    assert_eq!(stored["checksum_sha256"], sha256_b64(&bytes));
    let done = Answer::of(
        app.request_as(
            &key,
            Method::POST,
            &format!("/v2/files/{}/complete", id(&file)),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["size_bytes"], bytes.len());
    let got = app
        .storage
        .read_all(file["remote_file_path"].as_str().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(got.bytes == bytes, "the assembled object is the bytes sent");
}

#[tokio::test]
async fn guessing_upload_urls_costs_the_address_its_tokens() {
    let app = spawn_app_with(|s| {
        s.rate_limit.rate_limit_per_second = 0.01;
        s.rate_limit.rate_limit_burst = 4;
    })
    .await;
    // The key's first request paid one of the address's tokens (a key id the process
    // had not seen valid yet): three are left.
    let file = app.reserve(json!({ "name": "a.txt" })).await;
    let url = file["file_url"].as_str().unwrap();
    let guessed = format!("{}&x", url.replace("signature=", "signature=A"));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app
            .http
            .put(&guessed)
            .header("Content-Type", "text/plain")
            .body(samples::txt())
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 429, 429]);
    // The good URL is not throttled: only refusals are paid for.
    assert_eq!(app.upload(&file, samples::txt()).await, 200);
}
