//! grok adapter: golden argv for every line of providers.md "grok" and every parameter, and
//! the parser on every captured grok case (and the old community `grok`).

use crate::providers_support as support;

use llm_cli_gateway::providers::grok::{self, GrokRequest};
use llm_cli_gateway::providers::invocation::{BuildContext, Invocation, SessionBinding, TempFile};
use llm_cli_gateway::providers::outcome::{Baseline, ErrorCategory, ErrorKind, FinishInput, Usage};
use llm_cli_gateway::providers::progress::ProgressKind;
use llm_cli_gateway::providers::request::ValidationError;
use serde_json::json;
use support::*;

fn grok_build(args: serde_json::Value, ctx: &BuildContext) -> Invocation {
    build::<GrokRequest>(args, ctx).expect("builds")
}

fn grok_err(args: serde_json::Value) -> ValidationError {
    build::<GrokRequest>(args, &ctx("grok")).expect_err("rejected")
}

const HEAD: [&str; 2] = ["--no-auto-update", "--output-format=streaming-json"];

fn with_head(rest: &[&str]) -> Vec<String> {
    HEAD.iter().chain(rest).map(|s| s.to_string()).collect()
}

#[test]
fn golden_prompt_only() {
    let inv = grok_build(json!({"prompt": "PROMPT"}), &ctx("grok"));
    assert_eq!(inv.argv, with_head(&["--single=PROMPT"]));
    assert_eq!(inv.stdin, None);
    assert!(inv.env_overrides.is_empty());
}

#[test]
fn golden_every_parameter_in_spec_order() {
    let mut c = ctx("grok");
    c.model = Some("grok-4.6".into());
    c.session = SessionBinding::Resume("8b2c3d4e-5f60-4a7b-9c8d-0e1f2a3b4c5d".into());
    let inv = grok_build(
        json!({
            "prompt": "--single is just text",
            "sessionId": "8b2c3d4e-5f60-4a7b-9c8d-0e1f2a3b4c5d",
            "permissionMode": "acceptEdits",
            "reasoningEffort": "high",
            "allowedTools": ["read_file", "grep"],
            "disallowedTools": ["web_search"],
            "allow": ["Bash(git status)", "Read(src/**)"],
            "deny": ["Bash(rm *)"],
            "maxTurns": 10000,
            "sandbox": "workspace"
        }),
        &c,
    );
    assert_eq!(
        inv.argv,
        with_head(&[
            "--model=grok-4.6",
            "--permission-mode=acceptEdits",
            "--reasoning-effort=high",
            "--tools=read_file,grep",
            "--disallowed-tools=web_search",
            "--allow=Bash(git status)",
            "--allow=Read(src/**)",
            "--deny=Bash(rm *)",
            "--max-turns=10000",
            "--sandbox=workspace",
            "--resume=8b2c3d4e-5f60-4a7b-9c8d-0e1f2a3b4c5d",
            "--single=--single is just text",
        ])
    );
    assert!(inv.warnings.is_empty());
}

#[test]
fn json_schema_switches_to_the_json_output_format() {
    let inv = grok_build(
        json!({"prompt": "p", "jsonSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}),
        &ctx("grok"),
    );
    assert_eq!(
        argv(&inv),
        [
            "--no-auto-update",
            "--output-format=json",
            "--json-schema={\"properties\":{\"name\":{\"type\":\"string\"}},\"type\":\"object\"}",
            "--single=p"
        ]
    );
}

#[test]
fn always_approve_wins_over_permission_mode() {
    let inv = grok_build(json!({"prompt": "p", "alwaysApprove": true}), &ctx("grok"));
    assert_eq!(inv.argv, with_head(&["--always-approve", "--single=p"]));
    let inv = grok_build(
        json!({"prompt": "p", "alwaysApprove": true, "permissionMode": "plan"}),
        &ctx("grok"),
    );
    assert_eq!(inv.argv, with_head(&["--always-approve", "--single=p"]));
    assert_eq!(warning_codes(&inv.warnings), ["parameter_ignored"]);
    for mode in [
        "default",
        "acceptEdits",
        "auto",
        "dontAsk",
        "bypassPermissions",
        "plan",
    ] {
        let inv = grok_build(json!({"prompt": "p", "permissionMode": mode}), &ctx("grok"));
        assert_eq!(
            inv.argv,
            with_head(&[&format!("--permission-mode={mode}"), "--single=p"])
        );
    }
}

#[test]
fn effort_is_an_alias_of_reasoning_effort() {
    for effort in ["low", "medium", "high", "xhigh", "max"] {
        let inv = grok_build(json!({"prompt": "p", "effort": effort}), &ctx("grok"));
        assert_eq!(
            inv.argv,
            with_head(&[&format!("--reasoning-effort={effort}"), "--single=p"])
        );
        assert!(!inv.argv.iter().any(|a| a.starts_with("--effort")));
    }
    let inv = grok_build(
        json!({"prompt": "p", "effort": "low", "reasoningEffort": "low"}),
        &ctx("grok"),
    );
    assert_eq!(
        inv.argv,
        with_head(&["--reasoning-effort=low", "--single=p"])
    );
    let err = grok_err(json!({"prompt": "p", "effort": "low", "reasoningEffort": "max"}));
    assert_eq!(
        err.message,
        "effort and reasoningEffort are the same parameter for grok and disagree (low vs max): give one"
    );
}

#[test]
fn sessions_and_large_prompts() {
    let mut c = ctx("grok");
    c.session = SessionBinding::ResumeLatest;
    let inv = grok_build(json!({"prompt": "p", "resumeLatest": true}), &c);
    assert_eq!(inv.argv, with_head(&["--continue", "--single=p"]));

    let big = "x".repeat(100 * 1024 + 1);
    let mut roomy = ctx("grok");
    roomy.max_prompt_chars = 200_000;
    let inv = grok_build(json!({"prompt": big}), &roomy);
    assert_eq!(
        inv.argv,
        with_head(&["--prompt-file=/tmp/gw-run-1/prompt.txt"])
    );
    assert_eq!(
        inv.temp_files,
        [TempFile {
            path: "/tmp/gw-run-1/prompt.txt".into(),
            contents: big.into_bytes(),
            mode: 0o600,
        }]
    );
    assert_eq!(inv.stdin, None, "grok does not read stdin");
}

#[test]
fn ranges_and_values() {
    let err = grok_err(json!({"prompt": "p", "maxTurns": 10001}));
    assert_eq!(
        err.message,
        "Invalid maxTurns: 10001 is out of range (1..=10000)"
    );
    let err = grok_err(json!({"prompt": "p", "maxTurns": 0}));
    assert_eq!(err.field, "maxTurns");
    for (field, value) in [
        ("allowedTools", json!(["-x"])),
        ("disallowedTools", json!(["-x"])),
        ("allow", json!(["-x"])),
        ("deny", json!(["-x"])),
        ("sandbox", json!("-x")),
    ] {
        let err = grok_err(json!({"prompt": "p", field: value}));
        assert_eq!(
            err.message,
            format!("Invalid {field}: values must not start with \"-\"")
        );
    }
    let err = grok_err(json!({"prompt": "p", "allowedTools": ["a,b"]}));
    assert_eq!(err.field, "allowedTools");
    // grok has no addDir (mcp-surface.md matrix).
    let err = serde_json::from_value::<GrokRequest>(json!({"prompt": "p", "addDir": ["/a"]}))
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `addDir`"));
}

// ---- parser ----------------------------------------------------------------------------

const ONE_CALL: Usage = Usage {
    input_tokens: Some(121),
    output_tokens: Some(9),
    cache_read_tokens: Some(200),
    cache_creation_tokens: Some(0),
    reasoning_tokens: Some(0),
    cost_usd: None,
};

fn parse_cli(cli: &str, name: &str) -> Parsed {
    parse_case(Box::new(grok::parser()), cli, name, Baseline::NewSession)
}

fn parse(name: &str) -> Parsed {
    parse_cli("grok", name)
}

fn check_case(name: &str) {
    match name {
        "version" => assert_eq!(parse(name).outcome.text, "grok 1.0.41 (4220f3b224a6)"),
        "version-json" | "update-check-json-offline" => assert_ok(&parse(name)),
        "models" => {
            let p = parse(name);
            assert_ok(&p);
            assert!(p.outcome.text.contains("* fake (default)"));
        }
        "plain-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
        }
        "json-ok" | "session-id-new" | "resume-by-id" | "continue" | "fork-session"
        | "resume-other-cwd" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(
                p.outcome.usage, ONE_CALL,
                "usage is per prompt, cost absent = unknown"
            );
            assert_eq!(p.outcome.stop_reason.as_deref(), Some("end_turn"));
            assert_eq!(p.outcome.model.as_deref(), Some("grok-fake-1"));
            assert_eq!(p.outcome.num_turns, Some(1));
            let expected = match name {
                "json-ok" => "01a1fc43-d588-7963-a54f-a27d7e0bbec4",
                "fork-session" => "01a1fc43-dec2-7fb0-ab45-7dad1c18a8f4",
                _ => "8b2c3d4e-5f60-4a7b-9c8d-0e1f2a3b4c5d",
            };
            assert_eq!(p.outcome.provider_session_id.as_deref(), Some(expected));
        }
        "streaming-json-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.usage, ONE_CALL);
            assert_eq!(
                p.outcome.provider_session_id.as_deref(),
                Some("01a1fc43-d70e-7933-a54d-b93d70887700")
            );
            let kinds: Vec<_> = p.events.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    ProgressKind::Started,
                    ProgressKind::Writing,
                    ProgressKind::Usage,
                    ProgressKind::Usage,
                    ProgressKind::Finished
                ]
            );
        }
        "streaming-messages-json-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(
                p.outcome.provider_session_id.as_deref(),
                Some("01a1fc43-d8a6-7b40-84c6-d4513a09b3fd")
            );
            assert_eq!(p.outcome.model.as_deref(), Some("fake"));
            assert_eq!(p.outcome.usage.cost_usd, Some(0.0));
            assert_eq!(p.outcome.usage.input_tokens, Some(121));
        }
        "tool-always-approve" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            // The end line carries the whole invocation's usage (two model calls).
            assert_eq!(p.outcome.usage.input_tokens, Some(242));
            assert_eq!(p.outcome.usage.cache_read_tokens, Some(400));
            assert_eq!(p.outcome.num_turns, Some(2));
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool
                && e.message == "run_terminal_command: echo hi > out.txt"));
        }
        "tool-default-mode" => {
            let p = parse(name);
            // Exit 0, yet not success: the tool call needed approval.
            assert_err(&p, ErrorKind::ApprovalRequired, ErrorCategory::ResultError);
            let err = p.outcome.error.unwrap();
            assert!(
                err.message
                    .starts_with("grok stopped with stopReason \"cancelled\"")
            );
            assert!(
                err.remediation.contains("alwaysApprove")
                    && err.remediation.contains("permissionMode")
            );
            assert_eq!(p.outcome.stop_reason.as_deref(), Some("cancelled"));
            assert!(p.events.iter().any(|e| e.message
                == "failed: User cancelled the execution for tool `run_terminal_command`"));
        }
        "not-signed-in-json" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::NotAuthenticated, ErrorCategory::AuthError);
            let err = p.outcome.error.unwrap();
            assert!(err.message.starts_with("Not signed in."));
            assert!(
                err.remediation.contains("grok login") && err.remediation.contains("XAI_API_KEY")
            );
        }
        "bad-api-key-json" => assert_err(
            &parse(name),
            ErrorKind::InvalidCredentials,
            ErrorCategory::AuthError,
        ),
        "unknown-model-id"
        | "model-rejected-by-api-json"
        | "model-rejected-by-api-streaming-json" => assert_err(
            &parse(name),
            ErrorKind::UnknownModel,
            ErrorCategory::CliError,
        ),
        "resume-missing" => {
            // "Failed to authenticate for session restore" is an unknown session, not auth.
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownSession, ErrorCategory::CliError);
        }
        "session-id-in-use" => assert_err(
            &parse(name),
            ErrorKind::SessionIdInUse,
            ErrorCategory::CliError,
        ),
        "session-id-not-uuid" => assert_err(
            &parse(name),
            ErrorKind::InvalidSessionId,
            ErrorCategory::CliError,
        ),
        "bad-flag" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::BadFlag, ErrorCategory::CliError);
            assert_eq!(p.outcome.exit_code, Some(2));
        }
        other => panic!("grok fixture case {other} has no parser test"),
    }
}

#[test]
fn parser_handles_every_captured_case() {
    check_every_case("grok", 24, check_case);
}

#[test]
fn the_old_community_grok_is_recognised() {
    assert_eq!(cases_of("grok-vibekit").len(), 2);
    let p = parse_cli("grok-vibekit", "prompt-ok");
    assert_err(&p, ErrorKind::WrongCli, ErrorCategory::ResultError);
    assert_eq!(p.outcome.text, HELLO);
    assert!(
        p.outcome
            .error
            .unwrap()
            .remediation
            .contains("npm install -g @xai-official/grok")
    );
    assert_ok(&parse_cli("grok-vibekit", "version"));
}

#[test]
fn without_an_end_line_usage_lines_are_summed() {
    let stdout = b"{\"type\":\"usage\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}\n{\"type\":\"text\",\"data\":\"par\"}\n{\"type\":\"usage\",\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}\n";
    let input = FinishInput {
        exit_code: None,
        ..FinishInput::default()
    };
    let p = run_parser(Box::new(grok::parser()), stdout, 7, &input);
    assert_eq!(p.outcome.usage.input_tokens, Some(15));
    assert_eq!(p.outcome.usage.output_tokens, Some(3));
    assert_eq!(p.outcome.text, "par");
    assert_err(&p, ErrorKind::Killed, ErrorCategory::CliError);
}
