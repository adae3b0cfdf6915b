//! Non-streaming load with `oha` (from crates.io, installed by `bench/run`): open-loop fixed
//! rates with latency counted from each request's scheduled send time (`--latency-correction`),
//! and closed-loop maximum throughput with 64 connections.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::procs::pinned;

/// A ~1 KB Messages request, as an agent sends it.
pub fn request_body() -> String {
    let filler = "Summarise the build log and name the failing step. ".repeat(18);
    format!(
        r#"{{"model":"claude-sonnet-5-5","max_tokens":256,"messages":[{{"role":"user","content":"{filler}"}}]}}"#
    )
}

/// Where requests go: the upstream itself (with one of its credentials, as a client calling it
/// directly would send) or keyloop (which needs none: client keys are off for the benchmark).
pub struct Target {
    pub url: String,
    pub api_key: Option<String>,
}

/// What one oha run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Answers other than 200, and transport errors.
    pub not_ok: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaJson {
    summary: OhaSummary,
    latency_percentiles: BTreeMap<String, Option<f64>>,
    status_code_distribution: BTreeMap<String, u64>,
    #[serde(default)]
    error_distribution: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaSummary {
    requests_per_sec: f64,
}

pub struct Oha<'a> {
    pub bin: &'a Path,
    pub core: Option<usize>,
}

impl Oha<'_> {
    /// `rate` requests/s (None: as fast as `connections` allow) for `duration`, to `target`.
    pub fn run(
        &self,
        target: &Target,
        rate: Option<u32>,
        connections: u32,
        duration: Duration,
    ) -> anyhow::Result<LoadResult> {
        let mut command = self.command(target, rate, connections);
        command.args(["-z", &format!("{}ms", duration.as_millis())]);
        command.arg(&target.url);
        parse(&command.output().context("cannot run oha")?)
    }

    /// `requests` requests to `target` as fast as `connections` allow (closed loop).
    pub fn run_requests(
        &self,
        target: &Target,
        connections: u32,
        requests: u64,
    ) -> anyhow::Result<LoadResult> {
        let mut command = self.command(target, None, connections);
        command.args(["-n", &requests.to_string()]);
        command.arg(&target.url);
        parse(&command.output().context("cannot run oha")?)
    }

    /// oha with the request, the connections and the rate; the run's length and the URL follow.
    fn command(&self, target: &Target, rate: Option<u32>, connections: u32) -> Command {
        let mut command = pinned(self.core, self.bin);
        command
            .args(["--no-tui", "--output-format", "json"])
            .args(["-m", "POST"])
            .args(["-H", "content-type: application/json"])
            .args(["-H", "anthropic-version: 2023-06-01"])
            .args(["-d", &request_body()])
            .args(["-c", &connections.to_string()]);
        if let Some(key) = &target.api_key {
            command.args(["-H", &format!("x-api-key: {key}")]);
        }
        if let Some(rate) = rate {
            command.args(["-q", &rate.to_string(), "--latency-correction"]);
        }
        command
    }
}

fn parse(output: &std::process::Output) -> anyhow::Result<LoadResult> {
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let json: OhaJson = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "oha's JSON is not what this harness reads: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let percentile = |name: &str| -> f64 {
        json.latency_percentiles
            .get(name)
            .copied()
            .flatten()
            .unwrap_or(f64::NAN)
            * 1e3
    };
    let ok = json
        .status_code_distribution
        .get("200")
        .copied()
        .unwrap_or(0);
    let all: u64 = json.status_code_distribution.values().sum();
    // Requests still in flight when the run's time is up are cut by oha itself, not failed.
    let errors: u64 = json
        .error_distribution
        .iter()
        .filter(|(what, _)| !what.contains("aborted due to deadline"))
        .map(|(_, n)| n)
        .sum();
    Ok(LoadResult {
        requests_per_sec: json.summary.requests_per_sec,
        p50_ms: percentile("p50"),
        p99_ms: percentile("p99"),
        requests: all + errors,
        not_ok: all - ok + errors,
    })
}

/// Checks that this oha speaks the flags the harness uses.
pub fn check(bin: &Path) -> anyhow::Result<()> {
    let help = Command::new(bin).arg("--help").output()?;
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--latency-correction", "--output-format", "--no-tui"] {
        if !text.contains(flag) {
            bail!("{} does not know {flag}", bin.display());
        }
    }
    Ok(())
}
