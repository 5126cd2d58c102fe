//! `JobSnapshot` of mcp-surface.md: a job as every tool that returns one shows it (the
//! request tools' async start and the five job tools).
//!
//! Owns the shape and its conversion from the store's [`JobView`]. Not here: reading the
//! job (the handlers call the store with [`SNAPSHOT_EVENTS`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::providers::Provider;
use crate::store::{EventRow, JobStatus, JobView};

/// Newest progress events a snapshot carries.
pub const SNAPSHOT_EVENTS: u32 = 20;

/// A job's state, as callers see and filter it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Canceled,
    /// Its supervisor died without finishing it; partial output is kept.
    Orphaned,
}

impl From<JobStatus> for JobState {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => JobState::Queued,
            JobStatus::Running => JobState::Running,
            JobStatus::Completed => JobState::Completed,
            JobStatus::Failed => JobState::Failed,
            JobStatus::Canceled => JobState::Canceled,
            JobStatus::Orphaned => JobState::Orphaned,
        }
    }
}

impl From<JobState> for JobStatus {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => JobStatus::Queued,
            JobState::Running => JobStatus::Running,
            JobState::Completed => JobStatus::Completed,
            JobState::Failed => JobStatus::Failed,
            JobState::Canceled => JobStatus::Canceled,
            JobState::Orphaned => JobStatus::Orphaned,
        }
    }
}

/// One progress event of a job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProgressEvent {
    /// Strictly increasing per job.
    pub seq: i64,
    pub at: String,
    /// `started`, `thinking`, `tool`, `file`, `writing`, `usage` or `finished`.
    pub kind: String,
    pub message: String,
}

impl From<EventRow> for ProgressEvent {
    fn from(event: EventRow) -> Self {
        ProgressEvent {
            seq: event.seq,
            at: event.at,
            kind: event.kind,
            message: event.message,
        }
    }
}

/// A job as every job-returning tool shows it (mcp-surface.md `JobSnapshot`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSnapshot {
    pub id: String,
    pub cli: Provider,
    pub status: JobState,
    pub correlation_id: String,
    /// The CLI's own session id, as soon as the run reported it (pass it back as
    /// `sessionId` to continue the conversation).
    pub session_id: Option<String>,
    /// The gateway session (`gw-…`) the job ran on, if any.
    pub gateway_session_id: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Run time; null until the job has finished.
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error_category: Option<String>,
    pub error: Option<String>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    /// The output cap was hit: stored output stops there.
    pub output_truncated: bool,
    /// When the CLI last wrote anything.
    pub last_activity_at: Option<String>,
    pub stop_reason: Option<String>,
    /// The newest progress events (at most 20), oldest first.
    pub progress: Vec<ProgressEvent>,
}

impl From<JobView> for JobSnapshot {
    fn from(view: JobView) -> Self {
        let job = view.job;
        JobSnapshot {
            id: job.id,
            cli: job.cli,
            status: job.status.into(),
            correlation_id: job.correlation_id,
            session_id: job.provider_session_id,
            gateway_session_id: job.session_id,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            duration_ms: job.duration_ms,
            exit_code: job.exit_code,
            error_category: job.error_category,
            error: job.error,
            stdout_bytes: job.stdout_bytes,
            stderr_bytes: job.stderr_bytes,
            output_truncated: job.output_truncated,
            last_activity_at: job.last_activity_at,
            stop_reason: job.stop_reason,
            progress: view.progress.into_iter().map(ProgressEvent::from).collect(),
        }
    }
}
