//! Opaque ids in Anthropic's shapes (`req_…`, `msg_…`, `toolu_…`, `msgbatch_…`, `compl_…`)
//! and OAuth tokens (`sk-ant-oat01-…`, `sk-ant-ort01-…`).

use rand::Rng;
use rand::distr::Alphanumeric;

/// Random alphanumeric tail long enough to be unique for the mock's lifetime.
fn tail(prefix: &str) -> String {
    random(prefix, 24, "")
}

/// `prefix`, `len` random alphanumerics, `suffix`.
fn random(prefix: &str, len: usize, suffix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + len + suffix.len());
    id.push_str(prefix);
    id.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(len)
            .map(char::from),
    );
    id.push_str(suffix);
    id
}

pub(crate) fn request() -> String {
    tail("req_011C")
}

pub(crate) fn message() -> String {
    tail("msg_01")
}

pub(crate) fn tool_use() -> String {
    tail("toolu_01")
}

pub(crate) fn batch() -> String {
    tail("msgbatch_01")
}

pub(crate) fn completion() -> String {
    tail("compl_01")
}

/// Tokens are longer than ids, like the real ones.
pub(crate) fn access_token() -> String {
    random("sk-ant-oat01-", 93, "AA")
}

pub(crate) fn refresh_token() -> String {
    random("sk-ant-ort01-", 93, "AA")
}
