//! `scripts/bench`'s driver: loads a running filegate over HTTP with unique file names,
//! measures the same SQL with pgbench (and the object store with raw HEAD + GET) as the
//! limit, and prints and writes the table. See BENCHMARKS.md.
//!
//! Env: BENCH_DATABASE_URL, BENCH_URL_ON / BENCH_PID_ON (rate limiter on, limits high),
//! BENCH_URL_OFF / BENCH_PID_OFF (limiter off), BENCH_S3_ENDPOINT, BENCH_S3_REGION,
//! BENCH_S3_KEY, BENCH_S3_SECRET, BENCH_BUCKET, BENCH_SECONDS (10),
//! BENCH_CONCURRENCY (16), BENCH_OUT (a markdown file for the table).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate_storage::{Storage, StorageSettings};
use serde_json::{Value, json};
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench"))
}

#[derive(Debug, Default, Clone)]
struct Stats {
    ok: usize,
    elapsed: f64,
    errors: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `concurrency` loops of `op` for `seconds` (or until `op` says there is no more
/// work by returning `None`), timing each call.
async fn drive<F, Fut>(concurrency: usize, seconds: u64, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let (op, stop) = (op.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors, mut n) = (Vec::new(), 0, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    match op(w, n).await {
                        Some(true) => lat.push(t.elapsed()),
                        Some(false) => errors += 1,
                        None => break,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let mut all = Vec::new();
    let mut errors = 0;
    let mut handles = tasks;
    tokio::select! {
        () = &mut deadline => stop.store(true, Ordering::Relaxed),
        () = async { while handles.iter().any(|h| !h.is_finished()) { tokio::time::sleep(Duration::from_millis(20)).await } } => {}
    }
    let elapsed = started.elapsed().as_secs_f64();
    for h in handles.drain(..) {
        let (l, e) = h.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Stats {
        ok: all.len(),
        elapsed,
        errors,
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

/// A 2xx whose body was read whole.
async fn ok(res: reqwest::Result<reqwest::Response>) -> bool {
    match res {
        Ok(r) => {
            let success = r.status().is_success();
            r.bytes().await.is_ok() && success
        }
        Err(_) => false,
    }
}

/// CPU seconds used so far by processes named `filegate`, `postgres`, `garage` and
/// `bench` (this load generator), from /proc (USER_HZ = 100).
fn cpu_seconds_by_process() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if !["filegate", "postgres", "garage", "bench"].contains(&name) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        *out.entry(name.to_owned()).or_insert(0.0) += ticks as f64 / 100.0;
    }
    out
}

fn reset_rss(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// pgbench's tx/s for `sql` with `concurrency` clients for `seconds`.
fn pgbench(db: &str, sql: &str, concurrency: usize, seconds: u64) -> f64 {
    let path = std::env::temp_dir().join(format!("fg-bench-{}.sql", Uuid::new_v4().simple()));
    std::fs::write(&path, sql).unwrap();
    let out = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &concurrency.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&path)
        .arg(db)
        .output()
        .expect("pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(&path);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench failed: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The reservation statement with its parameters written as SQL, for pgbench.
fn reserve_sql(workspace: &str, org: Uuid, key: Uuid, n: usize) -> String {
    let series = format!("generate_series(1, {n})");
    let params = [
        workspace.to_owned(),
        format!("'{org}'::uuid"),
        format!("{}", n * 1000),
        format!("'{key}'::uuid"),
        "now() + interval '15 minutes'".to_owned(),
        format!("ARRAY(SELECT gen_random_uuid() FROM {series})"),
        format!("ARRAY(SELECT gen_random_uuid()::text || '.txt' FROM {series})"),
        format!("array_fill(''::text, ARRAY[{n}])"),
        format!("array_fill(NULL::text, ARRAY[{n}])"),
        format!("array_fill('[]'::jsonb, ARRAY[{n}])"),
        format!("array_fill(NULL::text, ARRAY[{n}])"),
        format!("array_fill('text/plain'::text, ARRAY[{n}])"),
        format!("array_fill(1000::int8, ARRAY[{n}])"),
        format!("array_fill(1000::int8, ARRAY[{n}])"),
        format!("array_fill(NULL::text, ARRAY[{n}])"),
        format!("ARRAY(SELECT 'bench/' || gen_random_uuid() FROM {series})"),
        "NULL::text".to_owned(),
        "NULL::bytea".to_owned(),
        "NULL::jsonb".to_owned(),
        format!("ARRAY(SELECT 'uploads/bench/' || gen_random_uuid() FROM {series})"),
        "now() + interval '2 seconds'".to_owned(),
        // One PUT each: no multipart upload, no part digests, the batch's window.
        format!("array_fill(NULL::text, ARRAY[{n}])"),
        format!("array_fill(NULL::int8, ARRAY[{n}])"),
        format!("array_fill(NULL::int4, ARRAY[{n}])"),
        "'{}'::uuid[]".to_owned(),
        "'{}'::int4[]".to_owned(),
        "'{}'::text[]".to_owned(),
        format!("array_fill(NULL::timestamptz, ARRAY[{n}])"),
    ];
    let mut sql = filegate_db::files::RESERVE_SQL.to_owned();
    for (i, p) in params.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", i + 1), &format!("({p})"));
    }
    format!(
        "\\set w random(0, 999)\n{};\n",
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

struct Row {
    name: &'static str,
    stats: Stats,
    files_per_req: usize,
    rss: f64,
    limit: Option<(String, f64)>,
    target: &'static str,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = env("BENCH_DATABASE_URL");
    let (url_on, pid_on) = (env("BENCH_URL_ON"), env("BENCH_PID_ON"));
    let (url_off, pid_off) = (env("BENCH_URL_OFF"), env("BENCH_PID_OFF"));
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let conc: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let client = filegate_tests::connect(&db).await;

    // 1000 workspaces with deterministic ids (pgbench picks them by number), one key.
    let org = Uuid::new_v4();
    client
        .execute(
            "INSERT INTO organizations (id, name) VALUES ($1, 'bench')",
            &[&org],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types)
             SELECT md5('fgbench' || w)::uuid, $1, 'w' || w, 1000000000000000, 5242880,
                    ARRAY['application/pdf', 'text/plain', 'text/markdown', 'text/html']
               FROM generate_series(0, 999) AS w",
            &[&org],
        )
        .await
        .unwrap();
    let ws: Vec<Uuid> = client
        .query(
            "SELECT md5('fgbench' || w)::uuid FROM generate_series(0, 999) AS w ORDER BY w",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let minted = filegate::auth::mint().unwrap();
    client
        .execute(
            "INSERT INTO api_keys (id, organization_id, default_workspace_id, secret_sha256) VALUES ($1, $2, $3, $4)",
            &[&minted.id, &org, &ws[0], &minted.sha256.as_slice()],
        )
        .await
        .unwrap();
    let key = Arc::new(minted.secret.clone());
    let ws = Arc::new(ws);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let mut rows: Vec<Row> = Vec::new();

    let reserve = |n_files: usize, spread: bool| {
        let (http, key, ws, url) = (http.clone(), key.clone(), ws.clone(), url_on.clone());
        move |w: usize, n: u64| {
            let (http, key, url) = (http.clone(), key.clone(), url.clone());
            let target = if spread {
                ws[(w * 7919 + n as usize * 104_729) % ws.len()]
            } else {
                ws[0]
            };
            async move {
                let files: Vec<Value> = (0..n_files)
                    .map(|i| json!({ "name": format!("{}-{i}.txt", Uuid::new_v4().simple()), "size_bytes": 1000 }))
                    .collect();
                let res = http
                    .post(format!("{url}/v2/files"))
                    .bearer_auth(&*key)
                    .json(&json!({ "workspace_uuid": target, "files": files }))
                    .send()
                    .await;
                Some(ok(res).await)
            }
        }
    };
    for (name, n_files, spread, target) in [
        (
            "(a) 1-file reservations, 1000 workspaces",
            1,
            true,
            "≥ 0.6 of pgbench",
        ),
        (
            "(b) 1-file reservations, one workspace",
            1,
            false,
            "≥ 0.8 of pgbench",
        ),
        (
            "(c) 50-file reservations, 1000 workspaces",
            50,
            true,
            "≥ 20,000 files/s",
        ),
    ] {
        reset_rss(&pid_on);
        let stats = drive(conc, seconds, reserve(n_files, spread)).await;
        let rss = peak_rss_mib(&pid_on);
        let hot = format!("'{}'::uuid", ws[0]);
        let target_ws = if spread {
            "md5('fgbench' || :w)::uuid"
        } else {
            hot.as_str()
        };
        let tps = pgbench(
            &db,
            &reserve_sql(target_ws, org, minted.id, n_files),
            conc,
            seconds,
        );
        println!("{name}: {:.0} req/s vs pgbench {tps:.0} tx/s", stats.rps);
        rows.push(Row {
            name,
            stats,
            files_per_req: n_files,
            rss,
            limit: Some(("pgbench tx/s".into(), tps)),
            target,
        });
    }

    // (d) completions: uploaded objects, completed once each; the limit is raw HEAD + ranged GET.
    let storage = Storage::new(&StorageSettings {
        endpoint: Some(env("BENCH_S3_ENDPOINT")),
        public_endpoint: None,
        region: env("BENCH_S3_REGION"),
        bucket: env("BENCH_BUCKET"),
        access_key_id: Some(env("BENCH_S3_KEY")),
        secret_access_key: Some(env("BENCH_S3_SECRET").into()),
        path_style: true,
        timeout: Duration::from_secs(10),
    })
    .await;
    let body = vec![b'x'; 1000];
    let prepared: Arc<Mutex<Vec<(Uuid, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let prep = {
        let (http, key, ws, url, prepared, body) = (
            http.clone(),
            key.clone(),
            ws.clone(),
            url_on.clone(),
            prepared.clone(),
            body.clone(),
        );
        move |w: usize, n: u64| {
            let (http, key, url, prepared, body) = (
                http.clone(),
                key.clone(),
                url.clone(),
                prepared.clone(),
                body.clone(),
            );
            let target = ws[(w + n as usize) % ws.len()];
            async move {
                if prepared.lock().unwrap().len() >= 8000 {
                    return None;
                }
                let files: Vec<Value> = (0..50).map(|_| json!({ "name": format!("{}.txt", Uuid::new_v4().simple()), "size_bytes": 1000 })).collect();
                let res: Value = http
                    .post(format!("{url}/v2/files"))
                    .bearer_auth(&*key)
                    .json(&json!({ "workspace_uuid": target, "files": files }))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                for f in res["files"].as_array()? {
                    let mut put = http.put(f["file_url"].as_str()?).body(body.clone());
                    for (k, v) in f["upload_headers"].as_object()? {
                        if k != "Content-Length" {
                            put = put.header(k, v.as_str()?);
                        }
                    }
                    if put.send().await.ok()?.status().is_success() {
                        // The raw limit reads the very objects completion inspects.
                        prepared.lock().unwrap().push((
                            f["file_uuid"].as_str()?.parse().ok()?,
                            filegate_domain::keys::upload_key(f["remote_file_path"].as_str()?),
                        ));
                    }
                }
                Some(true)
            }
        }
    };
    drive(conc, 60, prep).await;
    let objects: Vec<(Uuid, String)> = prepared.lock().unwrap().clone();
    println!("(d) prepared {} uploaded objects", objects.len());
    let queue = Arc::new(Mutex::new(
        objects.iter().map(|(id, _)| *id).collect::<VecDeque<_>>(),
    ));
    reset_rss(&pid_on);
    let complete = {
        let (http, key, url, queue) = (http.clone(), key.clone(), url_on.clone(), queue.clone());
        move |_: usize, _: u64| {
            let (http, key, url) = (http.clone(), key.clone(), url.clone());
            let next = queue.lock().unwrap().pop_front();
            async move {
                let id = next?;
                let res = http
                    .post(format!("{url}/v2/files/{id}/complete"))
                    .bearer_auth(&*key)
                    .send()
                    .await;
                Some(ok(res).await)
            }
        }
    };
    let before = http
        .get(format!("{url_on}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cpu_before = cpu_seconds_by_process();
    let stats = drive(conc, seconds, complete).await;
    let cpu_after = cpu_seconds_by_process();
    let rss = peak_rss_mib(&pid_on);
    let cores = std::thread::available_parallelism().map_or(2.0, |n| n.get() as f64);
    let cpu_split: Vec<String> = cpu_after
        .iter()
        .map(|(name, after)| {
            let used = after - cpu_before.get(name).copied().unwrap_or(0.0);
            format!("{name} {:.0}%", used / stats.elapsed / cores * 100.0)
        })
        .collect();
    let after = http
        .get(format!("{url_on}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mean_ms = |series: &str| {
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let v = |text: &str, suffix: &str| {
            let prefix = if labels.is_empty() {
                format!("{name}_{suffix} ")
            } else {
                format!("{name}_{suffix}{{{labels} ")
            };
            text.lines()
                .find(|l| l.starts_with(&prefix))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let n = v(&after, "count") - v(&before, "count");
        if n > 0.0 {
            (v(&after, "sum") - v(&before, "sum")) / n * 1000.0
        } else {
            0.0
        }
    };
    let breakdown = format!(
        "completion (d), mean ms inside filegate: whole request {:.2}, HeadObject {:.2}, ranged GetObject {:.2} (concurrent), CopyObject {:.2}",
        mean_ms(
            "filegate_http_request_duration_seconds{method=\"POST\",route=\"/v2/files/{file_uuid}/complete\",status=\"200\"}"
        ),
        mean_ms("filegate_object_store_call_duration_seconds{op=\"head_object\",outcome=\"ok\"}"),
        mean_ms(
            "filegate_object_store_call_duration_seconds{op=\"get_object_range\",outcome=\"ok\"}"
        ),
        mean_ms("filegate_object_store_call_duration_seconds{op=\"copy_object\",outcome=\"ok\"}"),
    );
    let breakdown = format!(
        "{breakdown}; CPU of the machine during (d): {}",
        cpu_split.join(", ")
    );
    println!("{breakdown}");
    let keys = Arc::new(objects.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>());
    let raw = {
        let (storage, keys) = (storage.clone(), keys.clone());
        move |w: usize, n: u64| {
            let (storage, key) = (
                storage.clone(),
                keys[(w * 7919 + n as usize) % keys.len()].clone(),
            );
            async move {
                let head = storage.head(&key).await;
                let get = storage.read_prefix(&key, 8192).await;
                Some(matches!((head, get), (Ok(Some(_)), Ok(Some(_)))))
            }
        }
    };
    let raw_stats = drive(conc, seconds, raw).await;
    rows.push(Row {
        name: "(d) completions (HEAD + ranged GET + copy + update)",
        stats,
        files_per_req: 1,
        rss,
        limit: Some(("raw HEAD+GET/s".into(), raw_stats.rps)),
        target: "≥ 0.7 of raw HEAD+GET",
    });

    // (e) list on a workspace of 1,000,000 files: first page and a deep page.
    let big = ws[999];
    client
        .batch_execute(&format!(
            "SET statement_timeout = 0;
             INSERT INTO files (id, workspace_id, name, path, labels, content_type, size_bytes, reserved_bytes,
                                status, object_key, upload_key, created_by, created_at, upload_expires_at)
             SELECT gen_random_uuid(), '{big}', 'f' || i || '.txt', 'p/' || (i % 100) || '/', ARRAY['l' || (i % 10)],
                    'text/plain', 10, 10, 'ready', 'big/' || i, 'uploads/big/' || i, '{}',
                    now() - make_interval(secs => i), now()
               FROM generate_series(1, 1000000) AS i;",
            minted.id
        ))
        .await
        .unwrap();
    // Vacuumed and analyzed, as a workspace in steady state is: autovacuum must not run
    // inside the measurement.
    client
        .batch_execute("VACUUM (ANALYZE) files")
        .await
        .unwrap();
    let mut cursor: Option<String> = None;
    for _ in 0..900 {
        let q = cursor
            .as_ref()
            .map_or_else(String::new, |c| format!("&cursor={c}"));
        let page: Value = http
            .get(format!(
                "{url_on}/v2/files?workspace_uuid={big}&limit=1000{q}"
            ))
            .bearer_auth(&*key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let deep = cursor.expect("a cursor 900,000 files deep");
    let mut saturation = Vec::new();
    for (name, query) in [
        (
            "(e) list 1M-file workspace, first page (4 clients)",
            format!("workspace_uuid={big}&limit=100"),
        ),
        (
            "(e) list 1M-file workspace, page at 900,000 (4 clients)",
            format!("workspace_uuid={big}&limit=100&cursor={deep}"),
        ),
    ] {
        reset_rss(&pid_on);
        let list = {
            let (http, key, url, query) =
                (http.clone(), key.clone(), url_on.clone(), query.clone());
            move |_: usize, _: u64| {
                let (http, key, url, query) =
                    (http.clone(), key.clone(), url.clone(), query.clone());
                async move {
                    let res = http
                        .get(format!("{url}/v2/files?{query}"))
                        .bearer_auth(&*key)
                        .send()
                        .await;
                    Some(ok(res).await)
                }
            }
        };
        // Latency at a moderate load (four clients); at sixteen the two cores saturate
        // and p99 measures the queue, which is printed alongside.
        let stats = drive(4, seconds, list.clone()).await;
        let saturated = drive(conc, (seconds / 2).max(2), list).await;
        println!(
            "{name}: at {conc} clients {:.0} req/s, p99 {:.2} ms",
            saturated.rps, saturated.p99_ms
        );
        saturation.push(format!(
            "{name} at {conc} clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            saturated.rps, saturated.p50_ms, saturated.p99_ms
        ));
        let rss = peak_rss_mib(&pid_on);
        rows.push(Row {
            name,
            stats,
            files_per_req: 100,
            rss,
            limit: None,
            target: "p99 < 10 ms",
        });
    }

    // (f) the rate limiter on (limits high) versus off, on a cheap authenticated route.
    // Alternating short rounds, so drift in the machine's state weighs on both alike.
    let mut f = vec![(Stats::default(), 0.0f64), (Stats::default(), 0.0f64)];
    for _round in 0..4 {
        for (i, (url, pid)) in [(&url_on, &pid_on), (&url_off, &pid_off)]
            .into_iter()
            .enumerate()
        {
            reset_rss(pid);
            let usage = {
                let (http, key, url, w) = (http.clone(), key.clone(), url.clone(), ws[1]);
                move |_: usize, _: u64| {
                    let (http, key, url) = (http.clone(), key.clone(), url.clone());
                    async move {
                        let res = http
                            .get(format!("{url}/v2/workspaces/{w}/usage"))
                            .bearer_auth(&*key)
                            .send()
                            .await;
                        Some(ok(res).await)
                    }
                }
            };
            let s = drive(conc, (seconds / 4).max(2), usage).await;
            let acc = &mut f[i];
            acc.0.ok += s.ok;
            acc.0.elapsed += s.elapsed;
            acc.0.errors += s.errors;
            acc.0.p50_ms += s.p50_ms / 4.0;
            acc.0.p99_ms += s.p99_ms / 4.0;
            acc.1 = acc.1.max(peak_rss_mib(pid));
        }
    }
    for acc in &mut f {
        acc.0.rps = acc.0.ok as f64 / acc.0.elapsed;
    }
    let (off, _) = f[1].clone();
    rows.push(Row {
        name: "(f) usage route, rate limiter on (limits high)",
        stats: f[0].0.clone(),
        files_per_req: 0,
        rss: f[0].1,
        limit: Some(("limiter off req/s".into(), off.rps)),
        target: "≥ 0.97 of limiter off",
    });
    rows.push(Row {
        name: "(f) usage route, rate limiter off",
        stats: off,
        files_per_req: 0,
        rss: f[1].1,
        limit: None,
        target: "",
    });

    let mut table = String::from(
        "| scenario | req/s | files/s | p50 ms | p99 ms | peak RSS MiB | limit | ratio | target |\n|---|---:|---:|---:|---:|---:|---|---:|---|\n",
    );
    for r in &rows {
        let files = if r.files_per_req == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}", r.stats.rps * r.files_per_req as f64)
        };
        let (limit, ratio) = match &r.limit {
            Some((what, v)) => (format!("{v:.0} {what}"), format!("{:.2}", r.stats.rps / v)),
            None => ("-".into(), "-".into()),
        };
        table.push_str(&format!(
            "| {} | {:.0} | {files} | {:.2} | {:.2} | {:.1} | {limit} | {ratio} | {} |\n",
            r.name, r.stats.rps, r.stats.p50_ms, r.stats.p99_ms, r.rss, r.target
        ));
        if r.stats.errors > 0 {
            table.push_str(&format!(
                "| ↳ {} errors in that scenario | | | | | | | | |\n",
                r.stats.errors
            ));
        }
    }
    table.push_str(&format!("\n{breakdown}\n"));
    for line in &saturation {
        table.push_str(&format!("\n{line}\n"));
    }
    println!("\n{table}");
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(out, table).unwrap();
    }
}
