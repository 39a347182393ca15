//! filegate: a workspace file library behind presigned uploads.
//!
//! `main` parses [`settings::Cli`] and calls into [`startup::Application`] (serve),
//! [`filegate_db::migrate`] (migrate) or [`admin`] (the admin CLI).

pub mod admin;
pub mod auth;
pub mod completion;
pub mod doctor;
pub mod error;
pub mod finalizer;
pub mod group_commit;
pub mod metrics;
pub mod multipart;
pub mod openapi;
pub mod ratelimit;
pub mod reaper;
pub mod reconcile;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
