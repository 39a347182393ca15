//! (k) Costs as the data grows: (a) one-file reservations, (c) 50-file reservations,
//! (d) completions and a list page, with 10 k, 1 M and 10 M rows in `files`
//! (generated with SQL, spread over the 1000 workspaces, ready), and with 100 k pending
//! files on top, each against the 10 k figure. A database of its own; a fresh filegate
//! (finalizer off, as in the main table) for each point. Rows a point's measurements
//! add are deleted before the next point grows the table.

use std::sync::Arc;

use uuid::Uuid;

use super::instance::{Instance, drop_database, fresh_database};
use super::{Stats, Target, complete_each, drive, ok, prepare, reserve_op};

/// One point's figures: (a) req/s, (c) files/s, (d) completions/s, list req/s, with
/// their p99s.
struct Point {
    label: &'static str,
    rows: i64,
    bytes: i64,
    a: Stats,
    c: Stats,
    d: Stats,
    list: Stats,
}

/// Runs (k); its table as markdown.
pub async fn run(db: &str, conc: usize, seconds: u64) -> String {
    let url = fresh_database(db, "k").await;
    let client = filegate_tests::connect(&url).await;
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let tenant = super::tenant(&client).await;
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let secs = (seconds / 2).max(3);
    let mut generated = 0i64;
    let mut points = Vec::new();
    for (label, rows, pending) in [
        ("10 k rows", 10_000i64, 0i64),
        ("1 M rows", 1_000_000, 0),
        ("10 M rows", 10_000_000, 0),
        ("10 M rows and 100 k pending", 10_000_000, 100_000),
    ] {
        // Grow in steps of a million rows, so each statement's WAL stays bounded.
        while generated < rows {
            let step = (rows - generated).min(1_000_000);
            insert(&client, tenant.minted.id, generated, step, "ready").await;
            generated += step;
        }
        if pending > 0 {
            insert(&client, tenant.minted.id, generated, pending, "pending").await;
            generated += pending;
        }
        client
            .batch_execute("VACUUM (ANALYZE) files")
            .await
            .unwrap();
        let row = client
            .query_one(
                "SELECT count(*), pg_total_relation_size('files') FROM files",
                &[],
            )
            .await
            .unwrap();
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        let mark: chrono::DateTime<chrono::Utc> =
            client.query_one("SELECT now()", &[]).await.unwrap().get(0);
        let instance = Instance::start(&url, &[]).await;
        let target = Target {
            http: http.clone(),
            key: key.clone(),
            url: instance.url.clone(),
        };
        let a = drive(conc, secs, reserve_op(&target, &ws, 1, true)).await;
        let c = drive(conc, secs, reserve_op(&target, &ws, 50, true)).await;
        let objects = prepare(&target, &ws, conc, 4000).await;
        // The store finishes the preparation's writes first, as in (d), and the
        // statistics know the pending files the point made, as autovacuum would.
        client.batch_execute("ANALYZE files").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let d = drive(conc, secs, complete_each(&target, &objects)).await;
        let list = drive(4, secs, {
            let (target, w) = (target.clone(), ws[1]);
            move |_: usize, _: u64| {
                let target = target.clone();
                async move {
                    let res = target
                        .http
                        .get(format!(
                            "{}/v2/files?workspace_uuid={w}&limit=100",
                            target.url
                        ))
                        .bearer_auth(&*target.key)
                        .send()
                        .await;
                    Some(ok(res).await)
                }
            }
        })
        .await;
        drop(instance);
        println!(
            "(k) {label}: (a) {:.0} req/s, (c) {:.0} files/s, (d) {:.0}/s, list {:.0} req/s",
            a.rps,
            c.rps * 50.0,
            d.rps,
            list.rps
        );
        points.push(Point {
            label,
            rows: count,
            bytes,
            a,
            c,
            d,
            list,
        });
        // What the measurements added goes, so the next point is the size it says.
        client
            .execute("DELETE FROM files WHERE created_at >= $1", &[&mark])
            .await
            .unwrap();
    }
    drop_database(db, "k").await;
    table(&points)
}

fn table(points: &[Point]) -> String {
    let mut out = String::from(
        "(k) costs as the data grows (`BENCH_ONLY=k scripts/bench`; a database of its own, rows generated with SQL \
         over the 1000 workspaces, a fresh filegate a point, the finalizer off; ratio to the 10 k point in brackets):\n\n\
         | data | rows | `files` with indexes | (a) req/s, p99 ms | (c) files/s, p99 ms | (d) completions/s, p99 ms | list first page req/s (4 clients), p99 ms |\n\
         |---|---:|---:|---|---|---|---|\n",
    );
    let Some(base) = points.first() else {
        return out;
    };
    let cell = |s: &Stats, b: &Stats, per: f64| {
        format!(
            "{:.0}, {:.1} ({:.2})",
            s.rps * per,
            s.p99_ms,
            s.rps / b.rps.max(f64::EPSILON)
        )
    };
    for p in points {
        out.push_str(&format!(
            "| {} | {} | {:.0} MiB | {} | {} | {} | {} |\n",
            p.label,
            p.rows,
            p.bytes as f64 / 1048576.0,
            cell(&p.a, &base.a, 1.0),
            cell(&p.c, &base.c, 50.0),
            cell(&p.d, &base.d, 1.0),
            cell(&p.list, &base.list, 1.0),
        ));
    }
    out
}

/// Adds `n` files of `status` numbered from `from`, spread over the 1000 workspaces
/// (one byte each, never uploaded; pending ones due for no look and expiring in a day).
async fn insert(client: &tokio_postgres::Client, key: Uuid, from: i64, n: i64, status: &str) {
    client
        .execute(
            "INSERT INTO files (id, workspace_id, name, path, labels, content_type, size_bytes, reserved_bytes,
                                status, object_key, upload_key, created_by, created_at, upload_expires_at,
                                next_check_at, completed_at)
             SELECT gen_random_uuid(), md5('fgbench' || (i % 1000))::uuid, 'k' || i || '.txt',
                    'p/' || (i % 100) || '/', ARRAY['l' || (i % 10)], 'text/plain', 1, 1, $4::text,
                    'k/' || i, 'uploads/k/' || i, $1, now() - make_interval(secs => ($2 + $3 - i)::float8),
                    now() + interval '1 day',
                    CASE WHEN $4::text = 'pending' THEN now() + interval '1 day' END,
                    CASE WHEN $4::text = 'ready' THEN now() END
               FROM generate_series($2::int8, $2::int8 + $3::int8 - 1) AS i",
            &[&key, &from, &n, &status],
        )
        .await
        .unwrap();
}
