//! Building and running the HTTP application: a thin `main` calls
//! [`Application::build`], and tests do the same on port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use filegate_storage::Storage;
use secrecy::ExposeSecret;

use crate::http::error::ApiError;
use crate::http::ratelimit::limiter::Limiter;
use crate::http::ratelimit::local::LocalStore;
use crate::http::ratelimit::scopes::Scopes;
use crate::http::state::AppState;
use crate::http::{access_log, routes};
use crate::jobs::{self, Finalizer, Reaper, Reconciler};
use crate::service::completion::{Completer, PgLedger};
use crate::service::group_commit::{GroupCommit, Reservations};
use crate::service::imports::Imports;
use crate::service::ingest::Ingest;
use crate::service::keys::KeyCache;
use crate::service::processing::Processing;
use crate::service::trust::{self, UnenforcingStore};
use crate::service::uploads::Uploads;
use crate::settings::{RateLimitStore, ServeSettings};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not apply migrations")]
    Migrate(#[from] filegate_db::MigrateError),
    #[error("could not set up the database pool")]
    Database(#[from] filegate_db::DbError),
    #[error("could not prepare the bucket")]
    Storage(#[from] filegate_storage::StorageError),
    #[error("could not bind the listen address")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    UnenforcingStore(#[from] UnenforcingStore),
    #[error("could not build the import client")]
    Imports(#[from] reqwest::Error),
    #[error("could not start a processor: {0}")]
    Processing(String),
}

/// A bound, ready-to-run server.
#[allow(missing_debug_implementations)]
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own address, with that address's port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Migrates (when configured), prepares the bucket (when configured), binds the
    /// listener and builds the server. Postgres may be down: requests then get 503.
    ///
    /// # Errors
    /// [`StartupError`] when a configured start-up step fails or the address is taken.
    pub async fn build(settings: ServeSettings) -> Result<Self, StartupError> {
        if settings.http.migrate_on_start {
            let applied = filegate_db::migrate_with_ca(
                settings.database.database_url.expose_secret(),
                settings.database.database_ca_file.as_deref(),
            )
            .await?;
            tracing::info!(?applied, "migrations applied");
        }
        let pool = filegate_db::connect(&settings.database.pool())?;
        let storage = Storage::new(&settings.storage.storage())
            .await
            .with_observer(Arc::new(crate::metrics::observe_store_call));
        if settings.storage.s3_create_bucket && storage.ensure_bucket().await? {
            tracing::info!(bucket = storage.bucket(), "bucket created");
        }
        if (settings.storage.s3_create_bucket || settings.storage.s3_apply_cors)
            && !settings.http.cors_origins.is_empty()
        {
            match storage.apply_cors(&settings.http.cors_origins).await {
                Ok(()) => {
                    tracing::info!(origins = ?settings.http.cors_origins, "bucket CORS applied");
                }
                // Browsers on those origins cannot upload; API clients are unaffected.
                Err(filegate_storage::StorageError::NotImplemented(_)) => tracing::warn!(
                    origins = ?settings.http.cors_origins,
                    "the object store does not implement bucket CORS: browsers on these origins cannot upload"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        // The probe and the tool checks on the heap: the store SDK's calls are deep, and
        // inline they would deepen this function's own frames too.
        let (store_report, store_trust) = Box::pin(trust::at_start(
            &storage,
            &settings.storage,
            &settings.http.cors_origins,
        ))
        .await?;
        let listener = TcpListener::bind(settings.http.listen)?;
        let port = listener.local_addr()?.port();
        let limiter = match settings.rate_limit.rate_limit_store {
            RateLimitStore::Off => Limiter::Off,
            RateLimitStore::Local => {
                Limiter::Local(LocalStore::new(settings.rate_limit.rate_limit_max_buckets))
            }
            RateLimitStore::Postgres => Limiter::Postgres(pool.clone()),
        };
        let completer = Arc::new(Completer::new(
            storage.clone(),
            PgLedger::new(
                pool.clone(),
                settings.reaper.upload_margin,
                settings.reaper.completion_group_max,
            ),
            store_trust,
            settings.storage.s3_timeout,
        ));
        let ingest = Ingest::new(
            pool.clone(),
            storage.clone(),
            crate::service::ingest::IngestSettings::of(
                &settings.ingest,
                settings.reaper.upload_margin,
            ),
            completer.clone(),
        );
        let imports = Imports::new(
            pool.clone(),
            ingest.clone(),
            completer.clone(),
            crate::service::imports::ImportSettings::of(&settings.ingest),
        )?;
        let webhooks = crate::service::webhooks::Webhooks::new(
            pool.clone(),
            crate::service::imports::guard::Policy {
                allowed: settings.ingest.import_allowed_hosts.clone(),
            },
            &settings.webhooks,
        )?;
        let processing = Box::pin(Processing::start(
            pool.clone(),
            storage.clone(),
            &settings.processing,
        ))
        .await
        .map_err(StartupError::Processing)?;
        let state = web::Data::new(AppState {
            webhooks,
            processing,
            completer,
            uploads: Uploads::new(storage.clone(), settings.storage.presign_ttl),
            reservations: GroupCommit::new(
                Reservations { pool: pool.clone() },
                settings.reaper.reservation_group_max,
            ),
            ingest,
            imports,
            pool,
            storage,
            keys: KeyCache::new(settings.http.auth_cache_ttl),
            limiter,
            rate_scopes: Scopes::new(settings.rate_limit.rate_scope_ttl),
            settings: Arc::new(settings.clone()),
            store_report,
        });
        let max_body = settings.http.max_body_bytes;
        let upload_page = settings.http.upload_page;
        let metrics_apart = settings.http.metrics_listen;
        let metrics = match metrics_apart {
            Some(addr) => {
                let listener = TcpListener::bind(addr)?;
                let port = listener.local_addr()?.port();
                let metrics_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(metrics_state.clone())
                        .service(routes::metrics_resource())
                        .default_service(web::to(routes::not_found))
                        .wrap(from_fn(access_log::middleware))
                })
                .listen(listener)?
                .workers(1)
                .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
                tracing::info!(port, "metrics listening");
                Some((port, server.run()))
            }
            None => None,
        };
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(|err, _| ApiError::from(err).into()),
                )
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    ApiError::invalid_request(format!("invalid query: {err}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    ApiError::invalid_request(format!("invalid path: {err}")).into()
                }))
                .configure(|cfg| {
                    routes::configure(cfg, upload_page, max_body, metrics_apart.is_none());
                })
                .default_service(web::to(routes::not_found))
                .wrap(from_fn(access_log::middleware))
        })
        .listen(listener)?
        .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
        if let Some(workers) = settings.http.workers {
            server = server.workers(workers);
        }
        tracing::info!(port, "filegate listening");
        Ok(Self {
            port,
            server: server.run(),
            metrics,
            state,
        })
    }

    /// What the start-up probe found the store to do (`None` when it is off).
    #[must_use]
    pub fn store_report(&self) -> Option<&filegate_storage::probe::Report> {
        self.state.store_report.as_ref()
    }

    /// The bound port (useful with port 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when it has a listener of its own.
    #[must_use]
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish
    /// (up to `--shutdown-timeout-secs`). The background work (reaper, finalizer,
    /// reconciliation) runs meanwhile, as configured.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state;
        let settings = &state.settings;
        let b = &settings.reaper;
        let mut background = Vec::new();
        if !b.reaper_interval.is_zero() {
            let reaper = Reaper::new(state.pool.clone(), state.storage.clone(), b.clone());
            background.push(tokio::spawn(jobs::run_forever(
                reaper,
                Duration::ZERO,
                b.reaper_interval,
            )));
        }
        if !b.finalizer_interval.is_zero() {
            let finalizer = Finalizer::new(
                state.pool.clone(),
                state.completer.clone(),
                state.storage.clone(),
                b,
            );
            background.push(tokio::spawn(jobs::run_forever(
                finalizer,
                Duration::ZERO,
                b.finalizer_interval,
            )));
        }
        if !settings.ingest.import_interval.is_zero() {
            background.push(tokio::spawn(jobs::run_forever(
                jobs::Importer::new(state.imports.clone()),
                settings.ingest.import_interval,
                settings.ingest.import_interval,
            )));
        }
        if !b.reconcile_interval.is_zero() {
            let reconciler = Reconciler::new(
                state.pool.clone(),
                state.storage.clone(),
                settings.storage.presign_ttl,
                b.upload_margin,
                false,
            );
            // The first pass comes one interval after start.
            background.push(tokio::spawn(jobs::run_forever(
                reconciler,
                b.reconcile_interval,
                b.reconcile_interval,
            )));
        }
        if !settings.webhooks.webhook_poll.is_zero() {
            background.push(tokio::spawn(jobs::deliveries::run(state.webhooks.clone())));
        }
        let processing = state
            .processing
            .runs_worker()
            .then(|| tokio::spawn(state.processing.clone().run()));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        for task in background {
            task.abort();
        }
        if let Some(task) = processing {
            // Its runs stop (their tools killed) before their jobs go back to the queue.
            task.abort();
            let _ = task.await;
            state.processing.release().await;
        }
        result
    }
}
