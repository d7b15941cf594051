//! The life of an incident, end to end over a real socket.

use crate::support::{TestServer, create_component, post_status_update, ts};
use incident_client::*;

#[tokio::test]
async fn backfilled_incident_walks_through_every_status_and_reopens() {
    let srv = TestServer::start().await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &panel.id).await;
    let mut client = srv.incidents().await;

    // Seed 003: declared 10:04 CEST, identified 10:22, monitoring 10:45, resolved 15:38.
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "Difficulty to load the desk".into(),
                kind: IncidentKind::Incident as i32,
                severity: Severity::P1 as i32,
                component_impacts: vec![ComponentImpact {
                    component_id: login.id.clone(),
                    impact: ImpactLevel::MajorOutage as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            occur_time: Some(ts("2023-08-11T10:04:00+02:00")),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(created.reference, "INC-1");
    assert_eq!(created.status, IncidentStatus::Investigating as i32);
    assert_eq!(created.declare_time, Some(ts("2023-08-11T08:04:00Z")));
    assert!(created.identify_time.is_none());

    // The group shows the worst impact below it while the incident is open.
    let group = srv
        .components()
        .await
        .get_component(GetComponentRequest {
            id: panel.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .component
        .unwrap();
    assert_eq!(group.status, ImpactLevel::MajorOutage as i32);

    let r = post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Identified,
        "Patch being deployed",
        vec![],
        Some("2023-08-11T10:22:00+02:00"),
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.identify_time, Some(ts("2023-08-11T08:22:00Z")));
    assert_eq!(
        r.status_update.unwrap().post_time,
        Some(ts("2023-08-11T08:22:00Z"))
    );

    let r = post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Monitoring,
        "A fix is live",
        vec![ComponentImpact {
            component_id: login.id.clone(),
            impact: ImpactLevel::DegradedPerformance as i32,
            ..Default::default()
        }],
        Some("2023-08-11T10:45:00+02:00"),
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.mitigate_time, Some(ts("2023-08-11T08:45:00Z")));
    assert_eq!(
        i.component_impacts[0].impact,
        ImpactLevel::DegradedPerformance as i32
    );

    // An "Update" post keeps the status.
    let r = post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Unspecified,
        "Still watching",
        vec![],
        Some("2023-08-11T12:00:00+02:00"),
    )
    .await;
    assert_eq!(
        r.incident.unwrap().status,
        IncidentStatus::Monitoring as i32
    );
    assert_eq!(
        r.status_update.unwrap().status,
        IncidentStatus::Monitoring as i32
    );

    let r = post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Resolved,
        "Resolved",
        vec![],
        Some("2023-08-11T15:38:00+02:00"),
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::Resolved as i32);
    assert_eq!(i.resolve_time, Some(ts("2023-08-11T13:38:00Z")));
    // Resolution returns every impact to operational, and the group with it.
    assert!(
        i.component_impacts
            .iter()
            .all(|c| c.impact == ImpactLevel::Operational as i32)
    );
    let group = srv
        .components()
        .await
        .get_component(GetComponentRequest {
            id: panel.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .component
        .unwrap();
    assert_eq!(group.status, ImpactLevel::Operational as i32);

    // Posting an incident status on a resolved incident reopens it.
    let r = post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Investigating,
        "It is back",
        vec![],
        None,
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::Investigating as i32);
    assert!(i.resolve_time.is_none(), "reopening clears resolve_time");
    assert_eq!(
        i.identify_time,
        Some(ts("2023-08-11T08:22:00Z")),
        "the first identification stays"
    );

    let updates = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .status_updates;
    assert_eq!(updates.len(), 5);
    assert_eq!(updates[0].message, "It is back", "newest first");
    assert_eq!(updates[4].message, "Patch being deployed");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let mut srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    let created = srv
        .incidents()
        .await
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "Webhook delays".into(),
                kind: IncidentKind::Incident as i32,
                component_impacts: vec![ComponentImpact {
                    component_id: c.id.clone(),
                    impact: ImpactLevel::PartialOutage as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    post_status_update(
        &mut srv.incidents().await,
        &created.id,
        IncidentStatus::Identified,
        "Found it",
        vec![],
        None,
    )
    .await;
    let before = srv.snapshot().await;

    srv.restart().await;

    srv.assert_unchanged(&before, "a restart").await;
    let got = srv
        .incidents()
        .await
        .get_incident(GetIncidentRequest {
            id: "INC-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.status, IncidentStatus::Identified as i32);
    let next = srv
        .incidents()
        .await
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "Second".into(),
                kind: IncidentKind::Incident as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(
        next.reference, "INC-2",
        "references continue after a restart"
    );
}
