//! The server under test: the release `incidentd` as a child process on a
//! free loopback port with a fresh database, and what /proc says about it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

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

/// A running `incidentd serve`.
pub struct Server {
    child: Child,
    pid: u32,
    port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Starts `bin serve` on a fresh database with `extra` flags and waits
    /// until health says SERVING.
    pub async fn start(bin: &Path, extra: &[String]) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("incident-bench-")
            .tempdir()?;
        let db = dir.path().join("bench.db");
        let log = dir.path().join("incidentd.log");
        let out = std::fs::File::create(&log)?;
        let port = free_port()?;
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
            .arg(&db)
            .arg("--shutdown-grace")
            .arg("1s")
            .args(extra)
            .env("INCIDENTD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("incidentd has no pid")?;
        eprintln!(
            "  incidentd pid {pid} on 127.0.0.1:{port} {}",
            extra.join(" ")
        );
        let mut s = Server {
            child,
            pid,
            port,
            _dir: dir,
            log,
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

    /// Resident memory now, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS:").unwrap_or(0)
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.pid).unwrap_or(0.0)
    }

    /// SIGTERM, then a bounded wait, then SIGKILL.
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
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

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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

/// Server and client CPU at one instant, to take deltas over a window.
#[derive(Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    server: f64,
    client: f64,
}

impl CpuMark {
    pub fn take(server: &Server) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server: server.cpu_seconds(),
            client: self_cpu_seconds(),
        }
    }

    /// (wall seconds, server cores, client cores) since `self`.
    pub fn since(&self, server: &Server) -> (f64, f64, f64) {
        let now = CpuMark::take(server);
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        (
            wall,
            (now.server - self.server) / wall,
            (now.client - self.client) / wall,
        )
    }
}
