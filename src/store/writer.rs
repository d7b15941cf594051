//! The process's writer: owns the write connections and commits concurrent
//! write requests in groups: many requests, one transaction, one fsync. A
//! group is in flight on each connection (SQLite has one; PostgreSQL may have
//! several, see [`Writer::start`]).
//!
//! A request is either a typed [`Command`], run set-wise with the commands
//! around it (see `batch`), or a job: a closure with the connection, run in
//! its own savepoint so that one that fails is rolled back alone. If a
//! statement of a group fails, its commands are retried one at a time, so a
//! bad one fails alone.
//!
//! The log: a group's events are written in one statement just before
//! COMMIT, once the group holds the log. On SQLite the group holds it from
//! BEGIN IMMEDIATE (the database's one write lock; this process is the only
//! writer), so events are numbered as they are appended. On PostgreSQL,
//! where several replicas write, the group takes the log lock only at the end
//! (see [`take_log`]): until then it runs beside the other replicas' groups,
//! its rows held by row locks, and its events carry provisional numbers
//! (from [`PROVISIONAL`]) that are made final, in the events and in what the
//! commands answer, once the committed head is known.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{mpsc, oneshot, watch};

use super::audience::Known;
use super::batch::{self, Committed, Needs, Tx, Working};
use super::checkpoint::Lap;
use super::db::{self, Conn, Dialect};
use super::request_ids::RequestKey;
use super::tail::Tail;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;

use crate::component_names::{ComponentNames, Overlay, named_by};
use crate::domain::event::{EventPayload, VisibilityTarget};
use crate::domain::{ComponentId, EncodedEvent, Event, Time};
use crate::error::{Error, Result};
use crate::hub::{Hub, LiveEvent};
use crate::proto as pb;

/// The future a write job returns.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// What a write job sees: the write connection inside the group's transaction,
/// the group's clock, and the event log to append to.
pub struct WriteCtx {
    pub(super) conn: Conn,
    pub(super) now: Time,
    /// Sequence of the last committed event this writer knows of.
    pub(super) head: u64,
    /// What the group's first event is numbered after: `head` where the
    /// group holds the log from its start, else [`PROVISIONAL`].
    pub(super) base: u64,
    /// This group's events, in sequence order from `base + 1`.
    pub(super) events: Vec<Arc<Event>>,
    /// How this group holds the component tree (PostgreSQL).
    pub(super) tree: TreeLock,
    /// What the group's commands read and wrote, not yet in SQL.
    pub(super) working: Working,
    /// Incidents as committed, kept across groups.
    pub(super) committed: Committed,
    /// What this group's commands read and wrote, for the public form of its
    /// events; `None` once a job ran in it (a job may write anything).
    pub(super) known: Option<Known>,
    /// How to connect again when the connection is lost (PostgreSQL).
    pub(super) reconnect: Option<PgConnectOptions>,
    /// What ends a group that wrote events, where other replicas must be
    /// told of it (PostgreSQL: see `Tail::commit_sql`).
    commit_sql: Option<String>,
    /// When to finish the WAL's lap between groups (SQLite).
    lap: Option<Lap>,
}

/// A typed write: what it reads is declared up front, and it runs in memory
/// against a [`Tx`], so a group of them is read and written set-wise.
pub trait Command: Send + 'static {
    /// What the caller gets back; stored with the request_id for retries.
    type Output: Serialize + DeserializeOwned + Sequenced + Send + 'static;

    /// Declares what [`Command::apply`] will read.
    fn needs(&self, needs: &mut Needs);

    /// Applies the domain rules and stages the writes. An error leaves
    /// nothing behind.
    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Self::Output>;
}

/// Sequences above this are provisional: numbered before the group took the
/// log, made final at COMMIT. Real sequences never come near it.
pub(super) const PROVISIONAL: u64 = 1 << 62;

/// Makes a group's provisional sequences final once the committed head is
/// known: the group's events follow it in the order they were appended.
#[derive(Clone, Copy, Debug)]
pub struct Numbering {
    head: u64,
}

impl Numbering {
    /// The final number of `sequence` (unchanged if it is not provisional).
    pub fn of(&self, sequence: u64) -> u64 {
        if sequence > PROVISIONAL {
            self.head + (sequence - PROVISIONAL)
        } else {
            sequence
        }
    }
}

/// What a command answers, as far as it names sequences of the log: they are
/// provisional until the group commits (see [`Numbering`]).
pub trait Sequenced {
    fn renumber(&mut self, numbering: &Numbering);
}

impl Sequenced for Event {
    fn renumber(&mut self, n: &Numbering) {
        self.sequence = n.of(self.sequence);
        self.payload.renumber(n);
    }
}

impl Sequenced for EventPayload {
    fn renumber(&mut self, n: &Numbering) {
        match self {
            EventPayload::NoteEdited { note_sequence, .. } => *note_sequence = n.of(*note_sequence),
            EventPayload::VisibilityChanged {
                target: VisibilityTarget::Note { sequence },
                ..
            } => *sequence = n.of(*sequence),
            _ => {}
        }
    }
}

impl<T: Sequenced> Sequenced for Option<T> {
    fn renumber(&mut self, n: &Numbering) {
        if let Some(t) = self {
            t.renumber(n);
        }
    }
}

impl<A: Sequenced, B: Sequenced> Sequenced for (A, B) {
    fn renumber(&mut self, n: &Numbering) {
        self.0.renumber(n);
        self.1.renumber(n);
    }
}

/// Answers that name no sequence.
macro_rules! unsequenced {
    ($($t:ty),*) => {
        $(impl Sequenced for $t {
            fn renumber(&mut self, _: &Numbering) {}
        })*
    };
}
unsequenced!(
    (),
    i64,
    String,
    crate::domain::Incident,
    crate::domain::StatusUpdate,
    crate::domain::ActionItem,
    crate::domain::Postmortem,
    crate::domain::Component
);

/// How a group holds the component tree on PostgreSQL: shared by groups that
/// read components (a live one stays live to COMMIT), exclusive for one that
/// reads the tree to change it (names, cycles, what refers to a component).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TreeLock {
    #[default]
    None,
    Shared,
    Exclusive,
}

impl WriteCtx {
    /// The connection, inside the open transaction.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// The commit time of this group; every write in it is stamped with it.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Runs a command inside a job and writes what it staged at once, so the
    /// job's own statements after it see its writes. On PostgreSQL the
    /// sequences its answer names are provisional (made final only for
    /// queued commands' answers, at COMMIT): a job must not hand them out.
    pub async fn run<C: Command>(&mut self, command: &C) -> Result<C::Output> {
        let mut tx = Tx::new(self);
        let out = command.apply(&mut tx).await?;
        tx.keep();
        batch::flush(self).await?;
        Ok(out)
    }

    /// Commits the group: reads what the public form of its events depends
    /// on, takes the log, makes its numbers final (in its events and in what
    /// its commands answer), writes the request_id records and the events,
    /// encoded once in their wire form (components named as of each event),
    /// then COMMIT. Returns the events as committed, and the names the group
    /// gave components.
    async fn commit(
        &mut self,
        names: &ComponentNames,
        ran: &mut [Ran],
    ) -> Result<(Vec<Arc<LiveEvent>>, HashMap<ComponentId, String>)> {
        let mut renamed = HashMap::new();
        let mut events: Vec<pb::TimelineEvent> = {
            let before = names.read();
            self.events
                .iter()
                .map(|e| {
                    if let Some((id, name)) = named_by(e) {
                        renamed.insert(id, name.to_owned());
                    }
                    let names = Overlay {
                        base: &before,
                        changes: &renamed,
                    };
                    crate::api::convert::event(e, &names)
                })
                .collect()
        };
        // Before the log is taken, so that it is held for less: the group
        // holds every incident its events are about (SQLite: the database),
        // so what the public sees of them cannot change until it commits.
        // Provisional numbers do not matter here: a note has no row of its
        // own until it is corrected, so none of the group's is read.
        // What the events name is in the group's memory when only commands
        // ran in it: no statement for it then.
        let facts = match self.known.as_ref().and_then(|k| k.facts_of(&events)) {
            Some(facts) => {
                // Every test's groups check memory against the database.
                #[cfg(debug_assertions)]
                assert_eq!(
                    facts,
                    super::audience::facts_of(&mut self.conn, &events).await?,
                    "the facts a group holds differ from the database's"
                );
                facts
            }
            None => super::audience::facts_of(&mut self.conn, &events).await?,
        };
        replay_refused(&mut self.conn, ran).await?;
        let numbering = take_log(self).await?;
        let mut keys: Vec<_> = self.events.iter().map(|e| e.keys()).collect();
        if self.base == PROVISIONAL {
            for (pb, k) in events.iter_mut().zip(&mut keys) {
                renumber_wire(pb, &numbering);
                k.sequence = numbering.of(k.sequence);
            }
        }
        let mut records = Vec::new();
        for r in ran.iter_mut() {
            if let Ran::Command(entry) = r {
                entry.renumber(&numbering);
                if let Some(record) = entry.record() {
                    records.push(record?);
                }
            }
        }
        super::request_ids::record_all(&mut self.conn, &records, self.now).await?;
        let stored: Vec<EncodedEvent> = keys
            .into_iter()
            .zip(&events)
            .map(|(keys, pb)| EncodedEvent {
                keys,
                body: crate::wire::encode_reply(pb),
            })
            .collect();
        super::events::insert_all(&mut self.conn, &stored).await?;
        // The public form, once for every public subscriber.
        let public = super::audience::project(&events, &facts);
        if let Some(sql) = self.commit_sql.as_deref().filter(|_| !stored.is_empty()) {
            // Wakes the other replicas' tails once this commits; one round
            // trip for both while the group holds the log.
            db::script(&mut self.conn, sql).await?;
        } else {
            exec(&mut self.conn, "COMMIT").await?;
        }
        let live = stored
            .into_iter()
            .zip(public)
            .map(|(stored, public)| Arc::new(LiveEvent { stored, public }))
            .collect();
        Ok((live, renamed))
    }
}

/// A command refused by its rules whose request_id another group recorded
/// meanwhile answers with that record. On PostgreSQL the request_ids a group
/// reads first may still be in flight elsewhere (a retry sent to another
/// replica, or to another write connection, before the first answer came
/// back); a command that then finds the first one's effect (the component
/// it creates exists, the etag moved) is a retry, not a conflict. One
/// statement, only when such a command is in the group.
async fn replay_refused(conn: &mut Conn, ran: &mut [Ran]) -> Result<()> {
    if conn.dialect() == Dialect::Sqlite {
        // One writer: the group read every record there is.
        return Ok(());
    }
    let keys: Vec<RequestKey> = ran
        .iter()
        .filter_map(|r| match r {
            Ran::Command(entry) => entry.refused_key().cloned(),
            Ran::Job(..) => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&RequestKey> = keys.iter().collect();
    let found = super::request_ids::find_many(conn, &wanted).await?;
    for r in ran.iter_mut() {
        if let Ran::Command(entry) = r
            && let Some(key) = entry.refused_key()
            && let Some((_, (fingerprint, response))) = found.iter().find(|(k, _)| {
                k.caller == key.caller && k.method == key.method && k.request_id == key.request_id
            })
        {
            let (fingerprint, response) = (fingerprint.clone(), response.clone());
            entry.replay(&fingerprint, &response);
        }
    }
    Ok(())
}

/// Makes the sequences an event names in its wire form final.
fn renumber_wire(e: &mut pb::TimelineEvent, n: &Numbering) {
    use crate::proto::timeline_event::Payload;
    e.sequence = n.of(e.sequence);
    match &mut e.payload {
        Some(Payload::NoteEdited(p)) => p.note_sequence = n.of(p.note_sequence),
        Some(Payload::VisibilityChanged(p)) => p.note_sequence = n.of(p.note_sequence),
        _ => {}
    }
}

/// How many times the writer lets other threads run, at most, while a group
/// is much smaller than the one before (see `run`).
const LINGER_YIELDS: usize = 16;

type Done = Box<dyn FnOnce(Result<()>) + Send>;
type JobFuture<'c> = Pin<Box<dyn Future<Output = (bool, Done)> + Send + 'c>>;
type Job = Box<dyn for<'c> FnOnce(&'c mut WriteCtx) -> JobFuture<'c> + Send>;

/// A command waiting in the queue, with its request_id and its caller's reply.
trait Entry: Send {
    fn key(&self) -> Option<&RequestKey>;
    fn needs(&self, needs: &mut Needs);
    /// Applies the command; keeps the outcome for [`Entry::finish`]. Returns
    /// the response to record for the request_id, or `None` if it failed.
    fn apply<'t, 'a>(&'t mut self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Option<String>>;
    /// Answers from an earlier request's record instead of running.
    fn replay(&mut self, fingerprint: &[u8], response: &str);
    /// Makes the sequences its answer names final.
    fn renumber(&mut self, numbering: &Numbering);
    /// The request_id record to write for it: its key and its answer, if it
    /// ran (not replayed) and succeeded.
    fn record(&self) -> Option<Result<(RequestKey, String)>>;
    /// Its key, if it ran and its rules refused it.
    fn refused_key(&self) -> Option<&RequestKey>;
    /// Answers the caller once the group's COMMIT (or its failure) is known.
    fn finish(self: Box<Self>, commit: Result<()>);
}

struct Pending<C: Command> {
    command: C,
    key: Option<RequestKey>,
    outcome: Option<Result<C::Output>>,
    /// Whether `outcome` is its own (not replayed from a record).
    ran: bool,
    reply: oneshot::Sender<Result<C::Output>>,
}

impl<C: Command> Entry for Pending<C> {
    fn key(&self) -> Option<&RequestKey> {
        self.key.as_ref()
    }

    fn needs(&self, needs: &mut Needs) {
        self.command.needs(needs);
    }

    fn apply<'t, 'a>(&'t mut self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Option<String>> {
        Box::pin(async move {
            let outcome = self.command.apply(tx).await;
            self.ran = true;
            let response = match (&outcome, &self.key) {
                (Ok(out), Some(_)) => match serde_json::to_string(out) {
                    Ok(json) => Some(json),
                    Err(e) => {
                        self.outcome = Some(Err(e.into()));
                        return Ok(None);
                    }
                },
                (Ok(_), None) => Some(String::new()),
                (Err(_), _) => None,
            };
            self.outcome = Some(outcome);
            Ok(response)
        })
    }

    fn replay(&mut self, fingerprint: &[u8], response: &str) {
        self.ran = false;
        self.outcome = Some(match &self.key {
            Some(key) if key.fingerprint != fingerprint => {
                Err(Error::RequestIdReused(key.request_id.clone()))
            }
            _ => serde_json::from_str(response).map_err(Error::from),
        });
    }

    fn renumber(&mut self, numbering: &Numbering) {
        // A replayed answer is renumbered too: if it was recorded earlier in
        // this group, it is provisional like the one it copies.
        if let Some(Ok(out)) = &mut self.outcome {
            out.renumber(numbering);
        }
    }

    fn record(&self) -> Option<Result<(RequestKey, String)>> {
        match (&self.key, &self.outcome) {
            (Some(key), Some(Ok(out))) if self.ran => Some(
                serde_json::to_string(out)
                    .map(|json| (key.clone(), json))
                    .map_err(Error::from),
            ),
            _ => None,
        }
    }

    fn refused_key(&self) -> Option<&RequestKey> {
        match (&self.key, &self.outcome) {
            (Some(key), Some(Err(_))) if self.ran => Some(key),
            _ => None,
        }
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let answer = match (self.outcome, commit) {
            // A command refused by its own rules reports that, commit or not.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(out)), Ok(())) => Ok(out),
            // Its group failed, whether it ran before the failure or not.
            (_, Err(e)) => Err(e),
            (None, Ok(())) => Err(Error::Internal("the writer dropped a request".into())),
        };
        let _ = self.reply.send(answer);
    }
}

enum Item {
    Job(Job),
    Command(Box<dyn Entry>),
}

enum Msg {
    Item(Item),
    Close(oneshot::Sender<()>),
}

/// How committed groups reach the hub.
pub(super) enum Publisher {
    /// The only writer of the log (SQLite): straight to the hub.
    Direct,
    /// One of several (PostgreSQL): through the tail, in log order.
    Tail(Tail),
}

/// The connections the writer writes on.
pub(super) enum WriteConnections {
    /// SQLite's one, already open: its I/O runs on a thread of its own
    /// (sqlx's worker), whatever runtime waits on it. `lap`: when the
    /// checkpointer asks the writer to finish the WAL's lap (none: the WAL
    /// is left to the checkpointer).
    Sqlite { conn: Conn, lap: Option<Lap> },
    /// Opened on the writer's thread, so that their sockets are driven by
    /// the runtime that waits on them; reopened with the same options when
    /// one is lost.
    Postgres {
        opts: Box<PgConnectOptions>,
        count: usize,
    },
}

impl WriteConnections {
    /// How many the writer writes on.
    fn count(&self) -> usize {
        match self {
            WriteConnections::Sqlite { .. } => 1,
            WriteConnections::Postgres { count, .. } => (*count).max(1),
        }
    }

    /// How to open one again when it is lost.
    fn reconnect(&self) -> Option<PgConnectOptions> {
        match self {
            WriteConnections::Sqlite { .. } => None,
            WriteConnections::Postgres { opts, .. } => Some(PgConnectOptions::clone(opts)),
        }
    }

    /// When the WAL's lap is to be finished (SQLite).
    fn lap(&self) -> Option<Lap> {
        match self {
            WriteConnections::Sqlite { lap, .. } => lap.clone(),
            WriteConnections::Postgres { .. } => None,
        }
    }

    async fn open(self) -> Result<Vec<Conn>> {
        let count = self.count();
        match self {
            WriteConnections::Sqlite { conn, .. } => Ok(vec![conn]),
            WriteConnections::Postgres { opts, .. } => {
                let mut conns = Vec::with_capacity(count);
                for _ in 0..count {
                    conns.push(PgConnection::connect_with(&opts).await?.into());
                }
                Ok(conns)
            }
        }
    }
}

/// Handle to the writer, which runs on a thread of its own.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Msg>,
    /// Statements run on each write connection since it opened.
    statements: Arc<[Arc<AtomicU64>]>,
}

impl Writer {
    /// Starts the writer on a thread of its own: one group in flight per
    /// connection, the groups drawn from one queue. SQLite gets one
    /// connection (its write lock admits one transaction at a time);
    /// PostgreSQL may get several, as its groups overlap until they take the
    /// log. Returns once the connections are open.
    ///
    /// Why a thread: a group is a chain of statements, each a round trip
    /// (to SQLite's worker thread, or to PostgreSQL), and nothing else runs
    /// in the writer meanwhile. On the shared runtime each reply woke the
    /// writer at the back of a run queue full of request tasks, so every
    /// statement waited a turn of it; on its own thread the OS runs it as
    /// soon as the reply is there (docs/performance.md has the figures).
    pub(super) async fn start(
        conns: WriteConnections,
        max_batch: usize,
        cached_incidents: usize,
        fanout: Fanout,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let counted: Arc<[Arc<AtomicU64>]> = (0..conns.count())
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let statements = Arc::clone(&counted);
        let (ready, opened) = oneshot::channel::<Result<()>>();
        let thread = move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(Error::Internal(format!(
                        "could not start the writer's runtime: {e}"
                    ))));
                    return;
                }
            };
            rt.block_on(async move {
                let reconnect = conns.reconnect();
                let lap = conns.lap();
                let opened = match conns.open().await {
                    Ok(opened) => opened,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let head = *fanout.head.borrow();
                let commit_sql = match &fanout.publisher {
                    Publisher::Direct => None,
                    Publisher::Tail(tail) => Some(tail.commit_sql()),
                };
                let ctxs = opened
                    .into_iter()
                    .zip(statements.iter())
                    .map(|(mut conn, statements)| {
                        conn.count_statements(Arc::clone(statements));
                        let ctx = WriteCtx {
                            reconnect: reconnect.clone(),
                            conn,
                            now: chrono::Utc::now(),
                            head,
                            base: 0,
                            events: Vec::new(),
                            tree: TreeLock::None,
                            commit_sql: commit_sql.clone(),
                            working: Working::default(),
                            committed: Committed::new(cached_incidents),
                            known: None,
                            lap: lap.clone(),
                        };
                        (ctx, Arc::clone(statements))
                    })
                    .collect();
                let _ = ready.send(Ok(()));
                run(ctxs, rx, max_batch.max(1), Arc::new(fanout)).await;
            });
        };
        std::thread::Builder::new()
            .name("incidentd-writer".into())
            .spawn(thread)
            .map_err(|e| Error::Internal(format!("could not start the writer's thread: {e}")))?;
        opened
            .await
            .map_err(|_| Error::Internal("the writer's thread ended as it started".into()))??;
        Ok(Writer {
            tx,
            statements: counted,
        })
    }

    /// Statements run on the write connections since they opened.
    pub(super) fn statements(&self) -> u64 {
        self.statements
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether the writer has stopped taking requests (the store closed).
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Requests waiting for the writer.
    pub(super) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub(super) async fn submit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut WriteCtx) -> super::WriteFuture<'c, T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |ctx| {
            Box::pin(async move {
                let result = f(ctx).await;
                let ok = result.is_ok();
                let done: Done = Box::new(move |commit: Result<()>| {
                    let _ = tx.send(commit.and(result));
                });
                (ok, done)
            })
        });
        self.send(Item::Job(job)).await?;
        rx.await
            .map_err(|_| Error::Internal("the writer dropped a request".into()))?
    }

    pub(super) async fn execute<C: Command>(
        &self,
        key: Option<RequestKey>,
        command: C,
    ) -> Result<C::Output> {
        let (reply, rx) = oneshot::channel();
        self.send(Item::Command(Box::new(Pending {
            command,
            key,
            outcome: None,
            ran: false,
            reply,
        })))
        .await?;
        rx.await
            .map_err(|_| Error::Internal("the writer dropped a request".into()))?
    }

    async fn send(&self, item: Item) -> Result<()> {
        metrics::gauge!(crate::metrics::WRITER_QUEUE).set(self.queued() as f64);
        self.tx
            .send(Msg::Item(item))
            .await
            .map_err(|_| Error::Internal("the writer has stopped".into()))
    }

    pub(super) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Runs one group at a time on each connection until the writer closes,
/// then answers the close.
async fn run(
    ctxs: Vec<(WriteCtx, Arc<AtomicU64>)>,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    fanout: Arc<Fanout>,
) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let workers: Vec<_> = ctxs
        .into_iter()
        .map(|(ctx, statements)| {
            tokio::spawn(work(
                ctx,
                statements,
                Arc::clone(&rx),
                max_batch,
                Arc::clone(&fanout),
            ))
        })
        .collect();
    let mut acks = Vec::new();
    for w in workers {
        match w.await {
            Ok(Some(ack)) => acks.push(ack),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "a write connection's loop ended abnormally"),
        }
    }
    for ack in acks {
        let _ = ack.send(());
    }
}

/// One connection's loop: takes a group from the queue, runs and commits
/// it, and again. Returns the close request if it was the one to receive it.
async fn work(
    mut ctx: WriteCtx,
    statements: Arc<AtomicU64>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Msg>>>,
    max_batch: usize,
    fanout: Arc<Fanout>,
) -> Option<oneshot::Sender<()>> {
    let mut closing: Option<oneshot::Sender<()>> = None;
    let mut last_group = 0;
    while closing.is_none() {
        // The queue is held while a group is taken from it, not while the
        // group runs: the next connection takes the next group meanwhile.
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { break };
            let mut batch = Vec::with_capacity(16);
            match first {
                Msg::Item(i) => batch.push(i),
                Msg::Close(ack) => closing = Some(ack),
            }
            // Everything that queued up while the previous group was
            // committing joins this one: that is what makes group commit pay
            // off.
            let mut lingered = 0;
            while batch.len() < max_batch && closing.is_none() {
                match rx.try_recv() {
                    Ok(Msg::Item(i)) => batch.push(i),
                    Ok(Msg::Close(ack)) => closing = Some(ack),
                    Err(_) if batch.len() * 2 < last_group && lingered < LINGER_YIELDS => {
                        // The callers the last group answered are sending
                        // their next writes: let them in rather than start a
                        // small group they would all queue behind.
                        // They run on the request threads, not this one:
                        // the OS yield gives them the core.
                        lingered += 1;
                        std::thread::yield_now();
                    }
                    Err(_) => break,
                }
            }
            if closing.is_some() {
                // The other connections finish what is queued, then stop.
                rx.close();
            }
            batch
        };
        last_group = batch.len();
        if batch.is_empty() {
            continue;
        }
        let before = statements.load(Ordering::Relaxed);
        metrics::histogram!(crate::metrics::WRITER_BATCH).record(batch.len() as f64);
        let retry = run_batch(&mut ctx, batch, &fanout, true).await;
        // A group whose statement failed: its commands again, one per group
        // (a lone command too, once: on PostgreSQL its failure may have been
        // another group's doing, a request_id recorded meanwhile or a
        // deadlock).
        for entry in retry {
            run_batch(&mut ctx, vec![Item::Command(entry)], &fanout, false).await;
        }
        metrics::histogram!(crate::metrics::WRITER_GROUP_STATEMENTS)
            .record(statements.load(Ordering::Relaxed).saturating_sub(before) as f64);
        if let Some(lap) = &ctx.lap
            && let Err(e) = lap.finish(&mut ctx.conn).await
        {
            tracing::warn!(error = %e, "the writer could not checkpoint the WAL");
        }
    }
    let _ = ctx.conn.close().await;
    closing
}

/// Where committed groups go.
pub(super) struct Fanout {
    pub(super) head: watch::Sender<u64>,
    pub(super) hub: Hub,
    pub(super) publisher: Publisher,
}

impl Fanout {
    /// Publishes a committed group; `conn` (the connection that committed
    /// it) reads what other replicas committed before it, if the tail has
    /// not yet.
    async fn publish(
        &self,
        events: Vec<Arc<LiveEvent>>,
        renamed: HashMap<ComponentId, String>,
        conn: &mut Conn,
    ) {
        match &self.publisher {
            Publisher::Direct => {
                // Before the events are published: a reader told of them
                // names the components as they now are.
                self.hub.components().apply(renamed);
                if let Some(last) = events.last() {
                    self.head.send_replace(last.stored.keys.sequence);
                    self.hub.publish(&events);
                }
            }
            Publisher::Tail(tail) => tail.publish_own(events, renamed, conn).await,
        }
    }
}

/// How a request of a group ended, to answer it after COMMIT.
enum Ran {
    Job(bool, Done),
    Command(Box<dyn Entry>),
}

/// Runs and commits one group. If a statement fails in a group of several
/// requests, its commands are handed back to be retried one at a time (jobs
/// cannot be run twice: they are answered with the error).
async fn run_batch(
    ctx: &mut WriteCtx,
    batch: Vec<Item>,
    fanout: &Fanout,
    first_try: bool,
) -> Vec<Box<dyn Entry>> {
    let hub = &fanout.hub;
    ctx.now = chrono::Utc::now();
    ctx.events.clear();
    ctx.working = Working::default();
    ctx.committed.rolled_back();
    ctx.known = Some(Known::default());
    let alone = batch.len() == 1;
    if let Err(e) = begin(ctx).await {
        tracing::error!(error = %e, "could not begin a write transaction");
        let _ = exec(&mut ctx.conn, "ROLLBACK").await;
        for item in batch {
            // A job dropped unrun answers its caller with an internal error.
            if let Item::Command(entry) = item {
                entry.finish(Err(group_failed(&e)));
            }
        }
        return Vec::new();
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
    let mut broken: Option<Error> = None;
    let mut items = batch.into_iter().peekable();
    while let Some(item) = items.next() {
        if broken.is_some() {
            // The transaction is unusable: jobs are dropped unrun (which
            // answers their callers with an internal error), commands retried.
            if let Item::Command(entry) = item {
                ran.push(Ran::Command(entry));
            }
            continue;
        }
        match item {
            Item::Command(first) => {
                // The run of commands up to the next job shares one read and one write.
                let mut run = vec![first];
                while let Some(Item::Command(_)) = items.peek() {
                    if let Some(Item::Command(next)) = items.next() {
                        run.push(next);
                    }
                }
                if let Err(e) = run_commands(ctx, &mut run).await {
                    broken = Some(e);
                }
                ran.extend(run.into_iter().map(Ran::Command));
            }
            Item::Job(job) if alone => {
                ctx.known = None;
                // A lone job needs no savepoint: if it fails, the whole
                // transaction is rolled back, which is the same for one job.
                let (ok, finish) = job(ctx).await;
                if !ok {
                    ctx.events.clear();
                    ctx.committed.rolled_back();
                    let end = exec(&mut ctx.conn, "ROLLBACK").await;
                    finish(Ok(()));
                    if let Err(e) = end {
                        tracing::error!(error = %e, "rollback failed");
                    }
                    return Vec::new();
                }
                ran.push(Ran::Job(ok, finish));
            }
            Item::Job(job) => {
                ctx.known = None;
                if let Err(e) = exec(&mut ctx.conn, "SAVEPOINT job").await {
                    broken = Some(e);
                    continue;
                }
                let mark = ctx.events.len();
                let (ok, finish) = job(ctx).await;
                ctx.working = Working::default();
                let end = if ok {
                    exec(&mut ctx.conn, "RELEASE job").await
                } else {
                    ctx.events.truncate(mark);
                    ctx.committed.forget_all();
                    // ROLLBACK TO releases the locks taken since the
                    // savepoint, the component tree's among them.
                    ctx.tree = TreeLock::None;
                    match exec(&mut ctx.conn, "ROLLBACK TO job").await {
                        Ok(()) => exec(&mut ctx.conn, "RELEASE job").await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = end {
                    broken = Some(e);
                }
                ran.push(Ran::Job(ok, finish));
            }
        }
    }
    // Until the group is published, the incident cache serves no incident
    // it may change: it may be committed and not yet forgotten.
    let committing = hub.incidents().committing(
        ctx.events
            .iter()
            .map(|e| (e.incident.as_ref().map(|s| s.id), e.kind)),
    );
    let commit = match broken {
        Some(e) => Err(e),
        None => ctx.commit(hub.components(), &mut ran).await,
    };
    match commit {
        Ok((published, renamed)) => {
            ctx.committed.committed();
            if let Some(last) = published.last() {
                ctx.head = last.stored.keys.sequence;
            }
            // Publish before answering: a client that sees its write acknowledged
            // and then subscribes from now must not see the write again, and one
            // subscribed before must see it.
            fanout.publish(published, renamed, &mut ctx.conn).await;
            drop(committing);
            for r in ran {
                match r {
                    Ran::Job(_, finish) => finish(Ok(())),
                    Ran::Command(entry) => entry.finish(Ok(())),
                }
            }
            Vec::new()
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; rolling back the group");
            let _ = exec(&mut ctx.conn, "ROLLBACK").await;
            // A COMMIT whose answer was lost may have committed: its
            // commands, retried, are answered from their request_id records,
            // and the incident cache must not keep what they changed.
            for e in &ctx.events {
                hub.incidents().forget(&e.keys());
            }
            ctx.events.clear();
            ctx.working = Working::default();
            ctx.committed.rolled_back();
            let mut retry = Vec::new();
            for r in ran {
                match r {
                    // A job that failed on its own reports its own error.
                    Ran::Job(true, finish) => finish(Err(group_failed(&e))),
                    Ran::Job(false, finish) => finish(Ok(())),
                    Ran::Command(entry) if !alone || first_try => retry.push(entry),
                    Ran::Command(entry) => entry.finish(Err(group_failed(&e))),
                }
            }
            retry
        }
    }
}

/// What a caller is told when its group could not begin or commit: a lost
/// database connection stays UNAVAILABLE (retry, under the same request_id),
/// anything else is internal.
fn group_failed(e: &Error) -> Error {
    match e {
        Error::DatabaseUnavailable(detail) => Error::DatabaseUnavailable(detail.clone()),
        e => Error::Internal(format!("commit failed: {e}")),
    }
}

/// Runs consecutive commands set-wise: one read of what they need, each
/// applied in memory (a refused one leaves nothing), one write of the rest.
async fn run_commands(ctx: &mut WriteCtx, run: &mut [Box<dyn Entry>]) -> Result<()> {
    let mut needs = Needs::default();
    for entry in run.iter() {
        entry.needs(&mut needs);
    }
    let keys: Vec<&RequestKey> = run.iter().filter_map(|e| e.key()).collect();
    batch::prefetch(ctx, &needs, &keys).await?;
    for entry in run.iter_mut() {
        if let Some(key) = entry.key()
            && let Some((fingerprint, response)) = ctx.working.request_id(key).cloned()
        {
            entry.replay(&fingerprint, &response);
            continue;
        }
        let mut tx = Tx::new(ctx);
        let response = entry.apply(&mut tx).await?;
        if let Some(response) = response {
            tx.keep();
            if let Some(key) = entry.key() {
                ctx.working.record_request_id(key.clone(), response);
            }
        }
    }
    // Also for a run that wrote no rows (notes are events only): it still
    // read the incidents its events are about.
    batch::flush(ctx).await
}

async fn exec(conn: &mut Conn, sql: &'static str) -> Result<()> {
    db::query(sql).execute(conn).await?;
    Ok(())
}

/// Opens a group's transaction.
///
/// SQLite: BEGIN IMMEDIATE takes the database's one write lock, and this
/// process is the only writer: the group holds the log from here, and the
/// head is as this writer left it, so events are numbered as appended.
///
/// PostgreSQL: a plain BEGIN. The group runs beside the other replicas'
/// groups; what it changes it reads under row locks held to COMMIT (see
/// `batch`), and its events are numbered provisionally until [`take_log`].
async fn begin(ctx: &mut WriteCtx) -> Result<()> {
    ctx.tree = TreeLock::None;
    match ctx.conn.dialect() {
        Dialect::Sqlite => {
            ctx.base = ctx.head;
            exec(&mut ctx.conn, "BEGIN IMMEDIATE").await
        }
        Dialect::Postgres => {
            ctx.base = PROVISIONAL;
            if let Err(e) = exec(&mut ctx.conn, "BEGIN").await {
                // The connection was lost (a failover, a terminated backend):
                // this group goes on a new one.
                let Some(opts) = &ctx.reconnect else {
                    return Err(e);
                };
                tracing::warn!(error = %e, "the write connection failed; reconnecting");
                ctx.conn
                    .replace(PgConnection::connect_with(opts).await?.into());
                exec(&mut ctx.conn, "BEGIN").await?;
            }
            Ok(())
        }
    }
}

/// Takes the log for the group's COMMIT and tells how its events are
/// numbered.
///
/// PostgreSQL: one statement takes the group's numbers from the `log_head`
/// row. The row lock it takes is held to COMMIT, so groups of every replica
/// append to the log one at a time in sequence order: the head it returns is
/// the last committed sequence (a group waiting for the lock reads the row as
/// the one before it committed it), and no reader can see a sequence before
/// the ones below it are visible (PostgreSQL makes a commit visible before it
/// releases its locks). Taken last, it is held only for the statements that
/// write the log, not while the group reads and runs its commands. A group
/// with no events takes nothing. The group holds its other locks (rows,
/// numbers, the component tree) before this one and waits for nothing once
/// it has it, so it is never part of a deadlock.
async fn take_log(ctx: &mut WriteCtx) -> Result<Numbering> {
    if ctx.base != PROVISIONAL || ctx.events.is_empty() {
        return Ok(Numbering { head: ctx.head });
    }
    let taken = ctx.events.len() as i64;
    // `greatest` heals a head left behind by a writer that appended without
    // it (a replica of an older version, still running during an upgrade):
    // its events would otherwise collide with every group's.
    let head: i64 = db::query_scalar(
        "UPDATE log_head
         SET sequence = greatest(sequence, (SELECT coalesce(max(sequence), 0) FROM events)) + $1
         WHERE id = 1 RETURNING sequence - $1",
    )
    .bind(taken)
    .fetch_one(&mut ctx.conn)
    .await?;
    ctx.head = head as u64;
    Ok(Numbering { head: ctx.head })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::NewStatusUpdate;
    use crate::domain::{Incident, IncidentId, IncidentStatus, Visibility};
    use crate::service::incidents::PostStatusUpdate;
    use crate::service::timeline::AddNote;
    use crate::store::Store;
    use crate::store::testing::{count_rows, declaration, hold_writer, open, until_queued};

    async fn declare(store: &Store) -> Incident {
        store.execute(None, declaration(vec![])).await.unwrap()
    }

    /// Runs `sql` on the writer's connection, where the temporary tables and
    /// triggers a test plants live.
    async fn on_writer(store: &Store, sql: String) {
        store
            .write(move |ctx| {
                Box::pin(async move {
                    crate::store::db::query(sql).execute(ctx.conn()).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    fn note(incident_id: IncidentId, text: &str) -> AddNote {
        AddNote {
            actor: "ana".into(),
            incident_id,
            text: text.into(),
            visibility: Visibility::Internal,
            occur_time: None,
        }
    }

    fn post(id: IncidentId, n: usize) -> PostStatusUpdate {
        PostStatusUpdate {
            actor: "ana".into(),
            id,
            new: NewStatusUpdate {
                status: None,
                message: format!("update {n}"),
                component_impacts: Vec::new(),
                next_update_time: None,
                visibility: Visibility::Public,
            },
            refs: Vec::new(),
            occur_time: None,
        }
    }

    /// Statements run by one group of `n` status updates (and the lone group
    /// of the job that held the writer, the same for every `n`).
    async fn statements_for_group_of(n: usize) -> u64 {
        let (_dir, store) = open().await;
        let incidents = [declare(&store).await, declare(&store).await];
        let (release, held) = hold_writer(&store).await;
        let before = store.statements_written();
        let mut posts = Vec::new();
        for i in 0..n {
            let (s, id) = (store.clone(), incidents[i % 2].id);
            posts.push(tokio::spawn(
                async move { s.execute(None, post(id, i)).await },
            ));
        }
        until_queued(&store, n).await;
        release.send(()).unwrap();
        held.await.unwrap();
        for p in posts {
            p.await.unwrap().unwrap();
        }
        let statements = store.statements_written() - before;
        let mut conn = store.reader().await.unwrap();
        let stored = count_rows(&mut conn, "status_updates").await;
        assert_eq!(stored, n as i64, "every update of the group is stored");
        drop(conn);
        store.close().await;
        statements
    }

    #[tokio::test]
    async fn the_statements_of_a_group_do_not_grow_with_the_group() {
        let two = statements_for_group_of(2).await;
        let two_hundred = statements_for_group_of(200).await;
        assert_eq!(
            two, two_hundred,
            "a group of 200 status updates runs the statements of a group of 2"
        );
        // BEGIN, the incidents read, two multi-row writes, the events, COMMIT,
        // and the holding job's own BEGIN and COMMIT.
        assert!(two <= 10, "{two} statements");
    }

    /// Asserts the log's sequences run from 1 without a gap (`gap_of`: whose
    /// gap it would be); returns them.
    async fn assert_log_has_no_gap(conn: &mut crate::store::db::Conn, gap_of: &str) -> Vec<i64> {
        let sequences: Vec<i64> =
            crate::store::db::query_scalar("SELECT sequence FROM events ORDER BY sequence")
                .fetch_all(conn)
                .await
                .unwrap();
        assert_eq!(
            sequences,
            (1..=sequences.len() as i64).collect::<Vec<_>>(),
            "the log has no gap where {gap_of} was"
        );
        sequences
    }

    /// Stages an incident under a reference number already taken: it passes
    /// every rule in memory and fails only in SQL (UNIQUE).
    struct DuplicateNumber(Incident);

    impl Command for DuplicateNumber {
        type Output = ();

        fn needs(&self, _: &mut Needs) {}

        fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, ()> {
            Box::pin(async move {
                let mut copy = self.0.clone();
                copy.id = IncidentId::generate();
                tx.put_incident(copy);
                Ok(())
            })
        }
    }

    /// The log's rows are inserted OR ROLLBACK on SQLite: a failure there
    /// ends the whole transaction inside SQLite, before the writer's own
    /// ROLLBACK. The group's commands are retried one by one, the one the log
    /// refuses fails alone, and the writer goes on.
    #[tokio::test]
    async fn a_group_whose_log_insert_ends_the_transaction_is_retried_one_by_one() {
        let (_dir, store) = open().await;
        let (kept, refused) = (declare(&store).await, declare(&store).await);
        on_writer(
            &store,
            format!(
                "CREATE TEMP TRIGGER refuse_log BEFORE INSERT ON events \
                 WHEN NEW.incident_id = '{}' \
                 BEGIN SELECT RAISE(ROLLBACK, 'the log refuses it'); END",
                refused.id
            ),
        )
        .await;
        let (release, held) = hold_writer(&store).await;
        let mut posts = Vec::new();
        for (n, id) in [kept.id, refused.id, kept.id].into_iter().enumerate() {
            let s = store.clone();
            posts.push(tokio::spawn(
                async move { s.execute(None, post(id, n)).await },
            ));
            until_queued(&store, n + 1).await;
        }
        release.send(()).unwrap();
        held.await.unwrap();
        let mut answers = Vec::new();
        for p in posts {
            answers.push(p.await.unwrap());
        }
        assert!(answers[0].is_ok(), "{:?}", answers[0]);
        assert!(answers[1].is_err(), "the refused update fails");
        assert!(answers[2].is_ok(), "{:?}", answers[2]);
        let after = store.execute(None, post(kept.id, 3)).await;
        assert!(after.is_ok(), "the writer goes on: {after:?}");
        let mut conn = store.reader().await.unwrap();
        let stored: Vec<String> =
            crate::store::db::query_scalar("SELECT incident_id FROM status_updates")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            stored,
            vec![kept.id.to_string(); 3],
            "nothing of the refused one"
        );
        assert_log_has_no_gap(&mut conn, "the refused update").await;
        drop(conn);
        store.close().await;
    }

    #[tokio::test]
    async fn a_command_whose_statement_fails_fails_alone() {
        let (_dir, store) = open().await;
        let incident = declare(&store).await;
        let (release, held) = hold_writer(&store).await;
        let s = store.clone();
        let good = tokio::spawn(async move { s.execute(None, post(incident.id, 1)).await });
        until_queued(&store, 1).await;
        let s = store.clone();
        let bad_incident = incident.clone();
        let bad = tokio::spawn(async move { s.execute(None, DuplicateNumber(bad_incident)).await });
        until_queued(&store, 2).await;
        let s = store.clone();
        let later =
            tokio::spawn(async move { s.execute(None, note(incident.id, "still here")).await });
        until_queued(&store, 3).await;
        release.send(()).unwrap();
        held.await.unwrap();
        let (update, _) = good.await.unwrap().expect("the update before it commits");
        assert!(bad.await.unwrap().is_err(), "the bad command fails");
        let later = later.await.unwrap().expect("the note after it commits");
        assert!(later.sequence > 0);
        let mut conn = store.reader().await.unwrap();
        assert_eq!(
            count_rows(&mut conn, "incidents").await,
            1,
            "nothing of the bad command is stored"
        );
        let updates: Vec<String> = crate::store::db::query_scalar("SELECT id FROM status_updates")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(updates, vec![update.id.to_string()]);
        let sequences = assert_log_has_no_gap(&mut conn, "the bad command").await;
        assert_eq!(*sequences.last().unwrap() as u64, later.sequence);
        drop(conn);
        store.close().await;
    }

    /// Makes the COMMIT of any group that logs an event of `incident` fail,
    /// on the writer's connection only: a trigger breaks a deferred foreign
    /// key, which SQLite checks at COMMIT and then leaves the transaction
    /// open.
    async fn fail_commits_of(store: &Store, incident: IncidentId) {
        for sql in [
            "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)".to_owned(),
            "CREATE TEMP TABLE child (parent INTEGER \
             REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
                .to_owned(),
            format!(
                "CREATE TEMP TRIGGER fail_commit AFTER INSERT ON events \
                 WHEN NEW.incident_id = '{incident}' \
                 BEGIN INSERT INTO child VALUES (1); END"
            ),
        ] {
            on_writer(store, sql).await;
        }
    }

    /// A group whose COMMIT fails is rolled back and its commands retried one
    /// per group: the one whose COMMIT fails again fails alone, the others
    /// commit, numbered without a gap, and what the writer remembers of the
    /// incident is as stored, not as the failed group left it.
    #[tokio::test]
    async fn a_group_whose_commit_fails_is_retried_one_by_one() {
        let (_dir, store) = open().await;
        let (failing, other) = (declare(&store).await, declare(&store).await);
        fail_commits_of(&store, failing.id).await;
        let (release, held) = hold_writer(&store).await;
        let mut doomed = post(failing.id, 0);
        doomed.new.status = Some(IncidentStatus::Identified);
        let s = store.clone();
        let doomed = tokio::spawn(async move { s.execute(None, doomed).await });
        until_queued(&store, 1).await;
        let mut notes = Vec::new();
        for (n, text) in ["one", "two"].into_iter().enumerate() {
            let s = store.clone();
            notes.push(tokio::spawn(async move {
                s.execute(None, note(other.id, text)).await
            }));
            until_queued(&store, n + 2).await;
        }
        release.send(()).unwrap();
        held.await.unwrap();
        match doomed.await.unwrap() {
            Err(Error::Internal(m)) if m.contains("FOREIGN KEY") => {}
            other => panic!("its COMMIT fails each time, on the foreign key: {other:?}"),
        }
        let mut sequences = Vec::new();
        for added in notes {
            sequences.push(added.await.unwrap().expect("the notes commit").sequence);
        }
        assert_eq!(sequences, vec![3, 4], "numbered after the declarations");
        let mut conn = store.reader().await.unwrap();
        assert_eq!(
            assert_log_has_no_gap(&mut conn, "the failed group")
                .await
                .len(),
            4
        );
        assert_eq!(
            count_rows(&mut conn, "status_updates").await,
            0,
            "nothing of the failed update"
        );
        drop(conn);
        on_writer(&store, "DROP TRIGGER temp.fail_commit".into()).await;
        let (_, after) = store
            .execute(None, post(failing.id, 1))
            .await
            .expect("the incident takes updates again");
        assert_eq!(
            after.status,
            IncidentStatus::Investigating,
            "the failed group's status is not remembered"
        );
        let mut conn = store.reader().await.unwrap();
        let stored = crate::store::incidents::load(&mut conn, failing.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after, stored, "answered as stored");
        drop(conn);
        store.close().await;
    }
}
