//! Hardening: roles and tokens, TLS, the server-wide concurrency limit,
//! client deadlines, the request size limit, and request_id reuse per caller.
//! The real-binary tests (SIGTERM with open streams, kill -9 under load) are
//! in tests/crash.rs.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestServer, details, rid};
use incident_client::tonic::metadata::MetadataValue;
use incident_client::tonic::transport::{Certificate, Channel, ClientTlsConfig};
use incident_client::tonic::{Code, Request, Status};
use incident_client::*;
use incidentd::auth::{Tokens, token_digest};
use incidentd::server::{Config, Server, TlsFiles};
use prost::Message;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const VIEWER: &str = "viewer-secret-7f3a";
const RESPONDER: &str = "responder-secret-91c2";
const RESPONDER2: &str = "responder-two-secret-55d0";
const ADMIN: &str = "admin-secret-0b8e";

/// A server started from a hand-built `Config`, with its temp dir.
struct Srv {
    server: Server,
    dir: TempDir,
    url: String,
}

impl Srv {
    async fn start(configure: impl FnOnce(&mut Config, &std::path::Path)) -> Srv {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("incidentd.db");
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), db.display().to_string());
        configure(&mut config, dir.path());
        let server = Server::start(config).await.expect("server starts");
        let url = format!("http://{}", server.addr());
        Srv { server, dir, url }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("incidentd.db")
    }
}

/// Writes a tokens file (digests only) and loads it the way `--tokens-file` does.
fn tokens(dir: &std::path::Path) -> Arc<Tokens> {
    let path = dir.join("tokens.toml");
    let mut text = String::new();
    for (name, role, token) in [
        ("vic", "viewer", VIEWER),
        ("rita", "responder", RESPONDER),
        ("ron", "responder", RESPONDER2),
        ("ada", "admin", ADMIN),
    ] {
        text.push_str(&format!(
            "[[token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n\n",
            token_digest(token)
        ));
    }
    assert!(!text.contains(VIEWER), "plain tokens are never stored");
    std::fs::write(&path, text).unwrap();
    Arc::new(Tokens::load(&path).expect("tokens file loads"))
}

/// A request carrying `authorization: <header>` (if any).
fn req<T>(msg: T, header: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(h) = header {
        r.metadata_mut()
            .insert("authorization", MetadataValue::try_from(h).expect("header"));
    }
    r
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn health(ch: Channel) -> Result<i32, Status> {
    HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

fn new_incident(title: &str) -> Incident {
    Incident {
        title: title.into(),
        kind: IncidentKind::Incident as i32,
        severity: Severity::P2 as i32,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// 1. Roles and tokens
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Viewer,
    Responder,
    Admin,
}

/// DESIGN.md §2 Roles, written out independently of `auth::required_role`.
const RPCS: &[(&str, Need)] = &[
    ("IncidentService/CreateIncident", Need::Responder),
    ("IncidentService/GetIncident", Need::Viewer),
    ("IncidentService/ListIncidents", Need::Viewer),
    ("IncidentService/UpdateIncident", Need::Responder),
    ("IncidentService/DeleteIncident", Need::Admin),
    ("IncidentService/UndeleteIncident", Need::Admin),
    ("IncidentService/PostStatusUpdate", Need::Responder),
    ("IncidentService/ListStatusUpdates", Need::Viewer),
    ("IncidentService/GetPostmortem", Need::Viewer),
    ("IncidentService/UpdatePostmortem", Need::Responder),
    ("IncidentService/PublishPostmortem", Need::Responder),
    ("TimelineService/ListTimelineEvents", Need::Viewer),
    ("TimelineService/SubscribeTimeline", Need::Viewer),
    ("TimelineService/AddNote", Need::Responder),
    ("ActionItemService/CreateActionItem", Need::Responder),
    ("ActionItemService/GetActionItem", Need::Viewer),
    ("ActionItemService/ListActionItems", Need::Viewer),
    ("ActionItemService/UpdateActionItem", Need::Responder),
    ("ActionItemService/DeleteActionItem", Need::Admin),
    ("ComponentService/CreateComponent", Need::Admin),
    ("ComponentService/GetComponent", Need::Viewer),
    ("ComponentService/ListComponents", Need::Viewer),
    ("ComponentService/UpdateComponent", Need::Admin),
    ("ComponentService/DeleteComponent", Need::Admin),
];

/// Calls one RPC with an empty request; only how far it got matters.
async fn call(ch: &Channel, rpc: &str, auth: Option<&str>) -> Result<(), Status> {
    macro_rules! go {
        ($client:ident, $method:ident, $msg:ty) => {
            $client::new(ch.clone())
                .$method(req(<$msg>::default(), auth))
                .await
                .map(|_| ())
        };
    }
    match rpc {
        "IncidentService/CreateIncident" => {
            go!(
                IncidentServiceClient,
                create_incident,
                CreateIncidentRequest
            )
        }
        "IncidentService/GetIncident" => {
            go!(IncidentServiceClient, get_incident, GetIncidentRequest)
        }
        "IncidentService/ListIncidents" => {
            go!(IncidentServiceClient, list_incidents, ListIncidentsRequest)
        }
        "IncidentService/UpdateIncident" => {
            go!(
                IncidentServiceClient,
                update_incident,
                UpdateIncidentRequest
            )
        }
        "IncidentService/DeleteIncident" => {
            go!(
                IncidentServiceClient,
                delete_incident,
                DeleteIncidentRequest
            )
        }
        "IncidentService/UndeleteIncident" => {
            go!(
                IncidentServiceClient,
                undelete_incident,
                UndeleteIncidentRequest
            )
        }
        "IncidentService/PostStatusUpdate" => {
            go!(
                IncidentServiceClient,
                post_status_update,
                PostStatusUpdateRequest
            )
        }
        "IncidentService/ListStatusUpdates" => {
            go!(
                IncidentServiceClient,
                list_status_updates,
                ListStatusUpdatesRequest
            )
        }
        "IncidentService/GetPostmortem" => {
            go!(IncidentServiceClient, get_postmortem, GetPostmortemRequest)
        }
        "IncidentService/UpdatePostmortem" => {
            go!(
                IncidentServiceClient,
                update_postmortem,
                UpdatePostmortemRequest
            )
        }
        "IncidentService/PublishPostmortem" => {
            go!(
                IncidentServiceClient,
                publish_postmortem,
                PublishPostmortemRequest
            )
        }
        "TimelineService/ListTimelineEvents" => {
            go!(
                TimelineServiceClient,
                list_timeline_events,
                ListTimelineEventsRequest
            )
        }
        "TimelineService/SubscribeTimeline" => {
            go!(
                TimelineServiceClient,
                subscribe_timeline,
                SubscribeTimelineRequest
            )
        }
        "TimelineService/AddNote" => go!(TimelineServiceClient, add_note, AddNoteRequest),
        "ActionItemService/CreateActionItem" => {
            go!(
                ActionItemServiceClient,
                create_action_item,
                CreateActionItemRequest
            )
        }
        "ActionItemService/GetActionItem" => {
            go!(
                ActionItemServiceClient,
                get_action_item,
                GetActionItemRequest
            )
        }
        "ActionItemService/ListActionItems" => {
            go!(
                ActionItemServiceClient,
                list_action_items,
                ListActionItemsRequest
            )
        }
        "ActionItemService/UpdateActionItem" => {
            go!(
                ActionItemServiceClient,
                update_action_item,
                UpdateActionItemRequest
            )
        }
        "ActionItemService/DeleteActionItem" => {
            go!(
                ActionItemServiceClient,
                delete_action_item,
                DeleteActionItemRequest
            )
        }
        "ComponentService/CreateComponent" => {
            go!(
                ComponentServiceClient,
                create_component,
                CreateComponentRequest
            )
        }
        "ComponentService/GetComponent" => {
            go!(ComponentServiceClient, get_component, GetComponentRequest)
        }
        "ComponentService/ListComponents" => {
            go!(
                ComponentServiceClient,
                list_components,
                ListComponentsRequest
            )
        }
        "ComponentService/UpdateComponent" => {
            go!(
                ComponentServiceClient,
                update_component,
                UpdateComponentRequest
            )
        }
        "ComponentService/DeleteComponent" => {
            go!(
                ComponentServiceClient,
                delete_component,
                DeleteComponentRequest
            )
        }
        other => panic!("no call for {other}"),
    }
}

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
    let srv = Srv::start(|c, dir| c.tokens = Some(tokens(dir))).await;
    let ch = srv.channel().await;
    let roles = [
        (Need::Viewer, bearer(VIEWER)),
        (Need::Responder, bearer(RESPONDER)),
        (Need::Admin, bearer(ADMIN)),
    ];
    let mut failures = Vec::new();
    for &(rpc, need) in RPCS {
        for (role, header) in &roles {
            let got = call(&ch, rpc, Some(header)).await;
            if *role >= need {
                if let Err(s) = &got
                    && matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied)
                {
                    failures.push(format!("{rpc} as {role:?}: should pass auth, got {s:?}"));
                }
            } else {
                match &got {
                    Err(s)
                        if s.code() == Code::PermissionDenied
                            && details(s).reason == "PERMISSION_DENIED" => {}
                    other => failures.push(format!(
                        "{rpc} as {role:?}: want PERMISSION_DENIED/PERMISSION_DENIED, got {other:?}"
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_unknown_or_malformed_tokens_are_unauthenticated() {
    let srv = Srv::start(|c, dir| c.tokens = Some(tokens(dir))).await;
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
    let mut failures = Vec::new();
    for &(rpc, _) in RPCS {
        for h in &headers {
            match call(&ch, rpc, h.as_deref()).await {
                Err(s)
                    if s.code() == Code::Unauthenticated
                        && details(&s).reason == "UNAUTHENTICATED" => {}
                other => failures.push(format!(
                    "{rpc} with {h:?}: want UNAUTHENTICATED/UNAUTHENTICATED, got {other:?}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing got through to the store.
    let n: i64 = count(&srv.db(), "incidents").await;
    assert_eq!(n, 0);
}

async fn count(db: &std::path::Path, table: &str) -> i64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open db");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_reflection_need_no_token() {
    use tonic_reflection::pb::{v1, v1alpha};
    let srv = Srv::start(|c, dir| c.tokens = Some(tokens(dir))).await;
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
    let srv = Srv::start(|c, dir| c.tokens = Some(tokens(dir))).await;
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
                incident: Some(new_incident("Actor check")),
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
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let config = Config::new(
            addr.parse().unwrap(),
            dir.path().join("a.db").display().to_string(),
        );
        let err = match Server::start(config).await {
            Ok(s) => {
                s.stop().await.ok();
                panic!("served open on {addr}");
            }
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("loopback"), "unclear refusal: {err}");
    }
    // With tokens the same address is fine.
    let mut config = Config::new(
        "0.0.0.0:0".parse().unwrap(),
        dir.path().join("b.db").display().to_string(),
    );
    config.tokens = Some(tokens(dir.path()));
    let server = Server::start(config)
        .await
        .expect("serves with tokens on any address");
    server.stop().await.expect("stop");
    // And open mode on loopback works (v6 too, where available).
    let config = Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("c.db").display().to_string(),
    );
    Server::start(config)
        .await
        .expect("open on loopback")
        .stop()
        .await
        .expect("stop");
}

// ---------------------------------------------------------------------------
// 2. TLS
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_round_trip_with_a_self_signed_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_pem = cert.cert.pem();
    let srv = Srv::start(|c, dir| {
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, &cert_pem).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        c.tls = Some(TlsFiles {
            cert: cert_path,
            key: key_path,
        });
    })
    .await;
    let port = srv.server.addr().port();

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("TLS connect");
    assert_eq!(
        health(ch.clone()).await.expect("health over TLS"),
        ServingStatus::Serving as i32
    );
    let mut incidents = IncidentServiceClient::new(ch.clone());
    let created = incidents
        .create_incident(CreateIncidentRequest {
            incident: Some(new_incident("Over TLS")),
            ..Default::default()
        })
        .await
        .expect("create over TLS")
        .into_inner()
        .incident
        .unwrap();
    let got = incidents
        .get_incident(GetIncidentRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get over TLS")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.title, "Over TLS");

    // A plaintext client against the TLS port gets nothing.
    let plain = async {
        let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        health(ch).await
    }
    .await;
    assert!(plain.is_err(), "plaintext call on the TLS port: {plain:?}");

    // A TLS client that does not trust the certificate is refused too.
    let untrusted = async {
        let ch = Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(ClientTlsConfig::new().domain_name("localhost"))
            .map_err(|e| Status::unavailable(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        health(ch).await
    }
    .await;
    assert!(
        untrusted.is_err(),
        "untrusted certificate accepted: {untrusted:?}"
    );

    // The TLS client is still served.
    assert_eq!(
        health(ch).await.expect("health over TLS"),
        ServingStatus::Serving as i32
    );
}

// ---------------------------------------------------------------------------
// 3. Concurrency limit, 4. deadlines
// ---------------------------------------------------------------------------

/// A CreateIncident whose request body stays open until a message is sent on
/// (or the sender is dropped from) the returned channel: the server has
/// admitted it and waits for its body, so it holds a concurrency permit.
fn held_create(
    ch: Channel,
    timeout: Option<Duration>,
) -> (
    mpsc::Sender<CreateIncidentRequest>,
    JoinHandle<Result<CreateIncidentResponse, Status>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let call = tokio::spawn(async move {
        let mut grpc = incident_client::tonic::client::Grpc::new(ch);
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        let mut r = Request::new(ReceiverStream::new(rx));
        if let Some(t) = timeout {
            r.set_timeout(t);
        }
        grpc.client_streaming(
            r,
            http::uri::PathAndQuery::from_static("/incident.v1.IncidentService/CreateIncident"),
            tonic_prost::ProstCodec::<CreateIncidentRequest, CreateIncidentResponse>::default(),
        )
        .await
        .map(|r| r.into_inner())
    });
    (tx, call)
}

/// A cheap call through the admission layer.
async fn probe(ch: &Channel) -> Result<(), Status> {
    IncidentServiceClient::new(ch.clone())
        .list_incidents(ListIncidentsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

type Held = (
    mpsc::Sender<CreateIncidentRequest>,
    JoinHandle<Result<CreateIncidentResponse, Status>>,
);

/// Opens `n` held calls and probes until the server sheds load. With probes
/// sequential and nothing else in flight, a shed probe proves that every
/// permit is held by the held calls. A held call that arrived while a probe
/// held a permit was itself shed: it is opened again.
async fn saturate(ch: &Channel, n: usize, timeout: Option<Duration>) -> (Vec<Held>, Status) {
    let mut held: Vec<Held> = (0..n).map(|_| held_create(ch.clone(), timeout)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for h in held.iter_mut() {
            if h.1.is_finished() {
                let (_, done) = std::mem::replace(h, held_create(ch.clone(), timeout));
                match done.await.unwrap() {
                    Err(s) if s.code() == Code::ResourceExhausted => {}
                    other => panic!("a held call ended early: {other:?}"),
                }
            }
        }
        match probe(ch).await {
            Err(s) if s.code() == Code::ResourceExhausted => return (held, s),
            Ok(()) => {}
            Err(s) => panic!("probe: {s:?}"),
        }
        assert!(Instant::now() < deadline, "the limit was never reached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// After a call ended, the server serves again (within a bound: the permit
/// of a call ended by its deadline is released just after the reply).
async fn served_again(ch: &Channel) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match probe(ch).await {
            Ok(()) => return,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await
            }
            Err(s) => panic!("not served again: {s:?}"),
        }
    }
}

async fn create(ch: &Channel, title: &str) -> Result<Incident, Status> {
    IncidentServiceClient::new(ch.clone())
        .create_incident(CreateIncidentRequest {
            incident: Some(new_incident(title)),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().incident.unwrap())
}

async fn list_count(ch: &Channel) -> usize {
    IncidentServiceClient::new(ch.clone())
        .list_incidents(ListIncidentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .incidents
        .len()
}

/// Fires `n` concurrent CreateIncident calls; returns (ok, overloaded).
async fn burst(ch: &Channel, n: usize) -> (usize, usize) {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let ch = ch.clone();
            tokio::spawn(async move { create(&ch, &format!("burst {i}")).await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => {
                let d = details(&s);
                assert_eq!(
                    (d.code, d.reason.as_str()),
                    (Code::ResourceExhausted, "OVERLOADED"),
                    "{s:?}"
                );
                shed += 1;
            }
        }
    }
    (ok, shed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_sheds_load_and_recovers() {
    let srv = Srv::start(|c, _| c.max_concurrent_requests = 2).await;
    let ch = srv.channel().await;

    // Two calls in flight (admitted, waiting for their bodies) use the limit.
    let (held, shed) = saturate(&ch, 2, None).await;
    let d = details(&shed);
    assert_eq!(d.reason, "OVERLOADED", "{shed:?}");

    // Saturated: every other call is refused at once, nothing is queued or
    // written, and health still answers.
    let (ok, refused) = burst(&ch, 50).await;
    assert_eq!((ok, refused), (0, 50));
    assert_eq!(
        health(ch.clone()).await.expect("health under saturation"),
        ServingStatus::Serving as i32
    );

    // The held calls were admitted: they complete once their bodies arrive.
    for (i, (tx, call)) in held.into_iter().enumerate() {
        let title = format!("held {i}");
        tx.send(CreateIncidentRequest {
            incident: Some(new_incident(&title)),
            ..Default::default()
        })
        .await
        .unwrap();
        drop(tx);
        let done = call.await.unwrap().expect("a held call completes");
        assert_eq!(done.incident.unwrap().title, title);
    }

    // Afterwards: a burst of 200 on a limit of 2 is partly shed, the rest
    // succeeds, and only the successes were written.
    let (ok, refused) = burst(&ch, 200).await;
    assert!(ok > 0, "nothing admitted after the limit freed up");
    assert!(
        refused > 0,
        "200 concurrent calls on a limit of 2 were never shed"
    );
    assert_eq!(list_count(&ch).await, 2 + ok);

    // And the server still serves.
    create(&ch, "after").await.expect("served after overload");
    assert_eq!(list_count(&ch).await, 3 + ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_deadlines_are_honoured() {
    // A limit of 1: a call the server kept past its deadline would block all others.
    let srv = Srv::start(|c, _| c.max_concurrent_requests = 1).await;
    let ch = srv.channel().await;

    // A 1 µs deadline on a call that cannot finish (its body never comes):
    // tonic's server answers CANCELLED "Timeout expired" (not
    // DEADLINE_EXCEEDED), at once, and releases what the call held.
    let (_tx, held) = held_create(ch.clone(), Some(Duration::from_micros(1)));
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("the server ended the call")
        .unwrap()
        .expect_err("past its deadline");
    assert_eq!(err.code(), Code::Cancelled, "{err:?}");
    assert!(err.message().contains("Timeout expired"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    served_again(&ch).await;

    // A longer deadline: the call holds the only permit (others are shed)
    // until the deadline passes, then the server ends it and serves again.
    let (mut held, _) = saturate(&ch, 1, Some(Duration::from_millis(800))).await;
    let (_tx, call) = held.pop().unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the server ended the call")
        .unwrap()
        .expect_err("past its deadline");
    assert_eq!(err.code(), Code::Cancelled, "{err:?}");
    served_again(&ch).await;

    // A tiny deadline on ordinary writes: each either made it or is
    // CANCELLED, never anything else, and the server keeps serving.
    for i in 0..5 {
        served_again(&ch).await;
        let mut r = Request::new(CreateIncidentRequest {
            incident: Some(new_incident(&format!("hurried {i}"))),
            ..Default::default()
        });
        r.set_timeout(Duration::from_nanos(1));
        match IncidentServiceClient::new(ch.clone())
            .create_incident(r)
            .await
        {
            Ok(_) => {}
            Err(s) => assert_eq!(s.code(), Code::Cancelled, "{s:?}"),
        }
    }
    served_again(&ch).await;
    create(&ch, "after deadlines")
        .await
        .expect("served after deadlines");
}

// ---------------------------------------------------------------------------
// 5. Request size limit
// ---------------------------------------------------------------------------

const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// An AddNote whose encoded message is exactly `size` bytes.
fn note_of_size(incident_id: &str, size: usize) -> AddNoteRequest {
    let mut r = AddNoteRequest {
        incident_id: incident_id.into(),
        text: "a".repeat(size),
        ..Default::default()
    };
    let over = r.encoded_len() - size;
    r.text.truncate(size - over);
    assert_eq!(r.encoded_len(), size);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_4_mib_is_refused_and_the_next_is_served() {
    let srv = TestServer::start().await;
    let inc = srv
        .incidents()
        .await
        .create_incident(CreateIncidentRequest {
            incident: Some(new_incident("Big notes")),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .incident
        .unwrap();
    let mut timeline = srv.timeline().await;
    let before = srv.db_state().await;

    // 4 MiB + 1 byte: the transport refuses it before any handler runs;
    // tonic answers OUT_OF_RANGE.
    let err = timeline
        .add_note(note_of_size(&inc.id, MAX_REQUEST + 1))
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    // Exactly 4 MiB passes the transport and reaches validation (a note is
    // at most 16 KiB).
    let err = timeline
        .add_note(note_of_size(&inc.id, MAX_REQUEST))
        .await
        .expect_err("a 4 MiB note is too long");
    common::assert_error(&err, Code::InvalidArgument, "FIELD_INVALID", Some("text"));

    // The same goes for CreateIncident.
    let mut big = CreateIncidentRequest {
        incident: Some(Incident {
            summary: "s".repeat(MAX_REQUEST),
            ..new_incident("Too big")
        }),
        ..Default::default()
    };
    assert!(big.encoded_len() > MAX_REQUEST);
    let err = srv
        .incidents()
        .await
        .create_incident(big.clone())
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    assert_eq!(
        srv.db_state().await,
        before,
        "a refused request wrote something"
    );

    // The next request, on the same connection, is served.
    let ev = timeline
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "small".into(),
            ..Default::default()
        })
        .await
        .expect("served after the big one")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(ev.incident_id, inc.id);
    big.incident.as_mut().unwrap().summary = "fits".into();
    srv.incidents()
        .await
        .create_incident(big)
        .await
        .expect("served after the big one");
}

// ---------------------------------------------------------------------------
// 8. request_id reuse
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_id_reuse_is_refused_per_caller() {
    let srv = Srv::start(|c, dir| c.tokens = Some(tokens(dir))).await;
    let ch = srv.channel().await;
    let mut incidents = IncidentServiceClient::new(ch.clone());
    let (rita, ron) = (bearer(RESPONDER), bearer(RESPONDER2));
    let id = rid();
    let create_as = |who: &str, title: &str| {
        req(
            CreateIncidentRequest {
                incident: Some(new_incident(title)),
                request_id: id.clone(),
                ..Default::default()
            },
            Some(who),
        )
    };

    let first = incidents
        .create_incident(create_as(&rita, "First"))
        .await
        .expect("first")
        .into_inner()
        .incident
        .unwrap();
    // A retry returns the stored response and writes nothing.
    let retry = incidents
        .create_incident(create_as(&rita, "First"))
        .await
        .expect("retry")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(retry.id, first.id);
    assert_eq!(count(&srv.db(), "incidents").await, 1);

    // The same id with another payload is refused and changes nothing.
    let err = incidents
        .create_incident(create_as(&rita, "Second"))
        .await
        .expect_err("reuse with another payload");
    let d = details(&err);
    assert_eq!(
        (d.code, d.reason.as_str()),
        (Code::FailedPrecondition, "REQUEST_ID_REUSED"),
        "{err:?}"
    );
    assert_eq!(d.metadata.get("request_id"), Some(&id), "{err:?}");
    assert_eq!(count(&srv.db(), "incidents").await, 1);

    // Another caller's ids are its own: ron may use the same one.
    let rons = incidents
        .create_incident(create_as(&ron, "Second"))
        .await
        .expect("another caller, same request_id")
        .into_inner()
        .incident
        .unwrap();
    assert_ne!(rons.id, first.id);
    assert_eq!(rons.title, "Second");
    assert_eq!(count(&srv.db(), "incidents").await, 2);

    // The key includes the method: the same id on AddNote is a new request…
    let mut timeline = TimelineServiceClient::new(ch.clone());
    let note_as = |who: &str, text: &str| {
        req(
            AddNoteRequest {
                incident_id: first.id.clone(),
                text: text.into(),
                request_id: id.clone(),
                ..Default::default()
            },
            Some(who),
        )
    };
    let note = timeline
        .add_note(note_as(&rita, "note one"))
        .await
        .expect("same request_id, another method")
        .into_inner()
        .event
        .unwrap();
    // …whose retry is answered from the record, and whose reuse is refused.
    let again = timeline
        .add_note(note_as(&rita, "note one"))
        .await
        .expect("retry note")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(again.sequence, note.sequence);
    let err = timeline
        .add_note(note_as(&rita, "note two"))
        .await
        .expect_err("note reuse");
    let d = details(&err);
    assert_eq!(
        (d.code, d.reason.as_str()),
        (Code::FailedPrecondition, "REQUEST_ID_REUSED"),
        "{err:?}"
    );
    ron_note_independent(&mut timeline, &ron, &first.id, &id).await;
}

async fn ron_note_independent(
    timeline: &mut TimelineServiceClient<Channel>,
    ron: &str,
    incident_id: &str,
    id: &str,
) {
    let ev = timeline
        .add_note(req(
            AddNoteRequest {
                incident_id: incident_id.into(),
                text: "note two".into(),
                request_id: id.into(),
                ..Default::default()
            },
            Some(ron),
        ))
        .await
        .expect("another caller's note with the same request_id")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(ev.actor, "ron");
}
