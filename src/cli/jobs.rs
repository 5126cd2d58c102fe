//! `llm-cli-gateway jobs list|show|result|cancel|watch`: the job store from a terminal,
//! with the rules of the MCP job tools (mcp-surface.md): orphan detection runs before any
//! status is shown, a cancel is the same [`control::cancel_job`], a result is the parsed
//! answer (or, for a job that ended without one, its stdout tail).
//!
//! Owns the terminal output of these commands and their exit codes: `result` and `watch`
//! exit 1 when the job did not complete. Not here: SQL (`store`), signals (`control`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::json;

use super::{CliError, check_uuid, print_json};
use crate::jobs::control::{self, CancelOutcome};
use crate::mcp::snapshot::{JobSnapshot, SNAPSHOT_EVENTS};
use crate::providers::Provider;
use crate::store::{JobFilter, JobRow, JobStatus, Store, Stream};

/// How often `watch` polls the job.
const WATCH_POLL: Duration = Duration::from_millis(200);

/// How often `watch` re-runs orphan detection.
const WATCH_ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// The most bytes of stdout shown for a job that ended without a parsed answer.
const STDOUT_TAIL_BYTES: u64 = 64 * 1024;

/// The most bytes of stderr shown with a failed job.
const STDERR_TAIL_BYTES: u64 = 4 * 1024;

fn store_failed(error: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("the job store failed: {error}"))
}

fn not_found(id: &str) -> CliError {
    CliError::failed(format!(
        "no job {id} in this store (finished jobs are deleted after `retentionDays`; list the ones kept with `llm-cli-gateway jobs list`)"
    ))
}

/// Refreshes (orphan detection) and reads one job.
fn refreshed_view(store: &Store, id: &str) -> Result<crate::store::JobView, CliError> {
    check_uuid("job", id)?;
    if let Err(error) = control::refresh_job(store, id) {
        tracing::warn!(%error, "orphan detection failed; showing the job as stored");
    }
    store
        .job_view_blocking(id.to_string(), SNAPSHOT_EVENTS)
        .map_err(store_failed)?
        .ok_or_else(|| not_found(id))
}

/// `jobs list`: newest first, a table (or `--json`: `{"jobs": [JobSnapshot]}`).
pub fn list(
    store: &Store,
    status: Option<JobStatus>,
    cli: Option<Provider>,
    limit: u32,
    as_json: bool,
) -> Result<(), CliError> {
    if let Err(error) = control::detect_orphans(store) {
        tracing::warn!(%error, "orphan detection failed; listing anyway");
    }
    let views = store
        .list_jobs_blocking(JobFilter {
            status,
            cli,
            limit,
            progress_limit: if as_json { SNAPSHOT_EVENTS } else { 0 },
        })
        .map_err(store_failed)?;
    let jobs: Vec<JobSnapshot> = views.into_iter().map(JobSnapshot::from).collect();
    if as_json {
        return print_json(&json!({ "jobs": jobs }));
    }
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(());
    }
    println!(
        "{:<36}  {:<7}  {:<9}  {:<20}  {:>9}",
        "ID", "CLI", "STATUS", "CREATED", "DURATION"
    );
    for job in &jobs {
        println!(
            "{:<36}  {:<7}  {:<9}  {:<20}  {:>9}",
            job.id,
            job.cli.key(),
            serde_json::to_value(job.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            job.created_at.get(..19).unwrap_or(&job.created_at),
            job.duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_string())
        );
    }
    Ok(())
}

/// `jobs show ID`: the JobSnapshot as JSON.
pub fn show(store: &Store, id: &str) -> Result<(), CliError> {
    let view = refreshed_view(store, id)?;
    print_json(&json!({ "job": JobSnapshot::from(view) }))
}

/// The parsed answer of an ended job, or its stdout tail when it has none.
fn answer_of(store: &Store, job: &JobRow) -> Result<Option<String>, CliError> {
    if job.response_chars.is_some() {
        let window = store
            .read_response_blocking(job.id.clone(), 0, u64::MAX)
            .map_err(store_failed)?;
        return Ok(window.and_then(|w| w.text));
    }
    if job.stdout_bytes == 0 || job.status == JobStatus::Completed {
        return Ok(None);
    }
    let tail = store
        .read_output_tail_blocking(job.id.clone(), Stream::Stdout, STDOUT_TAIL_BYTES)
        .map_err(store_failed)?;
    Ok(Some(String::from_utf8_lossy(&tail.data).into_owned()))
}

fn stderr_tail(store: &Store, id: &str) -> Result<String, CliError> {
    let tail = store
        .read_output_tail_blocking(id.to_string(), Stream::Stderr, STDERR_TAIL_BYTES)
        .map_err(store_failed)?;
    Ok(String::from_utf8_lossy(&tail.data).into_owned())
}

/// The error a job that did not complete ends a command with.
pub fn job_failure(job: &JobRow) -> CliError {
    let error = crate::jobs::JobError::from_job(job);
    CliError::failed(format!(
        "job {} ended {} ({}): {}\nFix: {}",
        job.id,
        job.status,
        error.category.as_str(),
        error.message,
        error.remediation
    ))
}

/// `jobs result ID`: the answer on stdout (`--json`: the structured result). Exit 1 while
/// the job runs, or when it did not complete (its partial answer is still printed).
pub fn result(store: &Store, id: &str, as_json: bool) -> Result<(), CliError> {
    let view = refreshed_view(store, id)?;
    let job = view.job.clone();
    if !job.status.is_terminal() {
        return Err(CliError::failed(format!(
            "job {id} is still {}: wait for it with `llm-cli-gateway jobs watch {id}`",
            job.status
        )));
    }
    let answer = answer_of(store, &job)?;
    if as_json {
        let usage = job.usage;
        print_json(&json!({
            "job": JobSnapshot::from(view),
            "response": answer,
            "sessionId": job.provider_session_id,
            "inputTokens": usage.input_tokens,
            "outputTokens": usage.output_tokens,
            "cacheReadTokens": usage.cache_read_tokens,
            "cacheCreationTokens": usage.cache_creation_tokens,
            "reasoningTokens": usage.reasoning_tokens,
            "costUsd": usage.cost_usd,
            "stopReason": job.stop_reason,
            "stderrTail": stderr_tail(store, id)?,
            "partial": job.status != JobStatus::Completed,
        }))?;
    } else if let Some(text) = &answer {
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "{text}");
        if !text.ends_with('\n') {
            let _ = writeln!(stdout);
        }
    }
    if job.status == JobStatus::Completed {
        Ok(())
    } else {
        let mut failure = job_failure(&job);
        if !as_json {
            let tail = stderr_tail(store, id)?;
            if !tail.trim().is_empty() {
                failure
                    .message
                    .push_str(&format!("\nstderr (tail):\n{}", tail.trim_end()));
            }
        }
        Err(failure)
    }
}

/// `jobs cancel ID`: requests the cancel and prints the job's state right after.
pub fn cancel(store: &Store, id: &str) -> Result<(), CliError> {
    check_uuid("job", id)?;
    let outcome = control::cancel_job(store, id).map_err(store_failed)?;
    let message = match outcome {
        CancelOutcome::NotFound => return Err(not_found(id)),
        CancelOutcome::Canceled => format!("job {id} was queued and is now canceled"),
        CancelOutcome::Requested { .. } => {
            format!("job {id} is running: its CLI is being stopped")
        }
        CancelOutcome::AlreadyFinished(status) => {
            format!("job {id} had already ended ({status}); nothing to cancel")
        }
    };
    println!("{message}");
    Ok(())
}

/// `jobs watch ID`: follows the job until it ends. Progress events go to stderr when it is
/// a terminal; the final snapshot is printed as JSON on stdout. Exit 1 unless completed.
pub fn watch(store: &Store, id: &str) -> Result<(), CliError> {
    let view = refreshed_view(store, id)?;
    let progress = std::io::stderr().is_terminal();
    let mut seen = 0i64;
    if progress {
        for event in &view.progress {
            eprintln!(
                "[{}] {}: {}",
                short_time(&event.at),
                event.kind,
                event.message
            );
        }
    }
    seen = seen.max(view.job.last_event_seq);
    let mut last_check = std::time::Instant::now();
    let job = loop {
        let job = store
            .get_job_blocking(id.to_string())
            .map_err(store_failed)?
            .ok_or_else(|| not_found(id))?;
        if job.last_event_seq > seen {
            let events = store
                .events_after_blocking(id.to_string(), seen, 200)
                .map_err(store_failed)?;
            for event in events {
                seen = seen.max(event.seq);
                if progress {
                    eprintln!(
                        "[{}] {}: {}",
                        short_time(&event.at),
                        event.kind,
                        event.message
                    );
                }
            }
        }
        if job.status.is_terminal() {
            break job;
        }
        if last_check.elapsed() >= WATCH_ORPHAN_CHECK {
            let _ = control::refresh_job(store, id);
            last_check = std::time::Instant::now();
        }
        std::thread::sleep(WATCH_POLL);
    };
    let view = store
        .job_view_blocking(id.to_string(), SNAPSHOT_EVENTS)
        .map_err(store_failed)?
        .ok_or_else(|| not_found(id))?;
    print_json(&json!({ "job": JobSnapshot::from(view) }))?;
    if job.status == JobStatus::Completed {
        Ok(())
    } else {
        Err(job_failure(&job))
    }
}

/// `2026-01-02T03:04:05.678Z` → `03:04:05`.
pub fn short_time(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}
