//! Every write emits its event kinds.

use std::collections::HashSet;

use incident_client::pb::timeline_event::Payload;
use incident_client::*;

use super::*;
use crate::support::*;

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
                ..Default::default()
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
