//! Mistral Vibe (`vibe`, provider key `mistral`, tested 3.0.3): the typed request, the exact
//! argv and environment (the model travels in `VIBE_ACTIVE_MODEL`: vibe has no `--model`),
//! and the parser of its `streaming` NDJSON entries plus the `export.json` it writes to
//! `--output-dir` (providers.md "mistral").
//!
//! Owns: vibe's parameters and their rules (the agent name in `permissionMode`, limits), and
//! what vibe's output means (entries with `sessionId`, the last assistant message as the
//! answer, usage/cost/outcome only from `export.json`, the unknown-model fallback warning).
//! Not here: reading `export.json` from disk and removing the output dir (the executor reads
//! `Invocation::result_file` after the exit and passes the bytes to `finish`).

use serde_json::Value;

use super::Provider;
use super::dispatch::ProviderRequest;
use super::invocation::{
    Argv, BuildContext, Invocation, effective_session, env_overrides, resolved_model,
};
use super::outcome::{ErrorKind, FinishInput, Parsed, Reported, ReportedUsage, Usage, clean_text};
use super::progress::json::{f64_path, str_at, str_path, u64_path};
use super::progress::{Activity, EventSink, LineHandler, LineParser, ProgressKind};
use super::request::{
    AssembledPrompt, CommonRef, Limits, ValidationError, Warning, check_list, check_request, codes,
    no_leading_dash, positive_f64, provider_request, range_u64,
};

/// The agent vibe runs when the request names none: edits are accepted, other tools ask
/// (which headless means deny).
pub const DEFAULT_AGENT: &str = "accept-edits";

provider_request! {
    /// Parameters of `mistral_request` (runs the `vibe` binary): the common ones plus Mistral
    /// Vibe's own.
    pub struct VibeRequest {
        /// The vibe agent (`--agent`): builtins `ask`, `accept-edits` (default),
        /// `smart-approve`, `auto-approve`, or a custom agent name (`^[A-Za-z0-9._-]+$`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"^[A-Za-z0-9._-]+$"))]
        pub permission_mode: Option<String>,
        /// Tools to enable (`--enabled-tools`; headless, all others are disabled).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allowed_tools: Option<Vec<String>>,
        /// Tools to disable (`--disabled-tools`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disallowed_tools: Option<Vec<String>>,
        /// Extra working directories (`--add-dir`); must exist.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add_dir: Vec<String>,
        /// Trust the working directory for this run (`--trust`).
        #[serde(default)]
        pub trust: bool,
        /// Maximum assistant turns (at least 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub max_turns: Option<u32>,
        /// Maximum cost in US dollars (greater than 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_price: Option<f64>,
        /// Maximum prompt + completion tokens (at least 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub max_tokens: Option<u64>,
    }
}

struct Plan {
    prompt: AssembledPrompt,
    warnings: Vec<Warning>,
}

impl VibeRequest {
    fn plan(&self, limits: Limits) -> Result<Plan, ValidationError> {
        let checked = check_request(Provider::Mistral, &self.common(), self, limits)?;
        if let Some(agent) = &self.permission_mode {
            no_leading_dash("permissionMode", agent)?;
            let valid = !agent.is_empty()
                && agent
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            if !valid {
                return Err(ValidationError::invalid(
                    "permissionMode",
                    format!("Invalid permissionMode \"{agent}\": a vibe agent name matches ^[A-Za-z0-9._-]+$"),
                )
                .with_remediation("Use ask, accept-edits, smart-approve, auto-approve, or the name of a custom agent in ~/.vibe/agents/."));
            }
        }
        check_list(
            "allowedTools",
            self.allowed_tools.as_deref().unwrap_or_default(),
        )?;
        check_list(
            "disallowedTools",
            self.disallowed_tools.as_deref().unwrap_or_default(),
        )?;
        check_list("addDir", &self.add_dir)?;
        range_u64(
            "maxTurns",
            self.max_turns.map(u64::from),
            (1, u64::from(u32::MAX)),
        )?;
        range_u64("maxTokens", self.max_tokens, (1, u64::MAX))?;
        positive_f64("maxPrice", self.max_price)?;
        Ok(Plan {
            prompt: checked.prompt,
            warnings: checked.warnings,
        })
    }
}

impl ProviderRequest for VibeRequest {
    const PROVIDER: Provider = Provider::Mistral;

    fn common(&self) -> CommonRef<'_> {
        self.common_fields()
    }

    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        self.plan(limits).map(|plan| plan.warnings)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        let Plan { prompt, warnings } = self.plan(ctx.limits())?;
        let session = effective_session(self.create_new_session, ctx)?;
        let model = resolved_model(ctx)?;

        let mut argv = Argv::new();
        // Usage, cost and outcome exist only in the export.json vibe writes to --output-dir.
        argv.value("--output", "streaming")
            .value("--output-dir", ctx.temp_dir.display())
            .value(
                "--agent",
                self.permission_mode.as_deref().unwrap_or(DEFAULT_AGENT),
            )
            .each_value(
                "--enabled-tools",
                self.allowed_tools.as_deref().unwrap_or_default(),
            )
            .each_value(
                "--disabled-tools",
                self.disallowed_tools.as_deref().unwrap_or_default(),
            )
            .flag_if("--trust", self.trust)
            .opt_value("--max-turns", self.max_turns)
            .opt_value("--max-price", self.max_price)
            .opt_value("--max-tokens", self.max_tokens)
            .each_value("--add-dir", &self.add_dir)
            .resume(&session, "--continue");
        let prompt_file = argv.prompt_or_file(ctx, "--prompt", "--prompt-file", &prompt.text);

        // vibe has no --model flag: the model goes in VIBE_ACTIVE_MODEL, only when one is given.
        let mut documented = Vec::new();
        if let Some(model) = model {
            documented.push(("VIBE_ACTIVE_MODEL", model));
        }
        documented.push(("VIBE_ENABLE_UPDATE_CHECKS", "false"));

        Ok(Invocation {
            program: ctx.program.clone(),
            argv: argv.finish()?,
            env_overrides: env_overrides(&documented, ctx),
            stdin: None,
            cwd: ctx.cwd.clone(),
            temp_files: prompt_file.into_iter().collect(),
            result_file: Some(ctx.temp_dir.join("export.json")),
            prompt,
            warnings,
        })
    }
}

/// A parser for one vibe run.
pub fn parser() -> LineParser<VibeHandler> {
    LineParser::new(VibeHandler::default())
}

/// Reads vibe's session entries (NDJSON, or the `json` mode array) and its `export.json`.
#[derive(Debug, Default)]
pub struct VibeHandler {
    session_id: Option<String>,
    /// Text of the last assistant message entry.
    answer: Option<String>,
    /// Tool calls the agent's approval callback refused.
    denied: Vec<String>,
}

impl VibeHandler {
    fn entry(&mut self, value: &Value, sink: &mut EventSink) {
        if let Some(id) = str_at(value, "sessionId")
            && self.session_id.as_deref() != Some(id)
        {
            self.session_id = Some(id.to_string());
            sink.push(ProgressKind::Started, format!("session {id}"));
        }
        match str_at(value, "type") {
            Some("message") if str_at(value, "role") == Some("assistant") => {
                let text: String = value
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|block| str_at(block, "text"))
                    .collect();
                self.answer = Some(text);
                sink.push(ProgressKind::Writing, "writing the answer");
            }
            Some("reasoning") | Some("thinking") => sink.push(ProgressKind::Thinking, "thinking"),
            Some("effect") => {
                let tool = str_path(value, &["detail", "toolName"])
                    .or(str_at(value, "title"))
                    .unwrap_or("tool");
                let summary = str_path(value, &["detail", "display", "summary"]).unwrap_or(tool);
                match str_path(value, &["state", "status"]) {
                    Some("failed") => {
                        let why =
                            str_path(value, &["state", "error", "message"]).unwrap_or("failed");
                        if str_path(value, &["state", "error", "code"]) == Some("tool_denied") {
                            self.denied.push(tool.to_string());
                        }
                        sink.push(ProgressKind::Tool, format!("{summary} — {why}"));
                    }
                    _ => sink.push(ProgressKind::Tool, summary),
                }
                if let Some(path) = str_path(value, &["detail", "input", "path"])
                    .or(str_path(value, &["detail", "input", "file_path"]))
                {
                    sink.push(ProgressKind::File, path);
                }
            }
            Some("callback") => {
                let decision =
                    str_path(value, &["state", "output", "decision", "type"]).unwrap_or("pending");
                sink.push(
                    ProgressKind::Tool,
                    format!(
                        "{}: {decision}",
                        str_at(value, "title").unwrap_or("approval")
                    ),
                );
            }
            _ => {}
        }
    }
}

/// An `export.json` outcome other than `finished`, explained.
fn unfinished(outcome: &str, error: Option<&str>) -> Reported {
    let kind = match outcome {
        "turn_limit" => Some(ErrorKind::TurnLimit),
        "token_limit" => Some(ErrorKind::TokenLimit),
        "price_limit" => Some(ErrorKind::BudgetLimit),
        "deadline" => Some(ErrorKind::TimeLimit),
        "terminated" => Some(ErrorKind::Unfinished),
        // infrastructure_failure: the error message says which (auth, model, API).
        _ => None,
    };
    Reported {
        kind,
        message: match error {
            Some(message) => message.to_string(),
            None => format!("vibe stopped with outcome \"{outcome}\""),
        },
    }
}

impl LineHandler for VibeHandler {
    fn provider(&self) -> Provider {
        Provider::Mistral
    }

    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity {
        let value = &value;
        self.entry(value, sink);
        Activity::Active
    }

    fn document(&mut self, value: Value, sink: &mut EventSink) {
        // `--output json` prints the entries as one array.
        match &value {
            Value::Array(entries) => entries.iter().for_each(|entry| self.entry(entry, sink)),
            other => self.entry(other, sink),
        }
    }

    fn finish(&mut self, input: &FinishInput<'_>, plain: &str, sink: &mut EventSink) -> Parsed {
        let mut parsed = Parsed {
            text: self.answer.clone().unwrap_or_else(|| plain.to_string()),
            session_id: self.session_id.clone(),
            ..Parsed::default()
        };
        let stderr = clean_text(input.stderr_tail);
        // An unknown VIBE_ACTIVE_MODEL silently falls back to the default model.
        if let Some(line) = stderr.lines().find(|l| l.contains("is not available")) {
            parsed
                .warnings
                .push(Warning::new(codes::MODEL_NOT_AVAILABLE, line.trim()));
        }
        if !self.denied.is_empty() {
            parsed.warnings.push(Warning::new(
                codes::PERMISSION_DENIED,
                format!(
                    "vibe's agent denied {} tool call(s) ({}) in headless mode: pass permissionMode auto-approve (or a custom agent that allows them)",
                    self.denied.len(),
                    self.denied.join(", ")
                ),
            ));
        }
        let export = input
            .export_json
            .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
            .filter(Value::is_object);
        let Some(export) = export else {
            if input.exit_code == Some(0) {
                parsed.warnings.push(Warning::new(
                    codes::EXPORT_MISSING,
                    "vibe wrote no readable export.json: usage, cost and outcome are unknown",
                ));
            }
            return parsed;
        };
        if let Some(id) = str_at(&export, "session_id") {
            parsed.session_id = Some(id.to_string());
        }
        let input_tokens = u64_path(&export, &["usage", "input_tokens"]);
        let cached = u64_path(&export, &["usage", "cached_input_tokens"]);
        parsed.usage = ReportedUsage {
            per_invocation: Usage {
                // input_tokens includes the cached ones.
                input_tokens: input_tokens.map(|i| i.saturating_sub(cached.unwrap_or(0))),
                output_tokens: u64_path(&export, &["usage", "output_tokens"]),
                cache_read_tokens: cached,
                cache_creation_tokens: None,
                reasoning_tokens: None,
                cost_usd: f64_path(&export, &["cost_usd"]),
            },
            running: Usage::default(),
        };
        parsed.model = str_path(&export, &["config", "active_model"]).map(str::to_string);
        let outcome = str_at(&export, "outcome");
        parsed.stop_reason = str_at(&export, "stop_reason")
            .or(outcome)
            .map(str::to_string);
        let error = str_path(&export, &["error", "message"]);
        parsed.failure = match outcome {
            Some("finished") => error.map(|message| Reported {
                kind: None,
                message: message.to_string(),
            }),
            Some(other) => Some(unfinished(other, error)),
            None => None,
        };
        sink.push(ProgressKind::Finished, outcome.unwrap_or("finished"));
        parsed
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    fn classify(&self, text: &str, exit_code: Option<i32>) -> Option<ErrorKind> {
        let has = |needle: &str| text.contains(needle);
        if has("Missing MISTRAL_API_KEY") {
            Some(ErrorKind::NotAuthenticated)
        } else if has("Invalid API key") {
            Some(ErrorKind::InvalidCredentials)
        } else if has("Session not found") {
            Some(ErrorKind::UnknownSession)
        } else if has("unexpected argument") {
            Some(ErrorKind::BadFlag)
        } else if has("Invalid model") || has("invalid_model") {
            Some(ErrorKind::UnknownModel)
        } else {
            // vibe: 2 = API failure, 3 = a limit was reached.
            match exit_code {
                Some(2) => Some(ErrorKind::ApiError),
                Some(3) => Some(ErrorKind::Unfinished),
                _ => None,
            }
        }
    }
}
