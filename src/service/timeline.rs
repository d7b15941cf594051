//! The timeline: notes, listing, and subscriptions that never lose an event.

use bytes::Bytes;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::domain::filter::EventFilter;
use crate::domain::{Event, EventPayload, IncidentId, IncidentSnapshot, NewEvent, Time};
use crate::error::{Error, Result};
use crate::quota::SubscriberPermit;
use crate::store::{Command, Needs, Store, Tx, WriteFuture, events, incidents};

/// Events read from the database per round trip while catching up.
const CATCH_UP_BATCH: usize = 1000;
/// Items queued towards one subscriber's connection; beyond this the
/// subscriber waits, and falls back to the database if the live ring moves on.
const STREAM_QUEUE: usize = 64;

/// Appends a note to an incident's timeline; answers with its event.
#[derive(Debug)]
pub struct AddNote {
    pub actor: String,
    pub incident_id: IncidentId,
    pub text: String,
    pub occur_time: Option<Time>,
}

impl Command for AddNote {
    type Output = Event;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.incident_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Event> {
        Box::pin(async move {
            let incident = super::incidents::load_for_write(tx, self.incident_id).await?;
            incident.ensure_live()?;
            let event = tx.append(NewEvent {
                incident: Some(IncidentSnapshot::from(&incident)),
                occur_time: self.occur_time.unwrap_or(tx.now()),
                actor: self.actor.clone(),
                payload: EventPayload::NoteAdded {
                    text: self.text.clone(),
                },
            });
            Ok(Event::clone(&event))
        })
    }
}

/// One page of the log after `after`, oldest first.
pub async fn list(
    store: &Store,
    filter: &EventFilter,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Bytes)>> {
    let mut conn = store.reader().await?;
    if let [id] = filter.incident_ids.as_slice()
        && !incidents::exists(&mut conn, *id).await?
    {
        return Err(Error::NotFound {
            resource: "incident",
            id: id.to_string(),
        });
    }
    events::list_stored(&mut conn, &filter.incident_ids, &filter.kinds, after, limit).await
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Every matching event with a greater sequence.
    After(u64),
    /// Events committed from now on.
    Now,
}

/// What a subscription delivers.
#[derive(Clone, Debug)]
pub enum Item {
    /// A matching event, as stored: the whole reply.
    Event(Bytes),
    /// Every matching event up to this sequence has been delivered.
    Heartbeat(u64),
}

/// Starts a subscription: catch-up from the database, then live from the hub,
/// with no gap, no duplicate and strictly increasing sequences. The stream
/// ends with an error only on shutdown (after everything committed by then
/// was delivered). `permit` is held for the life of the stream; while the
/// subscription reads the database it also holds a place in its caller's share.
pub fn subscribe(
    store: Store,
    start: Start,
    filter: EventFilter,
    heartbeat: Duration,
    permit: SubscriberPermit,
) -> Result<mpsc::Receiver<Result<Item>>> {
    let head = store.head_sequence();
    let cursor = match start {
        Start::After(after) if after > head => return Err(Error::SequenceAheadOfLog { head }),
        Start::After(after) => after,
        Start::Now => head,
    };
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    tokio::spawn(async move {
        metrics::gauge!(crate::metrics::SUBSCRIBERS).increment(1.0);
        let _open = open_subscriber_guard();
        Subscription {
            store,
            filter,
            cursor,
            tx,
            permit,
        }
        .run(heartbeat)
        .await;
    });
    Ok(rx)
}

/// Decrements the open-subscriber gauge when the subscription task ends,
/// however it ends.
fn open_subscriber_guard() -> impl Drop {
    struct Open;
    impl Drop for Open {
        fn drop(&mut self) {
            metrics::gauge!(crate::metrics::SUBSCRIBERS).decrement(1.0);
        }
    }
    Open
}

struct Subscription {
    store: Store,
    filter: EventFilter,
    /// Every event up to here has been looked at (and sent if it matched).
    cursor: u64,
    tx: mpsc::Sender<Result<Item>>,
    permit: SubscriberPermit,
}

/// The client went away: stop.
struct Gone;

impl Subscription {
    async fn run(mut self, heartbeat: Duration) {
        let mut shutdown = self.store.hub().shutdown_signal();
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first message states the position, so a client that started
        // "from now" can resume from a sequence if the stream breaks early.
        if self.send(Item::Heartbeat(self.cursor)).await.is_err() {
            return;
        }
        loop {
            // Subscribe before reading the database: whatever commits after
            // this point is in the ring, whatever committed before is on disk.
            let mut live = self.store.hub().subscribe();
            if self.catch_up(&mut beat).await.is_err() {
                return;
            }
            if *shutdown.borrow() {
                let _ = self.tx.send(Err(Error::ShuttingDown)).await;
                return;
            }
            loop {
                tokio::select! {
                    biased;
                    _ = self.tx.closed() => return,
                    _ = shutdown.changed() => break,
                    r = live.recv() => match r {
                        Ok(e) => {
                            let matches = self.filter.matches(&e.keys);
                            if self.deliver(e.keys.sequence, matches, &e.body).await.is_err() {
                                return;
                            }
                        }
                        // Fell behind the ring: back to the database.
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => break,
                    },
                    _ = beat.tick() => {
                        if self.send(Item::Heartbeat(self.cursor)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Reads the log from the cursor until it is caught up with the head.
    async fn catch_up(
        &mut self,
        beat: &mut tokio::time::Interval,
    ) -> std::result::Result<(), Gone> {
        loop {
            let head_before = self.store.head_sequence();
            if self.cursor >= head_before {
                // Nothing committed that the ring will not bring: a subscription
                // from now (or one caught up) costs the database nothing.
                return Ok(());
            }
            // A database read is work done for the caller: it takes a place in
            // its share (waiting for one), but delivering does not, so a
            // subscriber that reads slowly holds nothing of its caller's.
            let share = tokio::select! {
                share = self.permit.catching_up() => share,
                _ = self.tx.closed() => return Err(Gone),
            };
            let read = tokio::select! {
                read = self.read_batch() => read,
                _ = self.tx.closed() => return Err(Gone),
            };
            drop(share);
            let batch = match read {
                Ok(b) => b,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return Err(Gone);
                }
            };
            let short = batch.len() < CATCH_UP_BATCH;
            for (sequence, matches, body) in &batch {
                self.deliver(*sequence, *matches, body).await?;
            }
            if short {
                // Everything committed before the read (≤ head_before) was in it.
                self.cursor = self.cursor.max(head_before);
                return Ok(());
            }
            if beat_is_due(beat) {
                self.send(Item::Heartbeat(self.cursor)).await?;
            }
        }
    }

    /// The next events after the cursor, each with its sequence and whether
    /// it matches. Conditions on the incident and kind are the database's;
    /// only a severity or component condition needs the keys read per row.
    async fn read_batch(&self) -> Result<Vec<(u64, bool, Bytes)>> {
        // The stream is accepted: it waits for the database rather than end
        // with OVERLOADED (its share of its caller's reads bounds it).
        let mut conn = self.store.reader_waiting().await?;
        let f = &self.filter;
        if f.severity_at_least.is_none() && f.component_id.is_none() {
            let stored = events::list_stored(
                &mut conn,
                &f.incident_ids,
                &f.kinds,
                self.cursor,
                CATCH_UP_BATCH,
            )
            .await?;
            return Ok(stored.into_iter().map(|(s, b)| (s, true, b)).collect());
        }
        let rows = events::list(
            &mut conn,
            &f.incident_ids,
            &f.kinds,
            self.cursor,
            CATCH_UP_BATCH,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|e| (e.keys.sequence, f.matches(&e.keys), e.body))
            .collect())
    }

    /// Sends an event if it is new and matches; advances the cursor either way.
    async fn deliver(
        &mut self,
        sequence: u64,
        matches: bool,
        body: &Bytes,
    ) -> std::result::Result<(), Gone> {
        if sequence <= self.cursor {
            return Ok(());
        }
        if matches {
            let lag = self.store.head_sequence().saturating_sub(sequence);
            metrics::histogram!(crate::metrics::SUBSCRIBER_LAG).record(lag as f64);
            self.send(Item::Event(body.clone())).await?;
        }
        self.cursor = sequence;
        Ok(())
    }

    async fn send(&self, item: Item) -> std::result::Result<(), Gone> {
        self.tx.send(Ok(item)).await.map_err(|_| Gone)
    }
}

fn beat_is_due(beat: &mut tokio::time::Interval) -> bool {
    use std::task::{Context, Poll};
    let waker = futures::task::noop_waker();
    matches!(
        beat.poll_tick(&mut Context::from_waker(&waker)),
        Poll::Ready(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitArgs;
    use crate::quota::Quotas;
    use crate::store::StoreOptions;

    /// A subscription that must read the log while every read connection is
    /// taken waits for one, past the queue timeout that refuses calls with
    /// OVERLOADED, and then delivers: an accepted stream is not ended for load.
    #[tokio::test]
    async fn catch_up_waits_for_a_read_connection_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db").display().to_string();
        let timeout = Duration::from_millis(100);
        let store = Store::open(
            &db,
            StoreOptions {
                read_connections: 1,
                read_queue_timeout: timeout,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        store
            .write(|ctx| {
                Box::pin(async move {
                    let now = ctx.now();
                    ctx.append(NewEvent {
                        incident: None,
                        occur_time: now,
                        actor: "t".into(),
                        payload: EventPayload::NoteAdded { text: "n".into() },
                    })
                    .await
                    .map(|_| ())
                })
            })
            .await
            .unwrap();
        let held = store.reader().await.unwrap();
        // From here until the connection is given back, the subscription only
        // waits on the pool: the paused clock runs ahead whenever every task
        // waits, so the queue timeout passes again and again, at once.
        tokio::time::pause();
        let permit = Quotas::new(&LimitArgs::default(), None)
            .admit_subscriber(None)
            .unwrap();
        let mut rx = subscribe(
            store.clone(),
            Start::After(0),
            EventFilter::default(),
            Duration::from_secs(3600),
            permit,
        )
        .unwrap();
        assert!(matches!(rx.recv().await, Some(Ok(Item::Heartbeat(0)))));
        tokio::time::sleep(timeout * 10).await;
        assert!(rx.try_recv().is_err(), "nothing yet, and no error");
        // The database works on threads of its own: real time again.
        tokio::time::resume();
        drop(held);
        match rx.recv().await {
            Some(Ok(Item::Event(e))) => {
                assert_eq!(crate::wire::split_events(e).unwrap()[0].0, 1)
            }
            other => panic!("expected the event, got {other:?}"),
        }
        store.close().await;
    }
}
