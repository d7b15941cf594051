//! A timeline subscription that survives server restarts and the loss of a
//! replica: it reconnects with backoff, to the next of its endpoints when it
//! has several, and resumes after the last sequence it handed out, so its
//! user sees every matching event exactly once, in order.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::TimelineServiceClient;
use crate::pb::subscribe_timeline_request::Start;
use crate::pb::subscribe_timeline_response::Kind;
use crate::pb::{SubscribeTimelineRequest, SubscribeTimelineResponse, TimelineEvent};

/// Follows the timeline across disconnects, restarts and failovers.
pub struct Subscription {
    /// One client per endpoint; `current` is the one in use.
    clients: Vec<TimelineServiceClient<Channel>>,
    current: usize,
    request: SubscribeTimelineRequest,
    stream: Option<Streaming<SubscribeTimelineResponse>>,
    /// Every matching event up to here has been handed out (or the server said
    /// there was none): resuming after it loses and repeats nothing.
    checkpoint: Option<u64>,
    backoff: ExponentialBuilder,
}

impl Subscription {
    /// A subscription with `request`'s filters and start. A `from_now` start
    /// becomes a position as soon as the server reports one, so a reconnect
    /// never skips what was committed while the connection was down.
    pub fn new(channel: Channel, request: SubscribeTimelineRequest) -> Self {
        Self::over(vec![channel], request)
    }

    /// A subscription that may use any of `channels`, one per replica (see
    /// [`crate::lazy_channels`]). It starts on the first; whenever the one in
    /// use fails (it is down, draining, or unreachable) it moves on to the
    /// next, round the list, and resumes there.
    ///
    /// # Panics
    /// If `channels` is empty.
    pub fn over(channels: Vec<Channel>, request: SubscribeTimelineRequest) -> Self {
        assert!(!channels.is_empty(), "a subscription needs an endpoint");
        let checkpoint = match request.start {
            Some(Start::AfterSequence(n)) => Some(n),
            _ => None,
        };
        Subscription {
            clients: channels
                .into_iter()
                .map(TimelineServiceClient::new)
                .collect(),
            current: 0,
            request,
            stream: None,
            checkpoint,
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_jitter()
                .without_max_times(),
        }
    }

    /// Resumes after `sequence` (a checkpoint saved by an earlier run).
    pub fn resume_after(
        channel: Channel,
        mut request: SubscribeTimelineRequest,
        sequence: u64,
    ) -> Self {
        request.start = Some(Start::AfterSequence(sequence));
        Self::new(channel, request)
    }

    /// The position to save: every matching event up to it has been returned
    /// by `next`.
    pub fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    /// The next matching event. Reconnects on its own when the server goes
    /// away or restarts; returns an error only for one retrying cannot fix
    /// (a bad request, a cursor from another database, a denied token).
    pub async fn next(&mut self) -> Result<TimelineEvent, Status> {
        let mut delays = self.backoff.build();
        loop {
            if self.stream.is_none() {
                match self.connect().await {
                    Ok(s) => self.stream = Some(s),
                    Err(status) if retryable(&status) => {
                        self.move_on();
                        let delay = delays.next().unwrap_or(Duration::from_secs(5));
                        tracing::debug!(code = ?status.code(), ?delay, endpoint = self.current, "subscription: reconnecting");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Err(status) => return Err(status),
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.message().await {
                Ok(Some(msg)) => {
                    delays = self.backoff.build();
                    match msg.kind {
                        Some(Kind::Event(e)) => {
                            // Guard against a server that would repeat itself.
                            if self.checkpoint.is_some_and(|c| e.sequence <= c) {
                                continue;
                            }
                            self.checkpoint = Some(e.sequence);
                            return Ok(e);
                        }
                        Some(Kind::Heartbeat(h)) => {
                            self.checkpoint =
                                Some(self.checkpoint.map_or(h.sequence, |c| c.max(h.sequence)));
                        }
                        None => {}
                    }
                }
                Ok(None) => self.stream = None,
                Err(status) if retryable(&status) => {
                    self.stream = None;
                    self.move_on();
                    let delay = delays.next().unwrap_or(Duration::from_secs(5));
                    tracing::debug!(code = ?status.code(), ?delay, "subscription: stream ended, resuming");
                    tokio::time::sleep(delay).await;
                }
                Err(status) => return Err(status),
            }
        }
    }

    async fn connect(&mut self) -> Result<Streaming<SubscribeTimelineResponse>, Status> {
        let mut request = self.request.clone();
        if let Some(c) = self.checkpoint {
            request.start = Some(Start::AfterSequence(c));
        }
        let client = &mut self.clients[self.current];
        Ok(client.subscribe_timeline(request).await?.into_inner())
    }

    /// Goes on with the next endpoint (the same one if there is only one).
    fn move_on(&mut self) {
        self.current = (self.current + 1) % self.clients.len();
    }

    /// Which of its endpoints (an index into the channels it was given) the
    /// subscription uses now.
    pub fn endpoint(&self) -> usize {
        self.current
    }
}

/// Codes a reconnect can cure: the server is away, draining, or busy.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unknown
            | Code::Cancelled
    ) || (status.code() == Code::Internal && status.message().contains("h2"))
}
