use std::sync::Arc;

use super::*;
use crate::store::{self, connect_sqlite};

const A: &str = "sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sk-ant-api03-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "sk-ant-api03-cccccccccccccccccccccccccccccccc";
const D: &str = "sk-ant-api03-dddddddddddddddddddddddddddddddd";
const E: &str = "sk-ant-api03-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const OAT: &str = "sk-ant-oat01-oooooooooooooooooooooooooooooooo";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    vault: Vault,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = connect_sqlite(&dir.path().join("k.db")).await.unwrap();
    Fixture {
        _dir: dir,
        store,
        vault: Vault::new(&Secret::new([3u8; 32])),
    }
}

impl Fixture {
    async fn add(&self, name: &str, secret: &str) -> KeyRow {
        let row = keyring::row(&self.vault, &key(name, secret), "cli");
        self.store.insert_key(&row).await.unwrap();
        row
    }

    async fn import(&self, csv: &str, dry_run: bool) -> ImportReport {
        import(
            self.store.as_ref(),
            &self.vault,
            csv.as_bytes(),
            dry_run,
            "import",
        )
        .await
        .unwrap()
    }

    async fn refused(&self, csv: &[u8]) -> Error {
        match import(self.store.as_ref(), &self.vault, csv, true, "import").await {
            Err(keyring::Error::Csv(e)) => e,
            Err(other) => panic!("expected a whole-file error, got {other}"),
            Ok(report) => panic!("expected a whole-file error, got {report:?}"),
        }
    }

    async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .keys()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        names
    }

    async fn stored(&self, name: &str) -> KeyRow {
        self.store
            .keys()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.name == name)
            .unwrap()
    }

    fn secret_of(&self, row: &KeyRow) -> String {
        self.vault
            .open_string(&row.secret_sealed)
            .unwrap()
            .expose()
            .clone()
    }
}

fn key(name: &str, secret: &str) -> NewKey {
    NewKey {
        name: name.into(),
        secret: Secret::new(secret.into()),
        kind: None,
        priority: 0,
        weight: 1,
        max_concurrent: None,
        group: None,
        enabled: true,
        caps: crate::pool::Caps::default(),
        credits_expire_at: None,
        oauth: None,
    }
}

/// (line, status, reason) of every row, for compact assertions.
fn outline(report: &ImportReport) -> Vec<(u64, RowStatus, Option<&str>)> {
    report
        .rows
        .iter()
        .map(|r| (r.line, r.status, r.reason.as_deref()))
        .collect()
}

#[tokio::test]
async fn valid_rows_report_kind_and_mask_and_a_dry_run_writes_nothing() {
    let f = fixture().await;
    let report = f
        .import(&format!("name,secret\nmain,{A}\n\nteam,{OAT}\n"), true)
        .await;
    assert!(!report.applied);
    assert_eq!(
        report.rows,
        vec![
            RowReport {
                line: 2,
                name: Some("main".into()),
                status: RowStatus::Valid,
                reason: None,
                kind: Some(KeyKind::ApiKey),
                masked: Some(mask_secret(A)),
            },
            RowReport {
                line: 4,
                name: Some("team".into()),
                status: RowStatus::Valid,
                reason: None,
                kind: Some(KeyKind::OAuth),
                masked: Some(mask_secret(OAT)),
            },
        ]
    );
    assert_eq!(
        report.counts(),
        Counts {
            valid: 2,
            duplicate: 0,
            malformed: 0
        }
    );
    assert!(f.names().await.is_empty(), "a dry run writes nothing");
}

#[tokio::test]
async fn oauth_tokens_are_detected_and_a_given_kind_wins() {
    let f = fixture().await;
    let report = f
        .import(
            &format!("name,secret,kind\ndetected,{OAT},\ngiven,{A},OAuth\nplain,{B},api-key\n"),
            false,
        )
        .await;
    let kinds: Vec<_> = report.rows.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            Some(KeyKind::OAuth),
            Some(KeyKind::OAuth),
            Some(KeyKind::ApiKey)
        ]
    );
    assert_eq!(f.stored("detected").await.kind, "oauth");
    assert_eq!(f.stored("given").await.kind, "oauth");
    assert_eq!(f.stored("plain").await.kind, "api-key");
}

#[tokio::test]
async fn header_is_case_insensitive_in_any_order_with_optional_columns() {
    let f = fixture().await;
    let report = f
        .import(
            &format!(
                "Secret, NAME ,Kind,Priority,Weight,Max-Concurrent,group,ENABLED\n\
                 {A},main,oauth,3,2,8,org-a,no\n"
            ),
            false,
        )
        .await;
    assert!(report.applied, "{report:?}");
    let row = f.stored("main").await;
    assert_eq!(
        (
            row.kind.as_str(),
            row.priority,
            row.weight,
            row.max_concurrent,
            row.group_label.as_deref(),
            row.enabled,
            row.source.as_str()
        ),
        ("oauth", 3, 2, Some(8), Some("org-a"), false, "import")
    );
    assert_eq!(f.secret_of(&row), A);
}

#[tokio::test]
async fn duplicates_name_the_credential_or_line_they_repeat() {
    let f = fixture().await;
    f.add("main", A).await;
    let csv = format!(
        "name,secret,priority\n\
         main,{B},\n\
         other,{A},\n\
         fresh,{C},\n\
         fresh,{D},\n\
         again,{C},\n\
         later,{E},x\n\
         later,{E},\n"
    );
    let report = f.import(&csv, true).await;
    assert_eq!(
        outline(&report),
        vec![
            (2, RowStatus::Duplicate, Some("name already exists")),
            (
                3,
                RowStatus::Duplicate,
                Some("same secret as credential \"main\"")
            ),
            (4, RowStatus::Valid, None),
            (5, RowStatus::Duplicate, Some("name already used on line 4")),
            (6, RowStatus::Duplicate, Some("same secret as line 4")),
            (
                7,
                RowStatus::Malformed,
                Some("priority \"x\" is not a whole number (0 to 4294967295)")
            ),
            (8, RowStatus::Valid, None),
        ],
        "a malformed row reserves neither its name nor its secret"
    );
    assert_eq!(report.rows[0].masked, Some(mask_secret(B)));
    assert_eq!(
        report.counts(),
        Counts {
            valid: 2,
            duplicate: 4,
            malformed: 1
        }
    );
}

#[tokio::test]
async fn malformed_rows_say_why_without_the_secret() {
    let f = fixture().await;
    let secret = |n: u32| format!("sk-ant-api03-secret-{n:02}-zzzzzzzzzzzzzzzzzzzz");
    let spaced = "sk-ant-api03-has a-space-zzzzzzzzzzzzzzzz";
    let long_name = "n".repeat(MAX_NAME_CHARS + 1);
    let rows = [
        format!(",{},,,,,,", secret(1)),
        "x2,,,,,,,".to_owned(),
        format!("x3,{spaced},,,,,,"),
        format!("x4,{},foo,,,,,", secret(4)),
        format!("x5,{},,x,,,,", secret(5)),
        format!("x6,{},,,0,,,", secret(6)),
        format!("x7,{},,,,0,,", secret(7)),
        format!("x8,{},,,,,,maybe", secret(8)),
        format!("x9,{}", secret(9)),
        format!("{long_name},{},,,,,,", secret(10)),
        format!("x11,{0},{0},{0},,,,", secret(11)),
        format!("x12,\"{},,,,,,", secret(12)),
        format!("x13,{},,-1,,,,", secret(13)),
        format!("x14,{},,,,,\"a\u{7}b\",", secret(14)),
        format!("x15,{}é,,,,,,", secret(15)),
    ];
    let csv = format!(
        "name,secret,kind,priority,weight,max_concurrent,group,enabled\n{}\n",
        rows.join("\n")
    );
    let report = f.import(&csv, false).await;
    assert!(!report.applied);
    assert!(f.names().await.is_empty());
    let reasons: Vec<&str> = report
        .rows
        .iter()
        .map(|r| {
            assert_eq!(r.status, RowStatus::Malformed, "{r:?}");
            r.reason.as_deref().unwrap()
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            "name is empty",
            "secret is empty",
            "secret contains whitespace",
            "kind \"foo\" is not api-key or oauth",
            "priority \"x\" is not a whole number (0 to 4294967295)",
            "weight 0 is below 1",
            "max_concurrent 0 is below 1 (leave it empty for no limit)",
            "enabled \"maybe\" is not true or false",
            "wrong number of fields: 2, header has 8",
            "name longer than 128 characters",
            "kind (a 43-character value) is not api-key or oauth; \
             priority (a 43-character value) is not a whole number (0 to 4294967295)",
            "unbalanced quotes",
            "priority \"-1\" is not a whole number (0 to 4294967295)",
            "group contains a control character",
            "secret contains a character that is not printable ASCII",
        ]
    );
    assert_eq!(report.rows[0].name, None);
    assert_eq!(report.rows[0].masked, Some(mask_secret(&secret(1))));
    assert_eq!(report.rows[3].kind, None, "an invalid kind is not guessed");
    assert_eq!(report.rows[4].kind, Some(KeyKind::ApiKey));
    let json = serde_json::to_string(&report).unwrap();
    for n in 1..=15 {
        assert!(!json.contains(&secret(n)), "secret {n} leaked: {json}");
    }
    assert!(!json.contains(spaced));
}

#[tokio::test]
async fn a_broken_quote_spoils_only_its_own_line() {
    let f = fixture().await;
    let report = f
        .import(
            &format!("name,secret\nfirst,\"{A}\nsecond,{B}\n\"third\",\"{C}\"\n"),
            true,
        )
        .await;
    assert_eq!(
        outline(&report),
        vec![
            (2, RowStatus::Malformed, Some("unbalanced quotes")),
            (3, RowStatus::Valid, None),
            (4, RowStatus::Valid, None),
        ]
    );
}

#[tokio::test]
async fn apply_adds_every_valid_row_at_once_and_skips_the_rest() {
    let f = fixture().await;
    let main = f.add("main", A).await;
    let csv = format!(
        "name,secret,group\n\
         one,{B},org-b\n\
         main,{C},\n\
         bad,,\n\
         two,{D},\n"
    );
    let report = f.import(&csv, false).await;
    assert!(report.applied);
    assert_eq!(
        report.counts(),
        Counts {
            valid: 2,
            duplicate: 1,
            malformed: 1
        }
    );
    assert_eq!(f.names().await, ["main", "one", "two"]);
    assert_eq!(
        f.stored("main").await,
        main,
        "the stored credential is untouched"
    );
    let one = f.stored("one").await;
    assert_eq!(
        (
            f.secret_of(&one),
            one.group_label.as_deref(),
            one.source.as_str()
        ),
        (B.to_owned(), Some("org-b"), "import")
    );
    assert_eq!(f.secret_of(&f.stored("two").await), D);
}

#[tokio::test]
async fn a_file_without_valid_rows_writes_nothing() {
    let f = fixture().await;
    f.add("main", A).await;
    let report = f
        .import(&format!("name,secret\nmain,{B}\nbad,\n"), false)
        .await;
    assert!(!report.applied);
    assert_eq!(f.names().await, ["main"]);
}

#[tokio::test]
async fn a_name_taken_meanwhile_leaves_the_store_unchanged() {
    let f = fixture().await;
    let csv = format!("name,secret\nearly,{A}\nlate,{B}\n");
    let plan = check(f.store.as_ref(), &f.vault, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(plan.keys.len(), 2);
    f.add("late", C).await;
    let error = apply(f.store.as_ref(), &f.vault, plan, "import")
        .await
        .unwrap_err();
    match &error {
        keyring::Error::Store(store::Error::Duplicate { name, .. }) => assert_eq!(name, "late"),
        other => panic!("expected a duplicate, got {other}"),
    }
    assert!(error.to_string().contains("\"late\""), "{error}");
    assert_eq!(
        f.names().await,
        ["late"],
        "nothing from the file was written"
    );
    assert_eq!(f.secret_of(&f.stored("late").await), C);
}

#[test]
fn formula_cells_get_one_quote_and_lose_exactly_one() {
    for (plain, exported) in [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("sk-ant-api03-x", "sk-ant-api03-x"),
        ("'quoted", "'quoted"),
        ("'", "'"),
        ("", ""),
    ] {
        assert_eq!(neutralise(plain), exported, "{plain:?}");
        assert_eq!(restore(exported), plain, "{exported:?}");
    }
}

#[tokio::test]
async fn export_neutralises_formulas_and_import_restores_them() {
    let f = fixture().await;
    let mut risky = key("=HYPERLINK(\"x\")", "-sk-leading-dash-secret-0000000000");
    risky.group = Some("@evil".into());
    f.store
        .insert_key(&keyring::row(&f.vault, &risky, "cli"))
        .await
        .unwrap();
    let csv = String::from_utf8(export(f.store.as_ref(), &f.vault, true).await.unwrap()).unwrap();
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
    assert!(
        csv.contains(",'-sk-leading-dash-secret-0000000000,"),
        "{csv}"
    );
    assert!(csv.contains(",'@evil,"), "{csv}");

    let other = fixture().await;
    let report = other.import(&csv, false).await;
    assert!(report.applied, "{report:?}");
    let row = other.stored("=HYPERLINK(\"x\")").await;
    assert_eq!(row.group_label.as_deref(), Some("@evil"));
    assert_eq!(other.secret_of(&row), "-sk-leading-dash-secret-0000000000");
}

#[tokio::test]
async fn export_with_secrets_round_trips_into_an_empty_store() {
    let f = fixture().await;
    f.add("main", A).await;
    let mut tuned = key("team, \"ops\"", OAT);
    tuned.kind = Some(KeyKind::OAuth);
    tuned.priority = 2;
    tuned.weight = 5;
    tuned.max_concurrent = Some(4);
    tuned.group = Some("org-b".into());
    tuned.enabled = false;
    f.store
        .insert_key(&keyring::row(&f.vault, &tuned, "config"))
        .await
        .unwrap();
    let csv = export(f.store.as_ref(), &f.vault, true).await.unwrap();

    let empty = fixture().await;
    let report = empty
        .import(std::str::from_utf8(&csv).unwrap(), false)
        .await;
    assert!(report.applied);
    assert_eq!(report.counts().valid, 2, "{report:?}");
    let shape = |row: &KeyRow, secret: String| {
        (
            row.name.clone(),
            row.kind.clone(),
            secret,
            row.secret_hint.clone(),
            row.priority,
            row.weight,
            row.max_concurrent,
            row.group_label.clone(),
            row.enabled,
        )
    };
    for name in ["main", "team, \"ops\""] {
        let before = f.stored(name).await;
        let after = empty.stored(name).await;
        assert_eq!(
            shape(&after, empty.secret_of(&after)),
            shape(&before, f.secret_of(&before))
        );
        assert_eq!(after.source, "import");
    }
}

#[tokio::test]
async fn export_without_secrets_leaves_the_secret_column_empty() {
    let f = fixture().await;
    f.add("main", A).await;
    let csv = String::from_utf8(export(f.store.as_ref(), &f.vault, false).await.unwrap()).unwrap();
    assert!(!csv.contains(A));
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        EXPORT_COLUMNS
    );
    let record = reader.records().next().unwrap().unwrap();
    assert_eq!(&record[0], "main");
    assert_eq!(&record[1], "api-key");
    assert_eq!(&record[2], "");
    assert_eq!(&record[3], mask_secret(A));
    assert_eq!(&record[8], "true");
    assert_eq!(&record[15], "cli");
    let created: jiff::Timestamp = record[16].parse().unwrap();
    assert_eq!(created.as_millisecond(), f.stored("main").await.created_at);

    let report = fixture().await.import(&csv, true).await;
    assert_eq!(
        outline(&report),
        vec![(2, RowStatus::Malformed, Some("secret is empty"))],
        "an export without secrets cannot be imported by mistake"
    );
}

#[tokio::test]
async fn whole_files_are_refused_with_a_reason() {
    let f = fixture().await;
    assert!(matches!(f.refused(b"").await, Error::Empty));
    assert!(matches!(
        f.refused(b"\xef\xbb\xbf\n  \r\n").await,
        Error::Empty
    ));
    assert!(matches!(f.refused(b"name,secret\n").await, Error::NoRows));
    assert!(matches!(
        f.refused(b"name,secret\n,\n").await,
        Error::NoRows
    ));
    assert!(matches!(
        f.refused(b"name,secret\nx,\xff\n").await,
        Error::NotUtf8 { line: 2 }
    ));
    assert!(matches!(
        f.refused(&vec![b'a'; MAX_FILE_BYTES + 1]).await,
        Error::TooLarge { .. }
    ));
    assert!(matches!(
        f.refused(b"name\nx\n").await,
        Error::MissingColumn { column: "secret" }
    ));
    assert!(matches!(
        f.refused(b"name,secret,name\nx,y,z\n").await,
        Error::RepeatedColumn { column: "name" }
    ));
    assert!(matches!(
        f.refused(b"name,\"secret\nx,y\n").await,
        Error::BrokenHeader { line: 1 }
    ));

    let unknown = f.refused(b"name,secret,prority\nx,y,1\n").await;
    assert!(
        unknown.to_string().contains("unknown column \"prority\""),
        "{unknown}"
    );

    let headerless = f.refused(format!("main,{A}\n").as_bytes()).await;
    assert!(matches!(headerless, Error::NoHeader { line: 1 }));
    assert!(!headerless.to_string().contains(A), "{headerless}");
    let secret_header = f.refused(format!("name,{A}\n").as_bytes()).await;
    assert!(
        secret_header
            .to_string()
            .contains("unknown column (a 45-character value)"),
        "{secret_header}"
    );
    assert!(!secret_header.to_string().contains(A), "{secret_header}");
}

#[tokio::test]
async fn the_row_limit_is_inclusive() {
    let f = fixture().await;
    let rows = |n: usize| {
        let mut csv = String::from("name,secret\n");
        for i in 0..n {
            csv.push_str(&format!("k{i},sk-ant-api03-row-{i:08}-zzzzzzzzzzzz\n"));
        }
        csv
    };
    let report = f.import(&rows(MAX_ROWS), true).await;
    assert_eq!(report.counts().valid, MAX_ROWS);
    assert!(matches!(
        f.refused(rows(MAX_ROWS + 1).as_bytes()).await,
        Error::TooManyRows { limit: MAX_ROWS }
    ));
}

#[tokio::test]
async fn caps_expiries_and_a_refresh_token_travel_through_import_and_export() {
    let f = fixture().await;
    let refresh = "sk-ant-ort01-csv-refresh-token-000000000000";
    let csv = format!(
        "name,secret,rps,daily_requests,daily_tokens,credits_expire,refresh_token,token_expires\n\
         max,{OAT},3,100,50000,2027-01-31,{refresh},2026-12-05T00:00:00Z\n\
         bad,{A},0,,,soon,sk ant,\n"
    );
    let report = f.import(&csv, false).await;
    assert_eq!(report.rows[0].status, RowStatus::Valid);
    assert_eq!(report.rows[1].status, RowStatus::Malformed);
    let reason = report.rows[1].reason.clone().unwrap();
    assert!(reason.contains("rps 0 is below 1"), "{reason}");
    assert!(reason.contains("credits_expire"), "{reason}");
    assert!(
        reason.contains("refresh_token contains whitespace"),
        "{reason}"
    );
    assert!(
        !reason.contains("sk ant"),
        "a refresh token is never quoted: {reason}"
    );

    let stored = f.stored("max").await;
    assert_eq!(
        (stored.rps, stored.daily_requests, stored.daily_tokens),
        (Some(3), Some(100), Some(50_000))
    );
    assert_eq!(stored.credits_expire_at, Some(1_801_353_600_000));
    assert_eq!(stored.token_expires_at, Some(1_796_428_800_000));
    let opened = f
        .vault
        .open_string(stored.refresh_sealed.as_deref().unwrap())
        .unwrap();
    assert_eq!(opened.expose(), refresh);

    let hidden =
        String::from_utf8(export(f.store.as_ref(), &f.vault, false).await.unwrap()).unwrap();
    assert!(
        !hidden.contains(refresh),
        "no refresh token without secrets"
    );
    assert!(hidden.contains("2027-01-31T00:00:00Z"), "{hidden}");
    let full = String::from_utf8(export(f.store.as_ref(), &f.vault, true).await.unwrap()).unwrap();
    assert!(
        full.contains(refresh),
        "the explicit export with secrets carries it"
    );
}
