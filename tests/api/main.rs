//! End-to-end suites: the real app against real Postgres and a real S3 server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod batch_complete;
mod cli;
mod client_cli;
mod complete;
mod containers;
mod create;
mod errors;
mod grouping;
mod health;
mod hostile_store;
mod imports;
mod ingest;
mod integrity;
mod library;
mod migrations;
mod multipart;
mod observability;
mod processing;
mod ratelimit;
mod studio;
mod types;
mod uploads;
mod webhooks;
