//! How a job ends: cancel requests, the terminal write (first one wins) with the completion
//! of every attached request row and the session binding in the same transaction, and
//! orphan marking.
//!
//! Not here: deciding that a runner is gone (the caller inspects processes), and killing
//! anything.

use chrono::{Duration, Utc};
use rusqlite::{Connection, params};

use super::{CallerCancel, CancelOutcome, JobCompletion, JobStatus, status_of};
use crate::clock::{now_iso, to_iso};
use crate::store::requests::{self, Outcome};
use crate::store::sessions::{self, SessionUse};
use crate::store::types::{RequestStatus, to_json};
use crate::store::{Cx, Store, StoreError};

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

/// The open (`started`/`deferred`) request rows attached to `job_id`: its callers, in
/// every server process on this file, that still wait for (or will collect) its answer.
pub(crate) fn open_requests(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM requests \
             WHERE job_id = ?1 AND status IN ('started', 'deferred')",
        )?
        .query_row([job_id], |r| r.get(0))?)
}

/// One caller's explicit cancel, decided in one transaction so two callers cancelling at
/// once cannot both leave the job running: when no other open request row shares the job,
/// the job's cancel is requested ([`request_cancel`]); otherwise only `request_id`'s row
/// is completed `canceled` and the job runs on for the others.
pub(crate) fn cancel_for_request(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    request_id: String,
) -> Result<CallerCancel, StoreError> {
    let others: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM requests \
             WHERE job_id = ?1 AND id != ?2 AND status IN ('started', 'deferred')",
        )?
        .query_row(params![job_id, request_id], |r| r.get(0))?;
    if others == 0 {
        return Ok(CallerCancel::Job(request_cancel(conn, cx, job_id)?));
    }
    let now = now_iso();
    let outcome = Outcome {
        status: crate::store::types::RequestStatus::Canceled,
        finished_at: &now,
        exit_code: None,
        error_category: Some("canceled"),
        error_message: Some("canceled by the caller; the job runs on for its other callers"),
        response: None,
        provider_session_id: None,
        stop_reason: None,
        model: None,
        usage: crate::store::Usage::default(),
        warnings: &[],
    };
    requests::complete_one(conn, cx, &request_id, &outcome)?;
    Ok(CallerCancel::Detached { others })
}

/// The terminal write (first one wins; a later one returns `false` and changes nothing):
/// the job's outcome, the completion of every attached request row still `started` or
/// `deferred`, and the session binding — all in the caller's one transaction.
pub(crate) fn finish(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    mut completion: JobCompletion,
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
    // The answer itself is written last, by `write_response`.
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET status = ?2, finished_at = ?3, expires_at = ?4, exit_code = ?5, \
                 end_reason = ?6, error_category = ?7, error = ?8, \
                 response_chars = ?9, provider_session_id = coalesce(?10, provider_session_id), \
                 stop_reason = ?11, model = coalesce(model, ?12), input_tokens = ?13, \
                 output_tokens = ?14, cache_read_tokens = ?15, cache_creation_tokens = ?16, \
                 reasoning_tokens = ?17, cost_usd = ?18, output_truncated = ?19, warnings = ?20 \
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
    if let Some(response) = completion.response.take() {
        write_response(conn, &job_id, response)?;
    }
    Ok(true)
}

/// Answers at least this long are stored as a BLOB of their UTF-8 bytes, written through
/// incremental blob I/O. 1 MiB: below it SQLite's two copies of a TEXT value (the bound
/// copy and the row record) cost little; above it they dominate a supervisor's memory
/// (quality.md: a 20 MB answer within 64 MiB). It is also `requests.response`'s cut, so every
/// answer the recorder holds whole is TEXT.
pub(crate) const BLOB_RESPONSE_MIN_BYTES: usize = 1024 * 1024;

/// Bytes per incremental write of a big answer.
const BLOB_WRITE_CHUNK: usize = 1024 * 1024;

/// Stores the answer of a job that just ended, as the last statement of its terminal
/// write (the row is already terminal; same transaction).
///
/// A small answer is bound as TEXT. Taking it by value and dropping it between the bind
/// and the step keeps it at most twice in memory (rusqlite binds text `SQLITE_TRANSIENT`:
/// SQLite copies it; the statement then builds the row's record).
///
/// An answer of [`BLOB_RESPONSE_MIN_BYTES`] or more becomes `zeroblob(len)`, which SQLite
/// does not materialize because `response` is the row's last column (schema v3), and is
/// then copied into the row's pages in chunks: SQLite never holds a copy of it. The value
/// is then a BLOB of the answer's UTF-8 bytes; readers take both types (`read_response`
/// reads either through blob I/O, SQL reads `CAST(response AS TEXT)`).
fn write_response(conn: &Connection, job_id: &str, response: String) -> Result<(), StoreError> {
    if response.len() >= BLOB_RESPONSE_MIN_BYTES {
        let len = i64::try_from(response.len()).unwrap_or(i64::MAX);
        let rowid: i64 = conn
            .prepare_cached(
                "UPDATE jobs SET response = zeroblob(?2) WHERE id = ?1 RETURNING rowid",
            )?
            .query_row(params![job_id, len], |r| r.get(0))?;
        let mut blob = conn.blob_open("main", "jobs", "response", rowid, false)?;
        for (i, chunk) in response.as_bytes().chunks(BLOB_WRITE_CHUNK).enumerate() {
            blob.write_at(chunk, i * BLOB_WRITE_CHUNK)?;
        }
        return Ok(());
    }
    let mut statement = conn.prepare_cached("UPDATE jobs SET response = ?2 WHERE id = ?1")?;
    statement.raw_bind_parameter(1, job_id)?;
    statement.raw_bind_parameter(2, response.as_str())?;
    drop(response);
    statement.raw_execute()?;
    // The bound copy would otherwise live on in the statement cache until its next use.
    statement.clear_bindings();
    Ok(())
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

impl Store {
    store_ops! {
        /// Cancels a queued job at once, or flags a running one for its runner to kill.
        write fn request_cancel / request_cancel_blocking(job_id: String) -> CancelOutcome
            = request_cancel;

        /// How many open (`started`/`deferred`) request rows the job has.
        read fn open_requests_for_job / open_requests_for_job_blocking(job_id: String) -> i64
            = open_requests;

        /// One caller's explicit cancel: cancels the job when that caller's row is its only
        /// open one, else completes just that row `canceled` (see [`CallerCancel`]).
        write fn cancel_for_request / cancel_for_request_blocking(
            job_id: String,
            request_id: String,
        ) -> CallerCancel = cancel_for_request;

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
    }
}
