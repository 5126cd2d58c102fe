//! Running one admitted job: the code the in-process runner and the supervisor share.
//!
//! Owns: [`RunPlan`] (everything a runner needs, serialisable so a supervisor receives it
//! in a file), the per-run private temp dir (created 0700, files 0600, removed on every exit
//! path), the conversion to an [`ExecSpec`], the output sink that streams chunks, activity
//! and progress events to the store (throttled: at most every 250 ms or 256 KiB, never
//! rewriting what was stored), the cancel watch (the row's flag polled every 250 ms, plus the
//! caller's token), and the finalisation: the parser's final outcome and the executor's end
//! reason become one [`JobCompletion`], written once with [`Store::finish_job_blocking`].
//!
//! Not here: claiming a run slot (the supervisor does; the in-process runner too, through
//! [`claim_until_started`]), waking waiters (the caller's `notify`), MCP.
//!
//! Blocking code: call it from a std thread or `spawn_blocking`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorCategory;
use crate::exec::{
    self, Activity, CancelToken, EndReason, ExecReport, ExecSpec, OutputSink, SpawnError, Stream,
};
use crate::providers::{
    Baseline, FinishInput, Invocation, Outcome, Provider, StreamParser, new_parser,
};
use crate::store::{
    Claim, ClaimLimits, JobCompletion, JobStatus, NewEvent, ProgressBatch, SessionBinding, Store,
    SupervisorId, Usage, Warning,
};

/// Flush pending output at least this often while output arrives.
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// …or as soon as this much is pending.
const FLUSH_BYTES: usize = 256 * 1024;
/// Heartbeat period (jobs.md).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// The stderr tail kept for the outcome's message.
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// Longest wait between two claim attempts (jobs.md: ≤ 1 s).
const MAX_CLAIM_BACKOFF: Duration = Duration::from_secs(1);

/// Which usage baseline the run's running totals are measured against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BaselineKind {
    NewSession,
    /// Resumes this provider session (for a claude `--fork-session`, the parent): its last
    /// recorded totals are looked up when the run ends (so a run queued behind the previous
    /// one on the session sees it), `Baseline::Unknown` when none is recorded.
    Resumed(String),
    /// A resumed session whose id is not known (the CLI's own "latest"): running figures
    /// are null with warning `usage_baseline_unknown`.
    Unknown,
}

/// The numbers that bound one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLimits {
    pub idle_timeout_ms: u64,
    pub timeout_ms: u64,
    pub output_cap: u64,
    pub kill_grace_ms: u64,
    pub max_running: u32,
    pub max_running_per_provider: u32,
    pub queue_timeout_ms: u64,
}

impl RunLimits {
    fn exec(&self) -> exec::Limits {
        exec::Limits {
            idle_timeout: Some(Duration::from_millis(self.idle_timeout_ms)),
            wall_timeout: Some(Duration::from_millis(self.timeout_ms)),
            output_cap: self.output_cap,
            kill_grace: Duration::from_millis(self.kill_grace_ms),
            ..exec::Limits::default()
        }
    }

    pub fn claim(&self) -> ClaimLimits {
        ClaimLimits {
            max_running: self.max_running,
            max_running_per_provider: self.max_running_per_provider,
            queue_timeout_ms: self.queue_timeout_ms,
        }
    }
}

/// Everything needed to run one admitted job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    pub job_id: String,
    pub cli: Provider,
    pub invocation: Invocation,
    /// The run's private dir for its temp files (created and removed by the runner).
    pub temp_dir: PathBuf,
    pub baseline: BaselineKind,
    pub limits: RunLimits,
    /// The gateway session to bind on success.
    pub gateway_session: Option<String>,
    /// The run's cwd, recorded with the session binding.
    pub cwd: String,
    /// The gateway worktree the run uses: removed at the end when clean and not bound to
    /// a session (`crate::worktree::finish`).
    #[serde(default)]
    pub worktree: Option<crate::worktree::Worktree>,
}

/// What a runner tells whoever waits on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Output or events were stored.
    Progress,
    /// The terminal state was written (or the job ended before it could start).
    Done,
}

/// Waits for a run slot, retrying with backoff (≤ 1 s) until the store says the job
/// started, or why not. A cancel of `cancel` while queued requests the job's cancel.
pub fn claim_until_started(
    store: &Store,
    plan: &RunPlan,
    runner: &SupervisorId,
    cancel: &CancelToken,
) -> Result<Claim, crate::store::StoreError> {
    let mut backoff = Duration::from_millis(5);
    loop {
        if cancel.is_canceled() {
            store.request_cancel_blocking(plan.job_id.clone())?;
        }
        let claim =
            store.claim_job_blocking(plan.job_id.clone(), plan.limits.claim(), runner.clone())?;
        if !matches!(claim, Claim::Wait(_)) {
            return Ok(claim);
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_CLAIM_BACKOFF);
    }
}

/// Runs a claimed (`running`) job to its end and writes its terminal state. The temp dir is
/// removed on every path. `cancel` is tripped by the caller (SIGTERM, explicit cancel) or
/// by the watch thread when the row's cancel flag is set.
pub fn execute(
    store: &Store,
    plan: &RunPlan,
    cancel: &CancelToken,
    notify: &(dyn Fn(Notice) + Sync),
) {
    let mut completion = match prepare_temp_dir(plan) {
        Ok(()) => run_and_settle(store, plan, cancel, notify),
        Err(error) => {
            let mut c = JobCompletion::ended(JobStatus::Failed);
            c.error_category = Some(ErrorCategory::Internal.as_str().into());
            c.error = Some(format!("cannot write the run's temp files: {error}"));
            c.end_reason = Some(EndReason::SpawnFailed.as_str().into());
            c
        }
    };
    let _ = fs::remove_dir_all(&plan.temp_dir);
    if let Some(wt) = &plan.worktree
        && let crate::worktree::Finish::KeptWithWork(reason) = crate::worktree::finish(wt)
    {
        completion.warnings.push(Warning::new(
            crate::worktree::WORKTREE_KEPT,
            crate::worktree::kept_message(wt, &reason),
        ));
    }
    if let Err(error) = store.finish_job_blocking(plan.job_id.clone(), completion) {
        tracing::error!(job = %plan.job_id, %error, "cannot write the job's terminal state");
    }
    notify(Notice::Done);
}

/// Ends a job that never ran (its runner could not start) as failed.
pub fn fail_unstarted(store: &Store, job_id: &str, category: ErrorCategory, message: String) {
    let mut c = JobCompletion::ended(JobStatus::Failed);
    c.error_category = Some(category.as_str().into());
    c.error = Some(message);
    c.end_reason = Some(EndReason::SpawnFailed.as_str().into());
    if let Err(error) = store.finish_job_blocking(job_id.to_string(), c) {
        tracing::error!(job = %job_id, %error, "cannot write the job's terminal state");
    }
}

fn prepare_temp_dir(plan: &RunPlan) -> std::io::Result<()> {
    let needs_dir = !plan.invocation.temp_files.is_empty()
        || plan
            .invocation
            .argv
            .iter()
            .any(|a| a.contains(&*plan.temp_dir.to_string_lossy()));
    if !needs_dir {
        return Ok(());
    }
    crate::paths::ensure_private_dir(&plan.temp_dir)?;
    for file in &plan.invocation.temp_files {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)?;
        f.write_all(&file.contents)?;
    }
    Ok(())
}

fn spec_of(invocation: &Invocation) -> ExecSpec {
    let mut spec = ExecSpec::new(&invocation.program)
        .args(invocation.argv.iter())
        .cwd(&invocation.cwd)
        .parent_death_signal(true);
    for (k, v) in &invocation.env_overrides {
        spec = spec.env(k, v);
    }
    spec.stdin = invocation.stdin.clone();
    spec
}

/// Output and events not yet stored.
#[derive(Default)]
struct Pending {
    batch: ProgressBatch,
    last_flush: Option<Instant>,
    last_heartbeat: Option<Instant>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.batch.stdout.len() + self.batch.stderr.len()
    }
}

/// The shared state of the output sink (exec thread) and the watch thread.
struct Shared<'a> {
    store: &'a Store,
    job_id: &'a str,
    pending: Mutex<Pending>,
    cancel: &'a CancelToken,
    notify: &'a (dyn Fn(Notice) + Sync),
}

impl Shared<'_> {
    /// Stores what is pending (plus a heartbeat when due) and trips the cancel token when
    /// the row asks for it. `force` flushes even an empty batch (heartbeat, cancel poll).
    fn flush(&self, force: bool) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let heartbeat_due = pending
            .last_heartbeat
            .is_none_or(|t| now.duration_since(t) >= HEARTBEAT_INTERVAL);
        let has_data = pending.bytes() > 0 || !pending.batch.events.is_empty();
        if !(has_data || force && heartbeat_due) {
            if force {
                drop(pending);
                if self
                    .store
                    .is_cancel_requested_blocking(self.job_id.to_string())
                    .unwrap_or(false)
                {
                    self.cancel.cancel();
                }
            }
            return;
        }
        let mut batch = std::mem::take(&mut pending.batch);
        batch.heartbeat = heartbeat_due;
        pending.last_flush = Some(now);
        if heartbeat_due {
            pending.last_heartbeat = Some(now);
        }
        // Held across the write so chunks are stored in the order they arrived.
        match self
            .store
            .record_progress_blocking(self.job_id.to_string(), batch)
        {
            Ok(ack) => {
                if ack.cancel_requested {
                    self.cancel.cancel();
                }
            }
            Err(error) => {
                // Without the store the job cannot deliver anything: stop the CLI.
                tracing::error!(job = %self.job_id, %error, "cannot store job output; canceling");
                self.cancel.cancel();
            }
        }
        drop(pending);
        if has_data {
            (self.notify)(Notice::Progress);
        }
    }
}

struct Sink<'a> {
    shared: &'a Shared<'a>,
    parser: Option<Box<dyn StreamParser>>,
    stderr_tail: Vec<u8>,
    leader_pid: Option<u32>,
    /// The provider session id already written to the row (written again only on change).
    recorded_session: Option<String>,
}

impl Sink<'_> {
    /// Writes the provider session id the moment the parser has it, so a deferred caller
    /// (and any status read) sees `sessionId` while the job still runs.
    fn record_session_id(&mut self) {
        let Some(id) = self.parser.as_ref().and_then(|p| p.session_id()) else {
            return;
        };
        if self.recorded_session.as_deref() == Some(id.as_str()) {
            return;
        }
        match self
            .shared
            .store
            .set_job_provider_session_blocking(self.shared.job_id.to_string(), id.clone())
        {
            Ok(_) => self.recorded_session = Some(id),
            Err(error) => {
                tracing::warn!(job = %self.shared.job_id, %error, "cannot record the session id")
            }
        }
    }
}

impl OutputSink for Sink<'_> {
    fn on_spawn(&mut self, pid: u32) {
        self.leader_pid = Some(pid);
        let start = i32::try_from(pid)
            .ok()
            .and_then(super::control::process_start_time)
            .unwrap_or_else(|| format!("pid:{pid}"));
        if let Ok(pgid) = i32::try_from(pid) {
            let _ = self.shared.store.set_job_process_group_blocking(
                self.shared.job_id.to_string(),
                pgid,
                start,
            );
        }
    }

    fn on_output(&mut self, stream: Stream, bytes: &[u8], at: SystemTime) -> Activity {
        let mut activity = Activity::Progress;
        let mut events = Vec::new();
        match stream {
            Stream::Stdout => {
                if let Some(parser) = self.parser.as_mut() {
                    let feed = parser.feed(bytes);
                    if !feed.activity {
                        activity = Activity::Noise;
                    }
                    events = feed.events;
                }
                self.record_session_id();
            }
            Stream::Stderr => {
                self.stderr_tail.extend_from_slice(bytes);
                if self.stderr_tail.len() > 2 * STDERR_TAIL_BYTES {
                    let excess = self.stderr_tail.len() - STDERR_TAIL_BYTES;
                    self.stderr_tail.drain(..excess);
                }
            }
        }
        let full = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match stream {
                Stream::Stdout => pending.batch.stdout.extend_from_slice(bytes),
                Stream::Stderr => pending.batch.stderr.extend_from_slice(bytes),
            }
            if activity == Activity::Progress {
                pending.batch.last_activity_at = Some(DateTime::<Utc>::from(at));
            }
            pending
                .batch
                .events
                .extend(events.into_iter().map(|e| NewEvent {
                    kind: e.kind.as_str().to_string(),
                    message: e.message,
                }));
            pending.bytes() >= FLUSH_BYTES
                || pending
                    .last_flush
                    .is_none_or(|t| t.elapsed() >= FLUSH_INTERVAL)
        };
        if full {
            self.shared.flush(false);
        }
        activity
    }
}

fn run_and_settle(
    store: &Store,
    plan: &RunPlan,
    cancel: &CancelToken,
    notify: &(dyn Fn(Notice) + Sync),
) -> JobCompletion {
    let shared = Shared {
        store,
        job_id: &plan.job_id,
        pending: Mutex::new(Pending {
            last_flush: Some(Instant::now()),
            ..Pending::default()
        }),
        cancel,
        notify,
    };
    let spec = spec_of(&plan.invocation);
    let limits = plan.limits.exec();
    let stop = AtomicBool::new(false);
    let (report, sink) = thread::scope(|scope| {
        // The watch thread: flushes a quiet run's pending output, heartbeats, polls cancel.
        // It parks rather than sleeps so the end of the run wakes it at once: a plain sleep
        // held every job (and so every sync answer) up to FLUSH_INTERVAL after its CLI exited.
        let watcher = scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                thread::park_timeout(FLUSH_INTERVAL);
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                shared.flush(true);
            }
        });
        let mut sink = Sink {
            shared: &shared,
            parser: Some(new_parser(plan.cli)),
            stderr_tail: Vec::new(),
            leader_pid: None,
            recorded_session: None,
        };
        let report = exec::run(&spec, &limits, cancel, &mut sink);
        stop.store(true, Ordering::SeqCst);
        watcher.thread().unpark();
        (report, sink)
    });
    shared.flush(false);
    let baseline = baseline_of(store, plan);
    settle(plan, report, sink, baseline)
}

/// The usage baseline of the run (providers.md "Usage is normalised per invocation").
fn baseline_of(store: &Store, plan: &RunPlan) -> Baseline {
    match &plan.baseline {
        BaselineKind::NewSession => Baseline::NewSession,
        BaselineKind::Unknown => Baseline::Unknown,
        BaselineKind::Resumed(id) => match store.usage_baseline_blocking(plan.cli, id.clone()) {
            Ok(Some(u)) => {
                let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
                Baseline::Known(crate::providers::Usage {
                    input_tokens: n(u.input_tokens),
                    output_tokens: n(u.output_tokens),
                    cache_read_tokens: n(u.cache_read_tokens),
                    cache_creation_tokens: n(u.cache_creation_tokens),
                    reasoning_tokens: n(u.reasoning_tokens),
                    cost_usd: u.cost_usd,
                })
            }
            Ok(None) => Baseline::Unknown,
            Err(error) => {
                tracing::warn!(job = %plan.job_id, %error, "cannot read the usage baseline");
                Baseline::Unknown
            }
        },
    }
}

fn settle(
    plan: &RunPlan,
    report: ExecReport,
    mut sink: Sink<'_>,
    baseline: Baseline,
) -> JobCompletion {
    let export = plan
        .invocation
        .result_file
        .as_ref()
        .and_then(|path| fs::read(path).ok());
    let tail_start = sink.stderr_tail.len().saturating_sub(STDERR_TAIL_BYTES);
    let input = FinishInput {
        exit_code: report.exit.and_then(|e| e.code()),
        stderr_tail: &sink.stderr_tail[tail_start..],
        baseline,
        export_json: export.as_deref(),
    };
    let outcome = sink.parser.take().map(|parser| parser.finish(&input));
    completion_of(plan, &report, outcome)
}

/// The terminal write for an end reason and the parser's outcome (mcp-surface.md
/// categories, compat exit codes for gateway-imposed ends).
fn completion_of(
    plan: &RunPlan,
    report: &ExecReport,
    mut outcome: Option<Outcome>,
) -> JobCompletion {
    let mut c = JobCompletion::ended(JobStatus::Failed);
    c.end_reason = Some(report.end.as_str().into());
    c.exit_code = report
        .compat_exit_code()
        .or(report.exit.and_then(|e| e.code()));
    c.output_truncated = report.truncated;
    c.warnings = plan
        .invocation
        .warnings
        .iter()
        .map(|w| Warning::new(w.code.clone(), w.message.clone()))
        .collect();
    for w in &report.warnings {
        c.warnings.push(Warning::new(w.code(), w.to_string()));
    }
    if let Some(outcome) = &mut outcome {
        // Moved, not cloned: the answer can be tens of MB (only the store copies it, once).
        c.response = Some(std::mem::take(&mut outcome.text));
        c.provider_session_id = outcome.provider_session_id.clone();
        c.stop_reason = outcome.stop_reason.clone();
        c.model = outcome.model.clone();
        c.usage = store_usage(&outcome.usage);
        for w in &outcome.warnings {
            if !c
                .warnings
                .iter()
                .any(|x| x.code == w.code && x.message == w.message)
            {
                c.warnings
                    .push(Warning::new(w.code.clone(), w.message.clone()));
            }
        }
    }
    let secs = |ms: u64| ms as f64 / 1000.0;
    match report.end {
        EndReason::Exited => match &outcome {
            Some(o) if o.is_success() => c.status = JobStatus::Completed,
            Some(o) => {
                let error = o.error.as_ref();
                let category = error.map_or(ErrorCategory::CliError, |e| e.category.into());
                c.error_category = Some(category.as_str().into());
                c.error = error.map(|e| e.message.clone());
            }
            None => c.error_category = Some(ErrorCategory::CliError.as_str().into()),
        },
        EndReason::IdleTimeout => {
            c.error_category = Some(ErrorCategory::IdleTimeout.as_str().into());
            c.error = Some(format!(
                "{} produced no output for {} s (idleTimeoutMs {})",
                plan.cli.default_binary(),
                secs(plan.limits.idle_timeout_ms),
                plan.limits.idle_timeout_ms
            ));
        }
        EndReason::Timeout => {
            c.error_category = Some(ErrorCategory::Timeout.as_str().into());
            c.error = Some(format!(
                "{} ran longer than {} s (timeoutMs {})",
                plan.cli.default_binary(),
                secs(plan.limits.timeout_ms),
                plan.limits.timeout_ms
            ));
        }
        EndReason::OutputOverflow => {
            c.error_category = Some(ErrorCategory::OutputOverflow.as_str().into());
            c.output_truncated = true;
            c.error = Some(format!(
                "{} printed more than {} bytes (max_job_output_bytes)",
                plan.cli.default_binary(),
                plan.limits.output_cap
            ));
        }
        EndReason::Canceled => {
            c.status = JobStatus::Canceled;
            c.error_category = Some(ErrorCategory::Canceled.as_str().into());
            c.error = Some("canceled by the caller".into());
        }
        EndReason::SpawnFailed => match &report.spawn_error {
            Some(SpawnError::NotFound { program }) => {
                c.error_category = Some(ErrorCategory::NotInstalled.as_str().into());
                c.exit_code = Some(exec::COMPAT_NOT_INSTALLED);
                c.error = Some(format!(
                    "\"{}\" not found. Install: {}",
                    program.display(),
                    plan.cli.install_command()
                ));
            }
            other => {
                c.error_category = Some(ErrorCategory::CliError.as_str().into());
                c.error = Some(
                    other
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "the CLI could not be started".into()),
                );
            }
        },
    }
    c.session = plan.gateway_session.as_ref().map(|id| SessionBinding {
        session_id: id.clone(),
        provider_session_id: c.provider_session_id.clone(),
        cwd: Some(plan.cwd.clone()),
    });
    c
}

fn store_usage(u: &crate::providers::Usage) -> Usage {
    let i = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
    Usage {
        input_tokens: i(u.input_tokens),
        output_tokens: i(u.output_tokens),
        cache_read_tokens: i(u.cache_read_tokens),
        cache_creation_tokens: i(u.cache_creation_tokens),
        reasoning_tokens: i(u.reasoning_tokens),
        cost_usd: u.cost_usd,
    }
}

/// Runs an admitted job inside this process: claim, execute, finish. Used by the
/// in-process runner (from `spawn_blocking`).
pub fn run_in_process(
    store: &Store,
    plan: &RunPlan,
    cancel: &CancelToken,
    notify: &(dyn Fn(Notice) + Sync),
) {
    let me = SupervisorId {
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        start_time: super::control::own_start_time(),
    };
    match claim_until_started(store, plan, &me, cancel) {
        Ok(Claim::Started(_)) => execute(store, plan, cancel, notify),
        Ok(_) => notify(Notice::Done),
        Err(error) => {
            fail_unstarted(
                store,
                &plan.job_id,
                ErrorCategory::Internal,
                format!("cannot claim a run slot: {error}"),
            );
            notify(Notice::Done);
        }
    }
}

/// A cancel token tripped once `flag` is set (SIGTERM in the supervisor): checked by a
/// thread every 100 ms, since [`CancelToken::cancel`] is not async-signal-safe.
pub fn watch_flag(flag: &'static AtomicBool, cancel: CancelToken) {
    thread::spawn(move || {
        loop {
            if flag.load(Ordering::SeqCst) {
                cancel.cancel();
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
}
