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

use futures_util::StreamExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate_storage::{Storage, StorageSettings};

mod instance;
mod instructions;
mod outbox;
mod peer;
mod processing;
mod scale;
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
    for h in handles.drain(..) {
        let (l, e) = h.await.unwrap();
        all.extend(l);
        errors += e;
    }
    // Operations in flight at the deadline finish and count, so the time they took
    // counts too (a 50-object batch takes about a second).
    let elapsed = started.elapsed().as_secs_f64();
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

/// A boxed operation of [`drive`].
type Op = std::pin::Pin<Box<dyn Future<Output = Option<bool>> + Send>>;

/// `POST /v2/files/{id}/complete`; true when it answered 2xx with a ready file.
async fn complete_one(target: &Target, id: Uuid) -> bool {
    let res = target
        .http
        .post(format!("{}/v2/files/{id}/complete", target.url))
        .bearer_auth(&*target.key)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .is_ok_and(|file| file["status"] == "ready"),
        _ => false,
    }
}

/// Completes each of `objects` once, in order, then stops: the op of (d).
fn complete_each(
    target: &Target,
    objects: &[(Uuid, String)],
) -> impl Fn(usize, u64) -> Op + Clone + Send + Sync + 'static {
    let queue = Arc::new(Mutex::new(
        objects.iter().map(|(id, _)| *id).collect::<VecDeque<_>>(),
    ));
    let target = target.clone();
    move |_: usize, _: u64| {
        let target = target.clone();
        let next = queue.lock().unwrap().pop_front();
        Box::pin(async move { Some(complete_one(&target, next?).await) })
    }
}

/// Completes the queued `objects` 50 a request (`POST /v2/files/complete`) until fewer
/// are left: the op of (d').
fn complete_batches(
    target: &Target,
    objects: &[(Uuid, String)],
) -> impl Fn(usize, u64) -> Op + Clone + Send + Sync + 'static {
    let queue = Arc::new(Mutex::new(
        objects.iter().map(|(id, _)| *id).collect::<VecDeque<_>>(),
    ));
    let target = target.clone();
    move |_: usize, _: u64| {
        let target = target.clone();
        let ids: Vec<Uuid> = {
            let mut q = queue.lock().unwrap();
            let n = q.len().min(50);
            q.drain(..n).collect()
        };
        Box::pin(async move {
            if ids.len() < 50 {
                return None;
            }
            let res: Value = target
                .http
                .post(format!("{}/v2/files/complete", target.url))
                .bearer_auth(&*target.key)
                .json(&json!({ "file_uuids": ids }))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(res["files"].as_array().is_some_and(|files| {
                files.len() == 50 && files.iter().all(|f| f["status"] == "ready")
            }))
        })
    }
}

/// Reservations of `n` files of unique names, into `ws[0]` or spread over `ws`.
fn reserve_op(
    target: &Target,
    ws: &Arc<Vec<Uuid>>,
    n: usize,
    spread: bool,
) -> impl Fn(usize, u64) -> Op + Clone + Send + Sync + 'static {
    let (target, ws) = (target.clone(), ws.clone());
    move |w: usize, i: u64| {
        let target = target.clone();
        let workspace = if spread {
            ws[(w * 7919 + i as usize * 104_729) % ws.len()]
        } else {
            ws[0]
        };
        Box::pin(async move {
            let files: Vec<Value> = (0..n)
                .map(|_| json!({ "name": format!("{}.txt", Uuid::new_v4().simple()), "size_bytes": 1000 }))
                .collect();
            let res = target
                .http
                .post(format!("{}/v2/files", target.url))
                .bearer_auth(&*target.key)
                .json(&json!({ "workspace_uuid": workspace, "files": files }))
                .send()
                .await;
            Some(ok(res).await)
        })
    }
}

/// CPU seconds used so far by processes named `filegate`, `postgres`, `garage`,
/// `bench` (this load generator), `ffmpeg` and `ffprobe` (the video processor's
/// tools), from /proc (USER_HZ = 100).
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
        if ![
            "filegate", "postgres", "garage", "bench", "ffmpeg", "ffprobe",
        ]
        .contains(&name)
        {
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
        // Sizes declared: presigned PUTs, no ingest key, no import.
        format!("array_fill(NULL::bytea, ARRAY[{n}])"),
        format!("array_fill(NULL::text, ARRAY[{n}])"),
        // No batch.
        format!("array_fill(NULL::text, ARRAY[{n}])"),
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
    /// filegate's own CPU per file, in ms (completions only).
    cpu_ms: Option<f64>,
}

/// Whether `BENCH_ONLY` (a comma-separated list of scenario letters, a to m)
/// asks for this scenario; all run when it is unset.
fn runs(letter: &str) -> bool {
    std::env::var("BENCH_ONLY")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .is_none_or(|o| o.split(',').any(|x| x.trim() == letter))
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(2.0, |n| n.get() as f64)
}

/// A filegate to load: its address, an HTTP client, the key.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    key: Arc<String>,
    url: String,
}

/// What one measured scenario gave: its stats and its limit's, the CPU each process
/// used while filegate was driven, filegate's peak RSS, and its metrics before and after.
struct Measured {
    stats: Stats,
    limit: Stats,
    cpu: Cpu,
    /// The CPU each process used while the limit ran.
    limit_cpu: Cpu,
    rss: f64,
    before: String,
    after: String,
}

/// Drives `op` against `target` (process `pid`) and `limit` (the same work without
/// filegate) with `clients` loops each, in alternating rounds (filegate first, then the
/// limit first), `seconds` in all for each, so that a drift in the machine's state (the
/// store settling after the preparation) weighs on both alike.
async fn measure<F, Fut, L, LFut>(
    target: &Target,
    pid: &str,
    clients: usize,
    seconds: u64,
    op: F,
    limit: L,
) -> Measured
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
    L: Fn(usize, u64) -> LFut + Clone + Send + Sync + 'static,
    LFut: Future<Output = Option<bool>> + Send,
{
    const ROUNDS: u64 = 2;
    let round = (seconds / ROUNDS).max(1);
    // The store finishes the preparation's writes first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    reset_rss(pid);
    let before = metrics(target).await;
    let (mut stats, mut limit_stats) = (Vec::new(), Vec::new());
    let mut cpu = Cpu {
        used: std::collections::BTreeMap::new(),
        elapsed: 0.0,
    };
    let mut limit_cpu = Cpu {
        used: std::collections::BTreeMap::new(),
        elapsed: 0.0,
    };
    for r in 0..ROUNDS {
        if r % 2 == 1 {
            let (s, used) = drive_counted(clients, round, limit.clone()).await;
            limit_cpu.add(&used);
            limit_stats.push(s);
        }
        let (s, used) = drive_counted(clients, round, op.clone()).await;
        cpu.add(&used);
        stats.push(s);
        if r % 2 == 0 {
            let (s, used) = drive_counted(clients, round, limit.clone()).await;
            limit_cpu.add(&used);
            limit_stats.push(s);
        }
    }
    let rss = peak_rss_mib(pid);
    let after = metrics(target).await;
    Measured {
        stats: merged(&stats),
        limit: merged(&limit_stats),
        cpu,
        limit_cpu,
        rss,
        before,
        after,
    }
}

/// [`drive`], and the CPU each process used meanwhile.
async fn drive_counted<F, Fut>(clients: usize, seconds: u64, op: F) -> (Stats, Cpu)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
{
    let before = cpu_seconds_by_process();
    let stats = drive(clients, seconds, op).await;
    let used = cpu_used(&before, stats.elapsed);
    (stats, used)
}

/// Rounds of one scenario as one: counts add up, percentiles are the rounds' mean.
fn merged(rounds: &[Stats]) -> Stats {
    let n = rounds.len().max(1) as f64;
    let mut all = Stats::default();
    for r in rounds {
        all.ok += r.ok;
        all.errors += r.errors;
        all.elapsed += r.elapsed;
        all.p50_ms += r.p50_ms / n;
        all.p99_ms += r.p99_ms / n;
    }
    all.rps = all.ok as f64 / all.elapsed.max(f64::EPSILON);
    all
}

/// `/metrics` of the target, as text.
async fn metrics(target: &Target) -> String {
    target
        .http
        .get(format!("{}/metrics", target.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The mean, in ms, of a histogram series between two scrapes.
fn mean_ms(before: &str, after: &str, series: &str) -> f64 {
    let (sum, n) = histogram_delta(before, after, series);
    if n > 0.0 { sum / n * 1000.0 } else { 0.0 }
}

/// A histogram series' (sum, count) growth between two scrapes.
fn histogram_delta(before: &str, after: &str, series: &str) -> (f64, f64) {
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
    (
        v(after, "sum") - v(before, "sum"),
        v(after, "count") - v(before, "count"),
    )
}

/// Requests per grouped statement of `kind` (claim, settle, reserve) between two scrapes.
fn requests_per(before: &str, after: &str, kind: &str) -> f64 {
    let (requests, statements) = histogram_delta(
        before,
        after,
        &format!("filegate_grouped_requests{{statement=\"{kind}\"}}"),
    );
    if statements > 0.0 {
        requests / statements
    } else {
        0.0
    }
}

/// Files moved out of pending per settling statement between two scrapes.
fn per_statement(before: &str, after: &str) -> f64 {
    let (files, statements) =
        histogram_delta(before, after, "filegate_completion_commit_transitions");
    if statements > 0.0 {
        files / statements
    } else {
        0.0
    }
}

/// CPU seconds each process used over a measurement.
struct Cpu {
    used: std::collections::BTreeMap<String, f64>,
    elapsed: f64,
}

fn cpu_used(before: &std::collections::BTreeMap<String, f64>, elapsed: f64) -> Cpu {
    Cpu {
        used: cpu_seconds_by_process()
            .into_iter()
            .map(|(name, after)| {
                let used = after - before.get(&name).copied().unwrap_or(0.0);
                (name, used)
            })
            .collect(),
        elapsed,
    }
}

impl Cpu {
    fn add(&mut self, other: &Cpu) {
        for (name, used) in &other.used {
            *self.used.entry(name.clone()).or_insert(0.0) += used;
        }
        self.elapsed += other.elapsed;
    }

    /// Each process's CPU ms per file, e.g. `filegate 0.41, postgres 0.30`.
    fn per_file(&self, files: usize) -> String {
        self.used
            .iter()
            .map(|(name, s)| format!("{name} {:.2}", s * 1000.0 / files.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each process's share of the machine, e.g. `filegate 24%`.
    fn share(&self, cores: f64) -> String {
        self.used
            .iter()
            .map(|(name, s)| format!("{name} {:.0}%", s / self.elapsed / cores * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn filegate_ms(&self, files: usize) -> Option<f64> {
        (files > 0)
            .then(|| self.used.get("filegate").copied().unwrap_or(0.0) * 1000.0 / files as f64)
    }
}

/// Reserves 50 files a request into the 1000 workspaces and PUTs 1000 bytes to each,
/// until `count` are uploaded (or 90 s pass): the uploaded files and their upload keys.
/// PUTs `body` to a reserved file's upload URL with the headers its reservation
/// named; whether the store took it (`None`: the reservation had no URL).
async fn put_upload(http: &reqwest::Client, file: &Value, body: Vec<u8>) -> Option<bool> {
    let mut put = http.put(file["file_url"].as_str()?).body(body);
    for (k, v) in file["upload_headers"].as_object()? {
        if k != "Content-Length" {
            put = put.header(k, v.as_str()?);
        }
    }
    Some(put.send().await.ok()?.status().is_success())
}

async fn prepare(
    target: &Target,
    ws: &Arc<Vec<Uuid>>,
    conc: usize,
    count: usize,
) -> Vec<(Uuid, String)> {
    let prepared: Arc<Mutex<Vec<(Uuid, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let prep = {
        let (target, ws, prepared) = (target.clone(), ws.clone(), prepared.clone());
        move |w: usize, n: u64| {
            let (target, prepared) = (target.clone(), prepared.clone());
            let workspace = ws[(w + n as usize) % ws.len()];
            async move {
                if prepared.lock().unwrap().len() >= count {
                    return None;
                }
                let files: Vec<Value> = (0..50).map(|_| json!({ "name": format!("{}.txt", Uuid::new_v4().simple()), "size_bytes": 1000 })).collect();
                let res: Value = target
                    .http
                    .post(format!("{}/v2/files", target.url))
                    .bearer_auth(&*target.key)
                    .json(&json!({ "workspace_uuid": workspace, "files": files }))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let puts = res["files"].as_array()?.clone().into_iter().map(|f| {
                    let http = target.http.clone();
                    async move {
                        if !put_upload(&http, &f, vec![b'x'; 1000]).await? {
                            return None;
                        }
                        let id: Uuid = f["file_uuid"].as_str()?.parse().ok()?;
                        let key =
                            filegate_domain::keys::upload_key(f["remote_file_path"].as_str()?);
                        Some((id, key))
                    }
                });
                let uploaded: Vec<_> = futures_util::stream::iter(puts)
                    .buffer_unordered(8)
                    .collect()
                    .await;
                prepared
                    .lock()
                    .unwrap()
                    .extend(uploaded.into_iter().flatten());
                Some(true)
            }
        }
    };
    drive(conc, 90, prep).await;
    std::mem::take(&mut *prepared.lock().unwrap())
}

/// The store calls of completing `batch` uploaded objects at a time, as completion makes
/// them (HeadObject and a ranged GetObject at once, then CopyObject of that version to
/// another key), `batch` objects 16 at a time: the limit of (d) and (d').
fn raw_completion(
    storage: &Storage,
    objects: &[(Uuid, String)],
    batch: usize,
) -> impl Fn(usize, u64) -> std::pin::Pin<Box<dyn Future<Output = Option<bool>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    let keys = Arc::new(objects.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>());
    let storage = storage.clone();
    move |w: usize, n: u64| {
        let (storage, keys) = (storage.clone(), keys.clone());
        let first = (w * 7919 + n as usize * batch) % keys.len().max(1);
        Box::pin(async move {
            let one = |key: String| {
                let storage = storage.clone();
                async move {
                    let (head, get) =
                        tokio::join!(storage.head(&key), storage.read_prefix(&key, 8192));
                    let (Ok(Some(head)), Ok(Some(_))) = (head, get) else {
                        return false;
                    };
                    let Some(etag) = head.etag else { return false };
                    let copy = format!("bench-raw/{}", Uuid::new_v4().simple());
                    matches!(
                        storage.copy(&key, &copy, &etag, head.size).await,
                        Ok(filegate_storage::CopyOutcome::Copied { .. })
                    )
                }
            };
            let results: Vec<bool> = futures_util::stream::iter(
                (0..batch).map(|i| one(keys[(first + i) % keys.len()].clone())),
            )
            .buffer_unordered(16)
            .collect()
            .await;
            Some(results.iter().all(|ok| *ok))
        })
    }
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

    let Tenant { org, ws, minted } = tenant(&client).await;
    let key = Arc::new(minted.secret.clone());
    let ws = Arc::new(ws);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let mut rows: Vec<Row> = Vec::new();

    let reserve = |n_files: usize, spread: bool, declared: bool| {
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
                    .map(|i| {
                        let name = format!("{}-{i}.txt", Uuid::new_v4().simple());
                        if declared {
                            json!({ "name": name, "size_bytes": 1000 })
                        } else {
                            // No size: an upload URL of filegate's own (an HMAC).
                            json!({ "name": name })
                        }
                    })
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
    for (name, n_files, spread, declared, target) in [
        (
            "(a) 1-file reservations, 1000 workspaces",
            1,
            true,
            true,
            "≥ 0.6 of pgbench",
        ),
        (
            "(a') 1-file reservations, size undeclared, 1000 workspaces",
            1,
            true,
            false,
            "≥ 0.6 of pgbench",
        ),
        (
            "(b) 1-file reservations, one workspace",
            1,
            false,
            true,
            "≥ 0.8 of pgbench",
        ),
        (
            "(c) 50-file reservations, 1000 workspaces",
            50,
            true,
            true,
            "≥ 20,000 files/s",
        ),
    ]
    .into_iter()
    .filter(|(name, ..)| runs(&name[1..2]))
    {
        reset_rss(&pid_on);
        let stats = drive(conc, seconds, reserve(n_files, spread, declared)).await;
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
            cpu_ms: None,
            rss,
            limit: Some(("pgbench tx/s".into(), tps)),
            target,
        });
    }

    // (d) completions: uploaded objects, completed once each; the limit is the store
    // calls a completion makes (HEAD and ranged GET at once, then the copy to the served
    // key), through the same SDK, on the same objects. (d') the same, 50 files a request.
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
    let mut breakdown = String::new();
    if runs("d") {
        let target = Target {
            http: http.clone(),
            key: key.clone(),
            url: url_on.clone(),
        };
        let objects = prepare(&target, &ws, conc, 8000).await;
        println!("(d) prepared {} uploaded objects", objects.len());
        // Statistics that know the pending files, as autovacuum keeps them: planned
        // with none, a claim may walk every pending file by the expiry index.
        client.batch_execute("ANALYZE files").await.unwrap();
        let complete = complete_each(&target, &objects);
        let Measured {
            stats,
            limit: raw_stats,
            cpu,
            rss,
            before,
            after,
            ..
        } = measure(
            &target,
            &pid_on,
            conc,
            seconds,
            complete,
            raw_completion(&storage, &objects, 1),
        )
        .await;
        let mean = |series: &str| mean_ms(&before, &after, series);
        breakdown.push_str(&format!(
            "(d) mean ms inside filegate: whole request {:.2}, HeadObject {:.2}, ranged GetObject {:.2} (concurrent), CopyObject {:.2}; \
             files per settling statement {:.1}, completions per claiming statement {:.1}; CPU ms per completion: {}; CPU of the machine: {}; the limit: {} calls failed\n",
            mean(
                "filegate_http_request_duration_seconds{method=\"POST\",route=\"/v2/files/{file_uuid}/complete\",status=\"200\"}"
            ),
            mean("filegate_object_store_call_duration_seconds{op=\"head_object\",outcome=\"ok\"}"),
            mean("filegate_object_store_call_duration_seconds{op=\"get_object_range\",outcome=\"ok\"}"),
            mean("filegate_object_store_call_duration_seconds{op=\"copy_object\",outcome=\"ok\"}"),
            per_statement(&before, &after),
            requests_per(&before, &after, "claim"),
            cpu.per_file(stats.ok),
            cpu.share(cores()),
            raw_stats.errors,
        ));
        rows.push(Row {
            name: "(d) completions (HEAD + ranged GET, copy, settle)",
            files_per_req: 1,
            rss,
            limit: Some(("raw HEAD+GET+copy/s".into(), raw_stats.rps)),
            target: "≥ 0.7 of raw HEAD+GET+copy",
            cpu_ms: cpu.filegate_ms(stats.ok),
            stats,
        });

        // (d') the same calls, 50 files a request, a quarter of the clients.
        let clients = (conc / 4).max(1);
        let objects = prepare(&target, &ws, conc, 20_000).await;
        println!("(d') prepared {} uploaded objects", objects.len());
        client.batch_execute("ANALYZE files").await.unwrap();
        let complete = complete_batches(&target, &objects);
        let Measured {
            stats,
            limit: raw_stats,
            cpu,
            rss,
            before,
            after,
            ..
        } = measure(
            &target,
            &pid_on,
            clients,
            seconds,
            complete,
            raw_completion(&storage, &objects, 50),
        )
        .await;
        breakdown.push_str(&format!(
            "(d') mean ms per request inside filegate {:.2}; files per settling statement {:.1}; CPU ms per completion: {}; CPU of the machine: {}; the limit: {} calls failed\n",
            mean_ms(
                &before,
                &after,
                "filegate_http_request_duration_seconds{method=\"POST\",route=\"/v2/files/complete\",status=\"200\"}"
            ),
            per_statement(&before, &after),
            cpu.per_file(stats.ok * 50),
            cpu.share(cores()),
            raw_stats.errors,
        ));
        rows.push(Row {
            name: "(d') batch completions, 50 files a request",
            files_per_req: 50,
            rss,
            limit: Some(("raw 50-object batches/s".into(), raw_stats.rps)),
            target: "≥ 0.9 of raw (same calls, same clients)",
            cpu_ms: cpu.filegate_ms(stats.ok * 50),
            stats,
        });
    }

    // (g) uploads through filegate: 1 MiB and 64 MiB bodies in POST /v2/files/-/uploads
    // (streamed into the store, verified, ready) against raw PutObject of the same
    // bodies through the same SDK; then filegate's peak RSS under 8 concurrent 256 MiB
    // uploads.
    if runs("g") {
        let target = Target {
            http: http.clone(),
            key: key.clone(),
            url: url_on.clone(),
        };
        let (g_rows, g_lines) =
            ingest_costs(&client, org, &target, &pid_on, &storage, seconds).await;
        rows.extend(g_rows);
        breakdown.push_str(&g_lines);
    }

    let mut saturation = Vec::new();
    // (j) background jobs at scale: a reaper pass at 100,000 pending files, and the
    // store requests per reserved file at 1, 100 and 10,000 pending files a workspace
    // (never uploaded; uploaded and found by the finalizer; completed by the client).
    if runs("j") {
        saturation.extend(background_costs(&db, org, minted.id).await);
    }
    // (e) list on a workspace of 1,000,000 files: first page and a deep page.
    if runs("e") {
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
                cpu_ms: None,
                rss,
                limit: None,
                target: "p99 < 10 ms",
            });
        }
    }

    // (f) the rate limiter on (limits high) versus off, on a cheap authenticated route.
    if runs("f") {
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
            cpu_ms: None,
            rss: f[0].1,
            limit: Some(("limiter off req/s".into(), off.rps)),
            target: "≥ 0.97 of limiter off",
        });
        rows.push(Row {
            name: "(f) usage route, rate limiter off",
            stats: off,
            files_per_req: 0,
            cpu_ms: None,
            rss: f[1].1,
            limit: None,
            target: "",
        });
    }

    // (h) the peer benchmark's job, and (a) again, with reservations grouped and not.
    if runs("h") {
        let peer = peer::run(&db, conc, seconds).await;
        breakdown.push_str(&peer.lines);
        if let Some((stats, rss, system)) = peer.h {
            println!(
                "(h): {:.0} req/s, {system:.3} ms whole-system CPU a request",
                stats.rps
            );
            rows.push(Row {
                name: "(h) 1-file reservations, one workspace, finalizer on, never uploaded",
                stats,
                files_per_req: 1,
                cpu_ms: None,
                rss,
                limit: Some(("peer req/s (Supabase Storage)".into(), peer::PEER_RPS)),
                target: "≥ 2 × the peer at ≤ ½ its whole-system CPU",
            });
        }
    }

    // (i) instructions per reservation and per completion, under callgrind.
    if runs("i") {
        breakdown.push_str(&instructions::run(&db).await);
    }
    // (k) (a), (c), (d) and a list page at 10 k, 1 M and 10 M rows, and 100 k pending.
    if runs("k") {
        breakdown.push_str(&scale::run(&db, conc, seconds).await);
    }
    // (l) the webhook outbox's cost: completions with an endpoint subscribed or none.
    if runs("l") {
        breakdown.push_str(&outbox::run(&db, conc, seconds).await);
    }
    // (m) processing: frames a second against ffmpeg alone, and (a)–(d) while it runs.
    if runs("m") {
        breakdown.push_str(&processing::run(&db, conc, seconds).await);
    }

    let mut table = String::from(
        "| scenario | req/s | files/s | p50 ms | p99 ms | peak RSS MiB | limit | ratio | target | filegate CPU ms/file |\n|---|---:|---:|---:|---:|---:|---|---:|---|---:|\n",
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
        let cpu = r
            .cpu_ms
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"));
        table.push_str(&format!(
            "| {} | {:.0} | {files} | {:.2} | {:.2} | {:.1} | {limit} | {ratio} | {} | {cpu} |\n",
            r.name, r.stats.rps, r.stats.p50_ms, r.stats.p99_ms, r.rss, r.target
        ));
        if r.stats.errors > 0 {
            table.push_str(&format!(
                "| ↳ {} errors in that scenario | | | | | | | | | |\n",
                r.stats.errors
            ));
        }
    }
    if !breakdown.is_empty() {
        // A paragraph a line, but a table's rows stay together.
        table.push('\n');
        let lines: Vec<&str> = breakdown.lines().filter(|l| !l.is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            table.push_str(line);
            table.push('\n');
            let next = lines.get(i + 1).copied().unwrap_or("");
            if !(line.starts_with('|') && next.starts_with('|')) {
                table.push('\n');
            }
        }
    }
    for line in &saturation {
        table.push_str(&format!("\n{line}\n"));
    }
    println!("\n{table}");
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(out, table).unwrap();
    }
}

/// The bench's organization: 1000 workspaces with deterministic ids (pgbench picks
/// them by number) and caps out of the way, and one key defaulting to the first.
struct Tenant {
    org: Uuid,
    ws: Vec<Uuid>,
    minted: filegate::service::keys::MintedKey,
}

async fn tenant(client: &tokio_postgres::Client) -> Tenant {
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
            "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types,
                                     max_files, max_pending_files)
             SELECT md5('fgbench' || w)::uuid, $1, 'w' || w, 1000000000000000, 5242880,
                    ARRAY['application/pdf', 'text/plain', 'text/markdown', 'text/html'],
                    1000000000, 1000000000
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
    let minted = filegate::service::keys::mint().unwrap();
    client
        .execute(
            "INSERT INTO api_keys (id, organization_id, default_workspace_id, secret_sha256) VALUES ($1, $2, $3, $4)",
            &[&minted.id, &org, &ws[0], &minted.sha256.as_slice()],
        )
        .await
        .unwrap();
    Tenant { org, ws, minted }
}

/// A workspace of `org` (caps out of the way) holding `n` pending single-PUT text files
/// of one byte, nothing uploaded, their upload keys in time order, first look due now;
/// the workspace and the upload keys.
async fn pending_workspace(
    client: &tokio_postgres::Client,
    org: Uuid,
    key: Uuid,
    n: usize,
) -> (Uuid, Vec<(Uuid, String)>) {
    let ws = Uuid::now_v7();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let count = i64::try_from(n).unwrap();
    client
        .execute(
            "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types,
                                     max_files, max_pending_files, reserved_bytes, live_files, pending_files)
             VALUES ($1, $2, 'jobs', 1000000000000, 5242880, ARRAY['text/plain'], 1000000000, 1000000000, $3, $3, $3)",
            &[&ws, &org, &count],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO files (id, workspace_id, name, content_type, size_bytes, reserved_bytes, object_key,
                                upload_key, created_by, upload_expires_at, next_check_at)
             SELECT id, $1, id::text || '.txt', 'text/plain', 1, 1, $4 || '/' || id,
                    'uploads/' || $4 || '/' || id, $2, now() + interval '1 hour', now()
               FROM unnest($3::uuid[]) AS id",
            &[&ws, &key, &ids, &ws.to_string()],
        )
        .await
        .unwrap();
    let keys = ids
        .into_iter()
        .map(|id| (id, format!("uploads/{ws}/{id}")))
        .collect();
    (ws, keys)
}

/// Store requests made through a [`Storage`], by operation.
#[derive(Clone, Default)]
struct StoreCount(Arc<Mutex<std::collections::BTreeMap<&'static str, u64>>>);

impl StoreCount {
    fn observer(&self) -> filegate_storage::Observer {
        let counts = self.0.clone();
        Arc::new(move |op, _, _| *counts.lock().unwrap().entry(op).or_default() += 1)
    }

    /// The counts since the last take.
    fn take(&self) -> std::collections::BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// `{total} ({op n, …})` per `files`.
fn per_file(counts: &std::collections::BTreeMap<&'static str, u64>, files: usize) -> String {
    let total: u64 = counts.values().sum();
    let ops = counts
        .iter()
        .map(|(op, n)| format!("{op} {:.3}", *n as f64 / files as f64))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{:.3} ({ops})", total as f64 / files as f64)
}

/// What (j) measured, one line each.
async fn background_costs(db: &str, org: Uuid, key: Uuid) -> Vec<String> {
    use filegate::jobs::Job as _;
    let client = filegate_tests::connect(db).await;
    let pool = filegate_db::connect(&filegate_db::PoolSettings {
        url: db.to_owned().into(),
        ca_file: None,
        max_size: 8,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(60),
    })
    .unwrap();
    let counted = StoreCount::default();
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
    .await
    .with_observer(counted.observer());
    let mut settings = filegate_tests::reaper_settings(100);
    settings.reaper_grace = Duration::from_secs(60);
    settings.upload_margin = Duration::from_secs(900);
    let mut lines = Vec::new();

    // The reaper at 100,000 pending files: a pass with none due, then passes that
    // expire them all (each bounded to 100 batches of 100 of each kind).
    let (ws, _) = pending_workspace(&client, org, key, 100_000).await;
    let reaper = filegate::jobs::Reaper::new(pool.clone(), storage.clone(), settings.clone());
    let started = Instant::now();
    reaper.run_once().await.unwrap();
    let idle_ms = started.elapsed().as_secs_f64() * 1000.0;
    client
        .execute(
            "UPDATE files SET upload_expires_at = now() - interval '2 hours' WHERE workspace_id = $1",
            &[&ws],
        )
        .await
        .unwrap();
    let mut passes = Vec::new();
    loop {
        let started = Instant::now();
        let report = reaper.run_once().await.unwrap();
        passes.push((
            started.elapsed().as_secs_f64(),
            report.expired,
            report.objects_deleted,
        ));
        if report.expired == 0 && report.objects_deleted == 0 {
            break;
        }
    }
    let worst = passes.iter().map(|p| p.0).fold(0.0, f64::max);
    let expired: u64 = passes.iter().map(|p| p.1).sum();
    let deleted: u64 = passes.iter().map(|p| p.2).sum();
    lines.push(format!(
        "(j) reaper at 100,000 pending files: a pass with none due took {idle_ms:.0} ms; expiring them all took {} passes \
         (at most {} expiries and {} deletions each), the longest {worst:.1} s; {expired} expired, {deleted} upload keys deleted \
         (DELETEs of keys never uploaded).",
        passes.len(),
        passes.iter().map(|p| p.1).max().unwrap_or(0),
        passes.iter().map(|p| p.2).max().unwrap_or(0),
    ));

    // Store requests per reserved file. Every file of a workspace is due at once, as
    // when a client reserved them together.
    // What a server on this store takes its word for: the start-up probe's.
    let report = filegate::service::trust::probe(&storage, &[]).await;
    let trust = filegate::service::trust::StoreTrust::from_probe(Some(&report), false);
    counted.take();
    let completer = Arc::new(filegate::service::completion::Completer::new(
        storage.clone(),
        filegate::service::completion::PgLedger::new(pool.clone(), Duration::from_secs(900), 256),
        trust,
        Duration::from_secs(10),
    ));
    let finalizer =
        filegate::jobs::Finalizer::new(pool.clone(), completer.clone(), storage.clone(), &settings);
    let upload_all = |keys: Vec<(Uuid, String)>| {
        let storage = storage.clone();
        async move {
            let sum = filegate_domain::Checksum::from_digest(
                <sha2::Sha256 as sha2::Digest>::digest(b"x").into(),
            );
            futures_util::stream::iter(keys)
                .map(|(_, key)| {
                    let storage = storage.clone();
                    async move {
                        storage
                            .put_object(&key, bytes::Bytes::from_static(b"x"), "text/plain", sum)
                            .await
                            .unwrap();
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        }
    };
    let mut never = Vec::new();
    let mut found = Vec::new();
    let mut client_done = Vec::new();
    // Only the files made here are looked at: the reservations of the scenarios
    // before (never uploaded, nobody's looks while the servers' finalizers are off)
    // are taken out of the finalizer's queue.
    let quiet = || async {
        client
            .execute(
                "UPDATE files SET next_check_at = NULL WHERE status = 'pending' AND next_check_at IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
    };
    for n in [1usize, 100, 10_000] {
        quiet().await;
        // Never uploaded: one look at each (a file has 20 over its window).
        pending_workspace(&client, org, key, n).await;
        counted.take();
        let started = Instant::now();
        let mut looked = 0;
        while looked < n as u64 {
            let report = finalizer.run_once().await.unwrap();
            looked += report.looked;
            if report.looked == 0 {
                break;
            }
        }
        let counts = counted.take();
        let made: u64 = counts.values().sum();
        never.push(format!(
            "{n} a workspace: {} a look, {:.2} over 20 looks ({:.0} ms for the {looked} looks)",
            per_file(&counts, looked.max(1) as usize),
            20.0 * made as f64 / looked.max(1) as f64,
            started.elapsed().as_secs_f64() * 1000.0
        ));

        // Uploaded, never completed: the finalizer's first look finds them.
        quiet().await;
        let (_, keys) = pending_workspace(&client, org, key, n).await;
        upload_all(keys).await;
        counted.take();
        let mut ready = 0;
        for _ in 0..10 * n.div_ceil(64) + 10 {
            let report = finalizer.run_once().await.unwrap();
            ready += report.ready;
            if ready >= n as u64 {
                break;
            }
        }
        let counts = counted.take();
        found.push(format!("{n} a workspace: {}", per_file(&counts, n)));
        assert_eq!(ready, n as u64, "the finalizer made every upload ready");

        // Completed by the client, in batches of 50 (before any look).
        let (_, keys) = pending_workspace(&client, org, key, n).await;
        let ids: Vec<Uuid> = keys.iter().map(|(id, _)| *id).collect();
        upload_all(keys).await;
        counted.take();
        futures_util::stream::iter(ids.chunks(50))
            .map(|chunk| {
                let completer = completer.clone();
                async move {
                    completer
                        .complete_many(
                            chunk,
                            filegate_db::completion::Reach::default(),
                            filegate::service::completion::Trigger::Client,
                            true,
                        )
                        .await
                        .unwrap()
                }
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
        let counts = counted.take();
        client_done.push(format!("{n} a workspace: {}", per_file(&counts, n)));
    }
    lines.push(format!(
        "(j) store requests per file never uploaded (the finalizer's looks; one HEAD per look made 1.000 a look, 20 a file): {}.",
        never.join("; ")
    ));
    lines.push(format!(
        "(j) store requests per file uploaded and never completed (the finalizer's look that found it, then its completion): {}.",
        found.join("; ")
    ));
    lines.push(format!(
        "(j) store requests per file completed by the client before any look: {}. Each file's upload key is deleted once more by the reaper after its URL expired (+1).",
        client_done.join("; ")
    ));
    lines
}

/// A multipart form around `body`, with the boundary [`FORM_BOUNDARY`].
fn form_parts(name: &str) -> (bytes::Bytes, bytes::Bytes) {
    (
        bytes::Bytes::from(format!(
            "--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )),
        bytes::Bytes::from(format!("\r\n--{FORM_BOUNDARY}--\r\n")),
    )
}

const FORM_BOUNDARY: &str = "filegate-bench-boundary";

/// `POST /v2/files/-/uploads` of `chunks` (repeated `times`) into `workspace`.
async fn post_upload(
    target: &Target,
    workspace: Uuid,
    chunk: bytes::Bytes,
    times: usize,
) -> Option<bool> {
    let (head, tail) = form_parts(&format!("{}.txt", Uuid::new_v4().simple()));
    let length = head.len() + chunk.len() * times + tail.len();
    let body = futures_util::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(chunk, times))
            .chain(std::iter::once(tail))
            .map(Ok::<_, std::io::Error>),
    );
    let res = target
        .http
        .post(format!(
            "{}/v2/files/-/uploads?workspace_uuid={workspace}",
            target.url
        ))
        .bearer_auth(&*target.key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={FORM_BOUNDARY}"),
        )
        .header("content-length", length)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    Some(ok(res).await)
}

/// What (g) measured: its rows, and its lines under the table.
async fn ingest_costs(
    client: &tokio_postgres::Client,
    org: Uuid,
    target: &Target,
    pid: &str,
    storage: &Storage,
    seconds: u64,
) -> (Vec<Row>, String) {
    // A workspace for large text files, out of every limit's way.
    let ws = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO workspaces (id, organization_id, name, quota_bytes, max_file_bytes, allowed_content_types,
                                     max_files, max_pending_files)
             VALUES ($1, $2, 'ingest', 1000000000000000, 1073741824, ARRAY['text/plain'], 1000000000, 1000000000)",
            &[&ws, &org],
        )
        .await
        .unwrap();
    let mut rows = Vec::new();
    let mut lines = String::new();
    for (name, mib, clients, target_text) in [
        (
            "(g) uploads through filegate, 1 MiB bodies",
            1usize,
            8usize,
            "≥ 0.8 of raw PutObject",
        ),
        (
            "(g) uploads through filegate, 64 MiB bodies",
            64,
            2,
            "≥ 0.8 of raw PutObject",
        ),
    ] {
        let chunk = bytes::Bytes::from(vec![b'a'; 1 << 20]);
        let upload = {
            let (target, chunk) = (target.clone(), chunk.clone());
            move |_: usize, _: u64| {
                let (target, chunk) = (target.clone(), chunk.clone());
                async move { post_upload(&target, ws, chunk, mib).await }
            }
        };
        let body = bytes::Bytes::from(vec![b'a'; mib << 20]);
        let sum = filegate_domain::Checksum::from_digest(
            <sha2::Sha256 as sha2::Digest>::digest(&body).into(),
        );
        let raw = {
            let (storage, body) = (storage.clone(), body.clone());
            move |_: usize, _: u64| {
                let (storage, body) = (storage.clone(), body.clone());
                async move {
                    let key = format!("raw/{}", Uuid::new_v4());
                    Some(
                        storage
                            .put_object(&key, body, "text/plain", sum)
                            .await
                            .is_ok(),
                    )
                }
            }
        };
        let Measured {
            stats,
            limit,
            cpu,
            limit_cpu,
            rss,
            ..
        } = measure(target, pid, clients, seconds, upload, raw).await;
        let mib_s = |rps: f64| rps * mib as f64;
        // CPU ms per MiB stored, by process, and in all (what two shared cores bound).
        let per_mib = |cpu: &Cpu, ok: usize| {
            let mibs = (ok * mib).max(1) as f64;
            let parts: Vec<String> = cpu
                .used
                .iter()
                .map(|(p, s)| format!("{p} {:.2}", s * 1000.0 / mibs))
                .collect();
            let total: f64 = cpu.used.values().sum::<f64>() * 1000.0 / mibs;
            (parts.join(", "), total)
        };
        let (through, through_total) = per_mib(&cpu, stats.ok);
        let (raw_parts, raw_total) = per_mib(&limit_cpu, limit.ok);
        lines.push_str(&format!(
            "{name}: {:.1} MiB/s against {:.1} MiB/s raw PutObject ({clients} clients). CPU ms per MiB through filegate: {through} ({through_total:.2} in all; machine {}); raw PutObject: {raw_parts} ({raw_total:.2} in all; machine {}). with the machine saturated both ways, its CPU alone bounds the ratio at {:.2}\n",
            mib_s(stats.rps),
            mib_s(limit.rps),
            cpu.share(cores()),
            limit_cpu.share(cores()),
            raw_total / through_total.max(f64::MIN_POSITIVE),
        ));
        rows.push(Row {
            name,
            files_per_req: 1,
            rss,
            limit: Some(("raw PutObject/s".into(), limit.rps)),
            target: target_text,
            cpu_ms: cpu.filegate_ms(stats.ok),
            stats,
        });
    }

    // Memory: 8 uploads of 256 MiB at once.
    reset_rss(pid);
    let chunk = bytes::Bytes::from(vec![b'a'; 1 << 20]);
    let started = Instant::now();
    let done: Vec<Option<bool>> =
        futures_util::future::join_all((0..8).map(|_| post_upload(target, ws, chunk.clone(), 256)))
            .await;
    let took = started.elapsed().as_secs_f64();
    let ready = done.iter().filter(|d| **d == Some(true)).count();
    lines.push_str(&format!(
        "(g) 8 concurrent uploads of 256 MiB through filegate: {ready} ready in {took:.1} s ({:.1} MiB/s); filegate's peak RSS {:.1} MiB (target: flat in the body size, under 100 MiB)\n",
        8.0 * 256.0 / took,
        peak_rss_mib(pid),
    ));
    (rows, lines)
}
