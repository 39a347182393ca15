//! The store matrix's own checks, which `scripts/test` runs against each store it
//! starts (Garage, Ceph RGW, s3s-fs, and s3rver, which enforces nothing):
//! `filegate doctor` finds what filegate needs on the real stores, reports what each
//! is known to lack, and fails on s3rver; `filegate serve` refuses s3rver unless the
//! override is set, and then warns on every start.
//!
//! The store comes from `FILEGATE_TEST_STORE` (its name) and the `FILEGATE_TEST_S3_*`
//! variables; each test is ignored unless `scripts/test` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

use filegate_storage::{Storage, StorageSettings};
use filegate_tests::{backends, free_port, fresh_bucket, sigterm, wait_healthy};
use serde_json::Value;

fn store_name() -> String {
    std::env::var("FILEGATE_TEST_STORE")
        .expect("FILEGATE_TEST_STORE is not set: scripts/test's store stage sets it")
}

/// Browser origins the doctor checks the bucket's CORS rules for.
const ORIGIN: &str = "http://localhost:5173";

/// The test store's `bucket`.
async fn storage(bucket: &str) -> Storage {
    let b = backends().await;
    Storage::new(&StorageSettings {
        endpoint: Some(b.s3_endpoint.clone()),
        public_endpoint: None,
        region: b.s3_region.clone(),
        bucket: bucket.to_owned(),
        access_key_id: Some(b.s3_access_key_id.clone()),
        secret_access_key: Some(b.s3_secret_access_key.clone().into()),
        path_style: true,
        timeout: Duration::from_secs(5),
    })
    .await
}

/// A new bucket on the test store, with CORS for [`ORIGIN`] where the store has bucket
/// CORS at all (as `serve --s3-create-bucket` leaves it).
async fn new_bucket() -> String {
    let bucket = fresh_bucket();
    let storage = storage(&bucket).await;
    storage.ensure_bucket().await.expect("create the bucket");
    match storage.apply_cors(&[ORIGIN.to_owned()]).await {
        Ok(()) | Err(filegate_storage::StorageError::NotImplemented(_)) => {}
        Err(e) => panic!("apply CORS: {e:?}"),
    }
    bucket
}

/// `filegate SUBCOMMAND` against the test store's `bucket`, with nothing from the
/// caller's environment.
async fn filegate(subcommand: &str, bucket: &str) -> tokio::process::Command {
    let b = backends().await;
    let mut cmd = tokio::process::Command::new(filegate_tests::filegate_bin());
    cmd.arg(subcommand)
        .env_clear()
        .env("FILEGATE_DATABASE_URL", &b.database_url)
        .env("FILEGATE_S3_ENDPOINT", &b.s3_endpoint)
        .env("FILEGATE_S3_REGION", &b.s3_region)
        .env("FILEGATE_S3_BUCKET", bucket)
        .env("FILEGATE_S3_ACCESS_KEY_ID", &b.s3_access_key_id)
        .env("FILEGATE_S3_SECRET_ACCESS_KEY", &b.s3_secret_access_key)
        .kill_on_drop(true);
    cmd
}

/// Writes `filegate doctor`'s table for the test store to
/// `$FILEGATE_TEST_DOCTOR_DIR/<store>.txt`, when set: `scripts/test` puts these in the
/// README.
async fn keep_table(bucket: &str) {
    let Ok(dir) = std::env::var("FILEGATE_TEST_DOCTOR_DIR") else {
        return;
    };
    let out = filegate("doctor", bucket)
        .await
        .args(["--cors-origins", ORIGIN])
        .output()
        .await
        .expect("run filegate doctor");
    std::fs::write(format!("{dir}/{}.txt", store_name()), &out.stdout).expect("write the table");
}

async fn doctor_json(bucket: &str) -> (Output, Value) {
    let out = filegate("doctor", bucket)
        .await
        .args(["--json", "--cors-origins", ORIGIN])
        .output()
        .await
        .expect("run filegate doctor");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn result<'a>(report: &'a Value, capability: &str) -> &'a str {
    report["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .find(|c| c["name"] == capability)
        .and_then(|c| c["result"].as_str())
        .unwrap_or_else(|| panic!("no {capability} in {report}"))
}

/// What each store of the matrix was measured to do where stores differ (the README's
/// compatibility table); every other capability is `yes` on all three.
fn known_gaps(store: &str) -> &'static [(&'static str, &'static str)] {
    match store {
        "garage" => &[("conditional_put", "no")],
        "ceph" => &[
            ("signed_checksum", "no"),
            ("checksum_kept", "no"),
            ("copy_if_match", "no"),
            // It takes the other bytes: there is no refused PUT to look at.
            ("refused_put_keeps_object", "skipped"),
            ("part_checksum", "no"),
        ],
        "s3s-fs" => &[
            ("cors", "no"),
            ("refused_put_keeps_object", "no"),
            ("part_checksum", "no"),
        ],
        other => panic!("no known capabilities for store {other}"),
    }
}

#[tokio::test]
#[ignore = "needs a store of the matrix (scripts/test runs it once per store)"]
async fn the_doctor_finds_what_filegate_needs_and_names_what_the_store_lacks() {
    let store = store_name();
    let bucket = new_bucket().await;
    keep_table(&bucket).await;
    let (out, report) = doctor_json(&bucket).await;
    assert!(
        out.status.success(),
        "{store}: the doctor exits 0 on a store filegate can use: {report:#}"
    );
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["enforces_nothing"], false, "{report:#}");
    let gaps = known_gaps(&store);
    for capability in report["capabilities"].as_array().unwrap() {
        let name = capability["name"].as_str().unwrap();
        let expected = gaps
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("yes", |(_, r)| *r);
        assert_eq!(
            capability["result"], expected,
            "{store}: {name} ({})",
            capability["seen"]
        );
    }
    // Every object the probe wrote is gone.
    let listed = storage(&bucket)
        .await
        .list_page(None)
        .await
        .expect("list the bucket");
    assert!(
        listed.objects.is_empty(),
        "{store}: the doctor left {:?}",
        listed.objects
    );
}

#[tokio::test]
#[ignore = "needs a store that enforces nothing (scripts/test runs it against s3rver)"]
async fn the_doctor_fails_on_a_store_that_enforces_nothing() {
    assert_eq!(store_name(), "s3rver");
    let bucket = new_bucket().await;
    keep_table(&bucket).await;
    let (out, report) = doctor_json(&bucket).await;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["enforces_nothing"], true);
    for name in [
        "signature_checked",
        "signed_content_type",
        "signed_content_length",
        "signed_checksum",
    ] {
        assert_eq!(result(&report, name), "no", "{name}: {report:#}");
    }
}

/// Starts `filegate serve` on the test store and returns it with its port, or its
/// output when it exited first.
async fn serve(
    bucket: &str,
    unsafe_override: bool,
) -> Result<(tokio::process::Child, u16), Output> {
    let port = free_port();
    let mut cmd = filegate("serve", bucket).await;
    cmd.env("FILEGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FILEGATE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if unsafe_override {
        cmd.env("FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE", "true");
    }
    let mut child = cmd.spawn().expect("spawn filegate serve");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("poll the process").is_some() {
            return Err(child.wait_with_output().await.expect("its output"));
        }
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return Ok((child, port));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "filegate serve neither started nor exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(child: tokio::process::Child) -> String {
    sigterm(child.id().expect("pid"));
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("filegate stops on SIGTERM")
        .expect("its output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
#[ignore = "needs a store that enforces nothing (scripts/test runs it against s3rver)"]
async fn serve_refuses_a_store_that_enforces_nothing_unless_overridden_and_then_warns_on_every_start()
 {
    assert_eq!(store_name(), "s3rver");
    let bucket = new_bucket().await;
    let refused = serve(&bucket, false)
        .await
        .expect_err("serve must not start on a store that enforces nothing");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains("enforces no signed header")
            && text.contains("FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE"),
        "the refusal says why and names the override: {text}"
    );
    for start in 1..=2 {
        let (child, port) = serve(&bucket, true).await.unwrap_or_else(|out| {
            panic!(
                "start {start} with the override failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        wait_healthy(port).await;
        let ready: Value = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .expect("readyz")
            .json()
            .await
            .expect("readyz JSON");
        assert_eq!(
            ready["store_capabilities"]["signature_checked"], "no",
            "{ready}"
        );
        let log = stop(child).await;
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"WARN\"") && l.contains("UNSAFE"))
            .collect();
        assert!(
            !warnings.is_empty(),
            "start {start} logs the unsafe start as a warning: {log}"
        );
    }
}

/// Signs and sends one call of RGW's SNS-compatible topic API (a form POST to the S3
/// endpoint, SigV4 for `sns`); its XML answer.
async fn rgw_topic_call(params: &[(&str, &str)]) -> String {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let b = backends().await;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = format!("{}/", b.s3_endpoint.trim_end_matches('/'));
    let credentials = aws_credential_types::Credentials::new(
        &b.s3_access_key_id,
        &b.s3_secret_access_key,
        None,
        None,
        "test",
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&b.s3_region)
        .name("sns")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let content_type = "application/x-www-form-urlencoded";
    let request = SignableRequest::new(
        "POST",
        &url,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut req = reqwest::Client::new()
        .post(&url)
        .header("content-type", content_type)
        // RGW keeps a push endpoint's credentials only for HTTPS; behind a TLS proxy
        // it trusts this header (`rgw trust forwarded https`, set by scripts/lib/ceph.sh).
        .header("x-forwarded-proto", "https")
        .body(body);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{params:?}: {status} {text}");
    text
}

/// Ceph RGW's own bucket notifications, from a persistent topic pushing to
/// `/v2/events/s3` with the events secret as HTTP Basic, complete uploads with the
/// finalizer off: a PDF becomes ready, an executable named `.pdf` is rejected and its
/// upload deleted. Nothing but RGW tells filegate the uploads arrived.
#[tokio::test]
#[ignore = "needs Ceph RGW: scripts/test's store stage runs it there"]
async fn ceph_rgw_notifications_complete_uploads_with_the_finalizer_off() {
    assert_eq!(store_name(), "ceph");
    let app = filegate_tests::spawn_app().await;
    assert!(
        app.settings.reaper.finalizer_interval.is_zero(),
        "the finalizer is off"
    );
    let topic = format!("filegate-{}", uuid::Uuid::new_v4().simple());
    let endpoint = format!(
        "http://filegate:{}@127.0.0.1:{}/v2/events/s3",
        filegate_tests::EVENTS_SECRET,
        app.port
    );
    let created = rgw_topic_call(&[
        ("Action", "CreateTopic"),
        ("Name", &topic),
        ("Attributes.entry.1.key", "push-endpoint"),
        ("Attributes.entry.1.value", &endpoint),
        ("Attributes.entry.2.key", "persistent"),
        ("Attributes.entry.2.value", "true"),
    ])
    .await;
    let arn = created
        .split("<TopicArn>")
        .nth(1)
        .and_then(|s| s.split("</TopicArn>").next())
        .unwrap_or_else(|| panic!("no TopicArn in {created}"))
        .to_owned();
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, S3KeyFilter, TopicConfiguration,
    };
    app.s3()
        .await
        .put_bucket_notification_configuration()
        .bucket(&app.settings.storage.s3_bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .topic_configurations(
                    TopicConfiguration::builder()
                        .id("filegate")
                        .topic_arn(&arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .filter(
                            NotificationConfigurationFilter::builder()
                                .key(
                                    S3KeyFilter::builder()
                                        .filter_rules(
                                            FilterRule::builder()
                                                .name(FilterRuleName::Prefix)
                                                .value("uploads/")
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutBucketNotificationConfiguration");

    let good = app
        .reserve_and_upload("notified.pdf", filegate_tests::samples::pdf())
        .await;
    let spoofed = app
        .reserve_and_upload("spoofed.pdf", filegate_tests::samples::elf())
        .await;
    let started = std::time::Instant::now();
    let mut statuses = (String::new(), String::new());
    while started.elapsed() < Duration::from_secs(60) {
        statuses = (
            app.file_status(&good).await.0,
            app.file_status(&spoofed).await.0,
        );
        if statuses.0 != "pending" && statuses.1 != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "RGW's notifications settled both files in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        statuses.0, "ready",
        "the PDF, completed by RGW's notification"
    );
    assert_eq!(statuses.1, "rejected", "the executable named .pdf");
    assert_eq!(app.download(&good).await, filegate_tests::samples::pdf());
    assert!(
        !app.object_exists(&filegate_tests::upload_key(&spoofed))
            .await,
        "the rejected upload is deleted"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("filegate_completion_paths_total{outcome=\"ready\",path=\"event\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("completion_paths"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = rgw_topic_call(&[("Action", "DeleteTopic"), ("TopicArn", &arn)]).await;
}
