//! One claimed file's upload, looked at until it is missing, invalid, or valid and
//! copied into place: its size, stored type, digests and first bytes, every read
//! pinned to one version of the object.

use std::time::Instant;

use filegate_api::RejectionCheck;
use filegate_db::files::FileRow;
use filegate_domain::Checksum;
use filegate_storage::{CopyOutcome, ObjectInfo};

use super::assemble::{self, Assembly};
use super::{ATTEMPTS, BUSY_PAUSE, Completer, CompletionError, Ledger};
use crate::service::store::ObjectStore;
use uuid::Uuid;

/// What looking at an upload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Inspection {
    /// Nothing to verify yet (for a multipart file: these parts are missing).
    Missing(Vec<i32>),
    /// The object changed between two reads of one inspection: look again. (What
    /// [`Completer::verify`] concludes is never this: it looks again, then rejects.)
    Changed,
    /// It fails `check`, for `reason` (the sentence the file's rejection keeps).
    Invalid {
        check: RejectionCheck,
        reason: String,
    },
    /// It passed every check: `size` bytes, the version `etag` (once verified, that
    /// version is at the object key).
    Valid { size: i64, etag: String },
}

/// How a copy of the verified version to the served key went.
enum Promotion {
    /// The served key holds the version inspected.
    Done,
    /// The upload is no longer that version: look again.
    SourceChanged,
    /// The copy reports another ETag than the version inspected (a store that
    /// ignores the copy's precondition copied another version, or gives copies of
    /// assembled objects ETags of their own): the copy itself must be inspected.
    CopyDiffers,
}

/// What the digest checks concluded.
enum Digested {
    /// Every digest matches; the object's first bytes when they were streamed.
    Settled(Option<Vec<u8>>),
    /// The object failed a digest, or changed under the read.
    Found(Inspection),
}

impl<S: ObjectStore, L: Ledger> Completer<S, L> {
    /// Inspects the claimed file's upload until it is missing, invalid, or valid and
    /// copied into place (looking again, up to [`ATTEMPTS`] times, while it changes).
    /// The claim `token`'s lease ran from `started`: past half of it no copy starts.
    pub(super) async fn verify(
        &self,
        file: &FileRow,
        token: Uuid,
        started: Instant,
    ) -> Result<Inspection, CompletionError> {
        let half_lease = self.lease.of(file.size_bytes.unwrap_or(0)) / 2;
        // Files reserved before uploads were staged have one key: there is nothing to copy.
        let copy_first = !self.trust.etag_pins_bytes && file.upload_key != file.object_key;
        let mut store_busy = false;
        for _ in 0..ATTEMPTS {
            let inspection = if copy_first {
                if started.elapsed() > half_lease {
                    return Err(CompletionError::TooSlow);
                }
                self.copy_then_inspect(file, token).await?
            } else if let Some(multipart) = &file.multipart {
                match assemble::assemble(&self.store, &self.ledger, file, multipart).await? {
                    Assembly::Assembled(digests) => {
                        self.inspect(file, token, &file.upload_key, Some(&digests))
                            .await?
                    }
                    Assembly::Missing(parts) => Inspection::Missing(parts),
                    Assembly::Changed => Inspection::Changed,
                    Assembly::Busy => {
                        store_busy = true;
                        tokio::time::sleep(BUSY_PAUSE).await;
                        Inspection::Changed
                    }
                }
            } else {
                self.inspect(file, token, &file.upload_key, None).await?
            };
            match inspection {
                Inspection::Changed => {}
                Inspection::Valid { size, ref etag } if !copy_first => {
                    // An undeclared size's claim was extended to the real size when
                    // the HEAD told it (at `started` or later).
                    if started.elapsed() > half_lease.max(self.lease.of(size) / 2) {
                        return Err(CompletionError::TooSlow);
                    }
                    match self.promote(file, etag, size).await? {
                        Promotion::Done => return Ok(inspection),
                        Promotion::SourceChanged => {}
                        // What is served is the copy, which no client can write: it is
                        // what is inspected then (a copy of an object assembled from
                        // parts gets an ETag of its own on every store).
                        Promotion::CopyDiffers => {
                            match self.inspect(file, token, &file.object_key, None).await? {
                                // Deleted meanwhile, or changed: look again.
                                Inspection::Missing(_) | Inspection::Changed => {}
                                found => return Ok(found),
                            }
                        }
                    }
                }
                found => return Ok(found),
            }
        }
        if store_busy {
            return Err(CompletionError::AssemblyBusy);
        }
        Ok(Inspection::Invalid {
            check: RejectionCheck::Changed,
            reason: "the object kept changing while it was being verified".to_owned(),
        })
    }

    /// On a store whose ETags do not pin bytes (a PUT it refuses can replace them
    /// under the old ETag), the upload is copied to the object key first, and the
    /// copy, which no client can write, is what is inspected and then served.
    async fn copy_then_inspect(
        &self,
        file: &FileRow,
        token: Uuid,
    ) -> Result<Inspection, CompletionError> {
        let Some(head) = self.store.head(&file.upload_key).await? else {
            return Ok(Inspection::Missing(Vec::new()));
        };
        self.hold_for(file, token, head.size).await?;
        let etag = pinning_etag(head.etag)?;
        match self
            .store
            .copy(&file.upload_key, &file.object_key, &etag, head.size)
            .await?
        {
            CopyOutcome::SourceChanged => Ok(Inspection::Changed),
            CopyOutcome::Copied { .. } => {
                match self.inspect(file, token, &file.object_key, None).await? {
                    // The file's delete removed the copy meanwhile; the transition will tell.
                    Inspection::Missing(_) => Ok(Inspection::Changed),
                    found => Ok(found),
                }
            }
        }
    }

    /// Copies the verified version of the upload to the served key.
    async fn promote(
        &self,
        file: &FileRow,
        etag: &str,
        size: i64,
    ) -> Result<Promotion, CompletionError> {
        // Files reserved before uploads were staged are served from where they were PUT.
        if file.upload_key == file.object_key {
            return Ok(Promotion::Done);
        }
        let copied = match self
            .store
            .copy(&file.upload_key, &file.object_key, etag, size)
            .await?
        {
            CopyOutcome::SourceChanged => return Ok(Promotion::SourceChanged),
            // The store refused copies of any other version: this is the verified one.
            CopyOutcome::Copied { .. } if self.trust.copy_precondition => {
                return Ok(Promotion::Done);
            }
            CopyOutcome::Copied { etag: Some(copied) } => Some(copied),
            // Not every store reports the copy's ETag: ask for it.
            CopyOutcome::Copied { etag: None } => self
                .store
                .head(&file.object_key)
                .await?
                .and_then(|h| h.etag),
        };
        Ok(match copied {
            Some(c) if same_etag(&c, etag) => Promotion::Done,
            Some(_) => Promotion::CopyDiffers,
            // The copy is gone already (the file's delete): look again.
            None => Promotion::SourceChanged,
        })
    }

    /// One inspection of the object at `key` (the upload, or its copy), every read
    /// pinned to one version: HEAD (size, type, stored digest) and the first bytes go
    /// out together and must carry the same ETag; a full read for the digests asks for
    /// that ETag. When the digests are certain to need that full read, it also
    /// supplies the first bytes and no ranged read is made. For a multipart file,
    /// `parts` are the digests its parts were signed with.
    async fn inspect(
        &self,
        file: &FileRow,
        token: Uuid,
        key: &str,
        parts: Option<&[Checksum]>,
    ) -> Result<Inspection, CompletionError> {
        let declared = file.content_type;
        let streams = self.streams_anyway(file, parts);
        let (head, prefix) = if streams {
            (self.store.head(key).await, Ok(None))
        } else {
            tokio::join!(
                self.store.head(key),
                self.store.read_prefix(key, declared.sniff_len())
            )
        };
        let Some(head) = head? else {
            return Ok(Inspection::Missing(Vec::new()));
        };
        self.hold_for(file, token, head.size).await?;
        let etag = pinning_etag(head.etag.clone())?;
        let prefix = prefix?;
        if !streams {
            let Some(prefix) = &prefix else {
                return Ok(Inspection::Changed);
            };
            // An empty object has no range to read and so no ETag on that answer.
            if prefix.etag.as_deref().is_some_and(|e| !same_etag(e, &etag))
                || (prefix.etag.is_none() && head.size != 0)
            {
                return Ok(Inspection::Changed);
            }
        }
        if let Some(invalid) = check_metadata(file, &head) {
            return Ok(invalid);
        }
        let first = match self
            .check_digests(file, key, &head, &etag, parts, declared.sniff_len())
            .await?
        {
            Digested::Found(found) => return Ok(found),
            Digested::Settled(streamed) => match (prefix, streamed) {
                (Some(prefix), _) => prefix.bytes,
                (None, Some(streamed)) => streamed,
                (None, None) => return Err(CompletionError::NoFirstBytes),
            },
        };
        let whole = i64::try_from(first.len()).ok() == Some(head.size);
        if let Err(reason) = declared.sniff(&first, whole) {
            return Ok(Inspection::Invalid {
                check: RejectionCheck::Content,
                reason,
            });
        }
        Ok(Inspection::Valid {
            size: head.size,
            etag,
        })
    }

    /// A file of undeclared size was claimed for the base lease only: once a HEAD told
    /// its real size, the claim is held for the reads and the copy of that size.
    async fn hold_for(
        &self,
        file: &FileRow,
        token: Uuid,
        size: i64,
    ) -> Result<(), CompletionError> {
        if file.size_bytes.is_none() && size > 0 {
            // A claim lost meanwhile is the settlement's to find: it moves nothing.
            self.ledger
                .extend(file.id, token, self.lease.of(size))
                .await?;
        }
        Ok(())
    }

    /// Whether the digest checks will read the whole object whatever the store
    /// reports: a declared SHA-256 on a store whose own digest is not trusted, or a
    /// multipart file's parts on a store not seen to enforce part digests.
    fn streams_anyway(&self, file: &FileRow, parts: Option<&[Checksum]>) -> bool {
        (file.checksum_sha256.is_some() && !self.trust.stored_checksum)
            || (parts.is_some() && !self.trust.part_checksums)
    }

    /// The object's SHA-256 against `checksum_sha256` (when declared), and a multipart
    /// object's parts against the digests they were signed with. The store's own
    /// digest settles a check where the store was seen to enforce and keep digests;
    /// otherwise (and whenever its digest disagrees) filegate streams the very version
    /// inspected through SHA-256 itself, part by part, keeping its first `sniff_len`
    /// bytes.
    async fn check_digests(
        &self,
        file: &FileRow,
        key: &str,
        head: &ObjectInfo,
        etag: &str,
        parts: Option<&[Checksum]>,
        sniff_len: usize,
    ) -> Result<Digested, CompletionError> {
        let stored = head
            .checksum_sha256
            .as_deref()
            .filter(|_| self.trust.stored_checksum);
        let mut whole_settled = file.checksum_sha256.is_none();
        if let (Some(expected), Some(stored), None) = (&file.checksum_sha256, stored, parts)
            && let Ok(stored) = Checksum::parse(stored)
        {
            if stored != *expected {
                return Ok(Digested::Found(checksum_mismatch()));
            }
            whole_settled = true;
        }
        let parts_settled = match parts {
            None => true,
            Some(parts) => {
                self.trust.part_checksums
                    && stored == Some(filegate_storage::composite_checksum(parts).as_str())
            }
        };
        if whole_settled && parts_settled {
            return Ok(Digested::Settled(None));
        }
        let slice = file.multipart.as_ref().map(|m| m.part_size.unsigned_abs());
        let Some(digests) = self
            .store
            .digests(key, Some(etag), slice, sniff_len)
            .await?
        else {
            return Ok(Digested::Found(Inspection::Changed));
        };
        if i64::try_from(digests.len).ok() != Some(head.size) {
            return Ok(Digested::Found(Inspection::Changed));
        }
        if file
            .checksum_sha256
            .as_ref()
            .is_some_and(|expected| digests.whole != *expected)
        {
            return Ok(Digested::Found(checksum_mismatch()));
        }
        if let Some(parts) = parts {
            let first_bad = (1..)
                .zip(parts.iter().zip(digests.slices.iter()))
                .find(|(_, (signed, found))| signed != found)
                .map(|(n, _)| n);
            if let Some(n) = first_bad.or((parts.len() != digests.slices.len()).then_some(0)) {
                return Ok(Digested::Found(Inspection::Invalid {
                    check: RejectionCheck::Checksum,
                    reason: format!(
                        "part {n} of the object does not match the SHA-256 signed for it"
                    ),
                }));
            }
        }
        Ok(Digested::Settled(Some(digests.prefix)))
    }
}

/// The ETag a HEAD reported, when it can name one version: an empty one (`""`) would
/// match every other empty one, and pins nothing.
fn pinning_etag(etag: Option<String>) -> Result<String, CompletionError> {
    etag.filter(|e| !e.trim().trim_matches('"').is_empty())
        .ok_or(CompletionError::NoEtag)
}

/// ETags compare without their quotes (some stores drop them in copy results).
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

fn checksum_mismatch() -> Inspection {
    Inspection::Invalid {
        check: RejectionCheck::Checksum,
        reason: "the object's SHA-256 does not match checksum_sha256".to_owned(),
    }
}

/// Size, stored encoding and stored type against the declaration and the limits.
fn check_metadata(file: &FileRow, head: &ObjectInfo) -> Option<Inspection> {
    if let Some(size) = file.size_bytes
        && head.size != size
    {
        return Some(Inspection::Invalid {
            check: RejectionCheck::Size,
            reason: format!(
                "the object is {} bytes, but {size} were declared",
                head.size
            ),
        });
    }
    // The reservation is the limit that applied when the file was reserved (the
    // declared size, or the max file size then); lowering the max later does not
    // reject uploads already under way.
    let limit = file.reserved_bytes;
    if head.size > limit {
        return Some(Inspection::Invalid {
            check: RejectionCheck::Size,
            reason: format!(
                "the object is {} bytes, more than the {limit} bytes allowed",
                head.size
            ),
        });
    }
    if let Some(encoding) = head
        .content_encoding
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
    {
        return Some(Inspection::Invalid {
            check: RejectionCheck::Encoding,
            reason: format!(
                "the object was stored with Content-Encoding {encoding:?}: a download would be decoded into other bytes than those verified"
            ),
        });
    }
    let declared = file.content_type;
    let stored_type = head.content_type.as_deref().unwrap_or("");
    if filegate_domain::ContentType::parse(stored_type).ok() != Some(declared) {
        return Some(Inspection::Invalid {
            check: RejectionCheck::ContentType,
            reason: format!(
                "the object's content type is {stored_type:?}, but {} was declared",
                declared.mime()
            ),
        });
    }
    None
}
