use std::process::ExitCode;

use clap::Parser;
use filegate::settings::{Cli, Command};
use filegate::startup::Application;
use filegate::{admin, reaper, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "filegate failed");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate(args) => {
            let applied = filegate_db::migrate(&args.database.database_url).await?;
            tracing::info!(?applied, "migrations up to date");
        }
        Command::Admin(args) => admin::run(args).await?,
        Command::Reap(args) => {
            let pool = filegate_db::connect(&args.database.pool())?;
            let storage = filegate_storage::Storage::new(&args.storage.storage()).await;
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
    }
    Ok(())
}
