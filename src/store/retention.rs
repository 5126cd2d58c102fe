//! Retention: deleting what has outlived its policy, in small batches.
//!
//! Each batch is its own short write transaction (at most [`SWEEP_BATCH`] rows; output
//! chunks, which can be large, in smaller ones), so other writers — in this process and in
//! others — interleave with a long sweep instead of waiting behind it.
//!
//! What goes, and by which clock (0 days = keep forever, for each kind):
//! - finished jobs with their output chunks and events, by `finished_at`; queued and running
//!   jobs are never swept;
//! - flight-recorder rows by `datetime_utc`, approvals by `at`;
//! - sessions by `last_used_at` — except the active session of each CLI, which stays until
//!   it is replaced or deleted: silently dropping it would turn a caller's next request into
//!   a fresh conversation.
//!
//! Not here: scheduling (the server runs a sweep at startup and hourly; `logs prune` on
//! demand) and removing a swept session's neutral dir (the caller gets the ids).

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::{Store, StoreError};
use crate::clock::to_iso;

/// Most rows one sweep transaction deletes.
pub const SWEEP_BATCH: usize = 500;

/// Output chunks can be up to 256 KiB each; fewer per transaction keeps each one short.
const OUTPUT_BATCH: usize = 64;

/// How long each kind of row is kept, in days; 0 keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `[persistence] retentionDays`: finished jobs and their output.
    pub job_days: u32,
    /// `[persistence] requestRetentionDays`: the flight recorder and approvals.
    pub request_days: u32,
    /// `[persistence] sessionTtlDays`: sessions unused this long.
    pub session_ttl_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            job_days: 30,
            request_days: 90,
            session_ttl_days: 30,
        }
    }
}

/// What one sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub jobs: usize,
    pub output_chunks: usize,
    pub events: usize,
    pub requests: usize,
    pub approvals: usize,
    pub sessions: usize,
    /// The deleted sessions, so the caller can remove their neutral dirs.
    pub deleted_session_ids: Vec<String>,
}

/// One kind of deletion; run repeatedly until a batch comes back short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    JobOutput,
    JobEvents,
    Jobs,
    Requests,
    Approvals,
    Sessions,
}

impl Step {
    fn batch(self) -> usize {
        match self {
            Step::JobOutput => OUTPUT_BATCH,
            _ => SWEEP_BATCH,
        }
    }
}

/// The steps a policy calls for, each with its cutoff (rows strictly older go). Output and
/// events go before their jobs so no single transaction cascades through a whole job.
pub(crate) fn plan(policy: RetentionPolicy, now: DateTime<Utc>) -> Vec<(Step, String)> {
    let cutoff = |days: u32| to_iso(now - Duration::days(i64::from(days)));
    let mut steps = Vec::new();
    if policy.job_days > 0 {
        let c = cutoff(policy.job_days);
        steps.push((Step::JobOutput, c.clone()));
        steps.push((Step::JobEvents, c.clone()));
        steps.push((Step::Jobs, c));
    }
    if policy.request_days > 0 {
        let c = cutoff(policy.request_days);
        steps.push((Step::Requests, c.clone()));
        steps.push((Step::Approvals, c));
    }
    if policy.session_ttl_days > 0 {
        steps.push((Step::Sessions, cutoff(policy.session_ttl_days)));
    }
    steps
}

/// Deletes one batch; returns the deleted session ids for `Sessions` and how many rows went.
pub(crate) fn run_step(
    conn: &Connection,
    step: Step,
    cutoff: &str,
) -> Result<(usize, Vec<String>), StoreError> {
    let limit = i64::try_from(step.batch()).unwrap_or(i64::MAX);
    let deleted = match step {
        Step::JobOutput => conn
            .prepare_cached(
                "DELETE FROM job_output WHERE rowid IN ( \
                     SELECT o.rowid FROM jobs j JOIN job_output o ON o.job_id = j.id \
                     WHERE j.finished_at IS NOT NULL AND j.finished_at < ?1 LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff, limit])?,
        Step::JobEvents => conn
            .prepare_cached(
                "DELETE FROM job_events WHERE (job_id, seq) IN ( \
                     SELECT e.job_id, e.seq FROM jobs j JOIN job_events e ON e.job_id = j.id \
                     WHERE j.finished_at IS NOT NULL AND j.finished_at < ?1 LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff, limit])?,
        Step::Jobs => conn
            .prepare_cached(
                "DELETE FROM jobs WHERE id IN ( \
                     SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1 \
                     LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff, limit])?,
        Step::Requests => conn
            .prepare_cached(
                "DELETE FROM requests WHERE seq IN ( \
                     SELECT seq FROM requests WHERE datetime_utc < ?1 LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff, limit])?,
        Step::Approvals => conn
            .prepare_cached(
                "DELETE FROM approvals WHERE id IN ( \
                     SELECT id FROM approvals WHERE at < ?1 LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff, limit])?,
        Step::Sessions => {
            let ids = conn
                .prepare_cached(
                    "DELETE FROM sessions WHERE id IN ( \
                         SELECT id FROM sessions WHERE last_used_at < ?1 AND is_active = 0 \
                         LIMIT ?2) \
                     RETURNING id",
                )?
                .query_map(rusqlite::params![cutoff, limit], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            return Ok((ids.len(), ids));
        }
    };
    Ok((deleted, Vec::new()))
}

impl SweepReport {
    /// Adds one batch; returns whether the step has more to do (a full batch came back).
    fn add(&mut self, step: Step, deleted: usize, session_ids: Vec<String>) -> bool {
        match step {
            Step::JobOutput => self.output_chunks += deleted,
            Step::JobEvents => self.events += deleted,
            Step::Jobs => self.jobs += deleted,
            Step::Requests => self.requests += deleted,
            Step::Approvals => self.approvals += deleted,
            Step::Sessions => {
                self.sessions += deleted;
                self.deleted_session_ids.extend(session_ids);
            }
        }
        deleted >= step.batch()
    }
}

impl Store {
    /// Deletes what `policy` no longer keeps, as of `now`, in batches of short write
    /// transactions (see the module documentation for the rules).
    pub async fn sweep(
        &self,
        policy: RetentionPolicy,
        now: DateTime<Utc>,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for (step, cutoff) in plan(policy, now) {
            loop {
                let c = cutoff.clone();
                let (deleted, ids) = self.write(move |conn| run_step(conn, step, &c)).await?;
                if !report.add(step, deleted, ids) {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Blocking twin of [`Store::sweep`], for `llm-cli-gateway logs prune`.
    pub fn sweep_blocking(
        &self,
        policy: RetentionPolicy,
        now: DateTime<Utc>,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for (step, cutoff) in plan(policy, now) {
            loop {
                let c = cutoff.clone();
                let (deleted, ids) = self.write_blocking(move |conn| run_step(conn, step, &c))?;
                if !report.add(step, deleted, ids) {
                    break;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Provider;
    use crate::store::jobs::tests::{ROOMY, admit_key, claim_now};
    use crate::store::testing::store;
    use crate::store::{JobCompletion, JobStatus, NewRequest, Stream};

    const OLD: &str = "2000-01-01T00:00:00.000Z";

    #[test]
    fn the_sweep_deletes_only_what_is_old_enough() {
        let (_dir, store) = store();
        // An old finished job with output and events, a recent finished one, an old running one.
        let (old, old_request, _) = admit_key(&store, "old");
        store
            .append_output_blocking(old.id.clone(), Stream::Stdout, b"x".repeat(10))
            .unwrap();
        store
            .add_event_blocking(old.id.clone(), "started".into(), "go".into())
            .unwrap();
        store
            .finish_job_blocking(old.id.clone(), JobCompletion::ended(JobStatus::Completed))
            .unwrap();
        let (recent, _, _) = admit_key(&store, "recent");
        store
            .finish_job_blocking(recent.id.clone(), JobCompletion::ended(JobStatus::Failed))
            .unwrap();
        let (running, _, _) = admit_key(&store, "running");
        claim_now(&store, &running.id, ROOMY);
        store
            .exec_raw(&format!(
                "UPDATE jobs SET finished_at = '{OLD}' WHERE id = '{}'; \
                 UPDATE jobs SET created_at = '{OLD}', started_at = '{OLD}' WHERE id = '{}'; \
                 UPDATE requests SET datetime_utc = '{OLD}' WHERE id = '{old_request}';",
                old.id, running.id
            ))
            .unwrap();

        let idle = store
            .create_session_blocking(Provider::Claude, None, None, false)
            .unwrap();
        let active = store
            .create_session_blocking(Provider::Claude, None, None, true)
            .unwrap();
        let fresh = store
            .create_session_blocking(Provider::Codex, None, None, false)
            .unwrap();
        store
            .exec_raw(&format!(
                "UPDATE sessions SET last_used_at = '{OLD}' WHERE id IN ('{}', '{}')",
                idle.id, active.id
            ))
            .unwrap();
        store
            .exec_raw(&format!(
                "INSERT INTO approvals(id, at, cli, status, policy, score, threshold, \
                 prompt_sha256, operation) VALUES \
                 ('old', '{OLD}', 'claude', 'denied', 'strict', 3, 2, 'h', 'claude_request'), \
                 ('new', '2999-01-01T00:00:00.000Z', 'claude', 'approved', 'strict', 0, 2, 'h', \
                  'claude_request')"
            ))
            .unwrap();

        let report = store
            .sweep_blocking(RetentionPolicy::default(), Utc::now())
            .unwrap();
        assert_eq!(
            report,
            SweepReport {
                jobs: 1,
                output_chunks: 1,
                events: 1,
                requests: 1,
                approvals: 1,
                sessions: 1,
                deleted_session_ids: vec![idle.id.clone()],
            }
        );
        assert!(store.get_job_blocking(old.id).unwrap().is_none());
        assert!(store.get_job_blocking(recent.id).unwrap().is_some());
        assert!(store.get_job_blocking(running.id).unwrap().is_some());
        assert!(store.get_session_blocking(active.id).unwrap().is_some());
        assert!(store.get_session_blocking(fresh.id).unwrap().is_some());
        assert_eq!(store.query_i64("SELECT count(*) FROM job_output"), 0);
        assert_eq!(store.query_i64("SELECT count(*) FROM requests"), 2);

        // A second sweep finds nothing; 0 days keeps everything.
        let again = store
            .sweep_blocking(RetentionPolicy::default(), Utc::now())
            .unwrap();
        assert_eq!(again, SweepReport::default());
        let forever = RetentionPolicy {
            job_days: 0,
            request_days: 0,
            session_ttl_days: 0,
        };
        let far_future = Utc::now() + Duration::days(100_000);
        assert_eq!(
            store.sweep_blocking(forever, far_future).unwrap(),
            SweepReport::default()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_works_in_batches() {
        let (_dir, store) = store();
        let rows = SWEEP_BATCH * 2 + 7;
        let request = NewRequest::new("c", Provider::Claude, "old prompt");
        for _ in 0..rows {
            store.record_request_started(request.clone()).await.unwrap();
        }
        store
            .exec_raw(&format!("UPDATE requests SET datetime_utc = '{OLD}'"))
            .unwrap();
        let report = store
            .sweep(RetentionPolicy::default(), Utc::now())
            .await
            .unwrap();
        assert_eq!(report.requests, rows);
        assert_eq!(store.query_i64("SELECT count(*) FROM requests"), 0);
        assert_eq!(store.query_i64("SELECT count(*) FROM requests_fts"), 0);
    }
}
