//! Webhooks: endpoints per workspace, one delivery per subscribed endpoint for every
//! transition whichever path made it, signed the Standard Webhooks way, delivered until
//! acknowledged through a receiver that fails in every way, and inspected and replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use filegate::jobs::Job as _;
use filegate::service::imports::guard::AllowedHost;
use filegate_domain::Limits;
use filegate_tests::receiver::{Mode, Received, Receiver};
use filegate_tests::{
    Answer, EVENTS_SECRET, Form, TestApp, samples, sha256_b64, spawn_app_with, upload_key,
};
use reqwest::Method;
use serde_json::{Value, json};

/// An app whose SSRF guard lets deliveries reach `receivers` on loopback.
async fn app_for(
    receivers: &[&Receiver],
    customize: impl FnOnce(&mut filegate::settings::ServeSettings),
) -> TestApp {
    let hosts: Vec<AllowedHost> = receivers
        .iter()
        .map(|r| AllowedHost::parse(&r.addr.to_string()).unwrap())
        .collect();
    spawn_app_with(move |s| {
        s.ingest.import_allowed_hosts = hosts;
        customize(s);
    })
    .await
}

fn hooks(app: &TestApp) -> String {
    format!("/v2/workspaces/{}/webhooks", app.tenant.workspace)
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut req = app.request(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    Answer::of(req.send().await.unwrap()).await
}

/// Creates an endpoint for `url` wanting `events` (all when `None`); its answer.
async fn subscribe(app: &TestApp, url: &str, events: Option<&[&str]>) -> Value {
    let mut body = json!({ "url": url });
    if let Some(events) = events {
        body["event_types"] = json!(events);
    }
    let res = call(app, Method::POST, &hooks(app), Some(body)).await;
    assert_eq!(res.status, 201, "{:?}", res.body);
    res.body
}

fn secret(endpoint: &Value) -> String {
    endpoint["secret"].as_str().unwrap().to_owned()
}

/// Checks a delivery's signature as a receiver does, and reads its event.
#[track_caller]
fn verified(secret: &str, r: &Received) -> filegate_api::WebhookEvent {
    filegate_client::webhooks::verify(secret, &r.headers, &r.body)
        .unwrap_or_else(|e| panic!("delivery {} does not verify: {e}", r.header("webhook-id")))
}

async fn complete_ready(app: &TestApp, name: &str, bytes: Vec<u8>) -> Value {
    let file = app.reserve_and_upload(name, bytes).await;
    let res = app.complete(&file).await;
    assert_eq!(res.body["status"], "ready", "{:?}", res.body);
    file
}

fn id_of(file: &Value) -> String {
    file["file_uuid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn endpoints_are_created_with_a_secret_shown_once_listed_changed_rotated_and_deleted() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |_| {}).await;
    let created = subscribe(&app, &receiver.url(), Some(&["file.ready", "file.ready"])).await;
    let id = created["webhook_uuid"].as_str().unwrap().to_owned();
    assert!(secret(&created).starts_with("whsec_"));
    assert_eq!(
        created["event_types"],
        json!(["file.ready"]),
        "each type once"
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["workspace_uuid"], app.tenant.workspace.to_string());

    let one = format!("{}/{id}", hooks(&app));
    let got = call(&app, Method::GET, &one, None).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none(), "the secret is shown once");
    let listed = call(&app, Method::GET, &hooks(&app), None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("secret").is_none());

    let changed = call(
        &app,
        Method::PATCH,
        &one,
        Some(json!({ "event_types": ["file.deleted", "file.rejected"], "enabled": false })),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(
        changed.body["event_types"],
        json!(["file.deleted", "file.rejected"])
    );
    assert_eq!(changed.body["enabled"], false);

    let rotated = call(&app, Method::POST, &format!("{one}/rotate-secret"), None).await;
    assert_eq!(rotated.status, 200);
    assert_ne!(secret(&rotated.body), secret(&created));
    assert!(rotated.body["previous_secret_expires_at"].is_string());

    assert_eq!(call(&app, Method::DELETE, &one, None).await.status, 204);
    call(&app, Method::GET, &one, None)
        .await
        .assert_error(404, "not_found");
    call(&app, Method::DELETE, &one, None)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_the_reason_and_nothing_is_saved() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |_| {}).await;
    let path = hooks(&app);
    for (body, why) in [
        (json!({ "url": "not a url" }), "not a URL"),
        (
            json!({ "url": "ftp://example.com/x" }),
            "a scheme other than http(s)",
        ),
        (json!({ "url": "http://u:p@example.com/x" }), "credentials"),
        (
            json!({ "url": "http://127.0.0.1:9/x" }),
            "loopback, not allowed",
        ),
        (
            json!({ "url": "http://169.254.169.254/latest" }),
            "cloud metadata",
        ),
        (json!({ "url": "http://10.0.0.1/x" }), "a private address"),
        (
            json!({ "url": format!("http://example.com/{}", "a".repeat(2100)) }),
            "too long",
        ),
        (
            json!({ "url": receiver.url(), "event_types": [] }),
            "no event types",
        ),
        (
            json!({ "url": receiver.url(), "event_types": ["file.eaten"] }),
            "an unknown type",
        ),
        (
            json!({ "url": receiver.url(), "secret": "mine" }),
            "an unknown field",
        ),
        (json!({}), "no URL"),
    ] {
        let res = call(&app, Method::POST, &path, Some(body)).await;
        assert_eq!(res.status, 400, "{why}: {:?}", res.body);
        res.assert_error(400, "invalid_request");
    }
    let listed = call(&app, Method::GET, &path, None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was saved");

    // Another organization's workspace is out of reach, whether or not it exists.
    let other = app.create_tenant(&Limits::default()).await;
    let theirs = format!("/v2/workspaces/{}/webhooks", other.workspace);
    call(
        &app,
        Method::POST,
        &theirs,
        Some(json!({ "url": receiver.url() })),
    )
    .await
    .assert_error(403, "forbidden");
    call(&app, Method::GET, &theirs, None)
        .await
        .assert_error(403, "forbidden");

    // At most 16 endpoints a workspace.
    for _ in 0..16 {
        subscribe(&app, &receiver.url(), None).await;
    }
    call(
        &app,
        Method::POST,
        &path,
        Some(json!({ "url": receiver.url() })),
    )
    .await
    .assert_error(409, "quota_exceeded");
}

/// Every kind of transition, by every path, is delivered exactly once to each endpoint
/// that wants it, and to none that does not; every delivery verifies.
#[tokio::test]
async fn each_transition_is_delivered_once_to_each_subscribed_endpoint_whatever_path_made_it() {
    let (all, deletions) = (Receiver::start().await, Receiver::start().await);
    let app = app_for(&[&all, &deletions], |s| {
        s.storage.presign_ttl = Duration::from_secs(3);
        s.reaper.finalizer_interval = Duration::from_secs(1);
    })
    .await;
    let a = subscribe(&app, &all.url(), None).await;
    let d = subscribe(&app, &deletions.url(), Some(&["file.deleted"])).await;
    // A workspace with no endpoint: its transitions are delivered nowhere.
    let quiet = app.create_tenant(&Limits::default()).await;

    let mut expected: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    // Ready by the client's completion.
    let by_client = complete_ready(&app, "client.txt", samples::txt()).await;
    expected.insert(id_of(&by_client), vec!["file.ready"]);
    // Ready by an upload through filegate.
    let ingested = Answer::of(
        app.request(Method::POST, "/v2/files/-/uploads")
            .header("content-type", Form::content_type())
            .body(
                Form::new()
                    .file("ingested.txt", "text/plain", &samples::txt())
                    .body(),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ingested.body["status"], "ready", "{:?}", ingested.body);
    expected.insert(id_of(&ingested.body), vec!["file.ready"]);
    // Ready by an S3 event.
    let by_event = app.reserve_and_upload("event.pdf", samples::pdf()).await;
    let record = json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": app.settings.storage.s3_bucket }, "object": { "key": upload_key(&by_event), "size": 1 } }
    }]});
    let res = app
        .http
        .post(format!("{}/v2/events/s3", app.address))
        .header("authorization", format!("Bearer {EVENTS_SECRET}"))
        .json(&record)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    expected.insert(id_of(&by_event), vec!["file.ready"]);
    // Rejected: an executable named .pdf.
    let rejected = app.reserve_and_upload("bad.pdf", samples::elf()).await;
    app.complete(&rejected)
        .await
        .assert_error(422, "upload_mismatch");
    assert_eq!(app.file_status(&rejected).await.0, "rejected");
    expected.insert(id_of(&rejected), vec!["file.rejected"]);
    // Ready by the finalizer: uploaded, never completed.
    let by_finalizer = app
        .reserve_and_upload("finalized.md", samples::markdown())
        .await;
    expected.insert(id_of(&by_finalizer), vec!["file.ready"]);
    // Deleted while ready, and while pending.
    let deleted = complete_ready(&app, "deleted.txt", samples::txt()).await;
    let gone = format!("/v2/files/{}", id_of(&deleted));
    assert_eq!(call(&app, Method::DELETE, &gone, None).await.status, 204);
    expected.insert(id_of(&deleted), vec!["file.ready", "file.deleted"]);
    let pending_deleted = app.reserve(json!({ "name": "never.txt" })).await;
    let gone = format!("/v2/files/{}", id_of(&pending_deleted));
    assert_eq!(call(&app, Method::DELETE, &gone, None).await.status, 204);
    expected.insert(id_of(&pending_deleted), vec!["file.deleted"]);
    // Expired by the reaper.
    let expired = app
        .reserve(json!({ "name": "late.txt", "size_bytes": 10 }))
        .await;
    expected.insert(id_of(&expired), vec!["file.expired"]);
    // The quiet workspace's file moves too.
    let (key, _) = app.create_key(quiet.org, None, Some(quiet.workspace)).await;
    let q = app
        .create_files_as(
            &key,
            &json!({ "files": [{ "name": "q.txt", "size_bytes": 5 }] }),
        )
        .await;
    assert_eq!(q.status, 200);
    let q_path = format!("/v2/files/{}", id_of(&q.body["files"][0]));
    let res = app
        .request_as(&key, Method::DELETE, &q_path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let report = filegate::jobs::Reaper::new(
        app.pool.clone(),
        app.storage.clone(),
        filegate_tests::reaper_settings(100),
    )
    .run_once()
    .await
    .unwrap();
    assert_eq!(report.expired, 1, "only the never-uploaded file");

    let want: usize = expected.values().map(Vec::len).sum();
    let got_all = all.wait_for(want, Duration::from_secs(30)).await;
    let got_deletions = deletions.wait_for(2, Duration::from_secs(30)).await;
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all.received().len(), want, "one request a transition");
    assert_eq!(deletions.received().len(), 2);

    let mut seen: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for r in &got_all {
        let event = verified(&secret(&a), r);
        assert!(
            ids.insert(r.header("webhook-id").to_owned()),
            "webhook-ids are unique"
        );
        let file = &event.data.file;
        assert_eq!(event.data.workspace_uuid, app.tenant.workspace);
        let kind = event.event_type.as_str();
        let status = serde_json::to_value(file.status).unwrap();
        match kind {
            "file.ready" | "file.rejected" | "file.expired" => {
                assert_eq!(status, kind.trim_start_matches("file."), "{kind}");
            }
            _ => assert!(status == "ready" || status == "pending", "{kind}: {status}"),
        }
        seen.entry(file.file_uuid.to_string())
            .or_default()
            .push((event.data.sequence, kind.to_owned()));
        // The body is the raw JSON of the event, as the type documents it.
        assert_eq!(r.json()["type"], kind);
        assert_eq!(r.header("content-type"), "application/json");
    }
    let ordered: BTreeMap<String, Vec<&str>> = seen
        .iter_mut()
        .map(|(id, events)| {
            events.sort();
            (id.clone(), events.iter().map(|(_, k)| k.as_str()).collect())
        })
        .collect();
    assert_eq!(
        ordered, expected,
        "by sequence number, each file's events in order"
    );
    for r in &got_deletions {
        let event = verified(&secret(&d), r);
        assert_eq!(event.event_type.as_str(), "file.deleted");
        assert!(
            filegate_client::webhooks::verify(&secret(&a), &r.headers, &r.body).is_err(),
            "another endpoint's secret does not verify it"
        );
    }
    // The deliveries as the inspection route lists them.
    let listed = call(
        &app,
        Method::GET,
        &format!(
            "{}/{}/deliveries?status=delivered&limit=500",
            hooks(&app),
            a["webhook_uuid"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), want);
    for item in listed.body["items"].as_array().unwrap() {
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["last_status_code"], 204);
        assert!(item["next_attempt_at"].is_null());
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(&format!(
            "filegate_webhook_deliveries_total{{outcome=\"delivered\"}} {}",
            want + 2
        )),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("webhook"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The gaps between a delivery's attempts.
fn gaps(attempts: &[Received]) -> Vec<Duration> {
    attempts.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test]
async fn deliveries_survive_a_receiver_that_fails_times_out_closes_and_goes_down() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |_| {}).await;
    let endpoint = subscribe(&app, &receiver.url(), Some(&["file.ready"])).await;
    receiver.set_mode(Mode::Status(500));
    let files = [
        complete_ready(&app, "a.txt", samples::txt()).await,
        complete_ready(&app, "b.txt", samples::txt()).await,
    ];
    let wait_requests = |n: usize| {
        let receiver = &receiver;
        async move {
            for _ in 0..400 {
                if receiver.received().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("{} requests of {n}", receiver.received().len());
        }
    };
    wait_requests(6).await;
    receiver.set_mode(Mode::Close);
    let before = receiver.received().len();
    wait_requests(before + 2).await;
    // No answer: the 2-second timeout ends each attempt.
    receiver.set_mode(Mode::Hang);
    let before = receiver.received().len();
    wait_requests(before + 2).await;
    receiver.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    receiver.set_mode(Mode::Ack);
    receiver.up().await;
    let acknowledged = receiver.wait_for(2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.acknowledged().len(),
        2,
        "each delivered once acknowledged"
    );

    let mut by_id: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for r in receiver.received() {
        verified(&secret(&endpoint), &r);
        by_id
            .entry(r.header("webhook-id").to_owned())
            .or_default()
            .push(r);
    }
    assert_eq!(
        by_id.len(),
        2,
        "two deliveries, every attempt under its own id"
    );
    let delivered: BTreeSet<String> = acknowledged
        .iter()
        .map(|r| {
            verified(&secret(&endpoint), r)
                .data
                .file
                .file_uuid
                .to_string()
        })
        .collect();
    assert_eq!(delivered, files.iter().map(id_of).collect());
    for attempts in by_id.values() {
        assert!(attempts.len() >= 4, "{} attempts", attempts.len());
        // Exponential backoff from 200 ms (each delay drawn in [half, all] of its
        // step), capped at 2 s: the first gap at least 100 ms, the third at least 400 ms.
        let g = gaps(attempts);
        assert!(g[0] >= Duration::from_millis(100), "{g:?}");
        assert!(g[2] >= Duration::from_millis(400), "{g:?}");
    }
    let listed = call(
        &app,
        Method::GET,
        &format!(
            "{}/{}/deliveries",
            hooks(&app),
            endpoint["webhook_uuid"].as_str().unwrap()
        ),
        None,
    )
    .await;
    for item in listed.body["items"].as_array().unwrap() {
        assert_eq!(item["status"], "delivered");
        assert!(item["attempts"].as_i64().unwrap() >= 4);
        assert_eq!(item["last_status_code"], 204);
        assert!(item["last_error"].is_null());
    }
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("filegate_webhook_deliveries_total{outcome=\"retried\"}"));
    assert!(metrics.contains("filegate_webhook_delivery_latency_seconds_count 2"));
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_and_its_failed_deliveries_are_redelivered() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |s| {
        s.webhooks.webhook_retry_horizon = Duration::from_secs(2);
    })
    .await;
    let endpoint = subscribe(&app, &receiver.url(), None).await;
    let one = format!(
        "{}/{}",
        hooks(&app),
        endpoint["webhook_uuid"].as_str().unwrap()
    );
    receiver.set_mode(Mode::Status(503));
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let file = complete_ready(&app, "a.txt", samples::txt()).await;

    let mut disabled = Value::Null;
    for _ in 0..200 {
        disabled = call(&app, Method::GET, &one, None).await.body;
        if disabled["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(disabled["enabled"], false, "{disabled:?}");
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("503"), "{reason}");
    let failed = call(
        &app,
        Method::GET,
        &format!("{one}/deliveries?status=failed"),
        None,
    )
    .await;
    let items = failed.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{:?}", failed.body);
    assert_eq!(items[0]["last_status_code"], 503);
    assert_eq!(items[0]["file_uuid"], file["file_uuid"]);
    assert!(items[0]["settled_at"].is_string());
    let attempts = receiver.received().len();
    assert!(attempts >= 2, "{attempts} attempts within the horizon");

    // A disabled endpoint is sent nothing, and wants no new events.
    complete_ready(&app, "b.txt", samples::txt()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), attempts);

    // Enabled again and redelivered: the failed delivery arrives, under its id.
    receiver.set_mode(Mode::Ack);
    let enabled = call(&app, Method::PATCH, &one, Some(json!({ "enabled": true }))).await;
    assert_eq!(enabled.body["enabled"], true);
    assert!(enabled.body["disabled_reason"].is_null());
    let redelivered = call(
        &app,
        Method::POST,
        &format!("{one}/redeliver"),
        Some(json!({ "since": since })),
    )
    .await;
    assert_eq!(redelivered.status, 202, "{:?}", redelivered.body);
    assert_eq!(redelivered.body["redelivered"], 1);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].header("webhook-id"),
        items[0]["delivery_uuid"].as_str().unwrap()
    );
    assert_eq!(
        verified(&secret(&endpoint), &got[0])
            .data
            .file
            .file_uuid
            .to_string(),
        id_of(&file)
    );

    // One delivery replayed on request, delivered or not.
    let replay = call(
        &app,
        Method::POST,
        &format!(
            "{one}/deliveries/{}/redeliver",
            items[0]["delivery_uuid"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(replay.status, 202, "{:?}", replay.body);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("webhook-id"), got[0].header("webhook-id"));
    call(
        &app,
        Method::POST,
        &format!("{one}/deliveries/{}/redeliver", uuid::Uuid::now_v7()),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("filegate_webhook_endpoints_disabled_total 1"));
    assert!(metrics.contains("filegate_webhook_deliveries_total{outcome=\"failed\"} 1"));
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_during_its_grace() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |_| {}).await;
    let endpoint = subscribe(&app, &receiver.url(), Some(&["file.ready"])).await;
    let one = format!(
        "{}/{}",
        hooks(&app),
        endpoint["webhook_uuid"].as_str().unwrap()
    );
    let rotated = call(&app, Method::POST, &format!("{one}/rotate-secret"), None).await;
    complete_ready(&app, "a.txt", samples::txt()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verified(&secret(&endpoint), &got[0]);
    verified(&secret(&rotated.body), &got[0]);
    // A tampered body or a stale timestamp does not verify.
    let mut tampered = got[0].clone();
    tampered.body.push(b' ');
    assert!(
        filegate_client::webhooks::verify(
            &secret(&rotated.body),
            &tampered.headers,
            &tampered.body
        )
        .is_err()
    );
    assert!(
        filegate_client::webhooks::verify_at(
            &secret(&rotated.body),
            &got[0].headers,
            &got[0].body,
            SystemTime::now() + Duration::from_secs(600),
            filegate_client::webhooks::TOLERANCE
        )
        .is_err()
    );
    // Without a grace period, the old secret stops at once.
    let app2 = app_for(&[&receiver], |s| {
        s.webhooks.webhook_secret_grace = Duration::ZERO
    })
    .await;
    let endpoint = subscribe(&app2, &receiver.url(), Some(&["file.ready"])).await;
    let one = format!(
        "{}/{}",
        hooks(&app2),
        endpoint["webhook_uuid"].as_str().unwrap()
    );
    let rotated = call(&app2, Method::POST, &format!("{one}/rotate-secret"), None).await;
    assert!(rotated.body["previous_secret_expires_at"].is_null());
    complete_ready(&app2, "a.txt", samples::txt()).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    verified(&secret(&rotated.body), &got[1]);
}

/// Deliveries carry the digest-checked file: `sha256_b64` of what was uploaded.
#[tokio::test]
async fn a_ready_event_carries_the_file_as_get_shows_it() {
    let receiver = Receiver::start().await;
    let app = app_for(&[&receiver], |_| {}).await;
    let endpoint = subscribe(&app, &receiver.url(), Some(&["file.ready"])).await;
    let bytes = samples::pdf();
    let file = complete_ready(&app, "report.pdf", bytes.clone()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let event = verified(&secret(&endpoint), &got[0]);
    let shown = call(
        &app,
        Method::GET,
        &format!("/v2/files/{}", id_of(&file)),
        None,
    )
    .await;
    let delivered = serde_json::to_value(&event.data.file).unwrap();
    for (field, value) in delivered.as_object().unwrap() {
        assert_eq!(&shown.body[field], value, "{field}");
    }
    assert_eq!(delivered["status"], "ready");
    assert_eq!(
        event.data.file.checksum_sha256.as_deref(),
        Some(sha256_b64(&bytes).as_str())
    );
}
