//! The timeline: listing, notes, and subscriptions that lose nothing.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Options, TestServer, assert_error, list_all_timeline_events};
use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;
use incident_client::pb::timeline_event::Payload;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Streaming};
use incident_client::*;

async fn incident(
    srv: &TestServer,
    title: &str,
    severity: Severity,
    components: &[&str],
) -> Incident {
    srv.incidents()
        .await
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: title.into(),
                kind: IncidentKind::Incident as i32,
                severity: severity as i32,
                component_impacts: components
                    .iter()
                    .map(|c| ComponentImpact {
                        component_id: (*c).into(),
                        impact: ImpactLevel::PartialOutage as i32,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .expect("incident")
}

async fn note(
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
async fn all_events(srv: &TestServer) -> Vec<TimelineEvent> {
    list_all_timeline_events(
        &mut srv.timeline().await,
        ListTimelineEventsRequest {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
}

fn subscribe_request(start: Start) -> SubscribeTimelineRequest {
    SubscribeTimelineRequest {
        start: Some(start),
        ..Default::default()
    }
}

/// Reads a stream until an event with sequence `last` arrived; returns the
/// events and the first heartbeat (the start position).
async fn read_until(
    stream: &mut Streaming<SubscribeTimelineResponse>,
    last: u64,
) -> (Vec<u64>, Option<u64>) {
    let mut seqs = Vec::new();
    let mut first_beat = None;
    if last == 0 {
        return (seqs, first_beat);
    }
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
            }
            None => {}
        }
    }
    (seqs, first_beat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_subscribers_see_exactly_the_log() {
    let srv = TestServer::start().await;
    let inc = incident(&srv, "Concurrent", Severity::P2, &[]).await;
    // Some history before anyone subscribes.
    let mut t = srv.timeline().await;
    for i in 0..30 {
        note(&mut t, &inc.id, &format!("before {i}")).await;
    }

    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = srv.url.clone();
            let id = inc.id.clone();
            tokio::spawn(async move {
                let mut c = TimelineServiceClient::connect(url).await.expect("connect");
                for i in 0..40 {
                    note(&mut c, &id, &format!("writer {w} note {i}")).await;
                    if i % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        })
        .collect();

    let mut subscribers = Vec::new();
    for s in 0..20u64 {
        let url = srv.url.clone();
        let start = match s % 3 {
            0 => Start::AfterSequence(0),
            1 => Start::AfterSequence(15 + s),
            _ => Start::FromNow(()),
        };
        subscribers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * s)).await;
            let mut c = TimelineServiceClient::connect(url).await.expect("connect");
            let stream = c
                .subscribe_timeline(subscribe_request(start))
                .await
                .expect("subscribe")
                .into_inner();
            (start, stream)
        }));
    }
    let mut streams = Vec::new();
    for s in subscribers {
        streams.push(s.await.expect("subscriber"));
    }
    for w in writers {
        w.await.expect("writer");
    }

    let log = all_events(&srv).await;
    let head = log.last().expect("events").sequence;
    assert!(log.windows(2).all(|w| w[0].sequence < w[1].sequence));
    for (start, mut stream) in streams {
        let (seqs, first_beat) = read_until(&mut stream, head).await;
        let after = match start {
            Start::AfterSequence(n) => n,
            Start::FromNow(()) => first_beat.expect("a from_now stream first states its position"),
        };
        let expected: Vec<u64> = log
            .iter()
            .map(|e| e.sequence)
            .filter(|s| *s > after)
            .collect();
        assert_eq!(
            seqs, expected,
            "subscriber starting after {after} ({start:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_subscriber_overtaken_by_the_live_buffer_still_gets_everything() {
    let srv = TestServer::start_with(Options {
        live_buffer: 32,
        ..Options::default()
    })
    .await;
    let inc = incident(&srv, "Flood", Severity::P1, &[]).await;
    let mut slow = srv
        .timeline()
        .await
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let mut fast = srv
        .timeline()
        .await
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let (_, slow_start) = read_until(&mut slow, 0).await;
    assert!(slow_start.is_none());

    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = srv.url.clone();
            let id = inc.id.clone();
            tokio::spawn(async move {
                let mut c = TimelineServiceClient::connect(url).await.expect("connect");
                for i in 0..250 {
                    note(&mut c, &id, &format!("flood {w}/{i}")).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let log = all_events(&srv).await;
    let head = log.last().unwrap().sequence;
    let written: Vec<u64> = log
        .iter()
        .filter(|e| matches!(e.payload, Some(Payload::NoteAdded(_))))
        .map(|e| e.sequence)
        .collect();
    assert_eq!(written.len(), 2000);

    // The fast one is done while the slow one has hardly started.
    let fast_reader = tokio::spawn(async move { read_until(&mut fast, head).await.0 });
    let mut slow_seqs = Vec::new();
    let mut fast_done_while_slow_behind = false;
    while let Some(msg) = slow.message().await.expect("slow stream") {
        if let Some(Kind::Event(e)) = msg.kind {
            slow_seqs.push(e.sequence);
            if slow_seqs.len() == 100 {
                fast_done_while_slow_behind = fast_reader.is_finished();
            }
            if slow_seqs.len() < 300 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if e.sequence >= head {
                break;
            }
        }
    }
    assert_eq!(
        slow_seqs, written,
        "the slow subscriber got every event, in order, once"
    );
    let fast_seqs = fast_reader.await.unwrap();
    assert_eq!(fast_seqs, written);
    assert!(
        fast_done_while_slow_behind,
        "the fast subscriber was not held to the slow one's pace"
    );
}

#[tokio::test]
async fn filters_select_the_same_events_in_replay_and_live() {
    let srv = TestServer::start().await;
    let comp = srv
        .components()
        .await
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Chat".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .component
        .unwrap();
    let filter = |start| SubscribeTimelineRequest {
        start: Some(start),
        severity_at_least: Severity::P1 as i32,
        component_id: comp.id.clone(),
        ..Default::default()
    };
    let mut live = srv
        .timeline()
        .await
        .subscribe_timeline(filter(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let p0 = incident(&srv, "P0 on chat", Severity::P0, &[&comp.id]).await;
    let p2 = incident(&srv, "P2 on chat", Severity::P2, &[&comp.id]).await;
    let p1_elsewhere = incident(&srv, "P1 elsewhere", Severity::P1, &[]).await;
    let unassessed = incident(
        &srv,
        "Unassessed on chat",
        Severity::Unspecified,
        &[&comp.id],
    )
    .await;
    let mut t = srv.timeline().await;
    for i in [&p0, &p2, &p1_elsewhere, &unassessed] {
        note(&mut t, &i.id, "n").await;
    }
    let last = note(&mut t, &p0.id, "last").await.sequence;

    let mut replay = srv
        .timeline()
        .await
        .subscribe_timeline(filter(Start::AfterSequence(0)))
        .await
        .unwrap()
        .into_inner();
    let (live_seqs, _) = read_until(&mut live, last).await;
    let (replay_seqs, _) = read_until(&mut replay, last).await;
    assert_eq!(live_seqs, replay_seqs);
    let log = all_events(&srv).await;
    let p0_events: Vec<u64> = log
        .iter()
        .filter(|e| e.incident_id == p0.id)
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        live_seqs, p0_events,
        "only the P0 incident on the component matches"
    );
}

#[tokio::test]
async fn heartbeats_report_progress_past_unmatched_events() {
    let srv = TestServer::start().await;
    let watched = incident(&srv, "Watched", Severity::P3, &[]).await;
    let other = incident(&srv, "Other", Severity::P3, &[]).await;
    let mut stream = srv
        .timeline()
        .await
        .subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::AfterSequence(0)),
            incident_ids: vec![watched.id.clone()],
            heartbeat_interval: Some(incident_client::prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(
        matches!(first.kind, Some(Kind::Heartbeat(Heartbeat { sequence: 0 }))),
        "{first:?}"
    );
    let mut t = srv.timeline().await;
    let mut last = 0;
    for _ in 0..3 {
        last = note(&mut t, &other.id, "elsewhere").await.sequence;
    }
    let mut events = 0;
    loop {
        match stream.message().await.unwrap().unwrap().kind {
            Some(Kind::Event(e)) => {
                assert_eq!(e.incident_id, watched.id);
                events += 1;
            }
            Some(Kind::Heartbeat(h)) if h.sequence >= last => break,
            Some(Kind::Heartbeat(h)) => assert!(h.sequence < last),
            None => {}
        }
    }
    assert_eq!(events, 1, "only the watched incident's creation");
}

#[tokio::test]
async fn bad_subscriptions_are_refused() {
    let srv = TestServer::start().await;
    let inc = incident(&srv, "x", Severity::P1, &[]).await;
    let mut c = srv.timeline().await;
    let err = c
        .subscribe_timeline(SubscribeTimelineRequest::default())
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "FIELD_INVALID", Some("start"));

    let err = c
        .subscribe_timeline(subscribe_request(Start::AfterSequence(1000)))
        .await
        .unwrap_err();
    assert_error(&err, Code::OutOfRange, "SEQUENCE_AHEAD_OF_LOG", None);
    assert_eq!(
        common::details(&err)
            .metadata
            .get("head_sequence")
            .map(String::as_str),
        Some("1")
    );

    let err = c
        .subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            heartbeat_interval: Some(incident_client::prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "FIELD_INVALID",
        Some("heartbeat_interval"),
    );

    let before = srv.db_state().await;
    let err = c
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "x".repeat(16 * 1024 + 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "FIELD_INVALID", Some("text"));
    let err = c
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "  ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "FIELD_INVALID", Some("text"));
    assert_eq!(srv.db_state().await, before);
}

#[tokio::test]
async fn the_subscriber_cap_refuses_more_and_frees_a_slot_on_disconnect() {
    let srv = TestServer::start_with(Options {
        max_subscribers: 2,
        ..Options::default()
    })
    .await;
    let mut c = srv.timeline().await;
    let a = c
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let _b = c
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let err = c
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap_err();
    assert_error(&err, Code::ResourceExhausted, "SUBSCRIBER_LIMIT", None);
    drop(a);
    // The server notices the cancelled stream and frees its slot.
    let mut freed = false;
    for _ in 0..100 {
        if c.subscribe_timeline(subscribe_request(Start::FromNow(())))
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "a disconnected subscriber's slot is released");
}

#[tokio::test]
async fn shutdown_delivers_everything_committed_then_ends_with_unavailable() {
    let mut srv = TestServer::start().await;
    let inc = incident(&srv, "Draining", Severity::P1, &[]).await;
    let mut stream = srv
        .timeline()
        .await
        .subscribe_timeline(subscribe_request(Start::AfterSequence(0)))
        .await
        .unwrap()
        .into_inner();
    let mut t = srv.timeline().await;
    let mut last = 0;
    for i in 0..50 {
        last = note(&mut t, &inc.id, &format!("n{i}")).await.sequence;
    }
    srv.stop().await;
    let mut got = Vec::new();
    let status = loop {
        match stream.message().await {
            Ok(Some(m)) => {
                if let Some(Kind::Event(e)) = m.kind {
                    got.push(e.sequence);
                }
            }
            Ok(None) => panic!("the stream must end with a status"),
            Err(s) => break s,
        }
    };
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(got.last().copied(), Some(last));
    assert_eq!(got, (1..=last).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_client_subscription_resumes_across_a_restart_exactly_once() {
    let mut srv = TestServer::start().await;
    let inc = incident(&srv, "Restarting", Severity::P1, &[]).await;
    let mut sub = Subscription::new(
        srv.lazy_channel(),
        subscribe_request(Start::AfterSequence(0)),
    );
    let mut t = srv.timeline().await;
    for i in 0..5 {
        note(&mut t, &inc.id, &format!("before {i}")).await;
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(sub.next().await.expect("event").sequence);
    }
    srv.restart().await;
    let mut t = srv.timeline().await;
    for i in 0..5 {
        note(&mut t, &inc.id, &format!("after {i}")).await;
    }
    for _ in 0..5 {
        seen.push(sub.next().await.expect("event after restart").sequence);
    }
    assert_eq!(seen, (1..=11).collect::<Vec<_>>());
    assert_eq!(sub.checkpoint(), Some(11));
}

#[tokio::test]
async fn every_write_emits_its_event_kinds() {
    let srv = TestServer::start().await;
    let mut comps = srv.components().await;
    let comp = comps
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Video".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .component
        .unwrap();
    comps
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: comp.id.clone(),
                description: "Video calls".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let inc = incident(&srv, "Kinds", Severity::P2, &[]).await;
    let mut incidents = srv.incidents().await;
    incidents
        .update_incident(UpdateIncidentRequest {
            incident: Some(Incident {
                id: inc.id.clone(),
                title: "Kinds, renamed".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    incidents
        .post_status_update(PostStatusUpdateRequest {
            incident_id: inc.id.clone(),
            status: IncidentStatus::Identified as i32,
            message: "found".into(),
            component_impacts: vec![ComponentImpact {
                component_id: comp.id.clone(),
                impact: ImpactLevel::MajorOutage as i32,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    note(&mut srv.timeline().await, &inc.id, "a note").await;
    incidents
        .delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    incidents
        .undelete_incident(UndeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let spare = comps
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Spare".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .component
        .unwrap();
    comps
        .delete_component(DeleteComponentRequest {
            id: spare.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    let log = all_events(&srv).await;
    let kinds: HashSet<i32> = log.iter().map(|e| e.kind).collect();
    use TimelineEventKind as K;
    for k in [
        K::ComponentCreated,
        K::ComponentUpdated,
        K::IncidentCreated,
        K::IncidentUpdated,
        K::StatusUpdatePosted,
        K::StatusChanged,
        K::ComponentImpactChanged,
        K::NoteAdded,
        K::IncidentDeleted,
        K::IncidentUndeleted,
        K::ComponentDeleted,
    ] {
        assert!(kinds.contains(&(k as i32)), "{k:?} was emitted");
    }
    // Each payload matches its kind and renders without a second call.
    for e in &log {
        let payload = e.payload.as_ref().expect("payload");
        let expected = match payload {
            Payload::IncidentCreated(_) => K::IncidentCreated,
            Payload::IncidentUpdated(p) => {
                assert_eq!(p.changes[0].path, "title");
                K::IncidentUpdated
            }
            Payload::StatusChanged(p) => {
                assert_eq!(p.new_status, IncidentStatus::Identified as i32);
                K::StatusChanged
            }
            Payload::StatusUpdatePosted(p) => {
                assert_eq!(p.status_update.as_ref().unwrap().message, "found");
                K::StatusUpdatePosted
            }
            Payload::NoteAdded(_) => K::NoteAdded,
            Payload::ComponentImpactChanged(p) => {
                assert_eq!(p.changes[0].component_name, "Video");
                K::ComponentImpactChanged
            }
            Payload::IncidentDeleted(_) => K::IncidentDeleted,
            Payload::IncidentUndeleted(_) => K::IncidentUndeleted,
            Payload::ComponentCreated(_) => K::ComponentCreated,
            Payload::ComponentUpdated(_) => K::ComponentUpdated,
            Payload::ComponentDeleted(_) => K::ComponentDeleted,
            other => panic!("unexpected payload {other:?}"),
        };
        assert_eq!(e.kind, expected as i32);
        if !e.incident_id.is_empty() {
            let snap = e
                .incident
                .as_ref()
                .expect("incident events carry a snapshot");
            assert_eq!(snap.reference, "INC-1");
        }
    }
}
