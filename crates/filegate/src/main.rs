use std::process::ExitCode;

use clap::Parser;
use filegate::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    filegate::telemetry::init(&cli.log);
    filegate::commands::run(cli.command)
        .await
        .unwrap_or_else(|e| {
            let message = format!("{e:#}");
            tracing::debug!(error = message, "filegate failed");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        })
}
