//! SigV4 query-string presigning for path-style PUT URLs, straight through `aws-sigv4`.
//!
//! The SDK's `presigned()` runs a whole operation pipeline (interceptors, endpoint
//! rules, URL parsing) for every URL; a 50-file reservation spent most of its CPU there.
//! With static credentials and path-style addressing the URL is fully determined, so
//! filegate signs it directly: same algorithm, same signed headers, a fraction of the work.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::StorageError;

/// What SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Clone)]
pub(crate) struct DirectPresigner {
    identity: Identity,
    region: String,
    /// `scheme://host[:port]` of the public endpoint.
    base: String,
    bucket: String,
}

impl DirectPresigner {
    pub(crate) fn new(
        access_key_id: &str,
        secret: &str,
        region: &str,
        public_endpoint: &str,
        bucket: &str,
    ) -> Self {
        let credentials = Credentials::new(access_key_id, secret, None, None, "filegate-settings");
        Self {
            identity: credentials.into(),
            region: region.to_owned(),
            base: public_endpoint.trim_end_matches('/').to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    /// A presigned `PUT` URL for `key` signing exactly `headers` (lowercase names).
    pub(crate) fn put_url(
        &self,
        key: &str,
        headers: &[(&str, &str)],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, StorageError> {
        self.signed_put(key, &[("x-id", "PutObject")], headers, ttl, now)
    }

    /// A presigned `UploadPart` URL: part `number` of the multipart upload `upload_id`.
    pub(crate) fn part_url(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        headers: &[(&str, &str)],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, StorageError> {
        let number = number.to_string();
        let query = [
            ("x-id", "UploadPart"),
            ("partNumber", number.as_str()),
            ("uploadId", upload_id),
        ];
        self.signed_put(key, &query, headers, ttl, now)
    }

    /// A presigned `PUT` of `key` with `query` (names and values unencoded).
    fn signed_put(
        &self,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, StorageError> {
        if ttl > crate::MAX_PRESIGN_TTL {
            return Err(StorageError::Other(
                "presigned URLs may last at most 7 days".into(),
            ));
        }
        let path: Vec<String> = key
            .split('/')
            .map(|s| utf8_percent_encode(s, UNRESERVED).to_string())
            .collect();
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, UNRESERVED)))
            .collect();
        let mut url = format!(
            "{}/{}/{}?{}",
            self.base,
            utf8_percent_encode(&self.bucket, UNRESERVED),
            path.join("/"),
            query.join("&")
        );
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(ttl);
        // S3 signs the path as sent: no double encoding, no normalization.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| StorageError::Other(Box::new(e)))?
            .into();
        let request = SignableRequest::new(
            "PUT",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| StorageError::Other(Box::new(e)))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| StorageError::Other(Box::new(e)))?
            .into_parts();
        let (_, query) = instructions.into_parts();
        for (name, value) in query {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(&value, UNRESERVED));
        }
        Ok(url)
    }
}
