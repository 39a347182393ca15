//! The library listing's query string and page cursors on arbitrary input: never a
//! panic; whatever parses holds the listing's rules; a cursor that decodes is exactly
//! the cursor filegate would make for its position.
#![no_main]

use filegate_domain::listing::{
    MAX_LABEL_FILTERS, MAX_NAME_FILTER, MAX_PAGE, MAX_PATH_FILTER, decode_cursor, encode_cursor,
    parse_list_query,
};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::is_nfc;
use uuid::Uuid;

fn holds_filter_rules(text: &str, max: usize) {
    assert!(text.len() <= max);
    assert!(is_nfc(text));
    assert!(!text.chars().any(char::is_control));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(p) = parse_list_query(&text) {
            assert!(p.labels.len() <= MAX_LABEL_FILTERS);
            assert!((1..=MAX_PAGE).contains(&p.page_size()));
            if let Some(name) = &p.name {
                holds_filter_rules(name, MAX_NAME_FILTER);
            }
            if let Some(path) = &p.path {
                holds_filter_rules(path, MAX_PATH_FILTER);
            }
            assert!(p.cursor.as_deref() != Some(""));
        }
    } else {
        // The workspace the cursor must name, then the cursor.
        let Some((workspace, cursor)) = rest.split_at_checked(16) else {
            return;
        };
        let workspace = Uuid::from_slice(workspace).unwrap_or_default();
        let text = String::from_utf8_lossy(cursor);
        if let Ok(pos) = decode_cursor(workspace, &text) {
            assert_eq!(encode_cursor(workspace, pos), text);
            assert!(decode_cursor(Uuid::from_u128(!workspace.as_u128()), &text).is_err());
        }
    }
});
