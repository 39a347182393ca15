//! Bytes in the request (`POST /v2/files/-/uploads`, Aymara's `files.upload`), and the
//! shapes Aymara's SDK reads: the list's `items` and `count` with offset paging and
//! `file_type`, `GET /v2/files/{id}/status`, and the file object's Aymara fields.

use std::time::Duration;

use filegate_domain::{ContentType, Limits};
use filegate_tests::raw::{self, answer_within, send_chunk};
use filegate_tests::{Answer, Form, TestApp, samples, spawn_app, spawn_app_with, upload_key};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uuid::Uuid;

/// A multipart form with one `file` part.
fn form(filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    Form::new().file(filename, content_type, bytes).body()
}

/// `POST /v2/files/-/uploads` with `body` as `key`.
async fn upload_as(app: &TestApp, key: &str, query: &str, body: Vec<u8>) -> Answer {
    Answer::of(
        app.request_as(key, Method::POST, &format!("/v2/files/-/uploads{query}"))
            .header("content-type", Form::content_type())
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn upload(app: &TestApp, body: Vec<u8>) -> Answer {
    upload_as(app, &app.tenant.key, "", body).await
}

#[tokio::test]
async fn an_upload_in_the_request_answers_the_file_ready_and_its_download_is_the_bytes_sent() {
    let app = spawn_app().await;
    let bytes = samples::txt();
    let res = upload(&app, form("notes.txt", "text/plain", &bytes)).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let f = &res.body;
    assert_eq!(f["status"], "ready");
    assert_eq!(f["processing_status"], "completed");
    assert_eq!(f["name"], "notes.txt");
    assert_eq!(f["local_file_path"], "notes.txt");
    assert_eq!(f["content_type"], "text/plain");
    assert_eq!(f["file_type"], "text");
    assert_eq!(f["size_bytes"], bytes.len());
    assert_eq!(f["file_size_bytes"], bytes.len());
    assert_eq!(f["organization_uuid"], app.tenant.org.to_string());
    assert_eq!(f["uploaded_by_uuid"], f["created_by"]);
    assert_eq!(f["file_url"], f["download_url"]);
    let got = app
        .http
        .get(f["file_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), bytes.as_slice());
    let ws = app.tenant.workspace;
    assert_eq!(
        app.counters(ws).await,
        (i64::try_from(bytes.len()).unwrap(), 0)
    );
    assert!(
        !app.object_exists(&upload_key(f)).await,
        "the upload key went once the file was ready"
    );

    // An unknown part type is the type the file name's extension names, as for a
    // reservation; the workspace's allow-list still applies.
    let md = upload(
        &app,
        form("read me.md", "application/octet-stream", b"# title\n"),
    )
    .await;
    assert_eq!(md.status, 200, "{:?}", md.body);
    assert_eq!(md.body["content_type"], "text/markdown");
    upload(&app, form("a.png", "image/png", &samples::png()))
        .await
        .assert_error(422, "unsupported_type");
}

#[tokio::test]
async fn a_spoofed_type_is_rejected_and_nothing_of_it_stays_in_the_store() {
    let app = spawn_app().await;
    let res = upload(
        &app,
        form("invoice.pdf", "application/pdf", &samples::elf()),
    )
    .await;
    res.assert_error(422, "upload_mismatch");
    let id = res.body["error"]["details"]["file_uuid"].as_str().unwrap();
    let file = Answer::of(
        app.request(Method::GET, &format!("/v2/files/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(file.body["status"], "rejected", "the file ends rejected");
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, (0, 0));
    assert_eq!(app.objects_of(ws).await, 0);
}

/// A raw HTTP/1.1 upload on a socket of its own, with a chunked body the test sends
/// piece by piece (hostile clients: too much, too slow, gone midway).
async fn open_upload(app: &TestApp, key: &str, filename: &str) -> TcpStream {
    let headers = [
        ("Authorization", format!("Bearer {key}")),
        ("Content-Type", Form::content_type()),
        ("Transfer-Encoding", "chunked".to_owned()),
    ];
    let mut socket = raw::open(
        "127.0.0.1",
        app.port,
        "POST",
        "/v2/files/-/uploads",
        &headers,
    )
    .await;
    let part = Form::file_head(filename, "text/plain");
    send_chunk(&mut socket, part.as_bytes()).await.unwrap();
    socket
}

/// Waits until the workspace holds no file rows (a failed upload's clean-up runs as
/// the request ends).
async fn no_rows_left(app: &TestApp, workspace: Uuid) {
    for _ in 0..50 {
        if app.file_rows(workspace).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a failed upload left a file row");
}

#[tokio::test]
async fn a_body_past_the_max_file_size_is_cut_off_as_it_passes_and_leaves_no_file() {
    let app = spawn_app().await;
    let small = app
        .create_tenant(&Limits {
            max_file_bytes: 64 << 10,
            ..Limits::default()
        })
        .await;
    let mut socket = open_upload(&app, &small.key, "big.txt").await;
    for _ in 0..16 {
        send_chunk(&mut socket, &[b'a'; 4 << 10]).await.unwrap();
    }
    assert_eq!(
        answer_within(&mut socket, Duration::from_millis(500)).await,
        None,
        "exactly the limit is still read"
    );
    send_chunk(&mut socket, b"a").await.unwrap();
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(5)).await,
        Some(413),
        "cut off the moment it passed the limit, the rest unsent"
    );
    drop(socket);
    no_rows_left(&app, small.workspace).await;
    assert_eq!(app.counters(small.workspace).await, (0, 0));
    assert_eq!(app.objects_of(small.workspace).await, 0);
}

#[tokio::test]
async fn a_client_that_hangs_up_midway_leaves_no_file_reservation_or_object() {
    let app = spawn_app().await;
    let mut socket = open_upload(&app, &app.tenant.key, "gone.txt").await;
    send_chunk(&mut socket, &[b'a'; 10 << 10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    let ws = app.tenant.workspace;
    no_rows_left(&app, ws).await;
    assert_eq!(app.counters(ws).await, (0, 0));
    assert_eq!(app.objects_of(ws).await, 0);
}

/// With a buffer budget of one part, concurrent multipart uploads take turns for it:
/// each waits (reading nothing) while another's part is written, nothing deadlocks,
/// none is cut off under a strict rate schedule, and every one is stored whole.
#[tokio::test]
async fn uploads_wait_their_turn_for_the_buffer_budget_and_all_complete() {
    let app = spawn_app_with(|s| {
        s.ingest.ingest_buffer_bytes = 5 << 20;
        s.ingest.ingest_memory_bytes = 5 << 20;
        // A strict schedule (the time an upload waits on filegate's side is not held
        // against its client).
        s.ingest.ingest_min_bytes_per_sec = 32 << 20;
        s.ingest.ingest_rate_grace = Duration::from_millis(100);
    })
    .await;
    let big = app
        .create_workspace(
            app.tenant.org,
            &Limits {
                max_file_bytes: 64 << 20,
                ..Limits::default()
            },
        )
        .await;
    let query = format!("?workspace_uuid={big}");
    let bodies: Vec<Vec<u8>> = (0..4u8)
        .map(|n| {
            let mut b = vec![b'a' + n; (16 << 20) + 7];
            b[..6].copy_from_slice(b"hello ");
            b
        })
        .collect();
    let answers = futures_util::future::join_all(bodies.iter().enumerate().map(|(n, b)| {
        upload_as(
            &app,
            &app.tenant.key,
            &query,
            form(&format!("big-{n}.txt"), "text/plain", b),
        )
    }))
    .await;
    for (answer, body) in answers.iter().zip(&bodies) {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["status"], "ready");
        assert_eq!(app.download(&answer.body).await, *body, "stored whole");
    }
    assert_eq!(app.counters(big).await, app.row_sums(big).await);
}

#[tokio::test]
async fn a_slow_loris_upload_is_cut_off_with_408_and_leaves_no_file() {
    let app = spawn_app_with(|s| {
        s.ingest.ingest_idle_timeout = Duration::from_secs(5);
        s.ingest.ingest_min_bytes_per_sec = 1000;
        s.ingest.ingest_rate_grace = Duration::from_secs(1);
    })
    .await;
    let mut socket = open_upload(&app, &app.tenant.key, "slow.txt").await;
    let started = std::time::Instant::now();
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(8) {
        if send_chunk(&mut socket, b"a").await.is_err() {
            break;
        }
        if let Some(code) = answer_within(&mut socket, Duration::from_millis(1000)).await {
            answer = Some(code);
            break;
        }
    }
    assert_eq!(answer, Some(408), "one byte a second is cut off");
    assert!(started.elapsed() < Duration::from_secs(5));
    no_rows_left(&app, app.tenant.workspace).await;
}

#[tokio::test]
async fn twenty_concurrent_uploads_against_a_quota_of_ten_make_exactly_ten_files() {
    let app = spawn_app().await;
    let data = vec![b'x'; 64 << 10];
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| form(&format!("f{i:02}.txt"), "text/plain", &data))
        .collect();
    let length = i64::try_from(bodies[0].len()).unwrap();
    // Each upload reserves its request's length; ten fit, and settling to the real
    // size never frees room for an eleventh.
    let tenant = app
        .create_tenant(&Limits {
            quota_bytes: 10 * length,
            max_file_bytes: length,
            ..Limits::default()
        })
        .await;
    let answers = futures_util::future::join_all(
        bodies
            .into_iter()
            .map(|b| upload_as(&app, &tenant.key, "", b)),
    )
    .await;
    let ready = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "quota_exceeded")
        .count();
    assert_eq!(
        (ready, refused),
        (10, 10),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let ws = tenant.workspace;
    assert_eq!(app.counters(ws).await, (10 * (64 << 10), 0));
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

#[tokio::test]
async fn the_list_answers_aymaras_items_and_count_pages_by_offset_and_filters_by_file_type() {
    let app = spawn_app().await;
    let ws = app
        .create_workspace(
            app.tenant.org,
            &Limits {
                allowed_types: vec![ContentType::Txt, ContentType::Png, ContentType::Pdf],
                ..Limits::default()
            },
        )
        .await;
    let body = json!({ "workspace_uuid": ws, "files": [
        { "name": "a.txt" }, { "name": "b.txt" }, { "name": "c.png" },
        { "name": "d.png" }, { "name": "e.pdf" },
    ] });
    assert_eq!(app.create_files(&body).await.status, 200);
    let app = &app;
    let list = |query: String| async move {
        Answer::of(
            app.request(
                Method::GET,
                &format!("/v2/files?workspace_uuid={ws}&{query}"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await
    };
    let all = list("limit=2".into()).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["count"], 5);
    assert_eq!(all.body["items"], all.body["files"], "one page, both names");
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    let names = |a: &Answer| -> Vec<String> {
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Offset pages, newest first, as the keyset pages are.
    let mut by_offset = Vec::new();
    for offset in [0, 2, 4] {
        by_offset.extend(names(&list(format!("limit=2&offset={offset}")).await));
    }
    assert_eq!(by_offset, ["e.pdf", "d.png", "c.png", "b.txt", "a.txt"]);
    let images = list("file_type=image".into()).await;
    assert_eq!(images.body["count"], 2);
    assert_eq!(names(&images), ["d.png", "c.png"]);
    assert_eq!(list("file_type=document".into()).await.body["count"], 1);
    assert_eq!(
        list("file_type=".into()).await.body["count"],
        5,
        "empty: any"
    );
    for bad in [
        "file_type=pdf",
        "offset=-1",
        "offset=1&cursor=x",
        "offset=100001",
    ] {
        list(bad.into()).await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn status_tells_pending_processing_completed_and_failed() {
    let app = spawn_app().await;
    let app = &app;
    let status = |id: String| async move {
        Answer::of(
            app.request(Method::GET, &format!("/v2/files/{id}/status"))
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let id = |f: &Value| f["file_uuid"].as_str().unwrap().to_owned();
    let good = app.reserve(json!({ "name": "a.txt" })).await;
    let s = status(id(&good)).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["processing_status"], "pending");
    assert_eq!(s.body["remote_file_path"], Value::Null);
    assert_eq!(s.body["error_message"], Value::Null);
    assert!(s.body["created_at"].is_string() && s.body["updated_at"].is_string());

    // Bytes streaming through filegate: processing.
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let url = reqwest::Url::parse(good["file_url"].as_str().unwrap()).unwrap();
    socket
        .write_all(
            format!(
                "PUT {}?{} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                url.path(),
                url.query().unwrap()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    send_chunk(&mut socket, b"hello, ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status(id(&good)).await.body["processing_status"],
        "processing"
    );
    send_chunk(&mut socket, b"world\n").await.unwrap();
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    assert_eq!(
        answer_within(&mut socket, Duration::from_secs(5)).await,
        Some(200)
    );
    // Uploaded, never completed: a status poll completes it (as a GET does).
    let done = status(id(&good)).await;
    assert_eq!(done.body["processing_status"], "completed");
    assert_eq!(done.body["remote_file_path"], good["remote_file_path"]);

    let spoofed = app.reserve_and_upload("x.pdf", samples::elf()).await;
    let failed = status(id(&spoofed)).await;
    assert_eq!(failed.body["processing_status"], "failed");
    assert!(
        failed.body["error_message"]
            .as_str()
            .unwrap()
            .contains("PDF")
    );

    status(Uuid::new_v4().to_string())
        .await
        .assert_error(404, "not_found");
    status("not-a-uuid".into())
        .await
        .assert_error(400, "invalid_request");
}
