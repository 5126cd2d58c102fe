//! claude adapter: golden argv/env/stdin for every line of providers.md "claude" and every
//! parameter, and the parser on every captured claude case.

use crate::providers_support as support;

use std::collections::BTreeMap;

use llm_cli_gateway::providers::claude::{self, ClaudeRequest};
use llm_cli_gateway::providers::dispatch::ProviderRequest;
use llm_cli_gateway::providers::invocation::{
    BuildContext, Invocation, McpServerSpec, SessionBinding, TempFile,
};
use llm_cli_gateway::providers::outcome::{Baseline, ErrorCategory, ErrorKind, Usage};
use llm_cli_gateway::providers::progress::ProgressKind;
use llm_cli_gateway::providers::request::{SessionIntent, ValidationKind};
use serde_json::json;
use support::*;

fn claude_build(args: serde_json::Value, ctx: &BuildContext) -> Invocation {
    build::<ClaudeRequest>(args, ctx).expect("builds")
}

fn claude_err(
    args: serde_json::Value,
    ctx: &BuildContext,
) -> llm_cli_gateway::providers::request::ValidationError {
    build::<ClaudeRequest>(args, ctx).expect_err("rejected")
}

const HEAD: [&str; 4] = [
    "-p",
    "--output-format=stream-json",
    "--verbose",
    "--include-partial-messages",
];

fn with_head(rest: &[&str]) -> Vec<String> {
    HEAD.iter().chain(rest).map(|s| s.to_string()).collect()
}

#[test]
fn golden_prompt_only() {
    let inv = claude_build(json!({"prompt": "PROMPT"}), &ctx("claude"));
    assert_eq!(inv.program, "claude");
    assert_eq!(inv.argv, with_head(&["--", "PROMPT"]));
    assert_eq!(env(&inv), [("DISABLE_AUTOUPDATER", "1")]);
    assert_eq!(inv.stdin, None);
    assert_eq!(inv.cwd.to_str(), Some(CWD));
    assert!(inv.temp_files.is_empty());
    assert!(inv.warnings.is_empty());
    assert_eq!(inv.result_file, None);
}

#[test]
fn golden_every_parameter_in_spec_order() {
    let mut c = ctx("/opt/bin/claude");
    c.model = Some("claude-sonnet-5-5".into());
    c.session = SessionBinding::Resume("6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b".into());
    c.mcp_servers.insert(
        "docs".into(),
        McpServerSpec {
            command: "docs-mcp".into(),
            args: vec!["--stdio".into()],
            env: BTreeMap::new(),
        },
    );
    let inv = claude_build(
        json!({
            "prompt": "PROMPT",
            "sessionId": "6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b",
            "permissionMode": "acceptEdits",
            "allowedTools": ["Read", "Bash(git *)"],
            "disallowedTools": ["WebFetch"],
            "mcpServers": ["docs"],
            "strictMcpConfig": true,
            "addDir": ["/srv/a", "/srv/b"],
            "appendSystemPrompt": "-be brief",
            "maxTurns": 3,
            "maxBudgetUsd": 0.25,
            "effort": "xhigh",
            "fallbackModel": "haiku",
            "jsonSchema": {"type": "object"},
            "forkSession": true
        }),
        &c,
    );
    assert_eq!(inv.program, "/opt/bin/claude");
    assert_eq!(
        inv.argv,
        with_head(&[
            "--model=claude-sonnet-5-5",
            "--permission-mode=acceptEdits",
            "--allowed-tools",
            "Read",
            "Bash(git *)",
            "--disallowed-tools",
            "WebFetch",
            "--mcp-config=/tmp/gw-run-1/mcp-config.json",
            "--strict-mcp-config",
            "--add-dir",
            "/srv/a",
            "--add-dir",
            "/srv/b",
            "--append-system-prompt=-be brief",
            "--max-turns=3",
            "--max-budget-usd=0.25",
            "--effort=xhigh",
            "--fallback-model=haiku",
            "--json-schema={\"type\":\"object\"}",
            "--resume=6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b",
            "--fork-session",
            "--",
            "PROMPT",
        ])
    );
    assert_eq!(
        inv.temp_files,
        [TempFile {
            path: "/tmp/gw-run-1/mcp-config.json".into(),
            contents: br#"{"mcpServers":{"docs":{"args":["--stdio"],"command":"docs-mcp"}}}"#
                .to_vec(),
            mode: 0o600,
        }]
    );
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
}

#[test]
fn permission_modes_map_one_to_one_and_default_emits_nothing() {
    for mode in [
        "acceptEdits",
        "auto",
        "bypassPermissions",
        "dontAsk",
        "plan",
    ] {
        let inv = claude_build(
            json!({"prompt": "p", "permissionMode": mode}),
            &ctx("claude"),
        );
        assert_eq!(
            inv.argv,
            with_head(&[&format!("--permission-mode={mode}"), "--", "p"])
        );
    }
    let inv = claude_build(
        json!({"prompt": "p", "permissionMode": "default"}),
        &ctx("claude"),
    );
    assert_eq!(inv.argv, with_head(&["--", "p"]));
    // mcp_managed approvals pin the mode so a settings file cannot widen it.
    let mut pinned = ctx("claude");
    pinned.pin_permission_mode = true;
    let inv = claude_build(json!({"prompt": "p", "permissionMode": "default"}), &pinned);
    assert_eq!(
        inv.argv,
        with_head(&["--permission-mode=default", "--", "p"])
    );
}

#[test]
fn unknown_permission_mode_is_rejected_by_the_schema() {
    let err =
        serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", "permissionMode": "yolo"}))
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown variant `yolo`"), "{err}");
}

#[test]
fn legacy_dangerously_skip_permissions_maps_to_bypass_and_loses_to_permission_mode() {
    let inv = claude_build(
        json!({"prompt": "p", "dangerouslySkipPermissions": true}),
        &ctx("claude"),
    );
    assert_eq!(
        inv.argv,
        with_head(&["--permission-mode=bypassPermissions", "--", "p"])
    );
    assert_eq!(warning_codes(&inv.warnings), ["legacy_parameter"]);
    let inv = claude_build(
        json!({"prompt": "p", "dangerouslySkipPermissions": true, "permissionMode": "plan"}),
        &ctx("claude"),
    );
    assert_eq!(inv.argv, with_head(&["--permission-mode=plan", "--", "p"]));
    assert_eq!(warning_codes(&inv.warnings), ["legacy_parameter"]);
    assert!(inv.warnings[0].message.contains("permissionMode plan wins"));
}

#[test]
fn is_sandbox_only_as_root_with_bypass_and_config_allowing_it() {
    let mut root = ctx("claude");
    root.is_root = true;
    let bypass = json!({"prompt": "p", "permissionMode": "bypassPermissions"});
    let inv = claude_build(bypass.clone(), &root);
    assert_eq!(
        env(&inv),
        [("DISABLE_AUTOUPDATER", "1"), ("IS_SANDBOX", "1")]
    );
    assert_eq!(warning_codes(&inv.warnings), ["is_sandbox_set"]);
    // Legacy spelling counts as an explicit bypass request too.
    let inv = claude_build(
        json!({"prompt": "p", "dangerouslySkipPermissions": true}),
        &root,
    );
    assert!(env(&inv).contains(&("IS_SANDBOX", "1")));

    let not_root = claude_build(bypass.clone(), &ctx("claude"));
    assert_eq!(env(&not_root), [("DISABLE_AUTOUPDATER", "1")]);
    let no_bypass = claude_build(
        json!({"prompt": "p", "permissionMode": "acceptEdits"}),
        &root,
    );
    assert_eq!(env(&no_bypass), [("DISABLE_AUTOUPDATER", "1")]);
    root.root_bypass_sets_is_sandbox = false;
    let refused = claude_build(bypass, &root);
    assert_eq!(env(&refused), [("DISABLE_AUTOUPDATER", "1")]);
    assert!(refused.warnings.is_empty());
}

#[test]
fn config_env_comes_after_the_documented_additions() {
    let mut c = ctx("claude");
    c.provider_env = vec![("CLAUDE_CODE_MAX_RETRIES".into(), "2".into())];
    let inv = claude_build(json!({"prompt": "p"}), &c);
    assert_eq!(
        env(&inv),
        [
            ("DISABLE_AUTOUPDATER", "1"),
            ("CLAUDE_CODE_MAX_RETRIES", "2")
        ]
    );
}

#[test]
fn tool_lists_are_variadic_before_the_separator() {
    let inv = claude_build(
        json!({"prompt": "p", "allowedTools": ["Read", "Edit"], "disallowedTools": ["Bash"]}),
        &ctx("claude"),
    );
    assert_eq!(
        inv.argv,
        with_head(&[
            "--allowed-tools",
            "Read",
            "Edit",
            "--disallowed-tools",
            "Bash",
            "--",
            "p"
        ])
    );
    // An empty list emits nothing (claude has no "no tools allowed" meaning for it).
    let inv = claude_build(json!({"prompt": "p", "allowedTools": []}), &ctx("claude"));
    assert_eq!(inv.argv, with_head(&["--", "p"]));
    for field in ["allowedTools", "disallowedTools", "addDir", "mcpServers"] {
        let err = claude_err(json!({"prompt": "p", field: ["-x"]}), &ctx("claude"));
        assert_eq!(
            err.message,
            format!("Invalid {field}: values must not start with \"-\"")
        );
        assert_eq!(err.kind, ValidationKind::InvalidInput);
    }
}

#[test]
fn mcp_servers_unknown_names_warn_or_fail_under_strict() {
    let mut c = ctx("claude");
    c.mcp_servers.insert(
        "docs".into(),
        McpServerSpec {
            command: "docs-mcp".into(),
            ..McpServerSpec::default()
        },
    );
    let request: ClaudeRequest =
        serde_json::from_value(json!({"prompt": "p", "mcpServers": ["docs", "nope"]})).unwrap();
    let report = request.mcp_server_report(&c);
    assert_eq!(
        (report.requested.len(), report.enabled, report.missing),
        (2, vec!["docs".to_string()], vec!["nope".to_string()])
    );
    let inv = claude_build(json!({"prompt": "p", "mcpServers": ["docs", "nope"]}), &c);
    assert_eq!(
        inv.argv,
        with_head(&["--mcp-config=/tmp/gw-run-1/mcp-config.json", "--", "p"])
    );
    assert_eq!(warning_codes(&inv.warnings), ["mcp_server_unknown"]);
    assert!(inv.warnings[0].message.contains("\"nope\""));

    let inv = claude_build(json!({"prompt": "p", "mcpServers": ["nope"]}), &c);
    assert_eq!(inv.argv, with_head(&["--", "p"]));
    assert!(inv.temp_files.is_empty());

    let err = claude_err(
        json!({"prompt": "p", "mcpServers": ["nope"], "strictMcpConfig": true}),
        &c,
    );
    assert_eq!(
        err.message,
        "Unknown MCP server \"nope\" (mcpServers): not defined in [mcp_servers] of config.toml"
    );

    // Strict without servers: an empty config so claude sees no ambient MCP server.
    let inv = claude_build(json!({"prompt": "p", "strictMcpConfig": true}), &c);
    assert_eq!(
        inv.argv,
        with_head(&[
            "--mcp-config=/tmp/gw-run-1/mcp-config.json",
            "--strict-mcp-config",
            "--",
            "p"
        ])
    );
    assert_eq!(inv.temp_files[0].contents, br#"{"mcpServers":{}}"#);
    assert_eq!(inv.temp_files[0].mode, 0o600);
}

#[test]
fn system_prompts_are_exclusive_and_may_start_with_a_dash() {
    let inv = claude_build(
        json!({"prompt": "p", "systemPrompt": "--you are terse"}),
        &ctx("claude"),
    );
    assert_eq!(
        inv.argv,
        with_head(&["--system-prompt=--you are terse", "--", "p"])
    );
    let err = claude_err(
        json!({"prompt": "p", "systemPrompt": "a", "appendSystemPrompt": "b"}),
        &ctx("claude"),
    );
    assert_eq!(err.field, "systemPrompt");
    assert_eq!(
        err.message,
        "systemPrompt and appendSystemPrompt are mutually exclusive: give one"
    );
}

#[test]
fn limits_effort_fallback_and_schema() {
    let inv = claude_build(
        json!({"prompt": "p", "maxTurns": 1, "maxBudgetUsd": 0.000001, "effort": "low", "fallbackModel": "sonnet,haiku", "jsonSchema": "{\"type\": \"object\", \"required\": []}"}),
        &ctx("claude"),
    );
    assert_eq!(
        inv.argv,
        with_head(&[
            "--max-turns=1",
            "--max-budget-usd=0.000001",
            "--effort=low",
            "--fallback-model=sonnet,haiku",
            "--json-schema={\"required\":[],\"type\":\"object\"}",
            "--",
            "p"
        ])
    );
    for effort in ["low", "medium", "high", "xhigh", "max"] {
        let inv = claude_build(json!({"prompt": "p", "effort": effort}), &ctx("claude"));
        assert!(inv.argv.contains(&format!("--effort={effort}")));
    }
    let err = claude_err(json!({"prompt": "p", "maxTurns": 0}), &ctx("claude"));
    assert_eq!(
        err.message,
        "Invalid maxTurns: 0 is out of range (1..=4294967295)"
    );
    let err = claude_err(json!({"prompt": "p", "maxBudgetUsd": 0}), &ctx("claude"));
    assert_eq!(
        err.message,
        "Invalid maxBudgetUsd: 0 must be a number greater than 0"
    );
    let err = claude_err(json!({"prompt": "p", "maxBudgetUsd": -1.5}), &ctx("claude"));
    assert_eq!(err.field, "maxBudgetUsd");
    let err = claude_err(
        json!({"prompt": "p", "fallbackModel": "-x"}),
        &ctx("claude"),
    );
    assert_eq!(
        err.message,
        "Invalid fallbackModel: values must not start with \"-\""
    );
    let err = claude_err(
        json!({"prompt": "p", "jsonSchema": "not json"}),
        &ctx("claude"),
    );
    assert_eq!(
        err.message,
        "Invalid jsonSchema: must be a JSON object (or its JSON text)"
    );
    assert!(
        serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", "maxTurns": -1})).is_err()
    );
}

#[test]
fn session_bindings() {
    let mut c = ctx("claude");
    c.session = SessionBinding::Resume("abc-123".into());
    let inv = claude_build(json!({"prompt": "p", "sessionId": "abc-123"}), &c);
    assert_eq!(inv.argv, with_head(&["--resume=abc-123", "--", "p"]));

    c.session = SessionBinding::ResumeLatest;
    let inv = claude_build(json!({"prompt": "p", "resumeLatest": true}), &c);
    assert_eq!(inv.argv, with_head(&["--continue", "--", "p"]));
    let inv = claude_build(
        json!({"prompt": "p", "continueSession": true, "forkSession": true}),
        &c,
    );
    assert_eq!(
        inv.argv,
        with_head(&["--continue", "--fork-session", "--", "p"])
    );

    // Fork with nothing to fork: ignored with a warning.
    let inv = claude_build(json!({"prompt": "p", "forkSession": true}), &ctx("claude"));
    assert_eq!(inv.argv, with_head(&["--", "p"]));
    assert_eq!(warning_codes(&inv.warnings), ["parameter_ignored"]);

    // createNewSession wins even over a binding the caller resolved.
    c.session = SessionBinding::Resume("abc-123".into());
    let inv = claude_build(
        json!({"prompt": "p", "sessionId": "abc-123", "resumeLatest": true, "createNewSession": true}),
        &c,
    );
    assert_eq!(inv.argv, with_head(&["--", "p"]));
    assert_eq!(warning_codes(&inv.warnings), ["session_ignored"]);
    assert!(
        inv.warnings[0]
            .message
            .contains("sessionId and resumeLatest were ignored")
    );

    // A resumed id from the store is checked like a request value.
    c.session = SessionBinding::Resume("-rf".into());
    let err = claude_err(json!({"prompt": "p"}), &c);
    assert_eq!(
        err.message,
        "Invalid sessionId: values must not start with \"-\""
    );
}

#[test]
fn continue_session_is_resume_latest() {
    let r: ClaudeRequest =
        serde_json::from_value(json!({"prompt": "p", "continueSession": true})).unwrap();
    assert!(r.common().resume_latest);
    assert_eq!(r.common().session_intent(), SessionIntent::Latest);
    let r: ClaudeRequest = serde_json::from_value(
        json!({"prompt": "p", "continueSession": true, "createNewSession": true}),
    )
    .unwrap();
    assert_eq!(r.common().session_intent(), SessionIntent::New);
    assert_eq!(
        r.validate(Default::default()).unwrap()[0].code,
        "session_ignored"
    );
}

#[test]
fn large_prompt_goes_to_stdin_without_a_positional() {
    let prompt = "é".repeat(60_000); // 120 000 bytes > 100 KiB, 60 000 characters
    let inv = claude_build(json!({"prompt": prompt}), &ctx("claude"));
    assert_eq!(inv.argv, with_head(&[]));
    assert_eq!(inv.stdin.as_deref(), Some(prompt.as_bytes()));
    // Exactly at the threshold still goes in argv.
    let edge = "a".repeat(100 * 1024);
    let mut roomy = ctx("claude");
    roomy.max_prompt_chars = 200_000;
    let inv = claude_build(json!({"prompt": edge}), &roomy);
    assert_eq!(inv.argv.last(), Some(&edge));
    assert_eq!(inv.stdin, None);
}

#[test]
fn prompt_parts_are_assembled_and_hashed() {
    let inv = claude_build(
        json!({"promptParts": {"system": "S", "context": "C", "task": "T", "cacheControl": {"system": true}}}),
        &ctx("claude"),
    );
    assert_eq!(inv.argv.last().map(String::as_str), Some("S\n\nC\n\nT"));
    assert_eq!(inv.prompt.stable_prefix_tokens, Some(1));
    assert_eq!(
        inv.prompt.stable_prefix_hash.as_ref().map(String::len),
        Some(64)
    );
    assert_eq!(warning_codes(&inv.warnings), ["cache_control_noop"]);
}

// ---- parser ----------------------------------------------------------------------------

fn parse(name: &str) -> Parsed {
    parse_case(
        Box::new(claude::parser()),
        "claude",
        name,
        Baseline::NewSession,
    )
}

fn parse_with(name: &str, baseline: Baseline) -> Parsed {
    parse_case(Box::new(claude::parser()), "claude", name, baseline)
}

fn cost(total: f64) -> Baseline {
    Baseline::Known(Usage {
        cost_usd: Some(total),
        ..Usage::default()
    })
}

fn check_case(name: &str) {
    match name {
        "version" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, "2.1.329 (Claude Code)");
        }
        "text-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.usage, Usage::default());
        }
        "json-ok" | "stream-json-ok" | "stdin-prompt-json-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            let u = p.outcome.usage;
            assert_eq!(
                (
                    u.input_tokens,
                    u.cache_read_tokens,
                    u.cache_creation_tokens,
                    u.output_tokens,
                    u.reasoning_tokens
                ),
                (Some(12), Some(6789), Some(345), Some(7), Some(0))
            );
            assert_eq!(u.cost_usd, Some(0.0032708));
            assert_eq!(p.outcome.stop_reason.as_deref(), Some("end_turn"));
            assert_eq!(p.outcome.num_turns, Some(1));
            if name == "stream-json-ok" {
                assert_eq!(p.outcome.model.as_deref(), Some("claude-opus-5-5"));
                assert_eq!(
                    p.outcome.provider_session_id.as_deref(),
                    Some("b7dd74a0-97e8-41b6-b0d8-03ee6ba32d55")
                );
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
                assert_eq!(
                    p.events[0].message,
                    "session b7dd74a0-97e8-41b6-b0d8-03ee6ba32d55 (model claude-opus-5-5)"
                );
                assert_eq!(p.events[3].message, "success, 1 turns");
            }
        }
        "stream-json-partial-ok" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(p.outcome.model.as_deref(), Some("claude-sonnet-5-5"));
            assert_eq!(p.outcome.usage.cost_usd, Some(0.0016354));
            // Deltas collapse into one "writing" event.
            let writing = p
                .events
                .iter()
                .filter(|e| e.kind == ProgressKind::Writing)
                .count();
            assert_eq!(writing, 1);
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Thinking));
        }
        "session-id-new" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(
                p.outcome.provider_session_id.as_deref(),
                Some("6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b")
            );
            assert_eq!(p.outcome.usage.cost_usd, Some(0.0032708));
        }
        // Running cost totals: 1×, 2×, 3×, 4× the per-call cost, and a fork's 5× against its
        // parent's 4×.
        "resume-by-id" | "resume-by-id-2" | "continue" | "fork-session" => {
            let previous = match name {
                "resume-by-id" => 0.0032708,
                "resume-by-id-2" => 0.0065416,
                "continue" => 0.0098124,
                _ => 0.0130832,
            };
            let p = parse_with(name, cost(previous));
            assert_ok(&p);
            assert_eq!(p.outcome.usage.cost_usd, Some(0.0032708), "{name}");
            assert_eq!(p.outcome.usage.input_tokens, Some(12));
            assert!(p.outcome.warnings.is_empty());
            let unknown = parse_with(name, Baseline::Unknown);
            assert_eq!(unknown.outcome.usage.cost_usd, None);
            assert_eq!(unknown.outcome.usage.input_tokens, Some(12));
            assert_eq!(
                warning_codes(&unknown.outcome.warnings),
                ["usage_baseline_unknown"]
            );
            if name == "fork-session" {
                assert_eq!(
                    p.outcome.provider_session_id.as_deref(),
                    Some("6ad22531-6db1-44f1-977b-8dece8e54789")
                );
            }
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
        "resume-missing" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownSession, ErrorCategory::CliError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "No conversation found with session ID: 00000000-0000-4000-8000-000000000000"
            );
        }
        "not-logged-in-text" | "not-logged-in-json" | "not-logged-in-stream-json" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::NotAuthenticated, ErrorCategory::AuthError);
            let err = p.outcome.error.unwrap();
            assert_eq!(err.message, "Not logged in · Please run /login");
            assert!(err.remediation.contains("claude auth login"));
            assert!(err.remediation.contains("ANTHROPIC_API_KEY"));
        }
        "bad-api-key-json" | "bad-api-key-text" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::InvalidCredentials, ErrorCategory::AuthError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "Invalid API key · Fix external API key"
            );
        }
        "unknown-model-json" | "unknown-model-text" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::UnknownModel, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .message
                    .contains("issue with the selected model (bogus-model)")
            );
        }
        "bad-flag" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::BadFlag, ErrorCategory::CliError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "error: unknown option '--bogus-flag'"
            );
        }
        "bad-output-format" | "stream-json-without-verbose" => {
            assert_err(&parse(name), ErrorKind::BadFlag, ErrorCategory::CliError)
        }
        "max-turns" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::TurnLimit, ErrorCategory::CliError);
            assert_eq!(
                p.outcome.error.unwrap().message,
                "Reached maximum number of turns (1)"
            );
            assert_eq!(p.outcome.stop_reason.as_deref(), Some("tool_use"));
        }
        "max-budget" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::BudgetLimit, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .remediation
                    .contains("maxBudgetUsd")
            );
        }
        "tool-denied-default-mode" => {
            let p = parse(name);
            assert_ok(&p);
            assert_eq!(p.outcome.text, HELLO);
            assert_eq!(warning_codes(&p.outcome.warnings), ["permission_denied"]);
            assert!(p.outcome.warnings[0].message.contains("(Bash)"));
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool && e.message == "Bash: echo hi > out.txt"));
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool
                && e.message.starts_with("denied Bash: Output redirection")));
        }
        "tool-accept-edits" | "bypass-as-root-is-sandbox" => {
            let p = parse(name);
            assert_ok(&p);
            assert!(p.outcome.warnings.is_empty());
            assert_eq!(p.outcome.usage.input_tokens, Some(24));
            assert_eq!(p.outcome.num_turns, Some(2));
            assert!(p.events.iter().any(|e| e.kind == ProgressKind::Tool && e.message == "Bash: echo hi > out.txt"));
        }
        "bypass-as-root" => {
            let p = parse(name);
            assert_err(&p, ErrorKind::RootBypassRefused, ErrorCategory::CliError);
            assert!(
                p.outcome
                    .error
                    .unwrap()
                    .remediation
                    .contains("root_bypass_sets_is_sandbox")
            );
        }
        "auth-status-apikey" => assert_ok(&parse(name)),
        // `claude auth status` exits 1 when logged out; not a request output, but the parser
        // must still fail it cleanly.
        "auth-status-none" => assert!(parse(name).outcome.is_error),
        other => panic!("claude fixture case {other} has no parser test"),
    }
}

#[test]
fn parser_handles_every_captured_case() {
    check_every_case("claude", 32, check_case);
}

#[test]
fn without_a_result_line_the_last_assistant_message_is_the_answer() {
    let stdout = sample("claude", "tool-accept-edits", "stdout");
    let cut: Vec<u8> = stdout
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(br#"{"duration_api_ms""#))
        .flatten()
        .copied()
        .collect();
    let p = run_parser(
        Box::new(claude::parser()),
        &cut,
        64,
        &llm_cli_gateway::providers::outcome::FinishInput::exited(0, b""),
    );
    assert_ok(&p);
    assert_eq!(p.outcome.text, HELLO);
    assert_eq!(
        p.outcome.provider_session_id.as_deref(),
        Some("77980a9b-c9ea-499d-aee6-88f9cb0a6d40")
    );
    assert_eq!(p.outcome.usage, Usage::default());
}

#[test]
fn is_error_with_exit_zero_is_a_result_error() {
    let line = br#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 overloaded","api_error_status":529,"session_id":"s"}
"#;
    let p = run_parser(
        Box::new(claude::parser()),
        line,
        5,
        &llm_cli_gateway::providers::outcome::FinishInput::exited(0, b""),
    );
    assert_err(&p, ErrorKind::ApiError, ErrorCategory::ResultError);
}
