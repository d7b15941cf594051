//! Connections that never speak, or stop: capped, closed, and logged (before
//! the fix, 600 silent connections under a 512 descriptor limit made every
//! new call and health check hang, with nothing in the log).

use incident_client::{
    SubscribeTimelineRequest, TimelineServiceClient, pb::subscribe_timeline_request::Start,
    tonic::Code,
};
use prost_types::Duration as PbDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the server closes the connection.
async fn closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_capped_closed_and_logged() {
    // 200 descriptors: the cap (4,096 by default) is lowered to fit.
    let t = Target::start_limited(&["--handshake-timeout", "1s"], Some(200)).await;
    let probe = t.probe().await;
    let rss_before = t.rss_mib();
    let mut silent = Vec::new();
    for i in 0..350 {
        let mut s = TcpStream::connect(("127.0.0.1", t.daemon.port))
            .await
            .expect("the kernel accepts");
        if i % 7 == 0 {
            // The preface and then nothing.
            let _ = s.write_all(PREFACE).await;
        }
        silent.push(tokio::spawn(closed_by_server(s)));
    }
    for s in silent {
        within("every silent connection closed", s)
            .await
            .expect("reader");
    }
    probe.finish("350 silent connections").await;
    let log = t.daemon.log();
    assert!(
        log.contains("connection cap reached"),
        "no log line at the cap:\n{log}"
    );
    assert!(
        log.contains("lowered to fit the open-file limit"),
        "no log line about the descriptor limit:\n{log}"
    );
    // New clients are served again.
    let fresh = t.probe().await;
    fresh.finish("after the silent connections").await;
    let grown = t.rss_mib() - rss_before;
    assert!(grown < 50.0, "RSS grew {grown:.0} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_but_not_while_a_call_is_in_progress() {
    let t = Target::start(&["--idle-timeout", "1s"]).await;
    // A call, then nothing: the server closes the connection.
    let mut conn = RawConn::open(t.daemon.port, 65_535).await;
    let (mut body, response) = conn.start_call("/grpc.health.v1.Health/Check", None).await;
    body.send_data(frame(b""), true).expect("message");
    assert_eq!(grpc_status(response).await, Code::Ok);
    within("the idle connection closed", &mut conn.closed)
        .await
        .expect("closed by the server");

    // A subscription is a call in progress however quiet: heartbeats keep
    // arriving well past the idle timeout.
    let mut timeline = TimelineServiceClient::new(t.daemon.channel().await);
    let mut stream = timeline
        .subscribe_timeline(authed(
            VIC,
            SubscribeTimelineRequest {
                start: Some(Start::FromNow(())),
                heartbeat_interval: Some(PbDuration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("subscribe")
        .into_inner();
    for _ in 0..4 {
        within("a heartbeat", stream.message())
            .await
            .expect("the connection is still open")
            .expect("a message");
    }
}
