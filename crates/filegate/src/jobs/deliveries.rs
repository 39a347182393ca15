//! The webhook delivery worker every replica runs: it claims due deliveries (`SKIP
//! LOCKED`, under a lease) as slots free up, sends up to `--webhook-concurrency` at once,
//! and looks again at once while there is work, else after `--webhook-poll-ms`. Unlike
//! the other jobs it does not wait a second between passes: an application learns of a
//! transition within a poll.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
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
    let slots = Arc::new(Semaphore::new(settings.webhook_concurrency));
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
        let free = slots.available_permits();
        if free == 0 {
            attempts.join_next().await;
            continue;
        }
        match webhooks.claim(free).await {
            Ok(due) if !due.is_empty() => {
                for d in due {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let w = webhooks.clone();
                    attempts.spawn(async move {
                        w.attempt(d).await;
                        drop(slot);
                    });
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
