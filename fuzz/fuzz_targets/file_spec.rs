//! `FileSpec::parse` and the name rules on arbitrary entries: never a panic, and
//! whatever parses holds the rules (NFC, no control or format characters, bounds); a
//! multipart plan cuts exactly the declared size into at most 10,000 parts.
#![no_main]

use filegate_domain::multipart::{MAX_OBJECT_BYTES, MAX_PARTS, MultipartPolicy};
use filegate_domain::{ContentType, FileInput, FileSpec, Limits, check_name_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Fields separated by \x1f, in the order of FileInput.
    let mut f = text.split('\u{1f}');
    let mut next = || f.next().filter(|s| !s.is_empty());
    let (local, name, path, labels, url, ty, size, sum) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let (method, part_size, part_sums) = (next(), next(), next());
    let labels: Vec<String> = labels
        .map(|l| l.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let part_sums: Option<Vec<String>> =
        part_sums.map(|l| l.split(',').map(str::to_owned).collect());
    let limits = Limits {
        allowed_types: ContentType::ALL.to_vec(),
        max_file_bytes: MAX_OBJECT_BYTES,
        ..Limits::default()
    };
    let input = FileInput {
        local_file_path: local,
        name,
        path,
        labels: Some(&labels),
        public_url: url,
        content_type: ty,
        size_bytes: size.and_then(|s| s.parse().ok()),
        checksum_sha256: sum,
        upload_method: method,
        part_size_bytes: part_size.and_then(|s| s.parse().ok()),
        part_checksums_sha256: part_sums.as_deref(),
    };
    if let Ok(spec) = FileSpec::parse(input, &limits) {
        let n = spec.name.as_str();
        assert!(!n.is_empty() && n.len() <= 255 && !n.contains('/'));
        assert!(n.chars().all(|c| !c.is_control()));
        assert!(spec.path.as_str().len() <= 1024);
        assert!(check_name_for(&spec.name, spec.content_type).is_ok());
        assert!(limits.allows(spec.content_type));
        let policy = MultipartPolicy {
            threshold: 64 << 20,
            part_size: 8 << 20,
        };
        if let Some(plan) = spec.upload.plan(spec.size_bytes, &policy) {
            assert_eq!(Some(plan.size), spec.size_bytes);
            assert!(plan.part_count >= 1 && i64::from(plan.part_count) <= MAX_PARTS);
            let total: i64 = (1..=plan.part_count)
                .filter_map(|n| plan.part_length(n))
                .sum();
            assert_eq!(total, plan.size);
        }
    }
    let _ = ContentType::parse(&text);
    let _ = ContentType::from_file_name(&text);
});
