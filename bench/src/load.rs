//! Load generation: closed loops (N calls in flight) and an open loop (a set
//! arrival rate), with latencies recorded only inside the measured window.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use incident_client::tonic::{Code, Status};

use crate::server::{CpuMark, Probe};

/// What one call reports: the class of the call (to split latencies, e.g.
/// reads and writes) or the error status.
pub type OpResult = Result<usize, Status>;
pub type OpFuture = Pin<Box<dyn Future<Output = OpResult> + Send>>;
/// Makes the call number `i` of worker `w`.
pub type Op = Arc<dyn Fn(usize, u64) -> OpFuture + Send + Sync>;

/// Classes of calls a scenario may distinguish (reads and writes; or the
/// replica a call went to).
pub const CLASSES: usize = 3;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// Latency samples, in nanoseconds.
#[derive(Default, Clone)]
pub struct Samples(pub Vec<u64>);

impl Samples {
    pub fn sort(&mut self) {
        self.0.sort_unstable();
    }

    /// The q-quantile in milliseconds of sorted samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
        Some(self.0[i] as f64 / 1e6)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a measured window produced.
pub struct Measured {
    /// Per class.
    pub lat: [Samples; CLASSES],
    pub errors: BTreeMap<String, u64>,
    pub wall: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// The PostgreSQL server's processes, when the servers use it.
    pub db_cpu: Option<f64>,
    /// Other processes on the machine.
    pub other_cpu: f64,
    /// The server's CPU by what its threads do, in cores, busiest first.
    pub server_threads: Vec<(&'static str, f64)>,
}

impl Measured {
    pub fn ok(&self) -> u64 {
        self.lat.iter().map(|s| s.len() as u64).sum()
    }

    pub fn ops_per_s(&self) -> f64 {
        self.ok() as f64 / self.wall
    }

    /// Every class together, sorted.
    pub fn all(&self) -> Samples {
        let mut s = Samples(self.lat.iter().flat_map(|s| s.0.iter().copied()).collect());
        s.sort();
        s
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

pub fn code_name(c: Code) -> String {
    format!("{c:?}")
}

/// `conc` workers each keep one call in flight for `warmup + window`; calls
/// completed inside the window are measured. CPU is `server`'s (every
/// server's, for several).
pub async fn closed_loop<P: Probe + ?Sized>(
    server: &P,
    conc: usize,
    warmup: Duration,
    window: Duration,
    op: Op,
) -> Measured {
    let phase = Arc::new(AtomicU8::new(WARMING));
    let workers: Vec<_> = (0..conc.max(1))
        .map(|w| {
            let phase = phase.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat: [Samples; CLASSES] = Default::default();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let mut i = 0u64;
                loop {
                    let p = phase.load(Ordering::Relaxed);
                    if p == STOPPED {
                        break;
                    }
                    let t = Instant::now();
                    let r = op(w, i).await;
                    let d = t.elapsed().as_nanos() as u64;
                    i += 1;
                    if p == MEASURING && phase.load(Ordering::Relaxed) == MEASURING {
                        match r {
                            Ok(c) => lat[c.min(CLASSES - 1)].0.push(d),
                            Err(s) => *errors.entry(code_name(s.code())).or_default() += 1,
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let mark = CpuMark::take(server);
    phase.store(MEASURING, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    phase.store(STOPPED, Ordering::Relaxed);
    let cpu = mark.since(server);
    let mut m = Measured {
        lat: Default::default(),
        errors: BTreeMap::new(),
        wall: cpu.wall,
        server_cpu: cpu.server,
        client_cpu: cpu.client,
        db_cpu: cpu.db,
        other_cpu: cpu.other,
        server_threads: cpu.server_threads,
    };
    for w in workers {
        if let Ok((lat, errors)) = w.await {
            for (c, s) in lat.into_iter().enumerate() {
                m.lat[c].0.extend(s.0);
            }
            for (k, v) in errors {
                *m.errors.entry(k).or_default() += v;
            }
        }
    }
    for s in &mut m.lat {
        s.sort();
    }
    m
}

/// What an open loop produced.
pub struct OpenMeasured {
    pub ok: Samples,
    /// RESOURCE_EXHAUSTED answers.
    pub refused: Samples,
    pub other_errors: BTreeMap<String, u64>,
    pub issued: u64,
    /// Arrivals not sent because the client already had too many calls open.
    pub client_dropped: u64,
    pub wall: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    pub db_cpu: Option<f64>,
    pub other_cpu: f64,
    /// Highest server RSS seen during the window, KiB.
    pub rss_max_kib: u64,
}

/// Calls arrive at `rate` per second whatever the answers (up to
/// `max_open` open at once); calls issued inside the window are measured.
pub async fn open_loop(
    server: &crate::server::Server,
    rate: f64,
    warmup: Duration,
    window: Duration,
    max_open: u64,
    op: Op,
) -> OpenMeasured {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u8, u64, String)>();
    let open = Arc::new(AtomicU64::new(0));
    let collector = tokio::spawn(async move {
        let (mut ok, mut refused) = (Samples::default(), Samples::default());
        let mut other: BTreeMap<String, u64> = BTreeMap::new();
        while let Some((kind, d, code)) = rx.recv().await {
            match kind {
                0 => ok.0.push(d),
                1 => refused.0.push(d),
                _ => *other.entry(code).or_default() += 1,
            }
        }
        ok.sort();
        refused.sort();
        (ok, refused, other)
    });
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let mut issued_total = 0u64;
    let (mut issued, mut dropped) = (0u64, 0u64);
    let mut mark: Option<CpuMark> = None;
    let mut rss_max = 0u64;
    let mut next_rss = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut cpu = crate::server::Cpu::default();
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        let measuring = now >= measure_from;
        if measuring && mark.is_none() {
            mark = Some(CpuMark::take(server));
        }
        if measuring && now >= next_rss {
            rss_max = rss_max.max(server.rss_kib());
            next_rss = now + Duration::from_millis(100);
        }
        let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
        while issued_total < due {
            let i = issued_total;
            issued_total += 1;
            if measuring {
                issued += 1;
            }
            if open.load(Ordering::Relaxed) >= max_open {
                if measuring {
                    dropped += 1;
                }
                continue;
            }
            open.fetch_add(1, Ordering::Relaxed);
            let op = op.clone();
            let tx = tx.clone();
            let open = open.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                // Bounded, so a lost answer cannot hang the run.
                let r = tokio::time::timeout(Duration::from_secs(10), op((i % 1024) as usize, i))
                    .await
                    .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in 10 s")));
                let d = t.elapsed().as_nanos() as u64;
                open.fetch_sub(1, Ordering::Relaxed);
                if measuring {
                    let _ = match r {
                        Ok(_) => tx.send((0, d, String::new())),
                        Err(s) if s.code() == Code::ResourceExhausted => {
                            tx.send((1, d, String::new()))
                        }
                        Err(s) => tx.send((2, d, code_name(s.code()))),
                    };
                }
            });
        }
    }
    if let Some(m) = mark {
        cpu = m.since(server);
    }
    drop(tx);
    // Calls still open finish (or time out) on their own; wait for them.
    let (ok, refused, other_errors) = collector.await.unwrap_or_default();
    OpenMeasured {
        ok,
        refused,
        other_errors,
        issued,
        client_dropped: dropped,
        wall: cpu.wall.max(1e-9),
        server_cpu: cpu.server,
        client_cpu: cpu.client,
        db_cpu: cpu.db,
        other_cpu: cpu.other,
        rss_max_kib: rss_max,
    }
}

/// A stateless 64-bit mixer (the splitmix64 finaliser): cheap pseudo-random picks.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
