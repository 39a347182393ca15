//! An error with its causes, for logs and command-line messages.

/// The error and its causes, one after another (`a: b: c`).
#[must_use]
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
