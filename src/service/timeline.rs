//! The timeline: notes, listing, and subscriptions that never lose an event.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::wrappers::WatchStream;
use tokio_util::task::AbortOnDropHandle;

use crate::domain::correction::{Correction, Editor};
use crate::domain::event::VisibilityTarget;
use crate::domain::filter::EventFilter;
use crate::domain::{
    Audience, Event, EventPayload, IncidentId, IncidentSnapshot, NewEvent, Time, Visibility,
};
use crate::error::{Error, Result};
use crate::hub::LiveEvent;
use crate::quota::SubscriberPermit;
use crate::store::audience as store_audience;
use crate::store::{Command, Needs, Store, Tx, WriteFuture, events, incidents};

/// Events read from the database per round trip while catching up.
const CATCH_UP_BATCH: usize = 1000;

/// Batches of the log a catch-up reads at once, each on its own database
/// connection: reads of pages the OS no longer caches wait on the disk, and
/// two such waits overlap (twice the rate of one on a cold log, measured).
const READS_AHEAD: usize = 2;

/// Appends a note to an incident's timeline; answers with its event.
#[derive(Debug)]
pub struct AddNote {
    pub actor: String,
    pub incident_id: IncidentId,
    pub text: String,
    pub visibility: Visibility,
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
                    visibility: self.visibility,
                },
            });
            // The note is its event until it is corrected (see store::notes).
            Ok(Event::clone(&event))
        })
    }
}

/// Corrects a note: appends NOTE_EDITED (and VISIBILITY_CHANGED if it moved);
/// answers with the first event appended, none if nothing changed.
#[derive(Debug)]
pub struct EditNote {
    pub editor: Editor,
    pub incident_id: IncidentId,
    pub sequence: u64,
    pub correction: Correction,
}

impl Command for EditNote {
    type Output = Option<Event>;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.incident_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Option<Event>> {
        Box::pin(async move {
            let incident = super::incidents::load_for_write(tx, self.incident_id).await?;
            incident.ensure_live()?;
            let mut note = tx
                .note(self.incident_id, self.sequence)
                .await?
                .ok_or_else(|| Error::NotFound {
                    resource: "note",
                    id: self.sequence.to_string(),
                })?;
            let now = tx.now();
            let done = note.correct(self.correction.clone(), &self.editor, now)?;
            let mut first = None;
            let mut append = |tx: &mut Tx<'_>, payload| {
                let e = tx.append(NewEvent {
                    incident: Some(IncidentSnapshot::from(&incident)),
                    occur_time: now,
                    actor: self.editor.name.clone(),
                    payload,
                });
                first.get_or_insert_with(|| Event::clone(&e));
            };
            if done.text_changed {
                let payload = EventPayload::NoteEdited {
                    note_sequence: note.sequence,
                    text: note.text.clone(),
                    visibility: note.visibility,
                    old_text: done.old_text.clone(),
                };
                append(tx, payload);
            }
            if done.visibility_changed {
                let payload = EventPayload::VisibilityChanged {
                    target: VisibilityTarget::Note {
                        sequence: note.sequence,
                    },
                    old: done.old_visibility,
                    new: note.visibility,
                };
                append(tx, payload);
            }
            if done.changed() {
                tx.put_note(note);
            }
            Ok(first)
        })
    }
}

/// Events of the log the public view reads per call at most, hidden ones
/// included: a page of a log of mostly hidden events costs a bounded read.
const PUBLIC_SCAN_MAX: usize = 10_000;

/// A page of the log, as read for one audience.
pub struct Page {
    /// The events, oldest first, each with its sequence.
    pub events: Vec<(u64, Bytes)>,
    /// Whether the read holds every event its row limit allowed (see
    /// [`events::StoredBatch`]).
    pub complete: bool,
    /// For the public: the read stopped on its scan budget after this
    /// sequence, before the page was full and before the end of the log.
    pub scanned_to: Option<u64>,
}

/// One page of the log after `after`, oldest first: `limit` events the
/// audience may see, or all there are. For the public, hidden events are
/// skipped and the read goes on, so a page is short only at the end of the
/// log, or when [`PUBLIC_SCAN_MAX`] events were read for it.
pub async fn list(
    store: &Store,
    filter: &EventFilter,
    after: u64,
    limit: usize,
    audience: Audience,
) -> Result<Page> {
    list_scanning(store, filter, after, limit, audience, PUBLIC_SCAN_MAX).await
}

/// [`list`], reading at most `scan_max` events (hidden ones included) for
/// the public.
async fn list_scanning(
    store: &Store,
    filter: &EventFilter,
    after: u64,
    limit: usize,
    audience: Audience,
    scan_max: usize,
) -> Result<Page> {
    let mut conn = store.reader().await?;
    if let [id] = filter.incident_ids.as_slice()
        && !incidents::exists(&mut conn, *id, audience).await?
    {
        return Err(Error::NotFound {
            resource: "incident",
            id: id.to_string(),
        });
    }
    let (ids, kinds) = (&filter.incident_ids, &filter.kinds);
    if audience == Audience::Full {
        let batch = events::list_stored(&mut conn, ids, kinds, after, limit).await?;
        return Ok(Page {
            events: batch.events,
            complete: batch.complete,
            scanned_to: None,
        });
    }
    let mut shown = Vec::new();
    let mut cursor = after;
    let mut scanned = 0;
    let batch_rows = limit.max(CATCH_UP_BATCH).min(scan_max);
    loop {
        let batch = events::list_stored(&mut conn, ids, kinds, cursor, batch_rows).await?;
        let end = batch.complete && batch.events.len() < batch_rows;
        scanned += batch.events.len();
        let batch = batch
            .events
            .into_iter()
            .map(|(s, b)| (s, Some(b)))
            .collect();
        for (sequence, public) in for_public(&mut conn, batch).await? {
            cursor = sequence;
            if let Some(body) = public {
                shown.push((sequence, body));
                if shown.len() == limit {
                    return Ok(Page {
                        events: shown,
                        complete: true,
                        scanned_to: None,
                    });
                }
            }
        }
        if end {
            return Ok(Page {
                events: shown,
                complete: true,
                scanned_to: None,
            });
        }
        if scanned >= scan_max {
            return Ok(Page {
                events: shown,
                complete: true,
                scanned_to: Some(cursor),
            });
        }
    }
}

/// Stored events as the public sees them now; `None` (an event already
/// left out, or hidden from the public) stays `None`.
async fn for_public(
    conn: &mut crate::store::Conn,
    stored: Vec<(u64, Option<Bytes>)>,
) -> Result<Vec<(u64, Option<Bytes>)>> {
    let mut decoded = Vec::with_capacity(stored.len());
    for body in stored.iter().filter_map(|(_, b)| b.as_ref()) {
        decoded.push(crate::wire::decode_event(body)?);
    }
    let mut public = store_audience::public_forms(conn, &decoded)
        .await?
        .into_iter();
    Ok(stored
        .into_iter()
        .map(|(sequence, body)| (sequence, body.and_then(|_| public.next().flatten())))
        .collect())
}

/// Longest a subscription from a sequence this replica has not read yet
/// waits for it (PostgreSQL: another replica committed it a moment ago).
const TAIL_WAIT: Duration = Duration::from_secs(3);

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

/// A subscription's messages, produced as the stream is polled.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<Item>> + Send>>;

/// Starts a subscription: catch-up from the database, then live from the hub,
/// with no gap, no duplicate and strictly increasing sequences. The stream
/// ends with an error only on shutdown (after everything committed by then
/// was delivered). `permit` is held for the life of the stream; while the
/// subscription reads the database it also holds a place in its caller's share.
///
/// No task feeds the stream: it does its work when the connection polls it
/// for the next message, so an event goes from the hub to the stream with no
/// queue and no wake-up in between, and a subscriber that reads slowly simply
/// falls behind the ring (and back to the database). Only a catch-up's reads
/// of the database run as tasks of their own (see `State::read_ahead`).
pub async fn subscribe(
    store: Store,
    start: Start,
    filter: EventFilter,
    heartbeat: Duration,
    permit: SubscriberPermit,
    audience: Audience,
) -> Result<Subscription> {
    let head = match start {
        Start::After(after) => store.head_reaching(after, TAIL_WAIT).await,
        Start::Now => store.head_sequence(),
    };
    let cursor = match start {
        Start::After(after) if after > head => return Err(Error::SequenceAheadOfLog { head }),
        Start::After(after) => after,
        Start::Now => head,
    };
    let state = State::new(store, cursor, filter, heartbeat, permit, audience);
    Ok(Box::pin(futures::stream::unfold(state, step)))
}

/// One message of a subscription. The stream keeps this future between
/// polls, one per open stream: its size is memory per subscriber.
async fn step(mut s: Box<State>) -> Option<(Result<Item>, Box<State>)> {
    let item = s.next().await?;
    Some((item, s))
}

/// Counts the subscription in the open-subscriber gauge while it exists,
/// however it ends.
struct OpenSubscriber;

impl Drop for OpenSubscriber {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::SUBSCRIBERS).decrement(1.0);
    }
}

/// Where a subscription is.
enum Phase {
    /// Take a place in the live ring, then read the log up to it.
    Subscribe,
    /// Reading the log from the cursor; `live` holds what commits meanwhile.
    CatchUp,
    /// Following the live ring.
    Live,
    /// Everything committed was delivered and the server is stopping.
    Ending,
    Done,
}

struct State {
    store: Store,
    filter: EventFilter,
    audience: Audience,
    /// Every event up to here has been looked at (and queued if it matched).
    cursor: u64,
    permit: SubscriberPermit,
    /// Changes of the shutdown flag. A stream, so that waiting on it in each
    /// `select!` reuses one registration instead of making a new one per event.
    shutdown: WatchStream<bool>,
    stopping: bool,
    beat: tokio::time::Interval,
    /// Messages to send before doing anything else.
    ready: VecDeque<Item>,
    phase: Phase,
    live: Option<broadcast::Receiver<Arc<LiveEvent>>>,
    /// The next batches of the log, read while this one is sent, in log order.
    ahead: VecDeque<ReadAhead>,
    _open: OpenSubscriber,
}

/// Events read from the log: each with its sequence and what to send of it
/// (`None`: it does not match, or the audience may not see it).
struct Batch {
    events: Vec<(u64, Option<Bytes>)>,
    /// The batch holds all its row limit allowed (a batch of large events
    /// is cut short by bytes).
    complete: bool,
    /// The log's head before the read began: all of it up to there that
    /// follows the cursor is in a batch that is not full.
    head_before: u64,
}

/// A batch of the log read ahead, after `after`. A task of its own reads it
/// on a database thread while the stream sends the batch before it, and gives
/// the connection back as soon as it has the rows, whether or not the stream
/// is being read: a subscriber that stops reading holds no connection.
struct ReadAhead {
    after: u64,
    read: AbortOnDropHandle<Result<Batch>>,
}

impl State {
    /// A subscription's state, positioned after `cursor`. Boxed: the state
    /// moves in and out of each step's future.
    fn new(
        store: Store,
        cursor: u64,
        filter: EventFilter,
        heartbeat: Duration,
        permit: SubscriberPermit,
        audience: Audience,
    ) -> Box<State> {
        metrics::gauge!(crate::metrics::SUBSCRIBERS).increment(1.0);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = store.hub().shutdown_signal();
        let stopping = *shutdown.borrow();
        Box::new(State {
            shutdown: WatchStream::from_changes(shutdown),
            stopping,
            store,
            filter,
            audience,
            cursor,
            permit,
            beat,
            // The first message states the position, so a client that started
            // "from now" can resume from a sequence if the stream breaks early.
            ready: VecDeque::from([Item::Heartbeat(cursor)]),
            phase: Phase::Subscribe,
            live: None,
            ahead: VecDeque::new(),
            _open: OpenSubscriber,
        })
    }

    /// The next message, or `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<Item>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            match self.phase {
                Phase::Subscribe => {
                    // Subscribe before reading the database: whatever commits
                    // after this point is in the ring, whatever committed
                    // before is on disk.
                    self.live = Some(self.store.hub().subscribe());
                    self.phase = Phase::CatchUp;
                }
                Phase::CatchUp => {
                    // Boxed: a database read's future (a pool's connect
                    // among it, TLS state and all) is several KiB, and every
                    // stream would carry room for it inline while it only
                    // follows the ring; boxed, it exists only while catching up.
                    if let Err(e) = Box::pin(self.catch_up_batch()).await {
                        self.phase = Phase::Done;
                        return Some(Err(e));
                    }
                }
                Phase::Live => self.follow().await,
                Phase::Ending => {
                    self.phase = Phase::Done;
                    return Some(Err(Error::ShuttingDown));
                }
                Phase::Done => return None,
            }
        }
    }

    /// Reads one batch of the log from the cursor (or takes the one read
    /// ahead), and starts reading the next ones; moves on to the live ring
    /// (or to the end, when stopping) once caught up with the head.
    async fn catch_up_batch(&mut self) -> Result<()> {
        let batch = match self.ahead.pop_front() {
            Some(ahead) if ahead.after == self.cursor => Some(
                ahead
                    .read
                    .await
                    .map_err(|e| Error::Internal(format!("a read of the log ended: {e}")))??,
            ),
            // None read ahead, or read from where the log was guessed to be
            // (see `read_ahead`) and it was not: then it and every read after
            // it are of no use. With nothing committed that the ring will not
            // bring, a subscription from now (or one caught up) costs the
            // database nothing.
            _ => {
                self.ahead.clear();
                match self.read_next(self.cursor) {
                    Some(read) => Some(read.await?),
                    None => None,
                }
            }
        };
        let caught_up = match batch {
            None => true,
            Some(batch) => {
                // Fewer rows than asked for, none left out: the log ends here.
                let short = batch.complete && batch.events.len() < CATCH_UP_BATCH;
                for (sequence, body) in batch.events {
                    self.take(sequence, body);
                }
                if short {
                    // Everything committed before the read was in it.
                    self.cursor = self.cursor.max(batch.head_before);
                } else {
                    if beat_is_due(&mut self.beat) {
                        self.ready.push_back(Item::Heartbeat(self.cursor));
                    }
                    self.read_ahead(batch.complete);
                }
                short
            }
        };
        if caught_up {
            // Reads a guess started past the end: not needed.
            self.ahead.clear();
            self.phase = if self.stopping {
                Phase::Ending
            } else {
                Phase::Live
            };
        }
        Ok(())
    }

    /// Starts the reads of the batches after the cursor, up to `READS_AHEAD`.
    /// The first starts at the cursor. Where each row of the log is in the
    /// batch (the database leaves none out) and the log's sequences have no
    /// gaps, a full batch ends `CATCH_UP_BATCH` further on, so the next ones
    /// start there; a guess that turns out wrong costs the read it started
    /// (which runs to its end in the database all the same). After a batch cut
    /// short by size (`complete_before` false) the next one is likely cut
    /// short too, and no guess is made.
    fn read_ahead(&mut self, complete_before: bool) {
        let every_row =
            complete_before && self.filter.incident_ids.is_empty() && self.filter.kinds.is_empty();
        while self.ahead.len() < READS_AHEAD {
            let after = match self.ahead.back() {
                None => self.cursor,
                Some(last) if every_row => last.after + CATCH_UP_BATCH as u64,
                Some(_) => return,
            };
            let Some(read) = self.read_next(after) else {
                return;
            };
            self.ahead.push_back(ReadAhead {
                after,
                read: AbortOnDropHandle::new(tokio::spawn(read)),
            });
        }
    }

    /// The read of the batch after `after`, if the log goes further. A
    /// database read is work done for the caller: it takes a place in its
    /// share (waiting for one), but delivering does not, so a subscriber that
    /// reads slowly holds nothing of its caller's.
    fn read_next(
        &self,
        after: u64,
    ) -> Option<impl Future<Output = Result<Batch>> + Send + 'static> {
        let head_before = self.store.head_sequence();
        if after >= head_before {
            return None;
        }
        let share = self.permit.catching_up();
        let (store, filter, audience) = (self.store.clone(), self.filter.clone(), self.audience);
        Some(async move {
            let share = share.await;
            let (events, complete) = read_batch(&store, &filter, audience, after).await?;
            drop(share);
            Ok(Batch {
                events,
                complete,
                head_before,
            })
        })
    }

    /// Waits for the next thing to happen while following the ring.
    async fn follow(&mut self) {
        let Some(live) = self.live.as_mut() else {
            self.phase = Phase::Subscribe;
            return;
        };
        tokio::select! {
            biased;
            // The flag only ever turns on; a closed hub means stopping too.
            change = self.shutdown.next() => {
                self.stopping = change.unwrap_or(true);
                if self.stopping {
                    self.phase = Phase::Subscribe;
                }
            }
            r = live.recv() => match r {
                Ok(e) => {
                    let body = match self.audience {
                        Audience::Full => Some(&e.stored.body),
                        // As the public saw it when it committed.
                        Audience::Public => e.public.as_ref(),
                    };
                    let body = body.filter(|_| self.filter.matches(&e.stored.keys));
                    self.take(e.stored.keys.sequence, body.cloned());
                }
                // Fell behind the ring (or it closed): back to the database.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {
                    self.phase = Phase::Subscribe;
                }
            },
            _ = self.beat.tick() => self.ready.push_back(Item::Heartbeat(self.cursor)),
        }
    }

    /// Queues an event if it is new and there is something to send of it;
    /// advances the cursor either way.
    fn take(&mut self, sequence: u64, body: Option<Bytes>) {
        if sequence <= self.cursor {
            return;
        }
        if let Some(body) = body {
            let lag = self.store.head_sequence().saturating_sub(sequence);
            metrics::histogram!(crate::metrics::SUBSCRIBER_LAG).record(lag as f64);
            self.ready.push_back(Item::Event(body));
        }
        self.cursor = sequence;
    }
}

/// The events after `after`, each with its sequence and what to send of it
/// (`None`: it does not match, or the audience may not see it), and whether
/// the batch holds all its row limit allowed (a batch of large events is cut
/// short by bytes). Conditions on the incident and kind are the database's;
/// only a severity or component condition needs the keys read per row.
async fn read_batch(
    store: &Store,
    f: &EventFilter,
    audience: Audience,
    after: u64,
) -> Result<(Vec<(u64, Option<Bytes>)>, bool)> {
    // The stream is accepted: it waits for the database rather than end
    // with OVERLOADED (its share of its caller's reads bounds it).
    let mut conn = store.reader_waiting().await?;
    let (batch, complete): (Vec<(u64, Option<Bytes>)>, bool) =
        if f.severity_at_least.is_none() && f.component_id.is_none() {
            let stored =
                events::list_stored(&mut conn, &f.incident_ids, &f.kinds, after, CATCH_UP_BATCH)
                    .await?;
            let batch = stored.events.into_iter().map(|(s, b)| (s, Some(b)));
            (batch.collect(), stored.complete)
        } else {
            let rows =
                events::list(&mut conn, &f.incident_ids, &f.kinds, after, CATCH_UP_BATCH).await?;
            let batch = rows
                .into_iter()
                .map(|e| (e.keys.sequence, Some(e.body).filter(|_| f.matches(&e.keys))));
            (batch.collect(), true)
        };
    let batch = match audience {
        Audience::Full => batch,
        Audience::Public => for_public(&mut conn, batch).await?,
    };
    Ok((batch, complete))
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
    use futures::StreamExt;

    use super::*;
    use crate::config::LimitArgs;
    use crate::domain::incident::NewIncident;
    use crate::quota::Quotas;
    use crate::store::StoreOptions;
    use crate::store::testing::{connect, db_file, declaration, open, open_with};

    /// A public page over a run of hidden events longer than the scan
    /// budget stops on the budget with a position to go on from, and going
    /// on reaches what follows the run.
    #[tokio::test]
    async fn a_public_page_stops_on_its_scan_budget_and_goes_on_from_there() {
        let (_dir, store) = open().await;
        let hidden = store.execute(None, declaration(vec![])).await.unwrap();
        for n in 0..30 {
            let note = AddNote {
                actor: "ana".into(),
                incident_id: hidden.id,
                text: format!("internal {n}"),
                visibility: Visibility::Internal,
                occur_time: None,
            };
            store.execute(None, note).await.unwrap();
        }
        let mut public = declaration(vec![]);
        public.new = NewIncident {
            visibility: Some(Visibility::Public),
            ..public.new
        };
        store.execute(None, public).await.unwrap();
        let all = EventFilter::default();
        let first = list_scanning(&store, &all, 0, 5, Audience::Public, 8)
            .await
            .unwrap();
        assert!(first.events.is_empty(), "31 hidden events first");
        let mut after = first.scanned_to.expect("stopped on the budget");
        assert!((8..=31).contains(&after), "{after}");
        let mut found = Vec::new();
        for _ in 0..10 {
            let page = list_scanning(&store, &all, after, 5, Audience::Public, 8)
                .await
                .unwrap();
            found.extend(page.events.iter().map(|(s, _)| *s));
            match page.scanned_to {
                Some(s) => after = s,
                None => break,
            }
        }
        assert_eq!(found, [32], "the public incident's creation, once");
        store.close().await;
    }

    /// What an open stream holds between two messages is small: the
    /// database read of a catch-up (a pool's connect among it, with room for
    /// a TLS handshake) is allocated only while it runs. Inline, it made
    /// each of 10,000 idle subscribers cost 30 KiB instead of 11.
    #[tokio::test]
    async fn an_open_stream_holds_a_small_future_between_messages() {
        let (_dir, store) = open().await;
        let state = State::new(
            store.clone(),
            0,
            EventFilter::default(),
            Duration::from_secs(3600),
            subscriber(),
            Audience::Full,
        );
        let next = step(state);
        let size = std::mem::size_of_val(&next);
        assert!(size <= 1024, "a stream's step future is {size} bytes");
        drop(next);
        store.close().await;
    }

    /// Adds `n` notes of `bytes` bytes to the incident, many in flight at
    /// once (so that the writer commits them in groups, not one fsync each).
    async fn add_notes(store: &Store, incident_id: IncidentId, n: usize, bytes: usize) {
        let notes = (0..n).map(|i| {
            store.execute(
                None,
                AddNote {
                    actor: "ana".into(),
                    incident_id,
                    text: format!("{i:0bytes$}"),
                    visibility: Visibility::Internal,
                    occur_time: None,
                },
            )
        });
        for note in futures::future::join_all(notes).await {
            note.unwrap();
        }
    }

    /// The sequences of the events `stream` delivers up to `last`. A stream
    /// that stops short fails the test (after a minute) instead of hanging it.
    async fn sequences_up_to(
        stream: &mut (impl Stream<Item = Result<Item>> + Unpin),
        last: u64,
    ) -> Vec<u64> {
        let mut delivered = Vec::new();
        while delivered.last() < Some(&last) {
            let next = tokio::time::timeout(Duration::from_secs(60), stream.next()).await;
            match next.unwrap_or_else(|_| panic!("no event after {:?}", delivered.last())) {
                Some(Ok(Item::Event(e))) => delivered.extend(
                    crate::wire::split_events(e)
                        .unwrap()
                        .iter()
                        .map(|(s, _)| *s),
                ),
                Some(Ok(Item::Heartbeat(_))) => {}
                other => panic!("expected events, got {other:?}"),
            }
        }
        delivered
    }

    /// A full batch of small events is followed by events too large for a
    /// batch to be one value, read a few rows at a time: the batch after the
    /// full one ends long before a full one would, the read ahead started
    /// where a full one would have ended is dropped, and nothing in between
    /// is skipped.
    #[tokio::test]
    async fn a_catch_up_over_batches_cut_short_by_size_skips_nothing() {
        let (_dir, store) = open().await;
        let incident = store.execute(None, declaration(vec![])).await.unwrap();
        add_notes(&store, incident.id, 999, 8).await;
        // 1,000 of these are more than a read connection makes into one value.
        add_notes(&store, incident.id, 1100, 40_000).await;
        let mut stream = from_the_start(&store).await;
        let delivered = sequences_up_to(&mut stream, 2100).await;
        assert_eq!(delivered, (1..=2100).collect::<Vec<u64>>());
        drop(stream);
        store.close().await;
    }

    /// A subscription to everything from the log's start, with no heartbeat
    /// to speak of.
    async fn from_the_start(store: &Store) -> Subscription {
        subscribe(
            store.clone(),
            Start::After(0),
            EventFilter::default(),
            Duration::from_secs(3600),
            subscriber(),
            Audience::Full,
        )
        .await
        .unwrap()
    }

    /// A place for one subscriber, on a server without tokens.
    fn subscriber() -> SubscriberPermit {
        Quotas::new(&LimitArgs::default(), None)
            .admit_subscriber(None)
            .unwrap()
    }

    /// A catch-up reads batches ahead from where a full batch is expected to
    /// end. Where the log has a gap, a batch ends further on than expected,
    /// and the read started from the guess overlaps it: every event still
    /// arrives once, in order.
    #[tokio::test]
    async fn a_catch_up_over_a_gap_in_the_log_delivers_each_event_once_in_order() {
        use sqlx::Connection;
        let (dir, store) = open().await;
        let incident = store.execute(None, declaration(vec![])).await.unwrap();
        add_notes(&store, incident.id, 3999, 8).await;
        assert_eq!(store.head_sequence(), 4000);
        let mut raw = connect(&db_file(&dir)).await;
        sqlx::query("DELETE FROM events WHERE sequence = 1500")
            .execute(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();

        let mut stream = from_the_start(&store).await;
        let expected: Vec<u64> = (1..=4000).filter(|s| *s != 1500).collect();
        assert_eq!(sequences_up_to(&mut stream, 4000).await, expected);
        drop(stream);
        store.close().await;
    }

    /// The reads ahead of a catch-up run as tasks of their own: a subscriber
    /// that stops reading mid-catch-up leaves every read connection free once
    /// those reads have their rows.
    #[tokio::test]
    async fn a_catch_up_that_is_not_read_holds_no_read_connection() {
        let (_dir, store) = open_with(StoreOptions {
            read_connections: 2,
            read_queue_timeout: Duration::from_secs(60),
            ..StoreOptions::default()
        })
        .await;
        let incident = store.execute(None, declaration(vec![])).await.unwrap();
        add_notes(&store, incident.id, 4999, 8).await;
        let mut stream = from_the_start(&store).await;
        // The first event: the first batch is in and the next ones are being read.
        sequences_up_to(&mut stream, 1).await;
        // The stream is not read from here on. Both connections come back
        // (within the queue timeout; past it `reader` fails the test).
        let first = store.reader().await.expect("a read connection");
        let second = store.reader().await.expect("the other read connection");
        drop((first, second));
        // Read again, the stream goes on where it stopped, to the end.
        let rest = sequences_up_to(&mut stream, 5000).await;
        assert_eq!(rest.last(), Some(&5000));
        assert!(
            rest.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, none missing"
        );
        drop(stream);
        store.close().await;
    }

    /// A subscription that must read the log while every read connection is
    /// taken waits for one, past the queue timeout that refuses calls with
    /// OVERLOADED, and then delivers: an accepted stream is not ended for load.
    #[tokio::test]
    async fn catch_up_waits_for_a_read_connection_instead_of_failing() {
        let timeout = Duration::from_millis(100);
        let (_dir, store) = open_with(StoreOptions {
            read_connections: 1,
            read_queue_timeout: timeout,
            ..StoreOptions::default()
        })
        .await;
        // The log holds one event: the declaration.
        store.execute(None, declaration(vec![])).await.unwrap();
        let held = store.reader().await.unwrap();
        // From here until the connection is given back, the subscription only
        // waits on the pool: the paused clock runs ahead whenever every task
        // waits, so the queue timeout passes again and again, at once.
        tokio::time::pause();
        let mut stream = from_the_start(&store).await;
        assert!(matches!(stream.next().await, Some(Ok(Item::Heartbeat(0)))));
        // Ten queue timeouts pass while the connection is held: the stream
        // keeps waiting, with no message and no error.
        let waited = tokio::time::timeout(timeout * 10, stream.next()).await;
        assert!(waited.is_err(), "nothing yet, and no error: {waited:?}");
        // The database works on threads of its own: real time again.
        tokio::time::resume();
        drop(held);
        match stream.next().await {
            Some(Ok(Item::Event(e))) => {
                assert_eq!(crate::wire::split_events(e).unwrap()[0].0, 1)
            }
            other => panic!("expected the event, got {other:?}"),
        }
        store.close().await;
    }
}
