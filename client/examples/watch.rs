//! A chat-bot-style watcher: prints one readable line per timeline event and
//! keeps its cursor in a file, so a restarted bot continues where it stopped.
//! Given several endpoints (one per replica), it moves to the next when the
//! one in use fails, and continues there.
//!
//! ```text
//! cargo run -p incident-client --example watch -- \
//!     --endpoint http://10.0.0.1:50051 --endpoint http://10.0.0.2:50051 \
//!     --cursor-file ./watch.cursor [--severity-at-least P1]
//! ```

use std::path::PathBuf;

use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::*;

struct Args {
    endpoints: Vec<String>,
    cursor_file: PathBuf,
    severity_at_least: Severity,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        endpoints: Vec::new(),
        cursor_file: PathBuf::from("watch.cursor"),
        severity_at_least: Severity::Unspecified,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            // `--addr` is the older name of one `--endpoint`.
            "--endpoint" | "--addr" => args.endpoints.push(value()?),
            "--cursor-file" => args.cursor_file = PathBuf::from(value()?),
            "--severity-at-least" => {
                let v = value()?;
                args.severity_at_least =
                    Severity::from_str_name(&format!("SEVERITY_{}", v.to_uppercase()))
                        .ok_or_else(|| format!("unknown severity {v:?} (P0..P4)"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: watch [--endpoint URL]... [--cursor-file PATH] [--severity-at-least P0..P4]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.endpoints.is_empty() {
        args.endpoints.push("http://127.0.0.1:50051".into());
    }
    Ok(args)
}

fn load_cursor(path: &PathBuf) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the cursor atomically: a crash never leaves a torn file behind.
fn save_cursor(path: &PathBuf, sequence: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{sequence}\n"))?;
    std::fs::rename(tmp, path)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let channels = lazy_channels(&args.endpoints)?;
    let cursor = load_cursor(&args.cursor_file);
    eprintln!(
        "watching {} after sequence {cursor}",
        args.endpoints.join(", ")
    );
    let request = SubscribeTimelineRequest {
        start: Some(Start::AfterSequence(cursor)),
        severity_at_least: args.severity_at_least as i32,
        ..Default::default()
    };
    let mut sub = Subscription::over(channels, request);
    loop {
        let event = sub.next().await?;
        println!("{}", incident_client::render::line(&event));
        save_cursor(&args.cursor_file, event.sequence)?;
    }
}
