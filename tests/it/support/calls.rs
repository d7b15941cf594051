//! Calls most tests make on their way to what they check.

use incident_client::tonic::transport::Channel;
use incident_client::{
    Component, ComponentImpact, CreateComponentRequest, CreateIncidentRequest, Incident,
    IncidentServiceClient, IncidentStatus, ListTimelineEventsRequest, PostStatusUpdateRequest,
    PostStatusUpdateResponse, TimelineEvent, TimelineServiceClient,
};

use super::server::TestServer;
use super::values::ts;

/// Creates a component named `name` under `parent` (`""` for a root).
pub async fn create_component(srv: &TestServer, name: &str, parent: &str) -> Component {
    srv.components()
        .await
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: name.into(),
                parent_id: parent.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create component")
        .into_inner()
        .component
        .expect("component")
}

/// Creates `incident` (no request_id) and returns it as stored.
pub async fn create_incident(
    client: &mut IncidentServiceClient<Channel>,
    incident: Incident,
) -> Incident {
    client
        .create_incident(CreateIncidentRequest {
            incident: Some(incident),
            ..Default::default()
        })
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .expect("incident")
}

/// Posts a status update on incident `id` with these component impacts,
/// occurring at `at` (RFC 3339; `None` for now).
pub async fn post_status_update(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
    message: &str,
    impacts: Vec<ComponentImpact>,
    at: Option<&str>,
) -> PostStatusUpdateResponse {
    client
        .post_status_update(PostStatusUpdateRequest {
            incident_id: id.into(),
            status: status as i32,
            message: message.into(),
            component_impacts: impacts,
            occur_time: at.map(ts),
            ..Default::default()
        })
        .await
        .expect("post status update")
        .into_inner()
}

/// Every timeline event matching `req`, following `next_page_token` to the
/// end (`req.page_token` is the first page's token).
pub async fn list_all_timeline_events(
    client: &mut TimelineServiceClient<Channel>,
    mut req: ListTimelineEventsRequest,
) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    loop {
        let page = client
            .list_timeline_events(req.clone())
            .await
            .expect("list timeline events")
            .into_inner();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

/// Every event of the log, oldest first, page by page.
pub async fn whole_log(client: &mut TimelineServiceClient<Channel>) -> Vec<TimelineEvent> {
    list_all_timeline_events(
        client,
        ListTimelineEventsRequest {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
}

/// The sequence of the newest event of the log (0 while it is empty).
pub async fn head_sequence(client: &mut TimelineServiceClient<Channel>) -> u64 {
    whole_log(client).await.last().map_or(0, |e| e.sequence)
}
