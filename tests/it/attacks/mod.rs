//! The attacks of an outside probe, each run against the real binary, bounded
//! in count and time, on loopback: the attack is refused or contained, a
//! well-behaved client keeps being served meanwhile, and memory stays bounded.

mod connections;
mod filters;
mod metrics;
mod stalled;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use incident_client::tonic::transport::Channel;
use incident_client::{CreateIncidentRequest, GetIncidentRequest, IncidentServiceClient, tonic};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::support::*;

/// Tokens of the attack tests' servers: (name, role, secret).
const TOKENS: [(&str, &str, &str); 3] = [
    ("vic", "viewer", "vic-secret-0123456789"),
    ("mallory", "viewer", "mallory-secret-0123456789"),
    ("rita", "responder", "rita-secret-0123456789"),
];
const VIC: &str = TOKENS[0].2;
const MALLORY: &str = TOKENS[1].2;
const RITA: &str = TOKENS[2].2;

/// Writes the tokens file (digests only) into `dir` and returns its path.
fn tokens_file(dir: &Path) -> String {
    crate::support::write_tokens_file(dir, &TOKENS)
        .display()
        .to_string()
}

/// A request carrying `token` as its bearer credentials.
fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    crate::support::authorized(message, token)
}

/// The daemon of an attack test, with its tokens, and an incident to read.
struct Target {
    daemon: Daemon,
    _dir: tempfile::TempDir,
    incident_id: String,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// One attack at a time: each loads the machine on purpose, and the probe of
/// one must not measure the attack of another.
static ONE_AT_A_TIME: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

impl Target {
    /// `incidentd serve --tokens-file … <extra>`, with one incident created by rita.
    async fn start(extra: &[&str]) -> Target {
        Self::start_limited(extra, None).await
    }

    /// As [`Target::start`], under an open-file limit of `nofile`.
    async fn start_limited(extra: &[&str], nofile: Option<u64>) -> Target {
        let turn = ONE_AT_A_TIME.clone().lock_owned().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = tokens_file(dir.path());
        let mut args = vec!["--tokens-file", tokens.as_str()];
        args.extend_from_slice(extra);
        let daemon = Daemon::start_with(
            &TestDb::create().await,
            &dir.path().join("incidentd.log"),
            &args,
            nofile,
        )
        .await;
        let mut incidents = IncidentServiceClient::new(daemon.channel().await);
        let incident = incidents
            .create_incident(authed(
                RITA,
                CreateIncidentRequest {
                    incident: Some(plain_incident("Checkout latency")),
                    ..Default::default()
                },
            ))
            .await
            .expect("create")
            .into_inner()
            .incident
            .expect("incident");
        Target {
            daemon,
            _dir: dir,
            incident_id: incident.id,
            _turn: turn,
        }
    }

    /// The server's resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        let pid = self.daemon.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib / 1024.0
    }

    /// A well-behaved viewer reading the incident over its own connection,
    /// from now until [`Probe::finish`].
    async fn probe(&self) -> Probe {
        Probe::start(self.daemon.channel().await, self.incident_id.clone())
    }
}

/// A well-behaved client: GetIncident in a loop, every answer timed.
struct Probe {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    task: tokio::sync::oneshot::Receiver<Vec<Result<Duration, tonic::Status>>>,
}

/// Runs `f` on a thread of its own with a runtime of its own.
fn spawn_isolated<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime");
        let _ = tx.send(rt.block_on(f));
    });
    rx
}

/// Calls a probe makes at least, whatever else happens.
const PROBE_MIN_CALLS: usize = 5;

/// What every probe must see during an attack: answered, and fast enough to
/// be of use. A correctness bound, not a speed target: before the fixes the
/// probe's calls were refused or timed out after 30 s; the bound leaves room
/// for a 2-core machine running the rest of the suite beside the attack.
const PROBE_P99: Duration = Duration::from_secs(1);

impl Probe {
    fn start(channel: Channel, incident_id: String) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), calls.clone());
        // Its own thread and runtime: the attack's client side, in this
        // test's runtime, must not be what delays the probe.
        let task = spawn_isolated(async move {
            let mut client = IncidentServiceClient::new(channel);
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = client
                    .get_incident(authed(
                        VIC,
                        GetIncidentRequest {
                            id: incident_id.clone(),
                            ..Default::default()
                        },
                    ))
                    .await;
                seen.push(r.map(|_| started.elapsed()));
                count.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        });
        Probe { stop, calls, task }
    }

    /// Stops the probe and checks every call was answered, p99 within bound.
    async fn finish(self, during: &str) {
        let calls = self.calls.clone();
        eventually("the probe's first calls", || {
            let n = calls.load(Ordering::Relaxed);
            async move { (n >= PROBE_MIN_CALLS).then_some(()) }
        })
        .await;
        self.stop.store(true, Ordering::Relaxed);
        let seen = within("probe stopping", self.task)
            .await
            .expect("probe thread");
        let mut times = Vec::with_capacity(seen.len());
        for r in seen {
            match r {
                Ok(t) => times.push(t),
                Err(s) => panic!("during {during}, a well-behaved GetIncident failed: {s:?}"),
            }
        }
        times.sort();
        let p99 = times[(times.len() * 99).div_ceil(100) - 1];
        assert!(
            p99 <= PROBE_P99,
            "during {during}: GetIncident p99 {p99:?} over {} calls (bound {PROBE_P99:?})",
            times.len()
        );
    }
}

/// An HTTP/2 connection driven by hand, for what a well-behaved client
/// library will not do (stall a body, hold streams, never read).
struct RawConn {
    send: h2::client::SendRequest<Bytes>,
    _task: JoinHandle<()>,
    closed: tokio::sync::oneshot::Receiver<()>,
}

impl RawConn {
    /// Connects and completes the HTTP/2 handshake, announcing `window` bytes
    /// of flow-control window per stream.
    async fn open(port: u16, window: u32) -> RawConn {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(window)
            .handshake(tcp)
            .await
            .expect("h2 handshake");
        let (tx, closed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = conn.await;
            let _ = tx.send(());
        });
        RawConn {
            send,
            _task: task,
            closed,
        }
    }

    /// A connection whose handshake was made elsewhere (its driver spawned).
    fn from_parts(send: h2::client::SendRequest<Bytes>) -> RawConn {
        let (_tx, closed) = tokio::sync::oneshot::channel();
        RawConn {
            send,
            _task: tokio::spawn(async {}),
            closed,
        }
    }

    /// Starts a gRPC call to `path` and returns its request body stream and
    /// the future of its response, without sending any message.
    async fn start_call(
        &mut self,
        path: &str,
        token: Option<&str>,
    ) -> (h2::SendStream<Bytes>, h2::client::ResponseFuture) {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://127.0.0.1{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(()).expect("request");
        self.send = within("a stream slot", self.send.clone().ready())
            .await
            .expect("connection usable");
        let (response, body) = self.send.send_request(req, false).expect("send headers");
        (body, response)
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS
    /// frame has arrived (before, the client assumes no limit).
    async fn max_streams(&self) -> usize {
        eventually("the server's SETTINGS", || {
            let n = self.send.current_max_send_streams();
            async move { (n != usize::MAX).then_some(n) }
        })
        .await
    }
}

/// A gRPC message frame around `message`.
fn frame(message: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(message.len() + 5);
    b.push(0);
    b.extend_from_slice(&(message.len() as u32).to_be_bytes());
    b.extend_from_slice(message);
    Bytes::from(b)
}

/// The gRPC status of a response, details included: from its headers (a
/// trailers-only answer) or, after draining its body, from its trailers.
async fn status_of(response: h2::client::ResponseFuture) -> tonic::Status {
    let response = response.await.expect("response");
    let headers = response.headers().clone();
    if let Some(status) = tonic::Status::from_header_map(&headers) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.expect("trailers").unwrap_or_default();
    tonic::Status::from_header_map(&trailers).expect("grpc-status in trailers")
}

/// The gRPC code of a response.
async fn grpc_status(response: h2::client::ResponseFuture) -> tonic::Code {
    status_of(response).await.code()
}
