//! The command line: `serve`, `check-config`, `keys …`, `clients …`, `mock-upstream`, `demo`.
//! Commands that change credentials or clients write to the store; a running server picks the
//! change up within a few seconds.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::keyring::{self, NewKey};
use crate::types::{KeyKind, Secret};
use crate::{app, clients, demo, telemetry};

#[derive(Parser)]
#[command(
    name = "keyloop",
    version,
    about = "One reliable endpoint over a pool of LLM credentials"
)]
struct Cli {
    /// Config file (TOML). Without one, built-in defaults and KEYLOOP_* variables apply.
    #[arg(long, global = true, env = "KEYLOOP_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Validate a config file and say what is wrong with it.
    CheckConfig { file: PathBuf },
    /// Manage upstream credentials.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage gateway clients and their keys.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Summarise usage from the ledger: requests, tokens, cost and latency per group.
    Usage(UsageArgs),
    /// Run the simulated Anthropic API (for trying keyloop without real keys).
    MockUpstream(MockArgs),
    /// Start a simulated upstream, keyloop in front of it, and light traffic: watch /status.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a credential. The secret is read from --secret-env or standard input, never argv.
    Add(AddKey),
    /// List credentials (secrets masked).
    List,
    /// Remove a credential.
    Remove { name: String },
    /// Put a credential back into rotation.
    Enable { name: String },
    /// Take a credential out of rotation.
    Disable { name: String },
}

#[derive(Args)]
struct AddKey {
    name: String,
    /// Read the secret from this environment variable instead of standard input.
    #[arg(long)]
    secret_env: Option<String>,
    /// `api-key` or `oauth`; detected from the secret when absent.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long, default_value_t = 0)]
    priority: u32,
    #[arg(long, default_value_t = 1)]
    weight: u32,
    #[arg(long)]
    max_concurrent: Option<u32>,
    /// Free label, e.g. the organisation the credential bills to.
    #[arg(long)]
    group: Option<String>,
    /// Add it disabled.
    #[arg(long)]
    disabled: bool,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Create a client; its key is printed once and never stored.
    Create {
        name: String,
    },
    List,
    /// Revoke a client's key.
    Revoke {
        name: String,
    },
}

#[derive(Args)]
struct UsageArgs {
    /// How far back: `90m`, `24h`, `7d`.
    #[arg(long, default_value = "24h")]
    since: String,
    /// Group rows by `model`, `credential`, `client`, or `none`.
    #[arg(long, default_value = "model")]
    by: String,
}

#[derive(Args)]
struct MockArgs {
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// NAME=SECRET or NAME=SECRET:RPM; repeat for several. Defaults to the demo's keys.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Keep the last 100,000 requests for GET /_mock/calls (off: counts only, for load tests).
    #[arg(long)]
    record: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(path, &config::ProcessEnv)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => {
            let config = load(cli.config.as_deref())?;
            let _log = telemetry::init(&config.log);
            let running = app::start(config).await?;
            let token = running.shutdown_token();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                token.cancel();
            });
            running.wait().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => match Config::load(Some(&file), &config::ProcessEnv) {
            Ok(config) => {
                println!(
                    "{}: ok (listen {}, {} credential(s) declared, strategy {})",
                    file.display(),
                    config.server.listen,
                    config.keys.len(),
                    config.pool.strategy.as_str()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                Ok(ExitCode::from(2))
            }
        },
        Command::Keys(command) => keys(load(cli.config.as_deref())?, command).await,
        Command::Clients(command) => clients(load(cli.config.as_deref())?, command).await,
        Command::Usage(args) => usage(load(cli.config.as_deref())?, args).await,
        Command::MockUpstream(args) => mock_upstream(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn read_secret(secret_env: Option<&str>) -> anyhow::Result<Secret<String>> {
    let secret = match secret_env {
        Some(var) => std::env::var(var).with_context(|| format!("{var} is not set"))?,
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("paste the secret and press Enter (it is not echoed to any log):");
            }
            let mut line = String::new();
            std::io::stdin().read_to_string(&mut line)?;
            line
        }
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        bail!("the secret is empty");
    }
    Ok(Secret::new(secret))
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let (stores, vault) = app::open_store(&config).await?;
    let store = stores.store;
    match command {
        KeysCommand::Add(add) => {
            let kind = match add.kind.as_deref() {
                None => None,
                Some(k) => Some(
                    KeyKind::parse(k)
                        .with_context(|| format!("--kind: expected api-key or oauth, got {k:?}"))?,
                ),
            };
            let secret = read_secret(add.secret_env.as_deref())?;
            let row = keyring::add(
                store.as_ref(),
                &vault,
                &NewKey {
                    name: add.name,
                    secret,
                    kind,
                    priority: add.priority,
                    weight: add.weight.max(1),
                    max_concurrent: add.max_concurrent,
                    group: add.group,
                    enabled: !add.disabled,
                },
            )
            .await?;
            println!("added {} ({}, {})", row.name, row.kind, row.secret_hint);
        }
        KeysCommand::List => {
            let states = store.key_states().await?;
            println!(
                "{:<20} {:<8} {:<22} {:<12} {:>4} {:>4} {:>5} {:<8} {:<13} SOURCE",
                "NAME", "KIND", "SECRET", "GROUP", "PRIO", "WGT", "CONC", "ENABLED", "STATE"
            );
            for key in store.keys().await? {
                let state = states
                    .iter()
                    .find(|s| s.key_id == key.id)
                    .map_or("active", |s| s.state.as_str());
                println!(
                    "{:<20} {:<8} {:<22} {:<12} {:>4} {:>4} {:>5} {:<8} {:<13} {}",
                    key.name,
                    key.kind,
                    key.secret_hint,
                    key.group_label.as_deref().unwrap_or("-"),
                    key.priority,
                    key.weight,
                    key.max_concurrent.map_or("-".into(), |n| n.to_string()),
                    if key.enabled { "yes" } else { "no" },
                    state,
                    key.source
                );
            }
        }
        KeysCommand::Remove { name } => {
            store.delete_key(&name).await?;
            println!("removed {name}");
        }
        KeysCommand::Enable { name } => {
            store.set_key_enabled(&name, true).await?;
            println!("enabled {name}");
        }
        KeysCommand::Disable { name } => {
            store.set_key_enabled(&name, false).await?;
            println!("disabled {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn clients(config: Config, command: ClientsCommand) -> anyhow::Result<ExitCode> {
    let (stores, _vault) = app::open_store(&config).await?;
    let store = stores.store;
    match command {
        ClientsCommand::Create { name } => {
            let (row, key) = clients::create(store.as_ref(), &name).await?;
            println!("created client {} ({})", row.name, row.id);
            println!("key (shown once, store it now): {}", key.expose());
        }
        ClientsCommand::List => {
            println!("{:<24} {:<22} {:<16} STATUS", "NAME", "ID", "KEY");
            for client in store.clients().await? {
                println!(
                    "{:<24} {:<22} {:<16} {}",
                    client.name,
                    client.id,
                    client.key_hint,
                    if client.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        ClientsCommand::Revoke { name } => {
            store.revoke_client(&name, crate::types::now_ms()).await?;
            println!("revoked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `90m`, `24h`, `7d` → milliseconds.
fn parse_span(text: &str) -> anyhow::Result<i64> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .with_context(|| format!("--since {text:?}: expected a number and m, h or d (e.g. 24h)"))?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("--since {text:?}: the unit must be m, h or d"),
    };
    Ok(n.saturating_mul(unit_ms))
}

fn dollars(nanos: i64) -> String {
    format!("{:.6}", nanos as f64 / 1e9)
}

async fn usage(config: Config, args: UsageArgs) -> anyhow::Result<ExitCode> {
    use crate::store::{Bucket, GroupBy, RollupQuery};
    let group_by = match args.by.as_str() {
        "model" => GroupBy::Model,
        "credential" => GroupBy::Credential,
        "client" => GroupBy::Client,
        "none" => GroupBy::None,
        other => bail!("--by {other:?}: expected model, credential, client or none"),
    };
    let span = parse_span(&args.since)?;
    let (stores, _vault) = app::open_store(&config).await?;
    let now = crate::types::now_ms();
    let rows = stores
        .ledger
        .rollup(&RollupQuery {
            since: Some(now - span),
            until: None,
            bucket: Bucket::Total,
            group_by,
        })
        .await?;
    println!(
        "{:<32} {:>9} {:>7} {:>12} {:>11} {:>12} {:>12} {:>12} {:>8} {:>8}",
        args.by.to_uppercase(),
        "REQUESTS",
        "ERRORS",
        "INPUT",
        "OUTPUT",
        "CACHE READ",
        "CACHE WRITE",
        "COST USD",
        "P50 MS",
        "P95 MS"
    );
    let mut total_cost = 0;
    let mut unpriced = 0;
    for row in &rows {
        let errors = row.requests
            - row.outcome_count(crate::accounting::RequestOutcome::Success)
            - row.outcome_count(crate::accounting::RequestOutcome::ClientError);
        let name = row
            .group_name
            .as_deref()
            .or(row.group.as_deref())
            .filter(|g| !g.is_empty())
            .unwrap_or("-");
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        println!(
            "{:<32} {:>9} {:>7} {:>12} {:>11} {:>12} {:>12} {:>12} {:>8} {:>8}",
            name,
            row.requests,
            errors,
            row.input_tokens,
            row.output_tokens,
            row.cache_read_tokens,
            row.cache_write_tokens(),
            dollars(row.cost_nanos),
            ms(row.p50_latency_ms()),
            ms(row.p95_latency_ms()),
        );
        total_cost += row.cost_nanos;
        unpriced += row.unpriced_requests;
    }
    if rows.is_empty() {
        println!("(no requests in the last {})", args.since);
    } else {
        println!("total cost {} USD", dollars(total_cost));
    }
    if unpriced > 0 {
        println!(
            "{unpriced} request(s) used a model with no price: add it under [pricing.models] to cost them"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn mock_upstream(args: MockArgs) -> anyhow::Result<ExitCode> {
    let _log = telemetry::init(&config::LogConfig {
        format: config::LogFormat::Text,
        level: "info".into(),
    });
    let keys = if args.keys.is_empty() {
        demo::mock_keys()
    } else {
        args.keys
            .iter()
            .map(|spec| demo::parse_mock_key(spec))
            .collect::<anyhow::Result<_>>()?
    };
    let names: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
    let mock = keyloop_mock::MockUpstream::bind(
        args.listen,
        keyloop_mock::MockConfig {
            keys,
            record_calls: args.record,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "simulated Anthropic API on {} (keys: {})",
        mock.url(),
        names.join(", ")
    );
    println!("inject failures with POST {}/_mock/scenario", mock.url());
    shutdown_signal().await;
    mock.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
