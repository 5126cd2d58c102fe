//! The flight recorder: one `requests` row per MCP request that ran or attached to a job,
//! written in two phases — inserted `started` at admission, completed exactly once when its
//! job ends (storage.md) — plus its reads, full-text search and cache statistics.
//!
//! Owns what the recorder keeps of a prompt or answer: with `store_prompts = false` only the
//! SHA-256 and length; otherwise the text, with secret shapes redacted when
//! `redact_secrets` is on, and answers cut to [`RECORDED_RESPONSE_MAX_BYTES`]
//! (`response_truncated = 1`; the whole answer lives once, in `jobs.response`). Error
//! messages are redacted too. The prompt the CLI receives is never touched: only what this
//! file writes is.
//!
//! Not here: deciding when a row completes (the job's terminal write in `jobs.rs` calls
//! [`complete_for_job`] in its own transaction) and the FTS triggers (`migrations.rs`).
//!
//! Usage on deduplicated rows: a row that attached to another caller's job (`deduped = 1`)
//! gets that job's answer and status but no token or cost figures, so summing the recorder
//! (e.g. `usage_by_day`) counts each run's cost once.
//!
//! [`RECORDED_RESPONSE_MAX_BYTES`]: super::RECORDED_RESPONSE_MAX_BYTES

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::query::ListQuery;
use super::redact::{self, RECORDED_RESPONSE_MAX_BYTES, RecordedText, cut_at_bytes};
use super::types::{
    RequestStatus, Usage, Warning, bool_col, json_col, parse_col, to_json, usage_cols,
};
use super::{Cx, Store, StoreError};
use crate::clock::{now_iso, to_iso};
use crate::providers::Provider;

/// Longest error message the recorder keeps (a stderr tail rarely needs more).
const RECORDED_ERROR_MAX_BYTES: usize = 64 * 1024;

/// The admission-time facts of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    pub correlation_id: String,
    pub cli: Provider,
    pub model: Option<String>,
    /// The prompt exactly as sent; the store applies the privacy settings to its copy.
    pub prompt: String,
    /// The gateway session in play (`gw-…`).
    pub session_id: Option<String>,
    /// The provider session being resumed, when known at admission.
    pub provider_session_id: Option<String>,
    pub working_dir: Option<String>,
    pub stable_prefix_hash: Option<String>,
    pub stable_prefix_tokens: Option<i64>,
    /// How many prompt parts carried `cacheControl`.
    pub cache_control_blocks: Option<i64>,
    pub approval_decision: Option<String>,
    /// Warnings known at admission (e.g. `session_ignored`); the job's are added at the end.
    pub warnings: Vec<Warning>,
    pub gateway_version: String,
}

impl NewRequest {
    /// A request with only the required facts; this binary's version as `gateway_version`.
    pub fn new(
        correlation_id: impl Into<String>,
        cli: Provider,
        prompt: impl Into<String>,
    ) -> NewRequest {
        NewRequest {
            correlation_id: correlation_id.into(),
            cli,
            model: None,
            prompt: prompt.into(),
            session_id: None,
            provider_session_id: None,
            working_dir: None,
            stable_prefix_hash: None,
            stable_prefix_tokens: None,
            cache_control_blocks: None,
            approval_decision: None,
            warnings: Vec::new(),
            gateway_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The outcome of a request that is not tied to a job (see [`Store::complete_request`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCompletion {
    /// A terminal status: `completed`, `failed`, `canceled` or `orphaned`.
    pub status: RequestStatus,
    pub exit_code: Option<i32>,
    pub error_category: Option<String>,
    pub error_message: Option<String>,
    pub response: Option<String>,
    pub provider_session_id: Option<String>,
    pub stop_reason: Option<String>,
    pub model: Option<String>,
    pub usage: Usage,
    pub warnings: Vec<Warning>,
}

impl RequestCompletion {
    /// A completion with the given status and nothing else known.
    pub fn ended(status: RequestStatus) -> RequestCompletion {
        RequestCompletion {
            status,
            exit_code: None,
            error_category: None,
            error_message: None,
            response: None,
            provider_session_id: None,
            stop_reason: None,
            model: None,
            usage: Usage::default(),
            warnings: Vec::new(),
        }
    }
}

/// One flight-recorder row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub correlation_id: String,
    pub datetime_utc: String,
    pub completed_at: Option<String>,
    pub cli: Provider,
    pub model: Option<String>,
    /// `None` when prompts are not stored.
    pub prompt: Option<String>,
    pub prompt_sha256: String,
    pub prompt_chars: i64,
    pub response: Option<String>,
    pub response_sha256: Option<String>,
    pub response_chars: Option<i64>,
    pub response_truncated: bool,
    pub status: RequestStatus,
    pub exit_code: Option<i32>,
    pub error_category: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: Option<i64>,
    #[serde(flatten)]
    pub usage: Usage,
    pub session_id: Option<String>,
    pub provider_session_id: Option<String>,
    pub job_id: Option<String>,
    pub deduped: bool,
    pub stop_reason: Option<String>,
    pub stable_prefix_hash: Option<String>,
    pub stable_prefix_tokens: Option<i64>,
    pub cache_control_blocks: Option<i64>,
    pub approval_decision: Option<String>,
    pub warnings: Vec<Warning>,
    pub working_dir: Option<String>,
    pub gateway_version: String,
}

/// Which rows [`Store::list_requests`] returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFilter {
    pub cli: Option<Provider>,
    pub status: Option<RequestStatus>,
    pub limit: u32,
}

/// Which rows the cache statistics cover (policy.md "cache awareness").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatsFilter {
    /// Rows with `datetime_utc >= since`.
    pub since: DateTime<Utc>,
    pub session_id: Option<String>,
    pub stable_prefix_hash: Option<String>,
}

/// Cache figures of one (CLI, model) pair. A hit is a row with `cache_read_tokens > 0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStatsRow {
    pub cli: Provider,
    pub model: Option<String>,
    pub requests: i64,
    pub deduped: i64,
    pub hits: i64,
    pub input_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_usd: f64,
}

/// A terminal outcome as the table functions apply it to request rows.
pub(crate) struct Outcome<'a> {
    pub status: RequestStatus,
    pub finished_at: &'a str,
    pub exit_code: Option<i32>,
    pub error_category: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub response: Option<&'a str>,
    pub provider_session_id: Option<&'a str>,
    pub stop_reason: Option<&'a str>,
    pub model: Option<&'a str>,
    pub usage: Usage,
    pub warnings: &'a [Warning],
}

const REQUEST_COLUMNS: &str = "id, correlation_id, datetime_utc, completed_at, cli, model, \
    prompt, prompt_sha256, prompt_chars, response, response_sha256, response_chars, \
    response_truncated, status, exit_code, error_category, error_message, duration_ms, \
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, \
    cost_usd, session_id, provider_session_id, job_id, deduped, stop_reason, \
    stable_prefix_hash, stable_prefix_tokens, cache_control_blocks, approval_decision, \
    warnings, working_dir, gateway_version";

fn request_from_row(row: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get("id")?,
        correlation_id: row.get("correlation_id")?,
        datetime_utc: row.get("datetime_utc")?,
        completed_at: row.get("completed_at")?,
        cli: parse_col(row, "cli")?,
        model: row.get("model")?,
        prompt: row.get("prompt")?,
        prompt_sha256: row.get("prompt_sha256")?,
        prompt_chars: row.get("prompt_chars")?,
        response: row.get("response")?,
        response_sha256: row.get("response_sha256")?,
        response_chars: row.get("response_chars")?,
        response_truncated: bool_col(row, "response_truncated")?,
        status: parse_col(row, "status")?,
        exit_code: row.get("exit_code")?,
        error_category: row.get("error_category")?,
        error_message: row.get("error_message")?,
        duration_ms: row.get("duration_ms")?,
        usage: usage_cols(row)?,
        session_id: row.get("session_id")?,
        provider_session_id: row.get("provider_session_id")?,
        job_id: row.get("job_id")?,
        deduped: bool_col(row, "deduped")?,
        stop_reason: row.get("stop_reason")?,
        stable_prefix_hash: row.get("stable_prefix_hash")?,
        stable_prefix_tokens: row.get("stable_prefix_tokens")?,
        cache_control_blocks: row.get("cache_control_blocks")?,
        approval_decision: row.get("approval_decision")?,
        warnings: json_col(row, "warnings")?,
        working_dir: row.get("working_dir")?,
        gateway_version: row.get("gateway_version")?,
    })
}

/// Inserts a `started` row; returns its id (UUID v7).
pub(crate) fn insert_started(
    conn: &Connection,
    cx: &Cx,
    r: &NewRequest,
    job_id: Option<&str>,
    deduped: bool,
    now: &str,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    // Prompts are bounded upstream (`max_prompt_chars`); only answers need the byte cap.
    let prompt = RecordedText::new(&r.prompt, cx.privacy, usize::MAX);
    conn.prepare_cached(
        "INSERT INTO requests (id, correlation_id, datetime_utc, cli, model, prompt, \
             prompt_sha256, prompt_chars, status, session_id, provider_session_id, job_id, \
             deduped, stable_prefix_hash, stable_prefix_tokens, cache_control_blocks, \
             approval_decision, warnings, working_dir, gateway_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'started', ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
             ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        id,
        r.correlation_id,
        now,
        r.cli.key(),
        r.model,
        prompt.text,
        prompt.sha256,
        prompt.chars,
        r.session_id,
        r.provider_session_id,
        job_id,
        deduped,
        r.stable_prefix_hash,
        r.stable_prefix_tokens,
        r.cache_control_blocks,
        r.approval_decision,
        to_json(&r.warnings),
        r.working_dir,
        r.gateway_version,
    ])?;
    Ok(id)
}

fn record_started(conn: &Connection, cx: &Cx, request: NewRequest) -> Result<String, StoreError> {
    insert_started(conn, cx, &request, None, false, &now_iso())
}

/// Completes every still-open row attached to `job_id`; returns how many.
pub(crate) fn complete_for_job(
    conn: &Connection,
    cx: &Cx,
    job_id: &str,
    outcome: &Outcome<'_>,
) -> Result<usize, StoreError> {
    complete_where(conn, cx, "job_id", job_id, outcome)
}

/// Completes the row `id` with `outcome` if it is still open; returns whether it was.
pub(crate) fn complete_one(
    conn: &Connection,
    cx: &Cx,
    id: &str,
    outcome: &Outcome<'_>,
) -> Result<bool, StoreError> {
    Ok(complete_where(conn, cx, "id", id, outcome)? > 0)
}

/// Completes one row if it is still open.
fn complete(
    conn: &Connection,
    cx: &Cx,
    id: String,
    c: RequestCompletion,
) -> Result<bool, StoreError> {
    if !c.status.is_terminal() {
        return Err(StoreError::InvalidArgument {
            what: "request completion",
            detail: format!(
                "status {} is not terminal (expected completed, failed, canceled or orphaned)",
                c.status
            ),
        });
    }
    let now = now_iso();
    let outcome = Outcome {
        status: c.status,
        finished_at: &now,
        exit_code: c.exit_code,
        error_category: c.error_category.as_deref(),
        error_message: c.error_message.as_deref(),
        response: c.response.as_deref(),
        provider_session_id: c.provider_session_id.as_deref(),
        stop_reason: c.stop_reason.as_deref(),
        model: c.model.as_deref(),
        usage: c.usage,
        warnings: &c.warnings,
    };
    Ok(complete_where(conn, cx, "id", &id, &outcome)? > 0)
}

fn complete_where(
    conn: &Connection,
    cx: &Cx,
    key_column: &str,
    key: &str,
    o: &Outcome<'_>,
) -> Result<usize, StoreError> {
    let open: Vec<(i64, String, bool)> = conn
        .prepare_cached(&format!(
            "SELECT seq, warnings, deduped FROM requests \
             WHERE {key_column} = ?1 AND status IN ('started', 'deferred')"
        ))?
        .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    if open.is_empty() {
        return Ok(0);
    }
    // Privacy is applied once per outcome, however many rows share it.
    let response = o
        .response
        .map(|r| RecordedText::new(r, cx.privacy, RECORDED_RESPONSE_MAX_BYTES));
    let error = o.error_message.map(|e| {
        let e = if cx.privacy.redact_secrets {
            redact::redact_secrets(e)
        } else {
            e.into()
        };
        cut_at_bytes(&e, RECORDED_ERROR_MAX_BYTES).to_string()
    });
    let mut stmt = conn.prepare_cached(
        "UPDATE requests SET status = ?2, completed_at = ?3, \
             duration_ms = max(0, CAST(round((julianday(?3) - julianday(datetime_utc)) \
                                             * 86400000) AS INTEGER)), \
             exit_code = ?4, error_category = ?5, error_message = ?6, response = ?7, \
             response_sha256 = ?8, response_chars = ?9, response_truncated = ?10, \
             provider_session_id = coalesce(?11, provider_session_id), stop_reason = ?12, \
             model = coalesce(model, ?13), input_tokens = ?14, output_tokens = ?15, \
             cache_read_tokens = ?16, cache_creation_tokens = ?17, reasoning_tokens = ?18, \
             cost_usd = ?19, warnings = ?20 \
         WHERE seq = ?1",
    )?;
    for (seq, own_warnings, deduped) in &open {
        let mut warnings: Vec<Warning> = serde_json::from_str(own_warnings).unwrap_or_default();
        for w in o.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        let u = if *deduped { Usage::default() } else { o.usage };
        stmt.execute(params![
            seq,
            o.status.as_str(),
            o.finished_at,
            o.exit_code,
            o.error_category,
            error,
            response.as_ref().and_then(|r| r.text.as_deref()),
            response.as_ref().map(|r| r.sha256.as_str()),
            response.as_ref().map(|r| r.chars),
            response.as_ref().is_some_and(|r| r.truncated),
            o.provider_session_id,
            o.stop_reason,
            o.model,
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_creation_tokens,
            u.reasoning_tokens,
            u.cost_usd,
            to_json(&warnings),
        ])?;
    }
    Ok(open.len())
}

/// `started` → `deferred` (the sync deadline passed; the job goes on). Any other state is
/// left alone: a row completed in the meantime stays completed.
fn mark_deferred(conn: &Connection, _cx: &Cx, id: String) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE requests SET status = 'deferred' WHERE id = ?1 AND status = 'started'",
        )?
        .execute([id])?
        > 0)
}

fn get(conn: &Connection, _cx: &Cx, id: String) -> Result<Option<RequestRow>, StoreError> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], request_from_row)
        .optional()?)
}

/// The newest row with this correlation id (callers may reuse one).
fn by_correlation(
    conn: &Connection,
    _cx: &Cx,
    correlation_id: String,
) -> Result<Option<RequestRow>, StoreError> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE correlation_id = ?1 \
         ORDER BY datetime_utc DESC, seq DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([correlation_id], request_from_row)
        .optional()?)
}

fn list(conn: &Connection, _cx: &Cx, filter: RequestFilter) -> Result<Vec<RequestRow>, StoreError> {
    ListQuery::new()
        .eq("cli", filter.cli.map(Provider::key))
        .eq("status", filter.status.map(|status| status.as_str()))
        .run(
            conn,
            &format!("SELECT {REQUEST_COLUMNS} FROM requests"),
            "datetime_utc DESC, seq DESC",
            filter.limit,
            request_from_row,
        )
}

/// Rows whose prompt or response contains every one of `words` (plain words: each is quoted
/// as an FTS5 phrase, so no query syntax can fail), newest first.
fn search(
    conn: &Connection,
    _cx: &Cx,
    words: String,
    limit: u32,
) -> Result<Vec<RequestRow>, StoreError> {
    let phrases: Vec<String> = words
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if phrases.is_empty() {
        return Err(StoreError::InvalidArgument {
            what: "search",
            detail: "give at least one word to search for".into(),
        });
    }
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests \
         WHERE seq IN (SELECT rowid FROM requests_fts WHERE requests_fts MATCH ?1) \
         ORDER BY datetime_utc DESC, seq DESC LIMIT ?2"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![phrases.join(" "), limit], request_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The sums of one (cli, model) group, in [`CacheStatsRow`] order.
const CACHE_SUMS: &str = "count(*), coalesce(sum(deduped), 0), \
     coalesce(sum(coalesce(cache_read_tokens, 0) > 0), 0), \
     coalesce(sum(input_tokens), 0), coalesce(sum(cache_read_tokens), 0), \
     coalesce(sum(cache_creation_tokens), 0), coalesce(sum(cost_usd), 0.0)";

/// Per-(cli, model) sums of the rows since `filter.since`, ordered by cli, then model (no
/// model first). Rows of a CLI this binary does not know (a newer one wrote them) are
/// skipped.
///
/// Global scope (no session or prefix filter) takes the path described at
/// [`global_cache_sums`]; a session or prefix has its own index and few rows in a day, so
/// one `GROUP BY` over them is cheap.
fn cache_stats(
    conn: &Connection,
    _cx: &Cx,
    filter: CacheStatsFilter,
) -> Result<Vec<CacheStatsRow>, StoreError> {
    let since = to_iso(filter.since);
    let groups = if filter.session_id.is_none() && filter.stable_prefix_hash.is_none() {
        global_cache_sums(conn, &since)?
    } else {
        let mut sql =
            format!("SELECT cli, model, {CACHE_SUMS} FROM requests WHERE datetime_utc >= ?1");
        let mut args = vec![since];
        if let Some(session_id) = filter.session_id {
            args.push(session_id);
            sql.push_str(&format!(" AND session_id = ?{}", args.len()));
        }
        if let Some(hash) = filter.stable_prefix_hash {
            args.push(hash);
            sql.push_str(&format!(" AND stable_prefix_hash = ?{}", args.len()));
        }
        sql.push_str(" GROUP BY cli, model ORDER BY cli, model");
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, cache_sums(r, 2, r.get(1)?)?))
        })?
        .collect::<Result<Vec<_>, _>>()?
    };
    Ok(groups
        .into_iter()
        .filter_map(|(cli, mut stat)| {
            stat.cli = cli.parse().ok()?;
            Some(stat)
        })
        .collect())
}

/// The sums of [`CACHE_SUMS`] starting at column `first`; `cli` is set by the caller.
fn cache_sums(r: &Row<'_>, first: usize, model: Option<String>) -> rusqlite::Result<CacheStatsRow> {
    Ok(CacheStatsRow {
        cli: Provider::Claude,
        model,
        requests: r.get(first)?,
        deduped: r.get(first + 1)?,
        hits: r.get(first + 2)?,
        input_tokens: r.get(first + 3)?,
        cache_read_tokens: r.get(first + 4)?,
        cache_creation_tokens: r.get(first + 5)?,
        cost_usd: r.get(first + 6)?,
    })
}

/// `cache-state://global`: the sums of every (cli, model) pair over the window, without
/// sorting the window.
///
/// A plain `… WHERE datetime_utc >= ? GROUP BY cli, model` feeds every row of the day through
/// a sorter — ~60 ms for 100 000 rows, over the 50 ms target (quality.md) even with a
/// covering index. Instead, with the covering index `requests_cache_stats` (cli, model,
/// datetime_utc, the summed columns): the distinct pairs come from a skip scan of that index
/// (one seek per pair, over the whole file — a handful of CLIs and models), and each pair's
/// sums from one range scan of its index entries in the window (no table row is read). The
/// cost is one index seek per pair plus the rows of the window: ~20 ms for 100 000 rows.
/// A summary table maintained by triggers would answer in O(1) but adds writes to every
/// request row and exact-edge bookkeeping for a sliding 24 h window; 100 000 requests a day
/// is already far above real use, so the index is the simpler exact answer.
/// (Every read op runs in one read transaction, so the pairs and their sums come from one
/// snapshot.)
fn global_cache_sums(
    conn: &Connection,
    since: &str,
) -> Result<Vec<(String, CacheStatsRow)>, StoreError> {
    let mut sums = conn.prepare_cached(&pair_sums_sql())?;
    let mut groups = Vec::new();
    let mut pair = next_pair(conn, None)?;
    while let Some((cli, model)) = pair {
        let stat = sums.query_row(params![cli, model, since], |r| {
            cache_sums(r, 0, model.clone())
        })?;
        pair = next_pair(conn, Some((&cli, model.as_deref())))?;
        // A pair seen only before the window has no group, as with GROUP BY.
        if stat.requests > 0 {
            groups.push((cli, stat));
        }
    }
    Ok(groups)
}

// The skip scan of `requests_cache_stats` (a NULL model sorts first within its CLI), one
// seek each: the first pair; the next model of a CLI after a NULL one; after a named one;
// the first pair of the next CLI.
const FIRST_PAIR: &str = "SELECT cli, model FROM requests ORDER BY cli, model LIMIT 1";
const MODEL_AFTER_NULL: &str = "SELECT cli, model FROM requests \
     WHERE cli = ?1 AND model IS NOT NULL ORDER BY cli, model LIMIT 1";
const MODEL_AFTER: &str = "SELECT cli, model FROM requests \
     WHERE cli = ?1 AND model > ?2 ORDER BY cli, model LIMIT 1";
const CLI_AFTER: &str =
    "SELECT cli, model FROM requests WHERE cli > ?1 ORDER BY cli, model LIMIT 1";

/// One pair's sums over the window: a range of `requests_cache_stats` entries.
fn pair_sums_sql() -> String {
    format!(
        "SELECT {CACHE_SUMS} FROM requests \
         WHERE cli = ?1 AND model IS ?2 AND datetime_utc >= ?3"
    )
}

/// The (cli, model) pair after `after` in index order, or the first pair when `after` is
/// `None`: one index seek each.
fn next_pair(
    conn: &Connection,
    after: Option<(&str, Option<&str>)>,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let pick = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<_, StoreError> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(args, |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    };
    let Some((cli, model)) = after else {
        return pick(FIRST_PAIR, &[]);
    };
    let same_cli = match model {
        None => pick(MODEL_AFTER_NULL, &[&cli])?,
        Some(model) => pick(MODEL_AFTER, &[&cli, &model])?,
    };
    match same_cli {
        Some(pair) => Ok(Some(pair)),
        None => pick(CLI_AFTER, &[&cli]),
    }
}

impl Store {
    store_ops! {
        /// Records a request that is not admitted as a job (e.g. one rejected before it
        /// ran): inserts a `started` row and returns its id. Complete it with
        /// [`Store::complete_request`].
        write fn record_request_started / record_request_started_blocking(
            request: NewRequest,
        ) -> String = record_started;

        /// Completes one row that is still `started` or `deferred`; `false` when it was
        /// already complete (nothing changes) or does not exist.
        write fn complete_request / complete_request_blocking(
            request_id: String,
            completion: RequestCompletion,
        ) -> bool = complete;

        /// Marks a row `deferred` (its sync wait ended; the job runs on).
        write fn mark_request_deferred / mark_request_deferred_blocking(request_id: String)
            -> bool = mark_deferred;

        /// One row by id.
        read fn get_request / get_request_blocking(request_id: String) -> Option<RequestRow>
            = get;

        /// The newest row with this correlation id (`llm_request_result`).
        read fn get_request_by_correlation / get_request_by_correlation_blocking(
            correlation_id: String,
        ) -> Option<RequestRow> = by_correlation;

        /// Rows newest first.
        read fn list_requests / list_requests_blocking(filter: RequestFilter)
            -> Vec<RequestRow> = list;

        /// Full-text search over recorded prompts and answers; every word must appear.
        read fn search_requests / search_requests_blocking(words: String, limit: u32)
            -> Vec<RequestRow> = search;

        /// Request, hit and token sums per (CLI, model) for the cache-state resources.
        read fn cache_stats / cache_stats_blocking(filter: CacheStatsFilter)
            -> Vec<CacheStatsRow> = cache_stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::tests::{ROOMY, STATELESS, admit_key, admit_with, claim_now, new_job};
    use crate::store::testing::{store, store_with};
    use crate::store::{JobCompletion, JobStatus, Privacy, redact::sha256_hex};

    fn completion(response: &str) -> JobCompletion {
        let mut c = JobCompletion::ended(JobStatus::Completed);
        c.response = Some(response.to_string());
        c
    }

    #[test]
    fn without_store_prompts_only_hash_and_length_are_kept() {
        let (_dir, store) = store_with(Privacy {
            store_prompts: false,
            redact_secrets: true,
        });
        let job = new_job("k", Provider::Claude);
        let request = NewRequest::new("corr", Provider::Claude, "a secret plan, héhé");
        let crate::store::Admission::Admitted {
            job, request_id, ..
        } = store
            .admit_job_blocking(job, request, STATELESS, 10)
            .unwrap()
        else {
            panic!("admitted");
        };
        store
            .finish_job_blocking(job.id.clone(), completion("the hidden answer"))
            .unwrap();
        let row = store.get_request_blocking(request_id).unwrap().unwrap();
        assert_eq!(row.prompt, None);
        assert_eq!(row.prompt_sha256, sha256_hex("a secret plan, héhé"));
        assert_eq!(row.prompt_chars, 19);
        assert_eq!(row.response, None);
        assert_eq!(
            row.response_sha256.as_deref(),
            Some(sha256_hex("the hidden answer").as_str())
        );
        assert_eq!(row.response_chars, Some(17));
        // The job keeps the answer it must deliver.
        let window = store
            .read_response_blocking(job.id, 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!(window.text.as_deref(), Some("the hidden answer"));
        assert!(
            store
                .search_requests_blocking("hidden".into(), 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_recorder_redacts_prompts_answers_and_errors() {
        let (_dir, store) = store();
        let id = store
            .record_request_started_blocking(NewRequest::new(
                "c",
                Provider::Gemini,
                "use AIzaSyA1234567890abcdefghijklmnopqrstuv please",
            ))
            .unwrap();
        let mut done = RequestCompletion::ended(RequestStatus::Failed);
        done.response = Some("token ghp_0123456789abcdefghijklmnopqrstuvwxyz".into());
        done.error_message = Some("401: bad key sk-ant-api03-0123456789abcdefghij".into());
        assert!(store.complete_request_blocking(id.clone(), done).unwrap());
        let row = store.get_request_blocking(id).unwrap().unwrap();
        assert_eq!(
            row.prompt.as_deref(),
            Some("use [REDACTED:google_api_key] please")
        );
        assert_eq!(
            row.response.as_deref(),
            Some("token [REDACTED:github_token]")
        );
        assert_eq!(
            row.error_message.as_deref(),
            Some("401: bad key [REDACTED:anthropic_key]")
        );
        assert_eq!(row.status, RequestStatus::Failed);
        assert_eq!(row.job_id, None);
    }

    #[test]
    fn long_answers_are_cut_in_the_recorder_and_kept_whole_in_the_job() {
        let (_dir, store) = store();
        let (job, request_id, _) = admit_key(&store, "k");
        claim_now(&store, &job.id, ROOMY);
        let long = "ab".repeat(RECORDED_RESPONSE_MAX_BYTES);
        store
            .finish_job_blocking(job.id.clone(), completion(&long))
            .unwrap();
        let row = store.get_request_blocking(request_id).unwrap().unwrap();
        assert!(row.response_truncated);
        assert_eq!(row.response.unwrap().len(), RECORDED_RESPONSE_MAX_BYTES);
        assert_eq!(
            row.response_chars,
            Some(2 * RECORDED_RESPONSE_MAX_BYTES as i64)
        );
        let whole = store
            .read_response_blocking(job.id, 0, u64::MAX / 2)
            .unwrap()
            .unwrap();
        assert_eq!(whole.text.map(|t| t.len()), Some(long.len()));
    }

    #[test]
    fn full_text_search_follows_inserts_updates_and_deletes() {
        let (_dir, store) = store();
        let id = store
            .record_request_started_blocking(NewRequest::new(
                "c",
                Provider::Claude,
                "Refactor the flibbertigibbet module",
            ))
            .unwrap();
        let found = store
            .search_requests_blocking("flibbertigibbet".into(), 10)
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, id);
        assert!(
            store
                .search_requests_blocking("quux".into(), 10)
                .unwrap()
                .is_empty()
        );

        let mut done = RequestCompletion::ended(RequestStatus::Completed);
        done.response = Some("Renamed it to quux".into());
        store.complete_request_blocking(id.clone(), done).unwrap();
        assert_eq!(
            store
                .search_requests_blocking("quux".into(), 10)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .search_requests_blocking("quux flibbertigibbet".into(), 10)
                .unwrap()
                .len(),
            1
        );
        // Query syntax in the words is taken literally.
        assert!(
            store
                .search_requests_blocking("\"quux AND (".into(), 10)
                .unwrap()
                .is_empty()
        );
        assert!(store.search_requests_blocking("  ".into(), 10).is_err());

        store
            .exec_raw(&format!("DELETE FROM requests WHERE id = '{id}'"))
            .unwrap();
        assert!(
            store
                .search_requests_blocking("quux".into(), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.query_i64(
                "SELECT count(*) FROM requests_fts WHERE requests_fts MATCH 'flibbertigibbet'"
            ),
            0
        );
    }

    #[test]
    fn rows_complete_once_and_defer_only_while_started() {
        let (_dir, store) = store();
        let (job, request_id, _) = admit_key(&store, "k");
        assert!(
            store
                .mark_request_deferred_blocking(request_id.clone())
                .unwrap()
        );
        assert_eq!(
            store
                .get_request_blocking(request_id.clone())
                .unwrap()
                .unwrap()
                .status,
            RequestStatus::Deferred
        );
        claim_now(&store, &job.id, ROOMY);
        store
            .finish_job_blocking(job.id.clone(), completion("late answer"))
            .unwrap();
        let row = store
            .get_request_blocking(request_id.clone())
            .unwrap()
            .unwrap();
        assert_eq!(row.status, RequestStatus::Completed);
        assert_eq!(row.response.as_deref(), Some("late answer"));
        assert!(
            !store
                .mark_request_deferred_blocking(request_id.clone())
                .unwrap()
        );
        assert!(
            !store
                .complete_request_blocking(
                    request_id.clone(),
                    RequestCompletion::ended(RequestStatus::Failed)
                )
                .unwrap()
        );
        assert_eq!(
            store
                .get_request_blocking(request_id)
                .unwrap()
                .unwrap()
                .status,
            RequestStatus::Completed
        );
        let err = store
            .complete_request_blocking("x".into(), RequestCompletion::ended(RequestStatus::Started))
            .unwrap_err();
        assert!(err.to_string().contains("not terminal"), "{err}");
    }

    #[test]
    fn correlation_lookup_lists_and_cache_stats() {
        let (_dir, store) = store();
        let mut first = NewRequest::new("same", Provider::Claude, "one");
        first.model = Some("sonnet".into());
        first.session_id = Some("gw-s".into());
        first.stable_prefix_hash = Some("prefix-1".into());
        let older = store
            .record_request_started_blocking(first.clone())
            .unwrap();
        let newer = store.record_request_started_blocking(first).unwrap();
        store
            .record_request_started_blocking(NewRequest::new("other", Provider::Codex, "two"))
            .unwrap();
        let mut hit = RequestCompletion::ended(RequestStatus::Completed);
        hit.usage.cache_read_tokens = Some(100);
        hit.usage.input_tokens = Some(120);
        hit.usage.cost_usd = Some(0.5);
        store.complete_request_blocking(older.clone(), hit).unwrap();

        let by_corr = store
            .get_request_by_correlation_blocking("same".into())
            .unwrap()
            .unwrap();
        assert_eq!(by_corr.id, newer);
        assert!(
            store
                .get_request_by_correlation_blocking("none".into())
                .unwrap()
                .is_none()
        );

        let claude = store
            .list_requests_blocking(RequestFilter {
                cli: Some(Provider::Claude),
                status: None,
                limit: 10,
            })
            .unwrap();
        assert_eq!(
            claude.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            vec![newer, older]
        );
        let completed = store
            .list_requests_blocking(RequestFilter {
                cli: None,
                status: Some(RequestStatus::Completed),
                limit: 10,
            })
            .unwrap();
        assert_eq!(completed.len(), 1);

        let since = Utc::now() - chrono::Duration::hours(24);
        let stats = store
            .cache_stats_blocking(CacheStatsFilter {
                since,
                session_id: None,
                stable_prefix_hash: None,
            })
            .unwrap();
        assert_eq!(stats.len(), 2);
        let sonnet = &stats[0];
        assert_eq!(
            (sonnet.cli, sonnet.model.as_deref()),
            (Provider::Claude, Some("sonnet"))
        );
        assert_eq!(
            (sonnet.requests, sonnet.hits, sonnet.cache_read_tokens),
            (2, 1, 100)
        );
        assert_eq!(sonnet.input_tokens, 120);
        let by_prefix = store
            .cache_stats_blocking(CacheStatsFilter {
                since,
                session_id: Some("gw-s".into()),
                stable_prefix_hash: Some("prefix-1".into()),
            })
            .unwrap();
        assert_eq!(by_prefix.len(), 1);
        let future = store
            .cache_stats_blocking(CacheStatsFilter {
                since: Utc::now() + chrono::Duration::hours(1),
                session_id: None,
                stable_prefix_hash: None,
            })
            .unwrap();
        assert!(future.is_empty());
    }

    #[test]
    fn the_datasette_views_read_the_recorder() {
        let (_dir, store) = store();
        let (job, _, _) = admit_with(&store, new_job("k", Provider::Grok), STATELESS);
        claim_now(&store, &job.id, ROOMY);
        let mut c = completion("ok");
        c.usage.output_tokens = Some(9);
        c.usage.cost_usd = Some(0.01);
        store.finish_job_blocking(job.id, c).unwrap();
        assert_eq!(store.query_i64("SELECT count(*) FROM recent_requests"), 1);
        assert_eq!(
            store.query_i64("SELECT output_tokens FROM usage_by_day WHERE cli = 'grok'"),
            9
        );
        assert!(store.query_i64("SELECT duration_ms FROM job_overview") >= 0);
    }

    #[test]
    fn global_cache_stats_equal_one_group_by_without_sorting_the_window() {
        let (_dir, store) = store();
        let since = Utc::now() - chrono::Duration::hours(24);
        let record = |cli, model: Option<&str>, read: Option<i64>| {
            let mut request = NewRequest::new("c", cli, "p");
            request.model = model.map(str::to_string);
            let id = store.record_request_started_blocking(request).unwrap();
            let mut done = RequestCompletion::ended(RequestStatus::Completed);
            done.usage.cache_read_tokens = read;
            done.usage.input_tokens = Some(10);
            done.usage.cost_usd = Some(0.1);
            store.complete_request_blocking(id.clone(), done).unwrap();
            id
        };
        record(Provider::Codex, Some("gpt-5"), None);
        record(Provider::Claude, Some("sonnet"), Some(50));
        record(Provider::Claude, None, None);
        record(Provider::Claude, Some("sonnet"), None);
        record(Provider::Codex, None, Some(7));
        let old = record(Provider::Claude, Some("opus"), Some(9));
        let unknown = record(Provider::Gemini, Some("g"), None);
        record(Provider::Gemini, Some("zz"), Some(1));
        store
            .exec_raw(&format!(
                "UPDATE requests SET datetime_utc = '2000-01-01T00:00:00.000Z' WHERE id = '{old}';
                 UPDATE requests SET cli = 'from-a-newer-binary' WHERE id = '{unknown}';"
            ))
            .unwrap();

        let global = store
            .cache_stats_blocking(CacheStatsFilter {
                since,
                session_id: None,
                stable_prefix_hash: None,
            })
            .unwrap();
        let pairs: Vec<_> = global.iter().map(|s| (s.cli, s.model.as_deref())).collect();
        assert_eq!(
            pairs,
            [
                (Provider::Claude, None),
                (Provider::Claude, Some("sonnet")),
                (Provider::Codex, None),
                (Provider::Codex, Some("gpt-5")),
                (Provider::Gemini, Some("zz")),
            ],
            "no pair only seen before the window, none of an unknown CLI"
        );
        let since_text = to_iso(since);
        let reference = store
            .read_blocking(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT cli, model, {CACHE_SUMS} FROM requests WHERE datetime_utc >= ?1 \
                     GROUP BY cli, model ORDER BY cli, model"
                ))?;
                let rows = stmt.query_map([since_text], |r| {
                    Ok((r.get::<_, String>(0)?, cache_sums(r, 2, r.get(1)?)?))
                })?;
                let mut stats = Vec::new();
                for row in rows {
                    let (cli, mut stat) = row?;
                    if let Ok(cli) = cli.parse() {
                        stat.cli = cli;
                        stats.push(stat);
                    }
                }
                Ok(stats)
            })
            .unwrap();
        assert_eq!(global, reference);
        assert_eq!((global[1].requests, global[1].hits), (2, 1));

        // Many rows with one timestamp (the benchmark's seed), with and without statistics.
        store.clone_first_row("requests", 300, &["id", "correlation_id"]);
        let since = to_iso(since);
        for analyzed in [false, true] {
            if analyzed {
                store.exec_raw("ANALYZE").unwrap();
            }
            let sums = pair_sums_sql();
            let statements: [(&str, Vec<Option<&str>>); 5] = [
                (FIRST_PAIR, vec![]),
                (MODEL_AFTER_NULL, vec![Some("claude")]),
                (MODEL_AFTER, vec![Some("claude"), Some("sonnet")]),
                (CLI_AFTER, vec![Some("claude")]),
                (&sums, vec![Some("claude"), None, Some(&since)]),
            ];
            for (sql, args) in statements {
                let sql = sql.to_string();
                let args: Vec<Option<String>> =
                    args.into_iter().map(|a| a.map(str::to_string)).collect();
                let plan = store
                    .read_blocking(move |conn| {
                        Ok(crate::store::testing::query_plan(
                            conn,
                            &sql,
                            rusqlite::params_from_iter(args),
                        ))
                    })
                    .unwrap();
                crate::store::testing::assert_plan_uses(&plan, "requests", "requests_cache_stats");
            }
        }
    }
}
