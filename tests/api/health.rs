use filegate_storage::probe::Capability;
use filegate_tests::{Answer, spawn_app, spawn_app_with};
use strum::IntoEnumIterator as _;

#[tokio::test]
async fn healthz_answers_200_without_credentials() {
    let app = spawn_app().await;
    let res = Answer::of(app.get_anonymous("/healthz").await).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["status"], "ok");
    assert!(res.header("x-request-id").is_some());
}

#[tokio::test]
async fn readyz_answers_200_when_postgres_and_the_bucket_answer() {
    let app = spawn_app().await;
    let res = Answer::of(app.get_anonymous("/readyz").await).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["checks"]["database"], "ok");
    assert_eq!(res.body["checks"]["object_store"], "ok");
    // What the start-up probe found, one result per capability.
    let caps = res.body["store_capabilities"]
        .as_object()
        .expect("store_capabilities");
    assert_eq!(caps.len(), Capability::iter().count(), "{caps:?}");
    let report = app.store.as_ref().expect("the probe ran");
    for capability in Capability::iter() {
        let result = caps[capability.name()].as_str().expect("a result");
        assert!(
            ["yes", "no", "skipped", "unknown"].contains(&result),
            "{result}"
        );
        assert_eq!(
            result == "yes",
            report.has(capability),
            "{}",
            capability.name()
        );
    }
    assert_eq!(caps["signature_checked"], "yes");
}

#[tokio::test]
async fn with_the_store_probe_off_readyz_says_so_and_uploads_still_complete_by_hashing() {
    let app = spawn_app_with(|s| s.storage.s3_skip_probe = true).await;
    assert!(app.store.is_none());
    let res = Answer::of(app.get_anonymous("/readyz").await).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert!(res.body["store_capabilities"].is_null(), "{:?}", res.body);
    // Nothing the store reports is trusted: the declared digest is checked by reading
    // the object, and a wrong one is still caught.
    let good = app.reserve_and_upload("a.txt", b"hello".to_vec()).await;
    assert_eq!(app.complete(&good).await.status, 200);
    let bad = app
        .reserve(serde_json::json!({ "name": "b.txt", "size_bytes": 5, "checksum_sha256": filegate_tests::sha256_b64(b"hello") }))
        .await;
    match app.upload(&bad, b"HELLO".to_vec()).await {
        // The store refused the other bytes itself.
        400 => {}
        200 => app
            .complete(&bad)
            .await
            .assert_error(422, "upload_mismatch"),
        other => panic!("the store answered {other}"),
    }
}

#[tokio::test]
async fn readyz_turns_503_while_the_object_store_is_unreachable_and_recovers() {
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|_| {}).await;
    assert_eq!(
        Answer::of(app.get_anonymous("/readyz").await).await.status,
        200
    );

    proxy.cut();
    let res = Answer::of(app.get_anonymous("/readyz").await).await;
    res.assert_error(503, "unavailable");
    assert_eq!(res.body["error"]["details"]["object_store"], "unavailable");
    assert_eq!(res.body["error"]["details"]["database"], "ok");
    assert!(
        res.header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    // Nothing of the S3 answer or the connection error leaks.
    let text = res.body.to_string();
    assert!(
        !text.contains("dispatch") && !text.contains("127.0.0.1"),
        "{text}"
    );

    proxy.restore();
    assert_eq!(
        Answer::of(app.get_anonymous("/readyz").await).await.status,
        200
    );
}

#[tokio::test]
async fn readyz_turns_503_when_the_database_is_unreachable() {
    // A port nothing listens on stands for a database that is down.
    let closed = filegate_tests::free_port();
    let app = spawn_app().await;
    let settings = {
        let mut s = app.settings.clone();
        s.database.database_url = format!("postgres://postgres@127.0.0.1:{closed}/nothing").into();
        s.database.database_timeout = std::time::Duration::from_millis(500);
        s
    };
    let down = filegate::http::server::Application::build(settings)
        .await
        .expect("starts while Postgres is down");
    let port = down.port();
    tokio::spawn(down.run_until_stopped());
    let res = Answer::of(
        app.http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(503, "unavailable");
    assert_eq!(res.body["error"]["details"]["database"], "unavailable");
    assert_eq!(res.body["error"]["details"]["object_store"], "ok");
}
