//! Every request field that names an incident takes its reference ("INC-1",
//! any case) as well as its id; an unknown reference is NOT_FOUND echoing it.

use futures::StreamExt;
use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;

use super::*;
use crate::support::{Rejection, assert_rejected, create_incident, plain_incident, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incident_field_takes_a_reference() {
    let srv = TestServer::start().await;
    let mut inc = srv.incidents().await;
    let created = create_incident(&mut inc, plain_incident("Search is slow")).await;
    assert_eq!(created.reference, "INC-1");
    let id = created.id.clone();

    let posted = inc
        .post_status_update(PostStatusUpdateRequest {
            incident_id: "INC-1".into(),
            status: IncidentStatus::Identified as i32,
            message: "cache node lost".into(),
            ..Default::default()
        })
        .await
        .expect("post by reference")
        .into_inner();
    assert_eq!(posted.incident.expect("incident").id, id);
    let updates = inc
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: "inc-1".into(),
            ..Default::default()
        })
        .await
        .expect("list by reference")
        .into_inner()
        .status_updates;
    assert_eq!(updates.len(), 1);

    let mut timeline = srv.timeline().await;
    let mut stream = timeline
        .subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            incident_ids: vec!["INC-1".into()],
            ..Default::default()
        })
        .await
        .expect("subscribe by reference")
        .into_inner();
    let note = timeline
        .add_note(AddNoteRequest {
            incident_id: "INC-1".into(),
            text: "paged the search team".into(),
            ..Default::default()
        })
        .await
        .expect("note by reference")
        .into_inner()
        .event
        .expect("event");
    let arrived = within("the note on the filtered stream", async {
        loop {
            match stream.next().await.expect("open").expect("message").kind {
                Some(Kind::Event(e)) => return e,
                _ => continue,
            }
        }
    })
    .await;
    assert_eq!(arrived.sequence, note.sequence);
    let listed = timeline
        .list_timeline_events(ListTimelineEventsRequest {
            incident_id: "INC-1".into(),
            ..Default::default()
        })
        .await
        .expect("timeline by reference")
        .into_inner()
        .events;
    assert!(listed.iter().all(|e| e.incident_id == id));

    let pm = inc
        .get_postmortem(GetPostmortemRequest {
            incident_id: "INC-1".into(),
            ..Default::default()
        })
        .await
        .expect("postmortem by reference")
        .into_inner()
        .postmortem
        .expect("postmortem");
    assert_eq!(pm.incident_id, id);
    inc.update_postmortem(UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: "INC-1".into(),
            body: "What happened".into(),
            ..Default::default()
        }),
        update_mask: mask(&["body"]),
        ..Default::default()
    })
    .await
    .expect("postmortem edit by reference");

    let mut items = srv.action_items().await;
    let item = items
        .create_action_item(CreateActionItemRequest {
            action_item: Some(ActionItem {
                incident_id: "INC-1".into(),
                title: "Alert on cache evictions".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("action item by reference")
        .into_inner()
        .action_item
        .expect("item");
    assert_eq!(item.incident_id, id);
    let listed = items
        .list_action_items(ListActionItemsRequest {
            incident_id: "INC-1".into(),
            ..Default::default()
        })
        .await
        .expect("list by reference")
        .into_inner()
        .action_items;
    assert_eq!(listed.len(), 1);

    let updated = inc
        .update_incident(UpdateIncidentRequest {
            incident: Some(Incident {
                id: "INC-1".into(),
                title: "Search is slow in EU".into(),
                ..Default::default()
            }),
            update_mask: mask(&["title"]),
            ..Default::default()
        })
        .await
        .expect("update by reference")
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(
        (updated.id.as_str(), updated.title.as_str()),
        (id.as_str(), "Search is slow in EU")
    );
    inc.delete_incident(DeleteIncidentRequest {
        id: "INC-1".into(),
        ..Default::default()
    })
    .await
    .expect("delete by reference");
    inc.undelete_incident(UndeleteIncidentRequest {
        id: "INC-1".into(),
        ..Default::default()
    })
    .await
    .expect("undelete by reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_reference_is_not_found_as_sent() {
    let srv = TestServer::start().await;
    let mut inc = srv.incidents().await;
    create_incident(&mut inc, plain_incident("Search is slow")).await;
    // Resolved, then not found by the use case: still as sent.
    inc.delete_incident(DeleteIncidentRequest {
        id: "INC-1".into(),
        ..Default::default()
    })
    .await
    .expect("delete");
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", "INC-1"),
        inc.delete_incident(DeleteIncidentRequest {
            id: "INC-1".into(),
            ..Default::default()
        }),
    )
    .await;
    let mut timeline = srv.timeline().await;
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", "INC-99"),
        timeline.add_note(AddNoteRequest {
            incident_id: "INC-99".into(),
            text: "nowhere".into(),
            ..Default::default()
        }),
    )
    .await;
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", "inc-42"),
        inc.post_status_update(PostStatusUpdateRequest {
            incident_id: "inc-42".into(),
            message: "nowhere".into(),
            ..Default::default()
        }),
    )
    .await;
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", "INC-7"),
        timeline.subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            incident_ids: vec!["INC-1".into(), "INC-7".into()],
            ..Default::default()
        }),
    )
    .await;
}
