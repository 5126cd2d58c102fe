//! The supervisor: the hidden `llm-cli-gateway supervise <job-id>` process that runs one
//! job so that it outlives the server that admitted it (jobs.md "Supervised jobs").
//!
//! Owns both ends of that arrangement:
//! - [`spawn`] (server side): writes the [`RunPlan`] to a 0600 file
//!   `<data dir>/jobs/<job-id>.json`, starts the supervisor detached (in its own session: `posix_spawn` with
//!   `POSIX_SPAWN_SETSID` on Linux, `setsid` in a `pre_exec` elsewhere; stdio on /dev/null)
//!   with the write end of a pipe, and
//!   turns the "progress"/"done" lines it writes into the caller's notices — so the server
//!   that started a job is woken at once instead of polling;
//! - [`run`] (supervisor side, plain synchronous code): reads and deletes the file, opens
//!   the store as a supervisor, waits for a run slot, runs the job on its main thread (the
//!   CLI's parent-death signal follows that thread) and finalises it; SIGTERM cancels the
//!   CLI group.
//!
//! Each side ignores EOF/EPIPE on the pipe: either may die first. Not here: the run itself
//! (`runner`), orphan detection (`control`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
#[cfg(not(target_os = "linux"))]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
#[cfg(not(target_os = "linux"))]
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::exec::CancelToken;
use crate::store::{Claim, OpenRole, Privacy, Store, StoreOptions, SupervisorId};

use super::runner::{self, Notice, RunPlan};

/// The environment variable naming the pipe fd the supervisor writes its notices to.
pub const NOTIFY_FD_VAR: &str = "LLM_GATEWAY_NOTIFY_FD";

/// What the server hands a supervisor (in the 0600 job file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobFile {
    plan: RunPlan,
    store_path: PathBuf,
    store_prompts: bool,
    redact_secrets: bool,
    job_retention_days: u32,
}

/// Why a supervisor could not run its job.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot read the job file {}: {source}", path.display())]
    JobFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the job file {} is malformed: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// `<data dir>/jobs/<job-id>.json`.
pub fn job_file(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join("jobs").join(format!("{job_id}.json"))
}

/// Starts the supervisor of `plan` detached; `notify` receives its notices (on a thread of
/// this process) and a final `Done` when the supervisor exits.
pub fn spawn(
    config: &Config,
    plan: &RunPlan,
    store_path: &Path,
    notify: impl Fn(Notice) + Send + 'static,
) -> std::io::Result<()> {
    let dir = config.data_dir.join("jobs");
    crate::paths::ensure_private_dir(&dir)?;
    let path = job_file(&config.data_dir, &plan.job_id);
    let file = JobFile {
        plan: plan.clone(),
        store_path: store_path.to_path_buf(),
        store_prompts: config.privacy.store_prompts,
        redact_secrets: config.privacy.redact_secrets,
        job_retention_days: config.persistence.retention_days,
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    out.write_all(&bytes)?;
    drop(out);

    let (read_fd, write_fd) = cloexec_pipe()?;
    // SAFETY: both fds were just created by pipe() and are owned here.
    let reader = unsafe { fs::File::from_raw_fd(read_fd) };
    let writer = unsafe { fs::File::from_raw_fd(write_fd) };
    let spawned = start_detached(
        &std::env::current_exe()?,
        &config.data_dir,
        &plan.job_id,
        &writer,
    );
    drop(writer);
    let child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let _ = fs::remove_file(&path);
            return Err(error);
        }
    };
    std::thread::Builder::new()
        .name("supervisor-pipe".into())
        // It only reads short lines and wakes a waiter; one per running job, so keep it small.
        .stack_size(PIPE_THREAD_STACK)
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                match line.as_deref() {
                    Ok("done") => notify(Notice::Done),
                    Ok(_) => notify(Notice::Progress),
                    Err(_) => break,
                }
            }
            // EOF: the supervisor exited (or closed the pipe). Reap it; it is our child
            // until then, and a zombie would look alive to a pid check.
            child.reap();
            notify(Notice::Done);
        })?;
    Ok(())
}

/// Stack of the thread that reads one supervisor's notices.
const PIPE_THREAD_STACK: usize = 128 * 1024;

/// The fd number the supervisor finds its notice pipe on (Linux spawn path).
#[cfg(target_os = "linux")]
const CHILD_NOTIFY_FD: RawFd = 3;

/// A started supervisor, to be reaped once its pipe closes.
#[cfg(target_os = "linux")]
struct Started(libc::pid_t);

#[cfg(target_os = "linux")]
impl Started {
    fn reap(self) {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        while unsafe { libc::waitpid(self.0, &mut status, 0) } == -1
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
}

/// Starts `<exe> supervise <job-id>` in its own session, stdio on /dev/null, with the pipe's
/// write end `notify` as its fd [`CHILD_NOTIFY_FD`].
///
/// `posix_spawn` rather than `Command` with a `pre_exec`: a `pre_exec` forces a real fork,
/// which copies the page tables of this whole multi-threaded server and then makes it take
/// copy-on-write faults — the dominant server-side cost of starting 50 jobs at once. glibc's
/// posix_spawn shares the address space until the exec (CLONE_VM|CLONE_VFORK) and does the
/// `setsid` (POSIX_SPAWN_SETSID) and the fd placement itself, so the child is detached before
/// it runs any of our code, as before. Only `notify` is placed at fd 3: every other fd of the
/// server stays close-on-exec.
#[cfg(target_os = "linux")]
fn start_detached(
    exe: &Path,
    data_dir: &Path,
    job_id: &str,
    notify: &fs::File,
) -> std::io::Result<Started> {
    use std::ffi::CString;
    use std::io::{Error, ErrorKind};
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;

    let cstring = |bytes: Vec<u8>| {
        CString::new(bytes)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "NUL byte in an argument"))
    };
    let program = cstring(exe.as_os_str().as_bytes().to_vec())?;
    let args = [
        program.clone(),
        cstring(b"supervise".to_vec())?,
        cstring(job_id.as_bytes().to_vec())?,
    ];
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == "LLM_GATEWAY_HOME" || key == NOTIFY_FD_VAR {
            continue;
        }
        let mut pair = key.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        env.push(cstring(pair)?);
    }
    let mut home = b"LLM_GATEWAY_HOME=".to_vec();
    home.extend_from_slice(data_dir.as_os_str().as_bytes());
    env.push(cstring(home)?);
    env.push(cstring(
        format!("{NOTIFY_FD_VAR}={CHILD_NOTIFY_FD}").into_bytes(),
    )?);
    let argv: Vec<*mut libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp: Vec<*mut libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();

    // dup2(fd, fd) would keep close-on-exec set: move a pipe that landed on 3 elsewhere.
    let moved;
    let mut source = notify.as_raw_fd();
    if source == CHILD_NOTIFY_FD {
        moved = notify.try_clone()?;
        source = moved.as_raw_fd();
    }
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::from_raw_os_error(rc))
        }
    };
    let null = c"/dev/null";
    // SAFETY: the attribute and action objects are initialised before use and destroyed on
    // every path below; every pointer passed lives until posix_spawn returns.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        if let Err(error) = check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(error);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigemptyset(&mut defaults);
        // As std::process does: no blocked signals, SIGPIPE back to its default action.
        libc::sigaddset(&mut defaults, libc::SIGPIPE);
        // The constants' integer types differ (c_short for SETSID, c_int for the others).
        let flags = libc::c_int::from(libc::POSIX_SPAWN_SETSID)
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        let mut pid: libc::pid_t = 0;
        let result = (|| {
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions,
                0,
                null.as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions,
                1,
                null.as_ptr(),
                libc::O_WRONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_addopen(
                &mut actions,
                2,
                null.as_ptr(),
                libc::O_WRONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                &mut actions,
                source,
                CHILD_NOTIFY_FD,
            ))?;
            check(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attr, &defaults))?;
            let flags = libc::c_short::try_from(flags).map_err(|_| Error::other("spawn flags"))?;
            check(libc::posix_spawnattr_setflags(&mut attr, flags))?;
            check(libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                envp.as_ptr(),
            ))
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result.map(|()| Started(pid))
    }
}

/// A started supervisor, to be reaped once its pipe closes.
#[cfg(not(target_os = "linux"))]
struct Started(std::process::Child);

#[cfg(not(target_os = "linux"))]
impl Started {
    fn reap(mut self) {
        let _ = self.0.wait();
    }
}

/// Starts `<exe> supervise <job-id>` in its own session (`setsid` in an async-signal-safe
/// `pre_exec`), stdio on /dev/null, keeping exactly `notify` open across the exec.
#[cfg(not(target_os = "linux"))]
fn start_detached(
    exe: &Path,
    data_dir: &Path,
    job_id: &str,
    notify: &fs::File,
) -> std::io::Result<Started> {
    use std::os::fd::AsRawFd;
    let write_fd = notify.as_raw_fd();
    let mut command = Command::new(exe);
    command
        .arg("supervise")
        .arg(job_id)
        .env("LLM_GATEWAY_HOME", data_dir)
        .env(NOTIFY_FD_VAR, write_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, fcntl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // Keep exactly this fd across exec (it is close-on-exec everywhere else, so
            // no other child of the server inherits it).
            let flags = libc::fcntl(write_fd, libc::F_GETFD);
            if flags == -1 || libc::fcntl(write_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map(Started)
}

fn cloexec_pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    #[cfg(target_os = "linux")]
    // SAFETY: fds has room for two descriptors.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(target_os = "linux"))]
    // SAFETY: fds has room for two descriptors; the flags are set before any other use.
    let rc = unsafe {
        let rc = libc::pipe(fds.as_mut_ptr());
        if rc == 0 {
            libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(fds[1], libc::F_SETFD, libc::FD_CLOEXEC);
        }
        rc
    };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Set by the SIGTERM handler; a thread turns it into a cancel.
static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

/// The pipe to the server that started us, if any: notices are best effort.
struct Notifier(Option<RawFd>);

impl Notifier {
    fn from_env() -> Notifier {
        let fd = std::env::var(NOTIFY_FD_VAR)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok())
            .filter(|fd| *fd > 2);
        if let Some(fd) = fd {
            // Not for the CLI: a CLI holding the pipe would hide our exit from the server.
            // SAFETY: fcntl on an fd number has no memory-safety preconditions.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Notifier(fd)
    }

    fn tell(&self, notice: Notice) {
        let Some(fd) = self.0 else { return };
        let line: &[u8] = match notice {
            Notice::Progress => b"progress\n",
            Notice::Done => b"done\n",
        };
        // EPIPE (the server died) is ignored: the job goes on. SIGPIPE is ignored by the
        // Rust runtime, so the write just fails.
        // SAFETY: writes from a valid buffer of the given length.
        let _ = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    }
}

/// The `supervise <job-id>` subcommand.
pub fn run(job_id: &str) -> Result<(), SupervisorError> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
    let notifier = Notifier::from_env();
    let data_dir = crate::paths::default_data_dir(&crate::paths::Env::from_process());
    let path = job_file(&data_dir, job_id);
    let bytes = fs::read(&path).map_err(|source| SupervisorError::JobFile {
        path: path.clone(),
        source,
    })?;
    let _ = fs::remove_file(&path);
    let file: JobFile = serde_json::from_slice(&bytes)
        .map_err(|source| SupervisorError::Malformed { path, source })?;
    let store = Store::open(StoreOptions {
        path: file.store_path.clone(),
        role: OpenRole::Supervisor,
        privacy: Privacy {
            store_prompts: file.store_prompts,
            redact_secrets: file.redact_secrets,
        },
        job_retention_days: file.job_retention_days,
    })?;
    let cancel = CancelToken::new();
    runner::watch_flag(&TERMINATED, cancel.clone());
    let me = SupervisorId {
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        start_time: super::control::own_start_time(),
    };
    let notify = |notice: Notice| notifier.tell(notice);
    match runner::claim_until_started(&store, &file.plan, &me, &cancel) {
        Ok(Claim::Started(_)) => runner::execute(&store, &file.plan, &cancel, &notify),
        Ok(_) => notify(Notice::Done),
        Err(error) => {
            runner::fail_unstarted(
                &store,
                &file.plan.job_id,
                crate::error::ErrorCategory::Internal,
                format!("the supervisor could not claim a run slot: {error}"),
            );
            notify(Notice::Done);
        }
    }
    Ok(())
}
