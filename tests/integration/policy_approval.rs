//! `approvalStrategy: "mcp_managed"` through the real binary with the fake claude: the three
//! examples of policy.md, the pinned flags of approved runs, `approval_denied` results that
//! carry the record and start nothing, decisions stored with the prompt hash only, and
//! `approval_list`.

use crate::common;

use common::fake_cli::{self, Recording};
use common::{TestHome, WAIT, assert_matches_output_schema, call, ok, text_of};
use llm_cli_gateway::store::sha256_hex;
use serde_json::{Value, json};

const SERVERS: &str = r#"
[mcp_servers.docs]
command = "docs-mcp"
[mcp_servers.search]
command = "search-mcp"
[mcp_servers.files]
command = "files-mcp"
approval_score = 1
"#;

fn home(extra: &str) -> (TestHome, std::path::PathBuf) {
    let mut home = TestHome::with_config(&format!("{SERVERS}\n{extra}"));
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    (home, records)
}

fn db(home: &TestHome) -> rusqlite::Connection {
    rusqlite::Connection::open(home.db_path()).expect("open the test database")
}

fn count(home: &TestHome, sql: &str) -> i64 {
    db(home).query_row(sql, [], |r| r.get(0)).expect("count")
}

fn only_run(records: &std::path::Path) -> Recording {
    let runs = fake_cli::wait_for_recordings(records, 1, WAIT);
    assert_eq!(runs.len(), 1);
    runs.into_iter().next().expect("one run")
}

async fn approvals(client: &common::Client, tools: &[rmcp::model::Tool]) -> Vec<Value> {
    let result = call(client, "approval_list", json!({})).await;
    let tool = tools
        .iter()
        .find(|t| t.name == "approval_list")
        .expect("approval_list");
    assert_matches_output_schema(tool, &result);
    ok(result)["approvals"]
        .as_array()
        .cloned()
        .expect("approvals")
}

#[tokio::test]
async fn summarize_with_three_servers_is_approved_with_pinned_flags() {
    let (home, records) = home("");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let prompt = "Summarize this document";
    let s = ok(call(
        &client,
        "claude_request",
        json!({
            "prompt": prompt,
            "approvalStrategy": "mcp_managed",
            "mcpServers": ["docs", "search", "files"],
            "permissionMode": "auto",
            "correlationId": "approve-1",
        }),
    )
    .await);
    assert_eq!(s["exitCode"], 0, "{s}");

    let run = only_run(&records);
    assert_eq!(run.flag_value("--permission-mode"), Some("acceptEdits"));
    assert!(
        run.argv.iter().any(|a| a == "--strict-mcp-config"),
        "{:?}",
        run.argv
    );
    assert!(run.flag_value("--mcp-config").is_some());

    let list = approvals(&client, &tools).await;
    assert_eq!(list.len(), 1);
    let record = &list[0];
    assert_eq!(record["status"], "approved");
    assert_eq!(record["policy"], "balanced");
    assert_eq!(record["score"], 3);
    assert_eq!(record["threshold"], 5);
    assert_eq!(record["bypassRequested"], false);
    assert_eq!(record["correlationId"], "approve-1");
    assert_eq!(record["promptSha256"], sha256_hex(prompt));
    assert_eq!(
        record["requestedMcpServers"],
        json!(["docs", "search", "files"])
    );
    // The prompt's text is nowhere in the approvals table.
    assert_eq!(
        count(
            &home,
            "SELECT count(*) FROM approvals WHERE reasons LIKE '%Summarize%' OR prompt_sha256 LIKE '%Summarize%'"
        ),
        0
    );

    let row = ok(call(
        &client,
        "llm_request_result",
        json!({"correlationId": "approve-1"}),
    )
    .await);
    assert_eq!(row["request"]["approvalDecision"], "approved");
}

#[tokio::test]
async fn bypass_on_permissive_without_allow_bypass_is_denied_and_starts_nothing() {
    let (home, records) = home("");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let result = call(
        &client,
        "claude_request",
        json!({
            "prompt": "Summarize this document",
            "approvalStrategy": "mcp_managed",
            "approvalPolicy": "permissive",
            "permissionMode": "bypassPermissions",
            "correlationId": "deny-1",
        }),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(text.contains("denied"), "{text}");
    assert!(text.contains("Fix:"), "{text}");
    let s = result.structured_content.expect("structured error");
    assert_eq!(s["errorCategory"], "approval_denied");
    assert_eq!(s["retryable"], false);
    assert_eq!(s["correlationId"], "deny-1");
    let approval = &s["approval"];
    assert_eq!(approval["status"], "denied");
    assert_eq!(approval["policy"], "permissive");
    assert_eq!(approval["score"], 3);
    assert_eq!(approval["threshold"], 7);
    assert_eq!(approval["bypassRequested"], true);

    // Nothing started: no job, no request row, no CLI run.
    assert_eq!(count(&home, "SELECT count(*) FROM jobs"), 0);
    assert_eq!(count(&home, "SELECT count(*) FROM requests"), 0);
    assert!(fake_cli::recordings(&records).is_empty());
    let list = approvals(&client, &tools).await;
    assert_eq!(list[0]["id"], approval["id"]);
}

#[tokio::test]
async fn delete_the_leaked_secret_under_strict_is_denied() {
    let (home, records) = home("[approvals]\npolicy = \"strict\"\n");
    let client = home.connect().await;
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "delete the leaked secret", "approvalStrategy": "mcp_managed"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true), "{}", text_of(&result));
    let s = result.structured_content.expect("structured error");
    assert_eq!(s["errorCategory"], "approval_denied");
    assert_eq!(s["approval"]["policy"], "strict");
    assert_eq!(s["approval"]["score"], 3);
    assert_eq!(s["approval"]["threshold"], 2);
    assert_eq!(s["approval"]["bypassRequested"], false);
    assert!(fake_cli::recordings(&records).is_empty());
    // The stored record has the hash, never the words.
    assert_eq!(
        count(
            &home,
            "SELECT count(*) FROM approvals WHERE status = 'denied'"
        ),
        1
    );
    let hash: String = db(&home)
        .query_row("SELECT prompt_sha256 FROM approvals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hash, sha256_hex("delete the leaked secret"));
}

#[tokio::test]
async fn allowed_bypass_keeps_bypass_and_plan_is_kept() {
    let (home, records) = home("[approvals]\nallow_bypass = true\npolicy = \"permissive\"\n");
    let client = home.connect().await;
    ok(call(
        &client,
        "claude_request",
        json!({"prompt": "hello one", "approvalStrategy": "mcp_managed", "dangerouslySkipPermissions": true}),
    )
    .await);
    let run = only_run(&records);
    assert_eq!(
        run.flag_value("--permission-mode"),
        Some("bypassPermissions")
    );
    assert!(run.argv.iter().any(|a| a == "--strict-mcp-config"));

    ok(call(
        &client,
        "claude_request",
        json!({"prompt": "hello two", "approvalStrategy": "mcp_managed", "permissionMode": "plan"}),
    )
    .await);
    let runs = fake_cli::wait_for_recordings(&records, 2, WAIT);
    assert_eq!(runs[1].flag_value("--permission-mode"), Some("plan"));
    // A legacy request is not scored and not pinned.
    ok(call(&client, "claude_request", json!({"prompt": "hello three"})).await);
    let runs = fake_cli::wait_for_recordings(&records, 3, WAIT);
    assert!(!runs[2].argv.iter().any(|a| a == "--strict-mcp-config"));
    assert_eq!(count(&home, "SELECT count(*) FROM approvals"), 2);
}

#[tokio::test]
async fn mcp_managed_is_invalid_for_other_providers() {
    let (home, records) = home("");
    let client = home.connect().await;
    for (tool, cli) in [
        ("codex_request", "codex"),
        ("gemini_request", "gemini"),
        ("grok_request", "grok"),
        ("mistral_request", "mistral"),
    ] {
        let result = call(
            &client,
            tool,
            json!({"prompt": "hi", "approvalStrategy": "mcp_managed"}),
        )
        .await;
        assert_eq!(result.is_error, Some(true));
        let s = result.structured_content.expect("structured error");
        assert_eq!(s["errorCategory"], "invalid_input");
        assert!(
            s["message"].as_str().unwrap().contains(&format!(
                "approvalStrategy mcp_managed is not available for {cli}: the gateway cannot isolate its ambient MCP configuration"
            )),
            "{s}"
        );
    }
    assert!(fake_cli::recordings(&records).is_empty());
    assert_eq!(count(&home, "SELECT count(*) FROM approvals"), 0);
}

#[tokio::test]
async fn approval_list_is_newest_first_filtered_and_bounded() {
    let (home, _records) = home("[approvals]\npolicy = \"strict\"\n");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    for n in 0..3 {
        call(
            &client,
            "claude_request",
            json!({"prompt": format!("wipe disk {n}"), "approvalStrategy": "mcp_managed", "correlationId": format!("c-{n}")}),
        )
        .await;
    }
    let list = approvals(&client, &tools).await;
    let ids: Vec<&str> = list
        .iter()
        .map(|a| a["correlationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["c-2", "c-1", "c-0"]);
    let one = ok(call(
        &client,
        "approval_list",
        json!({"limit": 1, "cli": "claude"}),
    )
    .await);
    assert_eq!(one["approvals"].as_array().unwrap().len(), 1);
    let none = ok(call(&client, "approval_list", json!({"cli": "codex"})).await);
    assert_eq!(none["approvals"], json!([]));
    for limit in [0, 501] {
        let result = call(&client, "approval_list", json!({"limit": limit})).await;
        assert_eq!(result.is_error, Some(true));
        assert!(text_of(&result).contains("limit"), "{}", text_of(&result));
    }
}
