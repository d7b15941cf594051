//! Events in their wire form. The log keeps each event as it is sent: an
//! encoded `SubscribeTimelineResponse` holding the `TimelineEvent` (field 1),
//! made once when it is committed. Those bytes are also, exactly, one element
//! of `ListTimelineEventsResponse.events` (field 1 as well), so a page of the
//! log is its stored replies put end to end, and replies that carry events
//! embed the stored bytes instead of decoding and encoding them per reader.
//!
//! The reply messages here stand in for the generated ones (build.rs maps
//! them with `extern_path`); they encode exactly the messages the proto
//! declares.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::component_names::NameOf;
use crate::domain::Event;
use crate::error::Error;
use crate::proto as pb;

/// The wire form of a committed event: an encoded `SubscribeTimelineResponse`
/// carrying it, its components named by `names`.
pub fn encode_event(e: &Event, names: &dyn NameOf) -> Bytes {
    encode_reply(&crate::api::convert::event(e, names))
}

/// The wire form of an event: an encoded `SubscribeTimelineResponse` carrying it.
pub fn encode_reply(event: &pb::TimelineEvent) -> Bytes {
    let mut buf = Vec::with_capacity(encoding::message::encoded_len(1, event));
    encoding::message::encode(1, event, &mut buf);
    Bytes::from(buf)
}

/// An event read back from its wire form.
pub fn decode_event(mut stored: &[u8]) -> crate::error::Result<pb::TimelineEvent> {
    let corrupt = || Error::Internal("a stored event is not an encoded event reply".into());
    let (tag, wire_type) = encoding::decode_key(&mut stored).map_err(|_| corrupt())?;
    if tag != 1 || wire_type != WireType::LengthDelimited {
        return Err(corrupt());
    }
    let len = encoding::decode_varint(&mut stored).map_err(|_| corrupt())? as usize;
    let body = stored.get(..len).ok_or_else(corrupt)?;
    pb::TimelineEvent::decode(body).map_err(|_| corrupt())
}

/// Splits stored events put end to end into one `Bytes` per event (no copy),
/// each with its sequence.
pub fn split_events(mut all: Bytes) -> crate::error::Result<Vec<(u64, Bytes)>> {
    let corrupt = || Error::Internal("a stored event is not an encoded event reply".into());
    let mut out = Vec::new();
    while !all.is_empty() {
        let mut rest = &all[..];
        let (tag, wire_type) = encoding::decode_key(&mut rest).map_err(|_| corrupt())?;
        if tag != 1 || wire_type != WireType::LengthDelimited {
            return Err(corrupt());
        }
        let len = encoding::decode_varint(&mut rest).map_err(|_| corrupt())? as usize;
        let header = all.len() - rest.len();
        if rest.len() < len {
            return Err(corrupt());
        }
        // The event's first field is its sequence (field 1, a varint).
        let mut event = &rest[..len];
        let (tag, wire_type) = encoding::decode_key(&mut event).map_err(|_| corrupt())?;
        if tag != 1 || wire_type != WireType::Varint {
            return Err(corrupt());
        }
        let sequence = encoding::decode_varint(&mut event).map_err(|_| corrupt())?;
        out.push((sequence, all.split_to(header + len)));
    }
    Ok(out)
}

/// Reads an event (field 1 of either reply) back into its stored form.
fn merge_stored_event(
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<Bytes, DecodeError> {
    let mut event = Bytes::new();
    encoding::bytes::merge(wire_type, &mut event, buf, ctx)?;
    let mut stored = Vec::with_capacity(encoding::bytes::encoded_len(1, &event));
    encoding::bytes::encode(1, &event, &mut stored);
    Ok(stored.into())
}

/// `incident.v1.SubscribeTimelineResponse`, its event pre-encoded.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeTimelineResponse {
    /// A stored event: the whole reply, as [`encode_event`] made it.
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
            Self::Event(reply) => buf.put_slice(reply),
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
                *self = Self::Event(merge_stored_event(wire_type, buf, ctx)?);
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
            Self::Event(reply) => reply.len(),
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

/// `next_page_token = 2` of a page reply: absent when empty, as proto3
/// leaves a default string.
fn encode_page_token(token: &str, buf: &mut impl BufMut) {
    if !token.is_empty() {
        encoding::encode_key(2, WireType::LengthDelimited, buf);
        encoding::encode_varint(token.len() as u64, buf);
        buf.put_slice(token.as_bytes());
    }
}

fn page_token_len(token: &str) -> usize {
    if token.is_empty() {
        0
    } else {
        encoding::key_len(2) + encoding::encoded_len_varint(token.len() as u64) + token.len()
    }
}

/// `incident.v1.ListIncidentsResponse`, its incidents pre-encoded (most
/// taken from the incident cache as they are).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListIncidentsResponse {
    /// `repeated Incident incidents = 1`: each an encoded `Incident`.
    pub incidents: Vec<Bytes>,
    /// `next_page_token = 2`.
    pub next_page_token: String,
}

impl Message for ListIncidentsResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for i in &self.incidents {
            encoding::bytes::encode(1, i, buf);
        }
        encode_page_token(&self.next_page_token, buf);
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
                let mut incident = Bytes::new();
                encoding::bytes::merge(wire_type, &mut incident, buf, ctx)?;
                self.incidents.push(incident);
                Ok(())
            }
            2 => encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::bytes::encoded_len_repeated(1, &self.incidents)
            + page_token_len(&self.next_page_token)
    }

    fn clear(&mut self) {
        self.incidents.clear();
        self.next_page_token.clear();
    }
}

/// `incident.v1.ListTimelineEventsResponse`, its events pre-encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListTimelineEventsResponse {
    /// `repeated TimelineEvent events = 1`: stored events (each a reply as
    /// [`encode_event`] made it, which is one element of this field).
    pub events: Vec<Bytes>,
    /// `next_page_token = 2`.
    pub next_page_token: String,
}

impl Message for ListTimelineEventsResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for e in &self.events {
            buf.put_slice(e);
        }
        encode_page_token(&self.next_page_token, buf);
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
                self.events.push(merge_stored_event(wire_type, buf, ctx)?);
                Ok(())
            }
            2 => encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.events.iter().map(Bytes::len).sum::<usize>() + page_token_len(&self.next_page_token)
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
                    visibility: 2,
                },
            )),
            ..Default::default()
        }
    }

    /// An event as the log stores it.
    fn stored(e: &client::TimelineEvent) -> Bytes {
        client::SubscribeTimelineResponse {
            kind: Some(client::subscribe_timeline_response::Kind::Event(e.clone())),
        }
        .encode_to_vec()
        .into()
    }

    /// A client decoding with the generated types reads what the generated
    /// server types would have sent.
    #[test]
    fn a_subscription_reply_is_the_generated_message() {
        let e = event(7);
        let ours = SubscribeTimelineResponse::Event(stored(&e));
        let bytes = ours.encode_to_vec();
        assert_eq!(ours.encoded_len(), bytes.len());
        let generated = client::SubscribeTimelineResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            generated.kind,
            Some(client::subscribe_timeline_response::Kind::Event(e))
        );
        assert_eq!(
            SubscribeTimelineResponse::decode(bytes.as_slice()).unwrap(),
            ours
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
                events: events.iter().map(stored).collect(),
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

    #[test]
    fn an_incident_page_reply_is_the_generated_message() {
        for token in ["", "next"] {
            // An incident of all defaults encodes to nothing: still one element.
            let incidents: Vec<client::Incident> = (0..3)
                .map(|n| match n {
                    0 => client::Incident::default(),
                    n => client::Incident {
                        id: format!("00000000-0000-0000-0000-00000000000{n}"),
                        reference: format!("INC-{n}"),
                        title: "Checkout fails".into(),
                        ..Default::default()
                    },
                })
                .collect();
            let ours = ListIncidentsResponse {
                incidents: incidents
                    .iter()
                    .map(|i| Bytes::from(i.encode_to_vec()))
                    .collect(),
                next_page_token: token.into(),
            };
            let bytes = ours.encode_to_vec();
            assert_eq!(ours.encoded_len(), bytes.len());
            let generated = client::ListIncidentsResponse::decode(bytes.as_slice()).unwrap();
            assert_eq!(generated.incidents, incidents);
            assert_eq!(generated.next_page_token, token);
            assert_eq!(
                ListIncidentsResponse::decode(bytes.as_slice()).unwrap(),
                ours
            );
        }
    }

    #[test]
    fn stored_events_end_to_end_split_into_each_with_its_sequence() {
        let events: Vec<Bytes> = [1, 300, 70_000]
            .iter()
            .map(|n| stored(&event(*n)))
            .collect();
        let all: Vec<u8> = events.iter().flat_map(|b| b.to_vec()).collect();
        let split = split_events(all.into()).unwrap();
        assert_eq!(
            split,
            vec![
                (1, events[0].clone()),
                (300, events[1].clone()),
                (70_000, events[2].clone())
            ]
        );
        assert_eq!(split_events(Bytes::new()).unwrap(), vec![]);
        // Cut short, or not a reply: an internal error, not a panic.
        let cut = events[0].slice(..events[0].len() - 1);
        assert!(split_events(cut).is_err());
        assert!(split_events(Bytes::from_static(b"\x12\x00")).is_err());
    }
}
