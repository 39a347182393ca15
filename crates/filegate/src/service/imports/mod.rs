//! Imports: a file reserved with a `remote_uri` is fetched by filegate and streamed
//! into its upload key through the same ingest as every upload through filegate
//! (counted, hashed and cut off at the file's limit as it arrives), then completed. The
//! file is `pending` (`processing`) until then, and ends ready, or rejected with the
//! reason (the fetch failed, the source answered an error, sent too much or too
//! slowly, or redirected where imports may not go).
//!
//! Every fetch goes through the SSRF guard ([`guard`]): the URI is checked before
//! anything is reserved (its name resolved, every address public), and again at
//! connection time by the client's resolver, which connects only to the addresses it
//! checked; every redirect is checked the same way (at most [`MAX_REDIRECTS`]). No
//! proxy, no cookies, no credentials; the whole fetch is bounded in time, the body in
//! bytes and rate by the ingest, the response head by the HTTP client's limits.
//!
//! Imports are claimed from the database by any replica (new ones at once, by the
//! replica that reserved them; ones whose replica died, once their lease lapsed), at
//! most [`MAX_ATTEMPTS`] times each.

pub mod guard;

use std::sync::Arc;
use std::time::Duration;

use filegate_db::Pool;
use filegate_db::files::DueImport;
use uuid::Uuid;

use self::guard::{GuardedResolver, Policy, Refusal};
use crate::metrics::Trigger;
use crate::service::completion::{Completer, Outcome};
use crate::service::ingest::{Ingest, IngestError, OnFailure};

/// Redirects an import follows at most.
pub const MAX_REDIRECTS: usize = 5;
/// Times an import is tried before its file is rejected.
pub const MAX_ATTEMPTS: i32 = 3;
/// How long a claim on an import lasts before the ingest's own lease takes over (an
/// import whose replica dies is taken up again after this).
const CLAIM: Duration = Duration::from_secs(30);

/// What bounds imports.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    pub policy: Policy,
    /// The longest a fetch may take, body included.
    pub timeout: Duration,
}

impl ImportSettings {
    /// The import settings of `serve`'s ingest arguments.
    #[must_use]
    pub fn of(args: &crate::settings::IngestArgs) -> Self {
        Self {
            policy: Policy {
                allowed: args.import_allowed_hosts.clone(),
            },
            timeout: args.import_timeout,
        }
    }
}

/// Runs imports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Imports {
    pool: Pool,
    ingest: Ingest,
    completer: Arc<Completer>,
    policy: Arc<Policy>,
    client: reqwest::Client,
    timeout: Duration,
}

/// What one pass over due imports did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub claimed: u64,
    pub ready: u64,
    pub failed: u64,
    /// Left for a later attempt (the store or the database failed, or the server was busy).
    pub retried: u64,
}

impl Imports {
    /// Imports streaming through `ingest`, fetched by a client bound to `settings`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (its TLS roots).
    pub fn new(
        pool: Pool,
        ingest: Ingest,
        completer: Arc<Completer>,
        settings: ImportSettings,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(settings.policy);
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(Refusal(format!(
                        "the URI redirected more than {MAX_REDIRECTS} times"
                    )));
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(_) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("filegate-import/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            pool,
            ingest,
            completer,
            policy,
            client,
            timeout: settings.timeout,
        })
    }

    /// Checks an import URI before its file is reserved: the URL rules, and for a name,
    /// every address it resolves to.
    ///
    /// # Errors
    /// The [`Refusal`] saying why it may not be imported.
    pub async fn check(&self, raw: &str) -> Result<reqwest::Url, Refusal> {
        self.policy.check(raw, "remote_uri").await
    }

    /// Runs the imports nobody runs now (as many as the ingest has room for), each to
    /// its end.
    ///
    /// # Errors
    /// When the database cannot be asked for them.
    pub async fn run_due(&self) -> Result<ImportReport, filegate_db::DbError> {
        let room = i64::try_from(self.ingest.room()).unwrap_or(0);
        if room == 0 {
            return Ok(ImportReport::default());
        }
        let token = Uuid::new_v4();
        let due = filegate_db::files::claim_imports(&self.pool, token, CLAIM, room).await?;
        let mut report = ImportReport {
            claimed: due.len() as u64,
            ..ImportReport::default()
        };
        let ran = futures_util::future::join_all(due.into_iter().map(|d| self.run(d, token))).await;
        for outcome in ran {
            match outcome {
                Ran::Ready => report.ready += 1,
                Ran::Failed => report.failed += 1,
                Ran::Retried => report.retried += 1,
            }
        }
        Ok(report)
    }

    /// Starts a pass over due imports on a task of its own (after a reservation of
    /// some: they start at once rather than at the worker's next pass).
    pub fn kick(&self) {
        let imports = self.clone();
        tokio::spawn(async move {
            if let Err(e) = imports.run_due().await {
                tracing::warn!(error = %e, "could not claim imports; the import worker retries");
            }
        });
    }

    /// One import to its end.
    async fn run(&self, due: DueImport, token: Uuid) -> Ran {
        let id = due.target.id;
        if due.attempts > MAX_ATTEMPTS {
            return self
                .fail(
                    id,
                    token,
                    format!("the import was tried {MAX_ATTEMPTS} times and did not finish"),
                )
                .await;
        }
        let fetched = match reqwest::Url::parse(&due.remote_uri) {
            Ok(url) => self.client.get(url).timeout(self.timeout).send().await,
            Err(e) => {
                return self
                    .fail(id, token, format!("remote_uri is not a URL: {e}"))
                    .await;
            }
        };
        let response = match fetched {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                return self
                    .fail(id, token, format!("the remote URI answered {}", r.status()))
                    .await;
            }
            Err(e) => return self.fail(id, token, fetch_failure(&e)).await,
        };
        let declared = response.content_length();
        match self
            .ingest
            .ingest(
                &due.target,
                declared,
                response.bytes_stream(),
                token,
                Trigger::Import,
                OnFailure::Reject,
            )
            .await
        {
            Ok(Outcome::Ready(_)) => Ran::Ready,
            Ok(_) => Ran::Failed,
            Err(
                e @ (IngestError::Busy
                | IngestError::Store(_)
                | IngestError::Database(_)
                | IngestError::Completion(_)),
            ) => {
                tracing::warn!(error = %e, file = %id, "an import stopped; it is tried again");
                if let Err(e) = filegate_db::files::release_ingest(&self.pool, id, token).await {
                    tracing::warn!(error = %e, file = %id, "could not release an import's claim; it lapses");
                }
                Ran::Retried
            }
            Err(_) => Ran::Failed,
        }
    }

    /// Rejects the import's file for `reason`, once its claim (`token`'s lease) is given
    /// back: a rejection is a completion, which waits for no lease it holds itself.
    async fn fail(&self, id: Uuid, token: Uuid, reason: String) -> Ran {
        if let Err(e) = filegate_db::files::release_ingest(&self.pool, id, token).await {
            tracing::warn!(error = %e, file = %id, "could not release an import's claim; it lapses");
        }
        match self.completer.fail(id, reason, Trigger::Import).await {
            Ok(_) => Ran::Failed,
            Err(e) => {
                tracing::warn!(error = %e, file = %id, "could not reject a failed import; it is tried again");
                Ran::Retried
            }
        }
    }
}

/// How one import ended.
enum Ran {
    Ready,
    Failed,
    Retried,
}

/// The sentence for a fetch that failed: the guard's refusal when it was one.
fn fetch_failure(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refusal) = err.downcast_ref::<Refusal>() {
            return refusal.0.clone();
        }
        source = err.source();
    }
    if e.is_timeout() {
        return "fetching the remote URI timed out".to_owned();
    }
    if e.is_connect() {
        return "the remote URI could not be reached".to_owned();
    }
    format!("fetching the remote URI failed: {e}")
}
