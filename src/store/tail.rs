//! On PostgreSQL, several replicas append to one log: each replica's hub is
//! fed in sequence order by its tail, with this replica's own groups as its
//! writer commits them and the others' read from the log.
//!
//! LISTEN/NOTIFY on [`CHANNEL`] is only a wake-up (each committed group sends
//! one notification, naming the replica it came from); the log itself is the
//! truth. After any listener
//! reconnect the tail reads on from its cursor, and it reads at least every
//! [`POLL`] whatever it hears, so a lost notification delays an event by at
//! most that. The listener connection never opens a transaction: an idle one
//! in a transaction would stop the server's notification queue from draining.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::{Mutex, Notify, watch};

use super::db::Conn;
use super::events;
use crate::domain::ComponentId;
use crate::error::Result;
use crate::hub::{Hub, LiveEvent};
use crate::proto as pb;
use crate::proto::timeline_event::Payload;

/// The notification channel of committed groups.
pub const CHANNEL: &str = "incidentd_log";

/// Longest a committed event waits for this replica to read it when no
/// notification comes.
pub const POLL: Duration = Duration::from_secs(1);

/// Shortest time between two reads of the tail. Under load every replica
/// commits hundreds of groups a second, and a read (a statement, the events
/// decoded, their public forms) per group elsewhere costs each replica as
/// much as its own writes: the events committed meanwhile are read together.
/// A subscriber's latency across replicas grows by at most this.
pub const READ_EVERY: Duration = Duration::from_millis(5);

/// Events read from the log per statement.
const BATCH: usize = 1000;

/// Feeds this replica's hub in sequence order.
#[derive(Clone)]
pub(super) struct Tail {
    inner: Arc<Inner>,
}

struct Inner {
    /// What this replica's notifications carry, so that its tail, which
    /// publishes this replica's groups as they commit, is not woken by them.
    origin: String,
    /// Sequence of the last event published to the hub, and the connection
    /// the log is read on; held while publishing, so events go out once each
    /// and in order.
    published: Mutex<Cursor>,
    /// How to (re)connect the reading connection.
    opts: PgConnectOptions,
    /// The listener's own connection (LISTEN needs a session of its own
    /// for as long as it listens, so it is not taken from the read pool).
    listen: PgPool,
    hub: Hub,
    head: watch::Sender<u64>,
    wake: Notify,
}

/// Where the tail is in the log.
struct Cursor {
    /// Sequence of the last event published to the hub.
    published: u64,
    /// Its own connection, kept (not a pooled one: a pool tests a connection
    /// with a round trip each time it is taken and each time it is given
    /// back, and the tail reads up to every [`READ_EVERY`]). `None` until
    /// connected, and again after a failure.
    conn: Option<Conn>,
}

impl Tail {
    /// A tail whose hub has published everything up to `head`, reading the
    /// log and listening on connections of its own to `opts`.
    pub(super) fn new(opts: PgConnectOptions, hub: Hub, head: watch::Sender<u64>) -> Self {
        let published = *head.borrow();
        Tail {
            inner: Arc::new(Inner {
                origin: uuid::Uuid::now_v7().simple().to_string(),
                published: Mutex::new(Cursor {
                    published,
                    conn: None,
                }),
                opts: opts.clone(),
                listen: PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with(opts),
                hub,
                head,
                wake: Notify::new(),
            }),
        }
    }

    /// Publishes a group this replica's writer just committed, after every
    /// event before it (committed earlier by other replicas: the log lock
    /// orders groups) that the hub has not published yet, which it reads on
    /// `conn`, the writer's connection. Events the tail already read from the
    /// log are not published again.
    pub(super) async fn publish_own(
        &self,
        own: Vec<Arc<LiveEvent>>,
        renamed: HashMap<ComponentId, String>,
        conn: &mut Conn,
    ) {
        let Some(first) = own.first().map(|e| e.stored.keys.sequence) else {
            return;
        };
        let mut cursor = self.inner.published.lock().await;
        if cursor.published + 1 < first
            && let Err(e) = self
                .inner
                .read_on(conn, &mut cursor.published, first - 1)
                .await
        {
            // Publishing ours now would skip the gap: the tail reads them all
            // from the log instead, in order. The cache forgets what they
            // change now all the same: they are acknowledged next.
            tracing::warn!(error = %e, "could not read the log up to this replica's commit");
            for e in &own {
                self.inner.hub.incidents().forget(&e.stored.keys);
            }
            self.inner.wake.notify_one();
            return;
        }
        let group = own.len();
        let fresh: Vec<Arc<LiveEvent>> = own
            .into_iter()
            .filter(|e| e.stored.keys.sequence > cursor.published)
            .collect();
        // The names the group gave go to the hub with its events, not when
        // someone else published them (the tail, or another write connection
        // reading a gap): later renames may have been applied since.
        if fresh.len() == group {
            self.inner.hub.components().apply(renamed);
        } else if !fresh.is_empty() {
            let decoded: Vec<pb::TimelineEvent> = fresh
                .iter()
                .filter_map(|e| crate::wire::decode_event(&e.stored.body).ok())
                .collect();
            self.inner.hub.components().apply(renamed_by(&decoded));
        }
        self.inner.publish(&mut cursor.published, &fresh);
    }

    /// What ends a group's transaction on this replica: the notification
    /// that wakes the other replicas' tails once it commits (a UUID of this
    /// process as payload), and COMMIT, sent as one round trip.
    pub(super) fn commit_sql(&self) -> String {
        format!("NOTIFY {CHANNEL}, '{}'; COMMIT", self.inner.origin)
    }

    /// Asks the tail to read the log now.
    pub(super) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs the tail until the hub shuts down: wakes on a notification or
    /// every [`POLL`], and reads what is new, at most once per
    /// [`READ_EVERY`].
    pub(super) fn spawn(&self) {
        let inner = Arc::clone(&self.inner);
        let listening = Arc::clone(&self.inner);
        let mut shutdown = inner.hub.shutdown_signal();
        let listener = tokio::spawn(async move { listening.listen().await });
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = inner.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                let started = tokio::time::Instant::now();
                {
                    let mut cursor = inner.published.lock().await;
                    if let Err(e) = inner.read_through(&mut cursor, u64::MAX).await {
                        tracing::warn!(error = %e, "reading the log failed; retrying");
                    }
                }
                // What commits meanwhile waits for the next read, which then
                // takes it all at once (or for this replica's writer, which
                // reads the log up to each group it commits).
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep_until(started + READ_EVERY) => {}
                }
            }
            listener.abort();
        });
    }
}

impl Inner {
    /// Listens on [`CHANNEL`], waking the tail on every notification and on
    /// every reconnect (notifications may have been lost meanwhile).
    async fn listen(&self) {
        loop {
            let mut listener = match PgListener::connect_with(&self.listen).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "could not connect to listen for commits; retrying");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "could not LISTEN for commits; retrying");
                tokio::time::sleep(POLL).await;
                continue;
            }
            // Whatever was committed while not listening.
            self.wake.notify_one();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.payload() == self.origin => {}
                    Ok(Some(_)) => self.wake.notify_one(),
                    // The connection dropped; the next call reconnects.
                    Ok(None) => self.wake.notify_one(),
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for commits failed; reconnecting");
                        tokio::time::sleep(POLL).await;
                        break;
                    }
                }
            }
        }
    }

    /// Reads the log after the cursor, up to `last`, and publishes it. A
    /// failed read drops the connection: the next one connects again.
    async fn read_through(&self, cursor: &mut Cursor, last: u64) -> Result<()> {
        let Cursor { published, conn } = cursor;
        let mut held = match conn.take() {
            Some(c) => c,
            None => PgConnection::connect_with(&self.opts).await?.into(),
        };
        self.read_on(&mut held, published, last).await?;
        *conn = Some(held);
        Ok(())
    }

    async fn read_on(&self, conn: &mut Conn, published: &mut u64, last: u64) -> Result<()> {
        loop {
            let read = events::list_with_public_incidents(&mut *conn, *published, BATCH).await?;
            let full = read.len() == BATCH;
            let mut stored = Vec::with_capacity(read.len());
            let mut incidents = HashMap::new();
            for (e, incident) in read.into_iter().filter(|(e, _)| e.keys.sequence <= last) {
                if let Some(i) = incident {
                    incidents.insert(i.0.clone(), i);
                }
                stored.push(e);
            }
            if stored.is_empty() {
                return Ok(());
            }
            let mut decoded = Vec::with_capacity(stored.len());
            for e in &stored {
                decoded.push(crate::wire::decode_event(&e.body)?);
            }
            // As the public sees them now; a replica reads others' events a
            // moment after they committed.
            let public = super::audience::public_forms_given(
                &mut *conn,
                &decoded,
                incidents.into_values().collect(),
            )
            .await?;
            self.hub.components().apply(renamed_by(&decoded));
            let live: Vec<Arc<LiveEvent>> = stored
                .into_iter()
                .zip(public)
                .map(|(stored, public)| Arc::new(LiveEvent { stored, public }))
                .collect();
            self.publish(published, &live);
            if !full {
                return Ok(());
            }
        }
    }

    fn publish(&self, published: &mut u64, events: &[Arc<LiveEvent>]) {
        let Some(last) = events.last() else { return };
        *published = last.stored.keys.sequence;
        // The head first, as the writer does on SQLite: a subscription that
        // joins the ring too late for these events finds the head past its
        // cursor and reads them from the log.
        self.head.send_replace(*published);
        self.hub.publish(events);
    }
}

/// The names component events of another replica gave their components.
fn renamed_by(events: &[pb::TimelineEvent]) -> HashMap<ComponentId, String> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ComponentCreated(pb::ComponentCreated { component }))
            | Some(Payload::ComponentUpdated(pb::ComponentUpdated { component, .. }))
            | Some(Payload::ComponentDeleted(pb::ComponentDeleted { component })) => {
                component.as_ref()
            }
            _ => None,
        })
        .filter_map(|c| {
            Some((
                ComponentId(c.id.parse::<uuid::Uuid>().ok()?),
                c.name.clone(),
            ))
        })
        .collect()
}
