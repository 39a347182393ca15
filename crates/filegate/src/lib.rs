//! filegate: a workspace file library behind presigned uploads.
//!
//! The layers, from the top down (a module imports only from its own layer or below):
//!
//! - [`cli`] and [`commands`]: the `filegate` binary's commands (`serve`, `migrate`,
//!   `reap`, `reconcile`, `admin`, `doctor`, `openapi`, `healthcheck`, and the client
//!   commands `upload`, `ls`, `rm`, `usage`); `main` parses [`cli::Cli`] and calls
//!   [`commands::run`].
//! - [`http`]: the server, routes, middleware and the one `ApiError`.
//! - [`jobs`]: the background passes (finalizer, reaper, reconciliation).
//! - [`service`]: what filegate does (completion, uploads, keys, the store's trust),
//!   with no knowledge of HTTP.
//! - [`settings`], [`metrics`], [`telemetry`], [`net`], [`causes`]: what every layer
//!   reads.

pub mod causes;
pub mod cli;
pub mod commands;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod service;
pub mod settings;
pub mod telemetry;
