//! Compiles the incident.v1 protos with the pure-Rust `protox` compiler, so a
//! fresh machine needs no system `protoc`.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos: Vec<PathBuf> = fs::read_dir("proto/incident/v1")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let mut protos: Vec<PathBuf> = protos
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    let fds = protox::compile(&protos, ["proto"])?;
    // Reflection needs the encoded descriptor set; compile_fds does not write it.
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("incident_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(false)
        // A request that does not decode is INVALID_ARGUMENT (MESSAGE_MALFORMED),
        // not tonic-prost's INTERNAL; encoding stays tonic-prost's.
        .codec_path("crate::codec::Codec")
        .btree_map(".")
        // Replies that carry events embed the log's stored encoding as it is,
        // and GetIncident and ListIncidents the incident cache's (src/wire.rs);
        // they encode the same messages.
        .extern_path(
            ".incident.v1.SubscribeTimelineResponse",
            "crate::wire::SubscribeTimelineResponse",
        )
        .extern_path(
            ".incident.v1.GetIncidentResponse",
            "crate::wire::GetIncidentResponse",
        )
        .extern_path(
            ".incident.v1.ListTimelineEventsResponse",
            "crate::wire::ListTimelineEventsResponse",
        )
        .extern_path(
            ".incident.v1.ListIncidentsResponse",
            "crate::wire::ListIncidentsResponse",
        )
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    // The migrations are embedded by sqlx::migrate!, which cannot ask for it.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
