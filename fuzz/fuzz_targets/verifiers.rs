//! Every content verifier on arbitrary first bytes, cut or whole: never a panic.
#![no_main]

use filegate_domain::ContentType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ty in ContentType::ALL {
        let prefix = &data[..data.len().min(ty.sniff_len())];
        let _ = ty.sniff(prefix, true);
        let _ = ty.sniff(prefix, false);
    }
});
