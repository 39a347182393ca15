//! The token-bucket middleware: 429 with an accurate Retry-After, refill, per-key and
//! per-IP buckets, headers, per-workspace overrides, and one limit across replicas.

use std::time::Duration;

use filegate::settings::{RateLimitStore, ServeSettings};
use filegate_domain::Limits;
use filegate_tests::{Answer, TestApp, spawn_app_with};
use reqwest::Method;

fn limited(per_second: f64, burst: u32) -> impl FnOnce(&mut ServeSettings) {
    move |s| {
        s.rate_limit.rate_limit_per_second = per_second;
        s.rate_limit.rate_limit_burst = burst;
    }
}

async fn usage_as(app: &TestApp, key: &str) -> Answer {
    let path = format!("/v2/workspaces/{}/usage", app.tenant.workspace);
    Answer::of(
        app.request_as(key, Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn num(a: &Answer, header: &str) -> Option<u64> {
    a.header(header).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_burst_beyond_the_bucket_gets_429_with_a_retry_after_that_works() {
    let app = spawn_app_with(limited(1.0, 3)).await;
    let key = app.tenant.key.clone();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let res = usage_as(&app, &key).await;
        assert_eq!(res.status, 200);
        assert_eq!(num(&res, "ratelimit-limit"), Some(3));
        remaining.push(num(&res, "ratelimit-remaining").unwrap());
        assert!(num(&res, "ratelimit-reset").is_some());
    }
    assert_eq!(remaining, [2, 1, 0], "RateLimit-Remaining decreases");
    let refused = usage_as(&app, &key).await;
    refused.assert_error(429, "rate_limited");
    let retry = num(&refused, "retry-after").expect("Retry-After");
    assert!(retry >= 1);
    assert_eq!(num(&refused, "ratelimit-remaining"), Some(0));
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        usage_as(&app, &key).await.status,
        200,
        "a retry after Retry-After succeeds"
    );
}

#[tokio::test]
async fn tokens_refill_at_the_configured_rate() {
    let app = spawn_app_with(limited(2.0, 2)).await;
    let key = app.tenant.key.clone();
    while usage_as(&app, &key).await.status == 200 {}
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(usage_as(&app, &key).await.status);
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "one second at 2/s is two requests"
    );
}

#[tokio::test]
async fn exhausting_one_key_leaves_another_untouched() {
    let app = spawn_app_with(limited(0.01, 2)).await;
    let (other, _) = app
        .create_key(app.tenant.org, None, Some(app.tenant.workspace))
        .await;
    for _ in 0..2 {
        assert_eq!(usage_as(&app, &app.tenant.key).await.status, 200);
    }
    usage_as(&app, &app.tenant.key)
        .await
        .assert_error(429, "rate_limited");
    let res = usage_as(&app, &other).await;
    assert_eq!(res.status, 200);
    assert_eq!(num(&res, "ratelimit-remaining"), Some(1));
}

#[tokio::test]
async fn bad_keys_from_one_ip_are_throttled_without_touching_good_keys() {
    let app = spawn_app_with(limited(0.01, 3)).await;
    // The first use of a key this process has not seen valid costs the IP a token.
    let first = usage_as(&app, &app.tenant.key).await;
    assert_eq!(first.status, 200);
    let bad = filegate::service::keys::mint().unwrap().secret;
    for i in 0..2 {
        let res = usage_as(&app, &bad).await;
        res.assert_error(401, "unauthenticated");
        assert_eq!(
            num(&res, "ratelimit-remaining"),
            Some(1 - i),
            "the IP bucket drains"
        );
    }
    usage_as(&app, &bad).await.assert_error(429, "rate_limited");
    // No key at all draws from the same IP bucket.
    let anonymous = Answer::of(app.get_anonymous("/v2/files").await).await;
    anonymous.assert_error(429, "rate_limited");
    assert_eq!(
        usage_as(&app, &app.tenant.key).await.status,
        200,
        "a valid key has its own bucket"
    );
}

fn key_lookups(outcome: &str) -> u64 {
    filegate::metrics::get()
        .key_lookups
        .with_label_values(&[outcome])
        .get()
}

#[tokio::test]
async fn a_flood_of_random_keys_reaches_the_database_only_as_fast_as_the_ip_bucket_admits() {
    // 5 tokens a second, 10 at once, for every bucket; keys cached for 1 s.
    let app = spawn_app_with(limited(5.0, 10)).await;
    let good = app.tenant.key.clone();
    assert_eq!(usage_as(&app, &good).await.status, 200);
    let unknown_before = key_lookups("unknown");
    let started = std::time::Instant::now();
    // The flood lasts as long as the legitimate client's ten requests, 250 ms apart.
    let done = std::sync::atomic::AtomicBool::new(false);
    let flood = async {
        let mut sent = 0u64;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let batch: Vec<_> = (0..20)
                .map(|_| {
                    let key = filegate::service::keys::mint().unwrap().secret;
                    let app = &app;
                    async move { usage_as(app, &key).await.status }
                })
                .collect();
            for status in futures_util::future::join_all(batch).await {
                assert!(status == 401 || status == 429, "a random key got {status}");
                sent += 1;
            }
        }
        sent
    };
    let legitimate = async {
        let mut served = 0;
        for _ in 0..10 {
            let res = usage_as(&app, &good).await;
            assert_eq!(res.status, 200, "the legitimate key: {:?}", res.body);
            served += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        served
    };
    let (sent, served) = tokio::join!(flood, legitimate);
    let elapsed = started.elapsed().as_secs_f64();
    let looked_up = key_lookups("unknown") - unknown_before;
    let admitted = 10.0 + 5.0 * elapsed;
    eprintln!(
        "flood: {sent} requests with random keys in {elapsed:.1} s, {looked_up} key look-ups, {served} legitimate requests served"
    );
    assert!(sent > 200, "the flood sent {sent}");
    assert!(
        (looked_up as f64) <= admitted + 1.0,
        "{looked_up} look-ups for {sent} random keys; the IP bucket admits {admitted:.0}"
    );
    assert_eq!(served, 10, "the legitimate key kept working");
}

#[tokio::test]
async fn forwarded_for_separates_clients_only_behind_a_trusted_proxy() {
    let send = |app: &TestApp, ip: &str| {
        let req = app
            .http
            .get(format!("{}/v2/files", app.address))
            .header("X-Forwarded-For", ip)
            .header("X-API-Key", "fg_bad");
        async move { Answer::of(req.send().await.unwrap()).await }
    };
    let trusted = spawn_app_with(|s| {
        limited(0.01, 1)(s);
        s.rate_limit.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert_eq!(send(&trusted, "203.0.113.1").await.status, 401);
    assert_eq!(
        send(&trusted, "203.0.113.2").await.status,
        401,
        "another client, another bucket"
    );
    assert_eq!(send(&trusted, "203.0.113.1").await.status, 429);

    let untrusted = spawn_app_with(limited(0.01, 1)).await;
    assert_eq!(send(&untrusted, "203.0.113.1").await.status, 401);
    assert_eq!(
        send(&untrusted, "203.0.113.2").await.status,
        429,
        "a forged header is ignored"
    );
}

#[tokio::test]
async fn every_v2_response_has_the_headers_and_operations_routes_are_exempt() {
    let app = spawn_app_with(limited(0.01, 5)).await;
    let list = Answer::of(app.request(Method::GET, "/v2/files").send().await.unwrap()).await;
    assert_eq!(num(&list, "ratelimit-remaining"), Some(4));
    let missing = Answer::of(app.request(Method::GET, "/v2/nope").send().await.unwrap()).await;
    assert_eq!(missing.status, 404);
    assert_eq!(num(&missing, "ratelimit-remaining"), Some(3));
    for _ in 0..10 {
        let health = app.get_anonymous("/healthz").await;
        assert_eq!(health.status(), 200);
        assert!(health.headers().get("ratelimit-limit").is_none());
        assert_eq!(app.get_anonymous("/readyz").await.status(), 200);
    }
}

/// A workspace of the tenant's organization whose buckets hold 2 tokens, refilled at
/// 0.01/s.
async fn slow_workspace(app: &TestApp) -> uuid::Uuid {
    let slow = app
        .create_workspace(app.tenant.org, &Limits::default())
        .await;
    assert!(
        filegate_db::workspaces::set_rate_limit(&app.pool, slow, Some((0.01, 2)))
            .await
            .unwrap()
    );
    slow
}

#[tokio::test]
async fn a_workspace_override_applies_to_keys_defaulting_to_it() {
    let app = spawn_app_with(limited(100.0, 50)).await;
    let slow = slow_workspace(&app).await;
    let (slow_key, _) = app
        .create_key(app.tenant.org, Some(vec![slow]), Some(slow))
        .await;
    let path = format!("/v2/workspaces/{slow}/usage");
    for _ in 0..2 {
        let res = Answer::of(
            app.request_as(&slow_key, Method::GET, &path)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((res.status, num(&res, "ratelimit-limit")), (200, Some(2)));
    }
    let res = Answer::of(
        app.request_as(&slow_key, Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(429, "rate_limited");
    assert!(
        num(&res, "retry-after").is_some_and(|s| s >= 99),
        "at 0.01/s a token takes 100 s"
    );
    let other = usage_as(&app, &app.tenant.key).await;
    assert_eq!(
        (other.status, num(&other, "ratelimit-limit")),
        (200, Some(50))
    );
}

#[tokio::test]
async fn a_key_reaching_many_workspaces_gets_its_own_rate_in_all_not_one_per_workspace() {
    // An organization-wide key once got a full bucket for every workspace it named:
    // twelve workspaces, twelve times the rate. Every request draws from the key's own
    // bucket, whichever workspace it addresses.
    let app = spawn_app_with(limited(0.01, 10)).await;
    let mut workspaces = Vec::new();
    for _ in 0..12 {
        workspaces.push(
            app.create_workspace(app.tenant.org, &Limits::default())
                .await,
        );
    }
    let (key, _) = app.create_key(app.tenant.org, None, None).await;
    let mut statuses = Vec::new();
    for round in 0..2 {
        for ws in &workspaces {
            let res = charged(
                &app,
                &app.address,
                &key,
                Method::GET,
                &format!("/v2/workspaces/{ws}/usage"),
            )
            .await;
            statuses.push((round, res.status));
        }
    }
    let served = statuses.iter().filter(|(_, s)| *s == 200).count();
    assert!(
        served <= 10,
        "at most the key's burst of 10 was served across 12 workspaces, twice: {statuses:?}"
    );
    assert!(
        statuses.iter().filter(|(_, s)| *s == 429).count() >= 14,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_organization_without_overrides_costs_the_limiter_no_look_ups() {
    // Only an override on another workspace can change what a request is charged, so
    // without one the limiter reads no body and looks nothing up.
    let app = spawn_app_with(limited(1000.0, 1000)).await;
    let other = app
        .create_workspace(app.tenant.org, &Limits::default())
        .await;
    let lookups = |text: &str| {
        filegate_tests::metric_sample(text, "filegate_rate_scope_lookups_total{of=\"file\"}")
            + filegate_tests::metric_sample(
                text,
                "filegate_rate_scope_lookups_total{of=\"workspace\"}",
            )
    };
    let touch = || async {
        let created = app
            .create_files(&serde_json::json!({
                "workspace_uuid": other, "files": [{ "name": format!("{}.txt", uuid::Uuid::new_v4()), "size_bytes": 3 }],
            }))
            .await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        let id = created.body["files"][0]["file_uuid"]
            .as_str()
            .unwrap()
            .to_owned();
        for path in [
            format!("/v2/files/{id}"),
            format!("/v2/workspaces/{other}/usage"),
            format!("/v2/files?workspace_uuid={other}"),
        ] {
            let res = charged(&app, &app.address, &app.tenant.key, Method::GET, &path).await;
            assert_eq!(res.status, 200, "{path}");
        }
    };
    touch().await;
    assert_eq!(lookups(&app.metrics_text().await), 0.0);

    // An override elsewhere (seen once the key's cached row is refreshed) brings the
    // look-ups back, for the requests that name that workspace.
    assert!(
        filegate_db::workspaces::set_rate_limit(&app.pool, other, Some((500.0, 500)))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    touch().await;
    assert!(lookups(&app.metrics_text().await) >= 1.0);
}

/// `METHOD path` as `key` against `base`, with the limit and remaining tokens it reports.
async fn charged(app: &TestApp, base: &str, key: &str, method: Method, path: &str) -> Answer {
    Answer::of(
        app.http
            .request(method, format!("{base}{path}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn each_request_is_charged_to_the_workspace_it_addresses() {
    // The server's buckets hold 50 tokens; the `slow` workspace's hold 2. Neither
    // refills within the test (0.01/s), so every token spent shows.
    let app = spawn_app_with(limited(0.01, 50)).await;
    let fast = app.tenant.workspace;
    let slow = slow_workspace(&app).await;
    let outside = app
        .create_workspace(app.tenant.org, &Limits::default())
        .await;
    // One key for both workspaces, defaulting to the fast one.
    let (key, _) = app
        .create_key(app.tenant.org, Some(vec![fast, slow]), Some(fast))
        .await;
    let base = app.address.clone();
    let limits = |a: &Answer| (a.status, num(a, "ratelimit-limit"));

    // The body names the slow workspace: its bucket (2 tokens) pays.
    let body = serde_json::json!({
        "workspace_uuid": slow,
        "files": [{ "name": "a.txt", "size_bytes": 5, "content_type": "text/plain" }],
    });
    let created = app.create_files_as(&key, &body).await;
    assert_eq!(limits(&created), (200, Some(2)), "{:?}", created.body);
    assert_eq!(num(&created, "ratelimit-remaining"), Some(1));
    let slow_file = created.body["files"][0]["file_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The query names it: the same bucket, now empty.
    let listed = charged(
        &app,
        &base,
        &key,
        Method::GET,
        &format!("/v2/files?workspace_uuid={slow}"),
    )
    .await;
    assert_eq!(limits(&listed), (200, Some(2)));
    assert_eq!(num(&listed, "ratelimit-remaining"), Some(0));
    // The path names it, and so does a file of it: both refused, for 100 s.
    for path in [
        format!("/v2/workspaces/{slow}/usage"),
        format!("/v2/files/{slow_file}"),
        format!("/v2/files/{slow_file}/complete"),
    ] {
        let method = if path.ends_with("complete") {
            Method::POST
        } else {
            Method::GET
        };
        let refused = charged(&app, &base, &key, method, &path).await;
        refused.assert_error(429, "rate_limited");
        assert!(
            num(&refused, "retry-after").is_some_and(|s| s >= 99),
            "{path}: the slow workspace's 0.01/s"
        );
    }

    // The same key's requests for the fast workspace are untouched, whether they name
    // it or not.
    for path in [
        format!("/v2/workspaces/{fast}/usage"),
        format!("/v2/files?workspace_uuid={fast}"),
        "/v2/files".to_owned(),
    ] {
        let res = charged(&app, &base, &key, Method::GET, &path).await;
        assert_eq!(limits(&res), (200, Some(50)), "{path}");
    }
    let fast_file = app
        .create_files_as(
            &key,
            &serde_json::json!({ "files": [{ "name": "b.txt", "size_bytes": 5 }] }),
        )
        .await;
    assert_eq!(limits(&fast_file), (200, Some(50)));

    // Requests the route refuses are charged to the key's own bucket, not to a fresh one.
    let out_of_scope = charged(
        &app,
        &base,
        &key,
        Method::GET,
        &format!("/v2/workspaces/{outside}/usage"),
    )
    .await;
    out_of_scope.assert_error(403, "forbidden");
    assert_eq!(num(&out_of_scope, "ratelimit-limit"), Some(50));
    let unknown_file = charged(
        &app,
        &base,
        &key,
        Method::GET,
        &format!("/v2/files/{}", uuid::Uuid::new_v4()),
    )
    .await;
    unknown_file.assert_error(404, "not_found");
    assert_eq!(num(&unknown_file, "ratelimit-limit"), Some(50));
    let malformed = Answer::of(
        app.request_as(&key, Method::POST, "/v2/files")
            .header("content-type", "application/json")
            .body(format!(r#"{{"workspace_uuid": "{slow}", "files": ["#))
            .send()
            .await
            .unwrap(),
    )
    .await;
    malformed.assert_error(400, "invalid_request");
    assert_eq!(num(&malformed, "ratelimit-limit"), Some(50));

    // A replica that has never seen the file looks its workspace up (paid from the
    // key's own bucket) and charges the slow workspace's bucket all the same.
    let replica = app.spawn_replica().await;
    let first = charged(
        &app,
        &replica,
        &key,
        Method::GET,
        &format!("/v2/files/{slow_file}"),
    )
    .await;
    assert_eq!(limits(&first), (200, Some(2)));
    assert_eq!(num(&first, "ratelimit-remaining"), Some(1));
    let own = charged(
        &app,
        &replica,
        &key,
        Method::GET,
        &format!("/v2/workspaces/{fast}/usage"),
    )
    .await;
    assert_eq!(
        (limits(&own), num(&own, "ratelimit-remaining")),
        ((200, Some(50)), Some(48)),
        "the look-up and this request each took one of the key's own tokens"
    );
}

/// The parts routes of a multipart file are charged to the file's workspace, as every
/// other route naming a file is (they once fell to the key's own bucket).
#[tokio::test]
async fn the_parts_routes_are_charged_to_their_files_workspace() {
    let app = spawn_app_with(limited(0.01, 50)).await;
    let fast = app.tenant.workspace;
    let slow = app
        .create_workspace(
            app.tenant.org,
            &Limits {
                max_file_bytes: 64 << 20,
                ..Limits::default()
            },
        )
        .await;
    assert!(
        filegate_db::workspaces::set_rate_limit(&app.pool, slow, Some((0.01, 2)))
            .await
            .unwrap()
    );
    let (key, _) = app
        .create_key(app.tenant.org, Some(vec![fast, slow]), Some(fast))
        .await;
    let body = serde_json::json!({
        "workspace_uuid": slow,
        "files": [{ "name": "big.txt", "size_bytes": 6 << 20, "upload_method": "MULTIPART" }],
    });
    let created = app.create_files_as(&key, &body).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(num(&created, "ratelimit-limit"), Some(2));
    let file = created.body["files"][0]["file_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts = format!("/v2/files/{file}/parts");
    let listed = charged(&app, &app.address, &key, Method::GET, &parts).await;
    assert_eq!(
        (listed.status, num(&listed, "ratelimit-limit")),
        (200, Some(2)),
        "{:?}",
        listed.body
    );
    assert_eq!(num(&listed, "ratelimit-remaining"), Some(0));
    let signed = charged(&app, &app.address, &key, Method::POST, &parts).await;
    signed.assert_error(429, "rate_limited");
    assert!(
        num(&signed, "retry-after").is_some_and(|s| s >= 99),
        "the slow workspace's 0.01/s"
    );
}

#[tokio::test]
async fn with_the_postgres_store_two_replicas_share_one_bucket() {
    let app = spawn_app_with(|s| {
        limited(0.001, 10)(s);
        s.rate_limit.rate_limit_store = RateLimitStore::Postgres;
    })
    .await;
    let replica = app.spawn_replica().await;
    let path = format!("/v2/workspaces/{}/usage", app.tenant.workspace);
    let requests = (0..30).map(|i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        let req = app
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(&app.tenant.key);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        admitted, 10,
        "one bucket's worth across both replicas: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20);
}

#[tokio::test]
async fn the_limiter_can_be_turned_off() {
    let app = spawn_app_with(|s| {
        limited(0.01, 1)(s);
        s.rate_limit.rate_limit_store = RateLimitStore::Off;
    })
    .await;
    for _ in 0..5 {
        let res = usage_as(&app, &app.tenant.key).await;
        assert_eq!(res.status, 200);
        assert!(res.header("ratelimit-limit").is_none());
    }
}
