//! The client commands of the `filegate` binary and the typed client under them.

use std::path::Path;
use tokio::process::Command;

use filegate_client::ListQuery;
use filegate_tests::{TestApp, samples, spawn_app};

/// Runs the binary without blocking the test's runtime (the app under test shares it).
async fn run(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(filegate_tests::filegate_bin())
        .env_clear()
        .env("FILEGATE_URL", &app.address)
        .env("FILEGATE_API_KEY", &app.tenant.key)
        .env("FILEGATE_WORKSPACE", app.tenant.workspace.to_string())
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder of 60 files of every allowed type, plus a PNG named like a PDF.
fn folder(dir: &Path) -> i64 {
    let kinds: [(&str, Vec<u8>); 5] = [
        ("pdf", samples::pdf()),
        ("docx", samples::docx()),
        ("html", samples::html()),
        ("txt", samples::txt()),
        ("md", samples::markdown()),
    ];
    let mut total = 0;
    for i in 0..60 {
        let (ext, bytes) = &kinds[i % kinds.len()];
        let sub = dir.join(format!("part{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("file{i:02}.{ext}")), bytes).unwrap();
        total += bytes.len() as i64;
    }
    std::fs::write(dir.join("spoofed.pdf"), samples::png()).unwrap();
    total
}

#[tokio::test]
async fn upload_sends_a_folder_reports_the_spoofed_file_and_says_so_in_its_exit_status() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("fg-upload-{}", uuid::Uuid::new_v4()));
    let total = folder(&dir);
    let (code, stdout, stderr) = run(
        &app,
        &[
            "upload",
            "--path",
            "docs/",
            "--label",
            "bulk",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        code, 1,
        "a rejected file makes the exit status non-zero\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("60 ready, 1 rejected, 0 failed"),
        "{stdout}"
    );
    // 61 files: reserved 50 and 11 at a time, and completed the same way.
    let metrics = app.metrics_text().await;
    let requests = |route: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("filegate_http_requests_total")
                    && l.contains(&format!("route=\"{route}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert_eq!(requests("/v2/files/complete"), 2, "{metrics}");
    assert_eq!(requests("/v2/files/{file_uuid}/complete"), 0);
    let rejected = stdout
        .lines()
        .find(|l| l.starts_with("rejected"))
        .unwrap_or_default();
    assert!(
        rejected.contains("spoofed.pdf") && rejected.contains("image/png"),
        "{rejected}"
    );

    // The library lists them ready, through the typed client.
    let client = app.client();
    let page = client
        .list(&ListQuery {
            status: Some("ready".into()),
            labels: vec!["bulk".into()],
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.files.len(), 60);
    assert!(page.files.iter().all(|f| f.path == "docs/"));
    let usage = client.usage(app.tenant.workspace).await.unwrap();
    assert_eq!((usage.used_bytes, usage.reserved_bytes), (total, 0));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn upload_via_api_streams_each_file_through_filegate_and_reports_the_spoofed_one() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("fg-via-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), samples::txt()).unwrap();
    std::fs::write(dir.join("paper.pdf"), samples::pdf()).unwrap();
    std::fs::write(dir.join("spoofed.pdf"), samples::png()).unwrap();
    let (code, stdout, stderr) = run(
        &app,
        &[
            "upload",
            "--via-api",
            "--path",
            "inbox/",
            "--label",
            "direct",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 ready, 1 rejected, 0 failed"), "{stdout}");
    // Nothing was reserved for a client PUT: every byte came through the API.
    let metrics = app.metrics_text().await;
    let requests = |route: &str, method: &str| {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("filegate_http_requests_total")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("method=\"{method}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert_eq!(requests("/v2/files/-/uploads", "POST"), 3, "{metrics}");
    assert_eq!(
        requests("/v2/files", "POST"),
        0,
        "no reservation for a client PUT"
    );
    let page = app
        .client()
        .list(&ListQuery {
            status: Some("ready".into()),
            labels: vec!["direct".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.files.len(), 2);
    assert!(page.files.iter().all(|f| f.path == "inbox/"));
    let notes = page.files.iter().find(|f| f.name == "notes.txt").unwrap();
    assert_eq!(
        app.download(&serde_json::to_value(notes).unwrap()).await,
        samples::txt()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn upload_reports_files_the_api_refuses_and_sends_the_rest() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("fg-upload-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ok.txt"), samples::txt()).unwrap();
    std::fs::write(dir.join("tool.exe"), samples::pe()).unwrap();
    let (code, stdout, _) = run(&app, &["upload", dir.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(stdout.contains("1 ready, 0 rejected, 1 failed"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains("tool.exe")),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn upload_sends_an_empty_file_with_the_length_its_url_signed() {
    // The HTTP client leaves Content-Length out of an empty PUT; the signed URL needs it.
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("fg-upload-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    let (code, stdout, stderr) = run(&app, &["upload", dir.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 ready, 0 rejected, 0 failed"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn ls_rm_and_usage_work_from_the_command_line() {
    let app = spawn_app().await;
    let a = app.reserve_and_upload("a.txt", samples::txt()).await;
    assert_eq!(app.complete(&a).await.status, 200);
    let b = app
        .reserve(serde_json::json!({ "name": "b.pdf", "size_bytes": 10, "labels": ["x"] }))
        .await;

    let (code, stdout, _) = run(&app, &["ls"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("a.txt") && stdout.contains("b.pdf") && stdout.contains("ready"),
        "{stdout}"
    );
    let (_, json, _) = run(&app, &["ls", "--json", "--label", "x"]).await;
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["name"], "b.pdf");

    let (code, usage, _) = run(&app, &["usage", "--json"]).await;
    assert_eq!(code, 0);
    let usage: serde_json::Value = serde_json::from_str(usage.trim()).unwrap();
    assert_eq!(usage["reserved_bytes"], 10);

    let ids = [
        a["file_uuid"].as_str().unwrap(),
        b["file_uuid"].as_str().unwrap(),
    ];
    let (code, stdout, _) = run(&app, &["rm", ids[0], ids[1]]).await;
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.matches("deleted").count(), 2);
    let (code, stdout, _) = run(&app, &["rm", ids[0]]).await;
    assert_eq!(code, 1, "deleting twice fails: {stdout}");
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
}
