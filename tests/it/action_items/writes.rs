//! complete_time, etags and request_id retries of items and postmortems.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn complete_time_is_set_on_closing_and_cleared_on_reopening() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Completion").await;

    // Created closed: the time given, or the server's now.
    let given = ts("2024-02-26T09:00:00.123456789Z");
    let wont = api
        .create(ActionItem {
            complete_time: Some(given),
            ..item(&inc.id, "won't do, given time", ActionItemStatus::WontDo)
        })
        .await;
    assert_eq!(wont.complete_time, Some(given));
    let before = now_nanos();
    let done = api
        .create(item(&inc.id, "done now", ActionItemStatus::Done))
        .await;
    let after = now_nanos();
    let ct = nanos(&done.complete_time);
    assert!(
        ct >= before - 1_000_000_000 && ct <= after + 1_000_000_000,
        "complete_time is now"
    );

    // OPEN → DONE: now. DONE → WONT_DO stays closed: kept. → OPEN: cleared.
    let it = api
        .create(item(&inc.id, "moves around", ActionItemStatus::Open))
        .await;
    assert!(it.complete_time.is_none());
    let before = now_nanos();
    let closed = api.set_status(&it.id, ActionItemStatus::Done).await;
    let after = now_nanos();
    let ct = nanos(&closed.complete_time);
    assert!(ct >= before - 1_000_000_000 && ct <= after + 1_000_000_000);
    let still = api.set_status(&it.id, ActionItemStatus::WontDo).await;
    assert_eq!(still.complete_time, closed.complete_time);
    let reopened = api.set_status(&it.id, ActionItemStatus::Open).await;
    assert!(
        reopened.complete_time.is_none(),
        "cleared on leaving DONE/WONT_DO"
    );
    assert!(api.get_item(&it.id).await.complete_time.is_none());

    // Closed again with a given time, then back in progress.
    let at = ts("2024-03-01T10:00:00Z");
    let closed = api
        .try_update(
            ActionItem {
                id: it.id.clone(),
                status: ActionItemStatus::Done as i32,
                complete_time: Some(at),
                ..Default::default()
            },
            &["status", "complete_time"],
        )
        .await
        .expect("close with a time");
    assert_eq!(closed.complete_time, Some(at));
    // An empty mask means every field set: the same, on another item.
    let other = api
        .create(item(&inc.id, "empty mask", ActionItemStatus::Open))
        .await;
    let other = api
        .try_update(
            ActionItem {
                id: other.id.clone(),
                status: ActionItemStatus::WontDo as i32,
                complete_time: Some(at),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("close with an empty mask");
    assert_eq!(other.complete_time, Some(at));
    // Correcting complete_time on a closed item.
    let fixed = ts("2024-03-02T10:00:00Z");
    let corrected = api
        .try_update(
            ActionItem {
                id: it.id.clone(),
                complete_time: Some(fixed),
                ..Default::default()
            },
            &["complete_time"],
        )
        .await
        .expect("correct complete_time");
    assert_eq!(corrected.complete_time, Some(fixed));
    assert_eq!(corrected.status, ActionItemStatus::Done as i32);
    let back = api.set_status(&it.id, ActionItemStatus::InProgress).await;
    assert!(back.complete_time.is_none());
    assert_eq!(api.get_item(&it.id).await, back);
}

#[tokio::test]
async fn complete_time_on_an_open_item_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Completion refused").await;
    let open = api
        .create(item(&inc.id, "open", ActionItemStatus::Open))
        .await;
    let at = Some(ts("2024-03-01T10:00:00Z"));
    let mut cases = Cases::new(&srv, "complete_time on an open item");
    for (name, status) in [
        ("create OPEN", ActionItemStatus::Open),
        ("create IN_PROGRESS", ActionItemStatus::InProgress),
    ] {
        let req = CreateActionItemRequest {
            action_item: Some(ActionItem {
                complete_time: at,
                ..item(&inc.id, name, status)
            }),
            request_id: rid(),
        };
        cases
            .reject(
                name,
                Rejection::invalid(&["action_item.complete_time"]),
                api.ai.create_action_item(req),
            )
            .await;
    }
    for (name, status, paths) in [
        (
            "update complete_time alone on OPEN",
            ActionItemStatus::Unspecified,
            vec!["complete_time"],
        ),
        (
            "update to IN_PROGRESS with complete_time",
            ActionItemStatus::InProgress,
            vec!["status", "complete_time"],
        ),
    ] {
        let req = UpdateActionItemRequest {
            action_item: Some(ActionItem {
                id: open.id.clone(),
                status: status as i32,
                complete_time: at,
                ..Default::default()
            }),
            update_mask: mask(&paths),
            request_id: rid(),
        };
        cases
            .reject(
                name,
                Rejection::invalid(&["action_item.complete_time"]),
                api.ai.update_action_item(req),
            )
            .await;
    }
    cases.finish();
    assert_eq!(api.get_item(&open.id).await, open);
}

#[tokio::test]
async fn stale_etags_are_aborted() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Etags").await;
    let v1 = api
        .create(item(&inc.id, "etag", ActionItemStatus::Open))
        .await;
    let v2 = api
        .try_update(
            ActionItem {
                id: v1.id.clone(),
                owner: "alice".into(),
                etag: v1.etag.clone(),
                ..Default::default()
            },
            &["owner"],
        )
        .await
        .expect("update with the current etag");
    assert_ne!(v2.etag, v1.etag);

    let mut cases = Cases::new(&srv, "stale etags");
    let req = UpdateActionItemRequest {
        action_item: Some(ActionItem {
            id: v1.id.clone(),
            owner: "bob".into(),
            etag: v1.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["owner"]),
        request_id: String::new(),
    };
    cases
        .reject(
            "UpdateActionItem stale",
            Rejection::stale_etag("action_item_id", &v1.id),
            api.ai.update_action_item(req),
        )
        .await;
    let req = DeleteActionItemRequest {
        id: v1.id.clone(),
        etag: v1.etag.clone(),
        request_id: String::new(),
    };
    cases
        .reject(
            "DeleteActionItem stale",
            Rejection::stale_etag("action_item_id", &v1.id),
            api.ai.delete_action_item(req),
        )
        .await;
    let gone = api
        .try_delete(&v2.id, &v2.etag)
        .await
        .expect("delete with the current etag");
    assert!(gone.delete_time.is_some());

    // The postmortem has an etag of its own.
    let p0 = api.get_pm(&inc.id).await;
    let p1 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "draft 1".into(),
                etag: p0.etag.clone(),
                ..Default::default()
            },
            &["body"],
        )
        .await
        .expect("update with the current etag");
    assert_ne!(p1.etag, p0.etag);
    let req = UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: inc.id.clone(),
            body: "draft 2".into(),
            etag: p0.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["body"]),
        request_id: String::new(),
    };
    cases
        .reject(
            "UpdatePostmortem stale",
            Rejection::stale_etag("postmortem_id", &inc.id),
            api.inc.update_postmortem(req),
        )
        .await;
    let req = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        etag: p0.etag.clone(),
        ..Default::default()
    };
    cases
        .reject(
            "PublishPostmortem stale",
            Rejection::stale_etag("postmortem_id", &inc.id),
            api.inc.publish_postmortem(req),
        )
        .await;
    cases.finish();
    assert!(api.get_pm(&inc.id).await.publish_time.is_none());
    let published = api
        .try_publish(&inc.id, &p1.etag, None)
        .await
        .expect("publish with the current etag");
    assert!(published.publish_time.is_some());
}

#[tokio::test]
async fn postmortem_etag_ignores_incident_writes() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Independent etags").await;
    let pm = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "Draft written while the incident is open".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft");

    // Status updates, an incident edit, a note and an action item.
    let moved = api.post(&inc.id, IncidentStatus::Identified).await;
    assert_ne!(moved.etag, inc.etag);
    api.inc
        .post_status_update(PostStatusUpdateRequest {
            incident_id: inc.id.clone(),
            message: "Still working on it".into(),
            ..Default::default()
        })
        .await
        .expect("post an Update");
    api.inc
        .update_incident(UpdateIncidentRequest {
            incident: Some(Incident {
                id: inc.id.clone(),
                title: "Independent etags (renamed)".into(),
                ..Default::default()
            }),
            update_mask: mask(&["title"]),
            request_id: String::new(),
        })
        .await
        .expect("rename");
    api.tl
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "a note".into(),
            ..Default::default()
        })
        .await
        .expect("note");
    api.create(item(&inc.id, "follow-up", ActionItemStatus::Open))
        .await;
    let resolved = api.post(&inc.id, IncidentStatus::Resolved).await;

    let same = api.get_pm(&inc.id).await;
    assert_eq!(
        same.etag, pm.etag,
        "incident writes do not touch the postmortem etag"
    );
    assert_eq!(same, pm);
    let edited = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "Final draft".into(),
                etag: pm.etag.clone(),
                ..Default::default()
            },
            &["body"],
        )
        .await
        .expect("the etag read before the status updates still matches");
    // And a postmortem edit does not touch the incident's etag.
    assert_eq!(api.get_incident(&inc.id).await.etag, resolved.etag);
    api.try_publish(&inc.id, &edited.etag, None)
        .await
        .expect("publish");
}

#[tokio::test]
async fn request_id_retry_returns_the_first_response_and_writes_nothing() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Retries").await;
    let mut cases = Cases::new(&srv, "request_id reuse");

    // CreateActionItem.
    let id = rid();
    let create = CreateActionItemRequest {
        action_item: Some(ActionItem {
            owner: "alice".into(),
            due_time: Some(ts("2030-01-01T00:00:00Z")),
            ..item(&inc.id, "retried create", ActionItemStatus::Open)
        }),
        request_id: id.clone(),
    };
    let first = api
        .ai
        .create_action_item(create.clone())
        .await
        .expect("create")
        .into_inner();
    let state = srv.snapshot().await;
    let retry = api
        .ai
        .create_action_item(create.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "CreateActionItem retry");
    srv.assert_unchanged(&state, "CreateActionItem retry wrote")
        .await;
    let mut other = create.clone();
    other.action_item.as_mut().expect("item").title = "another title".into();
    cases
        .reject(
            "CreateActionItem reused",
            Rejection::request_id_reused(&id),
            api.ai.create_action_item(other),
        )
        .await;
    let created = first.action_item.expect("item");
    assert_eq!(api.counts(&inc.id).await, (1, 1));

    // UpdateActionItem.
    let update = UpdateActionItemRequest {
        action_item: Some(ActionItem {
            id: created.id.clone(),
            status: ActionItemStatus::Done as i32,
            etag: created.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["status"]),
        request_id: rid(),
    };
    let first = api
        .ai
        .update_action_item(update.clone())
        .await
        .expect("update")
        .into_inner();
    let state = srv.snapshot().await;
    // The etag sent is stale now: a retry must still answer the first response.
    let retry = api
        .ai
        .update_action_item(update.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "UpdateActionItem retry");
    srv.assert_unchanged(&state, "UpdateActionItem retry wrote")
        .await;
    let mut other = update.clone();
    other.action_item.as_mut().expect("item").status = ActionItemStatus::WontDo as i32;
    cases
        .reject(
            "UpdateActionItem reused",
            Rejection::request_id_reused(&update.request_id),
            api.ai.update_action_item(other),
        )
        .await;
    let updated = first.action_item.expect("item");

    // DeleteActionItem: a retry is not NOT_FOUND.
    let delete = DeleteActionItemRequest {
        id: updated.id.clone(),
        etag: updated.etag.clone(),
        request_id: rid(),
    };
    let first = api
        .ai
        .delete_action_item(delete.clone())
        .await
        .expect("delete")
        .into_inner();
    let state = srv.snapshot().await;
    let retry = api
        .ai
        .delete_action_item(delete.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "DeleteActionItem retry");
    srv.assert_unchanged(&state, "DeleteActionItem retry wrote")
        .await;

    // UpdatePostmortem.
    let write = UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: inc.id.clone(),
            body: "body".into(),
            sections: vec![
                section("Root Cause", "CPU"),
                section("Impact", "all channels"),
            ],
            author: "ops".into(),
            ..Default::default()
        }),
        update_mask: None,
        request_id: rid(),
    };
    let first = api
        .inc
        .update_postmortem(write.clone())
        .await
        .expect("write")
        .into_inner();
    let state = srv.snapshot().await;
    let retry = api
        .inc
        .update_postmortem(write.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "UpdatePostmortem retry");
    srv.assert_unchanged(&state, "UpdatePostmortem retry wrote")
        .await;
    let mut other = write.clone();
    other.postmortem.as_mut().expect("pm").sections.reverse();
    cases
        .reject(
            "UpdatePostmortem reused",
            Rejection::request_id_reused(&write.request_id),
            api.inc.update_postmortem(other),
        )
        .await;

    // PublishPostmortem: a retry is not ALREADY_PUBLISHED.
    let publish = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        etag: first.postmortem.expect("pm").etag,
        request_id: rid(),
        occur_time: Some(ts("2024-02-26T09:05:00Z")),
    };
    let first = api
        .inc
        .publish_postmortem(publish.clone())
        .await
        .expect("publish")
        .into_inner();
    let state = srv.snapshot().await;
    let retry = api
        .inc
        .publish_postmortem(publish.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "PublishPostmortem retry");
    srv.assert_unchanged(&state, "PublishPostmortem retry wrote")
        .await;
    let mut other = publish.clone();
    other.occur_time = Some(ts("2024-02-27T09:05:00Z"));
    cases
        .reject(
            "PublishPostmortem reused",
            Rejection::request_id_reused(&publish.request_id),
            api.inc.publish_postmortem(other),
        )
        .await;

    // The same request_id on another method is another key.
    let create_again = CreateActionItemRequest {
        action_item: Some(item(
            &inc.id,
            "same id, other method",
            ActionItemStatus::Open,
        )),
        request_id: publish.request_id.clone(),
    };
    api.ai
        .create_action_item(create_again)
        .await
        .expect("request ids are per method");
    cases.finish();
}
