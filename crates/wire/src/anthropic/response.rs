//! Non-streaming Messages responses, and the usage object they share with stream events.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::usage::{InferenceGeo, Usage};

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
    #[serde(default)]
    inference_geo: Geo,
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
        if let Geo(Some(geo)) = self.inference_geo {
            usage.inference_geo = geo;
        }
    }
}

/// `usage.inference_geo`, read without allocating. A value that is not a string is taken as
/// not reported rather than failing the whole usage object: the tokens must still be billed.
#[derive(Default)]
struct Geo(Option<InferenceGeo>);

impl<'de> Deserialize<'de> for Geo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GeoVisitor)
    }
}

struct GeoVisitor;

impl<'de> Visitor<'de> for GeoVisitor {
    type Value = Geo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a region name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Geo, E> {
        Ok(Geo(Some(InferenceGeo::from_wire(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Geo, E> {
        Ok(Geo(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Geo, E> {
        Ok(Geo(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Geo, E> {
        Ok(Geo(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Geo, E> {
        Ok(Geo(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Geo, E> {
        Ok(Geo(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Geo, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Geo(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Geo, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Geo(None))
    }
}
