//! filegate's object-store client, for any S3-compatible endpoint (AWS S3, MinIO,
//! Garage, …).
//!
//! Multipart uploads (large files): [`Storage::create_multipart`] and its siblings.
//!
//! Two SDK clients share one configuration but not one endpoint: the *internal* one
//! talks to the store from filegate, the *public* one only signs URLs, because a
//! presigned URL signs its host and must name the endpoint the client can reach.
//! Every call is bounded by the configured timeout; a copy or an assembly also by its bytes.

mod error;
mod multipart;
mod presign;
pub mod probe;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use chrono::{DateTime, Utc};
use filegate_domain::Checksum;
use secrecy::{ExposeSecret as _, SecretString};

pub use error::StorageError;
pub use multipart::{
    Assembled, Digests, InProgress, PartSpec, StoredPart, UploadsPage, composite_checksum,
};

/// How to reach the bucket. `Debug` shows the access key id, never the secret.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// The endpoint filegate talks to (e.g. `http://minio:9000`). `None`: AWS S3.
    pub endpoint: Option<String>,
    /// The endpoint clients reach, signed into presigned URLs. `None`: `endpoint`.
    pub public_endpoint: Option<String>,
    /// The signing region; Garage requires its own `s3_region` here.
    pub region: String,
    /// The bucket holding every workspace's objects.
    pub bucket: String,
    /// Static credentials; when absent, the AWS default chain (environment, profile,
    /// web identity, instance metadata) is used.
    pub access_key_id: Option<String>,
    /// See `access_key_id`.
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing (`endpoint/bucket/key`), which MinIO and Garage need.
    pub path_style: bool,
    /// The limit on each object-store call, retries included.
    pub timeout: Duration,
}

/// A presigned request: what the client must do to upload or download.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub url: String,
    pub method: String,
    /// The headers the client must send exactly (the signed ones).
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

impl Presigned {
    /// A request the SDK signed, valid until `expires_at`.
    fn from_sdk(
        signed: &aws_sdk_s3::presigning::PresignedRequest,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            url: signed.uri().to_owned(),
            method: signed.method().to_owned(),
            headers: signed
                .headers()
                .map(|(k, v)| (canonical_header(k), v.to_owned()))
                .collect(),
            expires_at,
        }
    }

    /// A PUT `url` signed directly with exactly `headers` (lowercase names) at `now`.
    fn direct(url: String, headers: &[(&str, &str)], now: SystemTime, ttl: Duration) -> Self {
        Self {
            url,
            method: "PUT".to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (canonical_header(k), (*v).to_owned()))
                .collect(),
            expires_at: DateTime::<Utc>::from(now + ttl),
        }
    }
}

/// What a presigned PUT pins with signed headers.
#[derive(Debug, Clone)]
pub struct PutSpec<'a> {
    pub content_type: &'a str,
    pub content_length: Option<i64>,
    pub checksum: Option<Checksum>,
}

/// What HeadObject says of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: i64,
    pub content_type: Option<String>,
    /// The `Content-Encoding` the object was stored with (the client's PUT chose it,
    /// and a download carries it unless the URL overrides it).
    pub content_encoding: Option<String>,
    /// Base64 SHA-256 the store keeps for the object, when it keeps one.
    pub checksum_sha256: Option<String>,
    /// The version's entity tag, as the store sent it (quotes included).
    pub etag: Option<String>,
    /// When the store last wrote the object.
    pub last_modified: Option<DateTime<Utc>>,
}

/// Bytes read from an object, with the entity tag of the version they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBytes {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// How a conditional copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Copied; the entity tag of the new object as the store reported it.
    Copied { etag: Option<String> },
    /// The source is gone, or is no longer the version the condition named.
    SourceChanged,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: i64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a bucket listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// Pass to the next call; `None` on the last page.
    pub continuation: Option<String>,
}

/// Called after every object-store call with its name, duration and success.
pub type Observer = Arc<dyn Fn(&'static str, Duration, bool) + Send + Sync>;

/// The object-store client. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    internal: Client,
    public: Client,
    bucket: String,
    timeout: Duration,
    observer: Option<Observer>,
    /// Static credentials and path style: PUT URLs are signed without the SDK pipeline.
    direct: Option<presign::DirectPresigner>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("bucket", &self.bucket)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Builds the clients. Nothing is contacted yet.
    pub async fn new(settings: &StorageSettings) -> Self {
        let region = Region::new(settings.region.clone());
        let shared = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(Credentials::new(
                    id,
                    secret.expose_secret(),
                    None,
                    None,
                    "filegate-settings",
                )),
            _ => aws_config::defaults(BehaviorVersion::latest()).region(region),
        }
        .load()
        .await;
        let base = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            // Only what filegate asks for is signed: no extra CRC headers on PUT URLs.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            // Each call's bound is filegate's own (`bounded`): one timeout, or more for
            // a copy or an assembly, whose time grows with its bytes.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.timeout)
                    .build(),
            );
        let mut internal = base.clone();
        if let Some(endpoint) = &settings.endpoint {
            internal = internal.endpoint_url(endpoint);
        }
        let mut public = base;
        if let Some(endpoint) = settings
            .public_endpoint
            .as_ref()
            .or(settings.endpoint.as_ref())
        {
            public = public.endpoint_url(endpoint);
        }
        Self {
            internal: Client::from_conf(internal.build()),
            public: Client::from_conf(public.build()),
            bucket: settings.bucket.clone(),
            timeout: settings.timeout,
            observer: None,
            direct: match (
                &settings.access_key_id,
                &settings.secret_access_key,
                public_endpoint_of(settings),
            ) {
                (Some(id), Some(secret), Some(endpoint)) if settings.path_style => {
                    Some(presign::DirectPresigner::new(
                        id,
                        secret.expose_secret(),
                        &settings.region,
                        endpoint,
                        &settings.bucket,
                    ))
                }
                _ => None,
            },
        }
    }

    /// Reports every call to `observer` (for metrics).
    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The bucket name.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `fut` bounded by one call's timeout. (Not an `async fn` of its own: the SDK's
    /// futures are large, and one more layer copying them overflows debug stacks.)
    fn bounded<T, E>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, StorageError>>
    where
        StorageError: From<E>,
    {
        self.bounded_by(op, self.timeout, fut)
    }

    /// The bound of a call the store answers after working through `bytes` on its side
    /// (a copy, an assembly): one call's timeout, plus those bytes at
    /// [`SERVER_SIDE_FLOOR`].
    fn bound_for(&self, bytes: i64) -> Duration {
        #[allow(clippy::cast_precision_loss)] // A bound need not be exact to the byte.
        let work = bytes.max(0) as f64 / SERVER_SIDE_FLOOR;
        self.timeout + Duration::from_secs_f64(work)
    }

    async fn bounded_by<T, E>(
        &self,
        op: &'static str,
        bound: Duration,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StorageError>
    where
        StorageError: From<E>,
    {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(bound, fut).await {
            Ok(result) => result.map_err(StorageError::from),
            Err(_) => Err(StorageError::Unavailable(
                "the object store did not answer in time".into(),
            )),
        };
        if let Some(observe) = &self.observer {
            // "Not found" and "empty range" are answers, not failures.
            let ok = matches!(
                result,
                Ok(_)
                    | Err(StorageError::NotFound
                        | StorageError::InvalidRange
                        | StorageError::PreconditionFailed)
            );
            observe(op, started.elapsed(), ok);
        }
        result
    }

    /// Checks that the bucket is reachable with the configured credentials.
    ///
    /// # Errors
    /// [`StorageError`] when it is not.
    #[tracing::instrument(skip_all, err(Display, level = "warn"))]
    pub async fn check(&self) -> Result<(), StorageError> {
        self.bounded(
            "head_bucket",
            self.internal.head_bucket().bucket(&self.bucket).send(),
        )
        .await?;
        Ok(())
    }

    /// Creates the bucket unless it exists. Returns `true` when it was created.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, err(Display, level = "warn"))]
    pub async fn ensure_bucket(&self) -> Result<bool, StorageError> {
        match self.check().await {
            Ok(()) => return Ok(false),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e),
        }
        match self
            .bounded(
                "create_bucket",
                self.internal.create_bucket().bucket(&self.bucket).send(),
            )
            .await
        {
            Ok(_) => Ok(true),
            // Another replica created it first.
            Err(StorageError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lets browsers on `origins` PUT and GET objects directly (presigned uploads from
    /// web pages need the bucket to answer CORS preflights).
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, err(Display, level = "warn"))]
    pub async fn apply_cors(&self, origins: &[String]) -> Result<(), StorageError> {
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build()
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        let config = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        self.bounded(
            "put_bucket_cors",
            self.internal
                .put_bucket_cors()
                .bucket(&self.bucket)
                .cors_configuration(config)
                .send(),
        )
        .await?;
        Ok(())
    }

    /// A presigned PUT whose signed headers pin the type, and the length and digest
    /// when given, so that the store itself refuses any other body.
    ///
    /// # Errors
    /// [`StorageError::Other`] when signing fails (a bad TTL).
    pub async fn presign_put(
        &self,
        key: &str,
        spec: &PutSpec<'_>,
        ttl: Duration,
    ) -> Result<Presigned, StorageError> {
        if let Some(direct) = &self.direct {
            let now = SystemTime::now();
            let length = spec.content_length.map(|l| l.to_string());
            let checksum = spec.checksum.map(|c| c.to_base64());
            let mut headers = vec![("content-type", spec.content_type)];
            if let Some(l) = &length {
                headers.push(("content-length", l.as_str()));
            }
            if let Some(c) = &checksum {
                headers.push(("x-amz-checksum-sha256", c.as_str()));
            }
            let url = direct.put_url(key, &headers, ttl, now)?;
            return Ok(Presigned::direct(url, &headers, now, ttl));
        }
        let (config, expires_at) = presigning(ttl)?;
        let mut req = self
            .public
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(spec.content_type);
        if let Some(len) = spec.content_length {
            req = req.content_length(len);
        }
        if let Some(sum) = &spec.checksum {
            req = req.checksum_sha256(sum.to_base64());
        }
        let signed = req.presigned(config).await.map_err(StorageError::from)?;
        Ok(Presigned::from_sdk(&signed, expires_at))
    }

    /// A presigned GET that makes the store answer with `content_disposition` and
    /// `content_type`, whatever the object's metadata says.
    ///
    /// # Errors
    /// [`StorageError::Other`] when signing fails (a bad TTL).
    pub async fn presign_get(
        &self,
        key: &str,
        content_disposition: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<Presigned, StorageError> {
        let (config, expires_at) = presigning(ttl)?;
        let signed = self
            .public
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition)
            .response_content_type(content_type)
            // The bytes as stored, never an encoding a client would decode them from.
            .response_content_encoding("identity")
            .presigned(config)
            .await
            .map_err(StorageError::from)?;
        Ok(Presigned::from_sdk(&signed, expires_at))
    }

    /// HeadObject with checksum mode on. `Ok(None)` when the object does not exist.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let sent = self
            .internal
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
        match self.bounded("head_object", sent.send()).await {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or_default(),
                content_type: out.content_type().map(str::to_owned),
                content_encoding: out.content_encoding().map(str::to_owned),
                checksum_sha256: out.checksum_sha256().map(str::to_owned),
                etag: out.e_tag().map(str::to_owned),
                last_modified: out.last_modified().and_then(to_chrono),
            })),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first `len` bytes of an object (fewer when it is shorter), with the entity
    /// tag of the version read. `Ok(None)` when it does not exist.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn read_prefix(
        &self,
        key: &str,
        len: usize,
    ) -> Result<Option<ObjectBytes>, StorageError> {
        let range = format!("bytes=0-{}", len.saturating_sub(1));
        self.read(key, Some((range, len)), None).await
    }

    /// The whole object, only if it is still the version tagged `if_match` (when
    /// given). `Ok(None)` when it does not exist or is another version now.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn read_all(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<ObjectBytes>, StorageError> {
        self.read(key, None, if_match).await
    }

    /// Streams the object to the file at `path` (created or truncated), only if it is
    /// still the version tagged `if_match`; at most `max_bytes` are written (a longer
    /// object is an error). Returns the bytes written; `Ok(None)` when the object does
    /// not exist or is another version now.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses, or the file cannot be
    /// written.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn download_to(
        &self,
        key: &str,
        if_match: Option<&str>,
        path: &std::path::Path,
        max_bytes: u64,
    ) -> Result<Option<u64>, StorageError> {
        use tokio::io::AsyncWriteExt;
        let bound = self.bound_for(i64::try_from(max_bytes).unwrap_or(i64::MAX));
        let fut = async {
            let out = self
                .internal
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_if_match(if_match.map(str::to_owned))
                .send()
                .await?;
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| StorageError::Other(Box::new(e)))?;
            let mut written = 0u64;
            let mut body = out.body;
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| StorageError::Unavailable(Box::new(e)))?
            {
                written += chunk.len() as u64;
                if written > max_bytes {
                    return Err(misbehaved(format!(
                        "the object {key} is longer than the {max_bytes} bytes it holds"
                    )));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| StorageError::Other(Box::new(e)))?;
            }
            file.flush()
                .await
                .map_err(|e| StorageError::Other(Box::new(e)))?;
            Ok::<_, StorageError>(written)
        };
        match self.bounded_by("get_object", bound, fut).await {
            Ok(n) => Ok(Some(n)),
            Err(StorageError::NotFound | StorageError::PreconditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads `key` (the `range` given as the header and the bytes it asks for).
    async fn read(
        &self,
        key: &str,
        range: Option<(String, usize)>,
        if_match: Option<&str>,
    ) -> Result<Option<ObjectBytes>, StorageError> {
        let cap = range.as_ref().map(|(_, len)| *len);
        let op = if range.is_some() {
            "get_object_range"
        } else {
            "get_object"
        };
        let fut = async {
            let out = self
                .internal
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_range(range.map(|(range, _)| range))
                .set_if_match(if_match.map(str::to_owned))
                .send()
                .await?;
            let etag = out.e_tag().map(str::to_owned);
            // A store that ignores `Range` sends the whole object: keep what was asked
            // for and drop the connection's rest, never buffering more.
            let mut bytes = Vec::new();
            let mut body = out.body;
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| StorageError::Unavailable(Box::new(e)))?
            {
                bytes.extend_from_slice(&chunk);
                if let Some(cap) = cap
                    && bytes.len() >= cap
                {
                    bytes.truncate(cap);
                    break;
                }
            }
            Ok::<_, StorageError>(ObjectBytes { bytes, etag })
        };
        match self.bounded(op, fut).await {
            Ok(bytes) => Ok(Some(bytes)),
            // A ranged read of an empty object is "range not satisfiable": it is empty.
            Err(StorageError::InvalidRange) => Ok(Some(ObjectBytes {
                bytes: Vec::new(),
                etag: None,
            })),
            Err(StorageError::NotFound | StorageError::PreconditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `body` to `key` from filegate itself (an upload streaming through it),
    /// with its type and its SHA-256 `checksum`, which the store checks and keeps.
    /// Returns the new version's entity tag.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses (another digest).
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn put_object(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        checksum: Checksum,
    ) -> Result<Option<String>, StorageError> {
        let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
        let sent = self
            .internal
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size)
            .checksum_sha256(checksum.to_base64())
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            // The signed `x-amz-checksum-sha256` header binds the body, which the store
            // checks: hashing it again for the signature would only cost CPU.
            .customize()
            .disable_payload_signing()
            .send();
        let out = self
            .bounded_by("put_object", self.bound_for(size), sent)
            .await?;
        Ok(out.e_tag().map(str::to_owned))
    }

    /// Copies `from` to `to` within the bucket, only while `from` is the version tagged
    /// `if_match`. Stores that ignore the condition (Ceph RGW 16) copy whatever `from`
    /// holds; the returned entity tag lets the caller tell. The store copies the
    /// object's `size` bytes before it answers: the call has time for them.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(from = %from, to = %to), err(Display, level = "warn"))]
    pub async fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
        size: i64,
    ) -> Result<CopyOutcome, StorageError> {
        let source = format!("{}/{}", self.bucket, encode_key(from));
        let bound = self.bound_for(size);
        let sent = self
            .internal
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .copy_source_if_match(if_match)
            .send();
        match self.bounded_by("copy_object", bound, sent).await {
            Ok(out) => Ok(CopyOutcome::Copied {
                etag: out
                    .copy_object_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_owned),
            }),
            Err(StorageError::NotFound | StorageError::PreconditionFailed) => {
                Ok(CopyOutcome::SourceChanged)
            }
            Err(e) => Err(e),
        }
    }

    /// One page (up to 1,000 objects) of the bucket's listing, in byte order of keys.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, err(Display, level = "warn"))]
    pub async fn list_page(&self, continuation: Option<String>) -> Result<ListPage, StorageError> {
        self.list(None, None, continuation).await
    }

    /// One page (up to 1,000 objects) of the keys under `prefix` that sort after
    /// `start_after`, in byte order; `continuation` from the previous page.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(prefix = %prefix), err(Display, level = "warn"))]
    pub async fn list_under(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<String>,
    ) -> Result<ListPage, StorageError> {
        self.list(Some(prefix), start_after, continuation).await
    }

    async fn list(
        &self,
        prefix: Option<&str>,
        start_after: Option<&str>,
        continuation: Option<String>,
    ) -> Result<ListPage, StorageError> {
        let sent = self
            .internal
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix(prefix.map(str::to_owned))
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(continuation)
            .send();
        let out = self.bounded("list_objects", sent).await?;
        Ok(ListPage {
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ListedObject {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or_default(),
                        last_modified: o.last_modified().and_then(to_chrono),
                    })
                })
                .collect(),
            continuation: out
                .is_truncated()
                .unwrap_or(false)
                .then(|| out.next_continuation_token().map(str::to_owned))
                .flatten(),
        })
    }

    /// Deletes an object; deleting a missing object succeeds.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self
            .bounded(
                "delete_object",
                self.internal
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .await
        {
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A store that answered against the protocol (a listing that goes back or repeats,
/// more parts than an upload holds): as good as unavailable for this call, and said so.
#[must_use]
pub fn misbehaved(what: String) -> StorageError {
    StorageError::Unavailable(what.into())
}

/// Where a listing that runs over pages has got to, so a store that repeats or goes
/// back on its markers (and would spin the listing forever, growing what it holds)
/// is refused instead, as is one listing more than `max_pages` pages.
#[derive(Debug)]
pub struct Listing<M> {
    what: &'static str,
    last: Option<M>,
    pages: usize,
    max_pages: usize,
}

impl<M: PartialOrd + std::fmt::Debug> Listing<M> {
    /// A listing of `what`, of at most `max_pages` pages.
    #[must_use]
    pub fn new(what: &'static str, max_pages: usize) -> Self {
        Self {
            what,
            last: None,
            pages: 0,
            max_pages,
        }
    }

    /// Pages listed so far.
    #[must_use]
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The next page, which lists from `first` to `last` (`None` for an empty page):
    /// it must start after the last page ended.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when it does not, or the listing has run past
    /// its most pages.
    pub fn page(&mut self, first: Option<M>, last: Option<M>) -> Result<(), StorageError> {
        self.pages += 1;
        if self.pages > self.max_pages {
            return Err(misbehaved(format!(
                "the {} listing ran past {} pages",
                self.what, self.max_pages
            )));
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(());
        };
        if self.last.as_ref().is_some_and(|prev| first <= *prev) || last < first {
            return Err(misbehaved(format!(
                "the {} listing went from {:?} back to {first:?}",
                self.what, self.last
            )));
        }
        self.last = Some(last);
        Ok(())
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A key as the `x-amz-copy-source` header wants it: each segment percent-encoded.
fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, presign::UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The slowest rate, in bytes per second, at which a store is expected to copy or
/// assemble an object on its side before it answers (a filesystem-backed store
/// concatenates parts on its disk; AWS documents that an assembly may take minutes).
const SERVER_SIDE_FLOOR: f64 = 8.0 * 1024.0 * 1024.0;

/// SigV4's limit on a presigned URL's lifetime.
const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The endpoint signed into URLs: the public one, else the internal one.
fn public_endpoint_of(settings: &StorageSettings) -> Option<&str> {
    settings
        .public_endpoint
        .as_deref()
        .or(settings.endpoint.as_deref())
}

fn presigning(ttl: Duration) -> Result<(PresigningConfig, DateTime<Utc>), StorageError> {
    let now = SystemTime::now();
    let config = PresigningConfig::builder()
        .start_time(now)
        .expires_in(ttl)
        .build()
        .map_err(|e| StorageError::Other(Box::new(e)))?;
    let expires_at = DateTime::<Utc>::from(now + ttl);
    Ok((config, expires_at))
}

/// The SDK reports header names in lowercase; clients read `Content-Type` more easily.
fn canonical_header(name: &str) -> String {
    match name {
        "content-type" => "Content-Type".to_owned(),
        "content-length" => "Content-Length".to_owned(),
        "content-md5" => "Content-MD5".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(url: &str) -> Option<&str> {
        url.split(['?', '&'])
            .find_map(|p| p.strip_prefix("X-Amz-Signature="))
    }

    /// The direct presigner and the SDK sign the same request identically.
    #[tokio::test]
    async fn direct_put_urls_carry_the_sdks_signature() {
        let settings = StorageSettings {
            endpoint: Some("http://store.internal:9000".into()),
            public_endpoint: Some("http://localhost:3900".into()),
            region: "garage".into(),
            bucket: "files".into(),
            access_key_id: Some("GK0123456789abcdef01234567".into()),
            secret_access_key: Some(
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            ),
            path_style: true,
            timeout: Duration::from_secs(1),
        };
        let storage = Storage::new(&settings).await;
        let direct = storage.direct.clone();
        let direct = direct.as_ref();
        assert!(
            direct.is_some(),
            "static credentials and path style take the direct path"
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let ttl = Duration::from_secs(900);
        let key = "0f3c0c1e-0000-7000-8000-000000000001/0f3c0c1e-0000-7000-8000-000000000002";
        let sum = Checksum::from_digest([7; 32]).to_base64();
        let config = PresigningConfig::builder()
            .start_time(at)
            .expires_in(ttl)
            .build()
            .ok();
        let sdk = match config {
            Some(config) => storage
                .public
                .put_object()
                .bucket("files")
                .key(key)
                .content_type("text/plain")
                .content_length(5)
                .checksum_sha256(&sum)
                .presigned(config)
                .await
                .map(|p| p.uri().to_owned())
                .ok(),
            None => None,
        };
        let ours = direct.and_then(|d| {
            d.put_url(
                key,
                &[
                    ("content-type", "text/plain"),
                    ("content-length", "5"),
                    ("x-amz-checksum-sha256", &sum),
                ],
                ttl,
                at,
            )
            .ok()
        });
        let (sdk, ours) = (sdk.unwrap_or_default(), ours.unwrap_or_default());
        assert!(
            ours.starts_with("http://localhost:3900/files/0f3c0c1e-"),
            "{ours}"
        );
        assert!(signature(&sdk).is_some(), "{sdk}");
        assert_eq!(
            signature(&ours),
            signature(&sdk),
            "\nours: {ours}\nsdk:  {sdk}"
        );
    }
}
