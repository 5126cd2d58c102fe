//! Admission: attach to an identical job (dedup) or queue a new one, within the queue limit,
//! and record the caller's flight-recorder row — one `BEGIN IMMEDIATE` transaction, so the
//! check-and-insert is atomic across every process sharing the file (jobs.md "Dedup").
//!
//! Not here: computing the request key (the jobs layer canonicalises the request) and the
//! queue *wait* (claiming a slot, `claim.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Admission, DedupPolicy, JOB_COLUMNS, JobRow, NewJob, get_required, iso_minus_ms, job_from_row,
};
use crate::clock::{now_iso, to_iso};
use crate::store::requests::{self, NewRequest, Outcome};
use crate::store::types::{RequestStatus, sql_int, to_json};
use crate::store::{Cx, Store, StoreError, redact};

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
    // A big answer is a BLOB of UTF-8 bytes (`finish::write_response`): read as text.
    let response: Option<String> = conn
        .prepare_cached("SELECT CAST(response AS TEXT) FROM jobs WHERE id = ?1")?
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
    }
}
