//! `approvals`: the record of every `mcp_managed` decision (policy.md), newest first for
//! `approval_list`.
//!
//! A record keeps the prompt's SHA-256, never its text. Not here: scoring and deciding
//! (the policy module), and retention (`retention.rs` deletes by `at`).

use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::types::{ApprovalStatus, bool_col, json_col, parse_col, to_json};
use super::{Cx, Store, StoreError};
use crate::clock::now_iso;
use crate::providers::Provider;

/// A decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub cli: Provider,
    pub correlation_id: Option<String>,
    pub status: ApprovalStatus,
    /// `strict`, `balanced` or `permissive`.
    pub policy: String,
    pub score: i64,
    pub threshold: i64,
    pub reasons: Vec<String>,
    /// SHA-256 of the prompt (see [`super::sha256_hex`]).
    pub prompt_sha256: String,
    /// The tool that asked, e.g. `claude_request`.
    pub operation: String,
    pub requested_mcp_servers: Vec<String>,
    pub bypass_requested: bool,
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRow {
    pub id: String,
    pub at: String,
    pub cli: Provider,
    pub correlation_id: Option<String>,
    pub status: ApprovalStatus,
    pub policy: String,
    pub score: i64,
    pub threshold: i64,
    pub reasons: Vec<String>,
    pub prompt_sha256: String,
    pub operation: String,
    pub requested_mcp_servers: Vec<String>,
    pub bypass_requested: bool,
}

const APPROVAL_COLUMNS: &str = "id, at, cli, correlation_id, status, policy, score, threshold, \
    reasons, prompt_sha256, operation, requested_mcp_servers, bypass_requested";

fn approval_from_row(row: &Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        id: row.get("id")?,
        at: row.get("at")?,
        cli: parse_col(row, "cli")?,
        correlation_id: row.get("correlation_id")?,
        status: parse_col(row, "status")?,
        policy: row.get("policy")?,
        score: row.get("score")?,
        threshold: row.get("threshold")?,
        reasons: json_col(row, "reasons")?,
        prompt_sha256: row.get("prompt_sha256")?,
        operation: row.get("operation")?,
        requested_mcp_servers: json_col(row, "requested_mcp_servers")?,
        bypass_requested: bool_col(row, "bypass_requested")?,
    })
}

fn insert(conn: &Connection, _cx: &Cx, a: NewApproval) -> Result<ApprovalRow, StoreError> {
    let row = ApprovalRow {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_iso(),
        cli: a.cli,
        correlation_id: a.correlation_id,
        status: a.status,
        policy: a.policy,
        score: a.score,
        threshold: a.threshold,
        reasons: a.reasons,
        prompt_sha256: a.prompt_sha256,
        operation: a.operation,
        requested_mcp_servers: a.requested_mcp_servers,
        bypass_requested: a.bypass_requested,
    };
    conn.prepare_cached(&format!(
        "INSERT INTO approvals ({APPROVAL_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        row.id,
        row.at,
        row.cli.key(),
        row.correlation_id,
        row.status.as_str(),
        row.policy,
        row.score,
        row.threshold,
        to_json(&row.reasons),
        row.prompt_sha256,
        row.operation,
        to_json(&row.requested_mcp_servers),
        row.bypass_requested,
    ])?;
    Ok(row)
}

fn list(
    conn: &Connection,
    _cx: &Cx,
    limit: u32,
    cli: Option<Provider>,
) -> Result<Vec<ApprovalRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE ?1 IS NULL OR cli = ?1 \
             ORDER BY at DESC, id DESC LIMIT ?2"
        ))?
        .query_map(params![cli.map(Provider::key), limit], approval_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Store {
    store_ops! {
        /// Records one approval decision (UUID v7 id, timestamped now).
        write fn insert_approval / insert_approval_blocking(approval: NewApproval)
            -> ApprovalRow = insert;

        /// Recent decisions, newest first, optionally of one CLI.
        read fn list_approvals / list_approvals_blocking(limit: u32, cli: Option<Provider>)
            -> Vec<ApprovalRow> = list;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    fn approval(cli: Provider, status: ApprovalStatus) -> NewApproval {
        NewApproval {
            cli,
            correlation_id: Some("c-1".into()),
            status,
            policy: "balanced".into(),
            score: 3,
            threshold: 5,
            reasons: vec!["mcp server docs (+1)".into()],
            prompt_sha256: crate::store::sha256_hex("Summarize this document"),
            operation: "claude_request".into(),
            requested_mcp_servers: vec!["docs".into()],
            bypass_requested: false,
        }
    }

    #[test]
    fn approvals_round_trip_newest_first() {
        let (_dir, store) = store();
        let first = store
            .insert_approval_blocking(approval(Provider::Claude, ApprovalStatus::Approved))
            .unwrap();
        let second = store
            .insert_approval_blocking(approval(Provider::Claude, ApprovalStatus::Denied))
            .unwrap();
        store
            .insert_approval_blocking(approval(Provider::Codex, ApprovalStatus::Denied))
            .unwrap();

        let claude = store
            .list_approvals_blocking(10, Some(Provider::Claude))
            .unwrap();
        assert_eq!(claude, vec![second, first.clone()]);
        assert_eq!(store.list_approvals_blocking(10, None).unwrap().len(), 3);
        assert_eq!(store.list_approvals_blocking(1, None).unwrap().len(), 1);
        assert_eq!(first.reasons, vec!["mcp server docs (+1)".to_string()]);
        assert_eq!(
            store.query_i64("SELECT count(*) FROM approvals WHERE json_valid(reasons)"),
            3
        );
    }
}
