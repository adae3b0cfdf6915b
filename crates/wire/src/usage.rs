//! Token usage normalised across dialects: the unit accounting prices.

/// Tokens used by one message, in the categories that are priced differently.
///
/// Invariant kept by [`Usage::set_cache_writes`]:
/// `cache_write_5m_tokens + cache_write_1h_tokens == cache_write_tokens`, so pricing can
/// use the split without checking it against the total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens (after the last cache breakpoint).
    pub input_tokens: u64,
    /// Output tokens, thinking included.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache, both TTLs together.
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written with the 5-minute TTL.
    pub cache_write_5m_tokens: u64,
    /// The part of `cache_write_tokens` written with the 1-hour TTL (priced higher).
    pub cache_write_1h_tokens: u64,
    /// Where the upstream says it ran the request: US-only inference costs more.
    pub inference_geo: InferenceGeo,
}

/// The region the request ran in, as the answer's `usage.inference_geo` reports it. Only
/// `"us"` changes the price (US-only inference, ×1.1), but `"global"` is told apart from "not
/// said" so the ledger shows what the upstream reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InferenceGeo {
    /// The answer had no `inference_geo` (older models, a cut stream, other dialects).
    #[default]
    Unreported,
    /// `"global"`: wherever the provider chose, at list price.
    Global,
    /// `"us"`: US-only inference.
    Us,
    /// A region this crate does not know yet; priced as `Global` until someone says otherwise.
    Other,
}

impl InferenceGeo {
    /// The value as `usage.inference_geo` spells it (`other` for one not known here), `None`
    /// when unreported. [`InferenceGeo::from_wire`] reads it back.
    pub fn wire_value(self) -> Option<&'static str> {
        match self {
            Self::Unreported => None,
            Self::Global => Some("global"),
            Self::Us => Some("us"),
            Self::Other => Some("other"),
        }
    }

    /// A reported `usage.inference_geo`.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "global" => Self::Global,
            "us" => Self::Us,
            _ => Self::Other,
        }
    }
}

impl Usage {
    /// Records cache writes. Any write not reported as 1-hour counts as 5-minute: that is the
    /// default TTL, and the only kind a response that reports just the total can have written.
    /// The total wins over an inconsistent split, because it is what upstream bills.
    pub fn set_cache_writes(&mut self, total: u64, one_hour: u64) {
        self.cache_write_tokens = total;
        self.cache_write_1h_tokens = one_hour.min(total);
        self.cache_write_5m_tokens = total - self.cache_write_1h_tokens;
    }
}
