//! Delete, Undelete, writes on a deleted incident, request_id reuse.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn delete_and_undelete_incident_reject_bad_input() {
    let srv = TestServer::start().await;
    let live = declare(&srv, valid_incident()).await;
    let victim = declare(&srv, valid_incident()).await;
    let unknown = rid();
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "Delete/UndeleteIncident");

    let del = |id: &str, etag: &str, request_id: &str| DeleteIncidentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: request_id.to_owned(),
    };
    let undel = |id: &str, etag: &str| UndeleteIncidentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: String::new(),
    };
    for (name, req, want) in [
        (
            "delete: id empty",
            del("", "", ""),
            Rejection::invalid(&["id"]),
        ),
        (
            "delete: id garbage",
            del("INC-1x", "", ""),
            Rejection::invalid(&["id"]),
        ),
        (
            "delete: request_id not a UUID",
            del(&victim.id, "", "x"),
            Rejection::invalid(&["request_id"]),
        ),
        (
            "delete: unknown incident",
            del(&unknown, "", ""),
            Rejection::not_found("incident_id", &unknown),
        ),
        (
            "delete: stale etag",
            del(&victim.id, "W/\"stale\"", ""),
            Rejection::stale_etag("incident_id", &victim.id),
        ),
    ] {
        cases.reject(name, want, client.delete_incident(req)).await;
    }
    for (name, req, want) in [
        (
            "undelete: id garbage",
            undel("x", ""),
            Rejection::invalid(&["id"]),
        ),
        (
            "undelete: unknown incident",
            undel(&unknown, ""),
            Rejection::not_found("incident_id", &unknown),
        ),
        (
            "undelete: live incident",
            undel(&live.id, ""),
            Rejection::already_exists("incident_id", &live.id),
        ),
        (
            "undelete: live incident with its current etag",
            undel(&live.id, &live.etag),
            Rejection::already_exists("incident_id", &live.id),
        ),
    ] {
        cases
            .reject(name, want, client.undelete_incident(req))
            .await;
    }

    let deleted = cases
        .accept(
            "delete with the current etag",
            client.delete_incident(del(&victim.id, &victim.etag, "")),
        )
        .await
        .and_then(|r| r.incident)
        .expect("the first delete succeeds");
    if deleted.delete_time.is_none() {
        cases.fail("delete with the current etag", "no delete_time".into());
    }
    let d = &deleted.id;
    cases
        .reject(
            "delete twice",
            Rejection::not_found("incident_id", d),
            client.delete_incident(del(d, "", "")),
        )
        .await;
    cases
        .reject(
            "undelete with a stale etag",
            Rejection::stale_etag("incident_id", d),
            client.undelete_incident(undel(d, &victim.etag)),
        )
        .await;
    cases
        .reject(
            "update a deleted incident",
            Rejection::deleted(d),
            client.update_incident(update_with(d, &["title"], |i| i.title = "x".into())),
        )
        .await;
    cases
        .reject(
            "update a deleted incident with its current etag",
            Rejection::deleted(d),
            client.update_incident(update_with(d, &["title"], |i| {
                i.title = "x".into();
                i.etag = deleted.etag.clone();
            })),
        )
        .await;
    cases
        .reject(
            "post a status update on a deleted incident",
            Rejection::deleted(d),
            client.post_status_update(post_with(d, |_| {})),
        )
        .await;
    cases
        .reject(
            "resolve a deleted incident",
            Rejection::deleted(d),
            client.post_status_update(post_with(d, |r| r.status = IncidentStatus::Resolved as i32)),
        )
        .await;
    // Get still returns a deleted incident; undelete brings it back once.
    cases
        .accept(
            "get a deleted incident",
            client.get_incident(GetIncidentRequest {
                id: d.clone(),
                ..Default::default()
            }),
        )
        .await;
    cases
        .accept(
            "undelete with the current etag",
            client.undelete_incident(undel(d, &deleted.etag)),
        )
        .await;
    cases
        .reject(
            "undelete twice",
            Rejection::already_exists("incident_id", d),
            client.undelete_incident(undel(d, "")),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn request_id_reused_for_another_request_is_refused() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "request_id reuse");
    let used = rid();
    let first = cases
        .accept(
            "create with a request_id",
            client.create_incident(CreateIncidentRequest {
                request_id: used.clone(),
                ..create_with(|_| {})
            }),
        )
        .await
        .and_then(|r| r.incident)
        .expect("created");
    let reused = || Rejection::request_id_reused(&used);
    cases
        .reject(
            "same request_id, other title",
            reused(),
            client.create_incident(CreateIncidentRequest {
                request_id: used.clone(),
                ..create_with(|i| i.title = "Another incident".into())
            }),
        )
        .await;
    cases
        .reject(
            "same request_id, an occur_time added",
            reused(),
            client.create_incident(CreateIncidentRequest {
                request_id: used.clone(),
                occur_time: Some(from_now(60 * -10)),
                ..create_with(|_| {})
            }),
        )
        .await;
    // A request rejected inside its write records nothing: its request_id
    // stays free for the corrected request.
    let post_rid = rid();
    let missing = rid();
    cases
        .reject(
            "post with a request_id, rejected for an unknown component",
            Rejection::invalid(&["component_impacts[0].component_id"]),
            client.post_status_update(post_with(&first.id, |r| {
                r.request_id = post_rid.clone();
                r.component_impacts = vec![impact_on(&missing, ImpactLevel::MajorOutage as i32)];
            })),
        )
        .await;
    cases
        .accept(
            "post with a request_id",
            client.post_status_update(post_with(&first.id, |r| r.request_id = post_rid.clone())),
        )
        .await;
    cases
        .reject(
            "same request_id, other message",
            Rejection::request_id_reused(&post_rid),
            client.post_status_update(post_with(&first.id, |r| {
                r.request_id = post_rid.clone();
                r.message = "Something else".into();
            })),
        )
        .await;
    cases.finish();
}
