//! Every failure actix itself produces answers with the envelope and X-Request-Id.

use filegate_tests::{Answer, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn unknown_routes_get_404_with_the_envelope() {
    let app = spawn_app().await;
    for path in ["/nope", "/v2/nope", "/v2/files/x/y/z", "/v1/files"] {
        let res = Answer::of(app.request(Method::GET, path).send().await.unwrap()).await;
        res.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn wrong_methods_get_405_method_not_allowed_with_allow() {
    let app = spawn_app().await;
    let res = Answer::of(
        app.request(Method::DELETE, "/healthz")
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET"));
    let usage = format!("/v2/workspaces/{}/usage", app.tenant.workspace);
    let res = Answer::of(app.request(Method::PUT, &usage).send().await.unwrap()).await;
    res.assert_error(405, "method_not_allowed");
    let res = Answer::of(app.request(Method::PUT, "/v2/files").send().await.unwrap()).await;
    res.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn a_bad_path_uuid_gets_400_invalid_request() {
    let app = spawn_app().await;
    for path in [
        "/v2/workspaces/not-a-uuid/usage",
        "/v2/workspaces/1234/usage",
        "/v2/workspaces/%00/usage",
    ] {
        let res = Answer::of(app.request(Method::GET, path).send().await.unwrap()).await;
        res.assert_error(400, "invalid_request");
    }
}

async fn post_raw(app: &filegate_tests::TestApp, body: impl Into<reqwest::Body>) -> Answer {
    let res = app
        .request(Method::POST, "/v2/files")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

#[tokio::test]
async fn malformed_json_gets_400_invalid_request() {
    let app = spawn_app().await;
    for body in ["{", "not json", "", "[1,2", "{\"files\": [}"] {
        post_raw(&app, body)
            .await
            .assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn wrong_json_types_get_400_invalid_request() {
    let app = spawn_app().await;
    for body in [
        json!({ "files": "x" }),
        json!({ "files": [{ "name": 7 }] }),
        json!({ "files": [{ "name": "a.pdf", "size_bytes": "12" }] }),
        json!({ "files": [{ "name": "a.pdf", "size_bytes": -1 }] }),
        json!({ "workspace_uuid": "not-a-uuid", "files": [] }),
        json!([]),
    ] {
        post_raw(&app, body.to_string())
            .await
            .assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn unknown_fields_get_400_invalid_request() {
    let app = spawn_app().await;
    let top = json!({ "files": [{ "name": "a.pdf" }], "surprise": true });
    post_raw(&app, top.to_string())
        .await
        .assert_error(400, "invalid_request");
    let nested = json!({ "files": [{ "name": "a.pdf", "colour": "red" }] });
    post_raw(&app, nested.to_string())
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_payload_too_large() {
    let app = spawn_app().await;
    let big = format!("{{\"files\": [{{\"name\": \"{}\"}}]}}", "a".repeat(2 << 20));
    post_raw(&app, big.clone())
        .await
        .assert_error(413, "payload_too_large");
    // Without a Content-Length (chunked), the limit holds too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(64 << 10)
        .map(|c| Ok(c.to_vec()))
        .collect();
    post_raw(&app, reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_an_insane_one_replaced() {
    let app = spawn_app().await;
    let res = app
        .request(Method::GET, "/nope")
        .header("X-Request-Id", "abc-123.x_y:z")
        .send()
        .await
        .unwrap();
    let res = Answer::of(res).await;
    assert_eq!(res.header("x-request-id"), Some("abc-123.x_y:z"));
    assert_eq!(res.body["request_id"], "abc-123.x_y:z");

    let res = app
        .request(Method::GET, "/nope")
        .header("X-Request-Id", "<script>alert(1)</script>")
        .send()
        .await;
    let res = Answer::of(res.unwrap()).await;
    let id = res.header("x-request-id").unwrap();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "replaced by a UUID, got {id}"
    );
    assert_eq!(res.body["request_id"], id);

    // Successful responses carry an id too.
    let ok = app.get_anonymous("/healthz").await;
    assert!(ok.headers().get("x-request-id").is_some());
}
