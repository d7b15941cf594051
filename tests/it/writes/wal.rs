//! SQLite's WAL is started over under a steady write load, so the `-wal`
//! file stays about `--wal-pages` long instead of growing for as long as the
//! load lasts, and nothing acknowledged is lost across its laps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use incident_client::*;

use crate::support::{Backend, Options, TestServer, create_incident, post_status_update};

/// Writers posting at once: enough that the writer always has a group queued
/// when the last one commits, which is what kept the WAL from starting over.
const WRITERS: usize = 32;
/// Posts in all: several KiB of WAL each (whole pages), so a WAL that is
/// never started over ends well past the bound below.
const POSTS: u64 = 8_000;

/// How many times the WAL was started over since the database was created:
/// the checkpoint sequence number of its header (bytes 12..16, big-endian),
/// which SQLite increments each time.
fn laps(wal: &Path) -> u32 {
    let bytes = std::fs::read(wal).expect("the WAL file");
    u32::from_be_bytes(bytes[12..16].try_into().expect("a WAL header"))
}

#[tokio::test]
async fn a_steady_write_load_starts_the_wal_over_and_loses_nothing() {
    let mut srv = TestServer::start_with(Options {
        backend: Some(Backend::Sqlite),
        wal_pages: Some(64),
        ..Options::default()
    })
    .await;
    let wal = PathBuf::from(format!("{}-wal", srv.db.sqlite_file().display()));
    let mut c = srv.incidents().await;
    let mut ids = Vec::new();
    for n in 0..8 {
        let i = Incident {
            title: format!("wal {n}"),
            kind: IncidentKind::Incident as i32,
            ..Default::default()
        };
        ids.push(create_incident(&mut c, i).await.id);
    }
    let before = laps(&wal);

    let posted = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (mut c, id) = (srv.incidents().await, ids[w % ids.len()].clone());
        let (posted, acked) = (Arc::clone(&posted), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            while posted.fetch_add(1, Ordering::Relaxed) < POSTS {
                post_status_update(
                    &mut c,
                    &id,
                    IncidentStatus::Investigating,
                    "x",
                    vec![],
                    None,
                )
                .await;
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in writers {
        w.await.expect("a writer");
    }
    let started_over = laps(&wal) - before;
    let size = std::fs::metadata(&wal).expect("the WAL file").len();
    let acknowledged = acked.load(Ordering::Relaxed) as i64;
    assert!(
        started_over >= 3,
        "the WAL was started over {started_over} times in {acknowledged} status updates"
    );
    // Sixty-four pages and what the writer appended while the checkpointer
    // copied them and the writer finished its group (1.2-1.6 MiB here); a
    // WAL the writer never starts over holds what the checkpointer let
    // through between its passes (5.9-6.8 MiB here, 10-45 MiB before the
    // checkpointer was woken by long WALs).
    assert!(
        size < 3 << 20,
        "the WAL is {size} bytes after {acknowledged} status updates"
    );

    // Every acknowledged update is there after a restart, which replays
    // whatever the WAL still holds.
    srv.restart().await;
    assert_eq!(srv.count("status_updates").await, acknowledged);
}
