//! From a resolved incident to closed items and a published postmortem;
//! seed 001's actions for the future.

use incident_client::pb::timeline_event::Payload;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn lifecycle_from_resolved_incident_to_published_postmortem() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Livechat DB frozen after upgrade").await;
    assert_eq!(inc.status, IncidentStatus::Resolved as i32);
    assert_eq!(api.counts(&inc.id).await, (0, 0));

    // Items are created on a resolved incident, in every status.
    let throttle = api
        .create(ActionItem {
            description: "Allow a gradual increase of incoming traffic".into(),
            owner: "dba@iadvize.com".into(),
            priority: Priority::High as i32,
            due_time: Some(ts("2024-03-31T00:00:00Z")),
            labels: labels(&[("area", "tech")]),
            ..item(
                &inc.id,
                "Throttle the next DB migrations",
                ActionItemStatus::Open,
            )
        })
        .await;
    assert_eq!(throttle.status, ActionItemStatus::Open as i32);
    assert_eq!(throttle.incident_id, inc.id);
    assert_eq!(throttle.owner, "dba@iadvize.com");
    assert_eq!(throttle.priority, Priority::High as i32);
    assert_eq!(throttle.labels, labels(&[("area", "tech")]));
    assert!(throttle.complete_time.is_none());
    assert!(throttle.delete_time.is_none());
    assert!(!throttle.etag.is_empty());
    assert!(throttle.create_time.is_some());
    assert_eq!(api.counts(&inc.id).await, (1, 1));

    let process = api
        .create(item(
            &inc.id,
            "Improve DB crash resolution tooling",
            ActionItemStatus::InProgress,
        ))
        .await;
    assert_eq!(process.status, ActionItemStatus::InProgress as i32);
    assert!(process.complete_time.is_none());
    assert_eq!(api.counts(&inc.id).await, (2, 2));

    let runbook = api
        .create(item(&inc.id, "Write the runbook", ActionItemStatus::Done))
        .await;
    assert_eq!(runbook.status, ActionItemStatus::Done as i32);
    assert!(
        runbook.complete_time.is_some(),
        "DONE on create stamps complete_time"
    );
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    assert_eq!(api.get_item(&throttle.id).await, throttle);

    // Updated through to DONE.
    let t1 = api
        .set_status(&throttle.id, ActionItemStatus::InProgress)
        .await;
    assert_eq!(t1.status, ActionItemStatus::InProgress as i32);
    assert_ne!(t1.etag, throttle.etag);
    assert_eq!(t1.title, throttle.title, "the mask kept the other fields");
    assert_eq!(t1.owner, throttle.owner);
    assert_eq!(t1.labels, throttle.labels);
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    let t2 = api.set_status(&throttle.id, ActionItemStatus::Done).await;
    assert!(t2.complete_time.is_some());
    assert_eq!(api.counts(&inc.id).await, (3, 1));
    let p2 = api.set_status(&process.id, ActionItemStatus::Done).await;
    assert_eq!(p2.status, ActionItemStatus::Done as i32);
    assert_eq!(api.counts(&inc.id).await, (3, 0));

    // A deleted item is not counted, whatever its status.
    let extra = api
        .create(item(
            &inc.id,
            "Duplicate of the throttle item",
            ActionItemStatus::Open,
        ))
        .await;
    assert_eq!(api.counts(&inc.id).await, (4, 1));
    let deleted = api
        .try_delete(&extra.id, &extra.etag)
        .await
        .expect("delete");
    assert!(deleted.delete_time.is_some());
    assert_ne!(deleted.etag, extra.etag);
    assert_eq!(api.counts(&inc.id).await, (3, 0));
    assert_eq!(
        api.get_item(&extra.id).await,
        deleted,
        "Get still returns it"
    );
    // Deleted twice.
    assert_rejected(
        &srv,
        Rejection::not_found("action_item_id", &extra.id),
        api.try_delete(&extra.id, ""),
    )
    .await;
    let live = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        ids(&live),
        vec![runbook.id.clone(), process.id.clone(), throttle.id.clone()]
    );
    let all = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            show_deleted: true,
            ..Default::default()
        })
        .await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].id, extra.id);

    // The postmortem: an empty draft, then free-titled sections in order.
    let draft = api.get_pm(&inc.id).await;
    assert_eq!(draft.incident_id, inc.id);
    assert!(draft.publish_time.is_none());
    assert!(draft.sections.is_empty());
    let order = [
        "Incident",
        "Reasons",
        "Root Cause",
        "Impact",
        "Actions for the future",
    ];
    let written = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "# Postmortem\nThe Livechat DB froze.".into(),
                sections: order
                    .iter()
                    .map(|t| section(t, &format!("About {t}.")))
                    .collect(),
                author: "ops@iadvize.com".into(),
                etag: draft.etag.clone(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("write the draft");
    assert_eq!(titles(&written.sections), order);
    assert_eq!(written.sections[2].body, "About Root Cause.");
    assert_eq!(written.author, "ops@iadvize.com");
    assert_ne!(written.etag, draft.etag);
    assert!(written.publish_time.is_none());
    assert!(written.update_time.is_some());

    // Reordering the sections alone keeps the body and author.
    let reordered: Vec<PostmortemSection> = written.sections.iter().rev().cloned().collect();
    let edited = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: reordered.clone(),
                body: "IGNORED: not in the mask".into(),
                ..Default::default()
            },
            &["sections"],
        )
        .await
        .expect("reorder sections");
    assert_eq!(edited.sections, reordered);
    assert_eq!(edited.body, written.body);
    assert_eq!(edited.author, written.author);
    assert_eq!(api.get_pm(&inc.id).await, edited);
    assert!(
        api.get_incident(&inc.id)
            .await
            .postmortem_publish_time
            .is_none()
    );

    // Published with a backfilled occur_time.
    let at = ts("2024-02-26T09:05:00Z");
    let published = api
        .try_publish(&inc.id, &edited.etag, Some(at))
        .await
        .expect("publish");
    assert_eq!(published.publish_time, Some(at));
    assert_eq!(published.sections, reordered);
    assert_ne!(published.etag, edited.etag);
    assert_eq!(api.get_pm(&inc.id).await, published);
    let after = api.get_incident(&inc.id).await;
    assert_eq!(after.postmortem_publish_time, Some(at));
    assert_eq!(
        (after.action_item_count, after.open_action_item_count),
        (3, 0)
    );
    assert_eq!(after.status, IncidentStatus::Resolved as i32);
}

#[tokio::test]
async fn resolving_an_incident_does_not_close_its_items() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Items outlive the incident").await;
    let open = api
        .create(item(&inc.id, "open", ActionItemStatus::Open))
        .await;
    let busy = api
        .create(item(&inc.id, "in progress", ActionItemStatus::InProgress))
        .await;
    let done = api
        .create(item(&inc.id, "done", ActionItemStatus::Done))
        .await;
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    let resolved = api.post(&inc.id, IncidentStatus::Resolved).await;
    assert_eq!(resolved.status, IncidentStatus::Resolved as i32);
    assert_eq!(
        (resolved.action_item_count, resolved.open_action_item_count),
        (3, 2),
        "the status update's incident carries the counts"
    );
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    for it in [&open, &busy, &done] {
        assert_eq!(&api.get_item(&it.id).await, it, "{} unchanged", it.title);
    }
    let updated = api
        .events(&inc.id, &[TimelineEventKind::ActionItemUpdated])
        .await;
    assert!(updated.is_empty(), "no item was touched: {updated:?}");
}

#[tokio::test]
async fn seed_001_actions_for_the_future_and_its_postmortem() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    // iAdvize, Feb 22 2024 (CET = UTC+1).
    let inc = api
        .inc
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "P0 - Service disruption - Impossible to start new conversations & errors on the conversation panel".into(),
                kind: IncidentKind::Incident as i32,
                severity: Severity::P0 as i32,
                labels: labels(&[("company", "iAdvize")]),
                ..Default::default()
            }),
            occur_time: Some(ts("2024-02-22T09:42:00+01:00")),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner()
        .incident
        .expect("incident");
    for (status, at, message) in [
        (
            IncidentStatus::Unspecified,
            "2024-02-22T09:59:00+01:00",
            "We are still investigating and attempting to mitigate the issue.",
        ),
        (
            IncidentStatus::Unspecified,
            "2024-02-22T10:23:00+01:00",
            "Our technical team is still actively working on this issue to mitigate this incident.",
        ),
        (
            IncidentStatus::Monitoring,
            "2024-02-22T10:58:00+01:00",
            "Following technical interventions we are noticing great improvements.",
        ),
        (
            IncidentStatus::Unspecified,
            "2024-02-22T11:35:00+01:00",
            "The incident is over since 10:50am CET. The conversation processing flow is now operational.",
        ),
        (
            IncidentStatus::Resolved,
            "2024-02-22T14:48:00+01:00",
            "During the monitoring performed since the last update, no issue has been identified.",
        ),
    ] {
        api.inc
            .post_status_update(PostStatusUpdateRequest {
                incident_id: inc.id.clone(),
                status: status as i32,
                message: message.into(),
                occur_time: Some(ts(at)),
                ..Default::default()
            })
            .await
            .expect("status update");
    }

    // Actions for the future: one Done, one In progress.
    let throttle = api
        .create(ActionItem {
            description: "The aim here is to allow a gradual increase of incoming traffic on new instances, in order to keep control over CPU and memory load.".into(),
            ..item(
                &inc.id,
                "Identification and setting up a throttle system for next DBs migrations",
                ActionItemStatus::Done,
            )
        })
        .await;
    let tooling = api
        .create(item(
            &inc.id,
            "Improving our internal processes and tools to optimize DB crash resolution time",
            ActionItemStatus::InProgress,
        ))
        .await;
    assert!(throttle.complete_time.is_some());
    assert!(tooling.complete_time.is_none());

    let sections = vec![
        section(
            "Incident",
            "Following a major maintenance on our Livechat database (DB) to upgrade to a new version, scheduled on Feb. 22th 6:30 > 8:00 CET, we encountered CPU scalability problems as traffic on the new instance began to increase with the start of the day in Europe.\n\nDowntime on conversations processing happened on Feb. 22th, between 9:25 > 10:50 CET.",
        ),
        section(
            "Resolution",
            "As soon as we became aware of this incident, we shut down the services displaying contact notifications. Finally we were able to restart all services one by one without risking a new CPU burst.",
        ),
        // Its actions are the incident's action items, not text.
        section("Actions for the future", ""),
    ];
    let draft = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: sections.clone(),
                author: "iAdvize".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("postmortem draft");
    let posted = ts("2024-02-26T10:05:00+01:00");
    let published = api
        .try_publish(&inc.id, &draft.etag, Some(posted))
        .await
        .expect("publish");
    assert_eq!(published.sections, sections);
    assert_eq!(
        titles(&published.sections),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(published.publish_time, Some(posted));
    assert_eq!(published.author, "iAdvize");

    let after = api.get_incident(&inc.id).await;
    assert_eq!(after.status, IncidentStatus::Resolved as i32);
    assert_eq!(after.resolve_time, Some(ts("2024-02-22T14:48:00+01:00")));
    assert_eq!(after.postmortem_publish_time, Some(posted));
    assert_eq!(
        (after.action_item_count, after.open_action_item_count),
        (2, 1)
    );
    let listed = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(listed, vec![tooling.clone(), throttle.clone()]);
    let still_open = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            statuses: vec![
                ActionItemStatus::Open as i32,
                ActionItemStatus::InProgress as i32,
            ],
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&still_open), vec![tooling.id.clone()]);
    let events = api
        .events(&inc.id, &[TimelineEventKind::PostmortemPublished])
        .await;
    assert_eq!(events.len(), 1);
    match &events[0].payload {
        Some(Payload::PostmortemPublished(p)) => {
            assert_eq!(
                p.section_titles,
                ["Incident", "Resolution", "Actions for the future"]
            );
        }
        other => panic!("published payload: {other:?}"),
    }
}
