//! Pricing against hand-computed costs: the wire fixtures read through the same parsers the
//! relay uses, one request per current model, prompt-size tiers, cache TTLs, batch, US-only
//! inference, fast mode, multipliers with their single rounding, name resolution,
//! configuration overrides and the exact decimal conversion. Expected values are worked out
//! in the comments and the test code from the Dec 2026 list and the 2026 list, never read back
//! from the table under test.

use keyloop_wire::anthropic::{StreamTap, summarize_message};
use keyloop_wire::sse::SseScanner;

use super::*;

const MESSAGE_RESPONSE: &str =
    include_str!("../../../../wire/tests/fixtures/anthropic-message-response.http");
const STREAM_TOOL_USE: &str =
    include_str!("../../../../wire/tests/fixtures/anthropic-stream-tool-use.sse");
const STREAM_THINKING: &str =
    include_str!("../../../../wire/tests/fixtures/anthropic-stream-thinking.sse");

// === helpers ===

/// Parses a `[pricing]` section body the way the config loader will.
fn config(text: &str) -> PricingConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("test config should parse: {e}"))
}

fn table(text: &str) -> PriceTable {
    PriceTable::shipped()
        .with_overrides(&config(text))
        .unwrap_or_else(|e| panic!("test config should apply: {e}"))
}

fn override_error(text: &str) -> Error {
    PriceTable::shipped()
        .with_overrides(&config(text))
        .expect_err("the config should be refused")
}

fn usage(input: u64, cache_read: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        cache_read_tokens: cache_read,
        output_tokens: output,
        ..Usage::default()
    }
}

/// A request's tokens by class: uncached input, 5-minute and 1-hour cache writes, cache reads
/// and output.
fn tokens(input: u64, write_5m: u64, write_1h: u64, read: u64, output: u64) -> Usage {
    let mut u = usage(input, read, output);
    u.set_cache_writes(write_5m + write_1h, write_1h);
    u
}

fn ctx(batch: bool, client_ppm: u64, model_ppm: u64) -> CostContext {
    CostContext {
        batch,
        client_multiplier_ppm: client_ppm,
        model_multiplier_ppm: model_ppm,
        ..CostContext::LIST
    }
}

/// The row every request to `model` is priced at: for models without a long-prompt tier.
fn row(table: &PriceTable, model: &str) -> Option<ModelPrice> {
    table.pricing(model).map(|pricing| {
        assert_eq!(pricing.long_prompt, None, "{model} has a tier");
        pricing.base
    })
}

/// The JSON body of an `.http` fixture: `#` commentary, start line and headers removed.
fn http_body(fixture: &str) -> &str {
    let start: usize = fixture
        .split_inclusive('\n')
        .take_while(|line| line.starts_with('#'))
        .map(str::len)
        .sum();
    let message = &fixture[start..];
    let body = message.find("\n\n").expect("a blank line ends the headers") + 2;
    &message[body..]
}

fn tap(sse: &str) -> StreamTap {
    let mut scanner = SseScanner::new();
    let mut tap = StreamTap::new();
    scanner
        .feed(sse.as_bytes(), |ev| {
            tap.observe(&ev);
        })
        .expect("fixture lines are short");
    tap
}

// === the wire fixtures, priced ===

#[test]
fn non_streaming_fixture_is_priced_by_its_dated_haiku_id() {
    // claude-haiku-4-5-20251001 at $1 in / $0.10 cache read / $5 out per M
    // = 1000 / 100 / 5000 nano-dollars per token:
    //   input        14 × 1000 =  14,000
    //   cache read 2048 ×  100 = 204,800
    //   output       38 × 5000 = 190,000
    //   total                  = 408,800 nano-dollars ($0.0004088)
    let message = summarize_message(http_body(MESSAGE_RESPONSE).as_bytes())
        .expect("the fixture is a Message");
    let cost =
        PriceTable::shipped().cost(message.model.as_deref(), &message.usage, &CostContext::LIST);
    assert_eq!(cost, Some(408_800));
}

#[test]
fn tool_use_stream_fixture_on_sonnet_5_5() {
    // claude-sonnet-5-5 at $2 / $10 per M = 2000 / 10000 nano-dollars per token:
    //   412 × 2000  =   824,000
    //    79 × 10000 =   790,000
    //   total       = 1,614,000
    let tap = tap(STREAM_TOOL_USE);
    let cost = PriceTable::shipped().cost(tap.model(), tap.usage(), &CostContext::LIST);
    assert_eq!(cost, Some(1_614_000));
}

#[test]
fn thinking_stream_fixture_bills_thinking_as_output() {
    // claude-opus-4-8 at $5 / $25 per M = 5000 / 25000 nano-dollars per token; the 131
    // thinking tokens are inside output_tokens = 214:
    //    96 × 5000  =   480,000
    //   214 × 25000 = 5,350,000
    //   total       = 5,830,000
    let tap = tap(STREAM_THINKING);
    let cost = PriceTable::shipped().cost(tap.model(), tap.usage(), &CostContext::LIST);
    assert_eq!(cost, Some(5_830_000));
}

// === the current models (the Dec 2026 list) ===

#[test]
fn one_request_per_current_model_priced_by_hand() {
    // Each expected cost is Σ tokens × price over (input, 5m write, 1h write, cache read,
    // output), the prices being the documented USD per million tokens × 1000, i.e. nano-dollars
    // per token ($0.125/M = 125). Where the Dec 2026 list has no cache price, the derived
    // rule's (1.25 × / 2 × / 0.1 × input) is used, as prices.toml says.
    let table = PriceTable::shipped();
    let check = |model: &str, usage: Usage, by_hand: u64| {
        let by_hand = i64::try_from(by_hand).unwrap();
        assert_eq!(
            table.cost(Some(model), &usage, &CostContext::LIST),
            Some(by_hand),
            "{model}"
        );
    };

    // claude-fable-5-2: $8 in, $40 out; caches not captured, derived: $10, $16, $0.80.
    //   12,000,000 + 20,000,000 + 16,000,000 + 32,000,000 + 32,000,000 = 112,000,000 ($0.112)
    check(
        "claude-fable-5-2",
        tokens(1_500, 2_000, 1_000, 40_000, 800),
        1_500 * 8_000 + 2_000 * 10_000 + 1_000 * 16_000 + 40_000 * 800 + 800 * 40_000,
    );
    // claude-fable-5-1: $10 in, $50 out, read $0.25 (published); writes derived: $12.50, $20.
    //   32,000,000 + 0 + 80,000,000 + 15,000,000 + 75,000,000 = 202,000,000
    //   (at the old 0.1 × rule the 60,000 reads alone would be 60,000,000, not 15,000,000)
    check(
        "claude-fable-5-1",
        tokens(3_200, 0, 4_000, 60_000, 1_500),
        3_200 * 10_000 + 4_000 * 20_000 + 60_000 * 250 + 1_500 * 50_000,
    );
    // claude-opus-5-5: $4 in, $5 5m, $8 1h, $0.20 read, $20 out.
    //   9,600,000 + 30,000,000 + 0 + 24,000,000 + 60,000,000 = 123,600,000
    check(
        "claude-opus-5-5",
        tokens(2_400, 6_000, 0, 120_000, 3_000),
        2_400 * 4_000 + 6_000 * 5_000 + 120_000 * 200 + 3_000 * 20_000,
    );
    // claude-sonnet-5-5: $2 in, $2.50 5m, $4 1h, $0.20 read, $10 out.
    //   1,800,000 + 4,500,000 + 2,400,000 + 5,000,000 + 7,000,000 = 20,700,000
    check(
        "claude-sonnet-5-5",
        tokens(900, 1_800, 600, 25_000, 700),
        900 * 2_000 + 1_800 * 2_500 + 600 * 4_000 + 25_000 * 200 + 700 * 10_000,
    );
    // claude-haiku-5-5, prompt 20,000 + 30,000 + 50,000 = 100,000 tokens, not above 100k:
    // $0.10 in, $0.125 5m, $0.50 out, read not captured, derived $0.01.
    //   2,000,000 + 3,750,000 + 500,000 + 500,000 = 6,750,000
    check(
        "claude-haiku-5-5",
        tokens(20_000, 30_000, 0, 50_000, 1_000),
        20_000 * 100 + 30_000 * 125 + 50_000 * 10 + 1_000 * 500,
    );
    // claude-haiku-5-5, one more input token: 100,001 > 100k, so every token at $0.50 in,
    // $2.50 out and the derived caches $0.625 / $1 / $0.05.
    //   10,000,500 + 18,750,000 + 2,500,000 + 2,500,000 = 33,750,500
    //   (pricing only the token past 100k higher would give 6,750,000 + 500 = 6,750,500)
    check(
        "claude-haiku-5-5",
        tokens(20_001, 30_000, 0, 50_000, 1_000),
        20_001 * 500 + 30_000 * 625 + 50_000 * 50 + 1_000 * 2_500,
    );
}

#[test]
fn haiku_5_5_is_priced_in_two_tiers_by_prompt_size() {
    // the Dec 2026 list, × 1000: up to 100k 100 / 125 / 200 / (10 derived) / 500;
    // above 500 / 2500 out with derived caches 625 / 1000 / 50.
    assert_eq!(
        PriceTable::shipped().pricing("claude-haiku-5-5"),
        Some(&ModelPricing {
            base: ModelPrice {
                input: 100,
                cache_write_5m: 125,
                cache_write_1h: 200,
                cache_read: 10,
                output: 500,
            },
            long_prompt: Some(LongPrompt {
                above_tokens: 100_000,
                price: ModelPrice {
                    input: 500,
                    cache_write_5m: 625,
                    cache_write_1h: 1_000,
                    cache_read: 50,
                    output: 2_500,
                },
            }),
        })
    );
}

#[test]
fn cache_reads_and_writes_count_towards_the_prompt_size() {
    let table = PriceTable::shipped();
    // 1,000 uncached input + 99,001 cache reads = 100,001 prompt tokens: the upper tier,
    // although the uncached input alone is far below 100k.
    //   1,000 × 500 + 99,001 × 50 + 100 × 2,500 = 500,000 + 4,950,050 + 250,000 = 5,700,050
    //   (the lower row would give 100,000 + 990,010 + 50,000 = 1,140,010)
    let reads = tokens(1_000, 0, 0, 99_001, 100);
    assert_eq!(
        table.cost(Some("claude-haiku-5-5"), &reads, &CostContext::LIST),
        Some(1_000 * 500 + 99_001 * 50 + 100 * 2_500)
    );
    // 1,000 input + 99,000 1-hour writes + 1 5-minute write = 100,001: upper tier.
    //   1,000 × 500 + 1 × 625 + 99,000 × 1,000 = 500,000 + 625 + 99,000,000 = 99,500,625
    let writes = tokens(1_000, 1, 99_000, 0, 0);
    assert_eq!(
        table.cost(Some("claude-haiku-5-5"), &writes, &CostContext::LIST),
        Some(1_000 * 500 + 625 + 99_000 * 1_000)
    );
    // Output does not: 100,000 prompt tokens and 50,000 output stay in the lower tier.
    //   100,000 × 100 + 50,000 × 500 = 10,000,000 + 25,000,000
    let long_answer = tokens(100_000, 0, 0, 0, 50_000);
    assert_eq!(
        table.cost(Some("claude-haiku-5-5"), &long_answer, &CostContext::LIST),
        Some(100_000 * 100 + 50_000 * 500)
    );
}

// === US-only inference and fast mode ===

#[test]
fn us_only_inference_and_fast_mode_scale_every_class() {
    // The claude-opus-5-5 request above lists at 123,600,000 nano-dollars.
    let table = PriceTable::shipped();
    let opus = tokens(2_400, 6_000, 0, 120_000, 3_000);
    let list = 2_400 * 4_000 + 6_000 * 5_000 + 120_000 * 200 + 3_000 * 20_000;
    assert_eq!(list, 123_600_000);
    let cost = |geo, speed| {
        let ctx = table.context_for(None, "claude-opus-5-5", false, geo, speed);
        table.cost(Some("claude-opus-5-5"), &opus, &ctx)
    };
    assert_eq!(cost(InferenceGeo::Global, Speed::Standard), Some(list));
    assert_eq!(cost(InferenceGeo::Unreported, Speed::Standard), Some(list));
    assert_eq!(cost(InferenceGeo::Other, Speed::Standard), Some(list));
    // US-only: × 1.1 = 135,960,000.
    assert_eq!(
        cost(InferenceGeo::Us, Speed::Standard),
        Some(list * 11 / 10)
    );
    // Fast mode at the default × 2 = 247,200,000.
    assert_eq!(cost(InferenceGeo::Global, Speed::Fast), Some(list * 2));
    // Both: × 2.2 = 271,920,000.
    assert_eq!(cost(InferenceGeo::Us, Speed::Fast), Some(list * 22 / 10));
    // Batched as well: half of that, 135,960,000.
    let batched = table.context_for(None, "claude-opus-5-5", true, InferenceGeo::Us, Speed::Fast);
    assert_eq!(
        table.cost(Some("claude-opus-5-5"), &opus, &batched),
        Some(list * 22 / 10 / 2)
    );
}

#[test]
fn the_us_only_surcharge_is_rounded_once_with_the_rest() {
    // One 5-minute write on claude-haiku-5-5 ($0.125/M = 125), US-only, client × 0.7:
    //   exact: 125 × 1.1 × 0.7 = 96.25 → 96
    //   rounding after the surcharge would give 137.5 → 138 × 0.7 = 96.6 → 97.
    let table = table(r#"client-multipliers = { "team-a" = "0.7" }"#);
    let ctx = table.context_for(
        Some("team-a"),
        "claude-haiku-5-5",
        false,
        InferenceGeo::Us,
        Speed::Standard,
    );
    let one_write = tokens(0, 1, 0, 0, 0);
    assert_eq!(
        table.cost(Some("claude-haiku-5-5"), &one_write, &ctx),
        Some(96)
    );
}

#[test]
fn the_fast_mode_multiplier_defaults_to_two_and_is_configurable() {
    let speed_ppm = |table: &PriceTable, speed| {
        table
            .context_for(
                None,
                "claude-opus-5-5",
                false,
                InferenceGeo::Unreported,
                speed,
            )
            .speed_multiplier_ppm
    };
    assert_eq!(speed_ppm(&PriceTable::shipped(), Speed::Fast), 2_000_000);
    assert_eq!(speed_ppm(&PriceTable::default(), Speed::Fast), 2_000_000);
    assert_eq!(speed_ppm(&PriceTable::shipped(), Speed::Standard), PPM);
    let six = table(r#"fast-mode-multiplier = "6""#);
    assert_eq!(speed_ppm(&six, Speed::Fast), 6_000_000);
    assert_eq!(speed_ppm(&six, Speed::Standard), PPM);
    // 10 output tokens of claude-opus-5-5 in fast mode at × 6: 10 × 20,000 × 6 = 1,200,000.
    let ctx = six.context_for(
        None,
        "claude-opus-5-5",
        false,
        InferenceGeo::Unreported,
        Speed::Fast,
    );
    assert_eq!(
        six.cost(Some("claude-opus-5-5"), &usage(0, 0, 10), &ctx),
        Some(10 * 20_000 * 6)
    );
    let err = override_error(r#"fast-mode-multiplier = "-2""#);
    assert!(
        matches!(
            err,
            Error::Multiplier {
                reason: DecimalError::Negative,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.fast-mode-multiplier: "-2""#),
        "{err}"
    );
}

// === token classes ===

#[test]
fn one_hour_cache_writes_cost_twice_input_not_the_five_minute_rate() {
    // claude-sonnet-4-6: input 3000, 5m write 3750 (1.25×), 1h write 6000 (2×), output 15000.
    //   input      10 × 3000  =     30,000
    //   5m write 1000 × 3750  =  3,750,000
    //   1h write 2000 × 6000  = 12,000,000   (at 3750 it would be 7,500,000)
    //   output    100 × 15000 =  1,500,000
    //   total                 = 17,280,000   (12,780,000 if 1h were priced as 5m)
    let mut u = usage(10, 0, 100);
    u.set_cache_writes(3_000, 2_000);
    let cost = PriceTable::shipped().cost(Some("claude-sonnet-4-6"), &u, &CostContext::LIST);
    assert_eq!(cost, Some(17_280_000));
}

#[test]
fn cache_writes_reported_only_as_a_total_are_five_minute_writes() {
    // the 2026 list: without a TTL split, every write is priced at the 5-minute rate.
    // claude-sonnet-4-6: 1000 × 3750 = 3,750,000.
    let u = Usage {
        cache_write_tokens: 1_000,
        ..Usage::default()
    };
    let cost = PriceTable::shipped().cost(Some("claude-sonnet-4-6"), &u, &CostContext::LIST);
    assert_eq!(cost, Some(3_750_000));
}

#[test]
fn a_known_model_with_no_tokens_costs_zero_not_unknown() {
    let cost = PriceTable::shipped().cost(
        Some("claude-opus-4-8"),
        &Usage::default(),
        &CostContext::LIST,
    );
    assert_eq!(cost, Some(0));
}

// === batch ===

#[test]
fn batch_halves_every_class() {
    // The 5m/1h request above, batched: 17,280,000 / 2 = 8,640,000.
    let mut u = usage(10, 0, 100);
    u.set_cache_writes(3_000, 2_000);
    let cost = PriceTable::shipped().cost(Some("claude-sonnet-4-6"), &u, &ctx(true, PPM, PPM));
    assert_eq!(cost, Some(8_640_000));
}

#[test]
fn batch_halves_cache_only_usage_too() {
    // the 2026 list: cache reads inside a batch are at 50% as well.
    // claude-haiku-4-5: 2048 reads × 100 = 204,800; batched 102,400.
    let u = usage(0, 2_048, 0);
    let cost = PriceTable::shipped().cost(Some("claude-haiku-4-5"), &u, &ctx(true, PPM, PPM));
    assert_eq!(cost, Some(102_400));
}

// === multipliers and rounding ===

#[test]
fn multipliers_from_config_round_once_at_the_end() {
    // One cache read on claude-haiku-4-5 (100 nano-dollars), batched, client ×0.75, model ×1.1:
    //   exact: 100 × 0.5 × 0.75 × 1.1 = 41.25 → 41
    //   rounding after each step would give 50 → 37.5 → 38 → 41.8 → 42.
    let table = table(
        r#"
        client-multipliers = { "team-a" = "0.75" }
        model-multipliers = { "claude-haiku-4-5" = 1.1 }
        "#,
    );
    let (client, model) = table.multipliers_for(Some("team-a"), "claude-haiku-4-5-20251001");
    assert_eq!((client, model), (750_000, 1_100_000));
    let cost = table.cost(
        Some("claude-haiku-4-5-20251001"),
        &usage(0, 1, 0),
        &ctx(true, client, model),
    );
    assert_eq!(cost, Some(41));
}

#[test]
fn rounding_is_half_up() {
    // One cache read on claude-haiku-4-5 is 100 nano-dollars.
    let table = PriceTable::shipped();
    let one_read = usage(0, 1, 0);
    let cost = |client_ppm| {
        table.cost(
            Some("claude-haiku-4-5"),
            &one_read,
            &ctx(false, client_ppm, PPM),
        )
    };
    // ×0.025 = 2.5 → 3 (half-even and truncation would give 2)
    assert_eq!(cost(25_000), Some(3));
    // ×0.024 = 2.4 → 2 (not a ceiling)
    assert_eq!(cost(24_000), Some(2));
    // ×0.035 = 3.5 → 4
    assert_eq!(cost(35_000), Some(4));
}

#[test]
fn multipliers_default_to_one() {
    let table = table(
        r#"
        client-multipliers = { "team-a" = "1.5" }
        model-multipliers = { "claude-opus-4-6" = "1.1" }
        "#,
    );
    assert_eq!(
        table.multipliers_for(None, "claude-opus-4-6"),
        (PPM, 1_100_000)
    );
    assert_eq!(
        table.multipliers_for(Some("team-b"), "claude-opus-4-8"),
        (PPM, PPM)
    );
    assert_eq!(
        table.multipliers_for(Some("team-a"), "no-such-model"),
        (1_500_000, PPM)
    );
}

#[test]
fn a_model_multiplier_follows_every_name_of_its_model() {
    let table = table(
        r#"
        aliases = { "house-fast" = "claude-haiku-4-5" }
        model-multipliers = { "claude-haiku-4-5-20251001" = "1.2" }
        "#,
    );
    for name in [
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "house-fast",
    ] {
        assert_eq!(table.multipliers_for(None, name).1, 1_200_000, "{name}");
    }
}

#[test]
fn multiplier_values_are_parsed_exactly_and_bounded() {
    let parsed = table(
        r#"
        client-multipliers = { "free" = 0, "cheap" = "0.000001", "float" = 1.15 }
        "#,
    );
    assert_eq!(parsed.multipliers_for(Some("free"), "x").0, 0);
    assert_eq!(parsed.multipliers_for(Some("cheap"), "x").0, 1);
    assert_eq!(parsed.multipliers_for(Some("float"), "x").0, 1_150_000);

    let err = override_error(r#"client-multipliers = { "a" = "1.0000001" }"#);
    assert!(
        matches!(
            err,
            Error::Multiplier {
                reason: DecimalError::TooPrecise { places: 6 },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.client-multipliers."a": "1.0000001""#),
        "{err}"
    );
    let err = override_error(r#"model-multipliers = { "claude-opus-4-8" = 1100 }"#);
    assert!(
        matches!(
            err,
            Error::Multiplier {
                reason: DecimalError::TooLarge,
                ..
            }
        ),
        "{err}"
    );
    let err = override_error(r#"client-multipliers = { "a" = -1 }"#);
    assert!(
        matches!(
            err,
            Error::Multiplier {
                reason: DecimalError::Negative,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_multiplier_for_an_unpriced_model_is_refused() {
    let err = override_error(r#"model-multipliers = { "claude-nope" = "1.1" }"#);
    assert!(
        matches!(&err, Error::UnpricedModelMultiplier { model, .. } if model == "claude-nope"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.model-multipliers."claude-nope": "#),
        "{err}"
    );
}

#[test]
fn two_multipliers_for_one_model_are_refused() {
    let err = override_error(
        r#"model-multipliers = { "claude-haiku-4-5" = "1.1", "claude-haiku-4-5-20251001" = "1.2" }"#,
    );
    assert!(
        matches!(err, Error::DuplicateModelMultiplier { .. }),
        "{err}"
    );
}

#[test]
fn a_cost_too_large_for_i64_is_unknown() {
    // u64::MAX output tokens × 25,000 ≈ 4.6e23 nano-dollars, past i64::MAX ≈ 9.2e18.
    let cost = PriceTable::shipped().cost(
        Some("claude-opus-4-8"),
        &usage(0, 0, u64::MAX),
        &CostContext::LIST,
    );
    assert_eq!(cost, None);
}

// === resolving a model name ===

#[test]
fn an_unknown_or_missing_model_has_no_cost() {
    let table = PriceTable::shipped();
    let u = usage(100, 0, 100);
    assert_eq!(table.pricing("gpt-4o"), None);
    assert_eq!(table.cost(Some("gpt-4o"), &u, &CostContext::LIST), None);
    assert_eq!(table.cost(None, &u, &CostContext::LIST), None);
}

#[test]
fn dated_ids_resolve_to_their_model() {
    let table = table(r#"models."claude-opus-4-8" = { input = "7", output = "30" }"#);
    let opus = row(&table, "claude-opus-4-8");
    assert_eq!(opus.map(|p| (p.input, p.output)), Some((7_000, 30_000)));
    // A snapshot the shipped file does not list still reaches the row by its date suffix.
    assert_eq!(row(&table, "claude-opus-4-8-20260115"), opus);
    // Not a date: seven digits, or a word.
    assert_eq!(table.pricing("claude-opus-4-8-2026011"), None);
    assert_eq!(table.pricing("claude-opus-4-8-latest"), None);
}

#[test]
fn listed_dated_ids_follow_an_override_of_their_model() {
    let table = table(r#"models."claude-haiku-4-5" = { input = "4", output = "20" }"#);
    let dated = row(&table, "claude-haiku-4-5-20251001");
    assert_eq!(dated.map(|p| (p.input, p.output)), Some((4_000, 20_000)));
}

#[test]
fn a_dated_id_can_be_priced_apart_from_its_model() {
    let table = table(r#"models."claude-haiku-4-5-20251001" = { input = "4", output = "20" }"#);
    assert_eq!(
        row(&table, "claude-haiku-4-5-20251001").map(|p| p.input),
        Some(4_000)
    );
    // the 2026 list: Haiku 4.5 input $1/M.
    assert_eq!(
        row(&table, "claude-haiku-4-5").map(|p| p.input),
        Some(1_000)
    );
}

#[test]
fn aliases_resolve_to_their_target() {
    let table = table(
        r#"
        [aliases]
        "house-default" = "claude-sonnet-4-6"
        "house-fast" = "claude-haiku-4-5-20251001"
        "#,
    );
    // claude-haiku-4-5: 14 × 1000 + 38 × 5000 = 204,000.
    let cost = table.cost(Some("house-fast"), &usage(14, 0, 38), &CostContext::LIST);
    assert_eq!(cost, Some(204_000));
    // claude-sonnet-4-6: 1 × 3000 + 1 × 15000 = 18,000.
    let cost = table.cost(Some("house-default"), &usage(1, 0, 1), &CostContext::LIST);
    assert_eq!(cost, Some(18_000));
}

#[test]
fn an_alias_must_lead_to_a_priced_model() {
    let err = override_error(r#"aliases = { "house" = "claude-nope" }"#);
    assert!(
        matches!(&err, Error::UnknownAliasTarget { target, .. } if target == "claude-nope"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(r#"pricing.aliases."house": "#),
        "{err}"
    );
    // An alias of an alias is refused too (no chains to follow at request time).
    let err = override_error(r#"aliases = { "a" = "claude-haiku-4-5", "b" = "a" }"#);
    assert!(
        matches!(&err, Error::UnknownAliasTarget { target, .. } if target == "a"),
        "{err}"
    );
}

#[test]
fn an_alias_cannot_hide_a_listed_model() {
    for name in [
        "claude-opus-4-8",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-8-20990101",
    ] {
        let text = format!(r#"aliases = {{ "{name}" = "claude-haiku-4-5" }}"#);
        let err = override_error(&text);
        assert!(
            matches!(err, Error::AliasShadowsModel { .. }),
            "{name}: {err}"
        );
    }
}

// === overrides ===

#[test]
fn an_override_replaces_the_whole_shipped_row() {
    // $2.50 / $12.50 per M → 2500 / 12500; caches derived from the new input:
    // 5m 1.25 × 2500 = 3125, 1h 2 × 2500 = 5000, read 0.1 × 2500 = 250.
    let table = table(r#"models."claude-sonnet-4-6" = { input = "2.5", output = "12.5" }"#);
    assert_eq!(
        row(&table, "claude-sonnet-4-6"),
        Some(ModelPrice {
            input: 2_500,
            cache_write_5m: 3_125,
            cache_write_1h: 5_000,
            cache_read: 250,
            output: 12_500,
        })
    );
    // 10 × 2500 + 10 × 12500 = 150,000 (at shipped prices it would be 180,000).
    let cost = table.cost(
        Some("claude-sonnet-4-6"),
        &usage(10, 0, 10),
        &CostContext::LIST,
    );
    assert_eq!(cost, Some(150_000));
}

#[test]
fn an_override_can_add_a_model_the_table_lacks() {
    // gpt-4o, the 2026 list: $2.50 in, $10 out; no cache write, cached input $1.25.
    let table = table(
        r#"
        [models."gpt-4o"]
        input = "2.50"
        output = "10.00"
        cache-read = "1.25"
        "#,
    );
    // 1000 × 2500 + 1000 × 1250 + 100 × 10000 = 2,500,000 + 1,250,000 + 1,000,000.
    let cost = table.cost(
        Some("gpt-4o"),
        &usage(1_000, 1_000, 100),
        &CostContext::LIST,
    );
    assert_eq!(cost, Some(4_750_000));
}

#[test]
fn cache_prices_not_given_are_derived_from_input() {
    // $3 input: 5m 3750, 1h 6000 derived; the given read $0.15 → 150 wins over 0.1 × 3000.
    let table = table(r#"models."claude-x" = { input = "3", output = "15", cache-read = "0.15" }"#);
    assert_eq!(
        row(&table, "claude-x"),
        Some(ModelPrice {
            input: 3_000,
            cache_write_5m: 3_750,
            cache_write_1h: 6_000,
            cache_read: 150,
            output: 15_000,
        })
    );
}

#[test]
fn a_derived_cache_price_that_is_not_whole_must_be_given() {
    // 1.25 × 250 = 312.5 nano-dollars: not a price anyone published (Haiku 3's is 300).
    let err = override_error(r#"models."claude-x" = { input = "0.25", output = "1.25" }"#);
    assert!(
        matches!(&err, Error::InexactDerived { factor: "1.25", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.models."claude-x".cache-write-5m: "#),
        "{err}"
    );
    // 0.1 × 1 nano-dollar: the read price is the one missing.
    let err = override_error(
        r#"models."claude-x" = { input = "0.001", output = "1", cache-write-5m = "0.002" }"#,
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.models."claude-x".cache-read: "#),
        "{err}"
    );
}

#[test]
fn price_errors_name_the_field() {
    let err = override_error(r#"models."claude-x" = { input = "0.0001", output = "1" }"#);
    assert_eq!(
        err.to_string(),
        "pricing.models.\"claude-x\".input: \"0.0001\" has more than 3 decimal places; prices \
         are USD per million tokens from 0 to 1000000 in steps of 0.001 (one nano-dollar per \
         token)"
    );
    let err = override_error(r#"models."claude-x" = { input = "1", output = "lots" }"#);
    assert!(
        err.to_string()
            .starts_with(r#"pricing.models."claude-x".output: "lots" is not"#),
        "{err}"
    );
}

#[test]
fn unknown_config_fields_are_refused() {
    let typo = r#"models."claude-x" = { input = "1", output = "5", cache-write = "1.25" }"#;
    assert!(toml::from_str::<PricingConfig>(typo).is_err());
    assert!(toml::from_str::<PricingConfig>(r#"alias = { "a" = "b" }"#).is_err());
    assert!(
        toml::from_str::<PricingConfig>(r#"models."x" = { input = true, output = "1" }"#).is_err()
    );
    // input and output are required: a row without them cannot anchor its cache prices.
    assert!(toml::from_str::<PricingConfig>(r#"models."x" = { input = "1" }"#).is_err());
}

#[test]
fn an_override_can_set_every_token_class() {
    // $4.50 / $5.50 / $9 / $0.30 / $22 per M, none of them the derived ones.
    let table = table(
        r#"
        [models."claude-opus-5-5"]
        input = "4.50"
        cache-write-5m = "5.50"
        cache-write-1h = "9"
        cache-read = "0.30"
        output = "22"
        "#,
    );
    assert_eq!(
        row(&table, "claude-opus-5-5"),
        Some(ModelPrice {
            input: 4_500,
            cache_write_5m: 5_500,
            cache_write_1h: 9_000,
            cache_read: 300,
            output: 22_000,
        })
    );
}

#[test]
fn an_override_can_give_a_model_a_long_prompt_tier() {
    // Base $0.20 / $1 with derived caches 250 / 400 / 20; above 200k $0.40 / $2 with the
    // read given ($0.03) and the writes derived from the tier's own input: 500 / 800.
    let table = table(
        r#"
        [models."claude-haiku-5-5"]
        input = "0.20"
        output = "1"
        [models."claude-haiku-5-5".long-prompt]
        above-tokens = 200_000
        input = "0.40"
        output = "2"
        cache-read = "0.03"
        "#,
    );
    assert_eq!(
        table.pricing("claude-haiku-5-5"),
        Some(&ModelPricing {
            base: ModelPrice {
                input: 200,
                cache_write_5m: 250,
                cache_write_1h: 400,
                cache_read: 20,
                output: 1_000,
            },
            long_prompt: Some(LongPrompt {
                above_tokens: 200_000,
                price: ModelPrice {
                    input: 400,
                    cache_write_5m: 500,
                    cache_write_1h: 800,
                    cache_read: 30,
                    output: 2_000,
                },
            }),
        })
    );
    // The configured threshold, not the shipped 100k: 150,000 input tokens stay below it.
    //   150,000 × 200 = 30,000,000 (at the upper row it would be 60,000,000)
    assert_eq!(
        table.cost(
            Some("claude-haiku-5-5"),
            &usage(150_000, 0, 0),
            &CostContext::LIST
        ),
        Some(150_000 * 200)
    );
}

#[test]
fn an_override_without_a_tier_drops_the_shipped_one() {
    // An entry replaces the whole row, tier included: 150,000 input at $0.10 = 15,000,000
    // whatever the prompt size.
    let table = table(r#"models."claude-haiku-5-5" = { input = "0.10", output = "0.50" }"#);
    assert_eq!(
        table.pricing("claude-haiku-5-5").map(|p| p.long_prompt),
        Some(None)
    );
    assert_eq!(
        table.cost(
            Some("claude-haiku-5-5"),
            &usage(150_000, 0, 0),
            &CostContext::LIST
        ),
        Some(150_000 * 100)
    );
}

#[test]
fn tier_errors_name_the_field() {
    let err = override_error(
        r#"models."claude-x" = { input = "1", output = "5", long-prompt = { above-tokens = 10, input = "0.0001", output = "1" } }"#,
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.models."claude-x".long-prompt.input: "0.0001""#),
        "{err}"
    );
    // A tier whose derived 5-minute write is not whole (1.25 × 0.25 $/M = 312.5).
    let err = override_error(
        r#"models."claude-x" = { input = "1", output = "5", long-prompt = { above-tokens = 10, input = "0.25", output = "1" } }"#,
    );
    assert!(
        err.to_string()
            .starts_with(r#"pricing.models."claude-x".long-prompt.cache-write-5m: "#),
        "{err}"
    );
    // The threshold is required, and unknown fields are refused as elsewhere.
    for text in [
        r#"models."x" = { input = "1", output = "5", long-prompt = { input = "2", output = "9" } }"#,
        r#"models."x" = { input = "1", output = "5", long-prompt = { above-tokens = 1, input = "2", output = "9", above = 3 } }"#,
    ] {
        assert!(toml::from_str::<PricingConfig>(text).is_err(), "{text}");
    }
}

// === decimals ===

#[test]
fn decimal_text_converts_exactly() {
    let price = |s| parse_scaled(s, PRICE_PLACES, MAX_PRICE_USD_PER_M);
    assert_eq!(price("0.125"), Ok(125));
    assert_eq!(price("3"), Ok(3_000));
    assert_eq!(price("3.00"), Ok(3_000));
    assert_eq!(price("18.75"), Ok(18_750));
    // Zeros past the third place lose nothing.
    assert_eq!(price("0.1250"), Ok(125));
    assert_eq!(price("0"), Ok(0));
    assert_eq!(price("1000000"), Ok(1_000_000_000));
}

#[test]
fn decimal_text_refuses_what_it_cannot_convert_exactly() {
    let price = |s| parse_scaled(s, PRICE_PLACES, MAX_PRICE_USD_PER_M);
    assert_eq!(price("0.0001"), Err(DecimalError::TooPrecise { places: 3 }));
    assert_eq!(price("0.1251"), Err(DecimalError::TooPrecise { places: 3 }));
    assert_eq!(price("-1"), Err(DecimalError::Negative));
    assert_eq!(price("1000000.001"), Err(DecimalError::TooLarge));
    assert_eq!(
        price("99999999999999999999999"),
        Err(DecimalError::TooLarge)
    );
    for malformed in [
        "", ".5", "5.", "1e3", "+3", " 3", "1.2.3", "-x", "NaN", "inf", "1_000",
    ] {
        assert_eq!(
            price(malformed),
            Err(DecimalError::Malformed),
            "{malformed:?}"
        );
    }
}

#[test]
fn toml_numbers_convert_as_written() {
    // An integer, a float and a float in exponent form, through the real deserializer.
    let table = table(
        r#"
        models."a" = { input = 3, output = 15 }
        models."b" = { input = 0.125, output = 0.625, cache-write-5m = 0.157, cache-read = 0.013 }
        "#,
    );
    assert_eq!(
        row(&table, "a").map(|p| (p.input, p.output)),
        Some((3_000, 15_000))
    );
    // 1h derived: 2 × 125 = 250.
    assert_eq!(
        row(&table, "b"),
        Some(ModelPrice {
            input: 125,
            cache_write_5m: 157,
            cache_write_1h: 250,
            cache_read: 13,
            output: 625,
        })
    );
    let err = override_error(r#"models."c" = { input = 1e-4, output = 1 }"#);
    assert!(
        matches!(
            err,
            Error::Price {
                reason: DecimalError::TooPrecise { places: 3 },
                ..
            }
        ),
        "{err}"
    );
}

// === the shipped table ===

#[test]
fn shipped_prices_match_pricing_md() {
    // (id, input, 5m write, 1h write, read, output) in nano-dollars per token ($/M × 1000),
    // copied from the Dec 2026 list for the models released since September 2026 (cache
    // prices it does not give derived by the rule, marked) and from the 2026 list for the
    // others. claude-haiku-5-5 has two rows: see haiku_5_5_is_priced_in_two_tiers_by_prompt_size.
    let expected: &[(&str, [u64; 5])] = &[
        // caches derived: 1.25 × 8000, 2 × 8000, 0.1 × 8000
        ("claude-fable-5-2", [8_000, 10_000, 16_000, 800, 40_000]),
        // writes derived, read published
        ("claude-fable-5-1", [10_000, 12_500, 20_000, 250, 50_000]),
        ("claude-opus-5-5", [4_000, 5_000, 8_000, 200, 20_000]),
        ("claude-sonnet-5-5", [2_000, 2_500, 4_000, 200, 10_000]),
        ("claude-fable-5", [10_000, 12_500, 20_000, 1_000, 50_000]),
        ("claude-mythos-5", [10_000, 12_500, 20_000, 1_000, 50_000]),
        ("claude-opus-5", [5_000, 6_250, 10_000, 500, 25_000]),
        ("claude-opus-4-8", [5_000, 6_250, 10_000, 500, 25_000]),
        ("claude-opus-4-7", [5_000, 6_250, 10_000, 500, 25_000]),
        ("claude-opus-4-6", [5_000, 6_250, 10_000, 500, 25_000]),
        ("claude-opus-4-5", [5_000, 6_250, 10_000, 500, 25_000]),
        (
            "claude-opus-4-5-20251101",
            [5_000, 6_250, 10_000, 500, 25_000],
        ),
        (
            "claude-opus-4-1-20250805",
            [15_000, 18_750, 30_000, 1_500, 75_000],
        ),
        (
            "claude-opus-4-20250514",
            [15_000, 18_750, 30_000, 1_500, 75_000],
        ),
        ("claude-sonnet-5", [2_000, 2_500, 4_000, 200, 10_000]),
        ("claude-sonnet-4-6", [3_000, 3_750, 6_000, 300, 15_000]),
        ("claude-sonnet-4-5", [3_000, 3_750, 6_000, 300, 15_000]),
        (
            "claude-sonnet-4-5-20250929",
            [3_000, 3_750, 6_000, 300, 15_000],
        ),
        (
            "claude-sonnet-4-20250514",
            [3_000, 3_750, 6_000, 300, 15_000],
        ),
        (
            "claude-3-7-sonnet-20250219",
            [3_000, 3_750, 6_000, 300, 15_000],
        ),
        ("claude-haiku-4-5", [1_000, 1_250, 2_000, 100, 5_000]),
        (
            "claude-haiku-4-5-20251001",
            [1_000, 1_250, 2_000, 100, 5_000],
        ),
        ("claude-3-5-haiku-20241022", [800, 1_000, 1_600, 80, 4_000]),
        (
            "claude-3-opus-20240229",
            [15_000, 18_750, 30_000, 1_500, 75_000],
        ),
        ("claude-3-haiku-20240307", [250, 300, 500, 30, 1_250]),
    ];
    let table = PriceTable::shipped();
    for (id, [input, cache_write_5m, cache_write_1h, cache_read, output]) in expected {
        let want = ModelPrice {
            input: *input,
            cache_write_5m: *cache_write_5m,
            cache_write_1h: *cache_write_1h,
            cache_read: *cache_read,
            output: *output,
        };
        assert_eq!(row(&table, id), Some(want), "{id}");
    }
}

#[test]
fn derived_rule_matches_pricing_md() {
    // Opus 4.8 at $5 in: $6.25 / $10 / $0.50 → 6250 / 10000 / 500.
    assert_eq!(
        ModelPrice::derived(5_000, 25_000),
        Some(ModelPrice {
            input: 5_000,
            cache_write_5m: 6_250,
            cache_write_1h: 10_000,
            cache_read: 500,
            output: 25_000,
        })
    );
    // Haiku 3 at $0.25: 1.25 × 250 = 312.5, not whole.
    assert_eq!(ModelPrice::derived(250, 1_250), None);
}

#[test]
fn a_shipped_file_naming_a_model_twice_is_refused() {
    let text = r#"
        [[model]]
        id = "claude-a"
        dated-ids = ["claude-a-20250101"]
        input = "1"
        output = "5"

        [[model]]
        id = "claude-a-20250101"
        input = "2"
        output = "10"
    "#;
    let err = PriceTable::from_shipped(text).expect_err("a duplicate id should be refused");
    assert!(
        matches!(&err, Error::DuplicateId { id, .. } if id == "claude-a-20250101"),
        "{err}"
    );
}

#[test]
fn an_empty_table_prices_only_what_config_lists() {
    let table = PriceTable::default()
        .with_overrides(&config(
            r#"models."claude-x" = { input = "1", output = "5" }"#,
        ))
        .expect("valid config");
    assert_eq!(table.pricing("claude-haiku-4-5"), None);
    assert_eq!(row(&table, "claude-x").map(|p| p.cache_read), Some(100));
}
