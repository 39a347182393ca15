//! The object-store calls completion makes, as a trait: [`filegate_storage::Storage`]
//! implements it against a real bucket, and the unit tests of completion implement it
//! in memory, so that every branch of completion can be driven without a store.

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

    /// Copies `from` to `to` while `from` is the version `if_match`.
    ///
    /// # Errors
    /// [`StorageError`] when the store is unreachable or refuses.
    fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
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
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        Storage::head(self, key).await
    }

    async fn read_prefix(
        &self,
        key: &str,
        len: usize,
    ) -> Result<Option<ObjectBytes>, StorageError> {
        Storage::read_prefix(self, key, len).await
    }

    async fn digests(
        &self,
        key: &str,
        if_match: Option<&str>,
        slice_len: Option<u64>,
        prefix_len: usize,
    ) -> Result<Option<Digests>, StorageError> {
        Storage::digests(self, key, if_match, slice_len, prefix_len).await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: &str,
    ) -> Result<CopyOutcome, StorageError> {
        Storage::copy(self, from, to, if_match).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        Storage::delete(self, key).await
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<StoredPart>>, StorageError> {
        Storage::list_parts(self, key, upload_id).await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<Assembled, StorageError> {
        Storage::complete_multipart(self, key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        Storage::abort_multipart(self, key, upload_id).await
    }
}
