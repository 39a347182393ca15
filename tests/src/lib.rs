//! The filegate test harness.
//!
//! [`spawn_app`] starts the real application on port 0 against real Postgres (a fresh
//! database cloned from a migrated template) and a real S3 server (a fresh bucket),
//! and returns a [`TestApp`] with a tenant (organization, workspace, key) ready to use.
//!
//! Backends come from the environment `scripts/test` sets (`FILEGATE_TEST_*`), or, with
//! `FILEGATE_TEST_BACKEND=containers`, from Postgres and S3 (MinIO or Garage)
//! containers started with testcontainers (see [`containers`]).
//!
//! One module a concern, everything re-exported here:
//!
//! | module | what lives there |
//! |---|---|
//! | `backends` | [`Backends`]: where Postgres and the S3 server are |
//! | `database` | the migrated template, [`fresh_database`], [`connect`] |
//! | `storage` | [`fresh_bucket`] and the plain S3 client |
//! | `settings` | [`test_settings`], [`reaper_settings`], [`webhook_settings`], [`EVENTS_SECRET`] |
//! | `spawn` | [`spawn_app`], [`spawn_app_with`], [`spawn_app_behind_store_proxy`] |
//! | `app` | [`TestApp`] and all its methods (requests, uploads, rows, objects, commands) |
//! | `tenant` | [`Tenant`]: organization, workspace and key creation |
//! | `http` | [`Answer`]: a response read whole, and the error-envelope check; [`Form`]: multipart bodies |
//! | `upload` | [`upload_key`], [`sha256_b64`], [`upload_round_trip`] |
//! | `process` | [`filegate_bin`], [`free_port`], [`sigterm`], [`wait_healthy`] |
//! | [`containers`], [`proxy`], [`raw`], [`receiver`], [`samples`], [`video`] | the containers backend and [`containers::FilegateStack`], the fault proxy, raw HTTP/1.1 for hostile bodies, a webhook receiver, sample files, real videos made by ffmpeg |

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod containers;
pub mod liar;
pub mod proxy;
pub mod raw;
pub mod receiver;
pub mod samples;
pub mod video;

mod app;
mod backends;
mod database;
mod http;
mod process;
mod settings;
mod spawn;
mod storage;
mod tenant;
mod upload;

pub use app::TestApp;
pub use backends::{Backends, backends};
pub use database::{connect, database_url, fresh_database};
pub use http::{Answer, Form, metric_sample};
pub use process::{filegate_bin, free_port, sigterm, wait_healthy};
pub use settings::{
    EVENTS_SECRET, processing_settings, reaper_settings, test_settings, webhook_settings,
};
pub use spawn::{spawn_app, spawn_app_behind_store_proxy, spawn_app_with};
pub use storage::fresh_bucket;
pub use tenant::Tenant;
pub use upload::{sha256_b64, upload_key, upload_round_trip};
