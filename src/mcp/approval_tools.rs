//! `approval_list`: the recorded `mcp_managed` decisions, newest first (mcp-surface.md).
//!
//! Owns: its parameters and output. Not here: scoring and deciding (`policy::approval`),
//! the `approvals` table (`store::approvals`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::GatewayState;
use super::result::ToolError;
use crate::policy::approval::ApprovalView;
use crate::providers::Provider;

const LIMIT: (i64, i64) = (1, 500);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApprovalListParams {
    /// How many decisions (1..=500, default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: i64,
    /// Only this CLI's decisions.
    #[serde(default)]
    pub cli: Option<Provider>,
}

fn default_limit() -> i64 {
    50
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalListOutput {
    /// Newest first. Each keeps the prompt's SHA-256, never its text.
    pub approvals: Vec<ApprovalView>,
}

pub async fn list(state: &GatewayState, params: ApprovalListParams) -> Result<Value, ToolError> {
    let limit = super::job_tools::in_range("limit", params.limit, LIMIT)?;
    let rows = state
        .store
        .list_approvals(u32::try_from(limit).unwrap_or(500), params.cli)
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading approvals failed");
            ToolError::internal(format!("The gateway's database failed: {error}"))
        })?;
    Ok(json!(ApprovalListOutput {
        approvals: rows.into_iter().map(ApprovalView::from).collect(),
    }))
}
