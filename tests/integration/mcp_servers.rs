//! `mcpServers` / `strictMcpConfig` for claude through the real binary with the fake CLIs
//! (issue 5 items 5 and 7): the servers come from `[mcp_servers.<name>]` in config.toml,
//! the per-request `--mcp-config` file is 0600 and holds only the enabled servers, unknown
//! names warn (or fail under `strictMcpConfig`, before any job), the result reports
//! `mcpServers: {requested, enabled, missing}`, and the file is removed on every exit path
//! (success, CLI failure, timeout, cancel; in-process and supervised runners).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fake_cli::{self, Recording, knob};
use common::{TestHome, WAIT, call, err, ok};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[mcp_servers.docs]
command = "docs-mcp"
args = ["--stdio"]
env = { DOCS_TOKEN = "t0k" }

[mcp_servers.search]
command = "search-mcp"
"#;

fn start(runner: &str, knobs: &[(&str, &str)]) -> (TestHome, PathBuf) {
    let mut home = TestHome::with_config(&format!("{CONFIG}\n[jobs]\nrunner = \"{runner}\"\n"));
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    for (k, v) in knobs {
        home.set_env(k, v);
    }
    (home, records)
}

fn codes(s: &Value) -> Vec<String> {
    s["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The `--mcp-config` file the run was handed: its path, contents and mode.
fn mcp_config(run: &Recording) -> (PathBuf, Value, u32) {
    let path = PathBuf::from(run.flag_value("--mcp-config").expect("--mcp-config passed"));
    let file = run
        .files
        .get("mcp-config")
        .expect("the fake copied the file");
    (
        path,
        serde_json::from_slice(&file.bytes).unwrap(),
        file.mode,
    )
}

fn assert_removed(path: &Path, home: &TestHome, what: &str) {
    assert!(!path.exists(), "{what}: {} left behind", path.display());
    let tmp = home.gateway_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{what}: run dirs left: {left:?}");
}

#[tokio::test]
async fn servers_from_config_are_written_0600_and_reported() {
    let (home, records) = start("in-process", &[]);
    let client = home.connect().await;

    let s = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "use docs", "mcpServers": ["docs", "nope"]}),
    )
    .await);
    assert_eq!(
        s["mcpServers"],
        json!({"requested": ["docs", "nope"], "enabled": ["docs"], "missing": ["nope"]})
    );
    assert!(codes(&s).contains(&"mcp_server_unknown".to_string()), "{s}");
    let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
    let (path, body, mode) = mcp_config(&runs[0]);
    assert_eq!(mode, 0o600);
    assert_eq!(
        body,
        json!({"mcpServers": {"docs": {"command": "docs-mcp", "args": ["--stdio"], "env": {"DOCS_TOKEN": "t0k"}}}})
    );
    assert!(!runs[0].argv.contains(&"--strict-mcp-config".to_string()));
    assert_removed(&path, &home, "success");

    let s = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "strict", "mcpServers": ["search"], "strictMcpConfig": true}),
    )
    .await);
    assert_eq!(
        s["mcpServers"],
        json!({"requested": ["search"], "enabled": ["search"], "missing": []})
    );
    let runs = fake_cli::wait_for_recordings(&records, 2, WAIT);
    assert!(runs[1].argv.contains(&"--strict-mcp-config".to_string()));
    let (_, body, _) = mcp_config(&runs[1]);
    assert_eq!(body["mcpServers"].as_object().unwrap().len(), 1);

    // An unknown name under strictMcpConfig is invalid_input, before any job runs.
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "x", "mcpServers": ["nope"], "strictMcpConfig": true}),
    )
    .await;
    let structured = result.structured_content.clone().unwrap();
    let text = err(result);
    assert_eq!(structured["errorCategory"], "invalid_input", "{structured}");
    assert!(text.contains("nope"), "{text}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake_cli::recordings(&records).len(), 2);

    // A request that names no server gets no file and no report.
    let s = ok(call(&client, "claude_request", json!({"prompt": "plain"})).await);
    assert!(s.get("mcpServers").is_none(), "{s}");
    let runs = fake_cli::wait_for_recordings(&records, 3, WAIT);
    assert!(runs[2].flag_value("--mcp-config").is_none());
}

#[tokio::test]
async fn the_file_is_removed_when_the_cli_fails_or_times_out() {
    for runner in ["in-process", "supervisor"] {
        let (home, records) = start(runner, &[(knob::EXIT, "3")]);
        let client = home.connect().await;
        let result = call(
            &client,
            "claude_request",
            json!({"prompt": "fail", "mcpServers": ["docs"]}),
        )
        .await;
        err(result);
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let (path, _, _) = mcp_config(&runs[0]);
        assert_removed(&path, &home, &format!("{runner}: CLI failure"));
        drop(client);

        let (home, records) = start(runner, &[(knob::HANG, "1")]);
        let client = home.connect().await;
        let result = call(
            &client,
            "claude_request",
            json!({"prompt": "hang", "mcpServers": ["docs"], "timeoutMs": 1000}),
        )
        .await;
        let s = result.structured_content.clone().unwrap();
        err(result);
        assert_eq!(s["errorCategory"], "timeout", "{s}");
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let (path, _, _) = mcp_config(&runs[0]);
        assert_removed(&path, &home, &format!("{runner}: timeout"));
    }
}

#[tokio::test]
async fn the_file_is_removed_when_the_job_is_canceled() {
    for runner in ["in-process", "supervisor"] {
        let (home, records) = start(runner, &[(knob::HANG, "1")]);
        let client = home.connect().await;
        let s = ok(call(
            &client,
            "claude_request_async",
            json!({"prompt": "hang", "mcpServers": ["docs"]}),
        )
        .await);
        let job_id = s["jobId"].as_str().unwrap().to_string();
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let (path, _, _) = mcp_config(&runs[0]);
        assert!(
            path.exists(),
            "{runner}: the file exists while the CLI runs"
        );
        ok(call(&client, "llm_job_cancel", json!({"jobId": job_id})).await);
        let db = rusqlite::Connection::open(home.db_path()).unwrap();
        let started = Instant::now();
        loop {
            let status: String = db
                .query_row("SELECT status FROM jobs WHERE id = ?1", [&job_id], |r| {
                    r.get(0)
                })
                .unwrap();
            if status == "canceled" {
                break;
            }
            assert!(started.elapsed() < WAIT, "{runner}: still {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_removed(&path, &home, &format!("{runner}: cancel"));
    }
}
