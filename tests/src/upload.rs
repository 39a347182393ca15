//! What a client does with a created file: the object key its presigned PUT writes, the
//! digest it declares, the headers it sends, and the whole round trip against any
//! running filegate.

use filegate_client::{Client, CreateFilesRequest, FileEntry, FileStatus, FileWithDownload};
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

/// The whole path a client takes, through `filegate_client`, against any running
/// filegate at `url`: reserve `bytes` as `name` (size and digest declared), PUT them to
/// the presigned URL with its headers, complete (`ready`), then read the file back
/// through its download URL. Asserts every step; returns the file's answer to
/// `GET /v2/files/{id}`.
///
/// # Panics
/// When any step does not answer as a client expects.
pub async fn upload_round_trip(
    url: &str,
    api_key: &str,
    name: &str,
    bytes: Vec<u8>,
) -> FileWithDownload {
    let client = Client::new(url, api_key).expect("client");
    let created = client
        .create_files(&CreateFilesRequest {
            workspace_uuid: None,
            files: vec![FileEntry {
                name: Some(name.to_owned()),
                size_bytes: Some(bytes.len() as u64),
                checksum_sha256: Some(sha256_b64(&bytes)),
                ..FileEntry::default()
            }],
        })
        .await
        .expect("reserve");
    let file = &created.files[0];
    client
        .upload(file, bytes.clone())
        .await
        .expect("PUT to the presigned URL");
    let done = client.complete(file.file_uuid).await.expect("complete");
    assert_eq!(done.status, FileStatus::Ready, "{done:?}");
    let got = client.get(file.file_uuid).await.expect("get");
    let download = got
        .download_url
        .as_deref()
        .expect("a ready file has a download_url");
    let served = reqwest::get(download).await.expect("download");
    assert_eq!(served.status(), 200, "download");
    assert_eq!(
        served.bytes().await.expect("downloaded bytes").as_ref(),
        bytes.as_slice(),
        "the download serves the uploaded bytes"
    );
    got
}
