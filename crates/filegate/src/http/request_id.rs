//! Request ids: every request gets one (an incoming `X-Request-Id` is echoed when it is
//! a sane token), and code running for the request reads it with [`current`], from a
//! task-local the outermost middleware ([`crate::http::access_log`]) sets.

use uuid::Uuid;

/// `X-Request-Id`.
pub static X_REQUEST_ID: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static("x-request-id");

tokio::task_local! {
    pub(crate) static REQUEST_ID: String;
}

/// The current request's id; a fresh one outside any request.
#[must_use]
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Uuid::new_v4().to_string())
}

/// The id a request carries when it is a sane token (1–128 characters of
/// `[A-Za-z0-9._:-]`; anything else could smuggle text into logs), else a new one.
#[must_use]
pub fn of(incoming: Option<&str>) -> String {
    incoming
        .filter(|v| sane(v))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_sane_ids_are_echoed() {
        assert!(sane("5b2f-abc_1.2:3"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(129)));
        assert!(!sane("evil\nlog line"));
        assert!(!sane("<script>"));
    }
}
