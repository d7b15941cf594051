//! Corrections: a status update or a note is corrected by its author or an
//! admin; the earlier text is kept (in the update's revisions, in the log);
//! the public sees only the current text.

use incident_client::timeline_event::Payload;
use incident_client::tonic::Code;
use incident_client::*;

use super::*;
use crate::support::*;

fn payloads(events: &[TimelineEvent]) -> Vec<&Payload> {
    events.iter().filter_map(|e| e.payload.as_ref()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_update_keeps_every_earlier_text() {
    let srv = server().await;
    let admin = Writer::new(&srv).await;
    let rita = Writer::with(&srv, RITA).await;
    let i = admin.declare("Checkout errors", Visibility::Public).await;
    let posted = rita
        .post(&i.id, "SECRET draft: its the databse", Visibility::Internal)
        .await;
    let before = Reader::full(&srv)
        .await
        .list_events("", 100)
        .await
        .expect("events");

    // The author fixes the text; an admin then makes it public.
    let fixed = rita
        .edit_update(
            &posted.id,
            "A database failover is under way",
            Visibility::Unspecified,
        )
        .await
        .expect("the author corrects");
    assert_eq!(
        fixed.visibility,
        Visibility::Internal as i32,
        "visibility kept"
    );
    assert_ne!(fixed.etag, posted.etag);
    let public = admin
        .edit_update(&posted.id, "", Visibility::Public)
        .await
        .expect("an admin corrects anyone's");
    assert_eq!(public.message, "A database failover is under way");
    assert!(public.edit_time.is_some());
    let revisions: Vec<(&str, i32, &str)> = public
        .revisions
        .iter()
        .map(|r| (r.message.as_str(), r.visibility, r.editor.as_str()))
        .collect();
    assert_eq!(
        revisions,
        [
            (
                "SECRET draft: its the databse",
                Visibility::Internal as i32,
                "rita"
            ),
            (
                "A database failover is under way",
                Visibility::Internal as i32,
                WRITER_NAME
            ),
        ],
        "oldest first, each with who replaced it"
    );

    // The log is only appended to: the events before are as they were.
    let full = Reader::full(&srv).await;
    let after = full.list_events("", 100).await.expect("events").concat();
    assert_eq!(&after[..before.concat().len()], &before.concat()[..]);
    let new = &after[before.concat().len()..];
    match payloads(new)[..] {
        [
            Payload::StatusUpdateEdited(edited),
            Payload::VisibilityChanged(moved),
        ] => {
            assert_eq!(edited.old_message, "SECRET draft: its the databse");
            let u = edited.status_update.as_ref().expect("update");
            assert_eq!(u.message, "A database failover is under way");
            assert!(
                u.revisions.is_empty(),
                "the event holds the change, not the history"
            );
            assert_eq!(moved.status_update_id, posted.id);
            assert_eq!(moved.new_visibility, Visibility::Public as i32);
        }
        _ => panic!("wanted STATUS_UPDATE_EDITED then VISIBILITY_CHANGED: {new:?}"),
    }
    let updates = full
        .list_status_updates(&i.id, 10)
        .await
        .expect("updates")
        .concat();
    assert_eq!(updates[0].revisions.len(), 2);

    // The public: the current text, when it was corrected, no history.
    for reader in [Reader::public(&srv).await, Reader::preview(&srv).await] {
        let updates = reader
            .list_status_updates(&i.id, 10)
            .await
            .expect("updates")
            .concat();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].message, "A database failover is under way");
        assert_eq!(updates[0].edit_time, public.edit_time);
        assert!(updates[0].revisions.is_empty());
        assert_eq!(updates[0].etag, "");
        let events = reader.list_events("", 100).await.expect("events").concat();
        assert!(!format!("{events:?}").contains("SECRET"), "{events:?}");
        let posted_text: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::StatusUpdatePosted(p)) => {
                    p.status_update.as_ref().map(|u| u.message.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(posted_text, ["A database failover is under way"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_note_is_a_new_event_and_the_log_keeps_the_first() {
    let srv = server().await;
    let admin = Writer::new(&srv).await;
    let rita = Writer::with(&srv, RITA).await;
    let i = admin.declare("Checkout errors", Visibility::Public).await;
    let added = rita
        .note(&i.id, "SECRET rollback in 5 min", Visibility::Internal)
        .await;
    let edited = rita
        .edit_note(
            &i.reference,
            added.sequence,
            "Rollback done",
            Visibility::Public,
        )
        .await
        .expect("the author corrects")
        .expect("an event");
    assert!(edited.sequence > added.sequence);
    match &edited.payload {
        Some(Payload::NoteEdited(n)) => {
            assert_eq!(n.note_sequence, added.sequence);
            assert_eq!(n.text, "Rollback done");
            assert_eq!(n.old_text, "SECRET rollback in 5 min");
            assert_eq!(n.visibility, Visibility::Public as i32);
        }
        other => panic!("{other:?}"),
    }
    // The same correction again changes nothing and appends nothing.
    let again = rita
        .edit_note(&i.id, added.sequence, "Rollback done", Visibility::Public)
        .await
        .expect("accepted");
    assert_eq!(again, None);
    let full = Reader::full(&srv)
        .await
        .list_events(&i.id, 100)
        .await
        .expect("events")
        .concat();
    let first = full
        .iter()
        .find(|e| e.sequence == added.sequence)
        .expect("kept");
    assert_eq!(first, &added, "the NOTE_ADDED event never changes");
    assert_eq!(
        full.last().map(|e| e.kind),
        Some(TimelineEventKind::VisibilityChanged as i32)
    );

    let public = Reader::public(&srv)
        .await
        .list_events(&i.id, 100)
        .await
        .expect("events")
        .concat();
    let texts: Vec<&str> = public
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::NoteAdded(n)) => Some(n.text.as_str()),
            Some(Payload::NoteEdited(n)) => Some(n.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["Rollback done", "Rollback done"],
        "the current text"
    );
    assert!(!format!("{public:?}").contains("SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_author_or_an_admin_corrects() {
    let srv = server().await;
    let admin = Writer::new(&srv).await;
    let rita = Writer::with(&srv, RITA).await;
    let ron = Writer::with(&srv, RON).await;
    let i = admin.declare("Checkout errors", Visibility::Public).await;
    let update = rita.post(&i.id, "Investigating", Visibility::Public).await;
    let note = rita.note(&i.id, "paging", Visibility::Internal).await;
    let denied = || Rejection::new(Code::PermissionDenied, "PERMISSION_DENIED");
    let status = assert_rejected(
        &srv,
        denied(),
        ron.edit_update(&update.id, "Mine now", Visibility::Unspecified),
    )
    .await;
    assert!(status.message().contains("rita"), "{}", status.message());
    assert_rejected(
        &srv,
        denied(),
        ron.edit_note(&i.id, note.sequence, "Mine now", Visibility::Unspecified),
    )
    .await;
    // A viewer may not write at all.
    let r = EditStatusUpdateRequest {
        id: update.id.clone(),
        message: "x".into(),
        ..Default::default()
    };
    assert_rejected(
        &srv,
        denied(),
        admin.incidents().edit_status_update(authorized(r, VIEWER)),
    )
    .await;
    admin
        .edit_update(
            &update.id,
            "Investigating checkout",
            Visibility::Unspecified,
        )
        .await
        .expect("an admin corrects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_corrections_are_refused_and_write_nothing() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let i = w.declare("Checkout errors", Visibility::Public).await;
    let update = w.post(&i.id, "Investigating", Visibility::Public).await;
    let note = w.note(&i.id, "paging", Visibility::Internal).await;
    let missing = "0190c0de-0000-7000-8000-000000000000";
    let mut incidents = w.incidents();
    let mut cases = Cases::new(&srv, "bad corrections");
    let edit = |id: &str, message: &str, visibility: i32, etag: &str| EditStatusUpdateRequest {
        id: id.into(),
        message: message.into(),
        visibility,
        etag: etag.into(),
        ..Default::default()
    };
    for (name, want, r) in [
        (
            "nothing to change",
            Rejection::invalid(&["message"]),
            edit(&update.id, "", 0, ""),
        ),
        (
            "not an id",
            Rejection::invalid(&["id"]),
            edit("x", "m", 0, ""),
        ),
        (
            "too long",
            Rejection::invalid(&["message"]),
            edit(&update.id, &"x".repeat(16 * 1024 + 1), 0, ""),
        ),
        (
            "unknown visibility",
            Rejection::invalid(&["visibility"]),
            edit(&update.id, "m", 5, ""),
        ),
        (
            "stale etag",
            Rejection::stale_etag("status_update_id", &update.id),
            edit(&update.id, "m", 0, "stale"),
        ),
        (
            "no such update",
            Rejection::not_found("status_update_id", missing),
            edit(missing, "m", 0, ""),
        ),
    ] {
        cases
            .reject(name, want, incidents.edit_status_update(w.req(r)))
            .await;
    }
    let mut timeline = w.timeline();
    let note_edit = |sequence: u64, text: &str| EditNoteRequest {
        incident_id: i.id.clone(),
        note_sequence: sequence,
        text: text.into(),
        ..Default::default()
    };
    for (name, want, r) in [
        (
            "no sequence",
            Rejection::invalid(&["note_sequence"]),
            note_edit(0, "t"),
        ),
        (
            "nothing to change",
            Rejection::invalid(&["text"]),
            note_edit(note.sequence, ""),
        ),
        (
            "not a note",
            Rejection::not_found("note_id", "1"),
            note_edit(1, "t"),
        ),
    ] {
        cases.reject(name, want, timeline.edit_note(w.req(r))).await;
    }
    cases.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_correction_returns_the_first_answer() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let i = w.declare("Checkout errors", Visibility::Public).await;
    let update = w.post(&i.id, "Investigating", Visibility::Public).await;
    let r = EditStatusUpdateRequest {
        id: update.id.clone(),
        message: "Investigating checkout".into(),
        request_id: "0190c0de-0000-7000-8000-0000000000aa".into(),
        ..Default::default()
    };
    let first = w
        .incidents()
        .edit_status_update(w.req(r.clone()))
        .await
        .expect("first")
        .into_inner();
    let before = srv.snapshot().await;
    let again = w
        .incidents()
        .edit_status_update(w.req(r))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, first);
    srv.assert_unchanged(&before, "a retried correction").await;
}
