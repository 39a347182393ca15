//! The type registry end to end, per-workspace naming, and names that mean one thing:
//! real samples of every registered type complete `ready`, impostors are `rejected`
//! naming what their bytes are, and NFC/NFD or invisible characters never make two
//! names of one.

use filegate_domain::{ContentType, Limits};
use filegate_tests::{Answer, Tenant, TestApp, samples, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// Every registered type, with a real sample, an impostor, and what the rejection names.
fn cases() -> Vec<(ContentType, Vec<u8>, Vec<u8>, &'static str)> {
    use ContentType as T;
    vec![
        (
            T::Pdf,
            samples::pdf(),
            samples::elf(),
            "application/x-executable",
        ),
        (T::Docx, samples::docx(), samples::xlsx(), "XLSX workbook"),
        (
            T::Xlsx,
            samples::xlsx(),
            samples::pptx(),
            "PPTX presentation",
        ),
        (T::Pptx, samples::pptx(), samples::docx(), "DOCX document"),
        (T::Html, samples::html(), samples::png(), "image/png"),
        (
            T::Txt,
            samples::txt(),
            samples::elf(),
            "application/x-executable",
        ),
        (
            T::Markdown,
            samples::markdown(),
            b"# caf\xe9 cr\xe8me\n".to_vec(),
            "not valid UTF-8",
        ),
        (T::Csv, samples::csv(), samples::png(), "image/png"),
        (T::Tsv, samples::tsv(), samples::gif(), "image/gif"),
        (T::Json, samples::json(), samples::csv(), "not JSON"),
        (
            T::Jsonl,
            samples::jsonl(),
            samples::csv(),
            "line 1 is not JSON",
        ),
        (T::Png, samples::png(), samples::gif(), "image/gif"),
        (T::Jpeg, samples::jpeg(), samples::png(), "image/png"),
        (T::Gif, samples::gif(), samples::png(), "image/png"),
        (T::Webp, samples::webp(), samples::wav(), "audio/x-wav"),
        (T::Mp3, samples::mp3(), samples::wav(), "audio/x-wav"),
        (T::Wav, samples::wav(), samples::webp(), "image/webp"),
        (T::Mp4, samples::mp4(), samples::webm(), "video/webm"),
        (T::Webm, samples::webm(), samples::mp4(), "video/mp4"),
    ]
}

/// A tenant whose workspace allows every registered type.
async fn everything_allowed(app: &TestApp) -> Tenant {
    app.create_tenant(&Limits {
        allowed_types: ContentType::ALL.to_vec(),
        ..Limits::default()
    })
    .await
}

#[tokio::test]
async fn every_registered_type_completes_ready_and_its_impostor_is_rejected() {
    let app = spawn_app().await;
    let tenant = everything_allowed(&app).await;
    let cases = cases();
    assert_eq!(
        cases.len(),
        ContentType::ALL.len(),
        "a case per registered type"
    );
    for (ty, sample, impostor, names) in cases {
        let ext = ty.registration().extensions[0];
        let (_, ready) = app
            .reserve_upload_complete_as(&tenant.key, &format!("sample.{ext}"), sample)
            .await;
        assert_eq!(ready.status, 200, "{ty:?}: {:?}", ready.body);
        assert_eq!(ready.body["status"], "ready");
        assert_eq!(ready.body["content_type"], ty.mime());

        let (_, rejected) = app
            .reserve_upload_complete_as(&tenant.key, &format!("impostor.{ext}"), impostor)
            .await;
        rejected.assert_error(422, "upload_mismatch");
        let reason = rejected.body["error"]["details"]["rejection_reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains(names),
            "{ty:?}: the reason {reason:?} should name {names:?}"
        );
    }
    let ws = tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
}

#[tokio::test]
async fn media_downloads_are_attachments_too() {
    let app = spawn_app().await;
    let tenant = everything_allowed(&app).await;
    let (file, ready) = app
        .reserve_upload_complete_as(&tenant.key, "chart.png", samples::png())
        .await;
    assert_eq!(ready.status, 200);
    let id = file["file_uuid"].as_str().unwrap();
    let got = Answer::of(
        app.request_as(&tenant.key, Method::GET, &format!("/v2/files/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let download = app
        .http
        .get(got.body["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(download.headers()["content-type"], "image/png");
}

#[tokio::test]
async fn types_are_named_by_extension_or_alias_and_only_allowed_ones_are_accepted() {
    let app = spawn_app().await;
    // The default workspace allows the document library's five types only.
    let res = app
        .create_files(&json!({ "files": [{ "local_file_path": "path/to/file1.csv" }] }))
        .await;
    res.assert_error(422, "unsupported_type");
    let tenant = everything_allowed(&app).await;
    let res = app
        .create_files_as(
            &tenant.key,
            &json!({ "files": [
                { "local_file_path": "path/to/file1.csv" },
                { "name": "take.wav", "content_type": "audio/x-wav" },
                { "name": "run.jsonl", "content_type": "application/x-ndjson" },
                { "name": "photo.JPG" },
            ] }),
        )
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let types: Vec<&str> = res.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["upload_headers"]["Content-Type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["text/csv", "audio/wav", "application/jsonl", "image/jpeg"]
    );
    let usage = Answer::of(
        app.request_as(
            &tenant.key,
            Method::GET,
            &format!("/v2/workspaces/{}/usage", tenant.workspace),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let allowed: Vec<&str> = ContentType::ALL.iter().map(|t| t.mime()).collect();
    assert_eq!(usage.body["allowed_content_types"], json!(allowed));
    assert_eq!(usage.body["unique_names"], true);
}

/// `name` composed (NFC) and decomposed (NFD).
const NFC: &str = "r\u{e9}sum\u{e9}.txt";
const NFD: &str = "re\u{301}sume\u{301}.txt";

#[tokio::test]
async fn nfc_and_nfd_spellings_are_one_name() {
    let app = spawn_app().await;
    let first = app.reserve(json!({ "name": NFD })).await;
    assert_eq!(first["name"], NFC, "stored in NFC");
    let again = app
        .create_files(&json!({ "files": [{ "name": NFC }] }))
        .await;
    again.assert_error(422, "duplicate_file");
    let batch = app
        .create_files(&json!({ "files": [{ "name": "a\u{301}.txt" }, { "name": "\u{e1}.txt" }] }))
        .await;
    batch.assert_error(422, "duplicate_file");
    // Filters are normalized too: an NFD query finds the NFC name.
    let found = Answer::of(
        app.request(Method::GET, "/v2/files")
            .query(&[("name", NFD)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["files"].as_array().unwrap().len(), 1);
    // Paths and labels as well.
    let a = app
        .reserve(json!({ "name": "x.txt", "path": "caf\u{e9}/", "labels": ["\u{e9}t\u{e9}"] }))
        .await;
    assert_eq!(a["path"], "caf\u{e9}/");
    let clash = app
        .create_files(&json!({ "files": [{ "name": "x.txt", "path": "cafe\u{301}/" }] }))
        .await;
    clash.assert_error(422, "duplicate_file");
    let by_label = Answer::of(
        app.request(Method::GET, "/v2/files")
            .query(&[("label", "e\u{301}te\u{301}")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_label.body["files"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invisible_format_characters_are_refused_everywhere() {
    let app = spawn_app().await;
    for (what, c) in [
        ("right-to-left override", '\u{202e}'),
        ("zero-width space", '\u{200b}'),
        ("byte order mark", '\u{feff}'),
        ("left-to-right isolate", '\u{2066}'),
        ("soft hyphen", '\u{ad}'),
    ] {
        for entry in [
            json!({ "name": format!("invoice{c}fdp.txt") }),
            json!({ "name": "a.txt", "path": format!("docs{c}/") }),
            json!({ "name": "a.txt", "labels": [format!("x{c}")] }),
            json!({ "local_file_path": format!("dir/a{c}.txt") }),
        ] {
            let res = app.create_files(&json!({ "files": [entry] })).await;
            res.assert_error(422, "invalid_metadata");
            assert!(
                res.body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("invisible"),
                "{what}: {:?}",
                res.body
            );
        }
        let filter = Answer::of(
            app.request(Method::GET, "/v2/files")
                .query(&[("name", format!("a{c}.txt"))])
                .send()
                .await
                .unwrap(),
        )
        .await;
        filter.assert_error(400, "invalid_request");
    }
    assert_eq!(app.file_rows(app.tenant.workspace).await, 0);
}

#[tokio::test]
async fn names_that_say_another_type_or_an_executable_are_refused() {
    let app = spawn_app().await;
    for entry in [
        json!({ "name": "notes.pdf", "content_type": "text/plain" }),
        json!({ "name": "invoice\u{202e}fdp.exe" }),
        json!({ "name": "report.exe", "content_type": "application/pdf" }),
        json!({ "name": "run.bat", "content_type": "text/plain" }),
        json!({ "name": "setup.sh", "content_type": "text/plain" }),
        json!({ "name": "app.js", "content_type": "text/plain" }),
        json!({ "local_file_path": "C:\\tools\\setup.exe", "content_type": "application/pdf" }),
        json!({ "name": "invoice.exe.", "content_type": "application/pdf" }),
        json!({ "name": "invoice.exe ", "content_type": "application/pdf" }),
    ] {
        let res = app.create_files(&json!({ "files": [entry.clone()] })).await;
        res.assert_error(422, "invalid_metadata");
        assert_eq!(
            res.body["error"]["details"]["files"][0]["code"], "invalid_metadata",
            "{entry}"
        );
    }
    // Undeclared, an executable's name implies no type: the type is judged first.
    app.create_files(&json!({ "files": [{ "name": "report.exe" }] }))
        .await
        .assert_error(422, "unsupported_type");
    // An extension that names no registered type says nothing about the type.
    assert_eq!(
        app.create_files(
            &json!({ "files": [{ "name": "server.log", "content_type": "text/plain" }] })
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn renames_follow_the_same_name_rules() {
    let app = spawn_app().await;
    let taken = app.reserve(json!({ "name": NFC })).await;
    let file = app.reserve(json!({ "name": "notes.txt" })).await;
    let id = file["file_uuid"].as_str().unwrap();
    let patch = |body: Value| {
        let req = app
            .request(Method::PATCH, &format!("/v2/files/{id}"))
            .json(&body);
        async move { Answer::of(req.send().await.unwrap()).await }
    };
    patch(json!({ "name": NFD }))
        .await
        .assert_error(422, "duplicate_file");
    for bad in ["notes.pdf", "notes.exe", "notes\u{202e}txt.sh", "run.bat"] {
        patch(json!({ "name": bad }))
            .await
            .assert_error(422, "invalid_metadata");
    }
    patch(json!({ "path": "a\u{200b}/" }))
        .await
        .assert_error(422, "invalid_metadata");
    patch(json!({ "labels": ["\u{feff}x"] }))
        .await
        .assert_error(422, "invalid_metadata");
    let ok = patch(json!({ "name": "notes 2.text", "path": "cafe\u{301}/" })).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["path"], "caf\u{e9}/");
    assert_eq!(taken["status"], "pending");
}

#[tokio::test]
async fn a_workspace_with_unique_names_off_takes_the_same_name_again() {
    let app = spawn_app().await;
    let evals = app
        .create_tenant(&Limits {
            allowed_types: ContentType::ALL.to_vec(),
            unique_names: false,
            ..Limits::default()
        })
        .await;
    let body = json!({ "files": [{ "local_file_path": "file.png" }] });
    let first = app.create_files_as(&evals.key, &body).await;
    let second = app.create_files_as(&evals.key, &body).await;
    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{:?}",
        second.body
    );
    assert_ne!(
        first.body["files"][0]["file_uuid"],
        second.body["files"][0]["file_uuid"]
    );
    let twice = app
        .create_files_as(
            &evals.key,
            &json!({ "files": [{ "name": "file.png" }, { "name": "file.png" }] }),
        )
        .await;
    assert_eq!(twice.status, 200, "{:?}", twice.body);
    assert_eq!(app.file_rows(evals.workspace).await, 4);
    // Renames onto a taken name are fine there too.
    let id = first.body["files"][0]["file_uuid"].as_str().unwrap();
    let renamed = app
        .request_as(&evals.key, Method::PATCH, &format!("/v2/files/{id}"))
        .json(&json!({ "name": "file.png" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    // The default workspace keeps the rule.
    let docs = json!({ "files": [{ "name": "a.txt" }] });
    assert_eq!(app.create_files(&docs).await.status, 200);
    app.create_files(&docs)
        .await
        .assert_error(422, "duplicate_file");
}
