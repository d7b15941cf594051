//! Calls that hold the server without working: bodies that never arrive,
//! streams by the thousand on one connection, one token taking every slot.

use incident_client::{
    GetIncidentRequest, IncidentServiceClient, SubscribeTimelineRequest, TimelineServiceClient,
    pb::subscribe_timeline_request::Start, tonic::Code,
};
use prost::Message;

use super::*;

const GET_INCIDENT: &str = "/incident.v1.IncidentService/GetIncident";
const SUBSCRIBE: &str = "/incident.v1.TimelineService/SubscribeTimeline";

/// About 1,000 GetIncident calls over 11 connections, each sending its headers
/// and 3 bytes of its message, then nothing. Before the fix every other caller
/// got RESOURCE_EXHAUSTED for as long as they were held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_whose_message_never_arrives_hold_nothing_and_end() {
    let t = Target::start(&[
        "--max-concurrent-requests",
        "64",
        "--request-read-timeout",
        "2s",
        "--max-streams-per-connection",
        "100",
    ])
    .await;
    let probe = t.probe().await;
    let message = GetIncidentRequest {
        id: t.incident_id.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut held = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..11 {
        let mut conn = RawConn::open(t.daemon.port, 65_535).await;
        for _ in 0..90 {
            let (mut body, response) = conn.start_call(GET_INCIDENT, Some(MALLORY)).await;
            body.send_data(frame(&message).slice(..3), false)
                .expect("partial message");
            held.push((body, response));
        }
        // The cap each connection was given, which the client obeys.
        assert_eq!(
            conn.max_streams().await,
            100,
            "SETTINGS_MAX_CONCURRENT_STREAMS"
        );
        conns.push(conn);
    }
    // While they are held, everyone else is served; then each stalled call
    // ends on its own with DEADLINE_EXCEEDED and frees its stream.
    let mut codes = Vec::new();
    for (body, response) in held {
        codes.push(within("a stalled call ending", grpc_status(response)).await);
        drop(body);
    }
    assert!(
        codes.iter().all(|c| *c == Code::DeadlineExceeded),
        "stalled calls end with DEADLINE_EXCEEDED: {:?}",
        codes
            .iter()
            .filter(|c| **c != Code::DeadlineExceeded)
            .collect::<Vec<_>>()
    );
    probe.finish("1,000 stalled calls").await;
    // The same connections can call again.
    let (mut body, response) = conns[0].start_call(GET_INCIDENT, Some(MALLORY)).await;
    body.send_data(frame(&message), true).expect("message");
    assert_eq!(grpc_status(response).await, Code::Ok);
}

/// A connection may not open more streams than announced (before the fix
/// there was no limit: 3,000 subscriptions on one connection were accepted).
/// A client library obeys the setting and queues the rest; the server's
/// HTTP/2 layer refuses streams past it from one that does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_cannot_hold_thousands_of_subscriptions() {
    let t = Target::start(&["--max-streams-per-connection", "50"]).await;
    let probe = t.probe().await;
    let mut conn = RawConn::open(t.daemon.port, 65_535).await;
    assert_eq!(
        conn.max_streams().await,
        50,
        "SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    let request = SubscribeTimelineRequest {
        start: Some(Start::FromNow(())),
        ..Default::default()
    }
    .encode_to_vec();
    let mut open = Vec::new();
    for _ in 0..50 {
        let (mut body, response) = conn.start_call(SUBSCRIBE, Some(MALLORY)).await;
        body.send_data(frame(&request), true).expect("request");
        open.push(
            within("subscription headers", response)
                .await
                .expect("accepted"),
        );
    }
    probe.finish("50 subscriptions on one connection").await;
    drop(open);
}

/// One token's calls cannot take the whole server: past its share (here 2
/// calls in progress) it is refused while other tokens are served, and past
/// its subscriber cap its subscriptions are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_cannot_take_the_whole_server() {
    let t = Target::start(&[
        "--max-requests-per-caller",
        "2",
        "--max-subscribers-per-caller",
        "3",
    ])
    .await;
    // Subscriptions: at most 3 open for her; vic can still subscribe.
    let mut timeline = TimelineServiceClient::new(t.daemon.channel().await);
    let live = |token: &str| {
        authed(
            token,
            SubscribeTimelineRequest {
                start: Some(Start::FromNow(())),
                ..Default::default()
            },
        )
    };
    let mut hers = Vec::new();
    for _ in 0..3 {
        hers.push(
            timeline
                .subscribe_timeline(live(MALLORY))
                .await
                .expect("within her cap"),
        );
    }
    // While her three still read their (short) catch-up they also hold her
    // call share, so a fourth may first be refused as OVERLOADED: wait for the
    // refusal that is about the subscriber cap.
    let fourth = eventually("the per-caller subscriber cap", || {
        let mut timeline = timeline.clone();
        let req = live(MALLORY);
        async move {
            match timeline.subscribe_timeline(req).await {
                Ok(_) => panic!("a fourth subscription past the per-caller cap"),
                Err(s) if s.message().contains("its share") => None,
                Err(s) => Some(s),
            }
        }
    })
    .await;
    Rejection::new(Code::ResourceExhausted, "SUBSCRIBER_LIMIT")
        .check(&fourth)
        .expect("subscriber cap");
    let vics = timeline
        .subscribe_timeline(live(VIC))
        .await
        .expect("vic subscribes");
    drop((hers, vics));

    // Responses she does not read are work in progress: two GetIncident
    // calls on a connection that grants no flow-control window at all hold
    // her share for as long as she keeps them.
    let message = GetIncidentRequest {
        id: t.incident_id.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut conn = RawConn::open(t.daemon.port, 0).await;
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let (mut body, response) = conn.start_call(GET_INCIDENT, Some(MALLORY)).await;
        body.send_data(frame(&message), true).expect("request");
        let response = within("response headers", response)
            .await
            .expect("answered");
        stuck.push(response);
    }
    let mut incidents = IncidentServiceClient::new(t.daemon.channel().await);
    let get = |token: &'static str| {
        authed(
            token,
            GetIncidentRequest {
                id: t.incident_id.clone(),
                ..Default::default()
            },
        )
    };
    let refused = eventually("mallory's share taken by her unread responses", || {
        let mut c = incidents.clone();
        let req = get(MALLORY);
        async move { c.get_incident(req).await.err() }
    })
    .await;
    Rejection::new(Code::ResourceExhausted, "OVERLOADED")
        .check(&refused)
        .expect("fair-share refusal");
    assert!(
        refused.message().contains("mallory"),
        "{}",
        refused.message()
    );
    // Everyone else is served.
    incidents
        .get_incident(get(VIC))
        .await
        .expect("vic is served");
    // When those calls go, her share comes back.
    drop(stuck);
    drop(conn);
    eventually("mallory served again", || {
        let mut c = incidents.clone();
        let req = get(MALLORY);
        async move { c.get_incident(req).await.ok() }
    })
    .await;
}

/// While the server-wide limit is held (here by two responses a client does
/// not read), every other call is refused at once with OVERLOADED and writes
/// nothing; health still answers; once the limit is free, calls are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_server_refuses_at_once_and_writes_nothing() {
    let t = Target::start(&["--max-concurrent-requests", "2"]).await;
    let message = GetIncidentRequest {
        id: t.incident_id.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut conn = RawConn::open(t.daemon.port, 0).await;
    let mut unread = Vec::new();
    for _ in 0..2 {
        let (mut body, response) = conn.start_call(GET_INCIDENT, Some(MALLORY)).await;
        body.send_data(frame(&message), true).expect("request");
        unread.push(
            within("response headers", response)
                .await
                .expect("answered"),
        );
    }
    let mut incidents = IncidentServiceClient::new(t.daemon.channel().await);
    for i in 0..50 {
        assert_rejected(
            &t.daemon,
            Rejection::new(Code::ResourceExhausted, "OVERLOADED"),
            incidents.create_incident(authed(
                RITA,
                incident_client::CreateIncidentRequest {
                    incident: Some(plain_incident(&format!("refused {i}"))),
                    ..Default::default()
                },
            )),
        )
        .await;
    }
    let mut conn2 = RawConn::open(t.daemon.port, 65_535).await;
    let (mut body, response) = conn2.start_call("/grpc.health.v1.Health/Check", None).await;
    body.send_data(frame(b""), true).expect("request");
    assert_eq!(
        grpc_status(response).await,
        Code::Ok,
        "health answers at the limit"
    );
    drop((unread, conn));
    eventually("served once the limit is free", || {
        let mut c = incidents.clone();
        let req = authed(
            RITA,
            incident_client::CreateIncidentRequest {
                incident: Some(plain_incident("after")),
                ..Default::default()
            },
        );
        async move { c.create_incident(req).await.ok() }
    })
    .await;
}
