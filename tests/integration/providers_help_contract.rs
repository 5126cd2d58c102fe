//! Contract with the real CLIs: every flag (and enum value) an adapter can emit appears in
//! that CLI's captured `--help` text (tests/fixtures/cli-help/), so a typo or a flag a new
//! version removed (like codex `--full-auto`) fails here, not in production.
//!
//! "Can emit" is made concrete twice: maximal requests are built for every session binding,
//! and every flag literal in the adapter's source must show up in those builds.

use crate::providers_support as support;

use std::collections::BTreeSet;

use llm_cli_gateway::providers::invocation::{BuildContext, McpServerSpec, SessionBinding};
use llm_cli_gateway::providers::{AnyRequest, Provider};
use serde_json::{Value, json};
use support::*;

/// Hidden flags known to work although `--help` does not list them: (cli, flag, value).
const ALLOWLIST: [(&str, &str, Option<&str>); 3] = [
    // Documented by xAI and observed to work on 1.0.41 (every grok capture passes it).
    ("grok", "--no-auto-update", None),
    // Hidden from claude 2.1.329's help; the max-turns capture shows it is honoured.
    ("claude", "--max-turns", None),
    // claude's help lists "manual" instead; `default` is still accepted and is what a pinned
    // (mcp_managed) default mode emits.
    ("claude", "--permission-mode", Some("default")),
];

fn allowed(cli: &str, flag: &str, value: Option<&str>) -> bool {
    ALLOWLIST
        .iter()
        .any(|&(c, f, v)| c == cli && f == flag && (v.is_none() || v == value))
}

/// Flags (and `=` values) in an argv, up to the `--` that ends options.
fn flags(argv: &[String]) -> Vec<(String, Option<String>)> {
    argv.iter()
        .take_while(|a| a.as_str() != "--")
        .filter(|a| a.starts_with('-') && a.len() > 1)
        .map(|a| match a.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (a.clone(), None),
        })
        .collect()
}

/// Whether a help line declares an option (`-x`, `--xyz`), as opposed to a `- item` bullet.
fn is_declaration(line: &str) -> bool {
    let rest = line.trim_start().trim_start_matches('-');
    line.trim_start().starts_with('-') && rest.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `flag` is declared in the help text (as `--flag`, `-f,` or an alias).
fn declared(help: &str, flag: &str) -> bool {
    help.lines().any(|line| {
        is_declaration(line)
            && line
                .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<' || c == '[')
                .any(|token| token == flag)
    })
}

/// The help paragraph of `flag`: its declaration line up to the next declaration.
fn paragraph(help: &str, flag: &str) -> String {
    let mut lines = help.lines().skip_while(|line| {
        !(is_declaration(line)
            && line
                .split(|c: char| c.is_whitespace() || c == ',')
                .any(|token| token == flag))
    });
    let mut text = lines.next().unwrap_or_default().to_string();
    for line in lines.take_while(|line| !is_declaration(line)) {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Builds a request that must succeed.
fn emit(provider: Provider, args: Value, ctx: &BuildContext) -> Vec<String> {
    AnyRequest::from_value(provider, args)
        .expect("deserialises")
        .build(ctx)
        .expect("builds")
        .argv
}

fn ctx_with(provider: Provider, session: SessionBinding) -> BuildContext {
    let mut c = ctx(provider.default_binary());
    c.model = Some("some-model".into());
    c.session = session;
    c.max_prompt_chars = 400_000;
    c.pin_permission_mode = true;
    c.mcp_servers.insert(
        "docs".into(),
        McpServerSpec {
            command: "docs-mcp".into(),
            ..McpServerSpec::default()
        },
    );
    c
}

const BINDINGS: [fn() -> SessionBinding; 3] = [
    || SessionBinding::Fresh,
    || SessionBinding::Resume("0a66ea0f-7c2b-457e-a84f-4ab22cd8ba1f".into()),
    || SessionBinding::ResumeLatest,
];

/// Argv lists covering every flag and enum value the adapter can emit, per help text.
fn maximal_builds(provider: Provider) -> Vec<(&'static str, Vec<String>)> {
    let big = "x".repeat(110_000);
    let mut out = Vec::new();
    for binding in BINDINGS {
        let c = ctx_with(provider, binding());
        let resuming = c.session != SessionBinding::Fresh;
        match provider {
            Provider::Claude => {
                let help = "claude";
                for mode in [
                    "default",
                    "acceptEdits",
                    "auto",
                    "bypassPermissions",
                    "dontAsk",
                    "plan",
                ] {
                    out.push((
                        help,
                        emit(provider, json!({"prompt": "p", "permissionMode": mode}), &c),
                    ));
                }
                for effort in ["low", "medium", "high", "xhigh", "max"] {
                    out.push((
                        help,
                        emit(provider, json!({"prompt": "p", "effort": effort}), &c),
                    ));
                }
                out.push((
                    help,
                    emit(
                        provider,
                        json!({
                            "prompt": "p", "allowedTools": ["Read"], "disallowedTools": ["Bash"],
                            "mcpServers": ["docs"], "strictMcpConfig": true, "addDir": ["/a"],
                            "systemPrompt": "s", "maxTurns": 2, "maxBudgetUsd": 1.5,
                            "fallbackModel": "haiku", "jsonSchema": {"type": "object"},
                            "forkSession": true
                        }),
                        &c,
                    ),
                ));
                out.push((
                    help,
                    emit(
                        provider,
                        json!({"prompt": "p", "appendSystemPrompt": "a"}),
                        &c,
                    ),
                ));
                out.push((help, emit(provider, json!({"prompt": big}), &c)));
            }
            Provider::Codex => {
                let help = if resuming {
                    "codex-exec-resume"
                } else {
                    "codex-exec"
                };
                for mode in ["read-only", "workspace-write", "danger-full-access"] {
                    out.push((
                        help,
                        emit(
                            provider,
                            json!({
                                "prompt": "p", "sandboxMode": mode, "addDir": ["/a"],
                                "outputSchema": {"type": "object"}, "profile": "work",
                                "configOverrides": {"k": "v"}, "ephemeral": true,
                                "images": ["a.png"]
                            }),
                            &c,
                        ),
                    ));
                }
                out.push((
                    help,
                    emit(
                        provider,
                        json!({"prompt": "p", "dangerouslyBypassApprovalsAndSandbox": true}),
                        &c,
                    ),
                ));
                out.push((
                    help,
                    emit(
                        provider,
                        json!({"prompt": "p", "fullAuto": true, "askForApproval": "never"}),
                        &c,
                    ),
                ));
            }
            Provider::Gemini => {
                for mode in ["default", "auto_edit", "yolo", "plan"] {
                    out.push((
                        "gemini",
                        emit(
                            provider,
                            json!({
                                "prompt": "p", "approvalMode": mode, "includeDirs": ["/a", "/b"],
                                "allowedTools": ["read_file"], "allowedMcpServerNames": ["docs"],
                                "sandbox": true
                            }),
                            &c,
                        ),
                    ));
                }
                out.push((
                    "gemini",
                    emit(provider, json!({"prompt": "p", "yolo": true}), &c),
                ));
            }
            Provider::Grok => {
                for mode in [
                    "default",
                    "acceptEdits",
                    "auto",
                    "dontAsk",
                    "bypassPermissions",
                    "plan",
                ] {
                    out.push((
                        "grok",
                        emit(
                            provider,
                            json!({
                                "prompt": "p", "permissionMode": mode, "reasoningEffort": "high",
                                "allowedTools": ["read_file"], "disallowedTools": ["grep"],
                                "allow": ["Read"], "deny": ["Bash"], "maxTurns": 3,
                                "sandbox": "workspace"
                            }),
                            &c,
                        ),
                    ));
                }
                out.push((
                    "grok",
                    emit(
                        provider,
                        json!({"prompt": "p", "alwaysApprove": true, "effort": "max"}),
                        &c,
                    ),
                ));
                out.push((
                    "grok",
                    emit(
                        provider,
                        json!({"prompt": "p", "jsonSchema": {"type": "object"}}),
                        &c,
                    ),
                ));
                out.push(("grok", emit(provider, json!({"prompt": big}), &c)));
            }
            Provider::Mistral => {
                for agent in ["ask", "accept-edits", "smart-approve", "auto-approve"] {
                    out.push((
                        "vibe",
                        emit(
                            provider,
                            json!({
                                "prompt": "p", "permissionMode": agent, "allowedTools": ["read_file"],
                                "disallowedTools": ["bash"], "addDir": ["/a"], "trust": true,
                                "maxTurns": 3, "maxPrice": 0.5, "maxTokens": 1000
                            }),
                            &c,
                        ),
                    ));
                }
                out.push(("vibe", emit(provider, json!({"prompt": big}), &c)));
            }
        }
    }
    out
}

/// Flags whose values come from a closed set, with the help text that lists them.
fn checks_value(flag: &str) -> bool {
    matches!(
        flag,
        "--permission-mode"
            | "--output-format"
            | "--effort"
            | "--sandbox"
            | "--approval-mode"
            | "--output"
            | "--agent"
    )
}

fn check_provider(provider: Provider) {
    let mut emitted: BTreeSet<String> = BTreeSet::new();
    for (help_name, argv) in maximal_builds(provider) {
        let help = help(help_name);
        for (flag, value) in flags(&argv) {
            emitted.insert(flag.clone());
            assert!(
                declared(&help, &flag) || allowed(help_name_cli(help_name), &flag, None),
                "{help_name}: {flag} is not in the CLI's --help (argv {argv:?})"
            );
            let Some(value) = value else { continue };
            // grok's --sandbox takes a free profile name, not an enum.
            if !checks_value(&flag) || (provider == Provider::Grok && flag == "--sandbox") {
                continue;
            }
            let text = paragraph(&help, &flag);
            let listed = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .any(|word| word == value);
            assert!(
                listed || allowed(help_name_cli(help_name), &flag, Some(&value)),
                "{help_name}: {flag}={value} is not a value its --help lists:\n{text}"
            );
        }
    }
    // Every flag literal in the adapter's source is covered by the builds above.
    let source = match provider {
        Provider::Claude => include_str!("../../src/providers/claude.rs"),
        Provider::Codex => include_str!("../../src/providers/codex.rs"),
        Provider::Gemini => include_str!("../../src/providers/gemini.rs"),
        Provider::Grok => include_str!("../../src/providers/grok.rs"),
        Provider::Mistral => include_str!("../../src/providers/vibe.rs"),
    };
    let literal = regex::Regex::new(r#""(--?[a-z][a-z0-9-]*)""#).unwrap();
    for capture in literal.captures_iter(source) {
        let flag = &capture[1];
        assert!(
            emitted.contains(flag),
            "{provider}: flag literal {flag} in the adapter is never emitted by the contract builds"
        );
    }
}

fn help_name_cli(help_name: &str) -> &str {
    help_name.split('-').next().unwrap_or(help_name)
}

#[test]
fn claude_flags_are_in_its_help() {
    check_provider(Provider::Claude);
}

#[test]
fn codex_flags_are_in_its_help_for_exec_and_exec_resume() {
    check_provider(Provider::Codex);
}

#[test]
fn gemini_flags_are_in_its_help() {
    check_provider(Provider::Gemini);
}

#[test]
fn grok_flags_are_in_its_help() {
    check_provider(Provider::Grok);
}

#[test]
fn vibe_flags_are_in_its_help() {
    check_provider(Provider::Mistral);
}

#[test]
fn the_contract_catches_removed_and_misspelt_flags() {
    let exec = help("codex-exec");
    assert!(
        !declared(&exec, "--full-auto"),
        "codex 0.169 removed --full-auto"
    );
    assert!(!declared(&help("codex-exec-resume"), "--sandbox"));
    assert!(!declared(&help("codex-exec-resume"), "--add-dir"));
    assert!(declared(&exec, "-c") && declared(&exec, "--sandbox"));
    assert!(!declared(&help("claude"), "--allowed-tool"));
    assert!(
        !declared(&help("grok"), "--no-auto-update"),
        "hidden: hence the allowlist"
    );
    let modes = paragraph(&help("claude"), "--permission-mode");
    assert!(modes.contains("\"acceptEdits\"") && !modes.contains("\"default\""));
}
