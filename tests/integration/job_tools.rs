//! The five job tools through the real binary: registration, status, list, result paging,
//! watch (with progress notifications), cancel, orphan detection, bad ids — every result
//! checked against the tool's advertised output schema.
//!
//! The request tools that start jobs live elsewhere, so jobs are made here directly in the
//! test home's database through the store's public API while the server runs (WAL makes the
//! sharing safe). Only this file writes SQL itself, and only what the API cannot: a heartbeat
//! aged past the orphan threshold.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, TestHome, WAIT, assert_matches_output_schema, call, text_of};
use llm_cli_gateway::jobs::control::process_start_time;
use llm_cli_gateway::providers::Provider;
use llm_cli_gateway::store::{
    Admission, Claim, ClaimLimits, DedupPolicy, JobCompletion, JobStatus, NewJob, NewRequest,
    OpenRole, Runner, Store, StoreOptions, Stream, SupervisorId, Usage,
};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest,
    ProgressNotificationParam, ProgressToken, ServerResult, Tool,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};

const JOB_TOOLS: [&str; 5] = [
    "llm_job_status",
    "llm_job_watch",
    "llm_job_result",
    "llm_job_cancel",
    "llm_job_list",
];

/// A heartbeat far older than the 10 s orphan threshold.
const LONG_AGO: &str = "2020-01-01T00:00:00.000Z";

/// A running server, its tool list, and the test's own handle on the same database.
struct Fixture {
    home: TestHome,
    client: Client,
    tools: Vec<Tool>,
    store: Store,
}

impl Fixture {
    async fn start() -> Fixture {
        let home = TestHome::new();
        let client = home.connect().await;
        let tools = client.list_all_tools().await.expect("tools/list");
        let store = open_store(&home);
        Fixture {
            home,
            client,
            tools,
            store,
        }
    }

    /// Calls a tool and checks its result against the advertised output schema.
    async fn call(&self, name: &str, arguments: Value) -> CallToolResult {
        let result = call(&self.client, name, arguments).await;
        assert_matches_output_schema(tool(&self.tools, name), &result);
        result
    }

    async fn ok(&self, name: &str, arguments: Value) -> Value {
        common::ok(self.call(name, arguments).await)
    }

    async fn err(&self, name: &str, arguments: Value) -> String {
        common::err(self.call(name, arguments).await)
    }

    async fn status(&self, id: &str) -> Value {
        self.ok("llm_job_status", json!({"jobId": id})).await["job"].clone()
    }
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

/// The test's own connection to the server's database (the server has migrated it).
fn open_store(home: &TestHome) -> Store {
    Store::open(StoreOptions::new(home.db_path(), OpenRole::Server)).expect("open the test db")
}

/// This test process as a runner: alive, with its true start time.
fn me() -> SupervisorId {
    let pid = i32::try_from(std::process::id()).unwrap();
    SupervisorId {
        pid,
        start_time: process_start_time(pid).expect("own start time"),
    }
}

/// Admits a new queued job (never deduplicated).
async fn queued(store: &Store, cli: Provider) -> String {
    let key = uuid::Uuid::now_v7().to_string();
    let job = NewJob {
        correlation_id: format!("corr-{key}"),
        request_key: key,
        cli,
        model: None,
        runner: Runner::Supervisor,
        program: cli.default_binary().to_string(),
        argv: vec!["-p".into(), "<prompt sha256:abc>".into()],
        env: BTreeMap::new(),
        cwd: None,
        session_id: None,
        idle_timeout_ms: None,
        timeout_ms: None,
    };
    let request = NewRequest::new(job.correlation_id.clone(), cli, "do the thing");
    let dedup = DedupPolicy {
        window_ms: 0,
        session_bound: false,
        force_refresh: true,
    };
    match store.admit_job(job, request, dedup, 1_000).await.unwrap() {
        Admission::Admitted { job, .. } => job.id,
        other => panic!("not admitted: {other:?}"),
    }
}

/// A job claimed by `runner`: `running`, with a fresh heartbeat.
async fn running(store: &Store, cli: Provider, runner: SupervisorId) -> String {
    let id = queued(store, cli).await;
    let limits = ClaimLimits {
        max_running: 1_000,
        max_running_per_provider: 1_000,
        queue_timeout_ms: 0,
    };
    let claim = store.claim_job(id.clone(), limits, runner).await.unwrap();
    assert!(matches!(claim, Claim::Started(_)), "{claim:?}");
    id
}

fn completion(status: JobStatus, response: Option<&str>) -> JobCompletion {
    let mut c = JobCompletion::ended(status);
    c.response = response.map(str::to_string);
    c
}

/// A completed job with this answer, usage and a provider session id.
async fn completed(store: &Store, answer: &str) -> String {
    let id = running(store, Provider::Claude, me()).await;
    finish_completed(store, &id, answer).await;
    id
}

/// The terminal write of a successful run.
async fn finish_completed(store: &Store, id: &str, answer: &str) {
    let mut c = completion(JobStatus::Completed, Some(answer));
    c.exit_code = Some(0);
    c.end_reason = Some("exited".into());
    c.provider_session_id = Some("prov-session-1".into());
    c.stop_reason = Some("end_turn".into());
    c.usage = Usage {
        input_tokens: Some(120),
        output_tokens: Some(45),
        cache_read_tokens: Some(7),
        cache_creation_tokens: None,
        reasoning_tokens: None,
        cost_usd: Some(0.0125),
    };
    assert!(store.finish_job(id.to_string(), c).await.unwrap());
}

/// Appends `data` to a stream in chunks of `chunk` bytes (cut anywhere, even mid-character,
/// as a pipe delivers them).
async fn append_chunked(store: &Store, id: &str, stream: Stream, data: &[u8], chunk: usize) {
    for piece in data.chunks(chunk) {
        store
            .append_output(id.to_string(), stream, piece.to_vec())
            .await
            .unwrap();
    }
}

/// Ages a job's heartbeat past the orphan threshold (the store API never writes the past).
fn age_heartbeat(home: &TestHome, id: &str) {
    let conn = rusqlite::Connection::open(home.db_path()).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let changed = conn
        .execute(
            "UPDATE jobs SET heartbeat_at = ?2 WHERE id = ?1",
            rusqlite::params![id, LONG_AGO],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// A `sleep` child standing in for a supervisor or a CLI group leader. Killed and reaped on
/// drop, so no test leaves one behind.
struct Sleeper(Child);

impl Sleeper {
    fn spawn(own_group: bool) -> Sleeper {
        let mut command = Command::new("sleep");
        command.arg("60").stdin(Stdio::null());
        if own_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        Sleeper(command.spawn().expect("spawn sleep"))
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap()
    }

    fn identity(&self) -> SupervisorId {
        SupervisorId {
            pid: self.pid(),
            start_time: process_start_time(self.pid()).expect("sleeper start time"),
        }
    }

    /// A process that has exited and been reaped: its pid is dead.
    fn dead() -> SupervisorId {
        let mut sleeper = Sleeper::spawn(false);
        let identity = sleeper.identity();
        sleeper.0.kill().unwrap();
        sleeper.0.wait().unwrap();
        identity
    }

    /// The signal that ended it, waiting at most [`WAIT`]; `None` while it still runs.
    fn ended_by(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return std::os::unix::process::ExitStatusExt::signal(&status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn still_running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_job_tools_exist_only_with_persistence() {
    let f = Fixture::start().await;
    for name in JOB_TOOLS {
        let listed = tool(&f.tools, name);
        let annotations = listed.annotations.as_ref().expect("annotations");
        let read_only = name != "llm_job_cancel";
        assert_eq!(annotations.read_only_hint, Some(read_only), "{name}");
        assert_eq!(annotations.destructive_hint, Some(!read_only), "{name}");
        assert!(annotations.idempotent_hint.is_some(), "{name}");
        assert_eq!(annotations.open_world_hint, Some(false), "{name}");
        assert!(listed.output_schema.is_some(), "{name}");
    }
    let instructions = f.client.peer_info().unwrap().instructions.clone().unwrap();
    assert!(instructions.contains("llm_job_cancel"), "{instructions}");
    f.client.cancel().await.unwrap();

    let none = TestHome::with_config("[persistence]\nbackend = \"none\"\n");
    let client = none.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    for name in JOB_TOOLS {
        assert!(tools.iter().all(|t| t.name != name), "{name} registered");
    }
    let error = client
        .call_tool(CallToolRequestParams::new("llm_job_status"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Unknown tool: llm_job_status"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn status_shows_queued_running_completed_and_failed_jobs() {
    let f = Fixture::start().await;
    let store = &f.store;

    let running_id = running(store, Provider::Claude, me()).await;
    store
        .append_output(
            running_id.clone(),
            Stream::Stdout,
            b"{\"type\":\"init\"}\n".to_vec(),
        )
        .await
        .unwrap();
    store
        .append_output(running_id.clone(), Stream::Stderr, b"warming up".to_vec())
        .await
        .unwrap();
    store
        .record_activity(running_id.clone(), chrono::Utc::now())
        .await
        .unwrap();
    store
        .set_job_provider_session(running_id.clone(), "prov-abc".into())
        .await
        .unwrap();
    // More events than a snapshot shows: it keeps the newest 20, oldest first.
    for n in 1..=25 {
        store
            .add_event(
                running_id.clone(),
                "tool".into(),
                format!("Read file{n}.rs"),
            )
            .await
            .unwrap();
    }
    let job = f.status(&running_id).await;
    assert_eq!(job["status"], "running");
    assert_eq!(job["sessionId"], "prov-abc");
    assert!(job["startedAt"].is_string() && job["lastActivityAt"].is_string());
    assert_eq!(job["durationMs"], Value::Null);
    assert_eq!(job["stdoutBytes"], 16);
    assert_eq!(job["stderrBytes"], 10);
    let progress = job["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 20);
    assert_eq!(progress[0]["seq"], 6);
    assert_eq!(progress[19]["seq"], 25);
    assert_eq!(progress[19]["kind"], "tool");
    assert_eq!(progress[19]["message"], "Read file25.rs");
    assert!(progress[19]["at"].is_string());

    let done_id = completed(store, "All done.").await;
    let job = f.status(&done_id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["exitCode"], 0);
    assert_eq!(job["stopReason"], "end_turn");
    assert_eq!(job["sessionId"], "prov-session-1");
    assert!(job["finishedAt"].is_string());
    assert!(job["durationMs"].as_i64().unwrap() >= 0);

    let failed_id = running(store, Provider::Gemini, me()).await;
    let mut c = completion(JobStatus::Failed, None);
    c.exit_code = Some(1);
    c.error_category = Some("cli_error".into());
    c.error = Some("gemini exited with code 1: quota exceeded".into());
    store.finish_job(failed_id.clone(), c).await.unwrap();
    let job = f.status(&failed_id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["exitCode"], 1);
    assert_eq!(job["errorCategory"], "cli_error");
    assert_eq!(job["error"], "gemini exited with code 1: quota exceeded");

    // Queued last: a queued job holds later claims back (FIFO).
    let queued_id = queued(store, Provider::Codex).await;
    let job = f.status(&queued_id).await;
    assert_eq!(job["id"], queued_id.as_str());
    assert_eq!(job["cli"], "codex");
    assert_eq!(job["status"], "queued");
    assert!(job["correlationId"].as_str().unwrap().starts_with("corr-"));
    for field in [
        "sessionId",
        "gatewaySessionId",
        "startedAt",
        "finishedAt",
        "durationMs",
        "exitCode",
        "errorCategory",
        "error",
        "lastActivityAt",
        "stopReason",
    ] {
        assert_eq!(job[field], Value::Null, "{field}");
    }
    assert_eq!(job["stdoutBytes"], 0);
    assert_eq!(job["outputTruncated"], false);
    assert_eq!(job["progress"], json!([]));

    // Any UUID spelling finds the job.
    let upper = f.status(&failed_id.to_uppercase()).await;
    assert_eq!(upper["id"], failed_id.as_str());
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn list_filters_by_status_and_cli_newest_first() {
    let f = Fixture::start().await;
    let store = &f.store;
    // Queued jobs hold later claims back (FIFO), so the one that runs comes first.
    let b = completed(store, "b").await;
    let a = queued(store, Provider::Claude).await;
    let c = queued(store, Provider::Codex).await;
    let d = queued(store, Provider::Claude).await;
    store
        .add_event(d.clone(), "started".into(), "claude 2.1".into())
        .await
        .unwrap();

    let ids = |value: &Value| -> Vec<String> {
        value["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = f.ok("llm_job_list", json!({})).await;
    assert_eq!(ids(&all), [&d, &c, &a, &b].map(String::as_str));
    assert_eq!(all["jobs"][0]["progress"][0]["kind"], "started");

    let listed = f.ok("llm_job_list", json!({"status": "queued"})).await;
    assert_eq!(ids(&listed), [&d, &c, &a].map(String::as_str));
    let listed = f.ok("llm_job_list", json!({"cli": "codex"})).await;
    assert_eq!(ids(&listed), [&c].map(String::as_str));
    let listed = f
        .ok(
            "llm_job_list",
            json!({"cli": "claude", "status": "completed"}),
        )
        .await;
    assert_eq!(ids(&listed), [&b].map(String::as_str));
    let listed = f.ok("llm_job_list", json!({"limit": 2})).await;
    assert_eq!(ids(&listed), [&d, &c].map(String::as_str));
    let listed = f.ok("llm_job_list", json!({"cli": "vibe"})).await;
    assert_eq!(ids(&listed), Vec::<String>::new());

    let text = f.err("llm_job_list", json!({"limit": 0})).await;
    assert!(
        text.starts_with("Invalid limit: 0 is out of range (1..=200)"),
        "{text}"
    );
    let text = f.err("llm_job_list", json!({"limit": 201})).await;
    assert!(text.contains("Invalid limit: 201"), "{text}");
    let text = f.err("llm_job_list", json!({"status": "done"})).await;
    assert!(
        text.starts_with("Invalid status: unknown variant `done`"),
        "{text}"
    );
    let text = f.err("llm_job_list", json!({"cli": "gpt"})).await;
    assert!(text.starts_with("Invalid cli:"), "{text}");
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn result_pages_a_multibyte_answer_by_character_offset() {
    let f = Fixture::start().await;
    let answer: String = (0..400)
        .map(|n| format!("{n}: héllo wörld — 😀 "))
        .collect();
    let total = answer.chars().count();
    assert!(total > 5_000);
    let id = running(&f.store, Provider::Claude, me()).await;
    // 6 001 bytes of stderr: its last 4 KiB start inside an "é", so the tail starts one
    // byte later, at a whole character.
    let stderr = format!("{}{}!", "x".repeat(1_000), "é".repeat(2_500));
    append_chunked(&f.store, &id, Stream::Stderr, stderr.as_bytes(), 333).await;
    finish_completed(&f.store, &id, &answer).await;

    let mut pieces = Vec::new();
    let mut offset = 0;
    let last = loop {
        let page = f
            .ok(
                "llm_job_result",
                json!({"jobId": id, "maxChars": 1000, "offset": offset}),
            )
            .await;
        assert_eq!(page["offset"], offset);
        assert_eq!(page["totalChars"], total);
        assert_eq!(page["partial"], false);
        let text = page["response"].as_str().unwrap().to_string();
        let chars = text.chars().count();
        assert!(chars <= 1_000, "{chars}");
        pieces.push(text);
        match page["nextOffset"].as_u64() {
            Some(next) => {
                assert_eq!(next as usize, offset + chars);
                offset = next as usize;
            }
            None => break page,
        }
    };
    assert_eq!(pieces.len(), total.div_ceil(1_000));
    assert_eq!(pieces.concat(), answer);

    assert_eq!(last["job"]["status"], "completed");
    assert_eq!(last["sessionId"], "prov-session-1");
    assert_eq!(last["inputTokens"], 120);
    assert_eq!(last["outputTokens"], 45);
    assert_eq!(last["cacheReadTokens"], 7);
    assert_eq!(last["cacheCreationTokens"], Value::Null);
    assert_eq!(last["reasoningTokens"], Value::Null);
    assert_eq!(last["costUsd"], 0.0125);
    assert_eq!(last["stopReason"], "end_turn");
    let expected_tail = format!("{}!", "é".repeat(2_047));
    assert_eq!(last["stderrTail"], expected_tail.as_str());

    // The default window (200 000 characters) holds the whole answer.
    let whole = f.ok("llm_job_result", json!({"jobId": id})).await;
    assert_eq!(whole["response"], answer.as_str());
    assert_eq!(whole["offset"], 0);
    assert_eq!(whole["nextOffset"], Value::Null);
    // At the very end: an empty window; past it: an error.
    let end = f
        .ok("llm_job_result", json!({"jobId": id, "offset": total}))
        .await;
    assert_eq!(end["response"], "");
    assert_eq!(end["nextOffset"], Value::Null);
    let text = f
        .err("llm_job_result", json!({"jobId": id, "offset": total + 1}))
        .await;
    assert!(
        text.starts_with(&format!(
            "Invalid offset: {} is past the end (the answer has {total} characters)",
            total + 1
        )),
        "{text}"
    );
    for (arguments, message) in [
        (
            json!({"jobId": id, "maxChars": 999}),
            "Invalid maxChars: 999 is out of range (1000..=1000000)",
        ),
        (
            json!({"jobId": id, "maxChars": 1_000_001}),
            "Invalid maxChars: 1000001 is out of range (1000..=1000000)",
        ),
        (
            json!({"jobId": id, "offset": -1}),
            "Invalid offset: -1 must not be negative",
        ),
        (
            json!({"jobId": id, "raw": "yes"}),
            "Invalid raw: invalid type: string \"yes\", expected a boolean",
        ),
    ] {
        let text = f.err("llm_job_result", arguments).await;
        assert!(text.starts_with(message), "{text}");
    }
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn raw_result_pages_stdout_by_byte_offset_without_splitting_characters() {
    let f = Fixture::start().await;
    let stdout: String = (0..300)
        .map(|n| format!("€{{\"type\":\"text\",\"n\":{n},\"text\":\"é😀ü\"}}\n"))
        .collect();
    let bytes = stdout.as_bytes();
    assert!(bytes.len() > 10_000);
    let id = running(&f.store, Provider::Claude, me()).await;
    append_chunked(&f.store, &id, Stream::Stdout, bytes, 97).await;
    finish_completed(&f.store, &id, "the parsed answer").await;

    let mut reassembled = String::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let page = f
            .ok(
                "llm_job_result",
                json!({"jobId": id, "raw": true, "maxChars": 1000, "offset": offset}),
            )
            .await;
        pages += 1;
        assert_eq!(page["offset"], offset);
        assert_eq!(page["totalChars"], bytes.len(), "raw totals are bytes");
        assert_eq!(page["partial"], false);
        let text = page["response"].as_str().unwrap();
        assert!(!text.contains('\u{FFFD}'), "a character was split: {text}");
        let len = text.len();
        assert!(
            (997..=1_000).contains(&len) || page["nextOffset"].is_null(),
            "{len}"
        );
        reassembled.push_str(text);
        match page["nextOffset"].as_u64() {
            Some(next) => {
                assert_eq!(next as usize, offset + len);
                offset = next as usize;
            }
            None => {
                assert_eq!(offset + len, bytes.len());
                break;
            }
        }
    }
    assert!(pages > 10);
    assert_eq!(reassembled, stdout);

    // An offset inside a character starts at the next whole one.
    let inside = f
        .ok(
            "llm_job_result",
            json!({"jobId": id, "raw": true, "offset": 1}),
        )
        .await;
    assert_eq!(inside["offset"], 3, "€ is 3 bytes");
    assert_eq!(inside["response"], &stdout[3..]);
    let text = f
        .err(
            "llm_job_result",
            json!({"jobId": id, "raw": true, "offset": bytes.len() + 1}),
        )
        .await;
    assert!(
        text.contains(&format!("(stdout has {} bytes)", bytes.len())),
        "{text}"
    );

    // A running job: the character it is still writing is left for the next window, and
    // there is no answer yet.
    let live = running(&f.store, Provider::Claude, me()).await;
    f.store
        .append_output(live.clone(), Stream::Stdout, "ab€".as_bytes()[..4].to_vec())
        .await
        .unwrap();
    let page = f
        .ok("llm_job_result", json!({"jobId": live, "raw": true}))
        .await;
    assert_eq!(page["response"], "ab");
    assert_eq!(page["nextOffset"], 2);
    assert_eq!(page["totalChars"], 4);
    assert_eq!(page["partial"], true);
    let page = f.ok("llm_job_result", json!({"jobId": live})).await;
    assert_eq!(page["job"]["status"], "running");
    assert_eq!(page["response"], Value::Null);
    assert_eq!(page["nextOffset"], Value::Null);
    assert_eq!(page["totalChars"], 0);
    assert_eq!(page["partial"], true);
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn failed_and_canceled_jobs_give_partial_results() {
    let f = Fixture::start().await;
    let store = &f.store;

    // No parsed answer: the stdout tail (here the last 1 000 bytes, from a whole character).
    let no_answer = running(store, Provider::Codex, me()).await;
    let stdout = format!("{}!", "é".repeat(1_000));
    append_chunked(store, &no_answer, Stream::Stdout, stdout.as_bytes(), 128).await;
    store
        .append_output(
            no_answer.clone(),
            Stream::Stderr,
            b"error: stream disconnected".to_vec(),
        )
        .await
        .unwrap();
    let mut c = completion(JobStatus::Failed, None);
    c.exit_code = Some(1);
    c.error_category = Some("cli_error".into());
    c.error = Some("codex exited with code 1".into());
    store.finish_job(no_answer.clone(), c).await.unwrap();
    let page = f
        .ok(
            "llm_job_result",
            json!({"jobId": no_answer, "maxChars": 1000}),
        )
        .await;
    let expected = format!("{}!", "é".repeat(499));
    assert_eq!(page["response"], expected.as_str());
    assert_eq!(page["partial"], true);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["nextOffset"], Value::Null);
    assert_eq!(page["totalChars"], 500);
    assert_eq!(page["stderrTail"], "error: stream disconnected");
    assert_eq!(page["job"]["status"], "failed");
    let text = f
        .err("llm_job_result", json!({"jobId": no_answer, "offset": 10}))
        .await;
    assert!(text.contains("without a parsed answer"), "{text}");
    assert!(text.contains("raw: true"), "{text}");
    // All of stdout stays readable through raw.
    let raw = f
        .ok("llm_job_result", json!({"jobId": no_answer, "raw": true}))
        .await;
    assert_eq!(raw["response"], stdout.as_str());
    assert_eq!(raw["partial"], true);

    // A partial parsed answer wins over the stdout tail.
    let half = running(store, Provider::Claude, me()).await;
    store
        .append_output(half.clone(), Stream::Stdout, b"{\"partial\":true}".to_vec())
        .await
        .unwrap();
    let mut c = completion(JobStatus::Canceled, Some("Half an ans"));
    c.error_category = Some("canceled".into());
    store.finish_job(half.clone(), c).await.unwrap();
    let page = f.ok("llm_job_result", json!({"jobId": half})).await;
    assert_eq!(page["response"], "Half an ans");
    assert_eq!(page["totalChars"], 11);
    assert_eq!(page["partial"], true);
    assert_eq!(page["job"]["status"], "canceled");

    // Canceled before any output: nothing to show.
    let empty = queued(store, Provider::Grok).await;
    f.ok("llm_job_cancel", json!({"jobId": empty})).await;
    let page = f.ok("llm_job_result", json!({"jobId": empty})).await;
    assert_eq!(page["response"], Value::Null);
    assert_eq!(page["partial"], true);
    assert_eq!(page["stderrTail"], "");
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn watch_returns_on_a_new_event_on_completion_and_at_the_deadline() {
    let f = Fixture::start().await;
    let id = running(&f.store, Provider::Claude, me()).await;

    // A new event, added after a short delay from another task.
    let before = f.store.latest_event_seq(id.clone()).await.unwrap().unwrap();
    let adder = {
        let (store, id) = (f.store.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            store
                .add_event(id, "tool".into(), "Edit src/lib.rs".into())
                .await
                .unwrap()
        })
    };
    let started = Instant::now();
    let watched = f
        .ok(
            "llm_job_watch",
            json!({"jobId": id, "waitMs": 20000, "afterSeq": before}),
        )
        .await;
    let waited = started.elapsed();
    let seq = adder.await.unwrap();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(watched["job"]["status"], "running");
    let progress = watched["job"]["progress"].as_array().unwrap();
    assert_eq!(progress.last().unwrap()["seq"], seq);
    assert_eq!(progress.last().unwrap()["message"], "Edit src/lib.rs");

    // An afterSeq below the newest event answers at once.
    let started = Instant::now();
    f.ok(
        "llm_job_watch",
        json!({"jobId": id, "waitMs": 20000, "afterSeq": 0}),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));

    // Completion, from another task, ends the wait.
    let finisher = {
        let (store, id) = (f.store.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            finish_completed(&store, &id, "done").await;
        })
    };
    let started = Instant::now();
    let watched = f
        .ok("llm_job_watch", json!({"jobId": id, "waitMs": 20000}))
        .await;
    finisher.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(watched["job"]["status"], "completed");
    // A finished job answers at once.
    let started = Instant::now();
    f.ok("llm_job_watch", json!({"jobId": id})).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    // Nothing happens: the wait ends at waitMs.
    let quiet = running(&f.store, Provider::Codex, me()).await;
    let started = Instant::now();
    let watched = f
        .ok("llm_job_watch", json!({"jobId": quiet, "waitMs": 300}))
        .await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(watched["job"]["status"], "running");
    let started = Instant::now();
    f.ok("llm_job_watch", json!({"jobId": quiet, "waitMs": 0}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));

    for (arguments, message) in [
        (
            json!({"jobId": quiet, "waitMs": 30001}),
            "Invalid waitMs: 30001 is out of range (0..=30000)",
        ),
        (
            json!({"jobId": quiet, "waitMs": -1}),
            "Invalid waitMs: -1 is out of range (0..=30000)",
        ),
        (
            json!({"jobId": quiet, "afterSeq": -5}),
            "Invalid afterSeq: -5 must not be negative",
        ),
    ] {
        let text = f.err("llm_job_watch", arguments).await;
        assert!(text.starts_with(message), "{text}");
    }
    f.client.cancel().await.unwrap();
}

/// A client that records the progress notifications it receives.
#[derive(Clone)]
struct ProgressCollector(tokio::sync::mpsc::UnboundedSender<ProgressNotificationParam>);

impl ClientHandler for ProgressCollector {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params);
    }
}

/// Calls `llm_job_watch` and returns the progress token the call carried with its result.
/// rmcp's client attaches a fresh progress token to every request it sends (overriding any
/// set in the params' `_meta`), so the token is read from the request handle.
async fn watch_with_token(
    client: &RunningService<RoleClient, ProgressCollector>,
    arguments: Value,
) -> (ProgressToken, CallToolResult) {
    let params = CallToolRequestParams::new("llm_job_watch")
        .with_arguments(arguments.as_object().unwrap().clone());
    let handle = client
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("send llm_job_watch");
    let token = handle.progress_token.clone();
    let response = tokio::time::timeout(WAIT, handle.await_response())
        .await
        .expect("llm_job_watch answered in time")
        .expect("llm_job_watch answered");
    let ServerResult::CallToolResult(result) = response else {
        panic!("unexpected answer to llm_job_watch: {response:?}");
    };
    (token, result)
}

/// The next progress notification, waiting at most [`WAIT`].
async fn next_progress(
    received: &mut tokio::sync::mpsc::UnboundedReceiver<ProgressNotificationParam>,
) -> ProgressNotificationParam {
    tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("a progress notification in time")
        .expect("the client is still connected")
}

#[tokio::test]
async fn watch_sends_progress_notifications_when_the_call_carries_a_token() {
    let home = TestHome::new();
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (transport, _) = TokioChildProcess::builder(home.command(["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server");
    let client = tokio::time::timeout(WAIT, ProgressCollector(sender).serve(transport))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let tools = client.list_all_tools().await.unwrap();
    let store = open_store(&home);
    let id = running(&store, Provider::Claude, me()).await;
    for (kind, message) in [
        ("started", "claude-sonnet"),
        ("tool", "Read src/main.rs"),
        ("writing", "the answer"),
    ] {
        store
            .add_event(id.clone(), kind.into(), message.into())
            .await
            .unwrap();
    }

    // Events already after afterSeq: one notification each, in order.
    let (token, result) = watch_with_token(&client, json!({"jobId": id, "afterSeq": 0})).await;
    assert_matches_output_schema(tool(&tools, "llm_job_watch"), &result);
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    for (seq, message) in [
        (1.0, "started: claude-sonnet"),
        (2.0, "tool: Read src/main.rs"),
        (3.0, "writing: the answer"),
    ] {
        let note = next_progress(&mut received).await;
        assert_eq!(note.progress_token, token);
        assert_eq!(note.progress, seq);
        assert_eq!(note.message.as_deref(), Some(message));
    }

    // A new event while waiting arrives as a notification too.
    let adder = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            store
                .add_event(id, "file".into(), "src/lib.rs".into())
                .await
                .unwrap()
        })
    };
    let (second_token, result) = watch_with_token(
        &client,
        json!({"jobId": id, "afterSeq": 3, "waitMs": 20000}),
    )
    .await;
    assert_ne!(second_token, token);
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    assert_eq!(adder.await.unwrap(), 4);
    let note = next_progress(&mut received).await;
    assert_eq!(note.progress_token, second_token);
    assert_eq!(note.progress, 4.0);
    assert_eq!(note.message.as_deref(), Some("file: src/lib.rs"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cancel_answers_at_once_for_queued_running_and_finished_jobs() {
    let f = Fixture::start().await;
    let store = &f.store;

    let waiting = queued(store, Provider::Claude).await;
    let answer = f.ok("llm_job_cancel", json!({"jobId": waiting})).await;
    assert_eq!(
        answer,
        json!({"jobId": waiting, "status": "canceled", "cancelRequested": true})
    );
    let job = f.status(&waiting).await;
    assert_eq!(job["status"], "canceled");
    assert_eq!(job["errorCategory"], "canceled");

    // A running job: the flag is set and its (stand-in) supervisor gets SIGTERM at once.
    let mut supervisor = Sleeper::spawn(false);
    let busy = running(store, Provider::Codex, supervisor.identity()).await;
    let started = Instant::now();
    let answer = f.ok("llm_job_cancel", json!({"jobId": busy})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        answer,
        json!({"jobId": busy, "status": "running", "cancelRequested": true})
    );
    assert!(store.is_cancel_requested(busy.clone()).await.unwrap());
    assert_eq!(supervisor.ended_by(), Some(libc::SIGTERM));
    // Canceling again changes nothing.
    let again = f.ok("llm_job_cancel", json!({"jobId": busy})).await;
    assert_eq!(again["cancelRequested"], true);

    // A finished job reports its status; nothing changes.
    let done = completed(store, "fine").await;
    let answer = f.ok("llm_job_cancel", json!({"jobId": done})).await;
    assert_eq!(
        answer,
        json!({"jobId": done, "status": "completed", "cancelRequested": false})
    );
    assert!(!store.is_cancel_requested(done.clone()).await.unwrap());
    assert_eq!(f.status(&done).await["status"], "completed");
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_job_whose_supervisor_is_gone_becomes_orphaned_on_a_status_read() {
    let f = Fixture::start().await;
    let store = &f.store;

    // Dead supervisor, stale heartbeat, a CLI group whose leader is still the recorded one:
    // the group is killed and the job keeps its partial output and provider session.
    let mut group = Sleeper::spawn(true);
    let gone = running(store, Provider::Claude, Sleeper::dead()).await;
    let leader = group.identity();
    store
        .set_job_process_group(gone.clone(), leader.pid, leader.start_time)
        .await
        .unwrap();
    store
        .append_output(gone.clone(), Stream::Stdout, b"partial output".to_vec())
        .await
        .unwrap();
    store
        .set_job_provider_session(gone.clone(), "prov-orphan".into())
        .await
        .unwrap();
    age_heartbeat(&f.home, &gone);
    let job = f.status(&gone).await;
    assert_eq!(job["status"], "orphaned");
    assert_eq!(job["error"], "supervisor exited unexpectedly");
    assert_eq!(job["sessionId"], "prov-orphan");
    assert_eq!(job["stdoutBytes"], 14);
    assert_eq!(group.ended_by(), Some(libc::SIGKILL));
    let result = f
        .ok("llm_job_result", json!({"jobId": gone, "raw": true}))
        .await;
    assert_eq!(result["response"], "partial output");
    assert_eq!(result["partial"], true);
    let result = f.ok("llm_job_result", json!({"jobId": gone})).await;
    assert_eq!(result["response"], "partial output", "the stdout tail");

    // A live but unrelated process under the recorded pid (wrong start time): the pid was
    // reused. Orphaned too — and a group whose leader does not match gets no signal.
    let mut stranger_group = Sleeper::spawn(true);
    let reused = running(
        store,
        Provider::Gemini,
        SupervisorId {
            pid: me().pid,
            start_time: "1".into(),
        },
    )
    .await;
    store
        .set_job_process_group(reused.clone(), stranger_group.pid(), "1".into())
        .await
        .unwrap();
    age_heartbeat(&f.home, &reused);
    assert_eq!(f.status(&reused).await["status"], "orphaned");
    assert!(
        stranger_group.still_running(),
        "no signal to a group not ours"
    );

    // The supervisor still runs (only its heartbeat is late): not orphaned.
    let slow = running(store, Provider::Codex, me()).await;
    age_heartbeat(&f.home, &slow);
    assert_eq!(f.status(&slow).await["status"], "running");
    // The supervisor is gone but its heartbeat is recent: not yet.
    let recent = running(store, Provider::Codex, Sleeper::dead()).await;
    assert_eq!(f.status(&recent).await["status"], "running");

    // Listing jobs runs the same detection over every active job.
    let listed_orphan = running(store, Provider::Grok, Sleeper::dead()).await;
    age_heartbeat(&f.home, &listed_orphan);
    let listed = f.ok("llm_job_list", json!({"status": "orphaned"})).await;
    let ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [listed_orphan.as_str(), reused.as_str(), gone.as_str()]
    );

    // Watching and canceling see the verdict too.
    let watched_orphan = running(store, Provider::Claude, Sleeper::dead()).await;
    age_heartbeat(&f.home, &watched_orphan);
    let watched = f
        .ok(
            "llm_job_watch",
            json!({"jobId": watched_orphan, "waitMs": 20000}),
        )
        .await;
    assert_eq!(watched["job"]["status"], "orphaned");
    let canceled_orphan = running(store, Provider::Claude, Sleeper::dead()).await;
    age_heartbeat(&f.home, &canceled_orphan);
    let answer = f
        .ok("llm_job_cancel", json!({"jobId": canceled_orphan}))
        .await;
    assert_eq!(answer["status"], "orphaned");
    assert_eq!(answer["cancelRequested"], false);
    f.client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_and_malformed_job_ids_are_clear_errors() {
    let f = Fixture::start().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for name in [
        "llm_job_status",
        "llm_job_watch",
        "llm_job_result",
        "llm_job_cancel",
    ] {
        let text = f.err(name, json!({"jobId": unknown})).await;
        assert!(
            text.starts_with(&format!("Job not found: {unknown}\n\nFix: ")),
            "{name}: {text}"
        );
        assert!(text.contains("llm_job_list"), "{name}: {text}");

        let text = f.err(name, json!({"jobId": "abc"})).await;
        assert!(
            text.starts_with("Invalid jobId: \"abc\" is not a job id (expected a UUID"),
            "{name}: {text}"
        );
        let text = f.err(name, json!({"jobId": "-rf"})).await;
        assert!(text.starts_with("Invalid jobId:"), "{name}: {text}");

        let text = f.err(name, json!({})).await;
        assert!(text.contains("missing field `jobId`"), "{name}: {text}");

        let text = f.err(name, json!({"jobID": unknown})).await;
        assert!(
            text.starts_with(&format!(
                "Unknown parameter \"jobID\" for {name} (did you mean \"jobId\"?)"
            )),
            "{name}: {text}"
        );

        let text = f.err(name, json!({"jobId": 42})).await;
        assert!(
            text.starts_with("Invalid jobId: invalid type"),
            "{name}: {text}"
        );
    }
    let text = f.err("llm_job_list", json!({"jobId": unknown})).await;
    assert!(text.starts_with("Unknown parameter \"jobId\""), "{text}");
    f.client.cancel().await.unwrap();
}
