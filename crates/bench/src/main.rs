//! `keyloop-bench`: what keyloop costs over calling the upstream directly, measured in one run
//! on one machine with interleaved rounds, and printed as one table against the budget, with
//! nginx as a plain reverse proxy on keyloop's core as a reference measured in the same rounds.
//! `bench/run` builds the binaries, installs the load generator (and nginx) and calls this.
//!
//! Usage: `keyloop-bench --keyloop BIN --oha BIN [--nginx BIN] [--rounds N] [--seconds S]
//! [--out FILE.md] [--soak-requests N] [--stages load,streams,failover,soak]`
//!
//! - `--nginx BIN`: the reference proxy; without it the nginx column stays empty.
//! - `--soak-requests N`: requests in the soak (default 1,000,000; 0 skips it).
//! - `--stages LIST`: which measures to run, comma-separated (default all four). Idle RSS and
//!   start-up are measured in every run. `load` is the fixed rates, max throughput and CPU;
//!   `streams` the streaming probe; `failover` the 429 scenario; `soak` the memory soak.

mod load;
mod procs;
mod report;
mod soak;
mod streams;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::load::{LoadResult, Oha, Target};
use crate::procs::{Pinning, Proc};
use crate::report::{Figures, Reference, TargetFigures};
use crate::streams::Probe;

struct Args {
    keyloop: PathBuf,
    oha: PathBuf,
    nginx: Option<PathBuf>,
    rounds: usize,
    seconds: u64,
    out: Option<PathBuf>,
    soak_requests: u64,
    stages: Vec<Stage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Load,
    Streams,
    Failover,
    Soak,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Load, Stage::Streams, Stage::Failover, Stage::Soak];

    fn as_str(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Streams => "streams",
            Stage::Failover => "failover",
            Stage::Soak => "soak",
        }
    }

    fn parse_list(list: &str) -> anyhow::Result<Vec<Stage>> {
        list.split(',')
            .map(|name| {
                Stage::ALL
                    .into_iter()
                    .find(|s| s.as_str() == name.trim())
                    .with_context(|| {
                        format!("unknown stage {name:?}; stages: load, streams, failover, soak")
                    })
            })
            .collect()
    }
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        keyloop: PathBuf::new(),
        oha: PathBuf::new(),
        nginx: None,
        rounds: 3,
        seconds: 10,
        out: None,
        soak_requests: 1_000_000,
        stages: Stage::ALL.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keyloop" => args.keyloop = value()?.into(),
            "--oha" => args.oha = value()?.into(),
            "--nginx" => args.nginx = Some(value()?.into()),
            "--rounds" => args.rounds = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--out" => args.out = Some(value()?.into()),
            "--soak-requests" => args.soak_requests = value()?.replace('_', "").parse()?,
            "--stages" => args.stages = Stage::parse_list(&value()?)?,
            other => bail!("unknown flag {other}; see the top of crates/bench/src/main.rs"),
        }
    }
    if args.keyloop.as_os_str().is_empty() || args.oha.as_os_str().is_empty() {
        bail!("--keyloop and --oha are required");
    }
    Ok(args)
}

/// Why the nginx column is empty when `--nginx` is not given.
const NO_NGINX: &str =
    "no --nginx; bench/run passes the nginx on PATH or, as root, installs Debian's nginx-light";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    load::check(&args.oha)?;
    let pinning = Pinning::detect();
    let work = std::env::temp_dir().join(format!("keyloop-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let (upstream_port, gateway_port, nginx_port) = (free_port()?, free_port()?, free_port()?);
    let direct = Target {
        url: format!("http://127.0.0.1:{upstream_port}/v1/messages"),
        api_key: Some(procs::KEYS[1].1.to_owned()),
    };
    eprintln!("pinning: {}", pinning.describe());

    let _upstream = procs::start_upstream(&args.keyloop, upstream_port, pinning, &work).await?;
    let gateway = procs::start_gateway(
        &args.keyloop,
        gateway_port,
        upstream_port,
        pinning,
        &work,
        "keyloop",
    )
    .await?;
    let keyloop = Proxy {
        proc: &gateway.proc,
        target: Target {
            url: format!("http://127.0.0.1:{gateway_port}/v1/messages"),
            api_key: None,
        },
    };
    // The reference is optional: without it the run goes on and the report says why.
    let started_nginx = match &args.nginx {
        Some(bin) => procs::start_nginx(bin, nginx_port, upstream_port, pinning, &work)
            .await
            .map_err(|e| format!("{e:#}")),
        None => Err(NO_NGINX.into()),
    };
    let reference = match &started_nginx {
        Ok(started) => Reference::Measured(started.version.clone()),
        Err(reason) => Reference::Unavailable(reason.clone()),
    };
    // A plain reverse proxy passes the client's credential on, so nginx is sent direct's.
    let nginx = started_nginx.as_ref().ok().map(|started| Proxy {
        proc: &started.proc,
        target: Target {
            url: format!("http://127.0.0.1:{nginx_port}/v1/messages"),
            api_key: direct.api_key.clone(),
        },
    });
    let mut figures = Figures {
        pinning: pinning.describe(),
        rounds: args.rounds,
        stages: args
            .stages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        reference,
        first_served: gateway.first_served,
        rss_idle_kb: 0,
        rss_load_kb: 0,
        direct: TargetFigures::default(),
        nginx: TargetFigures::default(),
        keyloop: TargetFigures::default(),
        soak: None,
    };
    eprintln!("{}", report::reference_line(&figures));
    tokio::time::sleep(Duration::from_secs(1)).await;
    figures.rss_idle_kb = gateway.proc.rss_kb();

    let oha = Oha {
        bin: &args.oha,
        core: pinning.load,
    };
    let seconds = Duration::from_secs(args.seconds);
    // Warm every path (connection pools, the ledger file) before anything is counted.
    oha.run(&direct, None, 64, Duration::from_secs(2))?;
    if let Some(nginx) = &nginx {
        oha.run(&nginx.target, None, 64, Duration::from_secs(2))?;
    }
    oha.run(&keyloop.target, None, 64, Duration::from_secs(2))?;

    let runs = |stage| args.stages.contains(&stage);
    if runs(Stage::Load) {
        for round in 1..=args.rounds {
            eprintln!("round {round}/{}", args.rounds);
            for rate in [500, 2000] {
                figures.direct.fixed.entry(rate).or_default().push(oha.run(
                    &direct,
                    Some(rate),
                    64,
                    seconds,
                )?);
                if let Some(nginx) = &nginx {
                    nginx.fixed_rate(&oha, rate, seconds, &mut figures.nginx)?;
                }
                keyloop.fixed_rate(&oha, rate, seconds, &mut figures.keyloop)?;
            }
            figures
                .direct
                .max
                .push(oha.run(&direct, None, 64, seconds)?);
            if let Some(nginx) = &nginx {
                figures
                    .nginx
                    .max
                    .push(oha.run(&nginx.target, None, 64, seconds)?);
            }
            figures
                .keyloop
                .max
                .push(oha.run(&keyloop.target, None, 64, seconds)?);
            figures.rss_load_kb = figures.rss_load_kb.max(gateway.proc.rss_kb());
        }
    }

    if runs(Stage::Streams) {
        for streams in [200, 2000] {
            for round in 1..=args.rounds {
                eprintln!("streams {streams}, round {round}/{}", args.rounds);
                let stats = probe(&direct, streams).run(|| {}).await;
                figures
                    .direct
                    .streams
                    .entry(streams)
                    .or_default()
                    .push(stats);
                if let Some(nginx) = &nginx {
                    nginx.streams(streams, &mut figures.nginx).await;
                }
                keyloop.streams(streams, &mut figures.keyloop).await;
            }
        }
    }

    if runs(Stage::Failover) {
        // Failover: one credential of three answers 429 to half its requests.
        chaos(upstream_port, 0.5).await?;
        for round in 1..=args.rounds {
            eprintln!("failover, round {round}/{}", args.rounds);
            figures
                .direct
                .failover
                .push(oha.run(&direct, Some(2000), 64, seconds)?);
            figures
                .keyloop
                .failover
                .push(oha.run(&keyloop.target, Some(2000), 64, seconds)?);
        }
        chaos(upstream_port, 0.0).await?;
    }

    // Last, so that its million ledger rows weigh on no other measure.
    if runs(Stage::Soak) && args.soak_requests > 0 {
        eprintln!("soak, {} requests", args.soak_requests);
        figures.soak = Some(soak::run(
            &oha,
            &keyloop.target,
            &gateway.proc,
            args.soak_requests,
        )?);
    }

    let table = report::render(&figures);
    println!("{}\n\n{table}", report::reference_line(&figures));
    if let Some(out) = &args.out {
        std::fs::write(out, report::markdown(&figures, &table))?;
        eprintln!("wrote {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// A proxy in front of the upstream, measured the same way: keyloop, or nginx (the reference).
struct Proxy<'a> {
    proc: &'a Proc,
    target: Target,
}

impl Proxy<'_> {
    /// One run at `rate` requests/s, with the proxy's CPU µs per request over it.
    fn fixed_rate(
        &self,
        oha: &Oha,
        rate: u32,
        seconds: Duration,
        into: &mut TargetFigures,
    ) -> anyhow::Result<()> {
        let (result, cpu) = measured(self.proc, || oha.run(&self.target, Some(rate), 64, seconds))?;
        into.cpu_us_per_request
            .entry(rate)
            .or_default()
            .push(cpu * 1e6 / result.requests.max(1) as f64);
        into.fixed.entry(rate).or_default().push(result);
        Ok(())
    }

    /// One run of the streaming probe, with the proxy's RSS once every stream is open.
    async fn streams(&self, streams: usize, into: &mut TargetFigures) {
        let rss = Arc::new(Mutex::new(0u64));
        let (pid, seen) = (self.proc.pid, rss.clone());
        let stats = probe(&self.target, streams)
            .run(move || *seen.lock().unwrap() = procs::rss_of(pid))
            .await;
        let peak = *rss.lock().unwrap();
        let slot = into.rss_streams_kb.entry(streams).or_default();
        *slot = (*slot).max(peak);
        into.streams.entry(streams).or_default().push(stats);
    }
}

/// `streams` streams at once, each asking for 50 text deltas 10 ms apart.
fn probe(target: &Target, streams: usize) -> Probe<'_> {
    Probe {
        target,
        streams,
        events: 50,
        interval: Duration::from_millis(10),
    }
}

/// Runs `f` and returns its result with the CPU seconds `proc` used meanwhile.
fn measured(
    proc: &Proc,
    f: impl FnOnce() -> anyhow::Result<LoadResult>,
) -> anyhow::Result<(LoadResult, f64)> {
    let before = proc.cpu_seconds();
    let result = f()?;
    Ok((result, proc.cpu_seconds() - before))
}

/// Makes credential k1 answer 429 (retry-after 1 s) to `ratio` of its requests.
async fn chaos(upstream_port: u16, ratio: f64) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{upstream_port}/_mock/chaos"))
        .json(&serde_json::json!({
            "key": "k1",
            "scenario": {"type": "rate_limited", "retry_after_secs": 1},
            "ratio": ratio,
        }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "the simulated upstream refused the chaos setting: {}",
            response.status()
        );
    }
    Ok(())
}
