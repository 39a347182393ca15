//! Large files: how an upload is sent (one PUT or a multipart upload) and, for
//! multipart, how the file is cut into parts.
//!
//! S3's limits shape the rules: a single PUT carries at most 5 GiB, an object at most
//! 5 TiB, a multipart upload at most 10,000 parts, each of 5 MiB to 5 GiB except the
//! last, which may be smaller.

use crate::{Checksum, RuleCode, RuleViolation};
use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

/// The most one PUT may carry.
pub const MAX_PUT_BYTES: i64 = 5 << 30;
/// The largest object S3 stores.
pub const MAX_OBJECT_BYTES: i64 = 5 << 40;
/// The smallest part but the last.
pub const MIN_PART_BYTES: i64 = 5 << 20;
/// The largest part.
pub const MAX_PART_BYTES: i64 = 5 << 30;
/// The most parts of one upload.
pub const MAX_PARTS: i64 = 10_000;

/// How a file's bytes are sent: one presigned PUT, or a multipart upload. Spelled
/// `PUT` and `MULTIPART` in requests and answers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    EnumString,
    IntoStaticStr,
    Display,
    EnumIter,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum UploadMethod {
    Put,
    Multipart,
}

/// How a client asked for its bytes to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UploadRequest {
    /// The server decides: multipart above its threshold, one PUT otherwise.
    #[default]
    Auto,
    /// One presigned PUT (at most [`MAX_PUT_BYTES`]).
    Put,
    /// A multipart upload, with the part size the client chose (if it did) and the
    /// parts' digests it already knows (in part order), so the reservation can sign
    /// the first part URLs at once.
    Multipart {
        part_size: Option<i64>,
        part_checksums: Vec<Checksum>,
    },
}

/// The server's multipart settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartPolicy {
    /// Declared sizes above this go multipart when the client did not choose.
    pub threshold: i64,
    /// The part size when the client did not choose one (grown where the file would
    /// need more than [`MAX_PARTS`]).
    pub part_size: i64,
}

/// How a multipart file is cut: every part `part_size` bytes but the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub size: i64,
    pub part_size: i64,
    pub part_count: i32,
}

impl PartPlan {
    /// The plan for `size` bytes in parts of `part_size` (at least one part, also for
    /// an empty file). `None` when that would take more than [`MAX_PARTS`] parts or a
    /// part size outside 5 MiB–5 GiB.
    #[must_use]
    pub fn new(size: i64, part_size: i64) -> Option<Self> {
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&part_size) || size < 0 {
            return None;
        }
        let count = ((size + part_size - 1) / part_size).max(1);
        (count <= MAX_PARTS).then(|| Self {
            size,
            part_size,
            part_count: i32::try_from(count).unwrap_or(i32::MAX),
        })
    }

    /// The plan with the server's part size, grown (in whole MiB) until the file fits
    /// in [`MAX_PARTS`] parts.
    #[must_use]
    pub fn with_preferred(size: i64, preferred: i64) -> Option<Self> {
        const MIB: i64 = 1 << 20;
        let needed = (size + MAX_PARTS - 1) / MAX_PARTS;
        let grown = preferred.max((needed + MIB - 1) / MIB * MIB);
        Self::new(size, grown.clamp(MIN_PART_BYTES, MAX_PART_BYTES))
    }

    /// The length of part `number` (1-based), `None` outside the plan.
    #[must_use]
    pub fn part_length(&self, number: i32) -> Option<i64> {
        if number < 1 || number > self.part_count {
            return None;
        }
        let start = i64::from(number - 1) * self.part_size;
        Some((self.size - start).min(self.part_size))
    }
}

impl UploadRequest {
    /// Checks a request's upload fields against the declared size.
    ///
    /// # Errors
    /// `invalid_metadata` for an unknown method, a multipart upload without a size, a
    /// part size outside the limits or digests that do not match the part count;
    /// `file_too_large` for a PUT over 5 GiB.
    pub fn parse(
        method: Option<&str>,
        part_size: Option<u64>,
        part_checksums: Option<&[String]>,
        size: Option<i64>,
    ) -> Result<Self, RuleViolation> {
        let asks_multipart = part_size.is_some() || part_checksums.is_some();
        let method = method
            .map(|m| {
                m.parse::<UploadMethod>().map_err(|_| {
                    RuleViolation::metadata(format!(
                        "upload_method must be {} or {} (got {m:?})",
                        UploadMethod::Put,
                        UploadMethod::Multipart
                    ))
                })
            })
            .transpose()?;
        match (method, asks_multipart) {
            (None, false) => return Ok(Self::Auto),
            (Some(UploadMethod::Put), false) => {
                if size.is_some_and(|s| s > MAX_PUT_BYTES) {
                    return Err(RuleViolation {
                        code: RuleCode::FileTooLarge,
                        message: format!(
                            "one PUT carries at most {MAX_PUT_BYTES} bytes; upload larger files with upload_method MULTIPART"
                        ),
                    });
                }
                return Ok(Self::Put);
            }
            (Some(UploadMethod::Put), true) => {
                return Err(RuleViolation::metadata(
                    "part_size_bytes and part_checksums_sha256 belong to MULTIPART uploads",
                ));
            }
            (None | Some(UploadMethod::Multipart), _) => {}
        }
        let Some(size) = size else {
            return Err(RuleViolation::metadata(
                "size_bytes is required for a MULTIPART upload",
            ));
        };
        // Below S3's smallest part one PUT always carries the file; a multipart upload
        // would only cost the store an upload to keep and filegate a listing to watch.
        if size < MIN_PART_BYTES {
            return Err(RuleViolation::metadata(format!(
                "a MULTIPART upload needs at least {MIN_PART_BYTES} bytes (the smallest part); upload a smaller file with one PUT"
            )));
        }
        let part_size = part_size
            .map(|p| {
                let p = i64::try_from(p).unwrap_or(i64::MAX);
                PartPlan::new(size, p).map(|_| p).ok_or_else(|| {
                    RuleViolation::metadata(format!(
                        "part_size_bytes must be {MIN_PART_BYTES} to {MAX_PART_BYTES} and cut the file into at most {MAX_PARTS} parts"
                    ))
                })
            })
            .transpose()?;
        let part_checksums = match part_checksums {
            None => Vec::new(),
            Some(sums) => {
                let Some(plan) = part_size.and_then(|p| PartPlan::new(size, p)) else {
                    return Err(RuleViolation::metadata(
                        "part_checksums_sha256 needs part_size_bytes, which fixes the parts",
                    ));
                };
                if sums.len() != usize::try_from(plan.part_count).unwrap_or(0) {
                    return Err(RuleViolation::metadata(format!(
                        "part_checksums_sha256 must list one digest per part ({} parts, got {})",
                        plan.part_count,
                        sums.len()
                    )));
                }
                sums.iter()
                    .map(|s| Checksum::parse(s))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(Self::Multipart {
            part_size,
            part_checksums,
        })
    }

    /// The parts of a file of `size` bytes sent this way, or `None` for one PUT.
    #[must_use]
    pub fn plan(&self, size: Option<i64>, policy: &MultipartPolicy) -> Option<PartPlan> {
        match (self, size) {
            (Self::Put, _) | (Self::Auto, None) => None,
            (Self::Auto, Some(size)) if size <= policy.threshold && size <= MAX_PUT_BYTES => None,
            (Self::Auto, Some(size)) => PartPlan::with_preferred(size, policy.part_size),
            (Self::Multipart { part_size, .. }, Some(size)) => match part_size {
                Some(p) => PartPlan::new(size, *p),
                None => PartPlan::with_preferred(size, policy.part_size),
            },
            // Parsing refuses a multipart upload without a size.
            (Self::Multipart { .. }, None) => None,
        }
    }

    /// The digests the client sent with the reservation (empty when none).
    #[must_use]
    pub fn part_checksums(&self) -> &[Checksum] {
        match self {
            Self::Multipart { part_checksums, .. } => part_checksums,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1 << 20;
    const POLICY: MultipartPolicy = MultipartPolicy {
        threshold: 64 * MIB,
        part_size: 8 * MIB,
    };

    #[test]
    fn parts_are_the_part_size_but_the_last_which_holds_the_rest() {
        let plan = PartPlan::new(200 * MIB + 1, 8 * MIB);
        assert_eq!(plan.map(|p| p.part_count), Some(26));
        assert_eq!(plan.and_then(|p| p.part_length(1)), Some(8 * MIB));
        assert_eq!(plan.and_then(|p| p.part_length(26)), Some(1));
        assert_eq!(plan.and_then(|p| p.part_length(27)), None);
        assert_eq!(plan.and_then(|p| p.part_length(0)), None);
        // An empty file is one empty part.
        let empty = PartPlan::new(0, 8 * MIB);
        assert_eq!(empty.map(|p| p.part_count), Some(1));
        assert_eq!(empty.and_then(|p| p.part_length(1)), Some(0));
    }

    #[test]
    fn the_servers_part_size_grows_to_fit_ten_thousand_parts() {
        let plan = PartPlan::with_preferred(MAX_OBJECT_BYTES, 8 * MIB);
        assert!(plan.is_some_and(|p| p.part_count <= 10_000 && p.part_size % MIB == 0));
        assert_eq!(
            PartPlan::with_preferred(100 * MIB, 8 * MIB).map(|p| p.part_size),
            Some(8 * MIB)
        );
        // A client's own part size is not grown: it is refused.
        assert_eq!(PartPlan::new(MAX_OBJECT_BYTES, 8 * MIB), None);
        assert_eq!(PartPlan::new(100, MIN_PART_BYTES - 1), None);
    }

    #[test]
    fn the_threshold_the_request_and_the_put_limit_pick_the_method() {
        assert_eq!(UploadRequest::Auto.plan(Some(64 * MIB), &POLICY), None);
        assert!(
            UploadRequest::Auto
                .plan(Some(64 * MIB + 1), &POLICY)
                .is_some()
        );
        assert_eq!(UploadRequest::Auto.plan(None, &POLICY), None);
        assert_eq!(UploadRequest::Put.plan(Some(MAX_PUT_BYTES), &POLICY), None);
        let asked = UploadRequest::parse(Some("MULTIPART"), None, None, Some(6 * MIB));
        assert_eq!(
            asked.ok().and_then(|r| r.plan(Some(6 * MIB), &POLICY)),
            PartPlan::new(6 * MIB, 8 * MIB)
        );
        let huge = MultipartPolicy {
            threshold: i64::MAX,
            ..POLICY
        };
        assert!(
            UploadRequest::Auto
                .plan(Some(MAX_PUT_BYTES + 1), &huge)
                .is_some()
        );
    }

    #[test]
    fn upload_fields_that_contradict_each_other_are_refused() {
        let code = |r: Result<UploadRequest, RuleViolation>| r.err().map(|e| e.code);
        let sum = Checksum::from_digest([1; 32]).to_base64();
        assert_eq!(
            code(UploadRequest::parse(Some("MULTIPART"), None, None, None)),
            Some(RuleCode::InvalidMetadata)
        );
        // Below the smallest part, one PUT carries the file: no multipart upload.
        for small in [0, 1, MIN_PART_BYTES - 1] {
            assert_eq!(
                code(UploadRequest::parse(
                    Some("MULTIPART"),
                    None,
                    None,
                    Some(small)
                )),
                Some(RuleCode::InvalidMetadata),
                "{small}"
            );
        }
        assert!(UploadRequest::parse(Some("MULTIPART"), None, None, Some(MIN_PART_BYTES)).is_ok());
        assert_eq!(
            code(UploadRequest::parse(Some("POST"), None, None, Some(1))),
            Some(RuleCode::InvalidMetadata)
        );
        assert_eq!(
            code(UploadRequest::parse(
                Some("PUT"),
                None,
                None,
                Some(MAX_PUT_BYTES + 1)
            )),
            Some(RuleCode::FileTooLarge)
        );
        assert_eq!(
            code(UploadRequest::parse(
                Some("PUT"),
                Some(8 << 20),
                None,
                Some(1)
            )),
            Some(RuleCode::InvalidMetadata)
        );
        assert_eq!(
            code(UploadRequest::parse(None, Some(1 << 20), None, Some(1))),
            Some(RuleCode::InvalidMetadata)
        );
        // Digests need the part size that fixes the parts, one per part.
        let one = std::slice::from_ref(&sum);
        assert_eq!(
            code(UploadRequest::parse(None, None, Some(one), Some(1))),
            Some(RuleCode::InvalidMetadata)
        );
        assert_eq!(
            code(UploadRequest::parse(
                None,
                Some(8 << 20),
                Some(one),
                Some(9 << 20)
            )),
            Some(RuleCode::InvalidMetadata)
        );
        let ok = UploadRequest::parse(None, Some(8 << 20), Some(one), Some(8 << 20));
        assert_eq!(ok.ok().map(|r| r.part_checksums().len()), Some(1));
        let bad = ["not base64".to_owned()];
        assert_eq!(
            code(UploadRequest::parse(
                None,
                Some(8 << 20),
                Some(&bad),
                Some(1)
            )),
            Some(RuleCode::InvalidMetadata)
        );
    }
}
