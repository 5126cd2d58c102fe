//! codex adapter: golden argv/env/stdin for every line of providers.md "codex" (new and
//! resume forms) and every parameter, and the parser on every captured codex case.

use crate::providers_support as support;

use llm_cli_gateway::providers::codex::{self, CodexRequest};
use llm_cli_gateway::providers::invocation::{BuildContext, Invocation, SessionBinding, TempFile};
use llm_cli_gateway::providers::outcome::{Baseline, ErrorCategory, ErrorKind, FinishInput, Usage};
use llm_cli_gateway::providers::progress::ProgressKind;
use llm_cli_gateway::providers::request::ValidationError;
use serde_json::json;
use support::*;

fn codex_build(args: serde_json::Value, ctx: &BuildContext) -> Invocation {
    build::<CodexRequest>(args, ctx).expect("builds")
}

fn codex_err(args: serde_json::Value) -> ValidationError {
    build::<CodexRequest>(args, &ctx("codex")).expect_err("rejected")
}

fn resume(id: &str) -> BuildContext {
    let mut c = ctx("codex");
    c.session = SessionBinding::Resume(id.into());
    c
}

fn latest() -> BuildContext {
    let mut c = ctx("codex");
    c.session = SessionBinding::ResumeLatest;
    c
}

const U: &str = "01a1fc42-ad8e-7c10-ae7e-f76afb6fa541";

#[test]
fn golden_new_resume_latest_and_resume_by_id() {
    let inv = codex_build(json!({"prompt": "PROMPT"}), &ctx("codex"));
    assert_eq!(
        argv(&inv),
        ["exec", "--json", "--skip-git-repo-check", "--", "-"]
    );
    assert_eq!(inv.stdin.as_deref(), Some(&b"PROMPT"[..]));
    assert!(inv.env_overrides.is_empty());
    assert_eq!(inv.program, "codex");

    let inv = codex_build(json!({"prompt": "PROMPT", "resumeLatest": true}), &latest());
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            "--last",
            "--",
            "-"
        ]
    );
    assert_eq!(inv.stdin.as_deref(), Some(&b"PROMPT"[..]));

    let inv = codex_build(json!({"prompt": "PROMPT", "sessionId": U}), &resume(U));
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            U,
            "--",
            "-"
        ]
    );
}

#[test]
fn golden_new_with_every_parameter() {
    let mut c = ctx("codex");
    c.model = Some("gpt-6.1-sol".into());
    let inv = codex_build(
        json!({
            "prompt": "p",
            "sandboxMode": "workspace-write",
            "addDir": ["/srv/a", "/srv/b"],
            "outputSchema": {"type": "object"},
            "profile": "work",
            "configOverrides": {"model_reasoning_effort": "high", "tools.web_search": true, "n": 3, "t": 0.5, "q": "\"quoted\""},
            "ephemeral": true,
            "images": ["a.png", "b.png"]
        }),
        &c,
    );
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--model=gpt-6.1-sol",
            "--sandbox=workspace-write",
            "--add-dir=/srv/a",
            "--add-dir=/srv/b",
            "--output-schema=/tmp/gw-run-1/output-schema.json",
            "--profile=work",
            "-c",
            "model_reasoning_effort=high",
            "-c",
            "n=3",
            "-c",
            "q=\"quoted\"",
            "-c",
            "t=0.5",
            "-c",
            "tools.web_search=true",
            "--ephemeral",
            "--image=a.png",
            "--image=b.png",
            "--",
            "-"
        ]
    );
    assert_eq!(
        inv.temp_files,
        [TempFile {
            path: "/tmp/gw-run-1/output-schema.json".into(),
            contents: br#"{"type":"object"}"#.to_vec(),
            mode: 0o600,
        }]
    );
    assert!(inv.warnings.is_empty());
}

#[test]
fn golden_resume_drops_the_flags_exec_resume_lacks() {
    let mut c = resume(U);
    c.model = Some("m".into());
    let inv = codex_build(
        json!({
            "prompt": "p",
            "sessionId": U,
            "sandboxMode": "read-only",
            "addDir": ["/srv/a"],
            "profile": "work",
            "configOverrides": {"k": "v"},
            "outputSchema": {"type": "object"},
            "ephemeral": true,
            "images": ["a.png"]
        }),
        &c,
    );
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            "--model=m",
            "-c",
            "sandbox_mode=\"read-only\"",
            "-c",
            "k=v",
            "--output-schema=/tmp/gw-run-1/output-schema.json",
            "--ephemeral",
            "--image=a.png",
            U,
            "--",
            "-"
        ]
    );
    assert_eq!(
        warning_codes(&inv.warnings),
        ["flag_ignored_on_resume", "flag_ignored_on_resume"]
    );
    assert!(inv.warnings[0].message.starts_with("addDir was ignored"));
    assert!(inv.warnings[1].message.starts_with("profile was ignored"));
    for flag in [
        "-s",
        "--sandbox",
        "-C",
        "--add-dir",
        "-p",
        "--profile",
        "--approve-for-me",
        "--oss",
        "--local-provider",
        "--color",
    ] {
        assert!(
            !inv.argv
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}="))),
            "{flag} must not reach exec resume"
        );
    }

    let inv = codex_build(
        json!({"prompt": "p", "resumeLatest": true, "dangerouslyBypassApprovalsAndSandbox": true}),
        &latest(),
    );
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "--last",
            "--",
            "-"
        ]
    );
}

#[test]
fn sandbox_modes_bypass_and_legacy_full_auto() {
    for mode in ["read-only", "workspace-write", "danger-full-access"] {
        let inv = codex_build(json!({"prompt": "p", "sandboxMode": mode}), &ctx("codex"));
        assert_eq!(
            argv(&inv),
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                &format!("--sandbox={mode}"),
                "--",
                "-"
            ]
        );
    }
    let inv = codex_build(
        json!({"prompt": "p", "dangerouslyBypassApprovalsAndSandbox": true}),
        &ctx("codex"),
    );
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "--",
            "-"
        ]
    );
    let inv = codex_build(json!({"prompt": "p", "fullAuto": true}), &ctx("codex"));
    assert_eq!(
        argv(&inv),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--sandbox=workspace-write",
            "--",
            "-"
        ]
    );
    assert_eq!(warning_codes(&inv.warnings), ["legacy_parameter"]);
    assert!(!inv.argv.iter().any(|a| a == "--full-auto"));
    let inv = codex_build(
        json!({"prompt": "p", "fullAuto": true, "sandboxMode": "read-only"}),
        &ctx("codex"),
    );
    assert!(inv.argv.contains(&"--sandbox=read-only".to_string()));
    assert_eq!(warning_codes(&inv.warnings), ["legacy_parameter"]);
    let err = codex_err(
        json!({"prompt": "p", "dangerouslyBypassApprovalsAndSandbox": true, "sandboxMode": "read-only"}),
    );
    assert_eq!(
        err.message,
        "dangerouslyBypassApprovalsAndSandbox and sandboxMode/fullAuto are mutually exclusive: give one"
    );
    let inv = codex_build(json!({"prompt": "p", "fullAuto": true}), &latest());
    assert!(
        inv.argv
            .contains(&"sandbox_mode=\"workspace-write\"".to_string())
    );
}

#[test]
fn ask_for_approval_is_accepted_and_ignored() {
    let inv = codex_build(
        json!({"prompt": "p", "askForApproval": "never"}),
        &ctx("codex"),
    );
    assert_eq!(
        argv(&inv),
        ["exec", "--json", "--skip-git-repo-check", "--", "-"]
    );
    assert_eq!(warning_codes(&inv.warnings), ["parameter_ignored"]);
}

#[test]
fn config_override_rules() {
    let err = codex_err(json!({"prompt": "p", "configOverrides": {"a b": "x"}}));
    assert_eq!(
        err.message,
        "Invalid configOverrides key \"a b\": keys must match ^[A-Za-z0-9._-]+$"
    );
    let err = codex_err(json!({"prompt": "p", "configOverrides": {"-c": "x"}}));
    assert_eq!(
        err.message,
        "Invalid configOverrides: values must not start with \"-\""
    );
    let err = codex_err(json!({"prompt": "p", "configOverrides": {"k": "a\nb"}}));
    assert_eq!(
        err.message,
        "Invalid configOverrides value for \"k\": values must not contain line breaks"
    );
    let inv = codex_build(
        json!({"prompt": "p", "configOverrides": {"f": 1.0}}),
        &ctx("codex"),
    );
    assert!(inv.argv.contains(&"f=1.0".to_string()));
    assert!(
        serde_json::from_value::<CodexRequest>(
            json!({"prompt": "p", "configOverrides": {"k": [1]}})
        )
        .is_err()
    );
}

#[test]
fn values_that_become_flags_are_checked() {
    for (field, value) in [
        ("addDir", json!(["-x"])),
        ("images", json!(["-x"])),
        ("profile", json!("-x")),
    ] {
        let err = codex_err(json!({"prompt": "p", field: value}));
        assert_eq!(
            err.message,
            format!("Invalid {field}: values must not start with \"-\"")
        );
    }
    let mut c = ctx("codex");
    c.session = SessionBinding::Resume("--last".into());
    let err = build::<CodexRequest>(json!({"prompt": "p"}), &c).unwrap_err();
    assert_eq!(err.field, "sessionId");
}

#[test]
fn prompt_always_travels_on_stdin() {
    for prompt in ["--help", "$(touch x)", "line1\nline2", &"x".repeat(100_000)] {
        let inv = codex_build(json!({"prompt": prompt}), &ctx("codex"));
        assert_eq!(inv.stdin.as_deref(), Some(prompt.as_bytes()));
        assert!(!inv.argv.iter().any(|a| a == prompt));
    }
}

#[test]
fn config_env_is_passed_through() {
    let mut c = ctx("codex");
    c.provider_env = vec![("CODEX_HOME".into(), "/srv/codex".into())];
    let inv = codex_build(json!({"prompt": "p"}), &c);
    assert_eq!(env(&inv), [("CODEX_HOME", "/srv/codex")]);
}

// ---- parser ----------------------------------------------------------------------------

fn parse_with(name: &str, baseline: Baseline) -> Parsed {
    parse_case(Box::new(codex::parser()), "codex", name, baseline)
}

fn parse(name: &str) -> Parsed {
    parse_with(name, Baseline::NewSession)
}

/// One turn's normalised figures: 1234 input of which 1000 cached, 56 output, 20 reasoning.
fn turns(n: u64) -> Usage {
    Usage {
        input_tokens: Some(234 * n),
        output_tokens: Some(56 * n),
        cache_read_tokens: Some(1000 * n),
        cache_creation_tokens: Some(0),
        reasoning_tokens: Some(20 * n),
        cost_usd: None,
    }
}

fn check_case(name: &str) {
    match name {
        "version" => assert_eq!(parse(name).outcome.text, "codex-cli 0.169.0"),
        "exec-text-ok"
        | "exec-output-last-message"
        | "banner-workspace-write"
        | "banner-dangerously-bypass"
        | "banner-approve-for-me"
        | "banner-config-approval-policy" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.provider_session_id, None);
        }
        "exec-json-ok" | "exec-stdin-dash" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert!(p.outcome.provider_session_id.is_some());
            assert_eq!(p.outcome.usage, turns(1));
            let kinds: Vec<_> = p.events.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    ProgressKind::Started,
                    ProgressKind::Thinking,
                    ProgressKind::Writing,
                    ProgressKind::Usage,
                    ProgressKind::Finished
                ]
            );
        }
        // usage is a running total for the thread: 2×, 3×, 4× one turn.
        "exec-resume-by-id" | "exec-resume-by-id-2" | "exec-resume-last" => {
            let before = match name {
                "exec-resume-by-id" => 1,
                "exec-resume-by-id-2" => 2,
                _ => 3,
            };
            let p = parse_with(name, Baseline::Known(turns(before)));
            assert_ok(&p);
            assert_eq!(p.outcome.provider_session_id.as_deref(), Some(U));
            assert_eq!(p.outcome.usage, turns(1), "{name}");
            assert_eq!(p.outcome.reported_usage.running, turns(before + 1));
            let unknown = parse_with(name, Baseline::Unknown);
            assert_eq!(unknown.outcome.usage, Usage::default());
            assert_eq!(
                warning_codes(&unknown.outcome.warnings),
                ["usage_baseline_unknown"]
            );
        }
        "exec-json-unknown-model-metadata" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(warning_codes(&p.outcome.warnings), ["cli_warning"]);
            assert!(
                p.outcome.warnings[0]
                    .message
                    .contains("Model metadata for `gpt-fake` not found")
            );
        }
        "exec-unknown-model-json" | "exec-unknown-model-text" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownModel, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("The requested model 'bogus-model' does not exist.")
            );
        }
        "exec-bad-api-key-json" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::InvalidCredentials, ErrorCategory::AuthError);
            // The five retry notices do not count as activity.
            assert_eq!(p.quiet_feeds, 5);
            let err = p.outcome.error.unwrap();
            assert!(
                err.message
                    .starts_with("unexpected status 401 Unauthorized")
            );
            assert!(
                err.remediation.contains("codex login")
                    && err.remediation.contains("CODEX_API_KEY")
            );
        }
        "exec-input-too-large" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::InputTooLarge, ErrorCategory::InputTooLarge);
            assert_eq!(
                p.outcome.provider_session_id.as_deref(),
                Some("01a1fc42-d0ce-72a3-9b6a-e834fccc9e66")
            );
        }
        "exec-resume-missing" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownSession, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("no rollout found for thread id")
            );
        }
        "exec-not-git-no-skip" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UntrustedFolder, ErrorCategory::CliError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "Not inside a trusted directory and --skip-git-repo-check was not specified."
            );
        }
        "exec-bad-flag" | "exec-full-auto-removed" | "exec-ask-for-approval-not-accepted" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::BadFlag, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .starts_with("error: unexpected argument")
            );
        }
        // `codex login status` says "Not logged in" even with a working key (not used by the
        // gateway), but its exit 1 must read as an auth failure.
        "login-status-none" | "login-status-env-key" => assert_err(
            &parse(name),
            ErrorKind::NotAuthenticated,
            ErrorCategory::AuthError,
        ),
        other => panic!("codex fixture case {other} has no parser test"),
    }
}

#[test]
fn parser_handles_every_captured_case() {
    check_every_case("codex", 24, check_case);
}

#[test]
fn tool_items_become_progress_events() {
    let stdout = br#"{"type":"thread.started","thread_id":"t1"}
{"type":"item.started","item":{"id":"1","type":"command_execution","command":"bash -lc ls","status":"in_progress"}}
{"type":"item.completed","item":{"id":"1","type":"command_execution","command":"bash -lc ls","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"2","type":"file_change","changes":[{"path":"src/main.rs","kind":"update"}],"status":"completed"}}
{"type":"item.started","item":{"id":"3","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"query":"rust"},"status":"in_progress"}}
{"type":"item.completed","item":{"id":"4","type":"reasoning","text":"Considering the layout"}}
{"type":"item.started","item":{"id":"5","type":"todo_list","items":[{"text":"a","completed":true},{"text":"b","completed":false}]}}
{"type":"item.completed","item":{"id":"6","type":"agent_message","text":"done"}}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":2}}
"#;
    let p = run_parser(
        Box::new(codex::parser()),
        stdout,
        13,
        &FinishInput::exited(0, b""),
    );
    let events: Vec<_> = p
        .events
        .iter()
        .map(|e| (e.kind, e.message.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (ProgressKind::Started, "thread t1"),
            (ProgressKind::Tool, "shell: bash -lc ls"),
            (ProgressKind::File, "src/main.rs"),
            (ProgressKind::Tool, "docs.search: rust"),
            (ProgressKind::Thinking, "Considering the layout"),
            (ProgressKind::Thinking, "plan: 1/2 steps done"),
            (ProgressKind::Writing, "writing the answer"),
            (
                ProgressKind::Usage,
                "6 input (+4 cached), 2 output tokens in this thread"
            ),
            (ProgressKind::Finished, "turn completed"),
        ]
    );
    assert_eq!(p.outcome.text, "done");
    assert_eq!(p.outcome.usage.input_tokens, Some(6));
    assert_eq!(p.outcome.usage.reasoning_tokens, None);
}

#[test]
fn a_run_killed_while_reconnecting_reports_the_retry_reason() {
    let stdout = br#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 2/5 (unexpected status 401 Unauthorized: Missing bearer)"}
"#;
    let input = FinishInput {
        exit_code: None,
        ..FinishInput::default()
    };
    let p = run_parser(Box::new(codex::parser()), stdout, 1000, &input);
    let err = p.outcome.error.unwrap();
    assert_eq!(err.kind, ErrorKind::InvalidCredentials);
    assert_eq!(err.category, ErrorCategory::AuthError);
    assert!(err.message.starts_with("Reconnecting... 2/5"));
    // A chunk of only reconnect notices does not reset the idle timer.
    let mut parser = codex::parser();
    let feed = llm_cli_gateway::providers::progress::StreamParser::feed(
        &mut parser,
        b"{\"type\":\"error\",\"message\":\"Reconnecting... 1/5 (x)\"}\n",
    );
    assert!(!feed.activity);
}
