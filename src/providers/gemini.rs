//! Gemini CLI (`gemini`, tested 0.61.0): the typed request, the exact argv (prompt in
//! `--prompt=`), and the parser of its `stream-json` events and `json` document
//! (providers.md "gemini").
//!
//! Owns: gemini's parameters and their rules (`yolo` vs `approvalMode`, comma-joined lists,
//! `includeDirs`/`addDir`, the one-argument prompt limit), and what gemini's output and exit
//! codes mean (41 auth, 42 bad input/unknown session, 52 config, 53 turn limit, 55
//! untrusted folder, other = API error).
//! Not here: keeping a resume in the session's project dir (gemini sessions are
//! project-scoped: the caller runs a resume in the recorded cwd and rejects a different
//! `workingDir`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Provider;
use super::dispatch::ProviderRequest;
use super::invocation::{
    Argv, BuildContext, Invocation, MAX_ARG_BYTES, effective_session, env_overrides, resolved_model,
};
use super::outcome::{ErrorKind, FinishInput, Parsed, Reported, ReportedUsage, Usage};
use super::progress::json::{str_at, str_path, tool_message, u64_path};
use super::progress::{Activity, EventSink, LineHandler, LineParser, ProgressKind};
use super::request::{
    AssembledPrompt, CommonRef, Limits, ValidationError, Warning, check_list, check_request,
    no_comma, provider_request,
};

/// gemini's approval modes (`--approval-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// Ask for approval (headless: tools needing it are unavailable).
    Default,
    /// Auto-approve edit tools.
    AutoEdit,
    /// Auto-approve all tools.
    Yolo,
    /// Read-only planning.
    Plan,
}

impl ApprovalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Default => "default",
            ApprovalMode::AutoEdit => "auto_edit",
            ApprovalMode::Yolo => "yolo",
            ApprovalMode::Plan => "plan",
        }
    }
}

provider_request! {
    /// Parameters of `gemini_request`: the common ones plus Gemini CLI's own.
    pub struct GeminiRequest {
        /// Extra workspace directories (`--include-directories`); must exist, no commas. Same as
        /// `addDir` (give one of the two).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub include_dirs: Vec<String>,
        /// Alias of `includeDirs`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add_dir: Vec<String>,
        /// Tools gemini may run without confirmation (`--allowed-tools`; deprecated by gemini in
        /// favour of policy files, still accepted). No commas.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allowed_tools: Option<Vec<String>>,
        /// Approval mode: `default`, `auto_edit`, `yolo`, `plan`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub approval_mode: Option<ApprovalMode>,
        /// The same as `approvalMode: yolo` (auto-approve every tool). Giving both with a
        /// different `approvalMode` is an error.
        #[serde(default)]
        pub yolo: bool,
        /// MCP servers gemini may use (`--allowed-mcp-server-names`). No commas.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub allowed_mcp_server_names: Vec<String>,
        /// Run tools in gemini's sandbox (`--sandbox`).
        #[serde(default)]
        pub sandbox: bool,
    }
}

struct Plan {
    prompt: AssembledPrompt,
    approval_mode: Option<ApprovalMode>,
    warnings: Vec<Warning>,
}

impl GeminiRequest {
    fn plan(&self, limits: Limits) -> Result<Plan, ValidationError> {
        let checked = check_request(Provider::Gemini, &self.common(), self, limits)?;
        if !self.include_dirs.is_empty() && !self.add_dir.is_empty() {
            return Err(ValidationError::invalid(
                "includeDirs",
                "includeDirs and addDir are the same parameter for gemini: give one",
            ));
        }
        for (field, list) in [
            ("includeDirs", self.include_dirs.as_slice()),
            ("addDir", self.add_dir.as_slice()),
            (
                "allowedTools",
                self.allowed_tools.as_deref().unwrap_or_default(),
            ),
            (
                "allowedMcpServerNames",
                self.allowed_mcp_server_names.as_slice(),
            ),
        ] {
            check_list(field, list)?;
            // gemini receives these comma-joined.
            no_comma(field, list)?;
        }
        let approval_mode = match (self.yolo, self.approval_mode) {
            (true, Some(mode)) if mode != ApprovalMode::Yolo => {
                return Err(ValidationError::invalid(
                    "yolo",
                    format!(
                        "yolo and approvalMode {} are mutually exclusive: yolo means approvalMode yolo",
                        mode.as_str()
                    ),
                ));
            }
            // gemini rejects -y together with --approval-mode: only the latter is emitted.
            (true, _) => Some(ApprovalMode::Yolo),
            (false, mode) => mode,
        };
        Ok(Plan {
            prompt: checked.prompt,
            approval_mode,
            warnings: checked.warnings,
        })
    }

    fn dirs(&self) -> &[String] {
        if self.include_dirs.is_empty() {
            &self.add_dir
        } else {
            &self.include_dirs
        }
    }
}

impl ProviderRequest for GeminiRequest {
    const PROVIDER: Provider = Provider::Gemini;

    fn common(&self) -> CommonRef<'_> {
        self.common_fields()
    }

    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        self.plan(limits).map(|plan| plan.warnings)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        let Plan {
            prompt,
            approval_mode,
            warnings,
        } = self.plan(ctx.limits())?;
        let session = effective_session(self.create_new_session, ctx)?;

        // gemini prepends stdin (and a blank line) to --prompt, so a prompt cannot travel
        // byte-exact through stdin: it must fit in one argument.
        let prompt_arg = format!("--prompt={}", prompt.text);
        if prompt_arg.len() > MAX_ARG_BYTES {
            return Err(ValidationError::too_large(
                "prompt",
                format!(
                    "prompt is too large for gemini: {} bytes of UTF-8 in one argument (the Linux limit for one argument is {MAX_ARG_BYTES} bytes, and gemini cannot read a prompt byte-exact from stdin)",
                    prompt.text.len()
                ),
                "Shorten the prompt to under 128 KiB of UTF-8 for gemini, or use another provider for larger prompts.",
            ));
        }

        let mut argv = Argv::new();
        // --skip-trust: headless gemini otherwise exits 55 in an untrusted folder.
        argv.push("--skip-trust")
            .value("--output-format", "stream-json")
            .opt_value("--model", resolved_model(ctx)?)
            .opt_value("--approval-mode", approval_mode.map(ApprovalMode::as_str))
            .joined("--include-directories", self.dirs())
            .joined(
                "--allowed-tools",
                self.allowed_tools.as_deref().unwrap_or_default(),
            )
            .joined("--allowed-mcp-server-names", &self.allowed_mcp_server_names)
            .flag_if("--sandbox", self.sandbox)
            .resume(&session, "--resume=latest");
        argv.push(prompt_arg);

        Ok(Invocation {
            program: ctx.program.clone(),
            argv: argv.finish()?,
            env_overrides: env_overrides(&[], ctx),
            stdin: None,
            cwd: ctx.cwd.clone(),
            temp_files: Vec::new(),
            result_file: None,
            prompt,
            warnings,
        })
    }
}

/// A parser for one gemini run.
pub fn parser() -> LineParser<GeminiHandler> {
    LineParser::new(GeminiHandler::default())
}

/// Reads gemini's `stream-json` events, or its `json` document.
#[derive(Debug, Default)]
pub struct GeminiHandler {
    session_id: Option<String>,
    model: Option<String>,
    text: String,
    /// `result.status == "error"` (or a `json` document's `error`).
    error: Option<String>,
    usage: Usage,
    finished: bool,
}

/// gemini tools that write files, whose path is worth a `file` event.
const FILE_TOOLS: [&str; 3] = ["write_file", "replace", "edit"];

impl GeminiHandler {
    fn stats(stats: &Value) -> Usage {
        let cached = u64_path(stats, &["cached"]);
        let input = u64_path(stats, &["input"]).or_else(|| {
            // `input_tokens` is the whole prompt; `input` the uncached part.
            u64_path(stats, &["input_tokens"]).map(|i| i.saturating_sub(cached.unwrap_or(0)))
        });
        Usage {
            input_tokens: input,
            output_tokens: u64_path(stats, &["output_tokens"]),
            cache_read_tokens: cached,
            cache_creation_tokens: None,
            reasoning_tokens: None,
            cost_usd: None,
        }
    }

    /// The `json` document's per-model token stats, summed (they include the router call),
    /// and the model whose role is `main`.
    fn document_stats(&mut self, models: &serde_json::Map<String, Value>) {
        let sum = |key: &str| -> Option<u64> {
            models
                .values()
                .map(|m| u64_path(m, &["tokens", key]))
                .try_fold(0u64, |acc, v| v.map(|v| acc + v))
        };
        self.usage = Usage {
            input_tokens: sum("input"),
            output_tokens: sum("candidates"),
            cache_read_tokens: sum("cached"),
            cache_creation_tokens: None,
            reasoning_tokens: sum("thoughts"),
            cost_usd: None,
        };
        if self.model.is_none() {
            self.model = models
                .iter()
                .find(|(_, m)| m.get("roles").and_then(|r| r.get("main")).is_some())
                .map(|(name, _)| name.clone());
        }
    }
}

impl LineHandler for GeminiHandler {
    fn provider(&self) -> Provider {
        Provider::Gemini
    }

    fn json_line(&mut self, value: Value, sink: &mut EventSink) -> Activity {
        let value = &value;
        match str_at(value, "type") {
            Some("init") => {
                self.session_id = str_at(value, "session_id").map(str::to_string);
                // "auto" means the router picks per call; the real model is not reported in
                // stream mode.
                self.model = str_at(value, "model")
                    .filter(|m| *m != "auto")
                    .map(str::to_string);
                sink.push(
                    ProgressKind::Started,
                    format!(
                        "session {} (model {})",
                        self.session_id.as_deref().unwrap_or("?"),
                        str_at(value, "model").unwrap_or("?")
                    ),
                );
            }
            Some("message") if str_at(value, "role") == Some("assistant") => {
                if let Some(content) = str_at(value, "content") {
                    self.text.push_str(content);
                }
                sink.push(ProgressKind::Writing, "writing the answer");
            }
            Some("tool_use") => {
                let name = str_at(value, "tool_name").unwrap_or("tool");
                let params = value.get("parameters");
                sink.push(ProgressKind::Tool, tool_message(name, params));
                if FILE_TOOLS.contains(&name)
                    && let Some(path) =
                        params.and_then(|p| str_at(p, "file_path").or(str_at(p, "path")))
                {
                    sink.push(ProgressKind::File, path);
                }
            }
            Some("tool_result") if str_at(value, "status") == Some("error") => {
                let message = str_path(value, &["error", "message"])
                    .or(str_at(value, "output"))
                    .unwrap_or("failed");
                sink.push(ProgressKind::Tool, format!("tool failed: {message}"));
            }
            Some("result") => {
                self.finished = true;
                if str_at(value, "status") == Some("error") {
                    self.error = Some(
                        str_path(value, &["error", "message"])
                            .unwrap_or("gemini reported an error")
                            .to_string(),
                    );
                }
                if let Some(stats) = value.get("stats") {
                    self.usage = Self::stats(stats);
                    sink.push(
                        ProgressKind::Usage,
                        format!(
                            "{} input (+{} cached), {} output tokens",
                            self.usage.input_tokens.unwrap_or(0),
                            self.usage.cache_read_tokens.unwrap_or(0),
                            self.usage.output_tokens.unwrap_or(0)
                        ),
                    );
                }
                sink.push(
                    ProgressKind::Finished,
                    str_at(value, "status").unwrap_or("finished"),
                );
            }
            Some("error") => {
                // A non-fatal notice in the stream; a fatal one ends in result.status=error.
                if let Some(message) = str_at(value, "message") {
                    sink.push(ProgressKind::Thinking, format!("warning: {message}"));
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
        // `-o json`: {session_id, response, stats: {models: {…}}, error?}
        self.finished = true;
        self.session_id = str_at(value, "session_id").map(str::to_string);
        if let Some(response) = str_at(value, "response") {
            self.text = response.to_string();
        }
        if let Some(message) = str_path(value, &["error", "message"]) {
            self.error = Some(message.to_string());
        }
        if let Some(models) = value
            .get("stats")
            .and_then(|s| s.get("models"))
            .and_then(Value::as_object)
        {
            self.document_stats(models);
        }
    }

    fn finish(&mut self, input: &FinishInput<'_>, plain: &str, _sink: &mut EventSink) -> Parsed {
        let mut parsed = Parsed {
            text: if self.text.is_empty() {
                plain.to_string()
            } else {
                std::mem::take(&mut self.text)
            },
            session_id: self.session_id.clone(),
            model: self.model.clone(),
            usage: ReportedUsage {
                per_invocation: self.usage,
                running: Usage::default(),
            },
            ..Parsed::default()
        };
        let stderr_error = (input.exit_code != Some(0))
            .then(|| stderr_json_error(input.stderr_tail))
            .flatten();
        if parsed.session_id.is_none() {
            parsed.session_id = stderr_error.as_ref().and_then(|(id, _)| id.clone());
        }
        parsed.failure = self
            .error
            .clone()
            .or(stderr_error.map(|(_, message)| message))
            .map(|message| Reported {
                kind: None,
                message,
            });
        parsed
    }

    fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    fn classify(&self, text: &str, exit_code: Option<i32>) -> Option<ErrorKind> {
        let has = |needle: &str| text.contains(needle);
        if has("API key not valid") || has("API_KEY_INVALID") {
            return Some(ErrorKind::InvalidCredentials);
        }
        if has("not running in a trusted directory") {
            return Some(ErrorKind::UntrustedFolder);
        }
        if has("ModelNotFoundError") || has("is not found for API version") {
            return Some(ErrorKind::UnknownModel);
        }
        if has("Unknown argument") || has("Cannot use both") {
            return Some(ErrorKind::BadFlag);
        }
        match exit_code {
            Some(41) => Some(ErrorKind::NotAuthenticated),
            Some(42) if has("Error resuming session") || has("Invalid session identifier") => {
                Some(ErrorKind::UnknownSession)
            }
            Some(42) if has("already exists") => Some(ErrorKind::SessionIdInUse),
            Some(42) => Some(ErrorKind::BadFlag),
            Some(52) => Some(ErrorKind::ConfigError),
            Some(53) => Some(ErrorKind::TurnLimit),
            Some(55) => Some(ErrorKind::UntrustedFolder),
            // Other codes are an HTTP status modulo 256 (e.g. 144 for 400).
            Some(code) if code > 1 => Some(ErrorKind::ApiError),
            _ => None,
        }
    }
}

/// gemini's `json` mode writes failures to stderr as a pretty-printed `{session_id, error:
/// {message}}` document after its log lines: the session id and message, when present.
fn stderr_json_error(stderr: &[u8]) -> Option<(Option<String>, String)> {
    let text = String::from_utf8_lossy(stderr);
    let start = text
        .rfind("\n{")
        .map(|i| i + 1)
        .or_else(|| text.starts_with('{').then_some(0))?;
    let value: Value = serde_json::from_str(text[start..].trim()).ok()?;
    let message = str_path(&value, &["error", "message"])?.to_string();
    Some((str_at(&value, "session_id").map(str::to_string), message))
}
