//! `llm-cli-gateway print-client-config` through the built binary: every entry uses this
//! binary's absolute path, parses in its client's format (JSON or TOML), asks for a tool
//! timeout above the sync deadline, and uses only flags the client's `mcp add --help` has.

use crate::common;

use common::{BINARY, TestHome};
use serde_json::Value;

async fn print(home: &TestHome, client: &str) -> String {
    let out = home.run(["print-client-config", "--client", client]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn binary() -> String {
    std::fs::canonicalize(BINARY).unwrap().display().to_string()
}

/// The JSON snippet: from the first line that is `{` to the line that is `}`.
fn json_block(text: &str) -> Value {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| *l == "{").expect("a JSON block");
    let end = start + lines[start..].iter().position(|l| *l == "}").unwrap();
    serde_json::from_str(&lines[start..=end].join("\n")).expect("the snippet is JSON")
}

/// The line holding the `… mcp add` command.
fn command_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
}

fn help(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/cli-help/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_flags_exist(command: &str, help_text: &str) {
    for word in command
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--")
    {
        assert!(
            help_text.contains(word),
            "{word} is not in the client's help"
        );
    }
}

#[tokio::test]
async fn claude_code_entry_is_a_command_and_mcp_json() {
    let home = TestHome::new();
    let text = print(&home, "claude-code").await;
    let path = binary();
    assert_eq!(
        command_line(&text, "claude mcp add"),
        format!("claude mcp add --scope user llm-cli-gateway -- {path}")
    );
    assert_flags_exist(
        command_line(&text, "claude mcp add"),
        &help("claude-mcp-add.txt"),
    );
    let json = json_block(&text);
    assert_eq!(
        json["mcpServers"]["llm-cli-gateway"]["command"],
        path.as_str()
    );
    assert_eq!(
        json["mcpServers"]["llm-cli-gateway"]["args"],
        serde_json::json!([])
    );
    assert!(text.contains("MCP_TOOL_TIMEOUT=120000"), "{text}");
}

#[tokio::test]
async fn codex_entry_is_toml_with_a_tool_timeout_above_the_sync_deadline() {
    let home = TestHome::new();
    let text = print(&home, "codex").await;
    let path = binary();
    assert_eq!(
        command_line(&text, "codex mcp add"),
        format!("codex mcp add llm-cli-gateway -- {path}")
    );
    let start = text.find("[mcp_servers.").expect("a TOML table");
    let table: toml::Table = toml::from_str(&text[start..]).expect("the snippet is TOML");
    let entry = &table["mcp_servers"]["llm-cli-gateway"];
    assert_eq!(entry["command"].as_str(), Some(path.as_str()));
    assert_eq!(entry["args"].as_array().map(Vec::len), Some(0));
    let secs = entry["tool_timeout_sec"].as_integer().unwrap();
    assert!(secs * 1000 > 45_000, "{secs}");
}

#[tokio::test]
async fn the_timeout_follows_a_longer_sync_deadline() {
    let home = TestHome::with_config("[jobs]\nsync_deadline_ms = 300000\n");
    let text = print(&home, "codex").await;
    let start = text.find("[mcp_servers.").unwrap();
    let table: toml::Table = toml::from_str(&text[start..]).unwrap();
    let secs = table["mcp_servers"]["llm-cli-gateway"]["tool_timeout_sec"]
        .as_integer()
        .unwrap();
    assert!(secs > 300, "{secs}");
}

#[tokio::test]
async fn gemini_entry_has_a_timeout_in_settings_json_and_the_command() {
    let home = TestHome::new();
    let text = print(&home, "gemini").await;
    let path = binary();
    let command = command_line(&text, "gemini mcp add");
    assert_eq!(
        command,
        format!("gemini mcp add --scope user --timeout 120000 llm-cli-gateway {path}")
    );
    assert_flags_exist(command, &help("gemini-mcp-add.txt"));
    let json = json_block(&text);
    let entry = &json["mcpServers"]["llm-cli-gateway"];
    assert_eq!(entry["command"], path.as_str());
    assert!(entry["timeout"].as_u64().unwrap() > 45_000);
}

#[tokio::test]
async fn cursor_entry_is_mcp_json() {
    let home = TestHome::new();
    let text = print(&home, "cursor").await;
    let json = json_block(&text);
    assert_eq!(
        json["mcpServers"]["llm-cli-gateway"]["command"],
        binary().as_str()
    );
    assert!(text.contains("~/.cursor/mcp.json"));
}

#[tokio::test]
async fn vibe_entry_is_its_mcp_add_command() {
    let home = TestHome::new();
    let text = print(&home, "vibe").await;
    let command = command_line(&text, "vibe mcp add");
    assert_eq!(
        command,
        format!(
            "vibe mcp add llm-cli-gateway --transport stdio --command {} --tool-timeout-sec 120",
            binary()
        )
    );
    assert_flags_exist(command, &help("vibe-mcp-add.txt"));
}

#[tokio::test]
async fn without_client_every_entry_is_printed_and_an_unknown_client_is_a_usage_error() {
    let home = TestHome::new();
    let out = home.run(["print-client-config"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for title in [
        "# Claude Code",
        "# Codex",
        "# Gemini CLI",
        "# Cursor",
        "# Vibe",
    ] {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    let out = home.run(["print-client-config", "--client", "emacs"]).await;
    assert_eq!(out.status.code(), Some(2));
}
