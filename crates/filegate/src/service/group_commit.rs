//! Group commit for completions' transitions.
//!
//! Each completion ends in one guarded statement that moves its files out of `pending`
//! ([`filegate_db::completion::settle`]). Under load, many completions reach that point
//! at once; rather than each paying a statement, a round trip and a durable commit,
//! the ones that arrive while a settlement is in flight are settled together in the
//! next one. A completion arriving when none is in flight starts one at once, so an
//! idle server adds no wait; under load a completion waits for at most the settlement
//! in flight, and then shares the next.
//!
//! One settlement runs at a time, on a task of its own: a caller that goes away (a
//! client hanging up) cannot cancel the transitions of the others. A completion's
//! transitions (a batch's fifty) always go into one statement together.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use filegate_db::completion::{Settled, Transition};
use filegate_db::files::FileRow;
use filegate_db::{DbError, Pool};
use tokio::sync::oneshot;

/// Settles transitions, grouping those of concurrent completions.
#[derive(Debug)]
pub struct GroupCommit {
    pool: Pool,
    /// How long after its upload URL's expiry a settled file's upload is deleted.
    margin: Duration,
    /// The most transitions one settlement takes from waiting completions (one
    /// completion's are never split); 0: no grouping.
    max: usize,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Waiter>,
    /// A settlement task is running; it takes what waits before it ends.
    flushing: bool,
}

#[derive(Debug)]
struct Waiter {
    transitions: Vec<Transition>,
    reply: oneshot::Sender<Result<Vec<FileRow>, Arc<DbError>>>,
}

impl GroupCommit {
    /// `max` transitions per grouped statement; 0 settles every completion on its own.
    #[must_use]
    pub fn new(pool: Pool, margin: Duration, max: usize) -> Arc<Self> {
        Arc::new(Self {
            pool,
            margin,
            max,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Settles `transitions` (all in one statement, possibly with other completions'),
    /// and returns the files they moved (under their claims), as they are now.
    ///
    /// # Errors
    /// The settling statement's failure (none of the files moved), shared by every
    /// completion that was in it.
    pub async fn commit(
        self: &Arc<Self>,
        transitions: Vec<Transition>,
    ) -> Result<Vec<FileRow>, Arc<DbError>> {
        if transitions.is_empty() {
            return Ok(Vec::new());
        }
        if self.max == 0 {
            crate::metrics::settling_statement(transitions.len());
            return filegate_db::completion::settle(&self.pool, &transitions, self.margin)
                .await
                .map(|settled| moved_by(&transitions, &settled))
                .map_err(Arc::new);
        }
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Waiter { transitions, reply });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if lead {
            tokio::spawn(self.clone().flush());
        }
        // The sender drops only if the settlement task panicked.
        answer.await.unwrap_or_else(|_| {
            Err(Arc::new(DbError::Unavailable(
                "the settling task failed".into(),
            )))
        })
    }

    /// Settles what waits, group after group, until nothing does.
    async fn flush(self: Arc<Self>) {
        let _reset = ResetOnPanic(&self.queue);
        loop {
            let group: Vec<Waiter> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let (mut taken, mut n) = (0, 0);
                while taken < queue.waiting.len() && (taken == 0 || n < self.max) {
                    n += queue.waiting[taken].transitions.len();
                    taken += 1;
                }
                queue.waiting.drain(..taken).collect()
            };
            let all: Vec<Transition> = group
                .iter()
                .flat_map(|w| w.transitions.iter().cloned())
                .collect();
            crate::metrics::settling_statement(all.len());
            match filegate_db::completion::settle(&self.pool, &all, self.margin).await {
                Ok(settled) => {
                    for w in group {
                        let _ = w.reply.send(Ok(moved_by(&w.transitions, &settled)));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for w in group {
                        let _ = w.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// The files among `settled` that `transitions` moved: matched by file and claim, so
/// a completion whose claim lapsed is not told of a move the new claim made.
fn moved_by(transitions: &[Transition], settled: &[Settled]) -> Vec<FileRow> {
    settled
        .iter()
        .filter(|s| {
            transitions
                .iter()
                .any(|t| t.id == s.file.id && t.token == s.token)
        })
        .map(|s| s.file.clone())
        .collect()
}

/// If a settlement task panics, its waiters get an error (their senders drop) and the
/// next completion starts a new task.
struct ResetOnPanic<'a>(&'a Mutex<Queue>);

impl Drop for ResetOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.clear();
            queue.flushing = false;
        }
    }
}
