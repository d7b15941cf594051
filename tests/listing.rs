//! Listing: pagination (AIP-158), every ListIncidents filter, ListComponents
//! and ListStatusUpdates, over a real socket through `incident-client`.

mod common;

use std::collections::HashSet;

use common::{
    TestServer, assert_error, create_component, create_incident, impact, nanos, plain_incident,
    post_status_update, ts,
};
use incident_client::tonic::Code;
use incident_client::tonic::transport::Channel;
use incident_client::*;

/// Posts a status update with only a message; returns the incident.
async fn post(
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
fn assert_newest_first(items: &[Incident]) {
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
async fn pages(
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
async fn titles(
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

#[tokio::test]
async fn pages_through_a_growing_list_without_skipping_or_repeating() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut created = Vec::new();
    for n in 0..25 {
        created.push(create_incident(&mut client, plain_incident(&format!("Outage {n:02}"))).await);
    }
    let expected: Vec<String> = created.iter().rev().map(|i| i.id.clone()).collect();

    let req = ListIncidentsRequest {
        page_size: 7,
        ..Default::default()
    };
    let mut seen: Vec<Incident> = Vec::new();
    let mut tokens = Vec::new();
    let mut page_token = String::new();
    for page in 0.. {
        let r = client
            .list_incidents(ListIncidentsRequest {
                page_token: page_token.clone(),
                ..req.clone()
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(r.incidents.clone());
        tokens.push(r.next_page_token.clone());
        if r.next_page_token.is_empty() {
            assert_eq!(r.incidents.len(), 4, "the last page holds the remainder");
            break;
        }
        assert_eq!(r.incidents.len(), 7, "page {page} is full");
        page_token = r.next_page_token;
        // The world moves on between pages: new incidents are declared, an
        // unseen one gets a status update and a new title.
        match page {
            0 => {
                for n in 0..3 {
                    create_incident(&mut client, plain_incident(&format!("Late {n}"))).await;
                }
            }
            1 => {
                let target = &created[3];
                post(&mut client, &target.id, IncidentStatus::Identified, "found").await;
                client
                    .update_incident(UpdateIncidentRequest {
                        incident: Some(Incident {
                            id: target.id.clone(),
                            title: "Outage 03 (renamed)".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .expect("update");
                create_incident(&mut client, plain_incident("Later still")).await;
            }
            _ => {}
        }
    }
    assert_eq!(tokens.len(), 4, "25 items at 7 per page are 4 pages");
    assert!(tokens[..3].iter().all(|t| !t.is_empty()));
    let seen_ids: Vec<String> = seen.iter().map(|i| i.id.clone()).collect();
    assert_eq!(
        seen_ids, expected,
        "every incident that existed at the start, once, newest first; none created later"
    );
    assert_newest_first(&seen);
    let renamed = seen.iter().find(|i| i.id == created[3].id).unwrap();
    assert_eq!(
        renamed.title, "Outage 03 (renamed)",
        "pages show current state"
    );

    // A fresh listing sees the late ones first, and exactly-divisible lists
    // end without a trailing empty page.
    let all = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 6, "29 items at 5 per page");
    let all: Vec<String> = all.into_iter().flatten().map(|i| i.title).collect();
    assert_eq!(all.len(), 29);
    assert_eq!(all[..4], ["Later still", "Late 2", "Late 1", "Late 0"]);
    let exact = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 29,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(exact.len(), 1, "a page holding the last item ends the list");

    // The page size may change between pages; the filters may not.
    let first = client
        .list_incidents(ListIncidentsRequest {
            page_size: 2,
            query: "outage".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let more = client
        .list_incidents(ListIncidentsRequest {
            page_size: 3,
            query: "outage".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page size may change between pages")
        .into_inner();
    assert_eq!(more.incidents.len(), 3);
    assert_eq!(more.incidents[0].title, "Outage 22");
    let err = client
        .list_incidents(ListIncidentsRequest {
            page_size: 2,
            query: "late".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect_err("changed filters reject the old token");
    assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);
    let err = client
        .list_incidents(ListIncidentsRequest {
            page_token: "bm90LWEtdG9rZW4".into(),
            ..Default::default()
        })
        .await
        .expect_err("a forged token");
    assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_size_defaults_to_50_and_is_capped_at_1000() {
    let srv = TestServer::start().await;
    let channel = srv.channel().await;
    // 1010 incidents from 101 concurrent callers: group commit at work.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..101 {
        let mut client = IncidentServiceClient::new(channel.clone());
        tasks.spawn(async move {
            for k in 0..10 {
                create_incident(&mut client, plain_incident(&format!("Bulk {t}-{k}"))).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("creator task");
    }
    assert_eq!(srv.count("incidents").await, 1010);
    let mut client = srv.incidents().await;

    let r = client
        .list_incidents(ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incidents.len(), 50, "page_size 0 means 50");
    assert!(!r.next_page_token.is_empty());

    let all = pages(
        &mut client,
        ListIncidentsRequest {
            page_size: 5000,
            ..Default::default()
        },
    )
    .await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1000, 10], "page_size above 1000 means 1000");
    let refs: HashSet<String> = all.iter().flatten().map(|i| i.reference.clone()).collect();
    assert_eq!(refs.len(), 1010, "references are unique under concurrency");
    assert!((1..=1010).all(|n| refs.contains(&format!("INC-{n}"))));

    let err = client
        .list_incidents(ListIncidentsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative page size");
    assert_error(
        &err,
        Code::InvalidArgument,
        "FIELD_INVALID",
        Some("page_size"),
    );
}

/// The data set of the filter tests, in creation order.
struct Fixture {
    srv: TestServer,
    client: IncidentServiceClient<Channel>,
    created: Vec<Incident>,
    panel: Component,
    login: Component,
    apis: Component,
}

async fn fixture() -> Fixture {
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

fn req(page_size: i32) -> ListIncidentsRequest {
    ListIncidentsRequest {
        page_size,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_filter_alone_across_pages() {
    let Fixture {
        srv: _srv,
        mut client,
        created,
        panel,
        login,
        apis,
    } = fixture().await;
    let c = &mut client;

    // No filter: every live incident, newest first.
    assert_eq!(
        titles(c, req(3)).await,
        [
            "5000 errors",
            "50% errors",
            "Search reindex",
            "Database upgrade",
            "Login v2 slow",
            "Login_v2 rollout",
            "100% of logins failing",
            "Webhook delays",
            "Desk fails to load",
        ]
    );

    // statuses: any of several.
    let statuses = |s: &[IncidentStatus]| ListIncidentsRequest {
        statuses: s.iter().map(|s| *s as i32).collect(),
        ..req(1)
    };
    assert_eq!(
        titles(
            c,
            statuses(&[IncidentStatus::Identified, IncidentStatus::Monitoring])
        )
        .await,
        ["100% of logins failing", "Webhook delays"]
    );
    assert_eq!(
        titles(c, statuses(&[IncidentStatus::Investigating])).await,
        [
            "5000 errors",
            "50% errors",
            "Login v2 slow",
            "Desk fails to load"
        ]
    );
    assert_eq!(
        titles(
            c,
            statuses(&[IncidentStatus::InProgress, IncidentStatus::Completed])
        )
        .await,
        ["Search reindex", "Database upgrade"]
    );

    // severities.
    let sev = |s: &[Severity]| ListIncidentsRequest {
        severities: s.iter().map(|s| *s as i32).collect(),
        ..req(1)
    };
    assert_eq!(
        titles(c, sev(&[Severity::P0, Severity::P1])).await,
        ["100% of logins failing", "Desk fails to load"]
    );
    assert_eq!(
        titles(c, sev(&[Severity::P3])).await,
        ["Login v2 slow", "Login_v2 rollout"]
    );

    // kind.
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                kind: IncidentKind::Maintenance as i32,
                ..req(1)
            }
        )
        .await,
        ["Search reindex", "Database upgrade"]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                kind: IncidentKind::Incident as i32,
                ..req(4)
            }
        )
        .await
        .len(),
        7
    );

    // component_id: the group matches incidents on its children too (once,
    // though one is on both); a child does not match incidents on its parent.
    let comp = |id: &str| ListIncidentsRequest {
        component_id: id.into(),
        ..req(1)
    };
    assert_eq!(
        titles(c, comp(&panel.id)).await,
        ["100% of logins failing", "Desk fails to load"]
    );
    assert_eq!(titles(c, comp(&login.id)).await, ["Desk fails to load"]);
    assert_eq!(
        titles(c, comp(&apis.id)).await,
        ["Database upgrade", "Webhook delays"]
    );

    // open.
    let open = |o: bool| ListIncidentsRequest {
        open: Some(o),
        ..req(2)
    };
    assert_eq!(
        titles(c, open(false)).await,
        ["Search reindex", "Login_v2 rollout"]
    );
    assert_eq!(
        titles(c, open(true)).await,
        [
            "5000 errors",
            "50% errors",
            "Database upgrade",
            "Login v2 slow",
            "100% of logins failing",
            "Webhook delays",
            "Desk fails to load",
        ]
    );

    // create_time_after is inclusive, create_time_before exclusive.
    let pivot = created[3].create_time;
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                create_time_after: pivot,
                ..req(2)
            }
        )
        .await,
        [
            "5000 errors",
            "50% errors",
            "Search reindex",
            "Database upgrade",
            "Login v2 slow",
            "Login_v2 rollout",
        ]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                create_time_before: pivot,
                ..req(2)
            }
        )
        .await,
        [
            "100% of logins failing",
            "Webhook delays",
            "Desk fails to load"
        ]
    );
    assert!(
        titles(
            c,
            ListIncidentsRequest {
                create_time_before: Some(ts("2000-01-01T00:00:00Z")),
                ..req(2)
            }
        )
        .await
        .is_empty()
    );

    // query: case-insensitive substring of the title, `%` and `_` literal.
    let q = |s: &str| ListIncidentsRequest {
        query: s.into(),
        ..req(1)
    };
    assert_eq!(
        titles(c, q("LOGIN")).await,
        [
            "Login v2 slow",
            "Login_v2 rollout",
            "100% of logins failing"
        ]
    );
    assert_eq!(titles(c, q("login_v2")).await, ["Login_v2 rollout"]);
    assert_eq!(titles(c, q("_")).await, ["Login_v2 rollout"]);
    assert_eq!(titles(c, q("50%")).await, ["50% errors"]);
    assert_eq!(
        titles(c, q("%")).await,
        ["50% errors", "100% of logins failing"]
    );
    assert_eq!(titles(c, q("0 E")).await, ["5000 errors"]);
    assert!(titles(c, q("nothing like this")).await.is_empty());

    // label: "key" (any value) or "key=value".
    let label = |s: &str| ListIncidentsRequest {
        label: s.into(),
        ..req(1)
    };
    assert_eq!(
        titles(c, label("company")).await,
        [
            "100% of logins failing",
            "Webhook delays",
            "Desk fails to load"
        ]
    );
    assert_eq!(
        titles(c, label("company=iAdvize")).await,
        ["100% of logins failing", "Desk fails to load"]
    );
    assert_eq!(titles(c, label("team=desk")).await, ["Desk fails to load"]);
    assert!(titles(c, label("company=Nobody")).await.is_empty());
    assert!(titles(c, label("nokey")).await.is_empty());

    // show_deleted: the deleted one appears, with its delete_time.
    let all = pages(
        c,
        ListIncidentsRequest {
            show_deleted: true,
            ..req(4)
        },
    )
    .await
    .concat();
    assert_eq!(all.len(), 10);
    let deleted = all.iter().find(|i| i.title == "Deleted outage").unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(all[2].title, "Deleted outage", "in its place, newest first");
}

#[tokio::test]
async fn filters_combine_across_pages() {
    let Fixture {
        srv: _srv,
        mut client,
        created,
        panel,
        login,
        ..
    } = fixture().await;
    let c = &mut client;

    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                statuses: vec![
                    IncidentStatus::Investigating as i32,
                    IncidentStatus::Identified as i32,
                    IncidentStatus::Monitoring as i32,
                ],
                label: "company=iAdvize".into(),
                component_id: panel.id.clone(),
                ..req(1)
            }
        )
        .await,
        ["100% of logins failing", "Desk fails to load"]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                open: Some(true),
                kind: IncidentKind::Incident as i32,
                severities: vec![
                    Severity::P1 as i32,
                    Severity::P2 as i32,
                    Severity::P3 as i32
                ],
                ..req(1)
            }
        )
        .await,
        ["Login v2 slow", "Webhook delays", "Desk fails to load"]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                query: "login".into(),
                open: Some(false),
                ..req(1)
            }
        )
        .await,
        ["Login_v2 rollout"]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                create_time_after: created[1].create_time,
                create_time_before: created[5].create_time,
                ..req(1)
            }
        )
        .await,
        [
            "Login v2 slow",
            "Login_v2 rollout",
            "100% of logins failing",
            "Webhook delays",
        ]
    );
    // show_deleted combines with the other filters rather than overriding them.
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                show_deleted: true,
                component_id: login.id.clone(),
                severities: vec![Severity::P1 as i32],
                ..req(1)
            }
        )
        .await,
        ["Deleted outage", "Desk fails to load"]
    );
    assert_eq!(
        titles(
            c,
            ListIncidentsRequest {
                show_deleted: true,
                query: "outage".into(),
                ..req(1)
            }
        )
        .await,
        ["Deleted outage"]
    );
    assert!(
        titles(
            c,
            ListIncidentsRequest {
                query: "outage".into(),
                ..req(1)
            }
        )
        .await
        .is_empty(),
        "deleted incidents stay hidden without show_deleted"
    );

    // The token of one filter set is refused under another.
    let first = c
        .list_incidents(ListIncidentsRequest {
            open: Some(true),
            ..req(2)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    for changed in [
        ListIncidentsRequest {
            open: Some(false),
            ..req(2)
        },
        ListIncidentsRequest {
            open: Some(true),
            show_deleted: true,
            ..req(2)
        },
        ListIncidentsRequest {
            open: Some(true),
            label: "company".into(),
            ..req(2)
        },
    ] {
        let err = c
            .list_incidents(ListIncidentsRequest {
                page_token: first.next_page_token.clone(),
                ..changed
            })
            .await
            .expect_err("filters changed between pages");
        assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);
    }
}

#[tokio::test]
async fn query_is_case_insensitive_beyond_ascii() {
    // The seed reports are French: "Échec" must be found by "échec".
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    create_incident(&mut client, plain_incident("Échec de connexion au desk")).await;
    create_incident(&mut client, plain_incident("Lenteurs sur la messagerie")).await;
    assert_eq!(
        titles(
            &mut client,
            ListIncidentsRequest {
                query: "échec".into(),
                ..req(5)
            }
        )
        .await,
        ["Échec de connexion au desk"]
    );
    assert_eq!(
        titles(
            &mut client,
            ListIncidentsRequest {
                query: "LENTEURS".into(),
                ..req(5)
            }
        )
        .await,
        ["Lenteurs sur la messagerie"]
    );
}

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
    let err = client
        .list_components(ListComponentsRequest {
            page_token: first.next_page_token,
            ..children(&panel.id, 1)
        })
        .await
        .expect_err("parent filter changed");
    assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);
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
    let err = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: b.id.clone(),
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .expect_err("token of another incident");
    assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);
}
