//! `llm-cli-gateway logs list|show|prune`: the flight recorder (`requests`) from a
//! terminal.
//!
//! Owns the terminal output of these commands. `show` takes a request id or a correlation
//! id; `prune` runs the retention sweep now, with `--older-than DAYS` in place of
//! `requestRetentionDays` for the flight recorder (jobs and sessions keep their configured
//! retention). Not here: SQL, redaction, the sweep's rules (`store`).

use serde_json::json;

use super::{CliError, print_json};
use crate::config::Config;
use crate::providers::Provider;
use crate::store::{RequestFilter, RequestStatus, RetentionPolicy, Store};

fn store_failed(error: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("the flight recorder failed: {error}"))
}

/// `logs list`: newest first, one line per request (or `--json`: `{"requests": [...]}`).
pub fn list(
    store: &Store,
    cli: Option<Provider>,
    status: Option<RequestStatus>,
    limit: u32,
    as_json: bool,
) -> Result<(), CliError> {
    let rows = store
        .list_requests_blocking(RequestFilter { cli, status, limit })
        .map_err(store_failed)?;
    if as_json {
        return print_json(&json!({ "requests": rows }));
    }
    if rows.is_empty() {
        println!("no requests recorded");
        return Ok(());
    }
    println!(
        "{:<36}  {:<20}  {:<7}  {:<9}  {:>9}  PROMPT",
        "ID", "AT", "CLI", "STATUS", "DURATION"
    );
    for row in &rows {
        let prompt = row
            .prompt
            .as_deref()
            .map(|p| one_line(p, 50))
            .unwrap_or_else(|| format!("({} chars, not stored)", row.prompt_chars));
        println!(
            "{:<36}  {:<20}  {:<7}  {:<9}  {:>9}  {}",
            row.id,
            row.datetime_utc.get(..19).unwrap_or(&row.datetime_utc),
            row.cli.key(),
            row.status.as_str(),
            row.duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_string()),
            prompt
        );
    }
    Ok(())
}

/// The first line of `text`, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// `logs show ID`: one request row as JSON; `ID` is a request id or a correlation id.
pub fn show(store: &Store, id: &str) -> Result<(), CliError> {
    if id.trim().is_empty() {
        return Err(CliError::usage(
            "empty id: pass a request id or correlation id from `llm-cli-gateway logs list`",
        ));
    }
    let row = match store
        .get_request_blocking(id.to_string())
        .map_err(store_failed)?
    {
        Some(row) => Some(row),
        None => store
            .get_request_by_correlation_blocking(id.to_string())
            .map_err(store_failed)?,
    };
    let row = row.ok_or_else(|| {
        CliError::failed(format!(
            "no request {id} in the flight recorder (neither a request id nor a correlation id; \
             rows are deleted after `requestRetentionDays`; see `llm-cli-gateway logs list`)"
        ))
    })?;
    print_json(&json!({ "request": row }))
}

/// `logs prune [--older-than DAYS]`: runs the retention sweep now and says what it deleted.
pub fn prune(store: &Store, config: &Config, older_than_days: Option<u32>) -> Result<(), CliError> {
    let policy = RetentionPolicy {
        job_days: config.persistence.retention_days,
        request_days: older_than_days.unwrap_or(config.persistence.request_retention_days),
        session_ttl_days: config.persistence.session_ttl_days,
    };
    let report = store
        .sweep_blocking(policy, chrono::Utc::now())
        .map_err(store_failed)?;
    println!(
        "pruned {} request(s), {} approval(s), {} job(s), {} session(s)",
        report.requests, report.approvals, report.jobs, report.sessions
    );
    Ok(())
}
