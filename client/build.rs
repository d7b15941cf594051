//! Compiles the same incident.v1 protos as the server, for clients only.

use std::{fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from("../proto");
    let mut protos: Vec<PathBuf> = fs::read_dir(dir.join("incident/v1"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    let fds = protox::compile(&protos, [&dir])?;
    write_methods(&fds)?;
    tonic_prost_build::configure()
        .build_server(false)
        .btree_map(".")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=../proto");
    Ok(())
}

/// Writes `methods.rs`: for each unary method, its path and what makes it
/// safe to send twice (see `failover.rs`): a read, or the field number of
/// its `request_id` (0: neither).
fn write_methods(fds: &prost_types::FileDescriptorSet) -> Result<(), Box<dyn std::error::Error>> {
    let mut fields = std::collections::HashMap::new();
    for file in &fds.file {
        for message in &file.message_type {
            let request_id = message
                .field
                .iter()
                .find(|f| f.name() == "request_id")
                .map_or(0, |f| f.number());
            fields.insert(
                format!(".{}.{}", file.package(), message.name()),
                request_id,
            );
        }
    }
    let mut rows = String::new();
    for file in &fds.file {
        for service in &file.service {
            for method in &service.method {
                if method.client_streaming() || method.server_streaming() {
                    continue;
                }
                let name = method.name();
                let read = name.starts_with("Get") || name.starts_with("List");
                let request_id = fields.get(method.input_type()).copied().unwrap_or(0);
                rows.push_str(&format!(
                    "    (\"/{}.{}/{}\", {}, {}),\n",
                    file.package(),
                    service.name(),
                    name,
                    read,
                    request_id
                ));
            }
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("methods.rs");
    fs::write(
        out,
        format!(
            "/// (path, is a read, request_id field number or 0) of every unary method.\npub(crate) const METHODS: &[(&str, bool, u32)] = &[\n{rows}];\n"
        ),
    )?;
    Ok(())
}
