//! The real binary: `keys import` (dry run, apply, exit statuses) and `keys export` (with and
//! without secrets), against a store in a temporary data directory.

use std::path::Path;
use std::process::Command;

const ALPHA: &str = "sk-ant-api03-alpha-cli-secret-000000000000";
const BETA: &str = "sk-ant-oat01-beta-cli-secret-1111111111111";
const GAMMA: &str = "sk-ant-api03-gamma-cli-secret-22222222222222";
const OTHER: &str = "sk-ant-api03-other-cli-secret-33333333333333";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `keyloop --config <dir>/keyloop.toml ARGS` with nothing from this process's environment
/// but PATH and a fixed master key.
fn keyloop(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keyloop"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYLOOP_MASTER_KEY", hex::encode([5u8; 32]))
        .arg("--config")
        .arg(dir.join("keyloop.toml"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_secret(run: &Run) {
    for secret in [ALPHA, BETA, GAMMA, OTHER] {
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
        assert!(!run.stderr.contains(secret), "{}", run.stderr);
    }
}

#[tokio::test]
async fn import_and_export_credentials_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("keyloop.toml"),
        format!("[storage]\ndata-dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mixed.csv"),
        format!(
            "name,secret,kind,group\n\
             alpha,{ALPHA},,org-a\n\
             beta,{BETA},,\n\
             broken,{OTHER},foo,\n\
             alpha,{OTHER},,\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clean.csv"),
        format!("NAME,SECRET\ngamma,{GAMMA}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("typo.csv"), "name,secret,prority\nx,y,1\n").unwrap();

    let dry = keyloop(dir.path(), &["keys", "import", "mixed.csv", "--dry-run"]);
    assert_eq!(dry.code, Some(1), "some rows are not valid: {}", dry.stderr);
    assert!(
        dry.stdout.contains("2 valid, 1 duplicate, 1 malformed"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("kind \"foo\" is not api-key or oauth"));
    assert!(dry.stdout.contains("name already used on line 2"));
    assert!(dry.stdout.contains("dry run: nothing written"));
    assert_no_secret(&dry);
    let list = keyloop(dir.path(), &["keys", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert!(!list.stdout.contains("alpha"), "a dry run writes nothing");

    let applied = keyloop(dir.path(), &["keys", "import", "mixed.csv"]);
    assert_eq!(applied.code, Some(1), "{}", applied.stderr);
    assert!(
        applied.stdout.contains("added 2 credentials"),
        "{}",
        applied.stdout
    );
    assert_no_secret(&applied);
    let list = keyloop(dir.path(), &["keys", "list"]);
    assert!(list.stdout.contains("alpha") && list.stdout.contains("org-a"));
    assert!(list.stdout.contains("beta") && !list.stdout.contains("broken"));

    let clean = keyloop(dir.path(), &["keys", "import", "clean.csv"]);
    assert_eq!(clean.code, Some(0), "{}{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.contains("added 1 credentials"));
    let again = keyloop(dir.path(), &["keys", "import", "clean.csv"]);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stdout.contains("name already exists"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("added 0 credentials"));

    let typo = keyloop(dir.path(), &["keys", "import", "typo.csv"]);
    assert_eq!(typo.code, Some(2));
    assert!(
        typo.stderr.contains("unknown column \"prority\""),
        "{}",
        typo.stderr
    );
    assert!(typo.stderr.contains("nothing was imported"));
    let missing = keyloop(dir.path(), &["keys", "import", "missing.csv"]);
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);

    let masked = keyloop(dir.path(), &["keys", "export"]);
    assert_eq!(masked.code, Some(0), "{}", masked.stderr);
    assert!(
        masked.stdout.starts_with(
            "name,kind,secret,masked,priority,weight,max_concurrent,group,enabled,rps,\
             daily_requests,daily_tokens,credits_expire,refresh_token,token_expires,source,\
             created_at\n"
        ),
        "{}",
        masked.stdout
    );
    assert!(
        masked
            .stdout
            .contains("alpha,api-key,,sk-ant-api03-…0000,0,1,,org-a,true,,,,,,,import,")
    );
    assert!(masked.stdout.contains("beta,oauth,,"));
    assert_no_secret(&masked);

    let full = keyloop(dir.path(), &["keys", "export", "--with-secrets"]);
    assert_eq!(full.code, Some(0), "{}", full.stderr);
    for secret in [ALPHA, BETA, GAMMA] {
        assert!(full.stdout.contains(secret), "{}", full.stdout);
    }

    let to_file = keyloop(
        dir.path(),
        &["keys", "export", "--with-secrets", "--output", "all.csv"],
    );
    assert_eq!(to_file.code, Some(0), "{}", to_file.stderr);
    assert_eq!(
        to_file.stdout, "",
        "the file gets the CSV, not standard output"
    );
    let written = std::fs::read_to_string(dir.path().join("all.csv")).unwrap();
    assert_eq!(written, full.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("all.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "an export with secrets is private");
    }

    let stores = keyloop::store::open_sqlite(&data.join("keyloop.db"))
        .await
        .unwrap();
    let actions: Vec<(String, String)> = stores
        .store
        .audit_page(100, None)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.action, e.detail.unwrap_or_default()))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "credential.import",
                r#"{"added":2,"duplicate":1,"malformed":1}"#
            ),
            (
                "credential.import",
                r#"{"added":1,"duplicate":0,"malformed":0}"#
            ),
            (
                "credential.import",
                r#"{"added":0,"duplicate":1,"malformed":0}"#
            ),
            ("credential.export", r#"{"with_secrets":false}"#),
            ("credential.export", r#"{"with_secrets":true}"#),
            ("credential.export", r#"{"with_secrets":true}"#),
        ]
        .map(|(a, d)| (a.to_owned(), d.to_owned())),
        "dry runs and refused files leave no audit entry"
    );
}
