//! GetIncident answers from memory, and never with less than what was
//! acknowledged: every write is visible to the next GetIncident, by id and by
//! reference, while other readers keep refilling the cache as fast as they can.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use incident_client::*;

use super::{get, update};
use crate::action_items::item;
use crate::support::{TestServer, create_incident};

#[tokio::test]
async fn get_incident_sees_every_acknowledged_write_while_readers_refill_the_cache() {
    let srv = TestServer::start().await;
    let mut c = srv.incidents().await;
    let created = create_incident(
        &mut c,
        Incident {
            title: "v0".into(),
            kind: IncidentKind::Incident as i32,
            ..Default::default()
        },
    )
    .await;

    // Readers racing every write: each read that misses refills the cache,
    // some of them with what they read just before a commit.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for key in [
        created.id.clone(),
        created.reference.clone(),
        created.id.clone(),
    ] {
        let (stop, mut c) = (stop.clone(), srv.incidents().await);
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                get(&mut c, &key).await;
                reads += 1;
            }
            reads
        }));
    }

    let mut items = srv.action_items().await;
    for n in 1..=30 {
        let current = get(&mut c, &created.id).await;
        let title = format!("v{n}");
        let updated = update(
            &mut c,
            Incident {
                title: title.clone(),
                ..current
            },
            &["title"],
        )
        .await
        .expect("update");
        for key in [&created.id, &created.reference] {
            let seen = get(&mut c, key).await;
            assert_eq!(seen.title, title, "read by {key} after write {n}");
            assert_eq!(seen.etag, updated.etag, "read by {key} after write {n}");
        }
        // A change that is not to the incident's own row: its counts.
        if n % 10 == 0 {
            items
                .create_action_item(CreateActionItemRequest {
                    action_item: Some(item(&created.id, "follow up", ActionItemStatus::Open)),
                    request_id: String::new(),
                })
                .await
                .expect("create action item");
            let seen = get(&mut c, &created.reference).await;
            assert_eq!(seen.action_item_count, n / 10, "after item {}", n / 10);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.await.expect("reader") > 0);
    }
}
