//! `remote_uri` imports: fetched by filegate through the SSRF guard and streamed
//! through the ingest; refused before anything is reserved when the URI may not be
//! fetched, failed (with the reason) when the fetch goes wrong.

use std::sync::Arc;
use std::time::Duration;

use filegate::service::imports::guard::AllowedHost;
use filegate_tests::liar::{Body, LiarStore, Reply};
use filegate_tests::{Answer, TestApp, samples, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// A source server: `/ok.txt` a text file, `/big.txt` more than a workspace allows,
/// `/slow.txt` a text file sent over about two seconds, `/missing` a 404, `/to/{port}`
/// a redirect to that loopback port.
async fn source() -> LiarStore {
    LiarStore::serve(Arc::new(|head: &str| {
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_owned();
        if path == "/ok.txt" {
            Reply {
                status: 200,
                headers: vec![("content-type", "text/plain".into())],
                body: Body::Bytes(samples::txt()),
            }
        } else if path == "/big.txt" {
            Reply {
                status: 200,
                headers: vec![("content-type", "text/plain".into())],
                body: Body::Bytes(vec![b'a'; 6 << 20]),
            }
        } else if path == "/slow.txt" {
            Reply {
                status: 200,
                headers: vec![("content-type", "text/plain".into())],
                body: Body::Trickle {
                    bytes: slow_text(),
                    chunk: 16 << 10,
                    pause: Duration::from_millis(100),
                },
            }
        } else if let Some(port) = path.strip_prefix("/to/") {
            Reply {
                status: 302,
                headers: vec![("location", format!("http://127.0.0.1:{port}/ok.txt"))],
                body: Body::Bytes(Vec::new()),
            }
        } else {
            Reply {
                status: 404,
                headers: Vec::new(),
                body: Body::Bytes(b"no such file".to_vec()),
            }
        }
    }))
    .await
}

/// The 320 KiB text `/slow.txt` serves.
fn slow_text() -> Vec<u8> {
    b"a slow line of text\n".repeat(16 << 10)
}

/// An app that may import from `allowed` (its files hold at most 5 MiB).
async fn app_allowing(allowed: &LiarStore) -> TestApp {
    let host = AllowedHost::parse(&allowed.addr.to_string()).unwrap();
    spawn_app_with(move |s| s.ingest.import_allowed_hosts = vec![host]).await
}

async fn status_of(app: &TestApp, file: &Value) -> Value {
    let id = file["file_uuid"].as_str().unwrap();
    for _ in 0..100 {
        let s = Answer::of(
            app.request(Method::GET, &format!("/v2/files/{id}/status"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if s.body["processing_status"] != "processing" {
            return s.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the import of {id} did not end");
}

#[tokio::test]
async fn an_import_is_fetched_verified_and_made_ready() {
    let server = source().await;
    let app = app_allowing(&server).await;
    let uri = format!("http://{}/ok.txt", server.addr);
    let created = app
        .create_files(&json!({ "files": [{ "remote_uri": uri, "content_type": "text/plain" }] }))
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let file = &created.body["files"][0];
    assert_eq!(file["name"], "ok.txt", "named by the URI's last segment");
    assert_eq!(file["remote_uri"], uri);
    assert_eq!(file["processing_status"], "processing");
    assert_eq!(file["file_url"], Value::Null, "nothing to upload");
    let status = status_of(&app, file).await;
    assert_eq!(status["processing_status"], "completed", "{status}");
    assert_eq!(app.download(file).await, samples::txt());
    assert_eq!(server.requests(), 1);
    let ws = app.tenant.workspace;
    assert_eq!(
        app.counters(ws).await,
        (i64::try_from(samples::txt().len()).unwrap(), 0)
    );
}

#[tokio::test]
async fn a_404_an_oversized_body_and_a_redirect_to_a_private_address_end_failed() {
    let server = source().await;
    let other = source().await;
    let app = app_allowing(&server).await;
    let uri = |path: &str| format!("http://{}{path}", server.addr);
    let body = json!({ "files": [
        { "remote_uri": uri("/missing"), "name": "missing.txt" },
        { "remote_uri": uri("/big.txt") },
        { "remote_uri": uri(&format!("/to/{}", other.addr.port())), "name": "redirected.txt" },
    ] });
    let created = app.create_files(&body).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let files = created.body["files"].as_array().unwrap();
    let reasons: Vec<String> =
        futures_util::future::join_all(files.iter().map(|f| status_of(&app, f)))
            .await
            .into_iter()
            .map(|s| {
                assert_eq!(s["processing_status"], "failed", "{s}");
                s["error_message"].as_str().unwrap().to_owned()
            })
            .collect();
    assert!(reasons[0].contains("404"), "{reasons:?}");
    assert!(reasons[1].contains("larger than"), "{reasons:?}");
    assert!(reasons[2].contains("loopback"), "{reasons:?}");
    assert_eq!(
        other.requests(),
        0,
        "nothing was fetched from the private address"
    );
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, (0, 0));
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

#[tokio::test]
async fn uris_that_may_not_be_fetched_are_refused_before_anything_is_reserved() {
    let server = source().await;
    let unlisted = source().await;
    let app = app_allowing(&server).await;
    let port = unlisted.addr.port();
    for uri in [
        format!("http://127.0.0.1:{port}/ok.txt"),
        format!("http://localhost:{port}/ok.txt"),
        format!("http://[::1]:{port}/ok.txt"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok.txt"),
        "http://10.0.0.1/ok.txt".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "file:///etc/passwd".to_owned(),
        "ftp://example.com/a.txt".to_owned(),
        format!("http://user:pw@{}/ok.txt", server.addr),
        "not a uri".to_owned(),
    ] {
        let res = app
            .create_files(&json!({ "files": [{ "remote_uri": uri, "name": "a.txt" }] }))
            .await;
        res.assert_error(422, "invalid_metadata");
        let reason = res.body["error"]["details"]["files"][0]["message"]
            .as_str()
            .unwrap();
        assert!(reason.contains("remote_uri"), "{uri}: {reason}");
    }
    assert_eq!(unlisted.requests(), 0, "nothing was fetched");
    assert_eq!(server.requests(), 0);
    let ws = app.tenant.workspace;
    assert_eq!(app.file_rows(ws).await, 0, "nothing was reserved");
    assert_eq!(app.counters(ws).await, (0, 0));
}

#[tokio::test]
async fn a_completion_asked_for_while_an_import_streams_waits_for_its_bytes() {
    let server = source().await;
    let app = app_allowing(&server).await;
    let created = app
        .create_files(
            &json!({ "files": [{ "remote_uri": format!("http://{}/slow.txt", server.addr) }] }),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let file = created.body["files"][0].clone();
    // The source takes about two seconds; the client asks at once. The completion may
    // neither inspect the object half-written nor call it missing: it waits for the
    // import's bytes and answers the verified file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let completed = app.complete(&file).await;
    assert_eq!(completed.status, 200, "{:?}", completed.body);
    assert_eq!(completed.body["status"], "ready", "{:?}", completed.body);
    assert_eq!(
        completed.body["size_bytes"],
        json!(slow_text().len()),
        "{:?}",
        completed.body
    );
    assert_eq!(app.download(&file).await, slow_text());
    assert_eq!(
        status_of(&app, &file).await["processing_status"],
        "completed"
    );
    assert_eq!(server.requests(), 1, "fetched once");
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}
