//! UpdateIncident: the field mask, no-op writes, refused paths, etags.

use incident_client::*;

use super::{get, post, update};
use crate::support::*;

#[tokio::test]
async fn update_mask_touches_only_the_named_fields() {
    let srv = TestServer::start().await;
    let login = create_component(&srv, "Login", "").await;
    let mut client = srv.incidents().await;
    let original = create_incident(
        &mut client,
        Incident {
            summary: "Agents cannot open the desk".into(),
            severity: Severity::P2 as i32,
            component_impacts: vec![impact(&login, ImpactLevel::MajorOutage)],
            roles: vec![RoleAssignment {
                role: "incident_commander".into(),
                assignee: "ops@iadvize.com".into(),
            }],
            labels: [("company".to_owned(), "iAdvize".to_owned())].into(),
            ..plain_incident("Difficulty to load the desk")
        },
    )
    .await;

    // The mask names title and severity; the other values sent are ignored.
    let after = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            title: "Desk does not load".into(),
            severity: Severity::P1 as i32,
            summary: "IGNORED".into(),
            labels: [("other".to_owned(), "x".to_owned())].into(),
            ..Default::default()
        },
        &["title", "severity"],
    )
    .await
    .expect("masked update");
    assert_eq!(after.title, "Desk does not load");
    assert_eq!(after.severity, Severity::P1 as i32);
    assert_ne!(after.etag, original.etag, "a write changes the etag");
    assert!(nanos(&after.update_time) > nanos(&original.update_time));
    let got = get(&mut client, &original.id).await;
    assert_eq!(got, after, "Get sees what Update returned");
    assert_eq!(
        Incident {
            title: original.title.clone(),
            severity: original.severity,
            etag: original.etag.clone(),
            update_time: original.update_time,
            ..got.clone()
        },
        original,
        "every field outside the mask is unchanged"
    );

    // Lists filter on the new values, not the old ones.
    let found = |query: &str, label: &str| ListIncidentsRequest {
        query: query.into(),
        label: label.into(),
        ..Default::default()
    };
    let hits = |r: ListIncidentsResponse| r.incidents.len();
    assert_eq!(
        hits(
            client
                .list_incidents(found("does not load", ""))
                .await
                .unwrap()
                .into_inner()
        ),
        1
    );
    assert_eq!(
        hits(
            client
                .list_incidents(found("difficulty", ""))
                .await
                .unwrap()
                .into_inner()
        ),
        0
    );

    // An empty mask means every field the request sets: here only summary.
    let before = got;
    let after = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            summary: "Agents see a blank page".into(),
            ..Default::default()
        },
        &[],
    )
    .await
    .expect("implicit mask");
    assert_eq!(after.summary, "Agents see a blank page");
    assert_eq!(
        after.title, "Desk does not load",
        "unset title is not cleared"
    );
    assert_eq!(
        after.severity,
        Severity::P1 as i32,
        "unset severity is kept"
    );
    assert_eq!(after.labels, original.labels);
    assert_eq!(after.roles, original.roles);
    assert_ne!(after.etag, before.etag);

    // A masked field sent empty is cleared: severity back to "not assessed".
    let after = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            ..Default::default()
        },
        &["severity"],
    )
    .await
    .expect("clear severity");
    assert_eq!(after.severity, Severity::Unspecified as i32);
    assert_eq!(after.summary, "Agents see a blank page");

    // A masked map sent empty clears it, and the label filter follows.
    let after = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            ..Default::default()
        },
        &["labels"],
    )
    .await
    .expect("clear labels");
    assert!(after.labels.is_empty());
    assert_eq!(after.roles, original.roles);
    assert_eq!(
        hits(
            client
                .list_incidents(found("", "company"))
                .await
                .unwrap()
                .into_inner()
        ),
        0
    );

    // Output-only paths are ignored, the rest of the mask applies.
    let before = get(&mut client, &original.id).await;
    let after = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            reference: "INC-999".into(),
            create_time: Some(ts("2001-01-01T00:00:00Z")),
            action_item_count: 7,
            title: "Desk blank page".into(),
            ..Default::default()
        },
        &["reference", "create_time", "action_item_count", "title"],
    )
    .await
    .expect("output-only paths are ignored");
    assert_eq!(after.title, "Desk blank page");
    assert_eq!(after.reference, before.reference);
    assert_eq!(after.create_time, before.create_time);
    assert_eq!(after.action_item_count, 0);

    // A mask of output-only paths alone changes nothing, not even the etag.
    let events = srv.count("events").await;
    let after2 = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            reference: "INC-999".into(),
            ..Default::default()
        },
        &["reference", "etag", "update_time"],
    )
    .await
    .expect("output-only mask");
    assert_eq!(after2, after);
    assert_eq!(srv.count("events").await, events);
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_etag() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let original = create_incident(
        &mut client,
        Incident {
            severity: Severity::P2 as i32,
            labels: [("company".to_owned(), "Dixa".to_owned())].into(),
            ..plain_incident("Webhook delays")
        },
    )
    .await;
    let state = srv.snapshot().await;
    let same = update(
        &mut client,
        Incident {
            id: original.id.clone(),
            title: "Webhook delays".into(),
            severity: Severity::P2 as i32,
            labels: original.labels.clone(),
            ..Default::default()
        },
        &["title", "severity", "labels"],
    )
    .await
    .expect("no-op update");
    assert_eq!(same, original, "same etag, same update_time");
    srv.assert_unchanged(&state, "nothing written, no event")
        .await;
}

#[tokio::test]
async fn update_refuses_unknown_and_status_paths_naming_them() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let original = create_incident(&mut client, plain_incident("Webhook delays")).await;
    for (paths, i) in [
        (
            vec!["titel"],
            Incident {
                title: "typo".into(),
                ..Default::default()
            },
        ),
        (
            vec!["status"],
            Incident {
                status: IncidentStatus::Resolved as i32,
                ..Default::default()
            },
        ),
        (
            vec!["title", "kind"],
            Incident {
                title: "x".into(),
                kind: IncidentKind::Maintenance as i32,
                ..Default::default()
            },
        ),
        (
            vec![],
            Incident {
                title: "x".into(),
                component_impacts: vec![ComponentImpact {
                    component_id: uuid::Uuid::now_v7().to_string(),
                    impact: ImpactLevel::MajorOutage as i32,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ),
    ] {
        assert_rejected(
            &srv,
            Rejection::invalid(&["update_mask"]),
            update(
                &mut client,
                Incident {
                    id: original.id.clone(),
                    ..i
                },
                &paths,
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn stale_etag_is_aborted_and_changes_nothing() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let v1 = create_incident(&mut client, plain_incident("Webhook delays")).await;
    let v2 = update(
        &mut client,
        Incident {
            id: v1.id.clone(),
            title: "Webhook delays (EU)".into(),
            etag: v1.etag.clone(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .expect("current etag");
    assert_ne!(v2.etag, v1.etag);

    assert_rejected(
        &srv,
        Rejection::stale_etag("incident_id", &v1.id),
        update(
            &mut client,
            Incident {
                id: v1.id.clone(),
                title: "Lost update".into(),
                etag: v1.etag.clone(),
                ..Default::default()
            },
            &["title"],
        ),
    )
    .await;
    assert_rejected(
        &srv,
        Rejection::stale_etag("incident_id", &v1.id),
        client.delete_incident(DeleteIncidentRequest {
            id: v1.id.clone(),
            etag: v1.etag.clone(),
            request_id: String::new(),
        }),
    )
    .await;
    assert_eq!(get(&mut client, &v1.id).await.title, "Webhook delays (EU)");

    // A status update moves the etag too.
    let v3 = post(&mut client, &v1.id, IncidentStatus::Identified).await;
    assert_ne!(v3.etag, v2.etag);
    assert_rejected(
        &srv,
        Rejection::stale_etag("incident_id", &v1.id),
        update(
            &mut client,
            Incident {
                id: v1.id.clone(),
                title: "Lost update".into(),
                etag: v2.etag.clone(),
                ..Default::default()
            },
            &["title"],
        ),
    )
    .await;
}
