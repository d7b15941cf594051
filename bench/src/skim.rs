//! Subscriptions read the way a load generator should read them: of each
//! `SubscribeTimelineResponse`, only what the bench measures (the event's
//! sequence and commit time) is decoded, and the rest of the message is
//! skipped as unknown fields.
//!
//! Why: the bench's subscribers share the machine with the server. Decoding
//! every field of every message (an incident's creation carries the whole
//! incident) cost the load generator more CPU than the server spent sending
//! them, so the fan-out and catch-up figures measured the load generator's
//! decoding as much as the server. A real subscriber decodes on a machine of
//! its own.

use incident_client::SubscribeTimelineRequest;
use incident_client::prost_types;
use incident_client::tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use incident_client::tonic::codegen::http::uri::PathAndQuery;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{self, Status, Streaming};
use prost::Message;
use prost::bytes::Buf;
use tonic_prost::{ProstCodec, ProstEncoder};

const SUBSCRIBE_TIMELINE: &str = "/incident.v1.TimelineService/SubscribeTimeline";

/// `incident.v1.SubscribeTimelineResponse`, its event only (a heartbeat,
/// field 2, is skipped).
#[derive(Clone, PartialEq, Message)]
pub struct SkimResponse {
    #[prost(message, optional, tag = "1")]
    pub event: Option<SkimEvent>,
}

/// `incident.v1.TimelineEvent`: its sequence and commit time.
#[derive(Clone, PartialEq, Message)]
pub struct SkimEvent {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(message, optional, tag = "5")]
    pub event_time: Option<prost_types::Timestamp>,
}

/// A message as received, with its length on the wire.
pub struct Skimmed {
    pub wire_len: usize,
    pub message: SkimResponse,
}

/// Opens a subscription whose messages are skimmed.
pub async fn subscribe(
    ch: Channel,
    request: SubscribeTimelineRequest,
) -> Result<Streaming<Skimmed>, Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let path = PathAndQuery::from_static(SUBSCRIBE_TIMELINE);
    let response = grpc
        .server_streaming(tonic::Request::new(request), path, SkimCodec)
        .await?;
    Ok(response.into_inner())
}

struct SkimCodec;

impl Codec for SkimCodec {
    type Encode = SubscribeTimelineRequest;
    type Decode = Skimmed;
    type Encoder = ProstEncoder<SubscribeTimelineRequest>;
    type Decoder = SkimDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<SubscribeTimelineRequest, SkimResponse>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SkimDecoder
    }
}

struct SkimDecoder;

impl Decoder for SkimDecoder {
    type Item = Skimmed;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Skimmed>, Status> {
        let wire_len = buf.remaining();
        let message = SkimResponse::decode(buf)
            .map_err(|e| Status::internal(format!("undecodable message: {e}")))?;
        Ok(Some(Skimmed { wire_len, message }))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_client::pb::subscribe_timeline_response::Kind;
    use incident_client::{Heartbeat, SubscribeTimelineResponse, TimelineEvent};

    /// A full reply skims to its sequence and commit time; a heartbeat to
    /// no event.
    #[test]
    fn a_reply_skims_to_its_sequence_and_commit_time() {
        let time = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        let event = SubscribeTimelineResponse {
            kind: Some(Kind::Event(TimelineEvent {
                sequence: 42,
                incident_id: "0190c5b1-0000-7000-8000-000000000000".into(),
                event_time: Some(time),
                actor: "ana".into(),
                ..Default::default()
            })),
        };
        let skim = SkimResponse::decode(event.encode_to_vec().as_slice()).unwrap();
        let e = skim.event.unwrap();
        assert_eq!((e.sequence, e.event_time), (42, Some(time)));
        let beat = SubscribeTimelineResponse {
            kind: Some(Kind::Heartbeat(Heartbeat { sequence: 7 })),
        };
        let skim = SkimResponse::decode(beat.encode_to_vec().as_slice()).unwrap();
        assert_eq!(skim.event, None);
    }
}
