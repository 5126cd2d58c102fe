//! The request parameters every provider tool shares, and the validation rules of quality.md.
//!
//! Owns: the common parameter types of mcp-surface.md ("Parameters common to all ten tools"),
//! the [`provider_request!`] macro that puts them into each provider's flat
//! `deny_unknown_fields` request struct (serde's `flatten` cannot be combined with
//! `deny_unknown_fields`, so the fields are spliced in instead of nested), prompt assembly for
//! `promptParts` (policy.md), [`ValidationError`], [`Warning`], and the field checks all
//! adapters share (NUL bytes, leading `-`, ranges, lengths, session-flag precedence).
//!
//! Not here: provider-specific rules (each provider's module), and anything that needs the
//! filesystem, the store or the configuration: whether `workingDir`, `addDir` or `images`
//! exist, gateway-session (`gw-…`) lookup, worktree git checks, model alias resolution,
//! approval scoring. The caller does those before calling `build`, which stays pure.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Provider;

/// Warning codes the adapters emit (`structuredContent.warnings[].code`).
pub mod codes {
    /// `createNewSession` won over `sessionId` / `resumeLatest`.
    pub const SESSION_IGNORED: &str = "session_ignored";
    /// `optimizePrompt` / `optimizeResponse` are accepted for compatibility and ignored.
    pub const OPTIMIZE_IGNORED: &str = "optimize_ignored";
    /// `promptParts.cacheControl` is accepted and not acted on yet (policy.md).
    pub const CACHE_CONTROL_NOOP: &str = "cache_control_noop";
    /// A legacy parameter was mapped to its modern equivalent, or lost to it.
    pub const LEGACY_PARAMETER: &str = "legacy_parameter";
    /// A parameter was accepted but has no effect on this run.
    pub const PARAMETER_IGNORED: &str = "parameter_ignored";
    /// codex `exec resume` has no such flag; the parameter was dropped.
    pub const FLAG_IGNORED_ON_RESUME: &str = "flag_ignored_on_resume";
    /// claude runs as root with bypass: the gateway set `IS_SANDBOX=1`.
    pub const IS_SANDBOX_SET: &str = "is_sandbox_set";
    /// A requested MCP server is not configured (claude, without `strictMcpConfig`).
    pub const MCP_SERVER_UNKNOWN: &str = "mcp_server_unknown";
    /// A resumed session had no recorded running total: usage figures are null.
    pub const USAGE_BASELINE_UNKNOWN: &str = "usage_baseline_unknown";
    /// vibe fell back to its default model (unknown `VIBE_ACTIVE_MODEL`).
    pub const MODEL_NOT_AVAILABLE: &str = "model_not_available";
    /// The CLI reported a non-fatal problem (e.g. codex model metadata missing).
    pub const CLI_WARNING: &str = "cli_warning";
    /// The CLI refused a tool call (permission mode / approval), the run went on.
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// vibe's `export.json` was missing or unreadable: usage, cost and outcome are unknown.
    pub const EXPORT_MISSING: &str = "export_missing";
}

/// A non-fatal remark about a request or a run, shown to the caller as `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Warning {
    /// Stable machine-readable code (see [`codes`]).
    pub code: String,
    /// One sentence a person can act on.
    pub message: String,
}

impl Warning {
    /// A warning with a code from [`codes`].
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// The two error categories a request can fail with before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationKind {
    /// A schema or rule violation (mcp-surface.md `invalid_input`).
    InvalidInput,
    /// The prompt or an argv element is over a limit; never truncated (`input_too_large`).
    InputTooLarge,
}

impl ValidationKind {
    /// The `errorCategory` text.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationKind::InvalidInput => "invalid_input",
            ValidationKind::InputTooLarge => "input_too_large",
        }
    }
}

/// Why a request was rejected: the field, the rule, and how to fix it. Starts no process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// `invalid_input` or `input_too_large`.
    pub kind: ValidationKind,
    /// The offending parameter (camelCase, as the caller spelled it), or `argv`.
    pub field: String,
    /// The message shown to the caller; names the field and the rule.
    pub message: String,
    /// What to do about it (the `Fix:` line).
    pub remediation: String,
}

impl ValidationError {
    /// An `invalid_input` error on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            kind: ValidationKind::InvalidInput,
            field: field.to_string(),
            message: message.into(),
            remediation: format!("Correct the `{field}` parameter and call again."),
        }
    }

    /// An `input_too_large` error on `field`.
    pub fn too_large(
        field: &str,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        Self {
            kind: ValidationKind::InputTooLarge,
            field: field.to_string(),
            message: message.into(),
            remediation: remediation.into(),
        }
    }

    /// Replaces the default remediation.
    pub fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = remediation.into();
        self
    }
}

/// The cache-aware prompt of policy.md: stable parts first (system, tools, context), then the
/// task. Identical stable parts give an identical byte prefix, which is what lets the
/// providers' prompt caches hit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptParts {
    /// Stable instructions placed first (part of the cached prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Stable tool descriptions placed after `system` (part of the cached prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
    /// Stable context (documents, code) placed after `tools` (part of the cached prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The task itself, placed last. Required and not blank.
    pub task: String,
    /// Explicit Anthropic cache breakpoints. Accepted and not acted on yet (warning
    /// `cache_control_noop`): Claude Code places its own breakpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// Which stable parts the caller would like marked as cache breakpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CacheControl {
    /// Mark `system` as a breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<bool>,
    /// Mark `tools` as a breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Mark `context` as a breakpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<bool>,
}

/// `approvalStrategy`: who decides whether a request may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStrategy {
    /// The CLI's own permission settings decide (default).
    #[default]
    Legacy,
    /// The gateway scores the request first (policy.md); claude only.
    McpManaged,
}

/// `approvalPolicy`: the threshold for `mcp_managed` approvals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalPolicy {
    /// Threshold 2.
    Strict,
    /// Threshold 5.
    Balanced,
    /// Threshold 7.
    Permissive,
}

/// `outputFormat`: what a sync result carries. The CLI always runs in its structured mode.
///
/// Accepts the older spellings as aliases (`plain` → `text`; `stream-json`, `streaming-json`,
/// `streaming` → `json`), and the JSON Schema lists them too so a strict client may send them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The answer text.
    #[default]
    #[serde(alias = "plain")]
    Text,
    /// The CLI's raw machine output (NDJSON).
    #[serde(alias = "stream-json", alias = "streaming-json", alias = "streaming")]
    Json,
}

impl JsonSchema for OutputFormat {
    fn schema_name() -> Cow<'static, str> {
        "OutputFormat".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": ["text", "json", "plain", "stream-json", "streaming-json", "streaming"],
            "description": "`text` (default): the answer text. `json`: the CLI's raw machine output (NDJSON). Aliases: `plain` = `text`; `stream-json`, `streaming-json`, `streaming` = `json`."
        })
    }
}

/// `worktree`: `true`, or `{name?, ref?}` — run inside a gateway-owned git worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WorktreeParam {
    /// `true` = a worktree with a random name from `HEAD`; `false` = none.
    Enabled(bool),
    /// A named worktree and/or a base ref.
    Spec(WorktreeSpec),
}

/// The `{name?, ref?}` form of `worktree`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorktreeSpec {
    /// `^[A-Za-z0-9._-]{1,64}$`, no leading `.` or `-`, no `..`. Default: random 12 hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Branch, tag or commit to start from. Default `HEAD`.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

/// Permission modes shared by claude and grok (their CLIs accept the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    /// The CLI's default: ask, which headless means deny.
    Default,
    /// Auto-accept file edits.
    AcceptEdits,
    /// Let the CLI's classifier decide.
    Auto,
    /// Skip all permission checks (dangerous; only in a sandbox).
    BypassPermissions,
    /// Deny anything not pre-approved, without asking.
    DontAsk,
    /// Read-only planning.
    Plan,
}

impl PermissionMode {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Auto => "auto",
            PermissionMode::BypassPermissions => "bypassPermissions",
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Plan => "plan",
        }
    }
}

/// Effort levels shared by claude `--effort` and grok `--reasoning-effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    /// Least reasoning.
    Low,
    /// Medium reasoning.
    Medium,
    /// High reasoning.
    High,
    /// Extra-high reasoning.
    Xhigh,
    /// Maximum reasoning.
    Max,
}

impl Effort {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::Xhigh => "xhigh",
            Effort::Max => "max",
        }
    }
}

/// A JSON Schema given either as JSON text or as an object (claude and grok `jsonSchema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum JsonSchemaParam {
    /// JSON text; must parse as a JSON object.
    Text(String),
    /// A JSON Schema object.
    Object(serde_json::Map<String, serde_json::Value>),
}

impl JsonSchemaParam {
    /// The schema as compact JSON text, or an error naming `field` when the text form is not a
    /// JSON object (the CLI would only fail later, after a process start).
    pub fn to_compact_json(&self, field: &str) -> Result<String, ValidationError> {
        match self {
            JsonSchemaParam::Object(map) => Ok(serde_json::Value::Object(map.clone()).to_string()),
            JsonSchemaParam::Text(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => {
                    Ok(serde_json::Value::Object(map).to_string())
                }
                _ => Err(ValidationError::invalid(
                    field,
                    format!("Invalid {field}: must be a JSON object (or its JSON text)"),
                )),
            },
        }
    }
}

/// The common parameters of a request, borrowed from whichever provider struct holds them.
///
/// Provider structs are flat (see the module doc); this view lets the shared validation and
/// the caller (dedup, flight recorder, session resolution) read them without knowing the
/// provider.
#[derive(Debug, Clone, Copy)]
pub struct CommonRef<'a> {
    pub prompt: Option<&'a str>,
    pub prompt_parts: Option<&'a PromptParts>,
    pub model: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// `resumeLatest`, merged with any provider alias (claude `continueSession`).
    pub resume_latest: bool,
    pub create_new_session: bool,
    pub working_dir: Option<&'a str>,
    pub approval_strategy: ApprovalStrategy,
    pub approval_policy: Option<ApprovalPolicy>,
    pub output_format: OutputFormat,
    pub idle_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub force_refresh: bool,
    pub correlation_id: Option<&'a str>,
    pub worktree: Option<&'a WorktreeParam>,
    pub optimize_prompt: bool,
    pub optimize_response: bool,
    pub max_response_chars: Option<u64>,
}

/// What the request asks for about sessions, before the caller resolves it against the
/// store (providers.md "Sessions", rules 1–6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionIntent<'a> {
    /// Rule 1: `createNewSession` — fresh, whatever else was given.
    New,
    /// Rules 2 and 3: a gateway (`gw-…`) or provider-native session id.
    Id(&'a str),
    /// Rule 4: the CLI's own most recent session in the request's cwd.
    Latest,
    /// Rules 5 and 6: the active gateway session if any, else a fresh stateless run.
    Unspecified,
}

impl<'a> CommonRef<'a> {
    /// The session intent; `createNewSession` wins over the other two.
    pub fn session_intent(&self) -> SessionIntent<'a> {
        if self.create_new_session {
            SessionIntent::New
        } else if let Some(id) = self.session_id {
            SessionIntent::Id(id)
        } else if self.resume_latest {
            SessionIntent::Latest
        } else {
            SessionIntent::Unspecified
        }
    }

    /// Whether `sessionId` names a gateway session (`gw-…`) rather than a CLI's own id.
    pub fn is_gateway_session_id(&self) -> bool {
        self.session_id.is_some_and(|id| id.starts_with("gw-"))
    }
}

/// The prompt text the CLI receives, with the cache facts the flight recorder keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssembledPrompt {
    /// Exactly the text the CLI receives.
    pub text: String,
    /// SHA-256 hex of the stable prefix's UTF-8 bytes (`promptParts` only).
    pub stable_prefix_hash: Option<String>,
    /// ceil(stable prefix bytes / 4) (`promptParts` only).
    pub stable_prefix_tokens: Option<u64>,
}

impl AssembledPrompt {
    /// Joins `promptParts` as policy.md says: the non-empty stable parts in the order system,
    /// tools, context joined by a blank line, then a blank line and the task (just the task
    /// when no stable part is given).
    pub fn from_parts(parts: &PromptParts) -> Self {
        let stable: Vec<&str> = [&parts.system, &parts.tools, &parts.context]
            .into_iter()
            .filter_map(|part| part.as_deref())
            .filter(|part| !part.is_empty())
            .collect();
        if stable.is_empty() {
            return Self {
                text: parts.task.clone(),
                stable_prefix_hash: None,
                stable_prefix_tokens: None,
            };
        }
        let prefix = stable.join("\n\n");
        let hash = Sha256::digest(prefix.as_bytes());
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        let tokens = (prefix.len() as u64).div_ceil(4);
        Self {
            text: format!("{prefix}\n\n{}", parts.task),
            stable_prefix_hash: Some(hex),
            stable_prefix_tokens: Some(tokens),
        }
    }

    /// A plain `prompt`.
    pub fn plain(prompt: &str) -> Self {
        Self {
            text: prompt.to_string(),
            stable_prefix_hash: None,
            stable_prefix_tokens: None,
        }
    }
}

/// The result of the shared checks: the prompt to send and the warnings so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCommon {
    pub prompt: AssembledPrompt,
    pub warnings: Vec<Warning>,
}

/// The limits the shared checks need (from config; defaults from config-and-cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `[limits] max_prompt_chars`, in Unicode scalar values.
    pub max_prompt_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_prompt_chars: 100_000,
        }
    }
}

/// Inclusive ranges of mcp-surface.md.
const IDLE_TIMEOUT_MS: (u64, u64) = (1_000, 3_600_000);
const TIMEOUT_MS: (u64, u64) = (1_000, 86_400_000);
const MAX_RESPONSE_CHARS: (u64, u64) = (1_000, 1_000_000);
const MAX_CORRELATION_ID_CHARS: usize = 128;
const MAX_SESSION_ID_CHARS: usize = 256;

/// Runs the checks every provider shares on a whole request.
///
/// `raw` is the request serialised back to JSON: walking it finds a NUL byte in *any* string
/// field (provider-specific ones included) and names its path, with one implementation.
pub fn check_common(
    provider: Provider,
    common: &CommonRef<'_>,
    raw: &serde_json::Value,
    limits: Limits,
) -> Result<CheckedCommon, ValidationError> {
    reject_nul(raw, "")?;
    let mut warnings = Vec::new();

    let prompt = match (common.prompt, common.prompt_parts) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::invalid(
                "prompt",
                "prompt and promptParts are mutually exclusive: give exactly one",
            ));
        }
        (None, None) => {
            return Err(ValidationError::invalid(
                "prompt",
                "one of prompt or promptParts is required",
            ));
        }
        (Some(prompt), None) => {
            if prompt.trim().is_empty() {
                return Err(ValidationError::invalid(
                    "prompt",
                    "Invalid prompt: must not be empty or whitespace-only",
                ));
            }
            AssembledPrompt::plain(prompt)
        }
        (None, Some(parts)) => {
            if parts.task.trim().is_empty() {
                return Err(ValidationError::invalid(
                    "promptParts.task",
                    "Invalid promptParts.task: must not be empty or whitespace-only",
                ));
            }
            if parts.cache_control.is_some() {
                warnings.push(Warning::new(
                    codes::CACHE_CONTROL_NOOP,
                    "promptParts.cacheControl is accepted but not acted on yet: the CLI places its own cache breakpoints",
                ));
            }
            AssembledPrompt::from_parts(parts)
        }
    };
    // Characters = Unicode scalar values, the unit of JSON Schema `maxLength`.
    let chars = prompt.text.chars().count();
    if chars > limits.max_prompt_chars {
        return Err(ValidationError::too_large(
            "prompt",
            format!(
                "prompt is too long: {chars} characters (maximum {})",
                limits.max_prompt_chars
            ),
            "Shorten the prompt (it is never truncated), or raise `[limits] max_prompt_chars` in config.toml.",
        ));
    }

    if let Some(model) = common.model {
        non_empty("model", model)?;
        no_leading_dash("model", model)?;
    }
    if let Some(id) = common.session_id {
        check_session_id("sessionId", id)?;
    }
    if let Some(dir) = common.working_dir {
        non_empty("workingDir", dir)?;
    }
    if let Some(id) = common.correlation_id {
        non_empty("correlationId", id)?;
        let n = id.chars().count();
        if n > MAX_CORRELATION_ID_CHARS {
            return Err(ValidationError::invalid(
                "correlationId",
                format!(
                    "Invalid correlationId: {n} characters (maximum {MAX_CORRELATION_ID_CHARS})"
                ),
            ));
        }
    }
    range_u64("idleTimeoutMs", common.idle_timeout_ms, IDLE_TIMEOUT_MS)?;
    range_u64("timeoutMs", common.timeout_ms, TIMEOUT_MS)?;
    range_u64(
        "maxResponseChars",
        common.max_response_chars,
        MAX_RESPONSE_CHARS,
    )?;
    if let Some(WorktreeParam::Spec(spec)) = common.worktree {
        if let Some(name) = &spec.name {
            check_worktree_name(name)?;
        }
        if let Some(git_ref) = &spec.git_ref {
            non_empty("worktree.ref", git_ref)?;
            no_leading_dash("worktree.ref", git_ref)?;
        }
    }
    if common.approval_strategy == ApprovalStrategy::McpManaged && provider != Provider::Claude {
        return Err(ValidationError::invalid(
            "approvalStrategy",
            format!(
                "approvalStrategy mcp_managed is not available for {provider}: the gateway cannot isolate its ambient MCP configuration"
            ),
        )
        .with_remediation("Omit approvalStrategy (or use `legacy`) for this provider."));
    }

    if common.create_new_session && (common.session_id.is_some() || common.resume_latest) {
        let given = match (common.session_id.is_some(), common.resume_latest) {
            (true, true) => "sessionId and resumeLatest were",
            (true, false) => "sessionId was",
            _ => "resumeLatest was",
        };
        warnings.push(Warning::new(
            codes::SESSION_IGNORED,
            format!(
                "createNewSession is true, so {given} ignored: this run starts a fresh conversation"
            ),
        ));
    }
    if common.optimize_prompt || common.optimize_response {
        warnings.push(Warning::new(
            codes::OPTIMIZE_IGNORED,
            "optimizePrompt/optimizeResponse are accepted for compatibility and ignored: the gateway never rewrites a prompt or an answer",
        ));
    }
    Ok(CheckedCommon { prompt, warnings })
}

/// [`check_common`] on a typed request: serialises it once so the NUL check covers every
/// field, provider-specific ones included.
pub fn check_request<R: Serialize>(
    provider: Provider,
    common: &CommonRef<'_>,
    request: &R,
    limits: Limits,
) -> Result<CheckedCommon, ValidationError> {
    let raw = serde_json::to_value(request)
        .map_err(|e| ValidationError::invalid("request", format!("Invalid request: {e}")))?;
    check_common(provider, common, &raw, limits)
}

/// Rejects a NUL byte in any string of `value` (argv and env cannot carry one), naming the
/// JSON path of the field.
fn reject_nul(value: &serde_json::Value, path: &str) -> Result<(), ValidationError> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => {
            let field = if path.is_empty() { "request" } else { path };
            Err(ValidationError::invalid(
                field,
                format!("Invalid {field}: NUL bytes are not allowed"),
            ))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| reject_nul(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Err(ValidationError::invalid(
                    &child,
                    format!("Invalid {child}: NUL bytes are not allowed"),
                ));
            }
            reject_nul(item, &child)
        }),
        _ => Ok(()),
    }
}

/// `Invalid <field>: values must not start with "-"` — for values that become flag values
/// or positionals (session ids, dirs, tool names, models, agents), so a value can never be
/// read as a flag.
pub fn no_leading_dash(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.starts_with('-') {
        return Err(ValidationError::invalid(
            field,
            format!("Invalid {field}: values must not start with \"-\""),
        ));
    }
    Ok(())
}

/// [`no_leading_dash`] and [`non_empty`] for each element of a list parameter.
pub fn check_list(field: &str, values: &[String]) -> Result<(), ValidationError> {
    values.iter().try_for_each(|value| {
        non_empty(field, value)?;
        no_leading_dash(field, value)
    })
}

/// For lists the CLI receives comma-joined (`--include-directories=a,b`): an element with a
/// comma would silently become two.
pub fn no_comma(field: &str, values: &[String]) -> Result<(), ValidationError> {
    if values.iter().any(|value| value.contains(',')) {
        return Err(ValidationError::invalid(
            field,
            format!(
                "Invalid {field}: values must not contain \",\" (the CLI receives them comma-separated)"
            ),
        ));
    }
    Ok(())
}

/// `Invalid <field>: must not be empty`.
pub fn non_empty(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::invalid(
            field,
            format!("Invalid {field}: must not be empty"),
        ));
    }
    Ok(())
}

/// An inclusive integer range.
pub fn range_u64(
    field: &str,
    value: Option<u64>,
    (min, max): (u64, u64),
) -> Result<(), ValidationError> {
    match value {
        Some(v) if v < min || v > max => Err(ValidationError::invalid(
            field,
            format!("Invalid {field}: {v} is out of range ({min}..={max})"),
        )),
        _ => Ok(()),
    }
}

/// A finite amount strictly above zero (budgets, prices).
pub fn positive_f64(field: &str, value: Option<f64>) -> Result<(), ValidationError> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(ValidationError::invalid(
            field,
            format!("Invalid {field}: {v} must be a number greater than 0"),
        )),
        _ => Ok(()),
    }
}

/// A session id the caller passed: not empty, no whitespace or control characters, no
/// leading `-`, bounded length. Whether it exists is the CLI's (or the store's) business.
pub fn check_session_id(field: &str, id: &str) -> Result<(), ValidationError> {
    non_empty(field, id)?;
    no_leading_dash(field, id)?;
    let n = id.chars().count();
    if n > MAX_SESSION_ID_CHARS || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::invalid(
            field,
            format!(
                "Invalid {field}: a session id has at most {MAX_SESSION_ID_CHARS} characters and no whitespace or control characters"
            ),
        )
        .with_remediation("Pass the sessionId an earlier call returned, or a gateway session id (gw-…) from session_list."));
    }
    Ok(())
}

/// policy.md: `^[A-Za-z0-9._-]{1,64}$`, no leading `.`/`-`, no `..`.
fn check_worktree_name(name: &str) -> Result<(), ValidationError> {
    let charset_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if !charset_ok || name.starts_with('.') || name.starts_with('-') || name.contains("..") {
        return Err(ValidationError::invalid(
            "worktree.name",
            "Invalid worktree.name: 1 to 64 characters from A-Z a-z 0-9 . _ -, not starting with \".\" or \"-\", without \"..\"",
        ));
    }
    Ok(())
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Text => "text",
            OutputFormat::Json => "json",
        })
    }
}

/// Declares a provider's request struct: the common parameters of mcp-surface.md spliced in
/// front of the provider's own fields, with `deny_unknown_fields`, camelCase names, serde and
/// JSON Schema derives, and a `common_fields()` view.
///
/// Parameters that only some providers have (`permissionMode`, `allowedTools`,
/// `disallowedTools`, `addDir`, see the matrix in mcp-surface.md) are declared by the
/// providers that have them, so they are absent from (and rejected by) the others.
macro_rules! provider_request {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $fty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Default, PartialEq,
            serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            /// The task for the CLI. Exactly one of `prompt` or `promptParts`. Not blank; at most
            /// `[limits] max_prompt_chars` characters (default 100 000). Reaches the CLI
            /// byte-exact, never through a shell; NUL is rejected.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1))]
            pub prompt: Option<String>,
            /// Cache-aware prompt `{system?, tools?, context?, task, cacheControl?}`: the stable
            /// parts come first so identical parts across calls share a cached prefix. Exactly
            /// one of `prompt` or `promptParts`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub prompt_parts: Option<$crate::providers::request::PromptParts>,
            /// A model id or alias; `default`/`latest` mean the provider default. Absent = let the
            /// CLI choose. Must not start with "-".
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub model: Option<String>,
            /// The provider's own session id returned by an earlier call (`sessionId` of its
            /// result), or a gateway session id (`gw-…`) from the session tools. Resumes it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub session_id: Option<String>,
            /// Continue the provider's most recent session in the working directory.
            #[serde(default)]
            pub resume_latest: bool,
            /// Start a fresh conversation even if a session is active; wins over `sessionId`
            /// and `resumeLatest` (which are then ignored with warning `session_ignored`).
            #[serde(default)]
            pub create_new_session: bool,
            /// The CLI's working directory (must exist). Default: the session's recorded
            /// directory, else the CLI's stable scratch dir `<data dir>/work/<cli>/`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub working_dir: Option<String>,
            /// `legacy` (default): the CLI's own permission settings decide. `mcp_managed`: the
            /// gateway scores the request first (claude only).
            #[serde(default)]
            pub approval_strategy: $crate::providers::request::ApprovalStrategy,
            /// Overrides the configured approval policy for this request.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub approval_policy: Option<$crate::providers::request::ApprovalPolicy>,
            /// `text` (default): the answer text; `json`: the CLI's raw machine output.
            #[serde(default)]
            pub output_format: $crate::providers::request::OutputFormat,
            /// Kill the run after this long without output, in ms (1 000..=3 600 000).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1000, max = 3600000))]
            pub idle_timeout_ms: Option<u64>,
            /// Wall-clock budget of the run, in ms (1 000..=86 400 000; default 4 h).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1000, max = 86400000))]
            pub timeout_ms: Option<u64>,
            /// Never attach to an identical earlier request (dedup).
            #[serde(default)]
            pub force_refresh: bool,
            /// Trace id (at most 128 characters); generated when absent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = 128))]
            pub correlation_id: Option<String>,
            /// Run inside a gateway-owned git worktree of `workingDir`: `true` or
            /// `{name?, ref?}`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub worktree: Option<$crate::providers::request::WorktreeParam>,
            /// Accepted for compatibility and ignored (warning `optimize_ignored`).
            #[serde(default)]
            pub optimize_prompt: bool,
            /// Accepted for compatibility and ignored (warning `optimize_ignored`).
            #[serde(default)]
            pub optimize_response: bool,
            /// The most answer text a sync result carries (1 000..=1 000 000, default 100 000);
            /// longer answers are cut with `truncated: true` and stay pageable.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1000, max = 1000000))]
            pub max_response_chars: Option<u64>,
            $(
                $(#[$fmeta])*
                pub $field: $fty,
            )*
        }

        impl $name {
            /// The common parameters as a borrowed view (provider aliases not merged; use
            /// `ProviderRequest::common` for that).
            pub fn common_fields(&self) -> $crate::providers::request::CommonRef<'_> {
                $crate::providers::request::CommonRef {
                    prompt: self.prompt.as_deref(),
                    prompt_parts: self.prompt_parts.as_ref(),
                    model: self.model.as_deref(),
                    session_id: self.session_id.as_deref(),
                    resume_latest: self.resume_latest,
                    create_new_session: self.create_new_session,
                    working_dir: self.working_dir.as_deref(),
                    approval_strategy: self.approval_strategy,
                    approval_policy: self.approval_policy,
                    output_format: self.output_format,
                    idle_timeout_ms: self.idle_timeout_ms,
                    timeout_ms: self.timeout_ms,
                    force_refresh: self.force_refresh,
                    correlation_id: self.correlation_id.as_deref(),
                    worktree: self.worktree.as_ref(),
                    optimize_prompt: self.optimize_prompt,
                    optimize_response: self.optimize_response,
                    max_response_chars: self.max_response_chars,
                }
            }
        }
    };
}
pub(crate) use provider_request;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_parts_join_stable_parts_then_task() {
        let parts = PromptParts {
            system: Some("S".into()),
            tools: Some(String::new()),
            context: Some("C".into()),
            task: "T".into(),
            cache_control: None,
        };
        let p = AssembledPrompt::from_parts(&parts);
        assert_eq!(p.text, "S\n\nC\n\nT");
        // sha256("S\n\nC")
        let expected: String = Sha256::digest(b"S\n\nC")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(p.stable_prefix_hash.as_deref(), Some(expected.as_str()));
        assert_eq!(p.stable_prefix_tokens, Some(1));
        let only_task = AssembledPrompt::from_parts(&PromptParts {
            task: "T".into(),
            ..PromptParts::default()
        });
        assert_eq!(only_task.text, "T");
        assert_eq!(only_task.stable_prefix_hash, None);
    }

    #[test]
    fn nul_is_found_anywhere_with_its_path() {
        let raw = serde_json::json!({"prompt": "ok", "addDir": ["a", "b\u{0}"]});
        let err = reject_nul(&raw, "").unwrap_err();
        assert_eq!(err.field, "addDir[1]");
        assert_eq!(err.message, "Invalid addDir[1]: NUL bytes are not allowed");
    }

    #[test]
    fn worktree_names_follow_policy() {
        for ok in ["a", "feature-1", "x.y_z"] {
            assert!(check_worktree_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a..b", "a/b", &"x".repeat(65)] {
            assert!(check_worktree_name(bad).is_err(), "{bad}");
        }
    }
}
