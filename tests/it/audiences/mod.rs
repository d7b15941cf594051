//! Audiences: what the public role and VIEW_PUBLIC see (only what is
//! public, through every read), and what they are refused.

mod corrections;
mod leaks;
mod public;

use futures::StreamExt;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Request, Status};
use incident_client::*;

use crate::support::{Options, TestServer, authorized, load_tokens};

pub const PUBLIC: &str = "public-secret-4c1d";
pub const VIEWER: &str = "viewer-secret-93ab";
pub const WRITER: &str = "writer-secret-e07f";
pub const RITA: &str = "responder-secret-51aa";
pub const RON: &str = "responder-secret-7be2";
/// The writer's name, which is the actor of its writes: never shown to the public.
pub const WRITER_NAME: &str = "SECRETwriterZ";

/// A server that knows a public token, a viewer token and an admin (the writer).
pub async fn server() -> TestServer {
    server_with(Options::default()).await
}

pub async fn server_with(options: Options) -> TestServer {
    let tokens = load_tokens(&[
        ("pam", "public", PUBLIC),
        ("vic", "viewer", VIEWER),
        (WRITER_NAME, "admin", WRITER),
        ("rita", "responder", RITA),
        ("ron", "responder", RON),
    ]);
    TestServer::start_with(Options {
        tokens: Some(tokens),
        ..options
    })
    .await
}

/// Who reads, and in which view: every request it sends carries its token
/// and its view.
#[derive(Clone)]
pub struct Reader {
    channel: Channel,
    token: &'static str,
    view: View,
}

impl Reader {
    pub async fn new(srv: &TestServer, token: &'static str, view: View) -> Reader {
        Reader {
            channel: srv.channel().await,
            token,
            view,
        }
    }

    /// The public token, asking for nothing in particular.
    pub async fn public(srv: &TestServer) -> Reader {
        Reader::new(srv, PUBLIC, View::Unspecified).await
    }

    /// A viewer previewing the public view.
    pub async fn preview(srv: &TestServer) -> Reader {
        Reader::new(srv, VIEWER, View::Public).await
    }

    /// A viewer in the full view.
    pub async fn full(srv: &TestServer) -> Reader {
        Reader::new(srv, VIEWER, View::Full).await
    }

    pub fn req<T>(&self, msg: T) -> Request<T> {
        authorized(msg, self.token)
    }

    pub fn view(&self) -> i32 {
        self.view as i32
    }

    pub fn incidents(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.channel.clone())
    }

    pub fn timeline(&self) -> TimelineServiceClient<Channel> {
        TimelineServiceClient::new(self.channel.clone())
    }

    pub fn components(&self) -> ComponentServiceClient<Channel> {
        ComponentServiceClient::new(self.channel.clone())
    }

    pub fn action_items(&self) -> ActionItemServiceClient<Channel> {
        ActionItemServiceClient::new(self.channel.clone())
    }

    pub async fn get_incident(&self, id: &str) -> Result<Incident, Status> {
        let r = GetIncidentRequest {
            id: id.into(),
            view: self.view(),
        };
        let got = self.incidents().get_incident(self.req(r)).await?;
        Ok(got.into_inner().incident.expect("incident"))
    }

    /// Every page of ListIncidents at this page size.
    pub async fn list_incidents(&self, page_size: i32) -> Result<Vec<Vec<Incident>>, Status> {
        pages(|page_token| async move {
            let r = ListIncidentsRequest {
                page_size,
                page_token,
                view: self.view(),
                ..Default::default()
            };
            let page = self.incidents().list_incidents(self.req(r)).await?;
            let page = page.into_inner();
            Ok((page.incidents, page.next_page_token))
        })
        .await
    }

    /// Every page of ListStatusUpdates of an incident.
    pub async fn list_status_updates(
        &self,
        incident_id: &str,
        page_size: i32,
    ) -> Result<Vec<Vec<StatusUpdate>>, Status> {
        pages(|page_token| async move {
            let r = ListStatusUpdatesRequest {
                incident_id: incident_id.into(),
                page_size,
                page_token,
                view: self.view(),
            };
            let page = self.incidents().list_status_updates(self.req(r)).await?;
            let page = page.into_inner();
            Ok((page.status_updates, page.next_page_token))
        })
        .await
    }

    /// Every page of ListTimelineEvents (of one incident, if given).
    pub async fn list_events(
        &self,
        incident_id: &str,
        page_size: i32,
    ) -> Result<Vec<Vec<TimelineEvent>>, Status> {
        pages(|page_token| async move {
            let r = ListTimelineEventsRequest {
                incident_id: incident_id.into(),
                page_size,
                page_token,
                view: self.view(),
                ..Default::default()
            };
            let page = self.timeline().list_timeline_events(self.req(r)).await?;
            let page = page.into_inner();
            Ok((page.events, page.next_page_token))
        })
        .await
    }

    pub async fn get_postmortem(&self, incident_id: &str) -> Result<Postmortem, Status> {
        let r = GetPostmortemRequest {
            incident_id: incident_id.into(),
            view: self.view(),
        };
        let got = self.incidents().get_postmortem(self.req(r)).await?;
        Ok(got.into_inner().postmortem.expect("postmortem"))
    }

    pub async fn list_components(&self) -> Result<Vec<Component>, Status> {
        let r = ListComponentsRequest {
            page_size: 1000,
            view: self.view(),
            ..Default::default()
        };
        let got = self.components().list_components(self.req(r)).await?;
        Ok(got.into_inner().components)
    }

    /// Opens a subscription; its messages are read with [`until`].
    pub async fn subscribe(
        &self,
        start: subscribe_timeline_request::Start,
    ) -> incident_client::tonic::Streaming<SubscribeTimelineResponse> {
        let r = SubscribeTimelineRequest {
            start: Some(start),
            heartbeat_interval: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            view: self.view(),
            ..Default::default()
        };
        self.timeline()
            .subscribe_timeline(self.req(r))
            .await
            .expect("subscribe")
            .into_inner()
    }
}

/// One impact window described `description` (none if it is empty).
pub fn windows(description: &str) -> Vec<ImpactWindow> {
    if description.is_empty() {
        return Vec::new();
    }
    vec![ImpactWindow {
        start_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        impact: ImpactLevel::DegradedPerformance as i32,
        description: description.into(),
        ..Default::default()
    }]
}

/// Every page of a list: `fetch` reads the page of a token (the first with
/// none) and answers its items and the next token, empty at the end.
async fn pages<T, F, Fut>(mut fetch: F) -> Result<Vec<Vec<T>>, Status>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await?;
        pages.push(items);
        if next.is_empty() {
            return Ok(pages);
        }
        token = next;
    }
}

/// The events of a stream until a heartbeat reaches `head`: everything up
/// to `head` has then been sent.
pub async fn until(
    stream: &mut incident_client::tonic::Streaming<SubscribeTimelineResponse>,
    head: u64,
) -> Vec<TimelineEvent> {
    let mut events = Vec::new();
    loop {
        let msg = stream
            .next()
            .await
            .expect("the stream stays open")
            .expect("no error");
        match msg.kind {
            Some(subscribe_timeline_response::Kind::Event(e)) => events.push(e),
            Some(subscribe_timeline_response::Kind::Heartbeat(h)) if h.sequence >= head => {
                return events;
            }
            _ => {}
        }
    }
}

/// The sequence of the newest event, as the full view reads it.
pub async fn head(srv: &TestServer) -> u64 {
    let full = Reader::full(srv).await;
    let pages = full.list_events("", 1000).await.expect("list");
    pages
        .iter()
        .flatten()
        .map(|e| e.sequence)
        .max()
        .unwrap_or(0)
}

/// Writes with a token (the admin's unless told otherwise; its name is the actor).
pub struct Writer {
    channel: Channel,
    token: &'static str,
}

impl Writer {
    pub async fn new(srv: &TestServer) -> Writer {
        Writer::with(srv, WRITER).await
    }

    pub async fn with(srv: &TestServer, token: &'static str) -> Writer {
        Writer {
            channel: srv.channel().await,
            token,
        }
    }

    pub fn req<T>(&self, msg: T) -> Request<T> {
        authorized(msg, self.token)
    }

    pub fn timeline(&self) -> TimelineServiceClient<Channel> {
        TimelineServiceClient::new(self.channel.clone())
    }

    /// Corrects a status update.
    pub async fn edit_update(
        &self,
        id: &str,
        message: &str,
        visibility: Visibility,
    ) -> Result<StatusUpdate, Status> {
        let r = EditStatusUpdateRequest {
            id: id.into(),
            message: message.into(),
            visibility: visibility as i32,
            ..Default::default()
        };
        let got = self.incidents().edit_status_update(self.req(r)).await?;
        Ok(got.into_inner().status_update.expect("update"))
    }

    /// Corrects a note.
    pub async fn edit_note(
        &self,
        incident_id: &str,
        sequence: u64,
        text: &str,
        visibility: Visibility,
    ) -> Result<Option<TimelineEvent>, Status> {
        let r = EditNoteRequest {
            incident_id: incident_id.into(),
            note_sequence: sequence,
            text: text.into(),
            visibility: visibility as i32,
            ..Default::default()
        };
        let got = self.timeline().edit_note(self.req(r)).await?;
        Ok(got.into_inner().event)
    }

    pub fn incidents(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.channel.clone())
    }

    /// Declares an incident of this visibility, with labels and a role that
    /// the public never sees.
    pub async fn declare(&self, title: &str, visibility: Visibility) -> Incident {
        self.declare_with(title, &format!("summary of {title}"), "", visibility)
            .await
    }

    pub async fn declare_with(
        &self,
        title: &str,
        summary: &str,
        window: &str,
        visibility: Visibility,
    ) -> Incident {
        let r = CreateIncidentRequest {
            incident: Some(Incident {
                title: title.into(),
                summary: summary.into(),
                impact_windows: windows(window),
                kind: IncidentKind::Incident as i32,
                severity: Severity::P2 as i32,
                visibility: visibility as i32,
                labels: [("SECRETlabelZ".to_owned(), "SECRETvalueZ".to_owned())].into(),
                roles: vec![RoleAssignment {
                    role: "commander".into(),
                    assignee: "SECRETassigneeZ".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = self
            .incidents()
            .create_incident(self.req(r))
            .await
            .expect("create incident");
        got.into_inner().incident.expect("incident")
    }

    pub async fn post(
        &self,
        incident_id: &str,
        message: &str,
        visibility: Visibility,
    ) -> StatusUpdate {
        let r = PostStatusUpdateRequest {
            incident_id: incident_id.into(),
            message: message.into(),
            visibility: visibility as i32,
            ..Default::default()
        };
        let got = self
            .incidents()
            .post_status_update(self.req(r))
            .await
            .expect("post status update");
        got.into_inner().status_update.expect("update")
    }

    pub async fn note(
        &self,
        incident_id: &str,
        text: &str,
        visibility: Visibility,
    ) -> TimelineEvent {
        let r = AddNoteRequest {
            incident_id: incident_id.into(),
            text: text.into(),
            visibility: visibility as i32,
            ..Default::default()
        };
        let got = TimelineServiceClient::new(self.channel.clone())
            .add_note(self.req(r))
            .await
            .expect("add note");
        got.into_inner().event.expect("event")
    }

    /// Sets the incident's visibility through UpdateIncident.
    pub async fn set_visibility(&self, incident_id: &str, visibility: Visibility) -> Incident {
        self.update(
            Incident {
                id: incident_id.into(),
                visibility: visibility as i32,
                ..Default::default()
            },
            &["visibility"],
        )
        .await
        .expect("update visibility")
    }

    pub async fn update(&self, incident: Incident, paths: &[&str]) -> Result<Incident, Status> {
        let r = UpdateIncidentRequest {
            incident: Some(incident),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            ..Default::default()
        };
        let got = self.incidents().update_incident(self.req(r)).await?;
        Ok(got.into_inner().incident.expect("incident"))
    }

    /// Soft-deletes (or restores) an incident.
    pub async fn set_deleted(&self, incident_id: &str, deleted: bool) {
        let mut client = self.incidents();
        if deleted {
            let r = DeleteIncidentRequest {
                id: incident_id.into(),
                ..Default::default()
            };
            client.delete_incident(self.req(r)).await.expect("delete");
        } else {
            let r = UndeleteIncidentRequest {
                id: incident_id.into(),
                ..Default::default()
            };
            client
                .undelete_incident(self.req(r))
                .await
                .expect("undelete");
        }
    }
}
