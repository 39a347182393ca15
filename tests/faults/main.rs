//! Fault tests: real services stopped and restarted under load. They stop shared
//! services, so `scripts/test` runs them alone, after the main suites, against a
//! Postgres cluster of their own (`scripts/fault-ctl` stops and starts things).
//! Each is bounded in time and stops by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate_tests::{Answer, TestApp, samples, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn ctl(command: &str) {
    let script =
        std::env::var("FILEGATE_FAULT_CTL").expect("FILEGATE_FAULT_CTL: run through scripts/test");
    let status = tokio::process::Command::new(script)
        .arg(command)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "fault-ctl {command} failed");
}

/// One answer of a load loop: when it came, its status, `Retry-After` and code.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    status: u16,
    retry_after: Option<u64>,
    code: String,
}

/// Runs `tasks` loops of single-file reservations against `base` until `stop`.
fn reservation_load(
    base: String,
    key: String,
    tasks: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Sample>>>, Vec<tokio::task::JoinHandle<()>>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let handles = (0..tasks)
        .map(|_| {
            let (base, key, stop, samples, counter, http) = (
                base.clone(),
                key.clone(),
                stop.clone(),
                samples.clone(),
                counter.clone(),
                http.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let body =
                        json!({ "files": [{ "name": format!("load-{n}-{}.txt", uuid::Uuid::new_v4().simple()), "size_bytes": 1 }] });
                    let res = http
                        .post(format!("{base}/v2/files"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await;
                    let sample = match res {
                        Ok(r) => {
                            let a = Answer::of(r).await;
                            Sample {
                                at: Instant::now(),
                                status: a.status,
                                retry_after: a.header("retry-after").and_then(|v| v.parse().ok()),
                                code: a.code().to_owned(),
                            }
                        }
                        // The process is gone (the SIGKILL test): no HTTP answer at all.
                        Err(_) => Sample {
                            at: Instant::now(),
                            status: 0,
                            retry_after: None,
                            code: "no answer".into(),
                        },
                    };
                    let failed = sample.status != 200;
                    samples.lock().unwrap().push(sample);
                    if failed {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    (samples, handles)
}

async fn assert_counters_match_rows(app: &TestApp) {
    // A fresh connection: the app's pool may still hold connections from before.
    let client = filegate_tests::connect(&app.database_url).await;
    let rows = client
        .query(
            "SELECT w.id, w.used_bytes, w.reserved_bytes,
                    coalesce((SELECT sum(reserved_bytes) FROM files f WHERE f.workspace_id = w.id AND status = 'ready'), 0)::int8,
                    coalesce((SELECT sum(reserved_bytes) FROM files f WHERE f.workspace_id = w.id AND status = 'pending'), 0)::int8
               FROM workspaces w",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let (used, reserved, ready_rows, pending_rows): (i64, i64, i64, i64) =
            (r.get(1), r.get(2), r.get(3), r.get(4));
        assert_eq!(
            (used, reserved),
            (ready_rows, pending_rows),
            "workspace {} counters equal its rows",
            r.get::<_, uuid::Uuid>(0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared services: run by scripts/test's fault stage"]
async fn postgres_restarted_under_load_gives_503s_then_recovers_and_loses_nothing() {
    let app = spawn_app_with(|s| {
        s.database.database_timeout = std::time::Duration::from_millis(1000);
        s.http.workers = Some(2);
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let (samples, handles) =
        reservation_load(app.address.clone(), app.tenant.key.clone(), 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = Instant::now();
    ctl("pg-stop").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctl("pg-start").await;
    let up = Instant::now();
    // Run on until the service has answered 200 again for a while, or give up after 10 s.
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let recovered = samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.at > up && s.status == 200)
            .count();
        if recovered >= 20 || up.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.await.unwrap();
    }
    let samples = samples.lock().unwrap().clone();
    assert!(
        samples.iter().any(|s| s.at < down && s.status == 200),
        "reservations succeeded before the outage"
    );
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > down && s.at < up && s.status != 200)
        .collect();
    assert!(
        !during.is_empty(),
        "requests during the outage were refused"
    );
    for s in samples.iter().filter(|s| s.status != 200) {
        assert_eq!(
            (s.status, s.code.as_str()),
            (503, "unavailable"),
            "only 503 unavailable: {s:?}"
        );
        assert!(
            s.retry_after.is_some_and(|r| r >= 1),
            "503 carries Retry-After: {s:?}"
        );
    }
    let first_ok = samples
        .iter()
        .filter(|s| s.at > up && s.status == 200)
        .map(|s| s.at)
        .min();
    let recovery = first_ok.map(|t| t - up).expect("the service recovered");
    assert!(
        recovery < Duration::from_secs(5),
        "recovered {recovery:?} after Postgres returned"
    );
    assert_counters_match_rows(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared services: run by scripts/test's fault stage"]
async fn garage_stopped_under_completion_load_changes_nothing_until_it_returns() {
    let app = spawn_app_with(|s| s.http.workers = Some(2)).await;
    let mut good = Vec::new();
    for i in 0..24 {
        good.push(
            app.reserve_and_upload(&format!("g{i}.txt"), samples::txt())
                .await,
        );
    }
    let mut spoofed = Vec::new();
    for i in 0..6 {
        spoofed.push(
            app.reserve_and_upload(&format!("s{i}.txt"), samples::png())
                .await,
        );
    }
    let all: Vec<&Value> = good.iter().chain(&spoofed).collect();
    ctl("garage-stop").await;
    let answers = futures_util::future::join_all(all.iter().map(|f| app.complete(f))).await;
    for a in &answers {
        a.assert_error(503, "unavailable");
        assert!(a.header("retry-after").is_some());
    }
    for f in &all {
        assert_eq!(
            app.file_status(f).await.0,
            "pending",
            "nothing was marked ready or rejected"
        );
    }
    ctl("garage-start").await;
    let answers = futures_util::future::join_all(all.iter().map(|f| app.complete(f))).await;
    for (i, a) in answers.iter().enumerate() {
        if i < good.len() {
            assert_eq!(a.status, 200, "{:?}", a.body);
        } else {
            a.assert_error(422, "upload_mismatch");
        }
    }
    assert_counters_match_rows(&app).await;
}

async fn start_binary(app: &TestApp, port: u16) -> tokio::process::Child {
    let child = app
        .serve_command(port)
        .await
        .env("FILEGATE_RATE_LIMIT_PER_SECOND", "100000")
        .env("FILEGATE_RATE_LIMIT_BURST", "100000")
        .env("FILEGATE_LOG", "warn")
        .spawn()
        .unwrap();
    filegate_tests::wait_healthy(port).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared services: run by scripts/test's fault stage"]
async fn filegate_killed_mid_reservation_load_leaves_counters_equal_to_rows() {
    let app = spawn_app().await;
    let port = filegate_tests::free_port();
    for round in 0..2 {
        let mut child = start_binary(&app, port).await;
        let stop = Arc::new(AtomicBool::new(false));
        let base = format!("http://127.0.0.1:{port}");
        let (samples, handles) = reservation_load(base, app.tenant.key.clone(), 8, stop.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            h.await.unwrap();
        }
        let ok = samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.status == 200)
            .count();
        let statuses: std::collections::BTreeSet<u16> =
            samples.lock().unwrap().iter().map(|s| s.status).collect();
        assert!(
            ok > 10,
            "round {round}: reservations were under way ({ok} ok; statuses {statuses:?})"
        );
        assert_counters_match_rows(&app).await;
    }
}
