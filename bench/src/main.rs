//! `incident-bench`: starts the release `incidentd` as a child process, drives
//! it with `incident-client`, and prints one table of throughput, latency,
//! server memory and CPU, and whether each performance target is met.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p incident-bench -- [scenario…] [--quick] [--json PATH]
//!     [--backend sqlite|postgres|both] [--postgres URL] [--incidents N]
//!     [--subscribers N] [--replica-subscribers N] [--events N] [--duration SECS]
//!     [--server PATH] [--logs DIR]
//! ```

mod load;
mod report;
mod scenarios;
mod server;
mod skim;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use report::Row;
use scenarios::{ALL, Ctx, POSTGRES_ONLY};
use server::{Backend, Database, Server};

const USAGE: &str = "\
usage: incident-bench [SCENARIO...] [--quick] [--json PATH]
                      [--backend sqlite|postgres|both] [--postgres URL]
                      [--incidents N] [--subscribers N] [--replica-subscribers N]
                      [--events N] [--duration SECS] [--server PATH] [--logs DIR]

Starts target/release/incidentd (build it first: cargo build --release) on a
free loopback port with a fresh database and measures it. With no scenario,
runs them all. The baseline always runs: every throughput is a ratio to it.

scenarios: baseline get list post-1 post-16 post-64 note-128 mixed fanout
           catchup groupcommit stalled overload
PostgreSQL only (skipped on SQLite):
           pgbench          pgbench's single-row INSERT TPS at 1 and 64 clients
                            on the same PostgreSQL server (post-64 is held to
                            0.5 x its 64-client figure)
           replicas-post    post-64 on one replica, then spread over three
           replicas-fanout  subscribers over three replicas, writes on one

  --quick           scaled down (under a minute per backend)
  --json PATH       also write the figures as JSON
  --backend B       sqlite (default), postgres, or both (SQLite first, then
                    PostgreSQL, then the two side by side)
  --postgres URL    admin database through which the bench creates (and drops)
                    a database of its own per server start, incidentd_bench_*
                    (default: $INCIDENTD_BENCH_POSTGRES, else
                    $INCIDENTD_TEST_POSTGRES, else
                    postgres://postgres@127.0.0.1:5432/test); needs psql and
                    pgbench on PATH
  --incidents N     incidents in the table for `list` (default 1000000, created
                    one CreateIncident call each: minutes; quick 10000)
  --subscribers N   subscribers for `fanout` and `stalled` (default 10000; quick 200)
  --replica-subscribers N
                    subscribers of `replicas-fanout`, over the three replicas
                    (default 1000; quick 150)
  --events N        events replayed by `catchup` (default 1000000; quick 50000)
  --duration SECS   measured window per scenario (default 5; quick 1)
  --server PATH     the incidentd binary (default: next to this executable)
  --logs DIR        keep every server's log there (incidentd-PID.log); what
                    they log at WARN or above is summarised in the notes anyway
";

struct Args {
    scenarios: Vec<String>,
    quick: bool,
    json: Option<PathBuf>,
    backends: Vec<Backend>,
    incidents: Option<usize>,
    subscribers: Option<usize>,
    replica_subscribers: Option<usize>,
    events: Option<u64>,
    duration: Option<f64>,
    server: Option<PathBuf>,
    logs: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        scenarios: Vec::new(),
        quick: false,
        json: None,
        backends: Vec::new(),
        incidents: None,
        subscribers: None,
        replica_subscribers: None,
        events: None,
        duration: None,
        server: None,
        logs: None,
    };
    let mut backend = String::from("sqlite");
    // The test suite's variable second: CI exports it for the same server.
    let mut postgres = ["INCIDENTD_BENCH_POSTGRES", "INCIDENTD_TEST_POSTGRES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| server::DEFAULT_POSTGRES.to_owned());
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
            "--logs" => a.logs = Some(value("--logs")?.into()),
            "--backend" => backend = value("--backend")?,
            "--postgres" => postgres = value("--postgres")?,
            "--replica-subscribers" => {
                a.replica_subscribers = Some(value("--replica-subscribers")?.parse()?)
            }
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
    if a.replica_subscribers == Some(0) {
        bail!("--replica-subscribers must be at least 1");
    }
    // Checked here, so a typo fails before minutes of SQLite.
    server::with_database(&postgres, "x").context("--postgres")?;
    let pg = Backend::Postgres { admin: postgres };
    a.backends = match backend.as_str() {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" | "postgresql" => vec![pg],
        "both" => vec![Backend::Sqlite, pg],
        other => bail!("--backend {other}: sqlite, postgres or both"),
    };
    Ok(a)
}

fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The kernel's proactive page-out, if one runs: DAMON schemes that page out
/// memory idle for a while take cached database pages too (there is no swap
/// for anything else), so a scenario that reads what an earlier one wrote may
/// read it from the disk. Said in the report so that runs on machines with
/// and without it are not compared as equals.
fn page_out() -> Option<String> {
    page_out_under(std::path::Path::new("/sys/kernel/mm/damon/admin/kdamonds"))
}

/// [`page_out`], reading DAMON's sysfs tree (its `kdamonds` directory) at `root`.
fn page_out_under(root: &std::path::Path) -> Option<String> {
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let number = |p| read(p).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut found = Vec::new();
    for kdamond in std::fs::read_dir(root).ok()?.flatten() {
        let k = kdamond.path();
        if read(k.join("state")).as_deref() != Some("on") {
            continue;
        }
        let Ok(contexts) = std::fs::read_dir(k.join("contexts")) else {
            continue;
        };
        for context in contexts.flatten().filter(|c| c.path().is_dir()) {
            let c = context.path();
            let aggr_us = number(c.join("monitoring_attrs/intervals/aggr_us"));
            let Ok(schemes) = std::fs::read_dir(c.join("schemes")) else {
                continue;
            };
            for scheme in schemes.flatten().filter(|s| s.path().is_dir()) {
                let sc = scheme.path();
                if read(sc.join("action")).as_deref() != Some("pageout") {
                    continue;
                }
                let min_age = number(sc.join("access_pattern/age/min"));
                found.push(format!(
                    "the kernel pages out memory idle for {:.0} s or more (DAMON, {})",
                    (min_age * aggr_us) as f64 / 1e6,
                    k.display()
                ));
            }
        }
    }
    (!found.is_empty()).then(|| found.join("; "))
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
        .block_on(async {
            // Interrupted, the run is dropped: its servers are killed and its
            // PostgreSQL databases dropped, instead of left behind.
            tokio::select! {
                r = run(args) => r,
                _ = tokio::signal::ctrl_c() => bail!("interrupted: servers stopped, databases dropped"),
            }
        })
}

/// What one backend's part of the run produced.
struct BackendRun {
    backend: Backend,
    /// PostgreSQL's version and the settings the figures depend on.
    settings: Option<String>,
    rows: Vec<Row>,
    warnings: Vec<String>,
    failed: Vec<String>,
    seconds: f64,
}

impl BackendRun {
    fn met(&self) -> (usize, usize) {
        let met = self
            .rows
            .iter()
            .flat_map(|r| &r.targets)
            .filter(|t| t.met)
            .count();
        (met, self.rows.iter().map(|r| r.targets.len()).sum())
    }
}

/// Sizes and paths every backend's part uses.
struct Plan {
    bin: PathBuf,
    quick: bool,
    incidents: usize,
    subscribers: usize,
    replica_subscribers: usize,
    events: u64,
    window: Duration,
    nproc: usize,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin = server::locate(args.server.as_deref())?;
    if let Some(dir) = &args.logs {
        std::fs::create_dir_all(dir).with_context(|| format!("--logs {}", dir.display()))?;
        let _ = server::LOG_DIR.set(dir.clone());
    }
    let quick = args.quick;
    let plan = Plan {
        bin: bin.clone(),
        quick,
        incidents: args
            .incidents
            .unwrap_or(if quick { 10_000 } else { 1_000_000 }),
        subscribers: args.subscribers.unwrap_or(if quick { 200 } else { 10_000 }),
        replica_subscribers: args
            .replica_subscribers
            .unwrap_or(if quick { 150 } else { 1000 }),
        events: args
            .events
            .unwrap_or(if quick { 50_000 } else { 1_000_000 }),
        window: Duration::from_secs_f64(args.duration.unwrap_or(if quick { 1.0 } else { 5.0 })),
        nproc: nproc(),
    };
    let mut selected: Vec<&str> = if args.scenarios.is_empty() {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|s| *s == "baseline" || args.scenarios.iter().any(|a| a == s))
            .collect()
    };
    selected.dedup();
    eprintln!(
        "incident-bench: server {}, {} cores, {}; backends: {}; scenarios: {}",
        bin.display(),
        plan.nproc,
        if quick { "quick" } else { "full" },
        args.backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", "),
        selected.join(" ")
    );

    let mut runs = Vec::new();
    for backend in &args.backends {
        runs.push(run_backend(&plan, backend.clone(), &selected, started).await?);
    }

    let total = started.elapsed().as_secs_f64();
    let date = date_utc();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let nproc = plan.nproc;
    println!();
    println!(
        "incident-bench ({}) on {nproc} cores, {date}; client and server share the machine; {:.0} s",
        if quick { "quick" } else { "full" },
        total
    );
    let page_out = page_out();
    if let Some(p) = &page_out {
        println!(
            "machine: {p}: a scenario that reads what an earlier one wrote may read it from the disk"
        );
    }
    println!(
        "ops/s = completed calls per second; x base = ops/s / baseline ops/s (the same backend's); \
         latency = call round trip (fanout: commit -> receipt); CPU in cores (srv = incidentd, \
         cli = this load generator, db = every PostgreSQL process)"
    );
    let titled = runs.len() > 1 || runs.iter().any(|r| r.backend.is_postgres());
    for run in &runs {
        println!();
        if titled {
            println!("## {} ({:.0} s)", run.backend.label(), run.seconds);
            if let Some(s) = &run.settings {
                println!("{s}");
            }
            println!();
        }
        print!("{}", report::table(&run.rows));
        let notes: Vec<&String> = run.rows.iter().flat_map(|r| r.notes.iter()).collect();
        if !notes.is_empty() {
            println!();
            for n in notes {
                println!("- {n}");
            }
        }
        for w in &run.warnings {
            println!();
            println!("WARNING: {w}");
        }
        let (met, all) = run.met();
        println!();
        if titled {
            println!("targets met on {}: {met} of {all}", run.backend.label());
        } else {
            println!("targets met: {met} of {all}");
        }
    }
    if let [sqlite, postgres] = &runs[..] {
        println!();
        println!(
            "## SQLite and PostgreSQL side by side (one server each; the replicas are PostgreSQL's)"
        );
        println!();
        print!(
            "{}",
            report::side_by_side(&sqlite.rows, &postgres.rows, ALL)
        );
    }
    let met: usize = runs.iter().map(|r| r.met().0).sum();
    let all: usize = runs.iter().map(|r| r.met().1).sum();
    if titled {
        println!();
        println!("targets met: {met} of {all}");
    }
    let failed: Vec<String> = runs
        .iter()
        .flat_map(|r| {
            r.failed
                .iter()
                .map(|f| format!("{}: {f}", r.backend.name()))
        })
        .collect();

    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "command": command,
            "date": date,
            "nproc": nproc,
            "page_out": page_out,
            "quick": quick,
            "server": bin.display().to_string(),
            "backends": runs.iter().map(|r| {
                let (met, all) = r.met();
                serde_json::json!({
                    "backend": r.backend.name(),
                    "settings": r.settings,
                    "seconds": r.seconds,
                    "warnings": r.warnings,
                    "failed": r.failed,
                    "targets_met": met,
                    "targets": all,
                })
            }).collect::<Vec<_>>(),
            "incidents": plan.incidents,
            "subscribers": plan.subscribers,
            "replica_subscribers": plan.replica_subscribers,
            "catchup_events": plan.events,
            "window_s": plan.window.as_secs_f64(),
            "total_s": total,
            "rows": runs
                .iter()
                .flat_map(|r| r.rows.iter().map(|row| report::row_json(r.backend.name(), row)))
                .collect::<Vec<_>>(),
            "warnings": runs.iter().flat_map(|r| r.warnings.iter()).collect::<Vec<_>>(),
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

/// PostgreSQL's version and the settings a write's cost depends on; also
/// proves the admin database answers before anything runs.
async fn postgres_settings(admin: &str) -> anyhow::Result<String> {
    let out = server::psql(
        admin,
        "SELECT 'PostgreSQL ' || current_setting('server_version') \
         || ': synchronous_commit=' || current_setting('synchronous_commit') \
         || ', fsync=' || current_setting('fsync') \
         || ', wal_sync_method=' || current_setting('wal_sync_method') \
         || ', commit_delay=' || current_setting('commit_delay') \
         || ', shared_buffers=' || current_setting('shared_buffers') \
         || ', max_connections=' || current_setting('max_connections') \
         || ', autovacuum=' || current_setting('autovacuum')",
    )
    .await
    .with_context(|| format!("the PostgreSQL backend needs the admin database {admin}"))?;
    Ok(out)
}

/// Runs `selected` against one fresh server of `backend` (and the servers
/// some scenarios start beside it).
async fn run_backend(
    plan: &Plan,
    backend: Backend,
    selected: &[&str],
    started: Instant,
) -> anyhow::Result<BackendRun> {
    let t0 = Instant::now();
    let mut warnings = Vec::new();
    let scenarios: Vec<&str> = selected
        .iter()
        .copied()
        .filter(|s| backend.is_postgres() || !POSTGRES_ONLY.contains(s))
        .collect();
    let skipped: Vec<&str> = selected
        .iter()
        .copied()
        .filter(|s| !scenarios.contains(s))
        .collect();
    if !skipped.is_empty() && selected.len() < ALL.len() {
        warnings.push(format!(
            "{} skipped on {}: PostgreSQL only (--backend postgres or both)",
            skipped.join(" "),
            backend.label()
        ));
    }
    let settings = match &backend {
        Backend::Postgres { admin } => Some(postgres_settings(admin).await?),
        Backend::Sqlite => None,
    };
    eprintln!(
        "[{:6.1}s] {}{}",
        started.elapsed().as_secs_f64(),
        backend.label(),
        settings
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    let db = Database::fresh(&backend).await?;
    let server = Server::start(&plan.bin, &db, &Ctx::main_flags(plan.subscribers)).await?;
    drop(db);
    let chans = Arc::new(server.connections(4).await?);
    let mut ctx = Ctx {
        bin: plan.bin.clone(),
        backend: backend.clone(),
        quick: plan.quick,
        incidents: plan.incidents,
        subscribers: plan.subscribers,
        replica_subscribers: plan.replica_subscribers,
        events: plan.events,
        warmup: if plan.quick {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(1)
        },
        window: plan.window,
        nproc: plan.nproc,
        server,
        chans,
        hot: Arc::new(Vec::new()),
        created: 0,
        baseline: None,
        post64: None,
        pgbench64: None,
        rows: Vec::new(),
        warnings: Vec::new(),
    };
    let mut failed = Vec::new();
    for s in &scenarios {
        let t = Instant::now();
        let before = ctx.rows.len();
        eprintln!(
            "[{:6.1}s] {} {s} ...",
            started.elapsed().as_secs_f64(),
            backend.name()
        );
        if let Err(e) = ctx.run(s).await {
            eprintln!("  {s} FAILED: {e:#}");
            failed.push(format!("{s}: {e:#}"));
            ctx.rows.push(Row {
                scenario: format!("{s} (FAILED)"),
                notes: vec![format!("{s}: {e:#}")],
                ..Default::default()
            });
        }
        let added = ctx.rows.len() - before;
        for (k, r) in ctx.rows[before..].iter_mut().enumerate() {
            r.key = if added == 1 {
                (*s).to_owned()
            } else {
                format!("{s}/{k}")
            };
        }
        let busy = ctx.rows[before..]
            .iter()
            .filter_map(|r| r.other_cpu)
            .fold(0.0, f64::max);
        if busy > 0.25 {
            ctx.warnings.push(format!(
                "{s}: other processes on this machine used up to {busy:.2} cores during the \
                 window (see \"other CPU\"): its figures did not get that CPU"
            ));
        }
        // What the servers logged meanwhile: the main one, and any a
        // scenario started and stopped.
        let mut news = server::take_log_news();
        news.extend(ctx.server.log_news());
        for n in news {
            let note = format!("{s}: {}", n.summary());
            eprintln!("  {note}");
            match ctx.rows.last_mut() {
                Some(r) if added > 0 => r.note(note),
                _ => ctx.warnings.push(note),
            }
        }
        eprintln!("  {s} took {:.1}s", t.elapsed().as_secs_f64());
    }
    let Ctx {
        server,
        rows,
        warnings: w,
        ..
    } = ctx;
    server.stop().await;
    warnings.extend(w);
    for n in server::take_log_news() {
        warnings.push(format!("at shutdown: {}", n.summary()));
    }
    Ok(BackendRun {
        backend,
        settings,
        rows,
        warnings,
        failed,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod page_out_tests {
    use super::page_out_under;
    use std::path::Path;

    /// A kdamond in DAMON's sysfs layout: `state`, one context with its
    /// aggregation interval, one scheme with its action and minimum age.
    fn kdamond(root: &Path, n: u32, state: &str, aggr_us: u64, action: &str, min_age: u64) {
        let k = root.join(n.to_string());
        let c = k.join("contexts/0");
        let sc = c.join("schemes/0");
        for dir in [
            c.join("monitoring_attrs/intervals"),
            sc.join("access_pattern/age"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(k.join("state"), format!("{state}\n")).unwrap();
        std::fs::write(
            c.join("monitoring_attrs/intervals/aggr_us"),
            format!("{aggr_us}\n"),
        )
        .unwrap();
        std::fs::write(sc.join("action"), format!("{action}\n")).unwrap();
        std::fs::write(sc.join("access_pattern/age/min"), format!("{min_age}\n")).unwrap();
    }

    #[test]
    fn a_pageout_scheme_that_is_on_is_named_with_the_idle_age_it_takes() {
        let dir = tempfile::tempdir().unwrap();
        // 12 aggregations of 5 s: this machine's scheme.
        kdamond(dir.path(), 0, "on", 5_000_000, "pageout", 12);
        let said = page_out_under(dir.path()).expect("a page-out is named");
        assert!(said.contains("idle for 60 s or more"), "{said}");
        assert!(
            said.contains(&dir.path().join("0").display().to_string()),
            "{said}"
        );
    }

    #[test]
    fn no_page_out_is_named_when_damon_is_off_absent_or_only_watching() {
        let dir = tempfile::tempdir().unwrap();
        kdamond(dir.path(), 0, "off", 5_000_000, "pageout", 12);
        kdamond(dir.path(), 1, "on", 100_000, "stat", 0);
        assert_eq!(page_out_under(dir.path()), None);
        assert_eq!(page_out_under(&dir.path().join("missing")), None);
    }
}
