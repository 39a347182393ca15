//! `POST /v2/events/s3`: S3 event notifications complete the files they name at once.
//!
//! Accepts the AWS/MinIO notification shape (`Records[].eventName`,
//! `Records[].s3.bucket.name`, `Records[].s3.object.key`, keys URL-encoded as AWS sends
//! them), also wrapped in an SNS HTTPS message (`Type: Notification`, the event in
//! `Message`). Deliveries authenticate with `--events-secret`: `Authorization: Bearer
//! <secret>`, the bare secret (MinIO's `auth_token`), or HTTP Basic with the secret as
//! password (SNS subscription URLs carry `user:secret@`). The route is outside the API
//! keys' rate limits: it checks the secret from the headers before it reads the body
//! and does no database work before the secret matched; each refused delivery costs
//! its client address a token of a bucket of its own (`429` once it is empty).
//!
//! Records for other buckets, other events, keys filegate does not know or files that
//! are no longer pending are acknowledged and ignored, so a store never retries them.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use filegate_db::completion::Reach;
use filegate_domain::FileStatus;
use filegate_domain::keys::KeyKind;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorEnvelope};
use crate::http::ratelimit::bucket::BucketKey;
use crate::http::ratelimit::headers::charge_refused;
use crate::http::state::AppState;
use crate::metrics::{self, Delivery};
use crate::service::completion::{Outcome, Trigger};

/// Most distinct uploads one delivery may name.
const MAX_KEYS: usize = 1000;

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsAccepted {
    /// Records in the delivery.
    pub records: usize,
    /// Records that named a pending file's upload; each file's status after its completion.
    pub files: Vec<EventFile>,
    /// Records acknowledged and ignored (other buckets or events, unknown keys).
    pub ignored: usize,
}

/// A file an event completed (or found already settled).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventFile {
    pub file_uuid: Uuid,
    /// `ready`, `rejected`, `pending` (nothing there yet) or `expired`.
    #[schema(value_type = filegate_api::FileStatusSchema)]
    pub status: FileStatus,
}

/// Receive S3 event notifications (AWS S3 via SNS, MinIO webhook targets).
#[utoipa::path(
    post, path = "/v2/events/s3", tag = "events",
    request_body(content = Object, description = "An S3 event notification (`Records[]`), or an SNS message carrying one"),
    security(("events_secret" = [])),
    responses(
        (status = 200, description = "Delivered: named uploads were verified at once", body = EventsAccepted),
        (status = 400, description = "Not JSON, or not an S3 event notification", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong events secret", body = ErrorEnvelope),
        (status = 413, description = "The delivery is larger than the body limit", body = ErrorEnvelope),
        (status = 429, description = "Too many refused deliveries from this address", body = ErrorEnvelope),
        (status = 503, description = "The database or the object store is unreachable; redeliver later", body = ErrorEnvelope),
    )
)]
pub async fn s3(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // The secret first, from the headers: a delivery without it has its body unread.
    if let Err(e) = authenticate(
        &req,
        state
            .settings
            .events
            .events_secret
            .as_ref()
            .map(ExposeSecret::expose_secret),
    ) {
        metrics::event_delivery(Delivery::Unauthenticated);
        // Each refused delivery costs its address a token of a bucket of its own.
        if let Some(throttled) = charge_refused(&state, &req, BucketKey::EventsIp).await {
            return Ok(throttled);
        }
        return Err(e);
    }
    let limit = state.settings.http.max_body_bytes;
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?
        .map_err(|e| ApiError::invalid_request(format!("could not read the delivery: {e}")))?;
    let event = match parse(&body) {
        Ok(Parsed::Event(event)) => event,
        Ok(Parsed::SubscriptionConfirmation(url)) => {
            // Confirming means fetching a URL from the request: an operator's call.
            tracing::warn!(
                subscribe_url = url,
                "SNS asks to confirm a subscription to /v2/events/s3; visit the URL (or run `aws sns confirm-subscription`) to confirm it"
            );
            metrics::event_delivery(Delivery::Accepted);
            return Ok(HttpResponse::Ok().json(EventsAccepted {
                records: 0,
                files: Vec::new(),
                ignored: 0,
            }));
        }
        Err(e) => {
            metrics::event_delivery(Delivery::Malformed);
            return Err(e);
        }
    };
    let records = event.len();
    let (named, keys) = named_uploads(&event, state.storage.bucket())
        .inspect_err(|_| metrics::event_delivery(Delivery::Malformed))?;
    let ids = if keys.is_empty() {
        Vec::new()
    } else {
        filegate_db::completion::pending_by_upload_key(&state.pool, &named, &keys).await?
    };
    let files = complete_all(&state, ids).await?;
    metrics::event_records(files.len(), records.saturating_sub(files.len()));
    metrics::event_delivery(Delivery::Accepted);
    Ok(HttpResponse::Ok().json(EventsAccepted {
        records,
        ignored: records.saturating_sub(files.len()),
        files,
    }))
}
/// The upload keys of this bucket a delivery names (each once), and the files they
/// name.
fn named_uploads(event: &[Value], bucket: &str) -> Result<(Vec<Uuid>, Vec<String>), ApiError> {
    let mut keys: Vec<String> = event.iter().filter_map(|r| upload_key(r, bucket)).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() > MAX_KEYS {
        return Err(ApiError::invalid_request(format!(
            "a delivery may name at most {MAX_KEYS} uploads"
        )));
    }
    let named = keys
        .iter()
        .filter_map(|k| filegate_domain::keys::parse(k).map(|p| p.file))
        .collect();
    Ok((named, keys))
}

/// Completes the pending files `ids` together (one claim, one settlement), without
/// waiting for a file another completion holds; what each file is now (files gone
/// since are left out).
async fn complete_all(state: &AppState, ids: Vec<Uuid>) -> Result<Vec<EventFile>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = state
        .completer
        .complete_many(&ids, Reach::default(), Trigger::Event, false)
        .await?;
    let mut files = Vec::with_capacity(outcomes.len());
    for (id, outcome) in outcomes {
        let status = match outcome? {
            Outcome::Ready(f)
            | Outcome::Rejected(f)
            | Outcome::Missing(f, _)
            | Outcome::Settled(f) => f.status,
            // Another completion path has it right now.
            Outcome::Busy => FileStatus::Pending,
            Outcome::NotFound => continue,
        };
        files.push(EventFile {
            file_uuid: id,
            status,
        });
    }
    Ok(files)
}

/// The delivery presents the secret (compared in constant time, by digest, so neither
/// content nor length leaks).
fn authenticate(req: &HttpRequest, secret: Option<&str>) -> Result<(), ApiError> {
    let refuse = || ApiError::unauthenticated("a valid events secret is required");
    let Some(secret) = secret else {
        return Err(ApiError::unauthenticated(
            "S3 event delivery is not configured on this server (FILEGATE_EVENTS_SECRET)",
        ));
    };
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(presented_secret)
        .ok_or_else(refuse)?;
    let ok: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(secret.as_bytes()))
        .into();
    if ok { Ok(()) } else { Err(refuse()) }
}

/// The secret in an `Authorization` value: `Bearer <s>`, `Basic base64(user:<s>)`, or `<s>`.
fn presented_secret(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some((scheme, rest)) = value.split_once(' ') {
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            return decoded.split_once(':').map(|(_, pass)| pass.to_owned());
        }
        return None;
    }
    Some(value.to_owned())
}

enum Parsed {
    /// The records of an S3 event notification.
    Event(Vec<Value>),
    /// SNS asks to confirm a subscription at this URL.
    SubscriptionConfirmation(String),
}

fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))?;
    let not_an_event = || {
        ApiError::invalid_request(
            "not an S3 event notification: expected a JSON object with a Records array",
        )
    };
    match value.get("Type").and_then(Value::as_str) {
        Some("SubscriptionConfirmation") => {
            return value
                .get("SubscribeURL")
                .and_then(Value::as_str)
                .map(|u| Parsed::SubscriptionConfirmation(u.to_owned()))
                .ok_or_else(not_an_event);
        }
        Some("Notification") => {
            let message = value
                .get("Message")
                .and_then(Value::as_str)
                .ok_or_else(not_an_event)?;
            return parse(message.as_bytes());
        }
        _ => {}
    }
    // S3 sends a test event when a notification is configured: nothing to do.
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Parsed::Event(Vec::new()));
    }
    match value.get("Records") {
        Some(Value::Array(records)) => Ok(Parsed::Event(records.clone())),
        _ => Err(not_an_event()),
    }
}

/// The upload key an object-created record of our bucket names, if it names one (an
/// assembled multipart upload names its file's object key).
fn upload_key(record: &Value, bucket: &str) -> Option<String> {
    let event = record.get("eventName")?.as_str()?;
    let event = event.strip_prefix("s3:").unwrap_or(event);
    if !event.starts_with("ObjectCreated:") {
        return None;
    }
    let s3 = record.get("s3")?;
    if s3.get("bucket")?.get("name")?.as_str()? != bucket {
        return None;
    }
    let raw = s3.get("object")?.get("key")?.as_str()?;
    // Keys arrive URL-encoded, with `+` for spaces (form encoding).
    let key: String = form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())?;
    // A multipart file's parts go straight to its object key, and only an assembly
    // creates it there.
    let named = match KeyKind::of(&key) {
        KeyKind::Upload => true,
        KeyKind::Object => event == "ObjectCreated:CompleteMultipartUpload",
        KeyKind::Derived | KeyKind::Foreign => false,
    };
    named.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_read_from_bearer_basic_and_bare_values() {
        assert_eq!(presented_secret("Bearer s3cr3t").as_deref(), Some("s3cr3t"));
        assert_eq!(presented_secret("s3cr3t").as_deref(), Some("s3cr3t"));
        let basic = base64::engine::general_purpose::STANDARD.encode("sns:s3cr3t");
        assert_eq!(
            presented_secret(&format!("Basic {basic}")).as_deref(),
            Some("s3cr3t")
        );
        assert_eq!(presented_secret("Digest abc"), None);
    }

    #[test]
    fn only_object_created_records_of_our_bucket_name_uploads() {
        let key =
            "uploads/0190c6d0-0000-7000-8000-000000000001/0190c6d0-0000-7000-8000-000000000002";
        let record = |event: &str, bucket: &str, key: &str| json!({ "eventName": event, "s3": { "bucket": { "name": bucket }, "object": { "key": key } } });
        assert_eq!(
            upload_key(&record("s3:ObjectCreated:Put", "b", key), "b").as_deref(),
            Some(key)
        );
        assert_eq!(
            upload_key(
                &record("ObjectCreated:Put", "b", &key.replace('/', "%2F")),
                "b"
            )
            .as_deref(),
            Some(key)
        );
        assert_eq!(
            upload_key(&record("s3:ObjectRemoved:Delete", "b", key), "b"),
            None
        );
        assert_eq!(
            upload_key(&record("s3:ObjectCreated:Put", "other", key), "b"),
            None
        );
        assert_eq!(
            upload_key(&record("s3:ObjectCreated:Put", "b", "notes/a+b.txt"), "b"),
            None
        );
        // An object key is named only by an assembled multipart upload.
        let object = key.trim_start_matches("uploads/");
        assert_eq!(
            upload_key(
                &record("s3:ObjectCreated:CompleteMultipartUpload", "b", object),
                "b"
            )
            .as_deref(),
            Some(object)
        );
        assert_eq!(
            upload_key(&record("s3:ObjectCreated:Copy", "b", object), "b"),
            None
        );
    }

    #[test]
    fn sns_notifications_carry_the_event_in_their_message() {
        let event = json!({ "Records": [ { "eventName": "ObjectCreated:Put" } ] });
        let sns = json!({ "Type": "Notification", "Message": event.to_string() });
        assert!(matches!(parse(sns.to_string().as_bytes()), Ok(Parsed::Event(r)) if r.len() == 1));
        let confirm = json!({ "Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.example/confirm" });
        assert!(matches!(
            parse(confirm.to_string().as_bytes()),
            Ok(Parsed::SubscriptionConfirmation(u)) if u == "https://sns.example/confirm"
        ));
        assert!(parse(b"{\"Records\": 3}").is_err());
        assert!(parse(b"not json").is_err());
    }
}
