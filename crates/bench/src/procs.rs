//! The processes under test: the simulated upstream and keyloop, each started from the release
//! binary, and nginx as the reference proxy; pinned to a core with `taskset` when the machine
//! has two, and read through `/proc` for CPU time and resident memory.

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
    /// Stopped with SIGTERM and waited for rather than killed: nginx's master stops its worker
    /// on SIGTERM, where SIGKILL would leave the worker running, listening, on keyloop's core.
    terminate: bool,
}

impl Proc {
    /// User + system CPU seconds used so far by the process and its children.
    pub fn cpu_seconds(&self) -> f64 {
        family(self.pid).into_iter().map(cpu_seconds_of).sum()
    }

    /// Resident set size of the process and its children, kB.
    pub fn rss_kb(&self) -> u64 {
        rss_of(self.pid)
    }
}

/// The fields of `/proc/<pid>/stat` after the command name, which may hold spaces: the state
/// is `[0]`, the parent's pid `[1]`, utime and stime `[11]` and `[12]` (fields 3, 4, 14 and 15
/// of the whole line). Empty once the process is gone.
fn stat_fields(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_default()
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn cpu_seconds_of(pid: u32) -> f64 {
    let fields = stat_fields(pid);
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SEC
}

/// `pid` and its children, found by their parent pid in `/proc/*/stat` (the kernel may lack
/// `/proc/<pid>/task/*/children`). nginx's master forks its worker; keyloop and the upstream
/// have no children (`taskset` execs the program, keeping its pid).
fn family(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    let children = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&other| stat_fields(other).get(1) == Some(&parent));
    std::iter::once(pid).chain(children).collect()
}

/// The resident set size of a process and its children, kB (0 once it is gone). Pages the
/// children share with it (nginx's master and worker) are counted in each.
pub fn rss_of(pid: u32) -> u64 {
    family(pid)
        .into_iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.terminate {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
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
        terminate: false,
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
            .body(r#"{"model":"claude-sonnet-5-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#)
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

/// A started nginx, the reference proxy, and its version as `nginx -v` prints it.
pub struct Nginx {
    pub proc: Proc,
    pub version: String,
}

/// nginx as a plain reverse proxy in front of the upstream on `port`: one worker, keepalive
/// connections to the upstream, nothing buffered either way (streams pass as they come), no
/// access log; pinned to keyloop's core. Everything it writes stays in `work`.
pub async fn start_nginx(
    bin: &Path,
    port: u16,
    upstream_port: u16,
    pinning: Pinning,
    work: &Path,
) -> anyhow::Result<Nginx> {
    let help = Command::new(bin)
        .arg("-h")
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    // nginx prints its help to stderr, the version on the first line.
    let help = String::from_utf8_lossy(&help.stderr);
    let version = help
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("nginx version: "))
        .unwrap_or("nginx")
        .to_owned();
    if !help.contains("-e filename") {
        bail!("{version} has no -e flag (nginx 1.19.5 and later have)");
    }
    // The temp paths are compiled in under /var/lib/nginx and created at start: moved here.
    let temp = work.join("nginx-temp");
    std::fs::create_dir_all(&temp)?;
    let at = |dir: &Path, name: &str| dir.join(name).display().to_string();
    let pid = at(work, "nginx.pid");
    let (body, proxy, fastcgi, uwsgi, scgi) = (
        at(&temp, "client_body"),
        at(&temp, "proxy"),
        at(&temp, "fastcgi"),
        at(&temp, "uwsgi"),
        at(&temp, "scgi"),
    );
    let conf = format!(
        r#"daemon off;
master_process on;
worker_processes 1;
pid "{pid}";
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    tcp_nodelay on;
    client_body_temp_path "{body}";
    proxy_temp_path "{proxy}";
    fastcgi_temp_path "{fastcgi}";
    uwsgi_temp_path "{uwsgi}";
    scgi_temp_path "{scgi}";
    upstream messages {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://messages;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"#
    );
    let conf_path = work.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut command = pinned(pinning.gateway, bin);
    command
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(work)
        .arg("-e")
        .arg(work.join("nginx-error.log"));
    let mut proc = spawn(command, &work.join("nginx.log"))?;
    proc.terminate = true;
    // Through nginx to a path the upstream answers.
    let url = format!("http://127.0.0.1:{port}/_mock/stats");
    if let Err(e) = wait_listening(&url, Duration::from_secs(10)).await {
        // The work dir goes at the end of the run: quote nginx's last word.
        let log = std::fs::read_to_string(work.join("nginx-error.log")).unwrap_or_default();
        bail!(
            "{e}: {}",
            log.lines().last().unwrap_or("nothing in its error log")
        );
    }
    Ok(Nginx { proc, version })
}
