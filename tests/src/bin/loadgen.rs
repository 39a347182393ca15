//! A small HTTP load generator for filegate: every request carries unique file names,
//! so reservations never collide. Prints requests/s, files/s and latency percentiles.
//!
//! `loadgen --url URL --key KEY [--files N] [--concurrency C] [--seconds S] [--size BYTES]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

struct Args {
    url: String,
    key: String,
    files: usize,
    concurrency: usize,
    seconds: u64,
    size: u64,
    workspace: Option<String>,
    /// `create` (POST /v2/files) or `usage` (GET /v2/workspaces/{workspace}/usage).
    route: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        key: String::new(),
        files: 1,
        concurrency: 16,
        seconds: 10,
        size: 1000,
        workspace: None,
        route: "create".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value,
            "--key" => args.key = value,
            "--files" => args.files = value.parse().expect("--files"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency"),
            "--seconds" => args.seconds = value.parse().expect("--seconds"),
            "--size" => args.size = value.parse().expect("--size"),
            "--workspace" => args.workspace = Some(value),
            "--route" => args.route = value,
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !args.url.is_empty() && !args.key.is_empty(),
        "--url and --key are required"
    );
    args
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (args, client, stop) = (Arc::clone(&args), client.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let t;
                let res = if args.route == "usage" {
                    let ws = args.workspace.as_deref().expect("--route usage needs --workspace");
                    t = Instant::now();
                    client.get(format!("{}/v2/workspaces/{ws}/usage", args.url)).bearer_auth(&args.key).send().await
                } else {
                    let files: Vec<_> = (0..args.files)
                        .map(|i| json!({ "name": format!("w{worker}-{n}-{i}-{}.txt", uuid::Uuid::new_v4().simple()), "size_bytes": args.size }))
                        .collect();
                    let body = json!({ "workspace_uuid": args.workspace, "files": files });
                    t = Instant::now();
                    client.post(format!("{}/v2/files", args.url)).bearer_auth(&args.key).json(&body).send().await
                };
                match res {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let rps = all.len() as f64 / elapsed;
    println!(
        "route={} files/request={} concurrency={} ok={} errors={} req/s={:.0} files/s={:.0} p50={:.2}ms p99={:.2}ms",
        args.route,
        args.files,
        args.concurrency,
        all.len(),
        errors,
        rps,
        rps * args.files as f64,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
}
