//! A response body that holds something (a permit, a guard) for as long as
//! the response is in flight: until hyper drops it, once the stream is
//! finished or reset.

use std::pin::Pin;
use std::task::{Context, Poll};

/// `body`, holding `held` until it is dropped.
pub struct Holding<B, G> {
    body: B,
    _held: G,
}

impl<B, G> Holding<B, G> {
    pub fn new(body: B, held: G) -> Self {
        Holding { body, _held: held }
    }
}

impl<B: http_body::Body + Unpin, G: Unpin> http_body::Body for Holding<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
