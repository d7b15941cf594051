//! Counts the statements a connection runs, so the writer can report how many
//! each group took (they must not grow with the group).

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::SqliteConnection;

/// Counts every statement `conn` runs from now on into the returned counter
/// (one per write connection, of which a process opens one).
pub(super) async fn install(conn: &mut SqliteConnection) -> sqlx::Result<Arc<AtomicU64>> {
    let count = Arc::new(AtomicU64::new(0));
    super::statement_timeout::on_statement_start(conn, statement_started, Arc::clone(&count))
        .await?;
    Ok(count)
}

/// SQLITE_TRACE_STMT: a statement starts running. (It also fires for each
/// trigger a statement runs; the schema has none.)
unsafe extern "C" fn statement_started(
    _event: c_uint,
    context: *mut c_void,
    _statement: *mut c_void,
    _sql: *mut c_void,
) -> c_int {
    // SAFETY: `context` is the counter given in `install`, never freed.
    let count = unsafe { &*(context as *const AtomicU64) };
    count.fetch_add(1, Ordering::Relaxed);
    0
}
