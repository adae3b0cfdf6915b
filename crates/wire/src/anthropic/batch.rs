//! Message Batches (protocol doc §11.3). A batch lives on the key that created it, and its
//! results can only be fetched with that key, so the gateway serves results itself and must
//! point `results_url` at its own address instead of upstream's.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct BatchRef {
    id: String,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<PageEntry>,
}

#[derive(Deserialize)]
struct PageEntry {
    id: Option<String>,
}

/// The `id` of a MessageBatch body, to remember which key owns the batch.
pub fn batch_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<BatchRef>(body)
        .ok()
        .map(|batch| batch.id)
}

/// The ids in a list page (`{"data":[…]}`); empty when the body is not one.
pub fn batch_ids_in_page(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Page>(body)
        .map(|page| page.data.into_iter().filter_map(|entry| entry.id).collect())
        .unwrap_or_default()
}

/// Points every non-null `results_url` in a MessageBatch, or in each batch of a list page, at
/// `{base_url}/v1/messages/batches/{id}/results`. `None` when the body is neither.
///
/// The body goes back to the client, so it is edited as a `Value` rather than a typed struct:
/// every field upstream sent must survive, including ones this crate has never heard of, and
/// serde_json's `preserve_order` keeps them in upstream's order.
pub fn rewrite_results_url(body: &[u8], base_url: &str) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let base_url = base_url.trim_end_matches('/');
    let object = value.as_object_mut()?;
    if let Some(data) = object.get_mut("data") {
        for batch in data.as_array_mut()? {
            if let Value::Object(batch) = batch {
                rewrite_one(batch, base_url);
            }
        }
    } else if object.get("id").is_some_and(Value::is_string) {
        rewrite_one(object, base_url);
    } else {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

fn rewrite_one(batch: &mut Map<String, Value>, base_url: &str) {
    let Some(Value::String(id)) = batch.get("id") else {
        return;
    };
    let url = format!(
        "{base_url}/v1/messages/batches/{}/results",
        path_segment(id)
    );
    if let Some(slot) = batch.get_mut("results_url")
        && !slot.is_null()
    {
        *slot = Value::String(url);
    }
}

/// Percent-encodes everything but ASCII letters, digits, `-` and `_`. Real ids never need it,
/// but an id like `..` or `a/b?c` must not be able to change which gateway path is named.
fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
