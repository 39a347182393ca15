//! Verifying filegate's webhook deliveries on the receiving side (Standard Webhooks:
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! ```no_run
//! # fn handle(headers: &reqwest::header::HeaderMap, body: &[u8]) {
//! let secret = "whsec_…"; // shown once, when the endpoint was created
//! match filegate_client::webhooks::verify(secret, headers, body) {
//!     Ok(event) => println!("{} {}", event.event_type, event.data.file.file_uuid),
//!     Err(e) => eprintln!("refused: {e}"), // answer 400, not 2xx
//! }
//! # }
//! ```

use std::time::{Duration, SystemTime};

use filegate_api::WebhookEvent;
pub use filegate_api::webhooks::{SignatureError, sign};
use reqwest::header::HeaderMap;

/// How far a delivery's timestamp may be from the receiver's clock (as the Standard
/// Webhooks libraries allow).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A `webhook-*` header is missing or not text.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// The signature or timestamp did not hold.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Signed, but not an event this client reads.
    #[error("the body is not a webhook event: {0}")]
    Body(#[from] serde_json::Error),
}

/// Checks a delivery's headers and body against the endpoint's `secret` (within
/// [`TOLERANCE`] of now) and reads the event.
///
/// # Errors
/// The [`VerifyError`] that refused it.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent, VerifyError> {
    verify_at(secret, headers, body, SystemTime::now(), TOLERANCE)
}

/// [`verify`] at `now` with `tolerance`.
///
/// # Errors
/// The [`VerifyError`] that refused it.
pub fn verify_at(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<WebhookEvent, VerifyError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingHeader(name))
    };
    filegate_api::webhooks::verify(
        secret,
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
        body,
        now,
        tolerance,
    )?;
    Ok(serde_json::from_slice(body)?)
}
