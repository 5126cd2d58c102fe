//! The `jobs` table: the job rows and their value types, shared by the files that each own
//! one part of a job's life — `admission.rs` (dedup and the queue limit), `claim.rs` (a run
//! slot), `running.rs` (what a runner writes meanwhile), `finish.rs` (cancel, the terminal
//! write, orphans) and `reads.rs`.
//!
//! Each public operation is one transaction, so the rules of jobs.md hold across all the
//! processes sharing the file: attach-or-insert, claim-a-slot and first-terminal-write-wins
//! are each a single `BEGIN IMMEDIATE`. The terminal write also completes every attached
//! flight-recorder row and applies the session binding, in the same transaction.
//!
//! Not here: output chunks and progress events (`output.rs`), the SQL of request rows and
//! sessions (`requests.rs`, `sessions.rs`, called from here), and deciding that a supervisor
//! is gone (the caller inspects processes; [`Store::mark_orphaned`] records its verdict).
//!
//! Callers' duties the store cannot check: `NewJob::argv` already has the prompt replaced by
//! `<prompt sha256:…>` (the store redacts secret shapes in argv and env values when
//! `redact_secrets` is on, but cannot know which argument is the prompt).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

#[cfg(doc)]
use super::Store;
use super::output::EventRow;
use super::types::{
    JobStatus, Runner, Usage, Warning, bool_col, json_col, parse_col, sql_int, usage_cols,
};
use super::{ParseValueError, StoreError};
use crate::clock::to_iso;
use crate::providers::Provider;

mod admission;
mod claim;
mod finish;
mod reads;
mod running;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use running::{heartbeat, liveness, record_activity};

/// How long a queued job counts as waiting for a slot without a sign of life from its runner
/// (`heartbeat_at`, refreshed by every claim attempt, or `created_at`). A queued job silent
/// for longer — its supervisor died before starting — no longer holds younger jobs back.
/// Runners waiting for a slot must retry [`Store::claim_job`] well within this window.
pub const QUEUED_LIVENESS_MS: u64 = 10_000;

/// A job to admit. `argv` has the prompt replaced by `<prompt sha256:…>` (the caller's job);
/// `env` holds only the documented additions to the inherited environment.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub correlation_id: String,
    /// SHA-256 of the canonical request (jobs.md "Dedup").
    pub request_key: String,
    pub cli: Provider,
    pub model: Option<String>,
    pub runner: Runner,
    pub program: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    /// The gateway session (`gw-…`) this run belongs to, if any.
    pub session_id: Option<String>,
    pub idle_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

/// Whether and how a new request may attach to an existing identical job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupPolicy {
    /// `[persistence] dedupWindowMs`; 0 disables dedup entirely.
    pub window_ms: u64,
    /// The request continues a session: it attaches only to a queued or running job (once a
    /// turn has completed, the same words again are a new turn).
    pub session_bound: bool,
    /// `forceRefresh: true`: never attach.
    pub force_refresh: bool,
}

/// The answer of [`Store::admit_job`].
#[derive(Debug, Clone, Serialize)]
pub enum Admission {
    /// The request has its flight-recorder row; `deduped` = it attached to an existing job
    /// (which may already be completed — then the row is completed too).
    Admitted {
        job: Box<JobRow>,
        request_id: String,
        deduped: bool,
    },
    /// `max_queued_jobs` queued jobs already wait; nothing was written (retryable).
    Saturated { queued: i64, max_queued: u32 },
}

/// `[limits]` that decide whether a queued job may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    pub max_running: u32,
    pub max_running_per_provider: u32,
    /// How long a job may wait for a slot; 0 = no limit. Time spent waiting behind another
    /// turn of the same gateway session does not count.
    pub queue_timeout_ms: u64,
}

/// The process that runs a job: a supervisor, or the server itself for in-process jobs.
/// `start_time` is the process start time as the orphan detector reads it (an opaque token
/// compared for equality, so pid reuse is detected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorId {
    pub pid: i32,
    pub start_time: String,
}

/// The answer of [`Store::claim_job`].
#[derive(Debug, Clone, Serialize)]
pub enum Claim {
    /// The job is now `running`, owned by the claiming process.
    Started(Box<JobRow>),
    /// Not yet: retry with backoff (at most every 1 s is plenty; within
    /// [`QUEUED_LIVENESS_MS`] is required).
    Wait(WaitReason),
    /// The job was canceled while queued; there is nothing to run.
    Canceled,
    /// The job waited longer than `queue_timeout_ms`; it is now `failed` with
    /// `error_category = queue_timeout` and its requests are completed.
    QueueTimedOut,
    /// Another process already claimed it.
    AlreadyRunning,
    /// It ended before it could start (other than by cancel).
    AlreadyTerminal(JobStatus),
}

/// Why a claim has to wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum WaitReason {
    /// `max_running_jobs` jobs run in the whole file.
    RunLimit { running: i64, max: u32 },
    /// `max_running_jobs_per_provider` jobs of this CLI run.
    ProviderLimit { running: i64, max: u32 },
    /// An older queued job that could take this slot goes first (FIFO).
    OlderJobFirst { job_id: String },
    /// Another turn of the same gateway session runs or is ahead in the queue; this wait
    /// does not count against the queue timeout.
    SessionBusy { session_id: String },
}

/// What a heartbeat tells the runner back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobLiveness {
    pub status: JobStatus,
    pub cancel_requested: bool,
}

/// The answer of [`Store::request_cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CancelOutcome {
    /// The job was queued and is now `canceled` (its requests completed).
    Canceled,
    /// The job runs; `cancel_requested_at` is set and its runner will kill the CLI.
    Requested,
    /// The job had already ended; nothing changed.
    AlreadyFinished(JobStatus),
    NotFound,
}

/// The answer of [`Store::cancel_for_request`]: what one caller's explicit cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CallerCancel {
    /// This caller was the job's only open request: the job's cancel was requested.
    Job(CancelOutcome),
    /// Other callers still wait on the job (`others` open request rows): only this
    /// caller's row was completed `canceled`; the job runs on.
    Detached { others: i64 },
}

/// Binds a gateway session to the outcome of the job that ran on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBinding {
    pub session_id: String,
    /// The provider's session id the run reported; falls back to the completion's.
    pub provider_session_id: Option<String>,
    /// The cwd the run used (a resume must run there again).
    pub cwd: Option<String>,
}

/// The terminal write of a job (see [`Store::finish_job`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobCompletion {
    /// `completed`, `failed`, `canceled` or `orphaned`.
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    /// The executor's end reason: `exited`, `idle_timeout`, `timeout`, `output_overflow`,
    /// `canceled`, `spawn_failed` (or `queue_timeout`, `supervisor_exited` from the store).
    pub end_reason: Option<String>,
    pub error_category: Option<String>,
    pub error: Option<String>,
    /// The full parsed answer; stored once, in `jobs.response` (TEXT, or a BLOB of its
    /// UTF-8 bytes from 1 MiB on: see `finish::write_response`).
    pub response: Option<String>,
    pub provider_session_id: Option<String>,
    pub stop_reason: Option<String>,
    /// The model the CLI reported, used when the job row has none.
    pub model: Option<String>,
    pub usage: Usage,
    pub output_truncated: bool,
    pub warnings: Vec<Warning>,
    /// Session bookkeeping: usage totals always; provider id and cwd only on `completed`
    /// (a failed run does not advance the session's bound id).
    pub session: Option<SessionBinding>,
}

impl JobCompletion {
    /// A completion with the given status and nothing else known yet.
    pub fn ended(status: JobStatus) -> JobCompletion {
        JobCompletion {
            status,
            exit_code: None,
            end_reason: None,
            error_category: None,
            error: None,
            response: None,
            provider_session_id: None,
            stop_reason: None,
            model: None,
            usage: Usage::default(),
            output_truncated: false,
            warnings: Vec::new(),
            session: None,
        }
    }
}

/// One job, without its answer text (read that with [`Store::read_response`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    pub id: String,
    pub correlation_id: String,
    pub request_key: String,
    pub cli: Provider,
    pub model: Option<String>,
    pub status: JobStatus,
    pub runner: Runner,
    pub program: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub session_id: Option<String>,
    pub idle_timeout_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub created_at: String,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub expires_at: Option<String>,
    /// `finished_at − started_at`; null until both exist.
    pub duration_ms: Option<i64>,
    pub supervisor_pid: Option<i32>,
    pub supervisor_start_time: Option<String>,
    pub pgid: Option<i32>,
    pub pgid_start_time: Option<String>,
    pub heartbeat_at: Option<String>,
    pub last_activity_at: Option<String>,
    pub cancel_requested_at: Option<String>,
    pub exit_code: Option<i32>,
    pub end_reason: Option<String>,
    pub error_category: Option<String>,
    pub error: Option<String>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub output_truncated: bool,
    /// Length of `jobs.response` in characters; null when there is no parsed answer.
    pub response_chars: Option<i64>,
    pub provider_session_id: Option<String>,
    pub stop_reason: Option<String>,
    #[serde(flatten)]
    pub usage: Usage,
    pub warnings: Vec<Warning>,
    pub last_event_seq: i64,
}

/// A job with its newest progress events (oldest first), as `JobSnapshot` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub job: JobRow,
    pub progress: Vec<EventRow>,
}

/// Which jobs [`Store::list_jobs`] returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub cli: Option<Provider>,
    pub limit: u32,
    /// Newest progress events to include per job (0 = none).
    pub progress_limit: u32,
}

/// A queued or running job, with what orphan detection needs to judge its runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveJob {
    pub id: String,
    pub cli: Provider,
    pub status: JobStatus,
    pub created_at: String,
    pub supervisor_pid: Option<i32>,
    pub supervisor_start_time: Option<String>,
    pub heartbeat_at: Option<String>,
    pub pgid: Option<i32>,
    pub pgid_start_time: Option<String>,
}

/// Job counts of one CLI (health and doctor reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub cli: Provider,
    pub queued: i64,
    pub running: i64,
    pub orphaned: i64,
}

/// A window of a job's parsed answer, by character offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseWindow {
    /// `None` when the job has no parsed answer (yet).
    pub text: Option<String>,
    pub offset: i64,
    pub total_chars: i64,
    /// Where the next window starts; `None` at the end.
    pub next_offset: Option<i64>,
}

/// Every `jobs` column a `JobRow` reads (all but the answer text).
const JOB_COLUMNS: &str = "id, correlation_id, request_key, cli, model, status, runner, program, \
    argv, env, cwd, session_id, idle_timeout_ms, timeout_ms, created_at, queued_at, \
    started_at, finished_at, expires_at, \
    CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER) \
        AS duration_ms, \
    supervisor_pid, supervisor_start_time, pgid, pgid_start_time, heartbeat_at, \
    last_activity_at, cancel_requested_at, exit_code, end_reason, error_category, error, \
    stdout_bytes, stderr_bytes, output_truncated, response_chars, provider_session_id, \
    stop_reason, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, \
    reasoning_tokens, cost_usd, warnings, last_event_seq";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: row.get("id")?,
        correlation_id: row.get("correlation_id")?,
        request_key: row.get("request_key")?,
        cli: parse_col(row, "cli")?,
        model: row.get("model")?,
        status: parse_col(row, "status")?,
        runner: parse_col(row, "runner")?,
        program: row.get("program")?,
        argv: json_col(row, "argv")?,
        env: json_col(row, "env")?,
        cwd: row.get("cwd")?,
        session_id: row.get("session_id")?,
        idle_timeout_ms: row.get("idle_timeout_ms")?,
        timeout_ms: row.get("timeout_ms")?,
        created_at: row.get("created_at")?,
        queued_at: row.get("queued_at")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
        expires_at: row.get("expires_at")?,
        duration_ms: row.get("duration_ms")?,
        supervisor_pid: row.get("supervisor_pid")?,
        supervisor_start_time: row.get("supervisor_start_time")?,
        pgid: row.get("pgid")?,
        pgid_start_time: row.get("pgid_start_time")?,
        heartbeat_at: row.get("heartbeat_at")?,
        last_activity_at: row.get("last_activity_at")?,
        cancel_requested_at: row.get("cancel_requested_at")?,
        exit_code: row.get("exit_code")?,
        end_reason: row.get("end_reason")?,
        error_category: row.get("error_category")?,
        error: row.get("error")?,
        stdout_bytes: row.get("stdout_bytes")?,
        stderr_bytes: row.get("stderr_bytes")?,
        output_truncated: bool_col(row, "output_truncated")?,
        response_chars: row.get("response_chars")?,
        provider_session_id: row.get("provider_session_id")?,
        stop_reason: row.get("stop_reason")?,
        usage: usage_cols(row)?,
        warnings: json_col(row, "warnings")?,
        last_event_seq: row.get("last_event_seq")?,
    })
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<JobRow>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], job_from_row)
        .optional()?)
}

fn get_required(conn: &Connection, id: &str) -> Result<JobRow, StoreError> {
    get(conn, id)?.ok_or_else(|| StoreError::UnknownJob(id.to_string()))
}

fn status_of(conn: &Connection, id: &str) -> Result<Option<JobStatus>, StoreError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    status
        .map(|s| {
            s.parse()
                .map_err(|e: ParseValueError| StoreError::InvalidArgument {
                    what: "job status in the database",
                    detail: e.to_string(),
                })
        })
        .transpose()
}

fn iso_minus_ms(now: DateTime<Utc>, ms: u64) -> String {
    to_iso(now - Duration::milliseconds(sql_int(ms)))
}
