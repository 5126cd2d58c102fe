//! Helpers shared by the `providers_*` tests: fixture loading (from `tests/fixtures/`, copied
//! from the real CLIs' captured output), a default build context, and running a provider's
//! parser over a captured case. Included by each test file with `#[path]`; it has no tests of
//! its own.
#![allow(dead_code)]

use std::path::PathBuf;

use llm_cli_gateway::providers::dispatch::ProviderRequest;
use llm_cli_gateway::providers::invocation::{BuildContext, Invocation};
use llm_cli_gateway::providers::outcome::{
    Baseline, ErrorCategory, ErrorKind, FinishInput, Outcome,
};
use llm_cli_gateway::providers::progress::{ProgressEvent, StreamParser};
use llm_cli_gateway::providers::request::ValidationError;
use serde::Deserialize;

pub const CWD: &str = "/home/user/project";
pub const TMP: &str = "/tmp/gw-run-1";
/// The answer of every successful captured case (the CLIs ran against a fake backend).
pub const HELLO: &str = "Hello from the fake backend.";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A captured file: `cli-samples/<cli>/<case>.<ext>`; empty when absent.
pub fn sample(cli: &str, case: &str, ext: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(format!("cli-samples/{cli}/{case}.{ext}")))
        .unwrap_or_default()
}

/// Whether a captured file exists.
pub fn has_sample(cli: &str, case: &str, ext: &str) -> bool {
    fixtures_dir()
        .join(format!("cli-samples/{cli}/{case}.{ext}"))
        .exists()
}

/// A captured `--help` text.
pub fn help(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(format!("cli-help/{name}.txt")))
        .unwrap_or_else(|e| panic!("help fixture {name}: {e}"))
}

/// One line of `manifest.jsonl`: how a case was captured.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub cli: String,
    pub case: String,
    pub argv: Vec<String>,
    pub exit_code: i32,
    pub note: String,
}

pub fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures_dir().join("cli-samples/manifest.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn cases_of(cli: &str) -> Vec<Case> {
    manifest().into_iter().filter(|c| c.cli == cli).collect()
}

pub fn case(cli: &str, name: &str) -> Case {
    manifest()
        .into_iter()
        .find(|c| c.cli == cli && c.case == name)
        .unwrap_or_else(|| panic!("no fixture {cli}/{name}"))
}

/// A context like the gateway's defaults, for binary `program`.
pub fn ctx(program: &str) -> BuildContext {
    BuildContext::new(program, CWD, TMP)
}

/// Deserialises a request from JSON (as the MCP layer would) and builds it.
pub fn build<R: ProviderRequest>(
    args: serde_json::Value,
    ctx: &BuildContext,
) -> Result<Invocation, ValidationError> {
    let request: R = serde_json::from_value(args).expect("request deserialises");
    request.build(ctx)
}

/// What a parser produced over a whole captured case.
pub struct Parsed {
    pub outcome: Outcome,
    /// Every event: while feeding, then while finishing.
    pub events: Vec<ProgressEvent>,
    /// Feeds that were not activity (idle timer not reset).
    pub quiet_feeds: usize,
}

/// Feeds `stdout` to `parser` in `chunk`-byte pieces, then finishes.
pub fn run_parser(
    parser: Box<dyn StreamParser>,
    stdout: &[u8],
    chunk: usize,
    input: &FinishInput<'_>,
) -> Parsed {
    feed_all(parser, stdout.chunks(chunk.max(1)), input)
}

/// Feeds each piece to `parser`, then finishes.
fn feed_all<'p>(
    mut parser: Box<dyn StreamParser>,
    pieces: impl Iterator<Item = &'p [u8]>,
    input: &FinishInput<'_>,
) -> Parsed {
    let mut events = Vec::new();
    let mut quiet_feeds = 0;
    for piece in pieces {
        let feed = parser.feed(piece);
        if !feed.activity {
            quiet_feeds += 1;
        }
        events.extend(feed.events);
    }
    let outcome = parser.finish(input);
    events.extend(outcome.events.clone());
    Parsed {
        outcome,
        events,
        quiet_feeds,
    }
}

/// Runs a fresh parser over captured case `cli/name` with its recorded exit code, fed line
/// by line (the executor's usual pattern), with the given baseline.
pub fn parse_case(
    parser: Box<dyn StreamParser>,
    cli: &str,
    name: &str,
    baseline: Baseline,
) -> Parsed {
    let stdout = sample(cli, name, "stdout");
    let stderr = sample(cli, name, "stderr");
    let export = sample(cli, name, "export.json");
    let input = FinishInput {
        exit_code: Some(case(cli, name).exit_code),
        stderr_tail: &stderr,
        baseline,
        export_json: has_sample(cli, name, "export.json").then_some(export.as_slice()),
    };
    feed_all(parser, stdout.split_inclusive(|&b| b == b'\n'), &input)
}

/// Checks every captured case of `cli` (there must be `expected` of them) with `check`.
pub fn check_every_case(cli: &str, expected: usize, check: fn(&str)) {
    let cases = cases_of(cli);
    assert_eq!(cases.len(), expected);
    for case in cases {
        check(&case.case);
    }
}

/// A successful outcome.
pub fn assert_ok(p: &Parsed) {
    assert!(p.outcome.is_success(), "{:?}", p.outcome.error);
    assert_eq!(p.outcome.error, None);
}

/// A failed outcome with this kind and category, and a message and remediation to show.
pub fn assert_err(p: &Parsed, kind: ErrorKind, category: ErrorCategory) {
    let err = p.outcome.error.as_ref().expect("an error");
    assert!(p.outcome.is_error);
    assert_eq!((err.kind, err.category), (kind, category), "{err:?}");
    assert!(!err.message.is_empty() && !err.remediation.is_empty());
}

/// The argv as `&str`s, for comparisons with literals.
pub fn argv(inv: &Invocation) -> Vec<&str> {
    inv.argv.iter().map(String::as_str).collect()
}

/// The env overrides as `(&str, &str)`s.
pub fn env(inv: &Invocation) -> Vec<(&str, &str)> {
    inv.env_overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Warning codes, in order.
pub fn warning_codes(warnings: &[llm_cli_gateway::providers::request::Warning]) -> Vec<&str> {
    warnings.iter().map(|w| w.code.as_str()).collect()
}
