//! Writes: field-mask updates, etags, explicit milestones, request_id
//! idempotency, soft delete, the component tree, next_update_time, and
//! maintenance, over a real socket through `incident-client`.

mod common;

use common::{
    TestServer, assert_error, create_component, create_incident, details, impact, mask, nanos,
    plain_incident, post_status_update, rid, ts,
};
use incident_client::prost_types::Timestamp;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Request};
use incident_client::*;

/// Now plus `secs` seconds, whole seconds.
fn from_now(secs: i64) -> Timestamp {
    Timestamp {
        seconds: chrono::Utc::now().timestamp() + secs,
        nanos: 0,
    }
}

fn as_actor<T>(actor: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("x-actor", actor.parse().expect("metadata value"));
    r
}

async fn get_component(srv: &TestServer, id: &str) -> Component {
    srv.components()
        .await
        .get_component(GetComponentRequest { id: id.into() })
        .await
        .expect("get component")
        .into_inner()
        .component
        .expect("component")
}

async fn get(client: &mut IncidentServiceClient<Channel>, id: &str) -> Incident {
    client
        .get_incident(GetIncidentRequest { id: id.into() })
        .await
        .expect("get incident")
        .into_inner()
        .incident
        .expect("incident")
}

async fn update(
    client: &mut IncidentServiceClient<Channel>,
    i: Incident,
    paths: &[&str],
) -> Result<Incident, incident_client::tonic::Status> {
    client
        .update_incident(UpdateIncidentRequest {
            incident: Some(i),
            update_mask: if paths.is_empty() { None } else { mask(paths) },
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().incident.expect("incident"))
}

/// Posts a status update with the message "now <status>".
async fn post_at(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
    impacts: Vec<ComponentImpact>,
    at: Option<&str>,
) -> PostStatusUpdateResponse {
    post_status_update(client, id, status, &format!("now {status:?}"), impacts, at).await
}

async fn post(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
) -> Incident {
    post_at(client, id, status, vec![], None)
        .await
        .incident
        .expect("incident")
}

// ---------------------------------------------------------------- UpdateIncident

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
    let state = srv.db_state().await;
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
    assert_eq!(srv.db_state().await, state, "nothing written, no event");
}

#[tokio::test]
async fn update_refuses_unknown_and_status_paths_naming_them() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let original = create_incident(&mut client, plain_incident("Webhook delays")).await;
    let state = srv.db_state().await;
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
                }],
                ..Default::default()
            },
        ),
    ] {
        let err = update(
            &mut client,
            Incident {
                id: original.id.clone(),
                ..i
            },
            &paths,
        )
        .await
        .expect_err("refused path");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_INVALID",
            Some("update_mask"),
        );
    }
    assert_eq!(
        srv.db_state().await,
        state,
        "a rejected request changes nothing"
    );
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

    let state = srv.db_state().await;
    let err = update(
        &mut client,
        Incident {
            id: v1.id.clone(),
            title: "Lost update".into(),
            etag: v1.etag.clone(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .expect_err("stale etag");
    assert_error(&err, Code::Aborted, "ETAG_MISMATCH", None);
    assert_eq!(details(&err).metadata.get("incident_id"), Some(&v1.id));
    let err = client
        .delete_incident(DeleteIncidentRequest {
            id: v1.id.clone(),
            etag: v1.etag.clone(),
            request_id: String::new(),
        })
        .await
        .expect_err("stale etag on delete");
    assert_error(&err, Code::Aborted, "ETAG_MISMATCH", None);
    assert_eq!(srv.db_state().await, state);
    assert_eq!(get(&mut client, &v1.id).await.title, "Webhook delays (EU)");

    // A status update moves the etag too.
    let v3 = post(&mut client, &v1.id, IncidentStatus::Identified).await;
    assert_ne!(v3.etag, v2.etag);
    let err = update(
        &mut client,
        Incident {
            id: v1.id.clone(),
            title: "Lost update".into(),
            etag: v2.etag.clone(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .expect_err("etag stale after a status update");
    assert_error(&err, Code::Aborted, "ETAG_MISMATCH", None);
}

// ------------------------------------------------------------------- milestones

#[tokio::test]
async fn explicit_milestones_survive_later_status_updates() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Difficulty to load the desk")),
            occur_time: Some(ts("2023-08-11T10:04:00+02:00")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();

    // "Over since 10:50", entered before the status moves.
    let set = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            mitigate_time: Some(ts("2023-08-11T10:50:00+02:00")),
            resolve_time: Some(ts("2023-08-11T11:00:00+02:00")),
            ..Default::default()
        },
        &["mitigate_time", "resolve_time"],
    )
    .await
    .expect("set milestones");
    assert_eq!(set.mitigate_time, Some(ts("2023-08-11T08:50:00Z")));
    assert_eq!(set.status, IncidentStatus::Investigating as i32);

    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Identified,
        vec![],
        Some("2023-08-11T10:22:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.identify_time,
        Some(ts("2023-08-11T08:22:00Z")),
        "milestones not set by hand still derive"
    );
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Monitoring,
        vec![],
        Some("2023-08-11T11:30:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.mitigate_time,
        Some(ts("2023-08-11T08:50:00Z")),
        "MONITORING does not overwrite an explicit mitigate_time"
    );
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Resolved,
        vec![],
        Some("2023-08-11T15:38:00+02:00"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(i.resolve_time, Some(ts("2023-08-11T09:00:00Z")));
    assert_eq!(get(&mut client, &created.id).await, i);
}

#[tokio::test]
async fn clearing_an_explicit_milestone_lets_derivation_take_over() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays")),
            occur_time: Some(ts("2024-03-01T09:00:00Z")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    update(
        &mut client,
        Incident {
            id: created.id.clone(),
            identify_time: Some(ts("2024-03-01T09:10:00Z")),
            ..Default::default()
        },
        &[],
    )
    .await
    .expect("set identify_time");
    let cleared = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            ..Default::default()
        },
        &["identify_time"],
    )
    .await
    .expect("clear identify_time");
    assert!(cleared.identify_time.is_none());
    let i = post_at(
        &mut client,
        &created.id,
        IncidentStatus::Identified,
        vec![],
        Some("2024-03-01T09:30:00Z"),
    )
    .await
    .incident
    .unwrap();
    assert_eq!(
        i.identify_time,
        Some(ts("2024-03-01T09:30:00Z")),
        "derived again once the override is cleared"
    );
}

#[tokio::test]
async fn clearing_an_override_after_the_status_moved_restores_the_derived_time() {
    // mitigate_time derives from the first MONITORING update. Once a hand-set
    // value is cleared, the incident that went MONITORING at 09:30 shows 09:30
    // again rather than no mitigation time at all.
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays")),
            occur_time: Some(ts("2024-03-01T09:00:00Z")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    update(
        &mut client,
        Incident {
            id: created.id.clone(),
            mitigate_time: Some(ts("2024-03-01T09:20:00Z")),
            ..Default::default()
        },
        &["mitigate_time"],
    )
    .await
    .expect("set mitigate_time");
    post_at(
        &mut client,
        &created.id,
        IncidentStatus::Monitoring,
        vec![],
        Some("2024-03-01T09:30:00Z"),
    )
    .await;
    let cleared = update(
        &mut client,
        Incident {
            id: created.id.clone(),
            ..Default::default()
        },
        &["mitigate_time"],
    )
    .await
    .expect("clear mitigate_time");
    assert_eq!(
        cleared.mitigate_time,
        Some(ts("2024-03-01T09:30:00Z")),
        "the derived value (first MONITORING post) takes over again"
    );
}

// ------------------------------------------------------------------- request_id

#[tokio::test]
async fn request_id_retries_return_the_first_response_and_write_nothing() {
    let srv = TestServer::start().await;
    let mut components = srv.components().await;
    let mut client = srv.incidents().await;

    // CreateComponent.
    let req = CreateComponentRequest {
        component: Some(Component {
            name: "Login".into(),
            ..Default::default()
        }),
        request_id: rid(),
    };
    let first = components
        .create_component(req.clone())
        .await
        .unwrap()
        .into_inner();
    let state = srv.db_state().await;
    let again = components
        .create_component(req.clone())
        .await
        .expect("retry is not ALREADY_EXISTS")
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(srv.db_state().await, state);
    let login = first.component.unwrap();

    // CreateIncident, with several labels and impacts.
    let req = CreateIncidentRequest {
        incident: Some(Incident {
            component_impacts: vec![impact(&login, ImpactLevel::MajorOutage)],
            labels: [
                ("company".to_owned(), "iAdvize".to_owned()),
                ("team".to_owned(), "desk".to_owned()),
                ("region".to_owned(), "eu".to_owned()),
            ]
            .into(),
            ..plain_incident("Difficulty to load the desk")
        }),
        request_id: rid(),
        occur_time: Some(ts("2023-08-11T10:04:00+02:00")),
    };
    let first = client
        .create_incident(req.clone())
        .await
        .unwrap()
        .into_inner();
    let state = srv.db_state().await;
    let (incidents, events) = (srv.count("incidents").await, srv.count("events").await);
    let again = client
        .create_incident(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "the same incident, not a second one");
    assert_eq!(srv.count("incidents").await, incidents);
    assert_eq!(srv.count("events").await, events);
    assert_eq!(srv.db_state().await, state);
    let inc = first.incident.unwrap();

    // PostStatusUpdate: the retry comes after a later write and still gets
    // the first response back.
    let req = PostStatusUpdateRequest {
        incident_id: inc.id.clone(),
        status: IncidentStatus::Identified as i32,
        message: "Patch being deployed".into(),
        request_id: rid(),
        ..Default::default()
    };
    let first = client
        .post_status_update(req.clone())
        .await
        .unwrap()
        .into_inner();
    update(
        &mut client,
        Incident {
            id: inc.id.clone(),
            title: "Desk does not load".into(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .unwrap();
    let state = srv.db_state().await;
    let updates = srv.count("status_updates").await;
    let again = client
        .post_status_update(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(srv.count("status_updates").await, updates);
    assert_eq!(srv.db_state().await, state);

    // DeleteIncident: a retry is not NOT_FOUND.
    let req = DeleteIncidentRequest {
        id: inc.id.clone(),
        etag: String::new(),
        request_id: rid(),
    };
    let first = client
        .delete_incident(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.incident.as_ref().unwrap().delete_time.is_some());
    let state = srv.db_state().await;
    let again = client
        .delete_incident(req.clone())
        .await
        .expect("retry of a delete succeeds")
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(srv.db_state().await, state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_create_one_incident() {
    let srv = TestServer::start().await;
    let channel = srv.channel().await;
    let req = CreateIncidentRequest {
        incident: Some(plain_incident("Webhook delays")),
        request_id: rid(),
        occur_time: None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let mut client = IncidentServiceClient::new(channel.clone());
        let req = req.clone();
        tasks.spawn(async move { client.create_incident(req).await.map(|r| r.into_inner()) });
    }
    let mut responses = Vec::new();
    while let Some(r) = tasks.join_next().await {
        responses.push(r.expect("task").expect("create"));
    }
    assert!(responses.iter().all(|r| *r == responses[0]));
    assert_eq!(srv.count("incidents").await, 1);
    assert_eq!(srv.count("events").await, 1);
}

#[tokio::test]
async fn request_id_reused_for_a_different_request_is_refused() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;

    let id = rid();
    let first = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays")),
            request_id: id.clone(),
            occur_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let other = create_incident(&mut client, plain_incident("Other")).await;
    let state = srv.db_state().await;

    let check = |err: incident_client::tonic::Status, id: &str| {
        assert_error(&err, Code::FailedPrecondition, "REQUEST_ID_REUSED", None);
        assert_eq!(
            details(&err).metadata.get("request_id").map(String::as_str),
            Some(id)
        );
    };
    let err = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays, EU only")),
            request_id: id.clone(),
            occur_time: None,
        })
        .await
        .expect_err("different title under the same request_id");
    check(err, &id);
    assert_eq!(srv.db_state().await, state, "a reused id writes nothing");

    let pid = rid();
    client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: first.id.clone(),
            message: "Looking into it".into(),
            request_id: pid.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let state_after_post = srv.db_state().await;
    let err = client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: first.id.clone(),
            message: "Something else".into(),
            request_id: pid.clone(),
            ..Default::default()
        })
        .await
        .expect_err("different message under the same request_id");
    check(err, &pid);
    assert_eq!(srv.db_state().await, state_after_post);

    let cid = rid();
    components
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Login".into(),
                ..Default::default()
            }),
            request_id: cid.clone(),
        })
        .await
        .unwrap();
    let state_after_component = srv.db_state().await;
    let err = components
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Logout".into(),
                ..Default::default()
            }),
            request_id: cid.clone(),
        })
        .await
        .expect_err("different name under the same request_id");
    check(err, &cid);
    assert_eq!(srv.db_state().await, state_after_component);

    // Deleting another incident under a used request_id deletes nothing.
    let did = rid();
    client
        .delete_incident(DeleteIncidentRequest {
            id: first.id.clone(),
            etag: String::new(),
            request_id: did.clone(),
        })
        .await
        .unwrap();
    let state_after_delete = srv.db_state().await;
    let err = client
        .delete_incident(DeleteIncidentRequest {
            id: other.id.clone(),
            etag: String::new(),
            request_id: did.clone(),
        })
        .await
        .expect_err("another incident under the same request_id");
    check(err, &did);
    assert_eq!(srv.db_state().await, state_after_delete);
    assert!(get(&mut client, &other.id).await.delete_time.is_none());
}

#[tokio::test]
async fn request_id_is_scoped_to_the_caller() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let id = rid();
    let req = CreateIncidentRequest {
        incident: Some(plain_incident("Webhook delays")),
        request_id: id.clone(),
        occur_time: None,
    };
    let alice = client
        .create_incident(as_actor("alice", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let bob = client
        .create_incident(as_actor("bob", req.clone()))
        .await
        .expect("another caller's request_id is independent")
        .into_inner()
        .incident
        .unwrap();
    assert_ne!(alice.id, bob.id, "two callers, two incidents");
    let anonymous = client
        .create_incident(req.clone())
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_ne!(anonymous.id, alice.id);
    assert_eq!(srv.count("incidents").await, 3);
    let again = client
        .create_incident(as_actor("bob", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(
        again, bob,
        "each caller's retry gets its own first response"
    );
    assert_eq!(srv.count("incidents").await, 3);

    // A different request from bob under the id is a reuse for bob alone.
    let err = client
        .create_incident(as_actor(
            "bob",
            CreateIncidentRequest {
                incident: Some(plain_incident("Something else")),
                ..req.clone()
            },
        ))
        .await
        .expect_err("bob reuses his own id");
    assert_error(&err, Code::FailedPrecondition, "REQUEST_ID_REUSED", None);
    let carol = client
        .create_incident(as_actor(
            "carol",
            CreateIncidentRequest {
                incident: Some(plain_incident("Something else")),
                ..req.clone()
            },
        ))
        .await
        .expect("carol never used the id")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(carol.title, "Something else");

    // Status updates are authored by their caller; the same id posts twice
    // for two callers.
    let post_req = PostStatusUpdateRequest {
        incident_id: alice.id.clone(),
        message: "Investigating".into(),
        request_id: rid(),
        ..Default::default()
    };
    let by_alice = client
        .post_status_update(as_actor("alice", post_req.clone()))
        .await
        .unwrap()
        .into_inner()
        .status_update
        .unwrap();
    let by_bob = client
        .post_status_update(as_actor("bob", post_req.clone()))
        .await
        .unwrap()
        .into_inner()
        .status_update
        .unwrap();
    assert_eq!(by_alice.author, "alice");
    assert_eq!(by_bob.author, "bob");
    assert_ne!(by_alice.id, by_bob.id);
    assert_eq!(srv.count("status_updates").await, 2);
}

// ------------------------------------------------------------------ soft delete

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
    let state = srv.db_state().await;
    let err = client
        .delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("delete twice");
    assert_error(&err, Code::NotFound, "NOT_FOUND", None);
    assert_eq!(details(&err).metadata.get("incident_id"), Some(&inc.id));
    let err = client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: inc.id.clone(),
            message: "still there?".into(),
            ..Default::default()
        })
        .await
        .expect_err("post on a deleted incident");
    assert_error(&err, Code::FailedPrecondition, "INCIDENT_DELETED", None);
    let err = update(
        &mut client,
        Incident {
            id: inc.id.clone(),
            title: "renamed".into(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .expect_err("update on a deleted incident");
    assert_error(&err, Code::FailedPrecondition, "INCIDENT_DELETED", None);
    assert_eq!(srv.db_state().await, state);

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
    let err = client
        .undelete_incident(UndeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("undelete a live incident");
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", None);
    let err = client
        .delete_incident(DeleteIncidentRequest {
            id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("unknown incident");
    assert_error(&err, Code::NotFound, "NOT_FOUND", None);
}

// ------------------------------------------------------------------- components

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

    let state = srv.db_state().await;
    let err = components
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Login".into(),
                parent_id: admin.id.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("a second Login under Administration");
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", None);
    assert_eq!(
        details(&err).metadata.get("component_id"),
        Some(&admin_login.id)
    );
    let err = components
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Administration".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("a second top-level Administration");
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", None);

    // Renaming onto a sibling's name, or moving next to a namesake, is refused.
    let err = components
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: users.id.clone(),
                name: "Login".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect_err("rename to a sibling's name");
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", None);
    let err = components
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: admin_login.id.clone(),
                parent_id: panel.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["parent_id"]),
            request_id: String::new(),
        })
        .await
        .expect_err("move next to a namesake");
    assert_error(&err, Code::AlreadyExists, "ALREADY_EXISTS", None);
    assert_eq!(srv.db_state().await, state);
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
    let err = components
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: users.id.clone(),
                name: "Agents".into(),
                etag: users.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect_err("stale component etag");
    assert_error(&err, Code::Aborted, "ETAG_MISMATCH", None);

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
    let state = srv.db_state().await;
    for parent in [&admin.id, &login.id, &sso.id] {
        let err = components
            .update_component(UpdateComponentRequest {
                component: Some(Component {
                    id: admin.id.clone(),
                    parent_id: parent.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["parent_id"]),
                request_id: String::new(),
            })
            .await
            .expect_err("a cycle in the tree");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_INVALID",
            Some("component.parent_id"),
        );
    }
    assert_eq!(srv.db_state().await, state);
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

    let state = srv.db_state().await;
    let err = components
        .delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("an open incident uses it");
    assert_error(&err, Code::FailedPrecondition, "HAS_DEPENDENTS", None);
    assert_eq!(details(&err).metadata.get("component_id"), Some(&login.id));
    let err = components
        .delete_component(DeleteComponentRequest {
            id: panel.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("it has a live child");
    assert_error(&err, Code::FailedPrecondition, "HAS_DEPENDENTS", None);
    assert_eq!(srv.db_state().await, state);

    // Monitoring is still open.
    post(&mut client, &inc.id, IncidentStatus::Monitoring).await;
    let err = components
        .delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("still open while monitoring");
    assert_error(&err, Code::FailedPrecondition, "HAS_DEPENDENTS", None);

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
    let err = components
        .delete_component(DeleteComponentRequest {
            id: login.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("delete twice");
    assert_error(&err, Code::NotFound, "NOT_FOUND", None);
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

// ------------------------------------------------------------- next_update_time

#[tokio::test]
async fn next_update_time_is_restated_by_every_status_update() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let promise = from_now(1800);
    let inc = create_incident(
        &mut client,
        Incident {
            next_update_time: Some(promise),
            ..plain_incident("Webhook delays")
        },
    )
    .await;
    assert_eq!(inc.next_update_time, Some(promise));

    let send = |next: Option<Timestamp>| PostStatusUpdateRequest {
        incident_id: inc.id.clone(),
        message: "Still investigating".into(),
        next_update_time: next,
        ..Default::default()
    };
    let later = from_now(3600);
    let r = client
        .post_status_update(send(Some(later)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incident.unwrap().next_update_time, Some(later));
    assert_eq!(r.status_update.unwrap().next_update_time, Some(later));

    let r = client
        .post_status_update(send(None))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.incident.unwrap().next_update_time.is_none(),
        "an update without a promise clears the incident's"
    );
    assert!(r.status_update.unwrap().next_update_time.is_none());
    assert!(get(&mut client, &inc.id).await.next_update_time.is_none());

    let again = from_now(900);
    let r = client
        .post_status_update(send(Some(again)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.incident.unwrap().next_update_time, Some(again));
    // A status-moving update restates it too.
    let i = post(&mut client, &inc.id, IncidentStatus::Identified).await;
    assert!(i.next_update_time.is_none());

    // UpdateIncident may set it by hand.
    let set = update(
        &mut client,
        Incident {
            id: inc.id.clone(),
            next_update_time: Some(later),
            ..Default::default()
        },
        &["next_update_time"],
    )
    .await
    .unwrap();
    assert_eq!(set.next_update_time, Some(later));

    // A promise must lie after the update it is made in.
    let state = srv.db_state().await;
    let err = client
        .post_status_update(send(Some(from_now(-60))))
        .await
        .expect_err("a promise in the past");
    assert_error(
        &err,
        Code::InvalidArgument,
        "FIELD_INVALID",
        Some("next_update_time"),
    );
    assert_eq!(srv.db_state().await, state);
}

// ------------------------------------------------------------------ maintenance

#[tokio::test]
async fn maintenance_runs_scheduled_to_completed() {
    let srv = TestServer::start().await;
    let platform = create_component(&srv, "Platform", "").await;
    let db = create_component(&srv, "Database", &platform.id).await;
    let mut client = srv.incidents().await;
    let m = create_incident(
        &mut client,
        Incident {
            kind: IncidentKind::Maintenance as i32,
            scheduled_start_time: Some(from_now(-600)),
            scheduled_end_time: Some(from_now(3600)),
            ..plain_incident("Database upgrade")
        },
    )
    .await;
    assert_eq!(m.kind, IncidentKind::Maintenance as i32);
    assert_eq!(
        m.status,
        IncidentStatus::Scheduled as i32,
        "SCHEDULED by default"
    );
    assert!(m.resolve_time.is_none());

    let r = post_at(
        &mut client,
        &m.id,
        IncidentStatus::InProgress,
        vec![impact(&db, ImpactLevel::UnderMaintenance)],
        None,
    )
    .await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::InProgress as i32);
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::UnderMaintenance as i32
    );
    assert_eq!(
        get_component(&srv, &platform.id).await.status,
        ImpactLevel::UnderMaintenance as i32,
        "the group shows maintenance below it"
    );

    // An unplanned degradation on the same component outranks maintenance.
    let outage = create_incident(
        &mut client,
        Incident {
            component_impacts: vec![impact(&db, ImpactLevel::DegradedPerformance)],
            ..plain_incident("Slow queries")
        },
    )
    .await;
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::DegradedPerformance as i32
    );
    post(&mut client, &outage.id, IncidentStatus::Resolved).await;
    assert_eq!(
        get_component(&srv, &db.id).await.status,
        ImpactLevel::UnderMaintenance as i32
    );

    // Incident statuses do not apply to a maintenance.
    let state = srv.db_state().await;
    let err = client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: m.id.clone(),
            status: IncidentStatus::Monitoring as i32,
            message: "wrong kind".into(),
            ..Default::default()
        })
        .await
        .expect_err("incident status on a maintenance");
    assert_error(&err, Code::FailedPrecondition, "INVALID_TRANSITION", None);
    assert_eq!(srv.db_state().await, state);

    let i = post(&mut client, &m.id, IncidentStatus::Verifying).await;
    assert_eq!(i.status, IncidentStatus::Verifying as i32);
    assert!(i.resolve_time.is_none());
    let r = post_at(&mut client, &m.id, IncidentStatus::Completed, vec![], None).await;
    let i = r.incident.unwrap();
    assert_eq!(i.status, IncidentStatus::Completed as i32);
    assert_eq!(
        i.resolve_time,
        r.status_update.unwrap().post_time,
        "COMPLETED sets resolve_time"
    );
    assert!(
        i.component_impacts
            .iter()
            .all(|c| c.impact == ImpactLevel::Operational as i32)
    );
    assert_eq!(
        get_component(&srv, &platform.id).await.status,
        ImpactLevel::Operational as i32
    );
    let closed = client
        .list_incidents(ListIncidentsRequest {
            open: Some(false),
            kind: IncidentKind::Maintenance as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(closed, [i]);

    // A maintenance status on an incident is refused too.
    let err = client
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                status: IncidentStatus::Scheduled as i32,
                ..plain_incident("Wrong kind")
            }),
            ..Default::default()
        })
        .await
        .expect_err("maintenance status on an incident");
    assert_error(&err, Code::FailedPrecondition, "INVALID_TRANSITION", None);
}
