//! Soft delete of incidents, and the component tree: sibling names, cycles,
//! deleting a component in use.

use incident_client::*;

use super::{get, get_component, post, update};
use crate::support::*;

#[tokio::test]
async fn soft_delete_hides_keeps_and_restores_an_incident() {
    let srv = TestServer::start().await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &panel.id).await;
    let mut client = srv.incidents().await;
    let inc = create_incident(
        &mut client,
        Incident {
            component_impacts: vec![impact(&login, ImpactLevel::MajorOutage)],
            ..plain_incident("Duplicate of INC-1")
        },
    )
    .await;
    let keep = create_incident(&mut client, plain_incident("Real one")).await;
    assert_eq!(
        get_component(&srv, &panel.id).await.status,
        ImpactLevel::MajorOutage as i32
    );

    let deleted = client
        .delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            etag: inc.etag.clone(),
            request_id: String::new(),
        })
        .await
        .expect("delete")
        .into_inner()
        .incident
        .unwrap();
    assert!(deleted.delete_time.is_some(), "Delete returns delete_time");
    assert_ne!(deleted.etag, inc.etag);
    assert_eq!(deleted.title, inc.title);

    // Hidden from lists, shown with show_deleted, still readable by Get.
    let listed = |show_deleted| ListIncidentsRequest {
        show_deleted,
        ..Default::default()
    };
    let ids: Vec<String> = client
        .list_incidents(listed(false))
        .await
        .unwrap()
        .into_inner()
        .incidents
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&keep.id));
    let all = client
        .list_incidents(listed(true))
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], deleted);
    assert_eq!(get(&mut client, &inc.id).await, deleted);
    assert_eq!(get(&mut client, &inc.reference).await, deleted);

    // A deleted incident no longer counts toward its components' status.
    assert_eq!(
        get_component(&srv, &login.id).await.status,
        ImpactLevel::Operational as i32
    );
    assert_eq!(
        get_component(&srv, &panel.id).await.status,
        ImpactLevel::Operational as i32
    );

    // Deleting again is NOT_FOUND; writes to it are refused.
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", &inc.id),
        client.delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        }),
    )
    .await;
    // Post on a deleted incident.
    assert_rejected(
        &srv,
        Rejection::deleted(&inc.id),
        client.post_status_update(PostStatusUpdateRequest {
            incident_id: inc.id.clone(),
            message: "still there?".into(),
            ..Default::default()
        }),
    )
    .await;
    // Update on a deleted incident.
    assert_rejected(
        &srv,
        Rejection::deleted(&inc.id),
        update(
            &mut client,
            Incident {
                id: inc.id.clone(),
                title: "renamed".into(),
                ..Default::default()
            },
            &["title"],
        ),
    )
    .await;

    // Undelete restores it, and its impact with it.
    let restored = client
        .undelete_incident(UndeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .expect("undelete")
        .into_inner()
        .incident
        .unwrap();
    assert!(restored.delete_time.is_none());
    assert_ne!(restored.etag, deleted.etag);
    assert_eq!(restored.component_impacts, inc.component_impacts);
    assert_eq!(
        client
            .list_incidents(listed(false))
            .await
            .unwrap()
            .into_inner()
            .incidents
            .len(),
        2
    );
    assert_eq!(
        get_component(&srv, &panel.id).await.status,
        ImpactLevel::MajorOutage as i32
    );
    // Undelete a live incident.
    assert_rejected(
        &srv,
        Rejection::already_exists("incident_id", &inc.id),
        client.undelete_incident(UndeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        }),
    )
    .await;
    // unknown incident
    let unknown = rid();
    assert_rejected(
        &srv,
        Rejection::not_found("incident_id", &unknown),
        client.delete_incident(DeleteIncidentRequest {
            id: unknown.clone(),
            ..Default::default()
        }),
    )
    .await;
}

#[tokio::test]
async fn component_names_are_unique_among_siblings_only() {
    let srv = TestServer::start().await;
    let mut components = srv.components().await;
    let admin = create_component(&srv, "Administration", "").await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    // Seed 000: "Login" under two groups.
    let admin_login = create_component(&srv, "Login", &admin.id).await;
    let panel_login = create_component(&srv, "Login", &panel.id).await;
    let users = create_component(&srv, "Users", &admin.id).await;

    // A second Login under Administration.
    assert_rejected(
        &srv,
        Rejection::already_exists("component_id", &admin_login.id),
        components.create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Login".into(),
                parent_id: admin.id.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        }),
    )
    .await;
    // A second top-level Administration.
    assert_rejected(
        &srv,
        Rejection::already_exists("component_id", &admin.id),
        components.create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Administration".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }),
    )
    .await;

    // Renaming onto a sibling's name, or moving next to a namesake, is refused.
    assert_rejected(
        &srv,
        Rejection::already_exists("component_id", &admin_login.id),
        components.update_component(UpdateComponentRequest {
            component: Some(Component {
                id: users.id.clone(),
                name: "Login".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        }),
    )
    .await;
    // Move next to a namesake.
    assert_rejected(
        &srv,
        Rejection::already_exists("component_id", &panel_login.id),
        components.update_component(UpdateComponentRequest {
            component: Some(Component {
                id: admin_login.id.clone(),
                parent_id: panel.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["parent_id"]),
            request_id: String::new(),
        }),
    )
    .await;
    assert_eq!(get_component(&srv, &users.id).await.name, "Users");

    // Renaming to a cousin's name is fine.
    let renamed = components
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: users.id.clone(),
                name: "Visitors".into(),
                etag: users.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect("rename")
        .into_inner()
        .component
        .unwrap();
    assert_eq!(renamed.name, "Visitors");
    assert_ne!(renamed.etag, users.etag);
    // Stale component etag.
    assert_rejected(
        &srv,
        Rejection::stale_etag("component_id", &users.id),
        components.update_component(UpdateComponentRequest {
            component: Some(Component {
                id: users.id.clone(),
                name: "Agents".into(),
                etag: users.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        }),
    )
    .await;

    // Once a Login is deleted, its name is free again among its siblings.
    components
        .delete_component(DeleteComponentRequest {
            id: panel_login.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete leaf");
    let again = create_component(&srv, "Login", &panel.id).await;
    assert_ne!(again.id, panel_login.id);
}

#[tokio::test]
async fn a_component_cannot_move_under_itself_or_its_descendants() {
    let srv = TestServer::start().await;
    let mut components = srv.components().await;
    let admin = create_component(&srv, "Administration", "").await;
    let login = create_component(&srv, "Login", &admin.id).await;
    let sso = create_component(&srv, "SSO", &login.id).await;
    for parent in [&admin.id, &login.id, &sso.id] {
        // A cycle in the tree.
        assert_rejected(
            &srv,
            Rejection::invalid(&["component.parent_id"]),
            components.update_component(UpdateComponentRequest {
                component: Some(Component {
                    id: admin.id.clone(),
                    parent_id: parent.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["parent_id"]),
                request_id: String::new(),
            }),
        )
        .await;
    }
    assert_eq!(get_component(&srv, &admin.id).await.parent_id, "");

    // Moving a leaf up to the top level is allowed.
    let moved = components
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: sso.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["parent_id"]),
            request_id: String::new(),
        })
        .await
        .expect("move to the top")
        .into_inner()
        .component
        .unwrap();
    assert_eq!(moved.parent_id, "");
}

#[tokio::test]
async fn a_component_in_use_cannot_be_deleted_until_resolved() {
    let srv = TestServer::start().await;
    let mut components = srv.components().await;
    let mut client = srv.incidents().await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &panel.id).await;
    let inc = create_incident(
        &mut client,
        Incident {
            component_impacts: vec![impact(&login, ImpactLevel::PartialOutage)],
            ..plain_incident("Login failures")
        },
    )
    .await;

    // An open incident uses it.
    assert_rejected(
        &srv,
        Rejection::has_dependents(&login.id),
        components.delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        }),
    )
    .await;
    // It has a live child.
    assert_rejected(
        &srv,
        Rejection::has_dependents(&panel.id),
        components.delete_component(DeleteComponentRequest {
            id: panel.id.clone(),
            ..Default::default()
        }),
    )
    .await;

    // Monitoring is still open.
    post(&mut client, &inc.id, IncidentStatus::Monitoring).await;
    // Still open while monitoring.
    assert_rejected(
        &srv,
        Rejection::has_dependents(&login.id),
        components.delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        }),
    )
    .await;

    post(&mut client, &inc.id, IncidentStatus::Resolved).await;
    let deleted = components
        .delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        })
        .await
        .expect("resolved incidents do not hold a component")
        .into_inner()
        .component
        .unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(
        get_component(&srv, &login.id).await,
        deleted,
        "Get still returns it"
    );
    // Delete twice.
    assert_rejected(
        &srv,
        Rejection::not_found("component_id", &login.id),
        components.delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        }),
    )
    .await;
    components
        .delete_component(DeleteComponentRequest {
            id: panel.id.clone(),
            ..Default::default()
        })
        .await
        .expect("no live child any more");
    // The resolved incident still shows what it touched.
    assert_eq!(get(&mut client, &inc.id).await.component_impacts.len(), 1);
}

/// An incident names the components it affects as they are named now; an
/// event names them as they were when it was committed; a name sent in a
/// request is ignored.
#[tokio::test]
async fn impacts_carry_the_component_name() {
    let srv = TestServer::start().await;
    let mut incidents = srv.incidents().await;
    let login = create_component(&srv, "Login", "").await;
    let names = |impacts: &[ComponentImpact]| -> Vec<String> {
        impacts.iter().map(|c| c.component_name.clone()).collect()
    };
    let created = create_incident(
        &mut incidents,
        Incident {
            component_impacts: vec![ComponentImpact {
                component_name: "ignored".into(),
                ..impact(&login, ImpactLevel::MajorOutage)
            }],
            ..plain_incident("Sign-in fails")
        },
    )
    .await;
    assert_eq!(names(&created.component_impacts), ["Login"]);
    // Read twice: from the database, then from memory.
    for _ in 0..2 {
        assert_eq!(
            names(&get(&mut incidents, &created.id).await.component_impacts),
            ["Login"]
        );
    }

    let renamed = srv
        .components()
        .await
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: login.id.clone(),
                name: "Sign-in".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect("rename")
        .into_inner()
        .component
        .unwrap();
    assert_eq!(renamed.name, "Sign-in");
    assert_eq!(
        names(&get(&mut incidents, &created.id).await.component_impacts),
        ["Sign-in"]
    );
    assert_eq!(
        names(
            &get(&mut incidents, &created.reference)
                .await
                .component_impacts
        ),
        ["Sign-in"]
    );
    let listed = incidents
        .list_incidents(ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(names(&listed[0].component_impacts), ["Sign-in"]);
    let posted = post_status_update(
        &mut incidents,
        &created.id,
        IncidentStatus::Identified,
        "found it",
        vec![impact(&login, ImpactLevel::PartialOutage)],
        None,
    )
    .await;
    let update = posted.status_update.expect("status update");
    assert_eq!(names(&update.component_impacts), ["Sign-in"]);

    // The declaration, as the log recorded it, still says "Login".
    let mut timeline = srv.timeline().await;
    let events = list_all_timeline_events(
        &mut timeline,
        ListTimelineEventsRequest {
            incident_id: created.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let declared = events
        .iter()
        .find_map(|e| match &e.payload {
            Some(timeline_event::Payload::IncidentCreated(c)) => c.incident.clone(),
            _ => None,
        })
        .expect("the IncidentCreated event");
    assert_eq!(names(&declared.component_impacts), ["Login"]);
}
