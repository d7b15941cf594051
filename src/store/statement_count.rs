//! Counts the statements a connection runs, so the writer can report how many
//! each group took (they must not grow with the group).

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::SqliteConnection;

/// Counts every statement `conn` runs from now on into the returned counter.
pub(super) async fn install(conn: &mut SqliteConnection) -> sqlx::Result<Arc<AtomicU64>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut handle = conn.lock_handle().await?;
    // The callback's context lives as long as the connection: the reference
    // is handed to SQLite and never taken back (one counter per write
    // connection, of which a process opens one).
    let context = Arc::into_raw(Arc::clone(&count)) as *mut c_void;
    // SAFETY: the handle is locked out of the worker for this call, the
    // callback matches the signature SQLite expects, and `context` points to
    // an `AtomicU64` that is never freed.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_trace_v2(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_TRACE_STMT,
            Some(statement_started),
            context,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "cannot install the statement counter (sqlite3_trace_v2: {rc})"
        )));
    }
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
