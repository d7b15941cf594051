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
            let mut conn: Option<Conn> = None;
            loop {
                let holding = match conn.as_mut() {
                    Some(c) => still_held(c).await,
                    None => match try_take(&opts).await {
                        Ok(Some(c)) => {
                            conn = Some(c);
                            true
                        }
                        Ok(None) => false,
                        Err(e) => {
                            tracing::debug!(error = %e, "could not try the background lease");
                            false
                        }
                    },
                };
                if !holding && conn.is_some() {
                    tracing::warn!("lost the background-work lease");
                    conn = None;
                }
                metrics::gauge!(crate::metrics::BACKGROUND_LEASE).set(f64::from(u8::from(holding)));
                if held.send_replace(holding) != holding && holding {
                    tracing::info!("this replica runs the background work");
                }
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

/// A connection holding the lock, or `None` if another replica holds it.
async fn try_take(opts: &PgConnectOptions) -> sqlx::Result<Option<Conn>> {
    let mut conn: Conn = opts.connect().await?.into();
    let taken: bool = db::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEASE_LOCK)
        .fetch_one(&mut conn)
        .await?;
    if taken {
        Ok(Some(conn))
    } else {
        conn.close().await?;
        Ok(None)
    }
}

/// Whether the connection that took the lock is still alive (the lock lives
/// as long as its session).
async fn still_held(conn: &mut Conn) -> bool {
    db::query("SELECT true").execute(conn).await.is_ok()
}
