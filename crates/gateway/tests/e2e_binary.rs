//! The real binary: configure it with the CLI, serve through it, stop it, and refuse a wrong
//! master key.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use keyloop_mock::{MockConfig, MockKey, MockUpstream};

const SECRET: &str = "sk-ant-api03-binary-test-secret-000000000000";

fn keyloop(dir: &Path, master_key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyloop"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYLOOP_STORAGE__DATA_DIR", dir)
        .env("KEYLOOP_MASTER_KEY", master_key)
        .env("KEYLOOP_SERVER__LISTEN", "127.0.0.1:0")
        .env("KEYLOOP_ADMIN__LISTEN", "127.0.0.1:0")
        .env("KEYLOOP_LOG__FORMAT", "json");
    command
}

fn run(command: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `keyloop serve` that has said where it listens.
struct Served {
    child: Child,
    addr: String,
    admin_addr: String,
    /// What it wrote on stderr that is not a log line (the admin token banner).
    banner: String,
}

/// Starts `keyloop serve` and reads its log until it says where it listens.
fn serve(mut command: Command) -> Served {
    let mut child = command
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = String::new();
    let (addr, admin_addr) = loop {
        let line = lines
            .next()
            .expect("the server logs before exiting")
            .unwrap();
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            banner.push_str(&line);
            banner.push('\n');
            continue;
        };
        if entry["message"] == "keyloop is listening" {
            break (
                entry["addr"].as_str().unwrap().to_owned(),
                entry["admin_addr"].as_str().unwrap().to_owned(),
            );
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        addr,
        admin_addr,
        banner,
    }
}

#[tokio::test]
async fn configure_serve_and_stop_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let master = hex::encode([7u8; 32]);
    let mock = MockUpstream::start(MockConfig {
        keys: vec![MockKey::new("only", SECRET)],
        ..Default::default()
    })
    .await
    .unwrap();

    let (ok, stdout, stderr) = run(
        keyloop(dir.path(), &master).args(["keys", "add", "only", "--group", "org-a"]),
        Some(SECRET),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("added only"), "{stdout}");
    assert!(!stdout.contains(SECRET), "the secret is never printed");

    let (ok, stdout, _) = run(keyloop(dir.path(), &master).args(["keys", "list"]), None);
    assert!(ok);
    assert!(
        stdout.contains("only") && stdout.contains("org-a"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET));

    let (ok, stdout, stderr) = run(
        keyloop(dir.path(), &master).args(["clients", "create", "ci"]),
        None,
    );
    assert!(ok, "{stderr}");
    let client_key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .expect("the key is printed once")
        .to_owned();

    let mut command = keyloop(dir.path(), &master);
    command.env("KEYLOOP_UPSTREAM__BASE_URL", mock.url());
    let Served {
        mut child, addr, ..
    } = serve(command);
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/messages"))
        .header("x-api-key", &client_key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &serde_json::json!({"model": "claude-sonnet-5-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.call_count("only"), 1);

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    // The same store under another master key: refused, with a reason, without secrets.
    let (ok, _, stderr) = run(
        keyloop(dir.path(), &hex::encode([8u8; 32])).arg("serve"),
        None,
    );
    assert!(!ok);
    assert!(stderr.contains("master key"), "{stderr}");
    assert!(!stderr.contains(SECRET));
    mock.shutdown().await;
}

#[test]
fn check_config_names_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[pool]\nstrategy = \"fastest\"\n").unwrap();
    let (ok, _, stderr) = run(
        keyloop(dir.path(), "").args(["check-config", file.to_str().unwrap()]),
        None,
    );
    assert!(!ok);
    assert!(stderr.contains("pool.strategy"), "{stderr}");
    assert!(stderr.contains("fastest"), "{stderr}");

    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    let (ok, stdout, stderr) = run(
        keyloop(dir.path(), "").args(["check-config", file.to_str().unwrap()]),
        None,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");
}

/// Answers `GET /admin/api/session` with this bearer token: the status code.
async fn admin_status(admin_addr: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{admin_addr}/admin/api/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_generated_admin_token_is_shown_once_stored_hashed_and_a_reset_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let master = hex::encode([9u8; 32]);
    let served = serve(keyloop(dir.path(), &master));
    // Its stderr is a pipe, not a terminal: the token goes to an owner-only file, never to the
    // log stream.
    assert!(!served.banner.contains("kla_"), "{}", served.banner);
    let file = dir.path().join("admin-token");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.starts_with("kla_"), "{token}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    assert_eq!(admin_status(&served.admin_addr, &token).await, 200);
    assert_eq!(admin_status(&served.admin_addr, "kla_guess").await, 401);
    let db = std::fs::read(dir.path().join("keyloop.db")).unwrap();
    let wal = std::fs::read(dir.path().join("keyloop.db-wal")).unwrap_or_default();
    let plain = token.as_bytes();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain),
            "the admin token is stored in clear"
        );
    }

    let (ok, new_token, stderr) = run(
        keyloop(dir.path(), &master).args(["admin", "reset-token"]),
        None,
    );
    assert!(ok, "{stderr}");
    let new_token = new_token.trim().to_owned();
    assert!(new_token.starts_with("kla_") && new_token != token);
    // The running server re-reads the digest on its refresh tick (every 5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while admin_status(&served.admin_addr, &new_token).await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reset never took over"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(admin_status(&served.admin_addr, &token).await, 401);
    let mut child = served.child;
    child.kill().unwrap();
    child.wait().unwrap();

    // A restart neither prints a token again nor makes a new one.
    let again = serve(keyloop(dir.path(), &master));
    assert!(!again.banner.contains("kla_"), "{}", again.banner);
    assert_eq!(admin_status(&again.admin_addr, &new_token).await, 200);
    let mut child = again.child;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_credential_disabled_just_before_a_kill_stays_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let master = hex::encode([9u8; 32]);
    let bad = "sk-ant-api03-binary-test-revoked-00000000000";
    let mock = MockUpstream::start(MockConfig {
        keys: vec![MockKey::new("revoked", bad), MockKey::new("good", SECRET)],
        ..Default::default()
    })
    .await
    .unwrap();
    mock.set_chaos("revoked", keyloop_mock::Scenario::Unauthorized, 1.0);
    for (name, secret) in [("revoked", bad), ("good", SECRET)] {
        let (ok, _, stderr) = run(
            keyloop(dir.path(), &master).args(["keys", "add", name]),
            Some(secret),
        );
        assert!(ok, "{stderr}");
    }
    let (_, stdout, _) = run(
        keyloop(dir.path(), &master).args(["clients", "create", "ci"]),
        None,
    );
    let client_key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .unwrap()
        .to_owned();
    let serve_it = || {
        let mut command = keyloop(dir.path(), &master);
        command.env("KEYLOOP_UPSTREAM__BASE_URL", mock.url());
        serve(command)
    };
    let http = reqwest::Client::new();
    let Served {
        mut child, addr, ..
    } = serve_it();
    while mock.call_count("revoked") == 0 {
        let response = http
            .post(format!("http://{addr}/v1/messages"))
            .header("x-api-key", &client_key)
            .header("anthropic-version", "2023-06-01")
            .json(
                &serde_json::json!({"model": "claude-sonnet-5-5", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Killed the moment the answer is in: the 401's transition must already be on disk.
    child.kill().unwrap();
    child.wait().unwrap();

    let Served {
        mut child, addr, ..
    } = serve_it();
    let status: serde_json::Value = http
        .get(format!("http://{addr}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revoked = status["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "revoked")
        .unwrap();
    assert_eq!(revoked["state"], "disabled", "{revoked}");
    child.kill().unwrap();
    child.wait().unwrap();
    mock.shutdown().await;
}

#[tokio::test]
async fn a_kill_during_an_oauth_refresh_leaves_the_token_family_valid() {
    let dir = tempfile::tempdir().unwrap();
    let master = hex::encode([6u8; 32]);
    let access = "sk-ant-oat01-binary-test-access-0000000000";
    let seed = "sk-ant-ort01-binary-test-refresh-000000000";
    let mock = MockUpstream::start(MockConfig {
        keys: vec![MockKey::new("max", access).with_refresh_token(seed)],
        ..Default::default()
    })
    .await
    .unwrap();
    let config = dir.path().join("keyloop.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\noauth-token-url = \"{}/v1/oauth/token\"\n\
             [[keys]]\nname = \"max\"\nsecret = {access:?}\nrefresh-token = {seed:?}\n\
             token-expires = \"2020-01-01T00:00:00Z\"\n",
            mock.url()
        ),
    )
    .unwrap();
    let (_, stdout, _) = run(
        keyloop(dir.path(), &master).args(["clients", "create", "ci"]),
        None,
    );
    let client_key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .unwrap()
        .to_owned();
    let serve_it = || {
        let mut command = keyloop(dir.path(), &master);
        command
            .env("KEYLOOP_UPSTREAM__BASE_URL", mock.url())
            .arg("--config")
            .arg(&config);
        serve(command)
    };
    let ask = |addr: String| {
        let client_key = client_key.clone();
        async move {
            reqwest::Client::new()
                .post(format!("http://{addr}/v1/messages"))
                .header("x-api-key", &client_key)
                .header("anthropic-version", "2023-06-01")
                .json(
                    &serde_json::json!({"model": "claude-sonnet-5-5", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}]}),
                )
                .send()
                .await
        }
    };

    // The refresh is under way (the endpoint holds its answer) when the process is killed.
    mock.set_token_endpoint_delay(std::time::Duration::from_secs(60));
    let Served {
        mut child, addr, ..
    } = serve_it();
    let pending = tokio::spawn(ask(addr));
    mock.wait_for_token_calls("max", 1).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "the killed gateway never answered"
    );

    mock.set_token_endpoint_delay(std::time::Duration::ZERO);
    let Served {
        mut child, addr, ..
    } = serve_it();
    for _ in 0..2 {
        let response = ask(addr.clone()).await.unwrap();
        assert_eq!(response.status(), 200, "the family is still valid");
    }
    assert_eq!(
        mock.token_calls("max"),
        2,
        "one refresh after the restart, kept after it"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    mock.shutdown().await;
}
