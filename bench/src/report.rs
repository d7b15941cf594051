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
    pub scenario: String,
    pub ops_per_s: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_cpu: Option<f64>,
    pub client_cpu: Option<f64>,
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

/// The table, as Markdown-compatible text: one line per row, a target per
/// line (extra targets continue on lines with empty figure cells).
pub fn table(rows: &[Row]) -> String {
    let head = [
        "scenario",
        "ops/s",
        "x base",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "srv RSS MiB",
        "srv CPU",
        "cli CPU",
        "target",
        "measured",
        "",
    ];
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
        let mut targets = r.targets.iter();
        match targets.next() {
            Some(t) => first.extend(target_cells(t)),
            None => first.extend(["".into(), "".into(), "".into()]),
        }
        lines.push(first);
        for t in targets {
            let mut l = vec![String::new(); 9];
            l.extend(target_cells(t));
            lines.push(l);
        }
    }
    let mut width = head.map(str::len);
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let fmt = |cells: Vec<String>| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            // Figures right-aligned, text left-aligned.
            if (1..=8).contains(&i) {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} |", c, " ".repeat(pad)));
            }
        }
        s
    };
    let mut out = String::new();
    out.push_str(&fmt(head.iter().map(|s| s.to_string()).collect()));
    out.push('\n');
    let rule: Vec<String> = width
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if (1..=8).contains(&i) {
                format!("{}:", "-".repeat(w.saturating_sub(1).max(1)))
            } else {
                "-".repeat(*w)
            }
        })
        .collect();
    out.push_str(&fmt(rule));
    out.push('\n');
    for l in lines {
        out.push_str(&fmt(l));
        out.push('\n');
    }
    out
}

fn target_cells(t: &Target) -> [String; 3] {
    [
        t.target.clone(),
        t.measured.clone(),
        if t.met { "met" } else { "NOT met" }.into(),
    ]
}

pub fn row_json(r: &Row) -> Value {
    json!({
        "scenario": r.scenario,
        "ops_per_s": r.ops_per_s,
        "ratio_to_baseline": r.ratio,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "p999_ms": r.p999_ms,
        "server_rss_mib": r.server_rss_mib,
        "server_cpu_cores": r.server_cpu,
        "client_cpu_cores": r.client_cpu,
        "targets": r.targets.iter().map(|t| json!({
            "target": t.target, "measured": t.measured, "met": t.met,
        })).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}
