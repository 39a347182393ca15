//! What filegate takes the store's word for, and what it does where the store falls
//! short: the policy of each capability the probe (`filegate_storage::probe`) checks,
//! the trust completion builds on ([`StoreTrust`]), and the start-up probe of `serve`.

use filegate_storage::Storage;
use filegate_storage::probe::{Capability, ProbeOptions, Report, Support};
use serde_json::{Value, json};

use crate::settings::StorageArgs;

/// Where probe objects go: outside every workspace's keys, so reconciliation counts
/// one that outlived its probe as foreign and never as a file's.
pub const PROBE_PREFIX: &str = "filegate-probe/";

/// Whether filegate needs a capability for its guarantees, and what it does about it.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `filegate doctor` exits 1 when it is missing.
    pub required: bool,
    /// What filegate does when it is missing (or why it needs it).
    pub without: &'static str,
}

/// The policy for `capability`.
#[must_use]
pub fn policy(capability: Capability) -> Policy {
    let (required, without) = match capability {
        Capability::Reachable => (true, "needed: nothing works without the bucket"),
        Capability::ClockSkew => (
            true,
            "needed: URLs are signed with this host's clock; the store refuses them 15 min off",
        ),
        Capability::PresignedPut => (true, "needed: clients upload through presigned PUTs"),
        Capability::SignatureChecked => (
            true,
            "needed: without it anyone writes any key, served ones too; serve refuses such a store",
        ),
        Capability::SignedContentType => (
            false,
            "completion compares the stored type with the declared one and rejects a mismatch",
        ),
        Capability::SignedContentLength => (
            true,
            "needed for quotas: without it a client stores more than it reserved until completion deletes it",
        ),
        Capability::SignedChecksum => (
            false,
            "completion never takes the store's digest: it reads the object and hashes it",
        ),
        Capability::ChecksumKept => (
            false,
            "completion reads the whole object and hashes it (one more read per declared digest)",
        ),
        Capability::CopyIfMatch => (
            false,
            "completion compares the copy's ETag with the verified one; --s3-trust-copy-precondition is ignored",
        ),
        Capability::ConditionalPut => (
            false,
            "not relied on: each upload has its own key, and ready bytes a key no URL can write",
        ),
        Capability::Cors => (
            false,
            "browsers on the configured origins cannot upload; apply the rules with --s3-apply-cors",
        ),
        Capability::GetOverrides => (
            true,
            "needed: downloads force `attachment` and the stored type, or a stored page could run in the bucket's origin",
        ),
        Capability::RefusedPutKeepsObject => (
            false,
            "ETags do not pin bytes: completion copies the upload first and inspects the copy, which no client can write",
        ),
        Capability::PartChecksum => (
            false,
            "multipart completion hashes every part of the assembled object itself",
        ),
        Capability::EtagNamesVersions => (
            false,
            "ETags pin nothing: completion copies the upload first and inspects the copy, which no client can write",
        ),
    };
    Policy { required, without }
}

/// The capabilities filegate needs that the probe did not see (missing or untold).
#[must_use]
pub fn missing_required(report: &Report) -> Vec<Capability> {
    report
        .findings
        .iter()
        .filter(|f| policy(f.capability).required && f.support != Support::Yes)
        .map(|f| f.capability)
        .collect()
}

/// A store that checks no signature, or enforces none of the signed type, length and
/// digest: `serve` refuses it without the explicit override. Only what the probe saw
/// counts; an untold capability does not refuse a start.
#[must_use]
pub fn enforces_nothing(report: &Report) -> bool {
    let no = |c| report.support(c) == Support::No;
    no(Capability::SignatureChecked)
        || (no(Capability::SignedContentType)
            && no(Capability::SignedContentLength)
            && no(Capability::SignedChecksum))
}

/// What completion may take the store's word for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreTrust {
    /// The SHA-256 `HeadObject` reports is the stored bytes' own: the store refused a
    /// body that did not match the signed digest, and keeps the digest.
    pub stored_checksum: bool,
    /// A conditional copy that succeeded copied the version its ETag named (only when
    /// the operator asked for it and the store was seen to honour the condition).
    pub copy_precondition: bool,
    /// An ETag names one version's bytes, so reads pinned to it read those bytes. Not
    /// on a store whose refused PUTs replace the bytes under the old ETag: completion
    /// then copies first and inspects the copy.
    pub etag_pins_bytes: bool,
    /// The composite digest `HeadObject` reports for an assembled multipart object
    /// stands for its parts' bytes: the store refused parts of other bytes than their
    /// signed digests and keeps the digests (and its digests are trusted at all).
    pub part_checksums: bool,
}

impl StoreTrust {
    /// The trust a probe's report earns (`None`, no probe: nothing), with whether the
    /// operator asked to trust copy preconditions.
    #[must_use]
    pub fn from_probe(report: Option<&Report>, trust_copy_precondition: bool) -> Self {
        let Some(report) = report else {
            return Self::default();
        };
        // Skipped: the store refuses no body for its digest, so none can replace another.
        let refusals_keep_objects = matches!(
            report.support(Capability::RefusedPutKeepsObject),
            Support::Yes | Support::Skipped
        );
        Self {
            stored_checksum: report.has(Capability::SignedChecksum)
                && report.has(Capability::ChecksumKept)
                && refusals_keep_objects,
            copy_precondition: trust_copy_precondition
                && report.has(Capability::CopyIfMatch)
                && refusals_keep_objects
                && report.has(Capability::EtagNamesVersions),
            etag_pins_bytes: refusals_keep_objects && report.has(Capability::EtagNamesVersions),
            part_checksums: report.has(Capability::SignedChecksum)
                && report.has(Capability::ChecksumKept)
                && refusals_keep_objects
                && report.has(Capability::PartChecksum),
        }
    }
}

/// `{name: result}` for `/readyz` and logs.
#[must_use]
pub fn summary(report: &Report) -> Value {
    report
        .findings
        .iter()
        .map(|f| (f.capability.name().to_owned(), json!(f.support.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Probes with `storage` for `cors_origins`.
pub async fn probe(storage: &Storage, cors_origins: &[String]) -> Report {
    storage
        .probe(&ProbeOptions {
            cors_origins: cors_origins.to_vec(),
            prefix: PROBE_PREFIX.to_owned(),
        })
        .await
}

/// The store checks no signature, or enforces none of the signed headers.
#[derive(Debug, thiserror::Error)]
#[error(
    "the object store enforces no signed header (run `filegate doctor`): anyone could write any \
     bytes to the bucket. Use a store that does, or set FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE \
     for a throwaway development store"
)]
pub struct UnenforcingStore;

/// The start-up probe: runs it (unless `--s3-skip-probe`), records it, refuses a store
/// that enforces nothing (unless overridden, loudly), and says what completion may
/// trust.
///
/// # Errors
/// [`UnenforcingStore`] when the store enforces no signed header and the override is off.
pub async fn at_start(
    storage: &Storage,
    options: &StorageArgs,
    cors_origins: &[String],
) -> Result<(Option<Report>, StoreTrust), UnenforcingStore> {
    if options.unsafe_allow_unenforcing_store {
        tracing::warn!(
            "FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE is set: filegate starts even on a store \
             that enforces no signed header, where ready no longer means verified bytes"
        );
    }
    let report = if options.s3_skip_probe {
        tracing::warn!(
            "the store probe is off (FILEGATE_S3_SKIP_PROBE): completion hashes every object \
             itself and compares every copy's ETag"
        );
        None
    } else {
        let report = probe(storage, cors_origins).await;
        record(&report);
        Some(report)
    };
    if let Some(report) = &report
        && enforces_nothing(report)
    {
        if !options.unsafe_allow_unenforcing_store {
            return Err(UnenforcingStore);
        }
        tracing::warn!(
            "UNSAFE: the object store enforces no signed header; starting anyway because \
             FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE is set"
        );
    }
    let trust = StoreTrust::from_probe(report.as_ref(), options.s3_trust_copy_precondition);
    if options.s3_trust_copy_precondition && !trust.copy_precondition {
        tracing::warn!(
            "FILEGATE_S3_TRUST_COPY_PRECONDITION is ignored: the store was not seen to honour \
             x-amz-copy-source-if-match"
        );
    }
    Ok((report, trust))
}

/// Records a start-up probe: each capability as a gauge, and a log line per finding
/// (a warning where filegate takes a slower or weaker path).
pub fn record(report: &Report) {
    for f in &report.findings {
        crate::metrics::store_capability(f.capability, f.support);
        let policy = policy(f.capability);
        match f.support {
            Support::Yes | Support::Skipped => tracing::info!(
                capability = f.capability.name(),
                result = f.support.as_str(),
                seen = f.detail,
                "store capability"
            ),
            Support::No | Support::Unknown => tracing::warn!(
                capability = f.capability.name(),
                result = f.support.as_str(),
                seen = f.detail,
                filegate = policy.without,
                "store capability missing"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use filegate_storage::probe::Finding;
    use strum::IntoEnumIterator as _;

    use super::*;

    fn report(no: &[Capability], unknown: &[Capability]) -> Report {
        Report {
            findings: Capability::iter()
                .map(|capability| Finding {
                    capability,
                    support: if no.contains(&capability) {
                        Support::No
                    } else if unknown.contains(&capability) {
                        Support::Unknown
                    } else {
                        Support::Yes
                    },
                    detail: String::new(),
                })
                .collect(),
            skew: None,
        }
    }

    #[test]
    fn a_store_that_checks_no_signature_enforces_nothing() {
        assert!(enforces_nothing(&report(
            &[Capability::SignatureChecked],
            &[]
        )));
        assert!(!enforces_nothing(&report(
            &[],
            &[Capability::SignatureChecked]
        )));
    }

    #[test]
    fn a_store_enforcing_one_signed_header_is_not_refused() {
        let ceph = report(&[Capability::SignedChecksum, Capability::CopyIfMatch], &[]);
        assert!(!enforces_nothing(&ceph));
        assert!(missing_required(&ceph).is_empty(), "Ceph RGW 16 is usable");
        let none = report(
            &[
                Capability::SignedContentType,
                Capability::SignedContentLength,
                Capability::SignedChecksum,
            ],
            &[],
        );
        assert!(enforces_nothing(&none));
    }

    #[test]
    fn untold_needed_capabilities_fail_the_doctor() {
        let r = report(&[], &[Capability::GetOverrides, Capability::ConditionalPut]);
        assert_eq!(missing_required(&r), vec![Capability::GetOverrides]);
    }

    #[test]
    fn stored_digests_are_trusted_only_when_enforced_and_kept() {
        assert_eq!(
            StoreTrust::from_probe(Some(&report(&[], &[])), false),
            StoreTrust {
                stored_checksum: true,
                copy_precondition: false,
                etag_pins_bytes: true,
                part_checksums: true,
            }
        );
        for missing in [
            Capability::SignedChecksum,
            Capability::ChecksumKept,
            Capability::RefusedPutKeepsObject,
        ] {
            let trust = StoreTrust::from_probe(Some(&report(&[missing], &[])), false);
            assert!(!trust.stored_checksum, "{missing:?}");
            assert!(!trust.part_checksums, "{missing:?}");
        }
        // Part digests need their own refusal on top.
        let ceph_like = report(&[Capability::PartChecksum], &[]);
        let trust = StoreTrust::from_probe(Some(&ceph_like), false);
        assert!(trust.stored_checksum && !trust.part_checksums);
        assert_eq!(StoreTrust::from_probe(None, false), StoreTrust::default());
    }

    #[test]
    fn the_copy_precondition_is_trusted_only_when_asked_and_honoured() {
        assert!(StoreTrust::from_probe(Some(&report(&[], &[])), true).copy_precondition);
        assert!(!StoreTrust::from_probe(Some(&report(&[], &[])), false).copy_precondition);
        let ceph = report(&[Capability::CopyIfMatch], &[]);
        assert!(!StoreTrust::from_probe(Some(&ceph), true).copy_precondition);
    }

    #[test]
    fn a_store_whose_refused_puts_replace_bytes_gets_its_copies_inspected() {
        let s3s_fs = report(&[Capability::RefusedPutKeepsObject], &[]);
        let trust = StoreTrust::from_probe(Some(&s3s_fs), true);
        assert!(!trust.etag_pins_bytes && !trust.stored_checksum && !trust.copy_precondition);
        let unknown = report(&[], &[Capability::RefusedPutKeepsObject]);
        assert!(!StoreTrust::from_probe(Some(&unknown), false).etag_pins_bytes);
        assert!(!StoreTrust::from_probe(None, false).etag_pins_bytes);
        let mut ceph = report(&[Capability::SignedChecksum], &[]);
        ceph.findings
            .iter_mut()
            .filter(|f| f.capability == Capability::RefusedPutKeepsObject)
            .for_each(|f| f.support = Support::Skipped);
        assert!(StoreTrust::from_probe(Some(&ceph), false).etag_pins_bytes);
    }

    #[test]
    fn a_store_whose_etags_name_no_versions_gets_its_copies_inspected() {
        for (no, unknown) in [
            (&[Capability::EtagNamesVersions][..], &[][..]),
            (&[], &[Capability::EtagNamesVersions]),
        ] {
            let trust = StoreTrust::from_probe(Some(&report(no, unknown)), true);
            assert!(
                !trust.etag_pins_bytes && !trust.copy_precondition,
                "{no:?} {unknown:?}"
            );
            assert!(
                trust.stored_checksum,
                "a digest the store enforces needs no ETag"
            );
        }
        let constant = report(&[Capability::EtagNamesVersions], &[]);
        assert!(
            missing_required(&constant).is_empty(),
            "usable, on the copy-first path"
        );
    }
}
