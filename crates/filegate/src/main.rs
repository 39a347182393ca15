use std::process::ExitCode;

use clap::Parser;
use filegate::settings::{Cli, Command};
use filegate::startup::Application;
use filegate::{admin, reaper, reconcile, telemetry};

use filegate::error::BoxError;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    run(cli.command).await.unwrap_or_else(|e| {
        let message = filegate::error::chain(e.as_ref());
        tracing::debug!(error = message, "filegate failed");
        #[allow(clippy::print_stderr)]
        {
            eprintln!("error: {message}");
        }
        ExitCode::FAILURE
    })
}

/// One `GET /healthz` over a plain socket, with a 2-second budget.
fn healthcheck(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
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

async fn run(command: Command) -> Result<ExitCode, BoxError> {
    match command {
        // The client commands decide their own exit status (1 when a file failed).
        Command::Upload(args) => return filegate_client::cli::upload(args).await,
        Command::Ls(args) => return filegate_client::cli::ls(args).await,
        Command::Rm(args) => return filegate_client::cli::rm(args).await,
        Command::Usage(args) => return filegate_client::cli::usage(args).await,
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate(args) => {
            let applied = filegate_db::migrate_with_ca(
                secrecy::ExposeSecret::expose_secret(&args.database.database_url),
                args.database.database_ca_file.as_deref(),
            )
            .await?;
            tracing::info!(?applied, "migrations up to date");
        }
        Command::Admin(args) => admin::run(args).await?,
        Command::Healthcheck { listen } => healthcheck(listen)?,
        Command::Openapi => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", filegate::openapi::document());
            }
        }
        Command::Reap(args) => {
            let pool = filegate_db::connect(&args.database.pool())?;
            let storage = filegate_storage::Storage::new(&args.storage.storage())
                .await
                .with_observer(std::sync::Arc::new(filegate::metrics::observe_store_call));
            if args.once {
                let report = reaper::run_once(&pool, &storage, &args.reaper).await?;
                #[allow(clippy::print_stdout)]
                {
                    println!("{}", serde_json::to_string(&report)?);
                }
            } else {
                reaper::run_forever(pool, storage, args.reaper).await;
            }
        }
        Command::Reconcile(args) => return run_reconcile(&args).await,
        Command::Doctor(args) => return filegate::doctor::run(&args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `filegate reconcile`: one pass, a report, exit 1 when ready files lack their object.
async fn run_reconcile(args: &filegate::settings::ReconcileArgs) -> Result<ExitCode, BoxError> {
    let pool = filegate_db::connect(&args.database.pool())?;
    let storage = filegate_storage::Storage::new(&args.storage.storage())
        .await
        .with_observer(std::sync::Arc::new(filegate::metrics::observe_store_call));
    let pass = reconcile::run_once(
        &pool,
        &storage,
        std::time::Duration::from_secs(args.storage.presign_ttl_secs),
        args.reaper.upload_margin(),
        args.dry_run,
    );
    let Some(report) = filegate_db::reconcile::exclusively(&pool, pass).await? else {
        return Err("another reconciliation is running; try again when it has finished".into());
    };
    let report = report?;
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
