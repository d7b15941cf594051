//! The server under test: the release `incidentd` as a child process on a
//! free loopback port with a fresh database (a SQLite file, or a PostgreSQL
//! database the bench creates and drops), and what /proc says about it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use incident_client::tonic::transport::{Channel, Endpoint};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Finds the release `incidentd`: `--server PATH`, else next to this
/// executable (both live in `<target>/release/`), else under
/// `$CARGO_TARGET_DIR/release/`, else the workspace's `target/release/`.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_owned());
        }
        bail!("--server {}: no such file", p.display());
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        tried.push(dir.join("incidentd"));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(dir).join("release").join("incidentd"));
    }
    tried.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("release")
            .join("incidentd"),
    );
    for p in &tried {
        // A debug build next to a debug bench would measure the wrong thing.
        if p.is_file() && p.parent().is_some_and(|d| d.ends_with("release")) {
            return Ok(p.clone());
        }
    }
    bail!(
        "the release incidentd binary was not found (looked at {}).\n\
         incident-bench builds nothing itself: run `cargo build --release -p incidentd` first, \
         or pass --server PATH",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The admin database `--backend postgres` connects to when neither
/// `--postgres`, `INCIDENTD_BENCH_POSTGRES` nor `INCIDENTD_TEST_POSTGRES`
/// names one.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database the servers of a run keep their data in.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A fresh SQLite file per server (the default).
    Sqlite,
    /// A fresh PostgreSQL database per server start (or per set of
    /// replicas), created through `admin` and dropped afterwards.
    Postgres { admin: String },
}

impl Backend {
    /// As `--backend` spells it, and the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// As the tables print it.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }
}

/// A fresh database for one server or several (replicas share one), gone
/// with its last handle: the SQLite file's directory is deleted, the
/// PostgreSQL database dropped.
pub struct Database {
    kind: DbKind,
}

enum DbKind {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres(PgDatabase),
}

impl Database {
    pub async fn fresh(backend: &Backend) -> anyhow::Result<Arc<Database>> {
        let kind = match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("incident-bench-db-")
                    .tempdir()?;
                let path = dir.path().join("bench.db");
                DbKind::Sqlite { _dir: dir, path }
            }
            Backend::Postgres { admin } => DbKind::Postgres(PgDatabase::create(admin).await?),
        };
        Ok(Arc::new(Database { kind }))
    }

    /// What `incidentd serve --database` gets.
    pub fn arg(&self) -> String {
        match &self.kind {
            DbKind::Sqlite { path, .. } => path.display().to_string(),
            DbKind::Postgres(pg) => pg.url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, DbKind::Postgres(_))
    }

    /// The PostgreSQL database's URL, for `psql`.
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.kind {
            DbKind::Postgres(pg) => Some(&pg.url),
            DbKind::Sqlite { .. } => None,
        }
    }
}

/// A PostgreSQL database of the bench's own, `incidentd_bench_<random>`,
/// created through the admin database and dropped (`WITH (FORCE)`, so
/// connections left over do not keep it) when this is dropped.
pub struct PgDatabase {
    admin: String,
    pub name: String,
    /// The URL of this database: the admin URL with its database replaced.
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("incidentd_bench_{:016x}", unique());
        let url = with_database(admin, &name)?;
        psql(admin, &format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the bench's database through {admin}"))?;
        Ok(PgDatabase {
            admin: admin.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Synchronous: a drop cannot wait on the runtime, and this is quick.
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "  could not drop database {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("  could not drop database {}: {e}", self.name),
        }
    }
}

/// A number no other database of this or a concurrent run has.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    crate::load::mix(nanos ^ (u64::from(std::process::id()) << 32))
        ^ COUNT.fetch_add(1, Ordering::Relaxed)
}

/// `url` (postgres://user@host:port/db?params) naming database `name` instead.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("{url}: not a postgres:// URL"))?;
    if scheme != "postgres" && scheme != "postgresql" {
        bail!("{url}: not a postgres:// URL");
    }
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = base.split_once('/').map_or(base, |(a, _)| a);
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

/// Runs one SQL command with `psql` on the database at `url`; its output.
pub async fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running psql (the PostgreSQL backend needs it on PATH)")?;
    if !out.status.success() {
        bail!(
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running `incidentd serve`.
pub struct Server {
    child: Child,
    pid: u32,
    port: u16,
    /// Holds the log.
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// How much of the log `log_news` has reported.
    log_read: usize,
    /// Kept until the server is gone.
    db: Arc<Database>,
    /// Where its Prometheus exporter listens ([`Server::start_metered`]).
    metrics_port: Option<u16>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Starts `bin serve` on `db` with `extra` flags and waits until health
    /// says SERVING. Servers started on one PostgreSQL database are replicas.
    pub async fn start(bin: &Path, db: &Arc<Database>, extra: &[String]) -> anyhow::Result<Server> {
        Server::launch(bin, db, extra, false).await
    }

    /// [`Server::start`] with the Prometheus exporter on (`--metrics-listen`),
    /// for [`Server::metric`]. Recording metrics costs a little per call:
    /// compare such servers with each other, not with plain ones.
    pub async fn start_metered(
        bin: &Path,
        db: &Arc<Database>,
        extra: &[String],
    ) -> anyhow::Result<Server> {
        Server::launch(bin, db, extra, true).await
    }

    async fn launch(
        bin: &Path,
        db: &Arc<Database>,
        extra: &[String],
        metered: bool,
    ) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("incident-bench-")
            .tempdir()?;
        let log = dir.path().join("incidentd.log");
        let out = std::fs::File::create(&log)?;
        let port = free_port()?;
        let metrics_port = if metered { Some(free_port()?) } else { None };
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("INCIDENTD_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(db.arg())
            .arg("--shutdown-grace")
            .arg("1s")
            .args(extra)
            .args(
                metrics_port
                    .map(|p| ["--metrics-listen".to_owned(), format!("127.0.0.1:{p}")])
                    .into_iter()
                    .flatten(),
            )
            .env("INCIDENTD_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("incidentd has no pid")?;
        eprintln!(
            "  incidentd pid {pid} on 127.0.0.1:{port}, {} {}",
            match &db.kind {
                DbKind::Sqlite { .. } => "SQLite".to_owned(),
                DbKind::Postgres(pg) => format!("PostgreSQL {}", pg.name),
            },
            extra.join(" ")
        );
        let mut s = Server {
            child,
            pid,
            port,
            _dir: dir,
            log,
            log_read: 0,
            db: db.clone(),
            metrics_port,
        };
        s.wait_serving().await?;
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pid and database, to name this server in a report.
    pub fn describe(&self) -> String {
        let db = match &self.db.kind {
            DbKind::Sqlite { .. } => "SQLite".to_owned(),
            DbKind::Postgres(pg) => format!("PostgreSQL {}", pg.name),
        };
        format!("incidentd pid {} ({db})", self.pid)
    }

    /// What the server logged (at WARN and above: the bench starts it with
    /// `INCIDENTD_LOG=warn`) since the last call, summarised.
    pub fn log_news(&mut self) -> Option<LogNews> {
        let text = self.log();
        let new = text.get(self.log_read..)?.to_owned();
        self.log_read = text.len();
        LogNews::of(&self.describe(), &new)
    }

    /// Copies the whole log to `dir` (`--logs`), named after the pid.
    pub fn keep_log(&self, dir: &Path) {
        let to = dir.join(format!("incidentd-{}.log", self.pid));
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::copy(&self.log, &to)) {
            eprintln!("  could not keep {}: {e}", to.display());
        }
    }

    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("incidentd exited early ({status}):\n{}", self.log());
            }
            if let Ok(ch) = Endpoint::from_shared(self.url())?.connect().await
                && let Ok(r) = HealthClient::new(ch)
                    .check(HealthCheckRequest::default())
                    .await
                && r.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("incidentd never became SERVING:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A new HTTP/2 connection to the server.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        Ok(Endpoint::from_shared(self.url())?
            .tcp_nodelay(true)
            .connect()
            .await?)
    }

    /// `n` separate connections.
    pub async fn connections(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            v.push(self.connect().await?);
        }
        Ok(v)
    }

    /// The value of the unlabelled sample `name` (say
    /// `incidentd_writer_batch_size_count`) on a metered server's /metrics.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = self
            .metrics_port
            .context("this server was started without metrics")?;
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut text))
            .await
            .context("/metrics did not answer in 5 s")??;
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse::<f64>().ok())?
            })
            .with_context(|| format!("no {name} on /metrics"))
    }

    /// Its PostgreSQL database's URL, for `psql` (None on SQLite).
    pub fn postgres_url(&self) -> Option<String> {
        self.db.postgres_url().map(str::to_owned)
    }

    /// Resident memory now, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS:").unwrap_or(0)
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.pid).unwrap_or(0.0)
    }

    /// SIGTERM, then a bounded wait, then SIGKILL. What it logged that was
    /// not reported yet is reported (see [`take_log_news`]).
    pub async fn stop(mut self) {
        let early = self.child.try_wait().ok().flatten();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "  {} did not stop within 10 s of SIGTERM: killed",
                self.describe()
            );
            let _ = self.child.kill().await;
        }
        if let Some(dir) = LOG_DIR.get() {
            self.keep_log(dir);
        }
        let mut news = self.log_news();
        if let Some(status) = early {
            let n = news.get_or_insert_with(|| LogNews {
                server: self.describe(),
                lines: 0,
                distinct: Vec::new(),
            });
            n.distinct
                .insert(0, (format!("exited before it was stopped ({status})"), 1));
        }
        if let Some(n) = news {
            STOPPED_LOGS.lock().unwrap().push(n);
        }
    }
}

/// Where `--logs` keeps the server logs, if it was given.
pub static LOG_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// What servers stopped since the last [`take_log_news`] logged.
static STOPPED_LOGS: std::sync::Mutex<Vec<LogNews>> = std::sync::Mutex::new(Vec::new());

/// What the servers stopped since the last call logged at WARN and above.
pub fn take_log_news() -> Vec<LogNews> {
    std::mem::take(&mut *STOPPED_LOGS.lock().unwrap())
}

/// Lines a server logged, counted by message.
pub struct LogNews {
    pub server: String,
    pub lines: usize,
    /// Distinct messages (timestamps and span fields left out), with how
    /// often each came, in order of first appearance.
    pub distinct: Vec<(String, usize)>,
}

impl LogNews {
    fn of(server: &str, text: &str) -> Option<LogNews> {
        let mut distinct: Vec<(String, usize)> = Vec::new();
        let mut lines = 0;
        for line in text.lines().map(strip_ansi) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // Every server says so at start; not news.
            if line.contains("serving without authentication") {
                continue;
            }
            lines += 1;
            // "2026-12-02T01:02:03.456Z  WARN target: message k=v": drop the time.
            let rest = match line.split_once(' ') {
                Some((t, rest)) if t.starts_with("20") && t.contains('T') => rest.trim_start(),
                _ => line,
            };
            let key: String = rest.chars().take(200).collect();
            match distinct.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => distinct.push((key, 1)),
            }
        }
        (lines > 0).then(|| LogNews {
            server: server.to_owned(),
            lines,
            distinct,
        })
    }

    /// One line: how many, and the first few distinct messages.
    pub fn summary(&self) -> String {
        let shown: Vec<String> = self
            .distinct
            .iter()
            .take(4)
            .map(|(m, n)| format!("{n} x \"{m}\""))
            .collect();
        format!(
            "{} logged {} line(s) at WARN or above ({} distinct): {}{}",
            self.server,
            self.lines,
            self.distinct.len(),
            shown.join("; "),
            if self.distinct.len() > 4 { "; ..." } else { "" }
        )
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU time (user + system) of process `pid` so far, in seconds.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) of each thread of process `pid` so far: its
/// thread id, its name and the seconds.
pub fn thread_cpu_seconds(pid: u32) -> Vec<(u32, String, f64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let secs = stat_cpu_seconds(&format!("/proc/{pid}/task/{tid}/stat"))?;
            Some((tid, name.trim().to_owned(), secs))
        })
        .collect()
}

/// User + system seconds of a `/proc/.../stat` file (a process's or a thread's).
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// CPU time this process (the load generator, every thread) used so far, in seconds.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CPU time of every process of the local PostgreSQL server (every process
/// named `postgres`: the postmaster, its background processes and every
/// backend, whoever they serve), in seconds. A backend that exits between two
/// readings takes its time with it.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(proc_cpu_seconds)
        .sum()
}

/// What a window's CPU figures cover: one server, or several (replicas,
/// added up); with the database's own processes when it is PostgreSQL.
pub trait Probe {
    fn servers(&self) -> Vec<&Server>;
}

impl Probe for Server {
    fn servers(&self) -> Vec<&Server> {
        vec![self]
    }
}

impl Probe for [Server] {
    fn servers(&self) -> Vec<&Server> {
        self.iter().collect()
    }
}

impl Probe for Vec<Server> {
    fn servers(&self) -> Vec<&Server> {
        self.iter().collect()
    }
}

impl Probe for [&Server] {
    fn servers(&self) -> Vec<&Server> {
        self.to_vec()
    }
}

/// CPU time the whole machine spent busy so far (every core; user, system,
/// interrupts and steal from /proc/stat), in seconds.
pub fn machine_busy_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy as f64 / clock_ticks()
}

/// Server, client, database and machine CPU at one instant, to take deltas
/// over a window.
#[derive(Clone)]
pub struct CpuMark {
    at: Instant,
    server: f64,
    /// Each server thread's CPU seconds, by (pid, thread id).
    threads: HashMap<(u32, u32), (String, f64)>,
    client: f64,
    db: Option<f64>,
    machine: f64,
}

/// CPU over a window, in cores.
#[derive(Clone, Default)]
pub struct Cpu {
    pub wall: f64,
    pub server: f64,
    pub client: f64,
    /// The PostgreSQL server's processes, when the servers use it.
    pub db: Option<f64>,
    /// Everything else the machine ran meanwhile (other processes: a build,
    /// another benchmark), which the figures did not get.
    pub other: f64,
    /// The servers' CPU by what their threads do, busiest first.
    pub server_threads: Vec<(&'static str, f64)>,
}

/// What a server thread does, from its name (tokio names its blocking
/// threads as its workers: they count as runtime workers). sqlx names every SQLite
/// connection's thread alike; in a write scenario the busiest one is the
/// writer's connection (one statement after another for every group).
const RUNTIME: &str = "runtime workers";
const WRITER: &str = "writer";
const BUSIEST_SQLITE: &str = "busiest SQLite connection";
const OTHER_SQLITE: &str = "other SQLite connections";
const OTHER_THREADS: &str = "other threads";
const ENDED_THREADS: &str = "threads that ended in the window";

/// Each server's threads' CPU over a window (cores, by (pid, thread id) and
/// name) summed by what the threads do.
fn by_role(threads: Vec<((u32, u32), &str, f64)>) -> Vec<(&'static str, f64)> {
    let sqlite = |name: &str| name.starts_with("sqlx-sqlite");
    // Each server's busiest SQLite thread, by (pid, thread id).
    let mut busiest: HashMap<u32, (u32, f64)> = HashMap::new();
    for &((pid, tid), name, cores) in &threads {
        if sqlite(name) {
            let b = busiest.entry(pid).or_insert((tid, cores));
            if cores > b.1 {
                *b = (tid, cores);
            }
        }
    }
    let mut roles: BTreeMap<&'static str, f64> = BTreeMap::new();
    for ((pid, tid), name, cores) in threads {
        let role = if name.starts_with("tokio-rt-worker") {
            RUNTIME
        } else if name.starts_with("incidentd-write") {
            WRITER
        } else if sqlite(name) {
            if busiest.get(&pid).is_some_and(|b| b.0 == tid) {
                BUSIEST_SQLITE
            } else {
                OTHER_SQLITE
            }
        } else {
            OTHER_THREADS
        };
        *roles.entry(role).or_default() += cores;
    }
    let mut roles: Vec<_> = roles.into_iter().collect();
    roles.sort_by(|a, b| b.1.total_cmp(&a.1));
    roles
}

impl CpuMark {
    pub fn take<P: Probe + ?Sized>(probe: &P) -> CpuMark {
        let servers = probe.servers();
        let threads = servers
            .iter()
            .flat_map(|s| {
                thread_cpu_seconds(s.pid)
                    .into_iter()
                    .map(|(tid, name, secs)| ((s.pid, tid), (name, secs)))
            })
            .collect();
        CpuMark {
            at: Instant::now(),
            server: servers.iter().map(|s| s.cpu_seconds()).sum(),
            threads,
            client: self_cpu_seconds(),
            db: servers
                .iter()
                .any(|s| s.db.is_postgres())
                .then(postgres_cpu_seconds),
            machine: machine_busy_seconds(),
        }
    }

    /// The CPU used since `self`.
    pub fn since<P: Probe + ?Sized>(&self, probe: &P) -> Cpu {
        let now = CpuMark::take(probe);
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let server = (now.server - self.server) / wall;
        let client = (now.client - self.client) / wall;
        let db = match (now.db, self.db) {
            (Some(b), Some(a)) => Some(((b - a) / wall).max(0.0)),
            _ => None,
        };
        let machine = (now.machine - self.machine) / wall;
        // A thread that began within the window counts from zero.
        let threads = now
            .threads
            .iter()
            .map(|(key, (name, secs))| {
                let before = self.threads.get(key).map_or(0.0, |(_, s)| *s);
                (*key, name.as_str(), ((secs - before) / wall).max(0.0))
            })
            .collect();
        let mut server_threads = by_role(threads);
        // A thread that ended within the window (tokio's blocking threads
        // do, after 10 s idle) is in the process's figure and no longer in
        // /proc/PID/task.
        let named: f64 = server_threads.iter().map(|(_, cores)| cores).sum();
        if server - named > 0.005 {
            server_threads.push((ENDED_THREADS, server - named));
        }
        Cpu {
            server_threads,
            wall,
            server,
            client,
            db,
            other: (machine - server - client - db.unwrap_or(0.0)).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_summed_by_what_they_do_with_each_servers_busiest_sqlite_connection_apart() {
        let threads = vec![
            ((1, 10), "tokio-rt-worker", 0.3),
            ((1, 11), "tokio-rt-worker", 0.2),
            ((1, 12), "incidentd-write", 0.1),
            ((1, 13), "sqlx-sqlite-wor", 0.05),
            ((1, 14), "sqlx-sqlite-wor", 0.4),
            ((1, 15), "sqlx-sqlite-wor", 0.05),
            ((2, 20), "sqlx-sqlite-wor", 0.25),
            ((1, 16), "tracing-appende", 0.01),
        ];
        let roles: HashMap<_, _> = by_role(threads.clone()).into_iter().collect();
        let close = |role: &str, want: f64| (roles[role] - want).abs() < 1e-9;
        assert!(close(RUNTIME, 0.5));
        assert!(close(WRITER, 0.1));
        // One busiest per server: 0.4 of the first, 0.25 of the second.
        assert!(close(BUSIEST_SQLITE, 0.65));
        assert!(close(OTHER_SQLITE, 0.1));
        assert!(close(OTHER_THREADS, 0.01));
        // Busiest first.
        assert_eq!(by_role(threads)[0].0, BUSIEST_SQLITE);
    }

    #[test]
    fn two_sqlite_threads_equally_busy_count_once_as_the_busiest() {
        let roles: HashMap<_, _> = by_role(vec![
            ((1, 13), "sqlx-sqlite-wor", 0.2),
            ((1, 14), "sqlx-sqlite-wor", 0.2),
        ])
        .into_iter()
        .collect();
        assert_eq!(roles[BUSIEST_SQLITE], 0.2);
        assert_eq!(roles[OTHER_SQLITE], 0.2);
    }
}
