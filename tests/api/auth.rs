use filegate_domain::Limits;
use filegate_tests::{Answer, spawn_app};
use reqwest::Method;

fn usage_path(ws: uuid::Uuid) -> String {
    format!("/v2/workspaces/{ws}/usage")
}

#[tokio::test]
async fn a_request_without_a_key_gets_401() {
    let app = spawn_app().await;
    let res = Answer::of(app.get_anonymous(&usage_path(app.tenant.workspace)).await).await;
    res.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn an_unknown_or_malformed_key_gets_401() {
    let app = spawn_app().await;
    let (unknown, _) = {
        let minted = filegate::service::keys::mint().unwrap();
        (minted.secret, minted.id)
    };
    // Right shape, right id, wrong secret.
    let mut wrong_secret = app.tenant.key.clone();
    wrong_secret.replace_range(wrong_secret.len() - 4.., "AAAA");
    for key in [
        unknown.as_str(),
        wrong_secret.as_str(),
        "fg_nonsense",
        "",
        "x".repeat(5000).as_str(),
    ] {
        let res = app
            .request_as(key, Method::GET, &usage_path(app.tenant.workspace))
            .send()
            .await
            .unwrap();
        Answer::of(res).await.assert_error(401, "unauthenticated");
    }
    // Another scheme is not a key.
    let res = app
        .http
        .get(format!(
            "{}{}",
            app.address,
            usage_path(app.tenant.workspace)
        ))
        .basic_auth("user", Some("pass"))
        .send()
        .await
        .unwrap();
    Answer::of(res).await.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn both_header_forms_authenticate() {
    let app = spawn_app().await;
    let path = usage_path(app.tenant.workspace);
    let bearer = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(bearer.status(), 200);
    let x_api_key = app
        .http
        .get(format!("{}{path}", app.address))
        .header("X-API-Key", &app.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(x_api_key.status(), 200);
    let lower_scheme = app
        .http
        .get(format!("{}{path}", app.address))
        .header("Authorization", format!("bearer {}", app.tenant.key))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_scheme.status(), 200);
}

#[tokio::test]
async fn two_headers_naming_different_keys_get_401() {
    let app = spawn_app().await;
    let other = app.create_tenant(&Limits::default()).await;
    let res = app
        .request(Method::GET, &usage_path(app.tenant.workspace))
        .header("X-API-Key", &other.key)
        .send()
        .await
        .unwrap();
    Answer::of(res).await.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_revoked_key_gets_401_within_the_cache_ttl() {
    let app = spawn_app().await;
    let path = usage_path(app.tenant.workspace);
    assert_eq!(
        app.request(Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        filegate_db::keys::revoke(&app.pool, app.tenant.key_id)
            .await
            .unwrap()
    );
    // The test app caches keys for 1 s: within 2 s the revocation must hold.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let res = Answer::of(app.request(Method::GET, &path).send().await.unwrap()).await;
        if res.status == 401 {
            res.assert_error(401, "unauthenticated");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked key still accepted after the cache TTL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_gets_403_for_a_workspace_of_another_organization() {
    let app = spawn_app().await;
    let other = app.create_tenant(&Limits::default()).await;
    let res = app
        .request(Method::GET, &usage_path(other.workspace))
        .send()
        .await
        .unwrap();
    Answer::of(res).await.assert_error(403, "forbidden");
    // A workspace that does not exist looks the same: existence is not revealed.
    let res = app
        .request(Method::GET, &usage_path(uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    Answer::of(res).await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_key_scoped_to_one_workspace_gets_403_for_another_of_its_organization() {
    let app = spawn_app().await;
    let w2 = app
        .create_workspace(app.tenant.org, &Limits::default())
        .await;
    let (scoped, _) = app
        .create_key(app.tenant.org, Some(vec![app.tenant.workspace]), None)
        .await;
    let ok = app
        .request_as(&scoped, Method::GET, &usage_path(app.tenant.workspace))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let res = app
        .request_as(&scoped, Method::GET, &usage_path(w2))
        .send()
        .await
        .unwrap();
    Answer::of(res).await.assert_error(403, "forbidden");
    // The org-wide key reaches both.
    assert_eq!(
        app.request(Method::GET, &usage_path(w2))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn usage_reports_the_workspace_limits_and_counters() {
    let app = spawn_app().await;
    let res = Answer::of(
        app.request(Method::GET, &usage_path(app.tenant.workspace))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["workspace_uuid"], app.tenant.workspace.to_string());
    assert_eq!(res.body["quota_bytes"], 1_073_741_824_i64);
    assert_eq!(res.body["max_file_bytes"], 5_242_880);
    assert_eq!(res.body["used_bytes"], 0);
    assert_eq!(res.body["reserved_bytes"], 0);
    assert_eq!(res.body["file_count"], 0);
    assert_eq!(
        res.body["allowed_content_types"].as_array().map(Vec::len),
        Some(5)
    );
}
