//! A request body of known length that reports each chunk as it is sent, so uploads can
//! show progress and still carry an exact `Content-Length` (presigned URLs may pin it).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// `bytes` in 64 KiB chunks; `on_chunk` is called with each chunk's length.
pub struct ProgressBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    on_chunk: Box<dyn Fn(u64) + Send + Sync>,
}

impl std::fmt::Debug for ProgressBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl ProgressBody {
    #[must_use]
    pub fn new(bytes: Bytes, on_chunk: impl Fn(u64) + Send + Sync + 'static) -> Self {
        const CHUNK: usize = 64 << 10;
        let remaining = bytes.len() as u64;
        let chunks = (0..bytes.len())
            .step_by(CHUNK)
            .map(|i| bytes.slice(i..(i + CHUNK).min(bytes.len())))
            .collect();
        Self {
            chunks,
            remaining,
            on_chunk: Box::new(on_chunk),
        }
    }
}

impl Body for ProgressBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(chunk) = self.chunks.pop_front() else {
            return Poll::Ready(None);
        };
        let n = chunk.len() as u64;
        self.remaining -= n;
        (self.on_chunk)(n);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
