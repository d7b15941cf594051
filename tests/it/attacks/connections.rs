//! Connections that never speak, or stop: capped, closed, and logged (before
//! the fix, 600 silent connections under a 512 descriptor limit made every
//! new call and health check hang, with nothing in the log).

use incident_client::{
    SubscribeTimelineRequest, TimelineServiceClient, pb::subscribe_timeline_request::Start,
    tonic::Code,
};
use prost_types::Duration as PbDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::sync::atomic::{AtomicBool, Ordering};

use prost::Message;

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
    let t = Target::start_limited(
        &["--handshake-timeout", "1s", "--idle-timeout", "2s"],
        Some(200),
    )
    .await;
    let probe = t.probe().await;
    let rss_before = t.rss_mib();
    let mut silent = Vec::new();
    for i in 0..350 {
        let mut s = TcpStream::connect(("127.0.0.1", t.daemon.port))
            .await
            .expect("the kernel accepts");
        if i % 7 == 0 {
            // The preface and then nothing: closed as idle.
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

/// Health Watch and reflection need no token: their streams have a cap of
/// their own, so anonymous clients cannot hold connections open through them
/// without bound, and health checks still answer at the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_need_no_token_are_capped() {
    let t = Target::start(&["--max-anonymous-streams", "3"]).await;
    let mut conn = RawConn::open(t.daemon.port, 65_535).await;
    let mut watches = Vec::new();
    for _ in 0..3 {
        let (mut body, response) = conn.start_call("/grpc.health.v1.Health/Watch", None).await;
        body.send_data(frame(b""), true).expect("request");
        let response = within("watch", response).await.expect("answered");
        assert!(
            response.headers().get("grpc-status").is_none(),
            "a watch is open"
        );
        watches.push(response);
    }
    let (mut body, response) = conn.start_call("/grpc.health.v1.Health/Watch", None).await;
    body.send_data(frame(b""), true).expect("request");
    Rejection::new(Code::ResourceExhausted, "SUBSCRIBER_LIMIT")
        .check(&status_of(response).await)
        .expect("a fourth watch is refused");
    let (mut body, response) = conn.start_call("/grpc.health.v1.Health/Check", None).await;
    body.send_data(frame(b""), true).expect("request");
    assert_eq!(grpc_status(response).await, Code::Ok, "checks still answer");
    drop(watches);
}

/// A socket that stops reading once told to: a client that keeps its
/// connection but reads nothing more, not even the server's pings.
struct Deaf {
    tcp: TcpStream,
    deaf: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Deaf {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.deaf.load(Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Deaf {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A client that grants a huge window, asks for a long replay and then stops
/// reading its socket fills the server's socket buffers; after the send
/// timeout the server closes the connection instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected() {
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let t = Target::start(&["--send-timeout", "1s", "--metrics-listen", &metrics_listen]).await;
    // About 16 MB of log, more than loopback socket buffers hold.
    let mut writers = Vec::new();
    for lane in 0..4 {
        let channel = t.daemon.channel().await;
        let id = t.incident_id.clone();
        writers.push(tokio::spawn(async move {
            let mut timeline = TimelineServiceClient::new(channel);
            for i in 0..250 {
                timeline
                    .add_note(authed(
                        RITA,
                        incident_client::AddNoteRequest {
                            incident_id: id.clone(),
                            text: format!("lane {lane} note {i} {}", "x".repeat(16_000)),
                            ..Default::default()
                        },
                    ))
                    .await
                    .expect("note");
            }
        }));
    }
    for w in writers {
        within("writing the log", w).await.expect("writer");
    }
    let deaf = Arc::new(AtomicBool::new(false));
    let tcp = TcpStream::connect(("127.0.0.1", t.daemon.port))
        .await
        .expect("connect");
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(i32::MAX as u32)
        .initial_connection_window_size(i32::MAX as u32)
        .handshake::<_, Bytes>(Deaf {
            tcp,
            deaf: deaf.clone(),
        })
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut raw = RawConn::from_parts(send);
    let replay = SubscribeTimelineRequest {
        start: Some(Start::AfterSequence(0)),
        ..Default::default()
    }
    .encode_to_vec();
    let (mut body, response) = raw
        .start_call("/incident.v1.TimelineService/SubscribeTimeline", Some(VIC))
        .await;
    body.send_data(frame(&replay), true).expect("request");
    let _response = within("subscription", response).await.expect("accepted");
    deaf.store(true, Ordering::Relaxed);
    eventually("the server closing the deaf connection", || async move {
        let scrape = super::metrics::scrape(metrics_port).await;
        scrape
            .lines()
            .any(|l| l.contains("reason=\"send_stall\"") && !l.ends_with(" 0"))
            .then_some(())
    })
    .await;
    // Everyone else is still served.
    t.probe().await.finish("after a deaf client").await;
}
