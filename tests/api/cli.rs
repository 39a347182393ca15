//! The `filegate` binary: secrets stay out of `--help`, and the admin CLI creates
//! tenants whose keys work against a running app.

use std::process::Command;

use filegate_tests::{Answer, spawn_app};
use reqwest::Method;
use serde_json::Value;

use filegate_tests::filegate_bin;

fn admin(database_url: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(filegate_bin())
        .env_clear()
        .env("FILEGATE_DATABASE_URL", database_url)
        .env("FILEGATE_LOG", "warn")
        .arg("admin")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn help_never_shows_secret_values_from_the_environment() {
    let out = Command::new(filegate_bin())
        .args(["serve", "--help"])
        .env("FILEGATE_S3_SECRET_ACCESS_KEY", "topsecret-value")
        .env("FILEGATE_S3_ACCESS_KEY_ID", "AKIDVALUE")
        .env("FILEGATE_DATABASE_URL", "postgres://u:pw-value@db/x")
        .env("FILEGATE_S3_BUCKET", "visible-bucket")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("FILEGATE_S3_SECRET_ACCESS_KEY"), "{help}");
    for secret in ["topsecret-value", "AKIDVALUE", "pw-value"] {
        assert!(!help.contains(secret), "{secret} leaked into --help");
    }
    // Non-secret values are shown, which proves the environment was read.
    assert!(help.contains("visible-bucket"));
}

#[tokio::test]
async fn the_admin_cli_creates_a_tenant_whose_key_works_and_revokes_it() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let (ok, org, err) = admin(&url, &["create-org", "acme"]);
    assert!(ok, "{err}");
    let org = org["id"].as_str().unwrap().to_owned();
    let (ok, ws, err) = admin(
        &url,
        &[
            "create-workspace",
            "--org",
            &org,
            "--quota-bytes",
            "1000",
            "--allowed-types",
            "application/pdf",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(ws["quota_bytes"], 1000);
    assert_eq!(
        ws["allowed_content_types"],
        serde_json::json!(["application/pdf"])
    );
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (ok, key, err) = admin(&url, &["create-key", "--org", &org, "--workspace", &ws]);
    assert!(ok, "{err}");
    assert_eq!(
        key["default_workspace"],
        ws.as_str(),
        "a one-workspace key defaults to it"
    );
    let secret = key["key"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();

    let usage = format!("/v2/workspaces/{ws}/usage");
    let res = Answer::of(
        app.request_as(&secret, Method::GET, &usage)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["quota_bytes"], 1000);

    // The secret is not stored: only its digest is.
    let client = filegate_tests::connect(&url).await;
    let row = client
        .query_one(
            "SELECT secret_sha256 FROM api_keys WHERE id = $1::text::uuid",
            &[&key_id],
        )
        .await;
    let stored: Vec<u8> = row.unwrap().get(0);
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&secret));

    let (ok, revoked, err) = admin(&url, &["revoke-key", &key_id]);
    assert!(ok, "{err}");
    assert_eq!(revoked["revoked"], true);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = Answer::of(
        app.request_as(&secret, Method::GET, &usage)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn the_admin_cli_refuses_a_workspace_of_another_organization() {
    let app = spawn_app().await;
    let other = app.create_tenant(&filegate_domain::Limits::default()).await;
    let (ok, _, err) = admin(
        &app.database_url,
        &[
            "create-key",
            "--org",
            &app.tenant.org.to_string(),
            "--workspace",
            &other.workspace.to_string(),
        ],
    );
    assert!(!ok);
    assert!(err.contains("does not belong"), "{err}");
    let (ok, _, _) = admin(
        &app.database_url,
        &["revoke-key", &uuid::Uuid::new_v4().to_string()],
    );
    assert!(!ok, "revoking an unknown key fails");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_cleanly() {
    let backends = filegate_tests::backends().await;
    let proxy = filegate_tests::proxy::FaultProxy::start(
        backends.s3_endpoint.trim_start_matches("http://"),
    )
    .await;
    let database_url = filegate_tests::fresh_database().await;
    let port = filegate_tests::free_port();
    let mut child = tokio::process::Command::new(filegate_bin())
        .arg("serve")
        .env_clear()
        .env("FILEGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FILEGATE_DATABASE_URL", &database_url)
        .env("FILEGATE_S3_ENDPOINT", proxy.url())
        .env("FILEGATE_S3_REGION", &backends.s3_region)
        .env("FILEGATE_S3_BUCKET", filegate_tests::fresh_bucket())
        .env("FILEGATE_S3_ACCESS_KEY_ID", &backends.s3_access_key_id)
        .env(
            "FILEGATE_S3_SECRET_ACCESS_KEY",
            &backends.s3_secret_access_key,
        )
        .env("FILEGATE_S3_CREATE_BUCKET", "true")
        .env("FILEGATE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "filegate did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Make the object store slow, so /readyz is in flight when SIGTERM arrives.
    proxy.cut();
    proxy.set_delay(std::time::Duration::from_millis(1500));
    proxy.restore();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/readyz");
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    filegate_tests::sigterm(child.id().unwrap());
    assert_eq!(
        in_flight.await.unwrap().ok(),
        Some(200),
        "the in-flight request finished"
    );
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
    assert!(
        status.expect("exits after SIGTERM").unwrap().success(),
        "exit status 0"
    );
}

#[tokio::test]
async fn reap_once_expires_abandoned_uploads_and_prints_a_report() {
    let app = filegate_tests::spawn_app_with(|s| {
        s.storage.presign_ttl = std::time::Duration::from_secs(1)
    })
    .await;
    let body = serde_json::json!({ "files": [{ "name": "a.pdf", "size_bytes": 10 }, { "name": "b.pdf" }] });
    assert_eq!(app.create_files(&body).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let out = app
        .command("reap")
        .await
        .arg("--once")
        .env("FILEGATE_REAPER_GRACE_SECS", "0")
        .env("FILEGATE_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["expired"], 2);
    assert_eq!(
        report["objects_deleted"], 2,
        "both queued keys were deleted (missing objects count as deleted)"
    );
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_its_id_route_status_latency_and_key_id() {
    let app = filegate_tests::spawn_app().await;
    let port = filegate_tests::free_port();
    let child = app
        .serve_command(port)
        .await
        .env("FILEGATE_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    filegate_tests::wait_healthy(port).await;
    let usage = format!("{base}/v2/workspaces/{}/usage", app.tenant.workspace);
    let res = client
        .get(&usage)
        .bearer_auth(&app.tenant.key)
        .header("X-Request-Id", "log-test-1")
        .send()
        .await;
    assert_eq!(res.unwrap().status(), 200);
    filegate_tests::sigterm(child.id().unwrap());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&app.tenant.key),
        "the key's secret never reaches the log"
    );
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request" && l["span"]["request_id"] == "log-test-1")
        .collect();
    assert_eq!(lines.len(), 1, "one line per request: {stderr}");
    let line = &lines[0];
    assert_eq!(
        line["span"]["route"],
        "/v2/workspaces/{workspace_uuid}/usage"
    );
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().is_some());
    assert_eq!(line["span"]["key_id"], app.tenant.key_id.to_string());
}

#[tokio::test]
async fn the_admin_cli_takes_a_max_file_size_up_to_s3s_limit_and_no_more() {
    let app = spawn_app().await;
    let org = app.tenant.org.to_string();
    let five_tib = (5_i64 << 40).to_string();
    let (ok, ws, err) = admin(
        &app.database_url,
        &[
            "create-workspace",
            "--org",
            &org,
            "--max-file-bytes",
            &five_tib,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(ws["max_file_bytes"], 5_i64 << 40);
    let over = ((5_i64 << 40) + 1).to_string();
    let (ok, _, err) = admin(
        &app.database_url,
        &["create-workspace", "--org", &org, "--max-file-bytes", &over],
    );
    assert!(!ok);
    assert!(err.contains("max-file-bytes"), "{err}");
}

#[tokio::test]
async fn the_admin_cli_sets_a_workspaces_types_and_naming_rule() {
    let app = spawn_app().await;
    let org = app.tenant.org.to_string();
    let (ok, ws, err) = admin(
        &app.database_url,
        &[
            "create-workspace",
            "--org",
            &org,
            "--allowed-types",
            "text/csv,image/png,audio/x-wav",
            "--unique-names",
            "false",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        ws["allowed_content_types"],
        serde_json::json!(["text/csv", "image/png", "audio/wav"])
    );
    assert_eq!(ws["unique_names"], false);
    let id = ws["id"].as_str().unwrap().to_owned();
    let (ok, changed, err) = admin(
        &app.database_url,
        &[
            "set-workspace",
            "--workspace",
            &id,
            "--allowed-types",
            "application/jsonl,video/webm",
            "--unique-names",
            "true",
            "--max-file-bytes",
            "1000",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        changed["allowed_content_types"],
        serde_json::json!(["application/jsonl", "video/webm"])
    );
    assert_eq!(
        (
            changed["unique_names"].clone(),
            changed["max_file_bytes"].clone()
        ),
        (Value::Bool(true), Value::from(1000))
    );
    // Usage reports what was set.
    let usage = Answer::of(
        app.request(Method::GET, &format!("/v2/workspaces/{id}/usage"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        usage.body["allowed_content_types"],
        changed["allowed_content_types"]
    );
    assert_eq!(usage.body["unique_names"], true);
    // Unknown types, unknown workspaces and a quota below what is held are refused.
    let (ok, _, err) = admin(
        &app.database_url,
        &[
            "set-workspace",
            "--workspace",
            &id,
            "--allowed-types",
            "image/svg+xml",
        ],
    );
    assert!(!ok && err.contains("not supported"), "{err}");
    let (ok, _, _) = admin(
        &app.database_url,
        &[
            "set-workspace",
            "--workspace",
            &uuid::Uuid::new_v4().to_string(),
            "--unique-names",
            "false",
        ],
    );
    assert!(!ok);
    assert_eq!(
        app.create_files(&serde_json::json!({ "files": [{ "name": "a.txt", "size_bytes": 500 }] }))
            .await
            .status,
        200
    );
    let (ok, _, err) = admin(
        &app.database_url,
        &[
            "set-workspace",
            "--workspace",
            &app.tenant.workspace.to_string(),
            "--quota-bytes",
            "100",
        ],
    );
    assert!(!ok && err.contains("already holds"), "{err}");
}

/// `filegate serve ARGS` with a database URL and nothing else from the environment;
/// returns whether it refused to start, and what it said.
fn serve_refuses(args: &[&str]) -> (bool, String) {
    let out = Command::new(filegate_bin())
        .env_clear()
        .env("FILEGATE_DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("FILEGATE_LISTEN", "127.0.0.1:1")
        .arg("serve")
        .args(args)
        .output()
        .unwrap();
    (
        !out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn settings_that_would_break_at_runtime_are_refused_at_start() {
    for (args, says) in [
        (vec!["--presign-ttl-secs", "0"], "1..=604800"),
        (vec!["--presign-ttl-secs", "604801"], "1..=604800"),
        (vec!["--download-ttl-secs", "0"], "1..=604800"),
        (vec!["--download-ttl-secs", "700000"], "1..=604800"),
        (vec!["--s3-timeout-ms", "0"], "100..="),
        (vec!["--database-pool-size", "1"], "2..="),
        (vec!["--database-timeout-ms", "0"], "100..="),
        (vec!["--database-statement-timeout-ms", "0"], "100..="),
        (vec!["--max-body-bytes", "10"], "1024..="),
        (vec!["--upload-margin-secs", "9999999"], "0..="),
        (vec!["--reconcile-interval-secs", "99999999"], "0..="),
    ] {
        let (refused, stderr) = serve_refuses(&args);
        assert!(refused, "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Workspace defaults belong to `admin`, where they are used; `serve` has none.
    let (refused, stderr) = serve_refuses(&["--default-quota-bytes", "5"]);
    assert!(
        refused && stderr.contains("unexpected argument"),
        "{stderr}"
    );
    let help = Command::new(filegate_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(!help.contains("--default-quota-bytes"), "{help}");
    assert!(help.contains("1..=604800"), "ranges are in --help: {help}");
}

#[tokio::test]
async fn the_admin_cli_manages_a_workspaces_webhooks_as_the_api_does() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let ws = app.tenant.workspace.to_string();
    // The SSRF guard holds here too, unless the host is allowed as `serve` allows it.
    let (ok, _, err) = admin(
        &url,
        &[
            "webhook",
            "create",
            "--workspace",
            &ws,
            "--url",
            "http://127.0.0.1:9/hook",
        ],
    );
    assert!(!ok, "a loopback URL without the allow-list");
    assert!(err.contains("refused"), "{err}");
    let (ok, created, err) = admin(
        &url,
        &[
            "webhook",
            "create",
            "--workspace",
            &ws,
            "--url",
            "http://127.0.0.1:9/hook",
            "--event",
            "file.ready",
            "--event",
            "file.deleted",
            "--import-allowed-hosts",
            "127.0.0.1:9",
        ],
    );
    assert!(ok, "{err}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["event_types"],
        serde_json::json!(["file.ready", "file.deleted"])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = Answer::of(
        app.request(Method::GET, &format!("/v2/workspaces/{ws}/webhooks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        listed.body["items"][0]["webhook_uuid"],
        id.as_str(),
        "the API sees it"
    );
    let (ok, set, _) = admin(
        &url,
        &[
            "webhook",
            "set",
            "--workspace",
            &ws,
            &id,
            "--enabled",
            "false",
        ],
    );
    assert!(ok);
    assert_eq!(set["enabled"], false);
    let (ok, rotated, _) = admin(&url, &["webhook", "rotate-secret", "--workspace", &ws, &id]);
    assert!(ok);
    assert_ne!(rotated["secret"], created["secret"]);
    let (ok, listed, _) = admin(&url, &["webhook", "list", "--workspace", &ws]);
    assert!(ok);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("secret").is_none());
    let (ok, _, _) = admin(&url, &["webhook", "delete", "--workspace", &ws, &id]);
    assert!(ok);
    let (ok, _, err) = admin(&url, &["webhook", "delete", "--workspace", &ws, &id]);
    assert!(!ok && err.contains("no webhook"), "{err}");
    let (ok, _, err) = admin(
        &url,
        &[
            "webhook",
            "create",
            "--workspace",
            &ws,
            "--url",
            "https://example.com/",
            "--event",
            "file.eaten",
        ],
    );
    assert!(!ok && err.contains("not an event type"), "{err}");
}
