//! Writes: field-mask updates, etags, explicit milestones, request_id
//! idempotency, soft delete, the component tree, next_update_time, and
//! maintenance, over a real socket through `incident-client`.

mod components;
mod milestones;
mod read_cache;
mod references;
mod request_ids;
mod updates;
mod wal;

use incident_client::tonic::Request;
use incident_client::tonic::transport::Channel;
use incident_client::*;

use crate::support::{TestServer, mask, post_status_update};

pub fn as_actor<T>(actor: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("x-actor", actor.parse().expect("metadata value"));
    r
}

pub async fn get_component(srv: &TestServer, id: &str) -> Component {
    srv.components()
        .await
        .get_component(GetComponentRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .expect("get component")
        .into_inner()
        .component
        .expect("component")
}

pub async fn get(client: &mut IncidentServiceClient<Channel>, id: &str) -> Incident {
    client
        .get_incident(GetIncidentRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .expect("get incident")
        .into_inner()
        .incident
        .expect("incident")
}

pub async fn update(
    client: &mut IncidentServiceClient<Channel>,
    i: Incident,
    paths: &[&str],
) -> Result<Incident, incident_client::tonic::Status> {
    client
        .update_incident(UpdateIncidentRequest {
            incident: Some(i),
            update_mask: if paths.is_empty() { None } else { mask(paths) },
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().incident.expect("incident"))
}

/// Posts a status update with the message "now <status>".
pub async fn post_at(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
    impacts: Vec<ComponentImpact>,
    at: Option<&str>,
) -> PostStatusUpdateResponse {
    post_status_update(client, id, status, &format!("now {status:?}"), impacts, at).await
}

pub async fn post(
    client: &mut IncidentServiceClient<Channel>,
    id: &str,
    status: IncidentStatus,
) -> Incident {
    post_at(client, id, status, vec![], None)
        .await
        .incident
        .expect("incident")
}
