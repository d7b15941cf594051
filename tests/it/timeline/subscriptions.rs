//! Subscribers that see exactly the log: concurrent writers, a slow
//! subscriber, filters, heartbeats.

use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;
use incident_client::pb::timeline_event::Payload;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_subscribers_see_exactly_the_log() {
    let srv = TestServer::start().await;
    let inc = incident(&srv, "Concurrent", Severity::P2, &[]).await;
    // Some history before anyone subscribes.
    let mut t = srv.timeline().await;
    for i in 0..30 {
        note(&mut t, &inc.id, &format!("before {i}")).await;
    }
    let history = head_sequence(&mut t).await;

    const WRITERS: u64 = 8;
    const NOTES: u64 = 40;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = srv.url.clone();
            let id = inc.id.clone();
            tokio::spawn(async move {
                let mut c = TimelineServiceClient::connect(url).await.expect("connect");
                for i in 0..NOTES {
                    note(&mut c, &id, &format!("writer {w} note {i}")).await;
                }
            })
        })
        .collect();

    // Subscribers join one after the other while the writers write, each
    // once the log has grown past its point: spread over the writes, and
    // never starting after a sequence the log does not hold yet (that is
    // OUT_OF_RANGE).
    const SUBSCRIBERS: u64 = 20;
    let mut streams = Vec::new();
    for s in 0..SUBSCRIBERS {
        let start = match s % 3 {
            0 => Start::AfterSequence(0),
            1 => Start::AfterSequence(15 + s),
            _ => Start::FromNow(()),
        };
        let after = match start {
            Start::AfterSequence(n) => n,
            Start::FromNow(()) => 0,
        };
        let point = (history + WRITERS * NOTES * s / SUBSCRIBERS).max(after);
        eventually(&format!("the log past {point}"), || {
            let mut t = t.clone();
            async move { (head_sequence(&mut t).await >= point).then_some(()) }
        })
        .await;
        // Each stream on its own connection, as independent clients are.
        let stream = srv
            .timeline()
            .await
            .subscribe_timeline(subscribe_request(start))
            .await
            .expect("subscribe")
            .into_inner();
        streams.push((start, stream));
    }
    for w in writers {
        within("a writer", w).await.expect("writer");
    }

    let log = all_events(&srv).await;
    let head = log.last().expect("events").sequence;
    assert_eq!(head, history + WRITERS * NOTES);
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

    // The slow one reads 100 events and then stops reading: the fast one
    // still gets everything meanwhile, not held to the slow one's pace.
    let fast_reader = tokio::spawn(async move { read_until(&mut fast, head).await.0 });
    let mut slow_seqs = Vec::new();
    while slow_seqs.len() < 100 {
        let msg = within("the slow stream", slow.message())
            .await
            .expect("slow stream")
            .expect("slow stream open");
        if let Some(Kind::Event(e)) = msg.kind {
            slow_seqs.push(e.sequence);
        }
    }
    let fast_seqs = within(
        "the fast subscriber reading everything while the slow one stalls",
        fast_reader,
    )
    .await
    .unwrap();
    assert_eq!(fast_seqs, written);
    // Then the slow one, overtaken long since, catches up.
    let (rest, _) = read_until(&mut slow, head).await;
    slow_seqs.extend(rest);
    assert_eq!(
        slow_seqs, written,
        "the slow subscriber got every event, in order, once"
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
    let first = within("the first heartbeat", stream.message())
        .await
        .unwrap()
        .unwrap();
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
        match within("a heartbeat past the notes", stream.message())
            .await
            .unwrap()
            .unwrap()
            .kind
        {
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

/// A replay reads the log in batches bounded by bytes as well as rows: a run
/// of notes at the 16 KiB limit, several batches' worth, reaches a replay and
/// a listing whole, in order, with no gap and nothing twice.
#[tokio::test]
async fn a_replay_of_large_events_misses_nothing() {
    let srv = TestServer::start().await;
    let inc = incident(&srv, "Large notes", Severity::P2, &[]).await;
    let text = "x".repeat(16 * 1024);
    let mut writers = Vec::new();
    for w in 0..4 {
        let (mut c, id, text) = (srv.timeline().await, inc.id.clone(), text.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..150 {
                note(&mut c, &id, &text).await;
            }
            w
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let listed: Vec<u64> = all_events(&srv).await.iter().map(|e| e.sequence).collect();
    // The declaration and 600 notes of 16 KiB: over 9 MiB, more than one batch.
    assert_eq!(listed.len(), 601);
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "in order, once each"
    );
    let head = *listed.last().expect("events");

    let mut c = srv.timeline().await;
    let mut stream = c
        .subscribe_timeline(subscribe_request(Start::AfterSequence(0)))
        .await
        .expect("subscribe")
        .into_inner();
    let (replayed, _) = read_until(&mut stream, head).await;
    assert_eq!(replayed, listed);
}
