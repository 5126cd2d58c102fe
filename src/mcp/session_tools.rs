//! The six `session_*` tools: gateway sessions as rows of the `sessions` table.
//!
//! A gateway session (`gw-` + UUID v7) names one conversation of one CLI across requests;
//! at most one per CLI is *active* and continues by default (providers.md "Sessions").
//! These handlers validate, call the store, and shape the answer; the one-active rule and
//! every SQL statement live in `store::sessions`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::GatewayState;
use super::result::ToolError;
use crate::providers::Provider;
use crate::store::{SessionRow, StoreError};

/// The longest session description accepted, in characters.
const MAX_DESCRIPTION_CHARS: usize = 2_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateParams {
    /// The CLI this session belongs to (`vibe` is accepted for `mistral`).
    pub cli: Provider,
    /// A note for people browsing sessions, up to 2000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Make it the CLI's active session, so requests without `sessionId` continue it.
    #[serde(default = "default_true")]
    pub set_as_active: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListParams {
    /// Only this CLI's sessions.
    #[serde(default)]
    pub cli: Option<Provider>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionIdParams {
    /// A gateway session id (`gw-…`).
    pub session_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetActiveParams {
    /// The CLI whose active session changes.
    pub cli: Provider,
    /// The gateway session to make active, or null to clear the CLI's active session.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// One gateway session as callers see it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: String,
    pub cli: Provider,
    /// The CLI's own session id bound to this session, null until a run reports one.
    pub provider_session_id: Option<String>,
    pub description: Option<String>,
    /// The directory the CLI runs in when this session is resumed.
    pub cwd: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub last_used_at: String,
    pub request_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cost_usd: f64,
}

impl From<SessionRow> for SessionView {
    fn from(row: SessionRow) -> Self {
        SessionView {
            session_id: row.id,
            cli: row.cli,
            provider_session_id: row.provider_session_id,
            description: row.description,
            cwd: row.cwd,
            is_active: row.is_active,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            request_count: row.request_count,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_read_tokens: row.cache_read_tokens,
            cache_creation_tokens: row.cache_creation_tokens,
            cost_usd: row.cost_usd,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOutput {
    pub session: SessionView,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDetailOutput {
    pub session: SessionView,
    /// Prompt-cache statistics of this session's requests; null until it has any.
    pub cache_state: Option<Value>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    /// Most recently used first.
    pub sessions: Vec<SessionView>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetActiveOutput {
    pub cli: Provider,
    /// The CLI's active session after the call, or null.
    pub active_session_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOutput {
    pub session_id: String,
    pub deleted: bool,
    /// The session's gateway worktree, if it had one: `{path, branch, removed, reason}`
    /// (kept when it holds work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<Value>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClearOutput {
    /// The CLI whose sessions were removed, or null for all.
    pub cli: Option<Provider>,
    pub deleted: u64,
    /// Paths of the sessions' gateway worktrees kept because they hold work.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_worktrees: Vec<String>,
}

pub async fn create(state: &GatewayState, params: CreateParams) -> Result<Value, ToolError> {
    if let Some(description) = &params.description
        && description.chars().count() > MAX_DESCRIPTION_CHARS
    {
        return Err(ToolError::invalid_input(
            format!(
                "description is too long: {} characters (maximum {MAX_DESCRIPTION_CHARS})",
                description.chars().count()
            ),
            "Shorten the description.",
        ));
    }
    let row = state
        .store
        .create_session(params.cli, params.description, None, params.set_as_active)
        .await
        .map_err(store_error)?;
    Ok(json!(SessionOutput {
        session: row.into()
    }))
}

pub async fn list(state: &GatewayState, params: ListParams) -> Result<Value, ToolError> {
    let rows = state
        .store
        .list_sessions(params.cli)
        .await
        .map_err(store_error)?;
    Ok(json!(ListOutput {
        sessions: rows.into_iter().map(SessionView::from).collect(),
    }))
}

pub async fn get(state: &GatewayState, params: SessionIdParams) -> Result<Value, ToolError> {
    let row = existing_session(state, &params.session_id, "sessionId").await?;
    // Best effort: a statistics failure must not hide the session itself.
    let cache_state = super::resources::session_cache_state(state, &row)
        .await
        .ok()
        .flatten();
    Ok(json!(SessionDetailOutput {
        session: row.into(),
        cache_state,
    }))
}

pub async fn set_active(state: &GatewayState, params: SetActiveParams) -> Result<Value, ToolError> {
    if let Some(id) = &params.session_id {
        let row = existing_session(state, id, "sessionId").await?;
        if row.cli != params.cli {
            return Err(ToolError::invalid_input(
                format!(
                    "Gateway session \"{id}\" belongs to {}, not {} (sessionId)",
                    row.cli, params.cli
                ),
                format!("Pass cli: \"{}\", or a session of {}.", row.cli, params.cli),
            ));
        }
    }
    state
        .store
        .set_active_session(params.cli, params.session_id.clone())
        .await
        .map_err(store_error)?;
    Ok(json!(SetActiveOutput {
        cli: params.cli,
        active_session_id: params.session_id,
    }))
}

pub async fn delete(state: &GatewayState, params: SessionIdParams) -> Result<Value, ToolError> {
    check_session_id(&params.session_id, "sessionId")?;
    let dirs = state
        .store
        .session_run_dirs(params.session_id.clone())
        .await
        .map_err(store_error)?;
    let deleted = state
        .store
        .delete_session(params.session_id.clone())
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(unknown_session(&params.session_id, "sessionId"));
    }
    let worktree = release_worktrees(vec![(params.session_id.clone(), dirs)])
        .await
        .into_iter()
        .next();
    Ok(json!(DeleteOutput {
        session_id: params.session_id,
        deleted,
        worktree,
    }))
}

pub async fn clear_all(state: &GatewayState, params: ListParams) -> Result<Value, ToolError> {
    let mut sessions: Vec<(String, Vec<String>)> = Vec::new();
    for row in state
        .store
        .list_sessions(params.cli)
        .await
        .map_err(store_error)?
    {
        let dirs = state
            .store
            .session_run_dirs(row.id.clone())
            .await
            .map_err(store_error)?;
        sessions.push((row.id, dirs));
    }
    // The store returns the deleted ids; the count is what callers need.
    let deleted = state
        .store
        .clear_sessions(params.cli)
        .await
        .map_err(store_error)?;
    let sessions = sessions
        .into_iter()
        .filter(|(id, _)| deleted.contains(id))
        .collect();
    let kept_worktrees = release_worktrees(sessions)
        .await
        .into_iter()
        .filter(|w| w["removed"] == false)
        .filter_map(|w| w["path"].as_str().map(str::to_string))
        .collect();
    Ok(json!(ClearOutput {
        cli: params.cli,
        deleted: deleted.len() as u64,
        kept_worktrees,
    }))
}

/// Removes the gateway worktrees of deleted sessions (policy.md: "removed with the
/// session") when clean; one `{path, branch, removed, reason}` per worktree bound to one of
/// them. Each session comes with the directories its runs used; any of them that is a
/// gateway worktree bound to the session is its worktree.
async fn release_worktrees(sessions: Vec<(String, Vec<String>)>) -> Vec<Value> {
    tokio::task::spawn_blocking(move || {
        let mut released = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, dirs) in sessions {
            for dir in dirs {
                let Some((wt, finish)) =
                    crate::worktree::release_session(std::path::Path::new(&dir), &id)
                else {
                    continue;
                };
                if !seen.insert(wt.path.clone()) {
                    continue;
                }
                let reason = match finish {
                    crate::worktree::Finish::KeptWithWork(reason) => Some(reason),
                    _ => None,
                };
                released.push(json!({
                    "path": wt.path,
                    "branch": wt.branch,
                    "removed": reason.is_none(),
                    "reason": reason,
                }));
            }
        }
        released
    })
    .await
    .unwrap_or_default()
}

/// Looks a gateway session up, with the errors of mcp-surface.md for a malformed or
/// unknown id.
async fn existing_session(
    state: &GatewayState,
    id: &str,
    field: &str,
) -> Result<SessionRow, ToolError> {
    check_session_id(id, field)?;
    state
        .store
        .get_session(id.to_string())
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_session(id, field))
}

/// A gateway session id is `gw-` followed by a UUID.
pub fn check_session_id(id: &str, field: &str) -> Result<(), ToolError> {
    if id.starts_with('-') {
        return Err(ToolError::invalid_input(
            format!("Invalid {field}: values must not start with \"-\""),
            "Pass a gateway session id as returned by session_create or session_list.",
        ));
    }
    let well_formed = id
        .strip_prefix("gw-")
        .is_some_and(|rest| uuid::Uuid::try_parse(rest).is_ok());
    if well_formed {
        Ok(())
    } else {
        Err(ToolError::invalid_input(
            format!(
                "Invalid {field}: \"{}\" is not a gateway session id (expected gw- followed by a UUID)",
                truncate_for_message(id)
            ),
            "Pass a gateway session id as returned by session_create or session_list.",
        ))
    }
}

fn unknown_session(id: &str, field: &str) -> ToolError {
    ToolError::invalid_input(
        format!("Unknown gateway session \"{id}\" ({field})"),
        "List the existing sessions with session_list, or create one with session_create.",
    )
}

/// Keeps echoed input short: an error message must not carry a megabyte of junk back.
fn truncate_for_message(value: &str) -> String {
    const LIMIT: usize = 80;
    if value.chars().count() <= LIMIT {
        value.to_string()
    } else {
        let head: String = value.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

fn store_error(error: StoreError) -> ToolError {
    tracing::error!(%error, "store operation failed");
    ToolError::internal(format!("The gateway's database failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_checked_for_shape() {
        assert!(check_session_id("gw-0190f5c2-6a53-7c3e-9e6b-1f2a3b4c5d6e", "sessionId").is_ok());
        let error = check_session_id("--resume", "sessionId").unwrap_err();
        assert_eq!(
            error.message,
            "Invalid sessionId: values must not start with \"-\""
        );
        let error = check_session_id("abc", "sessionId").unwrap_err();
        assert!(error.message.contains("is not a gateway session id"));
        let long = "x".repeat(500);
        let error = check_session_id(&long, "sessionId").unwrap_err();
        assert!(error.message.len() < 300);
    }
}
