//! Grok (`grok`, the official xAI CLI `@xai-official/grok`, tested 1.0.41): the typed request,
//! the exact argv (prompt in `--single=` or a prompt file), and the parser of its
//! `streaming-json` NDJSON, its `json` object and its `streaming-messages-json` lines
//! (providers.md "grok").
//!
//! Owns: grok's parameters and their rules (`alwaysApprove` over `permissionMode`, `effort`
//! as an alias of `reasoningEffort`, `jsonSchema` switching to `--output-format=json`), and
//! what grok's output means (`end` with session id, stop reason and usage; `stopReason`
//! other than `end_turn` is not success; session-restore failures are unknown sessions, not
//! auth errors; the old community `grok` is recognised).
//! Not here: update checks beyond `--no-auto-update` (grok reads no stdin; nothing else is
//! needed).

use serde_json::Value;

use super::Provider;
use super::dispatch::ProviderRequest;
use super::invocation::{
    Argv, BuildContext, Invocation, effective_session, env_overrides, resolved_model,
};
use super::outcome::{ErrorKind, FinishInput, Parsed, Reported, ReportedUsage, Usage};
use super::progress::json::{f64_path, str_at, str_path, tool_message, u64_path};
use super::progress::{Activity, EventSink, LineHandler, LineParser, ProgressKind};
use super::request::{
    AssembledPrompt, CommonRef, Effort, JsonSchemaParam, Limits, PermissionMode, ValidationError,
    Warning, check_list, check_request, codes, no_comma, no_leading_dash, non_empty,
    provider_request, range_u64,
};

provider_request! {
    /// Parameters of `grok_request`: the common ones plus Grok's own.
    pub struct GrokRequest {
        /// Auto-approve every tool call (`--always-approve`); wins over `permissionMode`.
        #[serde(default)]
        pub always_approve: bool,
        /// Permission mode: `default`, `acceptEdits`, `auto`, `dontAsk`, `bypassPermissions`,
        /// `plan`. In headless mode a tool needing approval ends the run (`stopReason:
        /// cancelled`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub permission_mode: Option<PermissionMode>,
        /// Reasoning effort: `low`, `medium`, `high`, `xhigh`, `max`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reasoning_effort: Option<Effort>,
        /// Alias of `reasoningEffort` (grok's `--effort` is the same flag).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub effort: Option<Effort>,
        /// Built-in tools to allow (`--tools`, comma-separated; no commas in names).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allowed_tools: Option<Vec<String>>,
        /// Built-in tools to remove (`--disallowed-tools`, comma-separated).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disallowed_tools: Option<Vec<String>>,
        /// Permission allow rules (`--allow`, one per rule).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub allow: Vec<String>,
        /// Permission deny rules (`--deny`, one per rule).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub deny: Vec<String>,
        /// Maximum agent turns (1..=10 000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 10000))]
        pub max_turns: Option<u32>,
        /// Sandbox profile name (`--sandbox`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sandbox: Option<String>,
        /// JSON Schema the answer must match (object, or its JSON text). grok then prints one
        /// JSON object instead of a stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub json_schema: Option<JsonSchemaParam>,
    }
}

struct Plan {
    prompt: AssembledPrompt,
    effort: Option<Effort>,
    json_schema: Option<String>,
    warnings: Vec<Warning>,
}

impl GrokRequest {
    fn plan(&self, limits: Limits) -> Result<Plan, ValidationError> {
        let checked = check_request(Provider::Grok, &self.common(), self, limits)?;
        let mut warnings = checked.warnings;
        for (field, list) in [
            (
                "allowedTools",
                self.allowed_tools.as_deref().unwrap_or_default(),
            ),
            (
                "disallowedTools",
                self.disallowed_tools.as_deref().unwrap_or_default(),
            ),
        ] {
            check_list(field, list)?;
            no_comma(field, list)?;
        }
        check_list("allow", &self.allow)?;
        check_list("deny", &self.deny)?;
        range_u64("maxTurns", self.max_turns.map(u64::from), (1, 10_000))?;
        if let Some(profile) = &self.sandbox {
            non_empty("sandbox", profile)?;
            no_leading_dash("sandbox", profile)?;
        }
        // grok's --effort is --reasoning-effort; both on one command line is a usage error.
        let effort = match (self.reasoning_effort, self.effort) {
            (Some(a), Some(b)) if a != b => {
                return Err(ValidationError::invalid(
                    "effort",
                    format!(
                        "effort and reasoningEffort are the same parameter for grok and disagree ({} vs {}): give one",
                        b.as_str(),
                        a.as_str()
                    ),
                ));
            }
            (a, b) => a.or(b),
        };
        if self.always_approve && self.permission_mode.is_some() {
            warnings.push(Warning::new(
                codes::PARAMETER_IGNORED,
                "permissionMode was ignored: alwaysApprove wins over it",
            ));
        }
        let json_schema = self
            .json_schema
            .as_ref()
            .map(|schema| schema.to_compact_json("jsonSchema"))
            .transpose()?;
        Ok(Plan {
            prompt: checked.prompt,
            effort,
            json_schema,
            warnings,
        })
    }
}

impl ProviderRequest for GrokRequest {
    const PROVIDER: Provider = Provider::Grok;

    fn common(&self) -> CommonRef<'_> {
        self.common_fields()
    }

    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        self.plan(limits).map(|plan| plan.warnings)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        let Plan {
            prompt,
            effort,
            json_schema,
            warnings,
        } = self.plan(ctx.limits())?;
        let session = effective_session(self.create_new_session, ctx)?;

        let mut argv = Argv::new();
        // --no-auto-update is absent from grok's --help but documented and observed to work.
        argv.push("--no-auto-update").value(
            "--output-format",
            // With a schema grok prints one JSON object (its --json-schema implies json).
            if json_schema.is_some() {
                "json"
            } else {
                "streaming-json"
            },
        );
        argv.opt_value("--model", resolved_model(ctx)?);
        if self.always_approve {
            argv.push("--always-approve");
        } else {
            argv.opt_value(
                "--permission-mode",
                self.permission_mode.map(PermissionMode::as_str),
            );
        }
        argv.opt_value("--reasoning-effort", effort.map(Effort::as_str))
            .joined("--tools", self.allowed_tools.as_deref().unwrap_or_default())
            .joined(
                "--disallowed-tools",
                self.disallowed_tools.as_deref().unwrap_or_default(),
            )
            .each_value("--allow", &self.allow)
            .each_value("--deny", &self.deny)
            .opt_value("--max-turns", self.max_turns)
            .opt_value("--sandbox", self.sandbox.as_deref())
            .opt_value("--json-schema", json_schema.as_deref())
            .resume(&session, "--continue");
        // grok does not read stdin: a large prompt goes through a 0600 prompt file.
        let prompt_file = argv.prompt_or_file(ctx, "--single", "--prompt-file", &prompt.text);

        Ok(Invocation {
            program: ctx.program.clone(),
            argv: argv.finish()?,
            env_overrides: env_overrides(&[], ctx),
            stdin: None,
            cwd: ctx.cwd.clone(),
            temp_files: prompt_file.into_iter().collect(),
            result_file: None,
            prompt,
            warnings,
        })
    }
}

/// A parser for one grok run.
pub fn parser() -> LineParser<GrokHandler> {
    LineParser::new(GrokHandler::default())
}

/// Reads grok's output in any of its machine modes.
#[derive(Debug, Default)]
pub struct GrokHandler {
    started: bool,
    text: String,
    /// The `end` line (streaming-json), the `json` object, or the `result` line
    /// (streaming-messages-json): all carry the final figures.
    end: Option<Value>,
    session_id: Option<String>,
    model: Option<String>,
    /// Per-call `usage` lines, summed: used only when no `end` arrived.
    usage_sum: Usage,
    error: Option<String>,
    /// Output shaped like the old community CLI (`{"role":…,"content":…}` without `type`).
    community_cli: bool,
}

fn end_usage(end: &Value) -> Usage {
    Usage {
        input_tokens: u64_path(end, &["usage", "input_tokens"]),
        output_tokens: u64_path(end, &["usage", "output_tokens"]),
        cache_read_tokens: u64_path(end, &["usage", "cache_read_input_tokens"]),
        cache_creation_tokens: u64_path(end, &["usage", "cache_creation_input_tokens"]),
        reasoning_tokens: u64_path(end, &["usage", "reasoning_tokens"]),
        // Absent = unknown (custom models report no cost).
        cost_usd: f64_path(end, &["total_cost_usd"]),
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

impl GrokHandler {
    fn start(&mut self, sink: &mut EventSink) {
        if !self.started {
            self.started = true;
            sink.push(ProgressKind::Started, "grok started");
        }
    }

    fn finished(&mut self, end: &Value, sink: &mut EventSink) {
        let usage = end_usage(end);
        if let (Some(input), Some(output)) = (usage.input_tokens, usage.output_tokens) {
            sink.push(
                ProgressKind::Usage,
                format!(
                    "{input} input (+{} cached), {output} output tokens",
                    usage.cache_read_tokens.unwrap_or(0)
                ),
            );
        }
        let reason = str_at(end, "stopReason")
            .or(str_at(end, "stop_reason"))
            .unwrap_or("end");
        sink.push(ProgressKind::Finished, reason);
        self.end = Some(end.clone());
    }

    fn tool_call(value: &Value, sink: &mut EventSink) {
        let name = str_at(value, "toolName")
            .or(str_at(value, "title"))
            .unwrap_or("tool");
        sink.push(
            ProgressKind::Tool,
            tool_message(name, value.get("rawInput")),
        );
        Self::locations(value, sink);
    }

    fn locations(value: &Value, sink: &mut EventSink) {
        for location in value
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = str_at(location, "path") {
                sink.push(ProgressKind::File, path);
            }
        }
    }
}

impl LineHandler for GrokHandler {
    fn provider(&self) -> Provider {
        Provider::Grok
    }

    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity {
        let value = &value;
        match str_at(value, "type") {
            Some("available_commands") => self.start(sink),
            Some("text") => {
                if let Some(data) = str_at(value, "data") {
                    self.text.push_str(data);
                }
                sink.push(ProgressKind::Writing, "writing the answer");
            }
            Some("thinking") | Some("thought") => sink.push(ProgressKind::Thinking, "thinking"),
            Some("usage") => {
                let u = Usage {
                    cost_usd: None,
                    ..end_usage(value)
                };
                self.usage_sum = Usage {
                    input_tokens: add(self.usage_sum.input_tokens, u.input_tokens),
                    output_tokens: add(self.usage_sum.output_tokens, u.output_tokens),
                    cache_read_tokens: add(self.usage_sum.cache_read_tokens, u.cache_read_tokens),
                    cache_creation_tokens: add(
                        self.usage_sum.cache_creation_tokens,
                        u.cache_creation_tokens,
                    ),
                    reasoning_tokens: add(self.usage_sum.reasoning_tokens, u.reasoning_tokens),
                    cost_usd: None,
                };
                sink.push(
                    ProgressKind::Usage,
                    format!(
                        "{} input, {} output tokens so far",
                        self.usage_sum.input_tokens.unwrap_or(0),
                        self.usage_sum.output_tokens.unwrap_or(0)
                    ),
                );
            }
            Some("tool_call") => Self::tool_call(value, sink),
            Some("tool_call_update") => {
                if str_at(value, "status") == Some("failed") {
                    let detail = value
                        .get("content")
                        .and_then(Value::as_array)
                        .and_then(|c| c.iter().find_map(|c| str_path(c, &["content", "text"])))
                        .unwrap_or("tool call failed");
                    sink.push(ProgressKind::Tool, format!("failed: {detail}"));
                }
                Self::locations(value, sink);
            }
            Some("end") => self.finished(value, sink),
            Some("error") => {
                self.error = Some(
                    str_at(value, "message")
                        .unwrap_or("grok reported an error")
                        .to_string(),
                );
            }
            // streaming-messages-json (Anthropic Messages wire format).
            Some("system") if str_at(value, "subtype") == Some("init") => {
                self.session_id = str_at(value, "session_id").map(str::to_string);
                self.model = str_at(value, "model").map(str::to_string);
                self.start(sink);
            }
            Some("assistant") => {
                let mut text = String::new();
                for block in value
                    .get("message")
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match str_at(block, "type") {
                        Some("text") => text.push_str(str_at(block, "text").unwrap_or_default()),
                        Some("tool_use") => sink.push(
                            ProgressKind::Tool,
                            tool_message(
                                str_at(block, "name").unwrap_or("tool"),
                                block.get("input"),
                            ),
                        ),
                        _ => {}
                    }
                }
                if !text.is_empty() {
                    self.text = text;
                    sink.push(ProgressKind::Writing, "writing the answer");
                }
            }
            Some("result") => self.finished(value, sink),
            None if value.get("role").is_some() && value.get("content").is_some() => {
                self.community_cli = true;
                if str_at(value, "role") == Some("assistant")
                    && let Some(content) = str_at(value, "content")
                {
                    self.text = content.to_string();
                }
            }
            _ => {}
        }
        Activity::Active
    }

    fn document(&mut self, value: Value, sink: &mut EventSink) {
        if str_at(&value, "type").is_some() {
            self.json_line(value, sink);
            return;
        }
        let value = &value;
        // `--output-format json`: {text, stopReason, sessionId, usage, num_turns, modelUsage,
        // total_cost_usd?}
        if let Some(text) = str_at(value, "text") {
            self.text = text.to_string();
        }
        self.finished(value, sink);
    }

    fn finish(&mut self, _input: &FinishInput<'_>, plain: &str, _sink: &mut EventSink) -> Parsed {
        let mut parsed = Parsed {
            text: if self.text.is_empty() {
                plain.to_string()
            } else {
                std::mem::take(&mut self.text)
            },
            session_id: self.session_id.clone(),
            model: self.model.clone(),
            ..Parsed::default()
        };
        let Some(end) = &self.end else {
            parsed.usage.per_invocation = self.usage_sum;
            parsed.failure = match (&self.error, self.community_cli) {
                (Some(message), _) => Some(Reported {
                    kind: None,
                    message: message.clone(),
                }),
                (None, true) => Some(Reported {
                    kind: Some(ErrorKind::WrongCli),
                    message: "The grok on PATH prints the old community CLI's output (@vibe-kit/grok-cli), not the official xAI Grok CLI the gateway drives".to_string(),
                }),
                (None, false) => None,
            };
            return parsed;
        };
        // `end` is the only streaming line with the session id; `usage` there is the whole
        // invocation's.
        parsed.session_id = str_at(end, "sessionId")
            .or(str_at(end, "session_id"))
            .map(str::to_string)
            .or(parsed.session_id);
        parsed.usage = ReportedUsage {
            per_invocation: end_usage(end),
            running: Usage::default(),
        };
        parsed.num_turns = u64_path(end, &["num_turns"]);
        if parsed.model.is_none() {
            parsed.model = end
                .get("modelUsage")
                .and_then(Value::as_object)
                .filter(|models| models.len() == 1)
                .and_then(|models| models.keys().next().cloned());
        }
        let stop = str_at(end, "stopReason").or(str_at(end, "stop_reason"));
        parsed.stop_reason = stop.map(str::to_string);
        let is_error = end.get("is_error").and_then(Value::as_bool) == Some(true);
        parsed.failure = match (stop, &self.error) {
            (_, Some(message)) => Some(Reported {
                kind: None,
                message: message.clone(),
            }),
            _ if is_error => Some(Reported {
                kind: None,
                message: str_at(end, "result")
                    .unwrap_or("grok reported an error")
                    .to_string(),
            }),
            (Some("end_turn") | None, None) => None,
            // Anything but end_turn is not success, even with exit 0.
            (Some(reason), None) => Some(unfinished(reason)),
        };
        parsed
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    fn classify(&self, text: &str, exit_code: Option<i32>) -> Option<ErrorKind> {
        // An unknown --resume id makes grok try a remote restore, which fails with an
        // authentication message: that is an unknown session, never an auth error.
        const RULES: [(&str, ErrorKind); 9] = [
            ("session restore", ErrorKind::UnknownSession),
            ("not found locally", ErrorKind::UnknownSession),
            ("is already in use", ErrorKind::SessionIdInUse),
            ("must be a valid UUID", ErrorKind::InvalidSessionId),
            ("Not signed in", ErrorKind::NotAuthenticated),
            ("Unauthorized (401)", ErrorKind::InvalidCredentials),
            ("unknown model id", ErrorKind::UnknownModel),
            ("Invalid model", ErrorKind::UnknownModel),
            ("unexpected argument", ErrorKind::BadFlag),
        ];
        RULES
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map(|&(_, kind)| kind)
            .or((exit_code == Some(2)).then_some(ErrorKind::BadFlag))
    }
}

/// A stop reason other than `end_turn`, explained.
fn unfinished(reason: &str) -> Reported {
    let (kind, why) = match reason {
        "cancelled" => (
            ErrorKind::ApprovalRequired,
            "a tool call needed approval, which headless mode cannot give (pass alwaysApprove: true or a permissionMode such as acceptEdits)",
        ),
        "max_turns" | "max_turn_requests" => (ErrorKind::TurnLimit, "the turn limit was reached"),
        "max_tokens" => (ErrorKind::TokenLimit, "the output token limit was reached"),
        "refusal" => (ErrorKind::Unfinished, "the model refused"),
        _ => (ErrorKind::Unfinished, "the run did not finish its turn"),
    };
    Reported {
        kind: Some(kind),
        message: format!("grok stopped with stopReason \"{reason}\": {why}"),
    }
}
