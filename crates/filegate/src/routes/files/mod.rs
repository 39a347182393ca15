//! `/v2/files…`: one module per operation.

pub mod create;
