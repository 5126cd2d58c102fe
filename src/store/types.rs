//! Value types shared by several tables — statuses, streams, token usage, warnings — and the
//! small helpers that read them back out of SQLite rows.
//!
//! Owns the text spelling of every enum-like column (`as_str`/`FromStr`, also used by serde).
//! Not here: row structs (each table file owns its own) and any SQL statement.

use std::fmt;
use std::str::FromStr;

use rusqlite::Row;
use rusqlite::types::Type;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A column or argument held a word that is not one of the enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} \"{value}\" (expected one of: {expected})")]
pub struct ParseValueError {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

/// Declares a closed set of words stored as TEXT, with `as_str`, `Display`, `FromStr` and
/// serde all agreeing on one spelling.
macro_rules! text_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vattr:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vattr])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling stored in the database and shown to callers.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(ParseValueError {
                        what: $what,
                        value: other.to_string(),
                        expected: $name::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    };
}

text_enum! {
    /// Where a job is in its life: `queued → running → completed | failed | canceled`, or
    /// `orphaned` when its supervisor died without finishing it (jobs.md).
    pub enum JobStatus ("job status") {
        Queued = "queued",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Canceled = "canceled",
        Orphaned = "orphaned",
    }
}

impl JobStatus {
    /// True once the job has ended; a terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

text_enum! {
    /// The flight-recorder state of one request row (storage.md, two-phase recording).
    pub enum RequestStatus ("request status") {
        Started = "started",
        /// The sync deadline passed; the job still runs and will complete this row.
        Deferred = "deferred",
        Completed = "completed",
        Failed = "failed",
        Canceled = "canceled",
        Orphaned = "orphaned",
    }
}

impl RequestStatus {
    /// True once the row has its outcome.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RequestStatus::Started | RequestStatus::Deferred)
    }

    /// The request status a job's terminal status gives its attached rows; `None` while the
    /// job has not ended.
    pub fn from_job(status: JobStatus) -> Option<RequestStatus> {
        match status {
            JobStatus::Queued | JobStatus::Running => None,
            JobStatus::Completed => Some(RequestStatus::Completed),
            JobStatus::Failed => Some(RequestStatus::Failed),
            JobStatus::Canceled => Some(RequestStatus::Canceled),
            JobStatus::Orphaned => Some(RequestStatus::Orphaned),
        }
    }
}

text_enum! {
    /// One of a job's two captured output streams.
    pub enum Stream ("stream") {
        Stdout = "stdout",
        Stderr = "stderr",
    }
}

text_enum! {
    /// Who runs a job: a detached supervisor process, or a task inside the server
    /// (`[jobs] runner = "in-process"`). In both cases the runner's pid is the one recorded
    /// at claim time, so orphan detection works the same way.
    pub enum Runner ("runner") {
        Supervisor = "supervisor",
        InProcess = "in-process",
    }
}

text_enum! {
    /// The decision of an `mcp_managed` approval (policy.md).
    pub enum ApprovalStatus ("approval status") {
        Approved = "approved",
        Denied = "denied",
    }
}

/// Token and cost figures of a run. `None` = the CLI did not report it (never guessed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
}

/// A warning attached to a result (`structuredContent.warnings`: `{code, message}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

impl Warning {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A conversion failure for column `name`, in the shape rusqlite row mappers return.
fn conversion_error(
    row: &Row<'_>,
    name: &str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    let index = row.as_ref().column_index(name).unwrap_or(0);
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err))
}

/// Reads a TEXT column through `FromStr` (enums, provider keys).
pub(crate) fn parse_col<T>(row: &Row<'_>, name: &str) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(name)?;
    text.parse().map_err(|e| conversion_error(row, name, e))
}

/// Reads a JSON TEXT column into a typed value.
pub(crate) fn json_col<T: DeserializeOwned>(row: &Row<'_>, name: &str) -> rusqlite::Result<T> {
    let text: String = row.get(name)?;
    serde_json::from_str(&text).map_err(|e| conversion_error(row, name, e))
}

/// Reads a 0/1 column.
pub(crate) fn bool_col(row: &Row<'_>, name: &str) -> rusqlite::Result<bool> {
    Ok(row.get::<_, i64>(name)? != 0)
}

/// Reads the six usage columns every table with usage spells the same way.
pub(crate) fn usage_cols(row: &Row<'_>) -> rusqlite::Result<Usage> {
    Ok(Usage {
        input_tokens: row.get("input_tokens")?,
        output_tokens: row.get("output_tokens")?,
        cache_read_tokens: row.get("cache_read_tokens")?,
        cache_creation_tokens: row.get("cache_creation_tokens")?,
        reasoning_tokens: row.get("reasoning_tokens")?,
        cost_usd: row.get("cost_usd")?,
    })
}

/// Serializes a value for a JSON column. Serializing these plain types cannot fail; the
/// fallback keeps the column valid JSON if that ever changes.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// Converts a caller's count or limit to SQLite's integer, saturating instead of wrapping.
pub(crate) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text_and_serde() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!("in-process".parse::<Runner>().unwrap(), Runner::InProcess);
        let err = "done".parse::<JobStatus>().unwrap_err();
        assert!(err.to_string().contains("unknown job status \"done\""));
        assert!(err.to_string().contains("queued, running"));
        assert!(JobStatus::Orphaned.is_terminal() && !JobStatus::Running.is_terminal());
        assert_eq!(
            RequestStatus::from_job(JobStatus::Canceled),
            Some(RequestStatus::Canceled)
        );
    }
}
