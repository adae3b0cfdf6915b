//! Builds the web panel from `ui/` into `$OUT_DIR/panel`, the folder `src/lib.rs` embeds.
//!
//! Where the files come from, first match wins:
//! 1. `KEYLOOP_PANEL_DIST=<dir>`: a prebuilt `vite build` output (packagers, a container's node
//!    stage) is copied as it is.
//! 2. Node ≥ 20.19 and npm on `PATH`: `npm ci` in `ui/` when `ui/node_modules` is missing or
//!    older than `ui/package-lock.json`, then `npx vite build --outDir $OUT_DIR/panel`.
//! 3. Otherwise a placeholder page that says how to get the real one, and a `cargo:warning`;
//!    the script then runs again on every build until it succeeds.
//!
//! `KEYLOOP_REQUIRE_PANEL=1` turns 3, and any failure of npm or Vite, into a build error, so a
//! release or CI build never ships the placeholder by accident. npm's output is shown only when
//! it fails.
//!
//! Concurrency: `ui/node_modules` lives in the source tree and is shared by every target dir, so
//! two cargo runs (a `cargo build` beside a `cargo clippy`, or two target dirs) can reach this
//! script at once. Each takes an exclusive lock on `ui/.build.lock` (std's advisory
//! `File::lock`) around the freshness check, `npm ci` and `vite build`: the second waits a few
//! seconds, then finds `node_modules` fresh and only runs Vite. Vite writes into this run's own
//! `OUT_DIR`, never into the source tree.
//!
//! Writing `node_modules` into the source tree bends Cargo's "write only to OUT_DIR" rule; the
//! alternative, a fresh `npm ci` into every `OUT_DIR`, costs half a minute per clean build.

use std::env;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

/// Vite 7's engine floor.
const MIN_NODE: (u32, u32) = (20, 19);

/// The inputs of the UI build, relative to `ui/`.
const UI_INPUTS: [&str; 6] = [
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

/// How many lines from the start and from the end of a failed command's output go into the
/// warnings (npm names the cause first, Vite last).
const OUTPUT_HEAD_LINES: usize = 25;
const OUTPUT_TAIL_LINES: usize = 40;

fn main() {
    println!("cargo:rerun-if-env-changed=KEYLOOP_PANEL_DIST");
    println!("cargo:rerun-if-env-changed=KEYLOOP_REQUIRE_PANEL");

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("panel");
    let ui_dir = manifest_dir.join("../../ui");
    let ui_dir = ui_dir.canonicalize().unwrap_or(ui_dir);
    let required = env::var("KEYLOOP_REQUIRE_PANEL").is_ok_and(|v| v == "1");

    for input in UI_INPUTS {
        println!("cargo:rerun-if-changed={}", ui_dir.join(input).display());
    }

    let outcome = match env::var_os("KEYLOOP_PANEL_DIST") {
        Some(dist) => {
            let dist = PathBuf::from(dist);
            println!("cargo:rerun-if-changed={}", dist.display());
            copy_prebuilt(&dist, &out_dir).map(|()| Built::Prebuilt)
        }
        None => build_with_vite(&ui_dir, &out_dir).map(|()| Built::Vite),
    };

    let built = match outcome {
        Ok(built) => built,
        Err(failure) => {
            if required {
                panic!(
                    "KEYLOOP_REQUIRE_PANEL=1 but the panel was not built: {}\n{}",
                    failure.reason, failure.output
                );
            }
            println!("cargo:warning=panel not built: {}", failure.reason);
            for line in excerpt(&failure.output) {
                println!("cargo:warning=  {line}");
            }
            println!(
                "cargo:warning=serving a placeholder at /admin/; install Node >= 20.19 and rebuild"
            );
            write_placeholder(&out_dir).expect("write the placeholder panel into OUT_DIR");
            // A path that never exists makes cargo run this script on every build, so the real
            // panel appears by itself once Node is installed.
            println!(
                "cargo:rerun-if-changed={}",
                out_dir.join(".retry-until-built").display()
            );
            Built::Placeholder
        }
    };
    println!("cargo:rustc-env=KEYLOOP_PANEL_BUILD={}", built.as_str());
}

/// Where the embedded files came from; `lib.rs` reads it through `env!`.
enum Built {
    Prebuilt,
    Vite,
    Placeholder,
}

impl Built {
    fn as_str(&self) -> &'static str {
        match self {
            Built::Prebuilt => "prebuilt",
            Built::Vite => "vite",
            Built::Placeholder => "placeholder",
        }
    }
}

/// Why the real panel could not be built, and what the failing tool printed (may be empty).
struct Failure {
    reason: String,
    output: String,
}

impl Failure {
    fn new(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            output: String::new(),
        }
    }

    fn io(what: &str, err: io::Error) -> Self {
        Failure::new(format!("{what}: {err}"))
    }
}

fn copy_prebuilt(dist: &Path, out_dir: &Path) -> Result<(), Failure> {
    if !dist.join("index.html").is_file() {
        return Err(Failure::new(format!(
            "KEYLOOP_PANEL_DIST={} has no index.html",
            dist.display()
        )));
    }
    reset_dir(out_dir).map_err(|e| Failure::io("clear OUT_DIR/panel", e))?;
    copy_dir(dist, out_dir).map_err(|e| Failure::io("copy KEYLOOP_PANEL_DIST", e))
}

fn build_with_vite(ui_dir: &Path, out_dir: &Path) -> Result<(), Failure> {
    if !ui_dir.join("package-lock.json").is_file() {
        return Err(Failure::new(format!(
            "no ui/package-lock.json at {}",
            ui_dir.display()
        )));
    }
    check_node()?;

    let lock = File::create(ui_dir.join(".build.lock"))
        .map_err(|e| Failure::io("create ui/.build.lock", e))?;
    lock.lock()
        .map_err(|e| Failure::io("lock ui/.build.lock", e))?;

    if node_modules_stale(ui_dir) {
        run(Command::new(npm()).arg("ci").current_dir(ui_dir), "npm ci")?;
    }
    let out_arg = out_dir
        .to_str()
        .ok_or_else(|| Failure::new("OUT_DIR is not valid UTF-8"))?;
    run(
        Command::new(npx())
            .args([
                "--no",
                "vite",
                "build",
                "--outDir",
                out_arg,
                "--emptyOutDir",
            ])
            .current_dir(ui_dir),
        "vite build",
    )?;
    // Dropping the file releases the lock; say so where it happens.
    drop(lock);

    if out_dir.join("index.html").is_file() {
        Ok(())
    } else {
        Err(Failure::new("vite build wrote no index.html"))
    }
}

/// `node --version` must answer at least [`MIN_NODE`]; `npm --version` must answer at all.
fn check_node() -> Result<(), Failure> {
    let output = Command::new(node())
        .arg("--version")
        .output()
        .map_err(|e| Failure::io("node is not on PATH", e))?;
    let version = String::from_utf8_lossy(&output.stdout);
    let found = parse_node_version(&version)
        .ok_or_else(|| Failure::new(format!("cannot read `node --version`: {version:?}")))?;
    if found < MIN_NODE {
        return Err(Failure::new(format!(
            "node {} is older than {}.{}",
            version.trim(),
            MIN_NODE.0,
            MIN_NODE.1
        )));
    }
    Command::new(npm())
        .arg("--version")
        .output()
        .map_err(|e| Failure::io("npm is not on PATH", e))
        .map(drop)
}

/// `"v20.20.2\n"` → `(20, 20)`.
fn parse_node_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// npm writes `node_modules/.package-lock.json` at the end of every install; it is missing
/// after an interrupted one and older than the lock file after a dependency change.
fn node_modules_stale(ui_dir: &Path) -> bool {
    let installed = modified(&ui_dir.join("node_modules/.package-lock.json"));
    let wanted = modified(&ui_dir.join("package-lock.json"));
    match (installed, wanted) {
        (Some(installed), Some(wanted)) => installed < wanted,
        _ => true,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs `command` with its output captured; a failure carries that output.
fn run(command: &mut Command, what: &str) -> Result<(), Failure> {
    command
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false");
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .map_err(|e| Failure::io(&format!("cannot start {what}"), e))?;
    if status.success() {
        return Ok(());
    }
    Err(Failure {
        reason: format!("{what} failed ({status})"),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    })
}

/// The lines worth reading: blank ones and npm's bare `npm error` spacers left out, the middle
/// of a long output elided.
fn excerpt(output: &str) -> Vec<&str> {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "npm error")
        .collect();
    if lines.len() <= OUTPUT_HEAD_LINES + OUTPUT_TAIL_LINES {
        return lines;
    }
    let mut kept = lines[..OUTPUT_HEAD_LINES].to_vec();
    kept.push("…");
    kept.extend_from_slice(&lines[lines.len() - OUTPUT_TAIL_LINES..]);
    kept
}

fn write_placeholder(out_dir: &Path) -> io::Result<()> {
    reset_dir(out_dir)?;
    fs::create_dir_all(out_dir.join("assets"))?;
    fs::write(out_dir.join("index.html"), PLACEHOLDER_HTML)?;
    fs::write(out_dir.join("assets/placeholder.css"), PLACEHOLDER_CSS)
}

fn reset_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn node() -> &'static str {
    "node"
}

fn npm() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

fn npx() -> &'static str {
    if cfg!(windows) { "npx.cmd" } else { "npx" }
}

const PLACEHOLDER_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keyloop — panel not built</title>
<link rel="stylesheet" href="./assets/placeholder.css">
</head>
<body data-panel="placeholder">
<main>
<h1>keyloop</h1>
<p>panel not built — install Node ≥ 20.19 and rebuild.</p>
<p>The admin API under <code>/admin/api/</code> works without it.</p>
</main>
</body>
</html>
"#;

const PLACEHOLDER_CSS: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:4rem auto;\
max-width:40rem;padding:0 1rem}code{font-size:.9em}\n";
