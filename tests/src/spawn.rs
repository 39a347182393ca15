//! Starting the app in-process: a fresh database and bucket, the test settings (adjusted
//! by the caller), the real application on port 0, and a [`TestApp`] with its tenant.

use std::sync::OnceLock;

use filegate::http::server::Application;
use filegate::settings::ServeSettings;
use filegate_domain::Limits;
use filegate_storage::Storage;

use crate::{TestApp, backends, fresh_bucket, fresh_database, proxy, tenant, test_settings};

/// Spawns the app with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

static TRACING: OnceLock<()> = OnceLock::new();

/// Spawns the app talking to the object store through a [`proxy::FaultProxy`] the test
/// can cut, with a 1-second store timeout so a cut shows quickly.
pub async fn spawn_app_behind_store_proxy(
    customize: impl FnOnce(&mut ServeSettings),
) -> (TestApp, proxy::FaultProxy) {
    let upstream = backends()
        .await
        .s3_endpoint
        .trim_start_matches("http://")
        .to_owned();
    let proxy = proxy::FaultProxy::start(&upstream).await;
    let url = proxy.url();
    let app = spawn_app_with(|s| {
        s.storage.s3_endpoint = Some(url);
        s.storage.s3_timeout = std::time::Duration::from_millis(1000);
        customize(s);
    })
    .await;
    (app, proxy)
}

/// Spawns the app after `customize` has adjusted the settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut ServeSettings)) -> TestApp {
    TRACING.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            filegate::telemetry::init(&filegate::settings::LogSettings {
                log_format: filegate::settings::LogFormat::Text,
                log: "info".into(),
            });
        }
    });
    let database_url = fresh_database().await;
    let mut settings = test_settings(&database_url, &fresh_bucket()).await;
    customize(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("build the application");
    let port = app.port();
    let store = app.store_report().cloned();
    tokio::spawn(app.run_until_stopped());
    let pool = filegate_db::connect(&settings.database.pool()).expect("pool");
    // Straight to the store, even when the app goes through a fault proxy.
    let mut direct = settings.storage.storage();
    direct.endpoint = Some(backends().await.s3_endpoint.clone());
    let storage = Storage::new(&direct).await;
    let tenant = tenant::create_tenant(&pool, &Limits::default()).await;
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        database_url,
        pool,
        storage,
        settings,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        tenant,
        store,
    }
}
