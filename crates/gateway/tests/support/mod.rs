//! Test harness: a simulated upstream and a real gateway, both on loopback port 0, talking real
//! HTTP. Each test gets its own data directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use keyloop::app::{self, Running};
use keyloop::config::Config;
use keyloop_mock::{MockConfig, MockKey, MockUpstream};

pub struct Harness {
    pub mock: MockUpstream,
    pub gateway: Running,
    pub dir: tempfile::TempDir,
    pub client_key: String,
    pub base: String,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    toml: String,
}

/// The admin token every harness gateway is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub fn key(name: &str) -> MockKey {
    let secret = if name.starts_with("oauth") {
        format!("sk-ant-oat01-{name}-test-secret-0000000000")
    } else {
        format!("sk-ant-api03-{name}-test-secret-0000000000")
    };
    MockKey::new(name, secret)
}

pub struct Options {
    pub keys: Vec<MockKey>,
    /// Extra `KEYLOOP_SECTION__FIELD` overrides.
    pub env: Vec<(&'static str, String)>,
    pub extra_toml: String,
    /// How long the simulated upstream takes to process a batch.
    pub batch_processing: std::time::Duration,
    /// `(key name, group)` labels.
    pub groups: Vec<(&'static str, &'static str)>,
    /// `(key name, TOML line)`: more fields of that key's `[[keys]]` entry.
    pub key_lines: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            keys: vec![key("alpha"), key("beta"), key("gamma")],
            env: Vec::new(),
            extra_toml: String::new(),
            batch_processing: std::time::Duration::ZERO,
            groups: Vec::new(),
            key_lines: Vec::new(),
        }
    }
}

fn keys_toml(keys: &[MockKey], groups: &[(&str, &str)], lines: &[(&str, String)]) -> String {
    keys.iter()
        .map(|k| {
            let group = groups
                .iter()
                .find(|(name, _)| *name == k.name)
                .map(|(_, g)| format!("group = {g:?}\n"))
                .unwrap_or_default();
            let extra: String = lines
                .iter()
                .filter(|(name, _)| *name == k.name)
                .map(|(_, line)| format!("{line}\n"))
                .collect();
            format!(
                "[[keys]]\nname = {:?}\nsecret = {:?}\n{group}{extra}",
                k.name, k.secret
            )
        })
        .collect()
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let mock = MockUpstream::start(MockConfig {
            keys: options.keys.clone(),
            batch_processing: options.batch_processing,
            ..Default::default()
        })
        .await
        .expect("mock upstream starts");
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("KEYLOOP_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("KEYLOOP_ADMIN__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "KEYLOOP_STORAGE__DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            ("KEYLOOP_UPSTREAM__BASE_URL".into(), mock.url()),
            (
                "KEYLOOP_UPSTREAM__OAUTH_TOKEN_URL".into(),
                format!("{}/v1/oauth/token", mock.url()),
            ),
            ("KEYLOOP_POOL__JITTER".into(), "0".into()),
            ("KEYLOOP_ADMIN__TOKEN".into(), ADMIN_TOKEN.into()),
        ];
        env.extend(options.env.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let toml = format!(
            "{}\n{}",
            options.extra_toml,
            keys_toml(&options.keys, &options.groups, &options.key_lines)
        );
        let gateway = start_gateway(dir.path(), &toml, &env).await;
        let (_, client_key) = keyloop::clients::create(gateway.store.as_ref(), "tests", None)
            .await
            .unwrap();
        let base = format!("http://{}", gateway.addr);
        Harness {
            mock,
            gateway,
            dir,
            client_key: client_key.expose().clone(),
            base,
            http: reqwest::Client::new(),
            env,
            toml,
        }
    }

    /// Stops the gateway and starts a new one on the same data directory.
    pub async fn restart(&mut self) {
        // The old one stops first: the new one must read what the old one saved on its way out.
        // Starting the new one first raced the old one's background persistence.
        self.gateway.shutdown_token().cancel();
        self.gateway.wait().await;
        self.gateway = start_gateway(self.dir.path(), &self.toml, &self.env).await;
        self.base = format!("http://{}", self.gateway.addr);
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.client_key)
            .header("anthropic-version", "2023-06-01")
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", &self.client_key)
            .header("anthropic-version", "2023-06-01")
    }

    /// A small valid Messages request.
    pub fn message(&self, stream: bool) -> reqwest::RequestBuilder {
        self.post("/v1/messages").json(&serde_json::json!({
            "model": "claude-sonnet-5-5",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": "Hello"}],
        }))
    }

    /// A call to the admin API (`/admin/api{path}`) with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("http://{}/admin/api{path}", self.gateway.admin_addr),
            )
            .bearer_auth(ADMIN_TOKEN)
    }

    /// GET on the admin API, expecting 200 and JSON.
    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let response = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn status(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/status", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn state_of(&self, name: &str) -> String {
        let status = self.status().await;
        status["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no credential {name} in {status}"))["state"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (without sleeping) until the named credential reaches `state`.
    pub async fn wait_for_state(&self, name: &str, state: &str) {
        let mut transitions = self.gateway.pool.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if self.state_of(name).await == state {
                return;
            }
            match tokio::time::timeout_at(deadline, transitions.recv()).await {
                Ok(_) => {}
                Err(_) => panic!("{name} never reached {state}: {}", self.status().await),
            }
        }
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.mock.shutdown().await;
    }
}

pub async fn start_gateway(dir: &Path, toml: &str, env: &[(String, String)]) -> Running {
    let file = dir.join("keyloop.toml");
    std::fs::write(&file, toml).unwrap();
    let config = Config::load(Some(&file), &env.to_vec()).expect("test config is valid");
    app::start(config).await.expect("gateway starts")
}

/// A fixture file from `crates/wire/tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wire/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Splits an SSE body into `(event name, data)` pairs.
pub fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_owned();
                }
            }
            (!event.is_empty() || !data.is_empty()).then_some((event, data))
        })
        .collect()
}
