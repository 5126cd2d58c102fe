//! mistral (vibe) adapter: golden argv/env for every line of providers.md "mistral" and every
//! parameter, and the parser on every captured vibe case, with `export.json`.

use crate::providers_support as support;

use llm_cli_gateway::providers::invocation::{BuildContext, Invocation, SessionBinding, TempFile};
use llm_cli_gateway::providers::outcome::{Baseline, ErrorCategory, ErrorKind, FinishInput, Usage};
use llm_cli_gateway::providers::progress::ProgressKind;
use llm_cli_gateway::providers::request::ValidationError;
use llm_cli_gateway::providers::vibe::{self, VibeRequest};
use serde_json::json;
use support::*;

fn vibe_build(args: serde_json::Value, ctx: &BuildContext) -> Invocation {
    build::<VibeRequest>(args, ctx).expect("builds")
}

fn vibe_err(args: serde_json::Value) -> ValidationError {
    build::<VibeRequest>(args, &ctx("vibe")).expect_err("rejected")
}

const HEAD: [&str; 2] = ["--output=streaming", "--output-dir=/tmp/gw-run-1"];

fn with_head(rest: &[&str]) -> Vec<String> {
    HEAD.iter().chain(rest).map(|s| s.to_string()).collect()
}

#[test]
fn golden_prompt_only() {
    let inv = vibe_build(json!({"prompt": "PROMPT"}), &ctx("vibe"));
    assert_eq!(inv.program, "vibe");
    assert_eq!(
        inv.argv,
        with_head(&["--agent=accept-edits", "--prompt=PROMPT"])
    );
    assert_eq!(env(&inv), [("VIBE_ENABLE_UPDATE_CHECKS", "false")]);
    assert_eq!(inv.stdin, None);
    assert_eq!(inv.result_file, Some("/tmp/gw-run-1/export.json".into()));
}

#[test]
fn the_model_travels_in_the_environment() {
    let mut c = ctx("vibe");
    c.model = Some("devstral-fake".into());
    c.provider_env = vec![("VIBE_HOME".into(), "/srv/vibe".into())];
    let inv = vibe_build(json!({"prompt": "p"}), &c);
    assert_eq!(inv.argv, with_head(&["--agent=accept-edits", "--prompt=p"]));
    assert_eq!(
        env(&inv),
        [
            ("VIBE_ACTIVE_MODEL", "devstral-fake"),
            ("VIBE_ENABLE_UPDATE_CHECKS", "false"),
            ("VIBE_HOME", "/srv/vibe")
        ]
    );
    assert!(!inv.argv.iter().any(|a| a.starts_with("--model")));
}

#[test]
fn golden_every_parameter_in_spec_order() {
    let mut c = ctx("vibe");
    c.session = SessionBinding::Resume("6ab9d2b9-4602-24cd-5eb9-426bdc8f8a27".into());
    let inv = vibe_build(
        json!({
            "prompt": "-- not a flag",
            "sessionId": "6ab9d2b9-4602-24cd-5eb9-426bdc8f8a27",
            "permissionMode": "auto-approve",
            "allowedTools": ["read_file", "bash"],
            "disallowedTools": ["web_fetch"],
            "trust": true,
            "maxTurns": 5,
            "maxPrice": 0.5,
            "maxTokens": 10000,
            "addDir": ["/srv/a", "/srv/b"]
        }),
        &c,
    );
    assert_eq!(
        inv.argv,
        with_head(&[
            "--agent=auto-approve",
            "--enabled-tools=read_file",
            "--enabled-tools=bash",
            "--disabled-tools=web_fetch",
            "--trust",
            "--max-turns=5",
            "--max-price=0.5",
            "--max-tokens=10000",
            "--add-dir=/srv/a",
            "--add-dir=/srv/b",
            "--resume=6ab9d2b9-4602-24cd-5eb9-426bdc8f8a27",
            "--prompt=-- not a flag",
        ])
    );
}

#[test]
fn agents_sessions_and_large_prompts() {
    for agent in [
        "ask",
        "accept-edits",
        "smart-approve",
        "auto-approve",
        "my.custom_agent-2",
    ] {
        let inv = vibe_build(
            json!({"prompt": "p", "permissionMode": agent}),
            &ctx("vibe"),
        );
        assert_eq!(
            inv.argv,
            with_head(&[&format!("--agent={agent}"), "--prompt=p"])
        );
    }
    let mut c = ctx("vibe");
    c.session = SessionBinding::ResumeLatest;
    let inv = vibe_build(json!({"prompt": "p", "resumeLatest": true}), &c);
    assert_eq!(
        inv.argv,
        with_head(&["--agent=accept-edits", "--continue", "--prompt=p"])
    );

    let big = "ü".repeat(60_000);
    let inv = vibe_build(json!({"prompt": big}), &ctx("vibe"));
    assert_eq!(
        inv.argv,
        with_head(&[
            "--agent=accept-edits",
            "--prompt-file=/tmp/gw-run-1/prompt.txt"
        ])
    );
    assert_eq!(
        inv.temp_files,
        [TempFile {
            path: "/tmp/gw-run-1/prompt.txt".into(),
            contents: big.into_bytes(),
            mode: 0o600,
        }]
    );
}

#[test]
fn value_rules() {
    let err = vibe_err(json!({"prompt": "p", "permissionMode": "-x"}));
    assert_eq!(
        err.message,
        "Invalid permissionMode: values must not start with \"-\""
    );
    let err = vibe_err(json!({"prompt": "p", "permissionMode": "../agent"}));
    assert_eq!(
        err.message,
        "Invalid permissionMode \"../agent\": a vibe agent name matches ^[A-Za-z0-9._-]+$"
    );
    let err = vibe_err(json!({"prompt": "p", "maxPrice": 0}));
    assert_eq!(err.field, "maxPrice");
    let err = vibe_err(json!({"prompt": "p", "maxTokens": 0}));
    assert_eq!(
        err.message,
        "Invalid maxTokens: 0 is out of range (1..=18446744073709551615)"
    );
    let err = vibe_err(json!({"prompt": "p", "maxTurns": 0}));
    assert_eq!(err.field, "maxTurns");
    for field in ["allowedTools", "disallowedTools", "addDir"] {
        let err = vibe_err(json!({"prompt": "p", field: ["-x"]}));
        assert_eq!(
            err.message,
            format!("Invalid {field}: values must not start with \"-\"")
        );
    }
}

// ---- parser ----------------------------------------------------------------------------

fn parse(name: &str) -> Parsed {
    parse_case(Box::new(vibe::parser()), "vibe", name, Baseline::NewSession)
}

fn check_case(name: &str) {
    match name {
        "version" => assert_eq!(parse(name).outcome.text, "vibe 3.0.3"),
        "text-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
        }
        "json-ok" | "stdin-prompt" | "active-model-env" | "active-model-env-unknown-alias" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert!(p.outcome.provider_session_id.is_some());
            // No --output-dir in these captures: usage is unknown, and said so.
            assert_eq!(p.outcome.usage, Usage::default());
            let mut expected = vec![];
            if name == "active-model-env-unknown-alias" {
                expected.push("model_not_available");
            }
            expected.push("export_missing");
            assert_eq!(warning_codes(&p.outcome.warnings), expected);
            if name == "active-model-env-unknown-alias" {
                assert!(
                    p.outcome.warnings[0]
                        .message
                        .starts_with("Model 'nonexistent-alias' is not available")
                );
            }
        }
        "streaming-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(
                p.outcome.provider_session_id.as_deref(),
                Some("6ab9d2b9-4602-24cd-5eb9-426bdc8f8a27")
            );
            assert_eq!(p.outcome.model.as_deref(), Some("devstral-fake"));
            assert_eq!(
                p.outcome.usage,
                Usage {
                    input_tokens: Some(121),
                    output_tokens: Some(9),
                    cache_read_tokens: Some(200),
                    cache_creation_tokens: None,
                    reasoning_tokens: None,
                    cost_usd: Some(0.0000744),
                }
            );
            assert!(p.outcome.warnings.is_empty());
            let kinds: Vec<_> = p.events.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    ProgressKind::Started,
                    ProgressKind::Writing,
                    ProgressKind::Finished
                ]
            );
        }
        "model-rejected-by-api" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownModel, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("Invalid model: bogus-model")
            );
            assert_eq!(
                p.outcome.stop_reason.as_deref(),
                Some("infrastructure_failure")
            );
            assert_eq!(p.outcome.usage.cost_usd, Some(0.0));
        }
        "bad-api-key" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::InvalidCredentials, ErrorCategory::AuthError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "Error: Invalid API key (from env var MISTRAL_API_KEY). Please check your API key and try again."
            );
        }
        "no-api-key" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::NotAuthenticated, ErrorCategory::AuthError);
            let err = p.outcome.error.unwrap();
            assert_eq!(
                err.message,
                "Error: Missing MISTRAL_API_KEY environment variable for mistral provider"
            );
            assert!(
                err.remediation.contains("vibe --setup")
                    && err.remediation.contains("MISTRAL_API_KEY")
            );
        }
        "resume-missing" => assert_err(
            &parse(name),
            ErrorKind::UnknownSession,
            ErrorCategory::CliError,
        ),
        "bad-flag" => assert_err(&parse(name), ErrorKind::BadFlag, ErrorCategory::CliError),
        "tool-default-agent" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(
                warning_codes(&p.outcome.warnings),
                ["permission_denied", "export_missing"]
            );
            assert!(
                p.events
                    .iter()
                    .any(|e| e.message == "Approve file_system.bash: deny")
            );
            assert!(p.events.iter().any(|e| e.message
                == "bash: echo hi > out.txt — Tool execution denied by approval callback"));
        }
        "tool-auto-approve" => {
            let p = parse(name);
            assert_ok(&p);
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool && e.message == "bash: echo hi > out.txt"));
        }
        other => panic!("vibe fixture case {other} has no parser test"),
    }
}

#[test]
fn parser_handles_every_captured_case() {
    check_every_case("vibe", 14, check_case);
}

#[test]
fn export_outcomes_other_than_finished_fail() {
    for (outcome, exit, kind) in [
        ("turn_limit", 3, ErrorKind::TurnLimit),
        ("token_limit", 3, ErrorKind::TokenLimit),
        ("price_limit", 3, ErrorKind::BudgetLimit),
        ("deadline", 3, ErrorKind::TimeLimit),
        ("terminated", 0, ErrorKind::Unfinished),
    ] {
        let export = json!({"outcome": outcome, "error": null, "session_id": "s", "usage": {"input_tokens": 5, "cached_input_tokens": 1, "output_tokens": 2}, "cost_usd": 0.01}).to_string();
        let input = FinishInput {
            exit_code: Some(exit),
            export_json: Some(export.as_bytes()),
            ..FinishInput::default()
        };
        let p = run_parser(Box::new(vibe::parser()), b"", 1, &input);
        let err = p.outcome.error.unwrap();
        assert_eq!(err.kind, kind, "{outcome}");
        assert_eq!(
            err.message,
            format!("vibe stopped with outcome \"{outcome}\"")
        );
        assert_eq!(p.outcome.usage.input_tokens, Some(4));
        assert_eq!(p.outcome.provider_session_id.as_deref(), Some("s"));
    }
    // A broken export.json is treated as missing, not as a crash.
    let input = FinishInput {
        exit_code: Some(0),
        export_json: Some(b"{not json"),
        ..FinishInput::default()
    };
    let p = run_parser(Box::new(vibe::parser()), b"", 1, &input);
    assert!(p.outcome.is_success());
    assert_eq!(warning_codes(&p.outcome.warnings), ["export_missing"]);
}
