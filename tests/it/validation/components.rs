//! ComponentService, and the transport's own size limit.

use incident_client::tonic::Code;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn create_component_rejects_bad_input_and_taken_names() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let top = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = rid();
    let mut client = srv.components().await;
    let mut cases = Cases::new(&srv, "CreateComponent");

    let new = |name: &str, parent: &str| CreateComponentRequest {
        component: Some(Component {
            name: name.to_owned(),
            parent_id: parent.to_owned(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let table: Vec<(&str, CreateComponentRequest, Rejection)> = vec![
        (
            "missing component",
            CreateComponentRequest::default(),
            Rejection::invalid(&["component"]),
        ),
        (
            "empty name",
            new("", ""),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "whitespace-only name",
            new("  ", ""),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "name of 201 characters",
            new(&"n".repeat(201), ""),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "name with a control character",
            new("Lo\ngin", ""),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "description over 16 KiB",
            CreateComponentRequest {
                component: Some(Component {
                    name: "Webhooks".into(),
                    description: "d".repeat(16 * 1024 + 1),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            Rejection::invalid(&["component.description"]),
        ),
        (
            "parent_id garbage",
            new("Webhooks", "apis"),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id unknown",
            new("Webhooks", &unknown),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id of a deleted component",
            new("Webhooks", &gone.id),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "request_id not a UUID",
            CreateComponentRequest {
                request_id: "c-1".into(),
                ..new("Webhooks", "")
            },
            Rejection::invalid(&["request_id"]),
        ),
        (
            "top-level name taken",
            new("APIs", ""),
            Rejection::already_exists("component_id", &top.id),
        ),
        (
            "name taken by a sibling in a group",
            new("Login", &group.id),
            Rejection::already_exists("component_id", &login.id),
        ),
        (
            "name taken once trimmed",
            new("  Login ", &group.id),
            Rejection::already_exists("component_id", &login.id),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.create_component(req)).await;
    }
    for (name, req) in [
        ("same name under another parent", new("Login", "")),
        ("same name under a third parent", new("Login", &top.id)),
        ("name of a deleted sibling", new("Legacy", "")),
        ("name of exactly 200 characters", new(&"n".repeat(200), "")),
    ] {
        cases.accept(name, client.create_component(req)).await;
    }
    cases.finish();
}

#[tokio::test]
async fn update_component_rejects_bad_input_taken_names_and_stale_etags() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let other = create_component(&srv, "Statistics", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let desk = create_component(&srv, "Desk", &group.id).await;
    let other_login = create_component(&srv, "Login", &other.id).await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = rid();
    let mut client = srv.components().await;
    let renamed = client
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: desk.id.clone(),
                name: "Agent Desk".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect("rename")
        .into_inner()
        .component
        .expect("component");
    assert_ne!(renamed.etag, desk.etag);
    let mut cases = Cases::new(&srv, "UpdateComponent");

    let upd = |id: &str, paths: &[&str], f: &dyn Fn(&mut Component)| {
        let mut c = Component {
            id: id.to_owned(),
            ..Default::default()
        };
        f(&mut c);
        UpdateComponentRequest {
            component: Some(c),
            update_mask: mask_if_any(paths),
            request_id: String::new(),
        }
    };
    let table: Vec<(&str, UpdateComponentRequest, Rejection)> = vec![
        (
            "missing component",
            UpdateComponentRequest::default(),
            Rejection::invalid(&["component"]),
        ),
        (
            "id garbage",
            upd("desk", &["name"], &|c| c.name = "x".into()),
            Rejection::invalid(&["component.id"]),
        ),
        (
            "id empty",
            upd("", &["name"], &|c| c.name = "x".into()),
            Rejection::invalid(&["component.id"]),
        ),
        (
            "update_mask names an unknown path",
            upd(&desk.id, &["colour"], &|_| {}),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "empty name",
            upd(&desk.id, &["name"], &|_| {}),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "name of 201 characters",
            upd(&desk.id, &[], &|c| c.name = "n".repeat(201)),
            Rejection::invalid(&["component.name"]),
        ),
        (
            "description over 16 KiB",
            upd(&desk.id, &["description"], &|c| {
                c.description = "d".repeat(16 * 1024 + 1)
            }),
            Rejection::invalid(&["component.description"]),
        ),
        (
            "parent_id garbage",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = "group".into()),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id unknown",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = unknown.clone()),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id of a deleted component",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = gone.id.clone()),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id is itself",
            upd(&group.id, &["parent_id"], &|c| {
                c.parent_id = group.id.clone()
            }),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "parent_id is its own child",
            upd(&group.id, &["parent_id"], &|c| {
                c.parent_id = login.id.clone()
            }),
            Rejection::invalid(&["component.parent_id"]),
        ),
        (
            "request_id not a UUID",
            UpdateComponentRequest {
                request_id: "u".into(),
                ..upd(&desk.id, &["name"], &|c| c.name = "Desk".into())
            },
            Rejection::invalid(&["request_id"]),
        ),
        (
            "rename to a sibling's name",
            upd(&desk.id, &["name"], &|c| c.name = "Login".into()),
            Rejection::already_exists("component_id", &login.id),
        ),
        (
            "move under a parent where the name is taken",
            upd(&login.id, &["parent_id"], &|c| {
                c.parent_id = other.id.clone()
            }),
            Rejection::already_exists("component_id", &other_login.id),
        ),
        (
            "stale etag",
            upd(&desk.id, &["name"], &|c| {
                c.name = "Desk".into();
                c.etag = desk.etag.clone();
            }),
            Rejection::stale_etag("component_id", &desk.id),
        ),
        (
            "unknown component",
            upd(&unknown, &["name"], &|c| c.name = "x".into()),
            Rejection::not_found("component_id", &unknown),
        ),
        (
            "deleted component",
            upd(&gone.id, &["name"], &|c| c.name = "Revived".into()),
            Rejection::not_found("component_id", &gone.id),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.update_component(req)).await;
    }
    cases
        .accept(
            "current etag",
            client.update_component(upd(&desk.id, &["name"], &|c| {
                c.name = "Desk".into();
                c.etag = renamed.etag.clone();
            })),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn delete_component_refuses_while_referenced() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let apis = create_component(&srv, "APIs", "").await;
    let db = create_component(&srv, "Database", "").await;
    let inc = declare(
        &srv,
        Incident {
            component_impacts: vec![impact_on(&apis.id, ImpactLevel::PartialOutage as i32)],
            ..valid_incident()
        },
    )
    .await;
    declare(
        &srv,
        Incident {
            title: "Database upgrade".into(),
            kind: IncidentKind::Maintenance as i32,
            component_impacts: vec![impact_on(&db.id, ImpactLevel::UnderMaintenance as i32)],
            ..Default::default()
        },
    )
    .await;
    let unknown = rid();
    let mut client = srv.components().await;
    let mut cases = Cases::new(&srv, "DeleteComponent");

    let del = |id: &str, etag: &str, request_id: &str| DeleteComponentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: request_id.to_owned(),
    };
    for (name, req, want) in [
        (
            "id garbage",
            del("apis", "", ""),
            Rejection::invalid(&["id"]),
        ),
        ("id empty", del("", "", ""), Rejection::invalid(&["id"])),
        (
            "request_id not a UUID",
            del(&login.id, "", "d"),
            Rejection::invalid(&["request_id"]),
        ),
        (
            "unknown component",
            del(&unknown, "", ""),
            Rejection::not_found("component_id", &unknown),
        ),
        (
            "stale etag",
            del(&login.id, "W/\"stale\"", ""),
            Rejection::stale_etag("component_id", &login.id),
        ),
        (
            "used by an open incident",
            del(&apis.id, "", ""),
            Rejection::has_dependents(&apis.id),
        ),
        (
            "used by an open maintenance",
            del(&db.id, "", ""),
            Rejection::has_dependents(&db.id),
        ),
        (
            "has a live child",
            del(&group.id, "", ""),
            Rejection::has_dependents(&group.id),
        ),
    ] {
        cases.reject(name, want, client.delete_component(req)).await;
    }

    // Once the incident is resolved and the child gone, both may go.
    srv.incidents()
        .await
        .post_status_update(post_with(&inc.id, |r| {
            r.status = IncidentStatus::Resolved as i32;
            r.message = "Resolved".into();
        }))
        .await
        .expect("resolve");
    cases
        .accept(
            "used only by a resolved incident",
            client.delete_component(del(&apis.id, &apis.etag, "")),
        )
        .await;
    cases
        .accept(
            "leaf child",
            client.delete_component(del(&login.id, "", "")),
        )
        .await;
    cases
        .accept(
            "group whose children are deleted",
            client.delete_component(del(&group.id, "", "")),
        )
        .await;
    cases
        .reject(
            "delete twice",
            Rejection::not_found("component_id", &apis.id),
            client.delete_component(del(&apis.id, "", "")),
        )
        .await;
    cases.finish();
}

/// A request over 4 MiB never reaches a handler: it is refused as it is
/// read (OUT_OF_RANGE, MESSAGE_TOO_LARGE), and nothing is written.
#[tokio::test]
async fn request_over_four_mib_is_refused_by_the_transport() {
    let srv = TestServer::start().await;
    assert_rejected(
        &srv,
        Rejection::new(Code::OutOfRange, "MESSAGE_TOO_LARGE"),
        srv.incidents()
            .await
            .create_incident(create_with(|i| i.summary = "s".repeat(5 * 1024 * 1024))),
    )
    .await;
}
