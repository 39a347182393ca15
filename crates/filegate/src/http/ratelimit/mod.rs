//! Token-bucket rate limiting in front of every `/v2` route.
//!
//! Requests are keyed by API key once authenticated, and by client IP when they fail or
//! lack authentication, so key guessing is throttled too. Buckets live in one of two
//! stores: `local` (in-process; each replica limits on its own) or `postgres` (one row
//! per bucket, one atomic statement per check; every replica shares one limit).

pub mod bucket;
pub mod headers;
pub mod ip;
pub mod limiter;
pub mod local;
pub mod middleware;
pub mod scopes;
