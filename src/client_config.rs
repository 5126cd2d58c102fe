//! `llm-cli-gateway print-client-config`: the MCP client entries for this binary, in each
//! client's own format (config-and-cli.md, "Client entries").
//!
//! Owns: the list of supported clients ([`Client`]), the tool timeout an entry asks for
//! (above the sync deadline, so a sync call can reach its deadline and come back deferred
//! instead of being cut off by the client), and the text of each entry: a one-line `… mcp
//! add` command and, where the client has one, the config-file snippet. Every non-entry line
//! starts with `#`, so each snippet can be cut out and parsed (JSON or TOML) as is.
//!
//! Not here: finding the binary's path (the caller passes the absolute path) or writing any
//! client's files — the person pastes the entry.

use std::path::Path;

use serde_json::json;

/// The name the gateway is registered under in every client.
pub const SERVER_NAME: &str = "llm-cli-gateway";

/// The smallest tool timeout an entry asks for, in seconds.
pub const MIN_TOOL_TIMEOUT_SECS: u64 = 120;

/// The tool timeout used when the sync deadline is 0 (sync calls never defer).
pub const NO_DEADLINE_TOOL_TIMEOUT_SECS: u64 = 3600;

/// An MCP client whose config format we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeCode,
    Codex,
    Gemini,
    Cursor,
    Vibe,
}

impl Client {
    pub const ALL: [Client; 5] = [
        Client::ClaudeCode,
        Client::Codex,
        Client::Gemini,
        Client::Cursor,
        Client::Vibe,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Client::ClaudeCode => "Claude Code",
            Client::Codex => "Codex",
            Client::Gemini => "Gemini CLI",
            Client::Cursor => "Cursor",
            Client::Vibe => "Vibe",
        }
    }
}

/// The client tool timeout for a sync deadline: at least [`MIN_TOOL_TIMEOUT_SECS`] and a
/// minute above the deadline; [`NO_DEADLINE_TOOL_TIMEOUT_SECS`] when the deadline is 0.
pub fn tool_timeout_secs(sync_deadline_ms: u64) -> u64 {
    if sync_deadline_ms == 0 {
        return NO_DEADLINE_TOOL_TIMEOUT_SECS;
    }
    (sync_deadline_ms.div_ceil(1000) + 60).max(MIN_TOOL_TIMEOUT_SECS)
}

/// Quotes `word` for a POSIX shell when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn mcp_servers_json(binary: &str, timeout_ms: Option<u64>) -> String {
    let mut entry = json!({ "command": binary, "args": [] });
    if let Some(ms) = timeout_ms {
        entry["timeout"] = json!(ms);
    }
    let value = json!({ "mcpServers": { SERVER_NAME: entry } });
    serde_json::to_string_pretty(&value).expect("a JSON value always serialises")
}

/// The entry for one client, for a binary at `binary` and a sync deadline in ms.
pub fn render(client: Client, binary: &Path, sync_deadline_ms: u64) -> String {
    let path = binary.display().to_string();
    let quoted = shell_quote(&path);
    let secs = tool_timeout_secs(sync_deadline_ms);
    let ms = secs * 1000;
    let deadline = if sync_deadline_ms == 0 {
        "sync calls never defer (sync_deadline_ms = 0)".to_string()
    } else {
        format!("the gateway's sync deadline is {} ms", sync_deadline_ms)
    };
    let mut out = format!("# {}\n", client.title());
    match client {
        Client::ClaudeCode => {
            out.push_str("# Run:\n");
            out.push_str(&format!(
                "claude mcp add --scope user {SERVER_NAME} -- {quoted}\n"
            ));
            out.push_str("# or put this in .mcp.json (project scope):\n");
            out.push_str(&mcp_servers_json(&path, None));
            out.push('\n');
            out.push_str(&format!(
                "# Claude Code takes its tool timeout from the environment: start it with\n\
                 # MCP_TOOL_TIMEOUT={ms} (ms; {deadline}).\n"
            ));
        }
        Client::Codex => {
            out.push_str("# Run:\n");
            out.push_str(&format!("codex mcp add {SERVER_NAME} -- {quoted}\n"));
            out.push_str(&format!(
                "# or put this in ~/.codex/config.toml (tool_timeout_sec: {deadline}):\n"
            ));
            let mut table = toml::Table::new();
            table.insert("command".into(), toml::Value::String(path.clone()));
            table.insert("args".into(), toml::Value::Array(Vec::new()));
            table.insert(
                "tool_timeout_sec".into(),
                toml::Value::Integer(i64::try_from(secs).unwrap_or(i64::MAX)),
            );
            out.push_str(&format!("[mcp_servers.{SERVER_NAME}]\n"));
            out.push_str(&toml::to_string(&table).expect("a TOML table always serialises"));
        }
        Client::Gemini => {
            out.push_str("# Run:\n");
            out.push_str(&format!(
                "gemini mcp add --scope user --timeout {ms} {SERVER_NAME} {quoted}\n"
            ));
            out.push_str(&format!(
                "# or put this in ~/.gemini/settings.json (timeout in ms: {deadline}):\n"
            ));
            out.push_str(&mcp_servers_json(&path, Some(ms)));
            out.push('\n');
        }
        Client::Cursor => {
            out.push_str("# Put this in ~/.cursor/mcp.json (or .cursor/mcp.json in a project):\n");
            out.push_str(&mcp_servers_json(&path, None));
            out.push('\n');
        }
        Client::Vibe => {
            out.push_str(&format!(
                "# Run (it writes the entry to Vibe's config.toml; {deadline}):\n"
            ));
            out.push_str(&format!(
                "vibe mcp add {SERVER_NAME} --transport stdio --command {quoted} --tool-timeout-sec {secs}\n"
            ));
        }
    }
    out
}

/// The entries of `clients`, separated by blank lines.
pub fn render_all(clients: &[Client], binary: &Path, sync_deadline_ms: u64) -> String {
    clients
        .iter()
        .map(|client| render(*client, binary, sync_deadline_ms))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_timeout_is_above_the_deadline() {
        assert_eq!(tool_timeout_secs(45_000), 120);
        assert_eq!(tool_timeout_secs(300_000), 360);
        assert_eq!(tool_timeout_secs(0), NO_DEADLINE_TOOL_TIMEOUT_SECS);
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
        assert_eq!(shell_quote("/usr/bin/x"), "/usr/bin/x");
    }
}
