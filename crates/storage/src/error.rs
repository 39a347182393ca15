use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An object-store failure, classified so the service can answer 503 for what a retry
/// may fix and treat "not there" as a value.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store could not be reached, timed out or failed on its side (5xx).
    #[error("the object store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The bucket or object does not exist.
    #[error("no such bucket or object")]
    NotFound,
    /// A requested byte range lies outside the object.
    #[error("the requested range is outside the object")]
    InvalidRange,
    /// A condition (`If-Match`, `x-amz-copy-source-if-match`) did not hold.
    #[error("the object is not the version the request named")]
    PreconditionFailed,
    /// The store does not implement the operation (e.g. bucket CORS on s3s-fs).
    #[error("the object store does not implement this operation")]
    NotImplemented(#[source] BoxError),
    /// The bucket already exists.
    #[error("the bucket already exists")]
    Conflict(#[source] BoxError),
    /// Anything else: refused credentials, a malformed request, a signing failure.
    #[error("the object store refused the request")]
    Other(#[source] BoxError),
}

impl<E> From<SdkError<E, HttpResponse>> for StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => Self::Unavailable(Box::new(err)),
            SdkError::ServiceError(service) => {
                let status = Some(service.raw().status().as_u16());
                let code = service.err().code().unwrap_or_default();
                match (status, code) {
                    (_, "NoSuchKey" | "NoSuchBucket" | "NotFound") | (Some(404), _) => {
                        Self::NotFound
                    }
                    (_, "InvalidRange") | (Some(416), _) => Self::InvalidRange,
                    (_, "PreconditionFailed") | (Some(412), _) => Self::PreconditionFailed,
                    (_, "NotImplemented") | (Some(501), _) => Self::NotImplemented(Box::new(err)),
                    (_, "BucketAlreadyOwnedByYou" | "BucketAlreadyExists") => {
                        Self::Conflict(Box::new(err))
                    }
                    (Some(s), _) if s >= 500 => Self::Unavailable(Box::new(err)),
                    _ => Self::Other(Box::new(err)),
                }
            }
            _ => Self::Other(Box::new(err)),
        }
    }
}
