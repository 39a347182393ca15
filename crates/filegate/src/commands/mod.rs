//! The operator commands of the `filegate` binary, each run once and exits: `serve`
//! (until stopped), `migrate`, `reap`, `reconcile`, `admin`, `doctor`, `openapi`,
//! `healthcheck`, and the client commands (`upload`, `ls`, `rm`, `usage`) of
//! `filegate-client`.

pub mod admin;
pub mod doctor;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use filegate_storage::Storage;

use crate::cli::Command;
use crate::http::server::Application;
use crate::jobs::{self, Job as _, Reaper, Reconciler};
use crate::settings::{ReconcileArgs, StorageArgs};

/// Runs one command; its exit status.
///
/// # Errors
/// Why the command failed (printed with its causes by `main`).
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        // The client commands decide their own exit status (1 when a file failed).
        Command::Upload(args) => filegate_client::cli::upload(args)
            .await
            .map_err(anyhow::Error::from_boxed),
        Command::Ls(args) => filegate_client::cli::ls(args)
            .await
            .map_err(anyhow::Error::from_boxed),
        Command::Rm(args) => filegate_client::cli::rm(args)
            .await
            .map_err(anyhow::Error::from_boxed),
        Command::Usage(args) => filegate_client::cli::usage(args)
            .await
            .map_err(anyhow::Error::from_boxed),
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            app.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            let applied = filegate_db::migrate_with_ca(
                secrecy::ExposeSecret::expose_secret(&args.database.database_url),
                args.database.database_ca_file.as_deref(),
            )
            .await?;
            tracing::info!(?applied, "migrations up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(args) => {
            admin::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { listen } => {
            healthcheck(listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", crate::http::openapi::document());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reap(args) => {
            let pool = filegate_db::connect(&args.database.pool())?;
            let reaper = Reaper::new(pool, storage(&args.storage).await, args.reaper.clone());
            if args.once {
                let report = reaper.run_once().await?;
                #[allow(clippy::print_stdout)]
                {
                    println!("{}", serde_json::to_string(&report)?);
                }
            } else {
                let every = args.reaper.reaper_interval;
                jobs::run_forever(reaper, std::time::Duration::ZERO, every).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile(args) => reconcile(&args).await,
        Command::Doctor(args) => doctor::run(&args).await,
    }
}

/// The store client of a command, its calls counted in the metrics.
async fn storage(args: &StorageArgs) -> Storage {
    Storage::new(&args.storage())
        .await
        .with_observer(Arc::new(crate::metrics::observe_store_call))
}

/// How long `healthcheck` waits for the connection and the answer.
const HEALTHCHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// One `GET /healthz` over a plain socket.
fn healthcheck(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut stream = std::net::TcpStream::connect_timeout(&addr, HEALTHCHECK_BUDGET)?;
    stream.set_read_timeout(Some(HEALTHCHECK_BUDGET))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.") && &head[9..12] == b"200",
        "unhealthy: {}",
        String::from_utf8_lossy(&head)
    );
    Ok(())
}

/// `filegate reconcile`: one pass, a report, exit 1 when ready files lack their object.
async fn reconcile(args: &ReconcileArgs) -> anyhow::Result<ExitCode> {
    let pool = filegate_db::connect(&args.database.pool())?;
    let reconciler = Reconciler::new(
        pool,
        storage(&args.storage).await,
        args.storage.presign_ttl,
        args.reaper.upload_margin,
        args.dry_run,
    );
    let report = reconciler
        .run_once()
        .await?
        .context("another reconciliation is running; try again when it has finished")?;
    #[allow(clippy::print_stdout)]
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let verb = if report.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        println!(
            "listed {} objects ({} not filegate's)\norphans: {} found, {} old enough, {} {verb}{}\nready files missing their object: {}",
            report.objects_listed,
            report.foreign_objects,
            report.orphans_found,
            report.orphans_due,
            if report.dry_run {
                report.orphans_due
            } else {
                report.orphans_deleted
            },
            if report.deletion_failures > 0 {
                format!(", {} deletions failed", report.deletion_failures)
            } else {
                String::new()
            },
            report.missing_objects,
        );
        for m in &report.missing {
            println!("  missing: file {} ({})", m.file_uuid, m.remote_file_path);
        }
    }
    Ok(if report.missing_objects > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
