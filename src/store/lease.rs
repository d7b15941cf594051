//! Which replica does the background work (request_id pruning now; the
//! clocks later): on PostgreSQL, the one holding a session advisory lock on a
//! connection of its own. If that replica dies or loses its connection, the
//! database releases the lock and another replica takes it at its next try.
//! On SQLite there is one process, which always holds it.

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;

use super::db::{self, Conn};

/// Key of the background-work advisory lock ("bgwork").
const LEASE_LOCK: i64 = 0x6267_776f_726b;

/// How often a replica without the lease tries to take it, and one with it
/// checks that its connection (and so the lock) is still there.
const TRY_EVERY: Duration = Duration::from_secs(5);

/// Whether this process holds the lease.
#[derive(Clone)]
pub(super) struct Lease(watch::Receiver<bool>);

impl Lease {
    /// Always held: the only process (SQLite).
    pub(super) fn sole() -> Self {
        metrics::gauge!(crate::metrics::BACKGROUND_LEASE).set(1.0);
        Lease(watch::channel(true).1)
    }

    /// Contended for on `opts`' database, until `stop` turns true.
    pub(super) fn contend(opts: PgConnectOptions, mut stop: watch::Receiver<bool>) -> Self {
        let (held, rx) = watch::channel(false);
        tokio::spawn(async move {
            // One connection, kept: the lock lives as long as its session.
            let mut conn: Option<Conn> = None;
            let mut holding = false;
            loop {
                if conn.is_none() {
                    match opts.connect().await {
                        Ok(c) => conn = Some(c.into()),
                        Err(e) => {
                            tracing::debug!(error = %e, "could not connect for the background lease")
                        }
                    }
                }
                let checked = match conn.as_mut() {
                    None => Ok(false),
                    // The lock lives as long as the session that took it.
                    Some(c) if holding => db::query("SELECT true").execute(c).await.map(|_| true),
                    Some(c) => {
                        db::query_scalar("SELECT pg_try_advisory_lock($1)")
                            .bind(LEASE_LOCK)
                            .fetch_one(c)
                            .await
                    }
                };
                // A connection that failed is opened again at the next try.
                let now = checked.unwrap_or_else(|_| {
                    conn = None;
                    false
                });
                match (holding, now) {
                    (true, false) => tracing::warn!("lost the background-work lease"),
                    (false, true) => tracing::info!("this replica runs the background work"),
                    _ => {}
                }
                holding = now;
                metrics::gauge!(crate::metrics::BACKGROUND_LEASE).set(f64::from(u8::from(holding)));
                held.send_replace(holding);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(TRY_EVERY) => {}
                }
            }
            if let Some(c) = conn {
                let _ = c.close().await;
            }
        });
        Lease(rx)
    }

    /// Whether this process holds the lease now.
    pub(super) fn held(&self) -> bool {
        *self.0.borrow()
    }
}
