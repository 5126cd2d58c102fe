//! Waiting for a job's end without adding latency (jobs.md "Sync requests and deferral").
//!
//! Owns: the wait loop — woken at once by the notices of a job this server started, else
//! polling the row with a backoff from 2 ms to 50 ms — that forwards new progress events to
//! the caller as they are stored, and stops at the job's end, at a deadline, or when the
//! caller's interrupt fires. Not here: what a deferral or an interrupt means (the caller).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::store::{EventRow, JobRow, JobStatus, Store, StoreError};

const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);
/// Even with a wake-up channel, re-read the row this often (a lost notice must not hang).
const WOKEN_RECHECK: Duration = Duration::from_millis(250);
/// Events read per round.
const EVENT_BATCH: u32 = 200;

/// How to wait.
#[derive(Debug)]
pub struct WaitOptions {
    /// Give up waiting after this long; `None` = until the end.
    pub deadline: Option<Duration>,
    /// Notices of a job this server started.
    pub wake: Option<watch::Receiver<u64>>,
    /// Forward events with a seq above this.
    pub after_seq: i64,
}

/// Why the wait stopped, with the job as last read.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitEnd {
    Ended(JobRow),
    Deadline(JobRow),
    Interrupted(JobRow),
}

fn is_terminal(status: JobStatus) -> bool {
    !matches!(status, JobStatus::Queued | JobStatus::Running)
}

/// Waits for job `job_id` (which must exist) as `options` say, calling `on_event` for every
/// new progress event in order.
pub async fn wait_for_end(
    store: &Store,
    job_id: &str,
    mut options: WaitOptions,
    mut on_event: impl FnMut(&EventRow),
    interrupt: impl Future<Output = ()>,
) -> Result<WaitEnd, StoreError> {
    let started = Instant::now();
    let deadline = options.deadline.map(|d| started + d);
    let mut seen = options.after_seq;
    let mut backoff = POLL_MIN;
    tokio::pin!(interrupt);
    loop {
        // Mark the current notice as seen before reading, so one arriving meanwhile wakes us.
        if let Some(wake) = options.wake.as_mut() {
            wake.borrow_and_update();
        }
        let job = store
            .get_job(job_id.to_string())
            .await?
            .ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))?;
        if job.last_event_seq > seen {
            for event in store
                .events_after(job_id.to_string(), seen, EVENT_BATCH)
                .await?
            {
                seen = seen.max(event.seq);
                on_event(&event);
            }
        }
        if is_terminal(job.status) {
            return Ok(WaitEnd::Ended(job));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(WaitEnd::Deadline(job));
        }
        let nap = match &options.wake {
            Some(_) => WOKEN_RECHECK,
            None => backoff,
        };
        let until = deadline.map_or(now + nap, |d| d.min(now + nap));
        let woken = async {
            match options.wake.as_mut() {
                Some(wake) => {
                    if wake.changed().await.is_err() {
                        // The runner is gone: poll from now on.
                        options.wake = None;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = woken => { backoff = POLL_MIN; }
            _ = tokio::time::sleep_until(until) => { backoff = (backoff * 2).min(POLL_MAX); }
            _ = &mut interrupt => return Ok(WaitEnd::Interrupted(job)),
        }
    }
}
