//! The final result of a CLI run as the gateway reports it, and the one place that decides
//! success, error category and remediation for all five CLIs.
//!
//! Owns: [`Outcome`], normalised [`Usage`] with the running-total subtraction (codex tokens,
//! claude cost), [`ErrorKind`] (what went wrong, as far as the output tells) with its
//! [`ErrorCategory`] and remediation text, the shared auth-signal pattern of mcp-surface.md,
//! and the stderr summary used in messages.
//! Not here: reading a CLI's lines (each provider's handler fills a [`Parsed`]), and the
//! categories the executor decides (timeouts, cancel, output overflow, not installed).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::Provider;
use super::progress::{ProgressEvent, truncate_chars};
use super::request::{Warning, codes};

/// Token and cost figures of one invocation; `None` when the CLI does not report a figure
/// (never 0 for unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_creation_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// The usage figures as the CLI reported them: per-invocation ones, and running totals for
/// the provider session (codex tokens, claude cost) that need the previous total subtracted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedUsage {
    pub per_invocation: Usage,
    /// Session running totals, already normalised (uncached input etc.). Record these for
    /// the provider session: they are the next run's baseline.
    pub running: Usage,
}

/// The last running totals recorded for the provider session a run continued.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Baseline {
    /// A new conversation: the running totals are this run's figures.
    #[default]
    NewSession,
    /// The totals recorded after the previous run of this session (for a claude
    /// `--fork-session`, the parent's).
    Known(Usage),
    /// A resumed session with no recorded total: running figures are null, with warning
    /// `usage_baseline_unknown`.
    Unknown,
}

/// What the executor knows when stdout ends.
#[derive(Debug, Clone, Default)]
pub struct FinishInput<'a> {
    /// The exit code; `None` = ended by a signal.
    pub exit_code: Option<i32>,
    /// The end of stderr (the caller keeps a bounded tail).
    pub stderr_tail: &'a [u8],
    /// The baseline for running totals.
    pub baseline: Baseline,
    /// vibe only: the bytes of `Invocation::result_file` (`export.json`), if it was written.
    pub export_json: Option<&'a [u8]>,
}

impl<'a> FinishInput<'a> {
    /// A normal exit with `code` and the given stderr tail, for a new session.
    pub fn exited(code: i32, stderr_tail: &'a [u8]) -> Self {
        Self {
            exit_code: Some(code),
            stderr_tail,
            ..Self::default()
        }
    }
}

/// The error categories that come from a CLI's own output (mcp-surface.md "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// Not logged in or a bad key.
    AuthError,
    /// The CLI itself said the input is over its limit.
    InputTooLarge,
    /// Exit 0 but an error or an unfinished stop.
    ResultError,
    /// Any other non-zero exit (or a signal).
    CliError,
}

impl ErrorCategory {
    pub fn as_str(self) -> &'static str {
        crate::error::ErrorCategory::from(self).as_str()
    }
}

/// The categories a CLI's output can yield are a subset of the gateway's one vocabulary.
impl From<ErrorCategory> for crate::error::ErrorCategory {
    fn from(category: ErrorCategory) -> Self {
        match category {
            ErrorCategory::AuthError => crate::error::ErrorCategory::AuthError,
            ErrorCategory::InputTooLarge => crate::error::ErrorCategory::InputTooLarge,
            ErrorCategory::ResultError => crate::error::ErrorCategory::ResultError,
            ErrorCategory::CliError => crate::error::ErrorCategory::CliError,
        }
    }
}

/// What went wrong, as precisely as the CLI's output tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No credentials at all.
    NotAuthenticated,
    /// Credentials rejected (401, invalid key).
    InvalidCredentials,
    /// The model does not exist or is not available.
    UnknownModel,
    /// The CLI rejected an argument (a flag it does not know, or a bad value).
    BadFlag,
    /// No session with that id (here).
    UnknownSession,
    /// The session id is not in the CLI's format.
    InvalidSessionId,
    /// A new session id that already exists.
    SessionIdInUse,
    /// The CLI refuses to work in an untrusted directory.
    UntrustedFolder,
    /// The turn limit was reached.
    TurnLimit,
    /// The spending limit was reached.
    BudgetLimit,
    /// The token limit was reached.
    TokenLimit,
    /// The CLI's own time limit was reached.
    TimeLimit,
    /// A tool call needed an approval that headless mode cannot give.
    ApprovalRequired,
    /// claude refused `bypassPermissions` as root without `IS_SANDBOX=1`.
    RootBypassRefused,
    /// The CLI said the input is too large.
    InputTooLarge,
    /// The CLI's own configuration is invalid.
    ConfigError,
    /// The model API answered with an error.
    ApiError,
    /// The binary is not the CLI the gateway drives (e.g. the community `grok`).
    WrongCli,
    /// Ended by a signal.
    Killed,
    /// Stopped before finishing, for another reason.
    Unfinished,
    /// Anything else.
    Failed,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotAuthenticated => "not_authenticated",
            ErrorKind::InvalidCredentials => "invalid_credentials",
            ErrorKind::UnknownModel => "unknown_model",
            ErrorKind::BadFlag => "bad_flag",
            ErrorKind::UnknownSession => "unknown_session",
            ErrorKind::InvalidSessionId => "invalid_session_id",
            ErrorKind::SessionIdInUse => "session_id_in_use",
            ErrorKind::UntrustedFolder => "untrusted_folder",
            ErrorKind::TurnLimit => "turn_limit",
            ErrorKind::BudgetLimit => "budget_limit",
            ErrorKind::TokenLimit => "token_limit",
            ErrorKind::TimeLimit => "time_limit",
            ErrorKind::ApprovalRequired => "approval_required",
            ErrorKind::RootBypassRefused => "root_bypass_refused",
            ErrorKind::InputTooLarge => "input_too_large",
            ErrorKind::ConfigError => "config_error",
            ErrorKind::ApiError => "api_error",
            ErrorKind::WrongCli => "wrong_cli",
            ErrorKind::Killed => "killed",
            ErrorKind::Unfinished => "unfinished",
            ErrorKind::Failed => "failed",
        }
    }

    /// The category: auth kinds are `auth_error` whatever the exit; otherwise exit 0 means
    /// the CLI reported the failure itself (`result_error`), anything else is `cli_error`.
    pub fn category(self, exit_code: Option<i32>) -> ErrorCategory {
        match self {
            ErrorKind::NotAuthenticated | ErrorKind::InvalidCredentials => ErrorCategory::AuthError,
            ErrorKind::InputTooLarge => ErrorCategory::InputTooLarge,
            _ if exit_code == Some(0) => ErrorCategory::ResultError,
            _ => ErrorCategory::CliError,
        }
    }

    /// What a person (or an agent) should do about it, naming the CLI's own commands.
    pub fn remediation(self, provider: Provider) -> String {
        let auth = auth_hint(provider);
        let cli = provider.default_binary();
        match self {
            ErrorKind::NotAuthenticated => format!(
                "{cli} is not logged in. {} or set {} for the gateway (its environment, or `[providers.{}] env` in config.toml).",
                auth.login,
                auth.key,
                provider.key()
            ),
            ErrorKind::InvalidCredentials => format!(
                "{cli} rejected its credentials. Check {} (the gateway's environment or `[providers.{}] env`), or {}.",
                auth.key,
                provider.key(),
                auth.login_lower
            ),
            ErrorKind::UnknownModel => format!(
                "Pick a model {cli} can use: see `list_models` for aliases{}, or omit `model` to let the CLI choose.",
                match provider {
                    Provider::Grok => " and `grok models` for what this account offers",
                    Provider::Mistral => " (vibe takes model aliases from its config.toml)",
                    _ => "",
                }
            ),
            ErrorKind::BadFlag => format!(
                "The installed {cli} rejected an argument. Compare its version with the tested {} (`cli_versions`) and upgrade or downgrade it; check the parameter values.",
                provider.tested_version()
            ),
            ErrorKind::UnknownSession => format!(
                "{cli} has no session with this id{}. Pass a sessionId an earlier call returned (with the same workingDir), use resumeLatest, or set createNewSession: true.",
                if provider == Provider::Gemini {
                    " in this working directory (gemini sessions are project-scoped)"
                } else {
                    ""
                }
            ),
            ErrorKind::InvalidSessionId => format!(
                "{cli} expects a session id in its own format (a UUID): pass the sessionId an earlier call returned."
            ),
            ErrorKind::SessionIdInUse => {
                "That session id already exists: resume it with sessionId instead, or start fresh with createNewSession: true.".to_string()
            }
            ErrorKind::UntrustedFolder => format!(
                "{cli} does not trust the working directory. The gateway passes {}; if this persists, trust the directory in {cli} itself.",
                match provider {
                    Provider::Gemini => "--skip-trust (or set GEMINI_CLI_TRUST_WORKSPACE=true in `[providers.gemini] env`)",
                    Provider::Codex => "--skip-git-repo-check",
                    Provider::Mistral => "--trust when `trust: true` is requested",
                    _ => "its non-interactive flags",
                }
            ),
            ErrorKind::TurnLimit => "The run hit its turn limit: raise maxTurns or split the task.".to_string(),
            ErrorKind::BudgetLimit => format!(
                "The run hit its spending limit: raise {} or split the task.",
                if provider == Provider::Mistral { "maxPrice" } else { "maxBudgetUsd" }
            ),
            ErrorKind::TokenLimit => "The run hit its token limit: raise maxTokens or split the task.".to_string(),
            ErrorKind::TimeLimit => "The CLI's own time limit ended the run: allow more time or split the task.".to_string(),
            ErrorKind::ApprovalRequired => match provider {
                Provider::Grok => "A tool call needed approval, which headless mode cannot give: pass alwaysApprove: true, or a permissionMode such as acceptEdits, auto or bypassPermissions.".to_string(),
                Provider::Mistral => "A tool call needed approval, which headless mode cannot give: pass permissionMode auto-approve (or a custom agent that allows the tool).".to_string(),
                _ => "A tool call needed approval, which headless mode cannot give: pass a more permissive permission mode.".to_string(),
            },
            ErrorKind::RootBypassRefused => "claude refuses bypassPermissions as root unless IS_SANDBOX=1. Inside a sandbox, set `[providers.claude] root_bypass_sets_is_sandbox = true`; otherwise run the gateway as a normal user or use another permissionMode.".to_string(),
            ErrorKind::InputTooLarge => "Shorten the prompt (and attached context); it is never truncated.".to_string(),
            ErrorKind::ConfigError => format!("{cli}'s own configuration is invalid: fix it (run {cli} interactively once to see the complaint)."),
            ErrorKind::ApiError => "The model API answered with an error: see the message; check the model, quota and network, and retry later.".to_string(),
            ErrorKind::WrongCli => format!(
                "The `{cli}` on PATH is not the CLI the gateway drives. Install it: {} (or set `[providers.{}] binary` to its path).",
                provider.install_command(),
                provider.key()
            ),
            ErrorKind::Killed => "The CLI was ended by a signal: see whether it was canceled, timed out or ran out of memory, and retry.".to_string(),
            ErrorKind::Unfinished => "The CLI stopped before finishing: see the stop reason and retry or continue the session.".to_string(),
            ErrorKind::Failed => format!("See the message and the stderr tail (llm_job_result); run {cli} by hand in the same directory to reproduce."),
        }
    }
}

struct AuthHint {
    login: &'static str,
    login_lower: &'static str,
    key: &'static str,
}

/// The login command and key variable of each CLI (config-and-cli.md "Auth probes").
fn auth_hint(provider: Provider) -> AuthHint {
    match provider {
        Provider::Claude => AuthHint {
            login: "Run `claude auth login`",
            login_lower: "run `claude auth login`",
            key: "ANTHROPIC_API_KEY",
        },
        Provider::Codex => AuthHint {
            login: "Run `codex login`",
            login_lower: "run `codex login`",
            key: "CODEX_API_KEY (or OPENAI_API_KEY)",
        },
        Provider::Gemini => AuthHint {
            login: "Run `gemini` once interactively and sign in",
            login_lower: "run `gemini` once interactively and sign in",
            key: "GEMINI_API_KEY (or GOOGLE_API_KEY, or the Vertex AI variables)",
        },
        Provider::Grok => AuthHint {
            login: "Run `grok login` (headless: `grok login --device-code`)",
            login_lower: "run `grok login` (headless: `grok login --device-code`)",
            key: "XAI_API_KEY",
        },
        Provider::Mistral => AuthHint {
            login: "Run `vibe --setup`",
            login_lower: "run `vibe --setup`",
            key: "MISTRAL_API_KEY",
        },
    }
}

/// A failed run's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeError {
    pub kind: ErrorKind,
    pub category: ErrorCategory,
    pub message: String,
    pub remediation: String,
}

/// The final, normalised result of one CLI run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The answer text (partial when the run failed).
    pub text: String,
    /// The CLI's own session/thread id, as it reported it.
    pub provider_session_id: Option<String>,
    /// The model the CLI reported using, when it did.
    pub model: Option<String>,
    /// Per-invocation usage, running totals already subtracted.
    pub usage: Usage,
    /// The figures as reported; `reported_usage.running` is the new baseline to record.
    pub reported_usage: ReportedUsage,
    pub stop_reason: Option<String>,
    pub num_turns: Option<u64>,
    pub exit_code: Option<i32>,
    /// False exactly when the run succeeded: exit 0, no reported error, no unfinished stop.
    pub is_error: bool,
    pub error: Option<OutcomeError>,
    pub warnings: Vec<Warning>,
    /// Progress events produced while finishing (the last partial line, the end).
    pub events: Vec<ProgressEvent>,
}

impl Outcome {
    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        !self.is_error
    }

    /// Recomputes `usage` against another baseline, for callers that learn which provider
    /// session ran only from the outcome (e.g. `resumeLatest`).
    pub fn rebase(&mut self, baseline: &Baseline) {
        self.warnings
            .retain(|w| w.code != codes::USAGE_BASELINE_UNKNOWN);
        let (usage, warning) = per_invocation_usage(&self.reported_usage, baseline);
        self.usage = usage;
        self.warnings.extend(warning);
    }
}

/// A failure the output itself reported (an error record or an unfinished stop).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reported {
    /// The kind when the output says it precisely; `None` lets `classify` and the shared
    /// auth pattern decide from the text.
    pub kind: Option<ErrorKind>,
    pub message: String,
}

/// A provider handler's findings, before the shared success/error decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub text: String,
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub usage: ReportedUsage,
    pub stop_reason: Option<String>,
    pub num_turns: Option<u64>,
    /// An error or unfinished stop reported in the output.
    pub failure: Option<Reported>,
    pub warnings: Vec<Warning>,
}

/// mcp-surface.md: the auth signals any CLI's output may carry.
static AUTH_SIGNAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)not logged in|not signed in|please run .*login|unauthori[sz]ed|\b401\b|invalid api key|missing \w*api_key|authentication (failed|required)")
        .expect("valid auth regex")
});

static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").expect("valid ANSI regex"));

/// Whether `text` carries one of the shared auth signals.
pub fn has_auth_signal(text: &str) -> bool {
    AUTH_SIGNAL.is_match(text)
}

/// Bytes as text without terminal colour codes.
pub fn clean_text(bytes: &[u8]) -> String {
    ANSI.replace_all(&String::from_utf8_lossy(bytes), "")
        .into_owned()
}

const MAX_MESSAGE_CHARS: usize = 1_000;

/// The part of a stderr tail worth showing: from the first line that looks like an error (or
/// the last lines), without the noise these CLIs print on every run (terminal warnings,
/// startup metrics, stack frames, stdin notices).
pub fn stderr_message(stderr: &str) -> Option<String> {
    const NOISE: [&str; 6] = [
        "Warning: Basic terminal",
        "Warning: 256-color",
        "[STARTUP]",
        "Ripgrep is not available",
        "Reading additional input from stdin",
        "Reading API keys from the system keyring",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .filter(|line| !line.trim_start().starts_with("at "))
        .filter(|line| !NOISE.iter().any(|noise| line.starts_with(noise)))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let first_error = lines.iter().position(|line| {
        let lower = line.to_ascii_lowercase();
        [
            "error",
            "invalid",
            "not found",
            "cannot",
            "unknown",
            "failed",
            "refus",
            "missing",
            "not ",
        ]
        .iter()
        .any(|word| lower.contains(word))
    });
    let chosen = match first_error {
        Some(start) => &lines[start..(start + 5).min(lines.len())],
        None => &lines[lines.len().saturating_sub(5)..],
    };
    Some(truncate_chars(chosen.join("\n").trim(), MAX_MESSAGE_CHARS))
}

/// Per-invocation usage from what was reported and the baseline, plus the
/// `usage_baseline_unknown` warning when a running figure could not be turned into one.
pub fn per_invocation_usage(
    reported: &ReportedUsage,
    baseline: &Baseline,
) -> (Usage, Option<Warning>) {
    let running = reported.running;
    let mut usage = reported.per_invocation;
    let mut unknown = false;
    let previous = match baseline {
        Baseline::NewSession => Usage::default(),
        Baseline::Known(previous) => *previous,
        Baseline::Unknown => Usage::default(),
    };
    let is_unknown_baseline = matches!(baseline, Baseline::Unknown);
    let mut tokens = |total: Option<u64>, before: Option<u64>, slot: &mut Option<u64>| {
        let Some(total) = total else { return };
        let delta = match (baseline, before) {
            (Baseline::NewSession, _) => Some(total),
            (Baseline::Known(_), Some(before)) => total.checked_sub(before),
            // A known baseline without this figure: the previous run did not report it, so it
            // was zero-or-unknown; treat as unknown rather than guess.
            _ => None,
        };
        if delta.is_none() {
            unknown = true;
        }
        *slot = delta;
    };
    tokens(
        running.input_tokens,
        previous.input_tokens,
        &mut usage.input_tokens,
    );
    tokens(
        running.output_tokens,
        previous.output_tokens,
        &mut usage.output_tokens,
    );
    tokens(
        running.cache_read_tokens,
        previous.cache_read_tokens,
        &mut usage.cache_read_tokens,
    );
    tokens(
        running.cache_creation_tokens,
        previous.cache_creation_tokens,
        &mut usage.cache_creation_tokens,
    );
    tokens(
        running.reasoning_tokens,
        previous.reasoning_tokens,
        &mut usage.reasoning_tokens,
    );
    if let Some(total) = running.cost_usd {
        usage.cost_usd = match (baseline, previous.cost_usd) {
            (Baseline::NewSession, _) => Some(total),
            // Running totals only grow; a smaller one means the baseline is not this session's.
            (Baseline::Known(_), Some(before)) if total + 1e-12 >= before => {
                Some(round_usd((total - before).max(0.0)))
            }
            _ => {
                unknown = true;
                None
            }
        };
    }
    let warning = unknown.then(|| {
        Warning::new(
            codes::USAGE_BASELINE_UNKNOWN,
            if is_unknown_baseline {
                "This resumed session has no recorded running total, so the CLI's session-wide usage/cost could not be turned into this run's figures (reported as null)."
            } else {
                "The recorded running total does not fit this session's, so the CLI's session-wide usage/cost could not be turned into this run's figures (reported as null)."
            },
        )
    });
    (usage, warning)
}

/// Removes floating-point noise from a subtraction of dollar totals (1e-10 USD precision).
fn round_usd(value: f64) -> f64 {
    (value * 1e10).round() / 1e10
}

/// The shared decision: success = exit 0 and no reported failure; otherwise the error kind
/// comes from the output itself, then the provider's `classify`, then the shared auth
/// pattern (on the reported message, the stderr tail and the last 64 KiB of stdout).
pub fn settle(
    provider: Provider,
    parsed: Parsed,
    input: &FinishInput<'_>,
    stdout_tail: &[u8],
    classify: &dyn Fn(&str, Option<i32>) -> Option<ErrorKind>,
) -> Outcome {
    let (usage, usage_warning) = per_invocation_usage(&parsed.usage, &input.baseline);
    let mut warnings = parsed.warnings;
    warnings.extend(usage_warning);
    let exit = input.exit_code;
    let failed = exit != Some(0) || parsed.failure.is_some();
    let error = failed.then(|| {
        let stderr = clean_text(input.stderr_tail);
        let stdout = clean_text(stdout_tail);
        let reported = parsed.failure.clone().unwrap_or_default();
        let haystack = format!("{}\n{stderr}\n{stdout}", reported.message);
        let kind = reported
            .kind
            .or_else(|| classify(&haystack, exit))
            .or_else(|| has_auth_signal(&haystack).then_some(ErrorKind::NotAuthenticated))
            .unwrap_or(if exit.is_none() {
                ErrorKind::Killed
            } else {
                ErrorKind::Failed
            });
        let message = Some(reported.message)
            .filter(|m| !m.trim().is_empty())
            .map(|m| truncate_chars(m.trim(), MAX_MESSAGE_CHARS))
            .or_else(|| stderr_message(&stderr))
            .or_else(|| {
                Some(parsed.text.trim())
                    .filter(|t| !t.is_empty())
                    .map(|t| truncate_chars(t, MAX_MESSAGE_CHARS))
            })
            .unwrap_or_else(|| match exit {
                Some(code) => format!("{} exited with code {code}", provider.default_binary()),
                None => format!("{} was ended by a signal", provider.default_binary()),
            });
        OutcomeError {
            kind,
            category: kind.category(exit),
            message,
            remediation: kind.remediation(provider),
        }
    });
    Outcome {
        text: parsed.text,
        provider_session_id: parsed.session_id,
        model: parsed.model,
        usage,
        reported_usage: parsed.usage,
        stop_reason: parsed.stop_reason,
        num_turns: parsed.num_turns,
        exit_code: exit,
        is_error: failed,
        error,
        warnings,
        events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(input: u64, cost: f64) -> ReportedUsage {
        ReportedUsage {
            per_invocation: Usage {
                output_tokens: Some(7),
                ..Usage::default()
            },
            running: Usage {
                input_tokens: Some(input),
                cost_usd: Some(cost),
                ..Usage::default()
            },
        }
    }

    #[test]
    fn running_totals_subtract_the_baseline() {
        let r = running(2468, 0.0065416);
        let (u, w) = per_invocation_usage(&r, &Baseline::NewSession);
        assert_eq!(
            (u.input_tokens, u.cost_usd, u.output_tokens),
            (Some(2468), Some(0.0065416), Some(7))
        );
        assert!(w.is_none());
        let prev = Usage {
            input_tokens: Some(1234),
            cost_usd: Some(0.0032708),
            ..Usage::default()
        };
        let (u, w) = per_invocation_usage(&r, &Baseline::Known(prev));
        assert_eq!((u.input_tokens, u.cost_usd), (Some(1234), Some(0.0032708)));
        assert!(w.is_none());
        let (u, w) = per_invocation_usage(&r, &Baseline::Unknown);
        assert_eq!(
            (u.input_tokens, u.cost_usd, u.output_tokens),
            (None, None, Some(7))
        );
        assert_eq!(w.unwrap().code, codes::USAGE_BASELINE_UNKNOWN);
        let bigger = Usage {
            input_tokens: Some(9999),
            cost_usd: Some(1.0),
            ..Usage::default()
        };
        let (u, w) = per_invocation_usage(&r, &Baseline::Known(bigger));
        assert_eq!((u.input_tokens, u.cost_usd), (None, None));
        assert!(w.is_some());
    }

    #[test]
    fn auth_pattern_matches_the_spec_signals() {
        for hit in [
            "Not logged in · Please run /login",
            "Error: Not signed in.",
            "please run grok login",
            "unexpected status 401 Unauthorized",
            "Invalid API key",
            "Missing MISTRAL_API_KEY environment variable",
            "Authentication required",
        ] {
            assert!(has_auth_signal(hit), "{hit}");
        }
        assert!(!has_auth_signal("processed 4013 items"));
    }

    #[test]
    fn stderr_message_skips_noise() {
        let stderr =
            "Warning: Basic terminal detected\n[STARTUP] x\nError: boom\n    at f (x.js:1)\nmore\n";
        assert_eq!(stderr_message(stderr).unwrap(), "Error: boom\nmore");
        assert_eq!(stderr_message("\n\n"), None);
    }
}
