//! Webhooks: `/v2/workspaces/{workspace_uuid}/webhooks…` wire types, the event payload,
//! and the [Standard Webhooks](https://www.standardwebhooks.com/) signature both sides
//! compute ([`sign`] for filegate, [`verify`] for receivers).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::File;

/// What happened to a file, as a webhook names it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// Its bytes were verified: the file is `ready`.
    #[serde(rename = "file.ready")]
    #[strum(serialize = "file.ready")]
    FileReady,
    /// Its upload failed a check: the file is `rejected` (`rejection_reason` says why).
    #[serde(rename = "file.rejected")]
    #[strum(serialize = "file.rejected")]
    FileRejected,
    /// Nothing was uploaded in time: the file is `expired`.
    #[serde(rename = "file.expired")]
    #[strum(serialize = "file.expired")]
    FileExpired,
    /// A pending or ready file was deleted.
    #[serde(rename = "file.deleted")]
    #[strum(serialize = "file.deleted")]
    FileDeleted,
}

impl EventType {
    /// The name on the wire (`file.ready`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every event type.
    pub fn all() -> impl Iterator<Item = Self> {
        <Self as strum::IntoEnumIterator>::iter()
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v2/workspaces/{workspace_uuid}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: `http` or `https`, no credentials, a public
    /// address (or a host the operator allowed), at most 2048 bytes.
    pub url: String,
    /// The events it wants; all of them when absent.
    #[serde(default)]
    pub event_types: Option<Vec<EventType>>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /v2/workspaces/{workspace_uuid}/webhooks/{webhook_uuid}`: the fields given
/// change. Enabling an endpoint clears its `disabled_reason`; its deliveries still
/// pending resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<EventType>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A webhook endpoint. Its secret is shown only when it is made (create, rotate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub webhook_uuid: Uuid,
    pub workspace_uuid: Uuid,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why filegate disabled it (its deliveries kept failing), when it did.
    pub disabled_reason: Option<String>,
    /// Until when deliveries are also signed with the secret the last rotation replaced.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The last delivery it acknowledged with a 2xx.
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A webhook endpoint with its signing secret (`whsec_…`), shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and the base64 of 32 random bytes: the key of the `webhook-signature`.
    pub secret: String,
}

/// `GET /v2/workspaces/{workspace_uuid}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// Where a delivery is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not acknowledged yet: it is tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Its retries ran out; `POST …/redeliver` tries it again.
    Failed,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The `webhook-id` header: the same on every attempt.
    pub delivery_uuid: Uuid,
    pub webhook_uuid: Uuid,
    pub event_type: EventType,
    pub file_uuid: Uuid,
    /// The transition's number: a file's events are numbered in the order they happened.
    pub sequence: i64,
    pub status: DeliveryStatus,
    /// Attempts since the event, or since its last redelivery.
    pub attempts: i32,
    pub occurred_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when it got one.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// When it was delivered or failed for good.
    pub settled_at: Option<DateTime<Utc>>,
}

/// `GET …/webhooks/{webhook_uuid}/deliveries`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryList {
    pub items: Vec<WebhookDelivery>,
}

/// `POST …/webhooks/{webhook_uuid}/redeliver`: every failed delivery of the endpoint
/// whose event happened at or after `since` is tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    pub since: DateTime<Utc>,
}

/// How many deliveries a redelivery queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeliverResponse {
    pub redelivered: u64,
}

/// A delivery's body (Standard Webhooks' `{type, timestamp, data}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the transition happened.
    pub timestamp: DateTime<Utc>,
    pub data: WebhookEventData,
}

/// What a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEventData {
    pub workspace_uuid: Uuid,
    /// The transition's number: larger is later, for the same file. A receiver that
    /// has seen a larger number for a file may drop this event as stale.
    pub sequence: i64,
    /// The file as the transition left it (as `GET /v2/files/{file_uuid}` returns it,
    /// without the short-lived download URL).
    pub file: File,
}

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret or a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `whsec_` and base64.
    #[error("the secret is not whsec_ followed by base64")]
    BadSecret,
    /// `webhook-timestamp` is not a number of seconds.
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance (a replay, or a clock off).
    #[error("webhook-timestamp is too far from now")]
    Stale,
    /// No `v1,` signature matched.
    #[error("no signature matches")]
    Mismatch,
}

/// The key bytes of a `whsec_…` secret.
fn key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| SignatureError::BadSecret)
}

/// The `v1,<base64>` signature of a delivery: HMAC-SHA256 under the secret's key of
/// `{id}.{timestamp}.{body}`.
///
/// # Errors
/// [`SignatureError::BadSecret`] for a secret that is not `whsec_` and base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key(secret)?).map_err(|_| SignatureError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a delivery as a receiver does: its `webhook-timestamp` within `tolerance` of
/// `now`, and one of the space-separated signatures of `webhook-signature` made with
/// `secret` (during a rotation's grace, filegate signs with both secrets).
///
/// # Errors
/// The [`SignatureError`] that refused it.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let now = i64::try_from(now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
        .unwrap_or(i64::MAX);
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if ts.abs_diff(now) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let key = key(secret)?;
    for candidate in signatures.split_whitespace() {
        let Some(given) = candidate
            .strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
        else {
            continue;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignatureError::BadSecret)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // Constant time.
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of its libraries'
    /// tests): this secret, id, timestamp and body sign to this value.
    #[test]
    fn signatures_match_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signed = sign(secret, id, 1_614_265_330, body).unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let at = UNIX_EPOCH + Duration::from_secs(1_614_265_330);
        let five = Duration::from_secs(300);
        assert_eq!(
            verify(secret, id, "1614265330", &signed, body, at, five),
            Ok(())
        );
        // Another secret's signature beside it does not matter.
        let both = format!("v1,AAAA {signed}");
        assert_eq!(
            verify(secret, id, "1614265330", &both, body, at, five),
            Ok(())
        );
        assert_eq!(
            verify(secret, id, "1614265330", &signed, b"{}", at, five),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, "msg_other", "1614265330", &signed, body, at, five),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                secret,
                id,
                "1614265330",
                &signed,
                body,
                at + Duration::from_secs(301),
                five
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(secret, id, "soon", &signed, body, at, five),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            sign("whsec_***", id, 1, body),
            Err(SignatureError::BadSecret)
        );
    }

    #[test]
    fn event_types_read_and_write_their_wire_names() {
        for t in EventType::all() {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.as_str().to_owned())
            );
        }
        assert_eq!(EventType::all().count(), 4);
    }
}
