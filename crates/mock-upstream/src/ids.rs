//! Opaque ids in Anthropic's shapes (`req_…`, `msg_…`, `toolu_…`, `msgbatch_…`, `compl_…`).

use rand::Rng;
use rand::distr::Alphanumeric;

/// Random alphanumeric tail long enough to be unique for the mock's lifetime.
fn tail(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    id.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(24)
            .map(char::from),
    );
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
