//! The `filegate` command line: the server's commands, with their settings from
//! [`crate::settings`], beside the client commands of `filegate-client` (one binary for
//! both, so an operator's image carries the uploader too).

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use crate::settings::{
    AdminArgs, DoctorArgs, LogSettings, MigrateArgs, ReapArgs, ReconcileArgs, ServeSettings,
};

/// A workspace file library behind presigned uploads.
#[derive(Debug, Parser)]
#[command(name = "filegate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogSettings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeSettings>),
    /// Apply the database migrations and exit (a no-op when up to date).
    Migrate(MigrateArgs),
    /// Expire abandoned uploads and delete queued objects (once, or in a loop).
    Reap(Box<ReapArgs>),
    /// List the bucket against the database: delete objects no live file owns (once
    /// they are older than any upload could be) and report ready files whose object is
    /// missing. Exits 1 when objects are missing.
    Reconcile(Box<ReconcileArgs>),
    /// Manage organizations, workspaces and API keys.
    Admin(AdminArgs),
    /// Probe the configured bucket with real requests: which signed headers the store
    /// enforces, whether it keeps checksums and honours copy preconditions, CORS and
    /// download overrides, and what filegate does about each. Exits 1 when something
    /// filegate needs for its guarantees is missing.
    Doctor(Box<DoctorArgs>),
    /// Print the OpenAPI 3.1 document (the one served at /openapi.json).
    Openapi,
    /// Upload files or folders: reserve, PUT with progress, complete; exit 1 if any is not ready.
    Upload(filegate_client::cli::UploadArgs),
    /// List a workspace's files.
    Ls(filegate_client::cli::LsArgs),
    /// Delete files by id.
    Rm(filegate_client::cli::RmArgs),
    /// Show a workspace's quota and usage.
    Usage(filegate_client::cli::UsageArgs),
    /// Exit 0 when the local server answers /healthz (a container HEALTHCHECK without curl).
    Healthcheck {
        /// The server's listen address; an unspecified IP (0.0.0.0) means this host.
        #[arg(long, env = "FILEGATE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
