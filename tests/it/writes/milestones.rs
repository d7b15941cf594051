//! Milestones set by hand and derived from posts, next_update_time, and a
//! maintenance from SCHEDULED to COMPLETED.

use incident_client::prost_types::Timestamp;
use incident_client::*;

use super::{get, get_component, post, post_at, update};
use crate::support::*;

#[tokio::test]
async fn explicit_milestones_survive_later_status_updates() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Difficulty to load the desk")),
            occur_time: Some(ts("2023-08-11T10:04:00+02:00")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();

    // "Over since 10:50", entered before the status moves.
    let set = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            mitigate_time: Some(ts("2023-08-11T10:50:00+02:00")),
            resolve_time: Some(ts("2023-08-11T11:00:00+02:00")),
            ..Default::default()
        },
        &["mitigate_time", "resolve_time"],
    )
    .await
    .expect("set milestones");
    assert_eq!(set.mitigate_time, Some(ts("2023-08-11T08:50:00Z")));
    assert_eq!(set.status, IncidentStatus::Investigating as i32);

    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Identified,
        vec![],
        Some("2023-08-11T10:22:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.identify_time,
        Some(ts("2023-08-11T08:22:00Z")),
        "milestones not set by hand still derive"
    );
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Monitoring,
        vec![],
        Some("2023-08-11T11:30:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.mitigate_time,
        Some(ts("2023-08-11T08:50:00Z")),
        "MONITORING does not overwrite an explicit mitigate_time"
    );
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Resolved,
        vec![],
        Some("2023-08-11T15:38:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(i.resolve_time, Some(ts("2023-08-11T09:00:00Z")));
    assert_eq!(get(&mut client, &created.id).await, i);
}

#[tokio::test]
async fn clearing_an_explicit_milestone_lets_derivation_take_over() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays")),
            occur_time: Some(ts("2024-03-01T09:00:00Z")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    update(
        &mut client,
        Incident {
            id: created.id.clone(),
            identify_time: Some(ts("2024-03-01T09:10:00Z")),
            ..Default::default()
        },
        &[],
    )
    .await
    .expect("set identify_time");
    let cleared = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            ..Default::default()
        },
        &["identify_time"],
    )
    .await
    .expect("clear identify_time");
    assert!(cleared.identify_time.is_none());
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Identified,
        vec![],
        Some("2024-03-01T09:30:00Z"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.identify_time,
        Some(ts("2024-03-01T09:30:00Z")),
        "derived again once the override is cleared"
    );
}

#[tokio::test]
async fn clearing_an_override_after_the_status_moved_restores_the_derived_time() {
    // mitigate_time derives from the first MONITORING update. Once a hand-set
    // value is cleared, the incident that went MONITORING at 09:30 shows 09:30
    // again rather than no mitigation time at all.
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays")),
            occur_time: Some(ts("2024-03-01T09:00:00Z")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    update(
        &mut client,
        Incident {
            id: created.id.clone(),
            mitigate_time: Some(ts("2024-03-01T09:20:00Z")),
            ..Default::default()
        },
        &["mitigate_time"],
    )
    .await
    .expect("set mitigate_time");
    post_at(
        &mut client,
        &created.id,
        IncidentStatus::Monitoring,
        vec![],
        Some("2024-03-01T09:30:00Z"),
    )
    .await;
    let cleared = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            ..Default::default()
        },
        &["mitigate_time"],
    )
    .await
    .expect("clear mitigate_time");
    assert_eq!(
        cleared.mitigate_time,
        Some(ts("2024-03-01T09:30:00Z")),
        "the derived value (first MONITORING post) takes over again"
    );
}

#[tokio::test]
async fn next_update_time_is_restated_by_every_status_update() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let promise = from_now(1800);
    let inc = create_incident(
        &mut client,
        Incident {
            next_update_time: Some(promise),
            ..plain_incident("Webhook delays")
        },
    )
    .await;
    assert_eq!(inc.next_update_time, Some(promise));

    let send = |next: Option<Timestamp>| PostStatusUpdateRequest {
        incident_id: inc.id.clone(),
        message: "Still investigating".into(),
        next_update_time: next,
        ..Default::default()
    };
    let later = from_now(3600);
    let r = client
        .post_status_update(send(Some(later)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incident.unwrap().next_update_time, Some(later));
    assert_eq!(r.status_update.unwrap().next_update_time, Some(later));

    let r = client
        .post_status_update(send(None))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.incident.unwrap().next_update_time.is_none(),
        "an update without a promise clears the incident's"
    );
    assert!(r.status_update.unwrap().next_update_time.is_none());
    assert!(get(&mut client, &inc.id).await.next_update_time.is_none());

    let again = from_now(900);
    let r = client
        .post_status_update(send(Some(again)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incident.unwrap().next_update_time, Some(again));
    // A status-moving update restates it too.
    let i = post(&mut client, &inc.id, IncidentStatus::Identified).await;
    assert!(i.next_update_time.is_none());

    // UpdateIncident may set it by hand.
    let set = update(
        &mut client,
        Incident {
            id: inc.id.clone(),
            next_update_time: Some(later),
            ..Default::default()
        },
        &["next_update_time"],
    )
    .await
    .unwrap();
    assert_eq!(set.next_update_time, Some(later));

    // A promise must lie after the update it is made in.
    assert_rejected(
        &srv,
        Rejection::invalid(&["next_update_time"]),
        client.post_status_update(send(Some(from_now(-60)))),
    )
    .await;
}

#[tokio::test]
async fn maintenance_runs_scheduled_to_completed() {
    let srv = TestServer::start().await;
    let platform = create_component(&srv, "Platform", "").await;
    let db = create_component(&srv, "Database", &platform.id).await;
    let mut client = srv.incidents().await;
    let m = create_incident(
        &mut client,
        Incident {
            kind: IncidentKind::Maintenance as i32,
            scheduled_start_time: Some(from_now(-600)),
            scheduled_end_time: Some(from_now(3600)),
            ..plain_incident("Database upgrade")
        },
    )
    .await;
    assert_eq!(m.kind, IncidentKind::Maintenance as i32);
    assert_eq!(
        m.status,
        IncidentStatus::Scheduled as i32,
        "SCHEDULED by default"
    );
    assert!(m.resolve_time.is_none());

    let r = post_at(
        &mut client,
        &m.id,
        IncidentStatus::InProgress,
        vec![impact(&db, ImpactLevel::UnderMaintenance)],
        None,
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::InProgress as i32);
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::UnderMaintenance as i32
    );
    assert_eq!(
        get_component(&srv, &platform.id).await.status,
        ImpactLevel::UnderMaintenance as i32,
        "the group shows maintenance below it"
    );

    // An unplanned degradation on the same component outranks maintenance.
    let outage = create_incident(
        &mut client,
        Incident {
            component_impacts: vec![impact(&db, ImpactLevel::DegradedPerformance)],
            ..plain_incident("Slow queries")
        },
    )
    .await;
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::DegradedPerformance as i32
    );
    post(&mut client, &outage.id, IncidentStatus::Resolved).await;
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::UnderMaintenance as i32
    );

    // Incident statuses do not apply to a maintenance.
    assert_rejected(
        &srv,
        Rejection::wrong_kind("status").meta("incident_id", &m.id),
        client.post_status_update(PostStatusUpdateRequest {
            incident_id: m.id.clone(),
            status: IncidentStatus::Monitoring as i32,
            message: "wrong kind".into(),
            ..Default::default()
        }),
    )
    .await;

    let i = post(&mut client, &m.id, IncidentStatus::Verifying).await;
    assert_eq!(i.status, IncidentStatus::Verifying as i32);
    assert!(i.resolve_time.is_none());
    let r = post_at(&mut client, &m.id, IncidentStatus::Completed, vec![], None).await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::Completed as i32);
    assert_eq!(
        i.resolve_time,
        r.status_update.unwrap().post_time,
        "COMPLETED sets resolve_time"
    );
    assert!(
        i.component_impacts
            .iter()
            .all(|c| c.impact == ImpactLevel::Operational as i32)
    );
    assert_eq!(
        get_component(&srv, &platform.id).await.status,
        ImpactLevel::Operational as i32
    );
    let closed = client
        .list_incidents(ListIncidentsRequest {
            open: Some(false),
            kind: IncidentKind::Maintenance as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(closed, [i]);

    // A maintenance status on an incident is refused too.
    assert_rejected(
        &srv,
        Rejection::wrong_kind("incident.status"),
        client.create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                status: IncidentStatus::Scheduled as i32,
                ..plain_incident("Wrong kind")
            }),
            ..Default::default()
        }),
    )
    .await;
}
