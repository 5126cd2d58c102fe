//! A CLI's version against the one its adapter was tested with
//! ([`Provider::tested_version`](crate::providers::Provider::tested_version)), for `doctor`
//! and the `cli_versions` / `cli_upgrade` tools.
//!
//! Owns: locating a CLI's binary ([`locate`]: the `PATH` of an [`Env`], then
//! [`exec::install_dirs`], as admission does); the bounded, non-interactive probe of a CLI
//! ([`probe`] with any arguments, [`probe_version`] for `<bin> --version`, and
//! [`probe_version_async`] off the async runtime): [`PROBE_TIMEOUT`] of wall time, then the
//! whole process group is killed by [`exec::run`]; reading the first version number out of
//! what a CLI printed ([`parse`]); and the comparison with the tested version ([`compare`]:
//! a [`VersionStatus`] and whether the version is `compatible`).
//!
//! Not here: what a caller makes of it — doctor's notes, checks and readiness, the
//! `cli_versions` output and its error messages — nor auth probes' meaning, nor running
//! upgrades.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::Serialize;

use crate::exec::{self, CancelToken, EndReason, ExecSpec, Limits, NotFound, Stream};
use crate::paths::Env;

/// The longest one probe may run before its process group is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most output (stdout and stderr together) a probe reads; past it the run ends with
/// `output_overflow`.
const PROBE_OUTPUT_CAP: u64 = 64 * 1024;

/// Where `binary` (a name looked up on `PATH`, or a path) is: `env`'s `PATH` first, then the
/// usual install dirs under `env`'s home.
pub fn locate(binary: &str, env: &Env) -> Result<PathBuf, NotFound> {
    let home = env.home_dir();
    exec::resolve_program(
        binary,
        env.get("PATH").map(std::ffi::OsStr::new),
        &exec::install_dirs(home.as_deref()),
    )
}

/// What one probe printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Probe {
    pub stdout: String,
    pub stderr: String,
    pub end: EndReason,
    pub exit_code: Option<i32>,
    /// Why no process ran, when none did.
    pub spawn_error: Option<String>,
}

impl Probe {
    /// A probe that never ran, for `why`.
    pub fn failed(why: impl Into<String>) -> Probe {
        Probe {
            stdout: String::new(),
            stderr: String::new(),
            end: EndReason::SpawnFailed,
            exit_code: None,
            spawn_error: Some(why.into()),
        }
    }

    /// The CLI exited on its own with code 0.
    pub fn succeeded(&self) -> bool {
        self.end == EndReason::Exited && self.exit_code == Some(0)
    }

    /// Stdout, or stderr when stdout is empty (a CLI may print its version there).
    pub fn output(&self) -> &str {
        if self.stdout.is_empty() {
            &self.stderr
        } else {
            &self.stdout
        }
    }
}

/// Runs `program args…` with `env` added to the environment, bounded by [`PROBE_TIMEOUT`]
/// (then the group gets SIGTERM, SIGKILL 0.5 s later) and a 64 KiB output cap. Blocks.
pub fn probe(program: &Path, args: &[&str], env: &BTreeMap<String, String>) -> Probe {
    let mut spec = ExecSpec::new(program).args(args.iter().copied());
    for (key, value) in env {
        spec = spec.env(key, value);
    }
    let limits = Limits {
        idle_timeout: None,
        wall_timeout: Some(PROBE_TIMEOUT),
        output_cap: PROBE_OUTPUT_CAP,
        kill_grace: Duration::from_millis(500),
        stray_wait: Duration::from_millis(500),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut sink = |stream: Stream, bytes: &[u8], _at: SystemTime| {
        match stream {
            Stream::Stdout => stdout.extend_from_slice(bytes),
            Stream::Stderr => stderr.extend_from_slice(bytes),
        }
        exec::Activity::Progress
    };
    let report = exec::run(&spec, &limits, &CancelToken::new(), &mut sink);
    Probe {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        end: report.end,
        exit_code: report.exit.and_then(|exit| exit.code()),
        spawn_error: report.spawn_error.map(|error| error.to_string()),
    }
}

/// `<program> --version`, bounded as [`probe`]. Blocks.
pub fn probe_version(program: &Path, env: &BTreeMap<String, String>) -> Probe {
    probe(program, &["--version"], env)
}

/// [`probe_version`] on a blocking thread, for async callers.
pub async fn probe_version_async(program: PathBuf, env: BTreeMap<String, String>) -> Probe {
    tokio::task::spawn_blocking(move || probe_version(&program, &env))
        .await
        .unwrap_or_else(|_| Probe::failed("the probe thread panicked"))
}

/// A version number: its dot-separated parts, compared part by part (`1.0.9` < `1.0.41`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(Vec<u64>);

impl Version {
    /// The first part.
    pub fn major(&self) -> u64 {
        self.0[0]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// The first version number in `text`: the first run of digits and dots (outer dots
/// dropped) that has two or more parts, all of them numbers. `None` when there is none.
pub fn parse(text: &str) -> Option<Version> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|run| run.trim_matches('.'))
        .filter(|run| run.contains('.'))
        .find_map(|run| {
            run.split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u64>>>()
        })
        .map(Version)
}

/// How a CLI's version relates to the tested one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    Tested,
    Newer,
    Older,
    /// No version number could be read.
    Unknown,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Tested => "tested",
            VersionStatus::Newer => "newer",
            VersionStatus::Older => "older",
            VersionStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for VersionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub status: VersionStatus,
    /// The tested version or newer within the same major version; `None` when unknown.
    pub compatible: Option<bool>,
}

/// Compares `found` with `tested` (a version string such as `2.1.329`); `unknown` when
/// either has no version number.
pub fn compare(found: Option<&Version>, tested: &str) -> Comparison {
    let (Some(found), Some(tested)) = (found, parse(tested)) else {
        return Comparison {
            status: VersionStatus::Unknown,
            compatible: None,
        };
    };
    let status = match found.cmp(&tested) {
        std::cmp::Ordering::Equal => VersionStatus::Tested,
        std::cmp::Ordering::Greater => VersionStatus::Newer,
        std::cmp::Ordering::Less => VersionStatus::Older,
    };
    Comparison {
        status,
        compatible: Some(status != VersionStatus::Older && found.major() == tested.major()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Option<String> {
        parse(text).map(|v| v.to_string())
    }

    fn status(raw: &str, tested: &str) -> VersionStatus {
        compare(parse(raw).as_ref(), tested).status
    }

    fn verdict(raw: &str, tested: &str) -> (VersionStatus, Option<bool>) {
        let c = compare(parse(raw).as_ref(), tested);
        (c.status, c.compatible)
    }

    #[test]
    fn the_first_version_number_is_read() {
        assert_eq!(version("2.1.329 (Claude Code)").as_deref(), Some("2.1.329"));
        assert_eq!(
            version("grok 1.0.41 (4220f3b224a6)").as_deref(),
            Some("1.0.41")
        );
        assert_eq!(version("codex-cli 0.170.0").as_deref(), Some("0.170.0"));
        assert_eq!(version("vibe v3.0.3\n").as_deref(), Some("3.0.3"));
        assert_eq!(version("tool 1.2.3-beta.4").as_deref(), Some("1.2.3"));
        assert_eq!(version("release 2.1.").as_deref(), Some("2.1"));
        // Runs that are not versions are passed over.
        assert_eq!(version("1..2 then 3.4.5").as_deref(), Some("3.4.5"));
        assert_eq!(
            version("99999999999999999999.1 then 1.2.3").as_deref(),
            Some("1.2.3")
        );
        assert_eq!(version("no version"), None);
        assert_eq!(version("vibe"), None);
        assert_eq!(version("build 42"), None);
        assert_eq!(version(""), None);
    }

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(
            status("2.1.329 (Claude Code)", "2.1.329"),
            VersionStatus::Tested
        );
        assert_eq!(status("codex-cli 0.170.0", "0.169.0"), VersionStatus::Newer);
        assert_eq!(
            status("grok 1.0.9 (4220f3b224a6)", "1.0.41"),
            VersionStatus::Older
        );
        assert_eq!(status("vibe", "3.0.3"), VersionStatus::Unknown);
        assert_eq!(status("3.0.3", "not a version"), VersionStatus::Unknown);
    }

    #[test]
    fn compatible_is_tested_or_newer_within_the_major() {
        assert_eq!(
            verdict("2.1.329", "2.1.329"),
            (VersionStatus::Tested, Some(true))
        );
        assert_eq!(
            verdict("2.2.0", "2.1.329"),
            (VersionStatus::Newer, Some(true))
        );
        assert_eq!(
            verdict("3.0.0", "2.1.329"),
            (VersionStatus::Newer, Some(false))
        );
        assert_eq!(
            verdict("2.1.1", "2.1.329"),
            (VersionStatus::Older, Some(false))
        );
        assert_eq!(
            verdict("no version", "2.1.329"),
            (VersionStatus::Unknown, None)
        );
    }

    #[test]
    fn the_status_serialises_lowercase() {
        for status in [
            VersionStatus::Tested,
            VersionStatus::Newer,
            VersionStatus::Older,
            VersionStatus::Unknown,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
    }

    #[test]
    fn a_probe_reads_stdout_else_stderr() {
        let mut probe = Probe::failed("x");
        assert!(!probe.succeeded());
        probe.stderr = "tool 1.2.3".to_string();
        assert_eq!(probe.output(), "tool 1.2.3");
        probe.stdout = "tool 2.0.0".to_string();
        assert_eq!(probe.output(), "tool 2.0.0");
    }
}
