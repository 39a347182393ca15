//! `FileSpec::parse` and the name rules on arbitrary entries: never a panic, and
//! whatever parses holds the rules (NFC, no control or format characters, bounds).
#![no_main]

use filegate_domain::{ContentType, FileInput, FileSpec, Limits, check_name_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Fields separated by \x1f, in the order of FileInput.
    let mut f = text.split('\u{1f}');
    let mut next = || f.next().filter(|s| !s.is_empty());
    let (local, name, path, labels, url, ty, size, sum) = (
        next(), next(), next(), next(), next(), next(), next(), next(),
    );
    let labels: Vec<String> = labels
        .map(|l| l.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let limits = Limits {
        allowed_types: ContentType::ALL.to_vec(),
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
    };
    if let Ok(spec) = FileSpec::parse(input, &limits) {
        let n = spec.name.as_str();
        assert!(!n.is_empty() && n.len() <= 255 && !n.contains('/'));
        assert!(n.chars().all(|c| !c.is_control()));
        assert!(spec.path.as_str().len() <= 1024);
        assert!(check_name_for(&spec.name, spec.content_type).is_ok());
        assert!(limits.allows(spec.content_type));
    }
    let _ = ContentType::parse(&text);
    let _ = ContentType::from_file_name(&text);
});
