//! A job's life through the real binary, beyond the happy path: the provider session id
//! while it runs, usage of resumed sessions, explicit cancel versus a closed connection,
//! progress during a sync wait, limits, two servers on one database, a killed supervisor,
//! UTF-8 split across writes, and `cancel_on_exit`. Every scenario ends by checking that no
//! flight-recorder row is left open once its job has ended.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::fake_cli::{self, knob};
use common::{TestHome, WAIT, call, err, ok, text_of};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest,
    ProgressNotificationParam, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The session id of the default claude fixture's `init` line.
const CLAUDE_SESSION: &str = "2038c496-3aa5-4359-81a3-0bf0f680ced3";
/// The thread id of the default codex fixture's `thread.started` line.
const CODEX_THREAD: &str = "01a1fc42-af40-7a40-840a-1e1a9e7e9d53";
/// The thread the codex resume fixtures share.
const CODEX_RESUMED_THREAD: &str = "01a1fc42-ad8e-7c10-ae7e-f76afb6fa541";

fn db(home: &TestHome) -> rusqlite::Connection {
    rusqlite::Connection::open(home.db_path()).expect("open the test database")
}

fn job_field<T: rusqlite::types::FromSql>(home: &TestHome, job: &str, column: &str) -> T {
    db(home)
        .query_row(
            &format!("SELECT {column} FROM jobs WHERE id = ?1"),
            [job],
            |r| r.get(0),
        )
        .expect("read the job row")
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for_status(home: &TestHome, job: &str, wanted: &str) {
    wait_until(&format!("job {job} {wanted}"), || {
        job_field::<String>(home, job, "status") == wanted
    })
    .await;
}

/// No request row may stay `started`/`deferred` once its job has ended.
fn assert_no_open_request_of_an_ended_job(home: &TestHome) {
    let open: i64 = db(home)
        .query_row(
            "SELECT count(*) FROM requests r JOIN jobs j ON j.id = r.job_id \
             WHERE r.status IN ('started', 'deferred') \
               AND j.status NOT IN ('queued', 'running')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 0, "request rows left open after their job ended");
}

fn home_with_fakes(config: &str) -> (TestHome, std::path::PathBuf) {
    let mut home = TestHome::with_config(config);
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    (home, records)
}

/// Sends a tool call without waiting for its answer (so it can be cancelled).
async fn send_call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    name: &str,
    arguments: Value,
) -> RequestHandle<RoleClient> {
    let params = CallToolRequestParams::new(name.to_string())
        .with_arguments(arguments.as_object().unwrap().clone());
    client
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("send the call")
}

async fn answer(handle: RequestHandle<RoleClient>) -> CallToolResult {
    let response = tokio::time::timeout(WAIT, handle.await_response())
        .await
        .expect("answered in time")
        .expect("answered");
    let ServerResult::CallToolResult(result) = response else {
        panic!("unexpected answer: {response:?}");
    };
    result
}

#[tokio::test]
async fn the_provider_session_id_shows_while_the_job_runs() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::HANG, "1");
    home.set_env("SYNC_DEADLINE_MS", "1500");
    let client = home.connect().await;
    // The hanging fake prints only its init line: the deferral already names the session.
    let s = ok(call(&client, "claude_request", json!({"prompt": "long"})).await);
    assert_eq!(s["status"], "deferred", "{s}");
    assert_eq!(s["sessionId"], CLAUDE_SESSION, "{s}");
    let claude_job = s["jobId"].as_str().unwrap().to_string();

    // An async codex job: its status shows the thread id while it still runs.
    let started = ok(call(&client, "codex_request_async", json!({"prompt": "long"})).await);
    let codex_job = started["jobId"].as_str().unwrap().to_string();
    fake_cli::wait_for_recordings(&records, 2, WAIT);
    let deadline = Instant::now() + WAIT;
    loop {
        let status = ok(call(&client, "llm_job_status", json!({"jobId": codex_job})).await);
        let job = status.get("job").unwrap_or(&status);
        if job["sessionId"] == CODEX_THREAD {
            assert_eq!(job["status"], "running", "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sessionId while running: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for job in [&claude_job, &codex_job] {
        ok(call(&client, "llm_job_cancel", json!({"jobId": job})).await);
        wait_for_status(&home, job, "canceled").await;
        let recorded: String = job_field(&home, job, "provider_session_id");
        assert!(recorded == CLAUDE_SESSION || recorded == CODEX_THREAD);
    }
    assert_no_open_request_of_an_ended_job(&home);
}

#[tokio::test]
async fn resumed_codex_runs_report_per_invocation_usage() {
    let (mut home, _records) = home_with_fakes("");
    home.set_env(knob::CASE, "exec-json-ok");
    let client = home.connect().await;
    let first = ok(call(&client, "codex_request", json!({"prompt": "one"})).await);
    assert_eq!(first["sessionId"], CODEX_RESUMED_THREAD);
    assert_eq!(first["outputTokens"], 56, "{first}");
    drop(client);

    // The CLI reports running totals per thread (112, then 168 output tokens): each
    // resumed run reports only its own share, measured against the recorded totals.
    for (case, prompt) in [
        ("exec-resume-by-id", "two"),
        ("exec-resume-by-id-2", "three"),
    ] {
        home.set_env(knob::CASE, case);
        let client = home.connect().await;
        let s = ok(call(
            &client,
            "codex_request",
            json!({"prompt": prompt, "sessionId": CODEX_RESUMED_THREAD}),
        )
        .await);
        assert_eq!(s["sessionId"], CODEX_RESUMED_THREAD);
        assert_eq!(s["outputTokens"], 56, "{case}: {s}");
        assert_eq!(s["reasoningTokens"], 20, "{case}: {s}");
        assert_eq!(s["cacheReadTokens"], 1000, "{case}: {s}");
        let warnings = s["warnings"].to_string();
        assert!(!warnings.contains("usage_baseline_unknown"), "{case}: {s}");
    }

    // A thread never recorded here: null figures and the warning.
    home.set_env(knob::CASE, "exec-resume-by-id");
    let client = home.connect().await;
    let s = ok(call(
        &client,
        "codex_request",
        json!({"prompt": "four", "sessionId": "01a1fc42-0000-7000-8000-000000000000"}),
    )
    .await);
    assert!(s["outputTokens"].is_null(), "{s}");
    assert!(
        s["warnings"].to_string().contains("usage_baseline_unknown"),
        "{s}"
    );
    assert_no_open_request_of_an_ended_job(&home);
}

#[cfg(target_os = "linux")]
// Multi-threaded: the blocking fake-CLI waits must not starve the client's transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_cancel_ends_the_job_and_its_grandchild() {
    for runner in ["supervisor", "in-process"] {
        let (mut home, records) = home_with_fakes(&format!(
            "[jobs]\nrunner = \"{runner}\"\nkill_grace_ms = 300\n"
        ));
        home.set_env(knob::HANG, "1");
        home.set_env(knob::GRANDCHILD, "1");
        let client = home.connect().await;
        let handle = send_call(&client, "claude_request", json!({"prompt": "cancel me"})).await;
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let grandchild = fake_cli::grandchild_pid(&records, 1).expect("grandchild pid");
        handle
            .cancel(Some("the user pressed stop".into()))
            .await
            .unwrap();
        let job: String = db(&home)
            .query_row("SELECT id FROM jobs", [], |r| r.get(0))
            .unwrap();
        wait_for_status(&home, &job, "canceled").await;
        assert!(
            fake_cli::wait_until_dead(runs[0].pid, WAIT),
            "{runner}: CLI survived"
        );
        assert!(
            fake_cli::wait_until_dead(grandchild, WAIT),
            "{runner}: grandchild survived"
        );
        let request: String = db(&home)
            .query_row("SELECT status FROM requests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(request, "canceled", "{runner}");
        assert_no_open_request_of_an_ended_job(&home);
        // The server is still serving.
        ok(call(&client, "llm_job_status", json!({"jobId": job})).await);
    }
}

// Multi-threaded: the blocking fake-CLI waits must not starve the client's transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_cancel_leaves_a_job_other_callers_share() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::DELAY_MS, "1200");
    // Caller A (server 1) starts the job; caller B (server 2) attaches to it by dedup.
    let a = home.connect().await;
    let b = home.connect().await;
    let args = json!({"prompt": "shared"});
    let first = send_call(&a, "gemini_request", args.clone()).await;
    fake_cli::wait_for_recordings(&records, 1, WAIT);
    let second = send_call(&b, "gemini_request", args).await;
    wait_until("both callers recorded", || {
        db(&home)
            .query_row("SELECT count(*) FROM requests", [], |r| r.get::<_, i64>(0))
            .unwrap()
            == 2
    })
    .await;
    first.cancel(None).await.unwrap();
    let s = ok(answer(second).await);
    assert_eq!(s["deduped"], true, "{s}");
    assert!(!s["response"].as_str().unwrap().is_empty());
    let statuses: Vec<(String, bool)> = db(&home)
        .prepare("SELECT status, deduped FROM requests ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        statuses,
        [
            ("canceled".to_string(), false),
            ("completed".to_string(), true)
        ]
    );
    assert_eq!(fake_cli::recordings(&records).len(), 1);
    assert_no_open_request_of_an_ended_job(&home);
}

// Multi-threaded: the blocking fake-CLI waits must not starve the client's transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_does_not_cancel_a_running_job() {
    for runner in ["supervisor", "in-process"] {
        let (mut home, records) = home_with_fakes(&format!("[jobs]\nrunner = \"{runner}\"\n"));
        home.set_env(knob::DELAY_MS, "700");
        let client = home.connect().await;
        let _pending = send_call(&client, "grok_request", json!({"prompt": "keep going"})).await;
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let job: String = db(&home)
            .query_row("SELECT id FROM jobs", [], |r| r.get(0))
            .unwrap();
        // Closing the whole client trips every in-flight request's token on the server.
        client.cancel().await.unwrap();
        if runner == "supervisor" {
            wait_for_status(&home, &job, "completed").await;
        } else {
            // The in-process run ends with its server (completed, or its CLI killed by the
            // parent-death signal) — but it is never canceled.
            assert!(
                fake_cli::wait_until_dead(runs[0].pid, WAIT),
                "{runner}: CLI survived"
            );
            let status: String = job_field(&home, &job, "status");
            assert_ne!(status, "canceled", "{runner}");
        }
        let cancel: Option<String> = job_field(&home, &job, "cancel_requested_at");
        assert_eq!(cancel, None, "{runner}");
        assert_no_open_request_of_an_ended_job(&home);
    }
}

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

#[tokio::test]
async fn a_sync_wait_sends_progress_notifications_for_its_token() {
    let (mut home, _records) = home_with_fakes("");
    home.set_env(knob::DELAY_MS, "100");
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (transport, _) = TokioChildProcess::builder(home.command(["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server");
    let client = tokio::time::timeout(WAIT, ProgressCollector(sender).serve(transport))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let handle = send_call(&client, "claude_request", json!({"prompt": "tell me"})).await;
    let token = handle.progress_token.clone();
    let s = ok(answer(handle).await);
    assert!(!s["response"].as_str().unwrap().is_empty());
    // Notifications are sent before the answer; give the last ones a moment to arrive.
    let mut notes = Vec::new();
    while let Ok(Some(note)) =
        tokio::time::timeout(Duration::from_millis(300), received.recv()).await
    {
        notes.push(note);
    }
    assert!(!notes.is_empty(), "no progress during the sync wait");
    assert!(notes.iter().all(|n| n.progress_token == token));
    let messages: Vec<&str> = notes.iter().filter_map(|n| n.message.as_deref()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("started: ")),
        "{messages:?}"
    );
    let seqs: Vec<f64> = notes.iter().map(|n| n.progress).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn saturation_and_queue_timeout_are_retryable_outcomes() {
    let (mut home, _records) = home_with_fakes(
        "[limits]\nmax_running_jobs = 1\nmax_queued_jobs = 1\nqueue_timeout_ms = 1000\n",
    );
    home.set_env(knob::DELAY_MS, "2500");
    let client = home.connect().await;
    let running = ok(call(&client, "codex_request_async", json!({"prompt": "first"})).await);
    let running_job = running["jobId"].as_str().unwrap().to_string();
    wait_for_status(&home, &running_job, "running").await;
    let queued = ok(call(&client, "codex_request_async", json!({"prompt": "second"})).await);
    let queued_job = queued["jobId"].as_str().unwrap().to_string();

    let result = call(&client, "codex_request", json!({"prompt": "third"})).await;
    let s = result.structured_content.clone().unwrap();
    let text = err(result);
    assert_eq!(s["errorCategory"], "saturated", "{s}");
    assert_eq!(s["retryable"], true, "{s}");
    assert!(text.contains("max_queued_jobs"), "{text}");

    // The queued job waits behind the 2.5 s run longer than queue_timeout_ms.
    wait_for_status(&home, &queued_job, "failed").await;
    let category: String = job_field(&home, &queued_job, "error_category");
    assert_eq!(category, "queue_timeout");
    let status = ok(call(&client, "llm_job_status", json!({"jobId": queued_job})).await);
    assert!(status.to_string().contains("queue_timeout"), "{status}");
    wait_for_status(&home, &running_job, "completed").await;
    assert_no_open_request_of_an_ended_job(&home);
}

#[tokio::test]
async fn two_servers_share_one_database() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::DELAY_MS, "300");
    let a = home.connect().await;
    let b = home.connect().await;
    let started = ok(call(&a, "mistral_request_async", json!({"prompt": "from a"})).await);
    let job = started["jobId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    let result = loop {
        let r = call(&b, "llm_job_result", json!({"jobId": job})).await;
        if r.is_error != Some(true)
            && r.structured_content
                .as_ref()
                .is_some_and(|s| s.to_string().contains("completed"))
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "B never saw the result: {}",
            text_of(&r)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let s = ok(result);
    assert!(s.to_string().contains(&job), "{s}");
    // An identical request through B attaches to A's job: no second run.
    let again = ok(call(&b, "mistral_request", json!({"prompt": "from a"})).await);
    assert_eq!(again["jobId"], job.as_str());
    assert_eq!(again["deduped"], true);
    assert_eq!(fake_cli::recordings(&records).len(), 1);
    assert_no_open_request_of_an_ended_job(&home);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_supervisor_killed_with_sigkill_leaves_an_orphaned_job_with_its_output() {
    let (mut home, records) = home_with_fakes("");
    home.set_env(knob::HANG, "1");
    home.set_env("LLM_GATEWAY_TEST_HEARTBEAT_STALE_MS", "300");
    let client = home.connect().await;
    let started = ok(call(&client, "gemini_request_async", json!({"prompt": "die"})).await);
    let job = started["jobId"].as_str().unwrap().to_string();
    let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
    wait_until("partial output stored", || {
        job_field::<i64>(&home, &job, "stdout_bytes") > 0
    })
    .await;
    let supervisor: i64 = job_field(&home, &job, "supervisor_pid");
    assert!(fake_cli::send_signal(supervisor as i32, libc::SIGKILL));
    // The CLI gets its parent-death signal.
    assert!(fake_cli::wait_until_dead(runs[0].pid, WAIT), "CLI survived");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = ok(call(&client, "llm_job_status", json!({"jobId": job})).await);
        if s.to_string().contains("orphaned") {
            break;
        }
        assert!(Instant::now() < deadline, "never orphaned: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job_field::<String>(&home, &job, "status"), "orphaned");
    let first_line = fake_cli::fixture("gemini", "stream-json-ok", "stdout");
    let first_line = first_line.split(|b| *b == b'\n').next().unwrap();
    let raw = ok(call(
        &client,
        "llm_job_result",
        json!({"jobId": job, "raw": true}),
    )
    .await);
    assert_eq!(raw["partial"], true, "{raw}");
    assert_eq!(
        raw["response"].as_str().unwrap().trim_end().as_bytes(),
        first_line,
        "{raw}"
    );
    assert_no_open_request_of_an_ended_job(&home);
}

/// A gemini stand-in that writes a multi-byte answer in pieces split inside characters.
fn install_split_utf8_gemini(bin: &Path) {
    let script = r#"#!/bin/sh
cat >/dev/null
printf '{"type":"init","session_id":"s-utf8","model":"auto"}\n'
printf '{"type":"message","role":"assistant","content":"caf\303'
sleep 0.3
printf '\251 \342\202'
sleep 0.3
printf '\254 ok","delta":true}\n'
printf '{"type":"result","status":"success","stats":{"total_tokens":3,"input_tokens":1,"output_tokens":2}}\n'
"#;
    let path = bin.join("gemini");
    std::fs::write(&path, script).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
}

#[tokio::test]
async fn a_character_split_across_two_writes_arrives_intact() {
    let home = TestHome::new();
    install_split_utf8_gemini(&home.bin_dir());
    let client = home.connect().await;
    let s = ok(call(&client, "gemini_request", json!({"prompt": "split"})).await);
    assert_eq!(s["response"], "café € ok", "{s}");
    let job = s["jobId"].as_str().unwrap().to_string();
    let chunks: i64 = db(&home)
        .query_row(
            "SELECT count(*) FROM job_output WHERE job_id = ?1",
            [&job],
            |r| r.get(0),
        )
        .unwrap();
    assert!(chunks >= 2, "the writes were stored as {chunks} chunk(s)");
    let raw = ok(call(
        &client,
        "llm_job_result",
        json!({"jobId": job, "raw": true}),
    )
    .await);
    assert!(raw.to_string().contains("café € ok"), "{raw}");
    assert!(!raw.to_string().contains('\u{fffd}'), "{raw}");
    assert_no_open_request_of_an_ended_job(&home);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn cancel_on_exit_cancels_this_servers_running_jobs_and_only_when_set() {
    for (cancel_on_exit, how) in [(true, "stdin"), (true, "sigterm"), (false, "stdin")] {
        let (mut home, records) = home_with_fakes(&format!(
            "[jobs]\ncancel_on_exit = {cancel_on_exit}\nkill_grace_ms = 300\n"
        ));
        home.set_env(knob::DELAY_MS, "1500");
        let client = home.connect().await;
        let started = ok(call(&client, "codex_request_async", json!({"prompt": "bye"})).await);
        let job = started["jobId"].as_str().unwrap().to_string();
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let supervisor: i64 = job_field(&home, &job, "supervisor_pid");
        let server = std::fs::read_to_string(format!("/proc/{supervisor}/status"))
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("PPid:")
                    .map(|v| v.trim().parse::<i32>().unwrap())
            })
            .unwrap();
        match how {
            "sigterm" => assert!(fake_cli::send_signal(server, libc::SIGTERM)),
            _ => {
                client.cancel().await.unwrap();
            }
        }
        if cancel_on_exit {
            wait_for_status(&home, &job, "canceled").await;
            assert!(fake_cli::wait_until_dead(runs[0].pid, WAIT));
        } else {
            wait_for_status(&home, &job, "completed").await;
        }
        assert_no_open_request_of_an_ended_job(&home);
    }
}

/// A gemini stand-in whose answer is 1 500 characters (`é` then `x`s, multi-byte first).
fn install_long_answer_gemini(bin: &Path) {
    let script = r#"#!/bin/sh
cat >/dev/null
printf '{"type":"init","session_id":"s-long","model":"auto"}\n'
printf '{"type":"message","role":"assistant","content":"'
i=0
while [ $i -lt 500 ]; do printf '\303\251xx'; i=$((i + 1)); done
printf '","delta":true}\n'
printf '{"type":"result","status":"success","stats":{"total_tokens":3,"input_tokens":1,"output_tokens":2}}\n'
"#;
    let path = bin.join("gemini");
    std::fs::write(&path, script).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
}

#[tokio::test]
async fn max_response_chars_cuts_visibly_and_output_format_json_gives_the_raw_stream() {
    let home = TestHome::new();
    install_long_answer_gemini(&home.bin_dir());
    let client = home.connect().await;
    let result = call(
        &client,
        "gemini_request",
        json!({"prompt": "long", "maxResponseChars": 1000}),
    )
    .await;
    let text = text_of(&result);
    let s = ok(result);
    assert_eq!(s["truncated"], true, "{s}");
    assert_eq!(s["totalChars"], 1500, "{s}");
    let response = s["response"].as_str().unwrap();
    assert_eq!(response.chars().count(), 1000);
    assert!(response.starts_with("éxxéxx"));
    assert_eq!(text, response);
    // The whole answer stays readable.
    let job = s["jobId"].as_str().unwrap().to_string();
    let full = ok(call(&client, "llm_job_result", json!({"jobId": job})).await);
    assert_eq!(full["totalChars"], 1500, "{full}");

    let result = call(
        &client,
        "gemini_request",
        json!({"prompt": "long raw", "outputFormat": "json", "maxResponseChars": 1000}),
    )
    .await;
    let text = text_of(&result);
    let s = ok(result);
    assert!(
        text.starts_with(r#"{"type":"init","session_id":"s-long""#),
        "{text}"
    );
    assert_eq!(text.chars().count(), 1000);
    assert_eq!(s["truncated"], true, "{s}");
    assert!(s["response"].as_str().unwrap().starts_with("éxx"), "{s}");
    assert_no_open_request_of_an_ended_job(&home);
}

#[tokio::test]
async fn the_deferred_object_has_exactly_the_documented_fields() {
    let (mut home, _records) = home_with_fakes("");
    home.set_env("SYNC_DEADLINE_MS", "100");
    home.set_env(knob::DELAY_MS, "400");
    let client = home.connect().await;
    let result = call(&client, "grok_request", json!({"prompt": "slow"})).await;
    let text = text_of(&result);
    let s = ok(result);
    let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cancelWith",
            "cli",
            "collectWith",
            "correlationId",
            "gatewaySessionId",
            "jobId",
            "message",
            "pollWith",
            "sessionId",
            "status"
        ]
    );
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), s);
    let request: String = db(&home)
        .query_row("SELECT status FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(matches!(request.as_str(), "deferred" | "completed"));
    let job = s["jobId"].as_str().unwrap().to_string();
    wait_for_status(&home, &job, "completed").await;
    let request: String = db(&home)
        .query_row("SELECT status FROM requests", [], |r| r.get(0))
        .unwrap();
    assert_eq!(request, "completed");
    assert_no_open_request_of_an_ended_job(&home);
}
