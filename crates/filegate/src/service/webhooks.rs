//! Webhooks below HTTP: an endpoint's URL checked by the imports' SSRF guard, its
//! signing secrets, and the delivery of one claimed event: the body drawn from the
//! file's row as its transition left it, signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), POSTed with a bounded
//! timeout and no redirects; a 2xx settles it, anything else schedules a retry with
//! exponential backoff and jitter until the delivery's horizon, then fails it.
//!
//! Events are written by the database in the statement that moves a file (see
//! `filegate_db::webhooks`), so there is no transition without its event whichever path
//! made it; this module only delivers them, at least once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use filegate_api::webhooks::{self as wire, EventType, SECRET_PREFIX};
use filegate_api::{WebhookEvent, WebhookEventData};
use filegate_db::webhooks::{self as db, Due, Failure};
use filegate_db::{DbError, Pool};

use crate::metrics::{self, WebhookAttempt};
use crate::service::files::file_object;
use crate::service::group_commit::{Acknowledgements, GroupCommit};
use crate::service::imports::guard::{GuardedResolver, Policy, Refusal};
use crate::settings::WebhookSettings;

/// How long past its timeout an attempt's claim lasts (then another worker may try).
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// What the SSRF guard's refusals call an endpoint URL.
pub const URL: &str = "the URL";
/// Most acknowledgements one settling statement takes.
const ACKNOWLEDGEMENTS_MAX: usize = 256;
/// The most of an error kept with a delivery.
const MAX_ERROR_CHARS: usize = 300;

/// Delivers webhook events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhooks {
    pool: Pool,
    /// Acknowledged deliveries, settled together.
    acknowledgements: Arc<GroupCommit<Acknowledgements>>,
    client: reqwest::Client,
    policy: Arc<Policy>,
    settings: WebhookSettings,
}

/// What one attempt ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    Delivered,
    Retried,
    Failed,
    /// Its result was not recorded (the database failed, or another worker had taken
    /// the delivery up): the lease brings it back.
    Unrecorded,
}

impl Webhooks {
    /// Deliveries through a client bound to `policy` (the imports' SSRF guard).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (its TLS roots).
    pub fn new(
        pool: Pool,
        policy: Policy,
        settings: &WebhookSettings,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            // A redirect is an answer that is not 2xx: the delivery is retried.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.webhook_timeout)
            .timeout(settings.webhook_timeout)
            .user_agent(concat!("filegate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            acknowledgements: GroupCommit::new(
                Acknowledgements { pool: pool.clone() },
                ACKNOWLEDGEMENTS_MAX,
            ),
            pool,
            client,
            policy,
            settings: settings.clone(),
        })
    }

    /// The settings deliveries follow.
    #[must_use]
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Checks an endpoint URL before it is saved: the guard's URL rules, and for a
    /// name, every address it resolves to (checked again at each delivery).
    ///
    /// # Errors
    /// The [`Refusal`] saying why not.
    pub async fn check_url(&self, raw: &str) -> Result<reqwest::Url, Refusal> {
        self.policy.check(raw, URL).await
    }

    /// Claims up to `limit` due deliveries.
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    pub async fn claim(&self, limit: usize) -> Result<Vec<Due>, DbError> {
        db::claim_due(
            &self.pool,
            i64::try_from(limit).unwrap_or(i64::MAX),
            self.settings.webhook_timeout + LEASE_MARGIN,
            self.settings.webhook_retry_horizon,
        )
        .await
    }

    /// Counts the deliveries waiting (for the `filegate_webhook_queued` gauge).
    ///
    /// # Errors
    /// [`DbError`] on database failure.
    pub async fn sample_queue(&self) -> Result<i64, DbError> {
        let n = db::pending_count(&self.pool).await?;
        metrics::webhook_queued(n);
        Ok(n)
    }

    /// Makes one attempt at a claimed delivery and records how it went.
    pub async fn attempt(&self, due: Due) -> Attempted {
        let (id, attempt, occurred_at) = (due.id, due.attempt, due.occurred_at);
        let result = self.send(due).await;
        let recorded = match result {
            Ok(status) => self
                .acknowledgements
                .run((id, i32::from(status)))
                .await
                .map(|()| Attempted::Delivered)
                .map_err(DbError::shared),
            Err((status, error)) => {
                let delay = retry_delay(
                    attempt,
                    self.settings.webhook_retry_base,
                    self.settings.webhook_retry_max,
                    unit_random(),
                );
                db::attempt_failed(
                    &self.pool,
                    id,
                    attempt,
                    status.map(i32::from),
                    &error,
                    delay,
                    self.settings.webhook_retry_horizon,
                )
                .await
                .map(|f| match f {
                    Failure::Retried => Attempted::Retried,
                    Failure::Failed { endpoint_disabled } => {
                        if endpoint_disabled {
                            metrics::webhook_endpoint_disabled();
                            tracing::warn!(delivery = %id, error, "webhook endpoint disabled: its deliveries kept failing");
                        }
                        Attempted::Failed
                    }
                    Failure::Stale => Attempted::Unrecorded,
                })
            }
        };
        match recorded {
            Ok(outcome) => {
                let label = match outcome {
                    Attempted::Delivered => Some(WebhookAttempt::Delivered),
                    Attempted::Retried => Some(WebhookAttempt::Retried),
                    Attempted::Failed => Some(WebhookAttempt::Failed),
                    Attempted::Unrecorded => None,
                };
                if let Some(label) = label {
                    let latency = (outcome == Attempted::Delivered)
                        .then(|| (Utc::now() - occurred_at).to_std().unwrap_or_default());
                    metrics::webhook_attempt(label, latency);
                }
                outcome
            }
            Err(e) => {
                tracing::warn!(delivery = %id, error = %e, "could not record a webhook attempt; its lease brings it back");
                Attempted::Unrecorded
            }
        }
    }

    /// POSTs a delivery: `Ok` with a 2xx status, else the status (if any) and why.
    async fn send(&self, due: Due) -> Result<u16, (Option<u16>, String)> {
        let (url, _) = self
            .policy
            .parse(&due.url, URL)
            .map_err(|r| (None, format!("the URL is refused: {r}")))?;
        let event_type: EventType = due
            .event_type
            .parse()
            .map_err(|_| (None, format!("unknown event type {:?}", due.event_type)))?;
        let body = serde_json::to_vec(&WebhookEvent {
            event_type,
            timestamp: due.occurred_at,
            data: WebhookEventData {
                workspace_uuid: due.file.workspace_id,
                sequence: due.seq,
                file: file_object(due.file),
            },
        })
        .map_err(|e| (None, format!("the payload could not be written: {e}")))?;
        let id = due.id.to_string();
        let timestamp = Utc::now().timestamp();
        let signatures = due
            .secrets
            .iter()
            .map(|s| wire::sign(s, &id, timestamp, &body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (None, format!("the endpoint's secret is unusable: {e}")))?
            .join(" ");
        let response = self
            .client
            .post(url)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| (None, truncate(&describe(&e))))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err((
                Some(status.as_u16()),
                format!("the endpoint answered {status}"),
            ))
        }
    }
}

/// Why a request failed, in a sentence (the error's chain).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the endpoint did not answer in time".to_owned();
    }
    let chain = crate::causes::chain(e);
    if e.is_connect() {
        return format!("the endpoint could not be reached: {chain}");
    }
    chain
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_ERROR_CHARS).collect()
}

/// The event types an endpoint stores: the ones `named`, each once, in their order;
/// every type when none are named.
#[must_use]
pub fn event_type_names(named: Option<Vec<EventType>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in named.unwrap_or_else(|| EventType::all().collect()) {
        if !out.iter().any(|o| o == t.as_str()) {
            out.push(t.as_str().to_owned());
        }
    }
    out
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
///
/// # Errors
/// When the system's random source fails.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The delay after failed attempt `attempt` (from 1): `base` doubled per attempt
/// before it, at most `max`, then drawn between half and all of that by `unit`
/// (in `[0, 1)`), so deliveries failing together spread out.
#[must_use]
pub fn retry_delay(attempt: i32, base: Duration, max: Duration, unit: f64) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(40);
    let full = base
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(max)
        .min(max);
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)` (jitter needs no more than the system's random source).
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    #[allow(clippy::cast_precision_loss)] // 53 bits are all an f64 holds.
    let n = (u64::from_le_bytes(b) >> 11) as f64;
    n / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_within_their_jitter_and_cap() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(
            retry_delay(1, base, max, 0.999_999),
            Duration::from_secs(5).mul_f64(0.999_999_5)
        );
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::from_millis(2500));
        assert_eq!(retry_delay(2, base, max, 0.0), Duration::from_secs(5));
        assert_eq!(retry_delay(4, base, max, 0.0), Duration::from_secs(20));
        // Capped, and never overflowing however many attempts.
        assert_eq!(retry_delay(30, base, max, 0.0), Duration::from_secs(1800));
        assert_eq!(
            retry_delay(i32::MAX, base, max, 0.0),
            Duration::from_secs(1800)
        );
        assert_eq!(retry_delay(0, base, max, 0.0), Duration::from_millis(2500));
        for _ in 0..100 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        let key = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert!(wire::sign(&a, "id", 1, b"{}").is_ok());
    }
}
