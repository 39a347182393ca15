//! Files: reserving a batch, reading, listing, changing and deleting file rows, and
//! the idempotency records of reservations. Everything is reachable here as
//! `files::…`; the submodules only group it:
//!
//! - `reserve`: [`Reservation`], [`reserve()`], [`RESERVE_SQL`], [`live_names`]
//! - `idempotency`: [`IdempotencyRecord`], [`idempotent_response`], and for a replay
//!   [`uploads`] and [`extend_upload_window`]
//! - `ingest`: uploads streaming through filegate: [`ingest_target`], and the lease
//!   of the one upload per file, [`lease_ingest`], [`release_ingest`]
//! - `rows`: [`FileRow`], [`find`], [`get`]
//! - `list`: [`ListQuery`], [`ListShape`], [`list_sql`], [`list()`], [`count_sql`], [`count()`]
//! - `edit`: [`FilePatch`], [`update`], [`delete`]
//! - `parts`: multipart files' signed part digests: [`record_parts`], [`part_digests`],
//!   and which uploads in progress are owned, [`owned_uploads`]
//!
//! Completion's claims and transitions (pending to ready or rejected) are in
//! [`crate::completion`]; the reaper's expiry of abandoned uploads is in
//! [`crate::lifecycle`].

mod edit;
mod idempotency;
mod ingest;
mod list;
mod parts;
mod reserve;
mod rows;

pub use edit::{FilePatch, UpdateOutcome, delete, update};
pub use idempotency::{
    IdempotencyRecord, StoredResponse, Upload, extend_upload_window, idempotent_response, uploads,
};
pub use ingest::{
    DueImport, IngestTarget, Lease, claim_imports, ingest_target, lease_ingest, release_ingest,
};
pub use list::{
    BatchCount, ListPosition, ListQuery, ListShape, batch_counts, count, count_sql, list, list_sql,
};
pub use parts::{owned_uploads, part_digests, record_parts};
pub use reserve::{
    NewFile, NewMultipart, RESERVE_SQL, Reservation, ReservationRows, ReserveOutcome, live_names,
    reserve, reserve_many, reserve_rows,
};
pub(crate) use rows::{FILE_COLUMNS, status};
pub use rows::{FileRow, Multipart, Processing, find, get};
