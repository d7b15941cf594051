//! Broken seeds: named by file and field, and nothing loaded.

use std::path::Path;

use incidentd::seed::{self, Outcome};
use incidentd::store::{Store, StoreOptions};

use super::*;
use crate::support::*;

/// A copy of `seeds/` in a temporary folder, with `file` rewritten by `edit`.
fn broken_copy(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in SEED_FILES {
        std::fs::copy(seeds_dir().join(f), dir.path().join(f)).expect("copy seed");
    }
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read seed");
    std::fs::write(&path, edit(text)).expect("write seed");
    dir
}

/// Replaces exactly one occurrence of `from`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once");
    text.replacen(from, to, 1)
}

#[track_caller]
fn assert_names(e: &seed::SeedError, file: &str, field: &str, reason: &str) {
    let message = e.to_string();
    assert!(
        Path::new(&e.file).ends_with(file),
        "file {:?} in {message:?}",
        e.file
    );
    assert_eq!(e.field, field, "field in {message:?}");
    assert!(
        e.reason.contains(reason),
        "reason {:?} in {message:?}",
        e.reason
    );
    assert!(
        message.contains(file) && message.contains(field),
        "{message}"
    );
}

const DIXA: &str = "004_dixa_2024-10-01_queue_routing.toml";
const LIVECHAT: &str = "001_iadvize_2024-02-22_livechat_db.toml";

/// A broken copy: the file, how to break it, the field and reason expected.
type Case = (
    &'static str,
    Box<dyn FnOnce(String) -> String>,
    &'static str,
    &'static str,
);

#[test]
fn a_broken_seed_file_is_rejected_naming_file_and_field() {
    let cases: Vec<Case> = vec![
        // A missing required field.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "declare_time = \"2024-10-01T14:12:00+02:00\"   # first post, 14:12 CEST\n",
                    "",
                )
            }),
            "declare_time",
            "missing field",
        ),
        // A time without its offset.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "time = \"2024-10-02T09:38:00+02:00\"",
                    "time = \"2024-10-02 09:38\"",
                )
            }),
            "updates[5].time",
            "RFC 3339",
        ),
        // An unknown status.
        (
            DIXA,
            Box::new(|t| replace_once(&t, "status = \"RESOLVED\"", "status = \"CLOSED\"")),
            "updates[7].status",
            "unknown status",
        ),
        // An unknown action item status.
        (
            LIVECHAT,
            Box::new(|t| replace_once(&t, "status = \"IN_PROGRESS\"", "status = \"STARTED\"")),
            "action_items[1].status",
            "unknown status",
        ),
        // An unknown field.
        (
            LIVECHAT,
            Box::new(|t| replace_once(&t, "severity = \"P0\"", "severity = \"P0\"\npriority = 1")),
            "priority",
            "unknown field",
        ),
        // A bad milestone time.
        (
            LIVECHAT,
            Box::new(|t| {
                replace_once(
                    &t,
                    "resolve_time = \"2024-02-22T10:50:00+01:00\"",
                    "resolve_time = \"10:50 CET\"",
                )
            }),
            "milestones.resolve_time",
            "RFC 3339",
        ),
        // An impact on a component the file does not declare.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "\"Agent Interface/Dashboard\" = \"OPERATIONAL\"",
                    "\"Agent Interface/Inbox\" = \"OPERATIONAL\"",
                )
            }),
            "updates[6].impacts",
            "not declared",
        ),
        // A duration that is not one.
        (
            "002_iadvize_2024-09-02_notifications.toml",
            Box::new(|t| replace_once(&t, "duration = \"37m\"", "duration = \"37 parsecs\"")),
            "impact_windows[1].duration",
            "37 parsecs",
        ),
    ];
    for (file, edit, field, reason) in cases {
        let dir = broken_copy(file, edit);
        let e = seed::read_dir(dir.path())
            .err()
            .unwrap_or_else(|| panic!("{file} broken at {field} is rejected"));
        assert_names(&e, file, field, reason);
        // The same through `parse` on the one file.
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let e = seed::parse(&path.display().to_string(), &text)
            .err()
            .expect("rejected by parse");
        assert_names(&e, file, field, reason);
    }
}

/// A fresh database's state, and the server of it, stopped.
async fn fresh_db() -> (TestServer, DbSnapshot) {
    let mut ts = TestServer::start().await;
    ts.stop().await;
    let state = ts.snapshot().await;
    (ts, state)
}

/// Loads `dir` with the loader straight on the test server's database.
async fn load_dir(ts: &TestServer, dir: &Path) -> Result<Vec<Outcome>, seed::SeedError> {
    let seeds = seed::read_dir(dir).expect("parses: the error is the RPC validation's");
    let store = Store::open(ts.db.as_str(), StoreOptions::default())
        .await
        .expect("open store");
    let out = seed::load(&store, seeds).await;
    store.close().await;
    out
}

#[track_caller]
fn assert_nothing_loaded_counts(counts: [i64; 4]) {
    assert_eq!(counts, [0; 4], "incidents, components, events, seeds");
}

async fn counts(ts: &TestServer) -> [i64; 4] {
    [
        ts.count("incidents").await,
        ts.count("components").await,
        ts.count("events").await,
        ts.count("seeds").await,
    ]
}

#[tokio::test]
async fn a_seed_failing_rpc_validation_loads_nothing_not_even_the_good_ones() {
    // The last file in load order: the four before it are written in the same
    // transaction, and must be rolled back with it.
    let long = "x".repeat(300);
    let dir = broken_copy(DIXA, |t| {
        replace_once(
            &t,
            "title = \"Delays in the Dashboard, Analytics, and Offers for some queues\"",
            &format!("title = \"{long}\""),
        )
    });
    let (ts, before) = fresh_db().await;
    let e = load_dir(&ts, dir.path()).await.expect_err("rejected");
    assert_names(&e, DIXA, "incident", "incident.title");
    assert!(e.reason.contains("200"), "{e}");
    ts.assert_unchanged(&before, "a refused load").await;
    assert_nothing_loaded_counts(counts(&ts).await);
}

#[tokio::test]
async fn a_next_update_before_its_post_is_rejected_and_loads_nothing() {
    // "Next Update: 13:00 UCT" read as CEST would be before its 14:12 CEST post.
    let dir = broken_copy(DIXA, |t| {
        replace_once(
            &t,
            "next_update = \"2024-10-01T13:00:00Z\"",
            "next_update = \"2024-10-01T13:00:00+02:00\"",
        )
    });
    let (ts, before) = fresh_db().await;
    let e = load_dir(&ts, dir.path()).await.expect_err("rejected");
    assert_names(&e, DIXA, "updates[0]", "next_update_time");
    ts.assert_unchanged(&before, "a refused load").await;
    assert_nothing_loaded_counts(counts(&ts).await);
}

#[tokio::test]
async fn a_server_started_with_a_broken_seed_refuses_and_changes_nothing() {
    let dir = broken_copy(LIVECHAT, |t| {
        replace_once(&t, "status = \"MONITORING\"", "status = \"WATCHING\"")
    });
    let (ts, before) = fresh_db().await;
    let options = Options {
        seed_dir: Some(dir.path().to_owned()),
        ..Options::default()
    };
    let started = start_server("127.0.0.1:0", ts.db.as_str(), &options).await;
    let e = match started {
        Ok(_) => panic!("a server with a broken seed must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains(LIVECHAT) && e.contains("updates[3].status") && e.contains("WATCHING"),
        "{e}"
    );
    ts.assert_unchanged(&before, "a refused load").await;
    assert_nothing_loaded_counts(counts(&ts).await);
}
