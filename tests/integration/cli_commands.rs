//! The terminal commands `run`, `jobs …` and `logs …` through the built binary, with fake
//! CLIs: the same pipeline and store as the MCP tools, exit codes 0/1/2, prompt from stdin,
//! `--async` + `jobs result|show|list|watch|cancel`, and the flight recorder.

use crate::common;

use std::process::{Output, Stdio};

use common::fake_cli::{install_all, knob};
use common::{TestHome, WAIT};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", stdout(out), stderr(out)))
}

fn home() -> TestHome {
    let home = TestHome::new();
    install_all(&home);
    home
}

#[tokio::test]
async fn run_prints_the_answer_and_records_the_request() {
    let home = home();
    let out = home.run(["run", "claude", "say hi"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer = stdout(&out);
    assert!(!answer.trim().is_empty());
    assert!(
        !stderr(&out).contains("]"),
        "no progress lines off a terminal: {}",
        stderr(&out)
    );

    let out = home.run(["logs", "list", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let rows = json(&out)["requests"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cli"], "claude");
    assert_eq!(rows[0]["prompt"], "say hi");
    assert_eq!(rows[0]["status"], "completed");
    assert_eq!(rows[0]["response"].as_str().unwrap().trim(), answer.trim());

    let id = rows[0]["id"].as_str().unwrap();
    let out = home.run(["logs", "show", id]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["request"]["id"], id);
    let correlation = rows[0]["correlation_id"].as_str().unwrap();
    let out = home.run(["logs", "show", correlation]).await;
    assert_eq!(
        json(&out)["request"]["id"],
        id,
        "a correlation id finds it too"
    );

    let out = home.run(["logs", "list"]).await;
    assert!(stdout(&out).contains("say hi"), "{}", stdout(&out));
}

#[tokio::test]
async fn run_json_gives_the_structured_result_for_every_cli() {
    let home = home();
    for cli in ["claude", "codex", "gemini", "grok", "vibe"] {
        let out = home.run(["run", cli, "--json", "hello"]).await;
        assert_eq!(out.status.code(), Some(0), "{cli}: {}", stderr(&out));
        let v = json(&out);
        assert!(!v["response"].as_str().unwrap().is_empty(), "{cli}");
        assert!(v["jobId"].is_string());
        assert_eq!(v["exitCode"], 0);
        assert_eq!(v["deduped"], false);
    }
}

#[tokio::test]
async fn a_prompt_of_dash_is_read_from_stdin() {
    let home = home();
    let mut command = home.command(["run", "claude", "-"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a prompt from stdin\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(["logs", "list", "--json"]).await;
    assert_eq!(json(&out)["requests"][0]["prompt"], "a prompt from stdin\n");
}

#[tokio::test]
async fn a_failed_run_exits_1_with_the_category_and_fix() {
    let mut home = home();
    home.set_env(knob::CASE, "not-logged-in-stream-json");
    let out = home.run(["run", "claude", "hi"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("llm-cli-gateway: error:"), "{err}");
    assert!(err.contains("Fix:"), "{err}");
    let out = home
        .run(["logs", "list", "--status", "failed", "--json"])
        .await;
    assert_eq!(json(&out)["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let home = home();
    for args in [
        vec!["run", "nosuchcli", "hi"],
        vec!["run", "claude"],
        vec!["jobs", "show", "not-a-uuid"],
        vec!["jobs", "frobnicate"],
        vec!["logs", "prune", "--older-than", "0"],
    ] {
        let out = home.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = home
        .run(["jobs", "show", "0190a5c4-1d2b-7c3e-9f00-123456789abc"])
        .await;
    assert_eq!(out.status.code(), Some(1), "an unknown job is a failure");
    assert!(stderr(&out).contains("jobs list"), "{}", stderr(&out));
}

#[tokio::test]
async fn async_run_then_jobs_watch_result_show_and_list() {
    let mut home = home();
    home.set_env(knob::DELAY_MS, "300");
    let out = home.run(["run", "codex", "--async", "work"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(uuid_like(&id), "{id}");

    let out = home.run(["jobs", "watch", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["job"]["status"], "completed");

    let out = home.run(["jobs", "result", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());

    let out = home.run(["jobs", "result", &id, "--json"]).await;
    let v = json(&out);
    assert_eq!(v["partial"], false);
    assert_eq!(v["job"]["id"], id.as_str());

    let out = home.run(["jobs", "show", &id]).await;
    assert_eq!(json(&out)["job"]["cli"], "codex");

    let out = home.run(["jobs", "list", "--json", "--cli", "codex"]).await;
    assert_eq!(json(&out)["jobs"][0]["id"], id.as_str());
    let out = home.run(["jobs", "list"]).await;
    assert!(stdout(&out).contains(&id));
}

#[tokio::test]
async fn jobs_cancel_stops_a_running_job_and_its_result_exits_1() {
    let mut home = home();
    home.set_env(knob::DELAY_MS, "30000");
    let out = home
        .run(["run", "claude", "--async", "--json", "slow"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = json(&out)["jobId"].as_str().unwrap().to_string();

    let out = home.run(["jobs", "result", &id]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a running job has no result yet"
    );
    assert!(stderr(&out).contains("jobs watch"), "{}", stderr(&out));

    let out = home.run(["jobs", "cancel", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(["jobs", "watch", &id]).await;
    assert_eq!(out.status.code(), Some(1), "a canceled job is a failure");
    assert_eq!(json(&out)["job"]["status"], "canceled");
}

#[tokio::test]
async fn async_needs_a_supervised_durable_store() {
    let home = TestHome::with_config("[jobs]\nrunner = \"in-process\"\n");
    install_all(&home);
    let out = home.run(["run", "claude", "--async", "hi"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Run without --async"),
        "{}",
        stderr(&out)
    );
    // Sync still works in-process.
    let out = home.run(["run", "claude", "hi"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test]
async fn logs_prune_deletes_requests_older_than_the_given_days() {
    let home = home();
    let out = home.run(["run", "claude", "old"]).await;
    assert_eq!(out.status.code(), Some(0));
    let db = rusqlite::Connection::open(home.db_path()).unwrap();
    db.execute(
        "UPDATE requests SET datetime_utc = '2000-01-01T00:00:00.000Z', completed_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    drop(db);
    let out = home.run(["logs", "prune", "--older-than", "7"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("pruned 1 request(s)"),
        "{}",
        stdout(&out)
    );
    let out = home.run(["logs", "list", "--json"]).await;
    assert_eq!(json(&out)["requests"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn jobs_and_logs_explain_that_backend_none_keeps_nothing() {
    let home = TestHome::with_config("[persistence]\nbackend = \"none\"\n");
    let out = home.run(["logs", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("backend `none`"), "{}", stderr(&out));
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}
