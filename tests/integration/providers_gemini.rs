//! gemini adapter: golden argv for every line of providers.md "gemini" and every parameter,
//! and the parser on every captured gemini case.

use crate::providers_support as support;

use llm_cli_gateway::providers::gemini::{self, GeminiRequest};
use llm_cli_gateway::providers::invocation::{BuildContext, Invocation, SessionBinding};
use llm_cli_gateway::providers::outcome::{Baseline, ErrorCategory, ErrorKind, Usage};
use llm_cli_gateway::providers::progress::ProgressKind;
use llm_cli_gateway::providers::request::{ValidationError, ValidationKind};
use serde_json::json;
use support::*;

fn gemini_build(args: serde_json::Value, ctx: &BuildContext) -> Invocation {
    build::<GeminiRequest>(args, ctx).expect("builds")
}

fn gemini_err(args: serde_json::Value) -> ValidationError {
    build::<GeminiRequest>(args, &ctx("gemini")).expect_err("rejected")
}

const HEAD: [&str; 2] = ["--skip-trust", "--output-format=stream-json"];

fn with_head(rest: &[&str]) -> Vec<String> {
    HEAD.iter().chain(rest).map(|s| s.to_string()).collect()
}

#[test]
fn golden_prompt_only() {
    let inv = gemini_build(json!({"prompt": "PROMPT"}), &ctx("gemini"));
    assert_eq!(inv.argv, with_head(&["--prompt=PROMPT"]));
    assert_eq!(inv.stdin, None);
    assert!(inv.env_overrides.is_empty());
    assert!(inv.temp_files.is_empty());
}

#[test]
fn golden_every_parameter_in_spec_order() {
    let mut c = ctx("gemini");
    c.model = Some("gemini-3.8-flash".into());
    c.session = SessionBinding::Resume("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into());
    let inv = gemini_build(
        json!({
            "prompt": "-p is not a flag here",
            "sessionId": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "approvalMode": "auto_edit",
            "includeDirs": ["/srv/a", "/srv/b"],
            "allowedTools": ["read_file", "run_shell_command(git status)"],
            "allowedMcpServerNames": ["docs", "search"],
            "sandbox": true
        }),
        &c,
    );
    assert_eq!(
        inv.argv,
        with_head(&[
            "--model=gemini-3.8-flash",
            "--approval-mode=auto_edit",
            "--include-directories=/srv/a,/srv/b",
            "--allowed-tools=read_file,run_shell_command(git status)",
            "--allowed-mcp-server-names=docs,search",
            "--sandbox",
            "--resume=7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "--prompt=-p is not a flag here",
        ])
    );
    assert!(inv.warnings.is_empty());
}

#[test]
fn resume_latest_uses_the_latest_keyword() {
    let mut c = ctx("gemini");
    c.session = SessionBinding::ResumeLatest;
    let inv = gemini_build(json!({"prompt": "p", "resumeLatest": true}), &c);
    assert_eq!(inv.argv, with_head(&["--resume=latest", "--prompt=p"]));
}

#[test]
fn approval_modes_and_yolo() {
    for mode in ["default", "auto_edit", "yolo", "plan"] {
        let inv = gemini_build(json!({"prompt": "p", "approvalMode": mode}), &ctx("gemini"));
        assert_eq!(
            inv.argv,
            with_head(&[&format!("--approval-mode={mode}"), "--prompt=p"])
        );
    }
    // yolo is emitted as --approval-mode=yolo, never -y (gemini rejects both together).
    let inv = gemini_build(json!({"prompt": "p", "yolo": true}), &ctx("gemini"));
    assert_eq!(inv.argv, with_head(&["--approval-mode=yolo", "--prompt=p"]));
    let inv = gemini_build(
        json!({"prompt": "p", "yolo": true, "approvalMode": "yolo"}),
        &ctx("gemini"),
    );
    assert_eq!(inv.argv, with_head(&["--approval-mode=yolo", "--prompt=p"]));
    let err = gemini_err(json!({"prompt": "p", "yolo": true, "approvalMode": "plan"}));
    assert_eq!(err.field, "yolo");
    assert_eq!(
        err.message,
        "yolo and approvalMode plan are mutually exclusive: yolo means approvalMode yolo"
    );
    assert!(
        !gemini_build(json!({"prompt": "p", "yolo": true}), &ctx("gemini"))
            .argv
            .iter()
            .any(|a| a == "-y" || a == "--yolo")
    );
}

#[test]
fn add_dir_is_an_alias_of_include_dirs() {
    let inv = gemini_build(json!({"prompt": "p", "addDir": ["/a"]}), &ctx("gemini"));
    assert_eq!(
        inv.argv,
        with_head(&["--include-directories=/a", "--prompt=p"])
    );
    let err = gemini_err(json!({"prompt": "p", "addDir": ["/a"], "includeDirs": ["/b"]}));
    assert_eq!(
        err.message,
        "includeDirs and addDir are the same parameter for gemini: give one"
    );
}

#[test]
fn list_values_are_checked() {
    for field in [
        "includeDirs",
        "addDir",
        "allowedTools",
        "allowedMcpServerNames",
    ] {
        let err = gemini_err(json!({"prompt": "p", field: ["a,b"]}));
        assert_eq!(
            err.message,
            format!(
                "Invalid {field}: values must not contain \",\" (the CLI receives them comma-separated)"
            )
        );
        let err = gemini_err(json!({"prompt": "p", field: ["-a"]}));
        assert_eq!(
            err.message,
            format!("Invalid {field}: values must not start with \"-\"")
        );
    }
}

#[test]
fn a_prompt_must_fit_in_one_argument() {
    // 131 062 bytes + "--prompt=" = 131 071: the largest argument Linux accepts.
    let mut roomy = ctx("gemini");
    roomy.max_prompt_chars = 200_000;
    let fits = "a".repeat(131_062);
    let inv = gemini_build(json!({"prompt": fits}), &roomy);
    assert_eq!(inv.argv.last().map(String::len), Some(131_071));
    assert_eq!(inv.stdin, None);
    let err = build::<GeminiRequest>(json!({"prompt": "a".repeat(131_063)}), &roomy).unwrap_err();
    assert_eq!(err.kind, ValidationKind::InputTooLarge);
    assert!(err.message.contains("131071"), "{}", err.message);
    assert!(
        err.message
            .starts_with("prompt is too large for gemini: 131063 bytes")
    );
    // Within max_prompt_chars but over the argument limit in bytes.
    let err = gemini_err(json!({"prompt": "日".repeat(50_000)}));
    assert_eq!(err.kind, ValidationKind::InputTooLarge);
}

// ---- parser ----------------------------------------------------------------------------

fn parse(name: &str) -> Parsed {
    parse_case(
        Box::new(gemini::parser()),
        "gemini",
        name,
        Baseline::NewSession,
    )
}

/// Two model calls (router + main) of 321 uncached input, 4000 cached, 8 output each.
const STREAM_USAGE: Usage = Usage {
    input_tokens: Some(642),
    output_tokens: Some(16),
    cache_read_tokens: Some(8000),
    cache_creation_tokens: None,
    reasoning_tokens: None,
    cost_usd: None,
};

fn check_case(name: &str) {
    match name {
        "version" => assert_eq!(parse(name).outcome.text, "0.61.0"),
        "text-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
        }
        "list-sessions" => {
            let p = parse(name);
            assert_ok(&p);
            assert!(
                p.outcome
                    .text
                    .contains("Available sessions for this project (9):")
            );
        }
        "stream-json-ok" | "session-id-new" | "resume-by-uuid" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            // Stats are per invocation and include the router call.
            assert_eq!(p.outcome.usage, STREAM_USAGE);
            assert_eq!(
                p.outcome.model, None,
                "model auto: not reported in stream mode"
            );
            if name != "stream-json-ok" {
                assert_eq!(
                    p.outcome.provider_session_id.as_deref(),
                    Some("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
                );
            }
            let kinds: Vec<_> = p.events.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    ProgressKind::Started,
                    ProgressKind::Writing,
                    ProgressKind::Usage,
                    ProgressKind::Finished
                ]
            );
        }
        "json-ok" | "resume-latest" | "stdin-plus-prompt" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.model.as_deref(), Some("gemini-3.8-flash"));
            assert_eq!(
                p.outcome.usage,
                Usage {
                    input_tokens: Some(642),
                    output_tokens: Some(16),
                    cache_read_tokens: Some(8000),
                    cache_creation_tokens: None,
                    reasoning_tokens: Some(142),
                    cost_usd: None,
                }
            );
            assert!(p.outcome.provider_session_id.is_some());
        }
        "tool-default-mode" | "tool-yolo" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.usage.input_tokens, Some(963));
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool
                && e.message == "run_shell_command: echo hi > out.txt"));
            let failed = p.events.iter().any(|e| {
                e.message
                    .starts_with("tool failed: Tool \"run_shell_command\" not found")
            });
            assert_eq!(failed, name == "tool-default-mode");
        }
        "no-auth-json" | "no-auth-text" | "gateway-auth-without-settings" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::NotAuthenticated, ErrorCategory::AuthError);
            let err = p.outcome.error.unwrap();
            assert!(err.remediation.contains("GEMINI_API_KEY"));
            if name == "gateway-auth-without-settings" {
                assert_eq!(err.message, "Invalid auth method selected.");
                assert_eq!(
                    p.outcome.provider_session_id.as_deref(),
                    Some("55dfda19-d802-4119-915d-d02e4c4e4716")
                );
            } else {
                assert!(err.message.starts_with("Please set an Auth method"));
            }
        }
        "bad-api-key-json" | "bad-api-key-stream-json" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::InvalidCredentials, ErrorCategory::AuthError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("API key not valid")
            );
        }
        "unknown-model-json" | "unknown-model-stream-json" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownModel, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("models/bogus-model is not found")
            );
        }
        "resume-missing" | "resume-other-project" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownSession, ErrorCategory::CliError);
            let err = p.outcome.error.unwrap();
            assert!(
                err.message
                    .starts_with("Error resuming session: Invalid session identifier")
            );
            assert!(err.remediation.contains("project-scoped"));
        }
        "session-id-in-use" => assert_err(
            &parse(name),
            ErrorKind::SessionIdInUse,
            ErrorCategory::CliError,
        ),
        "untrusted-folder" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UntrustedFolder, ErrorCategory::CliError);
            let err = p.outcome.error.unwrap();
            assert!(!err.message.contains('\u{1b}'), "colour codes are stripped");
            assert!(
                err.message
                    .starts_with("Gemini CLI is not running in a trusted directory")
            );
        }
        "bad-flag" | "yolo-and-approval-mode" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::BadFlag, ErrorCategory::CliError);
            let message = p.outcome.error.unwrap().message;
            assert!(
                message.starts_with("Unknown argument: bogus")
                    || message.starts_with("Cannot use both"),
                "{message}"
            );
        }
        other => panic!("gemini fixture case {other} has no parser test"),
    }
}

#[test]
fn parser_handles_every_captured_case() {
    check_every_case("gemini", 24, check_case);
}

#[test]
fn exit_codes_map_to_kinds() {
    use llm_cli_gateway::providers::outcome::FinishInput;
    for (code, kind) in [
        (41, ErrorKind::NotAuthenticated),
        (42, ErrorKind::BadFlag),
        (52, ErrorKind::ConfigError),
        (53, ErrorKind::TurnLimit),
        (55, ErrorKind::UntrustedFolder),
        (144, ErrorKind::ApiError),
        (1, ErrorKind::Failed),
    ] {
        let p = run_parser(
            Box::new(gemini::parser()),
            b"",
            1,
            &FinishInput::exited(code, b"boom"),
        );
        assert_eq!(p.outcome.error.unwrap().kind, kind, "exit {code}");
    }
}
