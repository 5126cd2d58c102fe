//! One run from spawn to reap: the reader, writer and waiter threads, and the loop on the
//! caller's thread that delivers output, applies the limits and drives the group kill.
//!
//! Owns: the order of events of a run and the end-reason rules. Not here: how signals are
//! sent or the leader reaped (group.rs), what the limits are (spec.rs).
//!
//! Threads: one reader per pipe (reads, counts, enforces the cap, discards past it), a
//! stdin writer (writes, then closes; EPIPE is normal), and a waiter that observes the
//! leader's exit without reaping it. They talk to the loop over one bounded channel, so
//! the output in flight is bounded (`CHANNEL_DEPTH` chunks of at most `READ_CHUNK` bytes)
//! and a slow sink slows the readers instead of growing a buffer; past the cap the readers
//! send nothing and just drain. The sink runs on the caller's thread, so it need not be
//! `Send`, and it sees chunks in the order they were read.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::cancel::CancelToken;
use super::group::{self, Leader, Pipes};
use super::report::{EndReason, ExecReport, ExecWarning, SpawnError};
use super::sink::{Activity, OutputSink, Stream};
use super::spec::{ExecSpec, Limits, OVERFLOW_KILL_GRACE};

/// Bytes asked for per read: a full Linux pipe buffer.
const READ_CHUNK: usize = 64 * 1024;

/// Chunks that may wait between the readers and the sink.
const CHANNEL_DEPTH: usize = 16;

enum Event {
    Output {
        stream: Stream,
        bytes: Vec<u8>,
        at: Instant,
        wall: SystemTime,
    },
    /// The combined output just went past the cap.
    Overflow,
    /// The pipe reached EOF (or failed, which ends it the same way).
    Eof {
        stream: Stream,
        error: Option<io::Error>,
    },
    /// The leader exited (still unreaped), or waiting for it failed.
    LeaderExited {
        at: Instant,
        error: Option<io::Error>,
    },
    StdinDone(io::Result<()>),
    /// A cancel: the flag says what happened, this only wakes the loop.
    Wake,
}

/// State the reader threads share with the loop.
struct Shared {
    cap: u64,
    /// Bytes read from both pipes; the cap is checked against this.
    total: AtomicU64,
    /// Bytes read per [`Stream::index`].
    per_stream: [AtomicU64; 2],
    /// The run is over: readers still draining a pipe held by an escaped process stop.
    finished: AtomicBool,
}

/// Sets [`Shared::finished`] however `run` returns, unwinding included.
struct FinishOnDrop(Arc<Shared>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::SeqCst);
    }
}

/// Runs `spec` to the end and reports it. Blocks the calling thread, which must be one that
/// lives until this returns (it is the child's parent-death "parent"; see the module docs
/// of [`exec`](super)).
///
/// Output goes to `sink` as it is read. The run ends when the leader has exited and both
/// pipes reached EOF, or at a limit, a cancel, or the stray rule — each through the group
/// kill; the leader is reaped last. A tripped `cancel` before the call spawns nothing and
/// reports [`EndReason::Canceled`].
///
/// The group kill: SIGTERM to the group at the limit; SIGKILL to the group after the grace,
/// or sooner once the leader has exited and both pipes reached EOF (nothing is left that
/// the grace would help the run finish); and in every case one final SIGKILL to the group
/// just before the leader is reaped, which is what kills grandchildren that closed their
/// pipes. Once the leader has exited, pipes still open get at most
/// [`Limits::stray_wait`] before the SIGKILL (`stray_processes_killed`).
pub fn run<S>(spec: &ExecSpec, limits: &Limits, cancel: &CancelToken, sink: &mut S) -> ExecReport
where
    S: OutputSink + ?Sized,
{
    let started_at = SystemTime::now();
    let start = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Event>(CHANNEL_DEPTH);
    let wake_tx = tx.clone();
    // Registered before the first look at the flag, so a cancel in between still wakes us.
    let _registration = cancel.register(Box::new(move || {
        // A full channel already has events that will wake the loop, which then reads the
        // flag; a closed one means the run is over.
        let _ = wake_tx.try_send(Event::Wake);
    }));
    if cancel.is_canceled() {
        return ExecReport::without_process(EndReason::Canceled, None, started_at, start);
    }

    let (mut leader, pipes) = match group::spawn(spec) {
        Ok(spawned) => spawned,
        Err(err) => {
            return ExecReport::without_process(
                EndReason::SpawnFailed,
                Some(err),
                started_at,
                start,
            );
        }
    };
    let pid = leader.pid();
    tracing::debug!(pid, program = %spec.program.display(), "spawned");

    let shared = Arc::new(Shared {
        cap: limits.output_cap,
        total: AtomicU64::new(0),
        per_stream: [AtomicU64::new(0), AtomicU64::new(0)],
        finished: AtomicBool::new(false),
    });
    let _finish = FinishOnDrop(Arc::clone(&shared));

    if let Err(source) = start_threads(pipes, spec.stdin.clone(), pid, &shared, &tx) {
        let exit = leader.kill_and_reap().ok();
        let mut report = ExecReport::without_process(
            EndReason::SpawnFailed,
            Some(SpawnError::Threads {
                program: spec.program.clone(),
                source,
            }),
            started_at,
            start,
        );
        report.pid = Some(pid);
        report.exit = exit;
        return report;
    }

    sink.on_spawn(pid);

    let mut state = RunState::new(limits, start);
    state.drive(&leader, cancel, sink, &rx);

    // The final group kill, then the reap: grandchildren that closed their pipes die here,
    // and the leader's pid (the group id) stays reserved until after the signal.
    let exit = if leader.reaped_elsewhere() {
        state.warnings.push(ExecWarning::LeaderReapedElsewhere);
        None
    } else {
        leader.signal_group(libc::SIGKILL);
        match leader.reap() {
            Ok(exit) => Some(exit),
            Err(err) => {
                state.warnings.push(ExecWarning::ReapFailed {
                    message: err.to_string(),
                });
                None
            }
        }
    };
    let ended_at = SystemTime::now();
    let duration = start.elapsed();
    tracing::debug!(pid, end = %state.end.unwrap_or(EndReason::Exited), ?exit, "run finished");

    ExecReport {
        end: state.end.unwrap_or(EndReason::Exited),
        spawn_error: None,
        pid: Some(pid),
        exit,
        stdout_bytes: shared.per_stream[Stream::Stdout.index()].load(Ordering::SeqCst),
        stderr_bytes: shared.per_stream[Stream::Stderr.index()].load(Ordering::SeqCst),
        truncated: state.truncated,
        started_at,
        ended_at,
        duration,
        first_activity_at: state.first_activity_at,
        last_activity_at: state.last_activity_at,
        warnings: state.warnings,
    }
}

impl ExecReport {
    fn without_process(
        end: EndReason,
        spawn_error: Option<SpawnError>,
        started_at: SystemTime,
        start: Instant,
    ) -> Self {
        ExecReport {
            end,
            spawn_error,
            pid: None,
            exit: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            truncated: false,
            started_at,
            ended_at: SystemTime::now(),
            duration: start.elapsed(),
            first_activity_at: None,
            last_activity_at: None,
            warnings: Vec::new(),
        }
    }
}

/// Starts the readers, the stdin writer and the waiter. None of them is ever joined: each
/// reports through the channel, and one stuck on a pipe held by an escaped process must not
/// hold up the run.
fn start_threads(
    pipes: Pipes,
    stdin: Option<Vec<u8>>,
    pid: u32,
    shared: &Arc<Shared>,
    tx: &SyncSender<Event>,
) -> io::Result<()> {
    let Pipes {
        stdin: stdin_pipe,
        stdout,
        stderr,
    } = pipes;
    spawn_reader(Stream::Stdout, stdout, shared, tx)?;
    spawn_reader(Stream::Stderr, stderr, shared, tx)?;
    if let (Some(pipe), Some(bytes)) = (stdin_pipe, stdin) {
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("exec-stdin-{pid}"))
            .spawn(move || {
                let result = write_stdin(pipe, &bytes);
                let _ = tx.send(Event::StdinDone(result));
            })?;
    }
    // Started last: if it fails, nothing observes the leader yet and kill_and_reap may
    // reap it without racing a waitid.
    let tx = tx.clone();
    thread::Builder::new()
        .name(format!("exec-wait-{pid}"))
        .spawn(move || {
            let error = group::wait_exit_unreaped(pid).err();
            let _ = tx.send(Event::LeaderExited {
                at: Instant::now(),
                error,
            });
        })?;
    Ok(())
}

/// Writes the whole prompt, then closes stdin by dropping the pipe. A child that exits or
/// closes stdin early makes this EPIPE, which is its business, not an error.
fn write_stdin(mut pipe: std::process::ChildStdin, bytes: &[u8]) -> io::Result<()> {
    match pipe.write_all(bytes) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn spawn_reader(
    stream: Stream,
    pipe: impl Read + Send + 'static,
    shared: &Arc<Shared>,
    tx: &SyncSender<Event>,
) -> io::Result<()> {
    let shared = Arc::clone(shared);
    let tx = tx.clone();
    thread::Builder::new()
        .name(format!("exec-{}", stream.as_str()))
        .spawn(move || read_pipe(stream, pipe, &shared, &tx))?;
    Ok(())
}

/// Reads until EOF. Every byte is counted; bytes up to the combined cap are sent on, the
/// rest discarded, so the child never blocks on a full pipe whatever the sink does.
fn read_pipe(stream: Stream, mut pipe: impl Read, shared: &Shared, tx: &SyncSender<Event>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if shared.finished.load(Ordering::Relaxed) {
            return;
        }
        let n = match pipe.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Event::Eof {
                    stream,
                    error: None,
                });
                return;
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                let _ = tx.send(Event::Eof {
                    stream,
                    error: Some(err),
                });
                return;
            }
        };
        let at = Instant::now();
        let wall = SystemTime::now();
        let len = n as u64;
        shared.per_stream[stream.index()].fetch_add(len, Ordering::SeqCst);
        // One atomic add orders the two readers: exactly `cap` bytes are delivered in all,
        // and exactly one reader sees the total cross the cap.
        let before = shared.total.fetch_add(len, Ordering::SeqCst);
        let deliver = shared.cap.saturating_sub(before).min(len) as usize;
        if deliver > 0 {
            let event = Event::Output {
                stream,
                bytes: buf[..deliver].to_vec(),
                at,
                wall,
            };
            if tx.send(event).is_err() {
                // The run is over; closing our end lets a writer that outlived it see EPIPE.
                return;
            }
        }
        if before <= shared.cap && before.saturating_add(len) > shared.cap {
            let _ = tx.send(Event::Overflow);
        }
    }
}

/// The loop's view of the run.
struct RunState<'l> {
    limits: &'l Limits,
    start: Instant,
    /// The first cause of the end; set at a limit, a cancel, or the leader's own exit.
    end: Option<EndReason>,
    /// When the leader was seen to exit (unreaped).
    leader_exited: Option<Instant>,
    /// Pipes that have not reached EOF, per [`Stream::index`].
    open: [bool; 2],
    /// When SIGTERM went to the group, and the grace that follows it.
    term_at: Option<Instant>,
    grace: Duration,
    /// When a SIGKILL (before the final one) went to the group.
    kill_at: Option<Instant>,
    last_activity: Instant,
    first_activity_at: Option<SystemTime>,
    last_activity_at: Option<SystemTime>,
    truncated: bool,
    warnings: Vec<ExecWarning>,
}

impl<'l> RunState<'l> {
    fn new(limits: &'l Limits, start: Instant) -> Self {
        Self {
            limits,
            start,
            end: None,
            leader_exited: None,
            open: [true, true],
            term_at: None,
            grace: limits.kill_grace,
            kill_at: None,
            last_activity: start,
            first_activity_at: None,
            last_activity_at: None,
            truncated: false,
            warnings: Vec::new(),
        }
    }

    fn pipes_open(&self) -> bool {
        self.open.iter().any(|open| *open)
    }

    /// Whether limits still apply: nothing has ended the run and the leader runs.
    fn live(&self) -> bool {
        self.end.is_none() && self.leader_exited.is_none()
    }

    fn wall_deadline(&self) -> Option<Instant> {
        self.limits.wall_timeout.map(|wall| self.start + wall)
    }

    fn idle_deadline(&self) -> Option<Instant> {
        self.limits
            .idle_timeout
            .map(|idle| self.last_activity + idle)
    }

    /// After the leader exited with pipes still open: when to stop waiting for their EOF
    /// (before any SIGKILL: kill the strays; after one: give up on the pipes).
    fn pipe_deadline(&self) -> Option<Instant> {
        let exited = self.leader_exited?;
        if !self.pipes_open() {
            return None;
        }
        let from = match self.kill_at {
            Some(killed) => killed.max(exited),
            None => exited,
        };
        Some(from + self.limits.stray_wait)
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut deadlines = Vec::with_capacity(4);
        if self.live() {
            deadlines.extend(self.wall_deadline());
            deadlines.extend(self.idle_deadline());
        }
        if let Some(term_at) = self.term_at
            && self.kill_at.is_none()
        {
            deadlines.push(term_at + self.grace);
        }
        deadlines.extend(self.pipe_deadline());
        deadlines.into_iter().min()
    }

    /// Until the leader has exited and the pipes are done (or given up on).
    fn drive<S: OutputSink + ?Sized>(
        &mut self,
        leader: &Leader,
        cancel: &CancelToken,
        sink: &mut S,
        rx: &Receiver<Event>,
    ) {
        loop {
            let now = Instant::now();
            if self.live() {
                if cancel.is_canceled() {
                    self.begin_kill(leader, EndReason::Canceled, now);
                } else if self.wall_deadline().is_some_and(|d| now >= d) {
                    self.begin_kill(leader, EndReason::Timeout, now);
                } else if self.idle_deadline().is_some_and(|d| now >= d) {
                    self.begin_kill(leader, EndReason::IdleTimeout, now);
                }
            }
            if let Some(term_at) = self.term_at
                && self.kill_at.is_none()
                && now >= term_at + self.grace
            {
                self.kill(leader, now);
            }
            if self.leader_exited.is_some() {
                if !self.pipes_open() {
                    return;
                }
                // The leader exited on its own but something holds its pipes: a cancel need
                // not wait out the stray rule. (After a SIGTERM of ours, the grace and the
                // stray rule already bound the wait.)
                let canceled_waiting =
                    self.term_at.is_none() && self.kill_at.is_none() && cancel.is_canceled();
                if canceled_waiting || self.pipe_deadline().is_some_and(|d| now >= d) {
                    if self.kill_at.is_none() {
                        // The stray rule: one background process left behind must never
                        // hang a run.
                        self.kill(leader, now);
                    } else {
                        self.warnings.push(ExecWarning::PipesLeftOpen);
                        return;
                    }
                }
            }

            let event = match self.next_deadline() {
                Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(event) => self.handle(event, leader, sink),
                Err(RecvTimeoutError::Timeout) => {}
                // `run` holds a sender for the whole loop, so this cannot happen; leaving
                // (to the final kill and reap) is the safe answer if it ever did.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn handle<S: OutputSink + ?Sized>(&mut self, event: Event, leader: &Leader, sink: &mut S) {
        match event {
            Event::Output {
                stream,
                bytes,
                at,
                wall,
            } => {
                if sink.on_output(stream, &bytes, wall) == Activity::Progress {
                    self.last_activity = self.last_activity.max(at);
                    self.first_activity_at.get_or_insert(wall);
                    self.last_activity_at = Some(wall);
                }
            }
            Event::Overflow => {
                self.truncated = true;
                // Truncated output outranks the leader's own exit, so the end reason does not
                // depend on which of the two events the loop saw first; an earlier limit or
                // cancel keeps its reason.
                if matches!(self.end, None | Some(EndReason::Exited)) {
                    if self.term_at.is_none() && self.kill_at.is_none() {
                        self.begin_kill(leader, EndReason::OutputOverflow, Instant::now());
                    } else {
                        self.end = Some(EndReason::OutputOverflow);
                    }
                }
            }
            Event::Eof { stream, error } => {
                self.open[stream.index()] = false;
                if let Some(err) = error {
                    self.warnings.push(ExecWarning::ReadFailed {
                        stream,
                        message: err.to_string(),
                    });
                }
            }
            Event::LeaderExited { at, error } => {
                if let Some(err) = error {
                    // ECHILD: reaped behind our back. Anything else: waitid cannot tell us
                    // about this pid at all. Either way the pgid is no longer known to be
                    // reserved, so it must not be signalled again.
                    tracing::warn!(pid = leader.pid(), error = %err, "waiting for the leader failed");
                    leader.mark_reaped_elsewhere();
                }
                self.leader_exited = Some(at);
                self.end.get_or_insert(EndReason::Exited);
            }
            Event::StdinDone(Err(err)) => self.warnings.push(ExecWarning::StdinWriteFailed {
                message: err.to_string(),
            }),
            Event::StdinDone(Ok(())) | Event::Wake => {}
        }
    }

    /// A gateway-imposed end: SIGTERM to the group now, SIGKILL after the grace.
    fn begin_kill(&mut self, leader: &Leader, reason: EndReason, now: Instant) {
        tracing::debug!(pid = leader.pid(), reason = %reason, "ending run");
        self.end = Some(reason);
        self.grace = if reason == EndReason::OutputOverflow {
            self.limits.kill_grace.min(OVERFLOW_KILL_GRACE)
        } else {
            self.limits.kill_grace
        };
        self.term_at = Some(now);
        leader.signal_group(libc::SIGTERM);
    }

    /// SIGKILL to the group before the final one: after the grace, or for strays.
    fn kill(&mut self, leader: &Leader, now: Instant) {
        if self.leader_exited.is_some() && self.pipes_open() {
            self.warnings.push(ExecWarning::StrayProcessesKilled);
        }
        self.kill_at = Some(now);
        leader.signal_group(libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            idle_timeout: Some(Duration::from_secs(10)),
            wall_timeout: Some(Duration::from_secs(100)),
            output_cap: 10,
            kill_grace: Duration::from_secs(5),
            stray_wait: Duration::from_secs(2),
        }
    }

    #[test]
    fn deadlines_follow_the_phase_of_the_run() {
        let limits = limits();
        let start = Instant::now();
        let mut state = RunState::new(&limits, start);
        assert_eq!(state.next_deadline(), Some(start + Duration::from_secs(10)));

        // After SIGTERM, only the grace counts (the limits no longer apply).
        state.end = Some(EndReason::Canceled);
        state.term_at = Some(start + Duration::from_secs(1));
        assert_eq!(state.next_deadline(), Some(start + Duration::from_secs(6)));

        // Leader exited at 2 s with pipes open: the stray wait is sooner than the grace.
        state.leader_exited = Some(start + Duration::from_secs(2));
        assert_eq!(state.next_deadline(), Some(start + Duration::from_secs(4)));

        // After SIGKILL at 4 s: only the pipe give-up deadline remains.
        state.kill_at = Some(start + Duration::from_secs(4));
        assert_eq!(state.next_deadline(), Some(start + Duration::from_secs(6)));

        // Pipes closed: nothing to wait for but events.
        state.open = [false, false];
        assert_eq!(state.next_deadline(), None);
    }

    #[test]
    fn readers_deliver_exactly_the_cap_and_flag_the_crossing_once() {
        let shared = Shared {
            cap: 10,
            total: AtomicU64::new(0),
            per_stream: [AtomicU64::new(0), AtomicU64::new(0)],
            finished: AtomicBool::new(false),
        };
        let (tx, rx) = mpsc::sync_channel(64);
        read_pipe(Stream::Stdout, &b"0123456"[..], &shared, &tx);
        read_pipe(Stream::Stderr, &b"abcdefgh"[..], &shared, &tx);
        drop(tx);
        let mut delivered = Vec::new();
        let mut overflows = 0;
        for event in rx {
            match event {
                Event::Output { bytes, .. } => delivered.extend(bytes),
                Event::Overflow => overflows += 1,
                _ => {}
            }
        }
        assert_eq!(delivered, b"0123456abc");
        assert_eq!(overflows, 1);
        assert_eq!(shared.per_stream[0].load(Ordering::SeqCst), 7);
        assert_eq!(shared.per_stream[1].load(Ordering::SeqCst), 8);
    }
}
