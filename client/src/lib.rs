//! `incident-client`: the generated gRPC client of incidentd (`incident.v1`).
//!
//! The message types are re-exported at the crate root, the clients live in
//! their per-service modules re-exported below.

#![allow(clippy::large_enum_variant)]

/// Everything generated from `proto/incident/v1`.
pub mod pb {
    tonic::include_proto!("incident.v1");
}

pub use pb::*;

mod connect;
mod failover;
pub mod render;
mod subscription;
pub use connect::{ConnectError, connect_any, lazy_channels};
pub use failover::Failover;
pub use subscription::Subscription;

pub use pb::action_item_service_client::ActionItemServiceClient;
pub use pb::component_service_client::ComponentServiceClient;
pub use pb::incident_service_client::IncidentServiceClient;
pub use pb::timeline_service_client::TimelineServiceClient;

pub use prost_types;
pub use tonic;
