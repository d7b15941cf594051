//! The one table, and the same figures as JSON.

use serde_json::{Value, json};

/// A performance target next to the figure it constrains.
pub struct Target {
    /// The target, e.g. "p99 <= 20 ms".
    pub target: String,
    /// The measured figure, e.g. "14.2 ms".
    pub measured: String,
    pub met: bool,
}

/// One line of the table.
#[derive(Default)]
pub struct Row {
    /// The scenario that made it (`post-64`; `list/2` for the second row of
    /// `list`): what the side-by-side table pairs the backends' rows by.
    pub key: String,
    pub scenario: String,
    pub ops_per_s: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_cpu: Option<f64>,
    pub client_cpu: Option<f64>,
    /// The PostgreSQL server's processes, in cores (PostgreSQL only).
    pub db_cpu: Option<f64>,
    /// Other processes on the machine, in cores: CPU the figures did not get.
    pub other_cpu: Option<f64>,
    /// The server's CPU time per completed call, in microseconds, by what its
    /// threads do (closed loops only): unlike ops/s, it hardly moves with
    /// how fast the machine is at the moment.
    pub server_us_per_call: Vec<(&'static str, f64)>,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

impl Row {
    pub fn target(&mut self, target: impl Into<String>, measured: impl Into<String>, met: bool) {
        self.targets.push(Target {
            target: target.into(),
            measured: measured.into(),
            met,
        });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// A note of the server's CPU per call, by what its threads do.
    pub fn note_cpu_per_call(&mut self, name: &str) {
        if self.server_us_per_call.is_empty() {
            return;
        }
        let by: Vec<String> = self
            .server_us_per_call
            .iter()
            .filter(|(_, us)| *us >= 0.05)
            .map(|(role, us)| format!("{role} {us:.1} us"))
            .collect();
        let total: f64 = self.server_us_per_call.iter().map(|(_, us)| us).sum();
        self.note(format!(
            "{name}: server CPU a call {total:.1} us: {}",
            by.join(", ")
        ));
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

fn ops(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) if v < 100.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
        None => "-".into(),
    }
}

/// Lays out `lines` under `head` as a Markdown-compatible table; the columns
/// in `figures` are right-aligned.
fn layout(head: &[String], lines: &[Vec<String>], figures: &[usize]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for l in lines {
        for (i, c) in l.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let fmt = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            if figures.contains(&i) {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} |", c, " ".repeat(pad)));
            }
        }
        s
    };
    let mut out = fmt(head);
    out.push('\n');
    let rule: Vec<String> = width
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if figures.contains(&i) {
                format!("{}:", "-".repeat(w.saturating_sub(1).max(1)))
            } else {
                "-".repeat(*w)
            }
        })
        .collect();
    out.push_str(&fmt(&rule));
    out.push('\n');
    for l in lines {
        out.push_str(&fmt(l));
        out.push('\n');
    }
    out
}

/// The table, as Markdown-compatible text: one line per row, a target per
/// line (extra targets continue on lines with empty figure cells). The
/// database's CPU has a column when some row has it; "other CPU" is what the
/// rest of the machine used meanwhile.
pub fn table(rows: &[Row]) -> String {
    let db = rows.iter().any(|r| r.db_cpu.is_some());
    let mut head: Vec<String> = [
        "scenario",
        "ops/s",
        "x base",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "srv RSS MiB",
        "srv CPU",
        "cli CPU",
    ]
    .map(String::from)
    .to_vec();
    if db {
        head.push("db CPU".into());
    }
    head.push("other CPU".into());
    let nfig = head.len();
    head.extend(["target", "measured", ""].map(String::from));
    let mut lines: Vec<Vec<String>> = Vec::new();
    for r in rows {
        let mut first = vec![
            r.scenario.clone(),
            ops(r.ops_per_s),
            num(r.ratio, 2),
            ms(r.p50_ms),
            ms(r.p99_ms),
            ms(r.p999_ms),
            num(r.server_rss_mib, 1),
            num(r.server_cpu, 2),
            num(r.client_cpu, 2),
        ];
        if db {
            first.push(num(r.db_cpu, 2));
        }
        first.push(num(r.other_cpu, 2));
        let mut targets = r.targets.iter();
        match targets.next() {
            Some(t) => first.extend(target_cells(t)),
            None => first.extend(["".into(), "".into(), "".into()]),
        }
        lines.push(first);
        for t in targets {
            let mut l = vec![String::new(); nfig];
            l.extend(target_cells(t));
            lines.push(l);
        }
    }
    let figures: Vec<usize> = (1..nfig).collect();
    layout(&head, &lines, &figures)
}

fn find<'a>(rows: &'a [Row], key: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.key == key)
}

/// The backends side by side: a line per scenario (rows paired by their
/// key), each backend's ops/s, ratio to its own baseline and p99, then
/// PostgreSQL's ops/s over SQLite's and each backend's targets met.
pub fn side_by_side(sqlite: &[Row], postgres: &[Row], order: &[&str]) -> String {
    let mut keys: Vec<&str> = sqlite.iter().map(|r| r.key.as_str()).collect();
    for r in postgres {
        if !keys.contains(&r.key.as_str()) {
            keys.push(&r.key);
        }
    }
    // In the order the scenarios run (`order`), a scenario's rows as made.
    let rank = |k: &str| {
        let (scenario, n) = k.split_once('/').unwrap_or((k, "0"));
        (
            order
                .iter()
                .position(|s| *s == scenario)
                .unwrap_or(usize::MAX),
            n.parse::<usize>().unwrap_or(0),
        )
    };
    keys.sort_by_key(|k| rank(k));
    let head: Vec<String> = [
        "scenario",
        "SQLite ops/s",
        "x base",
        "p99 ms",
        "PostgreSQL ops/s",
        "x base",
        "p99 ms",
        "PG / SQLite",
        "targets met (SQLite; PG)",
    ]
    .map(String::from)
    .to_vec();
    let met = |r: Option<&Row>| match r {
        Some(r) if !r.targets.is_empty() => format!(
            "{}/{}",
            r.targets.iter().filter(|t| t.met).count(),
            r.targets.len()
        ),
        _ => "-".into(),
    };
    let mut lines = Vec::new();
    for k in keys {
        let s = find(sqlite, k);
        let p = find(postgres, k);
        let name = s.or(p).map(|r| r.scenario.clone()).unwrap_or_default();
        let ratio = match (s.and_then(|r| r.ops_per_s), p.and_then(|r| r.ops_per_s)) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        lines.push(vec![
            name,
            ops(s.and_then(|r| r.ops_per_s)),
            num(s.and_then(|r| r.ratio), 2),
            ms(s.and_then(|r| r.p99_ms)),
            ops(p.and_then(|r| r.ops_per_s)),
            num(p.and_then(|r| r.ratio), 2),
            ms(p.and_then(|r| r.p99_ms)),
            num(ratio, 2),
            match (met(s), met(p)) {
                (a, b) if a == "-" && b == "-" => String::new(),
                (a, b) => format!("{a}; {b}"),
            },
        ]);
    }
    layout(&head, &lines, &[1, 2, 3, 4, 5, 6, 7])
}

fn target_cells(t: &Target) -> [String; 3] {
    [
        t.target.clone(),
        t.measured.clone(),
        if t.met { "met" } else { "NOT met" }.into(),
    ]
}

pub fn row_json(backend: &str, r: &Row) -> Value {
    json!({
        "backend": backend,
        "key": r.key,
        "scenario": r.scenario,
        "ops_per_s": r.ops_per_s,
        "ratio_to_baseline": r.ratio,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "p999_ms": r.p999_ms,
        "server_rss_mib": r.server_rss_mib,
        "server_cpu_cores": r.server_cpu,
        "client_cpu_cores": r.client_cpu,
        "db_cpu_cores": r.db_cpu,
        "other_cpu_cores": r.other_cpu,
        "server_cpu_us_per_call": r.server_us_per_call.iter()
            .map(|(role, us)| (role.to_string(), json!(us)))
            .collect::<serde_json::Map<_, _>>(),
        "targets": r.targets.iter().map(|t| json!({
            "target": t.target, "measured": t.measured, "met": t.met,
        })).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}
