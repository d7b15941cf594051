//! The scenarios, each producing rows of the table with the performance
//! targets its figures are held to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures::future::join_all;
use incident_client::pb::subscribe_timeline_request::Start;
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Streaming};
use incident_client::*;
use tokio::sync::{Semaphore, watch};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::load::{Measured, Op, Samples, closed_loop, mix, open_loop};
use crate::report::Row;
use crate::server::{Backend, CpuMark, Database, PgDatabase, Probe, Server, psql};
use crate::skim;

/// Connections a closed loop spreads its calls over.
const CONNECTIONS: usize = 4;
/// Subscription streams multiplexed on one connection.
const STREAMS_PER_CONNECTION: usize = 100;
/// The admission limit of the overload server.
const OVERLOAD_LIMIT: usize = 32;
/// Write rate while fanning out.
const FANOUT_RATE: u64 = 100;
/// Replicas of the `replicas-*` scenarios.
const REPLICAS: usize = 3;
/// Cross-replica commit->receipt target.
const REPLICA_P99_MS: f64 = 100.0;

/// Every scenario, in the order they run and print.
pub const ALL: &[&str] = &[
    "baseline",
    "pgbench",
    "get",
    "list",
    "post-1",
    "post-16",
    "post-64",
    "note-128",
    "mixed",
    "fanout",
    "catchup",
    "groupcommit",
    "stalled",
    "overload",
    "replicas-post",
    "replicas-fanout",
];

/// The scenarios only the PostgreSQL backend runs: the database's own limit,
/// and several replicas on one database.
pub const POSTGRES_ONLY: &[&str] = &["pgbench", "replicas-post", "replicas-fanout"];

/// Settings and state shared by the scenarios of one run.
pub struct Ctx {
    pub bin: std::path::PathBuf,
    pub backend: Backend,
    pub quick: bool,
    pub incidents: usize,
    pub subscribers: usize,
    /// Subscribers of `replicas-fanout`, over all the replicas.
    pub replica_subscribers: usize,
    pub events: u64,
    pub warmup: Duration,
    pub window: Duration,
    pub nproc: usize,
    pub server: Server,
    pub chans: Arc<Vec<Channel>>,
    /// Incidents reads and writes go to.
    pub hot: Arc<Vec<String>>,
    /// Incidents created on the main server so far.
    pub created: usize,
    pub baseline: Option<f64>,
    pub post64: Option<f64>,
    /// pgbench's single-row INSERT transactions per second at 64 clients.
    pub pgbench64: Option<f64>,
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
}

impl Ctx {
    /// The server flags every bench server gets: nothing shed unless a
    /// scenario wants it, room for every subscriber.
    pub fn main_flags(subscribers: usize) -> Vec<String> {
        vec![
            "--max-concurrent-requests".into(),
            "1000000".into(),
            "--max-subscribers".into(),
            (subscribers * 2 + 64).clamp(10_000, 1_000_000).to_string(),
        ]
    }

    fn ratio(&self, ops: f64) -> Option<f64> {
        self.baseline.map(|b| ops / b)
    }

    /// Another server of this run's backend, on a fresh database of its own.
    async fn start_server(&self, flags: &[String]) -> anyhow::Result<Server> {
        let db = Database::fresh(&self.backend).await?;
        Server::start(&self.bin, &db, flags).await
    }

    /// `REPLICAS` servers on one fresh PostgreSQL database.
    async fn start_replicas(&self, flags: &[String]) -> anyhow::Result<Vec<Server>> {
        if !self.backend.is_postgres() {
            bail!("replicas share a PostgreSQL database: run with --backend postgres or both");
        }
        let db = Database::fresh(&self.backend).await?;
        let mut servers = Vec::with_capacity(REPLICAS);
        for _ in 0..REPLICAS {
            servers.push(Server::start(&self.bin, &db, flags).await?);
        }
        Ok(servers)
    }

    /// What "durable" means for the write targets on this backend.
    fn durability(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "synchronous=FULL",
            Backend::Postgres { .. } => "synchronous_commit=on",
        }
    }

    /// A row with the usual figures of a closed loop on the main server.
    fn row(&self, scenario: &str, m: &Measured) -> Row {
        self.row_on(&self.server, scenario, m)
    }

    /// A row with the usual figures of a closed loop on `server`.
    fn row_on(&self, server: &Server, scenario: &str, m: &Measured) -> Row {
        let all = m.all();
        let mut r = Row {
            scenario: scenario.into(),
            ops_per_s: Some(m.ops_per_s()),
            ratio: self.ratio(m.ops_per_s()),
            p50_ms: all.quantile_ms(0.50),
            p99_ms: all.quantile_ms(0.99),
            p999_ms: all.quantile_ms(0.999),
            server_rss_mib: Some(server.rss_kib() as f64 / 1024.0),
            server_cpu: Some(m.server_cpu),
            client_cpu: Some(m.client_cpu),
            db_cpu: m.db_cpu,
            other_cpu: Some(m.other_cpu),
            server_us_per_call: match m.ops_per_s() {
                ops if ops > 0.0 => m
                    .server_threads
                    .iter()
                    .map(|(role, cores)| (*role, cores / ops * 1e6))
                    .collect(),
                _ => Vec::new(),
            },
            ..Default::default()
        };
        if m.error_count() > 0 {
            r.note(format!(
                "{scenario}: errors during the window: {:?}",
                m.errors
            ));
        }
        r
    }

    pub async fn run(&mut self, name: &str) -> anyhow::Result<()> {
        settle(&self.server).await;
        match name {
            "baseline" => self.baseline().await,
            "pgbench" => self.pgbench().await,
            "get" => self.get().await,
            "list" => self.list().await,
            "post-1" => self.post(1).await,
            "post-16" => self.post(16).await,
            "post-64" => self.post(64).await,
            "note-128" => self.note(128).await,
            "mixed" => self.mixed().await,
            "fanout" => self.fanout().await,
            "catchup" => self.catchup().await,
            "groupcommit" => self.groupcommit().await,
            "stalled" => self.stalled().await,
            "overload" => self.overload().await,
            "replicas-post" => self.replicas_post().await,
            "replicas-fanout" => self.replicas_fanout().await,
            other => bail!("unknown scenario {other}"),
        }
    }

    // -----------------------------------------------------------------------

    async fn baseline(&mut self) -> anyhow::Result<()> {
        let m = closed_loop(
            &self.server,
            64,
            self.warmup,
            self.window,
            health_op(self.chans.clone()),
        )
        .await;
        self.baseline = Some(m.ops_per_s());
        let mut r = self.row("baseline (health Check, 64 in flight)", &m);
        let n = self.nproc as f64;
        let busy = m.server_cpu + m.client_cpu;
        if busy < 0.85 * n {
            self.warnings.push(format!(
                "the baseline did not saturate the machine (server {:.2} + client {:.2} of {} cores): \
                 the figures measure round trips, not the server's capacity",
                m.server_cpu, m.client_cpu, self.nproc
            ));
        }
        let usable = (n - m.client_cpu).max(0.0);
        if m.server_cpu < 0.9 * usable {
            self.warnings.push(format!(
                "the baseline does not saturate the server: it used {:.2} of the {:.2} cores the \
                 load generator ({:.2} cores) left it on this {}-core machine; the server waits \
                 (on the network or a lock), so the figures measure round trips and the client \
                 as much as the server",
                m.server_cpu, usable, m.client_cpu, self.nproc
            ));
        }
        if m.client_cpu >= 0.8 * m.server_cpu {
            r.note(format!(
                "baseline: the load generator needs about as much CPU as the server ({:.2} vs {:.2} \
                 cores) and they share {} cores: the server gets about {:.0} % of the machine",
                m.client_cpu,
                m.server_cpu,
                self.nproc,
                100.0 * m.server_cpu / n
            ));
        }
        self.rows.push(r);
        Ok(())
    }

    /// Makes sure the hot set of incidents (reads and writes go there) exists.
    async fn ensure_hot(&mut self) -> anyhow::Result<()> {
        if self.hot.is_empty() {
            let n = if self.quick { 256 } else { 1000 };
            let (ids, _) = create_incidents(&self.chans, n, 64, self.created).await?;
            self.created += n;
            self.hot = Arc::new(ids);
        }
        Ok(())
    }

    async fn get(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let m = closed_loop(
            &self.server,
            64,
            self.warmup,
            self.window,
            get_op(self.chans.clone(), self.hot.clone()),
        )
        .await;
        let mut r = self.row("get (GetIncident, 64 in flight)", &m);
        if let Some(ratio) = r.ratio {
            r.target(">= 0.7 x baseline", format!("{ratio:.2} x"), ratio >= 0.7);
        }
        self.rows.push(r);
        Ok(())
    }

    /// One row per kind of ListIncidents filter: one the pages are full
    /// for, and one of each selective kind that matches nothing, which a
    /// plan without the right index answers only after reading every row.
    async fn list(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let preload = self.preload().await?;
        let component = unused_component(&self.chans[0]).await?;
        let filters = list_filters(component);
        let pg = self.server.postgres_url();
        // On PostgreSQL the plans depend on the planner's statistics, which
        // only ANALYZE (autovacuum's, or an operator's) gathers: the filters
        // run on the tables as the server left them, then again after ANALYZE.
        let analyzed = match &pg {
            Some(url) => Some(planner_statistics(url).await?),
            None => None,
        };
        for (k, f) in filters.iter().cloned().enumerate() {
            let mut r = self.list_row(f, "").await?;
            if k == 0 {
                if let Some(n) = &preload {
                    r.note(n.clone());
                }
                if let Some(a) = &analyzed {
                    r.note(format!("list: {a}"));
                }
            }
            self.rows.push(r);
        }
        if let Some(url) = pg {
            psql(&url, "ANALYZE").await?;
            for f in filters {
                let r = self.list_row(f, ", after ANALYZE").await?;
                self.rows.push(r);
            }
        }
        Ok(())
    }

    /// Grows the table to `incidents` incidents; says how, if it had to.
    async fn preload(&mut self) -> anyhow::Result<Option<String>> {
        if self.created >= self.incidents {
            return Ok(None);
        }
        let n = self.incidents - self.created;
        let (_, rate) = create_incidents(&self.chans, n, 256, self.created).await?;
        self.created = self.incidents;
        // The kernel writes a preload's pages back to the disk up to half a
        // minute later, on this machine's cores: done now, not in the window
        // of the scenario that follows.
        let t = Instant::now();
        // SAFETY: sync(2) has no preconditions.
        tokio::task::spawn_blocking(|| unsafe { libc::sync() }).await?;
        Ok(Some(format!(
            "list preload: {n} CreateIncident calls, 256 in flight over {CONNECTIONS} connections \
             (group commit), {rate:.0}/s, {:.0} s; then sync(2), {:.1} s",
            n as f64 / rate,
            t.elapsed().as_secs_f64()
        )))
    }

    async fn list_row(&self, f: ListFilter, suffix: &str) -> anyhow::Result<Row> {
        // Checked once, so that a row measures what its name says.
        let found = IncidentServiceClient::new(self.chans[0].clone())
            .list_incidents(f.req.clone())
            .await?
            .into_inner()
            .incidents
            .len();
        if (found > 0) != f.matches {
            bail!(
                "ListIncidents {} found {found} incidents, expected {}",
                f.name,
                if f.matches { "some" } else { "none" }
            );
        }
        let conc = 4;
        let m = closed_loop(
            &self.server,
            conc,
            self.warmup,
            self.window,
            list_op(self.chans.clone(), f.req),
        )
        .await;
        let mut r = self.row(
            &format!(
                "list, {} (ListIncidents {}, 50/page, {} incidents, {conc} in flight{suffix})",
                if f.matches { "matching" } else { "no match" },
                f.name,
                self.created
            ),
            &m,
        );
        let p99 = r.p99_ms.unwrap_or(f64::INFINITY);
        let at = if self.created == 1_000_000 {
            String::new()
        } else {
            format!(" (target is at 1000000; here {})", self.created)
        };
        r.target(
            format!("p99 <= 5 ms{at}"),
            format!("{p99:.2} ms"),
            p99 <= 5.0,
        );
        Ok(r)
    }

    async fn post(&mut self, conc: usize) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let chans = if conc == 1 {
            Arc::new(vec![self.chans[0].clone()])
        } else {
            self.chans.clone()
        };
        let m = closed_loop(
            &self.server,
            conc,
            self.warmup,
            self.window,
            post_op(chans, self.hot.clone()),
        )
        .await;
        let mut r = self.row(
            &format!("post-{conc} (PostStatusUpdate, {conc} in flight)"),
            &m,
        );
        if conc == 64 {
            self.post64 = Some(m.ops_per_s());
            let ops = m.ops_per_s();
            r.target(
                format!(">= 10000/s ({})", self.durability()),
                format!("{ops:.0}/s"),
                ops >= 10_000.0,
            );
            let p99 = r.p99_ms.unwrap_or(f64::INFINITY);
            r.target("p99 <= 20 ms", format!("{p99:.2} ms"), p99 <= 20.0);
            if let Some(pg) = self.pgbench64 {
                pgbench_target(&mut r, ops, pg);
            }
            r.note_cpu_per_call("post-64");
        }
        self.rows.push(r);
        Ok(())
    }

    async fn note(&mut self, conc: usize) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let m = closed_loop(
            &self.server,
            conc,
            self.warmup,
            self.window,
            note_op(self.chans.clone(), self.hot.clone()),
        )
        .await;
        let mut r = self.row(&format!("note-{conc} (AddNote, {conc} in flight)"), &m);
        if conc == 128 {
            let ops = m.ops_per_s();
            r.target(
                format!(">= 25000/s ({})", self.durability()),
                format!("{ops:.0}/s"),
                ops >= 25_000.0,
            );
            r.note_cpu_per_call("note-128");
        }
        self.rows.push(r);
        Ok(())
    }

    async fn mixed(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let m = closed_loop(
            &self.server,
            64,
            self.warmup,
            self.window,
            mixed_op(self.chans.clone(), self.hot.clone()),
        )
        .await;
        let mut r = self.row("mixed (90% GetIncident / 10% PostStatusUpdate, 64)", &m);
        r.note(format!(
            "mixed: reads p99 {:.2} ms, writes p99 {:.2} ms",
            m.lat[0].quantile_ms(0.99).unwrap_or(0.0),
            m.lat[1].quantile_ms(0.99).unwrap_or(0.0)
        ));
        self.rows.push(r);
        Ok(())
    }

    // -----------------------------------------------------------------------

    async fn fanout(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let n = self.subscribers;
        let run = fanout_run(
            &[&self.server],
            &self.server,
            self.hot[0].clone(),
            n,
            self.warmup,
            self.window,
        )
        .await?;
        let lat = &run.lat[0];
        let delivered = lat.len() as f64;
        let rss_mib = run.rss_max[0].max(run.rss_open[0]) as f64 / 1024.0;
        let mut r = Row {
            scenario: format!("fanout ({n} subscribers, {FANOUT_RATE} events/s; deliveries)"),
            ops_per_s: Some(delivered / run.cpu.wall),
            ratio: self.ratio(delivered / run.cpu.wall),
            p50_ms: lat.quantile_ms(0.5),
            p99_ms: lat.quantile_ms(0.99),
            p999_ms: lat.quantile_ms(0.999),
            server_rss_mib: Some(rss_mib),
            server_cpu: Some(run.cpu.server),
            client_cpu: Some(run.cpu.client),
            db_cpu: run.cpu.db,
            other_cpu: Some(run.cpu.other),
            ..Default::default()
        };
        let p99 = r.p99_ms.unwrap_or(f64::INFINITY);
        let at = if n == 10_000 {
            String::new()
        } else {
            format!(" (target at 10000 subs; here {n})")
        };
        r.target(
            format!("commit->receipt p99 <= 50 ms{at}"),
            format!("{p99:.2} ms"),
            p99 <= 50.0,
        );
        r.target(
            format!("server RSS <= 300 MiB{at}"),
            format!("{rss_mib:.1} MiB"),
            rss_mib <= 300.0,
        );
        r.note(format!(
            "fanout: latency = receipt - event_time (the group's commit clock, taken before its \
             fsync); RSS {:.1} MiB before subscribing, {:.1} MiB with {n} open; write (AddNote) \
             p99 {:.2} ms; {} deliveries in the window for {:.0} expected (writes x subscribers){}",
            run.rss0[0] as f64 / 1024.0,
            run.rss_open[0] as f64 / 1024.0,
            run.writes.quantile_ms(0.99).unwrap_or(0.0),
            delivered,
            run.writes.len() as f64 * n as f64,
            run.failures(),
        ));
        self.rows.push(r);
        Ok(())
    }

    async fn catchup(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        let target = self.events;
        let incident = self.hot[0].clone();
        let mut head = add_note(&self.chans[0], &incident, "catch-up probe".into()).await?;
        let mut topup_note = None;
        if head < target {
            let need = target - head;
            let t = Instant::now();
            head = fill_log(&self.chans, &incident, need, 128).await?;
            let rate = need as f64 / t.elapsed().as_secs_f64();
            topup_note = Some(format!(
                "catch-up: log topped up to {head} events with {need} AddNote calls, 128 in flight ({rate:.0}/s)"
            ));
        }
        let ch = self.server.connect().await?;
        let mark = CpuMark::take(&self.server);
        let t = Instant::now();
        let mut stream = skim::subscribe(
            ch,
            SubscribeTimelineRequest {
                start: Some(Start::AfterSequence(0)),
                ..Default::default()
            },
        )
        .await?;
        let mut first_after = None::<Duration>;
        let mut received = 0u64;
        // What was replayed, in bytes on the wire: events differ in size
        // (a note is small, an incident's creation carries the incident), so
        // a rate in events/s is only comparable with the same mix.
        let mut bytes = 0u64;
        while let Some(m) = stream.message().await? {
            bytes += m.wire_len as u64;
            if let Some(e) = m.message.event {
                if first_after.is_none() {
                    first_after = Some(t.elapsed());
                }
                received += 1;
                if e.sequence >= head || received >= target {
                    break;
                }
            }
        }
        let took = t.elapsed().as_secs_f64();
        let cpu = mark.since(&self.server);
        drop(stream);
        let rate = received as f64 / took;
        let mut r = Row {
            scenario: format!("catchup (1 subscriber replaying {received} events from 0)"),
            ops_per_s: Some(rate),
            ratio: self.ratio(rate),
            server_rss_mib: Some(self.server.rss_kib() as f64 / 1024.0),
            server_cpu: Some(cpu.server),
            client_cpu: Some(cpu.client),
            db_cpu: cpu.db,
            other_cpu: Some(cpu.other),
            ..Default::default()
        };
        let at = if received >= 1_000_000 {
            String::new()
        } else {
            format!(" (target replays 1000000; here {received})")
        };
        r.target(
            format!(">= 500000 events/s{at}"),
            format!("{rate:.0}/s"),
            rate >= 500_000.0,
        );
        r.note(format!(
            "catch-up: {received} events in {took:.2} s, first after {:.1} ms; {:.1} MiB, {:.0} bytes an event, {:.1} MiB/s",
            first_after.unwrap_or_default().as_secs_f64() * 1e3,
            bytes as f64 / (1024.0 * 1024.0),
            bytes as f64 / received.max(1) as f64,
            bytes as f64 / (1024.0 * 1024.0) / took,
        ));
        if let Some(n) = topup_note {
            r.note(n);
        }
        self.rows.push(r);
        Ok(())
    }

    // -----------------------------------------------------------------------

    async fn groupcommit(&mut self) -> anyhow::Result<()> {
        let mut reference = self.post64;
        let mut extra_row = None;
        if reference.is_none() {
            // post-64 was not run: measure it on a fresh default server.
            let (m, row) = self
                .post64_on("groupcommit reference (post-64, default server)", &[])
                .await?;
            reference = Some(m);
            extra_row = Some(row);
        }
        let (ops, mut row) = self
            .post64_on(
                "groupcommit (post-64 on a second server, --max-batch 1)",
                &["--max-batch".into(), "1".into()],
            )
            .await?;
        if let Some(x) = extra_row {
            self.rows.push(x);
        }
        let reference = reference.unwrap_or(0.0);
        let ratio = reference / ops.max(1e-9);
        row.target(
            "post-64 >= 5 x the same with --max-batch 1",
            format!("{ratio:.1} x ({reference:.0} vs {ops:.0}/s)"),
            ratio >= 5.0,
        );
        self.rows.push(row);
        Ok(())
    }

    /// PostStatusUpdate at 64 in flight on a fresh server with `flags`.
    async fn post64_on(&self, scenario: &str, flags: &[String]) -> anyhow::Result<(f64, Row)> {
        let mut all = Ctx::main_flags(0);
        all.extend_from_slice(flags);
        let server = self.start_server(&all).await?;
        let chans = Arc::new(server.connections(CONNECTIONS).await?);
        let (ids, _) = create_incidents(&chans, 64, 64, 0).await?;
        let m = closed_loop(
            &server,
            64,
            self.warmup,
            self.window,
            post_op(chans, Arc::new(ids)),
        )
        .await;
        let row = self.row_on(&server, scenario, &m);
        server.stop().await;
        Ok((m.ops_per_s(), row))
    }

    async fn stalled(&mut self) -> anyhow::Result<()> {
        self.ensure_hot().await?;
        // Without / with / without / with, pooled, so drift does not decide.
        let phase = (self.window / 2).max(Duration::from_millis(500));
        let warm = self.warmup / 2;
        let (mut without, mut with) = (Samples::default(), Samples::default());
        let (mut ops_without, mut ops_with) = (0.0, 0.0);
        let mut last = None;
        for _ in 0..2 {
            let m = closed_loop(
                &self.server,
                64,
                warm,
                phase,
                post_op(self.chans.clone(), self.hot.clone()),
            )
            .await;
            ops_without += m.ops_per_s() / 2.0;
            without.0.extend(m.all().0);
            // One subscriber on its own connection that never reads: its
            // stream and connection windows fill, then the server's queue.
            let stalled_ch = self.server.connect().await?;
            let stalled = TimelineServiceClient::new(stalled_ch.clone())
                .subscribe_timeline(SubscribeTimelineRequest {
                    start: Some(Start::FromNow(())),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let m = closed_loop(
                &self.server,
                64,
                warm,
                phase,
                post_op(self.chans.clone(), self.hot.clone()),
            )
            .await;
            ops_with += m.ops_per_s() / 2.0;
            with.0.extend(m.all().0);
            drop(stalled);
            drop(stalled_ch);
            last = Some(m);
        }
        without.sort();
        with.sort();
        let p99_without = without.quantile_ms(0.99).unwrap_or(0.0);
        let p99_with = with.quantile_ms(0.99).unwrap_or(f64::INFINITY);
        let rise = (p99_with / p99_without - 1.0) * 100.0;
        let m = last.context("no stalled window")?;

        // Memory per open (idle) subscriber, on a fresh server: on this one,
        // heap freed by earlier scenarios would absorb the growth. As many as
        // `fanout` holds (10000 at full size): the per-subscriber budget is
        // what keeps that many under the fan-out's RSS budget (10000 x 25 KiB
        // = 244 MiB of 300), and idle streams cost only their opening.
        let n = self.subscribers;
        let fresh = self.start_server(&Ctx::main_flags(n)).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss0 = fresh.rss_kib();
        let (stop_tx, stop_rx) = watch::channel(false);
        let subs = open_subscribers(&fresh, n, stop_rx, None).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_n = fresh.rss_kib();
        stop_tx.send_replace(true);
        join_all(subs).await;
        fresh.stop().await;
        let per = (rss_n as f64 - rss0 as f64) / n as f64;

        let mut r = Row {
            scenario: "stalled (post-64 with one subscriber that never reads)".into(),
            ops_per_s: Some(ops_with),
            ratio: self.ratio(ops_with),
            p50_ms: with.quantile_ms(0.5),
            p99_ms: Some(p99_with),
            p999_ms: with.quantile_ms(0.999),
            server_rss_mib: Some(self.server.rss_kib() as f64 / 1024.0),
            server_cpu: Some(m.server_cpu),
            client_cpu: Some(m.client_cpu),
            db_cpu: m.db_cpu,
            other_cpu: Some(m.other_cpu),
            ..Default::default()
        };
        r.target(
            "write p99 rise <= 10 %",
            format!("{rise:+.1} % ({p99_without:.2} -> {p99_with:.2} ms)"),
            rise <= 10.0,
        );
        r.target(
            "RSS <= 25 KiB per open subscriber",
            format!("{per:.1} KiB ({n} idle, {STREAMS_PER_CONNECTION}/connection)"),
            per <= 25.0,
        );
        r.note(format!(
            "stalled: writes {ops_without:.0}/s without vs {ops_with:.0}/s with; on a fresh server, RSS {:.1} MiB with 0 and {:.1} MiB with {n} idle subscribers",
            rss0 as f64 / 1024.0,
            rss_n as f64 / 1024.0
        ));
        self.rows.push(r);
        Ok(())
    }

    async fn overload(&mut self) -> anyhow::Result<()> {
        let mut flags = Ctx::main_flags(0);
        flags[1] = OVERLOAD_LIMIT.to_string();
        let server = self.start_server(&flags).await?;
        let chans = Arc::new(server.connections(CONNECTIONS).await?);
        let n = if self.quick { 256 } else { 1000 };
        // Below the admission limit: the preload must not be shed.
        let (ids, _) = create_incidents(&chans, n, OVERLOAD_LIMIT / 2, 0).await?;
        let ids = Arc::new(ids);
        let op = mixed_op(chans.clone(), ids.clone());
        // The saturating load: a closed loop at the admission limit, then an
        // open loop ramped up from there until the answers stop keeping up
        // (goodput below 95 % of the offered rate, or refusals).
        let closed = closed_loop(
            &server,
            OVERLOAD_LIMIT,
            self.warmup,
            self.window,
            op.clone(),
        )
        .await;
        let all = closed.all();
        let mut r = Row {
            ops_per_s: Some(closed.ops_per_s()),
            p50_ms: all.quantile_ms(0.5),
            p99_ms: all.quantile_ms(0.99),
            p999_ms: all.quantile_ms(0.999),
            server_rss_mib: Some(server.rss_kib() as f64 / 1024.0),
            server_cpu: Some(closed.server_cpu),
            client_cpu: Some(closed.client_cpu),
            db_cpu: closed.db_cpu,
            other_cpu: Some(closed.other_cpu),
            ..Default::default()
        };
        let mut how = format!("closed loop, {OVERLOAD_LIMIT} in flight");
        let mut ramp = vec![format!("closed {:.0}/s", closed.ops_per_s())];
        if closed.error_count() > 0 {
            r.note(format!("overload-peak errors: {:?}", closed.errors));
        }
        let step = (self.window / 2).max(Duration::from_millis(500));
        let mut rate = closed.ops_per_s().max(100.0);
        for _ in 0..6 {
            let o = open_loop(&server, rate, self.warmup / 3, step, 20_000, op.clone()).await;
            let good = o.ok.len() as f64 / o.wall;
            ramp.push(format!(
                "{rate:.0} offered -> {good:.0} ok, {} refused",
                o.refused.len()
            ));
            if good > r.ops_per_s.unwrap_or(0.0) {
                how = format!("open loop at {rate:.0}/s offered");
                r.ops_per_s = Some(good);
                r.p50_ms = o.ok.quantile_ms(0.5);
                r.p99_ms = o.ok.quantile_ms(0.99);
                r.p999_ms = o.ok.quantile_ms(0.999);
                r.server_rss_mib = Some(o.rss_max_kib as f64 / 1024.0);
                r.server_cpu = Some(o.server_cpu);
                r.client_cpu = Some(o.client_cpu);
                r.db_cpu = o.db_cpu;
                r.other_cpu = Some(o.other_cpu);
            }
            if good < 0.95 * rate || o.refused.len() as u64 * 100 > o.issued {
                break;
            }
            rate *= 1.5;
        }
        let peak_ops = r.ops_per_s.unwrap_or(0.0);
        let rss_peak = server.rss_kib();
        r.ratio = self.ratio(peak_ops);
        r.scenario =
            format!("overload-peak (mixed, --max-concurrent-requests {OVERLOAD_LIMIT}; {how})");
        r.note(format!(
            "overload ramp to find the saturating load: {}",
            ramp.join("; ")
        ));
        self.rows.push(r);

        let rate = 2.0 * peak_ops;
        let o = open_loop(&server, rate, self.warmup, self.window, 20_000, op).await;
        let goodput = o.ok.len() as f64 / o.wall;
        let mut r = Row {
            scenario: format!("overload-2x (open loop, {rate:.0}/s offered; goodput)"),
            ops_per_s: Some(goodput),
            ratio: self.ratio(goodput),
            p50_ms: o.ok.quantile_ms(0.5),
            p99_ms: o.ok.quantile_ms(0.99),
            p999_ms: o.ok.quantile_ms(0.999),
            server_rss_mib: Some(o.rss_max_kib as f64 / 1024.0),
            server_cpu: Some(o.server_cpu),
            client_cpu: Some(o.client_cpu),
            db_cpu: o.db_cpu,
            other_cpu: Some(o.other_cpu),
            ..Default::default()
        };
        let g = goodput / peak_ops;
        r.target(
            "goodput >= 0.8 x peak",
            format!("{g:.2} x ({goodput:.0} of {peak_ops:.0}/s)"),
            g >= 0.8,
        );
        let refused_p99 = o.refused.quantile_ms(0.99);
        match refused_p99 {
            Some(p) => r.target(
                "RESOURCE_EXHAUSTED within 10 ms (p99)",
                format!("{p:.2} ms ({} refused)", o.refused.len()),
                p <= 10.0,
            ),
            None => r.target(
                "RESOURCE_EXHAUSTED within 10 ms (p99)",
                "none refused",
                false,
            ),
        }
        let bounded = o.rss_max_kib as f64 <= rss_peak as f64 * 1.5 + 16.0 * 1024.0;
        r.target(
            "memory bounded (max RSS <= 1.5 x peak's + 16 MiB)",
            format!(
                "{:.1} vs {:.1} MiB",
                o.rss_max_kib as f64 / 1024.0,
                rss_peak as f64 / 1024.0
            ),
            bounded,
        );
        if o.client_dropped * 100 > o.issued {
            // Latencies then include the generator's own queueing.
            r.note(format!(
                "overload-2x: the load generator could not offer twice the peak: {} of {} calls \
                 were not sent (its in-flight cap), so the figures above measure it as much as \
                 the server; run it with fewer GetIncident calls or from another machine",
                o.client_dropped, o.issued
            ));
        }
        r.note(format!(
            "overload-2x: {} issued in the window, {} ok, {} refused (RESOURCE_EXHAUSTED), other errors {:?}, {} not sent (client cap); refusal p50 {:.2} ms",
            o.issued,
            o.ok.len(),
            o.refused.len(),
            o.other_errors,
            o.client_dropped,
            o.refused.quantile_ms(0.5).unwrap_or(0.0),
        ));
        self.rows.push(r);
        server.stop().await;
        Ok(())
    }

    // -----------------------------------------------------------------------
    // PostgreSQL: the database's own limit, and replicas.

    fn need_postgres(&self, what: &str) -> anyhow::Result<&str> {
        match &self.backend {
            Backend::Postgres { admin } => Ok(admin),
            Backend::Sqlite => {
                bail!("{what} needs PostgreSQL: run with --backend postgres or --backend both")
            }
        }
    }

    /// pgbench on a scratch database of the same PostgreSQL server: single-row
    /// INSERT transactions (`INSERT INTO t (v) VALUES ('x')`, autocommit) at
    /// 1 and 64 clients. What the database itself commits, without incidentd.
    async fn pgbench(&mut self) -> anyhow::Result<()> {
        let admin = self.need_postgres("pgbench")?;
        let db = PgDatabase::create(admin).await?;
        psql(&db.url, "CREATE TABLE t (id bigserial PRIMARY KEY, v text)").await?;
        let dir = tempfile::Builder::new()
            .prefix("incident-bench-pgbench-")
            .tempdir()?;
        let script = dir.path().join("insert.sql");
        std::fs::write(&script, "INSERT INTO t (v) VALUES ('x');\n")?;
        // As long as a scenario's warm-up and window together.
        let secs = (self.warmup + self.window).as_secs_f64().ceil().max(2.0) as u64;
        for clients in [1, 64] {
            settle(&self.server).await;
            let p = run_pgbench(&db.url, &script, clients, secs).await?;
            let mut r = Row {
                scenario: format!(
                    "pgbench (single-row INSERT transactions, {clients} client{})",
                    if clients == 1 { "" } else { "s" }
                ),
                ops_per_s: Some(p.tps),
                client_cpu: Some(p.client_cpu),
                db_cpu: Some(p.db_cpu),
                other_cpu: Some(p.other_cpu),
                ..Default::default()
            };
            r.note(format!(
                "pgbench -n -c {clients} -j {} -T {secs}: {} transactions, tps {:.0} (without \
                 initial connection time), latency average {}, {} failed; cli CPU = pgbench's",
                p.threads,
                p.transactions,
                p.tps,
                p.latency_avg_ms
                    .map_or("-".into(), |l| format!("{l:.3} ms")),
                p.failed,
            ));
            if clients == 64 {
                self.pgbench64 = Some(p.tps);
            }
            self.rows.push(r);
        }
        Ok(())
    }

    /// PostStatusUpdate at 64 in flight on one replica, then spread evenly
    /// over three replicas of the same database: the aggregate against the
    /// one. Both on a fresh database of their own with the same incidents.
    async fn replicas_post(&mut self) -> anyhow::Result<()> {
        self.need_postgres("replicas-post")?;
        let db = Database::fresh(&self.backend).await?;
        let flags = Ctx::main_flags(0);
        // Metered, to see the writers' groups (both phases alike).
        let mut servers = vec![Server::start_metered(&self.bin, &db, &flags).await?];
        let mut chans = vec![servers[0].connections(CONNECTIONS).await?];
        let n = if self.quick { 256 } else { 1000 };
        let (ids, _) = create_incidents(&Arc::new(chans[0].clone()), n, 64, 0).await?;
        let ids = Arc::new(ids);

        settle(&servers[0]).await;
        let groups = writer_groups(&servers).await;
        let one = closed_loop(
            &servers[0],
            64,
            self.warmup,
            self.window,
            spread_post_op(Arc::new(chans.clone()), ids.clone()),
        )
        .await;
        let groups_one = groups.since(&servers).await;
        let mut r1 = self.row("replicas-post, 1 replica (post-64, fresh database)", &one);
        if let Some(pg) = self.pgbench64 {
            pgbench_target(&mut r1, one.ops_per_s(), pg);
        }
        r1.note(format!(
            "replicas-post, 1 replica: writer groups (warm-up and window) {groups_one}"
        ));
        self.rows.push(r1);

        while servers.len() < REPLICAS {
            let s = Server::start_metered(&self.bin, &db, &flags).await?;
            chans.push(s.connections(CONNECTIONS).await?);
            servers.push(s);
        }
        settle(servers.as_slice()).await;
        let groups = writer_groups(&servers).await;
        let three = closed_loop(
            servers.as_slice(),
            64,
            self.warmup,
            self.window,
            spread_post_op(Arc::new(chans), ids),
        )
        .await;
        let groups_three = groups.since(&servers).await;
        let mut r = self.row(
            &format!("replicas-post, {REPLICAS} replicas (post-64 spread evenly; aggregate)"),
            &three,
        );
        r.server_rss_mib = Some(servers.iter().map(|s| s.rss_kib()).sum::<u64>() as f64 / 1024.0);
        let x = three.ops_per_s() / one.ops_per_s().max(1e-9);
        r.target(
            ">= 1.0 x one replica's writes",
            format!(
                "{x:.3} x ({:.0} vs {:.0}/s)",
                three.ops_per_s(),
                one.ops_per_s()
            ),
            x >= 1.0,
        );
        let per: Vec<String> = three
            .lat
            .iter()
            .take(REPLICAS)
            .enumerate()
            .map(|(k, l)| {
                format!(
                    "replica {} {:.0}/s p99 {:.2} ms",
                    k + 1,
                    l.len() as f64 / three.wall,
                    l.quantile_ms(0.99).unwrap_or(0.0)
                )
            })
            .collect();
        r.note(format!(
            "replicas-post, {REPLICAS} replicas: 64 callers, 21-22 per replica over \
             {CONNECTIONS} connections each: {}; writer groups (warm-up and window) \
             {groups_three}; srv CPU and RSS are the {REPLICAS} replicas' added up{}",
            per.join(", "),
            log_check(&db).await
        ));
        self.rows.push(r);
        for s in servers {
            s.stop().await;
        }
        Ok(())
    }

    /// Subscribers spread evenly over three replicas, writes (AddNote,
    /// `FANOUT_RATE`/s) on the first: commit->receipt on each replica, the
    /// other two seeing the writes only through the shared log.
    async fn replicas_fanout(&mut self) -> anyhow::Result<()> {
        self.need_postgres("replicas-fanout")?;
        let n = self.replica_subscribers;
        let servers = self.start_replicas(&Ctx::main_flags(n)).await?;
        let chans = Arc::new(servers[0].connections(1).await?);
        let (ids, _) = create_incidents(&chans, 1, 1, 0).await?;
        settle(servers.as_slice()).await;
        let refs: Vec<&Server> = servers.iter().collect();
        let run = fanout_run(
            &refs,
            &servers[0],
            ids[0].clone(),
            n,
            self.warmup,
            self.window,
        )
        .await?;
        let mut all = Samples(run.lat.iter().flat_map(|l| l.0.iter().copied()).collect());
        all.sort();
        let wall = run.cpu.wall;
        let mut r = Row {
            scenario: format!(
                "replicas-fanout ({n} subscribers over {REPLICAS} replicas, {FANOUT_RATE} \
                 events/s written on replica 1; deliveries)"
            ),
            ops_per_s: Some(all.len() as f64 / wall),
            ratio: self.ratio(all.len() as f64 / wall),
            p50_ms: all.quantile_ms(0.5),
            p99_ms: all.quantile_ms(0.99),
            p999_ms: all.quantile_ms(0.999),
            server_rss_mib: Some(
                run.rss_max
                    .iter()
                    .zip(&run.rss_open)
                    .map(|(a, b)| (*a).max(*b))
                    .sum::<u64>() as f64
                    / 1024.0,
            ),
            server_cpu: Some(run.cpu.server),
            client_cpu: Some(run.cpu.client),
            db_cpu: run.cpu.db,
            other_cpu: Some(run.cpu.other),
            ..Default::default()
        };
        let p99s: Vec<f64> = run
            .lat
            .iter()
            .map(|l| l.quantile_ms(0.99).unwrap_or(f64::INFINITY))
            .collect();
        let worst = p99s.iter().copied().fold(0.0, f64::max);
        let at = if n == 1000 {
            String::new()
        } else {
            format!(" (target at 1000 subs; here {n})")
        };
        r.target(
            format!("commit->receipt p99 <= {REPLICA_P99_MS:.0} ms on every replica{at}"),
            format!(
                "worst {worst:.2} ms ({})",
                p99s.iter()
                    .enumerate()
                    .map(|(k, p)| format!("replica {} {p:.2}", k + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            worst <= REPLICA_P99_MS,
        );
        let expected = run.writes.len() as f64 * n as f64;
        r.note(format!(
            "replicas-fanout: latency = receipt - event_time (replica 1's group clock, the same \
             machine's clock as the receiver's); {} deliveries in the window for {expected:.0} \
             expected; write (AddNote) p99 {:.2} ms; srv CPU and RSS are the {REPLICAS} \
             replicas' added up{}",
            all.len(),
            run.writes.quantile_ms(0.99).unwrap_or(0.0),
            run.failures()
        ));
        self.rows.push(r);
        for (k, lat) in run.lat.iter().enumerate() {
            let here = n / REPLICAS + usize::from(k < n % REPLICAS);
            self.rows.push(Row {
                scenario: format!(
                    "replicas-fanout, the {here} on replica {}{}",
                    k + 1,
                    if k == 0 {
                        " (the writer's)"
                    } else {
                        " (read from the log)"
                    }
                ),
                ops_per_s: Some(lat.len() as f64 / wall),
                p50_ms: lat.quantile_ms(0.5),
                p99_ms: lat.quantile_ms(0.99),
                p999_ms: lat.quantile_ms(0.999),
                server_rss_mib: Some(run.rss_max[k].max(run.rss_open[k]) as f64 / 1024.0),
                ..Default::default()
            });
        }
        for s in servers {
            s.stop().await;
        }
        Ok(())
    }
}

/// The pgbench target on a one-replica post-64 row.
fn pgbench_target(r: &mut Row, ops: f64, pgbench64: f64) {
    let x = ops / pgbench64.max(1e-9);
    r.target(
        ">= 0.5 x pgbench's INSERT TPS at 64 clients",
        format!("{x:.3} x ({ops:.0} vs {pgbench64:.0}/s)"),
        x >= 0.5,
    );
}

/// "; log: N events, sequences 1..N without a gap" (or what is wrong) of a
/// PostgreSQL database several replicas wrote.
async fn log_check(db: &Database) -> String {
    let Some(url) = db.postgres_url() else {
        return String::new();
    };
    match psql(
        url,
        "SELECT count(*), coalesce(min(sequence), 0), coalesce(max(sequence), 0) FROM events",
    )
    .await
    {
        Ok(out) => {
            let f: Vec<u64> = out
                .split('|')
                .filter_map(|v| v.trim().parse().ok())
                .collect();
            match f[..] {
                [count, 1, max] if count == max => {
                    format!("; log: {count} events, sequences 1..{max} without a gap")
                }
                [count, min, max] => {
                    format!("; LOG NOT CONTIGUOUS: {count} events, sequences {min}..{max}")
                }
                _ => format!("; log check: unexpected psql output {out:?}"),
            }
        }
        Err(e) => format!("; log check failed: {e:#}"),
    }
}

/// The writers' group commits so far (metered servers): per server, the
/// count and the sum of `incidentd_writer_batch_size`.
struct WriterGroups {
    at: Instant,
    each: Vec<Option<(f64, f64)>>,
}

async fn writer_groups(servers: &[Server]) -> WriterGroups {
    let mut each = Vec::with_capacity(servers.len());
    for s in servers {
        let count = s.metric("incidentd_writer_batch_size_count").await;
        let sum = s.metric("incidentd_writer_batch_size_sum").await;
        each.push(count.ok().zip(sum.ok()));
    }
    WriterGroups {
        at: Instant::now(),
        each,
    }
}

impl WriterGroups {
    /// "replica 1 N groups/s of M requests on average, ..." since `self`
    /// (a server started since counts from 0).
    async fn since(&self, servers: &[Server]) -> String {
        let wall = self.at.elapsed().as_secs_f64();
        let now = writer_groups(servers).await;
        now.each
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let before = self.each.get(k).copied().flatten().unwrap_or((0.0, 0.0));
                match n {
                    Some((count, sum)) => {
                        let groups = count - before.0;
                        format!(
                            "replica {} {:.0} groups/s of {:.1} requests on average",
                            k + 1,
                            groups / wall,
                            (sum - before.1) / groups.max(1.0)
                        )
                    }
                    None => format!("replica {}: no metrics", k + 1),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether the planner has statistics of `incidents` (PostgreSQL), and whether
/// autovacuum would gather them, as a sentence.
async fn planner_statistics(url: &str) -> anyhow::Result<String> {
    let out = psql(
        url,
        "SELECT coalesce(greatest(last_analyze, last_autoanalyze)::text, 'never'), \
         current_setting('autovacuum') \
         FROM pg_stat_user_tables WHERE relname = 'incidents'",
    )
    .await?;
    let f: Vec<&str> = out.split('|').collect();
    Ok(match f[..] {
        [when, autovacuum] => format!(
            "the first rows ran on the tables as the server left them (incidents last \
             analyzed: {when}; autovacuum={autovacuum}), the rows \"after ANALYZE\" once the \
             bench had run ANALYZE"
        ),
        _ => format!("planner statistics: unexpected psql output {out:?}"),
    })
}

/// What one pgbench run reported.
struct PgbenchRun {
    tps: f64,
    transactions: u64,
    failed: u64,
    latency_avg_ms: Option<f64>,
    threads: usize,
    /// pgbench's own CPU and the PostgreSQL server's, in cores, over the
    /// middle of the run (a backend's CPU leaves with it at the end).
    client_cpu: f64,
    db_cpu: f64,
    /// The rest of the machine.
    other_cpu: f64,
}

/// `pgbench -n -c clients -j min(clients, 2) -T secs -f script url`.
async fn run_pgbench(
    url: &str,
    script: &std::path::Path,
    clients: usize,
    secs: u64,
) -> anyhow::Result<PgbenchRun> {
    let threads = clients.min(2);
    let child = tokio::process::Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &secs.to_string(), "-f"])
        .arg(script)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running pgbench (the PostgreSQL backend needs it on PATH)")?;
    let pid = child.id().context("pgbench has no pid")?;
    // CPU over the middle of the run, while every backend is alive.
    let cpu = |pid| {
        (
            Instant::now(),
            crate::server::proc_cpu_seconds(pid).unwrap_or(0.0),
            crate::server::postgres_cpu_seconds(),
            crate::server::machine_busy_seconds(),
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = cpu(pid);
    tokio::time::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_millis(600))).await;
    let b = cpu(pid);
    let out = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench -c {clients} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.trim()
        );
    }
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let wall = b.0.duration_since(a.0).as_secs_f64().max(1e-9);
    Ok(PgbenchRun {
        tps: field("tps = ").with_context(|| format!("no tps in pgbench's output:\n{stdout}"))?,
        transactions: field("number of transactions actually processed:").unwrap_or(0.0) as u64,
        failed: field("number of failed transactions:").unwrap_or(0.0) as u64,
        latency_avg_ms: field("latency average = "),
        threads,
        client_cpu: (b.1 - a.1) / wall,
        db_cpu: (b.2 - a.2) / wall,
        other_cpu: ((b.3 - a.3) - (b.1 - a.1) - (b.2 - a.2)).max(0.0) / wall,
    })
}

/// PostStatusUpdate with worker `w` on replica `w % replicas`, over that
/// replica's connections; the class of a call is its replica.
fn spread_post_op(chans: Arc<Vec<Vec<Channel>>>, ids: Arc<Vec<String>>) -> Op {
    Arc::new(move |w, i| {
        let replica = w % chans.len();
        let mine = &chans[replica];
        let mut c = IncidentServiceClient::new(mine[(w / chans.len()) % mine.len()].clone());
        let req = post_request(pick(&ids, w, i).to_owned(), w, i);
        Box::pin(async move { c.post_status_update(req).await.map(|_| replica) })
    })
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

/// Waits (up to 15 s) until the server is nearly idle, so that work left
/// over from the previous scenario (subscriptions winding down, say) does
/// not count against the next one.
async fn settle<P: Probe + ?Sized>(server: &P) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let mark = CpuMark::take(server);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cpu = mark.since(server);
        // PostgreSQL too: the last scenario's writes may still be flushing;
        // and the machine (the kernel writing pages back, another process).
        if cpu.server < 0.1 && cpu.db.unwrap_or(0.0) < 0.2 && cpu.other < 0.2 {
            return;
        }
    }
}

fn pick(ids: &[String], w: usize, i: u64) -> &str {
    &ids[(mix(((w as u64) << 40) ^ i) % ids.len() as u64) as usize]
}

fn health_op(chans: Arc<Vec<Channel>>) -> Op {
    Arc::new(move |w, _| {
        let mut c = HealthClient::new(chans[w % chans.len()].clone());
        Box::pin(async move { c.check(HealthCheckRequest::default()).await.map(|_| 0) })
    })
}

fn get_op(chans: Arc<Vec<Channel>>, ids: Arc<Vec<String>>) -> Op {
    Arc::new(move |w, i| {
        let mut c = IncidentServiceClient::new(chans[w % chans.len()].clone());
        let id = pick(&ids, w, i).to_owned();
        Box::pin(async move {
            c.get_incident(GetIncidentRequest {
                id,
                ..Default::default()
            })
            .await
            .map(|_| 0)
        })
    })
}

fn post_request(id: String, w: usize, i: u64) -> PostStatusUpdateRequest {
    PostStatusUpdateRequest {
        incident_id: id,
        message: format!("bench update {w}/{i}: still investigating, next update soon"),
        ..Default::default()
    }
}

fn post_op(chans: Arc<Vec<Channel>>, ids: Arc<Vec<String>>) -> Op {
    Arc::new(move |w, i| {
        let mut c = IncidentServiceClient::new(chans[w % chans.len()].clone());
        let req = post_request(pick(&ids, w, i).to_owned(), w, i);
        Box::pin(async move { c.post_status_update(req).await.map(|_| 0) })
    })
}

fn mixed_op(chans: Arc<Vec<Channel>>, ids: Arc<Vec<String>>) -> Op {
    Arc::new(move |w, i| {
        let mut c = IncidentServiceClient::new(chans[w % chans.len()].clone());
        let id = pick(&ids, w, i).to_owned();
        let write = mix(i.wrapping_mul(31) ^ (w as u64) ^ 0x5eed).is_multiple_of(10);
        Box::pin(async move {
            if write {
                c.post_status_update(post_request(id, w, i))
                    .await
                    .map(|_| 1)
            } else {
                c.get_incident(GetIncidentRequest {
                    id,
                    ..Default::default()
                })
                .await
                .map(|_| 0)
            }
        })
    })
}

fn list_op(chans: Arc<Vec<Channel>>, req: ListIncidentsRequest) -> Op {
    Arc::new(move |w, _| {
        let mut c = IncidentServiceClient::new(chans[w % chans.len()].clone());
        let req = req.clone();
        Box::pin(async move { c.list_incidents(req).await.map(|_| 0) })
    })
}

/// A ListIncidents filter `list` measures.
#[derive(Clone)]
struct ListFilter {
    /// How the row names it.
    name: String,
    /// Whether it finds incidents.
    matches: bool,
    req: ListIncidentsRequest,
}

/// Title text no incident has, 3+ characters: shorter text is too short for
/// a title index to serve, and could only be checked row by row.
const NO_MATCH_QUERY: &str = "zzzq-nomatch";
/// A label key no incident has.
const NO_MATCH_LABEL: &str = "bench-nomatch";

/// The matching filter first, then one that matches nothing per selective
/// kind: query text, label, component (`component`, which no incident names).
fn list_filters(component: String) -> Vec<ListFilter> {
    let page = |req: ListIncidentsRequest| ListIncidentsRequest {
        page_size: 50,
        ..req
    };
    vec![
        ListFilter {
            name: "severity=P1 open=true".into(),
            matches: true,
            req: page(ListIncidentsRequest {
                severities: vec![Severity::P1 as i32],
                open: Some(true),
                ..Default::default()
            }),
        },
        ListFilter {
            name: format!("query=\"{NO_MATCH_QUERY}\""),
            matches: false,
            req: page(ListIncidentsRequest {
                query: NO_MATCH_QUERY.into(),
                ..Default::default()
            }),
        },
        ListFilter {
            name: format!("label={NO_MATCH_LABEL}"),
            matches: false,
            req: page(ListIncidentsRequest {
                label: NO_MATCH_LABEL.into(),
                ..Default::default()
            }),
        },
        ListFilter {
            name: "component_id=<unused component>".into(),
            matches: false,
            req: page(ListIncidentsRequest {
                component_id: component,
                ..Default::default()
            }),
        },
    ]
}

/// Creates a component and returns its id: a real one, so the component
/// filter resolves it (and its subtree) as it would in use, then finds nothing.
async fn unused_component(ch: &Channel) -> anyhow::Result<String> {
    let c = ComponentServiceClient::new(ch.clone())
        .create_component(CreateComponentRequest {
            component: Some(Component {
                name: "bench: component no incident affects".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("CreateComponent")?
        .into_inner()
        .component
        .context("no component")?;
    Ok(c.id)
}

/// Creates `n` incidents with `conc` calls in flight over the channels;
/// severities cycle P0..P4. Returns their ids and the rate.
async fn create_incidents(
    chans: &Arc<Vec<Channel>>,
    n: usize,
    conc: usize,
    offset: usize,
) -> anyhow::Result<(Vec<String>, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let progress = (n >= 100_000).then(|| report_progress(next.clone(), n, t));
    let workers: Vec<_> = (0..conc)
        .map(|w| {
            let next = next.clone();
            let mut c = IncidentServiceClient::new(chans[w % chans.len()].clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(ids);
                    }
                    let k = offset + i;
                    let severity = [
                        Severity::P0,
                        Severity::P1,
                        Severity::P2,
                        Severity::P3,
                        Severity::P4,
                    ][k % 5];
                    let r = c
                        .create_incident(CreateIncidentRequest {
                            incident: Some(Incident {
                                title: format!(
                                    "Bench incident {k}: elevated error rates on checkout"
                                ),
                                summary: "Customers see intermittent 502s when paying.".into(),
                                kind: IncidentKind::Incident as i32,
                                severity: severity as i32,
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .await
                        .context("CreateIncident during preload")?;
                    ids.push(r.into_inner().incident.context("no incident")?.id);
                }
            })
        })
        .collect();
    let done = join_all(workers).await;
    if let Some(p) = progress {
        p.abort();
    }
    let mut ids = Vec::with_capacity(n);
    for w in done {
        ids.extend(w??);
    }
    Ok((ids, n as f64 / t.elapsed().as_secs_f64()))
}

/// Says every 10 s how far a preload got (`next` calls claimed of `n`):
/// a million CreateIncident calls take minutes, silence would look hung.
fn report_progress(next: Arc<AtomicUsize>, n: usize, t: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            let done = next.load(Ordering::Relaxed).min(n);
            eprintln!(
                "  preload: {done} of {n} incidents, {:.0}/s",
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
    })
}

fn note_request(incident: String, text: String) -> AddNoteRequest {
    AddNoteRequest {
        incident_id: incident,
        text,
        ..Default::default()
    }
}

fn note_op(chans: Arc<Vec<Channel>>, ids: Arc<Vec<String>>) -> Op {
    Arc::new(move |w, i| {
        let mut c = TimelineServiceClient::new(chans[w % chans.len()].clone());
        let text = format!("bench note {w}/{i}: rolled back the deploy, watching error rates");
        let req = note_request(pick(&ids, w, i).to_owned(), text);
        Box::pin(async move { c.add_note(req).await.map(|_| 0) })
    })
}

async fn add_note(ch: &Channel, incident: &str, text: String) -> anyhow::Result<u64> {
    let e = TimelineServiceClient::new(ch.clone())
        .add_note(note_request(incident.into(), text))
        .await?
        .into_inner()
        .event
        .context("no event")?;
    Ok(e.sequence)
}

/// Appends `n` notes, `conc` in flight; returns the highest sequence seen.
async fn fill_log(
    chans: &Arc<Vec<Channel>>,
    incident: &str,
    n: u64,
    conc: usize,
) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let head = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..conc)
        .map(|w| {
            let (next, head) = (next.clone(), head.clone());
            let ch = chans[w % chans.len()].clone();
            let incident = incident.to_owned();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let s = add_note(&ch, &incident, format!("catch-up filler {i}")).await?;
                    head.fetch_max(s, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in join_all(workers).await {
        w??;
    }
    Ok(head.load(Ordering::Relaxed))
}

fn age(ts: &Option<prost_types::Timestamp>) -> Option<u64> {
    let ts = ts.as_ref()?;
    let at = UNIX_EPOCH + Duration::new(ts.seconds.max(0) as u64, ts.nanos.max(0) as u32);
    Some(
        SystemTime::now()
            .duration_since(at)
            .unwrap_or_default()
            .as_nanos() as u64,
    )
}

/// What a fan-out window measured.
struct FanoutRun {
    /// Commit->receipt ages (receipt - event_time) seen by the subscribers,
    /// sorted, one set per server they were on.
    lat: Vec<Samples>,
    /// Subscriptions that failed, and the first failure.
    lost: usize,
    first_failure: Option<String>,
    /// AddNote latencies of the writes issued in the window, sorted.
    writes: Samples,
    /// Over every server.
    cpu: crate::server::Cpu,
    /// Per server, KiB: before subscribing, with the subscribers open, and
    /// the highest seen during the window.
    rss0: Vec<u64>,
    rss_open: Vec<u64>,
    rss_max: Vec<u64>,
}

impl FanoutRun {
    /// "; N subscriptions failed (first: ...)", or nothing.
    fn failures(&self) -> String {
        if self.lost == 0 {
            return String::new();
        }
        format!(
            "; {} subscriptions failed (first: {})",
            self.lost,
            self.first_failure.as_deref().unwrap_or_default()
        )
    }
}

/// Opens `n` "from now" subscribers spread evenly over `subs_on`, writes
/// AddNote on `incident` through `writer` at `FANOUT_RATE` per second
/// whatever their latency, and measures for twice `window` after `warmup`
/// (at 100 events/s a window holds few writes).
async fn fanout_run(
    subs_on: &[&Server],
    writer: &Server,
    incident: String,
    n: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<FanoutRun> {
    let rss0: Vec<u64> = subs_on.iter().map(|s| s.rss_kib()).collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let phase = Arc::new(AtomicU8::new(0));
    let mut subs = Vec::with_capacity(subs_on.len());
    for (k, server) in subs_on.iter().enumerate() {
        let here = n / subs_on.len() + usize::from(k < n % subs_on.len());
        subs.push(open_subscribers(server, here, stop_rx.clone(), Some(phase.clone())).await?);
    }
    let rss_open: Vec<u64> = subs_on.iter().map(|s| s.rss_kib()).collect();

    let writer_chan = writer.connect().await?;
    let writes = Arc::new(std::sync::Mutex::new(Samples::default()));
    let write_phase = phase.clone();
    let writes2 = writes.clone();
    let writing = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / FANOUT_RATE));
        let mut tasks = Vec::new();
        for i in 0u64.. {
            tick.tick().await;
            let p = write_phase.load(Ordering::Relaxed);
            if p == 2 {
                break;
            }
            let mut c = TimelineServiceClient::new(writer_chan.clone());
            let incident = incident.clone();
            let writes = writes2.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = c
                    .add_note(note_request(incident, format!("fanout note {i}")))
                    .await;
                if p == 1 && r.is_ok() {
                    writes.lock().unwrap().0.push(t.elapsed().as_nanos() as u64);
                }
            }));
        }
        join_all(tasks).await;
    });
    tokio::time::sleep(warmup).await;
    let mark = CpuMark::take(subs_on);
    phase.store(1, Ordering::Relaxed);
    let mut rss_max = vec![0; subs_on.len()];
    let end = Instant::now() + window * 2;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (m, s) in rss_max.iter_mut().zip(subs_on) {
            *m = (*m).max(s.rss_kib());
        }
    }
    phase.store(2, Ordering::Relaxed);
    let cpu = mark.since(subs_on);
    let _ = writing.await;
    // Let the last events arrive, then stop the subscribers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send_replace(true);
    let mut run = FanoutRun {
        lat: Vec::with_capacity(subs.len()),
        lost: 0,
        first_failure: None,
        writes: std::mem::take(&mut *writes.lock().unwrap()),
        cpu,
        rss0,
        rss_open,
        rss_max,
    };
    run.writes.sort();
    for tasks in subs {
        let mut lat = Samples::default();
        for s in join_all(tasks).await {
            match s {
                Ok(Ok(samples)) => lat.0.extend(samples.0),
                Ok(Err(e)) => {
                    run.lost += 1;
                    run.first_failure.get_or_insert_with(|| format!("{e:#}"));
                }
                Err(e) => {
                    run.lost += 1;
                    run.first_failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        lat.sort();
        run.lat.push(lat);
    }
    Ok(run)
}

/// Opens `n` "from now" subscriptions, `STREAMS_PER_CONNECTION` per
/// connection, and returns once each has its first message. Each task reads
/// its stream until `stop`, recording event age while `phase` is 1.
async fn open_subscribers(
    server: &Server,
    n: usize,
    stop: watch::Receiver<bool>,
    phase: Option<Arc<AtomicU8>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<Samples>>>> {
    let conns = n.div_ceil(STREAMS_PER_CONNECTION);
    let chans = server.connections(conns).await?;
    let ready = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for k in 0..n {
        let ch = chans[k / STREAMS_PER_CONNECTION].clone();
        let (ready, gate, phase) = (ready.clone(), gate.clone(), phase.clone());
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream: Streaming<skim::Skimmed> = {
                let _g = gate.acquire().await?;
                let request = SubscribeTimelineRequest {
                    start: Some(Start::FromNow(())),
                    ..Default::default()
                };
                let mut s = skim::subscribe(ch, request).await?;
                s.message().await?;
                s
            };
            ready.fetch_add(1, Ordering::Relaxed);
            let mut lat = Samples::default();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    m = stream.message() => match m {
                        Ok(Some(m)) => {
                            if let (Some(e), Some(p)) = (m.message.event, &phase)
                                && p.load(Ordering::Relaxed) == 1
                                && let Some(a) = age(&e.event_time)
                            {
                                lat.0.push(a);
                            }
                        }
                        Ok(None) => break,
                        Err(s) if s.code() == Code::Cancelled => break,
                        Err(s) => return Err(s.into()),
                    }
                }
            }
            Ok(lat)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < n {
        if tasks.iter().any(|t| t.is_finished()) {
            bail!("a subscription failed while opening");
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} subscriptions opened in 120 s",
                ready.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The channels stay open as long as the streams hold them.
    drop(chans);
    Ok(tasks)
}
