//! The `jobs` table: admission (dedup and the queue limit), claiming a run slot, liveness,
//! cancel, the terminal write, orphan marking, and every job read.
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
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::output::{self, EventRow};
use super::requests::{self, NewRequest, Outcome};
use super::sessions::{self, SessionUse};
use super::types::{
    JobStatus, RequestStatus, Runner, Usage, Warning, bool_col, json_col, parse_col, sql_int,
    to_json, usage_cols,
};
use super::{Cx, Store, StoreError, redact};
use crate::clock::{now_iso, to_iso};
use crate::providers::Provider;

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
    /// The full parsed answer; stored once, in `jobs.response`.
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
                .map_err(|e: super::ParseValueError| StoreError::InvalidArgument {
                    what: "job status in the database",
                    detail: e.to_string(),
                })
        })
        .transpose()
}

fn iso_minus_ms(now: DateTime<Utc>, ms: u64) -> String {
    to_iso(now - Duration::milliseconds(sql_int(ms)))
}

// ---------------------------------------------------------------------------------------
// Admission

/// One transaction: attach to an identical live (or recently completed) job, or enforce the
/// queue limit and insert a new queued job; in both cases insert the caller's request row.
pub(crate) fn admit(
    conn: &Connection,
    cx: &Cx,
    job: NewJob,
    request: NewRequest,
    dedup: DedupPolicy,
    max_queued_jobs: u32,
) -> Result<Admission, StoreError> {
    if job.cli != request.cli {
        return Err(StoreError::InvalidArgument {
            what: "admission",
            detail: format!(
                "the job runs {} but its request is for {}",
                job.cli, request.cli
            ),
        });
    }
    let now_t = Utc::now();
    let now = to_iso(now_t);

    if let Some(existing) = find_attachable(conn, &job.request_key, dedup, now_t)? {
        let request_id =
            requests::insert_started(conn, cx, &request, Some(&existing.id), true, &now)?;
        if existing.status.is_terminal() {
            // Attached to a completed job: the answer is already there, so the row is
            // completed now — nobody else would ever complete it.
            complete_requests_from_row(conn, cx, &existing)?;
        }
        return Ok(Admission::Admitted {
            job: Box::new(existing),
            request_id,
            deduped: true,
        });
    }

    let queued: i64 = conn
        .prepare_cached("SELECT count(*) FROM jobs WHERE status = 'queued'")?
        .query_row([], |r| r.get(0))?;
    if queued >= i64::from(max_queued_jobs) {
        return Ok(Admission::Saturated {
            queued,
            max_queued: max_queued_jobs,
        });
    }

    let id = uuid::Uuid::now_v7().to_string();
    let (argv, env) = recorded_invocation(cx, &job);
    conn.prepare_cached(
        "INSERT INTO jobs (id, correlation_id, request_key, cli, model, status, runner, program, \
             argv, env, cwd, session_id, idle_timeout_ms, timeout_ms, created_at, queued_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
    )?
    .execute(params![
        id,
        job.correlation_id,
        job.request_key,
        job.cli.key(),
        job.model,
        job.runner.as_str(),
        job.program,
        to_json(&argv),
        to_json(&env),
        job.cwd,
        job.session_id,
        job.idle_timeout_ms.map(sql_int),
        job.timeout_ms.map(sql_int),
        now,
    ])?;
    let request_id = requests::insert_started(conn, cx, &request, Some(&id), false, &now)?;
    Ok(Admission::Admitted {
        job: Box::new(get_required(conn, &id)?),
        request_id,
        deduped: false,
    })
}

/// argv and env values as recorded: secret shapes redacted when asked (defence in depth; the
/// prompt placeholder is the caller's job).
fn recorded_invocation(cx: &Cx, job: &NewJob) -> (Vec<String>, BTreeMap<String, String>) {
    if !cx.privacy.redact_secrets {
        return (job.argv.clone(), job.env.clone());
    }
    let argv = job
        .argv
        .iter()
        .map(|a| redact::redact_secrets(a).into_owned())
        .collect();
    let env = job
        .env
        .iter()
        .map(|(k, v)| (k.clone(), redact::redact_secrets(v).into_owned()))
        .collect();
    (argv, env)
}

/// The job a request with this key may attach to (jobs.md "Dedup"): the newest queued or
/// running one without a pending cancel, or — stateless requests only — one completed within
/// the window. Failed, canceled and orphaned jobs never qualify.
fn find_attachable(
    conn: &Connection,
    request_key: &str,
    dedup: DedupPolicy,
    now: DateTime<Utc>,
) -> Result<Option<JobRow>, StoreError> {
    if dedup.force_refresh || dedup.window_ms == 0 {
        return Ok(None);
    }
    let completed_since = iso_minus_ms(now, dedup.window_ms);
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs \
         WHERE request_key = ?1 \
           AND ((status IN ('queued', 'running') AND cancel_requested_at IS NULL) \
                OR (?2 AND status = 'completed' AND finished_at >= ?3)) \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            params![request_key, !dedup.session_bound, completed_since],
            job_from_row,
        )
        .optional()?)
}

/// Completes the still-open request rows of an already-terminal job from its stored outcome.
fn complete_requests_from_row(
    conn: &Connection,
    cx: &Cx,
    job: &JobRow,
) -> Result<usize, StoreError> {
    let Some(status) = RequestStatus::from_job(job.status) else {
        return Ok(0);
    };
    let response: Option<String> = conn
        .prepare_cached("SELECT response FROM jobs WHERE id = ?1")?
        .query_row([&job.id], |r| r.get(0))?;
    let finished_at = job.finished_at.clone().unwrap_or_else(now_iso);
    let outcome = Outcome {
        status,
        finished_at: &finished_at,
        exit_code: job.exit_code,
        error_category: job.error_category.as_deref(),
        error_message: job.error.as_deref(),
        response: response.as_deref(),
        provider_session_id: job.provider_session_id.as_deref(),
        stop_reason: job.stop_reason.as_deref(),
        model: job.model.as_deref(),
        usage: job.usage,
        warnings: &job.warnings,
    };
    requests::complete_for_job(conn, cx, &job.id, &outcome)
}

// ---------------------------------------------------------------------------------------
// Claiming a slot

/// One transaction: decides whether a queued job may start now and, if so, marks it running.
///
/// The rule, in order:
/// 1. Only a `queued` job can be claimed; a canceled one answers `Canceled`.
/// 2. The claim records the runner (pid, start time) and refreshes `heartbeat_at`, so a
///    waiting runner is visibly alive (FIFO liveness, orphan detection).
/// 3. Session turns never overlap: if another job of the same gateway session runs, or an
///    older live one of it is queued, wait — and restart the queue clock (`queued_at`), since
///    this wait does not count against the queue timeout.
/// 4. Queue timeout: waited longer than `queue_timeout_ms` since `queued_at` → the job fails
///    with `queue_timeout`.
/// 5. Limits: running jobs in the whole file < `max_running`, and of this CLI <
///    `max_running_per_provider`.
/// 6. FIFO: an older live queued job that could start right now (its CLI below its limit,
///    its session free) goes first. Jobs blocked on their own CLI's limit or session do not
///    hold back other CLIs' jobs; dead queued jobs (silent for [`QUEUED_LIVENESS_MS`]) do
///    not hold back anything.
pub(crate) fn claim(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    limits: ClaimLimits,
    runner: SupervisorId,
) -> Result<Claim, StoreError> {
    let now_t = Utc::now();
    let now = to_iso(now_t);
    let live_since = iso_minus_ms(now_t, QUEUED_LIVENESS_MS);
    let job = get_required(conn, &job_id)?;
    match job.status {
        JobStatus::Queued => {}
        JobStatus::Running => return Ok(Claim::AlreadyRunning),
        JobStatus::Canceled => return Ok(Claim::Canceled),
        other => return Ok(Claim::AlreadyTerminal(other)),
    }

    conn.prepare_cached(
        "UPDATE jobs SET supervisor_pid = ?2, supervisor_start_time = ?3, heartbeat_at = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![job.id, runner.pid, runner.start_time, now])?;

    if let Some(session_id) = &job.session_id
        && session_turn_ahead(conn, &job, session_id, &live_since)?
    {
        conn.prepare_cached("UPDATE jobs SET queued_at = ?2 WHERE id = ?1")?
            .execute(params![job.id, now])?;
        return Ok(Claim::Wait(WaitReason::SessionBusy {
            session_id: session_id.clone(),
        }));
    }

    if limits.queue_timeout_ms > 0 {
        let waited_since = DateTime::parse_from_rfc3339(&job.queued_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now_t);
        let waited_ms = (now_t - waited_since).num_milliseconds();
        if waited_ms > sql_int(limits.queue_timeout_ms) {
            let mut completion = JobCompletion::ended(JobStatus::Failed);
            completion.end_reason = Some("queue_timeout".into());
            completion.error_category = Some("queue_timeout".into());
            completion.error = Some(format!(
                "waited {waited_ms} ms for a run slot, longer than queue_timeout_ms = {}; \
                 other jobs held every slot ([limits] max_running_jobs = {}, \
                 max_running_jobs_per_provider = {})",
                limits.queue_timeout_ms, limits.max_running, limits.max_running_per_provider
            ));
            finish(conn, cx, job.id.clone(), completion)?;
            return Ok(Claim::QueueTimedOut);
        }
    }

    let (running, running_cli): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(cli = ?1), 0) FROM jobs WHERE status = 'running'",
        )?
        .query_row([job.cli.key()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if running >= i64::from(limits.max_running) {
        return Ok(Claim::Wait(WaitReason::RunLimit {
            running,
            max: limits.max_running,
        }));
    }
    if running_cli >= i64::from(limits.max_running_per_provider) {
        return Ok(Claim::Wait(WaitReason::ProviderLimit {
            running: running_cli,
            max: limits.max_running_per_provider,
        }));
    }

    let ahead: Option<String> = conn
        .prepare_cached(
            "SELECT k.id FROM jobs k \
             WHERE k.status = 'queued' AND k.id != ?1 \
               AND (k.created_at < ?2 OR (k.created_at = ?2 AND k.id < ?1)) \
               AND coalesce(k.heartbeat_at, k.created_at) >= ?3 \
               AND (SELECT count(*) FROM jobs r WHERE r.status = 'running' AND r.cli = k.cli) < ?4 \
               AND (k.session_id IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM jobs s \
                     WHERE s.session_id = k.session_id AND s.id != k.id \
                       AND (s.status = 'running' \
                            OR (s.status = 'queued' \
                                AND (s.created_at < k.created_at \
                                     OR (s.created_at = k.created_at AND s.id < k.id)) \
                                AND coalesce(s.heartbeat_at, s.created_at) >= ?3)))) \
             ORDER BY k.created_at, k.id LIMIT 1",
        )?
        .query_row(
            params![
                job.id,
                job.created_at,
                live_since,
                i64::from(limits.max_running_per_provider)
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(job_id) = ahead {
        return Ok(Claim::Wait(WaitReason::OlderJobFirst { job_id }));
    }

    conn.prepare_cached(
        "UPDATE jobs SET status = 'running', started_at = ?2, heartbeat_at = ?2 \
         WHERE id = ?1 AND status = 'queued'",
    )?
    .execute(params![job.id, now])?;
    Ok(Claim::Started(Box::new(get_required(conn, &job.id)?)))
}

/// True when another turn of `session_id` runs, or an older live one waits ahead of `job`.
fn session_turn_ahead(
    conn: &Connection,
    job: &JobRow,
    session_id: &str,
    live_since: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM jobs \
             WHERE session_id = ?1 AND id != ?2 \
               AND (status = 'running' \
                    OR (status = 'queued' \
                        AND (created_at < ?3 OR (created_at = ?3 AND id < ?2)) \
                        AND coalesce(heartbeat_at, created_at) >= ?4)) \
             LIMIT 1",
        )?
        .query_row(
            params![session_id, job.id, job.created_at, live_since],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

// ---------------------------------------------------------------------------------------
// While it runs

/// Refreshes `heartbeat_at` of a queued or running job and tells the runner whether to stop.
pub(crate) fn heartbeat(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
) -> Result<JobLiveness, StoreError> {
    conn.prepare_cached(
        "UPDATE jobs SET heartbeat_at = ?2 WHERE id = ?1 AND status IN ('queued', 'running')",
    )?
    .execute(params![job_id, now_iso()])?;
    liveness(conn, &job_id)
}

pub(crate) fn liveness(conn: &Connection, job_id: &str) -> Result<JobLiveness, StoreError> {
    let found: Option<(String, bool)> = conn
        .prepare_cached("SELECT status, cancel_requested_at IS NOT NULL FROM jobs WHERE id = ?1")?
        .query_row([job_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (status, cancel_requested) =
        found.ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))?;
    let status =
        status
            .parse()
            .map_err(|e: super::ParseValueError| StoreError::InvalidArgument {
                what: "job status in the database",
                detail: e.to_string(),
            })?;
    Ok(JobLiveness {
        status,
        cancel_requested,
    })
}

pub(crate) fn is_cancel_requested(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
) -> Result<bool, StoreError> {
    Ok(liveness(conn, &job_id)?.cancel_requested)
}

/// Moves `last_activity_at` forward (never back: late batches must not rewind it).
pub(crate) fn record_activity(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let at = to_iso(at);
    Ok(conn
        .prepare_cached(
            "UPDATE jobs SET last_activity_at = ?2 \
             WHERE id = ?1 AND (last_activity_at IS NULL OR last_activity_at < ?2)",
        )?
        .execute(params![job_id, at])?
        > 0)
}

/// Records the provider's session id as soon as the parser sees it (a deferred caller can
/// already resume from it). Ignored once the job is terminal.
pub(crate) fn set_provider_session(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    provider_session_id: String,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE jobs SET provider_session_id = ?2 \
             WHERE id = ?1 AND status IN ('queued', 'running')",
        )?
        .execute(params![job_id, provider_session_id])?
        > 0)
}

/// Records the CLI's process group and its leader's start time (for the group kill of
/// orphan handling, after checking the leader is still that process).
pub(crate) fn set_process_group(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    pgid: i32,
    leader_start_time: String,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE jobs SET pgid = ?2, pgid_start_time = ?3 WHERE id = ?1")?
        .execute(params![job_id, pgid, leader_start_time])?
        > 0)
}

// ---------------------------------------------------------------------------------------
// Cancel and the terminal write

/// Queued → `canceled` at once (requests completed); running → `cancel_requested_at` set
/// (its runner kills the CLI and writes the terminal state); terminal → unchanged.
pub(crate) fn request_cancel(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
) -> Result<CancelOutcome, StoreError> {
    let Some(status) = status_of(conn, &job_id)? else {
        return Ok(CancelOutcome::NotFound);
    };
    let now = now_iso();
    match status {
        JobStatus::Queued => {
            conn.prepare_cached("UPDATE jobs SET cancel_requested_at = ?2 WHERE id = ?1")?
                .execute(params![job_id, now])?;
            let mut completion = JobCompletion::ended(JobStatus::Canceled);
            completion.end_reason = Some("canceled".into());
            completion.error_category = Some("canceled".into());
            completion.error = Some("canceled by the caller before it started".into());
            finish(conn, cx, job_id, completion)?;
            Ok(CancelOutcome::Canceled)
        }
        JobStatus::Running => {
            conn.prepare_cached(
                "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, ?2) \
                 WHERE id = ?1",
            )?
            .execute(params![job_id, now])?;
            Ok(CancelOutcome::Requested)
        }
        other => Ok(CancelOutcome::AlreadyFinished(other)),
    }
}

/// The terminal write (first one wins; a later one returns `false` and changes nothing):
/// the job's outcome, the completion of every attached request row still `started` or
/// `deferred`, and the session binding — all in the caller's one transaction.
pub(crate) fn finish(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    completion: JobCompletion,
) -> Result<bool, StoreError> {
    let Some(request_status) = RequestStatus::from_job(completion.status) else {
        return Err(StoreError::InvalidArgument {
            what: "job completion",
            detail: format!(
                "status {} is not terminal (expected completed, failed, canceled or orphaned)",
                completion.status
            ),
        });
    };
    let now_t = Utc::now();
    let now = to_iso(now_t);
    let expires_at = (cx.job_retention_days > 0)
        .then(|| to_iso(now_t + Duration::days(i64::from(cx.job_retention_days))));
    let response_chars = completion
        .response
        .as_ref()
        .map(|r| i64::try_from(r.chars().count()).unwrap_or(i64::MAX));
    let u = completion.usage;
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET status = ?2, finished_at = ?3, expires_at = ?4, exit_code = ?5, \
                 end_reason = ?6, error_category = ?7, error = ?8, response = ?9, \
                 response_chars = ?10, provider_session_id = coalesce(?11, provider_session_id), \
                 stop_reason = ?12, model = coalesce(model, ?13), input_tokens = ?14, \
                 output_tokens = ?15, cache_read_tokens = ?16, cache_creation_tokens = ?17, \
                 reasoning_tokens = ?18, cost_usd = ?19, output_truncated = ?20, warnings = ?21 \
             WHERE id = ?1 AND status IN ('queued', 'running')",
        )?
        .execute(params![
            job_id,
            completion.status.as_str(),
            now,
            expires_at,
            completion.exit_code,
            completion.end_reason,
            completion.error_category,
            completion.error,
            completion.response,
            response_chars,
            completion.provider_session_id,
            completion.stop_reason,
            completion.model,
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_creation_tokens,
            u.reasoning_tokens,
            u.cost_usd,
            completion.output_truncated,
            to_json(&completion.warnings),
        ])?;
    if changed == 0 {
        return match status_of(conn, &job_id)? {
            Some(_) => Ok(false),
            None => Err(StoreError::UnknownJob(job_id)),
        };
    }

    // The ids the row ended with (the parser may have recorded them earlier).
    let (provider_session_id, model): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT provider_session_id, model FROM jobs WHERE id = ?1")?
        .query_row([&job_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let outcome = Outcome {
        status: request_status,
        finished_at: &now,
        exit_code: completion.exit_code,
        error_category: completion.error_category.as_deref(),
        error_message: completion.error.as_deref(),
        response: completion.response.as_deref(),
        provider_session_id: provider_session_id.as_deref(),
        stop_reason: completion.stop_reason.as_deref(),
        model: model.as_deref(),
        usage: completion.usage,
        warnings: &completion.warnings,
    };
    requests::complete_for_job(conn, cx, &job_id, &outcome)?;

    if let Some(binding) = completion.session {
        sessions::record_use(
            conn,
            &SessionUse {
                session_id: binding.session_id,
                provider_session_id: binding.provider_session_id.or(provider_session_id),
                cwd: binding.cwd,
                usage: completion.usage,
                succeeded: completion.status == JobStatus::Completed,
            },
        )?;
    }
    Ok(true)
}

/// Records that a job's runner is gone: `orphaned`, with the reason, keeping its partial
/// output and provider session id. First terminal write wins, as for every end.
pub(crate) fn mark_orphaned(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    reason: String,
) -> Result<bool, StoreError> {
    let mut completion = JobCompletion::ended(JobStatus::Orphaned);
    completion.end_reason = Some("supervisor_exited".into());
    completion.error_category = Some("internal".into());
    completion.error = Some(reason);
    finish(conn, cx, job_id, completion)
}

// ---------------------------------------------------------------------------------------
// Reads

pub(crate) fn get_op(
    conn: &Connection,
    _cx: &Cx,
    id: String,
) -> Result<Option<JobRow>, StoreError> {
    get(conn, &id)
}

pub(crate) fn view(
    conn: &Connection,
    _cx: &Cx,
    id: String,
    progress_limit: u32,
) -> Result<Option<JobView>, StoreError> {
    let Some(job) = get(conn, &id)? else {
        return Ok(None);
    };
    let progress = output::recent_events(conn, &id, progress_limit)?;
    Ok(Some(JobView { job, progress }))
}

pub(crate) fn list(
    conn: &Connection,
    _cx: &Cx,
    filter: JobFilter,
) -> Result<Vec<JobView>, StoreError> {
    // Only the filters in use appear in the SQL, so SQLite can pick the matching index.
    let mut conditions = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(status) = filter.status {
        args.push(status.as_str().to_string());
        conditions.push(format!("status = ?{}", args.len()));
    }
    if let Some(cli) = filter.cli {
        args.push(cli.key().to_string());
        conditions.push(format!("cli = ?{}", args.len()));
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs {where_clause} \
         ORDER BY created_at DESC, id DESC LIMIT {}",
        filter.limit
    );
    let jobs = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), job_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    jobs.into_iter()
        .map(|job| {
            let progress = output::recent_events(conn, &job.id, filter.progress_limit)?;
            Ok(JobView { job, progress })
        })
        .collect()
}

pub(crate) fn active(conn: &Connection, _cx: &Cx) -> Result<Vec<ActiveJob>, StoreError> {
    let jobs = conn
        .prepare_cached(
            "SELECT id, cli, status, created_at, supervisor_pid, supervisor_start_time, \
                 heartbeat_at, pgid, pgid_start_time \
             FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id",
        )?
        .query_map([], |row| {
            Ok(ActiveJob {
                id: row.get("id")?,
                cli: parse_col(row, "cli")?,
                status: parse_col(row, "status")?,
                created_at: row.get("created_at")?,
                supervisor_pid: row.get("supervisor_pid")?,
                supervisor_start_time: row.get("supervisor_start_time")?,
                heartbeat_at: row.get("heartbeat_at")?,
                pgid: row.get("pgid")?,
                pgid_start_time: row.get("pgid_start_time")?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jobs)
}

/// Queued, running and orphaned counts for every CLI (zero included). Rows of a CLI this
/// binary does not know (written by a newer one) are not counted.
pub(crate) fn counts(conn: &Connection, _cx: &Cx) -> Result<Vec<JobCounts>, StoreError> {
    let mut counts: Vec<JobCounts> = Provider::ALL
        .iter()
        .map(|&cli| JobCounts {
            cli,
            queued: 0,
            running: 0,
            orphaned: 0,
        })
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT cli, status, count(*) FROM jobs \
         WHERE status IN ('queued', 'running', 'orphaned') GROUP BY cli, status",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (cli, status, n) = row?;
        let Some(entry) = counts.iter_mut().find(|c| c.cli.key() == cli) else {
            continue;
        };
        match status.as_str() {
            "queued" => entry.queued = n,
            "running" => entry.running = n,
            _ => entry.orphaned = n,
        }
    }
    Ok(counts)
}

/// A window of the parsed answer by character offset; `None` for an unknown job.
pub(crate) fn read_response(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    char_offset: u64,
    max_chars: u64,
) -> Result<Option<ResponseWindow>, StoreError> {
    let offset = sql_int(char_offset);
    let found: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT substr(response, ?2 + 1, ?3), response_chars FROM jobs WHERE id = ?1",
        )?
        .query_row(params![job_id, offset, sql_int(max_chars)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(found.map(|(text, total)| {
        let total_chars = total.unwrap_or(0);
        let taken = text
            .as_ref()
            .map_or(0, |t| i64::try_from(t.chars().count()).unwrap_or(i64::MAX));
        let end = offset.saturating_add(taken);
        ResponseWindow {
            text,
            offset,
            total_chars,
            next_offset: (end < total_chars).then_some(end),
        }
    }))
}

impl Store {
    store_ops! {
        /// Admits a request in one transaction: attaches it to an identical live (or, for
        /// stateless requests, recently completed) job per `dedup`, or — when fewer than
        /// `max_queued_jobs` jobs are queued in the whole file — inserts a new `queued` job
        /// (UUID v7 id). Either way the caller gets its own `requests` row (`started`, or
        /// already completed when it attached to a completed job).
        write fn admit_job / admit_job_blocking(
            job: NewJob,
            request: NewRequest,
            dedup: DedupPolicy,
            max_queued_jobs: u32,
        ) -> Admission = admit;

        /// Tries to take a run slot for a queued job (rules on [`ClaimLimits`] and
        /// [`Claim`]); marks it `running` with the runner's pid and start time when allowed.
        /// `Err(UnknownJob)` for an id not in the file.
        write fn claim_job / claim_job_blocking(
            job_id: String,
            limits: ClaimLimits,
            runner: SupervisorId,
        ) -> Claim = claim;

        /// Refreshes the job's heartbeat; answers its status and whether a cancel is pending.
        write fn heartbeat / heartbeat_blocking(job_id: String) -> JobLiveness = heartbeat;

        /// Moves `last_activity_at` forward to `at` (the time of the newest output byte).
        write fn record_activity / record_activity_blocking(
            job_id: String,
            at: DateTime<Utc>,
        ) -> bool = record_activity;

        /// Records the provider session id as soon as the parser sees it.
        write fn set_job_provider_session / set_job_provider_session_blocking(
            job_id: String,
            provider_session_id: String,
        ) -> bool = set_provider_session;

        /// Records the CLI's process group id and its leader's start time.
        write fn set_job_process_group / set_job_process_group_blocking(
            job_id: String,
            pgid: i32,
            leader_start_time: String,
        ) -> bool = set_process_group;

        /// Cancels a queued job at once, or flags a running one for its runner to kill.
        write fn request_cancel / request_cancel_blocking(job_id: String) -> CancelOutcome
            = request_cancel;

        /// True when a cancel was requested for the job.
        read fn is_cancel_requested / is_cancel_requested_blocking(job_id: String) -> bool
            = is_cancel_requested;

        /// The terminal write: job outcome + completion of every attached request row +
        /// session binding, in one transaction. First terminal write wins: `false` (and no
        /// change at all) when the job had already ended.
        write fn finish_job / finish_job_blocking(
            job_id: String,
            completion: JobCompletion,
        ) -> bool = finish;

        /// Ends a job whose runner is gone as `orphaned` with `reason` (e.g. `supervisor
        /// exited unexpectedly`), keeping its partial output and provider session id.
        write fn mark_orphaned / mark_orphaned_blocking(job_id: String, reason: String) -> bool
            = mark_orphaned;

        /// One job, without its answer text.
        read fn get_job / get_job_blocking(job_id: String) -> Option<JobRow> = get_op;

        /// One job with its newest `progress_limit` events (a `JobSnapshot`'s data).
        read fn job_view / job_view_blocking(job_id: String, progress_limit: u32)
            -> Option<JobView> = view;

        /// Jobs newest first, filtered by status and CLI, each with its newest events.
        read fn list_jobs / list_jobs_blocking(filter: JobFilter) -> Vec<JobView> = list;

        /// Every queued or running job with its runner's identity, for orphan detection.
        read fn active_jobs / active_jobs_blocking() -> Vec<ActiveJob> = active;

        /// Queued/running/orphaned counts per CLI across the whole file.
        read fn job_counts / job_counts_blocking() -> Vec<JobCounts> = counts;

        /// A window of the job's parsed answer: `max_chars` characters from `char_offset`.
        read fn read_response / read_response_blocking(
            job_id: String,
            char_offset: u64,
            max_chars: u64,
        ) -> Option<ResponseWindow> = read_response;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing::store;
    use crate::store::{NewRequest, RequestStatus, Stream};

    pub(crate) const STATELESS: DedupPolicy = DedupPolicy {
        window_ms: 3_600_000,
        session_bound: false,
        force_refresh: false,
    };
    pub(crate) const ROOMY: ClaimLimits = ClaimLimits {
        max_running: 32,
        max_running_per_provider: 16,
        queue_timeout_ms: 120_000,
    };

    pub(crate) fn new_job(key: &str, cli: Provider) -> NewJob {
        NewJob {
            correlation_id: format!("corr-{key}"),
            request_key: key.to_string(),
            cli,
            model: None,
            runner: Runner::Supervisor,
            program: cli.default_binary().to_string(),
            argv: vec!["-p".into(), "<prompt sha256:abc>".into()],
            env: BTreeMap::new(),
            cwd: Some("/work".into()),
            session_id: None,
            idle_timeout_ms: Some(600_000),
            timeout_ms: None,
        }
    }

    pub(crate) fn me() -> SupervisorId {
        SupervisorId {
            pid: 4242,
            start_time: "boot+123".into(),
        }
    }

    /// Admits `key` for claude with a stateless policy; returns (job, request id, deduped).
    pub(crate) fn admit_key(store: &Store, key: &str) -> (JobRow, String, bool) {
        admit_with(store, new_job(key, Provider::Claude), STATELESS)
    }

    pub(crate) fn admit_with(
        store: &Store,
        job: NewJob,
        dedup: DedupPolicy,
    ) -> (JobRow, String, bool) {
        let request = NewRequest::new(job.correlation_id.clone(), job.cli, "hello there");
        match store.admit_job_blocking(job, request, dedup, 128).unwrap() {
            Admission::Admitted {
                job,
                request_id,
                deduped,
            } => (*job, request_id, deduped),
            other => panic!("not admitted: {other:?}"),
        }
    }

    pub(crate) fn claim_now(store: &Store, id: &str, limits: ClaimLimits) -> Claim {
        store
            .claim_job_blocking(id.to_string(), limits, me())
            .unwrap()
    }

    fn completed(response: &str) -> JobCompletion {
        let mut c = JobCompletion::ended(JobStatus::Completed);
        c.exit_code = Some(0);
        c.end_reason = Some("exited".into());
        c.response = Some(response.to_string());
        c.provider_session_id = Some("prov-1".into());
        c.usage = Usage {
            input_tokens: Some(10),
            output_tokens: Some(5),
            cache_read_tokens: Some(3),
            cache_creation_tokens: None,
            reasoning_tokens: None,
            cost_usd: Some(0.25),
        };
        c.warnings = vec![Warning::new(
            "stray_processes_killed",
            "a grandchild was killed",
        )];
        c
    }

    fn request(store: &Store, id: &str) -> crate::store::RequestRow {
        store.get_request_blocking(id.to_string()).unwrap().unwrap()
    }

    fn job(store: &Store, id: &str) -> JobRow {
        store.get_job_blocking(id.to_string()).unwrap().unwrap()
    }

    #[test]
    fn admission_inserts_a_queued_job_and_a_started_request() {
        let (_dir, store) = store();
        let (job, request_id, deduped) = admit_key(&store, "k1");
        assert!(!deduped);
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.cli, Provider::Claude);
        assert_eq!(job.argv, vec!["-p", "<prompt sha256:abc>"]);
        assert_eq!(job.created_at, job.queued_at);
        assert!(uuid::Uuid::parse_str(&job.id).unwrap().get_version_num() == 7);
        let row = request(&store, &request_id);
        assert_eq!(row.status, RequestStatus::Started);
        assert_eq!(row.job_id.as_deref(), Some(job.id.as_str()));
        assert!(!row.deduped);
    }

    #[test]
    fn stateless_requests_attach_to_live_and_recently_completed_jobs() {
        let (_dir, store) = store();
        let (a, first, _) = admit_key(&store, "k");
        let (queued_twin, second, deduped) = admit_key(&store, "k");
        assert!(deduped);
        assert_eq!(queued_twin.id, a.id);

        assert!(matches!(claim_now(&store, &a.id, ROOMY), Claim::Started(_)));
        let (running_twin, third, deduped) = admit_key(&store, "k");
        assert!(deduped);
        assert_eq!(running_twin.id, a.id);
        assert_eq!(running_twin.status, JobStatus::Running);

        assert!(
            store
                .finish_job_blocking(a.id.clone(), completed("the answer"))
                .unwrap()
        );
        // Every attached row is completed by the one terminal write.
        for id in [&first, &second, &third] {
            let row = request(&store, id);
            assert_eq!(row.status, RequestStatus::Completed, "{id}");
            assert_eq!(row.response.as_deref(), Some("the answer"));
            assert_eq!(row.provider_session_id.as_deref(), Some("prov-1"));
            assert_eq!(row.exit_code, Some(0));
            assert!(row.completed_at.is_some() && row.duration_ms.is_some());
            assert_eq!(row.warnings.len(), 1);
        }
        // Usage is counted once: on the row that started the job.
        assert_eq!(request(&store, &first).usage.cost_usd, Some(0.25));
        assert_eq!(request(&store, &second).usage, Usage::default());

        // Completed within the window: attach, and the new row is complete at once.
        let (done_twin, fourth, deduped) = admit_key(&store, "k");
        assert!(deduped);
        assert_eq!(done_twin.status, JobStatus::Completed);
        let row = request(&store, &fourth);
        assert_eq!(row.status, RequestStatus::Completed);
        assert_eq!(row.response.as_deref(), Some("the answer"));

        // Outside the window: a new job.
        store
            .exec_raw("UPDATE jobs SET finished_at = '2000-01-01T00:00:00.000Z'")
            .unwrap();
        let (fresh, _, deduped) = admit_key(&store, "k");
        assert!(!deduped);
        assert_ne!(fresh.id, a.id);
    }

    #[test]
    fn session_bound_requests_attach_only_to_live_jobs() {
        let (_dir, store) = store();
        let bound = DedupPolicy {
            session_bound: true,
            ..STATELESS
        };
        let (a, _, _) = admit_with(&store, new_job("s", Provider::Codex), bound);
        let (twin, _, deduped) = admit_with(&store, new_job("s", Provider::Codex), bound);
        assert!(deduped && twin.id == a.id);
        store
            .finish_job_blocking(a.id.clone(), completed("turn 1"))
            .unwrap();
        let (next_turn, _, deduped) = admit_with(&store, new_job("s", Provider::Codex), bound);
        assert!(!deduped, "a completed turn is never reused by a session");
        assert_ne!(next_turn.id, a.id);
    }

    #[test]
    fn failed_canceled_orphaned_jobs_and_disabled_dedup_never_attach() {
        let (_dir, store) = store();
        let (failed, _, _) = admit_key(&store, "f");
        store
            .finish_job_blocking(failed.id.clone(), JobCompletion::ended(JobStatus::Failed))
            .unwrap();
        assert!(!admit_key(&store, "f").2);

        let (canceled, _, _) = admit_key(&store, "c");
        store.request_cancel_blocking(canceled.id.clone()).unwrap();
        assert!(!admit_key(&store, "c").2);

        let (orphaned, _, _) = admit_key(&store, "o");
        store
            .mark_orphaned_blocking(orphaned.id.clone(), "supervisor exited unexpectedly".into())
            .unwrap();
        assert!(!admit_key(&store, "o").2);

        // A running job whose cancel is pending is about to end canceled: no attach.
        let (ending, _, _) = admit_key(&store, "e");
        claim_now(&store, &ending.id, ROOMY);
        store.request_cancel_blocking(ending.id.clone()).unwrap();
        assert!(!admit_key(&store, "e").2);

        admit_key(&store, "w");
        let off = DedupPolicy {
            window_ms: 0,
            ..STATELESS
        };
        assert!(!admit_with(&store, new_job("w", Provider::Claude), off).2);
        let forced = DedupPolicy {
            force_refresh: true,
            ..STATELESS
        };
        assert!(!admit_with(&store, new_job("w", Provider::Claude), forced).2);
    }

    #[test]
    fn a_full_queue_saturates_but_attaching_still_works() {
        let (_dir, store) = store();
        let admit = |key: &str| {
            let job = new_job(key, Provider::Gemini);
            let request = NewRequest::new("c", Provider::Gemini, "p");
            store
                .admit_job_blocking(job, request, STATELESS, 2)
                .unwrap()
        };
        assert!(matches!(admit("a"), Admission::Admitted { .. }));
        assert!(matches!(admit("b"), Admission::Admitted { .. }));
        assert!(matches!(
            admit("c"),
            Admission::Saturated {
                queued: 2,
                max_queued: 2
            }
        ));
        assert_eq!(store.query_i64("SELECT count(*) FROM jobs"), 2);
        assert_eq!(store.query_i64("SELECT count(*) FROM requests"), 2);
        assert!(matches!(
            admit("a"),
            Admission::Admitted { deduped: true, .. }
        ));
    }

    #[test]
    fn the_first_terminal_write_wins() {
        let (_dir, store) = store();
        let (a, request_id, _) = admit_key(&store, "k");
        claim_now(&store, &a.id, ROOMY);
        assert!(
            store
                .finish_job_blocking(a.id.clone(), completed("first"))
                .unwrap()
        );
        let mut late = JobCompletion::ended(JobStatus::Failed);
        late.error = Some("too late".into());
        assert!(!store.finish_job_blocking(a.id.clone(), late).unwrap());
        assert!(
            !store
                .mark_orphaned_blocking(a.id.clone(), "gone".into())
                .unwrap()
        );
        let after = job(&store, &a.id);
        assert_eq!(after.status, JobStatus::Completed);
        assert_eq!(after.error, None);
        assert_eq!(
            request(&store, &request_id).status,
            RequestStatus::Completed
        );
        let window = store
            .read_response_blocking(a.id.clone(), 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!(window.text.as_deref(), Some("first"));

        let err = store
            .finish_job_blocking("nope".into(), completed("x"))
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownJob(_)));
        let err = store
            .finish_job_blocking(a.id.clone(), JobCompletion::ended(JobStatus::Running))
            .unwrap_err();
        assert!(err.to_string().contains("not terminal"), "{err}");
    }

    #[test]
    fn claims_respect_the_run_limit_and_creation_order() {
        let (_dir, store) = store();
        let one = ClaimLimits {
            max_running: 1,
            ..ROOMY
        };
        let (a, _, _) = admit_key(&store, "a");
        let (b, _, _) = admit_key(&store, "b");
        assert_eq!(
            match claim_now(&store, &b.id, one) {
                Claim::Wait(reason) => reason,
                other => panic!("{other:?}"),
            },
            WaitReason::OlderJobFirst {
                job_id: a.id.clone()
            }
        );
        let Claim::Started(started) = claim_now(&store, &a.id, one) else {
            panic!("a should start");
        };
        assert_eq!(started.status, JobStatus::Running);
        assert_eq!(started.supervisor_pid, Some(4242));
        assert_eq!(started.supervisor_start_time.as_deref(), Some("boot+123"));
        assert!(started.started_at.is_some() && started.heartbeat_at.is_some());
        assert!(matches!(
            claim_now(&store, &a.id, one),
            Claim::AlreadyRunning
        ));
        assert!(matches!(
            claim_now(&store, &b.id, one),
            Claim::Wait(WaitReason::RunLimit { running: 1, max: 1 })
        ));
        store
            .finish_job_blocking(a.id.clone(), completed("done"))
            .unwrap();
        assert!(matches!(claim_now(&store, &b.id, one), Claim::Started(_)));
        assert!(matches!(
            claim_now(&store, &a.id, one),
            Claim::AlreadyTerminal(JobStatus::Completed)
        ));
        let err = store
            .claim_job_blocking("missing".into(), one, me())
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownJob(_)));
    }

    #[test]
    fn a_provider_at_its_limit_does_not_hold_back_other_providers() {
        let (_dir, store) = store();
        let per_one = ClaimLimits {
            max_running_per_provider: 1,
            ..ROOMY
        };
        let (running, _, _) = admit_key(&store, "r");
        claim_now(&store, &running.id, per_one);
        let (older_claude, _, _) = admit_key(&store, "c");
        let (codex, _, _) = admit_with(&store, new_job("x", Provider::Codex), STATELESS);
        assert!(matches!(
            claim_now(&store, &older_claude.id, per_one),
            Claim::Wait(WaitReason::ProviderLimit { running: 1, max: 1 })
        ));
        assert!(matches!(
            claim_now(&store, &codex.id, per_one),
            Claim::Started(_)
        ));
    }

    #[test]
    fn a_silent_older_queued_job_does_not_block_the_queue() {
        let (_dir, store) = store();
        let (dead, _, _) = admit_key(&store, "dead");
        let (live, _, _) = admit_key(&store, "live");
        store
            .exec_raw(&format!(
                "UPDATE jobs SET created_at = '2000-01-01T00:00:00.000Z', \
                 queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
                dead.id
            ))
            .unwrap();
        assert!(matches!(
            claim_now(&store, &live.id, ROOMY),
            Claim::Started(_)
        ));
    }

    #[test]
    fn a_job_waiting_too_long_fails_with_queue_timeout() {
        let (_dir, store) = store();
        let (a, request_id, _) = admit_key(&store, "a");
        store
            .exec_raw("UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z'")
            .unwrap();
        assert!(matches!(
            claim_now(&store, &a.id, ROOMY),
            Claim::QueueTimedOut
        ));
        let failed = job(&store, &a.id);
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error_category.as_deref(), Some("queue_timeout"));
        assert!(failed.error.unwrap().contains("queue_timeout_ms = 120000"));
        let row = request(&store, &request_id);
        assert_eq!(row.status, RequestStatus::Failed);
        assert_eq!(row.error_category.as_deref(), Some("queue_timeout"));

        // 0 = no queue timeout.
        let (b, _, _) = admit_key(&store, "b");
        store
            .exec_raw(&format!(
                "UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
                b.id
            ))
            .unwrap();
        let patient = ClaimLimits {
            queue_timeout_ms: 0,
            ..ROOMY
        };
        assert!(matches!(
            claim_now(&store, &b.id, patient),
            Claim::Started(_)
        ));
    }

    #[test]
    fn turns_of_one_session_never_overlap_and_that_wait_is_free() {
        let (_dir, store) = store();
        let with_session = |key: &str| {
            let mut job = new_job(key, Provider::Claude);
            job.session_id = Some("gw-session".into());
            admit_with(&store, job, STATELESS).0
        };
        let first = with_session("t1");
        let second = with_session("t2");
        assert!(matches!(
            claim_now(&store, &second.id, ROOMY),
            Claim::Wait(WaitReason::SessionBusy { .. })
        ));
        assert!(matches!(
            claim_now(&store, &first.id, ROOMY),
            Claim::Started(_)
        ));
        store
            .exec_raw(&format!(
                "UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
                second.id
            ))
            .unwrap();
        let Claim::Wait(WaitReason::SessionBusy { session_id }) =
            claim_now(&store, &second.id, ROOMY)
        else {
            panic!("the second turn waits for the first");
        };
        assert_eq!(session_id, "gw-session");
        // The queue clock restarted while waiting for the session.
        assert!(job(&store, &second.id).queued_at.as_str() > "2001");
        store
            .finish_job_blocking(first.id.clone(), completed("one"))
            .unwrap();
        assert!(matches!(
            claim_now(&store, &second.id, ROOMY),
            Claim::Started(_)
        ));
    }

    #[test]
    fn cancel_of_queued_running_and_finished_jobs() {
        let (_dir, store) = store();
        let (queued, request_id, _) = admit_key(&store, "q");
        assert_eq!(
            store.request_cancel_blocking(queued.id.clone()).unwrap(),
            CancelOutcome::Canceled
        );
        let canceled = job(&store, &queued.id);
        assert_eq!(canceled.status, JobStatus::Canceled);
        assert!(canceled.cancel_requested_at.is_some() && canceled.finished_at.is_some());
        assert_eq!(request(&store, &request_id).status, RequestStatus::Canceled);
        assert!(matches!(
            claim_now(&store, &queued.id, ROOMY),
            Claim::Canceled
        ));

        let (running, _, _) = admit_key(&store, "r");
        claim_now(&store, &running.id, ROOMY);
        assert!(
            !store
                .is_cancel_requested_blocking(running.id.clone())
                .unwrap()
        );
        assert_eq!(
            store.request_cancel_blocking(running.id.clone()).unwrap(),
            CancelOutcome::Requested
        );
        assert_eq!(
            store.request_cancel_blocking(running.id.clone()).unwrap(),
            CancelOutcome::Requested
        );
        assert!(
            store
                .is_cancel_requested_blocking(running.id.clone())
                .unwrap()
        );
        let liveness = store.heartbeat_blocking(running.id.clone()).unwrap();
        assert_eq!(
            liveness,
            JobLiveness {
                status: JobStatus::Running,
                cancel_requested: true
            }
        );
        let mut end = JobCompletion::ended(JobStatus::Canceled);
        end.end_reason = Some("canceled".into());
        assert!(store.finish_job_blocking(running.id.clone(), end).unwrap());
        assert_eq!(
            store.request_cancel_blocking(running.id.clone()).unwrap(),
            CancelOutcome::AlreadyFinished(JobStatus::Canceled)
        );
        assert_eq!(
            store.request_cancel_blocking("nope".into()).unwrap(),
            CancelOutcome::NotFound
        );
    }

    #[test]
    fn orphans_keep_partial_output_and_provider_session() {
        let (_dir, store) = store();
        let (a, request_id, _) = admit_key(&store, "a");
        claim_now(&store, &a.id, ROOMY);
        store
            .append_output_blocking(a.id.clone(), Stream::Stdout, b"partial".to_vec())
            .unwrap();
        assert!(
            store
                .set_job_provider_session_blocking(a.id.clone(), "prov-9".into())
                .unwrap()
        );
        assert!(
            store
                .set_job_process_group_blocking(a.id.clone(), 777, "boot+9".into())
                .unwrap()
        );
        let active = store.active_jobs_blocking().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].pgid, Some(777));
        assert_eq!(active[0].supervisor_pid, Some(4242));

        assert!(
            store
                .mark_orphaned_blocking(a.id.clone(), "supervisor exited unexpectedly".into())
                .unwrap()
        );
        let orphan = job(&store, &a.id);
        assert_eq!(orphan.status, JobStatus::Orphaned);
        assert_eq!(
            orphan.error.as_deref(),
            Some("supervisor exited unexpectedly")
        );
        assert_eq!(orphan.provider_session_id.as_deref(), Some("prov-9"));
        assert_eq!(orphan.stdout_bytes, 7);
        let out = store
            .read_output_blocking(a.id.clone(), Stream::Stdout, 0, 100)
            .unwrap();
        assert_eq!(out.data, b"partial");
        let row = request(&store, &request_id);
        assert_eq!(row.status, RequestStatus::Orphaned);
        assert_eq!(row.provider_session_id.as_deref(), Some("prov-9"));
        assert!(store.active_jobs_blocking().unwrap().is_empty());
        // A terminal job takes no further provider session id.
        assert!(
            !store
                .set_job_provider_session_blocking(a.id.clone(), "later".into())
                .unwrap()
        );
    }

    #[test]
    fn finishing_binds_the_session_and_adds_its_totals() {
        let (_dir, store) = store();
        let session = store
            .create_session_blocking(Provider::Claude, Some("work".into()), None, true)
            .unwrap();
        let run = |key: &str, completion: JobCompletion| {
            let mut job = new_job(key, Provider::Claude);
            job.session_id = Some(session.id.clone());
            let (job, _, _) = admit_with(&store, job, STATELESS);
            claim_now(&store, &job.id, ROOMY);
            let mut completion = completion;
            completion.session = Some(SessionBinding {
                session_id: session.id.clone(),
                provider_session_id: None,
                cwd: Some("/repo".into()),
            });
            store.finish_job_blocking(job.id, completion).unwrap();
        };
        run("t1", completed("hi"));
        let bound = store
            .get_session_blocking(session.id.clone())
            .unwrap()
            .unwrap();
        assert_eq!(bound.provider_session_id.as_deref(), Some("prov-1"));
        assert_eq!(bound.cwd.as_deref(), Some("/repo"));
        assert_eq!(bound.request_count, 1);
        assert_eq!(bound.input_tokens, 10);
        assert!((bound.cost_usd - 0.25).abs() < 1e-9);

        let mut failed = JobCompletion::ended(JobStatus::Failed);
        failed.provider_session_id = Some("prov-broken".into());
        failed.usage.input_tokens = Some(4);
        run("t2", failed);
        let after = store.get_session_blocking(session.id).unwrap().unwrap();
        assert_eq!(after.provider_session_id.as_deref(), Some("prov-1"));
        assert_eq!(after.request_count, 2);
        assert_eq!(after.input_tokens, 14);
    }

    #[test]
    fn reads_list_count_and_window_jobs() {
        let (_dir, store) = store();
        let (a, _, _) = admit_key(&store, "a");
        let (b, _, _) = admit_with(&store, new_job("b", Provider::Codex), STATELESS);
        let (c, _, _) = admit_key(&store, "c");
        claim_now(&store, &a.id, ROOMY);
        store
            .add_event_blocking(a.id.clone(), "started".into(), "model sonnet".into())
            .unwrap();
        store
            .finish_job_blocking(a.id.clone(), completed("0123456789"))
            .unwrap();
        store
            .mark_orphaned_blocking(c.id.clone(), "gone".into())
            .unwrap();

        let all = store
            .list_jobs_blocking(JobFilter {
                status: None,
                cli: None,
                limit: 10,
                progress_limit: 20,
            })
            .unwrap();
        let ids: Vec<&str> = all.iter().map(|v| v.job.id.as_str()).collect();
        assert_eq!(ids, vec![c.id.as_str(), b.id.as_str(), a.id.as_str()]);
        assert_eq!(all[2].progress.len(), 1);
        assert!(all[2].job.duration_ms.is_some());
        assert_eq!(all[2].job.response_chars, Some(10));

        let codex = store
            .list_jobs_blocking(JobFilter {
                status: Some(JobStatus::Queued),
                cli: Some(Provider::Codex),
                limit: 10,
                progress_limit: 0,
            })
            .unwrap();
        assert_eq!(codex.len(), 1);
        assert_eq!(codex[0].job.id, b.id);

        let counts = store.job_counts_blocking().unwrap();
        assert_eq!(counts.len(), Provider::ALL.len());
        let claude = counts.iter().find(|c| c.cli == Provider::Claude).unwrap();
        assert_eq!((claude.queued, claude.running, claude.orphaned), (0, 0, 1));
        let codex = counts.iter().find(|c| c.cli == Provider::Codex).unwrap();
        assert_eq!(codex.queued, 1);

        let view = store.job_view_blocking(a.id.clone(), 5).unwrap().unwrap();
        assert_eq!(view.progress[0].kind, "started");
        assert!(store.job_view_blocking("x".into(), 5).unwrap().is_none());

        let w = store
            .read_response_blocking(a.id.clone(), 4, 3)
            .unwrap()
            .unwrap();
        assert_eq!(
            (w.text.as_deref(), w.offset, w.total_chars, w.next_offset),
            (Some("456"), 4, 10, Some(7))
        );
        let last = store
            .read_response_blocking(a.id.clone(), 7, 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            (last.text.as_deref(), last.next_offset),
            (Some("789"), None)
        );
        let none = store
            .read_response_blocking(b.id.clone(), 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!((none.text, none.total_chars), (None, 0));
    }

    #[test]
    fn argv_and_env_are_recorded_with_secret_shapes_redacted() {
        let (_dir, store) = store();
        let mut job = new_job("k", Provider::Grok);
        job.argv
            .push("--api-key=xai-0123456789abcdefABCDEFghij".into());
        job.env.insert(
            "XAI_API_KEY".into(),
            "xai-0123456789abcdefABCDEFghij".into(),
        );
        let (row, _, _) = admit_with(&store, job, STATELESS);
        assert_eq!(row.argv[2], "--api-key=[REDACTED:xai_key]");
        assert_eq!(row.env["XAI_API_KEY"], "[REDACTED:xai_key]");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_async_api_runs_a_job_end_to_end() {
        let (_dir, store) = store();
        let request = NewRequest::new("corr", Provider::Claude, "async prompt");
        let Admission::Admitted {
            job, request_id, ..
        } = store
            .admit_job(new_job("k", Provider::Claude), request, STATELESS, 128)
            .await
            .unwrap()
        else {
            panic!("admitted");
        };
        let Claim::Started(running) = store.claim_job(job.id.clone(), ROOMY, me()).await.unwrap()
        else {
            panic!("started");
        };
        assert_eq!(running.status, JobStatus::Running);
        store
            .record_activity(job.id.clone(), Utc::now())
            .await
            .unwrap();
        assert!(
            store
                .finish_job(job.id.clone(), completed("ok"))
                .await
                .unwrap()
        );
        let row = store.get_request(request_id).await.unwrap().unwrap();
        assert_eq!(row.status, RequestStatus::Completed);
        assert!(
            store
                .get_job(job.id)
                .await
                .unwrap()
                .unwrap()
                .last_activity_at
                .is_some()
        );
    }
}
