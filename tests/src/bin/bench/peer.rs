//! (h) The peer benchmark's job, on a database of its own: one-file reservations into
//! one workspace at `BENCH_CONCURRENCY` connections with the finalizer on and the
//! files never uploaded (every reservation leaves a pending file the finalizer keeps
//! looking for), as Supabase Storage's `POST /object/upload/sign` was measured; and
//! (a) (one-file reservations spread over 1000 workspaces, the finalizer off). Each
//! with reservations grouped and not, in alternating rounds (grouped, ungrouped,
//! ungrouped, grouped), each round on a filegate of its own that first serves one
//! client alone, for the latency of an idle server.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::instance::{Instance, drop_database, fresh_database};
use super::{
    Cpu, Stats, Target, drive, drive_counted, histogram_delta, merged, metrics, reserve_op,
};

/// The peer's figures (the measurement: Supabase Storage, median of nine
/// 15-second rounds, wrk -t2 -c16, on this machine kind).
pub const PEER_RPS: f64 = 795.0;

/// One configuration's rounds.
#[derive(Default)]
struct Config {
    rounds: Vec<Stats>,
    idle: Vec<Stats>,
    cpu: Option<Cpu>,
    store_requests: f64,
    grouped: (f64, f64),
    rss: f64,
}

/// What (h) measured: a markdown table and the rows of the main table.
pub struct Peer {
    pub lines: String,
    /// (h) grouped: its stats, peak RSS and whole-system CPU ms per request.
    pub h: Option<(Stats, f64, f64)>,
}

/// Runs (h) and (a) with grouping on and off.
pub async fn run(db: &str, conc: usize, seconds: u64) -> Peer {
    let url = fresh_database(db, "h").await;
    let client = filegate_tests::connect(&url).await;
    let tenant = super::tenant(&client).await;
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let mut configs: BTreeMap<(&str, usize), Config> = BTreeMap::new();
    for (job, finalizer, spread) in [("h", "1", false), ("a", "0", true)] {
        for group in [256usize, 0, 0, 256] {
            let instance = Instance::start(
                &url,
                &[
                    ("FILEGATE_RESERVATION_GROUP_MAX", group.to_string()),
                    ("FILEGATE_FINALIZER_INTERVAL_SECS", finalizer.to_owned()),
                ],
            )
            .await;
            let target = Target {
                http: http.clone(),
                key: key.clone(),
                url: instance.url.clone(),
            };
            let reserve = reserve_op(&target, &ws, 1, spread);
            // One client first, on a server that has just started: an idle server's
            // latency, before a loaded round leaves work behind (pending files for the
            // finalizer, dead rows for autovacuum).
            let idle = drive(1, 5, reserve.clone()).await;
            let before = metrics(&target).await;
            let (stats, cpu) = drive_counted(conc, seconds, reserve).await;
            let after = metrics(&target).await;
            let rss = super::peak_rss_mib(&instance.pid);
            let config = configs.entry((job, group)).or_default();
            config.rounds.push(stats);
            config.rss = config.rss.max(rss);
            config.idle.push(idle);
            match &mut config.cpu {
                Some(all) => all.add(&cpu),
                None => config.cpu = Some(cpu),
            }
            config.store_requests +=
                counter_total(&after, STORE_CALLS) - counter_total(&before, STORE_CALLS);
            let (requests, statements) = histogram_delta(
                &before,
                &after,
                "filegate_grouped_requests{statement=\"reserve\"}",
            );
            config.grouped.0 += requests;
            config.grouped.1 += statements;
            drop(instance);
        }
    }
    drop_database(db, "h").await;

    let mut lines = String::from(
        "(h) and (a) with reservations grouped and not (`BENCH_ONLY=h scripts/bench`: a database of their own, \
         alternating rounds grouped / ungrouped / ungrouped / grouped, each on a filegate of its own):\n\n\
         | job | grouping | req/s | p50 ms | p99 ms | idle p50 / p99 ms (1 client) | filegate CPU ms/req | \
         whole-system CPU ms/req (filegate + Postgres + Garage) | store requests/reservation | requests per statement |\n\
         |---|---|---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    let mut h = None;
    for ((job, group), config) in &configs {
        let stats = merged(&config.rounds);
        let idle = merged(&config.idle);
        let cpu = config.cpu.as_ref().unwrap();
        let per = |names: &[&str]| {
            names
                .iter()
                .map(|n| cpu.used.get(*n).copied().unwrap_or(0.0))
                .sum::<f64>()
                * 1000.0
                / stats.ok.max(1) as f64
        };
        let service = per(&["filegate"]);
        let system = per(&["filegate", "postgres", "garage"]);
        let name = if *job == "h" {
            "(h) 1-file reservations, one workspace, finalizer on, never uploaded"
        } else {
            "(a) 1-file reservations, 1000 workspaces"
        };
        let grouping = if *group == 0 { "off" } else { "on (256)" };
        lines.push_str(&format!(
            "| {name} | {grouping} | {:.0} | {:.2} | {:.2} | {:.2} / {:.2} | {service:.3} | {system:.3} | {:.3} | {:.2} |\n",
            stats.rps,
            stats.p50_ms,
            stats.p99_ms,
            idle.p50_ms,
            idle.p99_ms,
            config.store_requests / stats.ok.max(1) as f64,
            if config.grouped.1 > 0.0 {
                config.grouped.0 / config.grouped.1
            } else {
                0.0
            },
        ));
        if *job == "h" && *group != 0 {
            h = Some((stats, config.rss, system));
        }
    }
    lines.push_str(&format!(
        "\n(h) against the peer (Supabase Storage, {PEER_RPS:.0} req/s; on two saturated cores at most {:.2} ms of \
         whole-system CPU per request): target ≥ {:.0} req/s at ≤ {:.2} ms.\n",
        2000.0 / PEER_RPS,
        2.0 * PEER_RPS,
        1000.0 / PEER_RPS,
    ));
    Peer { lines, h }
}

const STORE_CALLS: &str = "filegate_object_store_call_duration_seconds_count";

/// The sum of every series of the counter `name` in a scrape.
fn counter_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
