//! request_id reuse is refused per caller: a token's ids are its own, and
//! the key includes the method.

use incident_client::tonic::transport::Channel;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_id_reuse_is_refused_per_caller() {
    let srv = TestServer::start_with(with_tokens()).await;
    let ch = srv.channel().await;
    let mut incidents = IncidentServiceClient::new(ch.clone());
    let (rita, ron) = (bearer(RESPONDER), bearer(RESPONDER2));
    let id = rid();
    let create_as = |who: &str, title: &str| {
        req(
            CreateIncidentRequest {
                incident: Some(plain_incident(title)),
                request_id: id.clone(),
                ..Default::default()
            },
            Some(who),
        )
    };

    let first = incidents
        .create_incident(create_as(&rita, "First"))
        .await
        .expect("first")
        .into_inner()
        .incident
        .unwrap();
    // A retry returns the stored response and writes nothing.
    let retry = incidents
        .create_incident(create_as(&rita, "First"))
        .await
        .expect("retry")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(retry.id, first.id);
    assert_eq!(srv.count("incidents").await, 1);

    // The same id with another payload is refused and changes nothing.
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&id),
        incidents.create_incident(create_as(&rita, "Second")),
    )
    .await;
    assert_eq!(srv.count("incidents").await, 1);

    // Another caller's ids are its own: ron may use the same one.
    let rons = incidents
        .create_incident(create_as(&ron, "Second"))
        .await
        .expect("another caller, same request_id")
        .into_inner()
        .incident
        .unwrap();
    assert_ne!(rons.id, first.id);
    assert_eq!(rons.title, "Second");
    assert_eq!(srv.count("incidents").await, 2);

    // The key includes the method: the same id on AddNote is a new request…
    let mut timeline = TimelineServiceClient::new(ch.clone());
    let note_as = |who: &str, text: &str| {
        req(
            AddNoteRequest {
                incident_id: first.id.clone(),
                text: text.into(),
                request_id: id.clone(),
                ..Default::default()
            },
            Some(who),
        )
    };
    let note = timeline
        .add_note(note_as(&rita, "note one"))
        .await
        .expect("same request_id, another method")
        .into_inner()
        .event
        .unwrap();
    // …whose retry is answered from the record, and whose reuse is refused.
    let again = timeline
        .add_note(note_as(&rita, "note one"))
        .await
        .expect("retry note")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(again.sequence, note.sequence);
    assert_rejected(
        &srv,
        Rejection::request_id_reused(&id),
        timeline.add_note(note_as(&rita, "note two")),
    )
    .await;
    ron_note_independent(&mut timeline, &ron, &first.id, &id).await;
}

async fn ron_note_independent(
    timeline: &mut TimelineServiceClient<Channel>,
    ron: &str,
    incident_id: &str,
    id: &str,
) {
    let ev = timeline
        .add_note(req(
            AddNoteRequest {
                incident_id: incident_id.into(),
                text: "note two".into(),
                request_id: id.into(),
                ..Default::default()
            },
            Some(ron),
        ))
        .await
        .expect("another caller's note with the same request_id")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(ev.actor, "ron");
}
