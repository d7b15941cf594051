//! GetIncident, GetComponent, ListIncidents, ListStatusUpdates, ListComponents.

use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn get_rejects_garbage_ids_and_answers_not_found_for_unknown_ones() {
    let srv = TestServer::start().await;
    declare(&srv, valid_incident()).await;
    let mut incidents = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "Get");
    let unknown = rid();

    for (name, id, want) in [
        (
            "incident id garbage",
            "garbage",
            Rejection::invalid(&["id"]),
        ),
        ("incident id empty", "", Rejection::invalid(&["id"])),
        (
            "incident reference INC-0",
            "INC-0",
            Rejection::invalid(&["id"]),
        ),
        (
            "incident reference INC-x",
            "INC-x",
            Rejection::invalid(&["id"]),
        ),
        (
            "incident id truncated UUID",
            &unknown[..30],
            Rejection::invalid(&["id"]),
        ),
        (
            "unknown incident id",
            unknown.as_str(),
            Rejection::not_found("incident_id", &unknown),
        ),
        (
            "unknown incident reference",
            "INC-99",
            Rejection::not_found("incident_id", "INC-99"),
        ),
    ] {
        cases
            .reject(
                name,
                want,
                incidents.get_incident(GetIncidentRequest {
                    id: id.into(),
                    ..Default::default()
                }),
            )
            .await;
    }
    for (name, id, want) in [
        (
            "component id garbage",
            "garbage",
            Rejection::invalid(&["id"]),
        ),
        ("component id empty", "", Rejection::invalid(&["id"])),
        (
            "component id is an incident reference",
            "INC-1",
            Rejection::invalid(&["id"]),
        ),
        (
            "unknown component id",
            unknown.as_str(),
            Rejection::not_found("component_id", &unknown),
        ),
    ] {
        cases
            .reject(
                name,
                want,
                components.get_component(GetComponentRequest {
                    id: id.into(),
                    ..Default::default()
                }),
            )
            .await;
    }
    cases.finish();
}

#[tokio::test]
async fn list_incidents_rejects_bad_filters_and_foreign_page_tokens() {
    let srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    for _ in 0..3 {
        declare(&srv, valid_incident()).await;
    }
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "ListIncidents");

    let first_page = ListIncidentsRequest {
        page_size: 1,
        kind: IncidentKind::Incident as i32,
        ..Default::default()
    };
    let token = client
        .list_incidents(first_page.clone())
        .await
        .expect("first page")
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty(), "three incidents make more than one page");
    let component_token = {
        create_component(&srv, "Web", "").await;
        components
            .list_components(ListComponentsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("components")
            .into_inner()
            .next_page_token
    };
    assert!(!component_token.is_empty());
    // A token of another server (another database, another key) is stale here.
    let foreign_token = {
        let other = TestServer::start().await;
        for _ in 0..2 {
            declare(&other, valid_incident()).await;
        }
        other
            .incidents()
            .await
            .list_incidents(first_page.clone())
            .await
            .expect("other server")
            .into_inner()
            .next_page_token
    };
    assert!(!foreign_token.is_empty());
    let next = |f: &dyn Fn(&mut ListIncidentsRequest)| {
        let mut r = ListIncidentsRequest {
            page_token: token.clone(),
            ..first_page.clone()
        };
        f(&mut r);
        r
    };
    let list = |f: &dyn Fn(&mut ListIncidentsRequest)| {
        let mut r = ListIncidentsRequest::default();
        f(&mut r);
        r
    };

    let table: Vec<(&str, ListIncidentsRequest, Rejection)> = vec![
        (
            "statuses with an unknown value",
            list(&|r| r.statuses = vec![99]),
            Rejection::invalid(&["statuses[0]"]),
        ),
        (
            "statuses with an unknown second value",
            list(&|r| r.statuses = vec![IncidentStatus::Investigating as i32, 9]),
            Rejection::invalid(&["statuses[1]"]),
        ),
        (
            "statuses with unspecified",
            list(&|r| r.statuses = vec![0]),
            Rejection::invalid(&["statuses[0]"]),
        ),
        (
            "severities with an unknown value",
            list(&|r| r.severities = vec![6]),
            Rejection::invalid(&["severities[0]"]),
        ),
        (
            "severities with a negative value",
            list(&|r| r.severities = vec![-3]),
            Rejection::invalid(&["severities[0]"]),
        ),
        (
            "kind unknown",
            list(&|r| r.kind = 3),
            Rejection::invalid(&["kind"]),
        ),
        (
            "component_id not a UUID",
            list(&|r| r.component_id = "apis".into()),
            Rejection::invalid(&["component_id"]),
        ),
        (
            "page_size -1",
            list(&|r| r.page_size = -1),
            Rejection::invalid(&["page_size"]),
        ),
        (
            "page_size i32::MIN",
            list(&|r| r.page_size = i32::MIN),
            Rejection::invalid(&["page_size"]),
        ),
        (
            "label filter with a bad key",
            list(&|r| r.label = "bad key=x".into()),
            Rejection::invalid(&["label"]),
        ),
        (
            "label filter with an empty key",
            list(&|r| r.label = "=x".into()),
            Rejection::invalid(&["label"]),
        ),
        (
            "query of 201 characters",
            list(&|r| r.query = "q".repeat(201)),
            Rejection::invalid(&["query"]),
        ),
        (
            "create_time_after with bad nanos",
            list(&|r| r.create_time_after = Some(bad_nanos())),
            Rejection::invalid(&["create_time_after"]),
        ),
        (
            "page token garbage",
            list(&|r| r.page_token = "not-a-token".into()),
            Rejection::page_token(),
        ),
        (
            "page token forged",
            list(&|r| r.page_token = forged_token()),
            Rejection::page_token(),
        ),
        (
            "page token tampered",
            next(&|r| r.page_token = tamper(&token)),
            Rejection::page_token(),
        ),
        (
            "page token truncated",
            next(&|r| r.page_token = token[..token.len() - 4].to_owned()),
            Rejection::page_token(),
        ),
        (
            "page token reused without the kind filter",
            next(&|r| r.kind = 0),
            Rejection::page_token(),
        ),
        (
            "page token reused with another kind",
            next(&|r| r.kind = IncidentKind::Maintenance as i32),
            Rejection::page_token(),
        ),
        (
            "page token reused with a status filter",
            next(&|r| r.statuses = vec![IncidentStatus::Investigating as i32]),
            Rejection::page_token(),
        ),
        (
            "page token reused with a severity filter",
            next(&|r| r.severities = vec![Severity::P2 as i32]),
            Rejection::page_token(),
        ),
        (
            "page token reused with show_deleted",
            next(&|r| r.show_deleted = true),
            Rejection::page_token(),
        ),
        (
            "page token reused with open",
            next(&|r| r.open = Some(true)),
            Rejection::page_token(),
        ),
        (
            "page token reused with a query",
            next(&|r| r.query = "webhook".into()),
            Rejection::page_token(),
        ),
        (
            "page token reused with a label",
            next(&|r| r.label = "team".into()),
            Rejection::page_token(),
        ),
        (
            "page token reused with a component",
            next(&|r| r.component_id = c.id.clone()),
            Rejection::page_token(),
        ),
        (
            "page token reused with a time range",
            next(&|r| r.create_time_after = Some(ts("2020-01-01T00:00:00Z"))),
            Rejection::page_token(),
        ),
        (
            "page token of another server",
            next(&|r| r.page_token = foreign_token.clone()),
            Rejection::page_token(),
        ),
        (
            "page token of ListComponents",
            list(&|r| r.page_token = component_token.clone()),
            Rejection::page_token(),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.list_incidents(req)).await;
    }
    // The same filters with another page size keep the token valid.
    cases
        .accept(
            "page token reused with the same filters and another page size",
            client.list_incidents(next(&|r| r.page_size = 2)),
        )
        .await;
    cases
        .accept(
            "page_size above the cap",
            client.list_incidents(list(&|r| r.page_size = i32::MAX)),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn list_status_updates_and_components_reject_bad_input() {
    let srv = TestServer::start().await;
    let a = declare(&srv, valid_incident()).await;
    let b = declare(&srv, valid_incident()).await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    for name in ["Login", "Desk", "Chat"] {
        create_component(&srv, name, &group.id).await;
    }
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    for m in ["one", "two", "three"] {
        client
            .post_status_update(post_with(&a.id, |r| r.message = m.into()))
            .await
            .expect("post");
    }
    let su_token = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: a.id.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("updates")
        .into_inner()
        .next_page_token;
    assert!(!su_token.is_empty());
    let c_token = components
        .list_components(ListComponentsRequest {
            page_size: 1,
            parent_id: group.id.clone(),
            ..Default::default()
        })
        .await
        .expect("components")
        .into_inner()
        .next_page_token;
    assert!(!c_token.is_empty());
    let unknown = rid();
    let mut cases = Cases::new(&srv, "ListStatusUpdates/ListComponents");

    let su = |incident_id: &str, page_size: i32, page_token: &str| ListStatusUpdatesRequest {
        incident_id: incident_id.to_owned(),
        page_size,
        page_token: page_token.to_owned(),
        ..Default::default()
    };
    for (name, req, want) in [
        (
            "status updates: incident_id garbage",
            su("garbage", 0, ""),
            Rejection::invalid(&["incident_id"]),
        ),
        (
            "status updates: incident_id empty",
            su("", 0, ""),
            Rejection::invalid(&["incident_id"]),
        ),
        (
            "status updates: page_size -1",
            su(&a.id, -1, ""),
            Rejection::invalid(&["page_size"]),
        ),
        (
            "status updates: unknown incident",
            su(&unknown, 0, ""),
            Rejection::not_found("incident_id", &unknown),
        ),
        (
            "status updates: forged page token",
            su(&a.id, 1, &forged_token()),
            Rejection::page_token(),
        ),
        (
            "status updates: tampered page token",
            su(&a.id, 1, &tamper(&su_token)),
            Rejection::page_token(),
        ),
        (
            "status updates: page token of another incident",
            su(&b.id, 1, &su_token),
            Rejection::page_token(),
        ),
        (
            "status updates: page token of ListComponents",
            su(&a.id, 1, &c_token),
            Rejection::page_token(),
        ),
    ] {
        cases
            .reject(name, want, client.list_status_updates(req))
            .await;
    }

    let lc = |parent_id: &str, show_deleted: bool, page_size: i32, page_token: &str| {
        ListComponentsRequest {
            page_size,
            page_token: page_token.to_owned(),
            parent_id: parent_id.to_owned(),
            show_deleted,
            ..Default::default()
        }
    };
    for (name, req, want) in [
        (
            "components: page_size -1",
            lc("", false, -1, ""),
            Rejection::invalid(&["page_size"]),
        ),
        (
            "components: parent_id garbage",
            lc("garbage", false, 0, ""),
            Rejection::invalid(&["parent_id"]),
        ),
        (
            "components: forged page token",
            lc(&group.id, false, 1, &forged_token()),
            Rejection::page_token(),
        ),
        (
            "components: tampered page token",
            lc(&group.id, false, 1, &tamper(&c_token)),
            Rejection::page_token(),
        ),
        (
            "components: page token reused without the parent filter",
            lc("", false, 1, &c_token),
            Rejection::page_token(),
        ),
        (
            "components: page token reused with show_deleted",
            lc(&group.id, true, 1, &c_token),
            Rejection::page_token(),
        ),
        (
            "components: page token of ListStatusUpdates",
            lc(&group.id, false, 1, &su_token),
            Rejection::page_token(),
        ),
    ] {
        cases
            .reject(name, want, components.list_components(req))
            .await;
    }
    cases
        .accept(
            "components: page token reused with the same filters",
            components.list_components(lc(&group.id, false, 5, &c_token)),
        )
        .await;
    cases.finish();
}
