//! HTTP: the server ([`server`]), the shared state ([`state`]), the middleware (the
//! access log and request ids, authentication and the rate limit), the routes and
//! their table ([`routes`]), the OpenAPI document, and [`error::ApiError`], the one
//! answer every failure becomes. This layer calls the services
//! ([`crate::service`]); nothing below it knows HTTP.

pub mod access_log;
pub mod auth;
pub mod error;
pub mod openapi;
pub mod ratelimit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
