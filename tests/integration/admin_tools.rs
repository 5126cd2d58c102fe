//! The admin tools through the real binary: `cli_versions` against the fake CLIs,
//! `cli_upgrade` plans, its `[admin] allow_cli_upgrade` gate and a real run against a fake
//! `npm` / `uv` that records its argv (no real package manager ever runs), and
//! `llm_request_result` with and without the prompt. Every result is validated against its
//! advertised output schema.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::fake_cli;
use common::{Client, TestHome, assert_matches_output_schema, call, ok, text_of};
use rmcp::model::{CallToolResult, Tool};
use serde_json::{Value, json};

async fn checked(client: &Client, tools: &[Tool], name: &str, args: Value) -> CallToolResult {
    let result = call(client, name, args).await;
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .expect("tool registered");
    assert_matches_output_schema(tool, &result);
    result
}

/// A fake package manager that records its argv (one per line) in `<root>/<name>.argv`.
fn fake_package_manager(home: &TestHome, name: &str, exit: i32) -> PathBuf {
    let record = home.root().join(format!("{name}.argv"));
    let script = home.bin_dir().join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho upgraded\nexit {exit}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    record
}

fn argv(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn cli_versions_reports_installed_fakes_and_missing_clis() {
    let home = TestHome::new();
    for name in ["claude", "codex", "grok"] {
        fake_cli::install_fake_cli(&home, name);
    }
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let s = ok(checked(&client, &tools, "cli_versions", json!({})).await);
    let clis = s["clis"].as_array().unwrap();
    assert_eq!(clis.len(), 5);
    let by = |key: &str| clis.iter().find(|c| c["cli"] == key).unwrap().clone();
    let claude = by("claude");
    assert_eq!(claude["installed"], true);
    assert_eq!(claude["version"], "2.1.329");
    assert_eq!(claude["testedVersion"], "2.1.329");
    assert_eq!(claude["versionStatus"], "tested");
    assert_eq!(claude["compatible"], true);
    assert!(claude["path"].as_str().unwrap().ends_with("/bin/claude"));
    assert_eq!(by("grok")["version"], "1.0.41");
    assert_eq!(by("codex")["compatible"], true);
    let vibe = by("mistral");
    assert_eq!(vibe["installed"], false);
    assert_eq!(vibe["path"], Value::Null);
    assert_eq!(vibe["version"], Value::Null);
    assert_eq!(vibe["compatible"], Value::Null);

    let one = ok(checked(&client, &tools, "cli_versions", json!({"cli": "codex"})).await);
    assert_eq!(one["clis"].as_array().unwrap().len(), 1);
    assert_eq!(one["clis"][0]["version"], "0.169.0");
}

#[tokio::test]
async fn cli_versions_bounds_a_hanging_binary() {
    let home = TestHome::with_config("[providers.claude]\nbinary = \"slowclaude\"\n");
    let script = home.bin_dir().join("slowclaude");
    std::fs::write(&script, "#!/bin/sh\nsleep 60\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let started = std::time::Instant::now();
    let s = ok(checked(&client, &tools, "cli_versions", json!({"cli": "claude"})).await);
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    let claude = &s["clis"][0];
    assert_eq!(claude["installed"], true);
    assert_eq!(claude["version"], Value::Null);
    assert!(
        claude["error"].as_str().unwrap().contains("5 s"),
        "{claude}"
    );
}

#[tokio::test]
async fn cli_upgrade_plans_and_refuses_a_real_run_unless_allowed() {
    let home = TestHome::new();
    let record = fake_package_manager(&home, "npm", 0);
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();

    let plan = ok(checked(&client, &tools, "cli_upgrade", json!({"cli": "claude"})).await);
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["allowed"], false);
    assert_eq!(plan["target"], "latest");
    assert_eq!(
        plan["commands"][0]["display"],
        "npm install -g @anthropic-ai/claude-code@latest"
    );
    let vibe = ok(checked(
        &client,
        &tools,
        "cli_upgrade",
        json!({"cli": "mistral", "target": "3.0.4"}),
    )
    .await);
    assert_eq!(
        vibe["commands"][0]["display"],
        "uv tool install --force mistral-vibe==3.0.4"
    );

    let refused = checked(
        &client,
        &tools,
        "cli_upgrade",
        json!({"cli": "codex", "dryRun": false}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    let text = text_of(&refused);
    assert!(text.contains("allow_cli_upgrade = true"), "{text}");
    assert!(text.contains("[admin]"), "{text}");
    assert!(argv(&record).is_empty(), "npm must not run");

    for bad in [
        json!({"cli": "codex", "timeoutMs": 1000}),
        json!({"cli": "codex", "target": "-g"}),
    ] {
        let result = checked(&client, &tools, "cli_upgrade", bad.clone()).await;
        assert_eq!(result.is_error, Some(true), "{bad}");
    }
}

#[tokio::test]
async fn cli_upgrade_real_run_uses_the_fake_package_manager() {
    let home = TestHome::with_config("[admin]\nallow_cli_upgrade = true\n");
    let npm = fake_package_manager(&home, "npm", 0);
    let uv = fake_package_manager(&home, "uv", 3);
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();

    let s = ok(checked(
        &client,
        &tools,
        "cli_upgrade",
        json!({"cli": "codex", "dryRun": false, "target": "0.170.0", "timeoutMs": 30000}),
    )
    .await);
    assert_eq!(s["executed"], true);
    assert_eq!(s["allowed"], true);
    assert_eq!(s["run"]["success"], true);
    assert_eq!(s["run"]["exitCode"], 0);
    assert_eq!(s["run"]["timedOut"], false);
    assert!(
        s["run"]["stdoutTail"]
            .as_str()
            .unwrap()
            .contains("upgraded")
    );
    assert_eq!(argv(&npm), vec!["install", "-g", "@openai/codex@0.170.0"]);

    let failed = ok(checked(
        &client,
        &tools,
        "cli_upgrade",
        json!({"cli": "mistral", "dryRun": false}),
    )
    .await);
    assert_eq!(failed["run"]["success"], false);
    assert_eq!(failed["run"]["exitCode"], 3);
    assert_eq!(
        argv(&uv),
        vec!["tool", "install", "--upgrade", "mistral-vibe"]
    );
}

#[tokio::test]
async fn llm_request_result_returns_the_row_and_the_prompt_only_when_asked() {
    let mut home = TestHome::new();
    fake_cli::install_all(&home);
    fake_cli::record_into(&mut home);
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let answer = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "say hi to the recorder", "correlationId": "rec-1"}),
    )
    .await);

    let s = ok(checked(
        &client,
        &tools,
        "llm_request_result",
        json!({"correlationId": "rec-1"}),
    )
    .await);
    let row = &s["request"];
    assert_eq!(row["correlationId"], "rec-1");
    assert_eq!(row["cli"], "claude");
    assert_eq!(row["status"], "completed");
    assert_eq!(row["prompt"], Value::Null);
    assert_eq!(
        row["promptSha256"],
        llm_cli_gateway::store::sha256_hex("say hi to the recorder")
    );
    assert_eq!(row["response"], answer["response"]);
    assert_eq!(row["jobId"], answer["jobId"]);
    assert_eq!(row["approvalDecision"], Value::Null);

    let with = ok(checked(
        &client,
        &tools,
        "llm_request_result",
        json!({"correlationId": "rec-1", "includePrompt": true, "maxChars": 1000}),
    )
    .await);
    assert_eq!(with["request"]["prompt"], "say hi to the recorder");

    let missing = checked(
        &client,
        &tools,
        "llm_request_result",
        json!({"correlationId": "nope"}),
    )
    .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text_of(&missing).contains("Request not found: nope"));
    let bad = checked(
        &client,
        &tools,
        "llm_request_result",
        json!({"correlationId": "rec-1", "maxChars": 10}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
}

#[tokio::test]
async fn cli_upgrade_real_run_is_killed_as_a_group_at_timeout_ms() {
    let home = TestHome::with_config("[admin]\nallow_cli_upgrade = true\n");
    let pid_file = home.root().join("grandchild.pid");
    let script = home.bin_dir().join("npm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > '{}'\nsleep 1000\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let arguments = json!({"cli": "grok", "dryRun": false, "timeoutMs": 30000});
    let request = rmcp::model::CallToolRequestParams::new("cli_upgrade")
        .with_arguments(arguments.as_object().unwrap().clone());
    // 30 s is the smallest timeoutMs; allow the kill grace on top.
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        client.call_tool(request),
    )
    .await
    .expect("cli_upgrade returned after its timeout")
    .expect("cli_upgrade answered");
    let tool = tools.iter().find(|t| t.name == "cli_upgrade").unwrap();
    assert_matches_output_schema(tool, &result);
    let s = ok(result);
    assert_eq!(s["run"]["timedOut"], true, "{s}");
    assert_eq!(s["run"]["success"], false);
    assert!(s["message"].as_str().unwrap().contains("killed"));
    let grandchild: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        fake_cli::wait_until_dead(grandchild, std::time::Duration::from_secs(5)),
        "the upgrade's grandchild survived the group kill"
    );
}
