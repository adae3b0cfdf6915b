//! Non-streaming Messages responses, and the usage object they share with stream events.

use serde::Deserialize;

use crate::usage::Usage;

/// What accounting needs from a 200 Messages response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSummary {
    /// The model that served the request (may differ from the alias the client sent).
    pub model: Option<String>,
    pub stop_reason: Option<String>,
    pub usage: Usage,
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    stop_reason: Option<String>,
    usage: UsageFields,
}

/// Reads a non-streaming 200 body. `None` when it is not a Message (no `usage` object), so the
/// caller can tell "nothing to bill" from "billed zero".
pub fn summarize_message(body: &[u8]) -> Option<MessageSummary> {
    let message: Message = serde_json::from_slice(body).ok()?;
    let mut usage = Usage::default();
    message.usage.apply(&mut usage);
    Some(MessageSummary {
        model: message.model,
        stop_reason: message.stop_reason,
        usage,
    })
}

/// The wire usage object (protocol doc §5.3). Every field is optional because stream
/// `message_delta` events send only some of them, and absent or null means "unchanged".
#[derive(Deserialize)]
pub(super) struct UsageFields {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

impl UsageFields {
    /// Overwrites `usage` with every field this object reports.
    pub(super) fn apply(&self, usage: &mut Usage) {
        if let Some(tokens) = self.input_tokens {
            usage.input_tokens = tokens;
        }
        if let Some(tokens) = self.output_tokens {
            usage.output_tokens = tokens;
        }
        if let Some(tokens) = self.cache_read_input_tokens {
            usage.cache_read_tokens = tokens;
        }
        let split = self.cache_creation.as_ref();
        let one_hour = split
            .and_then(|split| split.ephemeral_1h_input_tokens)
            .unwrap_or(usage.cache_write_1h_tokens);
        let split_total = split.map(|split| {
            let five_minute = split.ephemeral_5m_input_tokens.unwrap_or(0);
            five_minute.saturating_add(split.ephemeral_1h_input_tokens.unwrap_or(0))
        });
        let total = self
            .cache_creation_input_tokens
            .or(split_total)
            .unwrap_or(usage.cache_write_tokens);
        usage.set_cache_writes(total, one_hour);
    }
}
