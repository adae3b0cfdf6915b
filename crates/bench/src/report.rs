//! The figures of one run, reduced to medians over the rounds, and printed as one table: each
//! row direct, through nginx (the reference, with its cost over direct), through keyloop,
//! keyloop's cost, and the budget it is held to.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::load::LoadResult;
use crate::soak::{FLAT_GROWTH_PCT, SoakResult};
use crate::streams::StreamStats;

pub struct Figures {
    pub pinning: String,
    pub rounds: usize,
    /// The stages run, comma-separated.
    pub stages: String,
    pub reference: Reference,
    pub first_served: Duration,
    pub rss_idle_kb: u64,
    pub rss_load_kb: u64,
    pub direct: TargetFigures,
    /// Empty when the reference is not available.
    pub nginx: TargetFigures,
    pub keyloop: TargetFigures,
    pub soak: Option<SoakResult>,
}

/// The nginx reference column: measured in this run, or why not.
pub enum Reference {
    /// Its version, as nginx prints it (`nginx/1.22.1`).
    Measured(String),
    Unavailable(String),
}

/// What one way to the upstream measured: direct, through nginx or through keyloop. A stage
/// that was not run (`--stages`) leaves its figures empty and gets no rows.
#[derive(Default)]
pub struct TargetFigures {
    /// Per fixed rate, one result per round.
    pub fixed: BTreeMap<u32, Vec<LoadResult>>,
    /// Per fixed rate, the proxy's CPU µs per request, one per round (none for direct).
    pub cpu_us_per_request: BTreeMap<u32, Vec<f64>>,
    pub max: Vec<LoadResult>,
    /// Per stream count, one result per round.
    pub streams: BTreeMap<usize, Vec<StreamStats>>,
    /// Per stream count: the proxy's RSS with every stream open (none for direct).
    pub rss_streams_kb: BTreeMap<usize, u64>,
    /// The failover scenario, direct and through keyloop only.
    pub failover: Vec<LoadResult>,
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
    /// nginx's figure and, in brackets, its cost over direct; empty where not measured.
    nginx: String,
    keyloop: String,
    cost: String,
    budget: String,
    /// None: no budget for this row.
    met: Option<bool>,
}

fn ms(v: f64) -> String {
    format!("{v:.3} ms")
}

/// nginx's cell for a latency: the latency, then its cost over direct's `direct`.
fn ms_over(nginx: f64, direct: f64) -> String {
    format!("{} ({:+.3})", ms(nginx), nginx - direct)
}

fn rows(f: &Figures) -> Vec<Row> {
    let (direct, nginx, keyloop) = (&f.direct, &f.nginx, &f.keyloop);
    let mut rows = Vec::new();
    let load_ran = !keyloop.max.is_empty();
    for (rate, direct_runs) in &direct.fixed {
        let keyloop_runs = &keyloop.fixed[rate];
        let nginx_runs = nginx.fixed.get(rate);
        for (name, pick, budget) in [
            (
                "p50",
                (|r: &LoadResult| r.p50_ms) as fn(&LoadResult) -> f64,
                0.15,
            ),
            ("p99", |r: &LoadResult| r.p99_ms, 0.3),
        ] {
            let (d, k) = (med(direct_runs, pick), med(keyloop_runs, pick));
            let bounded = *rate == 2000;
            rows.push(Row {
                what: format!("{rate} req/s, latency {name}"),
                direct: ms(d),
                nginx: nginx_runs.map_or(String::new(), |n| ms_over(med(n, pick), d)),
                keyloop: ms(k),
                cost: format!("{:+.3} ms", k - d),
                budget: if bounded {
                    format!("≤ +{budget} ms")
                } else {
                    String::new()
                },
                met: bounded.then_some(k - d <= budget),
            });
        }
        let cpu = |target: &TargetFigures| {
            target
                .cpu_us_per_request
                .get(rate)
                .map(|runs| median(&mut runs.clone()))
        };
        let k = cpu(keyloop).unwrap_or(f64::NAN);
        rows.push(Row {
            what: format!("{rate} req/s, CPU per request"),
            direct: String::new(),
            nginx: cpu(nginx).map_or(String::new(), |n| format!("{n:.1} µs")),
            keyloop: format!("{k:.1} µs"),
            cost: format!("{:.1} CPU s / 1000 req", k / 1000.0),
            budget: if *rate == 2000 {
                "≤ 60 µs".into()
            } else {
                String::new()
            },
            met: (*rate == 2000).then_some(k <= 60.0),
        });
    }
    if load_ran {
        let rps = |r: &LoadResult| r.requests_per_sec;
        let (d, k) = (med(&direct.max, rps), med(&keyloop.max, rps));
        rows.push(Row {
            what: "max throughput, 64 connections".into(),
            direct: format!("{d:.0} req/s"),
            nginx: if nginx.max.is_empty() {
                String::new()
            } else {
                let n = med(&nginx.max, rps);
                format!("{n:.0} req/s ({:.0} %)", 100.0 * n / d)
            },
            keyloop: format!("{k:.0} req/s"),
            cost: format!("{:.0} % of direct", 100.0 * k / d),
            budget: "≥ 50 %".into(),
            met: Some(k / d >= 0.5),
        });
    }
    for (streams, direct_runs) in &direct.streams {
        let keyloop_runs = &keyloop.streams[streams];
        let nginx_runs = nginx.streams.get(streams);
        let ttfb = |s: &StreamStats| percentile(&s.ttfb_ms, 0.5);
        let (d, k) = (
            med_stream(direct_runs, ttfb),
            med_stream(keyloop_runs, ttfb),
        );
        rows.push(Row {
            what: format!("{streams} streams, first byte p50"),
            direct: ms(d),
            nginx: nginx_runs.map_or(String::new(), |n| ms_over(med_stream(n, ttfb), d)),
            keyloop: ms(k),
            cost: format!("{:+.3} ms", k - d),
            budget: "≤ +0.2 ms".into(),
            met: Some(k - d <= 0.2),
        });
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let gap = |s: &StreamStats| percentile(&s.gaps_ms, q);
            let (d, k) = (med_stream(direct_runs, gap), med_stream(keyloop_runs, gap));
            rows.push(Row {
                what: format!("{streams} streams, inter-event gap {name}"),
                direct: ms(d),
                nginx: nginx_runs.map_or(String::new(), |n| ms_over(med_stream(n, gap), d)),
                keyloop: ms(k),
                cost: format!("{:+.3} ms", k - d),
                budget: String::new(),
                met: None,
            });
        }
        let bunched = |s: &StreamStats| s.bunched as f64 / s.gaps_ms.len().max(1) as f64;
        let failed = |s: &StreamStats| s.failed as f64;
        let (bd, bk) = (
            med_stream(direct_runs, bunched),
            med_stream(keyloop_runs, bunched),
        );
        rows.push(Row {
            what: format!("{streams} streams, events arriving < 1 ms apart"),
            direct: format!("{:.2} %", 100.0 * bd),
            // Failed streams are shown only when there are some.
            nginx: nginx_runs.map_or(String::new(), |n| {
                let bn = med_stream(n, bunched);
                let mut cell = format!("{:.2} % ({:+.2})", 100.0 * bn, 100.0 * (bn - bd));
                let failed = med_stream(n, failed);
                if failed > 0.0 {
                    let _ = write!(cell, ", {failed:.0} failed");
                }
                cell
            }),
            keyloop: format!("{:.2} %", 100.0 * bk),
            cost: format!(
                "failed streams: {:.0} / {:.0}",
                med_stream(direct_runs, failed),
                med_stream(keyloop_runs, failed)
            ),
            budget: "no buffering".into(),
            met: Some(bk <= bd + 0.01 && med_stream(keyloop_runs, failed) == 0.0),
        });
    }
    let not_ok = |target: &TargetFigures| {
        target
            .fixed
            .values()
            .flatten()
            .chain(&target.max)
            .map(|r| r.not_ok)
            .sum::<u64>()
    };
    if load_ran {
        let (bad_direct, bad_keyloop) = (not_ok(direct), not_ok(keyloop));
        rows.push(Row {
            what: "answers other than 200 (load runs above)".into(),
            direct: bad_direct.to_string(),
            nginx: if nginx.max.is_empty() {
                String::new()
            } else {
                not_ok(nginx).to_string()
            },
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
        nginx: String::new(),
        keyloop: mb(f.rss_idle_kb),
        cost: String::new(),
        budget: "≤ 15 MB".into(),
        met: Some(f.rss_idle_kb <= 15 * 1024),
    });
    if load_ran {
        rows.push(Row {
            what: "keyloop RSS after the load rounds".into(),
            direct: String::new(),
            nginx: String::new(),
            keyloop: mb(f.rss_load_kb),
            cost: String::new(),
            budget: String::new(),
            met: None,
        });
    }
    for (streams, kb) in &keyloop.rss_streams_kb {
        let budget = if *streams <= 200 { 30 } else { 150 };
        rows.push(Row {
            what: format!("RSS, {streams} open streams"),
            direct: String::new(),
            nginx: nginx
                .rss_streams_kb
                .get(streams)
                .map_or(String::new(), |kb| mb(*kb)),
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
        nginx: String::new(),
        keyloop: format!("{:.0} ms", f.first_served.as_secs_f64() * 1e3),
        cost: String::new(),
        budget: "≤ 500 ms".into(),
        met: Some(f.first_served <= Duration::from_millis(500)),
    });
    if !keyloop.failover.is_empty() {
        let p99 = |r: &LoadResult| r.p99_ms;
        let (d, k) = (med(&direct.failover, p99), med(&keyloop.failover, p99));
        let errors = med(&keyloop.failover, |r| r.not_ok as f64);
        rows.push(Row {
            what: "failover (1 of 3 keys 429s half), 2000 req/s p99".into(),
            direct: ms(d),
            nginx: String::new(),
            keyloop: ms(k),
            cost: format!("{:+.3} ms, client errors {errors:.0}", k - d),
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
            nginx: String::new(),
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
            nginx: String::new(),
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
        "nginx (cost)",
        "keyloop",
        "keyloop's cost",
        "budget",
        "",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.what.clone(),
                r.direct.clone(),
                r.nginx.clone(),
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

/// What the nginx column is, or why it is empty: one line, above the table.
pub fn reference_line(f: &Figures) -> String {
    match &f.reference {
        Reference::Measured(version) => format!(
            "nginx column: a reference measured in the same run, a plain reverse proxy \
             ({version}, 1 worker, keepalive to the upstream, buffering off) on keyloop's core; \
             in brackets, its cost over direct. Verdicts are against the budget alone."
        ),
        Reference::Unavailable(reason) => format!("nginx reference: not available ({reason})"),
    }
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
    let order = match f.reference {
        Reference::Measured(_) => "direct, through nginx, through keyloop",
        Reference::Unavailable(_) => "direct, then through keyloop",
    };
    format!(
        "# Gateway benchmark\n\n\
         - {}\n\
         - commit `{commit}`; {cores} cores ({cpu}); {}\n\
         - stages: {}\n\
         - {} interleaved rounds ({order}, per measure); medians shown\n\
         - non-streaming: ~1 KB Messages requests, oha with 64 connections; fixed rates are open \
         loop with latency from the scheduled send time (`--latency-correction`)\n\
         - streaming: every stream starts at once and asks for 50 text deltas 10 ms apart\n\
         - accounting on (SQLite ledger in a temp dir); three credentials\n\
         {soak}\n{table}",
        reference_line(f),
        f.pinning,
        f.stages,
        f.rounds,
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
