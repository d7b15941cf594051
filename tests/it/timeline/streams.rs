//! Refused subscriptions and notes, the subscriber cap, shutdown and resuming
//! across a restart.

use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;
use incident_client::tonic::Code;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn bad_subscriptions_are_refused() {
    let srv = TestServer::start().await;
    let inc = incident(&srv, "x", Severity::P1, &[]).await;
    let mut c = srv.timeline().await;
    assert_rejected(
        &srv,
        Rejection::invalid(&["start"]),
        c.subscribe_timeline(SubscribeTimelineRequest::default()),
    )
    .await;

    assert_rejected(
        &srv,
        Rejection::new(Code::OutOfRange, "SEQUENCE_AHEAD_OF_LOG").meta("head_sequence", "1"),
        c.subscribe_timeline(subscribe_request(Start::AfterSequence(1000))),
    )
    .await;

    assert_rejected(
        &srv,
        Rejection::invalid(&["heartbeat_interval"]),
        c.subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            heartbeat_interval: Some(incident_client::prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
            ..Default::default()
        }),
    )
    .await;

    assert_rejected(
        &srv,
        Rejection::invalid(&["text"]),
        c.add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "x".repeat(16 * 1024 + 1),
            ..Default::default()
        }),
    )
    .await;
    assert_rejected(
        &srv,
        Rejection::invalid(&["text"]),
        c.add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "  ".into(),
            ..Default::default()
        }),
    )
    .await;
}

#[tokio::test]
async fn the_subscriber_cap_refuses_more_and_frees_a_slot_on_disconnect() {
    let srv = TestServer::start_with(Options {
        max_subscribers: 2,
        ..Options::default()
    })
    .await;
    let mut c = srv.timeline().await;
    let a = c
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    let _b = c
        .subscribe_timeline(subscribe_request(Start::FromNow(())))
        .await
        .unwrap()
        .into_inner();
    assert_rejected(
        &srv,
        Rejection::new(Code::ResourceExhausted, "SUBSCRIBER_LIMIT"),
        c.subscribe_timeline(subscribe_request(Start::FromNow(()))),
    )
    .await;
    drop(a);
    // The server notices the cancelled stream and frees its slot.
    eventually("a disconnected subscriber's slot released", || {
        let mut c = c.clone();
        async move {
            c.subscribe_timeline(subscribe_request(Start::FromNow(())))
                .await
                .ok()
                .map(drop)
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_delivers_everything_committed_then_ends_with_unavailable() {
    let mut srv = TestServer::start().await;
    let inc = incident(&srv, "Draining", Severity::P1, &[]).await;
    let mut stream = srv
        .timeline()
        .await
        .subscribe_timeline(subscribe_request(Start::AfterSequence(0)))
        .await
        .unwrap()
        .into_inner();
    let mut t = srv.timeline().await;
    let mut last = 0;
    for i in 0..50 {
        last = note(&mut t, &inc.id, &format!("n{i}")).await.sequence;
    }
    srv.stop().await;
    let mut got = Vec::new();
    let status = within("the end of the stream", async {
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    if let Some(Kind::Event(e)) = m.kind {
                        got.push(e.sequence);
                    }
                }
                Ok(None) => panic!("the stream must end with a status"),
                Err(s) => break s,
            }
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(got.last().copied(), Some(last));
    assert_eq!(got, (1..=last).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_client_subscription_resumes_across_a_restart_exactly_once() {
    let mut srv = TestServer::start().await;
    let inc = incident(&srv, "Restarting", Severity::P1, &[]).await;
    let mut sub = Subscription::new(
        srv.lazy_channel(),
        subscribe_request(Start::AfterSequence(0)),
    );
    let mut t = srv.timeline().await;
    for i in 0..5 {
        note(&mut t, &inc.id, &format!("before {i}")).await;
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(
            within("an event", sub.next())
                .await
                .expect("event")
                .sequence,
        );
    }
    srv.restart().await;
    let mut t = srv.timeline().await;
    for i in 0..5 {
        note(&mut t, &inc.id, &format!("after {i}")).await;
    }
    for _ in 0..5 {
        seen.push(
            within("an event after the restart", sub.next())
                .await
                .expect("event after restart")
                .sequence,
        );
    }
    assert_eq!(seen, (1..=11).collect::<Vec<_>>());
    assert_eq!(sub.checkpoint(), Some(11));
}

/// A subscription given two endpoints moves to the second when the first
/// goes away, and resumes there exactly once. (Two servers on one database
/// in turn stand in for two replicas of it.)
#[tokio::test]
async fn the_client_subscription_fails_over_to_the_next_endpoint_exactly_once() {
    let mut srv = TestServer::start().await;
    let inc = incident(&srv, "Failing over", Severity::P1, &[]).await;
    let other = format!("127.0.0.1:{}", free_port());
    let channels = lazy_channels([srv.url.clone(), format!("http://{other}")]).expect("endpoints");
    let mut sub = Subscription::over(channels, subscribe_request(Start::AfterSequence(0)));
    let mut t = srv.timeline().await;
    for i in 0..3 {
        note(&mut t, &inc.id, &format!("on the first {i}")).await;
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            within("an event", sub.next())
                .await
                .expect("event")
                .sequence,
        );
    }
    assert_eq!(sub.endpoint(), 0);
    // The first endpoint goes away for good; the database is served on the second.
    srv.stop().await;
    let second = start_server(&other, srv.db.as_str(), &srv.options)
        .await
        .expect("the second endpoint starts");
    let mut t = TimelineServiceClient::new(
        connect_any([format!("http://{}", srv.addr()), format!("http://{other}")])
            .await
            .expect("connect_any finds the endpoint that answers"),
    );
    for i in 0..3 {
        note(&mut t, &inc.id, &format!("on the second {i}")).await;
    }
    for _ in 0..3 {
        seen.push(
            within("an event after the failover", sub.next())
                .await
                .expect("event after the failover")
                .sequence,
        );
    }
    assert_eq!(
        seen,
        (1..=7).collect::<Vec<_>>(),
        "each event once, in order"
    );
    assert_eq!(sub.endpoint(), 1, "it moved to the second endpoint");
    second.stop().await.expect("stop");
}

#[tokio::test]
async fn connect_any_says_why_each_endpoint_failed() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let err = connect_any([dead.as_str(), "not a url"])
        .await
        .expect_err("nothing answers");
    assert_eq!(err.tried.len(), 2);
    assert_eq!(err.tried[0].0, dead);
    assert!(err.to_string().contains(&dead), "{err}");
    let none: [&str; 0] = [];
    assert!(lazy_channels(none).is_err(), "no endpoint is an error");
}

/// Unary calls over several endpoints: a read and a write without a
/// request_id both move on from an endpoint that is down, the write is
/// applied once, and later calls stay on the endpoint that answered. When
/// that one drains, they move back.
#[tokio::test]
async fn unary_calls_fail_over_to_the_next_endpoint() {
    let mut srv = TestServer::start().await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let failover =
        Failover::new(lazy_channels([dead.clone(), srv.url.clone()]).expect("endpoints"));
    let mut client = IncidentServiceClient::new(failover.clone());
    let created = client
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident("Through the second endpoint")),
            ..Default::default()
        })
        .await
        .expect("the write moves on to the endpoint that answers")
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(failover.endpoint(), 1);
    assert_eq!(srv.count("incidents").await, 1, "applied once");
    let read = client
        .get_incident(GetIncidentRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(read.id, created.id);
    assert_eq!(failover.endpoint(), 1, "it stays where calls succeed");
    // The second endpoint goes away; the first comes up on the same database.
    srv.stop().await;
    let first = start_server(
        dead.trim_start_matches("http://"),
        srv.db.as_str(),
        &srv.options,
    )
    .await
    .expect("the first endpoint starts");
    let listed = client
        .list_incidents(ListIncidentsRequest::default())
        .await
        .expect("the read moves back to the first endpoint")
        .into_inner()
        .incidents;
    assert_eq!(listed.len(), 1);
    assert_eq!(failover.endpoint(), 0);
    first.stop().await.expect("stop");
}
