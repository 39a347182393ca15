//! Fault tests: real services stopped and restarted under load. They stop shared
//! services, so `scripts/test` runs them alone, after the main suites, against a
//! Postgres cluster of their own (`scripts/fault-ctl` stops and starts things).
//! Each is bounded in time and stops by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate::service::imports::guard::AllowedHost;
use filegate_tests::receiver::{Mode, Receiver};
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

/// A file the replica test made, and what it knows of it.
#[derive(Debug, Clone)]
struct Made {
    id: uuid::Uuid,
    /// The bytes PUT to its upload URL, when the PUT was stored.
    uploaded: Option<Vec<u8>>,
    /// A completion (single or batch) answered ready for it.
    answered_ready: bool,
    /// A DELETE answered 204 for it.
    deleted: bool,
}

/// Three `filegate serve` processes behind haproxy.
struct Replicas {
    ports: Vec<u16>,
    children: Vec<Option<tokio::process::Child>>,
    _proxy: tokio::process::Child,
    base: String,
}

impl Replicas {
    async fn start(app: &TestApp, dir: &std::path::Path) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| filegate_tests::free_port()).collect();
        let mut children = Vec::new();
        for port in &ports {
            children.push(Some(replica(app, *port).await));
        }
        let front = filegate_tests::free_port();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server r{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n  maxconn 2000\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
                 retries 2\n  option redispatch\n  retry-on conn-failure\n\
                 frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
                 backend be\n  balance roundrobin\n  option httpchk GET /healthz\n  default-server inter 300ms fall 2 rise 2\n{servers}"
            ),
        )
        .unwrap();
        let haproxy = std::env::var("FILEGATE_FAULT_HAPROXY").unwrap_or_else(|_| "haproxy".into());
        let proxy = tokio::process::Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(&config)
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy (scripts/test installs it)");
        filegate_tests::wait_healthy(front).await;
        Self {
            ports,
            children,
            _proxy: proxy,
            base: format!("http://127.0.0.1:{front}"),
        }
    }

    /// SIGKILLs replica `i`.
    async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    async fn restart(&mut self, app: &TestApp, i: usize) {
        self.children[i] = Some(replica(app, self.ports[i]).await);
    }
}

/// One replica: every background job on and quick, URLs that expire soon, a margin of
/// one second, limits out of the way.
async fn replica(app: &TestApp, port: u16) -> tokio::process::Child {
    let mut command = app.serve_command(port).await;
    // Webhook receivers the test allows (its app's settings), and quick retries.
    let allowed: Vec<String> = app
        .settings
        .ingest
        .import_allowed_hosts
        .iter()
        .map(|a| {
            a.port
                .map_or_else(|| a.host.clone(), |p| format!("{}:{p}", a.host))
        })
        .collect();
    if !allowed.is_empty() {
        command.env("FILEGATE_IMPORT_ALLOWED_HOSTS", allowed.join(","));
    }
    let child = command
        .env("FILEGATE_WEBHOOK_POLL_MS", "100")
        .env("FILEGATE_WEBHOOK_TIMEOUT_SECS", "2")
        .env("FILEGATE_WEBHOOK_RETRY_BASE_MS", "200")
        .env("FILEGATE_WEBHOOK_RETRY_MAX_SECS", "2")
        .env("FILEGATE_RATE_LIMIT_PER_SECOND", "100000")
        .env("FILEGATE_RATE_LIMIT_BURST", "100000")
        .env("FILEGATE_LOG", "warn")
        .env("FILEGATE_WORKERS", "2")
        .env("FILEGATE_S3_TIMEOUT_MS", "2000")
        .env("FILEGATE_PRESIGN_TTL_SECS", "6")
        .env("FILEGATE_UPLOAD_MARGIN_SECS", "1")
        .env("FILEGATE_REAPER_GRACE_SECS", "1")
        .env("FILEGATE_REAPER_INTERVAL_SECS", "1")
        .env("FILEGATE_FINALIZER_INTERVAL_SECS", "1")
        .env("FILEGATE_FINALIZER_MIN_INTERVAL_SECS", "1")
        .env("FILEGATE_FINALIZER_MAX_INTERVAL_SECS", "2")
        .env("FILEGATE_RECONCILE_INTERVAL_SECS", "0")
        .spawn()
        .unwrap();
    filegate_tests::wait_healthy(port).await;
    child
}

/// One client of the mixed load: reserves one to three files (one in seven a spoofed
/// PDF), PUTs each straight to the store, then completes them one by one, as a batch,
/// or not at all (the finalizer's), or deletes one. Every answer is recorded; requests
/// in flight on the killed replica get no answer, or haproxy's 502/503.
async fn mixed_client(
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
    made: Arc<Mutex<Vec<Made>>>,
    statuses: Arc<Mutex<Vec<u16>>>,
    worker: usize,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let status_of = |r: &Result<reqwest::Response, reqwest::Error>| {
        r.as_ref().map_or(0, |r| r.status().as_u16())
    };
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let count = 1 + (n + worker) % 3;
        let entries: Vec<(String, Vec<u8>)> = (0..count)
            .map(|i| {
                if (n + i + worker).is_multiple_of(7) {
                    (format!("w{worker}-{n}-{i}.pdf"), samples::elf())
                } else {
                    let text = format!("worker {worker}, request {n}, file {i}\n").into_bytes();
                    (format!("w{worker}-{n}-{i}.txt"), text)
                }
            })
            .collect();
        let body = json!({ "files": entries.iter().map(|(name, bytes)| json!({
            "name": name, "size_bytes": bytes.len(),
            "checksum_sha256": filegate_tests::sha256_b64(bytes),
        })).collect::<Vec<_>>() });
        let res = http
            .post(format!("{base}/v2/files"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await;
        statuses.lock().unwrap().push(status_of(&res));
        let Ok(res) = res else { continue };
        if res.status() != 200 {
            continue;
        }
        let Ok(created) = res.json::<Value>().await else {
            continue;
        };
        let mut ids = Vec::new();
        for (f, (_, bytes)) in created["files"].as_array().unwrap().iter().zip(&entries) {
            let id: uuid::Uuid = f["file_uuid"].as_str().unwrap().parse().unwrap();
            let mut put = http
                .put(f["file_url"].as_str().unwrap())
                .body(bytes.clone());
            for (k, v) in f["upload_headers"].as_object().unwrap() {
                if k != "Content-Length" {
                    put = put.header(k, v.as_str().unwrap());
                }
            }
            let stored = put.send().await.is_ok_and(|r| r.status() == 200);
            made.lock().unwrap().push(Made {
                id,
                uploaded: stored.then(|| bytes.clone()),
                answered_ready: false,
                deleted: false,
            });
            ids.push(id);
        }
        let ready = |made: &Arc<Mutex<Vec<Made>>>, id: uuid::Uuid| {
            if let Some(m) = made.lock().unwrap().iter_mut().find(|m| m.id == id) {
                m.answered_ready = true;
            }
        };
        match n % 4 {
            0 => {
                for id in &ids {
                    let res = http
                        .post(format!("{base}/v2/files/{id}/complete"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    statuses.lock().unwrap().push(status_of(&res));
                    if let Ok(r) = res
                        && r.status() == 200
                    {
                        ready(&made, *id);
                    }
                }
            }
            1 => {
                let res = http
                    .post(format!("{base}/v2/files/complete"))
                    .bearer_auth(&key)
                    .json(&json!({ "file_uuids": ids }))
                    .send()
                    .await;
                statuses.lock().unwrap().push(status_of(&res));
                if let Ok(r) = res
                    && r.status() == 200
                    && let Ok(answer) = r.json::<Value>().await
                {
                    for f in answer["files"].as_array().unwrap() {
                        if f["status"] == "ready" {
                            ready(&made, f["file_uuid"].as_str().unwrap().parse().unwrap());
                        }
                    }
                }
            }
            2 => {
                let id = ids[0];
                let res = http
                    .delete(format!("{base}/v2/files/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await;
                statuses.lock().unwrap().push(status_of(&res));
                if res.is_ok_and(|r| r.status() == 204)
                    && let Some(m) = made.lock().unwrap().iter_mut().find(|m| m.id == id)
                {
                    m.deleted = true;
                }
            }
            // Never completed: the finalizer's.
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared services: run by scripts/test's fault stage"]
async fn a_replica_killed_under_mixed_load_behind_a_load_balancer_leaves_every_file_settled_and_verified()
 {
    // Every transition is also a webhook delivery, sent by the replicas' workers to a
    // receiver here; one that answers 500 now and then.
    let receiver = Receiver::start().await;
    let allowed = AllowedHost::parse(&receiver.addr.to_string()).unwrap();
    let app = spawn_app_with(move |s| s.ingest.import_allowed_hosts = vec![allowed]).await;
    let endpoint = Answer::of(
        app.request(
            reqwest::Method::POST,
            &format!("/v2/workspaces/{}/webhooks", app.tenant.workspace),
        )
        .json(&json!({ "url": receiver.url() }))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(endpoint.status, 201, "{:?}", endpoint.body);
    let secret = endpoint.body["secret"].as_str().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("filegate-replicas-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut replicas = Replicas::start(&app, &dir).await;
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..6)
        .map(|w| {
            tokio::spawn(mixed_client(
                replicas.base.clone(),
                app.tenant.key.clone(),
                stop.clone(),
                made.clone(),
                statuses.clone(),
                w,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver.set_mode(Mode::Status(500));
    tokio::time::sleep(Duration::from_secs(1)).await;
    receiver.set_mode(Mode::Ack);
    let before_kill = made.lock().unwrap().len();
    replicas.kill(1).await; // SIGKILL, mid-load
    tokio::time::sleep(Duration::from_secs(2)).await;
    replicas.restart(&app, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let made = made.lock().unwrap().clone();
    let statuses = statuses.lock().unwrap().clone();
    assert!(
        before_kill > 20,
        "the load was under way: {before_kill} files"
    );
    assert!(
        made.len() > before_kill,
        "files were made after the kill too"
    );
    // Answers are the contract's (422 for the spoofed PDFs, 409 for a file the
    // finalizer settled first), or the killed replica's missing ones.
    let mut seen = std::collections::BTreeMap::new();
    for s in &statuses {
        *seen.entry(*s).or_insert(0) += 1;
    }
    assert!(
        seen.keys()
            .all(|s| [0, 200, 204, 409, 422, 502, 503].contains(s)),
        "{seen:?}"
    );
    eprintln!("answers by status: {seen:?}; {} files made", made.len());

    // Everything uploaded and not deleted settles: the finalizers of the live
    // replicas take over what the killed one held, once its claims lapse.
    let client = filegate_tests::connect(&app.database_url).await;
    let uploaded: Vec<&Made> = made
        .iter()
        .filter(|m| m.uploaded.is_some() && !m.deleted)
        .collect();
    let ids: Vec<uuid::Uuid> = uploaded.iter().map(|m| m.id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM files WHERE id = ANY($1) AND status = 'pending'",
                &[&ids],
            )
            .await
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} uploaded files still pending a minute after the load"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // No claim outlives its lease by more than a look (the finalizer looks every
    // second at most two seconds apart here).
    let stale: i64 = client
        .query_one(
            "SELECT count(*) FROM files WHERE completion_claim IS NOT NULL
                AND completion_claim_until < now() - interval '3 seconds'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale, 0, "a claim outlived its lease");

    // Every file is in exactly one state, and the state says all it must.
    let rows = client
        .query(
            "SELECT id, status, etag, completed_at, rejection_reason, object_key, upload_key, size_bytes
               FROM files WHERE workspace_id = $1",
            &[&app.tenant.workspace],
        )
        .await
        .unwrap();
    let mut ready_rows = Vec::new();
    for r in &rows {
        let (id, status): (uuid::Uuid, String) = (r.get(0), r.get(1));
        match status.as_str() {
            "ready" => {
                assert!(
                    r.get::<_, Option<String>>(2).is_some(),
                    "{id}: ready has its version"
                );
                assert!(
                    r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(3)
                        .is_some()
                );
                ready_rows.push((id, r.get::<_, String>(5)));
            }
            "rejected" => assert!(r.get::<_, Option<String>>(4).is_some(), "{id}: a reason"),
            "pending" | "expired" => {}
            other => panic!("{id}: status {other}"),
        }
    }
    for m in &made {
        let row = rows.iter().find(|r| r.get::<_, uuid::Uuid>(0) == m.id);
        if m.deleted {
            assert!(row.is_none(), "{}: deleted, yet there", m.id);
            continue;
        }
        if m.answered_ready {
            assert_eq!(
                row.map(|r| r.get::<_, String>(1)).as_deref(),
                Some("ready"),
                "{}: answered ready",
                m.id
            );
        }
    }
    // Every ready file's object is the bytes its client PUT, and those were valid.
    let mut verified = 0;
    for (id, object_key) in &ready_rows {
        let Some(m) = made.iter().find(|m| m.id == *id) else {
            continue; // reserved by a request whose answer was lost
        };
        let sent = m.uploaded.as_ref().expect("a ready file was uploaded");
        let got = app
            .storage
            .read_all(object_key, None)
            .await
            .unwrap()
            .expect("a ready file's object");
        assert!(
            got.bytes == *sent,
            "{id}: the served bytes are the ones verified"
        );
        assert_ne!(
            sent,
            &samples::elf(),
            "{id}: a spoofed PDF never becomes ready"
        );
        verified += 1;
    }
    assert!(verified > 20, "{verified} ready files checked");
    assert_counters_match_rows(&app).await;
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);

    // After one reconciliation, past the URLs' lifetime and margin, every object is a
    // live file's.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let status = app
        .command("reconcile")
        .await
        .env("FILEGATE_PRESIGN_TTL_SECS", "6")
        .env("FILEGATE_UPLOAD_MARGIN_SECS", "1")
        .status()
        .await
        .unwrap();
    assert!(
        status.success(),
        "reconcile found a ready file without its object"
    );
    let live = client
        .query(
            "SELECT object_key, upload_key, status FROM files WHERE status IN ('pending', 'ready')",
            &[],
        )
        .await
        .unwrap();
    let owned: std::collections::HashSet<String> = live
        .iter()
        .flat_map(|r| {
            let (object, upload, status): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            if status == "ready" {
                vec![object]
            } else {
                vec![object, upload]
            }
        })
        .collect();
    let mut continuation = None;
    let mut objects = 0;
    loop {
        let page = app.storage.list_page(continuation).await.unwrap();
        for o in &page.objects {
            objects += 1;
            assert!(owned.contains(&o.key), "{} is no live file's", o.key);
        }
        match page.continuation {
            Some(next) => continuation = Some(next),
            None => break,
        }
    }
    assert!(
        objects >= verified,
        "{objects} objects for {verified} ready files"
    );

    // Webhooks: once every file has left pending (the never-uploaded ones expire), every
    // transition has exactly one delivery, every delivery is a transition, and every
    // one reaches the receiver, verified, whichever replica wrote or sent it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM files WHERE workspace_id = $1 AND status = 'pending'",
                &[&app.tenant.workspace],
            )
            .await
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} files still pending");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = client
        .query(
            "SELECT d.file_id, d.event_type, d.id, f.status
               FROM webhook_deliveries d LEFT JOIN files f ON f.id = d.file_id",
            &[],
        )
        .await
        .unwrap();
    let mut by_file: std::collections::BTreeMap<uuid::Uuid, Vec<String>> = Default::default();
    for e in &events {
        by_file.entry(e.get(0)).or_default().push(e.get(1));
    }
    let rows_now = client
        .query(
            "SELECT id, status FROM files WHERE workspace_id = $1",
            &[&app.tenant.workspace],
        )
        .await
        .unwrap();
    for r in &rows_now {
        let (id, status): (uuid::Uuid, String) = (r.get(0), r.get(1));
        assert_eq!(
            by_file.get(&id).cloned().unwrap_or_default(),
            vec![format!("file.{status}")],
            "{id}: {status}, one event for its one transition"
        );
    }
    for m in made.iter().filter(|m| m.deleted) {
        let got = by_file.get(&m.id).cloned().unwrap_or_default();
        assert!(
            got == ["file.deleted"]
                || got == ["file.ready", "file.deleted"]
                || got == ["file.deleted", "file.ready"],
            "{}: deleted: {got:?}",
            m.id
        );
    }
    for (id, got) in &by_file {
        let row = rows_now.iter().any(|r| r.get::<_, uuid::Uuid>(0) == *id);
        assert!(
            row || got.contains(&"file.deleted".to_owned()),
            "{id}: events {got:?} for a file that is gone without a deletion"
        );
    }
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| e.get::<_, uuid::Uuid>(2).to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: std::collections::BTreeSet<String> = receiver
            .acknowledged()
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        if got.is_superset(&ids) {
            assert_eq!(got, ids, "every acknowledged delivery is a transition's");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} deliveries acknowledged",
            got.intersection(&ids).count(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for r in receiver.received() {
        filegate_client::webhooks::verify(&secret, &r.headers, &r.body).unwrap();
    }
    eprintln!(
        "webhooks: {} deliveries, {} requests received",
        ids.len(),
        receiver.received().len()
    );
    drop(replicas);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared services: run by scripts/test's fault stage"]
async fn the_store_stopped_mid_upload_answers_503_and_leaves_no_file() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    let boundary = "fault-boundary";
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v2/files/-/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.tenant.key
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = |bytes: &[u8]| {
        let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
        out
    };
    let part = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mid.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    );
    socket.write_all(&chunk(part.as_bytes())).await.unwrap();
    socket.write_all(&chunk(&[b'a'; 64 << 10])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctl("garage-stop").await;
    socket.write_all(&chunk(&[b'a'; 64 << 10])).await.unwrap();
    socket
        .write_all(&chunk(format!("\r\n--{boundary}--\r\n").as_bytes()))
        .await
        .unwrap();
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), socket.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    ctl("garage-start").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("unavailable"), "{answer}");
    // The file went with its failed upload: no row, nothing reserved.
    let ws = app.tenant.workspace;
    for _ in 0..50 {
        if app.file_rows(ws).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.file_rows(ws).await, 0);
    assert_counters_match_rows(&app).await;
    // With the store back, an upload works again.
    let ok = filegate_tests::Answer::of(
        app.request(reqwest::Method::POST, "/v2/files/-/uploads")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"after.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
}
