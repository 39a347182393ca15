//! The webhook delivery worker every replica runs: it claims due deliveries (`SKIP
//! LOCKED`, under a lease) as slots free up, sends up to `--webhook-concurrency` at once,
//! and looks again at once while there is work, else after `--webhook-poll-ms`. Unlike
//! the other jobs it does not wait a second between passes: an application learns of a
//! transition within a poll.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::service::webhooks::Webhooks;

/// How often the queue gauge is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The pause after the database failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// Delivers webhook events until the task is dropped (its attempts in flight with it;
/// their leases bring them back).
pub async fn run(webhooks: Webhooks) {
    let settings = webhooks.settings().clone();
    // The attempts in flight (finished ones are reaped at the top of each turn).
    let mut attempts = JoinSet::new();
    let mut sampled: Option<Instant> = None;
    loop {
        while attempts.try_join_next().is_some() {}
        if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
            sampled = Some(Instant::now());
            if let Err(e) = webhooks.sample_queue().await {
                tracing::debug!(error = %e, "could not count the webhook queue");
            }
        }
        let free = settings.webhook_concurrency.saturating_sub(attempts.len());
        if free == 0 {
            attempts.join_next().await;
            continue;
        }
        match webhooks.claim(free).await {
            Ok(due) if !due.is_empty() => {
                for d in due {
                    let w = webhooks.clone();
                    attempts.spawn(async move { w.attempt(d).await });
                }
            }
            Ok(_) => tokio::time::sleep(settings.webhook_poll).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries; will retry");
                tokio::time::sleep(BACKOFF.max(settings.webhook_poll)).await;
            }
        }
    }
}
