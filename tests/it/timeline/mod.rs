//! The timeline: listing, notes, and subscriptions that lose nothing.

mod events;
mod streams;
mod subscriptions;

use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;
use incident_client::tonic::Streaming;
use incident_client::tonic::transport::Channel;
use incident_client::*;

use crate::support::{TestServer, list_all_timeline_events, within};

pub async fn incident(
    srv: &TestServer,
    title: &str,
    severity: Severity,
    components: &[&str],
) -> Incident {
    crate::support::create_incident(
        &mut srv.incidents().await,
        Incident {
            severity: severity as i32,
            component_impacts: components
                .iter()
                .map(|c| ComponentImpact {
                    component_id: (*c).into(),
                    impact: ImpactLevel::PartialOutage as i32,
                    ..Default::default()
                })
                .collect(),
            ..crate::support::plain_incident(title)
        },
    )
    .await
}

pub async fn note(
    client: &mut TimelineServiceClient<Channel>,
    incident_id: &str,
    text: &str,
) -> TimelineEvent {
    client
        .add_note(AddNoteRequest {
            incident_id: incident_id.into(),
            text: text.into(),
            ..Default::default()
        })
        .await
        .expect("add note")
        .into_inner()
        .event
        .expect("event")
}

/// Every event of the log, all incidents, 1000 per page.
pub async fn all_events(srv: &TestServer) -> Vec<TimelineEvent> {
    list_all_timeline_events(
        &mut srv.timeline().await,
        ListTimelineEventsRequest {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
}

pub fn subscribe_request(start: Start) -> SubscribeTimelineRequest {
    SubscribeTimelineRequest {
        start: Some(start),
        ..Default::default()
    }
}

/// Reads a stream until it delivered everything up to sequence `last`: an
/// event at `last` (or past it) arrived, or a heartbeat says the stream is
/// past it. Returns the events and the first heartbeat (the start
/// position). A stream that stops short fails after `support::PATIENCE`.
pub async fn read_until(
    stream: &mut Streaming<SubscribeTimelineResponse>,
    last: u64,
) -> (Vec<u64>, Option<u64>) {
    let mut seqs = Vec::new();
    let mut first_beat = None;
    if last == 0 {
        return (seqs, first_beat);
    }
    within(&format!("the stream reaching sequence {last}"), async {
        while let Some(msg) = stream.message().await.expect("stream") {
            match msg.kind {
                Some(Kind::Event(e)) => {
                    seqs.push(e.sequence);
                    if e.sequence >= last {
                        break;
                    }
                }
                Some(Kind::Heartbeat(h)) => {
                    first_beat.get_or_insert(h.sequence);
                    if h.sequence >= last {
                        break;
                    }
                }
                None => {}
            }
        }
    })
    .await;
    (seqs, first_beat)
}
