//! The single writer: owns the write connection and commits concurrent write
//! requests in groups: many requests, one transaction, one fsync. Each request
//! runs inside its own savepoint, so one that fails is rolled back alone. The
//! group's events are numbered as they are appended and written in one
//! statement just before COMMIT: the log is the writer's alone, so the next
//! sequence is always the committed head plus what the group holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};

use crate::domain::{Event, NewEvent, Time};
use crate::error::{Error, Result};
use crate::hub::Hub;

/// The future a write job returns.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// What a write job sees: the write connection inside the group's transaction,
/// the group's clock, and the event log to append to.
pub struct WriteCtx {
    conn: SqliteConnection,
    now: Time,
    /// Sequence of the last committed event.
    head: u64,
    /// This group's events, in sequence order from `head + 1`.
    events: Vec<Arc<Event>>,
}

impl WriteCtx {
    /// The connection, inside the open transaction.
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// The commit time of this group; every write in it is stamped with it.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Appends an event to the group, committed with the change it records.
    /// The same allocation is written, published and returned.
    pub async fn append(&mut self, event: NewEvent) -> Result<Arc<Event>> {
        let event = Event {
            sequence: self.head + self.events.len() as u64 + 1,
            kind: event.payload.kind(),
            incident: event.incident,
            event_time: self.now,
            occur_time: event.occur_time,
            actor: event.actor,
            payload: event.payload,
        };
        let event = Arc::new(event);
        self.events.push(Arc::clone(&event));
        Ok(event)
    }

    /// Commits the group: its events first, then COMMIT.
    async fn commit(&mut self) -> Result<()> {
        super::events::insert_all(&mut self.conn, &self.events).await?;
        exec(&mut self.conn, "COMMIT").await
    }
}

type Done = Box<dyn FnOnce(Result<()>) + Send>;
type JobFuture<'c> = Pin<Box<dyn Future<Output = (bool, Done)> + Send + 'c>>;
type Job = Box<dyn for<'c> FnOnce(&'c mut WriteCtx) -> JobFuture<'c> + Send>;

enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    pub(super) fn spawn(
        conn: SqliteConnection,
        max_batch: usize,
        head: watch::Sender<u64>,
        hub: Hub,
    ) -> Self {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);

        tokio::spawn(run(conn, rx, max_batch.max(1), head, hub));
        Writer { tx }
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
        metrics::gauge!(crate::metrics::WRITER_QUEUE)
            .set((self.tx.max_capacity() - self.tx.capacity()) as f64);
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::Internal("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("the writer dropped a request".into()))?
    }

    pub(super) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    conn: SqliteConnection,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    head: watch::Sender<u64>,
    hub: Hub,
) {
    let mut ctx = WriteCtx {
        conn,
        now: chrono::Utc::now(),
        head: *head.borrow(),
        events: Vec::new(),
    };
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::with_capacity(16);
        match first {
            Msg::Job(j) => batch.push(j),
            Msg::Close(ack) => closing = Some(ack),
        }
        // Everything that queued up while the previous group was committing
        // joins this one: that is what makes group commit pay off.
        while batch.len() < max_batch && closing.is_none() {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Close(ack)) => closing = Some(ack),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        run_batch(&mut ctx, batch, &head, &hub).await;
    }
    rx.close();
    let _ = ctx.conn.close().await;
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

async fn run_batch(ctx: &mut WriteCtx, batch: Vec<Job>, head: &watch::Sender<u64>, hub: &Hub) {
    ctx.now = chrono::Utc::now();
    ctx.events.clear();
    metrics::histogram!(crate::metrics::WRITER_BATCH).record(batch.len() as f64);
    let mut done = Vec::with_capacity(batch.len());
    if let Err(e) = exec(&mut ctx.conn, "BEGIN IMMEDIATE").await {
        // Dropping the jobs unrun answers each caller with an internal error.
        tracing::error!(error = %e, "could not begin a write transaction");
        return;
    }
    let mut broken: Option<Error> = None;
    // A lone job needs no savepoint: if it fails, the whole transaction is
    // rolled back, which is the same thing for one job and two statements less.
    if batch.len() == 1 {
        if let Some(job) = batch.into_iter().next() {
            let (ok, finish) = job(ctx).await;
            let end = if ok {
                ctx.commit().await
            } else {
                ctx.events.clear();
                exec(&mut ctx.conn, "ROLLBACK").await
            };
            finish_group(ctx, vec![(ok, finish)], end, head, hub).await;
        }
        return;
    }
    for job in batch {
        if broken.is_some() {
            // The transaction is unusable: the rest are dropped unrun, which
            // answers their callers with an internal error.
            continue;
        }
        if let Err(e) = exec(&mut ctx.conn, "SAVEPOINT job").await {
            broken = Some(e);
            continue;
        }
        let mark = ctx.events.len();
        let (ok, finish) = job(ctx).await;
        let end = if ok {
            exec(&mut ctx.conn, "RELEASE job").await
        } else {
            ctx.events.truncate(mark);
            match exec(&mut ctx.conn, "ROLLBACK TO job").await {
                Ok(()) => exec(&mut ctx.conn, "RELEASE job").await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            broken = Some(e);
        }
        done.push((ok, finish));
    }
    let commit = match broken {
        Some(e) => Err(e),
        None => ctx.commit().await,
    };
    finish_group(ctx, done, commit, head, hub).await;
}

/// Answers a group's callers once its COMMIT (or rollback) is known, and
/// publishes its events if it committed.
async fn finish_group(
    ctx: &mut WriteCtx,
    done: Vec<(bool, Done)>,
    commit: Result<()>,
    head: &watch::Sender<u64>,
    hub: &Hub,
) {
    match commit {
        Ok(()) => {
            // Publish before answering: a client that sees its write acknowledged
            // and then subscribes from now must not see the write again, and one
            // subscribed before must see it.
            if let Some(last) = ctx.events.last() {
                ctx.head = last.sequence;
                head.send_replace(last.sequence);
                hub.publish(&ctx.events);
            }
            for (_, finish) in done {
                finish(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; rolling back the group");
            let _ = exec(&mut ctx.conn, "ROLLBACK").await;
            ctx.events.clear();
            for (ok, finish) in done {
                // A job that failed on its own reports its own error.
                if ok {
                    finish(Err(Error::Internal(format!("commit failed: {e}"))));
                } else {
                    finish(Ok(()));
                }
            }
        }
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}
