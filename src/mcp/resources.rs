//! The MCP resources: `cache-state://global`, and the templates
//! `cache-state://session/{sessionId}` and `cache-state://prefix/{hash}` (mcp-surface.md
//! "Resources"). Reads of the older system's `cache_state://…` spellings are answered too.
//!
//! Owns: the resource list, URI parsing, and the JSON body of each resource — figures from
//! the store's cache statistics shaped by `policy::cache`. The bodies are built only from
//! counts, token sums, model names and ids: never from prompt or response text.
//!
//! Not here: the arithmetic (`policy::cache`), SQL (`store`).

use chrono::{Duration, Utc};
use rmcp::ErrorData as McpError;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use super::GatewayState;
use crate::clock::to_iso;
use crate::policy::cache;
use crate::providers::Provider;
use crate::store::{CacheStatsFilter, SessionRow, is_gateway_session_id};

const GLOBAL_URI: &str = "cache-state://global";
const MIME: &str = "application/json";

/// Which cache-state resource a URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUri {
    Global,
    Session(String),
    Prefix(String),
}

/// Parses `cache-state://…` (or the older `cache_state://…`); `None` for anything else.
pub fn parse_uri(uri: &str) -> Option<CacheUri> {
    let rest = uri
        .strip_prefix("cache-state://")
        .or_else(|| uri.strip_prefix("cache_state://"))?;
    let rest = rest.trim_end_matches('/');
    if rest == "global" {
        return Some(CacheUri::Global);
    }
    let non_empty = |s: &str| (!s.is_empty() && !s.contains('/')).then(|| s.to_string());
    if let Some(id) = rest.strip_prefix("session/") {
        return non_empty(id).map(CacheUri::Session);
    }
    if let Some(hash) = rest.strip_prefix("prefix/") {
        return non_empty(hash).map(|h| CacheUri::Prefix(h.to_ascii_lowercase()));
    }
    None
}

/// The fixed resources.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(GLOBAL_URI, "cache-state-global")
            .with_title("Prompt-cache state, last 24 h")
            .with_description(
                "Requests, cache hits, hit rate, cache read/creation tokens, a per-CLI \
                 breakdown and estimated savings (bundled, dated price table) over the last \
                 24 hours. Never contains prompt or response text.",
            )
            .with_mime_type(MIME),
    ]
}

/// The resource templates.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("cache-state://session/{sessionId}", "cache-state-session")
            .with_title("Prompt-cache state of one gateway session")
            .with_description(
                "The cache figures of one session (gw-… or the CLI's own id) over the last \
                 24 hours, plus ttlRemainingMs for claude ([cache_awareness] \
                 anthropic_ttl_seconds minus the time since the session's last request).",
            )
            .with_mime_type(MIME),
        ResourceTemplate::new("cache-state://prefix/{hash}", "cache-state-prefix")
            .with_title("Prompt-cache state of one stable prompt prefix")
            .with_description(
                "The cache figures of the requests whose promptParts had this \
                 stablePrefixHash (SHA-256 hex) over the last 24 hours, with a per-CLI/model \
                 breakdown.",
            )
            .with_mime_type(MIME),
    ]
}

fn store_error(e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(format!("cannot read the cache statistics: {e}"), None)
}

/// Answers `resources/read`.
pub async fn read(state: &GatewayState, uri: &str) -> Result<ReadResourceResult, McpError> {
    let Some(parsed) = parse_uri(uri) else {
        return Err(McpError::resource_not_found(
            format!(
                "Unknown resource {uri}: this server has cache-state://global, \
                 cache-state://session/{{sessionId}} and cache-state://prefix/{{hash}}"
            ),
            None,
        ));
    };
    let until = Utc::now();
    let since = until - Duration::hours(cache::WINDOW_HOURS);
    let mut filter = CacheStatsFilter {
        since,
        session_id: None,
        stable_prefix_hash: None,
    };
    let mut extra = serde_json::Map::new();
    let mut session_row = None;
    match &parsed {
        CacheUri::Global => {
            extra.insert("scope".into(), json!("global"));
        }
        CacheUri::Session(id) => {
            let row = find_session(state, id).await?.ok_or_else(|| {
                McpError::resource_not_found(
                    format!(
                        "Unknown session \"{id}\": list the gateway sessions with session_list"
                    ),
                    None,
                )
            })?;
            extra.insert("scope".into(), json!("session"));
            extra.insert("sessionId".into(), json!(row.id));
            extra.insert("cli".into(), json!(row.cli));
            extra.insert("lastRequestAt".into(), json!(row.last_used_at));
            filter.session_id = Some(row.id.clone());
            session_row = Some(row);
        }
        CacheUri::Prefix(hash) => {
            extra.insert("scope".into(), json!("prefix"));
            extra.insert("stablePrefixHash".into(), json!(hash));
            filter.stable_prefix_hash = Some(hash.clone());
        }
    }
    let rows = state.store.cache_stats(filter).await.map_err(store_error)?;
    let report = cache::report(&rows);
    let mut body = match serde_json::to_value(&report).map_err(store_error)? {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    body.insert("uri".into(), json!(uri));
    body.insert("since".into(), json!(to_iso(since)));
    body.insert("until".into(), json!(to_iso(until)));
    body.extend(extra);
    if let Some(row) = &session_row {
        let ttl = state.loaded.config.cache_awareness.anthropic_ttl_seconds;
        body.insert("ttlRemainingMs".into(), json!(ttl_remaining(state, row)));
        body.insert("anthropicTtlSeconds".into(), json!(ttl));
    }
    if matches!(parsed, CacheUri::Prefix(_)) {
        body.insert("byModel".into(), json!(cache::by_model(&rows)));
    }
    let text = serde_json::to_string_pretty(&Value::Object(body)).map_err(store_error)?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(MIME),
    ]))
}

/// `session_get`'s `cacheState`: the session's figures over the last 24 hours (plus claude
/// `ttlRemainingMs`), or `None` while it has no request in that window.
pub async fn session_cache_state(
    state: &GatewayState,
    row: &SessionRow,
) -> Result<Option<Value>, McpError> {
    let until = Utc::now();
    let filter = CacheStatsFilter {
        since: until - Duration::hours(cache::WINDOW_HOURS),
        session_id: Some(row.id.clone()),
        stable_prefix_hash: None,
    };
    let rows = state.store.cache_stats(filter).await.map_err(store_error)?;
    let report = cache::report(&rows);
    if report.totals.requests == 0 {
        return Ok(None);
    }
    let mut body = serde_json::to_value(&report).map_err(store_error)?;
    if let Some(map) = body.as_object_mut() {
        map.insert("ttlRemainingMs".into(), json!(ttl_remaining(state, row)));
    }
    Ok(Some(body))
}

/// claude only: `anthropic_ttl_seconds` − time since the session's last request.
fn ttl_remaining(state: &GatewayState, row: &SessionRow) -> Option<i64> {
    let ttl = state.loaded.config.cache_awareness.anthropic_ttl_seconds;
    (row.cli == Provider::Claude)
        .then(|| cache::parse_time(&row.last_used_at))
        .flatten()
        .map(|last| cache::ttl_remaining_ms(ttl, last, Utc::now()))
}

/// A gateway session by its `gw-` id, or by the CLI's own id it is bound to.
async fn find_session(state: &GatewayState, id: &str) -> Result<Option<SessionRow>, McpError> {
    if is_gateway_session_id(id) {
        return state
            .store
            .get_session(id.to_string())
            .await
            .map_err(store_error);
    }
    let sessions = state.store.list_sessions(None).await.map_err(store_error)?;
    Ok(sessions
        .into_iter()
        .find(|s| s.provider_session_id.as_deref() == Some(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse() {
        assert_eq!(parse_uri("cache-state://global"), Some(CacheUri::Global));
        assert_eq!(parse_uri("cache_state://global"), Some(CacheUri::Global));
        assert_eq!(
            parse_uri("cache_state://session/gw-1"),
            Some(CacheUri::Session("gw-1".into()))
        );
        assert_eq!(
            parse_uri("cache-state://prefix/ABC"),
            Some(CacheUri::Prefix("abc".into()))
        );
        for bad in [
            "cache-state://",
            "cache-state://session/",
            "cache-state://prefix/a/b",
            "cache-state://other",
            "file:///etc/passwd",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_list_and_templates_name_the_three_resources() {
        assert_eq!(list()[0].uri, GLOBAL_URI);
        let t: Vec<_> = templates().into_iter().map(|t| t.uri_template).collect();
        assert_eq!(
            t,
            [
                "cache-state://session/{sessionId}",
                "cache-state://prefix/{hash}"
            ]
        );
    }
}
