use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_str(text: &str, vars: &[(&str, &str)]) -> Result<Config, Error> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    Config::load(Some(file.path()), &env(vars))
}

#[test]
fn defaults_need_no_file() {
    let config = Config::load(None, &env(&[])).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert!(config.require_client_key);
    assert_eq!(config.pool.strategy, pool::Strategy::RoundRobin);
    assert_eq!(
        config.pool.rate_limit_ladder_ms,
        vec![60_000, 300_000, 1_500_000, 3_600_000]
    );
    assert_eq!(config.database_path(), PathBuf::from("./data/keyloop.db"));
}

#[test]
fn environment_overrides_the_file() {
    let config = load_str(
        "[server]\nlisten = \"127.0.0.1:9000\"\n",
        &[
            ("KEYLOOP_SERVER__LISTEN", "0.0.0.0:7000"),
            ("KEYLOOP_POOL__STICKY", "true"),
            ("KEYLOOP_UPSTREAM__MAX_ATTEMPTS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:7000");
    assert!(config.pool.sticky);
    assert_eq!(config.upstream.max_attempts, 5);
}

#[test]
fn unknown_field_is_named() {
    let err = load_str("[server]\nlisen = \"x\"\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("server.lisen"), "{text}");
    assert!(text.contains("unknown field"), "{text}");
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
        ("[pool]\nstrategy = \"random\"\n", "pool.strategy"),
        ("[upstream]\nbase-url = \"ftp://x\"\n", "upstream.base-url"),
        (
            "[upstream]\nbase-url = \"https://api.anthropic.com/v1\"\n",
            "upstream.base-url",
        ),
        ("[upstream]\nbase-url = \"https://\"\n", "upstream.base-url"),
        (
            "[upstream]\nbase-url = \"http://api.example com\"\n",
            "upstream.base-url",
        ),
        (
            "[upstream]\nbase-url = \"https://proxy.example/anthropic?x=1\"\n",
            "upstream.base-url",
        ),
        ("[upstream]\nmax-attempts = 0\n", "upstream.max-attempts"),
        (
            "[server]\nbody-limit-bytes = \"big\"\n",
            "server.body-limit-bytes",
        ),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        (
            "[[keys]]\nname = \"a\"\nsecret = \"env:MISSING_VAR\"\n",
            "keys[0].secret",
        ),
        (
            "[[keys]]\nname = \"a\"\nsecret = \"s1\"\n[[keys]]\nname = \"a\"\nsecret = \"s2\"\n",
            "keys[1].name",
        ),
        (
            "[[keys]]\nname = \"a\"\nsecret = \"s\"\nkind = \"token\"\n",
            "keys[0].kind",
        ),
    ];
    for (text, field) in cases {
        let err = load_str(text, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with(field),
            "{text:?} gave {err:?}, expected it to name {field}"
        );
    }
}

#[test]
fn syntax_error_names_the_file() {
    let err = load_str("[server\n", &[]).unwrap_err();
    assert!(matches!(err, Error::Syntax { .. }), "{err}");
}

#[test]
fn key_secret_from_env_and_kind_detected() {
    let config = load_str(
        "[[keys]]\nname = \"oauth-1\"\nsecret = \"env:TOKEN\"\n[[keys]]\nname = \"api-1\"\nsecret = \"sk-ant-api03-abc\"\n",
        &[("TOKEN", "sk-ant-oat01-xyz")],
    )
    .unwrap();
    assert_eq!(config.keys[0].kind, KeyKind::OAuth);
    assert_eq!(config.keys[0].secret.expose(), "sk-ant-oat01-xyz");
    assert_eq!(config.keys[1].kind, KeyKind::ApiKey);
    assert!(!format!("{:?}", config.keys[0]).contains("xyz"));
}

#[test]
fn a_credential_declares_its_caps_credit_expiry_and_oauth_grant() {
    let config = load_str(
        r#"
[[keys]]
name = "max"
secret = "env:ACCESS"
rps = 5
daily-requests = 1000
daily-tokens = 2000000
credits-expire = "2027-01-31"
refresh-token = "env:REFRESH"
token-expires = "2026-12-04T20:00:00Z"
"#,
        &[
            ("ACCESS", "sk-ant-oat01-access"),
            ("REFRESH", "sk-ant-ort01-refresh"),
        ],
    )
    .unwrap();
    let key = &config.keys[0];
    assert_eq!(key.caps.rps, Some(5));
    assert_eq!(key.caps.daily_requests, Some(1000));
    assert_eq!(key.caps.daily_tokens, Some(2_000_000));
    // 2027-01-31T00:00:00Z
    assert_eq!(key.credits_expire_at, Some(1_801_353_600_000));
    let grant = key.oauth.as_ref().unwrap();
    assert_eq!(grant.refresh_token.expose(), "sk-ant-ort01-refresh");
    // 2026-12-04T20:00:00Z
    assert_eq!(grant.expires_at, Some(1_796_414_400_000));

    let err = load_str(
        "[[keys]]\nname = \"k\"\nsecret = \"s\"\ncredits-expire = \"soon\"\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("keys[0].credits-expire"), "{err}");
    let err = load_str("[[keys]]\nname = \"k\"\nsecret = \"s\"\nrps = 0\n", &[]).unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn timeouts_have_upper_bounds() {
    for (text, field) in [
        (
            "[server]\nrequest-timeout-secs = 9223372036854775807\n",
            "server.request-timeout-secs",
        ),
        (
            "[server]\nshutdown-grace-secs = 99999999\n",
            "server.shutdown-grace-secs",
        ),
        (
            "[upstream]\nconnect-timeout-secs = 86400\n",
            "upstream.connect-timeout-secs",
        ),
        (
            "[upstream]\nstream-idle-timeout-secs = 90000\n",
            "upstream.stream-idle-timeout-secs",
        ),
        (
            "[upstream]\nfirst-event-hold-ms = 99999999999\n",
            "upstream.first-event-hold-ms",
        ),
    ] {
        let err = load_str(text, &[]).unwrap_err().to_string();
        assert!(err.starts_with(field) && err.contains("at most"), "{err}");
    }
    assert!(load_str("[server]\nrequest-timeout-secs = 3600\n", &[]).is_ok());
}
