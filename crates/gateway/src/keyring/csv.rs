//! Credentials in and out of a spreadsheet. `import` reads a CSV file, reports every row as
//! valid, duplicate or malformed, and adds the valid rows in one transaction; `export` writes the
//! store out in a form `import` takes back. Used by the CLI (`keyloop keys import|export`) and the
//! admin API.
//!
//! The format, and the reasons for it:
//! - A header row is required. Column names are case-insensitive (`-` or a space may stand for
//!   `_`), in any order: `name` and `secret` are required; `kind, priority, weight,
//!   max_concurrent, group, enabled, rps, daily_requests, daily_tokens, credits_expire,
//!   refresh_token, token_expires` are optional (dates as `2027-01-31` or RFC 3339; the refresh
//!   token is a secret like `secret`, written by `export` only with secrets). `masked, source, created_at`, which `export`
//!   writes, are accepted and ignored, so an exported file imports as it is (imported rows take
//!   the importer's source and a new creation time). Any other column refuses the whole file: a
//!   misspelt `prority` that was silently dropped would import every credential with the wrong
//!   priority.
//! - One line is one row. No column can hold a line break (names, groups and secrets are
//!   single-line), so a quote left open breaks only its own line, where a general CSV reader
//!   would swallow the rest of the file into one field.
//! - Cells are trimmed. Blank lines and rows whose cells are all empty (spreadsheets pad with
//!   them) are skipped.
//! - Limits: at most [`MAX_FILE_BYTES`] (4 MiB) and [`MAX_ROWS`] (10,000) rows; past either the
//!   whole file is refused, so one request cannot hold the store's write lock for long.
//! - Formulas: a spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, tab or CR as a
//!   formula, so `export` puts a `'` before every such cell, in every column. That includes
//!   secrets: no known vendor prefix starts with one of those characters, and `import` strips the
//!   one `'` again, so the round trip is exact. To keep it exact for values that themselves
//!   start with `'`, the rule counts leading `'`s: a cell that is any number of `'` followed by
//!   one of those characters gets one more `'` on export and loses one on import.
//! - Secrets stay secret: a reason or error never contains a secret-column value, and values of
//!   other columns are quoted only when short and not shaped like a credential (see [`Shown`]),
//!   in case a secret landed in the wrong column.
//! - Duplicates are judged against what will exist after the import: the store, and the valid
//!   rows above. A malformed or duplicate row reserves nothing, so fixing it and importing the
//!   file again reports it alone.

#[cfg(test)]
#[path = "csv_tests.rs"]
mod csv_tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::NewKey;
use crate::keyring;
use crate::store::{KeyRow, Store};
use crate::types::{KeyKind, Secret, mask_secret};
use crate::vault::Vault;

/// The largest file `import` reads. Generous: a credential row is under 300 bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The most credential rows one file may hold.
pub const MAX_ROWS: usize = 10_000;
/// The longest name (and group) accepted, in characters; they are shown in tables and logs.
pub const MAX_NAME_CHARS: usize = 128;

/// The columns `export` writes, in order.
pub const EXPORT_COLUMNS: [&str; 17] = [
    "name",
    "kind",
    "secret",
    "masked",
    "priority",
    "weight",
    "max_concurrent",
    "group",
    "enabled",
    "rps",
    "daily_requests",
    "daily_tokens",
    "credits_expire",
    "refresh_token",
    "token_expires",
    "source",
    "created_at",
];

/// Why a file was refused as a whole: nothing in it was checked against the store or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the file is empty: it needs a header row (name,secret,…) and a row per credential")]
    Empty,
    #[error("the file has a header row but no credential rows")]
    NoRows,
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the file has more than {limit} credential rows")]
    TooManyRows { limit: usize },
    #[error("the file is not UTF-8 text (line {line})")]
    NotUtf8 { line: u64 },
    #[error("the header row (line {line}) has unbalanced quotes")]
    BrokenHeader { line: u64 },
    #[error(
        "line {line} is not a header row: the first line must name the columns, \
         e.g. name,secret,kind,priority,weight,max_concurrent,group,enabled"
    )]
    NoHeader { line: u64 },
    /// `column` is as [`Shown`] renders it, never the raw cell.
    #[error(
        "unknown column {column} in the header; the columns are name, secret, kind, priority, \
         weight, max_concurrent, group, enabled, rps, daily_requests, daily_tokens, \
         credits_expire, refresh_token, token_expires (and masked, source, created_at, which are \
         ignored)"
    )]
    UnknownColumn { column: String },
    #[error("column {column:?} appears twice in the header")]
    RepeatedColumn { column: &'static str },
    #[error("the header has no {column:?} column")]
    MissingColumn { column: &'static str },
}

/// The outcome of one import: every row that was read, and whether the valid ones were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// True when the valid rows were added; false for a dry run or when no row was valid.
    pub applied: bool,
    pub rows: Vec<RowReport>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub valid: usize,
    pub duplicate: usize,
    pub malformed: usize,
}

impl ImportReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for row in &self.rows {
            match row.status {
                RowStatus::Valid => counts.valid += 1,
                RowStatus::Duplicate => counts.duplicate += 1,
                RowStatus::Malformed => counts.malformed += 1,
            }
        }
        counts
    }
}

/// The admin API's shape (`docs/admin-api.md`): `applied`, `counts`, `rows`.
impl Serialize for ImportReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut report = serializer.serialize_struct("ImportReport", 3)?;
        report.serialize_field("applied", &self.applied)?;
        report.serialize_field("counts", &self.counts())?;
        report.serialize_field("rows", &self.rows)?;
        report.end()
    }
}

/// One row of the file as the operator should see it: never its secret, only the mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowReport {
    /// The line in the file, counting from 1 (the header is usually line 1).
    pub line: u64,
    pub name: Option<String>,
    pub status: RowStatus,
    /// Why the row is a duplicate or malformed; None for a valid row.
    pub reason: Option<String>,
    /// The given kind, or the one detected from the secret.
    #[serde(serialize_with = "serialize_kind")]
    pub kind: Option<KeyKind>,
    pub masked: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Valid,
    Duplicate,
    Malformed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Duplicate => "duplicate",
            Self::Malformed => "malformed",
        }
    }
}

impl Serialize for RowStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

fn serialize_kind<S: serde::Serializer>(
    kind: &Option<KeyKind>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match kind {
        Some(kind) => serializer.serialize_str(kind.as_str()),
        None => serializer.serialize_none(),
    }
}

/// Checks every row of `csv` against the store and the rows above it, then, unless `dry_run`,
/// adds the valid rows in one transaction with `source` as their source. Duplicate and
/// malformed rows are skipped and reported, not fatal. A file that is unusable as a whole is
/// `keyring::Error::Csv`; a name added by someone else between the check and the write is
/// `keyring::Error::Store(store::Error::Duplicate)` naming it, and nothing is written.
pub async fn import(
    store: &dyn Store,
    vault: &Vault,
    csv: &[u8],
    dry_run: bool,
    source: &str,
) -> Result<ImportReport, keyring::Error> {
    let plan = check(store, vault, csv).await?;
    if dry_run {
        return Ok(plan.report(false));
    }
    apply(store, vault, plan, source).await
}

/// The rows checked, and the credentials that would be added.
struct Plan {
    rows: Vec<RowReport>,
    keys: Vec<NewKey>,
}

impl Plan {
    fn report(self, applied: bool) -> ImportReport {
        ImportReport {
            applied,
            rows: self.rows,
        }
    }
}

/// Reads the file and judges each row; writes nothing.
async fn check(store: &dyn Store, vault: &Vault, csv: &[u8]) -> Result<Plan, keyring::Error> {
    let table = Table::parse(csv)?;
    let mut taken = Taken::stored(vault, &store.keys().await?)?;
    let mut plan = Plan {
        rows: Vec::with_capacity(table.records.len()),
        keys: Vec::new(),
    };
    for record in table.records {
        let (report, key) = match record.cells {
            Ok(cells) => judge(record.line, &Cells::new(&table.columns, &cells), &mut taken),
            Err(reason) => (RowReport::malformed(record.line, reason), None),
        };
        plan.rows.push(report);
        plan.keys.extend(key);
    }
    Ok(plan)
}

/// Adds the plan's credentials in one transaction (or reports that there were none to add).
async fn apply(
    store: &dyn Store,
    vault: &Vault,
    plan: Plan,
    source: &str,
) -> Result<ImportReport, keyring::Error> {
    if plan.keys.is_empty() {
        return Ok(plan.report(false));
    }
    let rows: Vec<KeyRow> = plan
        .keys
        .iter()
        .map(|key| super::row(vault, key, source))
        .collect();
    store.insert_keys(&rows).await?;
    Ok(plan.report(true))
}

/// Writes every stored credential as CSV (columns [`EXPORT_COLUMNS`]), formula cells
/// neutralised. The `secret` column is empty unless `with_secrets`.
pub async fn export(
    store: &dyn Store,
    vault: &Vault,
    with_secrets: bool,
) -> Result<Vec<u8>, keyring::Error> {
    let mut out = ::csv::Writer::from_writer(Vec::new());
    write_record(&mut out, EXPORT_COLUMNS.iter().copied());
    for row in store.keys().await? {
        let kind = KeyKind::parse(&row.kind).ok_or_else(|| keyring::Error::Kind {
            name: row.name.clone(),
            kind: row.kind.clone(),
        })?;
        let secret = if with_secrets {
            vault
                .open_string(&row.secret_sealed)
                .map_err(|_| keyring::Error::Sealed {
                    name: row.name.clone(),
                })?
        } else {
            Secret::new(String::new())
        };
        let time = |ms: Option<i64>| {
            ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        let created_at = time(Some(row.created_at));
        let refresh = match (&row.refresh_sealed, with_secrets) {
            (Some(sealed), true) => {
                vault
                    .open_string(sealed)
                    .map_err(|_| keyring::Error::Sealed {
                        name: row.name.clone(),
                    })?
            }
            _ => Secret::new(String::new()),
        };
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let cells = [
            row.name.as_str(),
            kind.as_str(),
            secret.expose(),
            &row.secret_hint,
            &row.priority.to_string(),
            &row.weight.to_string(),
            &row.max_concurrent
                .map(|n| n.to_string())
                .unwrap_or_default(),
            row.group_label.as_deref().unwrap_or(""),
            if row.enabled { "true" } else { "false" },
            &number(row.rps),
            &number(row.daily_requests),
            &number(row.daily_tokens),
            &time(row.credits_expire_at),
            refresh.expose(),
            &time(row.token_expires_at),
            &row.source,
            &created_at,
        ];
        write_record(&mut out, cells.map(|c| neutralise(c).into_owned()));
    }
    Ok(out
        .into_inner()
        .expect("flushing a CSV writer into memory cannot fail"))
}

fn write_record(
    out: &mut ::csv::Writer<Vec<u8>>,
    cells: impl IntoIterator<Item = impl AsRef<[u8]>>,
) {
    out.write_record(cells)
        .expect("writing CSV into memory cannot fail");
}

/// First characters that make a spreadsheet evaluate a cell.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `=SUM(A1)` → `'=SUM(A1)`; `'=x` → `''=x`, so that [`restore`] can undo exactly one `'`.
fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Undoes [`neutralise`]: drops one leading `'` when what follows would be a formula.
fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// A cell value as a reason may show it: quoted when short and not shaped like a credential,
/// otherwise only described, so a secret pasted into the wrong column is not echoed back.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = self.0.chars().count();
        if chars <= 24 && !self.0.starts_with("sk-") {
            write!(f, "{:?}", self.0)
        } else {
            write!(f, "(a {chars}-character value)")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Secret,
    Kind,
    Priority,
    Weight,
    MaxConcurrent,
    Group,
    Enabled,
    Rps,
    DailyRequests,
    DailyTokens,
    CreditsExpire,
    RefreshToken,
    TokenExpires,
    /// Written by `export` for people to read; not imported.
    Informational,
}

impl Column {
    fn parse(header: &str) -> Option<Self> {
        let header = header.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Some(match header.as_str() {
            "name" => Self::Name,
            "secret" => Self::Secret,
            "kind" => Self::Kind,
            "priority" => Self::Priority,
            "weight" => Self::Weight,
            "max_concurrent" => Self::MaxConcurrent,
            "group" => Self::Group,
            "enabled" => Self::Enabled,
            "rps" => Self::Rps,
            "daily_requests" => Self::DailyRequests,
            "daily_tokens" => Self::DailyTokens,
            "credits_expire" => Self::CreditsExpire,
            "refresh_token" => Self::RefreshToken,
            "token_expires" => Self::TokenExpires,
            "masked" | "source" | "created_at" => Self::Informational,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Secret => "secret",
            Self::Kind => "kind",
            Self::Priority => "priority",
            Self::Weight => "weight",
            Self::MaxConcurrent => "max_concurrent",
            Self::Group => "group",
            Self::Enabled => "enabled",
            Self::Rps => "rps",
            Self::DailyRequests => "daily_requests",
            Self::DailyTokens => "daily_tokens",
            Self::CreditsExpire => "credits_expire",
            Self::RefreshToken => "refresh_token",
            Self::TokenExpires => "token_expires",
            Self::Informational => "informational",
        }
    }
}

/// The file split into its header and rows, before any row is judged.
struct Table {
    columns: Vec<Column>,
    records: Vec<Record>,
}

/// One line below the header: its cells, or why they could not be read.
struct Record {
    line: u64,
    cells: Result<Vec<String>, String>,
}

impl Table {
    fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(Error::TooLarge {
                limit: MAX_FILE_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
            line: line_of(&bytes[..e.valid_up_to()]),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = (1u64..)
            .zip(text.split('\n'))
            .map(|(n, line)| (n, line.strip_suffix('\r').unwrap_or(line)))
            .filter(|(_, line)| !line.trim().is_empty());
        let (header_line, header) = lines.next().ok_or(Error::Empty)?;
        let columns = header_columns(header_line, header)?;
        let mut records = Vec::new();
        for (line, text) in lines {
            let cells = split_line(text);
            if cells
                .as_ref()
                .is_ok_and(|c| c.iter().all(|c| c.trim().is_empty()))
            {
                continue;
            }
            if records.len() == MAX_ROWS {
                return Err(Error::TooManyRows { limit: MAX_ROWS });
            }
            records.push(Record { line, cells });
        }
        if records.is_empty() {
            return Err(Error::NoRows);
        }
        Ok(Self { columns, records })
    }
}

fn line_of(prefix: &[u8]) -> u64 {
    1 + prefix.iter().filter(|b| **b == b'\n').count() as u64
}

fn header_columns(line: u64, header: &str) -> Result<Vec<Column>, Error> {
    let cells = split_line(header).map_err(|_| Error::BrokenHeader { line })?;
    let parsed: Vec<Option<Column>> = cells.iter().map(|c| Column::parse(c)).collect();
    if parsed.iter().all(Option::is_none) {
        return Err(Error::NoHeader { line });
    }
    if let Some(unknown) = parsed.iter().position(Option::is_none) {
        return Err(Error::UnknownColumn {
            column: Shown(cells[unknown].trim()).to_string(),
        });
    }
    let columns: Vec<Column> = parsed.into_iter().flatten().collect();
    for (i, column) in columns.iter().enumerate() {
        if *column != Column::Informational && columns[..i].contains(column) {
            return Err(Error::RepeatedColumn {
                column: column.as_str(),
            });
        }
    }
    for required in [Column::Name, Column::Secret] {
        if !columns.contains(&required) {
            return Err(Error::MissingColumn {
                column: required.as_str(),
            });
        }
    }
    Ok(columns)
}

/// Splits one line into cells. The reason for a broken line never quotes the line.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    if line.bytes().filter(|b| *b == b'"').count() % 2 == 1 {
        return Err("unbalanced quotes".into());
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut record = ::csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(_) => Ok(record.iter().map(str::to_owned).collect()),
        Err(_) => Err("the line cannot be read as CSV".into()),
    }
}

/// A row's cells by column: trimmed, formula protection undone, empty when the column is absent.
struct Cells<'a> {
    by_column: Vec<(Column, &'a str)>,
    /// Set when the row's field count differs from the header's: (row's, header's).
    mismatch: Option<(usize, usize)>,
}

impl<'a> Cells<'a> {
    fn new(columns: &[Column], cells: &'a [String]) -> Self {
        Self {
            by_column: columns
                .iter()
                .zip(cells)
                .map(|(column, cell)| (*column, restore(cell.trim())))
                .collect(),
            mismatch: (cells.len() != columns.len()).then_some((cells.len(), columns.len())),
        }
    }

    fn get(&self, column: Column) -> &'a str {
        self.by_column
            .iter()
            .find(|(c, _)| *c == column)
            .map_or("", |(_, cell)| cell)
    }
}

/// Names and secrets that a new row must not repeat, and where each was seen first.
struct Taken {
    names: HashMap<String, Origin>,
    /// Plain secrets, only ever compared; the map is never printed.
    secrets: HashMap<String, Origin>,
}

enum Origin {
    Stored(String),
    Line(u64),
}

impl Taken {
    fn stored(vault: &Vault, rows: &[KeyRow]) -> Result<Self, keyring::Error> {
        let mut taken = Self {
            names: HashMap::new(),
            secrets: HashMap::new(),
        };
        for row in rows {
            let secret =
                vault
                    .open_string(&row.secret_sealed)
                    .map_err(|_| keyring::Error::Sealed {
                        name: row.name.clone(),
                    })?;
            taken
                .names
                .insert(row.name.clone(), Origin::Stored(row.name.clone()));
            taken
                .secrets
                .insert(secret.expose().clone(), Origin::Stored(row.name.clone()));
        }
        Ok(taken)
    }

    /// Why `key` would collide with something already taken, if it would.
    fn collision(&self, key: &NewKey) -> Option<String> {
        match self.names.get(&key.name) {
            Some(Origin::Stored(_)) => return Some("name already exists".into()),
            Some(Origin::Line(line)) => return Some(format!("name already used on line {line}")),
            None => {}
        }
        match self.secrets.get(key.secret.expose()) {
            Some(Origin::Stored(name)) => Some(format!("same secret as credential {name:?}")),
            Some(Origin::Line(line)) => Some(format!("same secret as line {line}")),
            None => None,
        }
    }

    fn reserve(&mut self, key: &NewKey, line: u64) {
        self.names.insert(key.name.clone(), Origin::Line(line));
        self.secrets
            .insert(key.secret.expose().clone(), Origin::Line(line));
    }
}

impl RowReport {
    fn malformed(line: u64, reason: String) -> Self {
        Self {
            line,
            name: None,
            status: RowStatus::Malformed,
            reason: Some(reason),
            kind: None,
            masked: None,
        }
    }
}

/// Judges one readable row: malformed, duplicate, or valid (and then reserves its name and
/// secret and returns the credential to add).
fn judge(line: u64, cells: &Cells<'_>, taken: &mut Taken) -> (RowReport, Option<NewKey>) {
    let name = cells.get(Column::Name);
    let secret = cells.get(Column::Secret);
    let given_kind = parse_kind(cells.get(Column::Kind));
    let mut report = RowReport {
        line,
        name: (!name.is_empty()).then(|| name.to_owned()),
        status: RowStatus::Malformed,
        reason: None,
        kind: match given_kind {
            Ok(Some(kind)) => Some(kind),
            Ok(None) if !secret.is_empty() => Some(KeyKind::detect(secret)),
            _ => None,
        },
        masked: (!secret.is_empty()).then(|| mask_secret(secret)),
    };
    let key = match new_key(cells, given_kind) {
        Ok(key) => key,
        Err(problems) => {
            report.reason = Some(problems.join("; "));
            return (report, None);
        }
    };
    if let Some(reason) = taken.collision(&key) {
        report.status = RowStatus::Duplicate;
        report.reason = Some(reason);
        return (report, None);
    }
    taken.reserve(&key, line);
    report.status = RowStatus::Valid;
    (report, Some(key))
}

/// The credential a row describes, or every problem with it.
fn new_key(
    cells: &Cells<'_>,
    kind: Result<Option<KeyKind>, String>,
) -> Result<NewKey, Vec<String>> {
    let mut problems = Vec::new();
    if let Some((found, expected)) = cells.mismatch {
        problems.push(format!(
            "wrong number of fields: {found}, header has {expected}"
        ));
    }
    let name = cells.get(Column::Name);
    problems.extend(super::label_problem("name", name, true));
    let secret = cells.get(Column::Secret);
    problems.extend(super::secret_problem(secret));
    let kind = kind.unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });
    let mut number = |column: Column, default: u32, min: u32| {
        whole_number(column, cells.get(column), min)
            .unwrap_or_else(|problem| {
                problems.push(problem);
                None
            })
            .unwrap_or(default)
    };
    let priority = number(Column::Priority, 0, 0);
    let weight = number(Column::Weight, 1, 1);
    let max_concurrent = whole_number(Column::MaxConcurrent, cells.get(Column::MaxConcurrent), 1)
        .unwrap_or_else(|problem| {
            problems.push(problem);
            None
        });
    let group = cells.get(Column::Group);
    problems.extend(super::label_problem("group", group, false));
    let enabled = parse_enabled(cells.get(Column::Enabled)).unwrap_or_else(|problem| {
        problems.push(problem);
        true
    });
    let mut cap = |column: Column| {
        whole_number(column, cells.get(column), 1).unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    };
    let caps = crate::pool::Caps {
        rps: cap(Column::Rps),
        daily_requests: cap(Column::DailyRequests).map(u64::from),
        daily_tokens: cap(Column::DailyTokens).map(u64::from),
    };
    let mut date = |column: Column| {
        let value = cells.get(column);
        if value.is_empty() {
            return None;
        }
        let parsed = crate::config::moment(value);
        if parsed.is_none() {
            problems.push(format!(
                "{} {} is not a date (2027-01-31) or an RFC 3339 time",
                column.as_str(),
                Shown(value)
            ));
        }
        parsed
    };
    let credits_expire_at = date(Column::CreditsExpire);
    let token_expires_at = date(Column::TokenExpires);
    let refresh = cells.get(Column::RefreshToken);
    let oauth = (!refresh.is_empty()).then(|| crate::config::OAuthGrant {
        refresh_token: Secret::new(refresh.to_owned()),
        expires_at: token_expires_at,
    });
    // Its value is never quoted: it is a secret.
    problems.extend(
        (!refresh.is_empty())
            .then(|| super::secret_problem(refresh))
            .flatten()
            .map(|problem| problem.replacen("secret", "refresh_token", 1)),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NewKey {
        name: name.to_owned(),
        secret: Secret::new(secret.to_owned()),
        kind,
        priority,
        weight,
        max_concurrent,
        group: (!group.is_empty()).then(|| group.to_owned()),
        enabled,
        caps,
        credits_expire_at,
        oauth,
    })
}

/// Names and groups: single-line text a table can show.
fn parse_kind(value: &str) -> Result<Option<KeyKind>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    KeyKind::parse(&value.to_ascii_lowercase())
        .map(Some)
        .ok_or_else(|| format!("kind {} is not api-key or oauth", Shown(value)))
}

/// An optional whole number of at least `min`; empty means "not given".
fn whole_number(column: Column, value: &str, min: u32) -> Result<Option<u32>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let name = column.as_str();
    match value.parse::<u32>() {
        Ok(n) if n >= min => Ok(Some(n)),
        Ok(n) if column == Column::MaxConcurrent => Err(format!(
            "{name} {n} is below {min} (leave it empty for no limit)"
        )),
        Ok(n) => Err(format!("{name} {n} is below {min}")),
        Err(_) => Err(format!(
            "{name} {} is not a whole number (0 to {})",
            Shown(value),
            u32::MAX
        )),
    }
}

fn parse_enabled(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("enabled {} is not true or false", Shown(value))),
    }
}
