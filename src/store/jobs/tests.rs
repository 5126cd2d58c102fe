//! Tests of the job lifecycle: admission and dedup, claims, cancel, the terminal write,
//! orphans, session binding and the reads. Helpers here are shared with other tables' tests.

use super::*;
use crate::store::Store;
use crate::store::testing::store;
use crate::store::{NewRequest, RequestStatus, Stream};

pub(crate) const STATELESS: DedupPolicy = DedupPolicy {
    window_ms: 3_600_000,
    session_bound: false,
    force_refresh: false,
};
pub(crate) const ROOMY: ClaimLimits = ClaimLimits {
    max_running: 32,
    max_running_per_provider: 16,
    queue_timeout_ms: 120_000,
};

pub(crate) fn new_job(key: &str, cli: Provider) -> NewJob {
    NewJob {
        correlation_id: format!("corr-{key}"),
        request_key: key.to_string(),
        cli,
        model: None,
        runner: Runner::Supervisor,
        program: cli.default_binary().to_string(),
        argv: vec!["-p".into(), "<prompt sha256:abc>".into()],
        env: BTreeMap::new(),
        cwd: Some("/work".into()),
        session_id: None,
        idle_timeout_ms: Some(600_000),
        timeout_ms: None,
    }
}

pub(crate) fn me() -> SupervisorId {
    SupervisorId {
        pid: 4242,
        start_time: "boot+123".into(),
    }
}

/// Admits `key` for claude with a stateless policy; returns (job, request id, deduped).
pub(crate) fn admit_key(store: &Store, key: &str) -> (JobRow, String, bool) {
    admit_with(store, new_job(key, Provider::Claude), STATELESS)
}

pub(crate) fn admit_with(store: &Store, job: NewJob, dedup: DedupPolicy) -> (JobRow, String, bool) {
    let request = NewRequest::new(job.correlation_id.clone(), job.cli, "hello there");
    match store.admit_job_blocking(job, request, dedup, 128).unwrap() {
        Admission::Admitted {
            job,
            request_id,
            deduped,
        } => (*job, request_id, deduped),
        other => panic!("not admitted: {other:?}"),
    }
}

pub(crate) fn claim_now(store: &Store, id: &str, limits: ClaimLimits) -> Claim {
    store
        .claim_job_blocking(id.to_string(), limits, me())
        .unwrap()
}

fn completed(response: &str) -> JobCompletion {
    let mut c = JobCompletion::ended(JobStatus::Completed);
    c.exit_code = Some(0);
    c.end_reason = Some("exited".into());
    c.response = Some(response.to_string());
    c.provider_session_id = Some("prov-1".into());
    c.usage = Usage {
        input_tokens: Some(10),
        output_tokens: Some(5),
        cache_read_tokens: Some(3),
        cache_creation_tokens: None,
        reasoning_tokens: None,
        cost_usd: Some(0.25),
    };
    c.warnings = vec![Warning::new(
        "stray_processes_killed",
        "a grandchild was killed",
    )];
    c
}

fn request(store: &Store, id: &str) -> crate::store::RequestRow {
    store.get_request_blocking(id.to_string()).unwrap().unwrap()
}

fn job(store: &Store, id: &str) -> JobRow {
    store.get_job_blocking(id.to_string()).unwrap().unwrap()
}

#[test]
fn admission_inserts_a_queued_job_and_a_started_request() {
    let (_dir, store) = store();
    let (job, request_id, deduped) = admit_key(&store, "k1");
    assert!(!deduped);
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.cli, Provider::Claude);
    assert_eq!(job.argv, vec!["-p", "<prompt sha256:abc>"]);
    assert_eq!(job.created_at, job.queued_at);
    assert!(uuid::Uuid::parse_str(&job.id).unwrap().get_version_num() == 7);
    let row = request(&store, &request_id);
    assert_eq!(row.status, RequestStatus::Started);
    assert_eq!(row.job_id.as_deref(), Some(job.id.as_str()));
    assert!(!row.deduped);
}

#[test]
fn stateless_requests_attach_to_live_and_recently_completed_jobs() {
    let (_dir, store) = store();
    let (a, first, _) = admit_key(&store, "k");
    let (queued_twin, second, deduped) = admit_key(&store, "k");
    assert!(deduped);
    assert_eq!(queued_twin.id, a.id);

    assert!(matches!(claim_now(&store, &a.id, ROOMY), Claim::Started(_)));
    let (running_twin, third, deduped) = admit_key(&store, "k");
    assert!(deduped);
    assert_eq!(running_twin.id, a.id);
    assert_eq!(running_twin.status, JobStatus::Running);

    assert!(
        store
            .finish_job_blocking(a.id.clone(), completed("the answer"))
            .unwrap()
    );
    // Every attached row is completed by the one terminal write.
    for id in [&first, &second, &third] {
        let row = request(&store, id);
        assert_eq!(row.status, RequestStatus::Completed, "{id}");
        assert_eq!(row.response.as_deref(), Some("the answer"));
        assert_eq!(row.provider_session_id.as_deref(), Some("prov-1"));
        assert_eq!(row.exit_code, Some(0));
        assert!(row.completed_at.is_some() && row.duration_ms.is_some());
        assert_eq!(row.warnings.len(), 1);
    }
    // Usage is counted once: on the row that started the job.
    assert_eq!(request(&store, &first).usage.cost_usd, Some(0.25));
    assert_eq!(request(&store, &second).usage, Usage::default());

    // Completed within the window: attach, and the new row is complete at once.
    let (done_twin, fourth, deduped) = admit_key(&store, "k");
    assert!(deduped);
    assert_eq!(done_twin.status, JobStatus::Completed);
    let row = request(&store, &fourth);
    assert_eq!(row.status, RequestStatus::Completed);
    assert_eq!(row.response.as_deref(), Some("the answer"));

    // Outside the window: a new job.
    store
        .exec_raw("UPDATE jobs SET finished_at = '2000-01-01T00:00:00.000Z'")
        .unwrap();
    let (fresh, _, deduped) = admit_key(&store, "k");
    assert!(!deduped);
    assert_ne!(fresh.id, a.id);
}

#[test]
fn session_bound_requests_attach_only_to_live_jobs() {
    let (_dir, store) = store();
    let bound = DedupPolicy {
        session_bound: true,
        ..STATELESS
    };
    let (a, _, _) = admit_with(&store, new_job("s", Provider::Codex), bound);
    let (twin, _, deduped) = admit_with(&store, new_job("s", Provider::Codex), bound);
    assert!(deduped && twin.id == a.id);
    store
        .finish_job_blocking(a.id.clone(), completed("turn 1"))
        .unwrap();
    let (next_turn, _, deduped) = admit_with(&store, new_job("s", Provider::Codex), bound);
    assert!(!deduped, "a completed turn is never reused by a session");
    assert_ne!(next_turn.id, a.id);
}

#[test]
fn failed_canceled_orphaned_jobs_and_disabled_dedup_never_attach() {
    let (_dir, store) = store();
    let (failed, _, _) = admit_key(&store, "f");
    store
        .finish_job_blocking(failed.id.clone(), JobCompletion::ended(JobStatus::Failed))
        .unwrap();
    assert!(!admit_key(&store, "f").2);

    let (canceled, _, _) = admit_key(&store, "c");
    store.request_cancel_blocking(canceled.id.clone()).unwrap();
    assert!(!admit_key(&store, "c").2);

    let (orphaned, _, _) = admit_key(&store, "o");
    store
        .mark_orphaned_blocking(orphaned.id.clone(), "supervisor exited unexpectedly".into())
        .unwrap();
    assert!(!admit_key(&store, "o").2);

    // A running job whose cancel is pending is about to end canceled: no attach.
    let (ending, _, _) = admit_key(&store, "e");
    claim_now(&store, &ending.id, ROOMY);
    store.request_cancel_blocking(ending.id.clone()).unwrap();
    assert!(!admit_key(&store, "e").2);

    admit_key(&store, "w");
    let off = DedupPolicy {
        window_ms: 0,
        ..STATELESS
    };
    assert!(!admit_with(&store, new_job("w", Provider::Claude), off).2);
    let forced = DedupPolicy {
        force_refresh: true,
        ..STATELESS
    };
    assert!(!admit_with(&store, new_job("w", Provider::Claude), forced).2);
}

#[test]
fn a_full_queue_saturates_but_attaching_still_works() {
    let (_dir, store) = store();
    let admit = |key: &str| {
        let job = new_job(key, Provider::Gemini);
        let request = NewRequest::new("c", Provider::Gemini, "p");
        store
            .admit_job_blocking(job, request, STATELESS, 2)
            .unwrap()
    };
    assert!(matches!(admit("a"), Admission::Admitted { .. }));
    assert!(matches!(admit("b"), Admission::Admitted { .. }));
    assert!(matches!(
        admit("c"),
        Admission::Saturated {
            queued: 2,
            max_queued: 2
        }
    ));
    assert_eq!(store.query_i64("SELECT count(*) FROM jobs"), 2);
    assert_eq!(store.query_i64("SELECT count(*) FROM requests"), 2);
    assert!(matches!(
        admit("a"),
        Admission::Admitted { deduped: true, .. }
    ));
}

#[test]
fn the_first_terminal_write_wins() {
    let (_dir, store) = store();
    let (a, request_id, _) = admit_key(&store, "k");
    claim_now(&store, &a.id, ROOMY);
    assert!(
        store
            .finish_job_blocking(a.id.clone(), completed("first"))
            .unwrap()
    );
    let mut late = JobCompletion::ended(JobStatus::Failed);
    late.error = Some("too late".into());
    assert!(!store.finish_job_blocking(a.id.clone(), late).unwrap());
    assert!(
        !store
            .mark_orphaned_blocking(a.id.clone(), "gone".into())
            .unwrap()
    );
    let after = job(&store, &a.id);
    assert_eq!(after.status, JobStatus::Completed);
    assert_eq!(after.error, None);
    // Retention in force at the end (30 days by default) dates the row's expiry.
    assert!(after.expires_at.as_deref() > after.finished_at.as_deref());
    assert_eq!(
        request(&store, &request_id).status,
        RequestStatus::Completed
    );
    let window = store
        .read_response_blocking(a.id.clone(), 0, 100)
        .unwrap()
        .unwrap();
    assert_eq!(window.text.as_deref(), Some("first"));

    let err = store
        .finish_job_blocking("nope".into(), completed("x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownJob(_)));
    let err = store
        .finish_job_blocking(a.id.clone(), JobCompletion::ended(JobStatus::Running))
        .unwrap_err();
    assert!(err.to_string().contains("not terminal"), "{err}");
}

#[test]
fn claims_respect_the_run_limit_and_creation_order() {
    let (_dir, store) = store();
    let one = ClaimLimits {
        max_running: 1,
        ..ROOMY
    };
    let (a, _, _) = admit_key(&store, "a");
    let (b, _, _) = admit_key(&store, "b");
    assert_eq!(
        match claim_now(&store, &b.id, one) {
            Claim::Wait(reason) => reason,
            other => panic!("{other:?}"),
        },
        WaitReason::OlderJobFirst {
            job_id: a.id.clone()
        }
    );
    let Claim::Started(started) = claim_now(&store, &a.id, one) else {
        panic!("a should start");
    };
    assert_eq!(started.status, JobStatus::Running);
    assert_eq!(started.supervisor_pid, Some(4242));
    assert_eq!(started.supervisor_start_time.as_deref(), Some("boot+123"));
    assert!(started.started_at.is_some() && started.heartbeat_at.is_some());
    assert!(matches!(
        claim_now(&store, &a.id, one),
        Claim::AlreadyRunning
    ));
    assert!(matches!(
        claim_now(&store, &b.id, one),
        Claim::Wait(WaitReason::RunLimit { running: 1, max: 1 })
    ));
    store
        .finish_job_blocking(a.id.clone(), completed("done"))
        .unwrap();
    assert!(matches!(claim_now(&store, &b.id, one), Claim::Started(_)));
    assert!(matches!(
        claim_now(&store, &a.id, one),
        Claim::AlreadyTerminal(JobStatus::Completed)
    ));
    let err = store
        .claim_job_blocking("missing".into(), one, me())
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownJob(_)));
}

#[test]
fn a_provider_at_its_limit_does_not_hold_back_other_providers() {
    let (_dir, store) = store();
    let per_one = ClaimLimits {
        max_running_per_provider: 1,
        ..ROOMY
    };
    let (running, _, _) = admit_key(&store, "r");
    claim_now(&store, &running.id, per_one);
    let (older_claude, _, _) = admit_key(&store, "c");
    let (codex, _, _) = admit_with(&store, new_job("x", Provider::Codex), STATELESS);
    assert!(matches!(
        claim_now(&store, &older_claude.id, per_one),
        Claim::Wait(WaitReason::ProviderLimit { running: 1, max: 1 })
    ));
    assert!(matches!(
        claim_now(&store, &codex.id, per_one),
        Claim::Started(_)
    ));
}

#[test]
fn older_queued_jobs_reserve_slots_but_do_not_block_when_there_is_room() {
    let (_dir, store) = store();
    let two = ClaimLimits {
        max_running: 2,
        ..ROOMY
    };
    let (a, _, _) = admit_key(&store, "a");
    let (b, _, _) = admit_key(&store, "b");
    let (c, _, _) = admit_key(&store, "c");
    // Room for the older `a` and for `b`: `b` does not wait for `a`'s claimer.
    assert!(matches!(claim_now(&store, &b.id, two), Claim::Started(_)));
    // Now `a` holds the last slot: the younger `c` waits behind it.
    assert!(matches!(
        claim_now(&store, &c.id, two),
        Claim::Wait(WaitReason::OlderJobFirst { .. })
    ));
    assert!(matches!(claim_now(&store, &a.id, two), Claim::Started(_)));
    assert!(matches!(
        claim_now(&store, &c.id, two),
        Claim::Wait(WaitReason::RunLimit { .. })
    ));
}

#[test]
fn a_silent_older_queued_job_does_not_block_the_queue() {
    let (_dir, store) = store();
    let (dead, _, _) = admit_key(&store, "dead");
    let (live, _, _) = admit_key(&store, "live");
    store
        .exec_raw(&format!(
            "UPDATE jobs SET created_at = '2000-01-01T00:00:00.000Z', \
             queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
            dead.id
        ))
        .unwrap();
    assert!(matches!(
        claim_now(&store, &live.id, ROOMY),
        Claim::Started(_)
    ));
}

#[test]
fn a_job_waiting_too_long_fails_with_queue_timeout() {
    let (_dir, store) = store();
    let (a, request_id, _) = admit_key(&store, "a");
    store
        .exec_raw("UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z'")
        .unwrap();
    assert!(matches!(
        claim_now(&store, &a.id, ROOMY),
        Claim::QueueTimedOut
    ));
    let failed = job(&store, &a.id);
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error_category.as_deref(), Some("queue_timeout"));
    assert!(failed.error.unwrap().contains("queue_timeout_ms = 120000"));
    let row = request(&store, &request_id);
    assert_eq!(row.status, RequestStatus::Failed);
    assert_eq!(row.error_category.as_deref(), Some("queue_timeout"));

    // 0 = no queue timeout.
    let (b, _, _) = admit_key(&store, "b");
    store
        .exec_raw(&format!(
            "UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
            b.id
        ))
        .unwrap();
    let patient = ClaimLimits {
        queue_timeout_ms: 0,
        ..ROOMY
    };
    assert!(matches!(
        claim_now(&store, &b.id, patient),
        Claim::Started(_)
    ));
}

#[test]
fn turns_of_one_session_never_overlap_and_that_wait_is_free() {
    let (_dir, store) = store();
    let with_session = |key: &str| {
        let mut job = new_job(key, Provider::Claude);
        job.session_id = Some("gw-session".into());
        admit_with(&store, job, STATELESS).0
    };
    let first = with_session("t1");
    let second = with_session("t2");
    assert!(matches!(
        claim_now(&store, &second.id, ROOMY),
        Claim::Wait(WaitReason::SessionBusy { .. })
    ));
    assert!(matches!(
        claim_now(&store, &first.id, ROOMY),
        Claim::Started(_)
    ));
    store
        .exec_raw(&format!(
            "UPDATE jobs SET queued_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
            second.id
        ))
        .unwrap();
    let Claim::Wait(WaitReason::SessionBusy { session_id }) = claim_now(&store, &second.id, ROOMY)
    else {
        panic!("the second turn waits for the first");
    };
    assert_eq!(session_id, "gw-session");
    // The queue clock restarted while waiting for the session.
    assert!(job(&store, &second.id).queued_at.as_str() > "2001");
    store
        .finish_job_blocking(first.id.clone(), completed("one"))
        .unwrap();
    assert!(matches!(
        claim_now(&store, &second.id, ROOMY),
        Claim::Started(_)
    ));
}

#[test]
fn cancel_of_queued_running_and_finished_jobs() {
    let (_dir, store) = store();
    let (queued, request_id, _) = admit_key(&store, "q");
    assert_eq!(
        store.request_cancel_blocking(queued.id.clone()).unwrap(),
        CancelOutcome::Canceled
    );
    let canceled = job(&store, &queued.id);
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert!(canceled.cancel_requested_at.is_some() && canceled.finished_at.is_some());
    assert_eq!(request(&store, &request_id).status, RequestStatus::Canceled);
    assert!(matches!(
        claim_now(&store, &queued.id, ROOMY),
        Claim::Canceled
    ));

    let (running, _, _) = admit_key(&store, "r");
    claim_now(&store, &running.id, ROOMY);
    assert!(
        !store
            .is_cancel_requested_blocking(running.id.clone())
            .unwrap()
    );
    assert_eq!(
        store.request_cancel_blocking(running.id.clone()).unwrap(),
        CancelOutcome::Requested
    );
    assert_eq!(
        store.request_cancel_blocking(running.id.clone()).unwrap(),
        CancelOutcome::Requested
    );
    assert!(
        store
            .is_cancel_requested_blocking(running.id.clone())
            .unwrap()
    );
    let liveness = store.heartbeat_blocking(running.id.clone()).unwrap();
    assert_eq!(
        liveness,
        JobLiveness {
            status: JobStatus::Running,
            cancel_requested: true
        }
    );
    let mut end = JobCompletion::ended(JobStatus::Canceled);
    end.end_reason = Some("canceled".into());
    assert!(store.finish_job_blocking(running.id.clone(), end).unwrap());
    assert_eq!(
        store.request_cancel_blocking(running.id.clone()).unwrap(),
        CancelOutcome::AlreadyFinished(JobStatus::Canceled)
    );
    assert_eq!(
        store.request_cancel_blocking("nope".into()).unwrap(),
        CancelOutcome::NotFound
    );
}

#[test]
fn orphans_keep_partial_output_and_provider_session() {
    let (_dir, store) = store();
    let (a, request_id, _) = admit_key(&store, "a");
    claim_now(&store, &a.id, ROOMY);
    store
        .append_output_blocking(a.id.clone(), Stream::Stdout, b"partial".to_vec())
        .unwrap();
    assert!(
        store
            .set_job_provider_session_blocking(a.id.clone(), "prov-9".into())
            .unwrap()
    );
    assert!(
        store
            .set_job_process_group_blocking(a.id.clone(), 777, "boot+9".into())
            .unwrap()
    );
    let active = store.active_jobs_blocking().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].pgid, Some(777));
    assert_eq!(active[0].supervisor_pid, Some(4242));

    assert!(
        store
            .mark_orphaned_blocking(a.id.clone(), "supervisor exited unexpectedly".into())
            .unwrap()
    );
    let orphan = job(&store, &a.id);
    assert_eq!(orphan.status, JobStatus::Orphaned);
    assert_eq!(
        orphan.error.as_deref(),
        Some("supervisor exited unexpectedly")
    );
    assert_eq!(orphan.provider_session_id.as_deref(), Some("prov-9"));
    assert_eq!(orphan.stdout_bytes, 7);
    let out = store
        .read_output_blocking(a.id.clone(), Stream::Stdout, 0, 100)
        .unwrap();
    assert_eq!(out.data, b"partial");
    let row = request(&store, &request_id);
    assert_eq!(row.status, RequestStatus::Orphaned);
    assert_eq!(row.provider_session_id.as_deref(), Some("prov-9"));
    assert!(store.active_jobs_blocking().unwrap().is_empty());
    // A terminal job takes no further provider session id.
    assert!(
        !store
            .set_job_provider_session_blocking(a.id.clone(), "later".into())
            .unwrap()
    );
}

#[test]
fn finishing_binds_the_session_and_adds_its_totals() {
    let (_dir, store) = store();
    let session = store
        .create_session_blocking(Provider::Claude, Some("work".into()), None, true)
        .unwrap();
    let run = |key: &str, completion: JobCompletion| {
        let mut job = new_job(key, Provider::Claude);
        job.session_id = Some(session.id.clone());
        let (job, _, _) = admit_with(&store, job, STATELESS);
        claim_now(&store, &job.id, ROOMY);
        let mut completion = completion;
        completion.session = Some(SessionBinding {
            session_id: session.id.clone(),
            provider_session_id: None,
            cwd: Some("/repo".into()),
        });
        store.finish_job_blocking(job.id, completion).unwrap();
    };
    run("t1", completed("hi"));
    let bound = store
        .get_session_blocking(session.id.clone())
        .unwrap()
        .unwrap();
    assert_eq!(bound.provider_session_id.as_deref(), Some("prov-1"));
    assert_eq!(bound.cwd.as_deref(), Some("/repo"));
    assert_eq!(bound.request_count, 1);
    assert_eq!(bound.input_tokens, 10);
    assert!((bound.cost_usd - 0.25).abs() < 1e-9);

    let mut failed = JobCompletion::ended(JobStatus::Failed);
    failed.provider_session_id = Some("prov-broken".into());
    failed.usage.input_tokens = Some(4);
    run("t2", failed);
    let after = store.get_session_blocking(session.id).unwrap().unwrap();
    assert_eq!(after.provider_session_id.as_deref(), Some("prov-1"));
    assert_eq!(after.request_count, 2);
    assert_eq!(after.input_tokens, 14);
}

#[test]
fn reads_list_count_and_window_jobs() {
    let (_dir, store) = store();
    let (a, _, _) = admit_key(&store, "a");
    let (b, _, _) = admit_with(&store, new_job("b", Provider::Codex), STATELESS);
    let (c, _, _) = admit_key(&store, "c");
    claim_now(&store, &a.id, ROOMY);
    store
        .add_event_blocking(a.id.clone(), "started".into(), "model sonnet".into())
        .unwrap();
    store
        .finish_job_blocking(a.id.clone(), completed("0123456789"))
        .unwrap();
    store
        .mark_orphaned_blocking(c.id.clone(), "gone".into())
        .unwrap();

    let all = store
        .list_jobs_blocking(JobFilter {
            status: None,
            cli: None,
            limit: 10,
            progress_limit: 20,
        })
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|v| v.job.id.as_str()).collect();
    assert_eq!(ids, vec![c.id.as_str(), b.id.as_str(), a.id.as_str()]);
    assert_eq!(all[2].progress.len(), 1);
    assert!(all[2].job.duration_ms.is_some());
    assert_eq!(all[2].job.response_chars, Some(10));

    let codex = store
        .list_jobs_blocking(JobFilter {
            status: Some(JobStatus::Queued),
            cli: Some(Provider::Codex),
            limit: 10,
            progress_limit: 0,
        })
        .unwrap();
    assert_eq!(codex.len(), 1);
    assert_eq!(codex[0].job.id, b.id);

    let counts = store.job_counts_blocking().unwrap();
    assert_eq!(counts.len(), Provider::ALL.len());
    let claude = counts.iter().find(|c| c.cli == Provider::Claude).unwrap();
    assert_eq!((claude.queued, claude.running, claude.orphaned), (0, 0, 1));
    let codex = counts.iter().find(|c| c.cli == Provider::Codex).unwrap();
    assert_eq!(codex.queued, 1);

    let view = store.job_view_blocking(a.id.clone(), 5).unwrap().unwrap();
    assert_eq!(view.progress[0].kind, "started");
    assert!(store.job_view_blocking("x".into(), 5).unwrap().is_none());

    let w = store
        .read_response_blocking(a.id.clone(), 4, 3)
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.text.as_deref(), w.offset, w.total_chars, w.next_offset),
        (Some("456"), 4, 10, Some(7))
    );
    let last = store
        .read_response_blocking(a.id.clone(), 7, 100)
        .unwrap()
        .unwrap();
    assert_eq!(
        (last.text.as_deref(), last.next_offset),
        (Some("789"), None)
    );
    let none = store
        .read_response_blocking(b.id.clone(), 0, 100)
        .unwrap()
        .unwrap();
    assert_eq!((none.text, none.total_chars), (None, 0));
}

/// Windows are read straight from the stored value in 64 KiB steps: multi-byte characters
/// that straddle a step, windows past the end and empty windows must match `substr`.
#[test]
fn answer_windows_count_characters_across_read_steps() {
    let (_dir, store) = store();
    let (a, _, _) = admit_key(&store, "a");
    claim_now(&store, &a.id, ROOMY);
    // 1-, 2-, 3- and 4-byte characters, over several 64 KiB read steps.
    let answer: String = "aé€😀".repeat(20_000);
    store
        .finish_job_blocking(a.id.clone(), completed(&answer))
        .unwrap();
    let chars: Vec<char> = answer.chars().collect();
    let total = chars.len() as u64;
    let expected = |from: u64, take: u64| -> String {
        let end = from.saturating_add(take).min(total);
        chars[from.min(total) as usize..end as usize]
            .iter()
            .collect()
    };
    for (from, take) in [
        (0, 5),
        (1, 3),
        (16_383, 7),
        (16_384, 40_000),
        (50_001, 1),
        (total - 2, 10),
        (total, 5),
        (total + 10, 5),
        (3, 0),
        (0, u64::MAX / 2),
    ] {
        let w = store
            .read_response_blocking(a.id.clone(), from, take)
            .unwrap()
            .unwrap();
        assert_eq!(
            w.text.as_deref(),
            Some(expected(from, take).as_str()),
            "window {from}+{take}"
        );
        assert_eq!(w.total_chars, total as i64);
    }
}

#[test]
fn argv_and_env_are_recorded_with_secret_shapes_redacted() {
    let (_dir, store) = store();
    let mut job = new_job("k", Provider::Grok);
    job.argv
        .push("--api-key=xai-0123456789abcdefABCDEFghij".into());
    job.env.insert(
        "XAI_API_KEY".into(),
        "xai-0123456789abcdefABCDEFghij".into(),
    );
    let (row, _, _) = admit_with(&store, job, STATELESS);
    assert_eq!(row.argv[2], "--api-key=[REDACTED:xai_key]");
    assert_eq!(row.env["XAI_API_KEY"], "[REDACTED:xai_key]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_api_runs_a_job_end_to_end() {
    let (_dir, store) = store();
    let request = NewRequest::new("corr", Provider::Claude, "async prompt");
    let Admission::Admitted {
        job, request_id, ..
    } = store
        .admit_job(new_job("k", Provider::Claude), request, STATELESS, 128)
        .await
        .unwrap()
    else {
        panic!("admitted");
    };
    let Claim::Started(running) = store.claim_job(job.id.clone(), ROOMY, me()).await.unwrap()
    else {
        panic!("started");
    };
    assert_eq!(running.status, JobStatus::Running);
    store
        .record_activity(job.id.clone(), Utc::now())
        .await
        .unwrap();
    assert!(
        store
            .finish_job(job.id.clone(), completed("ok"))
            .await
            .unwrap()
    );
    let row = store.get_request(request_id).await.unwrap().unwrap();
    assert_eq!(row.status, RequestStatus::Completed);
    assert!(
        store
            .get_job(job.id)
            .await
            .unwrap()
            .unwrap()
            .last_activity_at
            .is_some()
    );
}

#[test]
fn job_lists_stop_after_their_limit_when_every_job_has_the_same_created_at() {
    let (_dir, store) = store();
    admit_key(&store, "seed");
    // The benchmark's seed in small: copies with distinct ids and one shared created_at.
    store.clone_first_row("jobs", 300, &["id", "correlation_id", "request_key"]);
    let newest: Vec<String> = store
        .list_jobs_blocking(JobFilter {
            status: Some(JobStatus::Queued),
            cli: None,
            limit: 5,
            progress_limit: 0,
        })
        .unwrap()
        .into_iter()
        .map(|v| v.job.id)
        .collect();
    let by_id = store
        .read_blocking(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM jobs ORDER BY id DESC LIMIT 5")?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            Ok(ids.collect::<Result<Vec<String>, _>>()?)
        })
        .unwrap();
    assert_eq!(newest, by_id, "ties are broken by id, newest first");

    let select = format!("SELECT {JOB_COLUMNS} FROM jobs");
    for analyzed in [false, true] {
        if analyzed {
            store.exec_raw("ANALYZE").unwrap();
        }
        for (status, cli, index) in [
            (None, None, "jobs_by_created_id"),
            (
                Some(JobStatus::Completed),
                None,
                "jobs_by_status_created_id",
            ),
            (None, Some(Provider::Codex), "jobs_by_cli_created_id"),
            // Both filters: either index keeps the order; the other filter is checked per row.
            (
                Some(JobStatus::Queued),
                Some(Provider::Claude),
                "_created_id",
            ),
        ] {
            let filter = JobFilter {
                status,
                cli,
                limit: 20,
                progress_limit: 0,
            };
            let plan = store
                .read_blocking(|conn| {
                    Ok(reads::list_query(&filter).plan(conn, &select, reads::LIST_ORDER))
                })
                .unwrap();
            crate::store::testing::assert_plan_uses(&plan, "jobs", index);
        }
    }
}

#[test]
fn the_usage_baseline_looks_only_at_the_provider_session() {
    let (_dir, store) = store();
    let plan = store
        .read_blocking(|conn| {
            Ok(crate::store::testing::query_plan(
                conn,
                reads::USAGE_BASELINE_SQL,
                rusqlite::params!["claude", "prov-1"],
            ))
        })
        .unwrap();
    assert!(plan.contains("jobs_by_provider_session"), "{plan}");
}

/// An answer over [`finish::BLOB_RESPONSE_MIN_BYTES`] is stored as a BLOB of its UTF-8
/// bytes, and every reader gives it back as the same text: windows, the dedup answer of a
/// twin, SQL's `CAST(response AS TEXT)`, the job row. The first terminal write still wins.
#[test]
fn a_big_answer_is_a_blob_that_reads_back_as_its_text() {
    let (_dir, store) = store();
    let (a, first, _) = admit_key(&store, "big");
    claim_now(&store, &a.id, ROOMY);
    let answer: String = "aé€😀".repeat(150_000);
    assert!(answer.len() > finish::BLOB_RESPONSE_MIN_BYTES);
    assert!(
        store
            .finish_job_blocking(a.id.clone(), completed(&answer))
            .unwrap()
    );
    assert!(
        !store
            .finish_job_blocking(a.id.clone(), completed("a late second answer"))
            .unwrap()
    );
    assert_eq!(
        store.query_i64("SELECT typeof(response) = 'blob' FROM jobs"),
        1
    );
    let chars = answer.chars().count();
    assert_eq!(
        store.query_i64("SELECT length(CAST(response AS TEXT)) FROM jobs"),
        chars as i64
    );
    assert_eq!(job(&store, &a.id).response_chars, Some(chars as i64));
    let mut paged = String::new();
    let mut offset = 0;
    loop {
        let w = store
            .read_response_blocking(a.id.clone(), offset, 100_000)
            .unwrap()
            .unwrap();
        paged.push_str(w.text.as_deref().unwrap());
        match w.next_offset {
            Some(next) => offset = next as u64,
            None => break,
        }
    }
    assert!(paged == answer, "paged back intact");
    // A twin attaching to the completed job gets the same recorded answer as the original.
    let (twin, fourth, deduped) = admit_key(&store, "big");
    assert!(deduped);
    assert_eq!(twin.id, a.id);
    let (original, attached) = (request(&store, &first), request(&store, &fourth));
    assert_eq!(attached.status, RequestStatus::Completed);
    assert!(attached.response_truncated);
    assert_eq!(attached.response_chars, Some(chars as i64));
    assert_eq!(attached.response_sha256, original.response_sha256);
    assert!(attached.response == original.response);
    assert_eq!(
        store.query_i64("SELECT count(*) FROM requests WHERE typeof(response) = 'text'"),
        2
    );
}

#[test]
fn a_small_answer_stays_text() {
    let (_dir, store) = store();
    let (a, _, _) = admit_key(&store, "small");
    claim_now(&store, &a.id, ROOMY);
    let answer = "x".repeat(finish::BLOB_RESPONSE_MIN_BYTES - 1);
    store
        .finish_job_blocking(a.id.clone(), completed(&answer))
        .unwrap();
    assert_eq!(
        store.query_i64("SELECT typeof(response) = 'text' FROM jobs"),
        1
    );
}
