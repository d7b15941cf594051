//! Admission: a call is counted only once its request message has arrived, so
//! a client that sends headers and then stalls holds nothing but its own
//! stream, and is ended with DEADLINE_EXCEEDED after the read timeout. Then
//! the call must fit under the server-wide limit and its caller's fair share
//! ([`Quotas`]); past either it is refused at once with RESOURCE_EXHAUSTED.
//!
//! Every method but reflection takes one request message, so its body is read
//! whole here (bounded in size and time) before the handler runs. A call holds
//! its place until its response is sent: a response the client does not read
//! is still work in progress. Health checks are read but never refused: they
//! must answer when the server is saturated. Streams that need no token
//! (health Watch, reflection) have a cap of their own; SubscribeTimeline holds
//! its place only until its stream is returned, then the subscriber limits
//! bound it.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};

use crate::auth::Identity;
use crate::body::Holding;
use crate::domain::limits::REQUEST_MAX_BYTES;
use crate::error::Error;
use crate::quota::Quotas;

/// A gRPC message frame: 1 byte compression flag, 4 bytes length.
const FRAME_HEADER_BYTES: usize = 5;

/// See the module docs.
#[derive(Clone)]
pub struct AdmissionLayer {
    quotas: Quotas,
    read_timeout: Duration,
}

impl AdmissionLayer {
    pub fn new(quotas: Quotas, read_timeout: Duration) -> Self {
        AdmissionLayer {
            quotas,
            read_timeout,
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            quotas: self.quotas.clone(),
            read_timeout: self.read_timeout,
        }
    }
}

/// See [`AdmissionLayer`].
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    quotas: Quotas,
    read_timeout: Duration,
}

/// How a method is admitted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Health Check: read, never refused.
    Probe,
    /// Health Watch and reflection: streams that need no token, bounded by
    /// their own cap for as long as they are open. Reflection streams its
    /// requests and passes through unread.
    OpenStream { read: bool },
    /// SubscribeTimeline: admitted as a call until its stream is returned;
    /// open streams are bounded by the subscriber limits.
    Subscribe,
    /// Everything else: admitted until its response is sent, so responses a
    /// client does not read count as work in progress.
    Call,
}

fn class(path: &str) -> Class {
    match path {
        "/grpc.health.v1.Health/Check" => Class::Probe,
        "/grpc.health.v1.Health/Watch" => Class::OpenStream { read: true },
        "/incident.v1.TimelineService/SubscribeTimeline" => Class::Subscribe,
        p if p.starts_with("/grpc.reflection.") => Class::OpenStream { read: false },
        _ => Class::Call,
    }
}

/// Largest message of a method that needs no token (health).
const SMALL_MESSAGE_MAX_BYTES: usize = 64 * 1024;

type Body = tonic::body::Body;

impl<S> tower::Service<http::Request<Body>> for Admission<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let class = class(req.uri().path());
        // The service that was made ready goes with the call; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let quotas = self.quotas.clone();
        let read_timeout = self.read_timeout;
        Box::pin(async move {
            let read = match class {
                Class::OpenStream { read: false } => Ok(req),
                Class::Probe | Class::OpenStream { read: true } => {
                    read_whole(req, read_timeout, SMALL_MESSAGE_MAX_BYTES).await
                }
                Class::Subscribe | Class::Call => {
                    read_whole(req, read_timeout, REQUEST_MAX_BYTES).await
                }
            };
            let req = match read {
                Ok(req) => req,
                Err(e) => return Ok(tonic::Status::from(e).into_http()),
            };
            let who = req.extensions().get::<Identity>();
            let admitted = match class {
                Class::Probe => return inner.call(req).await,
                Class::OpenStream { .. } => quotas.admit_open_stream(),
                Class::Subscribe | Class::Call => quotas.admit_call(who),
            };
            let held = match admitted {
                Ok(held) => held,
                Err(e) => return Ok(tonic::Status::from(e).into_http()),
            };
            let response = inner.call(req).await?;
            Ok(match class {
                // The stream is on its own from here: the subscriber limits bound it.
                Class::Subscribe => response,
                _ => response.map(|body| Body::new(Holding::new(body, held))),
            })
        })
    }
}

/// The request with its body read into memory: at most one message of at
/// most `max_message` bytes, arriving within `timeout`.
async fn read_whole(
    req: http::Request<Body>,
    timeout: Duration,
    max_message: usize,
) -> Result<http::Request<Body>, Error> {
    let (parts, body) = req.into_parts();
    let limit = max_message + FRAME_HEADER_BYTES;
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            Error::Timeout(format!(
                "the request message did not arrive within {} (--request-read-timeout)",
                humantime::format_duration(timeout)
            ))
        })?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Error::MessageTooLarge { limit: max_message });
        }
        // The client reset its stream; nobody reads the answer.
        Err(e) => return Err(Error::Timeout(format!("the request body failed: {e}"))),
    };
    if !parts.headers.contains_key("grpc-encoding") {
        check_one_frame(&bytes)?;
    }
    Ok(http::Request::from_parts(
        parts,
        Body::new(Full::new(bytes)),
    ))
}

/// A body of one method taking one message holds exactly one uncompressed
/// gRPC frame. tonic would answer anything else with INTERNAL before the
/// codec sees it; it is the client's mistake, so it is told so.
fn check_one_frame(body: &[u8]) -> Result<(), Error> {
    let malformed = |why: &str| Err(Error::MessageMalformed(why.to_owned()));
    let Some((header, message)) = body.split_first_chunk::<FRAME_HEADER_BYTES>() else {
        return malformed("the body holds no complete gRPC message frame");
    };
    if header[0] != 0 {
        return malformed("the message is flagged compressed, but no grpc-encoding was given");
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    match message.len().cmp(&len) {
        std::cmp::Ordering::Less => malformed("the message frame is cut short"),
        std::cmp::Ordering::Greater => {
            malformed("the method takes one message; the body holds more")
        }
        std::cmp::Ordering::Equal => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, declared: u32, message: &[u8]) -> Vec<u8> {
        let mut b = vec![flag];
        b.extend_from_slice(&declared.to_be_bytes());
        b.extend_from_slice(message);
        b
    }

    #[test]
    fn one_whole_uncompressed_frame_is_the_only_body_accepted() {
        assert!(check_one_frame(&frame(0, 3, b"abc")).is_ok());
        assert!(
            check_one_frame(&frame(0, 0, b"")).is_ok(),
            "an empty message"
        );
        for bad in [
            Vec::new(),
            vec![0, 0, 0],
            frame(0, 4, b"abc"),
            frame(0, 2, b"abc"),
            frame(1, 3, b"abc"),
            [frame(0, 1, b"a"), frame(0, 1, b"b")].concat(),
        ] {
            assert!(
                matches!(check_one_frame(&bad), Err(Error::MessageMalformed(_))),
                "{bad:?}"
            );
        }
    }
}
