//! The downstream helper, end to end. Needs a Docker engine and the image
//! (`docker build -f deploy/Dockerfile -t filegate:local .`), so it is ignored by
//! default: `cargo test -p filegate-tests -- --ignored containers`.

use filegate_tests::containers::FilegateStack;
use filegate_tests::sha256_b64;
use serde_json::{Value, json};

#[tokio::test]
#[ignore = "needs a Docker engine and the filegate:local image"]
async fn a_containerized_stack_takes_an_upload_end_to_end() {
    let stack = FilegateStack::start("filegate", "local")
        .await
        .expect("start the stack");
    let http = reqwest::Client::new();
    let body = b"hello".to_vec();
    let res: Value = http
        .post(format!("{}/v2/files", stack.url))
        .bearer_auth(&stack.api_key)
        .json(&json!({ "files": [{ "name": "a.txt", "size_bytes": 5, "checksum_sha256": sha256_b64(&body) }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = &res["files"][0];
    let mut put = http.put(file["file_url"].as_str().unwrap()).body(body);
    for (k, v) in file["upload_headers"].as_object().unwrap() {
        if k != "Content-Length" {
            put = put.header(k, v.as_str().unwrap());
        }
    }
    assert_eq!(put.send().await.unwrap().status(), 200);
    let id = file["file_uuid"].as_str().unwrap();
    let done = http
        .post(format!("{}/v2/files/{id}/complete", stack.url))
        .bearer_auth(&stack.api_key)
        .send()
        .await;
    assert_eq!(done.unwrap().status(), 200);
}
