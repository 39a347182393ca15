//! Multipart uploads: create one declaring SHA-256, presign its parts (each part's length
//! and digest signed in), list the parts the store holds, assemble, abort, and list the
//! uploads in progress. Also a streaming digest of a stored object, part by part.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use chrono::{DateTime, Utc};
use filegate_domain::Checksum;
use sha2::{Digest, Sha256};

use crate::{Presigned, Storage, StorageError, misbehaved, presigning};

/// The most parts a multipart upload holds (S3's limit): a ListParts that lists more
/// is not listing one upload.
const LISTED_PARTS_MAX: usize = 10_000;

/// What a presigned `UploadPart` pins.
#[derive(Debug, Clone, Copy)]
pub struct PartSpec {
    /// 1 to 10,000.
    pub number: i32,
    pub length: i64,
    pub checksum: Checksum,
}

/// A part the store holds for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: i32,
    pub size: i64,
    pub etag: Option<String>,
    /// Base64 SHA-256 the store keeps for the part, when it keeps one.
    pub checksum_sha256: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgress {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<DateTime<Utc>>,
}

/// One page of uploads in progress, and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    pub uploads: Vec<InProgress>,
    /// `(key marker, upload id marker)` for the next call; `None` on the last page.
    pub next: Option<(String, String)>,
}

/// How assembling a multipart upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assembled {
    /// The object now exists.
    Done,
    /// The upload is gone (assembled or aborted meanwhile).
    Gone,
    /// The store no longer holds the parts as listed (one was sent again meanwhile).
    PartsChanged,
    /// The store is busy with the upload (an abort or another assembly under way).
    Busy,
}

/// The SHA-256 of a whole object and of each of its consecutive slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub len: u64,
    pub whole: Checksum,
    /// One per slice of `slice_len` bytes (the last may be shorter); empty without slices.
    pub slices: Vec<Checksum>,
    /// The object's first bytes, up to the `prefix_len` asked for.
    pub prefix: Vec<u8>,
}

impl Storage {
    /// Starts a multipart upload of `key` declaring SHA-256 as its checksum algorithm;
    /// returns its upload id.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, StorageError> {
        let sent = self
            .internal
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send();
        let out = self.bounded("create_multipart_upload", sent).await?;
        out.upload_id().map(str::to_owned).ok_or_else(|| {
            StorageError::Other(
                "the store answered CreateMultipartUpload without an upload id".into(),
            )
        })
    }

    /// A presigned `UploadPart` whose signed headers pin the part's length and SHA-256.
    ///
    /// # Errors
    /// [`StorageError::Other`] when signing fails (a bad TTL).
    pub async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: &PartSpec,
        ttl: Duration,
    ) -> Result<Presigned, StorageError> {
        let length = part.length.to_string();
        let checksum = part.checksum.to_base64();
        if let Some(direct) = &self.direct {
            let now = SystemTime::now();
            let headers = [
                ("content-length", length.as_str()),
                ("x-amz-checksum-sha256", checksum.as_str()),
            ];
            let url = direct.part_url(key, upload_id, part.number, &headers, ttl, now)?;
            return Ok(Presigned::direct(url, &headers, now, ttl));
        }
        let (config, expires_at) = presigning(ttl)?;
        let signed = self
            .public
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part.number)
            .content_length(part.length)
            .checksum_sha256(checksum)
            .presigned(config)
            .await
            .map_err(StorageError::from)?;
        Ok(Presigned::from_sdk(&signed, expires_at))
    }

    /// Uploads one part of `body` from filegate itself (an upload streaming through
    /// it), its SHA-256 `checksum` sent for the store to check; returns the part as
    /// [`Storage::complete_multipart`] takes it.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses (another digest).
    #[tracing::instrument(skip_all, fields(key = %key, part = number), err(Display, level = "warn"))]
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: bytes::Bytes,
        checksum: Checksum,
    ) -> Result<StoredPart, StorageError> {
        let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
        let sum = checksum.to_base64();
        let sent = self
            .internal
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(size)
            .checksum_sha256(&sum)
            .body(ByteStream::from(body))
            // The signed checksum header binds the body (see `put_object`).
            .customize()
            .disable_payload_signing()
            .send();
        let out = self
            .bounded_by("upload_part", self.bound_for(size), sent)
            .await?;
        Ok(StoredPart {
            number,
            size,
            etag: out.e_tag().map(str::to_owned),
            checksum_sha256: Some(sum),
        })
    }

    /// Every part the store holds for the upload, by part number. `Ok(None)` when the
    /// upload does not exist (never started, completed or aborted).
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<StoredPart>>, StorageError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        let mut last_marker: Option<i32> = None;
        loop {
            let sent = self
                .internal
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send();
            let out = match self.bounded("list_parts", sent).await {
                Ok(out) => out,
                Err(StorageError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            parts.extend(out.parts().iter().filter_map(|p| {
                Some(StoredPart {
                    number: p.part_number()?,
                    size: p.size().unwrap_or_default(),
                    etag: p.e_tag().map(str::to_owned),
                    checksum_sha256: p.checksum_sha256().map(str::to_owned),
                })
            }));
            if parts.len() > LISTED_PARTS_MAX {
                return Err(misbehaved(format!(
                    "ListParts listed more than the {LISTED_PARTS_MAX} parts an upload can hold"
                )));
            }
            match out.next_part_number_marker() {
                Some(next) if out.is_truncated().unwrap_or(false) => {
                    // Each page starts after the last: a marker that does not move
                    // forward would list the same parts forever.
                    let at = next.parse::<i32>().ok();
                    if at.is_none() || at <= last_marker {
                        return Err(misbehaved(format!(
                            "ListParts gave the marker {next:?} after {last_marker:?}"
                        )));
                    }
                    last_marker = at;
                    marker = Some(next.to_owned());
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        Ok(Some(parts))
    }

    /// Assembles the object from `parts` (their ETags and digests as listed). The
    /// store works through every part's bytes before it answers: the call has time
    /// for them.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses otherwise.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<Assembled, StorageError> {
        use aws_sdk_s3::error::ProvideErrorMetadata as _;
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .set_e_tag(p.etag.clone())
                            .set_checksum_sha256(p.checksum_sha256.clone())
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let bound = self.bound_for(parts.iter().map(|p| p.size).sum());
        let sent = self
            .internal
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send();
        let classified = async {
            match sent.await {
                Ok(_) => Ok(Assembled::Done),
                Err(e)
                    if matches!(
                        e.as_service_error().and_then(|s| s.code()),
                        Some("InvalidPart" | "InvalidPartOrder" | "InvalidDigest" | "BadDigest")
                    ) =>
                {
                    Ok(Assembled::PartsChanged)
                }
                // Ceph RGW 16 answers 500 "This multipart completion is already in
                // progress" while an abort or another completion holds the upload.
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("InternalError") => {
                    Ok(Assembled::Busy)
                }
                Err(e) => Err(StorageError::from(e)),
            }
        };
        match self
            .bounded_by("complete_multipart_upload", bound, classified)
            .await
        {
            Err(StorageError::NotFound) => Ok(Assembled::Gone),
            other => other,
        }
    }

    /// Aborts a multipart upload, freeing its parts; one that does not exist succeeds.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let sent = self
            .internal
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send();
        match self.bounded("abort_multipart_upload", sent).await {
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page (up to 1,000) of the bucket's multipart uploads in progress.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    #[tracing::instrument(skip_all, err(Display, level = "warn"))]
    pub async fn list_uploads_page(
        &self,
        after: Option<(String, String)>,
    ) -> Result<UploadsPage, StorageError> {
        let (key_marker, id_marker) = after.unzip();
        let sent = self
            .internal
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .set_key_marker(key_marker)
            .set_upload_id_marker(id_marker)
            .send();
        let out = self.bounded("list_multipart_uploads", sent).await?;
        let uploads: Vec<InProgress> = out
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(InProgress {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                    initiated: u.initiated().and_then(crate::to_chrono),
                })
            })
            .collect();
        let next = match (
            out.is_truncated().unwrap_or(false),
            out.next_key_marker(),
            out.next_upload_id_marker(),
        ) {
            (true, Some(k), Some(u)) => Some((k.to_owned(), u.to_owned())),
            _ => None,
        };
        Ok(UploadsPage { uploads, next })
    }

    /// Streams the object (only while it is the version tagged `if_match`) through
    /// SHA-256, whole and in slices of `slice_len` bytes, holding one chunk at a time,
    /// and keeps its first `prefix_len` bytes (what a ranged read would have fetched).
    /// `Ok(None)` when it does not exist or is another version now.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or the stream breaks.
    #[tracing::instrument(skip_all, fields(key = %key), err(Display, level = "warn"))]
    pub async fn digests(
        &self,
        key: &str,
        if_match: Option<&str>,
        slice_len: Option<u64>,
        prefix_len: usize,
    ) -> Result<Option<Digests>, StorageError> {
        // A whole object may take longer than one call's timeout: each chunk gets it.
        let started = std::time::Instant::now();
        let sent = self
            .internal
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .send();
        let out = match self.bounded("get_object_stream", sent).await {
            Ok(out) => out,
            Err(StorageError::NotFound | StorageError::PreconditionFailed) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut body = out.body;
        let mut whole = Sha256::new();
        let mut slice = Sha256::new();
        let mut in_slice = 0u64;
        let mut slices = Vec::new();
        let mut len = 0u64;
        let mut prefix = Vec::new();
        loop {
            let next = tokio::time::timeout(self.timeout, body.next())
                .await
                .map_err(|_| StorageError::Unavailable("the object stream stalled".into()))?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| StorageError::Unavailable(Box::new(e)))?;
            whole.update(&chunk);
            len += chunk.len() as u64;
            let wanted = prefix_len.saturating_sub(prefix.len()).min(chunk.len());
            prefix.extend_from_slice(&chunk[..wanted]);
            let Some(slice_len) = slice_len.filter(|l| *l > 0) else {
                continue;
            };
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let room = usize::try_from(slice_len - in_slice).unwrap_or(usize::MAX);
                let (head, tail) = rest.split_at(room.min(rest.len()));
                slice.update(head);
                in_slice += head.len() as u64;
                rest = tail;
                if in_slice == slice_len {
                    slices.push(Checksum::from_digest(slice.finalize_reset().into()));
                    in_slice = 0;
                }
            }
        }
        if in_slice > 0 {
            slices.push(Checksum::from_digest(slice.finalize().into()));
        }
        if let Some(observe) = &self.observer {
            observe("get_object_stream_body", started.elapsed(), true);
        }
        Ok(Some(Digests {
            len,
            whole: Checksum::from_digest(whole.finalize().into()),
            slices,
            prefix,
        }))
    }
}

/// The composite checksum S3 reports for a multipart object whose parts have these
/// SHA-256 digests: base64 of the SHA-256 of the digests, then `-` and the part count.
#[must_use]
pub fn composite_checksum(parts: &[Checksum]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    format!(
        "{}-{}",
        Checksum::from_digest(h.finalize().into()).to_base64(),
        parts.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value Garage 2.5 reported for two parts: 5 MiB of `a` and 100 bytes of `b`.
    #[test]
    fn the_composite_checksum_is_the_digest_of_the_part_digests_and_the_count() {
        let a = Checksum::from_digest(Sha256::digest(vec![b'a'; 5 << 20]).into());
        let b = Checksum::from_digest(Sha256::digest([b'b'; 100]).into());
        assert_eq!(
            composite_checksum(&[a, b]),
            "7n1ZEEGpZyRgQtPvGMqYL80UbaFJA89T+2OobG6XQAs=-2"
        );
    }
}
