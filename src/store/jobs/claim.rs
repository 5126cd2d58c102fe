//! Claiming a run slot: the one transaction that counts running jobs across the whole file,
//! applies FIFO and the per-session turn rule, enforces the queue timeout, and marks the job
//! `running` (jobs.md "Limits and queue").
//!
//! Not here: the retry loop and its backoff (the runner's), and the terminal write of a
//! timed-out job (`finish.rs`, called from here).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::finish::finish;
use super::{
    Claim, ClaimLimits, JobCompletion, JobRow, JobStatus, QUEUED_LIVENESS_MS, SupervisorId,
    WaitReason, get_required, iso_minus_ms,
};
use crate::clock::to_iso;
use crate::store::types::sql_int;
use crate::store::{Cx, Store, StoreError};

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
/// 6. FIFO: every older live queued job that could start right now (its CLI below its
///    limit, its session free) holds a slot; this job starts only when the limits leave room
///    beyond those reservations. So under contention jobs start in creation order, and when
///    there is room for all nobody waits on a slower claimer. Jobs blocked on their own
///    CLI's limit or session do not hold back other CLIs' jobs; dead queued jobs (silent for
///    [`QUEUED_LIVENESS_MS`]) do not hold back anything.
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

    // Older live queued jobs that could start now hold a reservation each: this job may
    // start only when there is room beyond them, so under contention jobs start in creation
    // order, and when there is room for everyone nobody waits for a slower claimer.
    let ahead: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT k.id, k.cli FROM jobs k \
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
             ORDER BY k.created_at, k.id",
        )?
        .query_map(
            params![
                job.id,
                job.created_at,
                live_since,
                i64::from(limits.max_running_per_provider)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let ahead_total = ahead.len() as i64;
    let ahead_cli = ahead.iter().filter(|(_, cli)| cli == job.cli.key()).count() as i64;
    if running + ahead_total >= i64::from(limits.max_running)
        || running_cli + ahead_cli >= i64::from(limits.max_running_per_provider)
    {
        let job_id = ahead
            .into_iter()
            .next()
            .map(|(id, _)| id)
            .unwrap_or_default();
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

impl Store {
    store_ops! {
        /// Tries to take a run slot for a queued job (rules on [`ClaimLimits`] and
        /// [`Claim`]); marks it `running` with the runner's pid and start time when allowed.
        /// `Err(UnknownJob)` for an id not in the file.
        write fn claim_job / claim_job_blocking(
            job_id: String,
            limits: ClaimLimits,
            runner: SupervisorId,
        ) -> Claim = claim;
    }
}
