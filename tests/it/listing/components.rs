//! ListComponents and ListStatusUpdates.

use incident_client::*;

use super::*;
use crate::support::*;

async fn list_components(srv: &TestServer, mut req: ListComponentsRequest) -> Vec<Vec<Component>> {
    let mut client = srv.components().await;
    let mut out = Vec::new();
    loop {
        let r = client
            .list_components(req.clone())
            .await
            .expect("list components")
            .into_inner();
        let end = r.next_page_token.is_empty();
        if !end {
            assert!(!r.components.is_empty(), "empty page before the end");
        }
        out.push(r.components);
        if end {
            return out;
        }
        req.page_token = r.next_page_token;
    }
}

fn names(pages: Vec<Vec<Component>>) -> Vec<String> {
    pages.into_iter().flatten().map(|c| c.name).collect()
}

#[tokio::test]
async fn components_page_newest_first_and_filter_by_parent() {
    let srv = TestServer::start().await;
    let admin = create_component(&srv, "Administration", "").await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    let admin_login = create_component(&srv, "Login", &admin.id).await;
    create_component(&srv, "Users", &admin.id).await;
    create_component(&srv, "Login", &panel.id).await;
    create_component(&srv, "SSO", &admin_login.id).await;
    let settings = create_component(&srv, "Settings", &admin.id).await;
    for n in 0..5 {
        create_component(&srv, &format!("Top {n}"), "").await;
    }

    // 12 components, 5 per page, with one created between pages.
    let mut client = srv.components().await;
    let p1 = client
        .list_components(ListComponentsRequest {
            page_size: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    create_component(&srv, "Late", "").await;
    let mut rest = list_components(
        &srv,
        ListComponentsRequest {
            page_size: 5,
            page_token: p1.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    rest.insert(0, p1.components);
    let sizes: Vec<usize> = rest.iter().map(Vec::len).collect();
    assert_eq!(sizes, [5, 5, 2]);
    assert_eq!(
        names(rest),
        [
            "Top 4",
            "Top 3",
            "Top 2",
            "Top 1",
            "Top 0",
            "Settings",
            "SSO",
            "Login",
            "Users",
            "Login",
            "Conversation Panel",
            "Administration",
        ]
    );

    // parent_id: direct children only, not grandchildren.
    let children = |parent: &str, page_size| ListComponentsRequest {
        page_size,
        parent_id: parent.into(),
        ..Default::default()
    };
    assert_eq!(
        names(list_components(&srv, children(&admin.id, 1)).await),
        ["Settings", "Users", "Login"]
    );
    assert_eq!(
        names(list_components(&srv, children(&panel.id, 1)).await),
        ["Login"]
    );
    assert_eq!(
        names(list_components(&srv, children(&admin_login.id, 0)).await),
        ["SSO"]
    );

    // A deleted component is hidden unless asked for.
    let deleted = srv
        .components()
        .await
        .delete_component(DeleteComponentRequest {
            id: settings.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete leaf")
        .into_inner()
        .component
        .unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(
        names(list_components(&srv, children(&admin.id, 1)).await),
        ["Users", "Login"]
    );
    let with_deleted = list_components(
        &srv,
        ListComponentsRequest {
            show_deleted: true,
            ..children(&admin.id, 1)
        },
    )
    .await
    .concat();
    assert_eq!(with_deleted.len(), 3);
    assert_eq!(with_deleted[0].name, "Settings");
    assert!(with_deleted[0].delete_time.is_some());
    assert_eq!(
        names(list_components(&srv, ListComponentsRequest::default()).await).len(),
        12,
        "13 created, one deleted"
    );

    // A token is bound to its parent filter.
    let first = client
        .list_components(children(&admin.id, 1))
        .await
        .unwrap()
        .into_inner();
    // Parent filter changed.
    assert_rejected(
        &srv,
        Rejection::page_token(),
        client.list_components(ListComponentsRequest {
            page_token: first.next_page_token,
            ..children(&panel.id, 1)
        }),
    )
    .await;
}

#[tokio::test]
async fn status_updates_page_newest_first() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let a = create_incident(&mut client, plain_incident("Difficulty to load the desk")).await;
    let b = create_incident(&mut client, plain_incident("Other")).await;
    for n in 0..12 {
        let status = match n {
            3 => IncidentStatus::Identified,
            8 => IncidentStatus::Monitoring,
            _ => IncidentStatus::Unspecified,
        };
        post(&mut client, &a.id, status, &format!("update {n:02}")).await;
    }
    post(
        &mut client,
        &b.id,
        IncidentStatus::Unspecified,
        "other incident",
    )
    .await;

    let mut req = ListStatusUpdatesRequest {
        incident_id: a.id.clone(),
        page_size: 5,
        ..Default::default()
    };
    let mut sizes = Vec::new();
    let mut messages = Vec::new();
    loop {
        let r = client
            .list_status_updates(req.clone())
            .await
            .expect("list status updates")
            .into_inner();
        sizes.push(r.status_updates.len());
        for u in &r.status_updates {
            assert_eq!(u.incident_id, a.id);
            messages.push(u.message.clone());
        }
        if r.next_page_token.is_empty() {
            break;
        }
        req.page_token = r.next_page_token;
    }
    assert_eq!(sizes, [5, 5, 2]);
    let expected: Vec<String> = (0..12).rev().map(|n| format!("update {n:02}")).collect();
    assert_eq!(messages, expected, "newest first, none skipped or repeated");

    let all = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: a.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.status_updates.len(), 12, "page_size 0 means 50");
    assert!(all.next_page_token.is_empty());
    assert_eq!(
        all.status_updates[0].status,
        IncidentStatus::Monitoring as i32,
        "an update without a status carries the incident's status"
    );
    assert_eq!(
        all.status_updates[11].status,
        IncidentStatus::Investigating as i32
    );

    // A token of one incident's updates is refused for another's.
    let first = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: a.id.clone(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Token of another incident.
    assert_rejected(
        &srv,
        Rejection::page_token(),
        client.list_status_updates(ListStatusUpdatesRequest {
            incident_id: b.id.clone(),
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        }),
    )
    .await;
}
