//! What to run ([`ExecSpec`]) and the limits that may end the run ([`Limits`]), with the
//! defaults of jobs.md.
//!
//! Owns: those input types and their defaults. Not here: converting a provider
//! `Invocation` (the caller does that), config parsing (config.rs supplies the numbers).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Default idle timeout: 600 000 ms for every provider (all five run in streaming modes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(600_000);

/// Default wall timeout: 4 h.
pub const DEFAULT_WALL_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// Default output cap: 50 MiB of stdout and stderr combined (`max_job_output_bytes`).
pub const DEFAULT_OUTPUT_CAP: u64 = 52_428_800;

/// Default time between SIGTERM and SIGKILL to the group.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// Default time to wait for EOF on the pipes once the leader has exited, before the group is
/// killed as strays.
pub const DEFAULT_STRAY_WAIT: Duration = Duration::from_secs(2);

/// The longest grace an output overflow gets, whatever [`Limits::kill_grace`] says: a child
/// flooding its pipes burns CPU (ours, draining) for as long as it lives, and jobs.md wants
/// the cap to end the run within 2 s of being crossed.
pub const OVERFLOW_KILL_GRACE: Duration = Duration::from_secs(1);

/// One program run, exactly: no shell, the current environment plus [`ExecSpec::env`],
/// stdin carrying [`ExecSpec::stdin`] then closed (or null), stdout and stderr piped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// What to execute. Pass the path [`resolve_program`](super::resolve_program) found: a
    /// bare name is looked up by the OS on the PATH the child sees, without the install
    /// dirs, and a relative path with a `/` is taken relative to [`ExecSpec::cwd`].
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Added to (or replacing in) the inherited environment, in order; a later pair wins.
    pub env: Vec<(OsString, OsString)>,
    /// Bytes written to stdin, which is then closed; `None` = stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// The child's working directory; `None` = inherit ours.
    pub cwd: Option<PathBuf>,
    /// Give the child `SIGKILL` when the thread that spawned it dies (Linux
    /// `PR_SET_PDEATHSIG`; ignored elsewhere). Only the leader gets it: its own children are
    /// reached by the group kill, or by the orphan sweep when the whole caller died.
    pub parent_death_signal: bool,
}

impl ExecSpec {
    /// A run of `program` with no arguments, no env additions, null stdin, our cwd, and the
    /// parent-death signal on.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            cwd: None,
            parent_death_signal: true,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn parent_death_signal(mut self, on: bool) -> Self {
        self.parent_death_signal = on;
        self
    }
}

/// The limits of one run. Each gateway-imposed end goes through the group kill: SIGTERM to
/// the group, then SIGKILL after [`Limits::kill_grace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// End with `idle_timeout` when no stdout/stderr byte counted as activity arrived for
    /// this long; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// End with `timeout` this long after the spawn; `None` = never.
    pub wall_timeout: Option<Duration>,
    /// End with `output_overflow` once stdout + stderr exceed this many bytes. Exactly this
    /// many bytes reach the sink; the rest is read and discarded. `u64::MAX` = no cap.
    pub output_cap: u64,
    /// Time between SIGTERM and SIGKILL to the group (capped at [`OVERFLOW_KILL_GRACE`] for
    /// an overflow).
    pub kill_grace: Duration,
    /// How long to wait for EOF on the pipes after the leader exited before killing the
    /// group as strays (and, after a SIGKILL, before giving up on pipes held by a process
    /// that left the group).
    pub stray_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            wall_timeout: Some(DEFAULT_WALL_TIMEOUT),
            output_cap: DEFAULT_OUTPUT_CAP,
            kill_grace: DEFAULT_KILL_GRACE,
            stray_wait: DEFAULT_STRAY_WAIT,
        }
    }
}
