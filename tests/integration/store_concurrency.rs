//! Several processes share one store file (storage.md: "nothing may assume a single writer
//! process").
//!
//! The parent test re-executes this test binary four times at once, each child running only
//! `child_worker` against the same fresh path (so the children also race to create the
//! directory, switch the file to WAL and migrate it). Each child admits, claims, runs and
//! finishes 50 jobs — some with request keys shared by all children, so dedup attaches
//! across processes — under run limits counted across the file, and creates sessions that
//! it makes active. The parent then checks that every row arrived and the invariants held.

use std::collections::{BTreeMap, HashMap};
use std::env;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::libtest_name;
use llm_cli_gateway::providers::Provider;
use llm_cli_gateway::store::{
    Admission, Claim, ClaimLimits, DedupPolicy, JobCompletion, JobFilter, JobStatus, NewJob,
    NewRequest, OpenRole, RequestFilter, RequestStatus, Runner, SessionBinding, Store,
    StoreOptions, Stream, SupervisorId, Usage,
};

const ENV_PATH: &str = "LLM_GATEWAY_STORE_TEST_DB";
const ENV_INDEX: &str = "LLM_GATEWAY_STORE_TEST_CHILD";
const CHILDREN: usize = 4;
const JOBS_PER_CHILD: usize = 50;
/// Every fifth job of every child uses a key all children share.
const SHARED_EVERY: usize = 5;
/// Fewer slots than children, so claims really wait for each other.
const LIMITS: ClaimLimits = ClaimLimits {
    max_running: 3,
    max_running_per_provider: 2,
    queue_timeout_ms: 60_000,
};
const OUTPUT: &[u8] = b"some output\n";

fn request_key(child: usize, i: usize) -> String {
    if i.is_multiple_of(SHARED_EVERY) {
        format!("shared-{i}")
    } else {
        format!("child{child}-job{i}")
    }
}

/// The worker a child process runs; does nothing when run directly by the test harness.
#[test]
fn child_worker() {
    let (Ok(path), Ok(index)) = (env::var(ENV_PATH), env::var(ENV_INDEX)) else {
        return;
    };
    let child: usize = index.parse().expect("child index");
    let store = Store::open(StoreOptions::new(&path, OpenRole::Server)).expect("open store");
    let me = SupervisorId {
        pid: i32::try_from(std::process::id()).expect("pid"),
        start_time: format!("child-{child}"),
    };
    let dedup = DedupPolicy {
        window_ms: 3_600_000,
        session_bound: false,
        force_refresh: false,
    };
    let mut session = None;

    for i in 0..JOBS_PER_CHILD {
        let cli = Provider::ALL[i % Provider::ALL.len()];
        if i.is_multiple_of(10) {
            // Children make sessions of different CLIs active, racing each other per CLI.
            let session_cli = Provider::ALL[(i / 10 + child) % Provider::ALL.len()];
            let created = store
                .create_session_blocking(session_cli, Some(format!("child {child}")), None, true)
                .expect("create session");
            session = Some(created);
        }
        let key = request_key(child, i);
        let job = NewJob {
            correlation_id: format!("c{child}-{i}"),
            request_key: key.clone(),
            cli,
            model: None,
            runner: Runner::Supervisor,
            program: cli.default_binary().to_string(),
            argv: vec!["<prompt sha256:x>".into()],
            env: BTreeMap::new(),
            cwd: None,
            session_id: None,
            idle_timeout_ms: None,
            timeout_ms: None,
        };
        let request = NewRequest::new(format!("c{child}-{i}"), cli, format!("prompt for {key}"));
        let job = match store
            .admit_job_blocking(job, request, dedup, 10_000)
            .expect("admit")
        {
            Admission::Admitted { deduped: true, .. } => continue,
            Admission::Admitted { job, .. } => job,
            Admission::Saturated { .. } => panic!("the queue limit is far away"),
        };

        let mut backoff = Duration::from_micros(200);
        loop {
            match store
                .claim_job_blocking(job.id.clone(), LIMITS, me.clone())
                .expect("claim")
            {
                Claim::Started(_) => break,
                Claim::Wait(_) => {
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
                other => panic!("unexpected claim answer {other:?}"),
            }
        }
        // Limits are counted across every process on the file.
        let counts = store.job_counts_blocking().expect("counts");
        let running: i64 = counts.iter().map(|c| c.running).sum();
        assert!(running <= i64::from(LIMITS.max_running), "{counts:?}");
        for c in &counts {
            assert!(
                c.running <= i64::from(LIMITS.max_running_per_provider),
                "{c:?}"
            );
        }

        store
            .append_output_blocking(job.id.clone(), Stream::Stdout, OUTPUT.to_vec())
            .expect("output");
        store
            .add_event_blocking(job.id.clone(), "started".into(), format!("child {child}"))
            .expect("event");
        store.heartbeat_blocking(job.id.clone()).expect("heartbeat");

        let mut completion = JobCompletion::ended(JobStatus::Completed);
        completion.exit_code = Some(0);
        completion.response = Some(format!("answer for {key}"));
        completion.provider_session_id = Some(format!("prov-{child}-{i}"));
        completion.usage = Usage {
            input_tokens: Some(1),
            ..Usage::default()
        };
        completion.session = session
            .as_ref()
            .filter(|s| s.cli == cli)
            .map(|s| SessionBinding {
                session_id: s.id.clone(),
                provider_session_id: None,
                cwd: None,
            });
        assert!(
            store
                .finish_job_blocking(job.id.clone(), completion)
                .expect("finish"),
            "only this process ends its job"
        );
    }
    println!("CHILD_DONE {child}");
}

fn wait_all(children: &mut [Child], limit: Duration) {
    let deadline = Instant::now() + limit;
    for child in children.iter_mut() {
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() > deadline {
                for c in children.iter_mut() {
                    let _ = c.kill();
                }
                panic!("a child did not finish within {limit:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn several_processes_share_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data").join("logs.db");
    let exe = env::current_exe().expect("test binary");

    let mut children: Vec<Child> = (0..CHILDREN)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    &libtest_name(module_path!(), "child_worker"),
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_PATH, &path)
                .env(ENV_INDEX, i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    wait_all(&mut children, Duration::from_secs(120));
    for (i, child) in children.iter_mut().enumerate() {
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success() && out.contains(&format!("CHILD_DONE {i}")),
            "child {i} failed ({status}):\n{out}\n{err}"
        );
    }

    check_file(&path);
}

fn check_file(path: &Path) {
    let store = Store::open(StoreOptions::new(path, OpenRole::Server)).expect("reopen");
    assert_eq!(store.journal_mode(), "wal");
    assert_eq!(
        store.schema_version(),
        llm_cli_gateway::store::SCHEMA_VERSION
    );

    let requests = store
        .list_requests_blocking(RequestFilter {
            cli: None,
            status: None,
            limit: 10_000,
        })
        .unwrap();
    assert_eq!(requests.len(), CHILDREN * JOBS_PER_CHILD);
    let open: Vec<_> = requests
        .iter()
        .filter(|r| matches!(r.status, RequestStatus::Started | RequestStatus::Deferred))
        .collect();
    assert!(open.is_empty(), "rows left open: {open:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.status == RequestStatus::Completed)
    );

    // One job per distinct key: the shared keys deduplicated across processes.
    let shared_keys = JOBS_PER_CHILD / SHARED_EVERY;
    let own_keys = CHILDREN * (JOBS_PER_CHILD - shared_keys);
    let jobs = store
        .list_jobs_blocking(JobFilter {
            status: None,
            cli: None,
            limit: 10_000,
            progress_limit: 5,
        })
        .unwrap();
    assert_eq!(jobs.len(), own_keys + shared_keys);
    let deduped = requests.iter().filter(|r| r.deduped).count();
    assert_eq!(deduped, CHILDREN * shared_keys - shared_keys);

    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for r in &requests {
        *per_job.entry(r.job_id.as_deref().unwrap()).or_default() += 1;
        let job = jobs
            .iter()
            .find(|j| Some(j.job.id.as_str()) == r.job_id.as_deref())
            .expect("every request row points at its job");
        assert_eq!(
            r.response.as_deref(),
            Some(format!("answer for {}", job.job.request_key).as_str())
        );
    }
    for view in &jobs {
        let job = &view.job;
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.stdout_bytes, OUTPUT.len() as i64);
        assert_eq!(view.progress.len(), 1);
        let expected = if job.request_key.starts_with("shared-") {
            CHILDREN
        } else {
            1
        };
        assert_eq!(per_job[job.id.as_str()], expected, "{}", job.request_key);
    }

    let sessions = store.list_sessions_blocking(None).unwrap();
    assert_eq!(sessions.len(), CHILDREN * JOBS_PER_CHILD / 10);
    for cli in Provider::ALL {
        let active = sessions
            .iter()
            .filter(|s| s.cli == cli && s.is_active)
            .count();
        assert!(active <= 1, "{cli}: {active} active sessions");
    }
    let bound_runs: i64 = sessions.iter().map(|s| s.request_count).sum();
    assert!(bound_runs > 0, "session bindings were applied");
}
