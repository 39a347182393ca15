//! (l) The webhook outbox's cost on the hot path: (a) reservations (which write no
//! event), (d) single completions and (d') 50-file batch completions, with one webhook
//! endpoint subscribed to every event in each workspace against none, in alternating
//! rounds on one filegate (a database of its own, the finalizer off). The endpoints
//! point at a receiver on loopback that acknowledges every delivery, so the "on" rounds
//! pay for the trigger's rows and for the delivery worker sending them meanwhile.

use std::sync::Arc;
use std::time::Duration;

use filegate_tests::receiver::Receiver;

use super::instance::{Instance, drop_database, fresh_database};
use super::{Stats, Target, complete_batches, complete_each, drive, prepare, reserve_op};

/// One mode's rounds.
#[derive(Default)]
struct Mode {
    a: Vec<Stats>,
    d: Vec<Stats>,
    batches: Vec<Stats>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

/// Runs (l); its lines for BENCHMARKS.md.
pub async fn run(db: &str, conc: usize, seconds: u64) -> String {
    let url = fresh_database(db, "l").await;
    let client = filegate_tests::connect(&url).await;
    let tenant = super::tenant(&client).await;
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let receiver = Receiver::start().await;
    let instance = Instance::start(
        &url,
        &[("FILEGATE_IMPORT_ALLOWED_HOSTS", receiver.addr.to_string())],
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let target = Target {
        http,
        key,
        url: instance.url.clone(),
    };
    let secs = (seconds / 2).max(3);
    let (mut off, mut on) = (Mode::default(), Mode::default());
    for round in 0..4 {
        let subscribed = round % 2 == 1;
        if subscribed {
            client
                .execute(
                    "INSERT INTO webhook_endpoints (id, workspace_id, url, event_types, secret)
                     SELECT gen_random_uuid(), id, $1,
                            ARRAY['file.ready', 'file.rejected', 'file.expired', 'file.deleted'],
                            'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
                       FROM workspaces",
                    &[&receiver.url()],
                )
                .await
                .unwrap();
        } else {
            client
                .batch_execute("DELETE FROM webhook_endpoints")
                .await
                .unwrap();
        }
        let mode = if subscribed { &mut on } else { &mut off };
        mode.a
            .push(drive(conc, secs, reserve_op(&target, &ws, 1, true)).await);
        let objects = prepare(&target, &ws, conc, 4000).await;
        client.batch_execute("ANALYZE files").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        mode.d
            .push(drive(conc, secs, complete_each(&target, &objects)).await);
        let objects = prepare(&target, &ws, conc, 12_000).await;
        client.batch_execute("ANALYZE files").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        mode.batches
            .push(drive((conc / 4).max(1), secs, complete_batches(&target, &objects)).await);
        // The next round starts with an empty queue.
        for _ in 0..600 {
            let queued: i64 = client
                .query_one(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if queued == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rows = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE status = 'delivered'),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at))
               FROM webhook_deliveries",
            &[],
        )
        .await
        .unwrap();
    let (events, delivered): (i64, i64) = (rows.get(0), rows.get(1));
    let (p50, p99): (Option<f64>, Option<f64>) = (rows.get(2), rows.get(3));
    drop(instance);
    drop_database(db, "l").await;
    let line = |name: &str, unit: f64, off: &[Stats], on: &[Stats]| {
        let (o, n) = (
            median(&off.iter().map(|s| s.rps * unit).collect::<Vec<_>>()),
            median(&on.iter().map(|s| s.rps * unit).collect::<Vec<_>>()),
        );
        let p99 = |s: &[Stats]| median(&s.iter().map(|s| s.p99_ms).collect::<Vec<_>>());
        format!(
            "| {name} | {o:.0} | {n:.0} | {:.2} | {:.1} | {:.1} |\n",
            if o > 0.0 { n / o } else { 0.0 },
            p99(off),
            p99(on)
        )
    };
    let mut out = String::from(
        "(l) the webhook outbox on the hot path (`BENCH_ONLY=l scripts/bench`; a database of its own, one endpoint \
         per workspace subscribed to every event against none, alternating rounds off/on/off/on, medians; the \
         receiver on loopback acknowledges every delivery while the rounds run):\n\n\
         | scenario | none /s | one endpoint /s | ratio | p99 ms none | p99 ms one endpoint |\n|---|---:|---:|---:|---:|---:|\n",
    );
    out.push_str(&line("(a) reservations (no event)", 1.0, &off.a, &on.a));
    out.push_str(&line("(d) single completions", 1.0, &off.d, &on.d));
    out.push_str(&line(
        "(d') completions in 50-file batches (files/s)",
        50.0,
        &off.batches,
        &on.batches,
    ));
    out.push_str(&format!(
        "\n(l) deliveries: {events} events written, {delivered} delivered ({} requests acknowledged by the receiver); \
         transition to acknowledgement p50 {:.0} ms, p99 {:.0} ms\n",
        receiver.acknowledged().len(),
        p50.unwrap_or_default() * 1000.0,
        p99.unwrap_or_default() * 1000.0
    ));
    out
}
