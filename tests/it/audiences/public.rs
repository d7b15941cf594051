//! The public view, read as a user would: which incidents exist, what is
//! in them, what is refused, and how lists page.

use incident_client::subscribe_timeline_request::Start;
use incident_client::timeline_event::Payload;
use incident_client::tonic::Code;
use incident_client::*;
use prost::Message;

use super::*;
use crate::support::*;

/// The fields the public may never read of an incident are all unset.
fn assert_allowlisted(i: &Incident) {
    assert!(i.labels.is_empty(), "labels: {:?}", i.labels);
    assert!(i.roles.is_empty(), "roles: {:?}", i.roles);
    assert_eq!(i.etag, "", "etag");
    assert_eq!((i.action_item_count, i.open_action_item_count), (0, 0));
    assert_eq!(i.delete_time, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_sees_public_incidents_and_in_them_only_what_is_public() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let hidden = w
        .declare("SECRET database failover", Visibility::Unspecified)
        .await;
    assert_eq!(
        hidden.visibility,
        Visibility::Internal as i32,
        "INTERNAL by default"
    );
    let shown = w.declare("Checkout errors", Visibility::Public).await;
    let update = w
        .post(&shown.id, "We are investigating", Visibility::Unspecified)
        .await;
    assert_eq!(
        update.visibility,
        Visibility::Public as i32,
        "updates: PUBLIC by default"
    );
    w.post(
        &shown.id,
        "SECRET it was the config push",
        Visibility::Internal,
    )
    .await;
    let note = w
        .note(&shown.id, "SECRET paging the DBA", Visibility::Unspecified)
        .await;
    match note.payload {
        Some(Payload::NoteAdded(n)) => {
            assert_eq!(
                n.visibility,
                Visibility::Internal as i32,
                "notes: INTERNAL by default"
            )
        }
        other => panic!("not a note: {other:?}"),
    }
    w.note(&shown.id, "Customers may retry", Visibility::Public)
        .await;
    for reader in [Reader::public(&srv).await, Reader::preview(&srv).await] {
        let pages = reader.list_incidents(50).await.expect("list");
        let listed: Vec<&Incident> = pages.iter().flatten().collect();
        assert_eq!(listed.len(), 1, "only the public incident is listed");
        assert_eq!(listed[0].id, shown.id);
        assert_allowlisted(listed[0]);
        let got = reader.get_incident(&shown.reference).await.expect("get");
        assert_allowlisted(&got);
        assert_eq!(got.title, "Checkout errors");

        let updates: Vec<StatusUpdate> = reader
            .list_status_updates(&shown.id, 50)
            .await
            .expect("updates")
            .concat();
        assert_eq!(updates.len(), 1, "only the public update");
        assert_eq!(updates[0].message, "We are investigating");
        assert_eq!(updates[0].author, "", "no author");

        let events: Vec<TimelineEvent> = reader.list_events("", 50).await.expect("events").concat();
        let text = format!("{events:?}");
        assert!(
            !text.contains("SECRET"),
            "internal text in the public timeline: {text}"
        );
        assert!(
            events.iter().all(|e| e.actor.is_empty()),
            "actors are blanked"
        );
        let notes: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::NoteAdded(n)) => Some(n.text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(notes, ["Customers may retry"]);
        assert!(
            events.iter().all(|e| e.incident_id == shown.id),
            "nothing of the internal incident"
        );
    }
    // The full view still has everything.
    let full = Reader::full(&srv).await;
    let all = full.list_events("", 50).await.expect("events").concat();
    assert!(format!("{all:?}").contains("SECRET paging the DBA"));
    assert_eq!(
        full.list_incidents(50).await.expect("list").concat().len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_incident_is_not_found_exactly_like_a_missing_one() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let hidden = w.declare("SECRET", Visibility::Internal).await;
    let deleted = w.declare("gone", Visibility::Public).await;
    w.set_deleted(&deleted.id, true).await;
    let missing = "0190c0de-0000-7000-8000-000000000000";
    let reader = Reader::public(&srv).await;
    // The same answer, naming what the caller sent, for each way of asking.
    let same = |got: Status, sent: &str, what: &str| {
        Rejection::not_found("incident_id", sent)
            .check(&got)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            got.message().replace(sent, "ID"),
            format!("incident {sent} not found").replace(sent, "ID"),
            "{what}: the message tells nothing more"
        );
    };
    for (sent, what) in [
        (hidden.id.as_str(), "internal by id"),
        (hidden.reference.as_str(), "internal by reference"),
        (deleted.id.as_str(), "deleted by id"),
        (missing, "missing id"),
        ("INC-999", "missing reference"),
    ] {
        same(reader.get_incident(sent).await.unwrap_err(), sent, what);
        same(
            reader.list_status_updates(sent, 10).await.unwrap_err(),
            sent,
            what,
        );
        same(reader.get_postmortem(sent).await.unwrap_err(), sent, what);
        same(reader.list_events(sent, 10).await.unwrap_err(), sent, what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_role_reads_the_public_view_only() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let shown = w.declare("Checkout errors", Visibility::Public).await;
    let public = Reader::new(&srv, PUBLIC, View::Full).await;
    let denied = || Rejection::new(Code::PermissionDenied, "PERMISSION_DENIED");
    assert_rejected(&srv, denied(), public.get_incident(&shown.id)).await;
    assert_rejected(&srv, denied(), public.list_incidents(10)).await;
    assert_rejected(&srv, denied(), public.list_events("", 10)).await;
    assert_rejected(&srv, denied(), public.list_components()).await;
    // Action items are never public: not for the role, not in the preview.
    for reader in [Reader::public(&srv).await, Reader::preview(&srv).await] {
        let r = ListActionItemsRequest {
            view: reader.view(),
            ..Default::default()
        };
        assert_rejected(
            &srv,
            denied(),
            reader.action_items().list_action_items(reader.req(r)),
        )
        .await;
    }
    // Writes stay with responders.
    let r = AddNoteRequest {
        incident_id: shown.id.clone(),
        text: "hello".into(),
        ..Default::default()
    };
    let mut timeline = TimelineServiceClient::new(srv.channel().await);
    assert_rejected(&srv, denied(), timeline.add_note(authorized(r, PUBLIC))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_refuse_what_the_public_view_cannot_answer() {
    let srv = server().await;
    let viewer = Reader::full(&srv).await;
    let mut incidents = viewer.incidents();
    let bad_view = GetIncidentRequest {
        id: "INC-1".into(),
        view: 7,
    };
    assert_rejected(
        &srv,
        Rejection::invalid(&["view"]),
        incidents.get_incident(viewer.req(bad_view)),
    )
    .await;
    for (field, r) in [
        (
            "label",
            ListIncidentsRequest {
                label: "team".into(),
                view: View::Public as i32,
                ..Default::default()
            },
        ),
        (
            "show_deleted",
            ListIncidentsRequest {
                show_deleted: true,
                view: View::Public as i32,
                ..Default::default()
            },
        ),
    ] {
        assert_rejected(
            &srv,
            Rejection::invalid(&[field]),
            incidents.list_incidents(viewer.req(r)),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_values_are_checked_and_a_bad_one_writes_nothing() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let shown = w.declare("Checkout errors", Visibility::Public).await;
    let mut incidents = w.incidents();
    let create = CreateIncidentRequest {
        incident: Some(Incident {
            title: "t".into(),
            kind: IncidentKind::Incident as i32,
            visibility: 9,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_rejected(
        &srv,
        Rejection::invalid(&["incident.visibility"]),
        incidents.create_incident(authorized(create, WRITER)),
    )
    .await;
    let cleared = Incident {
        id: shown.id.clone(),
        ..Default::default()
    };
    assert_rejected(
        &srv,
        Rejection::invalid(&["incident.visibility"]),
        w.update(cleared, &["visibility"]),
    )
    .await;
    let note = AddNoteRequest {
        incident_id: shown.id.clone(),
        text: "n".into(),
        visibility: -1,
        ..Default::default()
    };
    let mut timeline = TimelineServiceClient::new(srv.channel().await);
    assert_rejected(
        &srv,
        Rejection::invalid(&["visibility"]),
        timeline.add_note(authorized(note, WRITER)),
    )
    .await;
    let post = PostStatusUpdateRequest {
        incident_id: shown.id.clone(),
        message: "m".into(),
        visibility: 3,
        ..Default::default()
    };
    assert_rejected(
        &srv,
        Rejection::invalid(&["visibility"]),
        incidents.post_status_update(authorized(post, WRITER)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_skip_hidden_items_and_stay_full() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let mut public_ids = Vec::new();
    for n in 0..7 {
        // Two hidden between each pair of public ones.
        w.declare(&format!("SECRET {n}a"), Visibility::Internal)
            .await;
        let i = w.declare(&format!("public {n}"), Visibility::Public).await;
        w.declare(&format!("SECRET {n}b"), Visibility::Internal)
            .await;
        w.post(&i.id, &format!("update {n}"), Visibility::Public)
            .await;
        w.post(&i.id, &format!("SECRET update {n}"), Visibility::Internal)
            .await;
        public_ids.push(i.id);
    }
    let reader = Reader::public(&srv).await;
    let pages = reader.list_incidents(2).await.expect("list");
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 2, 1], "full pages until the last");
    let mut listed: Vec<String> = pages.concat().into_iter().map(|i| i.id).collect();
    listed.reverse();
    assert_eq!(
        listed, public_ids,
        "every public incident once, newest first"
    );

    let events = reader.list_events("", 3).await.expect("events");
    let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
    let (last, full) = sizes.split_last().expect("a page");
    assert!(
        full.iter().all(|n| *n == 3),
        "full pages until the last: {sizes:?}"
    );
    assert!((1..=3).contains(last), "{sizes:?}");
    let all = events.concat();
    assert!(!format!("{all:?}").contains("SECRET"));
    let sequences: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "in order, once");
    // 7 creations, 7 public updates (each with its status change).
    let posted = all
        .iter()
        .filter(|e| matches!(e.payload, Some(Payload::StatusUpdatePosted(_))))
        .count();
    assert_eq!(posted, 7);
    // The preview reads exactly what the role reads.
    let preview = Reader::preview(&srv).await;
    assert_eq!(preview.list_events("", 3).await.expect("events"), events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_status_for_the_public_counts_public_incidents_only() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let mut components = ComponentServiceClient::new(srv.channel().await);
    let c = components
        .create_component(authorized(
            CreateComponentRequest {
                component: Some(Component {
                    name: "Login".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            WRITER,
        ))
        .await
        .expect("component")
        .into_inner()
        .component
        .expect("component");
    let hidden = w.declare("SECRET outage", Visibility::Internal).await;
    let r = PostStatusUpdateRequest {
        incident_id: hidden.id.clone(),
        message: "SECRET down".into(),
        visibility: Visibility::Internal as i32,
        component_impacts: vec![ComponentImpact {
            component_id: c.id.clone(),
            impact: ImpactLevel::MajorOutage as i32,
            ..Default::default()
        }],
        ..Default::default()
    };
    w.incidents()
        .post_status_update(authorized(r, WRITER))
        .await
        .expect("post");
    let status = |list: Vec<Component>| list.iter().find(|x| x.id == c.id).expect("listed").status;
    let full = Reader::full(&srv).await;
    assert_eq!(
        status(full.list_components().await.expect("list")),
        ImpactLevel::MajorOutage as i32
    );
    for reader in [Reader::public(&srv).await, Reader::preview(&srv).await] {
        assert_eq!(
            status(reader.list_components().await.expect("list")),
            ImpactLevel::Operational as i32,
            "an internal incident does not move the public status"
        );
        let r = GetComponentRequest {
            id: c.id.clone(),
            view: reader.view(),
        };
        let got = reader
            .components()
            .get_component(reader.req(r))
            .await
            .expect("get")
            .into_inner()
            .component
            .expect("component");
        assert_eq!(got.status, ImpactLevel::Operational as i32);
        assert_eq!(got.etag, "");
    }
    // Made public, the incident counts for everyone.
    w.set_visibility(&hidden.id, Visibility::Public).await;
    let public = Reader::public(&srv).await;
    assert_eq!(
        status(public.list_components().await.expect("list")),
        ImpactLevel::MajorOutage as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_reads_the_postmortem_as_published() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let i = w.declare("Checkout errors", Visibility::Public).await;
    let mut incidents = w.incidents();
    let edit = |body: &str| UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: i.id.clone(),
            body: body.into(),
            author: "SECRETauthorZ".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    incidents
        .update_postmortem(authorized(edit("A bad config push."), WRITER))
        .await
        .expect("draft");
    let public = Reader::public(&srv).await;
    assert_rejected(
        &srv,
        Rejection::not_found("postmortem_id", &i.id),
        public.get_postmortem(&i.id),
    )
    .await;
    let r = PostStatusUpdateRequest {
        incident_id: i.id.clone(),
        status: IncidentStatus::Resolved as i32,
        message: "Fixed".into(),
        ..Default::default()
    };
    incidents
        .post_status_update(authorized(r, WRITER))
        .await
        .expect("resolve");
    let publish = || PublishPostmortemRequest {
        incident_id: i.id.clone(),
        ..Default::default()
    };
    incidents
        .publish_postmortem(authorized(publish(), WRITER))
        .await
        .expect("publish");
    // An edit after publishing stays a draft.
    incidents
        .update_postmortem(authorized(edit("SECRET draft of a rewrite"), WRITER))
        .await
        .expect("edit");
    let got = public
        .get_postmortem(&i.reference)
        .await
        .expect("published");
    assert_eq!(got.body, "A bad config push.");
    assert_eq!(got.author, "");
    assert_eq!(got.etag, "");
    assert!(got.publish_time.is_some());
    let full = Reader::full(&srv).await;
    assert_eq!(
        full.get_postmortem(&i.id).await.expect("draft").body,
        "SECRET draft of a rewrite"
    );
    // Publishing the changed draft republishes it; the same text twice is refused.
    incidents
        .publish_postmortem(authorized(publish(), WRITER))
        .await
        .expect("republish");
    assert_eq!(
        public.get_postmortem(&i.id).await.expect("published").body,
        "SECRET draft of a rewrite"
    );
    assert_rejected(
        &srv,
        Rejection::already_published(&i.id),
        incidents.publish_postmortem(authorized(publish(), WRITER)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_incident_is_announced_by_id_only_and_then_gone() {
    let srv = server().await;
    let w = Writer::new(&srv).await;
    let i = w.declare("Checkout errors", Visibility::Public).await;
    let public = Reader::public(&srv).await;
    let mut live = public.subscribe(Start::FromNow(())).await;
    let renamed = Incident {
        id: i.id.clone(),
        title: "SECRET renamed before withdrawal".into(),
        ..Default::default()
    };
    // Renamed and withdrawn: the rename was public when it committed.
    w.update(renamed, &["title"]).await.expect("rename");
    w.set_visibility(&i.id, Visibility::Internal).await;
    w.post(&i.id, "SECRET while internal", Visibility::Public)
        .await;
    let head = head(&srv).await;
    let events = until(&mut live, head).await;
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            TimelineEventKind::IncidentUpdated as i32,
            TimelineEventKind::VisibilityChanged as i32
        ],
        "{events:?}"
    );
    let withdrawal = &events[1];
    let snapshot = withdrawal.incident.as_ref().expect("snapshot");
    assert_eq!(
        (
            snapshot.id.as_str(),
            snapshot.reference.as_str(),
            snapshot.title.as_str()
        ),
        (i.id.as_str(), i.reference.as_str(), ""),
        "only the id withdrawn"
    );
    match &withdrawal.payload {
        Some(Payload::VisibilityChanged(v)) => {
            assert_eq!(v.new_visibility, Visibility::Internal as i32);
            assert_eq!(v.old_visibility, Visibility::Public as i32);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        public.get_incident(&i.id).await.unwrap_err().code(),
        Code::NotFound
    );
    // Replayed now, the incident's whole history is hidden but the withdrawal.
    let mut replay = public.subscribe(Start::AfterSequence(0)).await;
    let replayed = until(&mut replay, head).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0].encode_to_vec(), withdrawal.encode_to_vec());
    // The full view saw all of it, with the actor.
    let full = Reader::full(&srv)
        .await
        .list_events(&i.id, 50)
        .await
        .expect("events");
    assert!(full.concat().iter().all(|e| e.actor == WRITER_NAME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_are_public() {
    let srv = server_with(Options {
        seed_dir: Some(seeds_dir()),
        ..Options::default()
    })
    .await;
    let public = Reader::public(&srv).await;
    let listed = public.list_incidents(50).await.expect("list").concat();
    assert_eq!(listed.len(), 5, "the five seed reports");
    for i in &listed {
        assert_eq!(i.visibility, Visibility::Public as i32);
        assert!(i.postmortem_publish_time.is_some());
        let pm = public
            .get_postmortem(&i.id)
            .await
            .expect("published postmortem");
        assert!(
            !pm.body.is_empty() || !pm.sections.is_empty(),
            "{}",
            i.title
        );
    }
}
