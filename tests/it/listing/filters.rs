//! Every ListIncidents filter alone and combined, across pages.

use incident_client::*;

use super::*;
use crate::support::*;

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
        srv,
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
        // Filters changed between pages.
        assert_rejected(
            &srv,
            Rejection::page_token(),
            c.list_incidents(ListIncidentsRequest {
                page_token: first.next_page_token.clone(),
                ..changed
            }),
        )
        .await;
    }
}
