//! The answer of a completed job as its caller sees it: the structured result of
//! mcp-surface.md "Sync result", shared by the sync request tools and `run --json`.
//!
//! Owns reading the answer window (at most `maxResponseChars`, never silently cut:
//! `truncated` and `totalChars` say so) and the result's fields. Not here: the text block
//! and `outputFormat: json` (the MCP layer), printing (the terminal command).

use serde_json::{Value, json};

use super::Admitted;
use crate::store::{JobRow, Store, StoreError, Warning};

/// A completed job's answer, cut at the caller's `maxResponseChars`.
pub struct Answer {
    /// The answer text, at most `maxResponseChars` characters.
    pub text: String,
    /// The structured result (`response`, `cli`, `model`, usage, `truncated`, …).
    pub structured: Value,
}

/// Reads the answer of `job` (which the caller checked is completed) for `admitted`.
pub async fn collect(
    store: &Store,
    admitted: &Admitted,
    job: &JobRow,
) -> Result<Answer, StoreError> {
    let max = admitted.max_response_chars;
    let window = store.read_response(job.id.clone(), 0, max).await?;
    let (text, total_chars) = match window {
        Some(w) => (w.text.unwrap_or_default(), w.total_chars),
        None => (String::new(), 0),
    };
    let truncated = u64::try_from(total_chars).unwrap_or(0) > max;
    // Admission warnings (legacy parameters, ignored options) and the run's own, once each.
    let mut warnings: Vec<Warning> = job.warnings.clone();
    for w in &admitted.warnings {
        if !warnings.iter().any(|x| x.code == w.code) {
            warnings.push(w.clone());
        }
    }
    let u = &job.usage;
    let mut structured = json!({
        "response": text,
        "cli": job.cli.key(),
        "model": job.model,
        "correlationId": admitted.correlation_id,
        "jobId": job.id,
        "deduped": admitted.deduped,
        "sessionId": job.provider_session_id,
        "gatewaySessionId": job.session_id,
        "durationMs": job.duration_ms,
        "exitCode": job.exit_code,
        "stopReason": job.stop_reason,
        "inputTokens": u.input_tokens,
        "outputTokens": u.output_tokens,
        "cacheReadTokens": u.cache_read_tokens,
        "cacheCreationTokens": u.cache_creation_tokens,
        "reasoningTokens": u.reasoning_tokens,
        "costUsd": u.cost_usd,
        "truncated": truncated,
        "totalChars": total_chars,
        "warnings": warnings,
    });
    if let Some(map) = structured.as_object_mut() {
        if let Some(report) = &admitted.mcp_servers {
            map.insert("mcpServers".into(), json!(report));
        }
        if let Some(view) = worktree_view(admitted) {
            map.insert("worktree".into(), view);
        }
    }
    Ok(Answer { text, structured })
}

/// The `worktree` field of results: `{path, branch, name}` of the gateway worktree the job
/// runs in, or `None` when it runs in an ordinary directory.
pub fn worktree_view(admitted: &Admitted) -> Option<Value> {
    admitted
        .worktree
        .as_ref()
        .map(|wt| json!({"path": wt.path, "branch": wt.branch, "name": wt.name}))
}
