//! Several replicas (real `incidentd serve` processes) on one PostgreSQL
//! database: one log that every replica serves whole and in order, identity
//! (request_id, etags) held by the database, a replica killed mid-storm and
//! database connections terminated under load without a write lost or an
//! event repeated. These need `INCIDENTD_TEST_POSTGRES` and are skipped,
//! saying so, without it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use incident_client::subscribe_timeline_request::Start;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Request};
use incident_client::{
    AddNoteRequest, Component, ComponentServiceClient, CreateComponentRequest,
    CreateIncidentRequest, GetIncidentRequest, Incident, IncidentServiceClient,
    PostStatusUpdateRequest, SubscribeTimelineRequest, Subscription, TimelineEventKind,
    TimelineServiceClient, UpdateIncidentRequest, View, Visibility, lazy_channels,
};
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

use crate::support::{
    Daemon, POSTGRES_VAR, TestDb, create_incident, eventually, free_port, head_sequence, http_get,
    mask, plain_incident, postgres_admin_url, rid, whole_log, within,
};
use crate::timeline::subscribe_request;

/// Replicas of one PostgreSQL test database, each logging to its own file.
struct Replicas {
    db: TestDb,
    dir: TempDir,
    daemons: Vec<Daemon>,
}

impl Replicas {
    /// `n` replicas on a fresh database, or `None` (and the skip said)
    /// without `INCIDENTD_TEST_POSTGRES`.
    async fn start(n: usize) -> Option<Replicas> {
        Self::start_with(n, |_| Vec::new()).await
    }

    /// As [`Replicas::start`], replica `i` given `extra(i)` arguments.
    async fn start_with(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Option<Replicas> {
        let Some(admin) = postgres_admin_url() else {
            println!("skipped: {POSTGRES_VAR} is not set");
            return None;
        };
        let db = TestDb::postgres(&admin).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemons = Vec::new();
        for i in 0..n {
            let log = dir.path().join(format!("replica-{i}.log"));
            let args = extra(i);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            daemons.push(Daemon::start(&db, &log, &args).await);
        }
        Some(Replicas { db, dir, daemons })
    }

    fn urls(&self) -> Vec<String> {
        self.daemons.iter().map(Daemon::url).collect()
    }

    async fn incidents(&self, i: usize) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.daemons[i].channel().await)
    }

    async fn timeline(&self, i: usize) -> TimelineServiceClient<Channel> {
        TimelineServiceClient::new(self.daemons[i].channel().await)
    }

    /// A subscription from the start of the log over every replica, starting
    /// on replica `first`.
    fn subscription(&self, first: usize) -> Subscription {
        let mut urls = self.urls();
        urls.rotate_left(first);
        let channels = lazy_channels(urls).expect("endpoints");
        Subscription::over(channels, subscribe_request(Start::AfterSequence(0)))
    }

    /// Every replica's log, for a failure message.
    fn logs(&self) -> String {
        self.daemons
            .iter()
            .enumerate()
            .map(|(i, d)| format!("--- replica {i}:\n{}", d.log()))
            .collect()
    }
}

/// Reads `sub` until it handed out `last`; returns the sequences it gave.
async fn read_through(sub: &mut Subscription, last: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    within(&format!("events up to {last}"), async {
        while seen.last().is_none_or(|s| *s < last) {
            let e = sub.next().await.expect("an event");
            seen.push(e.sequence);
        }
    })
    .await;
    seen
}

fn note(incident_id: &str, text: String, request_id: String) -> AddNoteRequest {
    AddNoteRequest {
        incident_id: incident_id.into(),
        text,
        request_id,
        ..Default::default()
    }
}

/// Adds `count` notes to `incident_id` through `t`, one after the other, in
/// a task of its own; hands back each note's text with the sequence its
/// answer named.
fn add_notes(
    mut t: TimelineServiceClient<Channel>,
    incident_id: String,
    who: String,
    count: usize,
) -> tokio::task::JoinHandle<Vec<(u64, String)>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        for n in 0..count {
            let text = format!("{who} note {n}");
            let e = t
                .add_note(note(&incident_id, text.clone(), rid()))
                .await
                .expect("add note")
                .into_inner()
                .event
                .expect("event");
            acked.push((e.sequence, text));
        }
        acked
    })
}

/// What every [`add_notes`] task answered.
async fn all_answered(
    writers: Vec<tokio::task::JoinHandle<Vec<(u64, String)>>>,
) -> Vec<(u64, String)> {
    let mut answered = Vec::new();
    for w in writers {
        answered.extend(w.await.expect("writer"));
    }
    answered
}

/// The text of every note of the log, with how many times it appears.
async fn notes_in_log(client: &mut TimelineServiceClient<Channel>) -> BTreeMap<String, usize> {
    let events = whole_log(client).await;
    let mut out = BTreeMap::new();
    for e in events {
        if e.kind == TimelineEventKind::NoteAdded as i32
            && let Some(incident_client::timeline_event::Payload::NoteAdded(n)) = e.payload
        {
            *out.entry(n.text).or_default() += 1;
        }
    }
    out
}

#[tokio::test]
async fn three_replicas_serve_one_log_with_identity_held_by_the_database() {
    let Some(r) = Replicas::start(3).await else {
        return;
    };
    let incident =
        create_incident(&mut r.incidents(0).await, plain_incident("Shared by three")).await;
    // A subscriber on each replica, each from the start of the log and
    // following it live before anything else is written.
    let mut subs: Vec<Subscription> = (0..3).map(|i| r.subscription(i)).collect();
    for sub in &mut subs {
        assert_eq!(read_through(sub, 1).await, vec![1]);
    }

    // Writers spread over the three, concurrently.
    let mut writers = Vec::new();
    for i in 0..3 {
        let t = r.timeline(i).await;
        writers.push(add_notes(
            t,
            incident.id.clone(),
            format!("replica {i}"),
            25,
        ));
    }
    let answered = all_answered(writers).await;
    // Each answer names the sequence its note has in the log.
    let logged = notes_by_sequence(&mut r.timeline(1).await).await;
    for (sequence, text) in &answered {
        assert_eq!(
            logged.get(sequence),
            Some(text),
            "the note answered as sequence {sequence} is that event of the log"
        );
    }
    let mut acked: Vec<u64> = answered.iter().map(|(s, _)| *s).collect();
    // The last writes are replica 0's alone: the others learn of them only
    // from the log.
    let mut t = r.timeline(0).await;
    for n in 0..3 {
        let e = t
            .add_note(note(&incident.id, format!("last {n}"), rid()))
            .await
            .expect("add note")
            .into_inner()
            .event
            .expect("event");
        acked.push(e.sequence);
    }
    let last = *acked.iter().max().expect("writes");
    assert_eq!(
        head_sequence(&mut r.timeline(2).await).await,
        last,
        "{}",
        r.logs()
    );
    for (i, sub) in subs.iter_mut().enumerate() {
        let seen = read_through(sub, last).await;
        assert_eq!(
            [vec![1], seen].concat(),
            (1..=last).collect::<Vec<_>>(),
            "subscriber on replica {i}: every event once, in order"
        );
        assert_eq!(sub.endpoint(), 0, "it stayed on its replica");
    }

    // A retry on another replica gets the first answer.
    let request_id = rid();
    let mut created = Vec::new();
    for i in 0..3 {
        let c = r
            .incidents(i)
            .await
            .create_incident(CreateIncidentRequest {
                incident: Some(plain_incident("Once only")),
                request_id: request_id.clone(),
                ..Default::default()
            })
            .await
            .expect("create with a request_id")
            .into_inner()
            .incident
            .expect("incident");
        created.push(c);
    }
    assert!(
        created.iter().all(|c| c == &created[0]),
        "every replica answers with the first response: {created:?}"
    );
    assert_eq!(
        r.db.count("incidents").await,
        2,
        "the retries created nothing"
    );

    // One etag, three concurrent updates through three replicas: one wins.
    let current = r
        .incidents(1)
        .await
        .get_incident(GetIncidentRequest {
            id: incident.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner()
        .incident
        .expect("incident");
    let mut racers = Vec::new();
    for i in 0..3 {
        let mut c = r.incidents(i).await;
        let update = Incident {
            id: current.id.clone(),
            title: format!("Renamed through replica {i}"),
            etag: current.etag.clone(),
            ..Default::default()
        };
        racers.push(tokio::spawn(async move {
            c.update_incident(UpdateIncidentRequest {
                incident: Some(update),
                update_mask: mask(&["title"]),
                request_id: String::new(),
            })
            .await
        }));
    }
    let mut won = Vec::new();
    for racer in racers {
        match racer.await.expect("racer") {
            Ok(r) => won.push(r.into_inner().incident.expect("incident").title),
            Err(s) => assert_eq!(
                s.code(),
                Code::Aborted,
                "a loser is told the etag moved: {s:?}"
            ),
        }
    }
    assert_eq!(won.len(), 1, "exactly one update wins: {won:?}");
    let stored = r
        .incidents(2)
        .await
        .get_incident(GetIncidentRequest {
            id: incident.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner()
        .incident
        .expect("incident");
    assert_eq!(stored.title, won[0], "the winner's title is the one stored");

    // Writes without an etag to one incident through three replicas at once:
    // each applies to what the one before it wrote, none is lost.
    let version = || async {
        let mut conn = PgConnection::connect(r.db.as_str()).await.expect("connect");
        let v: String =
            sqlx::query_scalar("SELECT doc::json ->> 'version' FROM incidents WHERE id = $1")
                .bind(&incident.id)
                .fetch_one(&mut conn)
                .await
                .expect("version");
        conn.close().await.ok();
        v.parse::<u64>().expect("a version")
    };
    let before = version().await;
    let mut posters = Vec::new();
    for i in 0..3 {
        let c = r.incidents(i).await;
        let id = incident.id.clone();
        posters.push(tokio::spawn(async move {
            let posts = (0..10).map(|n| {
                let mut c = c.clone();
                let id = id.clone();
                async move {
                    c.post_status_update(PostStatusUpdateRequest {
                        incident_id: id,
                        message: format!("replica {i} update {n}"),
                        ..Default::default()
                    })
                    .await
                    .expect("post")
                }
            });
            futures::future::join_all(posts).await;
        }));
    }
    for p in posters {
        p.await.expect("poster");
    }
    assert_eq!(
        version().await,
        before + 30,
        "30 concurrent updates through three replicas, each on top of the last"
    );
    drop(r.dir);
}

/// The text of every note of the log, by its sequence.
async fn notes_by_sequence(client: &mut TimelineServiceClient<Channel>) -> BTreeMap<u64, String> {
    whole_log(client)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(incident_client::timeline_event::Payload::NoteAdded(n)) => {
                Some((e.sequence, n.text))
            }
            _ => None,
        })
        .collect()
}

/// Writers adding notes to one incident until finished, each through its
/// own client; failures are not retried (a replica that is gone fails every
/// call until the test finishes the storm).
struct Storm {
    stop: Arc<AtomicBool>,
    total: Arc<AtomicUsize>,
    writers: Vec<tokio::task::JoinHandle<Vec<(String, u64)>>>,
}

impl Storm {
    /// One writer per `(name, client)`, its notes named after it.
    fn start(clients: Vec<(String, TimelineServiceClient<Channel>)>, incident_id: &str) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicUsize::new(0));
        let writers = clients
            .into_iter()
            .map(|(name, mut client)| {
                let (stop, total) = (Arc::clone(&stop), Arc::clone(&total));
                let incident_id = incident_id.to_owned();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let text = format!("{name} note {n}");
                        let call = client.add_note(note(&incident_id, text.clone(), rid()));
                        match tokio::time::timeout(Duration::from_secs(10), call).await {
                            Ok(Ok(r)) => {
                                acked.push((text, r.into_inner().event.expect("event").sequence));
                                total.fetch_add(1, Ordering::Relaxed);
                            }
                            // Unacknowledged: it may or may not have committed.
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                    acked
                })
            })
            .collect();
        Storm {
            stop,
            total,
            writers,
        }
    }

    /// Waits for `more` acknowledged writes than so far.
    async fn until_more(&self, more: usize) {
        let now = self.total.load(Ordering::Relaxed);
        until_total(&self.total, now + more).await;
    }

    /// Stops the writers; every acknowledged note's text, with its sequence.
    async fn finish(self) -> Vec<(String, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for w in self.writers {
            acked.extend(w.await.expect("writer"));
        }
        acked
    }
}

/// Every acknowledged note of `acked` is in `log` (texts with their count)
/// exactly once.
fn assert_each_once(log: &BTreeMap<String, usize>, acked: &[(String, u64)]) {
    for (text, _) in acked {
        assert_eq!(
            log.get(text),
            Some(&1),
            "acknowledged {text:?} is in the log once"
        );
    }
}

async fn until_total(total: &AtomicUsize, n: usize) {
    within(&format!("{n} acknowledged writes"), async {
        while total.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_replica_killed_during_a_write_storm_loses_no_acknowledged_write() {
    let Some(r) = Replicas::start(3).await else {
        return;
    };
    let incident = create_incident(&mut r.incidents(1).await, plain_incident("Storm")).await;
    // Its subscriber is on the replica that will die.
    let mut sub = r.subscription(0);
    let first = read_through(&mut sub, 1).await;
    assert_eq!(first, vec![1]);

    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push((format!("replica {i}"), r.timeline(i).await));
    }
    let storm = Storm::start(clients, &incident.id);
    storm.until_more(60).await;
    r.daemons[0].signal("KILL");
    storm.until_more(90).await;
    let acked = storm.finish().await;

    let mut survivor = r.timeline(1).await;
    assert_each_once(&notes_in_log(&mut survivor).await, &acked);
    let last = head_sequence(&mut survivor).await;
    let seen = read_through(&mut sub, last).await;
    assert_eq!(
        [first, seen].concat(),
        (1..=last).collect::<Vec<_>>(),
        "the subscriber resumed elsewhere and saw every event once, in order\n{}",
        r.logs()
    );
    assert_ne!(sub.endpoint(), 0, "it left the killed replica");
}

/// Ends every connection of the replicas to their database, from the
/// database side.
async fn terminate_connections(admin: &str, database: &str) -> u64 {
    let mut conn = PgConnection::connect(admin).await.expect("connect (admin)");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(&mut conn)
    .await
    .expect("pg_terminate_backend");
    conn.close().await.ok();
    ended.iter().filter(|e| **e).count() as u64
}

#[tokio::test]
async fn terminated_database_connections_are_reconnected_without_loss_or_repeat() {
    let Some(r) = Replicas::start(2).await else {
        return;
    };
    let admin = postgres_admin_url().expect("admin url");
    let database = r.db.postgres_name().expect("postgres").to_owned();
    let incident = create_incident(&mut r.incidents(0).await, plain_incident("Terminated")).await;
    let mut subs: Vec<Subscription> = (0..2).map(|i| r.subscription(i)).collect();

    // Each write is retried under its request_id, on the next replica, until
    // acknowledged: it must then be in the log exactly once.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4 {
        let clients = [r.timeline(0).await, r.timeline(1).await];
        let id = incident.id.clone();
        let acked = Arc::clone(&acked);
        writers.push(tokio::spawn(async move {
            let mut texts = Vec::new();
            for n in 0..40 {
                let text = format!("writer {w} note {n}");
                let request_id = rid();
                let mut attempt = 0usize;
                loop {
                    let mut c = clients[(w + attempt) % 2].clone();
                    let req = Request::new(note(&id, text.clone(), request_id.clone()));
                    match c.add_note(req).await {
                        Ok(_) => break,
                        Err(s) => {
                            // A lost connection is UNAVAILABLE: what a
                            // client retries.
                            assert_eq!(s.code(), Code::Unavailable, "{text}: {s:?}");
                            attempt += 1;
                            assert!(attempt < 500, "{text}: still failing: {s:?}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::Relaxed);
                texts.push(text);
            }
            texts
        }));
    }
    let mut terminated = 0;
    for round in 1..=3 {
        until_total(&acked, round * 30).await;
        terminated += terminate_connections(&admin, &database).await;
    }
    let mut texts = Vec::new();
    for w in writers {
        texts.extend(w.await.expect("writer"));
    }
    assert!(terminated > 0, "connections were terminated");

    let mut client = r.timeline(1).await;
    let log = notes_in_log(&mut client).await;
    for text in &texts {
        assert_eq!(
            log.get(text),
            Some(&1),
            "{text:?} is in the log exactly once"
        );
    }
    let last = head_sequence(&mut client).await;
    for (i, sub) in subs.iter_mut().enumerate() {
        let seen = read_through(sub, last).await;
        assert_eq!(
            seen,
            (1..=last).collect::<Vec<_>>(),
            "subscriber {i}: every event once, in order\n{}",
            r.logs()
        );
    }
}

/// The backend of `replica` (its sessions are named after its log) that sits
/// in a transaction which has locked or written something, if there is one
/// once no backend of the test database is running a statement.
async fn idle_holder(admin: &mut PgConnection, database: &str, replica: &str) -> Option<i32> {
    // A statement the stopped replica sent before it stopped still runs
    // for a moment; its transaction is idle once it is answered.
    within("the database's backends to settle", async {
        loop {
            let active: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()",
            )
            .bind(database)
            .fetch_one(&mut *admin)
            .await
            .expect("pg_stat_activity");
            if active == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = $1 AND application_name = $2
           AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
    )
    .bind(database)
    .bind(replica)
    .fetch_optional(&mut *admin)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test]
async fn a_replica_stopped_inside_a_write_transaction_does_not_hold_the_others_writes() {
    // Replica 0 is stopped (SIGSTOP: a paused VM, a process starved of CPU)
    // while its writer holds a transaction open; its locks are what every
    // other replica's write to the same incident needs.
    let Some(r) = Replicas::start_with(2, |i| match i {
        0 => vec!["--write-idle-timeout".into(), "2s".into()],
        _ => Vec::new(),
    })
    .await
    else {
        return;
    };
    let admin = postgres_admin_url().expect("admin url");
    let database = r.db.postgres_name().expect("postgres").to_owned();
    let incident = create_incident(&mut r.incidents(1).await, plain_incident("Stalled")).await;
    let mut sub = r.subscription(0);

    let mut clients = Vec::new();
    for w in 0..8 {
        clients.push((format!("writer {w}"), r.timeline(0).await));
    }
    let storm = Storm::start(clients, &incident.id);
    storm.until_more(20).await;
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect (admin)");
    let mut holder = None;
    for _ in 0..200 {
        r.daemons[0].signal("STOP");
        // Replica 1's own groups (its background work among them) may be
        // between two statements too: only replica 0's session will do.
        holder = idle_holder(&mut conn, &database, "replica-0").await;
        if holder.is_some() {
            break;
        }
        // Caught between two groups: let it run on and try again.
        r.daemons[0].signal("CONT");
        storm.until_more(2).await;
    }
    let holder = holder.expect("replica 0 stopped inside a write transaction");

    // With replica 0 still stopped, replica 1 writes to the same incident.
    let mut other = r.timeline(1).await;
    let text = "written while replica 0 is stopped".to_string();
    within(
        "a write on replica 1 while replica 0 holds its locks",
        async {
            other
                .add_note(note(&incident.id, text.clone(), rid()))
                .await
                .expect("add note on replica 1")
        },
    )
    .await;
    // A backend that is ending releases its locks before it leaves
    // pg_stat_activity.
    within("the database ending the stopped replica's session", async {
        loop {
            let left: Option<i32> =
                sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE pid = $1")
                    .bind(holder)
                    .fetch_optional(&mut conn)
                    .await
                    .expect("pg_stat_activity");
            if left.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    conn.close().await.ok();

    // Replica 0 resumes: its writer finds its connection gone, opens another
    // and goes on writing.
    r.daemons[0].signal("CONT");
    storm.until_more(40).await;
    let acked = storm.finish().await;
    let log = notes_in_log(&mut other).await;
    assert_eq!(log.get(&text), Some(&1));
    assert_each_once(&log, &acked);
    let last = head_sequence(&mut other).await;
    let seen = read_through(&mut sub, last).await;
    assert_eq!(
        seen,
        (1..=last).collect::<Vec<_>>(),
        "a subscriber of replica 0 saw every event once, in order\n{}",
        r.logs()
    );
}

/// Which of `metrics` (metrics addresses) report holding the background
/// lease; `None` while one of them does not answer.
async fn lease_holders(metrics: &[String]) -> Option<Vec<usize>> {
    let mut holders = Vec::new();
    for (i, addr) in metrics.iter().enumerate() {
        let body = http_get(addr, "/metrics").await?;
        let held = body
            .lines()
            .find_map(|l| l.strip_prefix("incidentd_background_lease_held "))?;
        if held.trim() == "1" {
            holders.push(i);
        }
    }
    Some(holders)
}

#[tokio::test]
async fn background_work_runs_on_one_replica_and_moves_when_it_dies() {
    // Each metrics port is picked just before its replica starts, so that
    // no other test takes it meanwhile.
    let picked = std::sync::Mutex::new(Vec::new());
    let Some(r) = Replicas::start_with(3, |_| {
        let addr = format!("127.0.0.1:{}", free_port());
        picked.lock().expect("ports").push(addr.clone());
        vec!["--metrics-listen".into(), addr]
    })
    .await
    else {
        return;
    };
    let metrics = picked.into_inner().expect("ports");
    let holder = eventually("one replica holding the lease", || async {
        lease_holders(&metrics)
            .await
            .filter(|h| h.len() == 1)
            .map(|h| h[0])
    })
    .await;
    r.daemons[holder].signal("KILL");
    let others: Vec<String> = (0..3)
        .filter(|i| *i != holder)
        .map(|i| metrics[i].clone())
        .collect();
    eventually("another replica taking the lease over", || async {
        lease_holders(&others).await.filter(|h| h.len() == 1)
    })
    .await;
}

#[tokio::test]
async fn replicas_seeding_one_database_at_once_load_each_seed_once() {
    let Some(admin) = postgres_admin_url() else {
        println!("skipped: {POSTGRES_VAR} is not set");
        return;
    };
    let db = TestDb::postgres(&admin).await;
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds");
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
                .args(["seed", "--database", db.as_str(), "--dir", seeds])
                .kill_on_drop(true)
                .output()
        })
        .collect();
    for out in futures::future::join_all(loaders).await {
        let out = out.expect("run incidentd seed");
        assert!(
            out.status.success(),
            "seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = std::fs::read_dir(seeds)
        .expect("seeds")
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "toml"))
        })
        .count() as i64;
    assert!(files > 0);
    assert_eq!(db.count("seeds").await, files, "each seed recorded once");
    assert_eq!(
        db.count("incidents").await,
        files,
        "each seed's incident created once"
    );
}

#[tokio::test]
async fn a_public_subscriber_sees_on_another_replica_what_the_writing_replica_shows() {
    let Some(r) = Replicas::start(2).await else {
        return;
    };
    // The same public subscription on each replica; the writes go to replica
    // 0, so replica 1 projects them from the log, replica 0 as it commits.
    let request = || SubscribeTimelineRequest {
        view: View::Public as i32,
        ..subscribe_request(Start::AfterSequence(0))
    };
    let mut subs: Vec<Subscription> = (0..2)
        .map(|i| {
            let channels = lazy_channels([r.daemons[i].url()]).expect("endpoint");
            Subscription::over(channels, request())
        })
        .collect();
    let mut c = r.incidents(0).await;
    let public = create_incident(
        &mut c,
        Incident {
            visibility: Visibility::Public as i32,
            ..plain_incident("Seen by everyone")
        },
    )
    .await;
    // Both following the log live before the rest is written: replica 1's
    // subscriber then gets it from the tail's projection, not from a replay.
    for sub in &mut subs {
        within("the first public event", async {
            assert_eq!(sub.next().await.expect("an event").incident_id, public.id);
        })
        .await;
    }
    let internal = create_incident(&mut c, plain_incident("Seen by staff")).await;
    let post = |id: &str, message: &str| PostStatusUpdateRequest {
        incident_id: id.into(),
        message: message.into(),
        ..Default::default()
    };
    c.post_status_update(post(&internal.id, "staff only"))
        .await
        .expect("post");
    c.post_status_update(post(&public.id, "we are looking into it"))
        .await
        .expect("post");
    r.timeline(0)
        .await
        .add_note(note(&public.id, "an internal note".into(), rid()))
        .await
        .expect("note");
    c.post_status_update(post(&public.id, "resolved"))
        .await
        .expect("post");
    let last = head_sequence(&mut r.timeline(0).await).await;
    let mut seen = Vec::new();
    for sub in &mut subs {
        let mut events = vec![];
        within("the public events", async {
            while events
                .last()
                .is_none_or(|e: &incident_client::TimelineEvent| e.sequence < last)
            {
                events.push(sub.next().await.expect("an event"));
            }
        })
        .await;
        seen.push(events);
    }
    assert!(
        seen[0].iter().all(|e| e.incident_id == public.id),
        "only the public incident's events: {:?}",
        seen[0]
    );
    assert!(
        !seen[0]
            .iter()
            .any(|e| e.kind == TimelineEventKind::NoteAdded as i32),
        "no internal note"
    );
    assert_eq!(
        seen[0].len(),
        2,
        "after its creation, its two updates: {:?}",
        seen[0]
    );
    assert_eq!(
        seen[1], seen[0],
        "the replica that read them from the log shows the public exactly what the writer's shows"
    );
}

#[tokio::test]
async fn one_replica_with_several_write_connections_keeps_one_log_in_order() {
    let Some(r) = Replicas::start_with(1, |_| vec!["--write-connections".into(), "4".into()]).await
    else {
        return;
    };
    let mut incidents = Vec::new();
    for n in 0..8 {
        incidents.push(
            create_incident(
                &mut r.incidents(0).await,
                plain_incident(&format!("Busy {n}")),
            )
            .await,
        );
    }
    let mut sub = r.subscription(0);
    assert_eq!(read_through(&mut sub, 8).await, (1..=8).collect::<Vec<_>>());
    // Enough writers at once, on incidents of their own (no row lock to wait
    // for), that groups run on every connection together.
    let mut writers = Vec::new();
    for w in 0..16 {
        let t = r.timeline(0).await;
        writers.push(add_notes(
            t,
            incidents[w % 8].id.clone(),
            format!("writer {w}"),
            20,
        ));
    }
    let answered = all_answered(writers).await;
    let last = 8 + answered.len() as u64;
    assert_eq!(
        [(1..=8).collect(), read_through(&mut sub, last).await].concat(),
        (1..=last).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let logged = notes_by_sequence(&mut r.timeline(0).await).await;
    for (sequence, text) in &answered {
        assert_eq!(logged.get(sequence), Some(text), "sequence {sequence}");
    }
}

#[tokio::test]
async fn a_retry_sent_to_another_replica_while_the_first_is_in_flight_gets_the_first_answer() {
    let Some(r) = Replicas::start(2).await else {
        return;
    };
    // The same request_id to both replicas at once, again and again: whichever
    // commits second must replay the first's answer, not refuse the name as
    // taken nor create a second component.
    for n in 0..20 {
        let request_id = rid();
        let sends: Vec<_> = (0..2)
            .map(|i| {
                let channel = r.daemons[i].channel();
                let request_id = request_id.clone();
                async move {
                    ComponentServiceClient::new(channel.await)
                        .create_component(CreateComponentRequest {
                            component: Some(Component {
                                name: format!("api-{n}"),
                                ..Default::default()
                            }),
                            request_id,
                        })
                        .await
                        .map(|r| r.into_inner().component)
                }
            })
            .collect();
        let answers = futures::future::join_all(sends).await;
        let answers: Vec<_> = answers
            .into_iter()
            .map(|a| a.expect("both answered"))
            .collect();
        assert_eq!(answers[0], answers[1], "round {n}: the same answer twice");
    }
    assert_eq!(
        r.db.count("components").await,
        20,
        "one component per request"
    );
}
