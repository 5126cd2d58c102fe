//! The process executor: runs one program in its own process group and reports what
//! happened (jobs.md, "The executor").
//!
//! Owns: spawning ([`ExecSpec`]), concurrent reading of stdout and stderr into a caller's
//! [`OutputSink`], the limits that end a run ([`Limits`]: idle timeout, wall timeout, output
//! cap; and [`CancelToken`]), the group kill (SIGTERM, grace, SIGKILL to the whole group,
//! leader kept unreaped until then), the stray-grandchild rule, the [`ExecReport`] with its
//! end reason and compatibility exit codes, and the PATH lookup ([`resolve_program`]).
//!
//! Not here: anything about providers or MCP. The caller turns an `Invocation` into an
//! [`ExecSpec`] (and writes/removes its temp files), maps [`SpawnError::NotFound`] to
//! `not_installed` with the provider's install command, stores output, feeds parsers, and
//! decides what an end reason means for a job.
//!
//! # Blocking API, usable from threads and from tokio
//!
//! [`run`] is a plain blocking function that uses std threads internally (two pipe readers,
//! an optional stdin writer and a waiter for the leader's exit); it never needs an async
//! runtime. The supervisor calls it directly; async code calls it through
//! `tokio::task::spawn_blocking`:
//!
//! ```no_run
//! # async fn demo() {
//! use llm_cli_gateway::exec::{self, Activity, CancelToken, ExecSpec, Limits, Stream};
//! let spec = ExecSpec::new("/bin/echo").arg("hi");
//! let cancel = CancelToken::new();
//! let report = tokio::task::spawn_blocking(move || {
//!     let mut sink = |_: Stream, bytes: &[u8], _: std::time::SystemTime| {
//!         print!("{}", String::from_utf8_lossy(bytes));
//!         Activity::Progress
//!     };
//!     exec::run(&spec, &Limits::default(), &cancel, &mut sink)
//! })
//! .await
//! .expect("the executor thread panicked");
//! # let _ = report;
//! # }
//! ```
//!
//! Why blocking: the parent-death signal (`PR_SET_PDEATHSIG`) follows the *thread* that
//! forked the child, not the process. [`run`] forks on the calling thread and does not
//! return before the child is reaped, so that thread necessarily outlives the child — in the
//! supervisor's main thread and in a `spawn_blocking` pool thread alike. An async API that
//! forked on an arbitrary runtime worker could not promise that.
//!
//! # Assumptions about the host process
//!
//! Nothing else in the process may reap children it did not spawn (`waitpid(-1)`, a
//! `SIGCHLD` handler that reaps everything): the executor observes the leader's exit without
//! reaping it (`waitid(WNOWAIT)`) and reaps it only after the final group kill, so that its
//! process-group id cannot be reused while it may still be signalled. If the leader is reaped
//! behind its back anyway, the executor stops signalling the group and says so in a warning.

mod cancel;
mod group;
mod report;
mod resolve;
mod run;
mod sink;
mod spec;

pub use cancel::CancelToken;
pub use report::{
    COMPAT_IDLE_TIMEOUT, COMPAT_NOT_INSTALLED, COMPAT_OUTPUT_OVERFLOW, COMPAT_TIMEOUT, EndReason,
    ExecReport, ExecWarning, ProcessExit, SpawnError,
};
pub use resolve::{NotFound, install_dirs, resolve_program, resolve_program_from_env, search_dirs};
pub use run::run;
pub use sink::{Activity, OutputSink, Stream};
pub use spec::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_KILL_GRACE, DEFAULT_OUTPUT_CAP, DEFAULT_STRAY_WAIT,
    DEFAULT_WALL_TIMEOUT, ExecSpec, Limits, OVERFLOW_KILL_GRACE,
};
