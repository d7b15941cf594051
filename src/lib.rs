//! incidentd: incident coordination over gRPC.

pub mod admission;
pub mod api;
pub mod auth;
pub mod body;
pub mod codec;
pub mod component_names;
pub mod config;
pub mod connection;
pub mod domain;
pub mod error;
pub mod fuzzing;
pub mod hub;
pub mod incident_cache;
pub mod metrics;
pub mod page_token;
pub mod proto;
pub mod public_view;
pub mod quota;
pub mod seed;
pub mod server;
pub mod service;
pub mod store;
pub mod wire;
