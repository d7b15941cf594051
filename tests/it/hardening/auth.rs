//! Roles and tokens: each role against each RPC, bad credentials, what
//! needs no token, the actor, and open mode on loopback only.

use std::collections::BTreeSet;

use incident_client::tonic::Code;
use incident_client::tonic::metadata::MetadataValue;
use incident_client::*;
use prost::Message;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::*;
use crate::support::*;

#[test]
fn the_role_table_covers_every_rpc_of_the_four_services() {
    let set = prost_types::FileDescriptorSet::decode(incidentd::proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut served = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package() == "incident.v1") {
        for svc in &file.service {
            for m in &svc.method {
                served.insert(format!("{}/{}", svc.name(), m.name()));
            }
        }
    }
    let table: BTreeSet<String> = RPCS.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(served, table, "every RPC needs a row in the role table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_against_each_rpc() {
    let srv = TestServer::start_with(with_tokens()).await;
    let ch = srv.channel().await;
    let roles = [
        (Need::Public, bearer(PUBLIC)),
        (Need::Viewer, bearer(VIEWER)),
        (Need::Responder, bearer(RESPONDER)),
        (Need::Admin, bearer(ADMIN)),
    ];
    let mut cases = Cases::new(&srv, "each role against each RPC");
    for &(rpc, need) in RPCS {
        for (role, header) in &roles {
            let name = format!("{rpc} as {role:?}");
            if *role >= need {
                if let Err(s) = call(&ch, rpc, Some(header)).await
                    && matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied)
                {
                    cases.fail(&name, format!("should pass auth, got {s:?}"));
                }
            } else {
                cases
                    .reject(
                        &name,
                        Rejection::new(Code::PermissionDenied, "PERMISSION_DENIED"),
                        call(&ch, rpc, Some(header)),
                    )
                    .await;
            }
        }
    }
    cases.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_unknown_or_malformed_tokens_are_unauthenticated() {
    let srv = TestServer::start_with(with_tokens()).await;
    let ch = srv.channel().await;
    let headers: [Option<String>; 7] = [
        None,
        Some(bearer("not-a-known-token")),
        Some("Basic dmlld2VyOnNlY3JldA==".into()),
        Some("Basic x".into()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        // The right secret without the scheme is still malformed.
        Some(ADMIN.into()),
    ];
    let mut cases = Cases::new(&srv, "bad credentials");
    for &(rpc, _) in RPCS {
        for h in &headers {
            cases
                .reject(
                    &format!("{rpc} with {h:?}"),
                    Rejection::new(Code::Unauthenticated, "UNAUTHENTICATED"),
                    call(&ch, rpc, h.as_deref()),
                )
                .await;
        }
    }
    cases.finish();
    // Nothing got through to the store.
    assert_eq!(srv.count("incidents").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_reflection_need_no_token() {
    use tonic_reflection::pb::{v1, v1alpha};
    let srv = TestServer::start_with(with_tokens()).await;
    let ch = srv.channel().await;

    for header in [None, Some("Bearer not-a-known-token")] {
        let status = HealthClient::new(ch.clone())
            .check(req(HealthCheckRequest::default(), header))
            .await
            .expect("health without a valid token")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);
    }

    let ask = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = v1::server_reflection_client::ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter(vec![ask]))
        .await
        .expect("reflection v1 without a token")
        .into_inner();
    let resp = stream
        .message()
        .await
        .expect("v1 reply")
        .expect("v1 message");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message_response
    else {
        panic!("unexpected v1 reply {resp:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "incident.v1.IncidentService"),
        "{list:?}"
    );

    let ask = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = v1alpha::server_reflection_client::ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter(vec![ask]))
        .await
        .expect("reflection v1alpha without a token")
        .into_inner();
    let resp = stream
        .message()
        .await
        .expect("v1alpha reply")
        .expect("v1alpha message");
    assert!(
        matches!(
            resp.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(_))
        ),
        "{resp:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_name_is_the_actor_and_x_actor_is_ignored() {
    let srv = TestServer::start_with(with_tokens()).await;
    let ch = srv.channel().await;
    let rita = bearer(RESPONDER);
    fn spoof<T>(mut r: Request<T>) -> Request<T> {
        r.metadata_mut()
            .insert("x-actor", MetadataValue::from_static("mallory"));
        r
    }

    let mut incidents = IncidentServiceClient::new(ch.clone());
    let inc = incidents
        .create_incident(spoof(req(
            CreateIncidentRequest {
                incident: Some(plain_incident("Actor check")),
                ..Default::default()
            },
            Some(&rita),
        )))
        .await
        .expect("create")
        .into_inner()
        .incident
        .unwrap();
    let posted = incidents
        .post_status_update(spoof(req(
            PostStatusUpdateRequest {
                incident_id: inc.id.clone(),
                status: IncidentStatus::Identified as i32,
                message: "Found it".into(),
                ..Default::default()
            },
            Some(&rita),
        )))
        .await
        .expect("post")
        .into_inner()
        .status_update
        .unwrap();
    assert_eq!(posted.author, "rita");

    let note = TimelineServiceClient::new(ch.clone())
        .add_note(spoof(req(
            AddNoteRequest {
                incident_id: inc.id.clone(),
                text: "a note".into(),
                ..Default::default()
            },
            Some(&rita),
        )))
        .await
        .expect("note")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(note.actor, "rita");

    // An admin's delete is the admin's.
    incidents
        .delete_incident(spoof(req(
            DeleteIncidentRequest {
                id: inc.id.clone(),
                ..Default::default()
            },
            Some(&bearer(ADMIN)),
        )))
        .await
        .expect("delete");

    let updates = incidents
        .list_status_updates(req(
            ListStatusUpdatesRequest {
                incident_id: inc.id.clone(),
                ..Default::default()
            },
            Some(&bearer(VIEWER)),
        ))
        .await
        .expect("list updates")
        .into_inner()
        .status_updates;
    assert!(!updates.is_empty());
    assert!(updates.iter().all(|u| u.author == "rita"), "{updates:?}");

    let events = TimelineServiceClient::new(ch.clone())
        .list_timeline_events(req(
            ListTimelineEventsRequest {
                incident_id: inc.id.clone(),
                ..Default::default()
            },
            Some(&bearer(VIEWER)),
        ))
        .await
        .expect("list events")
        .into_inner()
        .events;
    let actors: Vec<(i32, &str)> = events.iter().map(|e| (e.kind, e.actor.as_str())).collect();
    assert!(events.len() >= 4, "{actors:?}");
    for e in &events {
        let want = if e.kind == TimelineEventKind::IncidentDeleted as i32 {
            "ada"
        } else {
            "rita"
        };
        assert_eq!(e.actor, want, "actors: {actors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_only_loopback_is_served() {
    let db = TestDb::create().await;
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let started = start_server(addr, db.as_str(), &Options::default()).await;
        let err = match started {
            Ok(s) => {
                s.stop().await.ok();
                panic!("served open on {addr}");
            }
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("loopback"), "unclear refusal: {err}");
    }
    // With tokens the same address is fine.
    let server = start_server("0.0.0.0:0", db.as_str(), &with_tokens())
        .await
        .expect("serves with tokens on any address");
    server.stop().await.expect("stop");
    // And open mode on loopback works (v6 too, where available).
    start_server("127.0.0.1:0", db.as_str(), &Options::default())
        .await
        .expect("open on loopback")
        .stop()
        .await
        .expect("stop");
}
