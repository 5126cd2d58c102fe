//! Process-level job control, shared by the MCP server's job tools and the command line:
//! whether a job's runner is still the process it was, orphan detection (with the group
//! kill of an orphan's CLI), and cancel with a signal that wakes the supervisor at once.
//!
//! Owns reading a process's identity — its pid plus its start time, so a reused pid is never
//! taken for ours (Linux `/proc/<pid>/stat`, macOS `proc_pidinfo`; never a bare
//! `kill(pid, 0)`) — and every signal the gateway sends to a process it did not spawn in this
//! process. Not here: SQL (the store records the verdicts, [`Store::mark_orphaned`] and
//! [`Store::request_cancel`]), the executor's own group kill of a CLI it runs (`exec`), and
//! MCP shaping (`mcp::job_tools`).
//!
//! Everything here is synchronous and may block briefly (a `/proc` read, store calls through
//! the blocking API): async callers run it in `tokio::task::spawn_blocking`.
//!
//! The start time is an opaque token compared for equality. Runners record their own with
//! [`process_start_time`] (`std::process::id()`), and the executor records the CLI group
//! leader's the same way, so both sides always use this one format: on Linux the decimal
//! `starttime` field of `/proc/<pid>/stat` (clock ticks since boot), on macOS
//! `<seconds>.<microseconds>` of the process start. On other Unix systems identity cannot be
//! read; [`detect_orphans`] then judges nothing (no job is ever orphaned by mistake) and
//! cancel relies on the runner polling its cancel flag.

use chrono::{DateTime, Duration, Utc};

use crate::store::{ActiveJob, JobRow, JobStatus, Runner, Store, StoreError};

/// A runner that has not refreshed `heartbeat_at` for this long, and whose process is gone,
/// has left its job orphaned. Supervisors heartbeat every 2 s, so 10 s is five missed beats.
pub const HEARTBEAT_STALE_MS: i64 = 10_000;

/// Hidden, for the integration tests only (not a setting): overrides
/// [`HEARTBEAT_STALE_MS`] so a test of a killed supervisor need not wait 10 s. Unset, empty
/// or not a positive number = the default.
pub const HEARTBEAT_STALE_MS_TEST_VAR: &str = "LLM_GATEWAY_TEST_HEARTBEAT_STALE_MS";

/// The staleness in force: [`HEARTBEAT_STALE_MS`] unless the hidden test variable says
/// otherwise (read once per process).
pub fn heartbeat_stale_ms() -> i64 {
    static STALE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STALE.get_or_init(|| {
        std::env::var(HEARTBEAT_STALE_MS_TEST_VAR)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|ms| *ms > 0)
            .unwrap_or(HEARTBEAT_STALE_MS)
    })
}

/// The reason an orphaned job carries (jobs.md).
pub const ORPHAN_REASON: &str = "supervisor exited unexpectedly";

/// Whether this platform can read a process's identity (pid + start time).
pub const IDENTITY_SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "macos"));

/// A job that orphan detection just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphaned {
    pub job_id: String,
    /// Whether the job's CLI process group got `SIGKILL` (its leader was verifiably still
    /// that process, or a zombie of it).
    pub group_killed: bool,
}

/// The answer of [`cancel_job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was queued and is now `canceled`.
    Canceled,
    /// The job runs; its cancel flag is set and its runner will kill the CLI group.
    /// `supervisor_signaled`: a `SIGTERM` reached the supervisor (verified by start time),
    /// so it reacts at once instead of at its next poll of the flag.
    Requested {
        supervisor_signaled: bool,
    },
    /// The job had already ended (or was just found orphaned); nothing changed.
    AlreadyFinished(JobStatus),
    NotFound,
}

/// What `/proc` (or `proc_pidinfo`) says about one pid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcInfo {
    start_time: String,
    /// Exited but not yet reaped: dead as a runner, but it still holds its pid and process
    /// group id, so a group kill through it cannot hit a stranger.
    zombie: bool,
}

/// The start time of a live process, as runners record it; `None` when there is no such
/// process, it is a zombie (it has exited; only its entry waits to be reaped), or the
/// platform cannot tell.
pub fn process_start_time(pid: i32) -> Option<String> {
    inspect(pid)
        .filter(|info| !info.zombie)
        .map(|info| info.start_time)
}

/// This process's start-time token, recorded by runners with their pid. Where the OS offers
/// no identity it is `pid:<pid>` (stable for the process's lifetime; orphan detection is off
/// there anyway, see [`IDENTITY_SUPPORTED`]).
pub fn own_start_time() -> String {
    let pid = std::process::id();
    i32::try_from(pid)
        .ok()
        .and_then(process_start_time)
        .unwrap_or_else(|| format!("pid:{pid}"))
}

/// True when `pid` is a live process that started at `recorded_start_time`: the same process
/// that recorded it, not a later one that was given the same pid.
pub fn supervisor_alive(pid: i32, recorded_start_time: &str) -> bool {
    process_start_time(pid).is_some_and(|now| now == recorded_start_time)
}

/// Checks every queued or running job and ends those whose runner is gone as `orphaned`
/// (rule on [`refresh_job`]). Call at server startup and before listing jobs. Returns the
/// jobs it ended.
pub fn detect_orphans(store: &Store) -> Result<Vec<Orphaned>, StoreError> {
    if !IDENTITY_SUPPORTED {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let mut ended = Vec::new();
    for job in store.active_jobs_blocking()? {
        if let Some(orphaned) = settle(store, &RunnerFacts::from_active(&job), now)? {
            ended.push(orphaned);
        }
    }
    Ok(ended)
}

/// Orphan detection for one job, run before every read of its status: a `running` job, or a
/// `queued` one whose runner already recorded itself, becomes `orphaned` when its runner's
/// pid is dead, a zombie or reused (start time differs) **and** its heartbeat is older than
/// [`HEARTBEAT_STALE_MS`]. Its CLI's process group gets `SIGKILL` first, only if the group
/// leader's start time still matches the recorded one (otherwise no signal at all). Jobs of
/// the `in-process` runner are judged the same way: their recorded process is the server
/// that ran them. `Ok(None)` when nothing changed (or the job does not exist).
pub fn refresh_job(store: &Store, job_id: &str) -> Result<Option<Orphaned>, StoreError> {
    if !IDENTITY_SUPPORTED {
        return Ok(None);
    }
    match store.get_job_blocking(job_id.to_string())? {
        Some(job) => settle(store, &RunnerFacts::from_row(&job), Utc::now()),
        None => Ok(None),
    }
}

/// Cancels a job: a queued one ends `canceled` at once; a running one gets its cancel flag
/// set and — when a supervisor runs it and is verifiably still that process — a `SIGTERM`,
/// so it kills the CLI group now rather than at its next poll. A job whose runner is gone is
/// first found orphaned (so a cancel never waits on a runner that will not come back).
/// An in-process job is never signaled: its process is the server itself; it polls the flag.
pub fn cancel_job(store: &Store, job_id: &str) -> Result<CancelOutcome, StoreError> {
    refresh_job(store, job_id)?;
    Ok(match store.request_cancel_blocking(job_id.to_string())? {
        crate::store::CancelOutcome::Canceled => CancelOutcome::Canceled,
        crate::store::CancelOutcome::AlreadyFinished(status) => {
            CancelOutcome::AlreadyFinished(status)
        }
        crate::store::CancelOutcome::NotFound => CancelOutcome::NotFound,
        crate::store::CancelOutcome::Requested => {
            let supervisor_signaled = store
                .get_job_blocking(job_id.to_string())?
                .is_some_and(|job| signal_supervisor(&job));
            CancelOutcome::Requested {
                supervisor_signaled,
            }
        }
    })
}

/// What orphan detection needs to know about a job, from either of the store's row shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunnerFacts<'a> {
    id: &'a str,
    status: JobStatus,
    supervisor_pid: Option<i32>,
    supervisor_start_time: Option<&'a str>,
    /// `heartbeat_at`, else the newest earlier sign of life the row has.
    last_sign_of_life: &'a str,
    pgid: Option<i32>,
    pgid_start_time: Option<&'a str>,
}

impl<'a> RunnerFacts<'a> {
    fn from_active(job: &'a ActiveJob) -> Self {
        RunnerFacts {
            id: &job.id,
            status: job.status,
            supervisor_pid: job.supervisor_pid,
            supervisor_start_time: job.supervisor_start_time.as_deref(),
            last_sign_of_life: job.heartbeat_at.as_deref().unwrap_or(&job.created_at),
            pgid: job.pgid,
            pgid_start_time: job.pgid_start_time.as_deref(),
        }
    }

    fn from_row(job: &'a JobRow) -> Self {
        RunnerFacts {
            id: &job.id,
            status: job.status,
            supervisor_pid: job.supervisor_pid,
            supervisor_start_time: job.supervisor_start_time.as_deref(),
            last_sign_of_life: job
                .heartbeat_at
                .as_deref()
                .or(job.started_at.as_deref())
                .unwrap_or(&job.created_at),
            pgid: job.pgid,
            pgid_start_time: job.pgid_start_time.as_deref(),
        }
    }
}

/// Ends the job as orphaned when its runner is gone; the group kill comes first, so the
/// CLI cannot go on writing files after its job already reads as ended.
fn settle(
    store: &Store,
    facts: &RunnerFacts<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Orphaned>, StoreError> {
    if !runner_gone(facts, now, &inspect) {
        return Ok(None);
    }
    let group_killed = kill_group(facts.pgid, facts.pgid_start_time);
    if !store.mark_orphaned_blocking(facts.id.to_string(), ORPHAN_REASON.to_string())? {
        // Another process (or the runner's own last write) ended it first.
        return Ok(None);
    }
    tracing::warn!(
        job_id = facts.id,
        supervisor_pid = facts.supervisor_pid,
        pgid = facts.pgid,
        group_killed,
        "job orphaned: {ORPHAN_REASON}"
    );
    Ok(Some(Orphaned {
        job_id: facts.id.to_string(),
        group_killed,
    }))
}

/// The orphan rule, with process inspection as a parameter (tests pass a fake).
fn runner_gone(
    facts: &RunnerFacts<'_>,
    now: DateTime<Utc>,
    probe: &dyn Fn(i32) -> Option<ProcInfo>,
) -> bool {
    if !matches!(facts.status, JobStatus::Queued | JobStatus::Running) {
        return false;
    }
    // A queued job nobody has claimed yet has no runner to judge: its supervisor may still
    // be starting.
    let Some(pid) = facts.supervisor_pid else {
        return false;
    };
    if !heartbeat_stale(facts.last_sign_of_life, now) {
        return false;
    }
    match facts.supervisor_start_time {
        Some(recorded) => {
            let still_ours =
                probe(pid).is_some_and(|info| !info.zombie && info.start_time == recorded);
            !still_ours
        }
        // A runner that recorded no identity cannot be verified; with its heartbeat stale it
        // is treated as gone rather than trusted on its pid alone.
        None => true,
    }
}

/// True when `at` (ISO-8601) is more than [`heartbeat_stale_ms`] before `now`. Text that does
/// not parse is no sign of life.
fn heartbeat_stale(at: &str, now: DateTime<Utc>) -> bool {
    match DateTime::parse_from_rfc3339(at) {
        Ok(at) => now - at.with_timezone(&Utc) > Duration::milliseconds(heartbeat_stale_ms()),
        Err(_) => true,
    }
}

/// `SIGKILL` to the recorded process group, only when its leader (pid = pgid) is still the
/// process that was recorded — alive or a zombie, which still reserves the group id. A leader
/// that is gone means the id may belong to someone else now: no signal. Never this process's
/// own group, never pgid 0 or 1. Whether the signal was delivered.
fn kill_group(pgid: Option<i32>, recorded_start_time: Option<&str>) -> bool {
    let (Some(pgid), Some(recorded)) = (pgid, recorded_start_time) else {
        return false;
    };
    // SAFETY: getpgrp has no preconditions and cannot fail.
    if pgid <= 1 || pgid == unsafe { libc::getpgrp() } {
        return false;
    }
    let leader_is_ours = inspect(pgid).is_some_and(|leader| leader.start_time == recorded);
    if !leader_is_ours {
        return false;
    }
    // SAFETY: killpg has no memory-safety preconditions; the group was verified just above.
    unsafe { libc::killpg(pgid, libc::SIGKILL) == 0 }
}

/// After a cancel request: `SIGTERM` to the job's supervisor (if it is still verifiably
/// that process), so it kills the CLI group now rather than at its next poll of the flag.
/// Whether a signal was sent.
pub fn wake_supervisor(store: &Store, job_id: &str) -> Result<bool, StoreError> {
    Ok(store
        .get_job_blocking(job_id.to_string())?
        .is_some_and(|job| signal_supervisor(&job)))
}

/// `SIGTERM` to a running job's supervisor when it is verifiably still that process. Never to
/// an in-process runner (that is the server itself) or to this process.
fn signal_supervisor(job: &JobRow) -> bool {
    if job.runner != Runner::Supervisor || job.status != JobStatus::Running {
        return false;
    }
    let (Some(pid), Some(recorded)) = (job.supervisor_pid, job.supervisor_start_time.as_deref())
    else {
        return false;
    };
    let own = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    if pid <= 1 || pid == own || !supervisor_alive(pid, recorded) {
        return false;
    }
    // SAFETY: kill has no memory-safety preconditions; the pid was verified just above.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

#[cfg(target_os = "linux")]
fn inspect(pid: i32) -> Option<ProcInfo> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid … starttime …`. `comm` may contain
/// spaces and parentheses, so fields are counted after the **last** `)`: the state is
/// field 3, `starttime` field 22.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let state = *fields.first()?;
    let start_time = *fields.get(22 - 3)?;
    start_time.parse::<u64>().ok()?;
    Some(ProcInfo {
        start_time: start_time.to_string(),
        // Z = zombie; X (and the older x) = dead, seen only in passing.
        zombie: matches!(state, "Z" | "X" | "x"),
    })
}

#[cfg(target_os = "macos")]
fn inspect(pid: i32) -> Option<ProcInfo> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: proc_bsdinfo is plain data (integers and char arrays); all-zero is valid.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    // SAFETY: the buffer is a live, writable proc_bsdinfo of exactly `size` bytes.
    let written = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    // A short answer (or 0 for a missing pid; macOS also answers 0 for most zombies, which
    // then read as gone) carries no identity.
    if written != size {
        return None;
    }
    Some(ProcInfo {
        start_time: format!("{}.{:06}", info.pbi_start_tvsec, info.pbi_start_tvusec),
        zombie: info.pbi_status == libc::SZOMB,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn inspect(_pid: i32) -> Option<ProcInfo> {
    None
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn own_start_time_is_stable_and_numeric() {
        let token = own_start_time();
        assert_eq!(token, own_start_time());
        assert!(token.chars().all(|c| c.is_ascii_digit()), "{token}");
        let pid = i32::try_from(std::process::id()).unwrap();
        assert!(supervisor_alive(pid, &token));
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn facts(status: JobStatus, heartbeat: &'static str) -> RunnerFacts<'static> {
        RunnerFacts {
            id: "j",
            status,
            supervisor_pid: Some(4242),
            supervisor_start_time: Some("1000"),
            last_sign_of_life: heartbeat,
            pgid: None,
            pgid_start_time: None,
        }
    }

    fn alive_as(start: &'static str, zombie: bool) -> impl Fn(i32) -> Option<ProcInfo> {
        move |_| {
            Some(ProcInfo {
                start_time: start.to_string(),
                zombie,
            })
        }
    }

    fn spawn_sleeper(own_group: bool) -> Child {
        let mut command = Command::new("sleep");
        command.arg("30");
        if own_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        command.spawn().expect("spawn sleep")
    }

    fn pid_of(child: &Child) -> i32 {
        i32::try_from(child.id()).unwrap()
    }

    #[test]
    fn stat_is_parsed_after_the_last_parenthesis() {
        let stat = "4242 (we(ird) )name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(ProcInfo {
                start_time: "987654".into(),
                zombie: false
            })
        );
        let zombie = stat.replace(") S 1", ") Z 1");
        assert!(parse_stat(&zombie).unwrap().zombie);
        assert_eq!(parse_stat("4242 (sh) S 1 2 3"), None, "too few fields");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn identity_tells_this_process_from_dead_zombie_and_reused_pids() {
        let me = i32::try_from(std::process::id()).unwrap();
        let mine = process_start_time(me).expect("own start time");
        assert_eq!(process_start_time(me).as_deref(), Some(mine.as_str()));
        assert!(supervisor_alive(me, &mine));
        assert!(!supervisor_alive(me, "not-my-start-time"), "reused pid");
        assert_eq!(process_start_time(0), None);
        assert_eq!(process_start_time(-1), None);

        // Killed but not reaped: a zombie, which is dead as a runner.
        let mut child = spawn_sleeper(false);
        let pid = pid_of(&child);
        let start = process_start_time(pid).expect("child start time");
        assert!(supervisor_alive(pid, &start));
        child.kill().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_start_time(pid).is_some() {
            assert!(std::time::Instant::now() < deadline, "child never died");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!supervisor_alive(pid, &start), "zombie");
        child.wait().unwrap();
        assert!(!supervisor_alive(pid, &start), "reaped");
    }

    #[test]
    fn a_runner_is_gone_only_when_its_heartbeat_is_stale_and_its_process_is_not_it() {
        let now = at("2026-01-01T00:00:30.000Z");
        let stale = "2026-01-01T00:00:19.000Z";
        let fresh = "2026-01-01T00:00:25.000Z";
        let dead = |_| None;
        // Fresh heartbeat: never gone, whatever the process table says.
        assert!(!runner_gone(&facts(JobStatus::Running, fresh), now, &dead));
        // Stale heartbeat: gone when dead, a zombie, or the pid now belongs to someone else.
        assert!(runner_gone(&facts(JobStatus::Running, stale), now, &dead));
        assert!(runner_gone(
            &facts(JobStatus::Running, stale),
            now,
            &alive_as("1000", true)
        ));
        assert!(runner_gone(
            &facts(JobStatus::Running, stale),
            now,
            &alive_as("2000", false)
        ));
        // The same process, just slow to heartbeat (a busy disk, a suspended laptop): kept.
        assert!(!runner_gone(
            &facts(JobStatus::Running, stale),
            now,
            &alive_as("1000", false)
        ));
        // A queued job with a runner is judged too; one without a runner is not.
        assert!(runner_gone(&facts(JobStatus::Queued, stale), now, &dead));
        let mut unclaimed = facts(JobStatus::Queued, stale);
        unclaimed.supervisor_pid = None;
        assert!(!runner_gone(&unclaimed, now, &dead));
        // Ended jobs are never touched.
        assert!(!runner_gone(
            &facts(JobStatus::Completed, stale),
            now,
            &dead
        ));
        // Unparsable heartbeat text is no sign of life.
        assert!(runner_gone(
            &facts(JobStatus::Running, "yesterday"),
            now,
            &dead
        ));
        // 10 s exactly is not yet stale.
        assert!(!runner_gone(
            &facts(JobStatus::Running, "2026-01-01T00:00:20.000Z"),
            now,
            &dead
        ));
    }

    /// Admits a claude job and, with `runner`, claims it (running, owned by `runner`).
    fn job(store: &Store, key: &str, runner: Option<crate::store::SupervisorId>) -> String {
        use crate::store::{Admission, DedupPolicy, NewJob, NewRequest};
        let cli = crate::providers::Provider::Claude;
        let new = NewJob {
            correlation_id: format!("corr-{key}"),
            request_key: key.to_string(),
            cli,
            model: None,
            runner: Runner::Supervisor,
            program: "claude".into(),
            argv: vec!["-p".into()],
            env: Default::default(),
            cwd: None,
            session_id: None,
            idle_timeout_ms: None,
            timeout_ms: None,
        };
        let dedup = DedupPolicy {
            window_ms: 0,
            session_bound: false,
            force_refresh: true,
        };
        let request = NewRequest::new(new.correlation_id.clone(), cli, "hi");
        let Admission::Admitted { job, .. } =
            store.admit_job_blocking(new, request, dedup, 128).unwrap()
        else {
            panic!("saturated");
        };
        if let Some(runner) = runner {
            let limits = crate::store::ClaimLimits {
                max_running: 32,
                max_running_per_provider: 16,
                queue_timeout_ms: 0,
            };
            let claim = store
                .claim_job_blocking(job.id.clone(), limits, runner)
                .unwrap();
            assert!(
                matches!(claim, crate::store::Claim::Started(_)),
                "{claim:?}"
            );
        }
        job.id
    }

    fn status(store: &Store, id: &str) -> JobStatus {
        store
            .get_job_blocking(id.to_string())
            .unwrap()
            .unwrap()
            .status
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn detection_orphans_jobs_of_gone_runners_and_cancel_wakes_a_live_one() {
        let (_dir, store) = crate::store::testing::store();
        let me = i32::try_from(std::process::id()).unwrap();
        let identity = |pid: i32, start: &str| crate::store::SupervisorId {
            pid,
            start_time: start.to_string(),
        };
        let mine = process_start_time(me).unwrap();

        let mut dead = spawn_sleeper(false);
        let dead_pid = pid_of(&dead);
        let dead_start = process_start_time(dead_pid).unwrap();
        dead.kill().unwrap();
        dead.wait().unwrap();

        let gone = job(&store, "gone", Some(identity(dead_pid, &dead_start)));
        let reused = job(&store, "reused", Some(identity(me, "someone-else")));
        let live = job(&store, "live", Some(identity(me, &mine)));
        let unclaimed = job(&store, "unclaimed", None);
        // Young heartbeats protect every job, even those whose runner is gone.
        assert_eq!(detect_orphans(&store).unwrap(), []);
        store
            .exec_raw(
                "UPDATE jobs SET heartbeat_at = '2020-01-01T00:00:00.000Z', \
                 created_at = '2020-01-01T00:00:00.000Z'",
            )
            .unwrap();
        let mut ended: Vec<String> = detect_orphans(&store)
            .unwrap()
            .into_iter()
            .map(|o| o.job_id)
            .collect();
        ended.sort();
        let mut expected = vec![gone.clone(), reused.clone()];
        expected.sort();
        assert_eq!(ended, expected);
        assert_eq!(status(&store, &gone), JobStatus::Orphaned);
        let row = store.get_job_blocking(gone.clone()).unwrap().unwrap();
        assert_eq!(row.error.as_deref(), Some(ORPHAN_REASON));
        assert_eq!(status(&store, &live), JobStatus::Running);
        assert_eq!(status(&store, &unclaimed), JobStatus::Queued);
        assert_eq!(refresh_job(&store, &live).unwrap(), None);
        assert_eq!(refresh_job(&store, "no-such-job").unwrap(), None);

        // Cancel: queued → canceled; orphaned → unchanged; unknown → not found.
        assert_eq!(
            cancel_job(&store, &unclaimed).unwrap(),
            CancelOutcome::Canceled
        );
        assert_eq!(
            cancel_job(&store, &gone).unwrap(),
            CancelOutcome::AlreadyFinished(JobStatus::Orphaned)
        );
        assert_eq!(cancel_job(&store, "nope").unwrap(), CancelOutcome::NotFound);

        // A running job whose supervisor is alive: flag set and SIGTERM delivered to it.
        let mut supervisor = spawn_sleeper(false);
        let pid = pid_of(&supervisor);
        let start = process_start_time(pid).unwrap();
        let running = job(&store, "running", Some(identity(pid, &start)));
        assert_eq!(
            cancel_job(&store, &running).unwrap(),
            CancelOutcome::Requested {
                supervisor_signaled: true
            }
        );
        assert!(store.is_cancel_requested_blocking(running.clone()).unwrap());
        let exit = supervisor.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&exit),
            Some(libc::SIGTERM)
        );
        // This test process runs `live`: it is never signaled (it is the caller itself).
        assert_eq!(
            cancel_job(&store, &live).unwrap(),
            CancelOutcome::Requested {
                supervisor_signaled: false
            }
        );
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn the_group_is_killed_only_when_its_leader_is_still_the_recorded_process() {
        assert!(!kill_group(None, Some("1")));
        assert!(!kill_group(Some(1), Some("1")), "never init's group");
        assert!(!kill_group(Some(0), Some("1")), "never our own group via 0");
        // SAFETY: getpgrp has no preconditions.
        let own_group = unsafe { libc::getpgrp() };
        let own_start = process_start_time(own_group).unwrap_or_default();
        assert!(!kill_group(Some(own_group), Some(&own_start)));

        let mut child = spawn_sleeper(true);
        let pgid = pid_of(&child);
        let start = process_start_time(pgid).expect("leader start time");
        assert!(!kill_group(Some(pgid), Some("wrong")), "start time differs");
        assert!(!kill_group(Some(pgid), None));
        assert!(child.try_wait().unwrap().is_none(), "still running");
        assert!(kill_group(Some(pgid), Some(&start)));
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }
}
