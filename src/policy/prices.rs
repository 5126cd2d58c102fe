//! The bundled, dated price table behind the cache-state resources' estimated savings
//! (policy.md "Prompt parts and cache awareness").
//!
//! Owns: which models are priced, their input price per million tokens, the cache-read
//! multiplier (what a cached input token costs relative to a fresh one), and the model-name
//! matching. Prices are the vendors' published list prices as of [`PRICE_TABLE_DATE`]; they
//! are an estimate, not a bill, and a model not in the table is reported as unpriced.
//!
//! Not here: the statistics themselves (`policy::cache`), SQL (`store`).

use serde::Serialize;

use crate::providers::Provider;

/// The date the table's prices were last checked against the vendors' price lists.
pub const PRICE_TABLE_DATE: &str = "2025-11-01";

/// One priced model family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub cli: Provider,
    /// A lowercase fragment of the model id (`sonnet` matches `claude-sonnet-4-5-20250929`).
    pub pattern: &'static str,
    /// USD per million fresh input tokens.
    pub input_usd_per_mtok: f64,
    /// A cached input token costs this fraction of a fresh one.
    pub cache_read_multiplier: f64,
}

const fn price(
    cli: Provider,
    pattern: &'static str,
    input_usd_per_mtok: f64,
    cache_read_multiplier: f64,
) -> ModelPrice {
    ModelPrice {
        cli,
        pattern,
        input_usd_per_mtok,
        cache_read_multiplier,
    }
}

/// The table, most specific pattern first within each CLI (the first match wins).
pub const PRICES: &[ModelPrice] = &[
    price(Provider::Claude, "opus-4-5", 5.0, 0.1),
    price(Provider::Claude, "opus", 15.0, 0.1),
    price(Provider::Claude, "sonnet", 3.0, 0.1),
    price(Provider::Claude, "haiku-4", 1.0, 0.1),
    price(Provider::Claude, "haiku", 0.8, 0.1),
    price(Provider::Codex, "gpt-5-mini", 0.25, 0.1),
    price(Provider::Codex, "gpt-5", 1.25, 0.1),
    price(Provider::Codex, "gpt-4.1", 2.0, 0.25),
    price(Provider::Gemini, "gemini-2.5-pro", 1.25, 0.25),
    price(Provider::Gemini, "gemini-2.5-flash", 0.30, 0.25),
    price(Provider::Grok, "grok-code-fast", 0.20, 0.1),
    price(Provider::Grok, "grok-4", 3.0, 0.25),
];

/// The price of `model` as run by `cli`, if the table has it.
pub fn lookup(cli: Provider, model: &str) -> Option<&'static ModelPrice> {
    let model = model.to_ascii_lowercase();
    PRICES
        .iter()
        .find(|p| p.cli == cli && model.contains(p.pattern))
}

/// Estimated USD saved by `cache_read_tokens` cached input tokens of `model`:
/// tokens × input price × (1 − cache-read multiplier). `None` when the model is unpriced.
pub fn savings_usd(cli: Provider, model: &str, cache_read_tokens: i64) -> Option<f64> {
    let p = lookup(cli, model)?;
    let tokens = cache_read_tokens.max(0) as f64;
    Some(tokens * p.input_usd_per_mtok / 1_000_000.0 * (1.0 - p.cache_read_multiplier))
}

/// The priced patterns, for the resources' `priceTable.pricedModels`.
pub fn priced_models() -> Vec<String> {
    PRICES
        .iter()
        .map(|p| format!("{}:{}", p.cli.key(), p.pattern))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_pattern_wins() {
        let opus45 = lookup(Provider::Claude, "claude-opus-4-5-20251101").unwrap();
        assert_eq!(opus45.input_usd_per_mtok, 5.0);
        let opus41 = lookup(Provider::Claude, "claude-opus-4-1").unwrap();
        assert_eq!(opus41.input_usd_per_mtok, 15.0);
        assert_eq!(
            lookup(Provider::Codex, "GPT-5-mini")
                .unwrap()
                .input_usd_per_mtok,
            0.25
        );
        assert!(lookup(Provider::Mistral, "devstral-medium").is_none());
        // A model id is matched only for its own CLI.
        assert!(lookup(Provider::Codex, "sonnet").is_none());
    }

    #[test]
    fn savings_are_tokens_times_price_times_discount() {
        let s = savings_usd(Provider::Claude, "claude-sonnet-4-5", 1_000_000).unwrap();
        assert!((s - 2.7).abs() < 1e-9, "{s}");
        assert_eq!(savings_usd(Provider::Claude, "sonnet", 0), Some(0.0));
        assert_eq!(savings_usd(Provider::Mistral, "devstral", 10), None);
    }

    #[test]
    fn the_table_is_dated_and_sane() {
        assert!(chrono::NaiveDate::parse_from_str(PRICE_TABLE_DATE, "%Y-%m-%d").is_ok());
        for p in PRICES {
            assert!(p.input_usd_per_mtok > 0.0 && (0.0..1.0).contains(&p.cache_read_multiplier));
            assert_eq!(p.pattern, p.pattern.to_ascii_lowercase());
        }
    }
}
