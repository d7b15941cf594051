//! Admission: the server-wide concurrency limit sheds load and recovers,
//! client deadlines are honoured, and the request size limit refuses what is
//! over it while the next request is served.

use std::time::Duration;

use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Request, Status};
use incident_client::*;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::health_check_response::ServingStatus;

use super::*;
use crate::support::*;

/// What a call refused by the concurrency limit answers.
fn overloaded() -> Rejection {
    Rejection::new(Code::ResourceExhausted, "OVERLOADED")
}

/// A CreateIncident whose request body stays open until a message is sent on
/// (or the sender is dropped from) the returned channel. A call is admitted
/// once its message has arrived: until then it holds no place under the
/// limit, and the server waits for it (up to `--request-read-timeout`).
fn held_create(
    ch: Channel,
    timeout: Option<Duration>,
) -> (
    mpsc::Sender<CreateIncidentRequest>,
    JoinHandle<Result<CreateIncidentResponse, Status>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let call = tokio::spawn(async move {
        let mut grpc = incident_client::tonic::client::Grpc::new(ch);
        grpc.ready()
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        let mut r = Request::new(ReceiverStream::new(rx));
        if let Some(t) = timeout {
            r.set_timeout(t);
        }
        grpc.client_streaming(
            r,
            http::uri::PathAndQuery::from_static("/incident.v1.IncidentService/CreateIncident"),
            tonic_prost::ProstCodec::<CreateIncidentRequest, CreateIncidentResponse>::default(),
        )
        .await
        .map(|r| r.into_inner())
    });
    (tx, call)
}

/// A cheap call through the admission layer.
async fn probe(ch: &Channel) -> Result<(), Status> {
    IncidentServiceClient::new(ch.clone())
        .list_incidents(ListIncidentsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// After a call ended, the server serves again (the permit of a call ended
/// by its deadline is released just after the reply).
async fn served_again(ch: &Channel) {
    eventually("the server serving again", || async {
        match probe(ch).await {
            Ok(()) => Some(()),
            Err(s) if s.code() == Code::ResourceExhausted => None,
            Err(s) => panic!("not served again: {s:?}"),
        }
    })
    .await
}

async fn create(ch: &Channel, title: &str) -> Result<Incident, Status> {
    IncidentServiceClient::new(ch.clone())
        .create_incident(CreateIncidentRequest {
            incident: Some(plain_incident(title)),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().incident.unwrap())
}

async fn list_count(ch: &Channel) -> usize {
    IncidentServiceClient::new(ch.clone())
        .list_incidents(ListIncidentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .incidents
        .len()
}

/// Fires `n` concurrent CreateIncident calls; returns (ok, overloaded). Each
/// refusal must be OVERLOADED; what was written is for the caller to check
/// (the calls run together, so no one refusal can be said to write nothing).
async fn burst(ch: &Channel, n: usize) -> (usize, usize) {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let ch = ch.clone();
            tokio::spawn(async move { create(&ch, &format!("burst {i}")).await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => {
                overloaded()
                    .check(&s)
                    .unwrap_or_else(|e| panic!("a refused call of the burst: {e}"));
                shed += 1;
            }
        }
    }
    (ok, shed)
}

/// Options of a server with a limit of `limit` calls in progress that waits
/// as long as it takes for a request message (an hour): a call ends early
/// only if its client's deadline is honoured.
fn limited(limit: usize) -> Options {
    Options {
        max_concurrent_requests: Some(limit),
        request_read_timeout: Some(Duration::from_secs(3600)),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_sheds_load_and_recovers() {
    let srv = TestServer::start_with(limited(2)).await;
    let ch = srv.channel().await;

    // Two calls whose messages have not arrived take no place under the
    // limit: one call after another is served meanwhile.
    let held: Vec<_> = (0..2).map(|_| held_create(ch.clone(), None)).collect();
    for _ in 0..10 {
        probe(&ch)
            .await
            .expect("served while two messages are outstanding");
    }

    // Bursts of 200 concurrent calls on a limit of 2, until one is seen shed
    // (how many calls overlap is the scheduler's to say): every refusal is
    // OVERLOADED, at once, not queued; health answers meanwhile; and only
    // the successes are written.
    let (ok, refused) = within("a burst partly shed", async {
        let (mut ok, mut refused) = (0, 0);
        while refused == 0 {
            let ((o, r), served) = tokio::join!(burst(&ch, 200), health(ch.clone()));
            assert_eq!(
                served.expect("health under load"),
                ServingStatus::Serving as i32
            );
            ok += o;
            refused += r;
        }
        (ok, refused)
    })
    .await;
    assert!(ok > 0, "nothing admitted on a limit of 2");
    assert!(refused > 0);
    assert_eq!(list_count(&ch).await, ok);

    // The held calls complete once their messages arrive.
    for (i, (tx, call)) in held.into_iter().enumerate() {
        let title = format!("held {i}");
        tx.send(CreateIncidentRequest {
            incident: Some(plain_incident(&title)),
            ..Default::default()
        })
        .await
        .unwrap();
        drop(tx);
        let done = within("a held call completing", call)
            .await
            .unwrap()
            .expect("a held call completes");
        assert_eq!(done.incident.unwrap().title, title);
    }
    assert_eq!(list_count(&ch).await, 2 + ok);

    // And the server still serves.
    create(&ch, "after").await.expect("served after overload");
    assert_eq!(list_count(&ch).await, 3 + ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_deadlines_are_honoured() {
    // A limit of 1: a call the server kept past its deadline would block all others.
    let srv = TestServer::start_with(limited(1)).await;
    let ch = srv.channel().await;
    let ended = |call: JoinHandle<Result<CreateIncidentResponse, Status>>| async move {
        within("the server ending the call", call).await.unwrap()
    };

    // A deadline on a call that cannot finish (its message never comes):
    // tonic's server answers CANCELLED "Timeout expired" (not
    // DEADLINE_EXCEEDED), and releases what the call held. A server that
    // ignored the deadline would wait for the message for an hour.
    for deadline in [Duration::from_micros(1), Duration::from_secs(1)] {
        let (_tx, held) = held_create(ch.clone(), Some(deadline));
        let err =
            assert_rejected(&srv, Rejection::by_transport(Code::Cancelled), ended(held)).await;
        assert!(err.message().contains("Timeout expired"), "{err:?}");
        served_again(&ch).await;
    }

    // A tiny deadline on ordinary writes: each either made it or is
    // CANCELLED, never anything else, and the server keeps serving.
    for i in 0..5 {
        served_again(&ch).await;
        let mut r = Request::new(CreateIncidentRequest {
            incident: Some(plain_incident(&format!("hurried {i}"))),
            ..Default::default()
        });
        r.set_timeout(Duration::from_nanos(1));
        match IncidentServiceClient::new(ch.clone())
            .create_incident(r)
            .await
        {
            Ok(_) => {}
            Err(s) => Rejection::by_transport(Code::Cancelled)
                .check(&s)
                .expect("a hurried write"),
        }
    }
    served_again(&ch).await;
    create(&ch, "after deadlines")
        .await
        .expect("served after deadlines");
}

const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// An AddNote whose encoded message is exactly `size` bytes.
fn note_of_size(incident_id: &str, size: usize) -> AddNoteRequest {
    let mut r = AddNoteRequest {
        incident_id: incident_id.into(),
        text: "a".repeat(size),
        ..Default::default()
    };
    let over = r.encoded_len() - size;
    r.text.truncate(size - over);
    assert_eq!(r.encoded_len(), size);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_4_mib_is_refused_and_the_next_is_served() {
    let srv = TestServer::start().await;
    let inc = create_incident(&mut srv.incidents().await, plain_incident("Big notes")).await;
    let mut timeline = srv.timeline().await;

    // 4 MiB + 1 byte: refused as it is read, before any handler runs
    // (OUT_OF_RANGE, as tonic itself answers, with MESSAGE_TOO_LARGE).
    assert_rejected(
        &srv,
        Rejection::new(Code::OutOfRange, "MESSAGE_TOO_LARGE"),
        timeline.add_note(note_of_size(&inc.id, MAX_REQUEST + 1)),
    )
    .await;

    // Exactly 4 MiB passes the transport and reaches validation (a note is
    // at most 16 KiB).
    assert_rejected(
        &srv,
        Rejection::invalid(&["text"]),
        timeline.add_note(note_of_size(&inc.id, MAX_REQUEST)),
    )
    .await;

    // The same goes for CreateIncident.
    let mut big = CreateIncidentRequest {
        incident: Some(Incident {
            summary: "s".repeat(MAX_REQUEST),
            ..plain_incident("Too big")
        }),
        ..Default::default()
    };
    assert!(big.encoded_len() > MAX_REQUEST);
    assert_rejected(
        &srv,
        Rejection::new(Code::OutOfRange, "MESSAGE_TOO_LARGE"),
        srv.incidents().await.create_incident(big.clone()),
    )
    .await;

    // The next request, on the same connection, is served.
    let ev = timeline
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "small".into(),
            ..Default::default()
        })
        .await
        .expect("served after the big one")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(ev.incident_id, inc.id);
    big.incident.as_mut().unwrap().summary = "fits".into();
    srv.incidents()
        .await
        .create_incident(big)
        .await
        .expect("served after the big one");
}
