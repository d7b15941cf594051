//! One client over several replicas: calls go to the replica in use, and
//! when it fails the client moves to the next one. A call is sent again, to
//! the next replica, only when sending it twice is harmless: a read (Get…,
//! List…), or a write that carries a request_id, which the server answers
//! once however often it arrives. A write sent without one is given one
//! here, before it is first sent, so that it too can be retried.
//!
//! Streams are not retried here: [`crate::Subscription`] resumes them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::{Service, ServiceExt};

include!(concat!(env!("OUT_DIR"), "/methods.rs"));

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A transport for the generated clients over one channel per replica (see
/// [`crate::lazy_channels`]):
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use incident_client::{Failover, IncidentServiceClient, lazy_channels};
/// let replicas = lazy_channels(["http://10.0.0.1:50051", "http://10.0.0.2:50051"])?;
/// let mut incidents = IncidentServiceClient::new(Failover::new(replicas));
/// # Ok(()) }
/// ```
///
/// Clones share the replica in use.
#[derive(Clone)]
pub struct Failover {
    channels: Arc<[Channel]>,
    current: Arc<AtomicUsize>,
}

impl Failover {
    /// A transport starting on the first of `channels`.
    ///
    /// # Panics
    /// If `channels` is empty.
    pub fn new(channels: Vec<Channel>) -> Self {
        assert!(!channels.is_empty(), "failover needs an endpoint");
        Failover {
            channels: channels.into(),
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Index of the replica calls go to now.
    pub fn endpoint(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Moves on from replica `from` (if no other call did already).
    fn fail_over(&self, from: usize) {
        let next = (from + 1) % self.channels.len();
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// What makes a call safe to send twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    Read,
    /// A write with its request_id in this field.
    Write(u32),
    /// A stream or a write without request_id: sent once.
    Never,
}

fn retry_of(path: &str) -> Retry {
    match METHODS.iter().find(|(p, _, _)| *p == path) {
        Some((_, true, _)) => Retry::Read,
        Some((_, false, field)) if *field > 0 => Retry::Write(*field),
        _ => Retry::Never,
    }
}

impl Service<http::Request<Body>> for Failover {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call waits for the readiness of the channel it uses.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let retry = retry_of(request.uri().path());
            if retry == Retry::Never {
                let at = this.endpoint();
                let sent = send(&this.channels[at], request).await;
                if sent.as_ref().map_or(true, is_unavailable) {
                    this.fail_over(at);
                }
                return sent;
            }
            let (parts, body) = request.into_parts();
            let mut message = body.collect().await?.to_bytes();
            if let Retry::Write(field) = retry {
                message = with_request_id(message, field);
            }
            let n = this.channels.len();
            let mut last = None;
            for _ in 0..n {
                let at = this.endpoint();
                let mut attempt = http::Request::new(Body::new(
                    http_body_util::Full::new(message.clone()).map_err(|e| match e {}),
                ));
                *attempt.method_mut() = parts.method.clone();
                *attempt.uri_mut() = parts.uri.clone();
                *attempt.version_mut() = parts.version;
                *attempt.headers_mut() = parts.headers.clone();
                *attempt.extensions_mut() = parts.extensions.clone();
                let sent = send(&this.channels[at], attempt).await;
                if !sent.as_ref().map_or(true, is_unavailable) {
                    return sent;
                }
                this.fail_over(at);
                last = Some(sent);
            }
            last.unwrap_or_else(|| Err("no endpoint".into()))
        })
    }
}

async fn send(
    channel: &Channel,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let mut channel = channel.clone();
    let response = channel.ready().await?.call(request).await?;
    Ok(response)
}

/// Whether a response is the server saying it cannot serve now (draining,
/// its database unreachable): an error answered before any message carries
/// its status in the headers.
fn is_unavailable(response: &http::Response<Body>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == b"14")
}

/// The gRPC frame of a request with a request_id in `field`: unchanged if it
/// has one, else with a new one appended (protobuf lets a field come last).
/// A compressed or malformed frame is left as it is.
fn with_request_id(frame: Bytes, field: u32) -> Bytes {
    const HEADER: usize = 5;
    if frame.len() < HEADER || frame[0] != 0 {
        return frame;
    }
    let message = &frame[HEADER..];
    if has_nonempty_string(message, field) != Some(false) {
        return frame;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut added = Vec::new();
    prost::encoding::string::encode(field, &id, &mut added);
    let Ok(len) = u32::try_from(message.len() + added.len()) else {
        return frame;
    };
    let mut out = BytesMut::with_capacity(HEADER + len as usize);
    out.put_u8(0);
    out.put_u32(len);
    out.put_slice(message);
    out.put_slice(&added);
    out.freeze()
}

/// Whether the message has a non-empty length-delimited `field`; `None` if
/// it does not parse.
fn has_nonempty_string(mut message: &[u8], field: u32) -> Option<bool> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let mut found = false;
    while !message.is_empty() {
        let (tag, wire) = decode_key(&mut message).ok()?;
        if tag == field && wire == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut message).ok()?).ok()?;
            if len > message.len() {
                return None;
            }
            // The last occurrence wins.
            found = len > 0;
            message = &message[len..];
        } else {
            skip_field(wire, tag, &mut message, DecodeContext::default()).ok()?;
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CreateIncidentRequest;
    use prost::Message;

    fn frame(m: &impl Message) -> Bytes {
        let body = m.encode_to_vec();
        let mut out = vec![0];
        out.extend((body.len() as u32).to_be_bytes());
        out.extend(body);
        out.into()
    }

    fn unframe(b: &Bytes) -> CreateIncidentRequest {
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(len, b.len() - 5, "the frame length follows the message");
        CreateIncidentRequest::decode(&b[5..]).unwrap()
    }

    #[test]
    fn a_write_without_request_id_is_given_one_and_one_with_it_keeps_its_own() {
        let Retry::Write(field) = retry_of("/incident.v1.IncidentService/CreateIncident") else {
            panic!("CreateIncident carries a request_id");
        };
        let bare = CreateIncidentRequest {
            incident: Some(crate::Incident {
                title: "Checkout down".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let given = unframe(&with_request_id(frame(&bare), field));
        assert_eq!(given.request_id.len(), 36, "a UUID: {given:?}");
        assert_eq!(given.incident, bare.incident, "the rest as it was");
        let own = CreateIncidentRequest {
            request_id: "mine".into(),
            ..bare
        };
        assert_eq!(
            unframe(&with_request_id(frame(&own), field)).request_id,
            "mine"
        );
    }

    #[test]
    fn reads_are_retried_and_streams_are_not() {
        assert_eq!(
            retry_of("/incident.v1.IncidentService/GetIncident"),
            Retry::Read
        );
        assert_eq!(
            retry_of("/incident.v1.TimelineService/ListTimelineEvents"),
            Retry::Read
        );
        assert_eq!(
            retry_of("/incident.v1.TimelineService/SubscribeTimeline"),
            Retry::Never
        );
        assert_eq!(retry_of("/unknown/Method"), Retry::Never);
        assert!(matches!(
            retry_of("/incident.v1.TimelineService/AddNote"),
            Retry::Write(_)
        ));
    }
}
