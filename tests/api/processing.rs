//! Processing after `ready`: a video's frames and metadata made by ffmpeg in a bounded
//! child process, from a job the ready transition wrote; hostile videos that fail
//! their job and never the server; frames owned by their file's row (deleted with it,
//! found by reconciliation, counted in the quota); two replicas sharing the queue.

use std::time::{Duration, Instant};

use filegate::jobs::Job as _;
use filegate_domain::{ContentType, Limits};
use filegate_tests::{
    Answer, Tenant, TestApp, free_port, reaper_settings, samples, spawn_app, spawn_app_with, video,
    wait_healthy,
};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

/// A tenant whose workspace takes videos (and everything else) up to 64 MiB.
async fn video_tenant(app: &TestApp) -> Tenant {
    app.create_tenant(&Limits {
        allowed_types: ContentType::ALL.to_vec(),
        max_file_bytes: 64 << 20,
        ..Limits::default()
    })
    .await
}

async fn call(app: &TestApp, key: &str, method: Method, path: &str) -> Answer {
    Answer::of(app.request_as(key, method, path).send().await.unwrap()).await
}

/// `GET /v2/files/{file}` as `key`.
async fn get_file(app: &TestApp, key: &str, file: Uuid) -> Answer {
    call(app, key, Method::GET, &format!("/v2/files/{file}")).await
}

/// `GET /v2/files/{file}/frames` as `key`.
async fn frames_of(app: &TestApp, key: &str, file: Uuid) -> Answer {
    call(app, key, Method::GET, &format!("/v2/files/{file}/frames")).await
}

/// Reserves, uploads and completes `bytes` as `name`; the completion's answer.
async fn upload(app: &TestApp, key: &str, name: &str, bytes: Vec<u8>) -> Answer {
    app.reserve_upload_complete_as(key, name, bytes).await.1
}

/// The bytes a ready file's download URL serves, reached with `key`.
async fn download(app: &TestApp, key: &str, file: Uuid) -> Vec<u8> {
    let got = get_file(app, key, file).await;
    let url = got.body["download_url"].as_str().expect("a download URL");
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn id(file: &Value) -> Uuid {
    file["file_uuid"].as_str().unwrap().parse().unwrap()
}

/// Polls `GET …/status` until processing ends (completed or failed); the last answer.
async fn settled(app: &TestApp, key: &str, file: Uuid) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = call(app, key, Method::GET, &format!("/v2/files/{file}/status")).await;
        assert_eq!(s.status, 200, "{:?}", s.body);
        let status = s.body["processing_status"].as_str().unwrap().to_owned();
        if status == "completed" || status == "failed" {
            return s.body;
        }
        assert_eq!(status, "processing", "{:?}", s.body);
        assert!(
            Instant::now() < deadline,
            "processing did not end: {:?}",
            s.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The file's derived objects' keys and sizes, from its rows.
async fn derived_rows(app: &TestApp, file: Uuid) -> Vec<(String, i64)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT object_key, size_bytes FROM derived_objects WHERE file_id = $1 ORDER BY seq",
            &[&file],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The job of a file: `(state, attempts, last_error)`.
async fn job(app: &TestApp, file: Uuid) -> Option<(String, i32, Option<String>)> {
    let client = app.pool.get().await.unwrap();
    client
        .query_opt(
            "SELECT state, attempts, last_error FROM processing_jobs WHERE file_id = $1",
            &[&file],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::test]
async fn a_video_gets_frames_at_the_rate_and_its_metadata_and_stays_ready_throughout() {
    let app = spawn_app().await;
    let t = video_tenant(&app).await;
    let bytes = video::short_mp4();
    let size = bytes.len() as i64;
    let done = upload(&app, &t.key, "clip.mp4", bytes.clone()).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    // Ready at once, and downloadable while its frames are made.
    assert_eq!(done.body["status"], "ready");
    assert_eq!(done.body["file_type"], "video");
    let file = id(&done.body);
    let status = settled(&app, &t.key, file).await;
    assert_eq!(status["processing_status"], "completed", "{status}");
    assert_eq!(status["error_message"], Value::Null);

    let got = get_file(&app, &t.key, file).await;
    assert_eq!(got.body["status"], "ready");
    assert_eq!(got.body["processing_status"], "completed");
    let meta = &got.body["video_metadata"];
    assert_eq!(meta["width"], 320, "{meta}");
    assert_eq!(meta["height"], 240);
    assert_eq!(meta["codec"], "h264");
    assert_eq!(meta["fps"], 10.0);
    assert_eq!(meta["frame_count"], 3);
    assert_eq!(meta["frame_rate"], 1.0);
    let duration = meta["duration_seconds"].as_f64().unwrap();
    assert!((2.9..=3.1).contains(&duration), "{meta}");
    assert_eq!(
        download(&app, &t.key, file).await,
        bytes,
        "the video itself is untouched"
    );

    let frames = frames_of(&app, &t.key, file).await;
    assert_eq!(frames.status, 200, "{:?}", frames.body);
    assert_eq!(frames.body["file_uuid"], file.to_string());
    assert_eq!(frames.body["frame_count"], 3);
    let urls = frames.body["frame_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 3);
    let mut frame_bytes = 0;
    for url in urls {
        let res = reqwest::get(url.as_str().unwrap()).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        let body = res.bytes().await.unwrap();
        assert_eq!(video::jpeg_size(&body), Some((320, 240)), "a 320×240 JPEG");
        frame_bytes += body.len() as i64;
    }
    // Frame order: the keys' numbers ascend with the URLs.
    let rows = derived_rows(&app, file).await;
    for (url, (key, _)) in urls.iter().zip(&rows) {
        assert!(
            url.as_str().unwrap().contains(key.as_str()),
            "{url} names {key}"
        );
    }
    // The frames count against the quota, as part of the file's held bytes.
    assert_eq!(rows.iter().map(|(_, s)| s).sum::<i64>(), frame_bytes);
    assert_eq!(app.counters(t.workspace).await, (size + frame_bytes, 0));
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );
    let usage = call(
        &app,
        &t.key,
        Method::GET,
        &format!("/v2/workspaces/{}/usage", t.workspace),
    )
    .await;
    assert_eq!(usage.body["used_bytes"], size + frame_bytes);
    assert_eq!(job(&app, file).await.unwrap().0, "done");

    // The list shows it too (Aymara's `items`).
    let list = call(&app, &t.key, Method::GET, "/v2/files?file_type=video").await;
    assert_eq!(list.body["items"][0]["video_metadata"]["frame_count"], 3);
}

#[tokio::test]
async fn a_webm_is_processed_and_other_types_have_no_frames() {
    let app = spawn_app().await;
    let t = video_tenant(&app).await;
    let done = upload(&app, &t.key, "clip.webm", video::short_webm()).await;
    assert_eq!(done.body["status"], "ready", "{:?}", done.body);
    let file = id(&done.body);
    assert_eq!(
        settled(&app, &t.key, file).await["processing_status"],
        "completed"
    );
    let got = get_file(&app, &t.key, file).await;
    assert_eq!(got.body["video_metadata"]["codec"], "vp9");
    let frames = frames_of(&app, &t.key, file).await;
    assert_eq!(frames.body["frame_count"], 2, "{:?}", frames.body);

    // A PDF has no processor: completed at once, no job, and no frames to ask for.
    let pdf = upload(&app, &t.key, "a.pdf", samples::pdf()).await;
    let pdf_id = id(&pdf.body);
    assert_eq!(pdf.body["processing_status"], "completed");
    assert_eq!(pdf.body["video_metadata"], Value::Null);
    assert!(job(&app, pdf_id).await.is_none());
    let no = frames_of(&app, &t.key, pdf_id).await;
    assert_eq!(no.status, 422, "{:?}", no.body);
    assert_eq!(no.body["error"]["code"], "unsupported_type");
    // Nobody else's file, and no file at all.
    let other = app.create_tenant(&Limits::default()).await;
    let hidden = frames_of(&app, &other.key, file).await;
    assert_eq!(hidden.status, 404);
    let none = call(
        &app,
        &t.key,
        Method::GET,
        &format!("/v2/files/{}/frames", Uuid::now_v7()),
    )
    .await;
    assert_eq!(none.status, 404);
    assert_eq!(none.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn frames_before_processing_completes_are_409_and_reprocess_catches_up_missed_videos() {
    // No worker in this replica, and none registered yet.
    let app = spawn_app_with(|s| s.processing.processing_poll = Duration::ZERO).await;
    let t = video_tenant(&app).await;
    // Ready before any replica ran the video processor: no job, and no frames.
    let missed = id(&upload(&app, &t.key, "missed.mp4", video::short_mp4())
        .await
        .body);
    assert!(job(&app, missed).await.is_none());
    let none = frames_of(&app, &t.key, missed).await;
    assert_eq!(none.status, 409, "{:?}", none.body);
    assert_eq!(
        none.body["error"]["details"]["processing_status"],
        "completed"
    );

    // A replica with a worker starts (it registers the video types), not yet working.
    let worker = worker(&app).await;
    let done = upload(&app, &t.key, "clip.mp4", video::short_mp4()).await;
    let file = id(&done.body);
    assert_eq!(done.body["status"], "ready");
    assert_eq!(done.body["processing_status"], "processing");
    let early = frames_of(&app, &t.key, file).await;
    assert_eq!(early.status, 409, "{:?}", early.body);
    assert_eq!(early.body["error"]["code"], "invalid_state");
    assert_eq!(
        early.body["error"]["details"]["processing_status"],
        "processing"
    );
    assert_eq!(job(&app, file).await.unwrap().0, "queued");

    // The operator queues the missed video; the worker takes both up.
    let out = app
        .command("admin")
        .await
        .args(["reprocess", "--workspace", &t.workspace.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "queued 1 files for processing"
    );
    assert_eq!(
        get_file(&app, &t.key, missed).await.body["processing_status"],
        "processing"
    );
    let _worker = tokio::spawn(worker.run());
    for f in [file, missed] {
        assert_eq!(
            settled(&app, &t.key, f).await["processing_status"],
            "completed"
        );
        assert_eq!(frames_of(&app, &t.key, f).await.body["frame_count"], 3);
    }
    // Nothing left to queue again.
    let again = app
        .command("admin")
        .await
        .arg("reprocess")
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "queued 0 files for processing"
    );
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );
}

/// The derived objects the store holds under a workspace.
async fn stored_derived(app: &TestApp, workspace: Uuid) -> Vec<String> {
    app.s3()
        .await
        .list_objects_v2()
        .bucket(&app.settings.storage.s3_bucket)
        .prefix(format!("derived/{workspace}/"))
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// A 720p video through an app whose processing is bounded by `bound`; the failure
/// reason, once the server has shown it still serves.
async fn bounded_failure(
    bound: impl FnOnce(&mut filegate::settings::ServeSettings),
    big: Vec<u8>,
) -> String {
    let app = spawn_app_with(bound).await;
    let t = video_tenant(&app).await;
    let file = id(&upload(&app, &t.key, "heavy.mp4", big).await.body);
    let s = settled(&app, &t.key, file).await;
    assert_eq!(s["processing_status"], "failed", "{s}");
    // Failed for good on its first run, nothing derived left, the file still served.
    assert_eq!(
        job(&app, file).await.unwrap(),
        (
            "dead".to_owned(),
            1,
            s["error_message"].as_str().map(str::to_owned)
        )
    );
    assert!(stored_derived(&app, t.workspace).await.is_empty());
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    let got = get_file(&app, &t.key, file).await;
    assert_eq!(got.body["status"], "ready");
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );
    s["error_message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn hostile_videos_fail_their_processing_never_the_server() {
    let app = spawn_app().await;
    let t = video_tenant(&app).await;

    // Truncated: the header is there (completion takes it as an MP4), the index is not.
    let whole = video::short_mp4();
    let truncated = whole[..whole.len() / 2].to_vec();
    let cut = upload(&app, &t.key, "cut.mp4", truncated.clone()).await;
    assert_eq!(cut.body["status"], "ready", "{:?}", cut.body);
    let cut_id = id(&cut.body);
    let s = settled(&app, &t.key, cut_id).await;
    assert_eq!(s["processing_status"], "failed", "{s}");
    let reason = s["error_message"].as_str().unwrap();
    assert!(reason.contains("ffprobe failed"), "{reason}");
    // Not retried: the fault is the file's own.
    assert_eq!(job(&app, cut_id).await.unwrap().0, "dead");
    assert_eq!(job(&app, cut_id).await.unwrap().1, 1);
    // The file stays ready and downloadable; it has no frames.
    let got = get_file(&app, &t.key, cut_id).await;
    assert_eq!(got.body["status"], "ready");
    assert_eq!(download(&app, &t.key, cut_id).await, truncated);
    let frames = frames_of(&app, &t.key, cut_id).await;
    assert_eq!(frames.status, 409);
    assert_eq!(
        frames.body["error"]["details"]["processing_status"],
        "failed"
    );
    assert_eq!(frames.body["error"]["details"]["error_message"], reason);

    // A ZIP named .mp4 never gets that far: completion rejects it, and it has no job.
    let zip = upload(
        &app,
        &t.key,
        "archive.mp4",
        samples::zip(&[("a.txt", "hi")]),
    )
    .await;
    assert_eq!(zip.status, 422, "{:?}", zip.body);
    let zip_row: Uuid = {
        let client = app.pool.get().await.unwrap();
        client
            .query_one("SELECT id FROM files WHERE name = 'archive.mp4'", &[])
            .await
            .unwrap()
            .get(0)
    };
    let zip_status = call(
        &app,
        &t.key,
        Method::GET,
        &format!("/v2/files/{zip_row}/status"),
    )
    .await;
    assert_eq!(zip_status.body["processing_status"], "failed");
    assert!(job(&app, zip_row).await.is_none());

    // The server still serves, and a good video still processes.
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    let good = id(&upload(&app, &t.key, "good.mp4", video::short_mp4())
        .await
        .body);
    assert_eq!(
        settled(&app, &t.key, good).await["processing_status"],
        "completed"
    );
    assert!(derived_rows(&app, cut_id).await.is_empty());
    let mut recorded: Vec<String> = derived_rows(&app, good)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut stored = stored_derived(&app, t.workspace).await;
    recorded.sort();
    stored.sort();
    assert_eq!(stored, recorded, "no derived object of a failed job stays");
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );

    // A 720p video past a 320 MiB memory bound (ffmpeg starts in it, decoding needs
    // more): its allocations fail and the job fails with ffmpeg's words.
    let big = video::long_720p_mp4();
    let reason = bounded_failure(
        |s| s.processing.processing_memory_bytes = 320 << 20,
        big.clone(),
    )
    .await;
    assert!(reason.contains("ffmpeg failed"), "{reason}");
    // Past a 100 ms time bound (decoding it takes a few hundred): killed.
    let reason = bounded_failure(
        |s| s.processing.processing_timeout = Duration::from_millis(100),
        big,
    )
    .await;
    assert!(
        reason.contains("ran past the processing time bound"),
        "{reason}"
    );
}

#[tokio::test]
async fn frames_are_deleted_with_their_file_and_reconciliation_finds_those_of_gone_files() {
    // On the heap: the whole scenario's future is larger than a test thread's stack.
    Box::pin(deleted_and_reconciled()).await;
}

async fn deleted_and_reconciled() {
    let app = spawn_app().await;
    let t = video_tenant(&app).await;
    let a = id(&upload(&app, &t.key, "a.mp4", video::short_mp4()).await.body);
    let b = id(&upload(&app, &t.key, "b.mp4", video::short_mp4()).await.body);
    for f in [a, b] {
        assert_eq!(
            settled(&app, &t.key, f).await["processing_status"],
            "completed"
        );
    }
    let (a_frames, b_frames) = (derived_rows(&app, a).await, derived_rows(&app, b).await);
    assert_eq!((a_frames.len(), b_frames.len()), (3, 3));
    for (key, _) in a_frames.iter().chain(&b_frames) {
        assert!(
            key.starts_with(&format!("derived/{}/", t.workspace)),
            "{key}"
        );
        assert!(app.object_exists(key).await, "{key}");
    }
    // A pass with no upload window: every object no row owns is due. Boxed: the
    // pass's future is large for a test thread's stack.
    let reconcile = || {
        let pass = filegate::jobs::Reconciler::new(
            app.pool.clone(),
            app.storage.clone(),
            Duration::ZERO,
            Duration::ZERO,
            false,
        );
        Box::pin(async move { pass.run_once().await.unwrap().unwrap() })
    };

    // Deleting a deletes its frames: their rows go with its row and queue the objects'
    // deletion, which the reaper carries out.
    let deleted = call(&app, &t.key, Method::DELETE, &format!("/v2/files/{a}")).await;
    assert_eq!(deleted.status, 204);
    assert!(
        derived_rows(&app, a).await.is_empty(),
        "its rows went with it"
    );
    let queued: Vec<String> = {
        let client = app.pool.get().await.unwrap();
        client
            .query("SELECT object_key FROM object_deletions WHERE object_key LIKE 'derived/%' ORDER BY 1", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let mut a_keys: Vec<String> = a_frames.iter().map(|(k, _)| k.clone()).collect();
    a_keys.sort();
    assert_eq!(queued, a_keys);
    Box::pin(
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), reaper_settings(100))
            .run_once(),
    )
    .await
    .unwrap();
    for (key, _) in &a_frames {
        assert!(!app.object_exists(key).await, "{key} deleted with its file");
    }
    for (key, _) in &b_frames {
        assert!(app.object_exists(key).await, "{key} kept");
    }

    // Frames no row owns (a run that died after uploading, before recording; a file
    // deleted while its frames were on their way): reconciliation finds and deletes
    // them, never b's recorded ones.
    let strays = [
        filegate_domain::keys::derived_key(t.workspace, b, 9, "frame", 1, "jpg"),
        filegate_domain::keys::derived_key(t.workspace, Uuid::now_v7(), 1, "frame", 1, "jpg"),
    ];
    for stray in &strays {
        app.put_object(stray, samples::jpeg(), "image/jpeg", None)
            .await;
    }
    // While b's job runs, its unrecorded frames are its run's, however old.
    let set_running = |running: bool| {
        let pool = app.pool.clone();
        async move {
            let sql = if running {
                "UPDATE processing_jobs SET state = 'running', run_token = gen_random_uuid(),
                        lease_until = now() + interval '1 hour' WHERE file_id = $1"
            } else {
                "UPDATE processing_jobs SET state = 'done', run_token = NULL, lease_until = NULL WHERE file_id = $1"
            };
            pool.get().await.unwrap().execute(sql, &[&b]).await.unwrap();
        }
    };
    set_running(true).await;
    let kept = reconcile().await;
    // (Besides the strays, b's upload key is no row's once b is ready: it goes too.)
    assert!(kept.orphans_deleted >= 1, "{kept:?}");
    assert!(
        app.object_exists(&strays[0]).await,
        "a running job's frame is kept"
    );
    assert!(!app.object_exists(&strays[1]).await);
    set_running(false).await;
    let swept = reconcile().await;
    assert_eq!(swept.orphans_deleted, 1, "now the stray of b's: {swept:?}");

    for stray in &strays {
        assert!(!app.object_exists(stray).await, "{stray}");
    }
    for (key, _) in &b_frames {
        assert!(app.object_exists(key).await, "{key} kept");
    }
    // The quota gave back a's video and frames; b's are still held.
    let b_size = get_file(&app, &t.key, b).await.body["size_bytes"]
        .as_i64()
        .unwrap();
    let b_frame_bytes: i64 = b_frames.iter().map(|(_, s)| s).sum();
    assert_eq!(app.counters(t.workspace).await, (b_size + b_frame_bytes, 0));
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );
}

#[tokio::test]
async fn frames_that_do_not_fit_the_quota_fail_the_processing_and_leave_nothing() {
    let app = spawn_app().await;
    let bytes = video::short_mp4();
    // Room for the video, not for its frames.
    let t = app
        .create_tenant(&Limits {
            allowed_types: ContentType::ALL.to_vec(),
            quota_bytes: bytes.len() as i64 + 100,
            ..Limits::default()
        })
        .await;
    let file = id(&upload(&app, &t.key, "clip.mp4", bytes.clone()).await.body);
    let s = settled(&app, &t.key, file).await;
    assert_eq!(s["processing_status"], "failed");
    assert!(
        s["error_message"].as_str().unwrap().contains("quota"),
        "{s}"
    );
    assert!(derived_rows(&app, file).await.is_empty());
    assert_eq!(app.counters(t.workspace).await, (bytes.len() as i64, 0));
    // The run deleted what it had uploaded.
    assert_eq!(app.objects_of(t.workspace).await, 2);
}

/// A worker as another replica runs it (polling every 100 ms), started: the video
/// types are registered; `run` it to take jobs up.
async fn worker(app: &TestApp) -> filegate::service::processing::Processing {
    let mut settings = app.settings.processing.clone();
    settings.processing_poll = Duration::from_millis(100);
    filegate::service::processing::Processing::start(
        app.pool.clone(),
        app.storage.clone(),
        &settings,
    )
    .await
    .unwrap()
}

/// An ffmpeg that waits `secs` before it starts (so a job is surely mid-run when its
/// replica is stopped), in a directory removed when the guard drops.
fn slow_ffmpeg(secs: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("ffmpeg");
    std::fs::write(
        &slow,
        format!("#!/bin/sh\nsleep {secs}\nexec ffmpeg \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (dir, slow)
}

/// `filegate serve` on the app's database and bucket, running its processing worker
/// through `ffmpeg` with `settings` on top (the finalizer off), once it answers.
async fn replica(
    app: &TestApp,
    ffmpeg: &std::path::Path,
    settings: &[(&str, &str)],
) -> tokio::process::Child {
    let port = free_port();
    let mut cmd = app.serve_command(port).await;
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FILEGATE_FFMPEG", ffmpeg)
        .env("FILEGATE_PROCESSING_POLL_MS", "100")
        .env("FILEGATE_FINALIZER_INTERVAL_SECS", "0")
        .envs(settings.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    wait_healthy(port).await;
    child
}

/// The jobs' `(file, state, attempts, worker)`.
async fn jobs(app: &TestApp) -> Vec<(Uuid, String, i32, Option<String>)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT file_id, state, attempts, worker FROM processing_jobs ORDER BY file_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn two_replicas_share_the_queue_and_a_killed_ones_job_is_run_again_elsewhere() {
    // This process runs no worker; two `filegate serve` processes do, one job at a
    // time each, through an ffmpeg that takes a second and a half to start (so a job
    // is surely mid-run when its replica is killed).
    let app = spawn_app_with(|s| s.processing.processing_poll = Duration::ZERO).await;
    let t = video_tenant(&app).await;
    let (_dir, slow) = slow_ffmpeg("1.5");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let settings = [
            ("FILEGATE_PROCESSING_LEASE_SECS", "2"),
            ("FILEGATE_PROCESSING_CONCURRENCY", "1"),
            ("FILEGATE_RECONCILE_INTERVAL_SECS", "0"),
        ];
        replicas.push(replica(&app, &slow, &settings).await);
    }
    let mut files = Vec::new();
    for i in 0..4 {
        let done = upload(&app, &t.key, &format!("v{i}.mp4"), video::short_mp4()).await;
        assert_eq!(done.body["status"], "ready");
        files.push(id(&done.body));
    }
    // Wait until the first replica is mid-job, then SIGKILL it.
    let victim_pid = replicas[0].id().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim_job = loop {
        let running = jobs(&app).await.into_iter().find(|(_, state, _, worker)| {
            state == "running"
                && worker
                    .as_deref()
                    .is_some_and(|w| w.ends_with(&format!("/{victim_pid}")))
        });
        if let Some((file, ..)) = running {
            break file;
        }
        assert!(
            Instant::now() < deadline,
            "the first replica never ran a job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    replicas[0].start_kill().unwrap();
    replicas[0].wait().await.unwrap();

    // Every job ends done, the killed one on its second run, the others on their first.
    for f in &files {
        assert_eq!(
            settled(&app, &t.key, *f).await["processing_status"],
            "completed"
        );
    }
    let survivor = format!("/{}", replicas[1].id().unwrap());
    for (file, state, attempts, worker) in jobs(&app).await {
        assert_eq!(state, "done");
        if file == victim_job {
            assert_eq!(attempts, 2, "run again after the kill");
            assert!(worker.unwrap().ends_with(&survivor));
        } else {
            assert_eq!(attempts, 1, "each job done once");
        }
        // One run's frames, recorded once.
        let rows = derived_rows(&app, file).await;
        assert_eq!(rows.len(), 3);
        let run = format!("/{attempts}/frame-");
        assert!(rows.iter().all(|(k, _)| k.contains(&run)), "{rows:?}");
    }
    assert_eq!(
        app.counters(t.workspace).await,
        app.row_sums(t.workspace).await
    );
}

#[tokio::test]
async fn a_replica_stopping_gives_its_job_back_at_once_without_using_an_attempt() {
    let app = spawn_app_with(|s| s.processing.processing_poll = Duration::ZERO).await;
    let t = video_tenant(&app).await;
    let (_dir, slow) = slow_ffmpeg("3");
    let mut replica = replica(&app, &slow, &[("FILEGATE_PROCESSING_LEASE_SECS", "600")]).await;
    let file = id(&upload(&app, &t.key, "clip.mp4", video::short_mp4())
        .await
        .body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while job(&app, file).await.unwrap().0 != "running" {
        assert!(Instant::now() < deadline, "the replica never took the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    filegate_tests::sigterm(replica.id().unwrap());
    assert!(replica.wait().await.unwrap().success());
    // Queued again at once (its lease had ten minutes left), its run not counted.
    let (state, attempts, _) = job(&app, file).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 0));
    let worker = worker(&app).await;
    let _worker = tokio::spawn(worker.run());
    assert_eq!(
        settled(&app, &t.key, file).await["processing_status"],
        "completed"
    );
    assert_eq!(job(&app, file).await.unwrap().1, 1);
}
