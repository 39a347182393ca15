//! The S3 server for tests: a fresh bucket name per app, and a plain S3 client with the
//! backends' credentials (straight to the server, never through a fault proxy).

use uuid::Uuid;

use crate::backends;

/// A fresh, unique bucket name.
#[must_use]
pub fn fresh_bucket() -> String {
    format!("fgt-{}", &Uuid::new_v4().simple().to_string()[..20])
}

/// A plain S3 client for the backends' S3 server, path-style, computing checksums only
/// where an operation requires one.
pub(crate) async fn s3_client() -> aws_sdk_s3::Client {
    let b = backends().await;
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(&b.s3_endpoint)
        .region(aws_sdk_s3::config::Region::new(b.s3_region.clone()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &b.s3_access_key_id,
            &b.s3_secret_access_key,
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
