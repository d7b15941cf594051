//! GetIncident and ListIncidents answer from memory, and never with less than
//! what was acknowledged: every write is visible to the next read, by id and
//! by reference, while other readers keep refilling the cache as fast as they
//! can; and a list page shows its incidents as the read that chose it saw them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use incident_client::tonic::transport::Channel;
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

/// A page of P1 incidents, newest first.
async fn list_p1(c: &mut IncidentServiceClient<Channel>) -> Vec<Incident> {
    c.list_incidents(ListIncidentsRequest {
        severities: vec![Severity::P1 as i32],
        page_size: 50,
        ..Default::default()
    })
    .await
    .expect("list incidents")
    .into_inner()
    .incidents
}

/// ListIncidents takes its incidents from the same cache: a page lists the
/// incidents that matched its filter at one moment, each as it was at that
/// moment (never a P2 on a page of P1s, whatever races it), and every write
/// acknowledged before it.
#[tokio::test]
async fn list_pages_show_each_incident_as_the_read_that_chose_it_while_writes_race() {
    let srv = TestServer::start().await;
    let mut c = srv.incidents().await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let created = create_incident(
            &mut c,
            Incident {
                title: format!("incident {n}"),
                kind: IncidentKind::Incident as i32,
                severity: Severity::P2 as i32,
                ..Default::default()
            },
        )
        .await;
        ids.push(created.id);
    }

    // Listers check every page they get; getters refill the cache with what
    // they read, racing each write as the listers do.
    let stop = Arc::new(AtomicBool::new(false));
    let mut listers = Vec::new();
    for _ in 0..2 {
        let (stop, mut c) = (stop.clone(), srv.incidents().await);
        listers.push(tokio::spawn(async move {
            let mut pages = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for i in list_p1(&mut c).await {
                    assert_eq!(
                        i.severity,
                        Severity::P1 as i32,
                        "{} ({}) on a page of P1 incidents",
                        i.reference,
                        i.title
                    );
                }
                pages += 1;
            }
            pages
        }));
    }
    let mut getters = Vec::new();
    for _ in 0..2 {
        let (stop, ids, mut c) = (stop.clone(), ids.clone(), srv.incidents().await);
        getters.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for id in &ids {
                    get(&mut c, id).await;
                    reads += 1;
                }
            }
            reads
        }));
    }

    for round in 0..40 {
        for id in &ids {
            let current = get(&mut c, id).await;
            let severity = if current.severity == Severity::P1 as i32 {
                Severity::P2
            } else {
                Severity::P1
            };
            let title = format!("round {round}");
            let updated = update(
                &mut c,
                Incident {
                    severity: severity as i32,
                    title: title.clone(),
                    ..current
                },
                &["severity", "title"],
            )
            .await
            .expect("update");
            let page = list_p1(&mut c).await;
            let listed = page.iter().find(|i| &i.id == id);
            match severity {
                Severity::P1 => {
                    let listed = listed.expect("an incident made P1 is on the next page of P1s");
                    assert_eq!(listed.etag, updated.etag, "round {round}");
                    assert_eq!(listed.title, title, "round {round}");
                }
                _ => assert!(listed.is_none(), "an incident made P2 left the P1s"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in listers.into_iter().chain(getters) {
        assert!(t.await.expect("reader") > 0);
    }
}
