//! `keyloop demo`: a simulated Anthropic API with four fake credentials (one steady, one flaky,
//! one tightly rate-limited, one OAuth token), keyloop in front of it, and light traffic — so a
//! newcomer sees rotation, cooldowns and recovery in `/status` within a minute, without any
//! real key.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use keyloop_mock::{Limits, MockConfig, MockKey, MockUpstream, Scenario, Subscription};

use crate::config::{self, Config};
use crate::types::now_ms;
use crate::{app, clients, telemetry};

#[derive(Args)]
pub struct DemoArgs {
    /// Where keyloop listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the panel, the admin API and /metrics listen.
    #[arg(long, env = "KEYLOOP_ADMIN__LISTEN", default_value = "127.0.0.1:8081")]
    admin_listen: SocketAddr,
    /// The admin token to sign in to the panel with; a fresh one is made when unset.
    #[arg(long, env = "KEYLOOP_ADMIN__TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Requests per second sent by the traffic generator (0 for none).
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
}

pub fn mock_keys() -> Vec<MockKey> {
    let key = |name: &str, secret: &str, rpm: Option<u32>| {
        MockKey::new(name, secret).with_limits(Limits {
            rpm,
            ..Limits::default()
        })
    };
    vec![
        key("steady", "sk-ant-api03-demo-steady-000000000000A1b2", None),
        key("flaky", "sk-ant-api03-demo-flaky-0000000000000C3d4", None),
        key(
            "limited",
            "sk-ant-api03-demo-limited-00000000000E5f6",
            Some(20),
        ),
        // A subscription whose five-hour window fills in a few minutes of demo traffic.
        key("oauth", "sk-ant-oat01-demo-oauth-0000000000000G7h8", None).with_subscription(
            Subscription {
                five_hour: 400,
                seven_day: 4_000,
                seven_day_opus: Some(150),
                ..Subscription::default()
            },
        ),
    ]
}

/// `NAME=SECRET` or `NAME=SECRET:RPM`.
pub fn parse_mock_key(spec: &str) -> anyhow::Result<MockKey> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("--key {spec:?}: expected NAME=SECRET[:RPM]"))?;
    let (secret, rpm) = match rest.rsplit_once(':') {
        Some((secret, rpm)) if rpm.chars().all(|c| c.is_ascii_digit()) && !rpm.is_empty() => {
            (secret, Some(rpm.parse()?))
        }
        _ => (rest, None),
    };
    Ok(MockKey::new(name, secret).with_limits(Limits {
        rpm,
        ..Limits::default()
    }))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let keys = mock_keys();
    let mut toml = String::new();
    for key in &keys {
        toml.push_str(&format!(
            "[[keys]]\nname = {:?}\nsecret = {:?}\nmax-concurrent = 8\n",
            key.name, key.secret
        ));
    }
    let mock = MockUpstream::start(MockConfig {
        keys,
        record_calls: false,
        ..Default::default()
    })
    .await?;
    mock.set_chaos("flaky", Scenario::ServerError, 0.5);

    let admin_token = args.admin_token.clone().unwrap_or_else(|| {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        format!("kla_demo_{}", hex::encode(bytes))
    });
    let data_dir = tempfile::tempdir()?;
    let file = data_dir.path().join("demo.toml");
    std::fs::write(&file, toml)?;
    let env: Vec<(String, String)> = vec![
        ("KEYLOOP_SERVER__LISTEN".into(), args.listen.to_string()),
        (
            "KEYLOOP_ADMIN__LISTEN".into(),
            args.admin_listen.to_string(),
        ),
        ("KEYLOOP_ADMIN__TOKEN".into(), admin_token.clone()),
        (
            "KEYLOOP_STORAGE__DATA_DIR".into(),
            data_dir.path().display().to_string(),
        ),
        ("KEYLOOP_UPSTREAM__BASE_URL".into(), mock.url()),
        // Short ladders so a cooldown and its recovery fit in a minute.
        (
            "KEYLOOP_POOL__RATE_LIMIT_LADDER_SECS".into(),
            "[10, 20, 40]".into(),
        ),
        (
            "KEYLOOP_POOL__SERVER_ERROR_LADDER_SECS".into(),
            "[5, 10]".into(),
        ),
    ];
    let config = Config::load(Some(&file), &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let _log = telemetry::init(&config::LogConfig {
        format: config::LogFormat::Text,
        level: "warn,keyloop::pool=info".into(),
    });
    let (stores, _) = app::open_store(&config).await?;
    let (_, client_key) = clients::create(stores.store.as_ref(), "demo", None).await?;
    drop(stores);
    let running = app::start(config).await?;
    let base = format!("http://{}", running.addr);
    println!("keyloop demo");
    println!("  gateway        {base}   (status: {base}/status)");
    println!("  panel          http://{}/admin/", running.admin_addr);
    println!("  admin token    {admin_token}");
    println!("  metrics        http://{}/metrics", running.admin_addr);
    println!("  upstream (sim) {}", mock.url());
    println!("  client key     {}", client_key.expose());
    println!(
        "  try:  ANTHROPIC_BASE_URL={base} ANTHROPIC_API_KEY={} claude",
        client_key.expose()
    );
    println!(
        "credentials: steady, flaky (half its answers are 500s), limited (20 requests/min), oauth. Ctrl-C stops.\n"
    );

    let token = running.shutdown_token();
    if args.rate > 0.0 {
        tokio::spawn(traffic(
            base.clone(),
            client_key.expose().clone(),
            args.rate,
            token.clone(),
        ));
    }
    tokio::spawn(report(running.pool.clone(), token.clone()));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = token.cancelled() => {}
    }
    running.shutdown().await;
    mock.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn traffic(base: String, key: String, rate: f64, stop: tokio_util::sync::CancellationToken) {
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        let stream = n.is_multiple_of(2);
        let body = serde_json::json!({
            "model": "claude-sonnet-5-5",
            "max_tokens": 256,
            "stream": stream,
            "metadata": {"user_id": format!("demo-user-{}", n % 5)},
            "messages": [{"role": "user", "content": format!("demo request {n}")}],
        });
        let request = http
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .header("x-client-id", format!("demo-agent-{}", n % 3))
            .json(&body);
        tokio::spawn(async move {
            if let Ok(response) = request.send().await {
                let _ = response.bytes().await;
            }
        });
    }
}

async fn report(pool: crate::pool::KeyPool, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let line: Vec<String> = pool
            .snapshot(now)
            .iter()
            .map(|k| {
                let until = k
                    .cooldown_until
                    .map(|u| format!(" {}s", ((u - now).max(0) + 999) / 1000))
                    .unwrap_or_default();
                format!(
                    "{}={}{} ({} req, {} err)",
                    k.name, k.state, until, k.requests, k.errors
                )
            })
            .collect();
        println!("{}", line.join("  "));
    }
}
