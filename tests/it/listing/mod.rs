//! Listing: pagination (AIP-158), every ListIncidents filter, ListComponents
//! and ListStatusUpdates, over a real socket through `incident-client`.

mod components;
mod filters;
mod incidents;

use std::collections::HashSet;

use incident_client::tonic::transport::Channel;
use incident_client::*;

use crate::support::{
    TestServer, create_component, create_incident, impact, nanos, plain_incident,
    post_status_update,
};

/// Posts a status update with only a message; returns the incident.
pub async fn post(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
    message: &str,
) -> Incident {
    post_status_update(client, id, status, message, vec![], None)
        .await
        .incident
        .expect("incident")
}

/// Asserts a page run is in `create_time desc, id desc` order.
#[track_caller]
pub fn assert_newest_first(items: &[Incident]) {
    for w in items.windows(2) {
        let a = (nanos(&w[0].create_time), &w[0].id);
        let b = (nanos(&w[1].create_time), &w[1].id);
        assert!(
            a > b,
            "not newest first: {:?} before {:?}",
            w[0].title,
            w[1].title
        );
    }
}

/// Follows next_page_token to the end, checking every page: at most
/// `page_size` items (when set), never an empty page before the end.
pub async fn pages(
    client: &mut IncidentServiceClient<Channel>,
    mut req: ListIncidentsRequest,
) -> Vec<Vec<Incident>> {
    let mut out = Vec::new();
    loop {
        let r = client
            .list_incidents(req.clone())
            .await
            .expect("list incidents")
            .into_inner();
        if req.page_size > 0 {
            assert!(r.incidents.len() <= req.page_size as usize, "page too long");
        }
        let end = r.next_page_token.is_empty();
        if !end {
            assert!(!r.incidents.is_empty(), "empty page before the end");
        }
        out.push(r.incidents);
        if end {
            break;
        }
        assert!(out.len() < 5000, "runaway pagination");
        req.page_token = r.next_page_token;
    }
    let all: Vec<Incident> = out.iter().flatten().cloned().collect();
    assert_newest_first(&all);
    let ids: HashSet<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        all.len(),
        "an incident was repeated across pages"
    );
    out
}

/// Titles of every incident matching `req`, paging `page_size` at a time.
pub async fn titles(
    client: &mut IncidentServiceClient<Channel>,
    req: ListIncidentsRequest,
) -> Vec<String> {
    pages(client, req)
        .await
        .into_iter()
        .flatten()
        .map(|i| i.title)
        .collect()
}

/// The data set of the filter tests, in creation order.
pub struct Fixture {
    pub srv: TestServer,
    pub client: IncidentServiceClient<Channel>,
    pub created: Vec<Incident>,
    pub panel: Component,
    pub login: Component,
    pub apis: Component,
}

pub async fn fixture() -> Fixture {
    let srv = TestServer::start().await;
    let panel = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &panel.id).await;
    let apis = create_component(&srv, "APIs", "").await;
    let mut client = srv.incidents().await;
    let mut created = Vec::new();
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };

    // 0: open, P1, on Login (a child of the panel) and on the panel itself.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P1 as i32,
            component_impacts: vec![
                impact(&login, ImpactLevel::MajorOutage),
                impact(&panel, ImpactLevel::DegradedPerformance),
            ],
            labels: labels(&[("company", "iAdvize"), ("team", "desk")]),
            ..plain_incident("Desk fails to load")
        },
    )
    .await;
    created.push(i);
    // 1: IDENTIFIED, P2, on APIs.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P2 as i32,
            component_impacts: vec![impact(&apis, ImpactLevel::PartialOutage)],
            labels: labels(&[("company", "Dixa")]),
            ..plain_incident("Webhook delays")
        },
    )
    .await;
    created.push(post(&mut client, &i.id, IncidentStatus::Identified, "found").await);
    // 2: MONITORING, P0, on the panel group itself.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P0 as i32,
            component_impacts: vec![impact(&panel, ImpactLevel::MajorOutage)],
            labels: labels(&[("company", "iAdvize")]),
            ..plain_incident("100% of logins failing")
        },
    )
    .await;
    created.push(post(&mut client, &i.id, IncidentStatus::Monitoring, "fix live").await);
    // 3: RESOLVED, P3.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P3 as i32,
            labels: labels(&[("env", "prod")]),
            ..plain_incident("Login_v2 rollout")
        },
    )
    .await;
    created.push(post(&mut client, &i.id, IncidentStatus::Resolved, "done").await);
    // 4: open, P3.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P3 as i32,
            ..plain_incident("Login v2 slow")
        },
    )
    .await;
    created.push(i);
    // 5: maintenance IN_PROGRESS on APIs, severity not assessed.
    let i = create_incident(
        &mut client,
        Incident {
            kind: IncidentKind::Maintenance as i32,
            component_impacts: vec![impact(&apis, ImpactLevel::UnderMaintenance)],
            ..plain_incident("Database upgrade")
        },
    )
    .await;
    created.push(post(&mut client, &i.id, IncidentStatus::InProgress, "started").await);
    // 6: maintenance COMPLETED.
    let i = create_incident(
        &mut client,
        Incident {
            kind: IncidentKind::Maintenance as i32,
            ..plain_incident("Search reindex")
        },
    )
    .await;
    created.push(post(&mut client, &i.id, IncidentStatus::Completed, "done").await);
    // 7: P1 on Login, deleted.
    let i = create_incident(
        &mut client,
        Incident {
            severity: Severity::P1 as i32,
            component_impacts: vec![impact(&login, ImpactLevel::PartialOutage)],
            labels: labels(&[("company", "iAdvize")]),
            ..plain_incident("Deleted outage")
        },
    )
    .await;
    let i = client
        .delete_incident(DeleteIncidentRequest {
            id: i.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete")
        .into_inner()
        .incident
        .unwrap();
    created.push(i);
    // 8 and 9: `%` must be literal in a query.
    created.push(create_incident(&mut client, plain_incident("50% errors")).await);
    created.push(create_incident(&mut client, plain_incident("5000 errors")).await);
    Fixture {
        srv,
        client,
        created,
        panel,
        login,
        apis,
    }
}

pub fn req(page_size: i32) -> ListIncidentsRequest {
    ListIncidentsRequest {
        page_size,
        ..Default::default()
    }
}
