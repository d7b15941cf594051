//! request_id: retries answer the first response, reuse is refused, and
//! ids are scoped to their caller.

use incident_client::*;

use super::{as_actor, get, update};
use crate::support::*;

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
    let state = srv.snapshot().await;
    let again = components
        .create_component(req.clone())
        .await
        .expect("retry is not ALREADY_EXISTS")
        .into_inner();
    assert_eq!(again, first);
    srv.assert_unchanged(&state, "a retry").await;
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
    let state = srv.snapshot().await;
    let (incidents, events) = (srv.count("incidents").await, srv.count("events").await);
    let again = client
        .create_incident(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "the same incident, not a second one");
    assert_eq!(srv.count("incidents").await, incidents);
    assert_eq!(srv.count("events").await, events);
    srv.assert_unchanged(&state, "a retry").await;
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
    let state = srv.snapshot().await;
    let updates = srv.count("status_updates").await;
    let again = client
        .post_status_update(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(srv.count("status_updates").await, updates);
    srv.assert_unchanged(&state, "a retry").await;

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
    let state = srv.snapshot().await;
    let again = client
        .delete_incident(req.clone())
        .await
        .expect("retry of a delete succeeds")
        .into_inner();
    assert_eq!(again, first);
    srv.assert_unchanged(&state, "a retry").await;
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
    // A reused id writes nothing.
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&id),
        client.create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Webhook delays, EU only")),
            request_id: id.clone(),
            occur_time: None,
        }),
    )
    .await;

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
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&pid),
        client.post_status_update(PostStatusUpdateRequest {
            incident_id: first.id.clone(),
            message: "Something else".into(),
            request_id: pid.clone(),
            ..Default::default()
        }),
    )
    .await;

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
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&cid),
        components.create_component(CreateComponentRequest {
            component: Some(Component {
                name: "Logout".into(),
                ..Default::default()
            }),
            request_id: cid.clone(),
        }),
    )
    .await;

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
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&did),
        client.delete_incident(DeleteIncidentRequest {
            id: other.id.clone(),
            etag: String::new(),
            request_id: did.clone(),
        }),
    )
    .await;
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
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&id),
        client.create_incident(as_actor(
            "bob",
            CreateIncidentRequest {
                incident: Some(plain_incident("Something else")),
                ..req.clone()
            },
        )),
    )
    .await;
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
