//! A time limit on every statement of a read connection, so one expensive
//! query cannot hold a pooled connection (and starve every other reader).
//!
//! SQLite has no statement timeout, but it has the two hooks one is built
//! from: a trace callback when a statement starts running, and a progress
//! handler called every few thousand virtual-machine steps that can stop the
//! statement (SQLITE_INTERRUPT). Both run on the connection's own thread, so
//! the cost per statement is a clock read, with no hand-off to that thread.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqliteConnection;

/// Virtual-machine steps between checks of the clock (microseconds of work).
const STEPS_PER_CHECK: i32 = 10_000;

/// When the statement running on one connection started.
struct Clock {
    epoch: Instant,
    started_us: AtomicU64,
}

impl Clock {
    fn elapsed_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// Stops any statement of `conn` that runs longer than `limit`; the query then
/// fails with SQLITE_INTERRUPT (see `is_interrupted`).
pub(super) async fn install(conn: &mut SqliteConnection, limit: Duration) -> sqlx::Result<()> {
    let clock = Arc::new(Clock {
        epoch: Instant::now(),
        started_us: AtomicU64::new(0),
    });
    let limit_us = limit.as_micros().min(u64::MAX as u128) as u64;
    // The read pool keeps its connections: one small leak per connection.
    let mut handle = on_statement_start(conn, statement_started, clock.clone()).await?;
    handle.set_progress_handler(STEPS_PER_CHECK, move || {
        let started = clock.started_us.load(Ordering::Relaxed);
        clock.elapsed_us().saturating_sub(started) <= limit_us
    });
    Ok(())
}

/// What SQLite calls as a statement starts: `(event, context, statement, sql)`.
pub(super) type StatementHook =
    unsafe extern "C" fn(c_uint, *mut c_void, *mut c_void, *mut c_void) -> c_int;

/// Calls `hook` with `context` each time a statement of `conn` starts
/// (SQLITE_TRACE_STMT); returns the locked handle for more settings. The
/// context lives as long as the connection: the reference is handed to
/// SQLite and never taken back.
pub(super) async fn on_statement_start<T: Send + Sync + 'static>(
    conn: &mut SqliteConnection,
    hook: StatementHook,
    context: Arc<T>,
) -> sqlx::Result<sqlx::sqlite::LockedSqliteHandle<'_>> {
    let mut handle = conn.lock_handle().await?;
    let context = Arc::into_raw(context) as *mut c_void;
    // SAFETY: the handle is locked out of the worker for this call, `hook`
    // has the signature SQLite expects, and `context` is never freed.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_trace_v2(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_TRACE_STMT,
            Some(hook),
            context,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "cannot install a statement hook (sqlite3_trace_v2: {rc})"
        )));
    }
    Ok(handle)
}

/// SQLITE_TRACE_STMT: a statement starts running (also at each trigger it
/// fires, which only restarts the clock of the same statement later).
unsafe extern "C" fn statement_started(
    _event: c_uint,
    context: *mut c_void,
    _statement: *mut c_void,
    _sql: *mut c_void,
) -> c_int {
    // SAFETY: `context` is the `Clock` given in `install`, never freed.
    let clock = unsafe { &*(context as *const Clock) };
    clock
        .started_us
        .store(clock.elapsed_us(), Ordering::Relaxed);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn a_runaway_statement_is_stopped_and_the_connection_still_works() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        install(&mut conn, Duration::from_secs(1)).await.unwrap();
        // Never ends on its own; the outer bound only turns a failure into a
        // failed test instead of a hang.
        let runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
        let err = tokio::time::timeout(
            Duration::from_secs(120),
            sqlx::query_scalar::<_, i64>(runaway).fetch_one(&mut conn),
        )
        .await
        .expect("the statement timeout stops it")
        .expect_err("stopped");
        assert!(super::super::is_interrupted(&err), "{err:?}");
        // Many progress checks, well under the limit: the clock restarted.
        let bounded = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) \
                       SELECT count(*) FROM c";
        let n: i64 = sqlx::query_scalar(bounded)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 20000);
    }
}
