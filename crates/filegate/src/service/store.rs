//! The object-store calls completion makes, as a trait: [`filegate_storage::Storage`]
//! implements it against a real bucket, and the unit tests of completion implement it
//! in memory, so that every branch of completion can be driven without a store.
//!
//! The store's calls are boxed: an SDK call's future is some 16 KiB in a debug build,
//! and inlined into completion's state machine at every level it would be moved
//! across the stack of the worker polling it (a debug build overflowed a worker's
//! stack on a pending file's `GET`). One allocation per store call costs nothing next
//! to the request.

use filegate_storage::{
    Assembled, CopyOutcome, Digests, ObjectBytes, ObjectInfo, Storage, StorageError, StoredPart,
};

/// What completion asks of the store. Each call is one request (or, for
/// [`ObjectStore::digests`], one streamed read), bounded by the store's timeout.
pub trait ObjectStore: Send + Sync {
    /// `HeadObject`; `None` when there is no such object.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StorageError>> + Send;

    /// The first `len` bytes (a ranged read), with the ETag of the version read.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn read_prefix(
        &self,
        key: &str,
        len: usize,
    ) -> impl Future<Output = Result<Option<ObjectBytes>, StorageError>> + Send;

    /// The whole object (only while it is the version `if_match`) through SHA-256,
    /// whole and in slices of `slice_len`, keeping its first `prefix_len` bytes.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or the stream breaks.
    fn digests(
        &self,
        key: &str,
        if_match: Option<&str>,
        slice_len: Option<u64>,
        prefix_len: usize,
    ) -> impl Future<Output = Result<Option<Digests>, StorageError>> + Send;

    /// Copies `from` to `to` while `from` is the version `if_match` (of `size` bytes).
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
        size: i64,
    ) -> impl Future<Output = Result<CopyOutcome, StorageError>> + Send;

    /// Deletes an object (one that does not exist is deleted).
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The parts a multipart upload holds; `None` when the upload is gone.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<StoredPart>>, StorageError>> + Send;

    /// Assembles a multipart upload from `parts`.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses otherwise.
    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> impl Future<Output = Result<Assembled, StorageError>> + Send;

    /// Aborts a multipart upload (one that does not exist is aborted).
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn abort_multipart(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

impl ObjectStore for Storage {
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StorageError>> + Send {
        Box::pin(Storage::head(self, key))
    }

    fn read_prefix(
        &self,
        key: &str,
        len: usize,
    ) -> impl Future<Output = Result<Option<ObjectBytes>, StorageError>> + Send {
        Box::pin(Storage::read_prefix(self, key, len))
    }

    fn digests(
        &self,
        key: &str,
        if_match: Option<&str>,
        slice_len: Option<u64>,
        prefix_len: usize,
    ) -> impl Future<Output = Result<Option<Digests>, StorageError>> + Send {
        Box::pin(Storage::digests(self, key, if_match, slice_len, prefix_len))
    }

    fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
        size: i64,
    ) -> impl Future<Output = Result<CopyOutcome, StorageError>> + Send {
        Box::pin(Storage::copy(self, from, to, if_match, size))
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StorageError>> + Send {
        Box::pin(Storage::delete(self, key))
    }

    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<StoredPart>>, StorageError>> + Send {
        Box::pin(Storage::list_parts(self, key, upload_id))
    }

    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> impl Future<Output = Result<Assembled, StorageError>> + Send {
        Box::pin(Storage::complete_multipart(self, key, upload_id, parts))
    }

    fn abort_multipart(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        Box::pin(Storage::abort_multipart(self, key, upload_id))
    }
}
