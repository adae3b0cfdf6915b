//! Prices and cost: the shipped price table, corrected from configuration, and the cost of a
//! request's usage in integer nano-dollars.
//!
//! Money never passes through a float. Prices are written in USD per million tokens as decimal
//! text and converted exactly to nano-dollars per token (1 $/M = 1,000 nano-dollars per token),
//! so every listed price is a whole number in that unit. A cost is the sum over the five token
//! classes of tokens × price, at the row of the model's prompt-size tier the request falls in,
//! halved for the Message Batches API and scaled by the client's and the model's multipliers,
//! US-only inference (×1.1) and fast mode, all in `i128` and rounded once, half up, at the end.
//!
//! A model without a price has no cost (`None`), never a cost of zero: the ledger must be able
//! to tell "free" from "we did not know".

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use keyloop_wire::anthropic::Speed;
use keyloop_wire::usage::{InferenceGeo, Usage};
use serde::{Deserialize, Deserializer};

/// Parts per million: the unit of multipliers. `PPM` is ×1.
pub const PPM: u64 = 1_000_000;

/// Decimal places of $/M that make a whole nano-dollar per token.
const PRICE_PLACES: u32 = 3;
/// Decimal places of a multiplier that make a whole part per million.
const MULTIPLIER_PLACES: u32 = 6;
/// $1 per token: far above any real price, so it only catches unit mistakes (a price per
/// billion tokens, a stray digit).
const MAX_PRICE_USD_PER_M: u64 = 1_000_000;
/// ×1000: enough for any surcharge, small enough that a typo such as `1100` for `1.1` is caught.
const MAX_MULTIPLIER: u64 = 1_000;

/// US-only inference (the answer's `usage.inference_geo` is `"us"`) costs 1.1 × list on every
/// token class (the Dec 2026 list). Only models that offer it (Opus 4.6
/// and newer) report it, since the others refuse the request, so the answer alone decides. A
/// published figure, so a constant; kept as the exact fraction 11/10 rather than in ppm so it
/// costs the single division less headroom.
const US_ONLY_INFERENCE: (u64, u64) = (11, 10);

/// Fast mode (`speed: "fast"` in the request) when `[pricing] fast-mode-multiplier` is not set:
/// ×2 on every token class. The Dec 2026 list says only "a price multiplier"; the one figure
/// in the docs is the 2026 list's third-party $8 / $40 for Opus 5.5, twice its $4 / $20.
const DEFAULT_FAST_MODE_PPM: u64 = 2 * PPM;

/// Where the shipped table's errors point.
const SHIPPED_ORIGIN: &str = "prices.toml";
/// Where configuration errors point: the integrator embeds [`PricingConfig`] as `[pricing]`.
const CONFIG_ORIGIN: &str = "pricing";

const SHIPPED: &str = include_str!("prices.toml");

/// One model's prices, in nano-dollars per token, one per class of token that is billed
/// differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    /// Uncached input.
    pub input: u64,
    /// Input written to the prompt cache with the default 5-minute TTL.
    pub cache_write_5m: u64,
    /// Input written to the prompt cache with the 1-hour TTL.
    pub cache_write_1h: u64,
    /// Input read from the prompt cache.
    pub cache_read: u64,
    /// Output, thinking included.
    pub output: u64,
}

impl ModelPrice {
    /// The row Anthropic's prompt-caching rule gives for an input and output price: 5-minute
    /// write = 1.25 × input, 1-hour write = 2 × input, read = 0.1 × input. `None` when one of
    /// those is not a whole nano-dollar per token, since rounding it would invent a price.
    pub fn derived(input: u64, output: u64) -> Option<ModelPrice> {
        Some(ModelPrice {
            input,
            cache_write_5m: derive(input, CacheRule::FiveMinute)?,
            cache_write_1h: derive(input, CacheRule::OneHour)?,
            cache_read: derive(input, CacheRule::Read)?,
            output,
        })
    }

    /// The cost of `usage` at these prices; see [`PriceTable::cost`]. `None` only when the
    /// result does not fit in `i64` nano-dollars (about $9.2 billion), or the exact product
    /// before the one division does not fit in `i128` (past about $1 billion of list price at
    /// surcharges of a few times list), which no real usage reaches: a nonsense count is better
    /// recorded as unknown than as a made-up maximum.
    pub fn cost(&self, usage: &Usage, ctx: &CostContext) -> Option<i64> {
        let classes = [
            (usage.input_tokens, self.input),
            (five_minute_writes(usage), self.cache_write_5m),
            (usage.cache_write_1h_tokens, self.cache_write_1h),
            (usage.cache_read_tokens, self.cache_read),
            (usage.output_tokens, self.output),
        ];
        let mut list = 0i128;
        for (tokens, price) in classes {
            list = list.checked_add(i128::from(tokens).checked_mul(i128::from(price))?)?;
        }
        let (geo_numerator, geo_denominator) = if ctx.us_only_inference {
            US_ONLY_INFERENCE
        } else {
            (1, 1)
        };
        let numerator = list
            .checked_mul(i128::from(ctx.client_multiplier_ppm))?
            .checked_mul(i128::from(ctx.model_multiplier_ppm))?
            .checked_mul(i128::from(ctx.speed_multiplier_ppm))?
            .checked_mul(i128::from(geo_numerator))?;
        let batch_divisor = if ctx.batch { 2 } else { 1 };
        let denominator = i128::from(PPM).pow(3) * i128::from(geo_denominator) * batch_divisor;
        // Everything is non-negative, so adding half the divisor before truncating rounds
        // half up.
        let rounded = numerator.checked_add(denominator / 2)? / denominator;
        i64::try_from(rounded).ok()
    }
}

/// Cache writes not reported as 1-hour are 5-minute ones, the default TTL. `Usage` keeps the
/// split equal to the total; the `max` only matters for a usage built without it.
fn five_minute_writes(usage: &Usage) -> u64 {
    usage.cache_write_5m_tokens.max(
        usage
            .cache_write_tokens
            .saturating_sub(usage.cache_write_1h_tokens),
    )
}

/// Every input token of the request, cached or not: the prompt size a tier is chosen by.
fn prompt_tokens(usage: &Usage) -> u64 {
    usage
        .input_tokens
        .saturating_add(five_minute_writes(usage))
        .saturating_add(usage.cache_write_1h_tokens)
        .saturating_add(usage.cache_read_tokens)
}

/// A model's prices: one row, or two for a model whose price depends on the prompt's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPricing {
    /// Every request's row, or, with a `long_prompt` tier, that of the requests within it.
    pub base: ModelPrice,
    /// The row of requests with a long prompt (Claude Haiku 5.5 above 100k tokens).
    pub long_prompt: Option<LongPrompt>,
}

/// A prompt-size tier: requests whose prompt is larger than `above_tokens` are priced at
/// `price`, every token of them. Other gateways priced only the tokens past the threshold
/// higher; the provider prices the whole request by the tier its prompt falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongPrompt {
    /// Input, cache-write and cache-read tokens together (the whole prompt, cached or not).
    pub above_tokens: u64,
    pub price: ModelPrice,
}

impl ModelPricing {
    /// A model with one row for every request.
    pub fn flat(base: ModelPrice) -> ModelPricing {
        ModelPricing {
            base,
            long_prompt: None,
        }
    }

    /// The row `usage` is priced at: the long-prompt tier's when its prompt is past the
    /// threshold, else the base row.
    pub fn row_for(&self, usage: &Usage) -> &ModelPrice {
        match &self.long_prompt {
            Some(tier) if prompt_tokens(usage) > tier.above_tokens => &tier.price,
            _ => &self.base,
        }
    }

    /// The cost of `usage`, every token at the row its prompt size picks.
    pub fn cost(&self, usage: &Usage, ctx: &CostContext) -> Option<i64> {
        self.row_for(usage).cost(usage, ctx)
    }
}

/// The cache prices Anthropic derives from the input price.
#[derive(Clone, Copy, Debug)]
enum CacheRule {
    FiveMinute,
    OneHour,
    Read,
}

impl CacheRule {
    /// The factor as the error message shows it.
    fn factor(self) -> &'static str {
        match self {
            Self::FiveMinute => "1.25",
            Self::OneHour => "2",
            Self::Read => "0.1",
        }
    }
}

/// `input × factor` when that is a whole number.
fn derive(input: u64, rule: CacheRule) -> Option<u64> {
    let (numerator, denominator) = match rule {
        CacheRule::FiveMinute => (5, 4),
        CacheRule::OneHour => (2, 1),
        CacheRule::Read => (1, 10),
    };
    let scaled = input.checked_mul(numerator)?;
    (scaled % denominator == 0).then_some(scaled / denominator)
}

/// What scales a request's cost beyond its model's list prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostContext {
    /// Sent through the Message Batches API: every class, cache included, at half price.
    pub batch: bool,
    /// The client's multiplier in parts per million ([`PPM`] = ×1).
    pub client_multiplier_ppm: u64,
    /// The model's multiplier in parts per million ([`PPM`] = ×1).
    pub model_multiplier_ppm: u64,
    /// Fast mode's multiplier in parts per million; [`PPM`] for a request at standard speed.
    pub speed_multiplier_ppm: u64,
    /// Served by US-only inference: every class at 1.1 ×.
    pub us_only_inference: bool,
}

impl CostContext {
    /// List price: not batched, no multipliers, standard speed, no regional surcharge.
    pub const LIST: CostContext = CostContext {
        batch: false,
        client_multiplier_ppm: PPM,
        model_multiplier_ppm: PPM,
        speed_multiplier_ppm: PPM,
        us_only_inference: false,
    };
}

impl Default for CostContext {
    fn default() -> Self {
        Self::LIST
    }
}

/// Prices for every known model, the names that lead to them, and the configured multipliers.
///
/// [`PriceTable::default`] is an empty table, for a deployment that prices only what its
/// configuration lists; [`PriceTable::shipped`] is the usual start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTable {
    /// Keyed by the model id that overrides and aliases name.
    models: BTreeMap<String, ModelPricing>,
    /// Dated ids the shipped table lists → the id their price is under.
    dated_ids: BTreeMap<String, String>,
    /// Alias → the id its price is under (resolved when configured).
    aliases: BTreeMap<String, String>,
    /// Client name → multiplier (ppm).
    client_multipliers: BTreeMap<String, u64>,
    /// Model id (as in `models`) → multiplier (ppm).
    model_multipliers: BTreeMap<String, u64>,
    /// Fast mode's multiplier (ppm), for every model that offers it.
    fast_mode_ppm: u64,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            models: BTreeMap::new(),
            dated_ids: BTreeMap::new(),
            aliases: BTreeMap::new(),
            client_multipliers: BTreeMap::new(),
            model_multipliers: BTreeMap::new(),
            fast_mode_ppm: DEFAULT_FAST_MODE_PPM,
        }
    }
}

impl PriceTable {
    /// The prices that ship with keyloop (`prices.toml`: the 2026 list, retired models kept).
    pub fn shipped() -> PriceTable {
        Self::from_shipped(SHIPPED).expect("the embedded prices.toml is valid (its tests say so)")
    }

    fn from_shipped(text: &str) -> Result<PriceTable, Error> {
        let file: ShippedFile = toml::from_str(text).map_err(|source| Error::Syntax {
            origin: SHIPPED_ORIGIN,
            source,
        })?;
        let mut table = PriceTable::default();
        for model in file.model {
            let path = format!("{SHIPPED_ORIGIN}.model.{:?}", model.id);
            for name in std::iter::once(&model.id).chain(&model.dated_ids) {
                if table.models.contains_key(name) || table.dated_ids.contains_key(name) {
                    return Err(Error::DuplicateId {
                        field: path,
                        id: name.clone(),
                    });
                }
            }
            let price = model_price(&model.price_fields(), &path)?;
            for dated in model.dated_ids {
                table.dated_ids.insert(dated, model.id.clone());
            }
            table.models.insert(model.id, price);
        }
        Ok(table)
    }

    /// Applies the operator's `[pricing]` section: its model rows replace or add to the table,
    /// then aliases and multipliers are resolved against the result. Fails on the first bad
    /// value, naming its field.
    pub fn with_overrides(mut self, overrides: &PricingConfig) -> Result<PriceTable, Error> {
        for (id, raw) in &overrides.models {
            let path = format!("{CONFIG_ORIGIN}.models.{id:?}");
            let price = model_price(raw, &path)?;
            self.models.insert(id.clone(), price);
        }
        for (alias, target) in &overrides.aliases {
            let field = format!("{CONFIG_ORIGIN}.aliases.{alias:?}");
            if self.resolve_listed(alias).is_some() {
                return Err(Error::AliasShadowsModel {
                    field,
                    alias: alias.clone(),
                });
            }
            let Some(id) = self.resolve_listed(target) else {
                return Err(Error::UnknownAliasTarget {
                    field,
                    target: target.clone(),
                });
            };
            let id = id.to_owned();
            self.aliases.insert(alias.clone(), id);
        }
        if let Some(value) = &overrides.fast_mode_multiplier {
            let field = format!("{CONFIG_ORIGIN}.fast-mode-multiplier");
            self.fast_mode_ppm = multiplier(value, field)?;
        }
        for (client, value) in &overrides.client_multipliers {
            let field = format!("{CONFIG_ORIGIN}.client-multipliers.{client:?}");
            let ppm = multiplier(value, field)?;
            self.client_multipliers.insert(client.clone(), ppm);
        }
        // Keyed by the resolved id so a multiplier follows every name of its model; two names
        // of one model would make the result depend on map order, so that is refused.
        let mut named_by: BTreeMap<String, &str> = BTreeMap::new();
        for (model, value) in &overrides.model_multipliers {
            let field = format!("{CONFIG_ORIGIN}.model-multipliers.{model:?}");
            let ppm = multiplier(value, field.clone())?;
            let Some(id) = self.resolve(model) else {
                return Err(Error::UnpricedModelMultiplier {
                    field,
                    model: model.clone(),
                });
            };
            let id = id.to_owned();
            if let Some(other) = named_by.insert(id.clone(), model) {
                return Err(Error::DuplicateModelMultiplier {
                    field,
                    model: model.clone(),
                    other: other.to_owned(),
                });
            }
            self.model_multipliers.insert(id, ppm);
        }
        Ok(self)
    }

    /// The prices for `model`, found by exact id, then a dated id (`claude-x-y-YYYYMMDD` is
    /// priced as `claude-x-y`), then a configured alias. `None` for a model nobody priced.
    pub fn pricing(&self, model: &str) -> Option<&ModelPricing> {
        self.resolve(model).and_then(|id| self.models.get(id))
    }

    /// The cost of `usage` on `model` in nano-dollars: Σ tokens × price over input, 5-minute
    /// and 1-hour cache writes, cache reads and output, at the row of the prompt-size tier the
    /// whole request falls in; halved when `ctx.batch`; times the client, model and fast-mode
    /// multipliers and the US-only surcharge; rounded once, half up. `None` when the model is
    /// not given or has no price. Price by the model the upstream names in its answer: that is
    /// the one it billed.
    pub fn cost(&self, model: Option<&str>, usage: &Usage, ctx: &CostContext) -> Option<i64> {
        self.pricing(model?)?.cost(usage, ctx)
    }

    /// Everything that scales a request's list price: `batch` from how it was sent, the
    /// configured multipliers of its client and model, fast mode from the request's `speed`,
    /// US-only inference from the answer's `usage.inference_geo`.
    pub fn context_for(
        &self,
        client: Option<&str>,
        model: &str,
        batch: bool,
        geo: InferenceGeo,
        speed: Speed,
    ) -> CostContext {
        let (client_multiplier_ppm, model_multiplier_ppm) = self.multipliers_for(client, model);
        CostContext {
            batch,
            client_multiplier_ppm,
            model_multiplier_ppm,
            speed_multiplier_ppm: match speed {
                Speed::Standard => PPM,
                Speed::Fast => self.fast_mode_ppm,
            },
            us_only_inference: geo == InferenceGeo::Us,
        }
    }

    /// The (client, model) multipliers in ppm for a request, ×1 ([`PPM`]) where none is
    /// configured. A model multiplier applies under every name that resolves to its model.
    pub fn multipliers_for(&self, client: Option<&str>, model: &str) -> (u64, u64) {
        let client = client
            .and_then(|name| self.client_multipliers.get(name))
            .copied()
            .unwrap_or(PPM);
        let model = self
            .resolve(model)
            .and_then(|id| self.model_multipliers.get(id))
            .copied()
            .unwrap_or(PPM);
        (client, model)
    }

    /// The id `model`'s price is under, aliases included.
    fn resolve(&self, model: &str) -> Option<&str> {
        self.resolve_listed(model)
            .or_else(|| self.aliases.get(model).map(String::as_str))
    }

    /// The id `model`'s price is under without aliases: exact id, listed dated id, then the
    /// date-suffix rule (which covers snapshots released after the table was written).
    fn resolve_listed(&self, model: &str) -> Option<&str> {
        if let Some((id, _)) = self.models.get_key_value(model) {
            return Some(id);
        }
        if let Some(id) = self.dated_ids.get(model) {
            return Some(id);
        }
        let stem = undated(model)?;
        self.models.get_key_value(stem).map(|(id, _)| id.as_str())
    }
}

/// `claude-x-y-YYYYMMDD` → `claude-x-y`: the stem of an id ending in a dash and eight digits.
fn undated(model: &str) -> Option<&str> {
    let (stem, date) = model.rsplit_once('-')?;
    let is_date = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
    (is_date && !stem.is_empty()).then_some(stem)
}

/// The `[pricing]` section of the gateway's config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PricingConfig {
    /// Prices change more often than keyloop is released and the shipped table is seed data,
    /// so operators correct a price or add a model here, keyed by model id, in USD per
    /// million tokens. An entry replaces the whole shipped row (cache prices it leaves out
    /// are derived from its own input price, never kept from the old row), so a model is
    /// never priced half old, half new. A dated id of the model follows the new row unless
    /// it has an entry of its own.
    pub models: BTreeMap<String, RawModelPrice>,
    /// Lets a name the table cannot know (a deployment's own model name, another provider's
    /// id for the same model) be priced as a listed model instead of recorded as cost
    /// unknown. Consulted last, so an alias can never reprice a listed model; the target
    /// must be a priced model id or dated id, not another alias.
    pub aliases: BTreeMap<String, String>,
    /// Charges a client above or below list price (a charge-back markup, a discount, or 0
    /// for a team that is not charged) without restating prices per client. Keyed by client
    /// name; a factor such as `1.1`.
    pub client_multipliers: BTreeMap<String, DecimalText>,
    /// Surcharges a price row does not carry, such as a negotiated rate, without restating
    /// five prices. Keyed by any name that resolves to a priced model; it then applies under
    /// every name of that model. US-only inference (×1.1) and fast mode are priced from each
    /// request and its answer, so they do not belong here.
    pub model_multipliers: BTreeMap<String, DecimalText>,
    /// What fast mode (`speed: "fast"`, offered on Opus 5.5 and Fable/Mythos 5.2) costs, as a
    /// factor on every token class. Default 2: the provider's docs say only "a price
    /// multiplier", and the one figure seen (third-party, Opus 5.5: $8 / $40 against $4 / $20)
    /// is twice list. Set it when the provider's figure is known.
    pub fast_mode_multiplier: Option<DecimalText>,
}

/// One model's prices as written, in USD per million tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawModelPrice {
    /// Required: the cache prices left out are fixed ratios of it, so it anchors the row.
    pub input: DecimalText,
    /// Required: output (thinking included) is priced on its own, at several times input.
    pub output: DecimalText,
    /// Only for a model whose 5-minute cache write is not 1.25 × input (Claude Haiku 3);
    /// leaving it out keeps the row consistent when the input price changes.
    pub cache_write_5m: Option<DecimalText>,
    /// Only for a model whose 1-hour cache write is not 2 × input.
    pub cache_write_1h: Option<DecimalText>,
    /// Only for a model whose cache read is not 0.1 × input (Claude Haiku 3, Opus 5.5).
    pub cache_read: Option<DecimalText>,
    /// Only for a model priced by prompt size (Claude Haiku 5.5): the row of requests whose
    /// prompt is larger than its `above-tokens`. Left out, every request is priced at the row
    /// above, so an override of such a model must restate the tier to keep it.
    pub long_prompt: Option<RawLongPrompt>,
}

/// A long-prompt tier as written: a threshold and a row of its own, in USD per million tokens.
/// Its cache prices left out are derived from its own input price, as for any row.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLongPrompt {
    /// Prompt tokens (input + cache writes + cache reads) past which the whole request is
    /// priced at this row; a prompt of exactly this many is not.
    pub above_tokens: u64,
    pub input: DecimalText,
    pub output: DecimalText,
    pub cache_write_5m: Option<DecimalText>,
    pub cache_write_1h: Option<DecimalText>,
    pub cache_read: Option<DecimalText>,
}

/// A decimal number as written: a string (`"0.125"`) or a TOML number. Kept as text so the
/// conversion to integer units is exact. A TOML float is read back through its shortest
/// round-trip text, which is the literal as written for any literal of up to 15 significant
/// digits; a string is exact always.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecimalText(String);

impl DecimalText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = DecimalText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number, as a string such as \"0.125\" or a number")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_owned()))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DecimalText, E> {
                // `Display` for f64 is the shortest text that reads back as the same value,
                // never in exponent form.
                Ok(DecimalText(v.to_string()))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// The shipped file: an ordered list of rows, with the dated ids of each model.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedFile {
    model: Vec<ShippedModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ShippedModel {
    id: String,
    #[serde(default)]
    dated_ids: Vec<String>,
    input: DecimalText,
    output: DecimalText,
    cache_write_5m: Option<DecimalText>,
    cache_write_1h: Option<DecimalText>,
    cache_read: Option<DecimalText>,
    long_prompt: Option<RawLongPrompt>,
}

impl ShippedModel {
    /// The price fields, in the shape configuration uses.
    fn price_fields(&self) -> RawModelPrice {
        RawModelPrice {
            input: self.input.clone(),
            output: self.output.clone(),
            cache_write_5m: self.cache_write_5m.clone(),
            cache_write_1h: self.cache_write_1h.clone(),
            cache_read: self.cache_read.clone(),
            long_prompt: self.long_prompt.clone(),
        }
    }
}

/// Converts a model's prices written in $/M into nano-dollars per token; `path` names the model.
fn model_price(raw: &RawModelPrice, path: &str) -> Result<ModelPricing, Error> {
    let base = price_row(
        RawRow {
            input: &raw.input,
            output: &raw.output,
            cache_write_5m: raw.cache_write_5m.as_ref(),
            cache_write_1h: raw.cache_write_1h.as_ref(),
            cache_read: raw.cache_read.as_ref(),
        },
        path,
    )?;
    let long_prompt = match &raw.long_prompt {
        None => None,
        Some(tier) => Some(LongPrompt {
            above_tokens: tier.above_tokens,
            price: price_row(
                RawRow {
                    input: &tier.input,
                    output: &tier.output,
                    cache_write_5m: tier.cache_write_5m.as_ref(),
                    cache_write_1h: tier.cache_write_1h.as_ref(),
                    cache_read: tier.cache_read.as_ref(),
                },
                &format!("{path}.long-prompt"),
            )?,
        }),
    };
    Ok(ModelPricing { base, long_prompt })
}

/// The five prices of one row as written, wherever the row sits.
struct RawRow<'a> {
    input: &'a DecimalText,
    output: &'a DecimalText,
    cache_write_5m: Option<&'a DecimalText>,
    cache_write_1h: Option<&'a DecimalText>,
    cache_read: Option<&'a DecimalText>,
}

/// Converts one row written in $/M into nano-dollars per token; `path` names the row.
fn price_row(raw: RawRow<'_>, path: &str) -> Result<ModelPrice, Error> {
    let price = |value: &DecimalText, name: &str| {
        parse_scaled(value.as_str(), PRICE_PLACES, MAX_PRICE_USD_PER_M).map_err(|reason| {
            Error::Price {
                field: format!("{path}.{name}"),
                value: value.0.clone(),
                reason,
            }
        })
    };
    let input = price(raw.input, "input")?;
    let output = price(raw.output, "output")?;
    let cache = |given: Option<&DecimalText>, name: &str, rule: CacheRule| match given {
        Some(value) => price(value, name),
        None => derive(input, rule).ok_or_else(|| Error::InexactDerived {
            field: format!("{path}.{name}"),
            factor: rule.factor(),
            input: raw.input.0.clone(),
        }),
    };
    Ok(ModelPrice {
        input,
        cache_write_5m: cache(raw.cache_write_5m, "cache-write-5m", CacheRule::FiveMinute)?,
        cache_write_1h: cache(raw.cache_write_1h, "cache-write-1h", CacheRule::OneHour)?,
        cache_read: cache(raw.cache_read, "cache-read", CacheRule::Read)?,
        output,
    })
}

/// A multiplier as parts per million.
fn multiplier(value: &DecimalText, field: String) -> Result<u64, Error> {
    parse_scaled(value.as_str(), MULTIPLIER_PLACES, MAX_MULTIPLIER).map_err(|reason| {
        Error::Multiplier {
            field,
            value: value.0.clone(),
            reason,
        }
    })
}

/// Parses plain decimal text (`12`, `0.125`) into a count of 10^-`places` units, exactly:
/// digits past `places` decimal places must be zeros, and the value may not exceed `max`.
fn parse_scaled(text: &str, places: u32, max: u64) -> Result<u64, DecimalError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('-') {
        return Err(match parse_scaled(rest, places, u64::MAX) {
            Err(DecimalError::Malformed) => DecimalError::Malformed,
            _ => DecimalError::Negative,
        });
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if digits(fraction) => (whole, fraction),
        Some(_) => return Err(DecimalError::Malformed),
        None => (text, ""),
    };
    if !digits(whole) {
        return Err(DecimalError::Malformed);
    }
    let width = usize::try_from(places).unwrap_or(usize::MAX);
    let (kept, beyond) = fraction.split_at(fraction.len().min(width));
    if beyond.bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise { places });
    }
    let unit = 10u64.pow(places);
    let mut value: u64 = 0;
    for b in whole.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(DecimalError::TooLarge)?;
    }
    let mut scaled = value.checked_mul(unit).ok_or(DecimalError::TooLarge)?;
    let mut place = unit;
    for b in kept.bytes() {
        place /= 10;
        scaled += u64::from(b - b'0') * place;
    }
    if scaled > max.saturating_mul(unit) {
        return Err(DecimalError::TooLarge);
    }
    Ok(scaled)
}

/// Why a decimal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("is not a plain decimal number (digits with at most one '.', no sign or exponent)")]
    Malformed,
    #[error("is negative")]
    Negative,
    #[error("has more than {places} decimal places")]
    TooPrecise { places: u32 },
    #[error("is too large")]
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{field}: {value:?} {reason}; prices are USD per million tokens from 0 to \
         {MAX_PRICE_USD_PER_M} in steps of 0.001 (one nano-dollar per token)"
    )]
    Price {
        field: String,
        value: String,
        reason: DecimalError,
    },
    #[error(
        "{field}: {value:?} {reason}; multipliers are factors from 0 to {MAX_MULTIPLIER} in \
         steps of 0.000001"
    )]
    Multiplier {
        field: String,
        value: String,
        reason: DecimalError,
    },
    #[error(
        "{field}: not given, and {factor} × input ({input} $/M) is not a whole nano-dollar per \
         token; give it explicitly"
    )]
    InexactDerived {
        field: String,
        factor: &'static str,
        input: String,
    },
    #[error(
        "{field}: {target:?} is not a priced model (an alias names a model id or dated id, not \
         another alias)"
    )]
    UnknownAliasTarget { field: String, target: String },
    #[error("{field}: {alias:?} already names a priced model, so the alias would never apply")]
    AliasShadowsModel { field: String, alias: String },
    #[error("{field}: {model:?} has no price, so its multiplier would never apply")]
    UnpricedModelMultiplier { field: String, model: String },
    #[error("{field}: {model:?} is the same priced model as {other:?}, which has a multiplier")]
    DuplicateModelMultiplier {
        field: String,
        model: String,
        other: String,
    },
    #[error("{field}: {id:?} is listed more than once")]
    DuplicateId { field: String, id: String },
    #[error("{origin}: {source}")]
    Syntax {
        origin: &'static str,
        source: toml::de::Error,
    },
}
