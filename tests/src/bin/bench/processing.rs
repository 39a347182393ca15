//! (m) Processing: how fast the video processor makes frames against ffmpeg run
//! directly on the same videos (the limit), and what a running processor costs the hot
//! path: (a)–(d) on a filegate that is processing a queue of videos meanwhile, against
//! the same filegate idle. On a database of its own; every round on a fresh filegate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use super::instance::{Instance, drop_database, fresh_database};
use super::{Stats, Target, complete_each, cpu_seconds_by_process, drive, prepare, reserve_op};
use filegate_tests::sha256_b64;

/// The bench's video: 10 s of 640×480 at 25 fps (H.264), 10 frames at 1 a second.
fn bench_video() -> Vec<u8> {
    filegate_tests::video::ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=10:size=640x480:rate=25",
            "-pix_fmt",
            "yuv420p",
        ],
        "mp4",
    )
}

/// Frames a video of the bench gives.
const FRAMES_PER_VIDEO: f64 = 10.0;

/// Reserves, uploads and completes `n` copies of `video` in `workspace`, 4 at a time.
async fn upload_videos(
    target: &Target,
    workspace: Uuid,
    video: &Arc<Vec<u8>>,
    n: usize,
) -> Vec<Uuid> {
    let checksum = sha256_b64(video);
    let one = |i: usize| {
        let (target, video, checksum) = (target.clone(), video.clone(), checksum.clone());
        async move {
            let res: Value = target
                .http
                .post(format!("{}/v2/files", target.url))
                .bearer_auth(&*target.key)
                .json(&json!({ "workspace_uuid": workspace, "files": [{
                    "name": format!("v{i}-{}.mp4", Uuid::new_v4().simple()),
                    "size_bytes": video.len(), "checksum_sha256": checksum }] }))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let f = &res["files"][0];
            if !super::put_upload(&target.http, f, video.to_vec()).await? {
                return None;
            }
            let id: Uuid = f["file_uuid"].as_str()?.parse().ok()?;
            super::complete_one(&target, id).await.then_some(id)
        }
    };
    futures_util::stream::iter((0..n).map(one))
        .buffer_unordered(4)
        .filter_map(|id| async move { id })
        .collect()
        .await
}

/// Waits until every job of `files` is done or dead; how many ended done.
async fn wait_processed(client: &tokio_postgres::Client, files: &[Uuid]) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            Instant::now() < deadline,
            "the videos were not processed within 10 minutes"
        );
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state IN ('done', 'dead')), count(*) FILTER (WHERE state = 'done')
                   FROM processing_jobs WHERE file_id = ANY($1)",
                &[&files],
            )
            .await
            .unwrap();
        let (ended, done): (i64, i64) = (row.get(0), row.get(1));
        if ended as usize >= files.len() {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many jobs of `files` are done.
async fn finished(client: &tokio_postgres::Client, files: &[Uuid]) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM processing_jobs WHERE file_id = ANY($1) AND state = 'done'",
            &[&files],
        )
        .await
        .unwrap()
        .get(0)
}

/// ffprobe and ffmpeg run directly on `path` `n` times, `conc` at a time, with the
/// processor's arguments: the limit's frames a second.
async fn direct(path: &std::path::Path, n: usize, conc: usize) -> f64 {
    let started = Instant::now();
    let runs = (0..n).map(|_| async move {
        let dir = tempfile::tempdir().unwrap();
        let probe = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-protocol_whitelist", "file", "-f", "mov", "-print_format", "json", "-show_entries",
                   "format=duration,format_name:stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration,nb_frames",
                   "-select_streams", "v:0"])
            .arg(path)
            .output()
            .await
            .unwrap();
        assert!(probe.status.success());
        let status = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file", "-f", "mov", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf",
                   "fps=1,scale=w='min(iw,1920)':h='min(ih,1920)':force_original_aspect_ratio=decrease",
                   "-frames:v", "600", "-q:v", "3",
                   "-f", "image2", "-start_number", "1"])
            .arg(dir.path().join("%06d.jpg"))
            .status()
            .await
            .unwrap();
        assert!(status.success());
    });
    futures_util::stream::iter(runs)
        .buffer_unordered(conc)
        .collect::<Vec<()>>()
        .await;
    n as f64 * FRAMES_PER_VIDEO / started.elapsed().as_secs_f64()
}

/// CPU seconds of the processes that make frames: filegate, its tools, Postgres, Garage.
fn cpu_now() -> f64 {
    cpu_seconds_by_process()
        .iter()
        .filter(|(name, _)| {
            ["filegate", "ffmpeg", "ffprobe", "postgres", "garage"].contains(&name.as_str())
        })
        .map(|(_, s)| s)
        .sum()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One mode's rounds.
#[derive(Default)]
struct Mode {
    a: Vec<Stats>,
    b: Vec<Stats>,
    c: Vec<Stats>,
    d: Vec<Stats>,
    /// Jobs done during each round, and jobs still queued at its end.
    processed: Vec<(i64, i64)>,
}

/// Runs (m); its lines for BENCHMARKS.md.
pub async fn run(db: &str, conc: usize, seconds: u64) -> String {
    let url = fresh_database(db, "m").await;
    let client = filegate_tests::connect(&url).await;
    let tenant = super::tenant(&client).await;
    client
        .execute(
            "UPDATE workspaces SET allowed_content_types = allowed_content_types || ARRAY['video/mp4'],
                                   max_file_bytes = 67108864",
            &[],
        )
        .await
        .unwrap();
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let video = Arc::new(bench_video());
    let local = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    std::fs::write(local.path(), video.as_slice()).unwrap();
    let target_of = |instance: &Instance| Target {
        http: http.clone(),
        key: key.clone(),
        url: instance.url.clone(),
    };
    let mut out = String::from(
        "(m) processing (`BENCH_ONLY=m scripts/bench`; a database of its own): frames of a 10-second 640×480 \
         H.264 video at 1 a second, 24 videos queued first, then a fresh filegate with its worker on processes them \
         (download by ETag, ffprobe, ffmpeg under prlimit, 10 uploads, one transaction), timed from its readiness; the \
         limit is ffprobe and ffmpeg run directly on a local copy with the same arguments, as many at once:\n\n\
         | jobs at once | videos/s | frames/s | limit frames/s | ratio | CPU ms a frame (filegate, tools, Postgres, Garage) |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    const VIDEOS: usize = 24;
    // A filegate with its worker on registers the video types: from then on a ready
    // video gets its job, whichever replica made it ready.
    drop(Instance::start(&url, &[]).await);
    for jobs in [1usize, 2] {
        // Queue the videos with no worker, then time one filegate working through them.
        let queue = Instance::start(&url, &[("FILEGATE_PROCESSING_POLL_MS", "0".to_owned())]).await;
        let files = upload_videos(&target_of(&queue), ws[0], &video, VIDEOS).await;
        assert_eq!(files.len(), VIDEOS, "every video uploaded");
        drop(queue);
        let worker = Instance::start(
            &url,
            &[
                ("FILEGATE_PROCESSING_CONCURRENCY", jobs.to_string()),
                ("FILEGATE_PROCESSING_POLL_MS", "100".to_owned()),
            ],
        )
        .await;
        // From the moment it answers: its start (the tools' check, the store probe)
        // is not processing, and the jobs it finished meanwhile are left out.
        let (cpu, started) = (cpu_now(), Instant::now());
        let before = finished(&client, &files).await;
        let done = wait_processed(&client, &files).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_now() - cpu;
        drop(worker);
        assert_eq!(done as usize, VIDEOS, "every job done");
        let done = done - before;
        let frames = done as f64 * FRAMES_PER_VIDEO;
        let limit = direct(local.path(), VIDEOS, jobs).await;
        out.push_str(&format!(
            "| {jobs} | {:.2} | {:.1} | {limit:.1} | {:.2} | {:.1} |\n",
            done as f64 / elapsed,
            frames / elapsed,
            frames / elapsed / limit,
            cpu * 1000.0 / frames,
        ));
    }

    // The hot path with a processor at work: fresh filegates, idle and busy in turn.
    let secs = (seconds / 2).max(3);
    let (mut idle, mut busy) = (Mode::default(), Mode::default());
    for round in 0..4 {
        let working = round % 2 == 1;
        let mode = if working { &mut busy } else { &mut idle };
        let instance =
            Instance::start(&url, &[("FILEGATE_PROCESSING_POLL_MS", "100".to_owned())]).await;
        let target = target_of(&instance);
        let queued = if working {
            upload_videos(&target, ws[0], &video, 150).await
        } else {
            Vec::new()
        };
        let done_before: i64 = client
            .query_one(
                "SELECT count(*) FROM processing_jobs WHERE state = 'done'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        mode.a
            .push(drive(conc, secs, reserve_op(&target, &ws, 1, true)).await);
        mode.b
            .push(drive(conc, secs, reserve_op(&target, &ws, 1, false)).await);
        mode.c
            .push(drive((conc / 4).max(1), secs, reserve_op(&target, &ws, 50, true)).await);
        let objects = prepare(&target, &ws, conc, 4000).await;
        client.batch_execute("ANALYZE files").await.unwrap();
        mode.d
            .push(drive(conc, secs, complete_each(&target, &objects)).await);
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state IN ('queued', 'running'))
                   FROM processing_jobs",
                &[],
            )
            .await
            .unwrap();
        let (done_after, left): (i64, i64) = (row.get(0), row.get(1));
        if working {
            mode.processed.push((done_after - done_before, left));
        }
        drop(instance);
        // The next round starts with no queue.
        client
            .execute(
                "DELETE FROM processing_jobs WHERE state IN ('queued', 'running')",
                &[],
            )
            .await
            .unwrap();
        drop(queued);
    }
    drop_database(db, "m").await;
    let line = |name: &str, unit: f64, idle: &[Stats], busy: &[Stats]| {
        let rate = |s: &[Stats]| median(&s.iter().map(|s| s.rps * unit).collect::<Vec<_>>());
        let p99 = |s: &[Stats]| median(&s.iter().map(|s| s.p99_ms).collect::<Vec<_>>());
        let base = rate(idle);
        format!(
            "| {name} | {base:.0}, {:.1} | {:.0}, {:.1} ({:.2}) |\n",
            p99(idle),
            rate(busy),
            p99(busy),
            if base > 0.0 { rate(busy) / base } else { 0.0 },
        )
    };
    out.push_str(
        "\n(m) the hot path while a processor works (four rounds, idle and processing in turn, each a fresh \
         filegate with one job at a time; 150 videos queued before a processing round; medians; rate, p99 ms, \
         ratio to idle):\n\n| scenario | idle | processing meanwhile |\n|---|---|---|\n",
    );
    out.push_str(&line(
        "(a) 1-file reservations, 1000 workspaces",
        1.0,
        &idle.a,
        &busy.a,
    ));
    out.push_str(&line(
        "(b) 1-file reservations, one workspace",
        1.0,
        &idle.b,
        &busy.b,
    ));
    out.push_str(&line(
        "(c) 50-file reservations, files/s",
        50.0,
        &idle.c,
        &busy.c,
    ));
    out.push_str(&line("(d) single completions /s", 1.0, &idle.d, &busy.d));
    let processed: Vec<String> = busy
        .processed
        .iter()
        .map(|(done, left)| format!("{done} videos processed, {left} still queued at the end"))
        .collect();
    out.push_str(&format!(
        "\n(m) processing rounds: {}\n",
        processed.join("; ")
    ));
    out
}
