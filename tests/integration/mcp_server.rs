//! The stdio server as a client sees it: handshake, tool list, health, lifecycle and exit
//! codes, config errors at startup.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::{TestHome, WAIT, assert_matches_output_schema, call, ok};
use serde_json::json;

const FOUNDATION_TOOLS: [&str; 11] = [
    "session_create",
    "session_list",
    "session_get",
    "session_set_active",
    "session_delete",
    "session_clear_all",
    "list_models",
    "llm_process_health",
    "cli_versions",
    "cli_upgrade",
    "approval_list",
];

/// Registered with the default `sqlite` backend (job_tools.rs covers them).
const JOB_TOOLS: [&str; 6] = [
    "llm_job_status",
    "llm_job_watch",
    "llm_job_result",
    "llm_job_cancel",
    "llm_job_list",
    "llm_request_result",
];

#[tokio::test]
async fn initialize_reports_server_info_capabilities_and_instructions() {
    let home = TestHome::new();
    let client = home.connect().await;
    let info = client.peer_info().expect("server info after initialize");
    let implementation = info.server_info.clone().expect("server info");
    assert_eq!(implementation.name, "llm-cli-gateway");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some(), "tools capability");
    assert!(
        info.capabilities.resources.is_some(),
        "resources capability"
    );
    let instructions = info.instructions.clone().expect("instructions");
    assert!(instructions.contains("session_create"), "{instructions}");
    assert!(
        instructions.contains("llm_process_health"),
        "{instructions}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_list_has_object_schemas_annotations_and_output_schemas() {
    let home = TestHome::new();
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    let request_tools: Vec<String> = ["claude", "codex", "gemini", "grok", "mistral"]
        .iter()
        .flat_map(|p| [format!("{p}_request"), format!("{p}_request_async")])
        .collect();
    let mut expected = [FOUNDATION_TOOLS.as_slice(), JOB_TOOLS.as_slice()].concat();
    expected.extend(request_tools.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(names, expected);
    for tool in &tools {
        assert_eq!(
            tool.input_schema.get("type").and_then(|t| t.as_str()),
            Some("object"),
            "{} input schema type",
            tool.name
        );
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 40),
            "{} has a description an LLM can act on",
            tool.name
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert!(
            annotations.read_only_hint.is_some(),
            "{} readOnlyHint",
            tool.name
        );
        assert!(
            annotations.destructive_hint.is_some(),
            "{} destructiveHint",
            tool.name
        );
        assert!(
            annotations.idempotent_hint.is_some(),
            "{} idempotentHint",
            tool.name
        );
        // The request tools drive an external CLI (and its network), and cli_upgrade a
        // package manager; nothing else does.
        let is_request = request_tools.iter().any(|r| r == tool.name.as_ref());
        assert_eq!(
            annotations.open_world_hint,
            Some(is_request || tool.name == "cli_upgrade"),
            "{} openWorldHint",
            tool.name
        );
        if tool.name.ends_with("_request") {
            // An answer or a deferral: no output schema (mcp-surface.md).
            assert!(tool.output_schema.is_none(), "{}", tool.name);
            continue;
        }
        let output = tool.output_schema.as_ref().expect("output schema");
        assert_eq!(output.get("type").and_then(|t| t.as_str()), Some("object"));
    }
    let read_only = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.annotations.as_ref()?.read_only_hint)
    };
    assert_eq!(read_only("session_list"), Some(true));
    assert_eq!(read_only("session_delete"), Some(false));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error_and_the_server_keeps_serving() {
    let home = TestHome::new();
    let client = home.connect().await;
    let request = rmcp::model::CallToolRequestParams::new("no_such_tool");
    let error = client.call_tool(request).await.unwrap_err();
    assert!(
        error.to_string().contains("Unknown tool: no_such_tool"),
        "{error}"
    );
    let health = ok(call(&client, "llm_process_health", json!({})).await);
    assert_eq!(health["name"], "llm-cli-gateway");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn process_health_reports_persistence_limits_and_sources() {
    let mut home = TestHome::with_config("[limits]\nmax_running_jobs = 7\n");
    home.set_env("SYNC_DEADLINE_MS", "1234");
    home.set_env("LLM_GATEWAY_DEDUP_WINDOW_MS", "5000");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let health_tool = tools
        .iter()
        .find(|t| t.name == "llm_process_health")
        .unwrap();
    let result = call(&client, "llm_process_health", json!({})).await;
    assert_matches_output_schema(health_tool, &result);
    let health = ok(result);
    assert_eq!(
        health["pid"].as_u64().unwrap() as u32,
        client_pid_hint(&health)
    );
    assert!(health["rssBytes"].as_u64().unwrap() > 1024 * 1024);
    assert_eq!(health["limits"]["maxRunningJobs"], 7);
    assert_eq!(health["jobs"]["running"], 0);
    assert_eq!(health["jobs"]["byProvider"]["mistral"]["queued"], 0);
    let persistence = &health["persistence"];
    assert_eq!(persistence["backend"], "sqlite");
    assert_eq!(persistence["path"], home.db_path().display().to_string());
    assert_eq!(persistence["asyncJobsEnabled"], true);
    assert_eq!(persistence["dedupWindowMs"], 5000);
    assert_eq!(persistence["journalMode"], "wal");
    assert_eq!(
        persistence["schemaVersion"],
        llm_cli_gateway::store::SCHEMA_VERSION
    );
    assert_eq!(
        persistence["sources"]["configFile"],
        home.gateway_dir().join("config.toml").display().to_string()
    );
    let overrides = persistence["sources"]["envOverrides"].as_array().unwrap();
    assert!(
        overrides.contains(
            &json!({"var": "SYNC_DEADLINE_MS", "key": "jobs.sync_deadline_ms", "deprecated": false})
        ),
        "{overrides:?}"
    );
    assert!(
        overrides
            .iter()
            .any(|o| o["var"] == "LLM_GATEWAY_DEDUP_WINDOW_MS" && o["deprecated"] == true),
        "{overrides:?}"
    );
    // The deprecated variable is logged once.
    client.cancel().await.unwrap();
    assert!(
        home.server_log().contains("LLM_GATEWAY_DEDUP_WINDOW_MS"),
        "{}",
        home.server_log()
    );
}

/// The pid reported must be a live process; it is the server's, not ours.
fn client_pid_hint(health: &serde_json::Value) -> u32 {
    let pid = health["pid"].as_u64().unwrap() as u32;
    assert_ne!(pid, std::process::id());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    pid
}

#[tokio::test]
async fn backend_none_registers_no_async_or_job_tools_and_says_so() {
    let home = TestHome::with_config("[persistence]\nbackend = \"none\"\n");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(
        tools
            .iter()
            .all(|t| !t.name.ends_with("_async") && !t.name.starts_with("llm_job_")),
        "{:?}",
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>()
    );
    let health = ok(call(&client, "llm_process_health", json!({})).await);
    assert_eq!(health["persistence"]["backend"], "none");
    assert_eq!(health["persistence"]["asyncJobsEnabled"], false);
    assert_eq!(health["persistence"]["syncDeferralEnabled"], false);
    assert_eq!(health["persistence"]["flightRecorderEnabled"], false);
    assert_eq!(health["persistence"]["durable"], false);
    let instructions = client.peer_info().unwrap().instructions.clone().unwrap();
    assert!(
        instructions.contains("backend = \"none\""),
        "{instructions}"
    );
    // Sessions still work for the server's lifetime, and nothing is written to the data dir.
    ok(call(&client, "session_create", json!({"cli": "claude"})).await);
    client.cancel().await.unwrap();
    assert!(!home.db_path().exists());
}

#[tokio::test]
async fn memory_backend_needs_acknowledgement_and_leaves_nothing_behind() {
    let home = TestHome::with_config("[persistence]\nbackend = \"memory\"\n");
    let output = home.run(["serve"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("acknowledgeEphemeral"), "{stderr}");

    let home =
        TestHome::with_config("[persistence]\nbackend = \"memory\"\nacknowledgeEphemeral = true\n");
    let client = home.connect().await;
    let health = ok(call(&client, "llm_process_health", json!({})).await);
    assert_eq!(health["persistence"]["asyncJobsEnabled"], true);
    assert_eq!(health["persistence"]["durable"], false);
    let private_db = std::path::PathBuf::from(health["persistence"]["path"].as_str().unwrap());
    assert!(private_db.exists());
    // cancel() closes stdin and waits for the server to exit.
    client.cancel().await.unwrap();
    assert!(
        !private_db.exists(),
        "the private database is removed at exit"
    );
    assert!(!home.db_path().exists());
}

#[tokio::test]
async fn config_errors_stop_startup_with_file_line_key_and_problem() {
    let home = TestHome::with_config("[limits]\nmax_running_jobs = 0\n");
    let output = home.run(["serve"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "stdout is the MCP channel");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:2: limits.max_running_jobs:",
        home.gateway_dir().join("config.toml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let home = TestHome::with_config("[jobs]\nsync_deadline = 5\n");
    let output = home.run(["serve"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":2: jobs.sync_deadline: unknown key"),
        "{stderr}"
    );

    let home = TestHome::with_config("[persistence]\nbackend = \"postgres\"\n");
    let output = home.run(["serve"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not supported"), "{stderr}");
}

#[tokio::test]
async fn serve_exits_zero_when_stdin_is_closed_before_initialize() {
    let home = TestHome::new();
    let started = std::time::Instant::now();
    let output = home.run(Vec::<&str>::new()).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn serve_exits_zero_on_sigterm_and_sigint() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let home = TestHome::new();
        let mut command = home.command(["serve"]);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        // A raw initialize: its answer proves the server is up and serving.
        let initialize = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "signal-test", "version": "0"}}
        });
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{initialize}\n").as_bytes())
            .await
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(WAIT, stdout.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(line.contains("\"serverInfo\""), "{line}");
        let pid = child.id().unwrap() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0), "signal {signal}");
        drop(stdin);
    }
}

#[tokio::test]
async fn the_database_is_private_and_browsable() {
    let home = TestHome::new();
    let client = home.connect().await;
    ok(call(
        &client,
        "session_create",
        json!({"cli": "codex", "description": "browse me"}),
    )
    .await);
    client.cancel().await.unwrap();

    let mode = std::fs::metadata(home.db_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(home.gateway_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    // What `datasette logs.db` shows: the tables, the FTS table and the views.
    let db = rusqlite::Connection::open(home.db_path()).unwrap();
    let mut statement = db
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        .unwrap();
    let names: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for expected in [
        "jobs",
        "job_output",
        "job_events",
        "sessions",
        "requests",
        "approvals",
        "requests_fts",
        "recent_requests",
        "usage_by_day",
        "job_overview",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing {expected} in {names:?}"
        );
    }
    let description: String = db
        .query_row("SELECT description FROM sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(description, "browse me");
}

#[tokio::test]
async fn config_show_prints_values_with_their_sources() {
    let mut home = TestHome::with_config("[jobs]\nkill_grace_ms = 2000\n");
    home.set_env("SYNC_DEADLINE_MS", "777");
    let output = home.run(["config", "--show"]).await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{stdout}"))
            .to_string()
    };
    assert!(
        line("kill_grace_ms").contains("2000") && line("kill_grace_ms").contains("file:2"),
        "{stdout}"
    );
    assert!(
        line("sync_deadline_ms").contains("777")
            && line("sync_deadline_ms").contains("env:SYNC_DEADLINE_MS"),
        "{stdout}"
    );
    assert!(line("max_queued_jobs").contains("default"), "{stdout}");

    let output = home.run(["config", "--example"]).await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[persistence]") && stdout.contains("max_prompt_chars"));
}

#[tokio::test]
async fn version_and_help() {
    let home = TestHome::new();
    let output = home.run(["--version"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
    let output = home.run(["no-such-command"]).await;
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
}
