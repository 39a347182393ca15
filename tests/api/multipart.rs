//! Large files: multipart uploads with a checksum signed into every part.

use filegate::jobs::Job as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use filegate_client::{
    Client, CreateFilesRequest, CreatedFile, ErrorCode, FileEntry, FileStatus, PartsJob,
};
use filegate_domain::Limits;
use filegate_storage::probe::Capability;
use filegate_tests::{TestApp, reaper_settings, sha256_b64, spawn_app};
use serde_json::json;
use uuid::Uuid;

const MIB: u64 = 1 << 20;

/// Deterministic text that no two parts share (xorshift letters), fast enough for
/// 200 MiB.
fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap());
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend(x.to_le_bytes().iter().map(|b| b'a' + b % 26));
    }
    out.truncate(usize::try_from(len).unwrap());
    out
}

fn temp_file(bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fg-mp-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.txt");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A tenant whose workspace takes files of up to `max` bytes.
async fn big_tenant(app: &TestApp, max: u64) -> (filegate_tests::Tenant, Client) {
    let tenant = app
        .create_tenant(&Limits {
            quota_bytes: i64::try_from(4 * max).unwrap(),
            max_file_bytes: i64::try_from(max).unwrap(),
            ..Limits::default()
        })
        .await;
    let client = Client::new(&app.address, &tenant.key).unwrap();
    (tenant, client)
}

/// Reserves `path` as a multipart text file in `part_size` parts, with every part's
/// digest (so the reservation signs the first URLs).
async fn reserve(client: &Client, path: &Path, part_size: u64) -> (CreatedFile, Vec<String>) {
    let size = std::fs::metadata(path).unwrap().len();
    let digests = filegate_client::part_digests(path, part_size).unwrap();
    let created = client
        .create_files(&CreateFilesRequest {
            workspace_uuid: None,
            files: vec![FileEntry {
                name: Some(format!("big-{}.txt", Uuid::new_v4())),
                size_bytes: Some(size),
                upload_method: Some("MULTIPART".to_owned()),
                part_size_bytes: Some(part_size),
                part_checksums_sha256: Some(digests.clone()),
                ..FileEntry::default()
            }],
        })
        .await
        .unwrap();
    (created.files.into_iter().next().unwrap(), digests)
}

async fn send(
    client: &Client,
    file: &CreatedFile,
    path: &Path,
    digests: &[String],
    numbers: Vec<i32>,
) -> usize {
    let upload = file.multipart.as_ref().unwrap();
    client
        .send_parts(
            PartsJob {
                file_uuid: file.file_uuid,
                source: path,
                size: std::fs::metadata(path).unwrap().len(),
                part_size: upload.part_size_bytes.unsigned_abs(),
                digests,
                numbers,
                signed: upload.parts.clone(),
                parallel: 4,
                limit_rate: None,
            },
            Arc::new(|_| {}),
        )
        .await
        .unwrap()
}

async fn downloaded(app: &TestApp, client: &Client, id: Uuid) -> Vec<u8> {
    let got = client.get(id).await.unwrap();
    let url = got.download_url.expect("a ready file has a download_url");
    app.http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// True while the store holds parts of the multipart upload. (s3s-fs 0.14 answers
/// ListParts of an aborted or completed upload with no parts instead of NoSuchUpload.)
async fn upload_exists(app: &TestApp, key: &str, upload_id: &str) -> bool {
    app.storage
        .list_parts(key, upload_id)
        .await
        .expect("ListParts")
        .is_some_and(|parts| !parts.is_empty())
}

/// How many multipart uploads the bucket lists, where the store lists them at all.
async fn listed_uploads(app: &TestApp) -> Option<usize> {
    match app
        .s3()
        .await
        .list_multipart_uploads()
        .bucket(app.storage.bucket())
        .send()
        .await
    {
        Ok(out) => Some(out.uploads().len()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => {
            eprintln!("store lacks ListMultipartUploads: not counting uploads");
            None
        }
        Err(e) => panic!("ListMultipartUploads: {e:?}"),
    }
}

fn upload_id(file: &CreatedFile) -> String {
    file.multipart
        .as_ref()
        .expect("multipart")
        .upload_id
        .clone()
}

#[tokio::test]
async fn a_200_mib_file_in_8_mib_parts_uploads_completes_ready_and_downloads_byte_for_byte() {
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 256 * MIB).await;
    let data = bytes(200 * MIB, 7);
    let path = temp_file(&data);

    let started = Instant::now();
    let (file, digests) = reserve(&client, &path, 8 * MIB).await;
    assert_eq!(file.upload_method, filegate_client::UploadMethod::Multipart);
    assert_eq!(file.file_url, None);
    let upload = file.multipart.clone().unwrap();
    assert_eq!((upload.part_size_bytes, upload.part_count), (8 << 20, 25));
    assert_eq!(upload.parts.len(), 16, "the first parts come signed");
    let sent = send(&client, &file, &path, &digests, (1..=25).collect()).await;
    assert_eq!(sent, 25);
    let done = client.complete(file.file_uuid).await.unwrap();
    let multipart_secs = started.elapsed().as_secs_f64();
    assert_eq!(done.status, FileStatus::Ready);
    assert_eq!(done.size_bytes, Some(200 << 20));
    assert!(!upload_exists(&app, &done.remote_file_path, &upload.upload_id).await);
    assert!(
        downloaded(&app, &client, file.file_uuid).await == data,
        "the download is the bytes sent"
    );
    let usage = client.usage(tenant.workspace).await.unwrap();
    assert_eq!((usage.used_bytes, usage.reserved_bytes), (200 << 20, 0));

    // Throughput is measured in release builds (BENCHMARKS.md); this is a debug one.
    eprintln!(
        "200 MiB multipart (25 x 8 MiB, 4 in flight): {multipart_secs:.2} s in a debug build"
    );
}

#[tokio::test]
async fn a_part_of_other_bytes_than_its_signed_digest_is_refused_and_sent_again_completes() {
    let app = spawn_app().await;
    let (_, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(12 * MIB, 3);
    let path = temp_file(&data);
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    let upload = file.multipart.clone().unwrap();
    assert_eq!(upload.part_count, 3);
    let part = upload.parts.iter().find(|p| p.part_number == 2).unwrap();
    let mut other = data[5 << 20..10 << 20].to_vec();
    other[100] ^= 1;
    let refused = client.upload_part(part, other).await;
    if app.store_has(Capability::PartChecksum) {
        assert!(
            matches!(refused, Err(filegate_client::ClientError::Store { status, .. }) if (400..500).contains(&status)),
            "{refused:?}"
        );
    } else {
        // The store kept the part: completion hashes the parts itself and refuses it.
        send(&client, &file, &path, &digests, vec![1, 3]).await;
        let err = client.complete(file.file_uuid).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UploadMismatch), "{err}");
        assert!(!upload_exists(&app, &file.remote_file_path, &upload.upload_id).await);
        return;
    }
    // Not complete yet: part 2 is missing, and the answer says so.
    send(&client, &file, &path, &digests, vec![1, 3]).await;
    let missing = client.complete(file.file_uuid).await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::UploadMissing));
    assert!(
        matches!(&missing, filegate_client::ClientError::Api { details, .. } if details["missing_parts"] == json!([2])),
        "{missing:?}"
    );
    let listed = client.list_parts(file.file_uuid).await.unwrap();
    assert_eq!(listed.missing, vec![2]);
    // A fresh URL for part 2, and the right bytes.
    send(&client, &file, &path, &digests, vec![2]).await;
    let done = client.complete(file.file_uuid).await.unwrap();
    assert_eq!(done.status, FileStatus::Ready);
    assert!(downloaded(&app, &client, file.file_uuid).await == data);
}

#[tokio::test]
async fn parts_signed_without_the_reservation_and_a_replayed_reservation_keep_one_upload() {
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(6 * MIB, 5);
    let path = temp_file(&data);
    let body = json!({ "files": [{ "name": "big.txt", "size_bytes": 6 * MIB, "upload_method": "MULTIPART" }] });
    let first = app
        .request_as(&tenant.key, reqwest::Method::POST, "/v2/files")
        .header("Idempotency-Key", "mp-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    let again: serde_json::Value = app
        .request_as(&tenant.key, reqwest::Method::POST, "/v2/files")
        .header("Idempotency-Key", "mp-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mp = &first["files"][0]["multipart"];
    assert_eq!(mp["upload_id"], again["files"][0]["multipart"]["upload_id"]);
    // The server chose the part size; no digests were sent, so no URLs yet.
    assert_eq!(mp["part_size_bytes"], json!(8 << 20));
    assert_eq!(mp["part_count"], json!(1));
    assert_eq!(mp["parts"], json!([]));
    let file: CreatedFile = serde_json::from_value(first["files"][0].clone()).unwrap();
    let digests = filegate_client::part_digests(&path, 8 * MIB).unwrap();
    send(&client, &file, &path, &digests, vec![1]).await;
    assert_eq!(
        client.complete(file.file_uuid).await.unwrap().status,
        FileStatus::Ready
    );
}

#[tokio::test]
async fn an_abandoned_multipart_upload_is_aborted_by_the_reaper_after_expiry_and_its_quota_returns()
{
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let before = app.counters(tenant.workspace).await;
    let data = bytes(11 * MIB, 9);
    let path = temp_file(&data);
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    send(&client, &file, &path, &digests, vec![1, 2]).await;
    assert!(upload_exists(&app, &file.remote_file_path, &upload_id(&file)).await);
    assert_eq!(app.counters(tenant.workspace).await.1, 11 << 20);
    // Its upload window passes (a day by default; moved, not waited for, so part URLs
    // never expire under a slow store).
    app.pool
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE files SET upload_expires_at = now() - interval '1 second' WHERE id = $1",
            &[&file.file_uuid],
        )
        .await
        .unwrap();

    let report =
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), reaper_settings(100))
            .run_once()
            .await
            .unwrap();
    assert_eq!(report.expired, 1);
    assert!(
        !upload_exists(&app, &file.remote_file_path, &upload_id(&file)).await,
        "the store holds no upload for the file"
    );
    assert!(!app.object_exists(&file.remote_file_path).await);
    assert_eq!(app.counters(tenant.workspace).await, before);
    assert_eq!(app.row_sums(tenant.workspace).await, before);
    let part = filegate_client::PartToSign {
        part_number: 3,
        checksum_sha256: digests[2].clone(),
    };
    let err = client
        .sign_parts(file.file_uuid, vec![part])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidState));
    let err = client.list_parts(file.file_uuid).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidState));
}

#[tokio::test]
async fn the_reaper_aborts_uploads_under_filegates_keys_that_no_file_owns() {
    let app = spawn_app().await;
    let s3 = app.s3().await;
    let ours = format!("{}/{}", Uuid::now_v7(), Uuid::now_v7());
    let foreign = "someone-else/big.bin";
    let mut ids = Vec::new();
    for key in [ours.as_str(), foreign] {
        let started = s3
            .create_multipart_upload()
            .bucket(app.storage.bucket())
            .key(key)
            .send()
            .await
            .unwrap();
        let id = started.upload_id().unwrap().to_owned();
        s3.upload_part()
            .bucket(app.storage.bucket())
            .key(key)
            .upload_id(&id)
            .part_number(1)
            .body(b"a part".to_vec().into())
            .send()
            .await
            .unwrap();
        ids.push(id);
    }
    let mut settings = reaper_settings(100);
    settings.upload_margin = std::time::Duration::from_secs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report =
        filegate::jobs::Reaper::new(app.pool.clone(), app.storage.clone(), settings.clone())
            .run_once()
            .await
            .unwrap();
    assert!(
        upload_exists(&app, foreign, &ids[1]).await,
        "foreign uploads are left alone"
    );
    if listed_uploads(&app).await.is_none() {
        // Nothing to sweep by: the pass still succeeds and aborts nothing.
        assert_eq!(report.multipart_aborted, 0);
        assert!(upload_exists(&app, &ours, &ids[0]).await);
        return;
    }
    assert_eq!(report.multipart_aborted, 1);
    assert!(!upload_exists(&app, &ours, &ids[0]).await);
}

#[tokio::test]
async fn concurrent_completes_and_a_complete_racing_a_delete_make_one_transition_each() {
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(11 * MIB, 11);
    let path = temp_file(&data);

    // Four completes at once: one assembles and settles, all answer ready.
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    send(&client, &file, &path, &digests, vec![1, 2, 3]).await;
    let answers =
        futures_util::future::join_all((0..4).map(|_| client.complete(file.file_uuid))).await;
    for a in &answers {
        assert_eq!(a.as_ref().unwrap().status, FileStatus::Ready, "{a:?}");
    }
    let ready_metric = app.metrics_text().await;
    assert!(
        ready_metric.contains("filegate_completions_total{outcome=\"ready\"} 1"),
        "one transition to ready"
    );
    assert_eq!(app.counters(tenant.workspace).await, (11 << 20, 0));

    // A complete racing a delete: whatever wins, nothing is left behind.
    for seed in 0..3 {
        let data = bytes(6 * MIB, 100 + seed);
        let path = temp_file(&data);
        let (file, digests) = reserve(&client, &path, 5 * MIB).await;
        send(&client, &file, &path, &digests, vec![1, 2]).await;
        let (completed, deleted) = tokio::join!(
            client.complete(file.file_uuid),
            client.delete(file.file_uuid)
        );
        deleted.unwrap();
        if let Err(e) = &completed {
            assert!(
                matches!(
                    e.code(),
                    Some(ErrorCode::NotFound | ErrorCode::UploadMissing)
                ),
                "{e}"
            );
        }
        let mut left = true;
        for _ in 0..50 {
            left = app.object_exists(&file.remote_file_path).await
                || upload_exists(&app, &file.remote_file_path, &upload_id(&file)).await;
            if !left {
                break;
            }
            filegate::jobs::Reaper::new(
                app.pool.clone(),
                app.storage.clone(),
                reaper_settings(100),
            )
            .run_once()
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!left, "no object or upload outlives the deleted file");
    }
    assert_eq!(app.counters(tenant.workspace).await, (11 << 20, 0));
    assert_eq!(app.row_sums(tenant.workspace).await, (11 << 20, 0));
}

#[tokio::test]
async fn the_parts_routes_answer_hostile_and_out_of_scope_requests_with_the_envelope() {
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(11 * MIB, 13);
    let path = temp_file(&data);
    let (file, _) = reserve(&client, &path, 5 * MIB).await;
    let id = file.file_uuid;
    let sum = sha256_b64(b"x");
    let post = |body: serde_json::Value, key: String| {
        app.request_as(
            &key,
            reqwest::Method::POST,
            &format!("/v2/files/{id}/parts"),
        )
        .json(&body)
        .send()
    };
    let key = tenant.key.clone();
    for (body, status, code) in [
        (
            json!({ "parts": [{ "part_number": 0, "checksum_sha256": sum }] }),
            422,
            "invalid_metadata",
        ),
        (
            json!({ "parts": [{ "part_number": 4, "checksum_sha256": sum }] }),
            422,
            "invalid_metadata",
        ),
        (
            json!({ "parts": [{ "part_number": 1, "checksum_sha256": "not-a-digest" }] }),
            422,
            "invalid_metadata",
        ),
        (
            json!({ "parts": [{ "part_number": 1, "checksum_sha256": sum }, { "part_number": 1, "checksum_sha256": sum }] }),
            422,
            "invalid_metadata",
        ),
        (json!({ "parts": [] }), 422, "invalid_metadata"),
        (
            json!({ "parts": [{ "part_number": 1 }] }),
            400,
            "invalid_request",
        ),
        (
            json!({ "parts": [{ "part_number": 1, "checksum_sha256": sum, "extra": 1 }] }),
            400,
            "invalid_request",
        ),
    ] {
        let answer =
            filegate_tests::Answer::of(post(body.clone(), key.clone()).await.unwrap()).await;
        answer.assert_error(status, code);
    }
    // Another tenant sees no such file.
    let other = filegate_tests::Answer::of(
        post(
            json!({ "parts": [{ "part_number": 1, "checksum_sha256": sum }] }),
            app.tenant.key.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    other.assert_error(404, "not_found");
    let listed = filegate_tests::Answer::of(
        app.request(reqwest::Method::GET, &format!("/v2/files/{id}/parts"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    listed.assert_error(404, "not_found");
    // A file sent with one PUT has no parts.
    let put = app
        .reserve(json!({ "name": "small.txt", "size_bytes": 10 }))
        .await;
    let put_id = put["file_uuid"].as_str().unwrap();
    let answer = filegate_tests::Answer::of(
        app.request(reqwest::Method::GET, &format!("/v2/files/{put_id}/parts"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(409, "invalid_state");
    // Reservations that contradict themselves are refused, and start no upload.
    for entry in [
        json!({ "name": "a.txt", "upload_method": "MULTIPART" }),
        json!({ "name": "a.txt", "size_bytes": 0, "upload_method": "MULTIPART" }),
        // One byte below the smallest part: one PUT always carries it.
        json!({ "name": "a.txt", "size_bytes": 1, "upload_method": "MULTIPART" }),
        json!({ "name": "a.txt", "size_bytes": 5 * MIB - 1, "upload_method": "MULTIPART" }),
        json!({ "name": "a.txt", "size_bytes": 10, "upload_method": "CHUNKED" }),
        json!({ "name": "a.txt", "size_bytes": 10, "part_size_bytes": 1024 }),
        json!({ "name": "a.txt", "size_bytes": 10, "upload_method": "PUT", "part_size_bytes": 5242880 }),
        json!({ "name": "a.txt", "size_bytes": 10, "part_size_bytes": 5242880, "part_checksums_sha256": [sum, sum] }),
    ] {
        let answer = app.create_files(&json!({ "files": [entry] })).await;
        answer.assert_error(422, "invalid_metadata");
    }
    // A multipart batch over the quota starts no upload that outlives it.
    let quota = app
        .create_files_as(
            &key,
            &json!({ "files": [
                { "name": "q1.txt", "size_bytes": 60 * MIB, "upload_method": "MULTIPART" },
                { "name": "q2.txt", "size_bytes": 60 * MIB, "upload_method": "MULTIPART" },
                { "name": "q3.txt", "size_bytes": 60 * MIB, "upload_method": "MULTIPART" },
                { "name": "q4.txt", "size_bytes": 60 * MIB, "upload_method": "MULTIPART" },
                { "name": "q5.txt", "size_bytes": 60 * MIB, "upload_method": "MULTIPART" }
            ] }),
        )
        .await;
    quota.assert_error(409, "quota_exceeded");
    if let Some(listed) = listed_uploads(&app).await {
        assert_eq!(listed, 1, "only the reserved file's upload remains");
    }
}

#[tokio::test]
async fn filegate_upload_killed_halfway_sends_only_the_missing_parts_when_run_again() {
    let app = spawn_app().await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(40 * MIB, 17);
    let path = temp_file(&data);
    let state = path.parent().unwrap().join("state");
    let cli = |rate: Option<&str>| {
        let mut cmd = tokio::process::Command::new(filegate_tests::filegate_bin());
        cmd.env_clear()
            .env("FILEGATE_URL", &app.address)
            .env("FILEGATE_API_KEY", &tenant.key)
            .args(["upload", "--multipart-threshold", "1048576"])
            .args(["--part-size", "5242880", "--parallel", "1"])
            .arg("--state-dir")
            .arg(&state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(rate) = rate {
            cmd.args(["--limit-rate", rate]);
        }
        cmd.arg(&path);
        cmd
    };
    // 8 parts at about 10 MiB/s: killed once the store holds 3 of them.
    let mut first = cli(Some("10485760")).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (id, held) = loop {
        assert!(Instant::now() < deadline, "the first run never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let page = client
            .list(&filegate_client::ListQuery::default())
            .await
            .unwrap();
        let Some(f) = page.files.first() else {
            continue;
        };
        let parts = client.list_parts(f.file_uuid).await.unwrap();
        if parts.parts.len() >= 3 {
            first.kill().await.unwrap();
            let held = client.list_parts(f.file_uuid).await.unwrap().parts.len();
            break (f.file_uuid, held);
        }
    };
    assert!(held < 8, "killed halfway ({held} of 8 parts at the store)");

    let out = cli(None).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("sent {} of 8 parts", 8 - held)),
        "only the {} missing parts were sent: {stdout}",
        8 - held
    );
    assert!(stdout.contains(&id.to_string()), "the same file: {stdout}");
    assert_eq!(client.get(id).await.unwrap().file.status, FileStatus::Ready);
    assert!(downloaded(&app, &client, id).await == data);
    assert_eq!(
        client
            .list(&filegate_client::ListQuery::default())
            .await
            .unwrap()
            .files
            .len(),
        1,
        "no second file was reserved"
    );
    assert!(
        std::fs::read_dir(&state).map_or(true, |mut d| d.next().is_none()),
        "the finished upload is forgotten"
    );
}

#[tokio::test]
async fn filegate_upload_sends_in_parts_a_file_the_server_puts_in_parts() {
    // The server's threshold is below the command's: it answers MULTIPART for a file
    // the command meant to PUT, and the command cuts the parts as the server says.
    let app =
        filegate_tests::spawn_app_with(|s| s.storage.multipart_threshold_bytes = 5 << 20).await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(13 * MIB, 19);
    let path = temp_file(&data);
    let out = tokio::process::Command::new(filegate_tests::filegate_bin())
        .env_clear()
        .env("FILEGATE_URL", &app.address)
        .env("FILEGATE_API_KEY", &tenant.key)
        .env("FILEGATE_STATE_DIR", path.parent().unwrap().join("state"))
        .arg("upload")
        .arg(&path)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("sent 2 of 2 parts"), "{stdout}");
    let files = client
        .list(&filegate_client::ListQuery::default())
        .await
        .unwrap()
        .files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].status, FileStatus::Ready);
    // The whole-file digest the command declared was checked too.
    assert_eq!(
        files[0].checksum_sha256.as_deref(),
        Some(sha256_b64(&data).as_str())
    );
    assert!(downloaded(&app, &client, files[0].file_uuid).await == data);
}

#[tokio::test]
async fn multipart_files_nobody_completes_are_settled_by_the_finalizer_and_by_events() {
    let app = filegate_tests::spawn_app_with(|s| {
        s.reaper.finalizer_interval = std::time::Duration::from_secs(1);
        s.reaper.finalizer_min_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let (_, client) = big_tenant(&app, 64 * MIB).await;
    let status = |id: Uuid| {
        let app = &app;
        async move { app.file_status(&json!({ "file_uuid": id })).await.0 }
    };
    // The finalizer: every part at the store, no complete, no GET.
    let data = bytes(6 * MIB, 23);
    let path = temp_file(&data);
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    send(&client, &file, &path, &digests, vec![1, 2]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(file.file_uuid).await == "pending" {
        assert!(
            Instant::now() < deadline,
            "the finalizer never completed the file"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(file.file_uuid).await, "ready");
    assert!(downloaded(&app, &client, file.file_uuid).await == data);

    // An event naming an assembled upload's object key runs a completion at once.
    let other = spawn_app().await;
    let (_, client) = big_tenant(&other, 64 * MIB).await;
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    send(&client, &file, &path, &digests, vec![1, 2]).await;
    let event = json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": { "bucket": { "name": other.storage.bucket() },
                "object": { "key": file.remote_file_path, "size": 6 * MIB } }
    }] });
    let res = other
        .http
        .post(format!("{}/v2/events/s3", other.address))
        .bearer_auth(filegate_tests::EVENTS_SECRET)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["files"],
        json!([{ "file_uuid": file.file_uuid, "status": "ready" }])
    );
}

/// Whether a request head is a CompleteMultipartUpload (`POST …?uploadId=`).
fn is_assembly(head: &str) -> bool {
    head.starts_with("POST ") && head.lines().next().is_some_and(|l| l.contains("uploadId="))
}

/// Whether a request head is a CopyObject.
fn is_copy(head: &str) -> bool {
    head.starts_with("PUT ") && head.to_ascii_lowercase().contains("\r\nx-amz-copy-source:")
}

#[tokio::test]
async fn an_assembly_that_takes_longer_than_one_store_call_still_completes() {
    // A store assembles a large object at disk speed (AWS documents minutes): the
    // assembly is given time for its bytes, not one call's timeout (1 s here).
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|_| {}).await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(30 * MIB, 23);
    let path = temp_file(&data);
    let (file, digests) = reserve(&client, &path, 5 * MIB).await;
    assert_eq!(
        send(&client, &file, &path, &digests, (1..=6).collect()).await,
        6
    );

    proxy.hold_requests(is_assembly, Duration::from_secs(2));
    let done = client.complete(file.file_uuid).await.unwrap();
    assert_eq!(done.status, FileStatus::Ready);
    assert!(downloaded(&app, &client, file.file_uuid).await == data);
    let usage = client.usage(tenant.workspace).await.unwrap();
    assert_eq!((usage.used_bytes, usage.reserved_bytes), (30 << 20, 0));
}

#[tokio::test]
async fn a_copy_that_takes_longer_than_one_store_call_still_completes() {
    // Completion copies the verified upload to the file's key (every store: the key
    // no URL writes is what is served); a large copy is given time for its bytes.
    let (app, proxy) = filegate_tests::spawn_app_behind_store_proxy(|_| {}).await;
    let (tenant, client) = big_tenant(&app, 64 * MIB).await;
    let data = bytes(30 * MIB, 29);
    let created = app
        .create_files_as(
            &tenant.key,
            &json!({ "files": [{
                "name": "copied.txt",
                "size_bytes": data.len(),
                "checksum_sha256": sha256_b64(&data),
                "upload_method": "PUT",
            }]}),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let file = created.body["files"][0].clone();
    assert_eq!(app.upload(&file, data.clone()).await, 200);

    proxy.hold_requests(is_copy, Duration::from_secs(2));
    let id: Uuid = file["file_uuid"].as_str().unwrap().parse().unwrap();
    let done = client.complete(id).await.unwrap();
    assert_eq!(done.status, FileStatus::Ready);
    assert!(downloaded(&app, &client, id).await == data);
    let usage = client.usage(tenant.workspace).await.unwrap();
    assert_eq!((usage.used_bytes, usage.reserved_bytes), (30 << 20, 0));
}
