//! Filters too large to be cheap: refused at the edge, before they cost the
//! read pool anything (before the fix, 12 clients with 100,000 incident ids
//! made every other read time out, and 60 held streams took 380 MiB).

use incident_client::{
    IncidentServiceClient, ListIncidentsRequest, SubscribeTimelineRequest, TimelineServiceClient,
    pb::subscribe_timeline_request::Start, tonic::Code,
};

use prost::Message;

use super::*;

const SUBSCRIBE: &str = "/incident.v1.TimelineService/SubscribeTimeline";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_subscription_filter_is_refused_and_starves_no_one() {
    let t = Target::start(&[]).await;
    let rss_before = t.rss_mib();
    let probe = t.probe().await;
    let ids: Vec<String> = (0..100_000).map(|_| rid()).collect();
    // Encoded once: the attackers' own work must not be what slows the probe.
    let huge = frame(
        &SubscribeTimelineRequest {
            start: Some(Start::AfterSequence(0)),
            incident_ids: ids.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert!(huge.len() > 3_500_000, "a 3.8 MB filter");
    let mut clients = Vec::new();
    for _ in 0..12 {
        let port = t.daemon.port;
        let huge = huge.clone();
        clients.push(tokio::spawn(async move {
            let mut conn = RawConn::open(port, 65_535).await;
            let mut refusals = Vec::new();
            for _ in 0..5 {
                let (mut body, response) = conn.start_call(SUBSCRIBE, Some(MALLORY)).await;
                body.send_data(huge.clone(), true).expect("request");
                refusals.push(status_of(response).await);
            }
            refusals
        }));
    }
    for client in clients {
        for status in within("huge filters answered", client)
            .await
            .expect("client")
        {
            Rejection::invalid(&["incident_ids"])
                .check(&status)
                .expect("named refusal");
            assert!(status.message().len() < 1024, "short message");
        }
    }
    probe
        .finish("60 subscriptions with 100,000-id filters")
        .await;
    let grown = t.rss_mib() - rss_before;
    assert!(grown < 150.0, "RSS grew {grown:.0} MiB");

    // At the cap a filter is served.
    let mut timeline = TimelineServiceClient::new(t.daemon.channel().await);
    let mut ok = ids[..100].to_vec();
    ok[0] = t.incident_id.clone();
    let mut stream = timeline
        .subscribe_timeline(authed(
            VIC,
            SubscribeTimelineRequest {
                start: Some(Start::AfterSequence(0)),
                incident_ids: ok,
                ..Default::default()
            },
        ))
        .await
        .expect("100 ids are fine")
        .into_inner();
    within("the first message", stream.message())
        .await
        .expect("stream")
        .expect("a heartbeat first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_list_filters_are_refused_by_name() {
    let t = Target::start(&[]).await;
    let mut incidents = IncidentServiceClient::new(t.daemon.channel().await);
    let status = incidents
        .list_incidents(authed(
            VIC,
            ListIncidentsRequest {
                statuses: vec![1; 100_000],
                severities: vec![1; 101],
                ..Default::default()
            },
        ))
        .await
        .expect_err("refused");
    Rejection::invalid(&["statuses", "severities"])
        .check(&status)
        .expect("both lists named");
    let mut timeline = TimelineServiceClient::new(t.daemon.channel().await);
    let status = timeline
        .subscribe_timeline(authed(
            VIC,
            SubscribeTimelineRequest {
                start: Some(Start::FromNow(())),
                kinds: vec![3; 101],
                ..Default::default()
            },
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    Rejection::invalid(&["kinds"])
        .check(&status)
        .expect("kinds named");
}
