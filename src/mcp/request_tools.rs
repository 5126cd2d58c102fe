//! The ten request tools, `<p>_request` and `<p>_request_async`, served by one generic
//! handler with the provider as a parameter.
//!
//! Thin: parse the typed request, hand it to [`JobService`], and shape what comes back —
//! the sync result, the deferred object, the async start, or the structured error of
//! mcp-surface.md. While a sync call waits, new progress events go out as
//! `notifications/progress` when the call carried a progress token (sent in order from
//! one spawned task per wait, so a slow client never blocks the wait). Only an explicit `notifications/cancelled`
//! for this request ends the wait early (see [`ExplicitCancels`]); it cancels the job only
//! when no other caller — of any server on the database — still has an open request on it
//! (otherwise only this caller's row ends `canceled`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, RequestId};
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use super::result::{ToolError, structured_success};
use super::snapshot::{JobSnapshot, SNAPSHOT_EVENTS};
use crate::jobs::{Admitted, JobError, JobService, WaitEnd, WaitOptions, answer, wait};
use crate::providers::request::OutputFormat;
use crate::providers::{AnyRequest, Provider};
use crate::store::{JobRow, JobStatus, Stream};

/// The requests whose client sent `notifications/cancelled`, as rmcp's `on_cancelled`
/// reports them. rmcp also trips each request's cancellation token when the connection
/// closes; that must not cancel a job, so handlers wait on this instead.
#[derive(Default, Clone)]
pub struct ExplicitCancels {
    waiting: Arc<Mutex<HashMap<RequestId, Arc<Notify>>>>,
}

impl ExplicitCancels {
    fn register(&self, id: RequestId) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.map().insert(id, Arc::clone(&notify));
        notify
    }

    fn unregister(&self, id: &RequestId) {
        self.map().remove(id);
    }

    /// Called from `on_cancelled`: wakes the handler waiting on `id`, if any.
    pub fn cancelled(&self, id: &RequestId) {
        if let Some(notify) = self.map().get(id) {
            // notify_one keeps a permit, so a cancel that arrives before the wait is seen.
            notify.notify_one();
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The structured result of `<p>_request_async`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsyncStartOutput {
    pub job_id: String,
    /// The request attached to an identical earlier job.
    pub deduped: bool,
    pub job: JobSnapshot,
    pub gateway_session_id: Option<String>,
    /// The gateway worktree the job runs in (`worktree`): `{path, branch, name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<serde_json::Value>,
}

fn tool_error(error: JobError, cli: Provider, correlation_id: &str) -> ToolError {
    let mut out = ToolError::new(error.category, error.message, error.remediation);
    out.details.insert("cli".into(), json!(cli.key()));
    out.details
        .insert("correlationId".into(), json!(correlation_id));
    if let Some(code) = error.exit_code {
        out.details.insert("exitCode".into(), json!(code));
    }
    if let Some(job) = error.job_id {
        out.details.insert("jobId".into(), json!(job));
    }
    if let Some(session) = error.session_id {
        out.details.insert("sessionId".into(), json!(session));
    }
    if let Some(approval) = error.approval {
        out.details.insert("approval".into(), *approval);
    }
    out
}

fn internal(error: impl std::fmt::Display) -> JobError {
    JobError::internal(format!("the job store failed: {error}"))
}

/// Serves `<provider>_request` (`asynchronous = false`) and `<provider>_request_async`.
pub async fn handle(
    jobs: &Arc<JobService>,
    cancels: &ExplicitCancels,
    provider: Provider,
    asynchronous: bool,
    request: AnyRequest,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ToolError> {
    let correlation_id = request
        .common()
        .correlation_id
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let run = async {
        let admitted = jobs.submit(request, correlation_id.clone()).await?;
        if asynchronous {
            start_async(jobs, &admitted).await
        } else {
            run_sync(jobs, cancels, provider, &admitted, context).await
        }
    };
    run.await
        .map_err(|error| tool_error(error, provider, &correlation_id))
}

async fn start_async(jobs: &JobService, admitted: &Admitted) -> Result<CallToolResult, JobError> {
    let view = jobs
        .store()
        .job_view(admitted.job.id.clone(), SNAPSHOT_EVENTS)
        .await
        .map_err(internal)?
        .ok_or_else(|| JobError::internal("the admitted job vanished"))?;
    let output = AsyncStartOutput {
        job_id: admitted.job.id.clone(),
        deduped: admitted.deduped,
        job: JobSnapshot::from(view),
        gateway_session_id: admitted.gateway_session.clone(),
        worktree: answer::worktree_view(admitted),
    };
    let value = serde_json::to_value(output).map_err(internal)?;
    Ok(structured_success(value))
}

async fn run_sync(
    jobs: &Arc<JobService>,
    cancels: &ExplicitCancels,
    provider: Provider,
    admitted: &Admitted,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, JobError> {
    let job_id = admitted.job.id.clone();
    let explicit = cancels.register(context.id.clone());
    // One forwarding task per wait: notifications leave in event order, and a slow client
    // never blocks the wait (the channel is unbounded; events are throttled upstream).
    let progress = context.meta.get_progress_token().map(|token| {
        let (sender, mut receiver) =
            tokio::sync::mpsc::unbounded_channel::<ProgressNotificationParam>();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            while let Some(param) = receiver.recv().await {
                let _ = peer.notify_progress(param).await;
            }
        });
        (token, sender)
    });
    let on_event = |event: &crate::store::EventRow| {
        if let Some((token, sender)) = &progress {
            let mut param = ProgressNotificationParam::new(token.clone(), event.seq as f64);
            param.message = Some(format!("{}: {}", event.kind, event.message));
            let _ = sender.send(param);
        }
    };
    let options = WaitOptions {
        deadline: jobs.sync_deadline(),
        wake: jobs.subscribe(&job_id),
        // An attached caller hears only what happens from now on.
        after_seq: if admitted.deduped {
            admitted.job.last_event_seq
        } else {
            0
        },
    };
    let end = wait::wait_for_end(jobs.store(), &job_id, options, on_event, async move {
        explicit.notified().await
    })
    .await;
    cancels.unregister(&context.id);
    match end.map_err(internal)? {
        WaitEnd::Ended(job) => finished(jobs, admitted, &job).await,
        WaitEnd::Deadline(job) => {
            jobs.store()
                .mark_request_deferred(admitted.request_id.clone())
                .await
                .map_err(internal)?;
            Ok(deferred(provider, admitted, &job))
        }
        WaitEnd::Interrupted(job) => {
            jobs.cancel_for_caller(&job_id, &admitted.request_id)
                .await
                .map_err(internal)?;
            let mut error = JobError::new(
                crate::error::ErrorCategory::Canceled,
                "The request was canceled by the client",
                "Call again to run it anew.",
            );
            error.job_id = Some(job.id);
            Err(error)
        }
    }
}

fn deferred(provider: Provider, admitted: &Admitted, job: &JobRow) -> CallToolResult {
    let mut value = json!({
        "status": "deferred",
        "jobId": job.id,
        "cli": provider.key(),
        "correlationId": admitted.correlation_id,
        "sessionId": job.provider_session_id,
        "gatewaySessionId": job.session_id,
        "message": format!(
            "The {} run is still going after the sync deadline: poll it with llm_job_status (or llm_job_watch) and collect the answer with llm_job_result using jobId {}.",
            provider.key(),
            job.id
        ),
        "pollWith": "llm_job_status",
        "collectWith": "llm_job_result",
        "cancelWith": "llm_job_cancel",
    });
    // The documented object exactly; a run in a gateway worktree also names it.
    if let (Some(view), Some(map)) = (answer::worktree_view(admitted), value.as_object_mut()) {
        map.insert("worktree".into(), view);
    }
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

async fn finished(
    jobs: &JobService,
    admitted: &Admitted,
    job: &JobRow,
) -> Result<CallToolResult, JobError> {
    if job.status != JobStatus::Completed {
        return Err(JobError::from_job(job));
    }
    let max = admitted.max_response_chars;
    let answer = answer::collect(jobs.store(), admitted, job)
        .await
        .map_err(internal)?;
    let text = match admitted.output_format {
        OutputFormat::Text => answer.text,
        OutputFormat::Json => {
            // Raw NDJSON, also cut at maxResponseChars (4 bytes per char at most).
            let raw = jobs
                .store()
                .read_output(job.id.clone(), Stream::Stdout, 0, max.saturating_mul(4))
                .await
                .map_err(internal)?;
            String::from_utf8_lossy(&raw.data)
                .chars()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect()
        }
    };
    let value = answer.structured;
    let text = match &admitted.worktree {
        Some(wt) => format!("[gateway] worktree={}\n{text}", wt.path.display()),
        None => text,
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}
