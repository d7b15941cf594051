//! Accepted connections, bounded: at most `max_connections` open (a new one
//! past the cap is closed at once, with a log line), and each closed when it
//! does nothing useful: nothing received within the handshake timeout of being
//! accepted, no call in progress for the idle timeout, or writes blocked for
//! the send timeout (a peer that stopped reading its socket). tonic has none of
//! these, and a connection that never speaks would otherwise hold a file
//! descriptor forever.
//!
//! The timers live in the socket wrapper ([`Conn`]), where the connection's
//! task already polls for reads; the calls in progress are counted by
//! [`TrackLayer`], which finds the connection's [`ConnState`] in the request
//! extensions (tonic puts each connection's `connect_info` there).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::future::Future;

use futures::Stream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::body::Holding;
use crate::config::LimitArgs;

/// Connections currently open (a gauge).
pub const CONNECTIONS_OPEN: &str = "incidentd_connections_open";
/// Connections closed by the server, by reason (cap, handshake, idle).
pub const CONNECTIONS_CLOSED: &str = "incidentd_connections_closed_total";

/// File descriptors kept free for the listener, logs and the metrics endpoint
/// when the connection cap is held below the open-file limit ...
const RESERVED_FDS: u64 = 64;
/// ... and per database connection (database file, WAL, a temporary file).
const FDS_PER_DATABASE_CONNECTION: u64 = 4;

/// The connection limits in force.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
}

impl ConnLimits {
    /// The limits of `args`, with the connection cap held below what the
    /// open-file limit `nofile` allows next to `database_connections`.
    pub fn new(args: &LimitArgs, nofile: Option<u64>, database_connections: u32) -> ConnLimits {
        let reserved = RESERVED_FDS + FDS_PER_DATABASE_CONNECTION * u64::from(database_connections);
        let by_fds = nofile
            .map(|n| n.saturating_sub(reserved).max(1) as usize)
            .unwrap_or(usize::MAX);
        ConnLimits {
            max_connections: args.max_connections.min(by_fds),
            handshake_timeout: args.handshake_timeout,
            idle_timeout: args.idle_timeout,
            send_timeout: args.send_timeout,
        }
    }
}

/// Raises the soft open-file limit to the hard limit where it is lower, and
/// returns the soft limit now in force (`None` where it cannot be read).
pub fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// What the calls of one connection and its socket share.
#[derive(Debug)]
pub struct ConnState {
    accepted: Instant,
    /// Calls in progress (request received, response not finished).
    active: AtomicUsize,
    /// Whether the client has sent anything yet.
    heard: AtomicBool,
    /// When the last call ended, in ms since `accepted`.
    idle_since_ms: AtomicU64,
    /// The socket's reader, woken when the last call ends so it arms the idle timer.
    reader: AtomicWaker,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            accepted: Instant::now(),
            active: AtomicUsize::new(0),
            heard: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            reader: AtomicWaker::new(),
        }
    }

    /// Marks a call started; the guard marks it ended when dropped.
    pub fn call_started(self: &Arc<Self>) -> CallGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        CallGuard(self.clone())
    }

    /// When the connection becomes closable if nothing starts before then;
    /// `None` while a call is in progress.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, &'static str)> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.heard.load(Ordering::Relaxed) {
            return Some((self.accepted + limits.handshake_timeout, "handshake"));
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some((self.accepted + since + limits.idle_timeout, "idle"))
    }
}

/// A call in progress on a connection.
pub struct CallGuard(Arc<ConnState>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let s = &self.0;
        // Calls ending together may store out of order: keep the latest.
        s.idle_since_ms
            .fetch_max(s.accepted.elapsed().as_millis() as u64, Ordering::Relaxed);
        if s.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.reader.wake();
        }
    }
}

/// The connection info tonic puts in every request's extensions.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub tcp: TcpConnectInfo,
    pub state: Arc<ConnState>,
}

/// An accepted socket that closes itself when the connection has nothing in
/// progress past its deadline, and frees its slot under the cap when dropped.
pub struct Conn {
    stream: TcpStream,
    info: ConnInfo,
    limits: ConnLimits,
    timer: Pin<Box<Sleep>>,
    /// Bytes arrived since the socket last had nothing to read: they may hold
    /// a call hyper has not started yet, so the connection is not closed now.
    fresh_bytes: bool,
    /// Armed while a write is blocked (the peer reads nothing).
    send_stall: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Conn {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.fresh_bytes = true;
                    this.info.state.heard.store(true, Ordering::Relaxed);
                }
                return Poll::Ready(Ok(()));
            }
            ready => return ready,
        }
        this.info.state.reader.register(cx.waker());
        let Some((deadline, why)) = this.info.state.deadline(&this.limits) else {
            return Poll::Pending;
        };
        if std::mem::take(&mut this.fresh_bytes) && Instant::now() >= deadline {
            // What just arrived may be a call hyper starts once this read
            // returns: look again at the next wake-up, when it counts.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.timer.deadline() != deadline.into() {
            this.timer.as_mut().reset(deadline.into());
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                tracing::debug!(peer = ?this.info.tcp.remote_addr, reason = why, "closing connection");
                metrics::counter!(CONNECTIONS_CLOSED, "reason" => why).increment(1);
                // End of stream: the HTTP/2 (or TLS) layer above closes the connection.
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl Conn {
    /// Passes a write's outcome through, failing it once the socket has
    /// refused writes for the send timeout: the peer stopped reading, and
    /// HTTP/2 would otherwise wait on it forever (even to say goodbye).
    fn watch_send<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.send_stall = None;
            return polled;
        }
        let limit = self.limits.send_timeout;
        let stall = self
            .send_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                tracing::debug!(peer = ?self.info.tcp.remote_addr, "closing connection: writes blocked");
                metrics::counter!(CONNECTIONS_CLOSED, "reason" => "send_stall").increment(1);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer read nothing for the send timeout",
                )))
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch_send(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch_send(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch_send(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The accepted connections of `listener`, under `limits`.
pub fn incoming(
    listener: TcpListener,
    limits: ConnLimits,
) -> impl Stream<Item = io::Result<Conn>> + Send + 'static {
    // Never yields an error (see the accept loop), so tonic never stops serving.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = RefusalLog::default();
    futures::stream::unfold(
        (listener, slots, refusals),
        move |(listener, slots, mut refusals)| async move {
            loop {
                let (stream, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // tonic would stop serving on an error like EMFILE;
                        // a server out of descriptors must instead go on
                        // serving the connections it has, and accept again
                        // once some close.
                        refusals.accept_failed(&e);
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refusals.refused(limits.max_connections);
                    drop(stream);
                    continue;
                };
                // Nagle plus delayed ACKs would hold small responses for ~40 ms.
                let _ = stream.set_nodelay(true);
                metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
                let conn = Conn {
                    info: ConnInfo {
                        tcp: TcpConnectInfo {
                            local_addr: stream.local_addr().ok(),
                            remote_addr: Some(remote),
                        },
                        state: Arc::new(ConnState::new()),
                    },
                    stream,
                    limits,
                    timer: Box::pin(tokio::time::sleep(limits.handshake_timeout)),
                    fresh_bytes: false,
                    send_stall: None,
                    _slot: slot,
                };
                return Some((Ok(conn), (listener, slots, refusals)));
            }
        },
    )
}

/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin while nothing can be accepted.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What happened since a kind of event was last logged: logs at most once
/// every few seconds, with the count since the last line.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttled {
    const EVERY: Duration = Duration::from_secs(5);

    /// Counts one event; the count to log, when a line is due.
    fn tick(&mut self) -> Option<u64> {
        self.since_last += 1;
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.since_last))
    }
}

/// The accept loop's log: refusals at the cap, and failed accepts.
#[derive(Default)]
struct RefusalLog {
    at_cap: Throttled,
    failed: Throttled,
}

impl RefusalLog {
    fn refused(&mut self, cap: usize) {
        metrics::counter!(CONNECTIONS_CLOSED, "reason" => "cap").increment(1);
        if let Some(refused) = self.at_cap.tick() {
            tracing::warn!(
                max_connections = cap,
                refused,
                "connection cap reached: closing new connections (see --max-connections)"
            );
        }
    }

    fn accept_failed(&mut self, e: &io::Error) {
        metrics::counter!(CONNECTIONS_CLOSED, "reason" => "accept_error").increment(1);
        if let Some(failed) = self.failed.tick() {
            tracing::error!(error = %e, failed, "cannot accept connections (open-file limit?)");
        }
    }
}

/// Counts each call as in progress on its connection until its response
/// (stream included) is finished or dropped.
#[derive(Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// See [`TrackLayer`].
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
}

/// The connection state of a request, over TLS or not.
fn conn_state<B>(req: &http::Request<B>) -> Option<Arc<ConnState>> {
    let ext = req.extensions();
    ext.get::<ConnInfo>()
        .or_else(|| {
            ext.get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>()
                .map(|t| t.get_ref())
        })
        .map(|i| i.state.clone())
}

impl<S, B, RB> tower::Service<http::Request<B>> for Track<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<Holding<RB, Option<CallGuard>>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let guard = conn_state(&req).map(|s| s.call_started());
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            // hyper drops the body once the stream is finished or reset.
            Ok(response.map(|body| Holding::new(body, guard)))
        })
    }
}
