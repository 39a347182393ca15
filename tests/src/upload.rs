//! What a client does with a created file: the object key its presigned PUT writes, the
//! digest it declares, the headers it sends, and the whole round trip against any
//! running filegate.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The object key a created file's presigned PUT writes (its upload key).
#[must_use]
pub fn upload_key(file: &Value) -> String {
    filegate_domain::keys::upload_key(file["remote_file_path"].as_str().expect("remote_file_path"))
}

/// Standard base64 of the SHA-256 of `bytes`, as `checksum_sha256` wants it.
#[must_use]
pub fn sha256_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// A created file's `upload_headers`, less Content-Length (the HTTP client sets it from
/// the body, as every real client does).
pub(crate) fn upload_headers(created: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in created["upload_headers"]
        .as_object()
        .expect("upload_headers")
    {
        if !k.eq_ignore_ascii_case("content-length") {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v.as_str().expect("header value")).expect("header value"),
            );
        }
    }
    headers
}

/// The whole path a client takes, against any running filegate at `url`: reserve
/// `bytes` as `name` (size and digest declared), PUT them to the presigned URL with its
/// headers, complete (`ready`), then read the file back through its download URL.
/// Asserts every step; returns the file's answer to `GET /v2/files/{id}`.
///
/// # Panics
/// When any step does not answer as a client expects.
pub async fn upload_round_trip(url: &str, api_key: &str, name: &str, bytes: Vec<u8>) -> Value {
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{url}/v2/files"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({ "files": [{
            "name": name,
            "size_bytes": bytes.len(),
            "checksum_sha256": sha256_b64(&bytes),
        }] }))
        .send()
        .await
        .expect("reserve");
    assert_eq!(res.status(), 200, "reserve");
    let created: Value = res.json().await.expect("reservation JSON");
    let file = &created["files"][0];
    let put = http
        .put(file["file_url"].as_str().expect("file_url"))
        .headers(upload_headers(file))
        .body(bytes.clone())
        .send()
        .await
        .expect("PUT to the presigned URL");
    assert_eq!(
        put.status(),
        200,
        "PUT: {}",
        put.text().await.unwrap_or_default()
    );
    let id = file["file_uuid"].as_str().expect("file_uuid");
    let done = http
        .post(format!("{url}/v2/files/{id}/complete"))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("complete");
    assert_eq!(done.status(), 200, "complete");
    let done: Value = done.json().await.expect("completion JSON");
    assert_eq!(done["status"], "ready", "{done}");
    let got: Value = http
        .get(format!("{url}/v2/files/{id}"))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("file JSON");
    let download = got["download_url"]
        .as_str()
        .expect("a ready file has a download_url");
    let served = http.get(download).send().await.expect("download");
    assert_eq!(served.status(), 200, "download");
    assert_eq!(
        served.bytes().await.expect("downloaded bytes").as_ref(),
        bytes.as_slice(),
        "the download serves the uploaded bytes"
    );
    got
}
