//! The six `session_*` tools and `list_models` through the real binary: semantics, bad
//! inputs, output schemas, and persistence across server processes.

use crate::common;

use common::{Client, TestHome, assert_matches_output_schema, call, err, ok};
use rmcp::model::Tool;
use serde_json::{Value, json};

/// Calls a tool and checks its result against the advertised output schema.
async fn checked(
    client: &Client,
    tools: &[Tool],
    name: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"));
    let result = call(client, name, arguments).await;
    assert_matches_output_schema(tool, &result);
    result
}

#[tokio::test]
async fn session_lifecycle_with_one_active_session_per_cli() {
    let home = TestHome::new();
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();

    let first = ok(checked(
        &client,
        &tools,
        "session_create",
        json!({"cli": "claude", "description": "refactor"}),
    )
    .await);
    let first_id = first["session"]["sessionId"].as_str().unwrap().to_string();
    assert!(first_id.starts_with("gw-"), "{first_id}");
    let uuid = uuid::Uuid::parse_str(&first_id[3..]).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "gateway ids are UUID v7");
    assert_eq!(first["session"]["isActive"], true);
    assert_eq!(first["session"]["cli"], "claude");
    assert_eq!(first["session"]["description"], "refactor");
    assert_eq!(first["session"]["providerSessionId"], Value::Null);
    assert_eq!(first["session"]["requestCount"], 0);

    // A second active claude session takes over; the first is no longer active.
    let second = ok(checked(&client, &tools, "session_create", json!({"cli": "claude"})).await);
    let second_id = second["session"]["sessionId"].as_str().unwrap().to_string();
    let got = ok(checked(
        &client,
        &tools,
        "session_get",
        json!({"sessionId": first_id}),
    )
    .await);
    assert_eq!(got["session"]["isActive"], false);
    assert_eq!(got["cacheState"], Value::Null);

    // Not activating leaves the current active session alone; `vibe` names mistral.
    let passive = ok(checked(
        &client,
        &tools,
        "session_create",
        json!({"cli": "claude", "setAsActive": false}),
    )
    .await);
    assert_eq!(passive["session"]["isActive"], false);
    let vibe = ok(checked(&client, &tools, "session_create", json!({"cli": "vibe"})).await);
    assert_eq!(vibe["session"]["cli"], "mistral");

    let listed = ok(checked(&client, &tools, "session_list", json!({"cli": "claude"})).await);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let active: Vec<&Value> = sessions.iter().filter(|s| s["isActive"] == true).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["sessionId"], second_id.as_str());
    let all = ok(checked(&client, &tools, "session_list", json!({})).await);
    assert_eq!(all["sessions"].as_array().unwrap().len(), 4);

    // Switch back, then clear.
    let switched = ok(checked(
        &client,
        &tools,
        "session_set_active",
        json!({"cli": "claude", "sessionId": first_id}),
    )
    .await);
    assert_eq!(switched["activeSessionId"], first_id.as_str());
    let got = ok(call(&client, "session_get", json!({"sessionId": first_id})).await);
    assert_eq!(got["session"]["isActive"], true);
    let got = ok(call(&client, "session_get", json!({"sessionId": second_id})).await);
    assert_eq!(got["session"]["isActive"], false);
    let cleared = ok(checked(
        &client,
        &tools,
        "session_set_active",
        json!({"cli": "claude", "sessionId": null}),
    )
    .await);
    assert_eq!(cleared["activeSessionId"], Value::Null);
    let listed = ok(call(&client, "session_list", json!({"cli": "claude"})).await);
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["isActive"] == false)
    );

    // Delete one, then clear one CLI, then everything.
    let deleted = ok(checked(
        &client,
        &tools,
        "session_delete",
        json!({"sessionId": second_id}),
    )
    .await);
    assert_eq!(deleted["deleted"], true);
    let text = err(checked(
        &client,
        &tools,
        "session_get",
        json!({"sessionId": second_id}),
    )
    .await);
    assert!(
        text.starts_with(&format!(
            "Unknown gateway session \"{second_id}\" (sessionId)"
        )),
        "{text}"
    );
    let cleared = ok(checked(
        &client,
        &tools,
        "session_clear_all",
        json!({"cli": "claude"}),
    )
    .await);
    assert_eq!(cleared["deleted"], 2);
    assert_eq!(cleared["cli"], "claude");
    let remaining = ok(call(&client, "session_list", json!({})).await);
    assert_eq!(remaining["sessions"].as_array().unwrap().len(), 1);
    let cleared = ok(checked(&client, &tools, "session_clear_all", json!({})).await);
    assert_eq!(cleared["deleted"], 1);
    assert_eq!(cleared["cli"], Value::Null);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn session_tools_reject_bad_input_with_named_fields_and_keep_serving() {
    let home = TestHome::new();
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let codex = ok(call(&client, "session_create", json!({"cli": "codex"})).await);
    let codex_id = codex["session"]["sessionId"].as_str().unwrap().to_string();
    let missing = "gw-0190f5c2-6a53-7c3e-9e6b-1f2a3b4c5d6e";

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "session_create",
            json!({"cli": "claude", "descripton": "x"}),
            "Unknown parameter \"descripton\" for session_create (did you mean \"description\"?)",
        ),
        (
            "session_create",
            json!({"cli": "gpt"}),
            "Invalid cli: unknown variant `gpt`",
        ),
        ("session_create", json!({}), "missing field `cli`"),
        (
            "session_create",
            json!({"cli": "claude", "setAsActive": "yes"}),
            "Invalid setAsActive: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "session_create",
            json!({"cli": 3}),
            "Invalid cli: invalid type: integer `3`",
        ),
        (
            "session_create",
            json!({"cli": "claude", "description": "a\u{0}b"}),
            "Invalid description: contains a NUL byte",
        ),
        (
            "session_create",
            json!({"cli": "claude", "description": "x".repeat(2001)}),
            "description is too long: 2001 characters (maximum 2000)",
        ),
        (
            "session_get",
            json!({"sessionId": "abc"}),
            "Invalid sessionId: \"abc\" is not a gateway session id",
        ),
        (
            "session_get",
            json!({"sessionId": "--resume"}),
            "Invalid sessionId: values must not start with \"-\"",
        ),
        (
            "session_get",
            json!({"sessionId": missing}),
            "Unknown gateway session \"gw-0190f5c2-6a53-7c3e-9e6b-1f2a3b4c5d6e\" (sessionId)",
        ),
        ("session_get", json!({}), "missing field `sessionId`"),
        (
            "session_delete",
            json!({"sessionId": missing}),
            "Unknown gateway session",
        ),
        (
            "session_set_active",
            json!({"cli": "claude", "sessionId": codex_id}),
            "belongs to codex, not claude (sessionId)",
        ),
        (
            "session_set_active",
            json!({"cli": "claude", "sessionId": missing}),
            "Unknown gateway session",
        ),
        (
            "session_list",
            json!({"cli": "claude", "limit": 5}),
            "Unknown parameter \"limit\" for session_list",
        ),
        (
            "session_clear_all",
            json!({"cli": ""}),
            "Invalid cli: unknown variant ``",
        ),
        (
            "llm_process_health",
            json!({"verbose": true}),
            "Unknown parameter \"verbose\" for llm_process_health",
        ),
        (
            "list_models",
            json!({"cli": "cursor"}),
            "Invalid cli: unknown variant `cursor`",
        ),
    ];
    for (tool_name, arguments, expected) in cases {
        let result = checked(&client, &tools, tool_name, arguments.clone()).await;
        let text = err(result);
        assert!(
            text.contains(expected),
            "{tool_name} {arguments}: expected {expected:?} in {text:?}"
        );
        assert!(text.contains("\n\nFix: "), "{text}");
    }
    // Nothing was written by the failed calls, and the server still answers.
    let all = ok(call(&client, "session_list", json!({})).await);
    assert_eq!(all["sessions"].as_array().unwrap().len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sessions_persist_across_servers_and_two_servers_share_one_database() {
    let home = TestHome::new();
    let first = home.connect().await;
    let second = home.connect().await;
    let made = ok(call(
        &first,
        "session_create",
        json!({"cli": "gemini", "description": "shared"}),
    )
    .await);
    let id = made["session"]["sessionId"].as_str().unwrap().to_string();
    // The other live server sees it at once, and its activation displaces the first.
    let seen = ok(call(&second, "session_get", json!({"sessionId": id})).await);
    assert_eq!(seen["session"]["description"], "shared");
    let other = ok(call(&second, "session_create", json!({"cli": "gemini"})).await);
    let listed = ok(call(&first, "session_list", json!({"cli": "gemini"})).await);
    let active: Vec<&Value> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["isActive"] == true)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["sessionId"], other["session"]["sessionId"]);
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();

    // A fresh server process reads what the earlier ones wrote.
    let third = home.connect().await;
    let listed = ok(call(&third, "session_list", json!({"cli": "gemini"})).await);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    third.cancel().await.unwrap();
}

#[tokio::test]
async fn list_models_merges_bundled_config_and_environment() {
    let mut home = TestHome::with_config(
        "[models.claude]\ndefault = \"sonnet\"\naliases = { fast = \"haiku\" }\n\n\
         [models.codex]\nextra = [\"gpt-5-codex\"]\n",
    );
    home.set_env("GEMINI_DEFAULT_MODEL", "gemini-2.5-pro");
    home.set_env("GROK_MODEL_ALIASES", "quick=grok-code-fast,big=grok-4");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let all = ok(checked(&client, &tools, "list_models", json!({})).await);
    let clis = all["clis"].as_array().unwrap();
    assert_eq!(clis.len(), 5);
    let by = |key: &str| clis.iter().find(|c| c["cli"] == key).unwrap().clone();

    let claude = by("claude");
    assert_eq!(claude["defaultModel"], "sonnet");
    assert_eq!(claude["defaultSource"], "config");
    let ids: Vec<&str> = claude["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["opus", "sonnet", "haiku"]);
    assert!(
        claude["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["source"] == "bundled")
    );
    assert_eq!(
        claude["aliases"],
        json!([{"name": "fast", "target": "haiku", "source": "config"}])
    );

    let codex = by("codex");
    assert_eq!(
        codex["models"],
        json!([{"id": "gpt-5-codex", "source": "config", "description": "listed in config.toml"}])
    );
    assert_eq!(codex["defaultModel"], Value::Null);
    assert_eq!(by("gemini")["defaultModel"], "gemini-2.5-pro");
    assert_eq!(by("gemini")["defaultSource"], "env");
    let grok_aliases = by("grok")["aliases"].clone();
    assert!(
        grok_aliases
            .as_array()
            .unwrap()
            .contains(&json!({"name": "quick", "target": "grok-code-fast", "source": "env"})),
        "{grok_aliases}"
    );
    assert_eq!(by("mistral")["models"], json!([]));

    let one = ok(checked(&client, &tools, "list_models", json!({"cli": "grok"})).await);
    assert_eq!(one["clis"].as_array().unwrap().len(), 1);
    client.cancel().await.unwrap();
}
