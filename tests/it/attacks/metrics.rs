//! Metrics an anonymous caller cannot grow: before the fix each made-up path
//! became its own series (5,000 calls: 80,000 series, a 647 MB scrape).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_paths_do_not_grow_the_metrics() {
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let t = Target::start(&["--metrics-listen", &listen]).await;
    let rss_before = t.rss_mib();
    let probe = t.probe().await;
    let mut lanes = Vec::new();
    for lane in 0..10 {
        let port = t.daemon.port;
        lanes.push(tokio::spawn(async move {
            let mut conn = RawConn::open(port, 65_535).await;
            for i in 0..500 {
                // No token: refused by auth, as an anonymous prober would be.
                let (mut body, response) = conn
                    .start_call(&format!("/made.up.Service{lane}/Method{i}"), None)
                    .await;
                body.send_data(frame(b""), true).expect("message");
                grpc_status(response).await;
            }
        }));
    }
    for lane in lanes {
        within("5,000 anonymous calls", lane).await.expect("lane");
    }
    probe.finish("5,000 calls to made-up paths").await;
    let scrape = scrape(metrics_port).await;
    assert!(!scrape.contains("made.up"), "a made-up path became a label");
    assert!(
        scrape.contains("method=\"unknown\""),
        "made-up paths are counted as unknown"
    );
    assert!(
        scrape.contains("/incident.v1.IncidentService/GetIncident"),
        "served methods keep their label"
    );
    assert!(
        scrape.len() < 256 * 1024,
        "scrape of {} bytes",
        scrape.len()
    );
    let grown = t.rss_mib() - rss_before;
    assert!(grown < 100.0, "RSS grew {grown:.0} MiB");
}

/// GET /metrics over plain HTTP/1.1.
pub(super) async fn scrape(port: u16) -> String {
    within("scraping /metrics", async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("response");
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
}
