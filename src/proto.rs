//! The generated incident.v1 types and the descriptor set reflection serves.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

tonic::include_proto!("incident.v1");

/// Encoded descriptor set of the incident.v1 protos, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("incident_descriptor");
