//! Keeps SQLite's WAL from growing without bound under a steady write load.
//!
//! A checkpoint copies committed pages from the WAL into the database file.
//! It runs beside the writer, on a connection of its own, so that no commit
//! pays for it (an automatic checkpoint runs inside whichever commit crosses
//! its threshold: a latency spike of several milliseconds). But SQLite only
//! starts the WAL over from its first frame when a write transaction begins
//! with every frame already copied, and a checkpoint that runs beside the
//! writer never catches up with it: by the time it has copied what it saw,
//! the writer has appended more. Under a steady load the WAL then grew for as
//! long as the load lasted (745 MB after two 15-second write scenarios of the
//! bench), every page a reader or the writer looked up probed one more hash
//! table of the WAL index per 4,096 frames, and every commit extended the
//! file.
//!
//! So once a commit leaves the WAL `--wal-pages` long, the checkpointer runs
//! at once (not at its next tick) and then hands over: the writer copies the
//! few frames appended during that pass itself, between two groups, when
//! nothing else writes, and its next group starts the WAL over (SQLite does
//! that by itself when a write finds every frame copied and no reader in the
//! WAL). The WAL stays near `--wal-pages` long whatever the write rate, plus
//! what the writer appends while the checkpointer copies.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::sync::{Notify, watch};

use super::db::{self, Conn};
use crate::error::Result;

/// How often committed pages are copied from the WAL into the database while
/// the WAL is short.
const INTERVAL: Duration = Duration::from_millis(200);

/// Least time between two passes woken by long WALs while the WAL does not
/// start over: a reader still in it can keep it from doing so, every commit
/// then leaves it long, and a pass (with the fsync of the database file it
/// ends with) per commit would double the writer's fsyncs.
const WOKEN_SPACING: Duration = Duration::from_millis(20);

/// Shared by the writer's connection (its WAL hook), the checkpointer and the
/// writer's loop.
#[derive(Clone)]
pub(super) struct Lap(Arc<Shared>);

struct Shared {
    /// Frames after which a commit wakes the checkpointer (`--wal-pages`).
    pages: c_int,
    /// The WAL is long: the checkpointer is to run now.
    long: Notify,
    /// The checkpointer has copied what it could: the writer is to finish.
    /// While it is set, the checkpointer leaves the WAL to the writer (two
    /// checkpoints at once: the second one copies nothing, SQLITE_BUSY).
    asked: AtomicBool,
    /// Frames the WAL held after the last commit.
    frames: AtomicI32,
    /// The WAL started over since the checkpointer last looked.
    restarted: AtomicBool,
}

impl Lap {
    pub(super) fn new(pages: c_int) -> Lap {
        Lap(Arc::new(Shared {
            pages,
            long: Notify::new(),
            asked: AtomicBool::new(false),
            frames: AtomicI32::new(0),
            restarted: AtomicBool::new(false),
        }))
    }

    /// Has every commit on `conn` (the writer's) report the WAL's length,
    /// waking the checkpointer when it is long. A later
    /// `PRAGMA wal_autocheckpoint` on that connection would replace the hook.
    pub(super) async fn watch(&self, conn: &mut SqliteConnection) -> sqlx::Result<()> {
        // The hook's argument lives as long as the process: a connection may
        // outlive the store that opened it (sqlx closes it on its own thread).
        let arg = Arc::into_raw(Arc::clone(&self.0)) as *mut c_void;
        super::with_raw_handle(conn, |db| {
            // SAFETY: `db` is open and runs no statement meanwhile; `arg`
            // points to a `Shared` that is never freed, and `on_commit` only
            // uses its atomics and `Notify`.
            unsafe { libsqlite3_sys::sqlite3_wal_hook(db, Some(on_commit), arg) };
        })
        .await
    }

    /// Called by the writer between groups: if the checkpointer asked,
    /// copies what is left of the WAL into the database on the writer's own
    /// connection, outside any transaction, so that the next group starts the
    /// WAL over. A checkpoint that found another one running is tried again
    /// after the next group.
    pub(super) async fn finish(&self, conn: &mut Conn) -> Result<()> {
        if !self.0.asked.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let (busy, log, copied) = checkpoint(conn).await?;
        if busy != 0 || log < 0 {
            self.0.asked.store(true, Ordering::Release);
        }
        tracing::debug!(busy, log, copied, "the writer finished a WAL lap");
        Ok(())
    }
}

/// SQLite's WAL hook: runs on the writer's connection after each commit,
/// with the frames the WAL now holds. Setting it turns off SQLite's automatic
/// checkpoints on that connection, which the writer does not want anyway. It
/// must return SQLITE_OK: anything else makes the COMMIT, which happened,
/// report an error.
unsafe extern "C" fn on_commit(
    arg: *mut c_void,
    db: *mut libsqlite3_sys::sqlite3,
    _schema: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `arg` is the `Shared` that `Lap::watch` leaked for this hook.
    let shared = unsafe { &*(arg as *const Shared) };
    // Commits are one at a time on this connection: fewer frames than after
    // the last one means the WAL started over.
    if frames <= shared.frames.swap(frames, Ordering::Relaxed) {
        shared.restarted.store(true, Ordering::Release);
    }
    // The pages this connection wrote since the last commit: the WAL frames
    // of this transaction (SQLite counts them as it appends them).
    let (mut written, mut highest) = (0, 0);
    // SAFETY: `db` is the connection running the hook, and its mutex (held
    // by the step that commits) is recursive.
    let status = unsafe {
        libsqlite3_sys::sqlite3_db_status(
            db,
            libsqlite3_sys::SQLITE_DBSTATUS_CACHE_WRITE,
            &mut written,
            &mut highest,
            1,
        )
    };
    if status == libsqlite3_sys::SQLITE_OK {
        metrics::histogram!(crate::metrics::WAL_FRAMES).record(f64::from(written));
    }
    if frames >= shared.pages {
        shared.long.notify_one();
    }
    libsqlite3_sys::SQLITE_OK
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: never waits for, nor blocks, a writer or
/// a reader. Returns SQLite's (busy, frames in the WAL, frames copied).
async fn checkpoint(conn: &mut Conn) -> Result<(i64, i64, i64)> {
    Ok(
        db::query_as::<(i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(conn)
            .await?,
    )
}

/// Checkpoints on `conn` every [`INTERVAL`] while the log moves, and at once
/// when a commit leaves the WAL long, after which it asks the writer to
/// finish the lap. Ends when the store closes (the head's sender is dropped).
pub(super) fn spawn(conn: SqliteConnection, mut head: watch::Receiver<u64>, lap: Lap) {
    tokio::spawn(async move {
        let mut conn = Conn::from(conn);
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpointed = *head.borrow_and_update();
        let mut last = tokio::time::Instant::now();
        loop {
            let woken = tokio::select! {
                _ = tick.tick() => false,
                _ = lap.0.long.notified() => true,
            };
            if woken {
                if lap.0.asked.load(Ordering::Acquire) {
                    // The writer has the lap; its checkpoint would find this one.
                    continue;
                }
                if !lap.0.restarted.swap(false, Ordering::AcqRel) {
                    tokio::time::sleep_until(last + WOKEN_SPACING).await;
                }
            }
            if head.has_changed().is_err() {
                break;
            }
            // A commit that woke it may not be published yet.
            let now = *head.borrow_and_update();
            if now == checkpointed && !woken {
                continue;
            }
            last = tokio::time::Instant::now();
            match checkpoint(&mut conn).await {
                // Another checkpoint (the writer's) was running: nothing copied.
                Ok((busy, _, _)) if busy != 0 => {}
                Ok((_, log, _)) => {
                    checkpointed = now;
                    if log >= i64::from(lap.0.pages) {
                        lap.0.asked.store(true, Ordering::Release);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
            }
        }
        let _ = conn.close().await;
    });
}
