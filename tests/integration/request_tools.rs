//! The request tools through the real binary, with the fake CLIs: sync success per provider,
//! errors that cost nothing, dedup, deferral, async start, cancel, limits.

use crate::common;

use std::time::Duration;

use common::fake_cli::{self, knob};
use common::{TestHome, WAIT, call, err, ok, text_of};
use serde_json::{Value, json};

const PROVIDERS: [(&str, &str); 5] = [
    ("claude", "claude"),
    ("codex", "codex"),
    ("gemini", "gemini"),
    ("grok", "grok"),
    ("mistral", "vibe"),
];

fn home_with_fakes(config: &str) -> (TestHome, std::path::PathBuf) {
    let mut home = TestHome::with_config(config);
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    (home, records)
}

fn open_db(home: &TestHome) -> rusqlite::Connection {
    rusqlite::Connection::open(home.db_path()).expect("open the test database")
}

fn count(home: &TestHome, sql: &str) -> i64 {
    open_db(home)
        .query_row(sql, [], |r| r.get(0))
        .expect("count query")
}

#[tokio::test]
async fn sync_success_for_every_provider_in_process_and_supervised() {
    for runner in ["in-process", "supervisor"] {
        let (home, records) = home_with_fakes(&format!("[jobs]\nrunner = \"{runner}\"\n"));
        let client = home.connect().await;
        for (n, (key, binary)) in PROVIDERS.iter().enumerate() {
            let result = call(
                &client,
                &format!("{key}_request"),
                json!({"prompt": format!("say hi {key}")}),
            )
            .await;
            let text = text_of(&result);
            let s = ok(result);
            assert_eq!(s["cli"], *key, "{runner}: {s}");
            assert_eq!(s["deduped"], false);
            assert!(!text.is_empty(), "{runner} {key}: empty answer");
            assert_eq!(s["response"], text);
            assert!(s["jobId"].is_string());
            assert!(s["correlationId"].is_string());
            assert_eq!(s["exitCode"], 0);
            assert_eq!(s["truncated"], false);
            for field in [
                "inputTokens",
                "outputTokens",
                "cacheReadTokens",
                "cacheCreationTokens",
                "reasoningTokens",
                "costUsd",
                "sessionId",
                "gatewaySessionId",
                "model",
                "stopReason",
                "durationMs",
            ] {
                assert!(s.get(field).is_some(), "{key}: {field} missing in {s}");
            }
            assert!(
                s["outputTokens"].is_number() || s["inputTokens"].is_number(),
                "{runner} {key}: no usage in {s}"
            );
            let runs = fake_cli::wait_for_recordings(&records, n + 1, WAIT);
            let run = &runs[n];
            assert!(
                run.argv
                    .iter()
                    .any(|a| a.contains(&format!("say hi {key}")))
                    || String::from_utf8_lossy(&run.stdin).contains(&format!("say hi {key}")),
                "{binary}: prompt not delivered: {:?}",
                run.argv
            );
            assert!(
                run.cwd.ends_with(&format!("work/{key}")),
                "{binary} ran in {}",
                run.cwd
            );
        }
        drop(client);
        assert_eq!(
            count(
                &home,
                "SELECT count(*) FROM requests WHERE status != 'completed'"
            ),
            0
        );
        assert_eq!(
            count(
                &home,
                "SELECT count(*) FROM jobs WHERE runner = '{runner}'"
                    .replace("{runner}", runner)
                    .as_str()
            ),
            5
        );
    }
}

#[tokio::test]
async fn bad_inputs_cost_no_process_and_no_job() {
    let (home, records) = home_with_fakes("");
    let client = home.connect().await;
    let missing = home.root().join("nope");
    let cases = [
        ("claude_request", json!({"prompt": ""}), "prompt"),
        (
            "claude_request",
            json!({"prompt": "x", "bogus": 1}),
            "bogus",
        ),
        (
            "claude_request",
            json!({"prompt": "x", "workingDir": missing}),
            "workingDir",
        ),
        (
            "claude_request",
            json!({"prompt": "x", "addDir": [missing]}),
            "addDir",
        ),
        (
            "claude_request",
            json!({"prompt": "x", "sessionId": "gw-00000000-0000-7000-8000-000000000000"}),
            "Unknown gateway session",
        ),
        (
            "claude_request",
            json!({"prompt": "x", "sessionId": "-rf"}),
            "sessionId",
        ),
        (
            "codex_request",
            json!({"prompt": "x", "images": [missing]}),
            "images",
        ),
        (
            "claude_request",
            json!({"prompt": "x", "timeoutMs": 5}),
            "timeoutMs",
        ),
        (
            "claude_request",
            json!({"prompt": "x".repeat(100_001)}),
            "too long",
        ),
    ];
    for (tool, args, needle) in cases {
        let result = call(&client, tool, args).await;
        let structured = result.structured_content.clone();
        let text = err(result);
        assert!(text.contains(needle), "{tool}: {text}");
        assert!(text.contains("\n\nFix: "), "{text}");
        let s = structured.expect("request tool errors carry structuredContent");
        assert!(s["errorCategory"].is_string(), "{s}");
        assert!(s["retryable"] == json!(false), "{s}");
    }
    // A session of another CLI.
    let created = ok(call(
        &client,
        "session_create",
        json!({"cli": "codex", "setAsActive": false}),
    )
    .await);
    let id = created["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let text = err(call(
        &client,
        "claude_request",
        json!({"prompt": "x", "sessionId": id}),
    )
    .await);
    assert!(text.contains("codex"), "{text}");
    assert!(fake_cli::recordings(&records).is_empty());
    assert_eq!(count(&home, "SELECT count(*) FROM jobs"), 0);
    // The server still serves.
    ok(call(&client, "claude_request", json!({"prompt": "still here"})).await);
}

#[tokio::test]
async fn a_cli_missing_from_path_is_not_installed_with_no_job() {
    let home = TestHome::new();
    let client = home.connect().await;
    let result = call(&client, "codex_request", json!({"prompt": "hi"})).await;
    let s = result.structured_content.clone().unwrap();
    let text = err(result);
    assert_eq!(s["errorCategory"], "not_installed");
    assert_eq!(s["cli"], "codex");
    assert!(text.contains("npm install -g @openai/codex"), "{text}");
    assert!(
        text.contains(&home.bin_dir().display().to_string()),
        "{text}"
    );
    assert_eq!(count(&home, "SELECT count(*) FROM jobs"), 0);
}

#[tokio::test]
async fn dedup_runs_one_cli_for_two_identical_calls_and_two_with_force_refresh() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::DELAY_MS, "300");
    let client = home.connect().await;
    let args = json!({"prompt": "same words"});
    let (a, b) = tokio::join!(
        call(&client, "claude_request", args.clone()),
        call(&client, "claude_request", args.clone())
    );
    let (a, b) = (ok(a), ok(b));
    assert_eq!(a["jobId"], b["jobId"]);
    assert_eq!(a["response"], b["response"]);
    assert!(a["deduped"] == json!(true) || b["deduped"] == json!(true));
    // A completed stateless job is reused within the window.
    let c = ok(call(&client, "claude_request", args.clone()).await);
    assert_eq!(c["jobId"], a["jobId"]);
    assert_eq!(c["deduped"], true);
    assert_eq!(fake_cli::recordings(&records).len(), 1);
    let d = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "same words", "forceRefresh": true}),
    )
    .await);
    assert_ne!(d["jobId"], a["jobId"]);
    assert_eq!(fake_cli::recordings(&records).len(), 2);
    assert_eq!(count(&home, "SELECT count(*) FROM requests"), 4);
    assert_eq!(
        count(
            &home,
            "SELECT count(*) FROM requests WHERE status != 'completed'"
        ),
        0
    );
}

#[tokio::test]
async fn a_slow_run_is_deferred_and_finishes_in_the_store() {
    let (mut home, _records) = home_with_fakes("");
    home.set_env("SYNC_DEADLINE_MS", "100");
    home.set_env(knob::DELAY_MS, "600");
    let client = home.connect().await;
    let result = call(&client, "gemini_request", json!({"prompt": "slow"})).await;
    let text = text_of(&result);
    let s = ok(result);
    assert_eq!(s["status"], "deferred");
    assert_eq!(s["cli"], "gemini");
    assert_eq!(s["pollWith"], "llm_job_status");
    assert_eq!(s["collectWith"], "llm_job_result");
    assert_eq!(s["cancelWith"], "llm_job_cancel");
    assert!(s["message"].as_str().unwrap().contains("llm_job_result"));
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), s);
    let job = s["jobId"].as_str().unwrap().to_string();
    let status = |home: &TestHome| -> String {
        open_db(home)
            .query_row("SELECT status FROM jobs WHERE id = ?1", [&job], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while status(&home) != "completed" {
        assert!(std::time::Instant::now() < deadline, "job never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(
            &home,
            "SELECT count(*) FROM requests WHERE status != 'completed'"
        ),
        0
    );
}

#[tokio::test]
async fn async_start_returns_a_snapshot_matching_its_schema() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::DELAY_MS, "200");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "grok_request_async")
        .unwrap()
        .clone();
    assert!(
        tools
            .iter()
            .find(|t| t.name == "grok_request")
            .unwrap()
            .output_schema
            .is_none()
    );
    let result = call(&client, "grok_request_async", json!({"prompt": "bg"})).await;
    common::assert_matches_output_schema(&tool, &result);
    let s = ok(result);
    assert_eq!(s["deduped"], false);
    assert_eq!(s["job"]["id"], s["jobId"]);
    assert!(matches!(
        s["job"]["status"].as_str(),
        Some("queued" | "running")
    ));
    fake_cli::wait_for_recordings(&records, 1, WAIT);
}

#[tokio::test]
async fn idle_timeout_and_output_cap_end_the_run_with_their_categories() {
    let (mut home, _records) = home_with_fakes("[limits]\nmax_job_output_bytes = 100000\n");
    home.set_env(knob::HANG, "1");
    let client = home.connect().await;
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "hang", "idleTimeoutMs": 1000}),
    )
    .await;
    let s = result.structured_content.clone().unwrap();
    err(result);
    assert_eq!(s["errorCategory"], "idle_timeout", "{s}");
    assert_eq!(s["exitCode"], 125);
    assert_eq!(s["retryable"], true);
    drop(client);

    let (mut home, _records) = home_with_fakes("[limits]\nmax_job_output_bytes = 100000\n");
    home.set_env(knob::BIG_OUTPUT_BYTES, "5000000");
    let client = home.connect().await;
    let result = call(&client, "claude_request", json!({"prompt": "big"})).await;
    let s = result.structured_content.clone().unwrap();
    err(result);
    assert_eq!(s["errorCategory"], "output_overflow", "{s}");
    assert_eq!(s["exitCode"], 126);
    assert_eq!(
        count(&home, "SELECT stdout_bytes + stderr_bytes FROM jobs"),
        100_000
    );
}

#[tokio::test]
async fn backend_none_never_defers_and_has_no_async_tool() {
    let (mut home, _records) = home_with_fakes("[persistence]\nbackend = \"none\"\n");
    home.set_env("SYNC_DEADLINE_MS", "50");
    home.set_env(knob::DELAY_MS, "300");
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "codex_request"));
    assert!(!tools.iter().any(|t| t.name == "codex_request_async"));
    let s = ok(call(&client, "codex_request", json!({"prompt": "no store"})).await);
    assert!(s.get("status").is_none(), "deferred without a store: {s}");
    assert!(!s["response"].as_str().unwrap().is_empty());
}

/// A claude answer over 1 MiB with escapes (newlines, quotes, non-ASCII, an emoji as a
/// surrogate pair) in its one result line: the sync result is its first `maxResponseChars`
/// with `truncated: true`, `llm_job_result` pages all of it back intact, and the job row
/// holds it as a BLOB of UTF-8 bytes that `CAST(… AS TEXT)` reads.
#[tokio::test]
async fn a_big_answer_is_truncated_in_the_result_and_pages_back_intact() {
    let (mut home, _records) = home_with_fakes("");
    let fixtures = home.root().join("big-fixtures");
    for cli in fake_cli::CLIS {
        std::fs::create_dir_all(fixtures.join(cli)).unwrap();
        std::fs::copy(
            fake_cli::fixtures_dir().join(cli).join("version.stdout"),
            fixtures.join(cli).join("version.stdout"),
        )
        .unwrap();
    }
    let sample = std::fs::read_to_string(
        fake_cli::fixtures_dir().join("claude/stream-json-partial-ok.stdout"),
    )
    .unwrap();
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    let answer: String = "line \"é\" 😀\tend\n".repeat(100_000);
    let mut result: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    result["result"] = Value::String(answer.clone());
    // The emoji written as `\ud83d\ude00`, as some CLIs do.
    let result_line = result.to_string().replace('😀', "\\ud83d\\ude00");
    assert!(result_line.len() > 2 * 1024 * 1024);
    std::fs::write(
        fixtures.join("claude/big.stdout"),
        format!("{}\n{result_line}\n", lines[0]),
    )
    .unwrap();
    home.set_env(knob::FIXTURES, fixtures.to_str().unwrap());
    home.set_env(knob::CASE, "big");
    let client = home.connect().await;

    let s = ok(call(&client, "claude_request", json!({"prompt": "big"})).await);
    assert_eq!(s["truncated"], true, "{}", s["truncated"]);
    let first = s["response"].as_str().unwrap();
    assert!(answer.starts_with(first) && !first.is_empty());
    let job = s["jobId"].as_str().unwrap().to_string();
    let mut paged = String::new();
    let mut offset = 0;
    loop {
        let page = ok(call(
            &client,
            "llm_job_result",
            json!({"jobId": job, "maxChars": 1_000_000, "offset": offset}),
        )
        .await);
        paged.push_str(page["response"].as_str().unwrap());
        match page["nextOffset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert!(paged == answer, "paged back intact ({} bytes)", paged.len());
    assert_eq!(
        count(&home, "SELECT typeof(response) = 'blob' FROM jobs"),
        1
    );
    let stored: String = open_db(&home)
        .query_row("SELECT CAST(response AS TEXT) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert!(stored == answer);
}
