//! The figures of one run, reduced to medians over the rounds, and printed as one table: each
//! row direct, through keyloop, the difference, and the budget it is held to.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::load::LoadResult;
use crate::soak::{FLAT_GROWTH_PCT, SoakResult};
use crate::streams::StreamStats;

#[derive(Default)]
pub struct Figures {
    pub pinning: String,
    pub rounds: usize,
    /// The stages run, comma-separated.
    pub stages: String,
    pub first_served: Duration,
    pub rss_idle_kb: u64,
    pub rss_load_kb: u64,
    /// Per stream count: keyloop's RSS with every stream open.
    pub rss_streams_kb: BTreeMap<usize, u64>,
    /// Per fixed rate, one result per round.
    pub fixed_direct: BTreeMap<u32, Vec<LoadResult>>,
    pub fixed_keyloop: BTreeMap<u32, Vec<LoadResult>>,
    pub cpu_us_per_request: BTreeMap<u32, Vec<f64>>,
    pub max_direct: Vec<LoadResult>,
    pub max_keyloop: Vec<LoadResult>,
    pub streams_direct: BTreeMap<usize, Vec<StreamStats>>,
    pub streams_keyloop: BTreeMap<usize, Vec<StreamStats>>,
    pub failover_direct: Vec<LoadResult>,
    pub failover_keyloop: Vec<LoadResult>,
    pub soak: Option<SoakResult>,
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn med(results: &[LoadResult], f: impl Fn(&LoadResult) -> f64) -> f64 {
    median(&mut results.iter().map(f).collect::<Vec<_>>())
}

fn med_stream(stats: &[StreamStats], f: impl Fn(&StreamStats) -> f64) -> f64 {
    median(&mut stats.iter().map(f).collect::<Vec<_>>())
}

struct Row {
    what: String,
    direct: String,
    keyloop: String,
    cost: String,
    budget: String,
    /// None: no budget for this row.
    met: Option<bool>,
}

fn ms(v: f64) -> String {
    format!("{v:.3} ms")
}

fn rows(f: &Figures) -> Vec<Row> {
    let mut rows = Vec::new();
    // A stage that was not run (`--stages`) leaves its figures empty and gets no rows.
    let load_ran = !f.max_keyloop.is_empty();
    for (rate, direct) in &f.fixed_direct {
        let keyloop = &f.fixed_keyloop[rate];
        for (name, pick, budget) in [
            (
                "p50",
                (|r: &LoadResult| r.p50_ms) as fn(&LoadResult) -> f64,
                0.15,
            ),
            ("p99", |r: &LoadResult| r.p99_ms, 0.3),
        ] {
            let (d, k) = (med(direct, pick), med(keyloop, pick));
            let bounded = *rate == 2000;
            rows.push(Row {
                what: format!("{rate} req/s, latency {name}"),
                direct: ms(d),
                keyloop: ms(k),
                cost: format!("+{:.3} ms", k - d),
                budget: if bounded {
                    format!("≤ +{budget} ms")
                } else {
                    String::new()
                },
                met: bounded.then_some(k - d <= budget),
            });
        }
        let cpu = median(&mut f.cpu_us_per_request[rate].clone());
        rows.push(Row {
            what: format!("{rate} req/s, keyloop CPU per request"),
            direct: String::new(),
            keyloop: format!("{cpu:.1} µs"),
            cost: format!("{:.1} CPU s / 1000 req", cpu / 1000.0),
            budget: if *rate == 2000 {
                "≤ 60 µs".into()
            } else {
                String::new()
            },
            met: (*rate == 2000).then_some(cpu <= 60.0),
        });
    }
    if load_ran {
        let (d, k) = (
            med(&f.max_direct, |r| r.requests_per_sec),
            med(&f.max_keyloop, |r| r.requests_per_sec),
        );
        rows.push(Row {
            what: "max throughput, 64 connections".into(),
            direct: format!("{d:.0} req/s"),
            keyloop: format!("{k:.0} req/s"),
            cost: format!("{:.0} % of direct", 100.0 * k / d),
            budget: "≥ 50 %".into(),
            met: Some(k / d >= 0.5),
        });
    }
    for (streams, direct) in &f.streams_direct {
        let keyloop = &f.streams_keyloop[streams];
        let ttfb = |s: &StreamStats| percentile(&s.ttfb_ms, 0.5);
        let (d, k) = (med_stream(direct, ttfb), med_stream(keyloop, ttfb));
        rows.push(Row {
            what: format!("{streams} streams, first byte p50"),
            direct: ms(d),
            keyloop: ms(k),
            cost: format!("+{:.3} ms", k - d),
            budget: "≤ +0.2 ms".into(),
            met: Some(k - d <= 0.2),
        });
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let gap = |s: &StreamStats| percentile(&s.gaps_ms, q);
            let (d, k) = (med_stream(direct, gap), med_stream(keyloop, gap));
            rows.push(Row {
                what: format!("{streams} streams, inter-event gap {name}"),
                direct: ms(d),
                keyloop: ms(k),
                cost: format!("{:+.3} ms", k - d),
                budget: String::new(),
                met: None,
            });
        }
        let bunched = |s: &StreamStats| s.bunched as f64 / s.gaps_ms.len().max(1) as f64;
        let failed = |s: &StreamStats| s.failed as f64;
        let (bd, bk) = (med_stream(direct, bunched), med_stream(keyloop, bunched));
        rows.push(Row {
            what: format!("{streams} streams, events arriving < 1 ms apart"),
            direct: format!("{:.2} %", 100.0 * bd),
            keyloop: format!("{:.2} %", 100.0 * bk),
            cost: format!(
                "failed streams: {:.0} / {:.0}",
                med_stream(direct, failed),
                med_stream(keyloop, failed)
            ),
            budget: "no buffering".into(),
            met: Some(bk <= bd + 0.01 && med_stream(keyloop, failed) == 0.0),
        });
    }
    let not_ok = |runs: &mut dyn Iterator<Item = &LoadResult>| runs.map(|r| r.not_ok).sum::<u64>();
    let (bad_direct, bad_keyloop) = (
        not_ok(&mut f.fixed_direct.values().flatten().chain(&f.max_direct)),
        not_ok(&mut f.fixed_keyloop.values().flatten().chain(&f.max_keyloop)),
    );
    if load_ran {
        rows.push(Row {
            what: "answers other than 200 (load runs above)".into(),
            direct: bad_direct.to_string(),
            keyloop: bad_keyloop.to_string(),
            cost: String::new(),
            budget: "0".into(),
            met: Some(bad_direct == 0 && bad_keyloop == 0),
        });
    }
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    rows.push(Row {
        what: "keyloop RSS idle".into(),
        direct: String::new(),
        keyloop: mb(f.rss_idle_kb),
        cost: String::new(),
        budget: "≤ 15 MB".into(),
        met: Some(f.rss_idle_kb <= 15 * 1024),
    });
    if load_ran {
        rows.push(Row {
            what: "keyloop RSS after the load rounds".into(),
            direct: String::new(),
            keyloop: mb(f.rss_load_kb),
            cost: String::new(),
            budget: String::new(),
            met: None,
        });
    }
    for (streams, kb) in &f.rss_streams_kb {
        let budget = if *streams <= 200 { 30 } else { 150 };
        rows.push(Row {
            what: format!("keyloop RSS, {streams} open streams"),
            direct: String::new(),
            keyloop: mb(*kb),
            cost: String::new(),
            budget: format!("≤ {budget} MB"),
            met: Some(*kb <= budget * 1024),
        });
    }
    if let Some(soak) = &f.soak {
        rows.extend(soak_rows(soak));
    }
    rows.push(Row {
        what: "first request served after start".into(),
        direct: String::new(),
        keyloop: format!("{:.0} ms", f.first_served.as_secs_f64() * 1e3),
        cost: String::new(),
        budget: "≤ 500 ms".into(),
        met: Some(f.first_served <= Duration::from_millis(500)),
    });
    if !f.failover_keyloop.is_empty() {
        let (d, k) = (
            med(&f.failover_direct, |r| r.p99_ms),
            med(&f.failover_keyloop, |r| r.p99_ms),
        );
        let errors = med(&f.failover_keyloop, |r| r.not_ok as f64);
        rows.push(Row {
            what: "failover (1 of 3 keys 429s half), 2000 req/s p99".into(),
            direct: ms(d),
            keyloop: ms(k),
            cost: format!("+{:.3} ms, client errors {errors:.0}", k - d),
            budget: "≤ +1 ms, 0 errors".into(),
            met: Some(k - d <= 1.0 && errors == 0.0),
        });
    }
    rows
}

/// Memory after warm-up and at the end of the soak, and the soak's throughput and errors.
fn soak_rows(soak: &SoakResult) -> [Row; 2] {
    let n = thousands(soak.requests());
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    [
        Row {
            what: format!("keyloop RSS, soak of {n} req: after warm-up → end"),
            direct: String::new(),
            keyloop: format!("{} → {}", mb(soak.warm_kb()), mb(soak.end_kb())),
            cost: format!(
                "{:+.1} MB ({:+.1} %): {}",
                soak.growth_kb() as f64 / 1024.0,
                soak.growth_pct(),
                if soak.flat() { "flat" } else { "growing" }
            ),
            budget: format!("flat (≤ +{FLAT_GROWTH_PCT} %)"),
            met: Some(soak.flat()),
        },
        Row {
            what: format!("soak of {n} req, 64 connections"),
            direct: String::new(),
            keyloop: format!("{:.0} req/s", soak.requests_per_sec()),
            cost: format!(
                "{:.0} s, answers other than 200: {}",
                soak.duration().as_secs_f64(),
                soak.not_ok()
            ),
            budget: "0 errors".into(),
            met: Some(soak.not_ok() == 0),
        },
    ]
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table, aligned for a terminal (and valid Markdown).
pub fn render(f: &Figures) -> String {
    let rows = rows(f);
    let head = [
        "measure",
        "direct",
        "keyloop",
        "keyloop's cost",
        "budget",
        "",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.what.clone(),
                r.direct.clone(),
                r.keyloop.clone(),
                r.cost.clone(),
                r.budget.clone(),
                match r.met {
                    Some(true) => "met".into(),
                    Some(false) => "MISSED".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for (c, w) in cells.iter().zip(widths) {
            let _ = write!(out, " {c:<w$} |");
        }
        out
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(&head.map(String::from)));
    let _ = writeln!(
        out,
        "|{}",
        widths.map(|w| format!("{}|", "-".repeat(w + 2))).concat()
    );
    for row in &cells {
        let _ = writeln!(out, "{}", line(row));
    }
    out
}

/// The results file: how the run was made, then the table.
pub fn markdown(f: &Figures, table: &str) -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let soak = f.soak.as_ref().map_or(String::new(), |soak| {
        let readings = soak
            .samples
            .iter()
            .map(|s| format!("{}: {:.1}", thousands(s.requests), s.rss_kb as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "- soak: {} requests through keyloop as fast as 64 connections go, in {} slices; \
             keyloop's RSS (requests sent: MB) {readings}. \
             Growth is counted after the first slice (warm-up); flat is ≤ +{FLAT_GROWTH_PCT} %\n",
            thousands(soak.requests()),
            soak.slices.len(),
        )
    });
    format!(
        "# Gateway benchmark\n\n\
         - commit `{commit}`; {cores} cores ({cpu}); {}\n\
         - stages: {}\n\
         - {} interleaved rounds (direct, then through keyloop, per measure); medians shown\n\
         - non-streaming: ~1 KB Messages requests, oha with 64 connections; fixed rates are open \
         loop with latency from the scheduled send time (`--latency-correction`)\n\
         - streaming: every stream starts at once and asks for 50 text deltas 10 ms apart\n\
         - accounting on (SQLite ledger in a temp dir); three credentials\n\
         {soak}\n{table}",
        f.pinning, f.stages, f.rounds,
    )
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
