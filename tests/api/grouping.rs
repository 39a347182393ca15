//! Statements shared by concurrent requests (reservations, completions' claims): each
//! request still gets the answer it would have had alone, all or nothing, against
//! real Postgres and the S3 store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use filegate_db::completion::{ClaimRequest, Lease, claim_many};
use filegate_domain::Limits;
use filegate_tests::{Answer, TestApp, samples, spawn_app_with};
use serde_json::{Value, json};
use uuid::Uuid;

const MIB: i64 = 1 << 20;

/// `_sum` and `_count` of `filegate_grouped_requests{statement}`.
fn grouped(text: &str, statement: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        let series = format!("filegate_grouped_requests_{suffix}{{statement=\"{statement}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count"))
}

/// Names of the live files of `workspace`.
async fn names_in(app: &TestApp, workspace: Uuid) -> BTreeSet<String> {
    app.pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT name FROM files WHERE workspace_id = $1 AND status = 'pending'",
            &[&workspace],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// Requests of one to four files into three small workspaces, far more than fit, with
/// a name two requests of one workspace share now and then: every request is
/// reserved whole or refused whole with its own reason, no workspace passes its
/// quota, and its counters equal its rows.
async fn reservations_stay_all_or_nothing(group_max: usize) {
    let app = spawn_app_with(|s| s.reaper.reservation_group_max = group_max).await;
    let limits = Limits {
        quota_bytes: 10 * MIB,
        ..Limits::default()
    };
    let workspaces = [
        app.tenant.workspace,
        app.create_workspace(app.tenant.org, &limits).await,
        app.create_workspace(app.tenant.org, &limits).await,
    ];
    set_quota(&app, workspaces[0], 10 * MIB).await;
    let requests: Vec<(Uuid, Vec<String>)> = (0..150)
        .map(|i: usize| {
            let ws = workspaces[i % 3];
            let mut names: Vec<String> = (0..=i % 4).map(|j| format!("r{i}-{j}.pdf")).collect();
            if i.is_multiple_of(10) {
                // Two requests of one workspace, at once, with one name.
                names[0] = format!("shared-{}.pdf", i % 30);
            }
            (ws, names)
        })
        .collect();
    let answers = futures_util::future::join_all(requests.iter().map(|(ws, names)| {
        let app = &app;
        let files: Vec<Value> = names
            .iter()
            .map(|n| json!({ "name": n, "size_bytes": MIB }))
            .collect();
        async move {
            app.create_files(&json!({ "workspace_uuid": ws, "files": files }))
                .await
        }
    }))
    .await;
    let mut reserved: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    let (mut ok, mut refused) = (0, 0);
    for ((ws, names), answer) in requests.iter().zip(&answers) {
        match answer.status {
            200 => {
                ok += 1;
                let files = answer.body["files"].as_array().unwrap();
                assert_eq!(files.len(), names.len(), "a reservation is whole");
                reserved
                    .entry(*ws)
                    .or_default()
                    .extend(names.iter().cloned());
            }
            409 => {
                refused += 1;
                assert_eq!(answer.code(), "quota_exceeded", "{:?}", answer.body);
            }
            422 => {
                refused += 1;
                assert_eq!(answer.code(), "duplicate_file", "{:?}", answer.body);
            }
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert!(ok >= 3 && refused > 0, "{ok} reserved, {refused} refused");
    for ws in workspaces {
        let (used, held) = app.counters(ws).await;
        assert_eq!((used, held), app.row_sums(ws).await, "counters equal rows");
        assert!(held <= 10 * MIB, "{held} bytes held in a 10 MiB workspace");
        assert_eq!(
            names_in(&app, ws).await,
            reserved.remove(&ws).unwrap_or_default(),
            "the rows are exactly the reserved requests' files"
        );
    }
    let text = app.metrics_text().await;
    let (sum, count) = grouped(&text, "reserve");
    if group_max == 0 {
        assert_eq!(sum, count, "no statement is shared");
    } else {
        assert!(
            sum > count,
            "some statements were shared: {sum} requests in {count}"
        );
        let alone = metric(&text, "filegate_grouped_alone_total{statement=\"reserve\"}");
        assert!(
            alone < sum - count,
            "the shared statements reserved requests themselves: {alone} of {sum} ran alone after"
        );
    }
}

/// A counter's value in a scrape, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Gives `ws` a quota of `quota` bytes.
async fn set_quota(app: &TestApp, ws: Uuid, quota: i64) {
    app.pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE workspaces SET quota_bytes = $2 WHERE id = $1",
            &[&ws, &quota],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn grouped_reservations_keep_each_request_whole_and_within_its_quota() {
    reservations_stay_all_or_nothing(256).await;
}

#[tokio::test]
async fn ungrouped_reservations_keep_the_same_rules() {
    reservations_stay_all_or_nothing(0).await;
}

#[tokio::test]
async fn concurrent_completions_share_claims_and_each_file_moves_once() {
    let app = spawn_app_with(|_| {}).await;
    let bytes = samples::pdf();
    let mut files = Vec::new();
    for i in 0..40 {
        files.push(
            app.reserve_and_upload(&format!("c{i}.pdf"), bytes.clone())
                .await,
        );
    }
    // Every file completed twice at once: one claim each holds, the other waits.
    let answers: Vec<Answer> =
        futures_util::future::join_all(files.iter().chain(files.iter()).map(|f| app.complete(f)))
            .await;
    for (file, answer) in files.iter().chain(files.iter()).zip(&answers) {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["file_uuid"], file["file_uuid"]);
        assert_eq!(answer.body["status"], "ready", "{:?}", answer.body);
    }
    let n = i64::try_from(files.len()).unwrap();
    let len = i64::try_from(bytes.len()).unwrap();
    assert_eq!(app.counters(app.tenant.workspace).await, (n * len, 0));
    assert_eq!(
        app.row_sums(app.tenant.workspace).await,
        (n * len, 0),
        "counters equal rows"
    );
    let (sum, count) = grouped(&app.metrics_text().await, "claim");
    assert!(sum > count, "claims were shared: {sum} requests in {count}");
}

#[tokio::test]
async fn one_claim_statement_gives_a_file_to_its_first_claimant_and_respects_each_reach() {
    let app = spawn_app_with(|_| {}).await;
    let file = app
        .reserve(json!({ "name": "a.pdf", "size_bytes": 10 }))
        .await;
    let id: Uuid = file["file_uuid"].as_str().unwrap().parse().unwrap();
    let other = app.create_tenant(&Limits::default()).await;
    let lease = Lease {
        base: Duration::from_secs(30),
        bytes_per_sec: 1e6,
    };
    let request = |organization_id, workspaces| ClaimRequest {
        ids: vec![id],
        organization_id,
        workspaces,
        token: Uuid::new_v4(),
        lease,
    };
    let requests = [
        // Out of reach: another organization, another workspace.
        request(Some(other.org), None),
        request(None, Some(vec![other.workspace])),
        // Within reach, twice: the earlier holds it.
        request(Some(app.tenant.org), Some(vec![app.tenant.workspace])),
        request(None, None),
    ];
    let answers = claim_many(&app.pool, &requests).await.unwrap();
    assert_eq!(answers.len(), 4);
    assert!(
        answers[0].is_empty() && answers[1].is_empty(),
        "out of reach"
    );
    assert_eq!(answers[2].len(), 1);
    assert!(
        answers[2][0].held,
        "the first claimant within reach holds it"
    );
    assert_eq!(answers[3].len(), 1);
    assert!(!answers[3][0].held, "the second finds it claimed");
    let holder: Option<Uuid> = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT completion_claim FROM files WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(holder, Some(requests[2].token));
}

#[tokio::test]
async fn batches_of_more_than_eight_files_reserve_alone() {
    let app = spawn_app_with(|_| {}).await;
    let answers = futures_util::future::join_all((0..12).map(|i| {
        let files: Vec<Value> = (0..9)
            .map(|j| json!({ "name": format!("b{i}-{j}.pdf"), "size_bytes": 10 }))
            .collect();
        let app = &app;
        async move { app.create_files(&json!({ "files": files })).await }
    }))
    .await;
    assert!(answers.iter().all(|a| a.status == 200));
    let (sum, count) = grouped(&app.metrics_text().await, "reserve");
    assert_eq!(
        (sum, count),
        (0.0, 0.0),
        "none went through a shared statement"
    );
    assert_eq!(app.file_rows(app.tenant.workspace).await, 12 * 9);
}

/// Multipart files reserved in shared statements keep their signed part digests.
#[tokio::test]
async fn grouped_multipart_reservations_keep_their_part_digests() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let app = spawn_app_with(|_| {}).await;
    let digest =
        |n: u8| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest([n]));
    app.pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE workspaces SET max_file_bytes = $2 WHERE id = $1",
            &[&app.tenant.workspace, &(64 * MIB)],
        )
        .await
        .unwrap();
    let answers = futures_util::future::join_all((0..16).map(|i| {
        let body = json!({ "files": [{
            "name": format!("m{i}.txt"),
            "size_bytes": 6 * MIB,
            "upload_method": "MULTIPART",
            "part_size_bytes": 5 * MIB,
            "part_checksums_sha256": [digest(1), digest(2)],
        }] });
        let app = &app;
        async move { app.create_files(&body).await }
    }))
    .await;
    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    let rows: Vec<(i64, i64)> = app
        .pool
        .get()
        .await
        .unwrap()
        .query(
            "SELECT (SELECT count(*) FROM file_parts p WHERE p.file_id = f.id), f.part_count::int8
               FROM files f WHERE f.workspace_id = $1",
            &[&app.tenant.workspace],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| *r == (2, 2)), "{rows:?}");
    let text = app.metrics_text().await;
    let (sum, count) = grouped(&text, "reserve");
    assert!(sum > count, "some shared a statement: {sum} in {count}");
    let alone = metric(&text, "filegate_grouped_alone_total{statement=\"reserve\"}");
    assert!(
        alone < sum - count,
        "the shared statements reserved them: {alone} ran alone"
    );
}
