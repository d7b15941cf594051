//! The real binary, `incidentd serve`, as a child process.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use incident_client::tonic::transport::Channel;
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::db::{TestDb, WithDatabase};
use super::wait::within;

/// `incidentd serve` on a free loopback port, its output in a log file.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    db: TestDb,
    log: PathBuf,
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Daemon {
    /// Starts the binary on `db` (with `extra` arguments to `serve`) and
    /// waits until health says SERVING. The daemon holds a handle of `db`:
    /// a test that starts it again on the same database keeps its own.
    pub async fn start(db: &TestDb, log: &Path, extra: &[&str]) -> Daemon {
        Self::start_with(db, log, extra, None).await
    }

    /// As [`Daemon::start`], under an open-file limit of `nofile` (soft and
    /// hard, set with `prlimit`) when given.
    pub async fn start_with(
        db: &TestDb,
        log: &Path,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> Daemon {
        let port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let bin = env!("CARGO_BIN_EXE_incidentd");
        let mut cmd = match nofile {
            None => Command::new(bin),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
                c
            }
        };
        for (k, _) in std::env::vars() {
            if k.starts_with("INCIDENTD_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(db.as_str())
            .args(extra)
            .env("INCIDENTD_LOG", "warn")
            // Its PostgreSQL sessions are named after its log (`replica-0`
            // ...), so a test can tell one daemon's from another's.
            .env(
                "PGAPPNAME",
                log.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("incidentd"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().expect("log file")))
            .stderr(Stdio::from(out))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn incidentd");
        let mut d = Daemon {
            child,
            port,
            db: db.clone(),
            log: log.to_owned(),
        };
        d.wait_serving().await;
        d
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the daemon wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_serving(&mut self) {
        let log = self.log.clone();
        within(
            &format!("incidentd becoming SERVING (log {})", log.display()),
            async {
                loop {
                    if let Some(status) = self.child.try_wait().expect("try_wait") {
                        panic!("incidentd exited early ({status}):\n{}", self.log());
                    }
                    if let Ok(ch) = Channel::from_shared(self.url())
                        .expect("url")
                        .connect()
                        .await
                        && let Ok(r) = HealthClient::new(ch)
                            .check(HealthCheckRequest::default())
                            .await
                        && r.into_inner().status == ServingStatus::Serving as i32
                    {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        )
        .await
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// Sends `sig` (e.g. "TERM") to the process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }
}

impl WithDatabase for Daemon {
    fn database(&self) -> &TestDb {
        &self.db
    }
}

/// The response to a plain HTTP/1.1 GET of `path` from `addr` (the metrics
/// endpoint), status line and headers included; `None` if it does not answer.
pub async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}
