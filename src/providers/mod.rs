//! The five coding-agent CLIs the gateway drives, as a closed set of keys.
//!
//! This module owns the *identity* of each provider: its key (the MCP tool prefix), the
//! binary it runs, where it is installed from and which version the adapters were tested
//! against. It does no I/O. The per-provider adapters (request → invocation, output →
//! outcome) live beside it in their own modules.

use std::fmt;
use std::str::FromStr;

pub mod big_line;
pub mod claude;
pub mod codex;
pub mod dispatch;
pub mod gemini;
pub mod grok;
pub mod invocation;
pub mod outcome;
pub mod progress;
pub mod request;
pub mod vibe;

pub use dispatch::{AnyRequest, ProviderRequest, new_parser, request_schema};
pub use invocation::{BuildContext, Invocation, McpServerSpec, SessionBinding, TempFile};
pub use outcome::{
    Baseline, ErrorCategory, ErrorKind, FinishInput, Outcome, OutcomeError, ReportedUsage, Usage,
};
pub use progress::{Feed, ProgressEvent, ProgressKind, StreamParser};
pub use request::{Limits, ValidationError, ValidationKind, Warning};

use serde::{Deserialize, Serialize};

/// A provider key: the tool prefix (`claude_request`, …) and the `cli` column in the store.
///
/// `Mistral` runs the `vibe` binary; its key stays `mistral` everywhere a caller sees it.
/// In tool arguments `vibe` is accepted as another name of `mistral`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Claude,
    Codex,
    Gemini,
    Grok,
    #[serde(alias = "vibe")]
    Mistral,
}

impl Provider {
    /// Every provider, in the order tools and reports list them.
    pub const ALL: [Provider; 5] = [
        Provider::Claude,
        Provider::Codex,
        Provider::Gemini,
        Provider::Grok,
        Provider::Mistral,
    ];

    /// The key used in tool names, config sections and the store.
    pub fn key(self) -> &'static str {
        match self {
            Provider::Claude => "claude",
            Provider::Codex => "codex",
            Provider::Gemini => "gemini",
            Provider::Grok => "grok",
            Provider::Mistral => "mistral",
        }
    }

    /// The default binary name looked up on `PATH`.
    pub fn default_binary(self) -> &'static str {
        match self {
            Provider::Mistral => "vibe",
            other => other.key(),
        }
    }

    /// The prefix of this provider's model environment variables (`<KEY>_DEFAULT_MODEL`).
    /// Never `VIBE_…`: vibe reads those itself from the inherited environment.
    pub fn env_prefix(self) -> &'static str {
        match self {
            Provider::Claude => "CLAUDE",
            Provider::Codex => "CODEX",
            Provider::Gemini => "GEMINI",
            Provider::Grok => "GROK",
            Provider::Mistral => "MISTRAL",
        }
    }

    /// The package that provides the CLI, for messages and `cli_upgrade` plans.
    pub fn package(self) -> &'static str {
        match self {
            Provider::Claude => "npm @anthropic-ai/claude-code",
            Provider::Codex => "npm @openai/codex",
            Provider::Gemini => "npm @google/gemini-cli",
            Provider::Grok => "npm @xai-official/grok",
            Provider::Mistral => "PyPI mistral-vibe",
        }
    }

    /// The command a person runs to install the CLI.
    pub fn install_command(self) -> &'static str {
        match self {
            Provider::Claude => "npm install -g @anthropic-ai/claude-code",
            Provider::Codex => "npm install -g @openai/codex",
            Provider::Gemini => "npm install -g @google/gemini-cli",
            Provider::Grok => "npm install -g @xai-official/grok",
            Provider::Mistral => "uv tool install mistral-vibe (or: pip install mistral-vibe)",
        }
    }

    /// The CLI version the adapters were written and tested against.
    pub fn tested_version(self) -> &'static str {
        match self {
            Provider::Claude => "2.1.329",
            Provider::Codex => "0.169.0",
            Provider::Gemini => "0.61.0",
            Provider::Grok => "1.0.41",
            Provider::Mistral => "3.0.3",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The error for a string that names no provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cli \"{0}\" (expected one of: claude, codex, gemini, grok, mistral)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Accepts the provider keys, and `vibe` as the binary name of `mistral`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "claude" => Ok(Provider::Claude),
            "codex" => Ok(Provider::Codex),
            "gemini" => Ok(Provider::Gemini),
            "grok" => Ok(Provider::Grok),
            "mistral" | "vibe" => Ok(Provider::Mistral),
            other => Err(UnknownProvider(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_vibe_is_mistral() {
        for p in Provider::ALL {
            assert_eq!(p.key().parse::<Provider>().unwrap(), p);
        }
        assert_eq!("vibe".parse::<Provider>().unwrap(), Provider::Mistral);
        assert_eq!(Provider::Mistral.default_binary(), "vibe");
        let err = "gpt".parse::<Provider>().unwrap_err();
        assert!(err.to_string().contains("unknown cli \"gpt\""));
    }
}
