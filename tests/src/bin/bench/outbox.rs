//! (l) The webhook outbox's cost on the hot path: (a) reservations (which write no
//! event), (d) single completions and (d') 50-file batch completions, with one webhook
//! endpoint subscribed to every event in each workspace against none, on a database of
//! its own. Six rounds, each on a fresh filegate (the finalizer off): no endpoint; the
//! outbox written with no delivery worker; written and delivered during the round by a
//! receiver on loopback that acknowledges everything. Between rounds a filegate with
//! its worker on drains the queue.

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
    let allowed = ("FILEGATE_IMPORT_ALLOWED_HOSTS", receiver.addr.to_string());
    // One endpoint a workspace, enabled for the rounds that want events.
    client
        .execute(
            "INSERT INTO webhook_endpoints (id, workspace_id, url, event_types, secret, enabled)
             SELECT gen_random_uuid(), id, $1,
                    ARRAY['file.ready', 'file.rejected', 'file.expired', 'file.deleted'],
                    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', false
               FROM workspaces",
            &[&receiver.url()],
        )
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let secs = (seconds / 2).max(3);
    // none: no endpoint; sent: endpoints, the worker delivering during the round;
    // written: endpoints, no worker (the outbox's rows alone; delivered after the round).
    let (mut none, mut sent, mut written) = (Mode::default(), Mode::default(), Mode::default());
    for round in 0..6 {
        let (mode, subscribed, worker) = match round % 3 {
            0 => (&mut none, false, true),
            1 => (&mut sent, true, true),
            _ => (&mut written, true, false),
        };
        client
            .execute("UPDATE webhook_endpoints SET enabled = $1", &[&subscribed])
            .await
            .unwrap();
        let poll = (
            "FILEGATE_WEBHOOK_POLL_MS",
            if worker { "250" } else { "0" }.to_owned(),
        );
        let instance = Instance::start(&url, &[allowed.clone(), poll]).await;
        let target = Target {
            http: http.clone(),
            key: key.clone(),
            url: instance.url.clone(),
        };
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
        drop(instance);
        // The next round starts with an empty queue: a filegate with its worker on
        // delivers what is left.
        let drain = Instance::start(&url, std::slice::from_ref(&allowed)).await;
        for _ in 0..1200 {
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
        drop(drain);
    }
    let rows = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE status = 'delivered'), count(DISTINCT (file_id, event_type)),
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at)),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - occurred_at))
               FROM webhook_deliveries",
            &[],
        )
        .await
        .unwrap();
    let (events, delivered, distinct): (i64, i64, i64) = (rows.get(0), rows.get(1), rows.get(2));
    drop_database(db, "l").await;
    let line = |name: &str, unit: f64, modes: [&[Stats]; 3]| {
        let rate = |s: &[Stats]| median(&s.iter().map(|s| s.rps * unit).collect::<Vec<_>>());
        let p99 = |s: &[Stats]| median(&s.iter().map(|s| s.p99_ms).collect::<Vec<_>>());
        let base = rate(modes[0]);
        let ratio = |s: &[Stats]| if base > 0.0 { rate(s) / base } else { 0.0 };
        format!(
            "| {name} | {base:.0}, {:.1} | {:.0}, {:.1} ({:.2}) | {:.0}, {:.1} ({:.2}) |\n",
            p99(modes[0]),
            rate(modes[2]),
            p99(modes[2]),
            ratio(modes[2]),
            rate(modes[1]),
            p99(modes[1]),
            ratio(modes[1]),
        )
    };
    let mut out = String::from(
        "(l) the webhook outbox on the hot path (`BENCH_ONLY=l scripts/bench`; a database of its own, one endpoint \
         per workspace subscribed to every event against none, six rounds (none, outbox written with no worker, outbox \
         written and delivered during the round) of a fresh filegate each, medians; the receiver on loopback \
         acknowledges every delivery; rate, p99 ms, ratio to none):\n\n\
         | scenario | no endpoint | one endpoint, no worker | one endpoint, delivered meanwhile |\n|---|---|---|---|\n",
    );
    out.push_str(&line(
        "(a) reservations (no event)",
        1.0,
        [&none.a, &sent.a, &written.a],
    ));
    out.push_str(&line(
        "(d) single completions /s",
        1.0,
        [&none.d, &sent.d, &written.d],
    ));
    out.push_str(&line(
        "(d') completions in 50-file batches, files/s",
        50.0,
        [&none.batches, &sent.batches, &written.batches],
    ));
    out.push_str(&format!(
        "\n(l) deliveries: {events} written ({distinct} distinct file and event), {delivered} delivered, {} requests \
         acknowledged by the receiver (a delivery acknowledged twice when its lease ran out first, or its result \
         was lost to a stopped filegate)\n",
        receiver.acknowledged().len(),
    ));
    out
}
