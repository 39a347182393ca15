//! What a store enforces, found out with real requests against the configured bucket.
//!
//! filegate's guarantees rest on the store: that it checks the signature of a
//! presigned URL, refuses a body that is not the signed type, length or digest, keeps
//! the digest for `HeadObject`, honours the copy precondition, and answers a presigned
//! GET with the signed `response-content-*` overrides. Stores differ, so filegate asks.
//! [`Storage::probe`] writes a few small objects under one prefix, sends the requests a
//! careless or hostile client could send, records what the store did, and deletes
//! every object it wrote (also those the store should have refused).

use std::time::Duration;

use chrono::{DateTime, Utc};
use filegate_domain::Checksum;

use strum::IntoEnumIterator as _;

use crate::{CopyOutcome, PutSpec, Storage, StorageError};

/// One property of the store that filegate relies on or works around, in the order
/// the probe checks them (`Capability::iter()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Capability {
    /// The credentials are accepted and the bucket exists.
    Reachable,
    /// The store's clock is within [`MAX_SKEW`] of this host's.
    ClockSkew,
    /// A correctly presigned PUT with its signed headers is accepted.
    PresignedPut,
    /// A presigned PUT whose signature was tampered with is refused.
    SignatureChecked,
    /// A PUT with another `Content-Type` than the signed one is refused.
    SignedContentType,
    /// A PUT with another length than the signed `Content-Length` is refused.
    SignedContentLength,
    /// A PUT of other bytes (same length) than the signed `x-amz-checksum-sha256` is refused.
    SignedChecksum,
    /// `HeadObject` with checksum mode returns the SHA-256 the PUT carried.
    ChecksumKept,
    /// `CopyObject` with `x-amz-copy-source-if-match` naming another ETag is refused.
    CopyIfMatch,
    /// `PutObject` with `If-None-Match: *` onto an existing key is refused.
    ConditionalPut,
    /// The bucket's CORS rules admit the configured browser origins.
    Cors,
    /// A presigned GET answers with its `response-content-disposition` and
    /// `response-content-type`.
    GetOverrides,
    /// A PUT the store refuses for its digest leaves the object that was there as it
    /// was. s3s-fs 0.14 writes the refused body over it and keeps the old ETag and
    /// digest, so neither names the bytes any longer.
    RefusedPutKeepsObject,
    /// A multipart upload declaring SHA-256 refuses a part of other bytes than its
    /// signed `x-amz-checksum-sha256`, and `ListParts` reports the digest of the part it
    /// accepted.
    PartChecksum,
    /// Objects of other bytes get other, non-empty ETags: an ETag names a version. A
    /// store that answers an empty or a constant ETag pins nothing with it.
    EtagNamesVersions,
}

impl Capability {
    /// The capability's name in reports, metrics and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What the probe found for one capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "lowercase")]
pub enum Support {
    /// The store behaves as filegate would like.
    Yes,
    /// It does not.
    No,
    /// Not asked: nothing configured needs it (e.g. no browser origins for CORS).
    Skipped,
    /// Could not be told: an earlier step failed, or the store errored.
    Unknown,
}

impl Support {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One line of a report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub capability: Capability,
    pub support: Support,
    /// What was seen (a status, a header, an error).
    pub detail: String,
}

/// What the probe found, one finding per [`Capability`], in the order of [`Capability`]'s variants.
#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The store's clock minus this host's, when a response carried a `Date`.
    pub skew: Option<chrono::Duration>,
}

impl Report {
    /// The support for `capability`.
    #[must_use]
    pub fn support(&self, capability: Capability) -> Support {
        self.findings
            .iter()
            .find(|f| f.capability == capability)
            .map_or(Support::Unknown, |f| f.support)
    }

    /// True when the store was seen to do it.
    #[must_use]
    pub fn has(&self, capability: Capability) -> bool {
        self.support(capability) == Support::Yes
    }
}

/// The largest clock difference a presigned URL tolerates well: SigV4 refuses requests
/// more than 15 minutes off, and a skew shortens or lengthens every URL's life.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// What to probe with.
#[derive(Debug, Clone, Default)]
pub struct ProbeOptions {
    /// Browser origins the bucket's CORS rules must admit (empty: CORS is skipped).
    pub cors_origins: Vec<String>,
    /// Where the probe's objects go (a unique suffix is added).
    pub prefix: String,
}

/// The body of the probe's objects: 64 bytes, so a same-length other body is easy.
const BODY: &[u8; 64] = b"filegate doctor: a small object to probe what the store enforces";
const TYPE: &str = "text/plain";

impl Storage {
    /// Probes the bucket (see the [module docs](self)). Never fails: what cannot be
    /// told is [`Support::Unknown`] with the reason. Deletes what it wrote.
    pub async fn probe(&self, options: &ProbeOptions) -> Report {
        let base = format!("{}{}/", options.prefix, uuid::Uuid::new_v4());
        let mut probe = Probe {
            storage: self,
            http: reqwest::Client::builder()
                .timeout(self.timeout)
                .build()
                .unwrap_or_default(),
            base,
            written: Vec::new(),
            findings: Vec::new(),
            skew: None,
        };
        probe.run(options).await;
        for key in &probe.written {
            if let Err(e) = self.delete(key).await {
                tracing::warn!(key, error = %e, "the store probe could not delete an object it wrote");
            }
        }
        let mut findings = probe.findings;
        for capability in Capability::iter() {
            if !findings.iter().any(|f| f.capability == capability) {
                findings.push(Finding {
                    capability,
                    support: Support::Unknown,
                    detail: "not probed: an earlier step failed".to_owned(),
                });
            }
        }
        findings.sort_by_key(|f| f.capability as usize);
        Report {
            findings,
            skew: probe.skew,
        }
    }
}

struct Probe<'a> {
    storage: &'a Storage,
    http: reqwest::Client,
    base: String,
    /// Every key the probe may have written, deleted at the end.
    written: Vec<String>,
    findings: Vec<Finding>,
    skew: Option<chrono::Duration>,
}

/// How one raw request went.
enum Sent {
    Status(u16, reqwest::header::HeaderMap),
    Failed(String),
}

impl Probe<'_> {
    fn found(&mut self, capability: Capability, support: Support, detail: impl Into<String>) {
        self.findings.push(Finding {
            capability,
            support,
            detail: detail.into(),
        });
    }

    fn key(&mut self, name: &str) -> String {
        let key = format!("{}{name}", self.base);
        self.written.push(key.clone());
        key
    }

    async fn run(&mut self, options: &ProbeOptions) {
        match self.storage.check().await {
            Ok(()) => self.found(Capability::Reachable, Support::Yes, "HeadBucket answered"),
            Err(e) => {
                let detail = error_chain(&e);
                self.found(Capability::Reachable, Support::No, detail);
                return;
            }
        }
        let sum = Checksum::from_digest(sha256(BODY));
        let good = self.key("object");
        let spec = PutSpec {
            content_type: TYPE,
            content_length: Some(BODY.len() as i64),
            checksum: Some(sum),
        };
        match self.put(&good, &spec, |r| r, BODY.to_vec()).await {
            Sent::Status(s, headers) if (200..300).contains(&s) => {
                self.clock(&headers);
                self.found(Capability::PresignedPut, Support::Yes, format!("{s}"));
            }
            Sent::Status(s, headers) => {
                self.clock(&headers);
                self.found(
                    Capability::PresignedPut,
                    Support::No,
                    format!("a correctly signed PUT got {s}"),
                );
                return;
            }
            Sent::Failed(e) => {
                self.found(Capability::PresignedPut, Support::Unknown, e);
                return;
            }
        }
        self.refused(Capability::SignatureChecked, &spec, Tamper::Signature)
            .await;
        self.refused(Capability::SignedContentType, &spec, Tamper::ContentType)
            .await;
        self.refused(Capability::SignedContentLength, &spec, Tamper::Length)
            .await;
        self.refused(Capability::SignedChecksum, &spec, Tamper::Bytes)
            .await;
        self.checksum_kept(&good, &sum).await;
        self.copy_if_match(&good).await;
        self.conditional_put(&good).await;
        self.cors(&options.cors_origins).await;
        self.get_overrides(&good).await;
        self.part_checksum(&sum).await;
        self.etag_names_versions(&good).await;
        // Last: it may leave other bytes at the key the probes above read.
        self.refused_put_keeps_object(&good, &spec).await;
    }

    /// Reads the store's clock off a response's `Date`.
    fn clock(&mut self, headers: &reqwest::header::HeaderMap) {
        let date = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
        let Some(date) = date else {
            self.found(
                Capability::ClockSkew,
                Support::Unknown,
                "the store's answer carried no Date",
            );
            return;
        };
        let skew = date.with_timezone(&Utc) - Utc::now();
        self.skew = Some(skew);
        let within = skew.abs().to_std().unwrap_or(Duration::MAX) <= MAX_SKEW;
        self.found(
            Capability::ClockSkew,
            if within { Support::Yes } else { Support::No },
            format!("{} s", skew.num_seconds()),
        );
    }

    /// Sends a presigned PUT for `spec` to `key`, its headers as a client sends them,
    /// after `tweak` changed the request.
    async fn put(
        &mut self,
        key: &str,
        spec: &PutSpec<'_>,
        tweak: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        body: Vec<u8>,
    ) -> Sent {
        self.put_to(key, spec, |url| url, tweak, body).await
    }

    async fn put_to(
        &mut self,
        key: &str,
        spec: &PutSpec<'_>,
        url: impl FnOnce(String) -> String,
        tweak: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
        body: Vec<u8>,
    ) -> Sent {
        let signed = match self
            .storage
            .presign_put(key, spec, Duration::from_secs(300))
            .await
        {
            Ok(s) => s,
            Err(e) => return Sent::Failed(error_chain(&e)),
        };
        let mut req = self.http.put(url(signed.url));
        for (name, value) in &signed.headers {
            if !name.eq_ignore_ascii_case("content-length") {
                req = req.header(name, value);
            }
        }
        match tweak(req).body(body).send().await {
            Ok(res) => Sent::Status(res.status().as_u16(), res.headers().clone()),
            Err(e) => Sent::Failed(error_chain(&e)),
        }
    }

    /// Sends a PUT the store should refuse; `Yes` when it does.
    async fn refused(&mut self, capability: Capability, spec: &PutSpec<'_>, tamper: Tamper) {
        let key = self.key(capability.name());
        let sent = match tamper {
            Tamper::Signature => {
                self.put_to(&key, spec, tamper_signature, |r| r, BODY.to_vec())
                    .await
            }
            Tamper::ContentType => {
                self.put(
                    &key,
                    spec,
                    |r| r.header("Content-Type", "application/octet-stream"),
                    BODY.to_vec(),
                )
                .await
            }
            Tamper::Length => {
                let mut longer = BODY.to_vec();
                longer.extend_from_slice(b"+more");
                self.put(&key, spec, |r| r, longer).await
            }
            Tamper::Bytes => {
                let mut other = BODY.to_vec();
                other.reverse();
                self.put(&key, spec, |r| r, other).await
            }
        };
        match sent {
            Sent::Status(s, _) if (400..500).contains(&s) => {
                self.found(capability, Support::Yes, format!("refused with {s}"));
            }
            Sent::Status(s, _) if (200..300).contains(&s) => {
                self.found(capability, Support::No, format!("accepted with {s}"));
            }
            Sent::Status(s, _) => self.found(capability, Support::Unknown, format!("answered {s}")),
            // Some stores close the connection on a body longer than declared: refused.
            Sent::Failed(e) if matches!(tamper, Tamper::Length) => {
                self.found(
                    capability,
                    Support::Yes,
                    format!("connection refused the body: {e}"),
                );
            }
            Sent::Failed(e) => self.found(capability, Support::Unknown, e),
        }
    }

    /// Sends other bytes under the signed digest to `key`, which holds [`BODY`], and
    /// reads the object back.
    async fn refused_put_keeps_object(&mut self, key: &str, spec: &PutSpec<'_>) {
        let capability = Capability::RefusedPutKeepsObject;
        let mut other = BODY.to_vec();
        other.reverse();
        match self.put(key, spec, |r| r, other).await {
            Sent::Status(s, _) if (200..300).contains(&s) => {
                self.found(
                    capability,
                    Support::Skipped,
                    format!("nothing to refuse: the store took the other bytes ({s})"),
                );
                return;
            }
            Sent::Status(..) | Sent::Failed(_) => {}
        }
        match self.storage.read_all(key, None).await {
            Ok(Some(object)) if object.bytes == BODY.as_slice() => {
                self.found(capability, Support::Yes, "the object is unchanged");
            }
            Ok(Some(_)) => self.found(
                capability,
                Support::No,
                "the refused body replaced the object's bytes",
            ),
            Ok(None) => self.found(
                capability,
                Support::No,
                "the refused PUT removed the object",
            ),
            Err(e) => self.found(capability, Support::Unknown, error_chain(&e)),
        }
    }

    /// Puts other bytes than [`BODY`] (which `good` holds) to a key of their own and
    /// compares the two objects' ETags.
    async fn etag_names_versions(&mut self, good: &str) {
        let capability = Capability::EtagNamesVersions;
        let key = self.key(capability.name());
        let mut other = BODY.to_vec();
        other.reverse();
        let spec = PutSpec {
            content_type: TYPE,
            content_length: Some(other.len() as i64),
            checksum: Some(Checksum::from_digest(sha256(&other))),
        };
        match self.put(&key, &spec, |r| r, other).await {
            Sent::Status(s, _) if (200..300).contains(&s) => {}
            Sent::Status(s, _) => {
                self.found(capability, Support::Unknown, format!("the PUT got {s}"));
                return;
            }
            Sent::Failed(e) => {
                self.found(capability, Support::Unknown, e);
                return;
            }
        }
        let (a, b) = (self.storage.head(good).await, self.storage.head(&key).await);
        let etag = |h: Option<crate::ObjectInfo>| h.and_then(|h| h.etag).unwrap_or_default();
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (etag(a), etag(b));
                let empty = |e: &str| e.trim_matches('"').is_empty();
                if empty(&a) || empty(&b) {
                    self.found(capability, Support::No, "an object's ETag is empty");
                } else if a == b {
                    self.found(
                        capability,
                        Support::No,
                        format!("objects of other bytes share the ETag {a}"),
                    );
                } else {
                    self.found(capability, Support::Yes, "other bytes, other ETags");
                }
            }
            (Err(e), _) | (_, Err(e)) => self.found(capability, Support::Unknown, error_chain(&e)),
        }
    }

    /// A part of other bytes than its signed digest, then the right bytes, to a
    /// multipart upload declaring SHA-256; the upload is aborted whatever happened.
    async fn part_checksum(&mut self, sum: &Checksum) {
        let key = self.key("multipart");
        let upload_id = match self.storage.create_multipart(&key, TYPE).await {
            Ok(id) => id,
            Err(e) => {
                let detail = format!("CreateMultipartUpload failed: {}", error_chain(&e));
                self.found(Capability::PartChecksum, Support::No, detail);
                return;
            }
        };
        let (support, detail) = self.send_parts(&key, &upload_id, sum).await;
        self.found(Capability::PartChecksum, support, detail);
        if let Err(e) = self.storage.abort_multipart(&key, &upload_id).await {
            tracing::warn!(key, error = %e, "the store probe could not abort its multipart upload");
        }
    }

    async fn send_parts(
        &mut self,
        key: &str,
        upload_id: &str,
        sum: &Checksum,
    ) -> (Support, String) {
        let part = crate::PartSpec {
            number: 1,
            length: BODY.len() as i64,
            checksum: *sum,
        };
        let signed = match self
            .storage
            .presign_part(key, upload_id, &part, Duration::from_secs(300))
            .await
        {
            Ok(s) => s,
            Err(e) => return (Support::Unknown, error_chain(&e)),
        };
        let send = |body: Vec<u8>| {
            let mut req = self.http.put(&signed.url);
            for (name, value) in &signed.headers {
                if !name.eq_ignore_ascii_case("content-length") {
                    req = req.header(name, value);
                }
            }
            req.body(body).send()
        };
        let mut other = BODY.to_vec();
        other.reverse();
        let refused = match send(other).await {
            Ok(res) => res.status().as_u16(),
            Err(e) => return (Support::Unknown, error_chain(&e)),
        };
        let accepted = match send(BODY.to_vec()).await {
            Ok(res) => res.status().as_u16(),
            Err(e) => return (Support::Unknown, error_chain(&e)),
        };
        if !(200..300).contains(&accepted) {
            return (
                Support::No,
                format!("a correctly signed part got {accepted}"),
            );
        }
        if (200..300).contains(&refused) {
            return (Support::No, format!("a part of other bytes got {refused}"));
        }
        match self.storage.list_parts(key, upload_id).await {
            Ok(Some(parts)) => match parts.first().and_then(|p| p.checksum_sha256.as_deref()) {
                Some(kept) if kept == sum.to_base64() => (
                    Support::Yes,
                    format!("other bytes got {refused}; digest listed"),
                ),
                Some(_) => (Support::No, "ListParts reports another digest".to_owned()),
                None => (
                    Support::No,
                    format!("other bytes got {refused}, but ListParts reports no digest"),
                ),
            },
            Ok(None) => (Support::Unknown, "the upload vanished".to_owned()),
            Err(e) => (Support::Unknown, error_chain(&e)),
        }
    }

    async fn checksum_kept(&mut self, key: &str, sum: &Checksum) {
        match self.storage.head(key).await {
            Ok(Some(info)) => match info.checksum_sha256 {
                Some(kept) if kept == sum.to_base64() => {
                    self.found(
                        Capability::ChecksumKept,
                        Support::Yes,
                        "HeadObject returns it",
                    );
                }
                Some(other) => self.found(
                    Capability::ChecksumKept,
                    Support::No,
                    format!("HeadObject returns another digest ({other})"),
                ),
                None => self.found(
                    Capability::ChecksumKept,
                    Support::No,
                    "HeadObject returns no SHA-256",
                ),
            },
            Ok(None) => self.found(
                Capability::ChecksumKept,
                Support::Unknown,
                "the object written is gone",
            ),
            Err(e) => self.found(Capability::ChecksumKept, Support::Unknown, error_chain(&e)),
        }
    }

    async fn copy_if_match(&mut self, key: &str) {
        let to = self.key("copy");
        match self
            .storage
            .copy(key, &to, "\"00000000000000000000000000000000\"", 0)
            .await
        {
            Ok(CopyOutcome::SourceChanged) => {
                self.found(Capability::CopyIfMatch, Support::Yes, "refused with 412");
            }
            Ok(CopyOutcome::Copied { .. }) => self.found(
                Capability::CopyIfMatch,
                Support::No,
                "copied although the ETag named another version",
            ),
            Err(e) => self.found(Capability::CopyIfMatch, Support::Unknown, error_chain(&e)),
        }
    }

    async fn conditional_put(&mut self, key: &str) {
        let sent = self
            .storage
            .internal
            .put_object()
            .bucket(&self.storage.bucket)
            .key(key)
            .content_type(TYPE)
            .if_none_match("*")
            .body(BODY.to_vec().into())
            .send();
        match self.storage.bounded("put_object", sent).await {
            Err(StorageError::PreconditionFailed) => {
                self.found(Capability::ConditionalPut, Support::Yes, "refused with 412");
            }
            Ok(_) => self.found(
                Capability::ConditionalPut,
                Support::No,
                "overwrote an existing object",
            ),
            Err(e) => self.found(
                Capability::ConditionalPut,
                Support::Unknown,
                error_chain(&e),
            ),
        }
    }

    async fn cors(&mut self, origins: &[String]) {
        if origins.is_empty() {
            self.found(
                Capability::Cors,
                Support::Skipped,
                "no browser origins configured",
            );
            return;
        }
        let sent = self
            .storage
            .internal
            .get_bucket_cors()
            .bucket(&self.storage.bucket)
            .send();
        match self.storage.bounded("get_bucket_cors", sent).await {
            Ok(out) => {
                let admits = |origin: &String| {
                    out.cors_rules().iter().any(|rule| {
                        rule.allowed_methods().iter().any(|m| m == "PUT")
                            && rule
                                .allowed_origins()
                                .iter()
                                .any(|o| o == "*" || o == origin)
                    })
                };
                let missing: Vec<&String> = origins.iter().filter(|o| !admits(o)).collect();
                if missing.is_empty() {
                    self.found(Capability::Cors, Support::Yes, "every origin may PUT");
                } else {
                    self.found(
                        Capability::Cors,
                        Support::No,
                        format!("no PUT rule for {missing:?}"),
                    );
                }
            }
            Err(StorageError::NotFound) => {
                self.found(
                    Capability::Cors,
                    Support::No,
                    "the bucket has no CORS rules",
                );
            }
            Err(StorageError::NotImplemented(_)) => {
                self.found(
                    Capability::Cors,
                    Support::No,
                    "the store has no bucket CORS",
                );
            }
            Err(e) => self.found(Capability::Cors, Support::Unknown, error_chain(&e)),
        }
    }

    async fn get_overrides(&mut self, key: &str) {
        let disposition = "attachment; filename=\"probe.txt\"";
        let content_type = "application/octet-stream";
        let signed = match self
            .storage
            .presign_get(key, disposition, content_type, Duration::from_secs(300))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.found(Capability::GetOverrides, Support::Unknown, error_chain(&e));
                return;
            }
        };
        match self.http.get(&signed.url).send().await {
            Ok(res) if res.status().is_success() => {
                let header = |name| {
                    res.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let got = (
                    header(reqwest::header::CONTENT_DISPOSITION),
                    header(reqwest::header::CONTENT_TYPE),
                );
                if got.0 == disposition && got.1 == content_type {
                    self.found(Capability::GetOverrides, Support::Yes, "both honoured");
                } else {
                    self.found(
                        Capability::GetOverrides,
                        Support::No,
                        format!(
                            "answered Content-Disposition {:?}, Content-Type {:?}",
                            got.0, got.1
                        ),
                    );
                }
            }
            Ok(res) => self.found(
                Capability::GetOverrides,
                Support::Unknown,
                format!("the presigned GET got {}", res.status().as_u16()),
            ),
            Err(e) => self.found(Capability::GetOverrides, Support::Unknown, error_chain(&e)),
        }
    }
}

/// How a refused PUT differs from what was signed.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Signature,
    ContentType,
    Length,
    Bytes,
}

/// The URL with the last hex digit of its signature changed.
fn tamper_signature(url: String) -> String {
    let Some(at) = url.find("X-Amz-Signature=") else {
        return url;
    };
    let start = at + "X-Amz-Signature=".len();
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    if end == start {
        return url;
    }
    let last = &url[end - 1..end];
    let flipped = if last == "0" { "1" } else { "0" };
    format!("{}{flipped}{}", &url[..end - 1], &url[end..])
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_signature_differs_only_in_its_last_digit() {
        let url = "http://s/b/k?X-Amz-Credential=c&X-Amz-Signature=abc0&X-Amz-SignedHeaders=host";
        assert_eq!(
            tamper_signature(url.to_owned()),
            "http://s/b/k?X-Amz-Credential=c&X-Amz-Signature=abc1&X-Amz-SignedHeaders=host"
        );
        let last = "http://s/b/k?X-Amz-Signature=abc5";
        assert_eq!(
            tamper_signature(last.to_owned()),
            "http://s/b/k?X-Amz-Signature=abc0"
        );
        assert_eq!(tamper_signature("http://s/b/k".to_owned()), "http://s/b/k");
    }

    #[test]
    fn the_probe_body_is_what_the_tampered_bodies_are_measured_against() {
        assert_eq!(BODY.len(), 64);
        let mut reversed = BODY.to_vec();
        reversed.reverse();
        assert_ne!(
            reversed,
            BODY.to_vec(),
            "the same-length other body differs"
        );
    }

    #[test]
    fn every_capability_has_a_distinct_name() {
        let mut names: Vec<&str> = Capability::iter().map(Capability::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Capability::iter().count());
    }
}
