//! What a runner writes while its job runs — heartbeat, activity time, the provider session
//! id, the CLI's process group — and the cancel flag it watches.
//!
//! Not here: output and events (`output.rs`), cancel requests (`finish.rs`).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::JobLiveness;
use crate::clock::{now_iso, to_iso};
use crate::store::{Cx, ParseValueError, Store, StoreError};

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
    let status = status
        .parse()
        .map_err(|e: ParseValueError| StoreError::InvalidArgument {
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

impl Store {
    store_ops! {
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

        /// True when a cancel was requested for the job.
        read fn is_cancel_requested / is_cancel_requested_blocking(job_id: String) -> bool
            = is_cancel_requested;
    }
}
