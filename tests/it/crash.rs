//! The real binary under faults: SIGTERM with open streams and a client that
//! never reads, and kill -9 under load with zero acknowledged writes lost.
//! Both on the run's backend: on PostgreSQL the database killed under is the
//! test's own.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::pb::subscribe_timeline_response::Kind;
use incident_client::pb::timeline_event::Payload;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Status};
use incident_client::*;

use crate::support::{Daemon, TestDb, eventually, integrity_check, plain_incident, within};

async fn create(ch: &Channel, title: &str) -> Result<Incident, Status> {
    IncidentServiceClient::new(ch.clone())
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident(title)),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().incident.expect("incident"))
}

async fn add_note(ch: &Channel, incident_id: &str, text: String) -> Result<TimelineEvent, Status> {
    TimelineServiceClient::new(ch.clone())
        .add_note(AddNoteRequest {
            incident_id: incident_id.into(),
            text,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().event.expect("event"))
}

/// `log` without its ANSI colour sequences.
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn from_start() -> SubscribeTimelineRequest {
    SubscribeTimelineRequest {
        start: Some(Start::AfterSequence(0)),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// SIGTERM
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_open_streams_and_a_client_that_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (TestDb::create().await, dir.path().join("log"));
    let mut d = Daemon::start(&db, &log, &["--shutdown-grace", "1s"]).await;
    let inc = create(&d.channel().await, "Shutdown")
        .await
        .expect("create");

    // Each stream on its own connection: a stalled stream's unread data also
    // holds its connection's flow-control window.
    let mut reading = TimelineServiceClient::new(d.channel().await)
        .subscribe_timeline(from_start())
        .await
        .expect("subscribe")
        .into_inner();
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            match reading.message().await {
                Ok(Some(m)) => {
                    if let Some(Kind::Event(e)) = m.kind {
                        seqs.push(e.sequence);
                    }
                }
                Ok(None) => return (seqs, None),
                Err(s) => return (seqs, Some(s)),
            }
        }
    });
    let never_read = TimelineServiceClient::new(d.channel().await)
        .subscribe_timeline(from_start())
        .await
        .expect("subscribe")
        .into_inner();

    // Thousands of events, megabytes in all: far more than the stalled
    // stream's window and the server's buffers hold.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = d.url();
            let id = inc.id.clone();
            tokio::spawn(async move {
                let ch = Channel::from_shared(url).unwrap().connect().await.unwrap();
                let mut seqs = Vec::new();
                for i in 0..250 {
                    let text = format!("writer {w} note {i} ") + &"x".repeat(4000);
                    seqs.push(add_note(&ch, &id, text).await.expect("note").sequence);
                }
                seqs
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert_eq!(acked.len(), 2000);

    d.signal("TERM");
    let sent = Instant::now();
    // The client that never reads cannot hold the server: it exits, either
    // having drained everything, or cutting off what is left once the grace
    // period given (1 s, not the 5 s default) is over, as its log says.
    let exit = within("the exit after SIGTERM", d.child.wait())
        .await
        .unwrap();
    eprintln!("exited {:?} after SIGTERM ({exit})", sent.elapsed());
    assert!(exit.success(), "exit status {exit}:\n{}", d.log());
    let log = without_colours(&d.log());
    if log.contains("grace period over") {
        assert!(
            log.contains("grace=1s"),
            "cut off after another grace:\n{log}"
        );
    }

    let (seqs, end) = within("the end of the reading stream", reader)
        .await
        .unwrap();
    let end = end.expect("the stream ended with a status, not a clean end");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequences not strictly increasing"
    );
    let got: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    let missing: Vec<_> = acked.iter().filter(|s| !got.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "the reading stream ended without {} committed events, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    drop(never_read);
}

// ---------------------------------------------------------------------------
// kill -9
// ---------------------------------------------------------------------------

/// A write the server acknowledged.
#[derive(Clone, Debug)]
enum Ack {
    Incident {
        id: String,
        title: String,
    },
    Update {
        incident_id: String,
        update_id: String,
        status: i32,
        message: String,
    },
    Note {
        incident_id: String,
        sequence: u64,
        text: String,
    },
}

/// Creates incidents, posts status updates and adds notes until the server
/// goes away, recording every acknowledged write.
async fn writer(url: String, w: usize, acked: Arc<Mutex<Vec<Ack>>>) {
    let Ok(ch) = Channel::from_shared(url).unwrap().connect().await else {
        return;
    };
    let mut incidents = IncidentServiceClient::new(ch.clone());
    for n in 0.. {
        let title = format!("w{w} incident {n}");
        let Ok(inc) = create(&ch, &title).await else {
            return;
        };
        acked.lock().unwrap().push(Ack::Incident {
            id: inc.id.clone(),
            title,
        });
        for (k, status) in [IncidentStatus::Identified, IncidentStatus::Monitoring]
            .into_iter()
            .enumerate()
        {
            let message = format!("w{w} incident {n} update {k}");
            let Ok(r) = incidents
                .post_status_update(PostStatusUpdateRequest {
                    incident_id: inc.id.clone(),
                    status: status as i32,
                    message: message.clone(),
                    ..Default::default()
                })
                .await
            else {
                return;
            };
            acked.lock().unwrap().push(Ack::Update {
                incident_id: inc.id.clone(),
                update_id: r.into_inner().status_update.expect("update").id,
                status: status as i32,
                message,
            });
            let text = format!("w{w} incident {n} note {k}");
            let Ok(e) = add_note(&ch, &inc.id, text.clone()).await else {
                return;
            };
            acked.lock().unwrap().push(Ack::Note {
                incident_id: inc.id.clone(),
                sequence: e.sequence,
                text,
            });
        }
    }
}

async fn events_of(ch: &Channel, incident_id: &str) -> Vec<TimelineEvent> {
    let mut client = TimelineServiceClient::new(ch.clone());
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_timeline_events(ListTimelineEventsRequest {
                incident_id: incident_id.into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list events")
            .into_inner();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// Every acknowledged write is there, with all its timeline events.
async fn verify(ch: &Channel, acked: &[Ack]) {
    let mut by_incident: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for a in acked {
        let id = match a {
            Ack::Incident { id, .. } => id,
            Ack::Update { incident_id, .. } | Ack::Note { incident_id, .. } => incident_id,
        };
        by_incident.entry(id.as_str()).or_default().push(a);
    }
    let mut incidents = IncidentServiceClient::new(ch.clone());
    for (id, acks) in by_incident {
        let events = events_of(ch, id).await;
        let by_seq: HashMap<u64, &TimelineEvent> = events.iter().map(|e| (e.sequence, e)).collect();
        for a in acks {
            match a {
                Ack::Incident { title, .. } => {
                    let got = incidents
                        .get_incident(GetIncidentRequest {
                            id: id.into(),
                            ..Default::default()
                        })
                        .await
                        .unwrap_or_else(|s| panic!("acknowledged incident {id} lost: {s:?}"))
                        .into_inner()
                        .incident
                        .unwrap();
                    assert_eq!(&got.title, title);
                    assert!(
                        events.iter().any(|e| matches!(
                            &e.payload,
                            Some(Payload::IncidentCreated(c))
                                if c.incident.as_ref().is_some_and(|i| i.id == id)
                        )),
                        "INCIDENT_CREATED of {id} lost"
                    );
                }
                Ack::Update {
                    update_id,
                    status,
                    message,
                    ..
                } => {
                    assert!(
                        events.iter().any(|e| matches!(
                            &e.payload,
                            Some(Payload::StatusUpdatePosted(p))
                                if p.status_update.as_ref().is_some_and(|u| {
                                    &u.id == update_id && &u.message == message
                                })
                        )),
                        "STATUS_UPDATE_POSTED of acknowledged update {update_id} lost"
                    );
                    assert!(
                        events.iter().any(|e| matches!(
                            &e.payload,
                            Some(Payload::StatusChanged(c))
                                if &c.status_update_id == update_id && c.new_status == *status
                        )),
                        "STATUS_CHANGED of acknowledged update {update_id} lost"
                    );
                }
                Ack::Note { sequence, text, .. } => {
                    let e = by_seq
                        .get(sequence)
                        .unwrap_or_else(|| panic!("acknowledged note #{sequence} lost"));
                    assert!(
                        matches!(&e.payload, Some(Payload::NoteAdded(n)) if &n.text == text),
                        "event #{sequence} is not the acknowledged note: {e:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (TestDb::create().await, dir.path().join("log"));
    let mut d = Daemon::start(&db, &log, &[]).await;
    let mut all: Vec<Ack> = Vec::new();
    for round in 0..4 {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..8)
            .map(|w| tokio::spawn(writer(d.url(), w, acked.clone())))
            .collect();
        // Under load: some writes acknowledged, then a random moment more
        // (whatever the moment, no acknowledged write may be lost).
        eventually("40 writes acknowledged", || {
            let n = acked.lock().unwrap().len();
            async move { (n >= 40).then_some(()) }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..400))).await;
        d.child.kill().await.expect("kill -9");
        for w in writers {
            within("writers stopping once the server is gone", w)
                .await
                .unwrap();
        }
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(acked.len() >= 40);
        eprintln!(
            "round {round}: {} writes acknowledged before kill -9",
            acked.len()
        );
        all.extend(acked);

        // PostgreSQL answers for its own files after a crash.
        if let Some(file) = db.sqlite_path() {
            assert_eq!(integrity_check(file).await, "ok", "round {round}");
        }
        d = Daemon::start(&db, &log, &[]).await;
        verify(&d.channel().await, &all).await;
    }
    d.signal("TERM");
    within("the exit after SIGTERM", d.child.wait())
        .await
        .expect("wait");
    if let Some(file) = db.sqlite_path() {
        assert_eq!(integrity_check(file).await, "ok");
    }
    // What this test holds, it holds with SQLite's page cache wrapped as
    // every `incidentd` runs it (the wrapper skips truncations).
    assert!(
        !d.log()
            .contains(incidentd::store::page_cache::NOT_INSTALLED),
        "a daemon ran with SQLite's own page cache:\n{}",
        d.log()
    );
}
