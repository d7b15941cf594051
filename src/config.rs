//! Every setting of the command line with its environment variable and its
//! default: the one place a default is written. The server and the store take
//! their options from these structs; `docs/operations.md` lists them and a
//! test keeps that table and `incidentd serve --help` in step.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};

/// The `incidentd` command line.
#[derive(Parser)]
#[command(name = "incidentd", version, about = "Incident coordination over gRPC")]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "INCIDENTD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What to do.
#[derive(Subcommand)]
// Parsed once per process: the size of `Serve` costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the gRPC API.
    Serve(ServeArgs),
    /// Load the seed incidents (real public reports) into the database, then exit.
    Seed {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Folder of seed files (*.toml).
        #[arg(long, env = "INCIDENTD_SEED_DIR", default_value = SEED_DIR)]
        dir: PathBuf,
    },
    /// Write a consistent copy of a live database to PATH (SQLite VACUUM INTO);
    /// `serve --database PATH` starts from it.
    Backup {
        /// Where the copy goes (created 0600); must not exist, not even as a symlink.
        path: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Apply migrations (creating a SQLite file if needed), then exit.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The seed folder of `serve --seed` and `incidentd seed`.
pub const SEED_DIR: &str = "seeds";

/// Where the data lives; shared by every subcommand that opens the database.
#[derive(clap::Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Where the data lives: a SQLite file path or sqlite: URL (created, mode
    /// 0600, if missing), or a postgres:// URL (the database must exist);
    /// migrated at start.
    #[arg(long, env = "INCIDENTD_DATABASE", default_value = "./incidentd.db")]
    pub database: String,
}

/// The settings of `incidentd serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INCIDENTD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Load the seed incidents before serving (those already loaded are skipped).
    #[arg(long, env = "INCIDENTD_SEED", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub seed: bool,

    /// Folder of seed files used by --seed.
    #[arg(long, env = "INCIDENTD_SEED_DIR", default_value = SEED_DIR)]
    pub seed_dir: PathBuf,

    /// Bearer tokens with roles (TOML: [[token]] name, role, sha256). Without it
    /// the server runs open, and only on a loopback address.
    #[arg(long, env = "INCIDENTD_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "INCIDENTD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "INCIDENTD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve Prometheus metrics (GET /metrics) on this address.
    #[arg(long, env = "INCIDENTD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// On SIGTERM/SIGINT, how long calls and streams get to finish before they
    /// are cut off (e.g. 5s, 500ms).
    #[arg(long, env = "INCIDENTD_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// How much of the server one connection, one caller or everyone may hold.
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// Most calls in progress across all connections; more are refused with
    /// RESOURCE_EXHAUSTED at once rather than queued. A call counts from the
    /// arrival of its request message until its response is sent.
    #[arg(long, env = "INCIDENTD_MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_concurrent_requests: usize,

    /// Most calls in progress for one token (its fair share); more are refused
    /// with RESOURCE_EXHAUSTED. A call counts until its response is sent; a
    /// subscription counts while it reads the database. Not applied in open mode.
    #[arg(long, env = "INCIDENTD_MAX_REQUESTS_PER_CALLER", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_requests_per_caller: usize,

    /// Most SubscribeTimeline streams open at once; more are RESOURCE_EXHAUSTED.
    #[arg(long, env = "INCIDENTD_MAX_SUBSCRIBERS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_subscribers: usize,

    /// Most SubscribeTimeline streams one token may hold open; more are
    /// RESOURCE_EXHAUSTED. Not applied in open mode.
    #[arg(long, env = "INCIDENTD_MAX_SUBSCRIBERS_PER_CALLER", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_subscribers_per_caller: usize,

    /// Most health Watch and server reflection streams open at once (they
    /// need no token); more are RESOURCE_EXHAUSTED.
    #[arg(long, env = "INCIDENTD_MAX_ANONYMOUS_STREAMS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_anonymous_streams: usize,

    /// Most open client connections; past it a new connection is closed at
    /// once, with a log line. Also held below the open-file limit.
    #[arg(long, env = "INCIDENTD_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub max_connections: usize,

    /// Most concurrent calls (HTTP/2 streams) on one connection, announced to
    /// the client as SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, env = "INCIDENTD_MAX_STREAMS_PER_CONNECTION", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams_per_connection: u32,

    /// How long a call's request message may take to arrive once its headers
    /// have; past it the call ends with DEADLINE_EXCEEDED.
    #[arg(long, env = "INCIDENTD_REQUEST_READ_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub request_read_timeout: Duration,

    /// A new connection must send its first bytes within this long, and a TLS
    /// handshake must complete within it, or the connection is closed.
    #[arg(long, env = "INCIDENTD_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub handshake_timeout: Duration,

    /// A connection with no call in progress for this long is closed.
    #[arg(long, env = "INCIDENTD_IDLE_TIMEOUT", default_value = "5m", value_parser = positive_duration)]
    pub idle_timeout: Duration,

    /// A connection whose writes stay blocked this long (the client reads
    /// nothing, not even HTTP/2 pings) is closed.
    #[arg(long, env = "INCIDENTD_SEND_TIMEOUT", default_value = "60s", value_parser = positive_duration)]
    pub send_timeout: Duration,
}

/// Tuning of the database layer.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// Most write requests committed together in one transaction (1 disables group commit).
    #[arg(long, env = "INCIDENTD_MAX_BATCH", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000).map(|v| v as usize))]
    pub max_batch: usize,

    /// Write transactions in flight at once on PostgreSQL, each on a
    /// connection of its own (SQLite has one writer).
    #[arg(long, env = "INCIDENTD_WRITE_CONNECTIONS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64).map(|v| v as usize))]
    pub write_connections: usize,

    /// PostgreSQL: how long one of this replica's write transactions may
    /// wait on the replica between two statements (the process stopped or
    /// starved of CPU, or cut off from the database) before PostgreSQL ends
    /// it. Such a transaction holds locks every replica's writes need; ended,
    /// they are released, and the writer runs its requests again on a new
    /// connection (UNAVAILABLE if that fails too).
    #[arg(long, env = "INCIDENTD_WRITE_IDLE_TIMEOUT", default_value = "5s", value_parser = database_timeout)]
    pub write_idle_timeout: Duration,

    /// SQLite: pages the WAL may hold before the writer checkpoints it
    /// between two groups and starts it over, which keeps the `-wal` file
    /// near this many pages (4 KiB each) under a steady write load, plus
    /// what is appended while they are copied. Each lap stops the writer for
    /// one small checkpoint and its fsync (a median of 5.5 ms, at most about
    /// 30), so a longer WAL costs writes fewer stalls.
    #[arg(long, env = "INCIDENTD_WAL_PAGES", default_value_t = 32768, value_parser = clap::value_parser!(i32).range(16..=100_000_000))]
    pub wal_pages: i32,

    /// Read connections in the pool.
    #[arg(long, env = "INCIDENTD_READ_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub read_connections: u32,

    /// How long a read waits for a free read connection before it is refused
    /// with RESOURCE_EXHAUSTED.
    #[arg(long, env = "INCIDENTD_READ_QUEUE_TIMEOUT", default_value = "2s", value_parser = positive_duration)]
    pub read_queue_timeout: Duration,

    /// Longest one read statement may run; past it the statement is stopped
    /// and the call ends with DEADLINE_EXCEEDED.
    #[arg(long, env = "INCIDENTD_STATEMENT_TIMEOUT", default_value = "5s", value_parser = database_timeout)]
    pub statement_timeout: Duration,

    /// Committed events kept in memory for live subscribers; a subscriber further
    /// behind reads from the database until it catches up.
    #[arg(long, env = "INCIDENTD_LIVE_BUFFER", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(16..=1_000_000).map(|v| v as usize))]
    pub live_buffer: usize,

    /// Incidents kept in memory (0: none): for GetIncident in their wire form,
    /// for the writer as committed. A reader's entry is dropped when its
    /// incident changes, before the change is acknowledged.
    #[arg(long, env = "INCIDENTD_INCIDENT_CACHE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000).map(|v| v as usize))]
    pub incident_cache: usize,
}

/// A duration of at least a millisecond (`0s` would refuse everything).
fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

/// A timeout PostgreSQL applies: at least a millisecond, at most the
/// 2,147,483,647 ms (24.8 days) its settings take; past that every
/// connection would be refused.
fn database_timeout(s: &str) -> Result<Duration, String> {
    let d = positive_duration(s)?;
    if d > Duration::from_millis(i32::MAX as u64) {
        return Err("must be at most 24 days (PostgreSQL's limit)".into());
    }
    Ok(d)
}

/// A command holding one group of settings, to read their defaults.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct Defaults<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

/// The defaults of a group of settings: the attributes' values, with the
/// environment ignored (a library caller asked for defaults, not for the
/// environment of the process it runs in).
fn defaults<T: clap::Args>() -> T {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Defaults::<T>::command()
        .mut_args(|a| a.env(None))
        .get_matches_from(std::iter::empty::<String>());
    match Defaults::<T>::from_arg_matches(&matches) {
        Ok(d) => d.args,
        // Every field has a default or is optional, so this is a bug in the
        // attributes above, caught by the test below.
        Err(e) => panic!("settings without a default: {e}"),
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for LimitArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for StoreArgs {
    fn default() -> Self {
        defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// flag → (environment variable, default) as a table row states them.
    type Flags = BTreeMap<String, (String, String)>;

    /// What `incidentd serve --help` prints, read back into [`Flags`]: a flag
    /// without a value defaults to `false`, one without a default shows `—`.
    fn flags_in_help() -> Flags {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        cli.build();
        let help = cli
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        let mut flags = Flags::new();
        let mut current: Option<(String, bool, String)> = None;
        let finish = |c: Option<(String, bool, String)>, flags: &mut Flags| {
            let Some((flag, takes_value, text)) = c else {
                return;
            };
            let env = between(&text, "[env: ", "=").unwrap_or_default();
            let default = between(&text, "[default: ", "]").unwrap_or_else(|| {
                if takes_value {
                    "—".into()
                } else {
                    "false".into()
                }
            });
            flags.insert(flag, (env, default));
        };
        for line in help.lines() {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("--").or_else(|| t.strip_prefix("-h, --")) {
                finish(current.take(), &mut flags);
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                current = Some((format!("--{name}"), value.starts_with('<'), String::new()));
            } else if let Some((_, _, text)) = current.as_mut() {
                text.push_str(t);
                text.push(' ');
            }
        }
        finish(current.take(), &mut flags);
        flags.remove("--help");
        flags
    }

    fn between(text: &str, start: &str, end: &str) -> Option<String> {
        let from = text.find(start)? + start.len();
        let len = text[from..].find(end)?;
        Some(text[from..from + len].to_owned())
    }

    /// The rows of the flag table in docs/operations.md.
    fn flags_in_docs() -> Flags {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md");
        let doc = std::fs::read_to_string(path).expect("docs/operations.md");
        let table = between(
            &doc,
            "<!-- serve-flags:begin -->",
            "<!-- serve-flags:end -->",
        )
        .expect("the serve-flags markers in docs/operations.md");
        let mut flags = Flags::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<String> = row
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            // "", flag, env, default, meaning, ""
            assert!(cells.len() >= 5, "a row of four cells: {row}");
            flags.insert(cells[1].clone(), (cells[2].clone(), cells[3].clone()));
        }
        flags
    }

    #[test]
    fn the_operations_guide_lists_every_serve_flag_as_the_help_does() {
        let help = flags_in_help();
        let docs = flags_in_docs();
        assert!(help.len() > 20, "help parsed: {help:?}");
        let missing: Vec<_> = help.keys().filter(|f| !docs.contains_key(*f)).collect();
        let stale: Vec<_> = docs.keys().filter(|f| !help.contains_key(*f)).collect();
        let differ: Vec<_> = help
            .iter()
            .filter_map(|(f, h)| docs.get(f).filter(|d| *d != h).map(|d| (f, h, d)))
            .collect();
        assert!(
            missing.is_empty() && stale.is_empty() && differ.is_empty(),
            "docs/operations.md and `incidentd serve --help` disagree:\n\
             missing from the docs: {missing:?}\n\
             in the docs but not a flag: {stale:?}\n\
             (flag, help, docs) differing: {differ:?}\n\
             the rows as the help states them (meaning to be written):\n{}",
            help.iter()
                .map(|(f, (env, default))| format!("| `{f}` | `{env}` | `{default}` | |"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// A timeout the database applies is refused at start past what
    /// PostgreSQL accepts, rather than making every connection fail.
    #[test]
    fn database_timeouts_are_bounded_by_what_postgres_accepts() {
        for flag in ["--write-idle-timeout", "--statement-timeout"] {
            let parse = |v: &str| Defaults::<StoreArgs>::try_parse_from([flag, v]);
            let ok = parse("24days").expect("24 days").args;
            let set = match flag {
                "--write-idle-timeout" => ok.write_idle_timeout,
                _ => ok.statement_timeout,
            };
            assert_eq!(set, Duration::from_secs(24 * 86_400));
            for refused in ["25days", "30d", "0s"] {
                let e = parse(refused)
                    .err()
                    .unwrap_or_else(|| panic!("{flag} {refused}"));
                assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
            }
        }
    }

    /// A WAL bound too small to hold a group's pages, or past what SQLite's
    /// hook reports, is refused at start.
    #[test]
    fn the_wal_bound_is_refused_outside_its_range() {
        let parse = |v: &str| Defaults::<StoreArgs>::try_parse_from([format!("--wal-pages={v}")]);
        assert_eq!(parse("16").expect("16").args.wal_pages, 16);
        assert_eq!(StoreArgs::default().wal_pages, 32768);
        for refused in ["15", "0", "-1", "100000001", "many"] {
            let e = parse(refused).err().unwrap_or_else(|| panic!("{refused}"));
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{refused}: {e}"
            );
        }
    }

    #[test]
    fn defaults_come_from_the_attributes() {
        let s = StoreArgs::default();
        assert_eq!(s.max_batch, 512);
        assert_eq!(s.read_connections, 8);
        let l = LimitArgs::default();
        assert!(l.max_requests_per_caller < l.max_concurrent_requests);
        assert_eq!(ServeArgs::default().listen.port(), 50051);
    }
}
