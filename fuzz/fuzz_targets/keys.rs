//! Object-key parsing on arbitrary keys: never a panic, and a parsed key is exactly
//! the key filegate would make for its file.
#![no_main]

use filegate_domain::keys::{self, KeyKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = String::from_utf8_lossy(data);
    if let Some(p) = keys::parse(&key) {
        let object = keys::object_key(p.workspace, p.file);
        let made = match p.kind {
            KeyKind::Upload => keys::upload_key(&object),
            _ => object,
        };
        assert_eq!(made, key);
    }
});
