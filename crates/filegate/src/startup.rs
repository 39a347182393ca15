//! Building and running the HTTP application: a thin `main` calls
//! [`Application::build`], and tests do the same on port 0.

use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use filegate_storage::Storage;

use crate::auth::KeyCache;
use crate::error::ApiError;
use crate::ratelimit::{Limiter, LocalStore};
use crate::settings::{RateLimitStore, ServeSettings};
use crate::state::AppState;
use crate::{request_id, routes};

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
    UnenforcingStore(#[from] crate::doctor::UnenforcingStore),
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
        let (store_report, store_trust) = crate::doctor::at_start(&storage, &settings).await?;
        let listener = TcpListener::bind(settings.http.listen)?;
        let port = listener.local_addr()?.port();
        let limiter = match settings.rate_limit.rate_limit_store {
            RateLimitStore::Off => Limiter::Off,
            RateLimitStore::Local => {
                Limiter::Local(LocalStore::new(settings.rate_limit.rate_limit_max_buckets))
            }
            RateLimitStore::Postgres => Limiter::Postgres(pool.clone()),
        };
        let group_commit = crate::group_commit::GroupCommit::new(
            pool.clone(),
            settings.reaper.upload_margin(),
            settings.reaper.completion_group_max,
        );
        let state = web::Data::new(AppState {
            group_commit,
            pool,
            storage,
            keys: KeyCache::new(Duration::from_secs(settings.http.auth_cache_ttl_secs)),
            limiter,
            rate_scopes: crate::ratelimit::Scopes::new(Duration::from_secs(
                settings.http.auth_cache_ttl_secs,
            )),
            settings: Arc::new(settings.clone()),
            store_report,
            store_trust,
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
                        .wrap(from_fn(request_id::middleware))
                })
                .listen(listener)?
                .workers(1)
                .shutdown_timeout(settings.http.shutdown_timeout_secs);
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
                .wrap(from_fn(request_id::middleware))
        })
        .listen(listener)?
        .shutdown_timeout(settings.http.shutdown_timeout_secs);
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
        if b.reaper_interval_secs > 0 {
            background.push(tokio::spawn(crate::reaper::run_forever(
                state.pool.clone(),
                state.storage.clone(),
                b.clone(),
            )));
        }
        if b.finalizer_interval_secs > 0 {
            background.push(tokio::spawn(crate::finalizer::run_forever(state.clone())));
        }
        if b.reconcile_interval_secs > 0 {
            background.push(tokio::spawn(crate::reconcile::run_forever(
                state.pool.clone(),
                state.storage.clone(),
                Duration::from_secs(b.reconcile_interval_secs),
                Duration::from_secs(settings.storage.presign_ttl_secs),
                b.upload_margin(),
            )));
        }
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
        result
    }
}
