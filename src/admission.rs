//! Admission: a call is counted only once its request message has arrived, so
//! a client that sends headers and then stalls holds nothing but its own
//! stream, and is ended with DEADLINE_EXCEEDED after the read timeout. Then
//! the call must fit under the server-wide limit and its caller's fair share
//! ([`Quotas`]); past either it is refused at once with RESOURCE_EXHAUSTED.
//!
//! Every method but reflection takes one request message, so its body is read
//! whole here (bounded in size and time) before the handler runs. Reflection
//! streams requests and passes through unread. Health probes are read but
//! never refused: they must answer when the server is saturated. A streaming
//! call holds its permit only until its stream is returned; open streams are
//! bounded by the subscriber limits instead.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};

use crate::auth::Identity;
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
    /// Health: read, never refused.
    Probe,
    /// Reflection: a stream of requests, passed through unread.
    RequestStream,
    /// Everything else: one request message, read before admission.
    Call,
}

fn class(path: &str) -> Class {
    if path.starts_with("/grpc.health.v1.Health/") {
        Class::Probe
    } else if path.starts_with("/grpc.reflection.") {
        Class::RequestStream
    } else {
        Class::Call
    }
}

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
        if class == Class::RequestStream {
            return match self.quotas.admit_call(None) {
                Ok(permit) => {
                    let call = self.inner.call(req);
                    Box::pin(async move {
                        let response = call.await;
                        drop(permit);
                        response
                    })
                }
                Err(e) => refuse(e),
            };
        }
        // The service that was made ready goes with the call; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let quotas = self.quotas.clone();
        let read_timeout = self.read_timeout;
        Box::pin(async move {
            let req = match read_whole(req, read_timeout).await {
                Ok(req) => req,
                Err(e) => return Ok(tonic::Status::from(e).into_http()),
            };
            if class == Class::Probe {
                return inner.call(req).await;
            }
            let permit = match quotas.admit_call(req.extensions().get::<Identity>()) {
                Ok(p) => p,
                Err(e) => return Ok(tonic::Status::from(e).into_http()),
            };
            let response = inner.call(req).await;
            drop(permit);
            response
        })
    }
}

fn refuse<T>(e: Error) -> BoxFuture<'static, Result<http::Response<Body>, T>> {
    let status = tonic::Status::from(e);
    Box::pin(async move { Ok(status.into_http()) })
}

/// The request with its body read into memory: at most one message of the
/// largest accepted size, arriving within `timeout`.
async fn read_whole(
    req: http::Request<Body>,
    timeout: Duration,
) -> Result<http::Request<Body>, Error> {
    let (parts, body) = req.into_parts();
    let limit = REQUEST_MAX_BYTES + FRAME_HEADER_BYTES;
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
            return Err(Error::MessageTooLarge {
                limit: REQUEST_MAX_BYTES,
            });
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
