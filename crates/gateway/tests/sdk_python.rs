//! The official Anthropic Python SDK works through keyloop, changed only in base URL and key.
//! The SDK comes from PyPI (installed by the test script); without it the test says why it
//! skips, unless `KEYLOOP_REQUIRE_SERVICES=1`, when its absence is a failure.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Harness, Options};

fn python() -> String {
    std::env::var("KEYLOOP_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn sdk_available() -> bool {
    Command::new(python())
        .args(["-c", "import anthropic"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_official_python_sdk_works_unchanged() {
    if !sdk_available() {
        let required = std::env::var("KEYLOOP_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the anthropic Python SDK is not installed for {}",
            python()
        );
        eprintln!("skipping: the anthropic Python SDK is not installed (pip install anthropic)");
        return;
    }
    let h = Harness::start(Options::default()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/anthropic_sdk_check.py");
    let base = h.base.clone();
    let key = h.client_key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .env("ANTHROPIC_BASE_URL", base)
            .env("ANTHROPIC_API_KEY", key)
            .env_remove("ANTHROPIC_AUTH_TOKEN")
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    h.shutdown().await;
}
