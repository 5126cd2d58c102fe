//! `JobSnapshot` of mcp-surface.md: a job as every tool that returns one shows it.
//!
//! Owns the shape and its conversion from the store's [`JobView`]. Not here: reading the
//! job (the handlers call the store).

use schemars::JsonSchema;
use serde::Serialize;

use crate::store::JobView;

/// Newest progress events a snapshot carries.
pub const SNAPSHOT_EVENTS: u32 = 20;

/// One progress event of a snapshot.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotEvent {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub message: String,
}

/// A job as tools report it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSnapshot {
    pub id: String,
    pub cli: String,
    /// `queued`, `running`, `completed`, `failed`, `canceled` or `orphaned`.
    pub status: String,
    pub correlation_id: String,
    /// The CLI's own session id, as soon as reported.
    pub session_id: Option<String>,
    pub gateway_session_id: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error_category: Option<String>,
    pub error: Option<String>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub output_truncated: bool,
    pub last_activity_at: Option<String>,
    pub stop_reason: Option<String>,
    /// The newest events (at most 20), oldest first.
    pub progress: Vec<SnapshotEvent>,
}

impl JobSnapshot {
    pub fn from_view(view: &JobView) -> JobSnapshot {
        let job = &view.job;
        let skip = view.progress.len().saturating_sub(SNAPSHOT_EVENTS as usize);
        JobSnapshot {
            id: job.id.clone(),
            cli: job.cli.key().to_string(),
            status: job.status.to_string(),
            correlation_id: job.correlation_id.clone(),
            session_id: job.provider_session_id.clone(),
            gateway_session_id: job.session_id.clone(),
            created_at: job.created_at.clone(),
            started_at: job.started_at.clone(),
            finished_at: job.finished_at.clone(),
            duration_ms: job.duration_ms,
            exit_code: job.exit_code,
            error_category: job.error_category.clone(),
            error: job.error.clone(),
            stdout_bytes: job.stdout_bytes,
            stderr_bytes: job.stderr_bytes,
            output_truncated: job.output_truncated,
            last_activity_at: job.last_activity_at.clone(),
            stop_reason: job.stop_reason.clone(),
            progress: view.progress[skip..]
                .iter()
                .map(|e| SnapshotEvent {
                    seq: e.seq,
                    at: e.at.clone(),
                    kind: e.kind.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        }
    }
}
