//! The shared request rules of quality.md "Bad input" and mcp-surface.md (common parameters),
//! exercised through the claude request; the per-provider parameter matrix is at the end.

use crate::providers_support as support;

use llm_cli_gateway::providers::claude::ClaudeRequest;
use llm_cli_gateway::providers::dispatch::ProviderRequest;
use llm_cli_gateway::providers::request::{Limits, OutputFormat, ValidationError, ValidationKind};
use serde_json::{Value, json};
use support::*;

fn rejected(args: Value) -> ValidationError {
    build::<ClaudeRequest>(args, &ctx("claude")).expect_err("rejected")
}

fn accepted(args: Value) -> llm_cli_gateway::providers::invocation::Invocation {
    build::<ClaudeRequest>(args, &ctx("claude")).expect("accepted")
}

fn invalid(args: Value, field: &str, message: &str) {
    let err = rejected(args);
    assert_eq!(err.kind, ValidationKind::InvalidInput, "{err:?}");
    assert_eq!(err.kind.as_str(), "invalid_input");
    assert_eq!(err.field, field);
    assert_eq!(err.message, message);
    assert!(!err.remediation.is_empty());
}

#[test]
fn exactly_one_of_prompt_or_prompt_parts() {
    invalid(
        json!({"prompt": "a", "promptParts": {"task": "b"}}),
        "prompt",
        "prompt and promptParts are mutually exclusive: give exactly one",
    );
    invalid(
        json!({}),
        "prompt",
        "one of prompt or promptParts is required",
    );
}

#[test]
fn blank_prompts_are_rejected() {
    for blank in ["", " ", "\n\t  \r\n"] {
        invalid(
            json!({"prompt": blank}),
            "prompt",
            "Invalid prompt: must not be empty or whitespace-only",
        );
    }
    invalid(
        json!({"promptParts": {"system": "s", "task": "  "}}),
        "promptParts.task",
        "Invalid promptParts.task: must not be empty or whitespace-only",
    );
}

#[test]
fn prompt_length_counts_unicode_scalar_values() {
    let err = rejected(json!({"prompt": "x".repeat(120_000)}));
    assert_eq!(err.kind, ValidationKind::InputTooLarge);
    assert_eq!(err.kind.as_str(), "input_too_large");
    assert_eq!(
        err.message,
        "prompt is too long: 120000 characters (maximum 100000)"
    );
    // 100 000 three-byte characters are within the limit (300 000 bytes go through stdin).
    let inv = accepted(json!({"prompt": "日".repeat(100_000)}));
    assert_eq!(inv.stdin.map(|s| s.len()), Some(300_000));
    let err = rejected(json!({"prompt": "日".repeat(100_001)}));
    assert_eq!(
        err.message,
        "prompt is too long: 100001 characters (maximum 100000)"
    );
    // The limit comes from config.
    let mut small = ctx("claude");
    small.max_prompt_chars = 10;
    let err = build::<ClaudeRequest>(json!({"prompt": "x".repeat(11)}), &small).unwrap_err();
    assert_eq!(
        err.message,
        "prompt is too long: 11 characters (maximum 10)"
    );
    // promptParts are measured assembled.
    let err = rejected(json!({"promptParts": {"system": "s".repeat(99_999), "task": "t"}}));
    assert_eq!(
        err.message,
        "prompt is too long: 100002 characters (maximum 100000)"
    );
}

#[test]
fn nul_bytes_are_rejected_in_every_field() {
    invalid(
        json!({"prompt": "a\u{0}b"}),
        "prompt",
        "Invalid prompt: NUL bytes are not allowed",
    );
    invalid(
        json!({"prompt": "p", "systemPrompt": "\u{0}"}),
        "systemPrompt",
        "Invalid systemPrompt: NUL bytes are not allowed",
    );
    invalid(
        json!({"prompt": "p", "addDir": ["/a", "/b\u{0}"]}),
        "addDir[1]",
        "Invalid addDir[1]: NUL bytes are not allowed",
    );
    invalid(
        json!({"promptParts": {"task": "t", "context": "\u{0}"}}),
        "promptParts.context",
        "Invalid promptParts.context: NUL bytes are not allowed",
    );
}

#[test]
fn values_that_become_flags_must_not_start_with_a_dash() {
    invalid(
        json!({"prompt": "p", "model": "--dangerously-skip-permissions"}),
        "model",
        "Invalid model: values must not start with \"-\"",
    );
    invalid(
        json!({"prompt": "p", "sessionId": "-rf"}),
        "sessionId",
        "Invalid sessionId: values must not start with \"-\"",
    );
    // The resolved model (from config or env) is checked too.
    let mut c = ctx("claude");
    c.model = Some("-x".into());
    let err = build::<ClaudeRequest>(json!({"prompt": "p"}), &c).unwrap_err();
    assert_eq!(
        err.message,
        "Invalid model: values must not start with \"-\""
    );
    // The prompt itself may start with dashes: it goes after `--`.
    let inv = accepted(json!({"prompt": "--help"}));
    assert_eq!(inv.argv[inv.argv.len() - 2..], ["--", "--help"]);
}

#[test]
fn malformed_session_ids_are_rejected() {
    for bad in ["two words", "a\nb", ""] {
        let err = rejected(json!({"prompt": "p", "sessionId": bad}));
        assert_eq!(err.field, "sessionId", "{bad:?}");
    }
    let err = rejected(json!({"prompt": "p", "sessionId": "x".repeat(257)}));
    assert_eq!(err.field, "sessionId");
    accepted(json!({"prompt": "p", "sessionId": "gw-0192f0c8-aaaa-7bbb-8ccc-0123456789ab"}));
}

#[test]
fn numeric_ranges() {
    for (field, low, high, min, max) in [
        (
            "idleTimeoutMs",
            999u64,
            3_600_001u64,
            1_000u64,
            3_600_000u64,
        ),
        ("timeoutMs", 999, 86_400_001, 1_000, 86_400_000),
        ("maxResponseChars", 999, 1_000_001, 1_000, 1_000_000),
    ] {
        for v in [low, high] {
            invalid(
                json!({"prompt": "p", field: v}),
                field,
                &format!("Invalid {field}: {v} is out of range ({min}..={max})"),
            );
        }
        accepted(json!({"prompt": "p", field: min}));
        accepted(json!({"prompt": "p", field: max}));
        // Negative numbers and wrong types fail deserialisation, which names the type.
        let err =
            serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", field: -1})).unwrap_err();
        assert!(
            err.to_string().contains("invalid value: integer `-1`"),
            "{err}"
        );
    }
}

#[test]
fn correlation_id_is_at_most_128_characters() {
    accepted(json!({"prompt": "p", "correlationId": "é".repeat(128)}));
    invalid(
        json!({"prompt": "p", "correlationId": "x".repeat(129)}),
        "correlationId",
        "Invalid correlationId: 129 characters (maximum 128)",
    );
}

#[test]
fn worktree_forms() {
    accepted(json!({"prompt": "p", "worktree": true}));
    accepted(json!({"prompt": "p", "worktree": {"name": "feat-1", "ref": "main"}}));
    let err = rejected(json!({"prompt": "p", "worktree": {"name": "../escape"}}));
    assert_eq!(err.field, "worktree.name");
    invalid(
        json!({"prompt": "p", "worktree": {"ref": "--orphan"}}),
        "worktree.ref",
        "Invalid worktree.ref: values must not start with \"-\"",
    );
    assert!(
        serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", "worktree": {"nme": "x"}}))
            .is_err()
    );
}

#[test]
fn unknown_fields_and_enum_values_are_named() {
    let err = serde_json::from_value::<ClaudeRequest>(json!({"promt": "p"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `promt`"), "{err}");
    let err =
        serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", "approvalPolicy": "lax"}))
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown variant `lax`"), "{err}");
    let err = serde_json::from_value::<ClaudeRequest>(json!({"prompt": 42}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid type: integer `42`, expected a string"),
        "{err}"
    );
}

#[test]
fn output_format_accepts_the_older_spellings() {
    for (given, want) in [
        ("text", OutputFormat::Text),
        ("plain", OutputFormat::Text),
        ("json", OutputFormat::Json),
        ("stream-json", OutputFormat::Json),
        ("streaming-json", OutputFormat::Json),
        ("streaming", OutputFormat::Json),
    ] {
        let r: ClaudeRequest =
            serde_json::from_value(json!({"prompt": "p", "outputFormat": given})).unwrap();
        assert_eq!(r.common().output_format, want, "{given}");
        // The CLI always runs in its structured mode whatever the caller wants back.
        assert!(
            r.build(&ctx("claude"))
                .unwrap()
                .argv
                .contains(&"--output-format=stream-json".to_string())
        );
    }
    assert!(
        serde_json::from_value::<ClaudeRequest>(json!({"prompt": "p", "outputFormat": "xml"}))
            .is_err()
    );
}

#[test]
fn compatibility_parameters_warn() {
    let inv = accepted(json!({"prompt": "p", "optimizePrompt": true, "optimizeResponse": true}));
    assert_eq!(warning_codes(&inv.warnings), ["optimize_ignored"]);
    let inv = accepted(json!({"prompt": "p", "sessionId": "abc", "createNewSession": true}));
    assert_eq!(warning_codes(&inv.warnings), ["session_ignored"]);
    assert_eq!(
        inv.warnings[0].message,
        "createNewSession is true, so sessionId was ignored: this run starts a fresh conversation"
    );
}

#[test]
fn validate_matches_build_without_a_context() {
    let r: ClaudeRequest = serde_json::from_value(json!({"prompt": " "})).unwrap();
    assert_eq!(
        r.validate(Limits::default()).unwrap_err(),
        r.build(&ctx("claude")).unwrap_err()
    );
    let r: ClaudeRequest =
        serde_json::from_value(json!({"prompt": "p", "optimizePrompt": true})).unwrap();
    assert_eq!(
        r.validate(Limits::default()).unwrap(),
        r.build(&ctx("claude")).unwrap().warnings
    );
}

#[test]
fn schema_is_strict_and_documented() {
    let schema = serde_json::to_value(schemars::schema_for!(ClaudeRequest)).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    let props = &schema["properties"];
    assert!(
        props["prompt"]["description"]
            .as_str()
            .unwrap()
            .contains("Exactly one of `prompt` or `promptParts`")
    );
    assert_eq!(props["idleTimeoutMs"]["minimum"], json!(1000));
    assert_eq!(props["idleTimeoutMs"]["maximum"], json!(3600000));
    assert_eq!(props["correlationId"]["maxLength"], json!(128));
    assert!(
        props["continueSession"]["description"]
            .as_str()
            .unwrap()
            .contains("resumeLatest")
    );
    // Every property has a description (they become the tool's parameter docs).
    for (name, prop) in props.as_object().unwrap() {
        let described = prop.get("description").is_some()
            || prop.get("$ref").is_some()
            || prop.get("anyOf").is_some()
            || prop.get("allOf").is_some();
        assert!(described, "{name} has no description: {prop}");
    }
    let text = schema.to_string();
    for alias in [
        "\"plain\"",
        "\"stream-json\"",
        "\"streaming-json\"",
        "\"streaming\"",
    ] {
        assert!(
            text.contains(alias),
            "outputFormat alias {alias} missing from the schema"
        );
    }
}

// ---- the per-provider parameter matrix (mcp-surface.md) --------------------------------

use llm_cli_gateway::providers::{AnyRequest, Provider, request_schema};

const COMMON: [&str; 18] = [
    "prompt",
    "promptParts",
    "model",
    "sessionId",
    "resumeLatest",
    "createNewSession",
    "workingDir",
    "approvalStrategy",
    "approvalPolicy",
    "outputFormat",
    "idleTimeoutMs",
    "timeoutMs",
    "forceRefresh",
    "correlationId",
    "worktree",
    "optimizePrompt",
    "optimizeResponse",
    "maxResponseChars",
];

fn properties(provider: Provider) -> serde_json::Map<String, Value> {
    let schema = serde_json::to_value(request_schema(provider)).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false), "{provider}");
    schema["properties"].as_object().unwrap().clone()
}

#[test]
fn every_tool_has_every_common_parameter() {
    for provider in Provider::ALL {
        let props = properties(provider);
        for name in COMMON {
            assert!(props.contains_key(name), "{provider} lacks {name}");
        }
    }
}

#[test]
fn partially_common_parameters_follow_the_matrix() {
    // (param, claude, codex, gemini, grok, mistral)
    let matrix = [
        ("permissionMode", [true, false, false, true, true]),
        ("allowedTools", [true, false, true, true, true]),
        ("disallowedTools", [true, false, false, true, true]),
        ("addDir", [true, true, true, false, true]),
        ("resumeLatest", [true, true, true, true, true]),
        ("continueSession", [true, false, false, false, false]),
        ("includeDirs", [false, false, true, false, false]),
        ("sandboxMode", [false, true, false, false, false]),
        ("approvalMode", [false, false, true, false, false]),
    ];
    for (param, present) in matrix {
        for (provider, present) in Provider::ALL.into_iter().zip(present) {
            assert_eq!(
                properties(provider).contains_key(param),
                present,
                "{provider}.{param}"
            );
            // A parameter marked — is rejected as unknown, by name.
            let result = AnyRequest::from_value(provider, json!({"prompt": "p", param: null}));
            if !present {
                let err = result.unwrap_err().to_string();
                assert!(
                    err.contains(&format!("unknown field `{param}`")),
                    "{provider}.{param}: {err}"
                );
            }
        }
    }
}

#[test]
fn provider_specific_parameters_of_providers_md_exist() {
    let expected: [(Provider, &[&str]); 5] = [
        (
            Provider::Claude,
            &[
                "dangerouslySkipPermissions",
                "mcpServers",
                "strictMcpConfig",
                "systemPrompt",
                "appendSystemPrompt",
                "maxTurns",
                "maxBudgetUsd",
                "effort",
                "fallbackModel",
                "jsonSchema",
                "forkSession",
            ],
        ),
        (
            Provider::Codex,
            &[
                "fullAuto",
                "dangerouslyBypassApprovalsAndSandbox",
                "profile",
                "configOverrides",
                "outputSchema",
                "ephemeral",
                "images",
                "askForApproval",
            ],
        ),
        (
            Provider::Gemini,
            &["yolo", "allowedMcpServerNames", "sandbox"],
        ),
        (
            Provider::Grok,
            &[
                "alwaysApprove",
                "reasoningEffort",
                "effort",
                "allow",
                "deny",
                "maxTurns",
                "sandbox",
                "jsonSchema",
            ],
        ),
        (
            Provider::Mistral,
            &["trust", "maxTurns", "maxPrice", "maxTokens"],
        ),
    ];
    for (provider, names) in expected {
        let props = properties(provider);
        for name in names {
            assert!(props.contains_key(*name), "{provider} lacks {name}");
        }
        for (name, prop) in &props {
            let described = prop.get("description").is_some() || prop.get("$ref").is_some();
            assert!(described, "{provider}.{name} has no description");
        }
    }
}

#[test]
fn mcp_managed_is_claude_only() {
    for provider in Provider::ALL {
        let request = AnyRequest::from_value(
            provider,
            json!({"prompt": "p", "approvalStrategy": "mcp_managed"}),
        )
        .unwrap();
        let result = request.validate(Limits::default());
        if provider == Provider::Claude {
            assert!(result.is_ok());
        } else {
            let err = result.unwrap_err();
            assert_eq!(err.field, "approvalStrategy");
            assert_eq!(
                err.message,
                format!(
                    "approvalStrategy mcp_managed is not available for {provider}: the gateway cannot isolate its ambient MCP configuration"
                )
            );
        }
    }
}

#[test]
fn any_request_dispatches_to_each_adapter() {
    let first_args = [
        (Provider::Claude, "-p"),
        (Provider::Codex, "exec"),
        (Provider::Gemini, "--skip-trust"),
        (Provider::Grok, "--no-auto-update"),
        (Provider::Mistral, "--output=streaming"),
    ];
    for (provider, first) in first_args {
        let request =
            AnyRequest::from_value(provider, json!({"prompt": "hi", "correlationId": "c1"}))
                .unwrap();
        assert_eq!(request.provider(), provider);
        assert_eq!(request.common().correlation_id, Some("c1"));
        assert_eq!(request.to_value()["prompt"], json!("hi"));
        let inv = request.build(&ctx(provider.default_binary())).unwrap();
        assert_eq!(inv.argv[0], first, "{provider}");
        assert_eq!(inv.program, provider.default_binary());
        // The shared rules apply to every provider.
        let blank = AnyRequest::from_value(provider, json!({"prompt": "  "})).unwrap();
        assert_eq!(
            blank.validate(Limits::default()).unwrap_err().field,
            "prompt"
        );
    }
}

#[test]
fn invocations_serialise_for_the_supervisor() {
    use llm_cli_gateway::providers::invocation::Invocation;
    let inv = accepted(json!({"prompt": "p", "strictMcpConfig": true}));
    let text = serde_json::to_string(&inv).unwrap();
    assert_eq!(serde_json::from_str::<Invocation>(&text).unwrap(), inv);
}
