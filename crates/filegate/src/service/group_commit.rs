//! Group commit: the statements of concurrent requests run as one.
//!
//! Completions claim their files and settle them; reservations take quota and insert
//! files. Each is one guarded statement, and under load many requests reach theirs at
//! once. Rather than each paying a statement, a round trip and a durable commit, the
//! ones that arrive while a statement of their kind is in flight run together in the
//! next one. A request arriving when none is in flight starts one at once, so an idle
//! server adds no wait; under load a request waits for at most the statement in
//! flight, and then shares the next.
//!
//! One statement of a kind runs at a time, on a task of its own: a caller that goes
//! away (a client hanging up) cannot cancel the work of the others. One request's
//! items (a batch's fifty transitions) always go into one statement together.
//!
//! What a kind of statement does with a group is its own ([`Statement`]): settlements,
//! claims and webhook acknowledgements answer every request from one statement; reservations keep
//! all-or-nothing per request by running alone any request the grouped statement
//! could not settle by itself.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use filegate_db::completion::{ClaimRequest, Claimed, Settled, Transition};
use filegate_db::files::{FileRow, ReservationRows, ReserveOutcome};
use filegate_db::{DbError, Pool};
use tokio::sync::oneshot;

use crate::metrics::{self, Grouped};

/// A statement that can run for several requests at once.
pub trait Statement: Send + Sync + 'static {
    /// One request's part.
    type Item: Send + 'static;
    /// One request's answer.
    type Answer: Send + 'static;
    /// The kind, for metrics.
    const KIND: Grouped;

    /// How much `item` counts against a group's maximum (files, transitions).
    fn weight(item: &Self::Item) -> usize;

    /// Runs `items` together: one answer per item, in their order.
    fn run(&self, items: &[Self::Item]) -> impl Future<Output = Vec<Self::Answer>> + Send;

    /// What to do with the answer to `item` when its request went away while it waited
    /// (a client hanging up): by default nothing.
    fn undelivered(
        &self,
        item: Self::Item,
        answer: Self::Answer,
    ) -> impl Future<Output = ()> + Send {
        let _ = (item, answer);
        async {}
    }

    /// The answer of a request whose statement's task failed (panicked).
    fn lost() -> Self::Answer;
}

/// Runs a [`Statement`] for concurrent requests, grouping them.
#[derive(Debug)]
pub struct GroupCommit<S: Statement> {
    statement: S,
    /// The most weight one statement takes from waiting requests (one request's items
    /// are never split); 0: no grouping.
    max: usize,
    queue: Mutex<Queue<S::Item, S::Answer>>,
}

#[derive(Debug)]
struct Queue<I, A> {
    waiting: Vec<Waiter<I, A>>,
    /// A task is running statements; it takes what waits before it ends.
    flushing: bool,
}

#[derive(Debug)]
struct Waiter<I, A> {
    item: I,
    reply: oneshot::Sender<A>,
}

impl<S: Statement> GroupCommit<S> {
    /// Groups of at most `max` weight; 0 runs every request's statement on its own.
    #[must_use]
    pub fn new(statement: S, max: usize) -> Arc<Self> {
        Arc::new(Self {
            statement,
            max,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                flushing: false,
            }),
        })
    }

    /// Runs `item`'s statement, possibly with other requests', and returns its answer.
    pub async fn run(self: &Arc<Self>, item: S::Item) -> S::Answer {
        if self.max == 0 {
            metrics::grouped(S::KIND, 1);
            return self
                .statement
                .run(std::slice::from_ref(&item))
                .await
                .pop()
                .unwrap_or_else(S::lost);
        }
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Waiter { item, reply });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if lead {
            tokio::spawn(self.clone().flush());
        }
        // The sender drops only if the statement's task panicked.
        answer.await.unwrap_or_else(|_| S::lost())
    }

    /// Runs what waits, group after group, until nothing does.
    async fn flush(self: Arc<Self>) {
        let _reset = ResetOnPanic(&self.queue);
        loop {
            let group: Vec<Waiter<S::Item, S::Answer>> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let (mut taken, mut n) = (0, 0);
                while taken < queue.waiting.len() && (taken == 0 || n < self.max) {
                    n += S::weight(&queue.waiting[taken].item);
                    taken += 1;
                }
                queue.waiting.drain(..taken).collect()
            };
            metrics::grouped(S::KIND, group.len());
            let (items, replies): (Vec<_>, Vec<_>) =
                group.into_iter().map(|w| (w.item, w.reply)).unzip();
            let answers = self.statement.run(&items).await;
            for ((reply, answer), item) in replies.into_iter().zip(answers).zip(items) {
                if let Err(answer) = reply.send(answer) {
                    self.statement.undelivered(item, answer).await;
                }
            }
        }
    }
}

/// If a statement's task panics, its waiters get [`Statement::lost`] (their senders
/// drop) and the next request starts a new task.
struct ResetOnPanic<'a, I, A>(&'a Mutex<Queue<I, A>>);

impl<I, A> Drop for ResetOnPanic<'_, I, A> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.clear();
            queue.flushing = false;
        }
    }
}

/// A failure shared by every request of one statement.
pub type Shared<T> = Result<T, Arc<DbError>>;

fn task_failed() -> Arc<DbError> {
    Arc::new(DbError::Unavailable("the statement's task failed".into()))
}

/// Completions' transitions ([`filegate_db::completion::settle`]); an item is one
/// completion's transitions, its answer the files they moved (under their claims), as
/// they are now.
#[derive(Debug)]
pub struct Settlements {
    pub pool: Pool,
    /// How long after its upload URL's expiry a settled file's upload is deleted.
    pub margin: Duration,
}

impl Statement for Settlements {
    type Item = Vec<Transition>;
    type Answer = Shared<Vec<FileRow>>;
    const KIND: Grouped = Grouped::Settle;

    fn weight(item: &Self::Item) -> usize {
        item.len()
    }

    async fn run(&self, items: &[Self::Item]) -> Vec<Self::Answer> {
        let all: Vec<Transition> = items.iter().flatten().cloned().collect();
        metrics::settling_statement(all.len());
        match filegate_db::completion::settle(&self.pool, &all, self.margin).await {
            Ok(settled) => items.iter().map(|t| Ok(moved_by(t, &settled))).collect(),
            Err(e) => {
                let e = Arc::new(e);
                items.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    fn lost() -> Self::Answer {
        Err(task_failed())
    }
}

/// Webhook deliveries their endpoints acknowledged ([`filegate_db::webhooks::delivered`]);
/// an item is one delivery and its 2xx status.
#[derive(Debug)]
pub struct Acknowledgements {
    pub pool: Pool,
}

impl Statement for Acknowledgements {
    type Item = (uuid::Uuid, i32);
    type Answer = Shared<()>;
    const KIND: Grouped = Grouped::Acknowledge;

    fn weight(_: &Self::Item) -> usize {
        1
    }

    async fn run(&self, items: &[Self::Item]) -> Vec<Self::Answer> {
        match filegate_db::webhooks::delivered(&self.pool, items).await {
            Ok(()) => items.iter().map(|_| Ok(())).collect(),
            Err(e) => {
                let e = Arc::new(e);
                items.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    fn lost() -> Self::Answer {
        Err(task_failed())
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

/// Completions' claims ([`filegate_db::completion::claim_many`]).
#[derive(Debug)]
pub struct Claims {
    pub pool: Pool,
}

impl Statement for Claims {
    type Item = ClaimRequest;
    type Answer = Shared<Vec<Claimed>>;
    const KIND: Grouped = Grouped::Claim;

    fn weight(item: &Self::Item) -> usize {
        item.ids.len()
    }

    async fn run(&self, items: &[Self::Item]) -> Vec<Self::Answer> {
        match filegate_db::completion::claim_many(&self.pool, items).await {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(e) => {
                let e = Arc::new(e);
                items.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    fn lost() -> Self::Answer {
        Err(task_failed())
    }

    /// A completion that went away while its claim waited gives back what it got, so
    /// the next completion of its files need not wait out the lease.
    async fn undelivered(&self, item: Self::Item, answer: Self::Answer) {
        let held: Vec<_> = answer
            .into_iter()
            .flatten()
            .filter(|c| c.held)
            .map(|c| c.file.id)
            .collect();
        if held.is_empty() {
            return;
        }
        if let Err(e) = filegate_db::completion::release(&self.pool, &held, item.token).await {
            tracing::warn!(error = %e, files = held.len(), "could not release the claims of a completion that went away; they lapse by themselves");
        }
    }
}

/// Reservations without an `Idempotency-Key` ([`filegate_db::files::reserve_many`]); a
/// request's answer is what reserving it alone would have answered.
#[derive(Debug)]
pub struct Reservations {
    pub pool: Pool,
}

impl Statement for Reservations {
    type Item = ReservationRows;
    type Answer = Shared<ReserveOutcome>;
    const KIND: Grouped = Grouped::Reserve;

    fn weight(item: &Self::Item) -> usize {
        item.len()
    }

    async fn run(&self, items: &[Self::Item]) -> Vec<Self::Answer> {
        if let [only] = items {
            return vec![self.alone(only).await];
        }
        // What the grouped statement could not settle (a workspace without room for
        // everyone; a name taken, which fails the statement whole: then its halves
        // are tried in turn, so one taken name costs its own request the group, not
        // everyone's) is reserved alone, request by request, each with its own answer.
        let grouped = self.grouped(items).await;
        metrics::grouped_alone(Self::KIND, grouped.iter().filter(|done| !**done).count());
        futures_util::future::join_all(items.iter().zip(grouped).map(|(r, done)| async move {
            if done {
                Ok(ReserveOutcome::Reserved)
            } else {
                self.alone(r).await
            }
        }))
        .await
    }

    fn lost() -> Self::Answer {
        Err(task_failed())
    }
}

impl Reservations {
    /// Which of `items` one grouped statement reserved, in order. When a name is taken
    /// (in the library or by an earlier item), the statement fails whole: the first
    /// half is tried, then the second, down to single requests, which run alone.
    fn grouped<'a>(
        &'a self,
        items: &'a [ReservationRows],
    ) -> std::pin::Pin<Box<dyn Future<Output = Vec<bool>> + Send + 'a>> {
        Box::pin(async move {
            match filegate_db::files::reserve_many(&self.pool, items).await {
                Ok(done) => done,
                Err(e)
                    if items.len() > 1
                        && e.constraint() == Some(filegate_db::Constraint::LiveNamePath) =>
                {
                    let (first, rest) = items.split_at(items.len() / 2);
                    let mut done = self.grouped(first).await;
                    done.extend(self.grouped(rest).await);
                    done
                }
                Err(_) => vec![false; items.len()],
            }
        })
    }

    async fn alone(&self, r: &ReservationRows) -> Shared<ReserveOutcome> {
        filegate_db::files::reserve_rows(&self.pool, r, None)
            .await
            .map_err(Arc::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Records each group it runs; holds the first group until `gate` opens, so the
    /// test decides what arrives while a statement is in flight.
    #[derive(Debug)]
    struct Recorder {
        groups: Mutex<Vec<Vec<u32>>>,
        gate: Semaphore,
        panic_on: Option<u32>,
        held: AtomicBool,
        undelivered: Mutex<Vec<(u32, Option<u32>)>>,
    }

    impl Recorder {
        fn new(panic_on: Option<u32>) -> Self {
            Self {
                groups: Mutex::new(Vec::new()),
                gate: Semaphore::new(0),
                panic_on,
                held: AtomicBool::new(false),
                undelivered: Mutex::new(Vec::new()),
            }
        }

        fn groups(&self) -> Vec<Vec<u32>> {
            self.groups.lock().unwrap().clone()
        }
    }

    impl Statement for Recorder {
        /// An item weighs its value.
        type Item = u32;
        type Answer = Option<u32>;
        const KIND: Grouped = Grouped::Claim;

        fn weight(item: &u32) -> usize {
            *item as usize
        }

        async fn run(&self, items: &[u32]) -> Vec<Option<u32>> {
            if !self.held.swap(true, Ordering::SeqCst) {
                let _ = self.gate.acquire().await.unwrap();
            }
            assert!(self.panic_on.is_none_or(|p| !items.contains(&p)), "boom");
            self.groups.lock().unwrap().push(items.to_vec());
            items.iter().map(|i| Some(i * 10)).collect()
        }

        async fn undelivered(&self, item: u32, answer: Option<u32>) {
            self.undelivered.lock().unwrap().push((item, answer));
        }

        fn lost() -> Option<u32> {
            None
        }
    }

    /// `group.run(item)` on a task of its own.
    fn spawn_run(
        group: &Arc<GroupCommit<Recorder>>,
        item: u32,
    ) -> tokio::task::JoinHandle<Option<u32>> {
        let group = group.clone();
        tokio::spawn(async move { group.run(item).await })
    }

    async fn settled() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_lone_request_runs_at_once_and_later_ones_share_the_next_statement() {
        let group = GroupCommit::new(Recorder::new(None), 100);
        let first = spawn_run(&group, 1);
        settled().await;
        // The first runs alone, at once: nothing waited before it.
        let later: Vec<_> = (2..=5).map(|i| spawn_run(&group, i)).collect();
        settled().await;
        group.statement.gate.add_permits(1);
        assert_eq!(first.await.unwrap(), Some(10));
        for (i, answer) in (2..=5).zip(later) {
            assert_eq!(
                answer.await.unwrap(),
                Some(i * 10),
                "each gets its own answer"
            );
        }
        assert_eq!(group.statement.groups(), vec![vec![1], vec![2, 3, 4, 5]]);
    }

    #[tokio::test]
    async fn a_group_stops_at_its_weight_and_never_splits_a_request() {
        let group = GroupCommit::new(Recorder::new(None), 10);
        let first = spawn_run(&group, 1);
        settled().await;
        let later: Vec<_> = [6, 3, 4, 20, 1]
            .into_iter()
            .map(|i| spawn_run(&group, i))
            .collect();
        settled().await;
        group.statement.gate.add_permits(1);
        first.await.unwrap();
        for answer in later {
            assert!(answer.await.unwrap().is_some());
        }
        // 6+3 < 10 takes the 4 too (a group closes once it reaches its weight); a
        // request heavier than the maximum still runs, whole.
        assert_eq!(
            group.statement.groups(),
            vec![vec![1], vec![6, 3, 4], vec![20], vec![1]]
        );
    }

    #[tokio::test]
    async fn without_grouping_each_request_runs_its_own_statement() {
        let group = GroupCommit::new(Recorder::new(None), 0);
        group.statement.gate.add_permits(1);
        let answers = futures_util::future::join_all((1..=4).map(|i| group.run(i))).await;
        assert_eq!(answers, vec![Some(10), Some(20), Some(30), Some(40)]);
        assert_eq!(group.statement.groups().len(), 4);
    }

    #[tokio::test]
    async fn a_statement_that_panics_fails_its_group_and_the_next_request_runs() {
        let group = GroupCommit::new(Recorder::new(Some(7)), 100);
        group.statement.gate.add_permits(1);
        assert_eq!(group.run(7).await, None, "the group's answer is lost");
        assert_eq!(group.run(2).await, Some(20), "a new task runs the next");
    }

    #[tokio::test]
    async fn the_answer_of_a_request_that_went_away_goes_to_its_statement() {
        let group = GroupCommit::new(Recorder::new(None), 100);
        let first = spawn_run(&group, 1);
        settled().await;
        // Queued behind the statement in flight, then dropped (its client hung up).
        let gone = spawn_run(&group, 2);
        let stays = spawn_run(&group, 3);
        settled().await;
        gone.abort();
        settled().await;
        group.statement.gate.add_permits(1);
        assert_eq!(first.await.unwrap(), Some(10));
        assert_eq!(stays.await.unwrap(), Some(30));
        assert_eq!(group.statement.groups(), vec![vec![1], vec![2, 3]]);
        assert_eq!(
            *group.statement.undelivered.lock().unwrap(),
            vec![(2, Some(20))],
            "the statement ran for it, and was told nobody took its answer"
        );
    }
}
