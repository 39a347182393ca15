//! POST /v2/files/complete: up to fifty files verified together, each with its own
//! outcome, all transitions in one statement; against real Postgres and the S3 store.

use filegate_domain::Limits;
use filegate_tests::{
    Answer, TestApp, samples, spawn_app, spawn_app_behind_store_proxy, spawn_app_with,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

fn id(file: &Value) -> &str {
    file["file_uuid"].as_str().unwrap()
}

async fn complete_batch(app: &TestApp, ids: &[&str]) -> Answer {
    complete_batch_as(app, &app.tenant.key, &json!({ "file_uuids": ids })).await
}

async fn complete_batch_as(app: &TestApp, key: &str, body: &Value) -> Answer {
    let res = app
        .request_as(key, Method::POST, "/v2/files/complete")
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

/// The value of a metric series (its full name with labels), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A file reserved as a PDF whose bytes are an executable: the signed type and length
/// hold, the first bytes do not.
async fn impostor(app: &TestApp, name: &str) -> Value {
    let bytes = samples::elf();
    let file = app
        .reserve(json!({ "name": name, "size_bytes": bytes.len() }))
        .await;
    assert_eq!(app.upload(&file, bytes).await, 200);
    file
}

#[tokio::test]
async fn a_batch_gives_each_file_its_own_outcome_in_one_settling_statement() {
    let app = spawn_app().await;
    let ws = app.tenant.workspace;
    let txt = app.reserve_and_upload("notes.txt", samples::txt()).await;
    let pdf = app.reserve_and_upload("q3.pdf", samples::pdf()).await;
    let spoof = impostor(&app, "invoice.pdf").await;
    let missing = app
        .reserve(json!({ "name": "later.md", "size_bytes": 10 }))
        .await;
    let already = app.reserve_and_upload("done.html", samples::html()).await;
    assert_eq!(app.complete(&already).await.status, 200);
    let refused = impostor(&app, "receipt.pdf").await;
    app.complete(&refused)
        .await
        .assert_error(422, "upload_mismatch");
    let other = app.create_tenant(&Limits::default()).await;
    let foreign = {
        let bytes = samples::txt();
        let res = app
            .create_files_as(
                &other.key,
                &json!({ "files": [{ "name": "theirs.txt", "size_bytes": bytes.len() }] }),
            )
            .await;
        let file = res.body["files"][0].clone();
        assert_eq!(app.upload(&file, bytes).await, 200);
        file
    };
    let unknown = Uuid::new_v4().to_string();
    let before = app.metrics_text().await;

    let order = [
        id(&txt),
        id(&spoof),
        id(&missing),
        id(&already),
        id(&refused),
        id(&foreign),
        unknown.as_str(),
        id(&pdf),
    ];
    let res = complete_batch(&app, &order).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let entries = res.body["files"].as_array().unwrap();
    assert_eq!(entries.len(), order.len(), "one entry per file, in order");
    for (entry, id) in entries.iter().zip(order) {
        assert_eq!(entry["file_uuid"], id, "{entry}");
    }
    let code = |i: usize| entries[i]["error"]["code"].as_str().unwrap_or("");
    assert_eq!(entries[0]["status"], "ready");
    assert_eq!(entries[0]["size_bytes"], samples::txt().len());
    assert_eq!(code(1), "upload_mismatch");
    assert!(
        entries[1]["error"]["details"]["rejection_reason"]
            .as_str()
            .unwrap()
            .contains("PDF"),
        "{}",
        entries[1]
    );
    assert_eq!(code(2), "upload_missing");
    assert_eq!(entries[3]["status"], "ready", "a ready file answers itself");
    assert_eq!(code(4), "invalid_state");
    assert_eq!(code(5), "not_found", "another tenant's file is not there");
    assert_eq!(code(6), "not_found");
    assert_eq!(entries[7]["status"], "ready");

    assert_eq!(app.file_status(&txt).await.0, "ready");
    assert_eq!(app.file_status(&pdf).await.0, "ready");
    assert_eq!(app.file_status(&spoof).await.0, "rejected");
    assert_eq!(app.file_status(&missing).await.0, "pending");
    assert_eq!(app.file_status(&foreign).await.0, "pending", "untouched");
    assert!(!app.object_exists(&filegate_tests::upload_key(&spoof)).await);
    for f in [&txt, &pdf] {
        assert!(
            app.object_exists(f["remote_file_path"].as_str().unwrap())
                .await
        );
    }
    let used = (samples::txt().len() + samples::pdf().len() + samples::html().len()) as i64;
    assert_eq!(
        app.counters(ws).await,
        (used, 10),
        "the missing file keeps its hold"
    );
    assert_eq!(
        app.row_sums(ws).await,
        app.counters(ws).await,
        "counters equal rows"
    );

    // Two files ready and one rejected: three transitions, in one settling statement.
    let after = app.metrics_text().await;
    let delta = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(delta("filegate_completions_total{outcome=\"ready\"}"), 2.0);
    assert_eq!(
        delta("filegate_completions_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(delta("filegate_completion_commit_transitions_count"), 1.0);
    assert_eq!(delta("filegate_completion_commit_transitions_sum"), 3.0);

    // The missing file's claim was given back: once uploaded it completes at once.
    assert_eq!(app.upload(&missing, b"# ten bb\n\n".to_vec()).await, 200);
    let resumed = complete_batch(&app, &[id(&missing)]).await;
    assert_eq!(
        resumed.body["files"][0]["status"], "ready",
        "{:?}",
        resumed.body
    );
    assert_eq!(app.row_sums(ws).await, (used + 10, 0));
    assert_eq!(app.counters(ws).await, (used + 10, 0));
}

/// A delete that waits for a settling session on its file takes the settled bytes out
/// of the counters. It once read the file as the settlement left it (ready) and its
/// workspace's counters as they were before (the reservation still held, nothing
/// used), and failed a check constraint with a 500, or made the counters drift.
#[tokio::test]
async fn a_delete_waiting_on_its_files_settlement_takes_the_settled_bytes() {
    let app = spawn_app().await;
    let ws = app.tenant.workspace;
    let kept = app.reserve_and_upload("kept.txt", samples::txt()).await;
    let file = app.reserve_and_upload("settling.txt", samples::txt()).await;
    let id = Uuid::parse_str(self::id(&file)).unwrap();
    let size = i64::try_from(samples::txt().len()).unwrap();
    // Another session settles the file as the settling statement does (the file and
    // its workspace's counters in one transaction) and holds its locks.
    let mut conn = app.pool.get().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.execute(
        "UPDATE workspaces w SET reserved_bytes = w.reserved_bytes - f.reserved_bytes,
                used_bytes = w.used_bytes + $2, pending_files = w.pending_files - 1
           FROM files f WHERE f.id = $1 AND w.id = f.workspace_id",
        &[&id, &size],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE files SET status = 'ready', reserved_bytes = $2, size_bytes = $2,
                completed_at = now() WHERE id = $1",
        &[&id, &size],
    )
    .await
    .unwrap();
    let delete = tokio::spawn({
        let pool = app.pool.clone();
        async move { filegate_db::files::delete(&pool, id, ws, std::time::Duration::from_secs(1)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !delete.is_finished(),
        "the delete waits for the settling session"
    );
    tx.commit().await.unwrap();
    let deleted = delete.await.unwrap();
    assert!(deleted.as_ref().is_ok_and(Option::is_some), "{deleted:?}");
    assert_eq!(
        app.row_sums(ws).await,
        app.counters(ws).await,
        "counters equal rows"
    );
    assert_eq!(app.file_status(&kept).await.0, "pending");
}

/// Completes in a batch, singly and deletes all race; every file makes at most one
/// transition, and the counters equal the rows.
async fn race(app: &TestApp) {
    let ws = app.tenant.workspace;
    let mut files = Vec::new();
    for i in 0..30 {
        files.push(
            app.reserve_and_upload(&format!("race-{i}.txt"), samples::txt())
                .await,
        );
    }
    let ids: Vec<&str> = files.iter().map(id).collect();
    let (deleted, kept) = files.split_at(10);
    let before = app.metrics_text().await;
    let batches = [&ids[..], &ids[5..25], &ids[..]]
        .into_iter()
        .map(|batch| complete_batch(app, batch));
    let singles = files
        .iter()
        .map(|f| async move { app.complete(f).await.status });
    let deletes = deleted.iter().map(|f| async move {
        let path = format!("/v2/files/{}", id(f));
        app.request(Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let (batches, singles, deletes) = tokio::join!(
        futures_util::future::join_all(batches),
        futures_util::future::join_all(singles),
        futures_util::future::join_all(deletes)
    );
    assert!(deletes.iter().all(|s| *s == 204), "{deletes:?}");
    for b in &batches {
        assert_eq!(b.status, 200, "{:?}", b.body);
        for entry in b.body["files"].as_array().unwrap() {
            // A file is ready, or it was deleted under the completion.
            assert!(
                entry["status"] == "ready" || entry["error"]["code"] == "not_found",
                "{entry}"
            );
        }
    }
    assert!(
        singles.iter().all(|s| *s == 200 || *s == 404),
        "{singles:?}"
    );
    for f in kept {
        assert_eq!(app.file_status(f).await.0, "ready");
    }
    for f in deleted {
        assert!(
            !app.object_exists(f["remote_file_path"].as_str().unwrap())
                .await,
            "a deleted file leaves no served copy behind"
        );
    }
    let size = samples::txt().len() as i64;
    assert_eq!(app.counters(ws).await, (20 * size, 0));
    assert_eq!(
        app.row_sums(ws).await,
        app.counters(ws).await,
        "counters equal rows"
    );
    let after = app.metrics_text().await;
    let ready = metric(&after, "filegate_completions_total{outcome=\"ready\"}")
        - metric(&before, "filegate_completions_total{outcome=\"ready\"}");
    let used = metric(&after, "filegate_quota_bytes_total{change=\"used\"}")
        - metric(&before, "filegate_quota_bytes_total{change=\"used\"}");
    // Deleted files may have become ready first; no file became ready twice.
    assert!(
        (20.0..=30.0).contains(&ready),
        "{ready} transitions to ready"
    );
    assert_eq!(
        used,
        ready * size as f64,
        "usage counted once per transition"
    );
}

#[tokio::test]
async fn a_batch_racing_single_completes_and_deletes_makes_one_transition_per_file() {
    race(&spawn_app().await).await;
}

#[tokio::test]
async fn without_grouped_commits_the_same_race_holds() {
    race(&spawn_app_with(|s| s.reaper.completion_group_max = 0).await).await;
}

#[tokio::test]
async fn the_batch_route_answers_hostile_input_with_the_envelope_and_changes_nothing() {
    let app = spawn_app().await;
    let file = app.reserve_and_upload("a.txt", samples::txt()).await;
    let key = app.tenant.key.clone();
    let send = |body: Value| {
        let (app, key) = (&app, &key);
        async move { complete_batch_as(app, key, &body).await }
    };

    send(json!({ "file_uuids": [] }))
        .await
        .assert_error(422, "invalid_metadata");
    let many: Vec<String> = (0..51).map(|_| Uuid::new_v4().to_string()).collect();
    send(json!({ "file_uuids": many }))
        .await
        .assert_error(422, "invalid_metadata");
    let twice = send(json!({ "file_uuids": [id(&file), id(&file)] })).await;
    twice.assert_error(422, "invalid_metadata");
    assert_eq!(twice.body["error"]["details"]["files"][0]["index"], 1);
    for body in [
        json!({ "file_uuids": ["not-a-uuid"] }),
        json!({ "file_uuids": [id(&file)], "force": true }),
        json!({ "files": [id(&file)] }),
        json!({ "file_uuids": id(&file) }),
        json!([id(&file)]),
    ] {
        let res = send(body.clone()).await;
        assert!(
            matches!(res.status, 400 | 422) && res.body["error"]["code"].is_string(),
            "{body}: {} {:?}",
            res.status,
            res.body
        );
    }
    let raw = app
        .request(Method::POST, "/v2/files/complete")
        .header("content-type", "application/json")
        .body("{\"file_uuids\": [")
        .send()
        .await
        .unwrap();
    Answer::of(raw).await.assert_error(400, "invalid_request");
    let get = Answer::of(
        app.request(Method::GET, "/v2/files/complete")
            .send()
            .await
            .unwrap(),
    )
    .await;
    get.assert_error(405, "method_not_allowed");
    assert_eq!(get.header("allow"), Some("POST"));
    let anonymous = reqwest::Client::new()
        .post(format!("{}/v2/files/complete", app.address))
        .json(&json!({ "file_uuids": [id(&file)] }))
        .send()
        .await
        .unwrap();
    Answer::of(anonymous)
        .await
        .assert_error(401, "unauthenticated");

    // A key scoped to another workspace of the organization does not reach the file.
    let w2 = app
        .create_workspace(app.tenant.org, &Limits::default())
        .await;
    let (scoped, _) = app.create_key(app.tenant.org, Some(vec![w2]), None).await;
    let res = complete_batch_as(&app, &scoped, &json!({ "file_uuids": [id(&file)] })).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["files"][0]["error"]["code"], "not_found");

    // Nothing above moved the file.
    assert_eq!(app.file_status(&file).await.0, "pending");
    let res = complete_batch(&app, &[id(&file)]).await;
    assert_eq!(res.body["files"][0]["status"], "ready", "{:?}", res.body);
}

#[tokio::test]
async fn with_the_store_unreachable_each_file_is_unavailable_and_stays_pending() {
    let (app, proxy) = spawn_app_behind_store_proxy(|_| {}).await;
    let a = app.reserve_and_upload("a.md", samples::markdown()).await;
    let b = app.reserve_and_upload("b.txt", samples::txt()).await;
    proxy.cut();
    let res = complete_batch(&app, &[id(&a), id(&b)]).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    for entry in res.body["files"].as_array().unwrap() {
        assert_eq!(entry["error"]["code"], "unavailable", "{entry}");
    }
    assert_eq!(app.file_status(&a).await.0, "pending");
    assert_eq!(app.file_status(&b).await.0, "pending");
    // The claims were given back: with the store back, both complete at once.
    proxy.restore();
    let res = complete_batch(&app, &[id(&a), id(&b)]).await;
    for entry in res.body["files"].as_array().unwrap() {
        assert_eq!(entry["status"], "ready", "{entry}");
    }
    let ws = app.tenant.workspace;
    assert_eq!(app.row_sums(ws).await, app.counters(ws).await);
}

/// A completion whose claim lapsed while its transition waited for the settlement in
/// flight, grouped into one statement with the transition of the completion that holds
/// the new claim: the file moves once, by the new claim, and only that completion is
/// told it moved it. (Told otherwise, the loser would run its rejection's clean-up and
/// delete the objects the winner's ready file is served from.)
#[tokio::test]
async fn a_lapsed_claims_transition_grouped_with_the_new_claims_learns_it_lost() {
    use filegate_db::completion::{Lease, Reach, Target, Transition, claim};
    use std::time::Duration;
    let app = spawn_app().await;
    let contested = app
        .reserve_and_upload("contested.txt", samples::txt())
        .await;
    let blocker = app.reserve_and_upload("blocker.txt", samples::txt()).await;
    let (id, blocker_id) = (
        Uuid::parse_str(self::id(&contested)).unwrap(),
        Uuid::parse_str(self::id(&blocker)).unwrap(),
    );
    let size = i64::try_from(samples::txt().len()).unwrap();
    let ready = || Target::Ready {
        size,
        etag: "\"verified\"".to_owned(),
    };
    let lease = |ms| Lease {
        base: Duration::from_millis(ms),
        bytes_per_sec: f64::MAX,
    };
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let held = |claimed: Vec<filegate_db::completion::Claimed>| claimed.iter().all(|c| c.held);
    assert!(held(
        claim(&app.pool, &[id], Reach::default(), a, lease(50))
            .await
            .unwrap()
    ));
    assert!(held(
        claim(&app.pool, &[blocker_id], Reach::default(), c, lease(60_000))
            .await
            .unwrap()
    ));

    // The settlement in flight waits on a row another session holds.
    let group = filegate::service::group_commit::GroupCommit::new(
        filegate::service::group_commit::Settlements {
            pool: app.pool.clone(),
            margin: Duration::from_secs(1),
        },
        100,
    );
    let mut conn = app.pool.get().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM files WHERE id = $1 FOR UPDATE",
        &[&blocker_id],
    )
    .await
    .unwrap();
    let commit = |t: Transition| {
        let group = group.clone();
        tokio::spawn(async move { group.run(vec![t]).await })
    };
    let in_flight = commit(Transition {
        id: blocker_id,
        token: c,
        target: ready(),
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!in_flight.is_finished(), "the settlement waits on the lock");

    // A's claim lapses while A's rejection waits; B claims the file and queues ready.
    let lost = commit(Transition {
        id,
        token: a,
        target: Target::Rejected {
            reason: "checked against an older version".to_owned(),
        },
    });
    assert!(held(
        claim(&app.pool, &[id], Reach::default(), b, lease(60_000))
            .await
            .unwrap()
    ));
    let won = commit(Transition {
        id,
        token: b,
        target: ready(),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.commit().await.unwrap();

    assert_eq!(in_flight.await.unwrap().unwrap().len(), 1);
    let won = won.await.unwrap().unwrap();
    assert_eq!(won.len(), 1, "the new claim moved the file");
    assert_eq!(won[0].status, filegate_domain::FileStatus::Ready);
    let lost = lost.await.unwrap().unwrap();
    assert!(
        lost.is_empty(),
        "the lapsed claim is told it moved nothing: {lost:?}"
    );
    assert_eq!(app.file_status(&contested).await.0, "ready");
    let ws = app.tenant.workspace;
    assert_eq!(app.row_sums(ws).await, app.counters(ws).await);
}
