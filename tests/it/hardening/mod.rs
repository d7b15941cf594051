//! Hardening: roles and tokens, TLS, the server-wide concurrency limit,
//! client deadlines, the request size limit, and request_id reuse per
//! caller. The real-binary tests (SIGTERM with open streams, kill -9 under
//! load) are in `crash`.

mod admission;
mod auth;
mod files;
mod input;
mod request_ids;
mod tls;

use std::sync::Arc;

use incident_client::tonic::metadata::MetadataValue;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Request, Status};
use incident_client::*;
use incidentd::auth::Tokens;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::Options;

pub const PUBLIC: &str = "public-secret-2d6e";
pub const VIEWER: &str = "viewer-secret-7f3a";
pub const RESPONDER: &str = "responder-secret-91c2";
pub const RESPONDER2: &str = "responder-two-secret-55d0";
pub const ADMIN: &str = "admin-secret-0b8e";

/// The tokens above, loaded the way `--tokens-file` loads them (from a file
/// of digests only).
pub fn tokens() -> Arc<Tokens> {
    crate::support::load_tokens(&[
        ("pam", "public", PUBLIC),
        ("vic", "viewer", VIEWER),
        ("rita", "responder", RESPONDER),
        ("ron", "responder", RESPONDER2),
        ("ada", "admin", ADMIN),
    ])
}

/// Options of a server that requires the tokens of [`tokens`].
pub fn with_tokens() -> Options {
    Options {
        tokens: Some(tokens()),
        ..Options::default()
    }
}

/// A request carrying `authorization: <header>` (if any).
pub fn req<T>(msg: T, header: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(h) = header {
        r.metadata_mut()
            .insert("authorization", MetadataValue::try_from(h).expect("header"));
    }
    r
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub async fn health(ch: Channel) -> Result<i32, Status> {
    HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Calls one RPC with an empty request; only how far it got matters.
pub async fn call(ch: &Channel, rpc: &str, auth: Option<&str>) -> Result<(), Status> {
    macro_rules! go {
        ($client:ident, $method:ident, $msg:ty) => {
            $client::new(ch.clone())
                .$method(req(<$msg>::default(), auth))
                .await
                .map(|_| ())
        };
    }
    match rpc {
        "IncidentService/CreateIncident" => {
            go!(
                IncidentServiceClient,
                create_incident,
                CreateIncidentRequest
            )
        }
        "IncidentService/GetIncident" => {
            go!(IncidentServiceClient, get_incident, GetIncidentRequest)
        }
        "IncidentService/ListIncidents" => {
            go!(IncidentServiceClient, list_incidents, ListIncidentsRequest)
        }
        "IncidentService/UpdateIncident" => {
            go!(
                IncidentServiceClient,
                update_incident,
                UpdateIncidentRequest
            )
        }
        "IncidentService/DeleteIncident" => {
            go!(
                IncidentServiceClient,
                delete_incident,
                DeleteIncidentRequest
            )
        }
        "IncidentService/UndeleteIncident" => {
            go!(
                IncidentServiceClient,
                undelete_incident,
                UndeleteIncidentRequest
            )
        }
        "IncidentService/PostStatusUpdate" => {
            go!(
                IncidentServiceClient,
                post_status_update,
                PostStatusUpdateRequest
            )
        }
        "IncidentService/ListStatusUpdates" => {
            go!(
                IncidentServiceClient,
                list_status_updates,
                ListStatusUpdatesRequest
            )
        }
        "IncidentService/GetPostmortem" => {
            go!(IncidentServiceClient, get_postmortem, GetPostmortemRequest)
        }
        "IncidentService/UpdatePostmortem" => {
            go!(
                IncidentServiceClient,
                update_postmortem,
                UpdatePostmortemRequest
            )
        }
        "IncidentService/PublishPostmortem" => {
            go!(
                IncidentServiceClient,
                publish_postmortem,
                PublishPostmortemRequest
            )
        }
        "TimelineService/ListTimelineEvents" => {
            go!(
                TimelineServiceClient,
                list_timeline_events,
                ListTimelineEventsRequest
            )
        }
        "TimelineService/SubscribeTimeline" => {
            go!(
                TimelineServiceClient,
                subscribe_timeline,
                SubscribeTimelineRequest
            )
        }
        "TimelineService/AddNote" => go!(TimelineServiceClient, add_note, AddNoteRequest),
        "TimelineService/EditNote" => go!(TimelineServiceClient, edit_note, EditNoteRequest),
        "IncidentService/EditStatusUpdate" => {
            go!(
                IncidentServiceClient,
                edit_status_update,
                EditStatusUpdateRequest
            )
        }
        "ActionItemService/CreateActionItem" => {
            go!(
                ActionItemServiceClient,
                create_action_item,
                CreateActionItemRequest
            )
        }
        "ActionItemService/GetActionItem" => {
            go!(
                ActionItemServiceClient,
                get_action_item,
                GetActionItemRequest
            )
        }
        "ActionItemService/ListActionItems" => {
            go!(
                ActionItemServiceClient,
                list_action_items,
                ListActionItemsRequest
            )
        }
        "ActionItemService/UpdateActionItem" => {
            go!(
                ActionItemServiceClient,
                update_action_item,
                UpdateActionItemRequest
            )
        }
        "ActionItemService/DeleteActionItem" => {
            go!(
                ActionItemServiceClient,
                delete_action_item,
                DeleteActionItemRequest
            )
        }
        "ComponentService/CreateComponent" => {
            go!(
                ComponentServiceClient,
                create_component,
                CreateComponentRequest
            )
        }
        "ComponentService/GetComponent" => {
            go!(ComponentServiceClient, get_component, GetComponentRequest)
        }
        "ComponentService/ListComponents" => {
            go!(
                ComponentServiceClient,
                list_components,
                ListComponentsRequest
            )
        }
        "ComponentService/UpdateComponent" => {
            go!(
                ComponentServiceClient,
                update_component,
                UpdateComponentRequest
            )
        }
        "ComponentService/DeleteComponent" => {
            go!(
                ComponentServiceClient,
                delete_component,
                DeleteComponentRequest
            )
        }
        other => panic!("no call for {other}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Public,
    Viewer,
    Responder,
    Admin,
}

/// The role each RPC needs, written out independently of
/// `auth::required_role`.
pub const RPCS: &[(&str, Need)] = &[
    ("IncidentService/CreateIncident", Need::Responder),
    ("IncidentService/GetIncident", Need::Public),
    ("IncidentService/ListIncidents", Need::Public),
    ("IncidentService/UpdateIncident", Need::Responder),
    ("IncidentService/DeleteIncident", Need::Admin),
    ("IncidentService/UndeleteIncident", Need::Admin),
    ("IncidentService/PostStatusUpdate", Need::Responder),
    ("IncidentService/ListStatusUpdates", Need::Public),
    ("IncidentService/EditStatusUpdate", Need::Responder),
    ("IncidentService/GetPostmortem", Need::Public),
    ("IncidentService/UpdatePostmortem", Need::Responder),
    ("IncidentService/PublishPostmortem", Need::Responder),
    ("TimelineService/ListTimelineEvents", Need::Public),
    ("TimelineService/SubscribeTimeline", Need::Public),
    ("TimelineService/AddNote", Need::Responder),
    ("TimelineService/EditNote", Need::Responder),
    ("ActionItemService/CreateActionItem", Need::Responder),
    ("ActionItemService/GetActionItem", Need::Viewer),
    ("ActionItemService/ListActionItems", Need::Viewer),
    ("ActionItemService/UpdateActionItem", Need::Responder),
    ("ActionItemService/DeleteActionItem", Need::Admin),
    ("ComponentService/CreateComponent", Need::Admin),
    ("ComponentService/GetComponent", Need::Public),
    ("ComponentService/ListComponents", Need::Public),
    ("ComponentService/UpdateComponent", Need::Admin),
    ("ComponentService/DeleteComponent", Need::Admin),
];
