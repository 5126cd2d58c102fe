//! The error vocabulary every layer shares: the categories of mcp-surface.md.
//!
//! Each layer keeps its own `thiserror` type (config, store, …); they are mapped once, at
//! the MCP edge, to an [`ErrorCategory`] plus a remediation a person can act on. The same
//! category strings are stored in `jobs.error_category` and `requests.error_category`, so
//! they are part of the contract and never renamed.

use serde::Serialize;

/// Why a request failed, as callers and the flight recorder see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    InvalidInput,
    InputTooLarge,
    NotInstalled,
    AuthError,
    Timeout,
    IdleTimeout,
    OutputOverflow,
    Canceled,
    ResultError,
    CliError,
    Saturated,
    QueueTimeout,
    ApprovalDenied,
    Internal,
}

/// Whether repeating the same request may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    Yes,
    No,
    /// It depends on the cause (a CLI error may be transient).
    Maybe,
}

impl Retryable {
    /// The JSON form of `retryable`: `true`, `false`, or `"maybe"`.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Retryable::Yes => serde_json::Value::Bool(true),
            Retryable::No => serde_json::Value::Bool(false),
            Retryable::Maybe => serde_json::Value::String("maybe".into()),
        }
    }
}

impl ErrorCategory {
    /// Every category, for parsing the stored spelling back.
    pub const ALL: [ErrorCategory; 14] = [
        ErrorCategory::InvalidInput,
        ErrorCategory::InputTooLarge,
        ErrorCategory::NotInstalled,
        ErrorCategory::AuthError,
        ErrorCategory::Timeout,
        ErrorCategory::IdleTimeout,
        ErrorCategory::OutputOverflow,
        ErrorCategory::Canceled,
        ErrorCategory::ResultError,
        ErrorCategory::CliError,
        ErrorCategory::Saturated,
        ErrorCategory::QueueTimeout,
        ErrorCategory::ApprovalDenied,
        ErrorCategory::Internal,
    ];

    /// The category whose stored spelling is `text` (the `error_category` columns).
    pub fn parse(text: &str) -> Option<ErrorCategory> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The stored and reported spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::InvalidInput => "invalid_input",
            ErrorCategory::InputTooLarge => "input_too_large",
            ErrorCategory::NotInstalled => "not_installed",
            ErrorCategory::AuthError => "auth_error",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::IdleTimeout => "idle_timeout",
            ErrorCategory::OutputOverflow => "output_overflow",
            ErrorCategory::Canceled => "canceled",
            ErrorCategory::ResultError => "result_error",
            ErrorCategory::CliError => "cli_error",
            ErrorCategory::Saturated => "saturated",
            ErrorCategory::QueueTimeout => "queue_timeout",
            ErrorCategory::ApprovalDenied => "approval_denied",
            ErrorCategory::Internal => "internal",
        }
    }

    /// The retry advice of mcp-surface.md's category table.
    pub fn retryable(self) -> Retryable {
        match self {
            ErrorCategory::Timeout
            | ErrorCategory::IdleTimeout
            | ErrorCategory::Saturated
            | ErrorCategory::QueueTimeout
            | ErrorCategory::Internal => Retryable::Yes,
            ErrorCategory::ResultError | ErrorCategory::CliError => Retryable::Maybe,
            ErrorCategory::InvalidInput
            | ErrorCategory::InputTooLarge
            | ErrorCategory::NotInstalled
            | ErrorCategory::AuthError
            | ErrorCategory::OutputOverflow
            | ErrorCategory::Canceled
            | ErrorCategory::ApprovalDenied => Retryable::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for c in ErrorCategory::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(ErrorCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCategory::parse("no_such"), None);
        assert_eq!(ErrorCategory::Saturated.retryable(), Retryable::Yes);
        assert_eq!(ErrorCategory::InvalidInput.retryable(), Retryable::No);
        assert_eq!(Retryable::Maybe.to_json(), "maybe");
    }
}
