//! Codex (`codex`, tested 0.169.0): the typed request, the exact `codex exec` / `codex exec
//! resume` argv with the prompt on stdin, and the parser of its `--json` JSONL events
//! (providers.md "codex").
//!
//! Owns: codex's parameters and their rules (sandbox mode and the legacy `fullAuto`, the
//! bypass flag, `-c key=value` overrides, the output-schema temp file, the flags `exec
//! resume` lacks), and what codex's events mean (thread id, agent message, running usage
//! totals, `Reconnecting…` noise, failures).
//! Not here: whether `images`/`addDir` exist (the caller checks), the usage baseline lookup.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Provider;
use super::dispatch::ProviderRequest;
use super::invocation::{
    Argv, BuildContext, Invocation, SessionBinding, TempFile, effective_session, env_overrides,
    resolved_model,
};
use super::outcome::{ErrorKind, FinishInput, Parsed, Reported, ReportedUsage, Usage};
use super::progress::json::{str_at, str_path, tool_message, u64_path};
use super::progress::{Activity, EventSink, LineHandler, LineParser, ProgressKind};
use super::request::{
    AssembledPrompt, CommonRef, Limits, ValidationError, Warning, check_list, check_request, codes,
    no_leading_dash, non_empty, provider_request,
};

/// codex's sandbox policies (`--sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Read files only.
    ReadOnly,
    /// Write inside the workspace (and temp dirs).
    WorkspaceWrite,
    /// No sandbox (dangerous).
    DangerFullAccess,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }
}

/// A `configOverrides` value: TOML text (strings are passed as written, so `"\"o3\""` is a
/// TOML string and `high` a literal), or a boolean or number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ConfigValue {
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

impl ConfigValue {
    /// The value part of `-c key=value` (codex parses it as TOML, else takes it literally).
    fn render(&self) -> String {
        match self {
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Integer(i) => i.to_string(),
            // Debug keeps a fractional part (`1.0`), so TOML reads a float, not an integer.
            ConfigValue::Float(f) => format!("{f:?}"),
            ConfigValue::Text(s) => s.clone(),
        }
    }
}

provider_request! {
    /// Parameters of `codex_request`: the common ones plus Codex's own.
    pub struct CodexRequest {
        /// Extra writable directories (`--add-dir`); must exist. New sessions only: dropped with
        /// warning `flag_ignored_on_resume` when resuming.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add_dir: Vec<String>,
        /// Sandbox for model-generated commands: `read-only`, `workspace-write`,
        /// `danger-full-access`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sandbox_mode: Option<SandboxMode>,
        /// Legacy: the same as `sandboxMode: workspace-write` (codex 0.169 has no
        /// `--full-auto`); `sandboxMode` wins when both are given.
        #[serde(default)]
        pub full_auto: bool,
        /// Skip all approvals and the sandbox (only inside an external sandbox). Exclusive with
        /// `sandboxMode`/`fullAuto`.
        #[serde(default)]
        pub dangerously_bypass_approvals_and_sandbox: bool,
        /// Accepted for compatibility and ignored with a warning: `codex exec` rejects
        /// `-a/--ask-for-approval`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ask_for_approval: Option<String>,
        /// A codex config profile (`--profile`, `$CODEX_HOME/<name>.config.toml`). New sessions
        /// only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub profile: Option<String>,
        /// codex config overrides, each emitted as `-c key=value`. Keys match
        /// `^[A-Za-z0-9._-]+$`; values are TOML text (or booleans/numbers) without line breaks.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub config_overrides: BTreeMap<String, ConfigValue>,
        /// JSON Schema the final answer must match (written to a private file for
        /// `--output-schema`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output_schema: Option<serde_json::Map<String, Value>>,
        /// Do not persist the session (`--ephemeral`): it cannot be resumed later.
        #[serde(default)]
        pub ephemeral: bool,
        /// Image files to attach to the prompt (`--image`); must exist.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub images: Vec<String>,
    }
}

/// How the run treats approvals and the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sandbox {
    /// codex's configured default.
    Default,
    Mode(SandboxMode),
    Bypass,
}

struct Plan {
    prompt: AssembledPrompt,
    sandbox: Sandbox,
    warnings: Vec<Warning>,
}

impl CodexRequest {
    fn plan(&self, limits: Limits) -> Result<Plan, ValidationError> {
        let checked = check_request(Provider::Codex, &self.common(), self, limits)?;
        let mut warnings = checked.warnings;
        check_list("addDir", &self.add_dir)?;
        check_list("images", &self.images)?;
        if let Some(profile) = &self.profile {
            non_empty("profile", profile)?;
            no_leading_dash("profile", profile)?;
        }
        for (key, value) in &self.config_overrides {
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            if !key_ok {
                return Err(ValidationError::invalid(
                    "configOverrides",
                    format!(
                        "Invalid configOverrides key \"{key}\": keys must match ^[A-Za-z0-9._-]+$"
                    ),
                ));
            }
            no_leading_dash("configOverrides", key)?;
            if let ConfigValue::Text(text) = value
                && (text.contains('\n') || text.contains('\r'))
            {
                return Err(ValidationError::invalid(
                    "configOverrides",
                    format!(
                        "Invalid configOverrides value for \"{key}\": values must not contain line breaks"
                    ),
                ));
            }
        }
        let sandbox = match (
            self.dangerously_bypass_approvals_and_sandbox,
            self.sandbox_mode,
            self.full_auto,
        ) {
            (true, None, false) => Sandbox::Bypass,
            (true, _, _) => {
                return Err(ValidationError::invalid(
                    "dangerouslyBypassApprovalsAndSandbox",
                    "dangerouslyBypassApprovalsAndSandbox and sandboxMode/fullAuto are mutually exclusive: give one",
                ));
            }
            (false, Some(mode), true) => {
                warnings.push(Warning::new(
                    codes::LEGACY_PARAMETER,
                    format!(
                        "fullAuto is a legacy parameter and sandboxMode {} wins over it",
                        mode.as_str()
                    ),
                ));
                Sandbox::Mode(mode)
            }
            (false, Some(mode), false) => Sandbox::Mode(mode),
            (false, None, true) => {
                warnings.push(Warning::new(
                    codes::LEGACY_PARAMETER,
                    "fullAuto is a legacy parameter (codex 0.169 has no --full-auto): mapped to sandboxMode workspace-write",
                ));
                Sandbox::Mode(SandboxMode::WorkspaceWrite)
            }
            (false, None, false) => Sandbox::Default,
        };
        if self.ask_for_approval.is_some() {
            warnings.push(Warning::new(
                codes::PARAMETER_IGNORED,
                "askForApproval was ignored: codex exec does not accept -a/--ask-for-approval (use sandboxMode)",
            ));
        }
        Ok(Plan {
            prompt: checked.prompt,
            sandbox,
            warnings,
        })
    }
}

impl ProviderRequest for CodexRequest {
    const PROVIDER: Provider = Provider::Codex;

    fn common(&self) -> CommonRef<'_> {
        self.common_fields()
    }

    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        self.plan(limits).map(|plan| plan.warnings)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        let Plan {
            prompt,
            sandbox,
            mut warnings,
        } = self.plan(ctx.limits())?;
        let session = effective_session(self.create_new_session, ctx)?;
        let model = resolved_model(ctx)?;
        let schema_file = self.output_schema.as_ref().map(|schema| {
            TempFile::new(
                &ctx.temp_dir,
                "output-schema.json",
                Value::Object(schema.clone()).to_string(),
            )
        });
        let overrides: Vec<String> = self
            .config_overrides
            .iter()
            .map(|(key, value)| format!("{key}={}", value.render()))
            .collect();

        let mut argv = Argv::new();
        match &session {
            SessionBinding::Fresh => {
                argv.push("exec")
                    .push("--json")
                    .push("--skip-git-repo-check")
                    .opt_value("--model", model);
                match sandbox {
                    Sandbox::Default => {}
                    Sandbox::Mode(mode) => {
                        argv.value("--sandbox", mode.as_str());
                    }
                    Sandbox::Bypass => {
                        argv.push("--dangerously-bypass-approvals-and-sandbox");
                    }
                }
                argv.each_value("--add-dir", &self.add_dir)
                    .opt_value(
                        "--output-schema",
                        schema_file.as_ref().map(|f| f.path.display()),
                    )
                    .opt_value("--profile", self.profile.as_deref());
                for pair in &overrides {
                    argv.push("-c").push(pair);
                }
                argv.flag_if("--ephemeral", self.ephemeral)
                    .each_value("--image", &self.images);
            }
            SessionBinding::Resume(_) | SessionBinding::ResumeLatest => {
                // `exec resume` has no -s, -C, --add-dir, -p/--profile, --approve-for-me, --oss,
                // --local-provider or --color: the sandbox goes through -c, the others are dropped.
                for (field, given) in [
                    ("addDir", !self.add_dir.is_empty()),
                    ("profile", self.profile.is_some()),
                ] {
                    if given {
                        warnings.push(Warning::new(
                            codes::FLAG_IGNORED_ON_RESUME,
                            format!("{field} was ignored: codex exec resume has no such flag (it applies to new sessions only)"),
                        ));
                    }
                }
                argv.push("exec")
                    .push("resume")
                    .push("--json")
                    .push("--skip-git-repo-check")
                    .opt_value("--model", model);
                if let Sandbox::Mode(mode) = sandbox {
                    argv.push("-c")
                        .push(format!("sandbox_mode=\"{}\"", mode.as_str()));
                }
                for pair in &overrides {
                    argv.push("-c").push(pair);
                }
                argv.opt_value(
                    "--output-schema",
                    schema_file.as_ref().map(|f| f.path.display()),
                )
                .flag_if("--ephemeral", self.ephemeral)
                .each_value("--image", &self.images)
                .flag_if(
                    "--dangerously-bypass-approvals-and-sandbox",
                    sandbox == Sandbox::Bypass,
                );
                match &session {
                    SessionBinding::Resume(id) => argv.push(id.as_str()),
                    _ => argv.push("--last"),
                };
            }
        }
        // `-` tells codex to read the prompt from stdin, which is closed after it (codex waits
        // for EOF).
        argv.push("--").push("-");

        Ok(Invocation {
            program: ctx.program.clone(),
            argv: argv.finish()?,
            env_overrides: env_overrides(&[], ctx),
            stdin: Some(prompt.text.clone().into_bytes()),
            cwd: ctx.cwd.clone(),
            temp_files: schema_file.into_iter().collect(),
            result_file: None,
            prompt,
            warnings,
        })
    }
}

/// A parser for one codex run.
pub fn parser() -> LineParser<CodexHandler> {
    LineParser::new(CodexHandler::default())
}

/// Reads `codex exec --json` events (and the plain text of non-JSON mode).
#[derive(Debug, Default)]
pub struct CodexHandler {
    thread_id: Option<String>,
    last_message: Option<String>,
    /// `turn.completed.usage`: a running total for the thread.
    usage: Option<Value>,
    turn_failed: Option<String>,
    /// The last `error` event that was not a reconnect notice; cleared by a completed turn.
    last_error: Option<String>,
    last_reconnect: Option<String>,
    warnings: Vec<Warning>,
}

/// codex prints these while retrying a connection: not progress.
fn is_reconnect(message: &str) -> bool {
    message.starts_with("Reconnecting")
}

impl CodexHandler {
    fn item(&mut self, value: &Value, started: bool, sink: &mut EventSink) {
        let Some(item) = value.get("item") else {
            return;
        };
        match str_at(item, "type") {
            Some("agent_message") if !started => {
                if let Some(text) = str_at(item, "text") {
                    self.last_message = Some(text.to_string());
                }
                sink.push(ProgressKind::Writing, "writing the answer");
            }
            Some("command_execution") if started => sink.push(
                ProgressKind::Tool,
                tool_message("shell", item.get("command")),
            ),
            Some("mcp_tool_call") if started => {
                let name = match (str_at(item, "server"), str_at(item, "tool")) {
                    (Some(server), Some(tool)) => format!("{server}.{tool}"),
                    (_, Some(tool)) => tool.to_string(),
                    _ => "mcp tool".to_string(),
                };
                sink.push(
                    ProgressKind::Tool,
                    tool_message(&name, item.get("arguments")),
                );
            }
            Some("web_search") if started => sink.push(
                ProgressKind::Tool,
                tool_message("web_search", item.get("query")),
            ),
            Some("file_change") if !started => {
                for change in item
                    .get("changes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(path) = str_at(change, "path") {
                        sink.push(ProgressKind::File, path);
                    }
                }
            }
            Some("reasoning") if !started => sink.push(
                ProgressKind::Thinking,
                str_at(item, "text").unwrap_or("reasoning"),
            ),
            Some("todo_list") => {
                let items = item.get("items").and_then(Value::as_array);
                let done = items
                    .into_iter()
                    .flatten()
                    .filter(|i| i.get("completed").and_then(Value::as_bool) == Some(true))
                    .count();
                let total = items.map_or(0, Vec::len);
                sink.push(
                    ProgressKind::Thinking,
                    format!("plan: {done}/{total} steps done"),
                );
            }
            Some("error") if !started => {
                // A non-fatal notice (e.g. missing model metadata); the run goes on.
                if let Some(message) = str_at(item, "message") {
                    self.warnings
                        .push(Warning::new(codes::CLI_WARNING, message));
                }
            }
            _ => {}
        }
    }
}

/// The running totals of a `turn.completed.usage` object, normalised: `input_tokens` includes
/// the cached ones, so uncached input = input − cached.
fn running_usage(usage: &Value) -> Usage {
    let input = u64_path(usage, &["input_tokens"]);
    let cached = u64_path(usage, &["cached_input_tokens"]);
    Usage {
        input_tokens: input.map(|i| i.saturating_sub(cached.unwrap_or(0))),
        output_tokens: u64_path(usage, &["output_tokens"]),
        cache_read_tokens: cached,
        cache_creation_tokens: u64_path(usage, &["cache_write_input_tokens"]),
        reasoning_tokens: u64_path(usage, &["reasoning_output_tokens"]),
        cost_usd: None,
    }
}

impl LineHandler for CodexHandler {
    fn provider(&self) -> Provider {
        Provider::Codex
    }

    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity {
        let value = &value;
        match str_at(value, "type") {
            Some("thread.started") => {
                self.thread_id = str_at(value, "thread_id").map(str::to_string);
                sink.push(
                    ProgressKind::Started,
                    format!("thread {}", self.thread_id.as_deref().unwrap_or("?")),
                );
            }
            Some("turn.started") => sink.push(ProgressKind::Thinking, "turn started"),
            Some("item.started") => self.item(value, true, sink),
            Some("item.updated") => {}
            Some("item.completed") => self.item(value, false, sink),
            Some("turn.completed") => {
                if let Some(usage) = value.get("usage") {
                    let u = running_usage(usage);
                    sink.push(
                        ProgressKind::Usage,
                        format!(
                            "{} input (+{} cached), {} output tokens in this thread",
                            u.input_tokens.unwrap_or(0),
                            u.cache_read_tokens.unwrap_or(0),
                            u.output_tokens.unwrap_or(0)
                        ),
                    );
                    self.usage = Some(usage.clone());
                }
                self.last_error = None;
                sink.push(ProgressKind::Finished, "turn completed");
            }
            Some("turn.failed") => {
                let message = str_path(value, &["error", "message"]).unwrap_or("turn failed");
                self.turn_failed = Some(message.to_string());
                sink.push(ProgressKind::Finished, format!("turn failed: {message}"));
            }
            Some("error") => {
                let message = str_at(value, "message").unwrap_or("error");
                if is_reconnect(message) {
                    self.last_reconnect = Some(message.to_string());
                    return Activity::Noise;
                }
                self.last_error = Some(message.to_string());
            }
            _ => {}
        }
        Activity::Active
    }

    fn finish(&mut self, input: &FinishInput<'_>, plain: &str, _sink: &mut EventSink) -> Parsed {
        let failure = self
            .turn_failed
            .clone()
            .or_else(|| self.last_error.clone())
            // Killed or exited while still retrying: the retry notice says why (often a 401).
            .or_else(|| {
                (input.exit_code != Some(0))
                    .then(|| self.last_reconnect.clone())
                    .flatten()
            })
            .map(|message| Reported {
                kind: None,
                message,
            });
        Parsed {
            text: self
                .last_message
                .clone()
                .unwrap_or_else(|| plain.to_string()),
            session_id: self.thread_id.clone(),
            model: None,
            usage: ReportedUsage {
                per_invocation: Usage::default(),
                running: self.usage.as_ref().map(running_usage).unwrap_or_default(),
            },
            stop_reason: None,
            num_turns: None,
            failure,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn session_id(&self) -> Option<&str> {
        self.thread_id.as_deref()
    }

    fn classify(&self, text: &str, _exit_code: Option<i32>) -> Option<ErrorKind> {
        const RULES: [(&str, ErrorKind); 9] = [
            ("unexpected argument", ErrorKind::BadFlag),
            ("no rollout found", ErrorKind::UnknownSession),
            ("thread/resume failed", ErrorKind::UnknownSession),
            ("Not inside a trusted directory", ErrorKind::UntrustedFolder),
            ("input_too_large", ErrorKind::InputTooLarge),
            ("Input exceeds the maximum length", ErrorKind::InputTooLarge),
            ("401 Unauthorized", ErrorKind::InvalidCredentials),
            ("model_not_found", ErrorKind::UnknownModel),
            ("The requested model", ErrorKind::UnknownModel),
        ];
        RULES
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map(|&(_, kind)| kind)
    }
}
