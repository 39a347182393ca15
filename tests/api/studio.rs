//! AI21's library surface (`/studio/v1/library`): the same files, quota, rules and
//! lifecycle as `/v2`, in AI21's shapes.

use filegate_domain::Limits;
use filegate_tests::{Answer, Form, TestApp, raw, samples, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

const FILES: &str = "/studio/v1/library/files";

/// `POST /studio/v1/library/files` with `form` as `key`.
async fn create_as(app: &TestApp, key: &str, query: &str, form: Form) -> Answer {
    Answer::of(
        app.request_as(key, Method::POST, &format!("{FILES}{query}"))
            .header("content-type", Form::content_type())
            .body(form.body())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn create(app: &TestApp, form: Form) -> Answer {
    create_as(app, &app.tenant.key, "", form).await
}

/// Creates a text file `name` under `path` and answers its id.
async fn created(app: &TestApp, name: &str, path: &str) -> String {
    let res = create(
        app,
        Form::new()
            .field("path", path)
            .file(name, "text/plain", &samples::txt()),
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    res.body["fileId"].as_str().unwrap().to_owned()
}

async fn call(app: &TestApp, method: Method, path: &str) -> Answer {
    Answer::of(app.request(method, path).send().await.unwrap()).await
}

async fn put(app: &TestApp, id: &str, body: &'static str) -> Answer {
    Answer::of(
        app.request(Method::PUT, &format!("{FILES}/{id}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The ids a listing answers, in its order.
fn ids(list: &Answer) -> Vec<String> {
    assert_eq!(list.status, 200, "{:?}", list.body);
    list.body
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|f| f["fileId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_file_created_through_ai21s_surface_is_ready_in_v2_and_downloads_its_bytes() {
    let app = spawn_app().await;
    let bytes = samples::pdf();
    let res = create(
        &app,
        Form::new()
            .field("path", "reports/2026")
            .field("labels", "finance")
            .field("labels", "q3")
            .field("publicUrl", "https://example.com/report")
            .file("report.pdf", "application/pdf", &bytes),
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    let id = res.body["fileId"].as_str().unwrap().to_owned();
    assert_eq!(
        res.body,
        json!({ "fileId": id }),
        "the answer is the file id alone"
    );

    let v2 = call(&app, Method::GET, &format!("/v2/files/{id}")).await;
    assert_eq!(v2.body["status"], "ready", "{:?}", v2.body);
    assert_eq!(v2.body["path"], "reports/2026");
    assert_eq!(v2.body["labels"], json!(["finance", "q3"]));
    assert_eq!(v2.body["public_url"], "https://example.com/report");
    assert_eq!(
        app.download(&v2.body).await,
        bytes,
        "the download is the bytes sent"
    );

    let f = call(&app, Method::GET, &format!("{FILES}/{id}")).await;
    assert_eq!(f.status, 200, "{:?}", f.body);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        f.body,
        json!({
            "fileId": id, "name": "report.pdf", "fileType": "application/pdf",
            "sizeBytes": bytes.len(), "createdBy": app.tenant.key_id.to_string(),
            "creationDate": today, "lastUpdated": today, "status": "PROCESSED",
            "path": "reports/2026", "labels": ["finance", "q3"],
            "publicUrl": "https://example.com/report", "errorCode": null, "errorMessage": null,
        }),
        "AI21's file shape, dates as calendar dates"
    );
    let ws = app.tenant.workspace;
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
    assert_eq!(app.counters(ws).await, (bytes.len() as i64, 0));
}

#[tokio::test]
async fn a_v2_file_is_listed_updated_and_deleted_through_ai21s_surface() {
    let app = spawn_app().await;
    let file = app.reserve_and_upload("notes.txt", samples::txt()).await;
    let id = file["file_uuid"].as_str().unwrap();

    // Listed, and read (the read completes the upload nobody completed).
    assert_eq!(
        ids(&call(&app, Method::GET, FILES).await),
        vec![id.to_owned()]
    );
    let got = call(&app, Method::GET, &format!("{FILES}/{id}")).await;
    assert_eq!(got.body["status"], "PROCESSED", "{:?}", got.body);

    // Update: labels and the public URL, under the creation rules.
    let res = put(
        &app,
        id,
        r#"{"labels":["a","b"],"publicUrl":"https://example.com/n"}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.body["labels"], json!(["a", "b"]));
    assert_eq!(res.body["publicUrl"], "https://example.com/n");
    let v2 = call(&app, Method::GET, &format!("/v2/files/{id}")).await;
    assert_eq!(
        v2.body["labels"],
        json!(["a", "b"]),
        "the change is the file's"
    );
    // No body (the SDK's update of nothing) and `{}` change nothing.
    for body in ["", "{}"] {
        let res = put(&app, id, body).await;
        assert_eq!(res.status, 200, "{body:?}: {:?}", res.body);
        assert_eq!(res.body["labels"], json!(["a", "b"]));
    }
    let res = put(&app, id, r#"{"publicUrl":null}"#).await;
    assert_eq!(res.body["publicUrl"], Value::Null, "null clears the URL");
    // AI21's update changes labels and the URL only; bad values break the same rules.
    put(&app, id, r#"{"name":"other.txt"}"#)
        .await
        .assert_error(400, "invalid_request");
    put(&app, id, r#"{"labels":"a"}"#)
        .await
        .assert_error(400, "invalid_request");
    put(&app, id, r#"{"labels":[""]}"#)
        .await
        .assert_error(422, "invalid_metadata");
    put(&app, id, "{nope")
        .await
        .assert_error(400, "invalid_request");
    // Only a JSON object is an update (serde would read an array into the struct).
    for body in ["[]", r#"[["x"]]"#, "null", "\"labels\""] {
        put(&app, id, body)
            .await
            .assert_error(400, "invalid_request");
    }
    let too_big = format!(
        r#"{{"labels":["{}"]}}"#,
        "a".repeat(app.settings.http.max_body_bytes)
    );
    let res = Answer::of(
        app.request(Method::PUT, &format!("{FILES}/{id}"))
            .header("content-type", "application/json")
            .body(too_big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(413, "payload_too_large");

    // Delete: 200, and the file is gone from both surfaces and the counters.
    let res = call(&app, Method::DELETE, &format!("{FILES}/{id}")).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    call(&app, Method::GET, &format!("/v2/files/{id}"))
        .await
        .assert_error(404, "not_found");
    call(&app, Method::GET, &format!("{FILES}/{id}"))
        .await
        .assert_error(404, "not_found");
    call(&app, Method::DELETE, &format!("{FILES}/{id}"))
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.counters(app.tenant.workspace).await, (0, 0));
}

#[tokio::test]
async fn the_list_pages_by_offset_newest_first_and_filters_by_ai21s_statuses() {
    let app = spawn_app().await;
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(created(&app, &format!("doc-{n}.txt"), "docs").await);
    }
    // A reservation nobody uploads: DB_RECORD_CREATED.
    let pending = app
        .reserve(json!({ "name": "later.md", "size_bytes": 10 }))
        .await;
    let pending = pending["file_uuid"].as_str().unwrap().to_owned();

    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let page = async |q: &str| call(&app, Method::GET, &format!("{FILES}?{q}")).await;
    assert_eq!(
        ids(&page("status=PROCESSED").await),
        newest_first,
        "newest first"
    );
    assert_eq!(
        ids(&page("status=PROCESSED&offset=0&limit=2").await),
        newest_first[..2]
    );
    assert_eq!(
        ids(&page("status=PROCESSED&offset=2&limit=2").await),
        newest_first[2..]
    );
    assert_eq!(
        ids(&page("status=DB_RECORD_CREATED").await),
        vec![pending.clone()]
    );
    let all = page("").await;
    let status_of = |id: &str| {
        all.body
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fileId"] == id)
            .map(|f| f["status"].clone())
    };
    assert_eq!(status_of(&pending), Some(json!("DB_RECORD_CREATED")));
    assert!(ids(&page("status=UPLOAD_FAILED").await).is_empty());
    assert!(
        ids(&page("status=PROCESSING").await).is_empty(),
        "nothing streams"
    );
    assert!(
        ids(&page("status=UPLOADED").await).is_empty(),
        "never reported"
    );
    // The SDK's `list(offset=None, limit=None)` sends the keys with no value.
    assert_eq!(ids(&page("offset=&limit=").await).len(), 4);
    assert!(ids(&page("status=PROCESSING_FAILED").await).is_empty());
    assert_eq!(ids(&page("name=doc-1.txt").await), vec![made[1].clone()]);
    assert_eq!(
        ids(&page("path=doc").await),
        newest_first,
        "path is a prefix"
    );
    assert!(ids(&page("path=other").await).is_empty());

    for bad in [
        "status=processed",
        "status=PROCESSED&status=PROCESSED",
        "limit=0",
        "limit=1001",
        "offset=-1",
        "cursor=abc",
        "file_type=text",
        "nope=1",
        "workspace_uuid=nope",
    ] {
        page(bad).await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn labels_filter_by_any_and_a_form_may_send_them_as_one_json_array() {
    let app = spawn_app().await;
    let tagged = create(
        &app,
        Form::new()
            .field("labels", r#"["cuties","furry_animals"]"#)
            .file("koala.txt", "text/plain", &samples::txt()),
    )
    .await;
    assert_eq!(tagged.status, 200, "{:?}", tagged.body);
    let tagged = tagged.body["fileId"].as_str().unwrap().to_owned();
    // The SDK's `labels=None` arrives as an empty field: no label.
    let unlabelled = create(
        &app,
        Form::new()
            .field("labels", "")
            .file("plain.txt", "text/plain", &samples::txt()),
    )
    .await;
    assert_eq!(unlabelled.status, 200, "{:?}", unlabelled.body);
    let plain = unlabelled.body["fileId"].as_str().unwrap().to_owned();
    let got = call(&app, Method::GET, &format!("{FILES}/{plain}")).await;
    assert_eq!(got.body["labels"], json!([]));
    let got = call(&app, Method::GET, &format!("{FILES}/{tagged}")).await;
    assert_eq!(got.body["labels"], json!(["cuties", "furry_animals"]));
    let listed = call(
        &app,
        Method::GET,
        &format!("{FILES}?label=furry_animals&label=other"),
    )
    .await;
    assert_eq!(ids(&listed), vec![tagged]);
    let all = call(&app, Method::GET, FILES).await;
    assert!(ids(&all).contains(&plain));
}

#[tokio::test]
async fn a_batchs_status_counts_its_files_by_status() {
    let app = spawn_app().await;
    for n in 0..2 {
        let res = create(
            &app,
            Form::new()
                .field("batch_id", "nightly-7")
                .field("upload_mode", "batch")
                .file(&format!("b{n}.txt"), "text/plain", &samples::txt()),
        )
        .await;
        assert_eq!(res.status, 200, "{:?}", res.body);
    }
    created(&app, "alone.txt", "").await;
    let status = call(
        &app,
        Method::GET,
        "/studio/v1/library/batches/nightly-7/status",
    )
    .await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(
        status.body,
        json!({ "batch_id": "nightly-7", "total_documents": 2,
                "statuses": [{ "status": "PROCESSED", "count": 2 }] })
    );
    for missing in ["nightly-8", "%00", "a%20b", "%2E%2E"] {
        call(
            &app,
            Method::GET,
            &format!("/studio/v1/library/batches/{missing}/status"),
        )
        .await
        .assert_error(404, "not_found");
    }
    // Another organization's key finds no such batch.
    let other = app.create_tenant(&Limits::default()).await;
    let res = Answer::of(
        app.request_as(
            &other.key,
            Method::GET,
            "/studio/v1/library/batches/nightly-7/status",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    res.assert_error(404, "not_found");

    // A batch id too long or not path-safe (the SDK puts it in a URL unencoded), or an
    // upload mode filegate does not know: 422, nothing kept.
    let long = "b".repeat(256);
    for (field, value) in [
        ("batch_id", long.as_str()),
        ("batch_id", "2024/10/01"),
        ("batch_id", "a?b"),
        ("batch_id", ".."),
        ("upload_mode", "stream"),
    ] {
        create(
            &app,
            Form::new()
                .field(field, value)
                .file("x.txt", "text/plain", &samples::txt()),
        )
        .await
        .assert_error(422, "invalid_metadata");
    }
    assert_eq!(app.file_rows(app.tenant.workspace).await, 3);
}

#[tokio::test]
async fn ai21s_create_refuses_what_v2_refuses_with_the_envelope_and_keeps_nothing() {
    let app = spawn_app().await;
    let ws = app.tenant.workspace;
    created(&app, "koala.txt", "animals").await;

    // Unsupported type: judged before the name, and said so.
    let res = create(
        &app,
        Form::new().file("evil.exe", "application/x-msdownload", &samples::pe()),
    )
    .await;
    res.assert_error(422, "unsupported_type");
    assert!(
        res.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unsupported document type")),
        "{:?}",
        res.body
    );
    assert_eq!(
        res.body["error"]["details"]["files"][0]["code"], "unsupported_type",
        "the rule's entry, as on /v2"
    );
    // The same name and path.
    let dup = create(
        &app,
        Form::new()
            .field("path", "animals")
            .file("koala.txt", "text/plain", &samples::txt()),
    )
    .await;
    dup.assert_error(422, "duplicate_file");
    // A spoofed type: ELF bytes as a PDF.
    create(
        &app,
        Form::new().file("report.pdf", "application/pdf", &samples::elf()),
    )
    .await
    .assert_error(422, "upload_mismatch");
    // Larger than the library allows.
    let big = vec![b'a'; (5 << 20) + 1];
    create(&app, Form::new().file("big.txt", "text/plain", &big))
        .await
        .assert_error(413, "payload_too_large");
    // Not a form; an unknown field; no key; a workspace outside the key's reach.
    let res = Answer::of(
        app.request(Method::POST, FILES)
            .header("content-type", "application/json")
            .body(r#"{"file":"x"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(400, "invalid_request");
    create(
        &app,
        Form::new().field("public_url", "https://example.com").file(
            "a.txt",
            "text/plain",
            &samples::txt(),
        ),
    )
    .await
    .assert_error(400, "invalid_request");
    create_as(
        &app,
        "fg_nope",
        "",
        Form::new().file("a.txt", "text/plain", b"a"),
    )
    .await
    .assert_error(401, "unauthenticated");
    let elsewhere = app.create_tenant(&Limits::default()).await;
    create_as(
        &app,
        &app.tenant.key,
        &format!("?workspace_uuid={}", elsewhere.workspace),
        Form::new().file("b.txt", "text/plain", b"b"),
    )
    .await
    .assert_error(403, "forbidden");

    // Nothing of the refused ones is left but the spoofed file's row, rejected (as on
    // `/v2`) and listed as AI21's UPLOAD_FAILED with the reason; counters equal rows,
    // and the bucket holds the one ready file's object only.
    let listed = call(&app, Method::GET, FILES).await;
    let statuses: Vec<(&str, &Value)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), &f["status"]))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("report.pdf", &json!("UPLOAD_FAILED")),
            ("koala.txt", &json!("PROCESSED"))
        ]
    );
    let failed = &listed.body[0];
    assert_eq!(failed["errorCode"], 422);
    assert!(
        failed["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("not a PDF")),
        "{failed:?}"
    );
    assert_eq!(app.counters(ws).await, app.row_sums(ws).await);
    assert_eq!(app.objects_of(ws).await, 1);
    assert_eq!(app.objects_of(elsewhere.workspace).await, 0);
}

#[tokio::test]
async fn ai21s_file_routes_answer_another_organizations_files_as_missing() {
    let app = spawn_app().await;
    let id = created(&app, "mine.txt", "").await;
    let other = app.create_tenant(&Limits::default()).await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let res = Answer::of(
            app.request_as(&other.key, method.clone(), &format!("{FILES}/{id}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        res.assert_error(404, "not_found");
    }
    assert_eq!(
        ids(&call(&app, Method::GET, FILES).await),
        vec![id.clone()],
        "still there"
    );
    let malformed = call(&app, Method::GET, &format!("{FILES}/not-a-uuid")).await;
    assert!(
        matches!(malformed.status, 400 | 404),
        "{:?}",
        malformed.body
    );
    call(&app, Method::PATCH, &format!("{FILES}/{id}"))
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn a_create_still_streaming_is_listed_as_processing_and_only_so() {
    let app = spawn_app().await;
    let headers = [
        ("Authorization", format!("Bearer {}", app.tenant.key)),
        ("Content-Type", Form::content_type()),
        ("Transfer-Encoding", "chunked".to_owned()),
    ];
    let mut socket = raw::open("127.0.0.1", app.port, "POST", FILES, &headers).await;
    let head = Form::file_head("slow.txt", "text/plain") + "some bytes";
    raw::send_chunk(&mut socket, head.as_bytes()).await.unwrap();
    // The file is reserved and its bytes are on their way.
    let mut streaming = Vec::new();
    for _ in 0..50 {
        streaming = ids(&call(&app, Method::GET, &format!("{FILES}?status=PROCESSING")).await);
        if !streaming.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(streaming.len(), 1, "the streaming create is PROCESSING");
    let listed = call(&app, Method::GET, FILES).await;
    assert_eq!(listed.body[0]["status"], "PROCESSING", "{:?}", listed.body);
    assert!(
        ids(&call(
            &app,
            Method::GET,
            &format!("{FILES}?status=DB_RECORD_CREATED")
        )
        .await)
        .is_empty(),
        "a file whose bytes stream is not DB_RECORD_CREATED"
    );
    let tail = format!("\r\n--{}--\r\n", Form::BOUNDARY);
    raw::send_chunk(&mut socket, tail.as_bytes()).await.unwrap();
    raw::send_chunk(&mut socket, b"").await.unwrap();
    assert_eq!(
        raw::answer_within(&mut socket, std::time::Duration::from_secs(10)).await,
        Some(200)
    );
    assert_eq!(
        ids(&call(&app, Method::GET, &format!("{FILES}?status=PROCESSED")).await),
        streaming
    );
}
