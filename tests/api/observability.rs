//! /openapi.json and /metrics.

use filegate::jobs::Job as _;
use filegate_tests::{Answer, samples, spawn_app, spawn_app_with};
use reqwest::Method;

#[tokio::test]
async fn the_served_document_is_the_checked_in_openapi_3_1_document() {
    let app = spawn_app().await;
    let res = app.get_anonymous("/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("ratelimit-limit").is_none(),
        "operations routes are not limited"
    );
    let served = res.text().await.unwrap();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    assert_eq!(served.trim_end(), checked_in.trim_end());
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v2/files",
        "/v2/files/{file_uuid}",
        "/v2/files/{file_uuid}/complete",
        "/v2/workspaces/{workspace_uuid}/usage",
        "/v2/uploads/{file_uuid}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(
        codes.len(),
        19,
        "every error code of the contract, and 408 request_timeout"
    );
}

use filegate_tests::metric_sample as sample;

#[tokio::test]
async fn metrics_move_after_an_upload_a_rejection_and_a_429() {
    let app = spawn_app_with(|s| {
        s.rate_limit.rate_limit_per_second = 0.01;
        s.rate_limit.rate_limit_burst = 6;
    })
    .await;
    let before = app.metrics_text().await;

    let good = app.reserve_and_upload("a.txt", samples::txt()).await;
    assert_eq!(app.complete(&good).await.status, 200);
    let bad = app.reserve_and_upload("b.pdf", samples::elf()).await;
    app.complete(&bad)
        .await
        .assert_error(422, "upload_mismatch");
    // Six tokens: four requests above, one more, then the bucket is empty.
    let path = format!("/v2/workspaces/{}/usage", app.tenant.workspace);
    Answer::of(app.request(Method::GET, &path).send().await.unwrap()).await;
    loop {
        let res = Answer::of(app.request(Method::GET, &path).send().await.unwrap()).await;
        if res.status == 429 {
            break;
        }
    }
    let after = app.metrics_text().await;
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        delta("filegate_reservations_total{outcome=\"reserved\"}"),
        2.0
    );
    assert_eq!(delta("filegate_files_reserved_total"), 2.0);
    assert_eq!(delta("filegate_completions_total{outcome=\"ready\"}"), 1.0);
    assert_eq!(
        delta("filegate_completions_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(delta("filegate_rejections_total{reason=\"content\"}"), 1.0);
    assert!(delta("filegate_rate_limited_total{bucket=\"key\"}") >= 1.0);
    assert!(delta("filegate_quota_bytes_total{change=\"used\"}") >= samples::txt().len() as f64);
    assert!(
        delta("filegate_http_requests_total{method=\"POST\",route=\"/v2/files\",status=\"200\"}")
            >= 2.0,
        "{after}"
    );
    assert!(after.contains("filegate_http_request_duration_seconds_bucket{"));
    assert!(after.contains(
        "filegate_object_store_call_duration_seconds_bucket{op=\"head_object\",outcome=\"ok\""
    ));
    assert!(after.contains("filegate_db_pool_connections{state=\"size\"}"));
}

#[tokio::test]
async fn reaper_actions_are_counted() {
    let app = spawn_app_with(|s| s.storage.presign_ttl = std::time::Duration::from_secs(1)).await;
    app.reserve(serde_json::json!({ "name": "gone.pdf", "size_bytes": 10 }))
        .await;
    let before = app.metrics_text().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let settings = filegate_tests::reaper_settings(10);
    filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), settings.clone())
        .run_once()
        .await
        .unwrap();
    let after = app.metrics_text().await;
    let name = "filegate_reaper_actions_total{action=\"expired\"}";
    assert_eq!(sample(&after, name) - sample(&before, name), 1.0);
}

#[tokio::test]
async fn metrics_can_be_served_on_an_address_of_their_own_and_only_there() {
    let db = filegate_tests::fresh_database().await;
    let mut settings = filegate_tests::test_settings(&db, &filegate_tests::fresh_bucket()).await;
    settings.http.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = filegate::http::server::Application::build(settings)
        .await
        .unwrap();
    let (api, metrics) = (app.port(), app.metrics_port().expect("a metrics port"));
    tokio::spawn(app.run_until_stopped());
    let get = |port: u16, path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        async move { filegate_tests::Answer::of(reqwest::get(url).await.unwrap()).await }
    };
    let scraped = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("filegate_db_pool_connections")
    );
    get(api, "/metrics").await.assert_error(404, "not_found");
    assert_eq!(
        get(api, "/healthz").await.status,
        200,
        "the API still answers"
    );
    get(metrics, "/v2/files")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_replay_and_a_reused_idempotency_key_are_counted_apart() {
    let app = spawn_app().await;
    let post = |name: &'static str| {
        let req = app
            .request(Method::POST, "/v2/files")
            .header("Idempotency-Key", "k-counted")
            .json(&serde_json::json!({ "files": [{ "name": name, "size_bytes": 10 }] }));
        async move { Answer::of(req.send().await.unwrap()).await }
    };
    assert_eq!(post("a.pdf").await.status, 200);
    let before = app.metrics_text().await;
    assert_eq!(post("a.pdf").await.status, 200);
    post("b.pdf")
        .await
        .assert_error(409, "idempotency_conflict");
    let after = app.metrics_text().await;
    let delta = |outcome: &str| {
        let name = format!("filegate_reservations_total{{outcome=\"{outcome}\"}}");
        sample(&after, &name) - sample(&before, &name)
    };
    assert_eq!(delta("replayed"), 1.0, "only the true replay is a replay");
    assert_eq!(delta("idempotency_conflict"), 1.0);
}
