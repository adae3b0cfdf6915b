//! The command line: `serve`, `check-config`, `keys …`, `clients …`, `mock-upstream`, `demo`.
//! Commands that change credentials or clients write to the store; a running server picks the
//! change up within a few seconds.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::admin::auth::Actor;
use crate::config::{self, Config};
use crate::keyring::{self, NewKey};
use crate::store::Store;
use crate::types::{KeyKind, Secret};
use crate::vault::Vault;
use crate::{admin, app, clients, demo, telemetry};

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
    /// The admin surface: `reset-token` makes a new admin token.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Summarise usage from the ledger: requests, tokens, cost and latency per group.
    Usage(UsageArgs),
    /// Run the simulated Anthropic API (for trying keyloop without real keys).
    MockUpstream(MockArgs),
    /// Start a simulated upstream, keyloop in front of it, and light traffic: watch /status.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Make a new admin token, print it once and keep only its digest. A running server
    /// switches to it within five seconds; a token set in the config (admin.token) wins.
    ResetToken,
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
    /// Add credentials from a CSV file, reporting on every row.
    ///
    /// The header row names the columns, in any order: name and secret are required; kind,
    /// priority, weight, max_concurrent, group and enabled are optional (an exported file
    /// imports as it is). Every row is reported as valid, duplicate (its name or secret is
    /// already stored, or on an earlier row) or malformed (with the reason); the valid rows are
    /// added together in one transaction and the others are skipped.
    Import(ImportKeys),
    /// Write the credentials as CSV (secrets left out unless --with-secrets).
    ///
    /// Columns: name,kind,secret,masked,priority,weight,max_concurrent,group,enabled,source,
    /// created_at. A cell a spreadsheet would run as a formula gets a leading ', which import
    /// removes again.
    Export(ExportKeys),
}

#[derive(Args)]
#[command(
    after_help = "Exit status: 0 when every row was valid (and added, unless --dry-run); \
    1 when some row was a duplicate or malformed (the valid rows are still added, unless \
    --dry-run); 2 when nothing was imported because the file as a whole was refused (unreadable, \
    empty, not UTF-8, over 4 MiB or 10,000 rows, a missing or unknown column) or a name was \
    added by someone else meanwhile."
)]
struct ImportKeys {
    /// The CSV file.
    file: PathBuf,
    /// Check and report every row; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct ExportKeys {
    /// Fill the secret column. The output then unlocks every credential: keep it safe.
    #[arg(long)]
    with_secrets: bool,
    /// Write to this file instead of standard output (created with mode 0600 when it holds
    /// secrets).
    #[arg(long)]
    output: Option<PathBuf>,
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
    /// Requests per second this credential may take (burst limit).
    #[arg(long)]
    rps: Option<u32>,
    /// Requests per UTC day.
    #[arg(long)]
    daily_requests: Option<u64>,
    /// Tokens per UTC day.
    #[arg(long)]
    daily_tokens: Option<u64>,
    /// When the prepaid credits expire (`2027-01-31` or an RFC 3339 time).
    #[arg(long)]
    credits_expire: Option<String>,
    /// An OAuth credential's refresh token, read from this environment variable (never argv):
    /// the access token is then kept fresh.
    #[arg(long)]
    refresh_token_env: Option<String>,
    /// When the OAuth access token expires (RFC 3339).
    #[arg(long)]
    token_expires: Option<String>,
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
        Command::Admin(AdminCommand::ResetToken) => {
            let config = load(cli.config.as_deref())?;
            let (stores, _) = app::open_store(&config).await?;
            let token = admin::auth::reset_token(stores.store.as_ref()).await?;
            audit(
                stores.store.as_ref(),
                "admin.reset_token",
                None,
                serde_json::Value::Null,
            )
            .await?;
            if config.admin_token.is_some() {
                eprintln!("note: admin.token is set in the config and wins over this token");
            }
            println!("{}", token.expose());
            Ok(ExitCode::SUCCESS)
        }
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

/// Every change made from the command line goes to the audit log, like the API's.
async fn audit(
    store: &dyn Store,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    admin::audit::append(store, &Actor::cli(), action, target, detail)
        .await
        .with_context(|| format!("{action} is done, but its audit entry could not be written"))
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
            let when = |flag: &str, value: Option<&str>| {
                value
                    .map(|v| {
                        crate::config::moment(v).with_context(|| {
                            format!("{flag}: expected a date or an RFC 3339 time, got {v:?}")
                        })
                    })
                    .transpose()
            };
            let credits_expire_at = when("--credits-expire", add.credits_expire.as_deref())?;
            let oauth = match add.refresh_token_env.as_deref() {
                None => None,
                Some(var) => Some(crate::config::OAuthGrant {
                    refresh_token: Secret::new(
                        std::env::var(var)
                            .with_context(|| format!("--refresh-token-env: {var} is not set"))?,
                    ),
                    expires_at: when("--token-expires", add.token_expires.as_deref())?,
                }),
            };
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
                    caps: crate::pool::Caps {
                        rps: add.rps.filter(|n| *n > 0),
                        daily_requests: add.daily_requests.filter(|n| *n > 0),
                        daily_tokens: add.daily_tokens.filter(|n| *n > 0),
                    },
                    credits_expire_at,
                    oauth,
                },
                "cli",
            )
            .await?;
            audit(
                store.as_ref(),
                "credential.add",
                Some(&row.name),
                serde_json::json!({"id": row.id, "kind": row.kind, "masked": row.secret_hint}),
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
            let row = store.delete_key(&name).await?;
            audit(
                store.as_ref(),
                "credential.remove",
                Some(&name),
                serde_json::json!({"id": row.id}),
            )
            .await?;
            println!("removed {name}");
        }
        KeysCommand::Enable { name } => {
            let row = store.set_key_enabled(&name, true).await?;
            audit(
                store.as_ref(),
                "credential.enable",
                Some(&name),
                serde_json::json!({"id": row.id}),
            )
            .await?;
            println!("enabled {name}");
        }
        KeysCommand::Disable { name } => {
            let row = store.set_key_enabled(&name, false).await?;
            audit(
                store.as_ref(),
                "credential.disable",
                Some(&name),
                serde_json::json!({"id": row.id}),
            )
            .await?;
            println!("disabled {name}");
        }
        KeysCommand::Import(args) => return import_keys(store.as_ref(), &vault, &args).await,
        KeysCommand::Export(args) => return export_keys(store.as_ref(), &vault, &args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `keys import`: the report as a table, then what was written; the exit status says how it went.
async fn import_keys(
    store: &dyn Store,
    vault: &Vault,
    args: &ImportKeys,
) -> anyhow::Result<ExitCode> {
    let imported = match read_capped(&args.file, keyring::csv::MAX_FILE_BYTES) {
        Ok(bytes) => keyring::csv::import(store, vault, &bytes, args.dry_run, "import")
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    let report = match imported {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {}: {e:#}", args.file.display());
            eprintln!("nothing was imported");
            return Ok(ExitCode::from(2));
        }
    };
    println!(
        "{:>5}  {:<24} {:<10} {:<8} {:<16} REASON",
        "LINE", "NAME", "STATUS", "KIND", "MASKED"
    );
    for row in &report.rows {
        println!(
            "{:>5}  {:<24} {:<10} {:<8} {:<16} {}",
            row.line,
            row.name.as_deref().unwrap_or("-"),
            row.status.as_str(),
            row.kind.map_or("-", KeyKind::as_str),
            row.masked.as_deref().unwrap_or("-"),
            row.reason.as_deref().unwrap_or("")
        );
    }
    let counts = report.counts();
    println!(
        "{} valid, {} duplicate, {} malformed",
        counts.valid, counts.duplicate, counts.malformed
    );
    if args.dry_run {
        println!("dry run: nothing written");
    } else {
        let added = if report.applied { counts.valid } else { 0 };
        audit(
            store,
            "credential.import",
            None,
            serde_json::json!({
                "added": added,
                "duplicate": counts.duplicate,
                "malformed": counts.malformed,
            }),
        )
        .await
        .context("the import is done, but its audit entry could not be written")?;
        println!("added {added} credentials");
    }
    Ok(if counts.duplicate + counts.malformed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads at most `limit + 1` bytes, so an oversized file is refused without loading all of it.
fn read_capped(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `keys export`: CSV to standard output or a file, and an audit entry saying whether it held
/// secrets.
async fn export_keys(
    store: &dyn Store,
    vault: &Vault,
    args: &ExportKeys,
) -> anyhow::Result<ExitCode> {
    let csv = keyring::csv::export(store, vault, args.with_secrets).await?;
    match &args.output {
        Some(path) => write_export(path, &csv, args.with_secrets)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&csv)?,
    }
    audit(
        store,
        "credential.export",
        None,
        serde_json::json!({ "with_secrets": args.with_secrets }),
    )
    .await
    .context("the export is written, but its audit entry could not be")?;
    if let Some(path) = &args.output {
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes an export; one holding secrets is readable by its owner only, even if the file
/// already existed with a wider mode.
fn write_export(path: &Path, csv: &[u8], private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(csv)?;
    file.sync_all()
}

async fn clients(config: Config, command: ClientsCommand) -> anyhow::Result<ExitCode> {
    let (stores, _vault) = app::open_store(&config).await?;
    let store = stores.store;
    match command {
        ClientsCommand::Create { name } => {
            let (row, key) = clients::create(store.as_ref(), &name, None).await?;
            audit(
                store.as_ref(),
                "client.create",
                Some(&row.name),
                serde_json::json!({"id": row.id, "key_hint": row.key_hint}),
            )
            .await?;
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
            let row = store.revoke_client(&name, crate::types::now_ms()).await?;
            audit(
                store.as_ref(),
                "client.revoke",
                Some(&name),
                serde_json::json!({"id": row.id}),
            )
            .await?;
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
