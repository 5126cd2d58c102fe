//! What a run reports: [`ExecReport`], its [`EndReason`], the [`ProcessExit`], warnings,
//! spawn errors and the compatibility exit codes of gateway-imposed ends.
//!
//! Owns: those output types and the strings of end reasons and warnings (stored by the
//! caller, so never renamed). Not here: mapping them to job states or MCP errors.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::sink::Stream;

/// Compatibility exit code recorded for a wall timeout (as `timeout(1)`).
pub const COMPAT_TIMEOUT: i32 = 124;
/// Compatibility exit code recorded for an idle timeout.
pub const COMPAT_IDLE_TIMEOUT: i32 = 125;
/// Compatibility exit code recorded for an output overflow.
pub const COMPAT_OUTPUT_OVERFLOW: i32 = 126;
/// Compatibility exit code recorded for a missing binary (as a shell's "command not found").
pub const COMPAT_NOT_INSTALLED: i32 = 127;

/// Why a run ended. The first cause wins: a child that exits on its own after the idle
/// timeout sent SIGTERM still ended by `idle_timeout`. One exception: output past the cap
/// turns `exited` into `output_overflow` (the output is incomplete either way, and the two
/// events may be seen in either order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The leader exited before any limit or cancel.
    Exited,
    /// No activity for [`Limits::idle_timeout`](super::Limits::idle_timeout).
    IdleTimeout,
    /// [`Limits::wall_timeout`](super::Limits::wall_timeout) elapsed.
    Timeout,
    /// Output exceeded [`Limits::output_cap`](super::Limits::output_cap).
    OutputOverflow,
    /// The [`CancelToken`](super::CancelToken) was tripped.
    Canceled,
    /// No process ran: see [`ExecReport::spawn_error`].
    SpawnFailed,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exited => "exited",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Timeout => "timeout",
            EndReason::OutputOverflow => "output_overflow",
            EndReason::Canceled => "canceled",
            EndReason::SpawnFailed => "spawn_failed",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the leader ended, as its reaped wait status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessExit {
    /// It called `exit` with this code.
    Code(i32),
    /// A signal killed it (ours after a limit, or anyone's).
    Signal(i32),
}

impl ProcessExit {
    pub fn code(self) -> Option<i32> {
        match self {
            ProcessExit::Code(code) => Some(code),
            ProcessExit::Signal(_) => None,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            ProcessExit::Code(_) => None,
            ProcessExit::Signal(signal) => Some(signal),
        }
    }

    pub fn success(self) -> bool {
        self == ProcessExit::Code(0)
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Code(code) => write!(f, "exit code {code}"),
            ProcessExit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Why no process ran.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `exec` said ENOENT: the program (or the interpreter named on its `#!` line) does not
    /// exist. The caller reports `not_installed` with the install command.
    #[error("`{}` was not found", program.display())]
    NotFound { program: PathBuf },
    /// The program exists but may not be executed by us.
    #[error("`{}` cannot be executed: {source}", program.display())]
    PermissionDenied {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The working directory is missing or not a directory.
    #[error("working directory `{}` is unusable: {source}", cwd.display())]
    Cwd {
        cwd: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Any other failure of `fork`/`exec` (E2BIG, EMFILE, ENOMEM, …).
    #[error("could not start `{}`: {source}", program.display())]
    Io {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The child started but the executor could not start the threads that watch it; the
    /// group was killed and the leader reaped.
    #[error("could not start the executor's threads for `{}`: {source}", program.display())]
    Threads {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Something the caller should know that did not change the end reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecWarning {
    /// The leader exited but something still held its pipes past
    /// [`Limits::stray_wait`](super::Limits::stray_wait); the group was killed.
    StrayProcessesKilled,
    /// Pipes were still open after the group was killed: a process that left the group
    /// (`setsid`) holds them. The run ended without their EOF; whatever that process writes
    /// later is lost.
    PipesLeftOpen,
    /// Writing stdin failed for a reason other than the child closing it (EPIPE is normal
    /// and not reported).
    StdinWriteFailed { message: String },
    /// Reading a pipe failed; it was treated as EOF.
    ReadFailed { stream: Stream, message: String },
    /// Someone else in this process reaped the leader, so its group was no longer signalled
    /// (its id may have been reused) and its exit status is unknown.
    LeaderReapedElsewhere,
    /// Reaping the leader failed; its exit status is unknown.
    ReapFailed { message: String },
}

impl ExecWarning {
    /// The stable code stored with the job.
    pub fn code(&self) -> &'static str {
        match self {
            ExecWarning::StrayProcessesKilled => "stray_processes_killed",
            ExecWarning::PipesLeftOpen => "pipes_left_open",
            ExecWarning::StdinWriteFailed { .. } => "stdin_write_failed",
            ExecWarning::ReadFailed { .. } => "read_failed",
            ExecWarning::LeaderReapedElsewhere => "leader_reaped_elsewhere",
            ExecWarning::ReapFailed { .. } => "reap_failed",
        }
    }
}

impl fmt::Display for ExecWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecWarning::StrayProcessesKilled => f.write_str(
                "stray_processes_killed: the CLI exited but a process it started kept its output open; the process group was killed",
            ),
            ExecWarning::PipesLeftOpen => f.write_str(
                "pipes_left_open: a process outside the CLI's process group kept its output open after the group was killed",
            ),
            ExecWarning::StdinWriteFailed { message } => {
                write!(f, "stdin_write_failed: {message}")
            }
            ExecWarning::ReadFailed { stream, message } => {
                write!(f, "read_failed: reading {}: {message}", stream.as_str())
            }
            ExecWarning::LeaderReapedElsewhere => f.write_str(
                "leader_reaped_elsewhere: the CLI's process was reaped outside the executor; its exit status is unknown",
            ),
            ExecWarning::ReapFailed { message } => write!(f, "reap_failed: {message}"),
        }
    }
}

/// What happened in one run.
#[derive(Debug)]
pub struct ExecReport {
    pub end: EndReason,
    /// Set when `end` is [`EndReason::SpawnFailed`].
    pub spawn_error: Option<SpawnError>,
    /// The leader's pid (= its process-group id); `None` when nothing was spawned.
    pub pid: Option<u32>,
    /// How the leader ended; `None` when nothing was spawned or the status was lost (see
    /// the warnings).
    pub exit: Option<ProcessExit>,
    /// Bytes read from stdout, including any discarded past the cap.
    pub stdout_bytes: u64,
    /// Bytes read from stderr, including any discarded past the cap.
    pub stderr_bytes: u64,
    /// Output went past the cap: the sink got exactly `output_cap` bytes, not all of them.
    pub truncated: bool,
    /// When the run began (the spawn, or the attempt at it).
    pub started_at: SystemTime,
    /// When the leader was reaped (or the spawn failed).
    pub ended_at: SystemTime,
    /// `ended_at - started_at`, measured on the monotonic clock.
    pub duration: Duration,
    /// Read time of the first chunk the sink counted as activity.
    pub first_activity_at: Option<SystemTime>,
    /// Read time of the last chunk the sink counted as activity.
    pub last_activity_at: Option<SystemTime>,
    pub warnings: Vec<ExecWarning>,
}

impl ExecReport {
    /// The exit code recorded for a gateway-imposed end: 124 wall timeout, 125 idle
    /// timeout, 126 output overflow, 127 not installed. `None` for a run the child ended
    /// itself (use [`ExecReport::exit`]), a cancel, or any other spawn failure.
    pub fn compat_exit_code(&self) -> Option<i32> {
        match self.end {
            EndReason::Timeout => Some(COMPAT_TIMEOUT),
            EndReason::IdleTimeout => Some(COMPAT_IDLE_TIMEOUT),
            EndReason::OutputOverflow => Some(COMPAT_OUTPUT_OVERFLOW),
            EndReason::SpawnFailed => match self.spawn_error {
                Some(SpawnError::NotFound { .. }) => Some(COMPAT_NOT_INSTALLED),
                _ => None,
            },
            EndReason::Exited | EndReason::Canceled => None,
        }
    }

    /// Total bytes read from both pipes.
    pub fn output_bytes(&self) -> u64 {
        self.stdout_bytes + self.stderr_bytes
    }

    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code() == code)
    }
}
