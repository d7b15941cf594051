//! Publishing an open incident's postmortem or publishing twice; an item
//! on a deleted incident.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn publishing_an_open_incidents_postmortem_is_refused_and_changes_nothing() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Still open").await;
    let pm = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "early draft".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft on an open incident");
    for status in [IncidentStatus::Investigating, IncidentStatus::Monitoring] {
        api.post(&inc.id, status).await;
        assert_rejected(
            &srv,
            Rejection::incident_open(&inc.id),
            api.try_publish(&inc.id, &pm.etag, None),
        )
        .await;
    }
    assert!(api.get_pm(&inc.id).await.publish_time.is_none());
    assert!(
        api.get_incident(&inc.id)
            .await
            .postmortem_publish_time
            .is_none()
    );
    // Reopened after resolution: refused again.
    api.post(&inc.id, IncidentStatus::Resolved).await;
    api.post(&inc.id, IncidentStatus::Investigating).await;
    assert_rejected(
        &srv,
        Rejection::incident_open(&inc.id),
        api.try_publish(&inc.id, "", None),
    )
    .await;
}

#[tokio::test]
async fn publishing_twice_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Published once").await;
    let at = ts("2024-02-26T09:05:00Z");
    let first = api
        .try_publish(&inc.id, "", Some(at))
        .await
        .expect("publish");
    assert_rejected(
        &srv,
        Rejection::already_published(&inc.id),
        api.try_publish(&inc.id, "", None),
    )
    .await;
    // Twice, with the current etag.
    assert_rejected(
        &srv,
        Rejection::already_published(&inc.id),
        api.try_publish(&inc.id, &first.etag, None),
    )
    .await;
    assert_eq!(api.get_pm(&inc.id).await.publish_time, Some(at));
    assert_eq!(
        api.get_incident(&inc.id).await.postmortem_publish_time,
        Some(at)
    );
}

#[tokio::test]
async fn an_item_on_a_deleted_incident_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Deleted").await;
    api.inc
        .delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete incident");
    assert_rejected(
        &srv,
        Rejection::deleted(&inc.id),
        api.try_create(item(&inc.id, "too late", ActionItemStatus::Open)),
    )
    .await;
    // An unknown incident is NOT_FOUND.
    let unknown = rid();
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", &unknown),
        api.try_create(item(&unknown, "nowhere", ActionItemStatus::Open)),
    )
    .await;
}
