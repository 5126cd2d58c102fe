//! Supervised jobs through the real binary: a job outlives its server, and cancel reaches
//! the whole process group (grandchild and SIGTERM-ignoring CLI included).

use crate::common;

use std::time::{Duration, Instant};

use common::fake_cli::{self, knob};
use common::{TestHome, WAIT, call, ok};
use serde_json::json;

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

async fn wait_for_status(home: &TestHome, job: &str, wanted: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status: String = job_field(home, job, "status");
        if status == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} is {status}, never {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn parent_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The supervisor is detached as jobs.md asks: a session (and group) of its own, stdio on
/// /dev/null, and the pipe to the server that started it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_supervisor_runs_in_its_own_session_with_stdio_on_dev_null() {
    let mut home = TestHome::new();
    fake_cli::install_all(&home);
    home.set_env(knob::DELAY_MS, "800");
    let client = home.connect().await;
    let started = ok(call(
        &client,
        "claude_request_async",
        json!({"prompt": "detached"}),
    )
    .await);
    let job = started["jobId"].as_str().unwrap().to_string();
    wait_for_status(&home, &job, "running").await;
    let pid: i64 = job_field(&home, &job, "supervisor_pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After "pid (comm) ": state, ppid, pgrp, session.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[2], pid.to_string(), "process group: {stat}");
    assert_eq!(fields[3], pid.to_string(), "session: {stat}");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"), "fd {fd}");
    }
    let notices = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("pipe:"))
        .count();
    assert!(notices >= 1, "the notice pipe is open in the supervisor");
    wait_for_status(&home, &job, "completed").await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_job_survives_its_server_killed_with_sigkill() {
    let mut home = TestHome::new();
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    home.set_env(knob::DELAY_MS, "800");
    let client = home.connect().await;
    let started = ok(call(
        &client,
        "claude_request_async",
        json!({"prompt": "outlive"}),
    )
    .await);
    let job = started["jobId"].as_str().unwrap().to_string();
    wait_for_status(&home, &job, "running").await;
    let supervisor: i64 = job_field(&home, &job, "supervisor_pid");
    let server = parent_pid(supervisor as u32).expect("the supervisor's parent");
    assert!(fake_cli::send_signal(server as i32, libc::SIGKILL));
    assert!(fake_cli::wait_until_dead(server, WAIT));
    drop(client);

    wait_for_status(&home, &job, "completed").await;
    assert_eq!(fake_cli::recordings(&records).len(), 1);
    let pending: i64 = db(&home)
        .query_row(
            "SELECT count(*) FROM requests WHERE status NOT IN ('completed')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0);
    // A new server reads it: the identical request attaches to the completed job.
    let client = home.connect().await;
    let again = ok(call(&client, "claude_request", json!({"prompt": "outlive"})).await);
    assert_eq!(again["jobId"], job.as_str());
    assert_eq!(again["deduped"], true);
    assert!(!again["response"].as_str().unwrap().is_empty());
    assert_eq!(fake_cli::recordings(&records).len(), 1);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn cancel_kills_the_grandchild_and_a_cli_that_ignores_sigterm() {
    for runner in ["supervisor", "in-process"] {
        let mut home = TestHome::with_config(&format!(
            "[jobs]\nrunner = \"{runner}\"\nkill_grace_ms = 300\n"
        ));
        fake_cli::install_all(&home);
        let records = fake_cli::record_into(&mut home);
        home.set_env(knob::HANG, "1");
        home.set_env(knob::GRANDCHILD, "1");
        home.set_env(knob::IGNORE_TERM, "1");
        let client = home.connect().await;
        let started = ok(call(&client, "codex_request_async", json!({"prompt": "stop me"})).await);
        let job = started["jobId"].as_str().unwrap().to_string();
        let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
        let grandchild = fake_cli::grandchild_pid(&records, 1).expect("grandchild pid");
        assert!(fake_cli::process_alive(runs[0].pid));
        // The cancel flag as llm_job_cancel sets it; the runner polls it.
        db(&home)
            .execute(
                "UPDATE jobs SET cancel_requested_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
                [&job],
            )
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
        let category: String = job_field(&home, &job, "error_category");
        assert_eq!(category, "canceled");
        drop(client);
    }
}
