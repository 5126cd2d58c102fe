//! The five job tools — `llm_job_status`, `llm_job_watch`, `llm_job_result`,
//! `llm_job_cancel`, `llm_job_list` — and the `JobSnapshot` every job-returning tool shows.
//!
//! Registered only when jobs are persisted (a job id handed out must be collectable). The
//! handlers validate, run orphan detection before reporting any status (`jobs::control`, off
//! the async runtime), read the store, and shape the answer. Not here: SQL (`store`),
//! process inspection and signals (`jobs::control`), starting jobs (the request tools).

use std::ops::Range;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::GatewayState;
use super::result::ToolError;
use super::snapshot::{JobSnapshot, JobState, SNAPSHOT_EVENTS};
use crate::jobs::control;
use crate::providers::Provider;
use crate::store::{
    EVENTS_KEPT_PER_JOB, EventRow, JobFilter, JobRow, JobStatus, Store, StoreError, Stream,
};

/// How much of stderr `llm_job_result` returns, from its end.
const STDERR_TAIL_BYTES: u64 = 4 * 1024;

const WAIT_MS: (i64, i64) = (0, 30_000);
const MAX_CHARS: (i64, i64) = (1_000, 1_000_000);
const LIST_LIMIT: (i64, i64) = (1, 200);

/// The poll interval of `llm_job_watch` starts small, so a job that ends within
/// milliseconds is answered within milliseconds, and backs off to this.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// How often a long `llm_job_watch` re-runs orphan detection, so a watcher learns of a dead
/// supervisor without waiting out `waitMs` (the rule itself needs a 10 s silent heartbeat).
const ORPHAN_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The most time spent sending progress notifications before a watch answers: a client that
/// does not read its notifications must not hold the answer back.
const PROGRESS_SEND_BUDGET: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobIdParams {
    /// The job id (a UUID) from `<cli>_request_async`, a deferred `<cli>_request`, or
    /// `llm_job_list`.
    pub job_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchParams {
    /// The job id (a UUID).
    pub job_id: String,
    /// The longest wait in ms (0..=30000, default 25000); 0 answers at once.
    #[serde(default = "default_wait_ms")]
    #[schemars(range(min = 0, max = 30000))]
    pub wait_ms: i64,
    /// Return as soon as a progress event with a seq above this one exists. Default: the
    /// job's newest seq at the time of the call (wait for something new). Pass the newest
    /// `progress[].seq` you have seen to continue a watch loop without missing events.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub after_seq: Option<i64>,
}

fn default_wait_ms() -> i64 {
    25_000
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResultParams {
    /// The job id (a UUID).
    pub job_id: String,
    /// The most characters of the answer to return (1000..=1000000, default 200000); with
    /// `raw`, the most bytes of stdout.
    #[serde(default = "default_max_chars")]
    #[schemars(range(min = 1000, max = 1000000))]
    pub max_chars: i64,
    /// Where the window starts: a character offset into the answer (default 0); with `raw`,
    /// a byte offset into stdout. Pass the previous result's `nextOffset` to page on.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub offset: i64,
    /// Page through the CLI's raw stdout (its machine output) by byte offset instead of the
    /// parsed answer. Windows never split a UTF-8 character.
    #[serde(default)]
    pub raw: bool,
}

fn default_max_chars() -> i64 {
    200_000
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobListParams {
    /// Only jobs in this state.
    #[serde(default)]
    pub status: Option<JobState>,
    /// Only this CLI's jobs (`vibe` is accepted for `mistral`).
    #[serde(default)]
    pub cli: Option<Provider>,
    /// How many jobs, newest first (1..=200, default 20).
    #[serde(default = "default_list_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: i64,
}

fn default_list_limit() -> i64 {
    20
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobOutput {
    pub job: JobSnapshot,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResultOutput {
    pub job: JobSnapshot,
    /// The window of the answer (or, with `raw`, of stdout). Null while the job is queued or
    /// running (no answer yet), and when it ended without any.
    pub response: Option<String>,
    /// The CLI's own session id (pass it back as `sessionId` to continue).
    pub session_id: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub stop_reason: Option<String>,
    /// The last 4 KiB of the CLI's stderr (starting at a whole character).
    pub stderr_tail: String,
    /// Where `response` starts: characters into the answer; with `raw`, bytes into stdout.
    pub offset: i64,
    /// Pass as `offset` for the next window; null at the end.
    pub next_offset: Option<i64>,
    /// The answer's length in characters; with `raw`, stdout's length in bytes.
    pub total_chars: i64,
    /// The response is not a complete final answer: the job failed, was canceled, was
    /// orphaned, or has not finished.
    pub partial: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelOutput {
    pub job_id: String,
    /// The job's state right after the call: `canceled` for a job that was queued,
    /// `running` for one whose CLI is being stopped, else the state it had already ended in.
    pub status: JobState,
    /// A cancel has been requested for this job (by this call or an earlier one).
    pub cancel_requested: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobListOutput {
    /// Newest first.
    pub jobs: Vec<JobSnapshot>,
}

pub async fn status(state: &GatewayState, params: JobIdParams) -> Result<Value, ToolError> {
    let id = job_id(&params.job_id)?;
    refresh(&state.store, &id).await;
    let job = snapshot(&state.store, &id).await?;
    Ok(json!(JobOutput { job }))
}

pub async fn watch(
    state: &GatewayState,
    params: WatchParams,
    context: &RequestContext<RoleServer>,
) -> Result<Value, ToolError> {
    let id = job_id(&params.job_id)?;
    let wait_ms = in_range("waitMs", params.wait_ms, WAIT_MS)?;
    if let Some(after) = params.after_seq {
        at_least_zero("afterSeq", after)?;
    }
    let store = &state.store;
    refresh(store, &id).await;
    let newest = store
        .latest_event_seq(id.clone())
        .await
        .map_err(|e| store_failure(&id, e))?
        .ok_or_else(|| job_not_found(&id))?;
    let after = params.after_seq.unwrap_or(newest);

    let started = Instant::now();
    let deadline = started + Duration::from_millis(wait_ms);
    let mut delay = POLL_FIRST;
    let mut last_check = started;
    loop {
        let job = row(store, &id).await?;
        if job.status.is_terminal() || job.last_event_seq > after {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now - last_check >= ORPHAN_CHECK_EVERY {
            refresh(store, &id).await;
            last_check = now;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(delay.min(deadline - now)) => {}
            // The request was cancelled (or the connection closed): nobody waits any more.
            () = context.ct.cancelled() => break,
        }
        delay = (delay * 2).min(POLL_MAX);
    }

    if let Some(token) = context.meta.get_progress_token()
        && !context.ct.is_cancelled()
    {
        let events = store
            .events_after(
                id.clone(),
                after,
                u32::try_from(EVENTS_KEPT_PER_JOB).unwrap_or(200),
            )
            .await
            .map_err(|e| store_failure(&id, e))?;
        send_progress(context, token, events).await;
    }
    let job = snapshot(store, &id).await?;
    Ok(json!(JobOutput { job }))
}

pub async fn result(state: &GatewayState, params: ResultParams) -> Result<Value, ToolError> {
    let id = job_id(&params.job_id)?;
    let max = in_range("maxChars", params.max_chars, MAX_CHARS)?;
    at_least_zero("offset", params.offset)?;
    let store = &state.store;
    refresh(store, &id).await;
    let view = store
        .job_view(id.clone(), SNAPSHOT_EVENTS)
        .await
        .map_err(|e| store_failure(&id, e))?
        .ok_or_else(|| job_not_found(&id))?;
    let window = if params.raw {
        raw_window(store, &view.job, params.offset, max).await?
    } else {
        answer_window(store, &view.job, params.offset, max).await?
    };
    let stderr_tail = tail_text(store, &id, Stream::Stderr, STDERR_TAIL_BYTES).await?;
    let job = &view.job;
    let usage = job.usage;
    Ok(json!(JobResultOutput {
        session_id: job.provider_session_id.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_read_tokens: usage.cache_read_tokens,
        cache_creation_tokens: usage.cache_creation_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        cost_usd: usage.cost_usd,
        stop_reason: job.stop_reason.clone(),
        partial: job.status != JobStatus::Completed,
        job: view.into(),
        response: window.response,
        stderr_tail,
        offset: window.offset,
        next_offset: window.next_offset,
        total_chars: window.total,
    }))
}

pub async fn cancel(state: &GatewayState, params: JobIdParams) -> Result<Value, ToolError> {
    let id = job_id(&params.job_id)?;
    let store = state.store.clone();
    let job = id.clone();
    let outcome = tokio::task::spawn_blocking(move || control::cancel_job(&store, &job))
        .await
        .map_err(|e| ToolError::internal(format!("Canceling job {id} failed: {e}")))?
        .map_err(|e| store_failure(&id, e))?;
    if outcome == control::CancelOutcome::NotFound {
        return Err(job_not_found(&id));
    }
    // The row as it is now: for a running job the supervisor may already have ended it.
    let job = row(&state.store, &id).await?;
    Ok(json!(CancelOutput {
        job_id: id,
        status: job.status.into(),
        cancel_requested: job.cancel_requested_at.is_some(),
    }))
}

pub async fn list(state: &GatewayState, params: JobListParams) -> Result<Value, ToolError> {
    let limit = in_range("limit", params.limit, LIST_LIMIT)?;
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || control::detect_orphans(&store)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "orphan detection failed; listing anyway"),
        Err(error) => tracing::warn!(%error, "orphan detection panicked; listing anyway"),
    }
    let views = state
        .store
        .list_jobs(JobFilter {
            status: params.status.map(JobStatus::from),
            cli: params.cli,
            limit: u32::try_from(limit).unwrap_or(200),
            progress_limit: SNAPSHOT_EVENTS,
        })
        .await
        .map_err(store_error)?;
    Ok(json!(JobListOutput {
        jobs: views.into_iter().map(JobSnapshot::from).collect(),
    }))
}

/// A window of text with its paging facts.
struct Window {
    response: Option<String>,
    offset: i64,
    next_offset: Option<i64>,
    total: i64,
}

/// The parsed answer by character offset. A job that ended without a parsed answer but with
/// output shows its stdout tail instead (not pageable: `raw` pages the whole stdout).
async fn answer_window(
    store: &Store,
    job: &JobRow,
    offset: i64,
    max_chars: u64,
) -> Result<Window, ToolError> {
    let id = &job.id;
    if !job.status.is_terminal() {
        return Ok(Window {
            response: None,
            offset,
            next_offset: None,
            total: 0,
        });
    }
    if let Some(total) = job.response_chars {
        if offset > total {
            return Err(past_the_end(offset, total, "the answer has", "characters"));
        }
        let window = store
            .read_response(id.clone(), offset.unsigned_abs(), max_chars)
            .await
            .map_err(|e| store_failure(id, e))?
            .ok_or_else(|| job_not_found(id))?;
        return Ok(Window {
            response: Some(window.text.unwrap_or_default()),
            offset: window.offset,
            next_offset: window.next_offset,
            total: window.total_chars,
        });
    }
    if job.status == JobStatus::Completed || job.stdout_bytes == 0 {
        return Ok(Window {
            response: None,
            offset,
            next_offset: None,
            total: 0,
        });
    }
    if offset != 0 {
        return Err(ToolError::invalid_input(
            format!(
                "Invalid offset: job {id} ended {} without a parsed answer, so the result is \
                 the tail of its stdout, which is not paged",
                job.status
            ),
            "Pass offset 0 for the stdout tail, or raw: true to page through all of stdout \
             by byte offset.",
        ));
    }
    let tail = tail_text(store, id, Stream::Stdout, max_chars).await?;
    Ok(Window {
        total: i64::try_from(tail.chars().count()).unwrap_or(i64::MAX),
        response: Some(tail),
        offset: 0,
        next_offset: None,
    })
}

/// Raw stdout by byte offset, cut to whole UTF-8 characters at both ends.
async fn raw_window(
    store: &Store,
    job: &JobRow,
    offset: i64,
    max_bytes: u64,
) -> Result<Window, ToolError> {
    let id = &job.id;
    if offset > job.stdout_bytes {
        return Err(past_the_end(
            offset,
            job.stdout_bytes,
            "stdout has",
            "bytes",
        ));
    }
    let window = store
        .read_output(id.clone(), Stream::Stdout, offset.unsigned_abs(), max_bytes)
        .await
        .map_err(|e| store_failure(id, e))?;
    let end_of_window = window.offset + i64::try_from(window.data.len()).unwrap_or(i64::MAX);
    // Only a finished stream's last character is whole for sure; a running job may be in
    // the middle of writing it.
    let final_end = end_of_window == window.total_bytes && job.status.is_terminal();
    let keep = char_aligned(&window.data, window.offset > 0, final_end);
    let start = window.offset + i64::try_from(keep.start).unwrap_or(0);
    let end = window.offset + i64::try_from(keep.end).unwrap_or(0);
    Ok(Window {
        response: Some(String::from_utf8_lossy(&window.data[keep]).into_owned()),
        offset: start,
        next_offset: (end < window.total_bytes).then_some(end),
        total: window.total_bytes,
    })
}

/// The last `max_bytes` of a stream as text, starting at a whole character.
async fn tail_text(
    store: &Store,
    id: &str,
    stream: Stream,
    max_bytes: u64,
) -> Result<String, ToolError> {
    let window = store
        .read_output_tail(id.to_string(), stream, max_bytes)
        .await
        .map_err(|e| store_failure(id, e))?;
    let keep = char_aligned(&window.data, window.offset > 0, true);
    Ok(String::from_utf8_lossy(&window.data[keep]).into_owned())
}

/// The part of a byte window made of whole UTF-8 characters: without the continuation bytes
/// (at most 3) that open it when it starts inside a character, and — unless `complete_end`
/// — without a character cut short at its end. Bytes that are not UTF-8 at all are kept
/// (shown as U+FFFD); the result never shrinks a window by more than 3 bytes at each end,
/// so paging always moves on.
fn char_aligned(data: &[u8], starts_mid_stream: bool, complete_end: bool) -> Range<usize> {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    let start = if starts_mid_stream {
        data.iter()
            .take(3)
            .take_while(|b| is_continuation(**b))
            .count()
    } else {
        0
    };
    let mut end = data.len();
    if !complete_end {
        // The last byte that is not a continuation starts the last character; drop that
        // character if the bytes it announces run past the window.
        let lead = (start..data.len())
            .rev()
            .take(4)
            .find(|&i| !is_continuation(data[i]));
        if let Some(i) = lead {
            let width = match data[i] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            if i + width > data.len() {
                end = i;
            }
        }
    }
    start..end.max(start)
}

/// Sends new events as `notifications/progress` (progress = seq, message = `kind: message`),
/// in order, within [`PROGRESS_SEND_BUDGET`]; a failed send ends the sending, not the call.
async fn send_progress(
    context: &RequestContext<RoleServer>,
    token: ProgressToken,
    events: Vec<EventRow>,
) {
    let sends = async {
        for event in events {
            // Event seqs stay far below 2^53, where f64 is exact.
            let param = ProgressNotificationParam::new(token.clone(), event.seq as f64)
                .with_message(format!("{}: {}", event.kind, event.message));
            if let Err(error) = context.peer.notify_progress(param).await {
                tracing::debug!(%error, "progress notification not sent");
                break;
            }
        }
    };
    if tokio::time::timeout(PROGRESS_SEND_BUDGET, sends)
        .await
        .is_err()
    {
        tracing::debug!("progress notifications took too long; answering without the rest");
    }
}

/// Orphan detection for one job before its status is reported. A failure here does not
/// fail the read (the next read tries again); it is logged.
async fn refresh(store: &Store, id: &str) {
    let store = store.clone();
    let job = id.to_string();
    match tokio::task::spawn_blocking(move || control::refresh_job(&store, &job)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(job_id = id, %error, "orphan detection failed"),
        Err(error) => tracing::warn!(job_id = id, %error, "orphan detection panicked"),
    }
}

async fn row(store: &Store, id: &str) -> Result<JobRow, ToolError> {
    store
        .get_job(id.to_string())
        .await
        .map_err(|e| store_failure(id, e))?
        .ok_or_else(|| job_not_found(id))
}

async fn snapshot(store: &Store, id: &str) -> Result<JobSnapshot, ToolError> {
    store
        .job_view(id.to_string(), SNAPSHOT_EVENTS)
        .await
        .map_err(|e| store_failure(id, e))?
        .map(JobSnapshot::from)
        .ok_or_else(|| job_not_found(id))
}

/// Checks that `raw` is a job id (a UUID, in any of its spellings) and returns it in the
/// form the store uses (hyphenated, lower case).
fn job_id(raw: &str) -> Result<String, ToolError> {
    match uuid::Uuid::try_parse(raw.trim()) {
        Ok(id) => Ok(id.hyphenated().to_string()),
        Err(_) => Err(ToolError::invalid_input(
            format!(
                "Invalid jobId: \"{}\" is not a job id (expected a UUID such as \
                 0190f5c2-6a53-7c3e-9e6b-1f2a3b4c5d6e)",
                shorten(raw)
            ),
            "Pass the jobId returned by <cli>_request_async or a deferred <cli>_request, or \
             find it with llm_job_list.",
        )),
    }
}

fn job_not_found(id: &str) -> ToolError {
    ToolError::invalid_input(
        format!("Job not found: {id}"),
        "Check the id, or find the job with llm_job_list. Finished jobs are deleted \
         [persistence] retentionDays after they end (default 30).",
    )
}

pub(super) fn in_range(field: &str, value: i64, (min, max): (i64, i64)) -> Result<u64, ToolError> {
    if value < min || value > max {
        return Err(ToolError::invalid_input(
            format!("Invalid {field}: {value} is out of range ({min}..={max})"),
            format!("Pass {field} between {min} and {max}, or leave it out for the default."),
        ));
    }
    Ok(value.unsigned_abs())
}

fn at_least_zero(field: &str, value: i64) -> Result<(), ToolError> {
    if value < 0 {
        return Err(ToolError::invalid_input(
            format!("Invalid {field}: {value} must not be negative"),
            format!("Pass {field} ≥ 0."),
        ));
    }
    Ok(())
}

fn past_the_end(offset: i64, total: i64, what: &str, unit: &str) -> ToolError {
    ToolError::invalid_input(
        format!("Invalid offset: {offset} is past the end ({what} {total} {unit})"),
        "Start at 0 and pass each result's nextOffset; a null nextOffset means the end.",
    )
}

/// An unknown job surfacing from the store (deleted by retention mid-call) is "not found";
/// anything else is a gateway fault.
fn store_failure(id: &str, error: StoreError) -> ToolError {
    match error {
        StoreError::UnknownJob(_) => job_not_found(id),
        other => store_error(other),
    }
}

fn store_error(error: StoreError) -> ToolError {
    tracing::error!(%error, "store operation failed");
    ToolError::internal(format!("The gateway's database failed: {error}"))
}

/// Keeps echoed input short: an error message must not carry a megabyte of junk back.
fn shorten(value: &str) -> String {
    const LIMIT: usize = 80;
    if value.chars().count() <= LIMIT {
        value.to_string()
    } else {
        let head: String = value.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_uuids_in_any_spelling() {
        let id = "0190f5c2-6a53-7c3e-9e6b-1f2a3b4c5d6e";
        assert_eq!(job_id(id).unwrap(), id);
        assert_eq!(job_id(&id.to_uppercase()).unwrap(), id);
        assert_eq!(job_id(&id.replace('-', "")).unwrap(), id);
        let error = job_id("abc").unwrap_err();
        assert!(
            error
                .message
                .starts_with("Invalid jobId: \"abc\" is not a job id"),
            "{}",
            error.message
        );
        assert!(job_id(&"x".repeat(5000)).unwrap_err().message.len() < 300);
        assert_eq!(
            job_id("--help").unwrap_err().category.as_str(),
            "invalid_input"
        );
    }

    #[test]
    fn ranges_name_the_field() {
        assert_eq!(in_range("waitMs", 0, WAIT_MS).unwrap(), 0);
        assert_eq!(
            in_range("waitMs", 30_001, WAIT_MS).unwrap_err().message,
            "Invalid waitMs: 30001 is out of range (0..=30000)"
        );
        assert_eq!(
            in_range("limit", 0, LIST_LIMIT).unwrap_err().message,
            "Invalid limit: 0 is out of range (1..=200)"
        );
        assert_eq!(
            at_least_zero("offset", -1).unwrap_err().message,
            "Invalid offset: -1 must not be negative"
        );
    }

    #[test]
    fn windows_keep_whole_characters() {
        let text = "aé€😀".as_bytes(); // 1 + 2 + 3 + 4 bytes
        assert_eq!(char_aligned(text, false, true), 0..10);
        // Cut inside é, €, 😀 at the end: the broken character goes to the next window.
        assert_eq!(char_aligned(&text[..2], false, false), 0..1);
        assert_eq!(char_aligned(&text[..5], false, false), 0..3);
        assert_eq!(char_aligned(&text[..9], false, false), 0..6);
        assert_eq!(char_aligned(&text[..10], false, false), 0..10);
        // Starting inside a character skips its continuation bytes.
        assert_eq!(char_aligned(&text[2..], true, true), 1..8);
        assert_eq!(char_aligned(&text[7..], true, true), 3..3);
        // At the very start of the stream nothing is skipped, even invalid bytes.
        assert_eq!(char_aligned(&[0x80, b'a'], false, true), 0..2);
        // Bytes that are not UTF-8 are kept and never stall paging.
        let junk = [0x80u8; 16];
        assert_eq!(char_aligned(&junk, true, false), 3..16);
        assert_eq!(char_aligned(&[b'a', 0xF0], false, false), 0..1);
        assert_eq!(char_aligned(&[0xF0], false, true), 0..1);
    }

    #[test]
    fn job_states_convert_both_ways() {
        for status in JobStatus::ALL {
            let state = JobState::from(*status);
            assert_eq!(JobStatus::from(state), *status);
            assert_eq!(serde_json::to_value(state).unwrap(), status.as_str());
        }
    }
}
