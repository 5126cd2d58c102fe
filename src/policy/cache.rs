//! Cache awareness (policy.md "Prompt parts and cache awareness"): the figures the
//! `cache-state://` resources report, the claude TTL arithmetic and the
//! `cache_ttl_expiring_soon` warning, and how many prompt parts carried `cacheControl`.
//!
//! Owns: pure functions over the per-(CLI, model) sums the store returns
//! ([`CacheStatsRow`]) — hits, hit rate, tokens, estimated savings from the bundled price
//! table ([`super::prices`]) — and over session timestamps. Nothing here reads prompt or
//! response text, so nothing built here can leak it.
//!
//! Not here: the SQL (`store::requests::cache_stats`), URI parsing and MCP shaping
//! (`mcp::resources`), prompt assembly and the prefix hash (`providers::request`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::prices;
use crate::config::CacheAwarenessConfig;
use crate::providers::Provider;
use crate::providers::request::PromptParts;
use crate::store::{CacheStatsRow, Warning};

/// The warning a claude request gets when its session's cache expires within
/// [`TTL_WARNING_WINDOW_MS`] (with `[cache_awareness] warn_on_ttl_expiry`).
pub const CACHE_TTL_EXPIRING_SOON: &str = "cache_ttl_expiring_soon";

/// "Expires within 30 s".
pub const TTL_WARNING_WINDOW_MS: i64 = 30_000;

/// The resources cover the last 24 hours.
pub const WINDOW_HOURS: i64 = 24;

/// How many stable parts the caller marked with `cacheControl` (the flight recorder's
/// `cache_control_blocks`); `None` when the request had no `cacheControl`.
pub fn cache_control_blocks(parts: Option<&PromptParts>) -> Option<i64> {
    let cc = parts?.cache_control.as_ref()?;
    Some(
        [cc.system, cc.tools, cc.context]
            .into_iter()
            .filter(|flag| *flag == Some(true))
            .count() as i64,
    )
}

/// `anthropic_ttl_seconds` − time since `last_request_at`, never below 0.
pub fn ttl_remaining_ms(
    ttl_seconds: u32,
    last_request_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> i64 {
    let elapsed = (now - last_request_at).num_milliseconds().max(0);
    (i64::from(ttl_seconds) * 1000 - elapsed).max(0)
}

/// Parses a store timestamp (ISO-8601).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The `cache_ttl_expiring_soon` warning for a claude request on a session last used at
/// `last_used_at`, when the config asks for it and the cache is still alive but expires
/// within 30 s.
pub fn ttl_warning(
    config: &CacheAwarenessConfig,
    cli: Provider,
    last_used_at: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Warning> {
    if !config.warn_on_ttl_expiry || cli != Provider::Claude {
        return None;
    }
    let last = parse_time(last_used_at?)?;
    let remaining = ttl_remaining_ms(config.anthropic_ttl_seconds, last, now);
    (remaining > 0 && remaining <= TTL_WARNING_WINDOW_MS).then(|| {
        Warning::new(
            CACHE_TTL_EXPIRING_SOON,
            format!(
                "The session's prompt cache expires in about {} s (anthropic_ttl_seconds = {}): this request may pay full input price if it starts later",
                (remaining + 999) / 1000,
                config.anthropic_ttl_seconds
            ),
        )
    })
}

/// Request, hit, token and savings figures of a set of request rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheFigures {
    pub requests: i64,
    /// Requests that attached to an identical earlier job instead of running.
    pub deduped_requests: i64,
    /// Rows with `cache_read_tokens > 0`.
    pub cache_hits: i64,
    /// hits / requests (0 when none).
    pub hit_rate: f64,
    pub input_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    /// cache-read tokens × input price × (1 − cache-read multiplier), priced models only.
    pub estimated_savings_usd: f64,
}

impl CacheFigures {
    fn add(&mut self, row: &CacheStatsRow) {
        self.requests += row.requests;
        self.deduped_requests += row.deduped;
        self.cache_hits += row.hits;
        self.input_tokens += row.input_tokens;
        self.cache_read_tokens += row.cache_read_tokens;
        self.cache_creation_tokens += row.cache_creation_tokens;
        if let Some(saved) = row
            .model
            .as_deref()
            .and_then(|m| prices::savings_usd(row.cli, m, row.cache_read_tokens))
        {
            self.estimated_savings_usd += saved;
        }
        self.hit_rate = if self.requests > 0 {
            self.cache_hits as f64 / self.requests as f64
        } else {
            0.0
        };
    }

    fn of(rows: &[&CacheStatsRow]) -> CacheFigures {
        let mut figures = CacheFigures::default();
        for row in rows {
            figures.add(row);
        }
        figures
    }
}

/// One CLI's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CliFigures {
    pub cli: Provider,
    #[serde(flatten)]
    pub figures: CacheFigures,
}

/// One (CLI, model) pair's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFigures {
    pub cli: Provider,
    pub model: Option<String>,
    #[serde(flatten)]
    pub figures: CacheFigures,
}

/// Which prices the savings came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceTableInfo {
    pub date: &'static str,
    /// `cli:pattern` of every priced model family.
    pub priced_models: Vec<String>,
    /// `cli:model` of rows with cache reads whose model the table does not price (their
    /// savings are not counted).
    pub unpriced_models: Vec<String>,
}

/// The body shared by the three resources.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheReport {
    #[serde(flatten)]
    pub totals: CacheFigures,
    pub by_cli: Vec<CliFigures>,
    pub price_table: PriceTableInfo,
}

/// Sums the store's per-(CLI, model) rows into totals, a per-CLI breakdown and the price
/// table facts.
pub fn report(rows: &[CacheStatsRow]) -> CacheReport {
    let all: Vec<&CacheStatsRow> = rows.iter().collect();
    let mut per_cli: BTreeMap<Provider, Vec<&CacheStatsRow>> = BTreeMap::new();
    for row in rows {
        per_cli.entry(row.cli).or_default().push(row);
    }
    let unpriced_models = rows
        .iter()
        .filter(|r| r.cache_read_tokens > 0)
        .filter(|r| {
            r.model
                .as_deref()
                .and_then(|m| prices::lookup(r.cli, m))
                .is_none()
        })
        .map(|r| {
            format!(
                "{}:{}",
                r.cli.key(),
                r.model.as_deref().unwrap_or("(unknown)")
            )
        })
        .collect();
    CacheReport {
        totals: CacheFigures::of(&all),
        by_cli: per_cli
            .into_iter()
            .map(|(cli, rows)| CliFigures {
                cli,
                figures: CacheFigures::of(&rows),
            })
            .collect(),
        price_table: PriceTableInfo {
            date: prices::PRICE_TABLE_DATE,
            priced_models: prices::priced_models(),
            unpriced_models,
        },
    }
}

/// The per-(CLI, model) breakdown of `cache-state://prefix/{hash}`.
pub fn by_model(rows: &[CacheStatsRow]) -> Vec<ModelFigures> {
    rows.iter()
        .map(|row| ModelFigures {
            cli: row.cli,
            model: row.model.clone(),
            figures: CacheFigures::of(&[row]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::request::CacheControl;
    use chrono::Duration;

    fn row(
        cli: Provider,
        model: Option<&str>,
        requests: i64,
        hits: i64,
        read: i64,
    ) -> CacheStatsRow {
        CacheStatsRow {
            cli,
            model: model.map(str::to_string),
            requests,
            deduped: 0,
            hits,
            input_tokens: 100 * requests,
            cache_read_tokens: read,
            cache_creation_tokens: 10,
            cost_usd: 0.0,
        }
    }

    #[test]
    fn totals_breakdown_and_savings() {
        let rows = [
            row(Provider::Claude, Some("claude-sonnet-4-5"), 3, 2, 1_000_000),
            row(Provider::Claude, Some("haiku-x"), 1, 0, 0),
            row(Provider::Mistral, Some("devstral"), 2, 1, 500),
            row(Provider::Codex, None, 1, 0, 0),
        ];
        let r = report(&rows);
        assert_eq!(r.totals.requests, 7);
        assert_eq!(r.totals.cache_hits, 3);
        assert!((r.totals.hit_rate - 3.0 / 7.0).abs() < 1e-12);
        assert_eq!(r.totals.cache_read_tokens, 1_000_500);
        assert_eq!(r.totals.cache_creation_tokens, 40);
        assert!((r.totals.estimated_savings_usd - 2.7).abs() < 1e-9);
        let clis: Vec<_> = r
            .by_cli
            .iter()
            .map(|c| (c.cli, c.figures.requests))
            .collect();
        assert_eq!(
            clis,
            [
                (Provider::Claude, 4),
                (Provider::Codex, 1),
                (Provider::Mistral, 2)
            ]
        );
        assert_eq!(r.price_table.unpriced_models, ["mistral:devstral"]);
        assert_eq!(r.price_table.date, prices::PRICE_TABLE_DATE);
        assert_eq!(by_model(&rows).len(), 4);
    }

    #[test]
    fn no_requests_is_a_zero_hit_rate() {
        let r = report(&[]);
        assert_eq!((r.totals.requests, r.totals.hit_rate), (0, 0.0));
        assert!(r.by_cli.is_empty());
    }

    #[test]
    fn ttl_remaining_never_goes_below_zero() {
        let t0 = Utc::now();
        assert_eq!(
            ttl_remaining_ms(300, t0, t0 + Duration::seconds(100)),
            200_000
        );
        assert_eq!(ttl_remaining_ms(300, t0, t0 + Duration::seconds(400)), 0);
        // A clock that stepped back counts as no time elapsed.
        assert_eq!(
            ttl_remaining_ms(300, t0, t0 - Duration::seconds(5)),
            300_000
        );
    }

    #[test]
    fn ttl_warning_only_in_the_last_thirty_seconds_of_a_claude_cache() {
        let on = CacheAwarenessConfig {
            anthropic_ttl_seconds: 300,
            warn_on_ttl_expiry: true,
        };
        let now = Utc::now();
        let at = |secs_ago: i64| crate::clock::to_iso(now - Duration::seconds(secs_ago));
        let warn = |cfg: &CacheAwarenessConfig, cli, secs_ago| {
            ttl_warning(cfg, cli, Some(&at(secs_ago)), now).map(|w| w.code)
        };
        assert_eq!(
            warn(&on, Provider::Claude, 280).as_deref(),
            Some(CACHE_TTL_EXPIRING_SOON)
        );
        assert_eq!(warn(&on, Provider::Claude, 100), None);
        assert_eq!(warn(&on, Provider::Claude, 400), None, "already expired");
        assert_eq!(warn(&on, Provider::Codex, 280), None);
        let off = CacheAwarenessConfig {
            warn_on_ttl_expiry: false,
            ..on.clone()
        };
        assert_eq!(warn(&off, Provider::Claude, 280), None);
        assert_eq!(ttl_warning(&on, Provider::Claude, None, now), None);
    }

    #[test]
    fn cache_control_blocks_count_marked_parts() {
        let mut parts = PromptParts {
            task: "t".into(),
            ..PromptParts::default()
        };
        assert_eq!(cache_control_blocks(None), None);
        assert_eq!(cache_control_blocks(Some(&parts)), None);
        parts.cache_control = Some(CacheControl {
            system: Some(true),
            tools: Some(false),
            context: Some(true),
        });
        assert_eq!(cache_control_blocks(Some(&parts)), Some(2));
    }
}
