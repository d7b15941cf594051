//! Input an attacker controls, replayed against a real server:
//!
//! - an error repeats at most a short prefix of unbounded input, and its
//!   status headers stay under 8 KiB as received, so a client with a 16 KiB
//!   header limit reads it;
//! - an undecodable request is INVALID_ARGUMENT / MESSAGE_MALFORMED, never
//!   INTERNAL, and the server goes on serving;
//! - two Authorization headers are UNAUTHENTICATED.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes};
use incident_client::tonic::body::Body;
use incident_client::tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use incident_client::tonic::transport::{Channel, Endpoint};
use incident_client::tonic::{Code, Request, Status};
use incident_client::*;
use tonic_types::StatusExt;

use super::*;
use crate::support::*;

/// The header budget of an error, as the server promises it.
const ERROR_HEADERS_MAX_BYTES: usize = 8 * 1024;
/// grpcio's default limit on a received header list.
const CLIENT_MAX_HEADER_LIST: u32 = 16 * 1024;

const GET_INCIDENT: &str = "/incident.v1.IncidentService/GetIncident";
const CREATE_INCIDENT: &str = "/incident.v1.IncidentService/CreateIncident";

/// A client that refuses a received header list past 16 KiB, as grpcio does
/// by default, and weighs the status fields (`grpc-*`) of each response as
/// they arrived, in its headers and trailers.
#[derive(Clone)]
struct SmallClient {
    channel: Channel,
    /// The weight of the response last received, once its body is dropped.
    weighed: Arc<Mutex<Option<usize>>>,
}

impl SmallClient {
    async fn connect(srv: &TestServer) -> SmallClient {
        let channel = Endpoint::from_shared(srv.url.clone())
            .expect("url")
            .http2_max_header_list_size(CLIENT_MAX_HEADER_LIST)
            .connect()
            .await
            .expect("connect");
        SmallClient {
            channel,
            weighed: Arc::default(),
        }
    }

    /// An IncidentService client over this one; it decodes responses of any
    /// size, so that only the header limit stands between it and an error.
    fn incidents(&self) -> IncidentServiceClient<SmallClient> {
        IncidentServiceClient::new(self.clone()).max_decoding_message_size(usize::MAX)
    }

    /// The bytes of the status fields of the response last received.
    fn status_header_bytes(&self) -> usize {
        self.weighed
            .lock()
            .unwrap()
            .take()
            .expect("a response was received")
    }
}

/// The bytes of the `grpc-*` fields of a header block, counted as HTTP/2
/// counts a header list: name + value + 32 per field.
fn status_field_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("grpc-"))
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

impl tower::Service<http::Request<Body>> for SmallClient {
    type Response = http::Response<WeighedBody>;
    type Error = <Channel as tower::Service<http::Request<Body>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.channel.call(request);
        let sink = self.weighed.clone();
        Box::pin(async move {
            let response = response.await?;
            let bytes = status_field_bytes(response.headers());
            Ok(response.map(|inner| WeighedBody { inner, bytes, sink }))
        })
    }
}

/// A response body that adds the status fields of its trailers to those of
/// its headers, and reports the sum when dropped (tonic drops it before the
/// call returns).
struct WeighedBody {
    inner: Body,
    bytes: usize,
    sink: Arc<Mutex<Option<usize>>>,
}

impl http_body::Body for WeighedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(trailers) = f.trailers_ref()
        {
            self.bytes += status_field_bytes(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WeighedBody {
    fn drop(&mut self) {
        if let Ok(mut sink) = self.sink.lock() {
            *sink = Some(self.bytes);
        }
    }
}

/// `call`, made through `client`, must be rejected as `want` says and change
/// nothing ([`check_rejected`]), and its status fields as received must stay
/// under [`ERROR_HEADERS_MAX_BYTES`]; returns the status.
async fn assert_short_rejection<T: Debug>(
    srv: &TestServer,
    client: &SmallClient,
    what: &str,
    want: Rejection,
    call: impl Future<Output = Result<T, Status>>,
) -> Status {
    let status = check_rejected(srv, &want, call)
        .await
        .unwrap_or_else(|e| panic!("{what}: not the rejection wanted ({want:?}): {e}"));
    let bytes = client.status_header_bytes();
    assert!(
        bytes < ERROR_HEADERS_MAX_BYTES,
        "{what}: {bytes} bytes of error headers"
    );
    status
}

/// A codec that sends and receives message bytes as they are.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Calls `path` through `client` with `message` as the bytes of the request
/// message.
async fn raw_call(
    client: &SmallClient,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = incident_client::tonic::client::Grpc::new(client.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("not ready: {e}")))?;
    grpc.unary(
        Request::new(message),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(incident_client::tonic::Response::into_inner)
}

// ------------------------------------------------- errors repeat input

#[tokio::test]
async fn a_3mb_id_gets_a_short_error_that_a_16kib_client_reads() {
    within("a 3 MB id and an unknown id", async {
        let mut srv = TestServer::start().await;
        let client = SmallClient::connect(&srv).await;
        let id = "x".repeat(3 * 1024 * 1024);
        let err = assert_short_rejection(
            &srv,
            &client,
            "a 3 MB id",
            Rejection::invalid(&["id"]),
            client.incidents().get_incident(GetIncidentRequest {
                id: id.clone(),
                ..Default::default()
            }),
        )
        .await;
        assert!(err.message().len() < 300, "message: {}", err.message());
        let details = err.get_error_details();
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(bad.len(), 1);
        let prefix = format!("\"{}\"…", "x".repeat(64));
        assert!(
            bad[0].description.starts_with(&prefix),
            "{}",
            bad[0].description
        );
        assert!(bad[0].description.len() < 200, "{}", bad[0].description);

        // A well-formed id of nothing is NOT_FOUND, as short.
        let unknown = "0190a0a0-0000-7000-8000-000000000000";
        assert_short_rejection(
            &srv,
            &client,
            "an unknown id",
            Rejection::not_found("incident_id", unknown),
            client.incidents().get_incident(GetIncidentRequest {
                id: unknown.into(),
                ..Default::default()
            }),
        )
        .await;
        srv.stop().await;
    })
    .await
}

#[tokio::test]
async fn ten_thousand_duplicate_impacts_get_a_short_error_and_write_nothing() {
    within("10,000 duplicate impacts", async {
        let mut srv = TestServer::start().await;
        let client = SmallClient::connect(&srv).await;
        let c = create_component(&srv, "api", "").await;
        let impacts = vec![impact(&c, ImpactLevel::PartialOutage); 10_000];
        // The count past the limit, then the first 19 duplicates; the 20th
        // violation reported says how many more there were.
        let mut fields = vec!["incident.component_impacts".to_owned()];
        fields.extend((1..20).map(|i| format!("incident.component_impacts[{i}].component_id")));
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let err = assert_short_rejection(
            &srv,
            &client,
            "10,000 duplicate impacts",
            Rejection::invalid(&fields),
            client.incidents().create_incident(CreateIncidentRequest {
                incident: Some(Incident {
                    component_impacts: impacts,
                    ..plain_incident("many impacts")
                }),
                ..Default::default()
            }),
        )
        .await;
        let details = err.get_error_details();
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(bad.len(), 20, "violations reported");
        assert_eq!(bad[0].field, "incident.component_impacts");
        assert_eq!(bad[1].field, "incident.component_impacts[1].component_id");
        assert_eq!(bad[1].description, "component listed twice");
        let last = &bad[19].description;
        assert!(last.ends_with("… and 9980 more violations"), "{last}");
        assert!(
            err.message().ends_with(" more violations"),
            "{}",
            err.message()
        );
        srv.stop().await;
    })
    .await
}

// ------------------------------------------------ undecodable requests

#[tokio::test]
async fn malformed_messages_are_invalid_argument_and_the_server_goes_on() {
    within("malformed messages", async {
        let mut srv = TestServer::start().await;
        let client = SmallClient::connect(&srv).await;
        let incident =
            create_incident(&mut srv.incidents().await, plain_incident("still served")).await;
        let before = srv.snapshot().await;
        let mut nested = vec![(15 << 3) | 3; 150];
        nested.extend(std::iter::repeat_n((15 << 3) | 4, 150));
        let cases: Vec<(&str, &'static str, Vec<u8>)> = vec![
            // GetIncidentRequest.id (1, length-delimited) = ff fe.
            ("bad UTF-8", GET_INCIDENT, vec![0x0a, 0x02, 0xff, 0xfe]),
            // id announces 10 bytes, 3 follow.
            (
                "truncated",
                GET_INCIDENT,
                vec![0x0a, 0x0a, b'a', b'b', b'c'],
            ),
            // id sent as a varint.
            ("wrong wire type", GET_INCIDENT, vec![0x08, 0x01]),
            // 150 nested groups of an unknown field: past prost's 100.
            ("recursion", GET_INCIDENT, nested),
            // CreateIncidentRequest.incident (1) { title (3) = ff }.
            (
                "bad UTF-8, nested",
                CREATE_INCIDENT,
                vec![0x0a, 0x03, 0x1a, 0x01, 0xff],
            ),
        ];
        for (what, path, bytes) in cases {
            let err = assert_short_rejection(
                &srv,
                &client,
                what,
                Rejection::new(Code::InvalidArgument, "MESSAGE_MALFORMED"),
                raw_call(&client, path, bytes),
            )
            .await;
            assert!(
                err.message().starts_with("request message is malformed: "),
                "{what}: {}",
                err.message()
            );
        }
        // A well-formed message through the same raw path still decodes.
        let ok = raw_call(
            &client,
            GET_INCIDENT,
            prost::Message::encode_to_vec(&GetIncidentRequest {
                id: incident.id.clone(),
                ..Default::default()
            }),
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let got = client
            .incidents()
            .get_incident(GetIncidentRequest {
                id: incident.id.clone(),
                ..Default::default()
            })
            .await
            .expect("the server still answers")
            .into_inner()
            .incident
            .expect("incident");
        assert_eq!(got.title, "still served");
        srv.assert_unchanged(&before, "malformed messages and reads")
            .await;
        srv.stop().await;
    })
    .await
}

// ------------------------------------------------ Authorization header

#[tokio::test]
async fn two_authorization_headers_are_unauthenticated() {
    within("Authorization headers", async {
        let mut srv = TestServer::start_with(with_tokens()).await;
        let client = SmallClient::connect(&srv).await;
        // An incident that does not exist: past authentication, NOT_FOUND.
        const ID: &str = "INC-1";
        let request = |values: &[&str]| {
            let mut r = Request::new(GetIncidentRequest {
                id: ID.into(),
                ..Default::default()
            });
            for v in values {
                r.metadata_mut()
                    .append("authorization", v.parse().expect("ascii"));
            }
            r
        };
        // One good header passes authentication.
        let good = bearer(VIEWER);
        assert_short_rejection(
            &srv,
            &client,
            "one good header",
            Rejection::not_found("incident_id", ID),
            client.incidents().get_incident(request(&[&good])),
        )
        .await;
        let nope = bearer("nope");
        for values in [[&good, &good], [&good, &nope], [&nope, &good]] {
            let values = values.map(String::as_str);
            let err = assert_short_rejection(
                &srv,
                &client,
                &format!("two headers {values:?}"),
                Rejection::new(Code::Unauthenticated, "UNAUTHENTICATED"),
                client.incidents().get_incident(request(&values)),
            )
            .await;
            assert!(err.message().contains("more than one"), "{}", err.message());
        }
        // The scheme in any case, several spaces.
        assert_short_rejection(
            &srv,
            &client,
            "bEARER and spaces",
            Rejection::not_found("incident_id", ID),
            client
                .incidents()
                .get_incident(request(&[&format!("bEARER   {VIEWER}")])),
        )
        .await;
        for bad in [
            format!("Bearer\t{VIEWER}"),
            format!("Bearer {VIEWER} junk"),
            format!("Bearer {VIEWER},x"),
        ] {
            assert_short_rejection(
                &srv,
                &client,
                &format!("malformed {bad:?}"),
                Rejection::new(Code::Unauthenticated, "UNAUTHENTICATED"),
                client.incidents().get_incident(request(&[&bad])),
            )
            .await;
        }
        srv.stop().await;
    })
    .await
}
