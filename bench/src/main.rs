//! `incident-bench`: starts the release `incidentd` as a child process, drives
//! it with `incident-client`, and prints one table of throughput, latency,
//! server memory and CPU, and whether each performance target is met.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p incident-bench -- [scenario…] [--quick] [--json PATH]
//!     [--incidents N] [--subscribers N] [--events N] [--duration SECS] [--server PATH]
//! ```

mod load;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use scenarios::{ALL, Ctx};
use server::Server;

const USAGE: &str = "\
usage: incident-bench [SCENARIO...] [--quick] [--json PATH] [--incidents N]
                      [--subscribers N] [--events N] [--duration SECS] [--server PATH]

Starts target/release/incidentd (build it first: cargo build --release) on a
free loopback port with a fresh database and measures it. With no scenario,
runs them all. The baseline always runs: every throughput is a ratio to it.

scenarios: baseline get list post-1 post-16 post-64 note-128 mixed fanout
           catchup groupcommit stalled overload

  --quick           scaled down (under a minute in all)
  --json PATH       also write the figures as JSON
  --incidents N     incidents in the table for `list` (default 1000000, created
                    one CreateIncident call each: minutes; quick 10000)
  --subscribers N   subscribers for `fanout` and `stalled` (default 10000; quick 200)
  --events N        events replayed by `catchup` (default 1000000; quick 50000)
  --duration SECS   measured window per scenario (default 5; quick 1)
  --server PATH     the incidentd binary (default: next to this executable)
";

struct Args {
    scenarios: Vec<String>,
    quick: bool,
    json: Option<PathBuf>,
    incidents: Option<usize>,
    subscribers: Option<usize>,
    events: Option<u64>,
    duration: Option<f64>,
    server: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        scenarios: Vec::new(),
        quick: false,
        json: None,
        incidents: None,
        subscribers: None,
        events: None,
        duration: None,
        server: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--quick" => a.quick = true,
            "--json" => a.json = Some(value("--json")?.into()),
            "--server" => a.server = Some(value("--server")?.into()),
            "--incidents" => a.incidents = Some(value("--incidents")?.parse()?),
            "--subscribers" => a.subscribers = Some(value("--subscribers")?.parse()?),
            "--events" => a.events = Some(value("--events")?.parse()?),
            "--duration" => a.duration = Some(value("--duration")?.parse()?),
            s if s.starts_with('-') => bail!("unknown flag {s}\n\n{USAGE}"),
            s if ALL.contains(&s) => a.scenarios.push(s.to_owned()),
            s => bail!("unknown scenario {s}\n\n{USAGE}"),
        }
    }
    if a.subscribers == Some(0) {
        bail!("--subscribers must be at least 1");
    }
    Ok(a)
}

fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn date_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // The load generator's own multi-threaded runtime, one worker per core.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin = server::locate(args.server.as_deref())?;
    let quick = args.quick;
    let subscribers = args.subscribers.unwrap_or(if quick { 200 } else { 10_000 });
    let window = Duration::from_secs_f64(args.duration.unwrap_or(if quick { 1.0 } else { 5.0 }));
    let mut selected: Vec<&str> = if args.scenarios.is_empty() {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|s| *s == "baseline" || args.scenarios.iter().any(|a| a == s))
            .collect()
    };
    selected.dedup();
    let nproc = nproc();
    eprintln!(
        "incident-bench: server {}, {nproc} cores, {}; scenarios: {}",
        bin.display(),
        if quick { "quick" } else { "full" },
        selected.join(" ")
    );

    let server = Server::start(&bin, &Ctx::main_flags(subscribers)).await?;
    let chans = Arc::new(server.connections(4).await?);
    let mut ctx = Ctx {
        bin: bin.clone(),
        quick,
        incidents: args
            .incidents
            .unwrap_or(if quick { 10_000 } else { 1_000_000 }),
        subscribers,
        events: args
            .events
            .unwrap_or(if quick { 50_000 } else { 1_000_000 }),
        warmup: if quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(1)
        },
        window,
        nproc,
        server,
        chans,
        hot: Arc::new(Vec::new()),
        created: 0,
        baseline: None,
        post64: None,
        rows: Vec::new(),
        warnings: Vec::new(),
    };
    let mut failed = Vec::new();
    for s in &selected {
        let t = Instant::now();
        eprintln!("[{:6.1}s] {s} ...", started.elapsed().as_secs_f64());
        if let Err(e) = ctx.run(s).await {
            eprintln!("  {s} FAILED: {e:#}");
            failed.push(format!("{s}: {e:#}"));
            ctx.rows.push(report::Row {
                scenario: format!("{s} (FAILED)"),
                notes: vec![format!("{e:#}")],
                ..Default::default()
            });
        }
        eprintln!("  {s} took {:.1}s", t.elapsed().as_secs_f64());
    }
    let Ctx {
        server,
        rows,
        warnings,
        incidents,
        events,
        ..
    } = ctx;
    server.stop().await;

    let total = started.elapsed().as_secs_f64();
    let date = date_utc();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!();
    println!(
        "incident-bench ({}) on {nproc} cores, {date}; client and server share the machine; {:.0} s",
        if quick { "quick" } else { "full" },
        total
    );
    println!(
        "ops/s = completed calls per second; x base = ops/s / baseline ops/s; latency = call \
         round trip (fanout: commit -> receipt); CPU in cores (srv = incidentd, cli = this load \
         generator)"
    );
    println!();
    print!("{}", report::table(&rows));
    let notes: Vec<&String> = rows.iter().flat_map(|r| r.notes.iter()).collect();
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("- {n}");
        }
    }
    for w in &warnings {
        println!();
        println!("WARNING: {w}");
    }
    let met = rows
        .iter()
        .flat_map(|r| &r.targets)
        .filter(|t| t.met)
        .count();
    let all = rows.iter().map(|r| r.targets.len()).sum::<usize>();
    println!();
    println!("targets met: {met} of {all}");

    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "command": command,
            "date": date,
            "nproc": nproc,
            "quick": quick,
            "server": bin.display().to_string(),
            "incidents": incidents,
            "subscribers": subscribers,
            "catchup_events": events,
            "window_s": window.as_secs_f64(),
            "total_s": total,
            "rows": rows.iter().map(report::row_json).collect::<Vec<_>>(),
            "warnings": warnings,
            "failed": failed,
            "targets_met": met,
            "targets": all,
        });
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    if !failed.is_empty() {
        bail!("{} scenario(s) failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}
