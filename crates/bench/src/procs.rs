//! The processes under test: the simulated upstream and keyloop, each started from the release
//! binary, pinned to a core with `taskset` when the machine has two, and read through `/proc`
//! for CPU time and resident memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The three credentials every run uses; the failover scenario makes the first one 429.
pub const KEYS: [(&str, &str); 3] = [
    ("k1", "sk-ant-api03-bench-one-00000000000000000000"),
    ("k2", "sk-ant-api03-bench-two-00000000000000000000"),
    ("k3", "sk-ant-api03-bench-three-000000000000000000"),
];

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

pub struct Proc {
    child: Child,
    pub pid: u32,
}

impl Proc {
    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The command name may hold spaces; fields after its closing parenthesis are fixed.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat, i.e. 12 and 13 after the name.
        (ticks(11) + ticks(12)) / TICKS_PER_SEC
    }

    /// Resident set size, kB.
    pub fn rss_kb(&self) -> u64 {
        rss_of(self.pid)
    }
}

/// A process's resident set size, kB (0 once it is gone).
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where each process runs. With two or more cores: the upstream and the load generator on
/// core 0, keyloop alone on core 1.
#[derive(Clone, Copy, Debug)]
pub struct Pinning {
    pub upstream: Option<usize>,
    pub gateway: Option<usize>,
    pub load: Option<usize>,
}

impl Pinning {
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if cores >= 2 && taskset {
            Self {
                upstream: Some(0),
                gateway: Some(1),
                load: Some(0),
            }
        } else {
            Self {
                upstream: None,
                gateway: None,
                load: None,
            }
        }
    }

    pub fn describe(&self) -> String {
        match (self.upstream, self.gateway, self.load) {
            (Some(u), Some(g), Some(l)) => {
                format!("upstream on core {u}, load generator on core {l}, keyloop on core {g}")
            }
            _ => "not pinned (one core, or no taskset)".into(),
        }
    }
}

/// `program args…`, under `taskset -c core` when pinned.
pub fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(core.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Proc> {
    let log = std::fs::File::create(log)?;
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the process")?;
    Ok(Proc {
        pid: child.id(),
        child,
    })
}

/// Waits until `url` answers at all (any status), polling: the server gives no other signal.
pub async fn wait_listening(url: &str, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if http.get(url).send().await.is_ok() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!("{url} did not answer within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn start_upstream(
    bin: &Path,
    port: u16,
    pinning: Pinning,
    work: &Path,
) -> anyhow::Result<Proc> {
    let mut command = pinned(pinning.upstream, bin);
    command
        .arg("mock-upstream")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    for (name, secret) in KEYS {
        command.arg("--key").arg(format!("{name}={secret}"));
    }
    let proc = spawn(command, &work.join("upstream.log"))?;
    wait_listening(
        &format!("http://127.0.0.1:{port}/_mock/stats"),
        Duration::from_secs(10),
    )
    .await?;
    Ok(proc)
}

/// A started keyloop and how long it took from spawn to serving its first proxied request.
pub struct Gateway {
    pub proc: Proc,
    pub first_served: Duration,
}

pub async fn start_gateway(
    bin: &Path,
    port: u16,
    upstream_port: u16,
    pinning: Pinning,
    work: &Path,
    name: &str,
) -> anyhow::Result<Gateway> {
    let data: PathBuf = work.join(format!("data-{name}"));
    let _ = std::fs::remove_dir_all(&data);
    let config = work.join(format!("{name}.toml"));
    let mut toml =
        String::from("[security]\nrequire-client-key = false\n[log]\nlevel = \"warn\"\n");
    for (key, secret) in KEYS {
        toml.push_str(&format!(
            "[[keys]]\nname = \"{key}\"\nsecret = \"{secret}\"\n"
        ));
    }
    std::fs::write(&config, toml)?;
    let mut command = pinned(pinning.gateway, bin);
    command
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("KEYLOOP_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("KEYLOOP_ADMIN__LISTEN", "127.0.0.1:0")
        .env("KEYLOOP_ADMIN__TOKEN", "bench-admin-token-0123456789")
        .env("KEYLOOP_STORAGE__DATA_DIR", &data)
        .env(
            "KEYLOOP_UPSTREAM__BASE_URL",
            format!("http://127.0.0.1:{upstream_port}"),
        );
    let started = Instant::now();
    let proc = spawn(command, &work.join(format!("{name}.log")))?;
    // Served means a real answer to a real request, not just an open port.
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/messages");
    loop {
        let answered = http
            .post(&url)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(r#"{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .await;
        if answered.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!(
                "keyloop did not serve within 20 s; see {}",
                work.join(format!("{name}.log")).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Gateway {
        first_served: started.elapsed(),
        proc,
    })
}
