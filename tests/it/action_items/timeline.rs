//! Item and postmortem writes as timeline events, live and replayed.

use std::collections::HashSet;

use incident_client::pb::timeline_event::Payload;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn item_and_postmortem_writes_are_timeline_events_with_the_incident_snapshot() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Events").await;
    let kinds = [
        TimelineEventKind::ActionItemCreated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemDeleted,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemPublished,
    ];
    let elsewhere = api.resolved("Other incident").await;
    api.create(item(&elsewhere.id, "elsewhere", ActionItemStatus::Open))
        .await;

    let created = api
        .create(item(&inc.id, "throttle", ActionItemStatus::Open))
        .await;
    let done = api.set_status(&created.id, ActionItemStatus::Done).await;
    let reopened = api
        .set_status(&created.id, ActionItemStatus::InProgress)
        .await;
    let renamed = api
        .try_update(
            ActionItem {
                id: created.id.clone(),
                title: "throttle migrations".into(),
                description: "a long text".into(),
                ..Default::default()
            },
            &["title", "description"],
        )
        .await
        .expect("rename");
    let deleted = api.try_delete(&created.id, "").await.expect("delete");
    let pm1 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "body".into(),
                sections: vec![
                    section("Incident", "a"),
                    section("Root Cause", "b"),
                    section("Conclusion", "c"),
                ],
                author: "ops".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft");
    let pm2 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: vec![section("Root Cause", "b"), section("Incident", "a2")],
                ..Default::default()
            },
            &["sections"],
        )
        .await
        .expect("edit sections");
    let at = ts("2024-02-26T09:05:00Z");
    api.try_publish(&inc.id, &pm2.etag, Some(at))
        .await
        .expect("publish");
    assert_eq!(pm1.sections.len(), 3);

    let events = api.events(&inc.id, &kinds).await;
    let got: Vec<i32> = events.iter().map(|e| e.kind).collect();
    let want: Vec<i32> = [
        TimelineEventKind::ActionItemCreated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemDeleted,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemPublished,
    ]
    .iter()
    .map(|k| *k as i32)
    .collect();
    assert_eq!(
        got, want,
        "the incident's item and postmortem events, in order"
    );
    for w in events.windows(2) {
        assert!(w[0].sequence < w[1].sequence);
    }
    for e in &events {
        assert_eq!(e.incident_id, inc.id);
        let snap = e.incident.as_ref().expect("incident snapshot");
        assert_eq!(snap.id, inc.id);
        assert_eq!(snap.reference, inc.reference);
        assert_eq!(snap.title, inc.title);
        assert_eq!(snap.status, IncidentStatus::Resolved as i32);
        assert_eq!(snap.severity, Severity::P1 as i32);
        assert_eq!(snap.kind, IncidentKind::Incident as i32);
        assert_eq!(e.actor, "anonymous");
        assert!(e.event_time.is_some() && e.occur_time.is_some());
    }

    let change = |changes: &[FieldChange], path: &str| -> FieldChange {
        changes
            .iter()
            .find(|c| c.path == path)
            .cloned()
            .unwrap_or_else(|| panic!("no change of {path} in {changes:?}"))
    };
    match &events[0].payload {
        Some(Payload::ActionItemCreated(p)) => assert_eq!(p.action_item.as_ref(), Some(&created)),
        other => panic!("created payload: {other:?}"),
    }
    // OPEN → DONE: status and complete_time, with values.
    match &events[1].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&done));
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["status", "complete_time"]));
            let s = change(&p.changes, "status");
            assert!(
                string_value(&s.old_value).is_some_and(|v| v.ends_with("OPEN")),
                "{s:?}"
            );
            assert!(
                string_value(&s.new_value).is_some_and(|v| v.ends_with("DONE")),
                "{s:?}"
            );
            let c = change(&p.changes, "complete_time");
            assert!(is_null(&c.old_value), "complete_time was unset: {c:?}");
            assert_eq!(time_value(&c.new_value), nanos(&done.complete_time));
        }
        other => panic!("updated payload: {other:?}"),
    }
    // DONE → IN_PROGRESS: complete_time cleared.
    match &events[2].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&reopened));
            let s = change(&p.changes, "status");
            assert!(
                string_value(&s.old_value).is_some_and(|v| v.ends_with("DONE")),
                "{s:?}"
            );
            assert!(
                string_value(&s.new_value).is_some_and(|v| v.ends_with("IN_PROGRESS")),
                "{s:?}"
            );
            let c = change(&p.changes, "complete_time");
            assert_eq!(time_value(&c.old_value), nanos(&done.complete_time));
            assert!(is_null(&c.new_value), "complete_time cleared: {c:?}");
        }
        other => panic!("updated payload: {other:?}"),
    }
    // Title with values; description path only.
    match &events[3].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&renamed));
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["title", "description"]));
            let t = change(&p.changes, "title");
            assert_eq!(string_value(&t.old_value).as_deref(), Some("throttle"));
            assert_eq!(
                string_value(&t.new_value).as_deref(),
                Some("throttle migrations")
            );
            let d = change(&p.changes, "description");
            assert!(
                d.old_value.is_none() && d.new_value.is_none(),
                "large text: path only"
            );
        }
        other => panic!("updated payload: {other:?}"),
    }
    match &events[4].payload {
        Some(Payload::ActionItemDeleted(p)) => assert_eq!(p.action_item.as_ref(), Some(&deleted)),
        other => panic!("deleted payload: {other:?}"),
    }
    match &events[5].payload {
        Some(Payload::PostmortemUpdated(p)) => {
            assert_eq!(p.section_titles, ["Incident", "Root Cause", "Conclusion"]);
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["body", "sections", "author"]));
            for path in ["body", "sections"] {
                let c = change(&p.changes, path);
                assert!(
                    c.old_value.is_none() && c.new_value.is_none(),
                    "{path}: path only"
                );
            }
            let a = change(&p.changes, "author");
            assert_eq!(string_value(&a.new_value).as_deref(), Some("ops"));
        }
        other => panic!("postmortem payload: {other:?}"),
    }
    match &events[6].payload {
        Some(Payload::PostmortemUpdated(p)) => {
            assert_eq!(p.section_titles, ["Root Cause", "Incident"]);
            let paths: Vec<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, ["sections"]);
            assert!(p.changes[0].old_value.is_none() && p.changes[0].new_value.is_none());
        }
        other => panic!("postmortem payload: {other:?}"),
    }
    let published = &events[7];
    assert_eq!(
        published.occur_time,
        Some(at),
        "the event occurs at the occur_time"
    );
    match &published.payload {
        Some(Payload::PostmortemPublished(p)) => {
            assert_eq!(p.publish_time, Some(at));
            assert_eq!(p.author, "ops");
            assert_eq!(p.section_titles, ["Root Cause", "Incident"]);
        }
        other => panic!("published payload: {other:?}"),
    }
    // The kinds filter alone selects: only the published event.
    let only = api
        .events(&inc.id, &[TimelineEventKind::PostmortemPublished])
        .await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].sequence, published.sequence);
}

#[tokio::test]
async fn live_and_replayed_item_events_agree() {
    use incident_client::pb::subscribe_timeline_request::Start;
    use incident_client::pb::subscribe_timeline_response::Kind as Msg;

    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Live and replay").await;
    let it = api
        .create(item(&inc.id, "closed and reopened", ActionItemStatus::Open))
        .await;
    let mut stream = srv
        .timeline()
        .await
        .subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            incident_ids: vec![inc.id.clone()],
            kinds: vec![TimelineEventKind::ActionItemUpdated as i32],
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let next = async |stream: &mut incident_client::tonic::Streaming<SubscribeTimelineResponse>| {
        within("a message of the subscription", stream.message())
            .await
            .expect("stream ok")
            .expect("stream open")
            .kind
            .expect("message kind")
    };
    // A from_now stream first states its position: it is live from here.
    assert!(matches!(next(&mut stream).await, Msg::Heartbeat(_)));
    api.set_status(&it.id, ActionItemStatus::Done).await;
    api.set_status(&it.id, ActionItemStatus::Open).await;
    let mut live = Vec::new();
    while live.len() < 2 {
        if let Msg::Event(e) = next(&mut stream).await {
            live.push(e);
        }
    }
    let replayed = api
        .events(&inc.id, &[TimelineEventKind::ActionItemUpdated])
        .await;
    let changes = |events: &[TimelineEvent]| -> Vec<Vec<FieldChange>> {
        events
            .iter()
            .map(|e| match &e.payload {
                Some(Payload::ActionItemUpdated(p)) => p.changes.clone(),
                other => panic!("updated payload: {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        changes(&live),
        changes(&replayed),
        "the FieldChanges are the same live and replayed"
    );
    assert_eq!(
        live, replayed,
        "an event is the same live and replayed (FieldChange of an unset complete_time included)"
    );
}
