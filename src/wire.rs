//! Events in their wire form. The log keeps each event as an encoded
//! `incident.v1.TimelineEvent`, made once when it is committed; replies that
//! carry events (ListTimelineEvents, SubscribeTimeline) embed those bytes as
//! they are instead of decoding and encoding them again per reader.
//!
//! The two reply messages here stand in for the generated ones (build.rs maps
//! them with `extern_path`). They encode exactly the messages the proto
//! declares: an embedded message is a length-delimited field holding its
//! encoding, which is what a `bytes` field is on the wire.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::domain::Event;
use crate::proto as pb;

/// The wire encoding of a committed event.
pub fn encode_event(e: &Event) -> Bytes {
    Bytes::from(crate::api::convert::event(e).encode_to_vec())
}

/// `incident.v1.SubscribeTimelineResponse`, its event pre-encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeTimelineResponse {
    /// `event = 1`: an encoded `TimelineEvent`.
    Event(Bytes),
    /// `heartbeat = 2`.
    Heartbeat(pb::Heartbeat),
}

impl Default for SubscribeTimelineResponse {
    fn default() -> Self {
        Self::Heartbeat(pb::Heartbeat::default())
    }
}

impl Message for SubscribeTimelineResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            Self::Event(body) => encoding::bytes::encode(1, body, buf),
            Self::Heartbeat(h) => encoding::message::encode(2, h, buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => {
                let mut body = Bytes::new();
                encoding::bytes::merge(wire_type, &mut body, buf, ctx)?;
                *self = Self::Event(body);
                Ok(())
            }
            2 => {
                let mut h = pb::Heartbeat::default();
                encoding::message::merge(wire_type, &mut h, buf, ctx)?;
                *self = Self::Heartbeat(h);
                Ok(())
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Self::Event(body) => encoding::bytes::encoded_len(1, body),
            Self::Heartbeat(h) => encoding::message::encoded_len(2, h),
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// `incident.v1.GetIncidentResponse`, its incident pre-encoded (kept so by
/// the incident cache).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetIncidentResponse {
    /// `incident = 1`: an encoded `Incident`.
    pub incident: Bytes,
}

impl Message for GetIncidentResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        // An empty message is still present: the field is always written.
        encoding::bytes::encode(1, &self.incident, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => encoding::bytes::merge(wire_type, &mut self.incident, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::bytes::encoded_len(1, &self.incident)
    }

    fn clear(&mut self) {
        self.incident.clear();
    }
}

/// `incident.v1.ListTimelineEventsResponse`, its events pre-encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListTimelineEventsResponse {
    /// `repeated TimelineEvent events = 1`, each encoded.
    pub events: Vec<Bytes>,
    /// `next_page_token = 2`.
    pub next_page_token: String,
}

impl Message for ListTimelineEventsResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encoding::bytes::encode_repeated(1, &self.events, buf);
        if !self.next_page_token.is_empty() {
            encoding::string::encode(2, &self.next_page_token, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => encoding::bytes::merge_repeated(wire_type, &mut self.events, buf, ctx),
            2 => encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::bytes::encoded_len_repeated(1, &self.events)
            + if self.next_page_token.is_empty() {
                0
            } else {
                encoding::string::encoded_len(2, &self.next_page_token)
            }
    }

    fn clear(&mut self) {
        self.events.clear();
        self.next_page_token.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The client's types are generated from the same protos, with nothing
    // mapped: what any client decodes.
    use incident_client::pb as client;

    fn event(sequence: u64) -> client::TimelineEvent {
        client::TimelineEvent {
            sequence,
            kind: 5,
            incident_id: "00000000-0000-0000-0000-000000000001".into(),
            actor: "alice".into(),
            payload: Some(client::timeline_event::Payload::NoteAdded(
                client::NoteAdded {
                    text: "hello".into(),
                },
            )),
            ..Default::default()
        }
    }

    /// A client decoding with the generated types reads what the generated
    /// server types would have sent.
    #[test]
    fn a_subscription_reply_is_the_generated_message() {
        let e = event(7);
        let ours = SubscribeTimelineResponse::Event(Bytes::from(e.encode_to_vec()));
        let generated =
            client::SubscribeTimelineResponse::decode(ours.encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            generated.kind,
            Some(client::subscribe_timeline_response::Kind::Event(e))
        );
        let beat = SubscribeTimelineResponse::Heartbeat(pb::Heartbeat { sequence: 9 });
        let back = SubscribeTimelineResponse::decode(beat.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, beat);
        assert_eq!(beat.encoded_len(), beat.encode_to_vec().len());
    }

    #[test]
    fn an_incident_reply_is_the_generated_message() {
        let incident = client::Incident {
            id: "00000000-0000-0000-0000-000000000001".into(),
            reference: "INC-1".into(),
            title: "Checkout fails".into(),
            ..Default::default()
        };
        let ours = GetIncidentResponse {
            incident: Bytes::from(incident.encode_to_vec()),
        };
        let bytes = ours.encode_to_vec();
        assert_eq!(ours.encoded_len(), bytes.len());
        let generated = client::GetIncidentResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(generated.incident, Some(incident));
        assert_eq!(GetIncidentResponse::decode(bytes.as_slice()).unwrap(), ours);
    }

    #[test]
    fn a_page_reply_is_the_generated_message() {
        for token in ["", "next"] {
            let events = vec![event(1), event(2)];
            let ours = ListTimelineEventsResponse {
                events: events
                    .iter()
                    .map(|e| Bytes::from(e.encode_to_vec()))
                    .collect(),
                next_page_token: token.into(),
            };
            let bytes = ours.encode_to_vec();
            assert_eq!(ours.encoded_len(), bytes.len());
            let generated = client::ListTimelineEventsResponse::decode(bytes.as_slice()).unwrap();
            assert_eq!(generated.events, events);
            assert_eq!(generated.next_page_token, token);
            assert_eq!(
                ListTimelineEventsResponse::decode(bytes.as_slice()).unwrap(),
                ours
            );
        }
    }
}
