//! `approvalStrategy: "mcp_managed"` (policy.md "MCP-managed approvals"): score a claude
//! request before it runs, decide against the policy's threshold and the bypass rule,
//! record the decision in `approvals` (the prompt's SHA-256, never its text), and pin the
//! flags of an approved run.
//!
//! Owns: the score components and their reasons, the thresholds, the bypass rule, the
//! permission mode an approved run gets, and [`gate`], the one step admission calls.
//! Not here: the review-integrity detectors ([`super::integrity`], whose score is part of
//! the sum), rejecting `mcp_managed` for other providers (the shared request validation
//! does that before any policy runs), building claude's argv (`providers::claude` honours
//! `BuildContext::pin_permission_mode` and `strictMcpConfig`).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::integrity::{self, ReviewInput};
use crate::config::Config;
use crate::error::ErrorCategory;
use crate::providers::claude::ClaudeRequest;
use crate::providers::request::{ApprovalStrategy, PermissionMode, WorktreeParam};
use crate::providers::{AnyRequest, Provider};
use crate::store::{ApprovalRow, ApprovalStatus, NewApproval, Store, sha256_hex};

/// Score of a requested bypass (once, however many kinds were asked for).
pub const BYPASS_SCORE: i64 = 3;
/// Score of a dangerous word in the prompt.
pub const DANGEROUS_WORDS_SCORE: i64 = 3;
/// Default `[mcp_servers.<name>] approval_score` (also for a name config.toml lacks).
pub const DEFAULT_SERVER_SCORE: i64 = 1;

static DANGEROUS_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:delete|destroy|wipe|exfiltrate|credential|token|password|secret)\b")
        .expect("dangerous-words regex")
});

/// `strict`, `balanced`, `permissive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Strict,
    Balanced,
    Permissive,
}

impl Policy {
    /// Approved iff score ≤ threshold (and the bypass rule allows it).
    pub fn threshold(self) -> i64 {
        match self {
            Policy::Strict => 2,
            Policy::Balanced => 5,
            Policy::Permissive => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Balanced => "balanced",
            Policy::Permissive => "permissive",
        }
    }
}

impl From<crate::config::ApprovalPolicy> for Policy {
    fn from(policy: crate::config::ApprovalPolicy) -> Self {
        use crate::config::ApprovalPolicy as C;
        match policy {
            C::Strict => Policy::Strict,
            C::Balanced => Policy::Balanced,
            C::Permissive => Policy::Permissive,
        }
    }
}

impl From<crate::providers::request::ApprovalPolicy> for Policy {
    fn from(policy: crate::providers::request::ApprovalPolicy) -> Self {
        use crate::providers::request::ApprovalPolicy as R;
        match policy {
            R::Strict => Policy::Strict,
            R::Balanced => Policy::Balanced,
            R::Permissive => Policy::Permissive,
        }
    }
}

/// What the score looks at, already extracted from the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreInput {
    /// The prompt the CLI would receive.
    pub prompt: String,
    /// What of the request is a bypass, in words (`permissionMode bypassPermissions`, …).
    pub bypass: Vec<String>,
    /// Each requested MCP server with its `approval_score`.
    pub mcp_servers: Vec<(String, i64)>,
    pub allowed_tools: Option<Vec<String>>,
    pub disallowed_tools: Option<Vec<String>>,
}

/// The score with one reason per component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    pub score: i64,
    pub reasons: Vec<String>,
    pub bypass_requested: bool,
}

impl Assessment {
    fn add(&mut self, points: i64, reason: String) {
        self.score += points;
        self.reasons.push(format!("{reason} (+{points})"));
    }
}

/// The sum of policy.md. `allowedTools: []` and a critical disallowed tool in a review
/// context count once each, as the review-integrity findings `empty_allowed_tools` and
/// `critical_tools_disallowed` (6 each); `tool_suppression` adds 4.
pub fn assess(input: &ScoreInput) -> Assessment {
    let mut out = Assessment::default();
    if !input.bypass.is_empty() {
        out.bypass_requested = true;
        out.add(
            BYPASS_SCORE,
            format!("bypass requested: {}", input.bypass.join(", ")),
        );
    }
    for (name, points) in &input.mcp_servers {
        out.add(*points, format!("mcp server {name}"));
    }
    let mut dangerous: Vec<String> = Vec::new();
    for word in DANGEROUS_WORDS.find_iter(&input.prompt) {
        let word = word.as_str().to_lowercase();
        if !dangerous.contains(&word) {
            dangerous.push(word);
        }
    }
    if !dangerous.is_empty() {
        out.add(
            DANGEROUS_WORDS_SCORE,
            format!("prompt mentions {}", dangerous.join(", ")),
        );
    }
    let findings = integrity::check(ReviewInput {
        prompt: &input.prompt,
        allowed_tools: input.allowed_tools.as_deref(),
        disallowed_tools: input.disallowed_tools.as_deref(),
    });
    for finding in findings {
        out.add(
            finding.kind.score(),
            format!(
                "review integrity {}: {}",
                finding.kind.as_str(),
                finding.detail
            ),
        );
    }
    out
}

/// The decision for one assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    pub policy: Policy,
    pub threshold: i64,
    pub score: i64,
    pub reasons: Vec<String>,
    pub bypass_requested: bool,
}

/// Approved iff score ≤ threshold, except that a requested bypass is denied unless
/// `allow_bypass`.
pub fn decide(assessment: Assessment, policy: Policy, allow_bypass: bool) -> Decision {
    let threshold = policy.threshold();
    let mut reasons = assessment.reasons;
    let bypass_blocked = assessment.bypass_requested && !allow_bypass;
    if bypass_blocked {
        reasons.push(
            "a bypass is denied unless [approvals] allow_bypass = true (or LLM_GATEWAY_APPROVAL_ALLOW_BYPASS)"
                .to_string(),
        );
    }
    Decision {
        approved: assessment.score <= threshold && !bypass_blocked,
        policy,
        threshold,
        score: assessment.score,
        reasons,
        bypass_requested: assessment.bypass_requested,
    }
}

/// The facts of a claude request that the score needs. `native_resume` = the request resumes
/// a provider session the gateway did not create (an unknown native id, or `resumeLatest`).
pub fn claude_score_input(
    request: &ClaudeRequest,
    prompt: &str,
    config: &Config,
    native_resume: bool,
) -> ScoreInput {
    let mut bypass = Vec::new();
    if request.permission_mode == Some(PermissionMode::BypassPermissions) {
        bypass.push("permissionMode bypassPermissions".to_string());
    } else if request.dangerously_skip_permissions && request.permission_mode.is_none() {
        bypass.push("dangerouslySkipPermissions".to_string());
    }
    if request.system_prompt.is_some() {
        bypass.push("systemPrompt".to_string());
    }
    if request.append_system_prompt.is_some() {
        bypass.push("appendSystemPrompt".to_string());
    }
    if !request.add_dir.is_empty() {
        bypass.push("addDir".to_string());
    }
    let unknown: Vec<&str> = request
        .mcp_servers
        .iter()
        .filter(|name| !config.mcp_servers.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        bypass.push(format!(
            "mcpServers outside the configured set ({})",
            unknown.join(", ")
        ));
    }
    if matches!(
        request.worktree,
        Some(WorktreeParam::Spec(_)) | Some(WorktreeParam::Enabled(true))
    ) {
        bypass.push("worktree".to_string());
    }
    if native_resume {
        bypass.push("native resume of a session the gateway did not create".to_string());
    }
    ScoreInput {
        prompt: prompt.to_string(),
        bypass,
        mcp_servers: request
            .mcp_servers
            .iter()
            .map(|name| {
                let points = config
                    .mcp_servers
                    .get(name)
                    .map_or(DEFAULT_SERVER_SCORE, |s| i64::from(s.approval_score));
                (name.clone(), points)
            })
            .collect(),
        allowed_tools: request.allowed_tools.clone(),
        disallowed_tools: request.disallowed_tools.clone(),
    }
}

/// The permission mode of an approved claude run: the caller's when it is `plan`,
/// `default` or `dontAsk`; `bypassPermissions` only when asked for and allowed; otherwise
/// `acceptEdits`.
pub fn pinned_permission_mode(
    requested: Option<PermissionMode>,
    allow_bypass: bool,
) -> PermissionMode {
    match requested {
        Some(mode @ (PermissionMode::Plan | PermissionMode::Default | PermissionMode::DontAsk)) => {
            mode
        }
        Some(PermissionMode::BypassPermissions) if allow_bypass => {
            PermissionMode::BypassPermissions
        }
        _ => PermissionMode::AcceptEdits,
    }
}

/// Rewrites an approved claude request: the pinned permission mode (the legacy
/// `dangerouslySkipPermissions` folded into it) and `strictMcpConfig`, so claude sees only
/// the named servers and no ambient MCP configuration.
pub fn pin_claude(request: &mut ClaudeRequest, allow_bypass: bool) {
    let requested = request.permission_mode.or(request
        .dangerously_skip_permissions
        .then_some(PermissionMode::BypassPermissions));
    request.permission_mode = Some(pinned_permission_mode(requested, allow_bypass));
    request.dangerously_skip_permissions = false;
    request.strict_mcp_config = true;
}

/// An approval record as callers see it (`approval_list`, the `approval` of an
/// `approval_denied` error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    pub id: String,
    pub at: String,
    pub cli: String,
    pub correlation_id: Option<String>,
    /// `approved` or `denied`.
    pub status: String,
    /// `strict`, `balanced` or `permissive`.
    pub policy: String,
    pub score: i64,
    pub threshold: i64,
    pub reasons: Vec<String>,
    /// SHA-256 hex of the prompt; the text is never stored.
    pub prompt_sha256: String,
    /// The tool that asked, e.g. `claude_request`.
    pub operation: String,
    pub requested_mcp_servers: Vec<String>,
    pub bypass_requested: bool,
}

impl From<ApprovalRow> for ApprovalView {
    fn from(row: ApprovalRow) -> Self {
        ApprovalView {
            id: row.id,
            at: row.at,
            cli: row.cli.key().to_string(),
            correlation_id: row.correlation_id,
            status: row.status.as_str().to_string(),
            policy: row.policy,
            score: row.score,
            threshold: row.threshold,
            reasons: row.reasons,
            prompt_sha256: row.prompt_sha256,
            operation: row.operation,
            requested_mcp_servers: row.requested_mcp_servers,
            bypass_requested: row.bypass_requested,
        }
    }
}

/// Why [`gate`] stops a request.
#[derive(Debug, Clone, PartialEq)]
pub enum GateError {
    /// The policy denied it; the recorded decision.
    Denied(Box<ApprovalRow>),
    /// The decision could not be recorded (a gateway fault: nothing runs unrecorded).
    Store(String),
}

impl GateError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            GateError::Denied(_) => ErrorCategory::ApprovalDenied,
            GateError::Store(_) => ErrorCategory::Internal,
        }
    }

    pub fn message(&self) -> String {
        match self {
            GateError::Denied(row) => format!(
                "The request was denied by the mcp_managed approval policy {}: score {}, threshold {}{}. Reasons: {}",
                row.policy,
                row.score,
                row.threshold,
                if row.bypass_requested {
                    ", bypass requested"
                } else {
                    ""
                },
                row.reasons.join("; ")
            ),
            GateError::Store(message) => message.clone(),
        }
    }

    pub fn remediation(&self) -> &'static str {
        match self {
            GateError::Denied(_) => {
                "Lower the score (drop the bypass parameters, MCP servers or risky wording), pass a \
                 more permissive approvalPolicy, or have the operator set `[approvals] allow_bypass \
                 = true` for bypasses; approval_list shows the record."
            }
            GateError::Store(_) => {
                "This is a gateway fault, not a problem with the request: retry, and if it \
                 persists run `llm-cli-gateway doctor`."
            }
        }
    }

    /// The record as JSON (camelCase), for the error's `structuredContent.approval`.
    pub fn record(&self) -> Option<Value> {
        match self {
            GateError::Denied(row) => {
                serde_json::to_value(ApprovalView::from((**row).clone())).ok()
            }
            GateError::Store(_) => None,
        }
    }
}

/// What admission passes in about the request.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    pub correlation_id: &'a str,
    /// See [`claude_score_input`].
    pub native_resume: bool,
}

/// An approved `mcp_managed` request: its record and the pinned request to build (the
/// caller also sets `BuildContext::pin_permission_mode`).
#[derive(Debug, Clone)]
pub struct Approved {
    pub row: ApprovalRow,
    pub request: AnyRequest,
}

/// For an `mcp_managed` request: score it, record the decision, and either return the
/// approved, pinned request or stop it with [`GateError::Denied`]. `Ok(None)` for `legacy`
/// requests, which run as given.
pub async fn gate(
    store: &Store,
    config: &Config,
    request: &AnyRequest,
    input: GateInput<'_>,
) -> Result<Option<Approved>, GateError> {
    let common = request.common();
    if common.approval_strategy != ApprovalStrategy::McpManaged {
        return Ok(None);
    }
    let policy = common
        .approval_policy
        .map(Policy::from)
        .unwrap_or_else(|| Policy::from(config.approvals.policy));
    let prompt = super::request_prompt(request);
    let allow_bypass = config.approvals.allow_bypass;
    // Validation already refused mcp_managed for every other provider.
    let AnyRequest::Claude(claude) = request else {
        return Ok(None);
    };
    let score_input = claude_score_input(claude, &prompt, config, input.native_resume);
    let decision = decide(assess(&score_input), policy, allow_bypass);
    let row = store
        .insert_approval(NewApproval {
            cli: Provider::Claude,
            correlation_id: Some(input.correlation_id.to_string()),
            status: if decision.approved {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Denied
            },
            policy: policy.as_str().to_string(),
            score: decision.score,
            threshold: decision.threshold,
            reasons: decision.reasons,
            prompt_sha256: sha256_hex(&prompt),
            operation: "claude_request".to_string(),
            requested_mcp_servers: claude.mcp_servers.clone(),
            bypass_requested: decision.bypass_requested,
        })
        .await
        .map_err(|e| GateError::Store(format!("cannot record the approval decision: {e}")))?;
    if !decision.approved {
        return Err(GateError::Denied(Box::new(row)));
    }
    let mut pinned = claude.clone();
    pin_claude(&mut pinned, allow_bypass);
    Ok(Some(Approved {
        row,
        request: AnyRequest::Claude(pinned),
    }))
}

impl From<GateError> for crate::jobs::JobError {
    fn from(error: GateError) -> Self {
        let mut out =
            crate::jobs::JobError::new(error.category(), error.message(), error.remediation());
        out.approval = error.record().map(Box::new);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, McpServerConfig};

    fn config() -> Config {
        let mut config = Config::defaults(&Env::from_pairs([("HOME", "/home/u")]));
        for (name, score) in [("docs", 1), ("search", 1), ("files", 1), ("heavy", 4)] {
            config.mcp_servers.insert(
                name.to_string(),
                McpServerConfig {
                    command: format!("{name}-mcp"),
                    args: Vec::new(),
                    env: Default::default(),
                    approval_score: score,
                },
            );
        }
        config
    }

    fn claude(args: Value) -> ClaudeRequest {
        serde_json::from_value(args).expect("a valid claude request")
    }

    fn score_of(args: Value) -> Assessment {
        let request = claude(args);
        let prompt = request.prompt.clone().unwrap_or_default();
        assess(&claude_score_input(&request, &prompt, &config(), false))
    }

    #[test]
    fn example_summarize_with_three_servers_is_approved_under_balanced() {
        let a = score_of(serde_json::json!({
            "prompt": "Summarize this document",
            "mcpServers": ["docs", "search", "files"],
        }));
        assert_eq!(a.score, 3);
        assert!(!a.bypass_requested);
        let d = decide(a, Policy::Balanced, false);
        assert!(d.approved);
        assert_eq!(d.threshold, 5);
    }

    #[test]
    fn example_bypass_on_permissive_without_allow_bypass_is_denied() {
        let a = score_of(serde_json::json!({
            "prompt": "Summarize this document",
            "permissionMode": "bypassPermissions",
        }));
        assert_eq!(a.score, 3);
        assert!(a.bypass_requested);
        assert!(!decide(a.clone(), Policy::Permissive, false).approved);
        assert!(decide(a, Policy::Permissive, true).approved);
    }

    #[test]
    fn example_delete_the_leaked_secret_under_strict_is_denied() {
        let a = score_of(serde_json::json!({"prompt": "delete the leaked secret"}));
        assert_eq!(a.score, 3);
        let d = decide(a, Policy::Strict, false);
        assert!(!d.approved);
        assert_eq!(d.threshold, 2);
        assert!(decide(d_assessment(3), Policy::Balanced, false).approved);
    }

    fn d_assessment(score: i64) -> Assessment {
        Assessment {
            score,
            reasons: Vec::new(),
            bypass_requested: false,
        }
    }

    #[test]
    fn thresholds_are_inclusive() {
        for (policy, threshold) in [
            (Policy::Strict, 2),
            (Policy::Balanced, 5),
            (Policy::Permissive, 7),
        ] {
            assert!(decide(d_assessment(threshold), policy, false).approved);
            assert!(!decide(d_assessment(threshold + 1), policy, false).approved);
        }
    }

    #[test]
    fn each_bypass_kind_scores_three_once() {
        for args in [
            serde_json::json!({"prompt": "hi", "permissionMode": "bypassPermissions"}),
            serde_json::json!({"prompt": "hi", "dangerouslySkipPermissions": true}),
            serde_json::json!({"prompt": "hi", "systemPrompt": "be terse"}),
            serde_json::json!({"prompt": "hi", "appendSystemPrompt": "be terse"}),
            serde_json::json!({"prompt": "hi", "addDir": ["/tmp"]}),
            serde_json::json!({"prompt": "hi", "worktree": true}),
        ] {
            let a = score_of(args.clone());
            assert_eq!((a.score, a.bypass_requested), (3, true), "{args}");
        }
        // An unknown server is a bypass (+3) and still a server (+1).
        let a = score_of(serde_json::json!({"prompt": "hi", "mcpServers": ["nope"]}));
        assert_eq!(a.score, 4);
        // Several kinds together still add 3 once.
        let a = score_of(serde_json::json!({
            "prompt": "hi", "systemPrompt": "x", "addDir": ["/tmp"], "worktree": {"name": "w"},
        }));
        assert_eq!(a.score, 3);
        // worktree: false and plain modes are no bypass.
        let a = score_of(
            serde_json::json!({"prompt": "hi", "worktree": false, "permissionMode": "acceptEdits"}),
        );
        assert_eq!((a.score, a.bypass_requested), (0, false));
        // Native resume of a session the gateway did not create.
        let request = claude(serde_json::json!({"prompt": "hi"}));
        let a = assess(&claude_score_input(&request, "hi", &config(), true));
        assert_eq!((a.score, a.bypass_requested), (3, true));
    }

    #[test]
    fn server_scores_come_from_config() {
        let a = score_of(serde_json::json!({"prompt": "hi", "mcpServers": ["heavy", "docs"]}));
        assert_eq!(a.score, 5);
        assert_eq!(
            a.reasons,
            vec!["mcp server heavy (+4)", "mcp server docs (+1)"]
        );
    }

    #[test]
    fn review_context_tool_lists_score_six_each() {
        let a = score_of(serde_json::json!({"prompt": "Review the code", "allowedTools": []}));
        assert_eq!(a.score, 6);
        let a = score_of(
            serde_json::json!({"prompt": "Review the code", "disallowedTools": ["Bash(rm:*)"]}),
        );
        assert_eq!(a.score, 6);
        let a = score_of(
            serde_json::json!({"prompt": "Review the code", "allowedTools": [], "disallowedTools": ["Grep"]}),
        );
        assert_eq!(a.score, 12);
        // Outside a review context the same lists cost nothing.
        let a = score_of(
            serde_json::json!({"prompt": "Implement a feature", "allowedTools": [], "disallowedTools": ["Read"]}),
        );
        assert_eq!(a.score, 0);
    }

    #[test]
    fn dangerous_words_score_three_once_and_are_word_bounded() {
        assert_eq!(
            score_of(serde_json::json!({"prompt": "wipe the password and the token"})).score,
            3
        );
        for word in [
            "delete",
            "destroy",
            "wipe",
            "exfiltrate",
            "credential",
            "token",
            "password",
            "secret",
        ] {
            assert_eq!(
                score_of(serde_json::json!({"prompt": format!("please {word} it")})).score,
                3,
                "{word}"
            );
        }
        assert_eq!(
            score_of(serde_json::json!({"prompt": "tokenizer secretary deleted"})).score,
            0
        );
    }

    #[test]
    fn tool_suppression_scores_four() {
        let a =
            score_of(serde_json::json!({"prompt": "Review this code but do not use any tools"}));
        assert_eq!(a.score, 4);
        assert!(a.reasons[0].contains("tool_suppression"), "{:?}", a.reasons);
    }

    #[test]
    fn pinned_modes_of_approved_runs() {
        use PermissionMode::*;
        for (requested, allow, pinned) in [
            (Some(Plan), false, Plan),
            (Some(Default), false, Default),
            (Some(DontAsk), false, DontAsk),
            (Some(Auto), false, AcceptEdits),
            (Some(AcceptEdits), false, AcceptEdits),
            (None, false, AcceptEdits),
            (Some(BypassPermissions), false, AcceptEdits),
            (Some(BypassPermissions), true, BypassPermissions),
        ] {
            assert_eq!(
                pinned_permission_mode(requested, allow),
                pinned,
                "{requested:?} {allow}"
            );
        }
        let mut request =
            claude(serde_json::json!({"prompt": "hi", "dangerouslySkipPermissions": true}));
        pin_claude(&mut request, true);
        assert_eq!(request.permission_mode, Some(BypassPermissions));
        assert!(!request.dangerously_skip_permissions);
        assert!(request.strict_mcp_config);
    }
}
