//! Claude Code (`claude`, tested 2.1.329): the typed request, the exact argv/env/stdin of a
//! run, and the parser of its `stream-json` output (providers.md "claude").
//!
//! Owns: claude's parameters and their rules (permission mode and the legacy
//! `dangerouslySkipPermissions`, `systemPrompt` xor `appendSystemPrompt`, MCP config file,
//! `IS_SANDBOX` as root), and what claude's output means (result line, assistant blocks,
//! permission denials, auth/model/flag/session failures).
//! Not here: approval scoring for `mcp_managed` (the caller rewrites the request and sets
//! `BuildContext::pin_permission_mode`), the existence of `addDir`s, model aliases.

use serde_json::Value;

use super::Provider;
use super::dispatch::ProviderRequest;
use super::invocation::{
    Argv, BuildContext, Invocation, SessionBinding, TempFile, effective_session, env_overrides,
    is_large_prompt, resolved_model,
};
use super::outcome::{ErrorKind, FinishInput, Parsed, Reported, ReportedUsage, Usage};
use super::progress::json::{f64_path, str_at, str_path, tool_message, u64_path};
use super::progress::{Activity, EventSink, LineHandler, LineParser, ProgressKind};
use super::request::{
    AssembledPrompt, CommonRef, Effort, JsonSchemaParam, Limits, PermissionMode, ValidationError,
    Warning, check_list, check_request, codes, no_leading_dash, non_empty, positive_f64,
    provider_request, range_u64,
};

provider_request! {
    /// Parameters of `claude_request`: the common ones plus Claude Code's own.
    pub struct ClaudeRequest {
        /// Alias of `resumeLatest` (the older name): continue the most recent conversation.
        #[serde(default)]
        pub continue_session: bool,
        /// How claude handles tool approvals headless: `default` (ask = deny; emits no flag),
        /// `acceptEdits`, `auto`, `bypassPermissions`, `dontAsk`, `plan`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub permission_mode: Option<PermissionMode>,
        /// Legacy: the same as `permissionMode: bypassPermissions` (`permissionMode` wins when
        /// both are given).
        #[serde(default)]
        pub dangerously_skip_permissions: bool,
        /// Tools claude may use without asking (`--allowed-tools`), e.g. `Read`, `Bash(git *)`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allowed_tools: Option<Vec<String>>,
        /// Tools claude must not use (`--disallowed-tools`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disallowed_tools: Option<Vec<String>>,
        /// Extra directories claude may read and write (`--add-dir`); must exist.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add_dir: Vec<String>,
        /// Names of MCP servers from `[mcp_servers.<name>]` in config.toml to give claude
        /// (written to a private `--mcp-config` file for this run).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub mcp_servers: Vec<String>,
        /// Let claude see only the `mcpServers` given here (`--strict-mcp-config`); an unknown
        /// name is then an error instead of a warning.
        #[serde(default)]
        pub strict_mcp_config: bool,
        /// Replace claude's system prompt. Exclusive with `appendSystemPrompt`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub system_prompt: Option<String>,
        /// Append to claude's system prompt. Exclusive with `systemPrompt`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub append_system_prompt: Option<String>,
        /// Stop after this many agent turns (at least 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub max_turns: Option<u32>,
        /// Stop once this many US dollars are spent (greater than 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_budget_usd: Option<f64>,
        /// Effort level: `low`, `medium`, `high`, `xhigh`, `max`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub effort: Option<Effort>,
        /// Model(s) to fall back to when the main one is busy (comma-separated, in order).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fallback_model: Option<String>,
        /// JSON Schema the final answer must match (object, or its JSON text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub json_schema: Option<JsonSchemaParam>,
        /// When resuming, continue in a new session id instead of the original (`--fork-session`).
        #[serde(default)]
        pub fork_session: bool,
    }
}

/// What `validate` and `build` share: the checked prompt and the request's decisions.
struct Plan {
    prompt: AssembledPrompt,
    permission_mode: Option<PermissionMode>,
    json_schema: Option<String>,
    warnings: Vec<Warning>,
}

impl ClaudeRequest {
    fn plan(&self, limits: Limits) -> Result<Plan, ValidationError> {
        let checked = check_request(Provider::Claude, &self.common(), self, limits)?;
        let mut warnings = checked.warnings;
        for (field, list) in [
            ("allowedTools", self.allowed_tools.as_deref()),
            ("disallowedTools", self.disallowed_tools.as_deref()),
            ("addDir", Some(self.add_dir.as_slice())),
            ("mcpServers", Some(self.mcp_servers.as_slice())),
        ] {
            check_list(field, list.unwrap_or_default())?;
        }
        if self.system_prompt.is_some() && self.append_system_prompt.is_some() {
            return Err(ValidationError::invalid(
                "systemPrompt",
                "systemPrompt and appendSystemPrompt are mutually exclusive: give one",
            ));
        }
        range_u64(
            "maxTurns",
            self.max_turns.map(u64::from),
            (1, u64::from(u32::MAX)),
        )?;
        positive_f64("maxBudgetUsd", self.max_budget_usd)?;
        if let Some(model) = &self.fallback_model {
            non_empty("fallbackModel", model)?;
            no_leading_dash("fallbackModel", model)?;
        }
        let json_schema = self
            .json_schema
            .as_ref()
            .map(|schema| schema.to_compact_json("jsonSchema"))
            .transpose()?;
        let permission_mode = match (self.permission_mode, self.dangerously_skip_permissions) {
            (Some(mode), true) => {
                warnings.push(Warning::new(
                    codes::LEGACY_PARAMETER,
                    format!(
                        "dangerouslySkipPermissions is a legacy parameter and permissionMode {} wins over it",
                        mode.as_str()
                    ),
                ));
                Some(mode)
            }
            (None, true) => {
                warnings.push(Warning::new(
                    codes::LEGACY_PARAMETER,
                    "dangerouslySkipPermissions is a legacy parameter: mapped to permissionMode bypassPermissions",
                ));
                Some(PermissionMode::BypassPermissions)
            }
            (mode, false) => mode,
        };
        Ok(Plan {
            prompt: checked.prompt,
            permission_mode,
            json_schema,
            warnings,
        })
    }
}

impl ProviderRequest for ClaudeRequest {
    const PROVIDER: Provider = Provider::Claude;

    fn common(&self) -> CommonRef<'_> {
        let mut common = self.common_fields();
        common.resume_latest |= self.continue_session;
        common
    }

    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        self.plan(limits).map(|plan| plan.warnings)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        let Plan {
            prompt,
            permission_mode,
            json_schema,
            mut warnings,
        } = self.plan(ctx.limits())?;
        let session = effective_session(self.create_new_session, ctx)?;
        let mut temp_files = Vec::new();

        let mut argv = Argv::new();
        // stream-json needs --verbose; partial messages stream text deltas so a long answer is
        // not mistaken for an idle CLI.
        argv.push("-p")
            .value("--output-format", "stream-json")
            .push("--verbose")
            .push("--include-partial-messages")
            .opt_value("--model", resolved_model(ctx)?);
        if let Some(mode) = permission_mode
            && (mode != PermissionMode::Default || ctx.pin_permission_mode)
        {
            argv.value("--permission-mode", mode.as_str());
        }
        argv.variadic(
            "--allowed-tools",
            self.allowed_tools.as_deref().unwrap_or_default(),
        )
        .variadic(
            "--disallowed-tools",
            self.disallowed_tools.as_deref().unwrap_or_default(),
        );
        if let Some(file) = self.mcp_config(ctx, &mut warnings)? {
            argv.value("--mcp-config", file.path.display())
                .flag_if("--strict-mcp-config", self.strict_mcp_config);
            temp_files.push(file);
        }
        for dir in &self.add_dir {
            argv.push("--add-dir").push(dir);
        }
        argv.opt_value("--system-prompt", self.system_prompt.as_deref())
            .opt_value(
                "--append-system-prompt",
                self.append_system_prompt.as_deref(),
            )
            .opt_value("--max-turns", self.max_turns)
            .opt_value("--max-budget-usd", self.max_budget_usd)
            .opt_value("--effort", self.effort.map(Effort::as_str))
            .opt_value("--fallback-model", self.fallback_model.as_deref())
            .opt_value("--json-schema", json_schema.as_deref())
            .resume(&session, "--continue");
        if self.fork_session {
            if session == SessionBinding::Fresh {
                warnings.push(Warning::new(
                    codes::PARAMETER_IGNORED,
                    "forkSession was ignored: this run starts a fresh session, so there is nothing to fork",
                ));
            } else {
                argv.push("--fork-session");
            }
        }
        // A large prompt goes on stdin (no positional); claude reads it when -p has no prompt.
        let stdin = if is_large_prompt(&prompt.text) {
            Some(prompt.text.clone().into_bytes())
        } else {
            argv.push("--").push(prompt.text.as_str());
            None
        };

        let mut documented = vec![("DISABLE_AUTOUPDATER", "1")];
        if permission_mode == Some(PermissionMode::BypassPermissions)
            && ctx.is_root
            && ctx.root_bypass_sets_is_sandbox
        {
            // claude refuses bypass as root unless it believes it is in a sandbox.
            documented.push(("IS_SANDBOX", "1"));
            warnings.push(Warning::new(
                codes::IS_SANDBOX_SET,
                "The gateway runs as root and bypassPermissions was requested: IS_SANDBOX=1 was set so claude accepts it (disable with [providers.claude] root_bypass_sets_is_sandbox = false)",
            ));
        }

        Ok(Invocation {
            program: ctx.program.clone(),
            argv: argv.finish()?,
            env_overrides: env_overrides(&documented, ctx),
            stdin,
            cwd: ctx.cwd.clone(),
            temp_files,
            result_file: None,
            prompt,
            warnings,
        })
    }
}

/// Which requested MCP servers a run gets (`structuredContent.mcpServers`, policy.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct McpServerReport {
    pub requested: Vec<String>,
    /// Defined in config.toml: written to the run's `--mcp-config` file.
    pub enabled: Vec<String>,
    /// Not defined: an error under `strictMcpConfig`, else skipped with a warning.
    pub missing: Vec<String>,
}

impl ClaudeRequest {
    /// The requested MCP servers split by whether config.toml defines them.
    pub fn mcp_server_report(&self, ctx: &BuildContext) -> McpServerReport {
        let (enabled, missing) = self
            .mcp_servers
            .iter()
            .cloned()
            .partition(|name| ctx.mcp_servers.contains_key(name));
        McpServerReport {
            requested: self.mcp_servers.clone(),
            enabled,
            missing,
        }
    }

    /// The `--mcp-config` file: the requested servers that config.toml defines. Under
    /// `strictMcpConfig` the file is written even when empty, so claude sees no other server.
    fn mcp_config(
        &self,
        ctx: &BuildContext,
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<TempFile>, ValidationError> {
        let report = self.mcp_server_report(ctx);
        if let Some(name) = report.missing.first()
            && self.strict_mcp_config
        {
            return Err(ValidationError::invalid(
                "mcpServers",
                format!("Unknown MCP server \"{name}\" (mcpServers): not defined in [mcp_servers] of config.toml"),
            )
            .with_remediation("Use a server name from [mcp_servers] in config.toml, or add it there."));
        }
        for name in &report.missing {
            warnings.push(Warning::new(
                codes::MCP_SERVER_UNKNOWN,
                format!("MCP server \"{name}\" is not defined in [mcp_servers] of config.toml and was skipped"),
            ));
        }
        if report.enabled.is_empty() && !self.strict_mcp_config {
            return Ok(None);
        }
        let servers: serde_json::Map<String, Value> = report
            .enabled
            .iter()
            .filter_map(|name| {
                let spec = serde_json::to_value(ctx.mcp_servers.get(name)?).ok()?;
                Some((name.clone(), spec))
            })
            .collect();
        let body = serde_json::json!({ "mcpServers": servers }).to_string();
        Ok(Some(TempFile::new(&ctx.temp_dir, "mcp-config.json", body)))
    }
}

/// A parser for one claude run.
pub fn parser() -> LineParser<ClaudeHandler> {
    LineParser::new(ClaudeHandler::default())
}

/// Reads claude's `stream-json` (and `json`/text) output.
#[derive(Debug, Default)]
pub struct ClaudeHandler {
    session_id: Option<String>,
    model: Option<String>,
    /// The last `type:"result"` line.
    result: Option<Value>,
    /// Text blocks of the last assistant message (the answer when no result line arrives).
    last_message_id: Option<String>,
    last_message_text: Vec<String>,
    /// Tools claude refused (system/permission_denied), for the warning.
    denied: Vec<String>,
}

/// claude tools that change files, whose `file_path` is worth a `file` event.
const FILE_TOOLS: [&str; 4] = ["Edit", "Write", "MultiEdit", "NotebookEdit"];

impl ClaudeHandler {
    fn assistant(&mut self, value: &Value, sink: &mut EventSink) {
        let Some(message) = value.get("message") else {
            return;
        };
        let id = str_at(message, "id").map(str::to_string);
        // With partial messages claude sends one `assistant` line per content block of the same
        // message: keep accumulating until the id changes.
        if id.is_none() || id != self.last_message_id {
            self.last_message_id = id;
            self.last_message_text.clear();
        }
        if self.model.is_none() {
            self.model = str_at(message, "model")
                .filter(|m| !m.starts_with('<'))
                .map(str::to_string);
        }
        for block in message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match str_at(block, "type") {
                Some("text") => {
                    if let Some(text) = str_at(block, "text") {
                        self.last_message_text.push(text.to_string());
                        sink.push(ProgressKind::Writing, "writing the answer");
                    }
                }
                Some("thinking") | Some("redacted_thinking") => {
                    sink.push(ProgressKind::Thinking, "thinking");
                }
                Some("tool_use") => {
                    let name = str_at(block, "name").unwrap_or("tool");
                    let input = block.get("input");
                    sink.push(ProgressKind::Tool, tool_message(name, input));
                    if FILE_TOOLS.contains(&name)
                        && let Some(path) = input
                            .and_then(|i| str_at(i, "file_path").or(str_at(i, "notebook_path")))
                    {
                        sink.push(ProgressKind::File, path);
                    }
                }
                _ => {}
            }
        }
    }

    fn stream_event(value: &Value, sink: &mut EventSink) {
        let Some(event) = value.get("event") else {
            return;
        };
        match str_at(event, "type") {
            Some("content_block_start") => match str_path(event, &["content_block", "type"]) {
                Some("thinking") => sink.push(ProgressKind::Thinking, "thinking"),
                Some("text") => sink.push(ProgressKind::Writing, "writing the answer"),
                Some("tool_use") => sink.push(
                    ProgressKind::Tool,
                    str_path(event, &["content_block", "name"]).unwrap_or("tool"),
                ),
                _ => {}
            },
            Some("content_block_delta") => match str_path(event, &["delta", "type"]) {
                Some("text_delta") => sink.push(ProgressKind::Writing, "writing the answer"),
                Some("thinking_delta") => sink.push(ProgressKind::Thinking, "thinking"),
                _ => {}
            },
            _ => {}
        }
    }

    fn result_line(value: &Value, sink: &mut EventSink) {
        let usage = usage_of(value);
        if let (Some(input), Some(output)) = (usage.input_tokens, usage.output_tokens) {
            sink.push(
                ProgressKind::Usage,
                format!(
                    "{input} input (+{} cached), {output} output tokens",
                    usage.cache_read_tokens.unwrap_or(0)
                ),
            );
        }
        let subtype = str_at(value, "subtype").unwrap_or("result");
        let turns =
            u64_path(value, &["num_turns"]).map_or_else(String::new, |n| format!(", {n} turns"));
        sink.push(ProgressKind::Finished, format!("{subtype}{turns}"));
    }
}

/// The per-invocation token figures of a result line (claude reports tokens per call and
/// only cost as a session running total).
fn usage_of(result: &Value) -> Usage {
    Usage {
        input_tokens: u64_path(result, &["usage", "input_tokens"]),
        output_tokens: u64_path(result, &["usage", "output_tokens"]),
        cache_read_tokens: u64_path(result, &["usage", "cache_read_input_tokens"]),
        cache_creation_tokens: u64_path(result, &["usage", "cache_creation_input_tokens"]),
        reasoning_tokens: u64_path(
            result,
            &["usage", "output_tokens_details", "thinking_tokens"],
        ),
        cost_usd: None,
    }
}

impl LineHandler for ClaudeHandler {
    fn provider(&self) -> Provider {
        Provider::Claude
    }

    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity {
        if self.session_id.is_none() {
            self.session_id = str_at(&value, "session_id").map(str::to_string);
        }
        if str_at(&value, "type") == Some("result") {
            Self::result_line(&value, sink);
            // Moved, not cloned: the result line carries the whole answer (20 MB and more),
            // which must not exist twice.
            self.result = Some(value);
            return Activity::Active;
        }
        let value = &value;
        match str_at(value, "type") {
            Some("system") => match str_at(value, "subtype") {
                Some("init") => {
                    self.session_id = str_at(value, "session_id").map(str::to_string);
                    self.model = str_at(value, "model").map(str::to_string);
                    sink.push(
                        ProgressKind::Started,
                        format!(
                            "session {} (model {})",
                            self.session_id.as_deref().unwrap_or("?"),
                            self.model.as_deref().unwrap_or("?")
                        ),
                    );
                }
                Some("status") if str_at(value, "status") == Some("requesting") => {
                    sink.push(ProgressKind::Thinking, "waiting for the model");
                }
                Some("permission_denied") => {
                    let tool = str_at(value, "tool_name").unwrap_or("tool");
                    self.denied.push(tool.to_string());
                    sink.push(
                        ProgressKind::Tool,
                        format!("denied {tool}: {}", str_at(value, "message").unwrap_or("")),
                    );
                }
                _ => {}
            },
            Some("assistant") => self.assistant(value, sink),
            Some("stream_event") => Self::stream_event(value, sink),
            _ => {}
        }
        Activity::Active
    }

    // `document` is the default: claude's `json` mode is one line, but a pretty-printed
    // result is read the same way.

    fn finish(&mut self, input: &FinishInput<'_>, plain: &str, _sink: &mut EventSink) -> Parsed {
        let mut parsed = Parsed {
            session_id: self.session_id.clone(),
            model: self.model.clone(),
            ..Parsed::default()
        };
        let Some(mut result) = self.result.take() else {
            parsed.text = if self.last_message_text.is_empty() {
                plain.to_string()
            } else {
                self.last_message_text.join("\n")
            };
            // Without a result line (text mode, or a crash) claude prints its error on stdout.
            if input.exit_code != Some(0) && !plain.trim().is_empty() {
                parsed.failure = Some(Reported {
                    kind: None,
                    message: plain.trim().to_string(),
                });
            }
            return parsed;
        };
        // Taken out of the line's value, not copied (see `json_line`).
        parsed.text = match result.get_mut("result").map(Value::take) {
            Some(Value::String(text)) => text,
            _ => String::new(),
        };
        let result = &result;
        if let Some(id) = str_at(result, "session_id") {
            parsed.session_id = Some(id.to_string());
        }
        parsed.usage = ReportedUsage {
            per_invocation: usage_of(result),
            // total_cost_usd is a running total for the session (see resume fixtures).
            running: Usage {
                cost_usd: f64_path(result, &["total_cost_usd"]),
                ..Usage::default()
            },
        };
        parsed.stop_reason = str_at(result, "stop_reason").map(str::to_string);
        parsed.num_turns = u64_path(result, &["num_turns"]);
        let errors = result
            .get("errors")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|s| !s.is_empty());
        let subtype = str_at(result, "subtype").unwrap_or("success");
        let is_error = result
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        parsed.failure = match subtype {
            "error_max_turns" => Some(Reported {
                kind: Some(ErrorKind::TurnLimit),
                message: errors
                    .unwrap_or_else(|| "claude reached the maximum number of turns".into()),
            }),
            "error_max_budget_usd" => Some(Reported {
                kind: Some(ErrorKind::BudgetLimit),
                message: errors.unwrap_or_else(|| "claude reached the maximum budget".into()),
            }),
            other if other.starts_with("error") || is_error => Some(Reported {
                // Auth and API errors arrive as subtype success + is_error; the HTTP status,
                // when present, says which.
                kind: match u64_path(result, &["api_error_status"]) {
                    Some(401) | Some(403) => Some(ErrorKind::InvalidCredentials),
                    Some(404) => Some(ErrorKind::UnknownModel),
                    Some(_) => Some(ErrorKind::ApiError),
                    None => None,
                },
                message: Some(parsed.text.clone())
                    .filter(|t| !t.trim().is_empty())
                    .or(errors)
                    .unwrap_or_else(|| format!("claude reported an error ({other})")),
            }),
            _ => None,
        };
        let denials = result
            .get("permission_denials")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|d| str_at(d, "tool_name"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let denied = if denials.is_empty() {
            &self.denied
        } else {
            &denials
        };
        if !denied.is_empty() {
            parsed.warnings.push(Warning::new(
                codes::PERMISSION_DENIED,
                format!(
                    "claude denied {} tool call(s) ({}) for lack of permission in headless mode: pass permissionMode acceptEdits (or bypassPermissions in a sandbox), or allowedTools",
                    denied.len(),
                    denied.join(", ")
                ),
            ));
        }
        parsed
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    fn classify(&self, text: &str, _exit_code: Option<i32>) -> Option<ErrorKind> {
        const RULES: [(&str, ErrorKind); 12] = [
            (
                "cannot be used with root/sudo privileges",
                ErrorKind::RootBypassRefused,
            ),
            (
                "No conversation found with session ID",
                ErrorKind::UnknownSession,
            ),
            ("is already in use", ErrorKind::SessionIdInUse),
            ("Invalid session ID", ErrorKind::InvalidSessionId),
            ("error: unknown option", ErrorKind::BadFlag),
            ("is invalid. Allowed choices", ErrorKind::BadFlag),
            ("requires --verbose", ErrorKind::BadFlag),
            ("Not logged in", ErrorKind::NotAuthenticated),
            ("Invalid API key", ErrorKind::InvalidCredentials),
            ("issue with the selected model", ErrorKind::UnknownModel),
            ("Reached maximum budget", ErrorKind::BudgetLimit),
            ("Reached maximum number of turns", ErrorKind::TurnLimit),
        ];
        RULES
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map(|&(_, kind)| kind)
    }
}
