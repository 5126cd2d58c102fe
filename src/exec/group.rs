//! The child as a process group: spawning it as a group leader, signalling the group, and
//! observing the leader's exit without reaping it.
//!
//! Owns: the `Command` setup (process group, pipes, parent-death signal), the mapping of
//! spawn failures to [`SpawnError`], and [`Leader`], which is the only code that sends
//! signals or reaps. Not here: when to signal (run.rs decides).
//!
//! The invariant this module keeps: the group is signalled only while its leader is
//! unreaped. An unreaped leader (even a zombie) keeps its pid, and so the group id, from
//! being reused, so `killpg(pgid)` can never hit an unrelated group.

use std::cell::Cell;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use super::report::{ProcessExit, SpawnError};
use super::spec::ExecSpec;

/// The pipes taken out of a freshly spawned child.
pub(crate) struct Pipes {
    pub stdin: Option<ChildStdin>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Spawns `spec` as the leader of a new process group (`pgid == pid`).
pub(crate) fn spawn(spec: &ExecSpec) -> Result<(Leader, Pipes), SpawnError> {
    // A missing cwd makes the child's chdir fail with ENOENT, which std reports exactly like
    // a missing program; checking first keeps "not installed" from being claimed for it.
    if let Some(cwd) = &spec.cwd {
        check_cwd(cwd)?;
    }
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    if spec.parent_death_signal {
        set_parent_death_signal(&mut command);
    }
    // std returns only after the child has exec'd (it waits on a close-on-exec pipe), so the
    // child already leads its group here and may be signalled through it.
    let mut child = command.spawn().map_err(|err| classify(err, spec))?;
    let pipes = Pipes {
        stdin: child.stdin.take(),
        stdout: child.stdout.take().expect("stdout was configured as piped"),
        stderr: child.stderr.take().expect("stderr was configured as piped"),
    };
    let pid = child.id();
    Ok((
        Leader {
            child: Some(child),
            pid,
            reaped_elsewhere: Cell::new(false),
        },
        pipes,
    ))
}

fn check_cwd(cwd: &std::path::Path) -> Result<(), SpawnError> {
    match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(SpawnError::Cwd {
            cwd: cwd.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(source) => Err(SpawnError::Cwd {
            cwd: cwd.to_path_buf(),
            source,
        }),
    }
}

fn classify(err: io::Error, spec: &ExecSpec) -> SpawnError {
    let program = spec.program.clone();
    match err.kind() {
        io::ErrorKind::NotFound => {
            // The cwd may have vanished between the check and the spawn.
            if let Some(cwd) = &spec.cwd
                && let Err(SpawnError::Cwd { cwd, source }) = check_cwd(cwd)
            {
                return SpawnError::Cwd { cwd, source };
            }
            SpawnError::NotFound { program }
        }
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied {
            program,
            source: err,
        },
        _ => SpawnError::Io {
            program,
            source: err,
        },
    }
}

/// `PR_SET_PDEATHSIG = SIGKILL` in the child. The kernel delivers it when the *thread* that
/// forked the child exits (not the process); `run` forks on its caller's thread and blocks
/// that thread until the child is reaped, so only the death of the whole caller fires it.
#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    // Taken before the fork: in the child, getpid() is the child.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid, raise); it allocates nothing (io::Error::last_os_error
    // stores the errno inline).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: the signal would then never come.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// No portable parent-death signal outside Linux: a dead caller's group is killed by the
/// orphan sweep instead (jobs.md).
#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}

/// The spawned group leader. Dropping it unreaped (a panicking sink) kills the group and
/// reaps the leader, so an unwinding caller leaks no process.
pub(crate) struct Leader {
    /// `None` once reaped.
    child: Option<Child>,
    pid: u32,
    /// Set when the waiter saw ECHILD: someone else reaped the leader, the group id may be
    /// reused, and the group must never be signalled again.
    reaped_elsewhere: Cell<bool>,
}

impl Leader {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn pgid(&self) -> libc::pid_t {
        // A pid always fits pid_t; std got it from one.
        self.pid as libc::pid_t
    }

    pub fn mark_reaped_elsewhere(&self) {
        self.reaped_elsewhere.set(true);
    }

    pub fn reaped_elsewhere(&self) -> bool {
        self.reaped_elsewhere.get()
    }

    /// Sends `signal` to the whole group, if the leader is still ours and unreaped.
    pub fn signal_group(&self, signal: libc::c_int) {
        if self.child.is_none() || self.reaped_elsewhere.get() {
            return;
        }
        // SAFETY: killpg has no memory-safety preconditions.
        let rc = unsafe { libc::killpg(self.pgid(), signal) };
        if rc == -1 {
            let err = io::Error::last_os_error();
            // ESRCH: the group is already empty (some systems do not count a zombie leader).
            if err.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(pgid = self.pid, signal, error = %err, "killpg failed");
            }
        } else {
            tracing::debug!(pgid = self.pid, signal, "signalled process group");
        }
    }

    /// Reaps the exited leader. Call only after its exit was observed (or after SIGKILL):
    /// this blocks until it exits. No signal is sent to the group afterwards.
    pub fn reap(&mut self) -> io::Result<ProcessExit> {
        let Some(mut child) = self.child.take() else {
            return Err(io::Error::other("the leader was already reaped"));
        };
        child.wait().map(to_process_exit)
    }

    /// SIGKILL to the group, then reap: for paths that cannot wait for the exit event.
    pub fn kill_and_reap(&mut self) -> io::Result<ProcessExit> {
        self.signal_group(libc::SIGKILL);
        self.reap()
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if self.child.is_some() && !self.reaped_elsewhere.get() {
            let _ = self.kill_and_reap();
        }
    }
}

fn to_process_exit(status: ExitStatus) -> ProcessExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProcessExit::Code(code),
        (None, Some(signal)) => ProcessExit::Signal(signal),
        // wait() reports only terminations, which are one or the other.
        (None, None) => ProcessExit::Code(status.into_raw()),
    }
}

/// Blocks until `pid` (our child) has exited, without reaping it (`waitid(WEXITED |
/// WNOWAIT)`). Err(ECHILD) means it is not our unreaped child any more.
pub(crate) fn wait_exit_unreaped(pid: u32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
