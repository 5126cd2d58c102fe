//! Jobs above the store: the rules of jobs.md that need more than SQL.
//!
//! Owns admission ([`JobService::submit`]: validation, session and cwd resolution, the
//! PATH lookup, the request key, dedup and the queue limit through the store), running a job
//! (the shared executor-and-finalisation code of [`runner`], the in-process runner and the
//! detached [`supervisor`]), waiting for a job's end ([`wait`]), and process-level control
//! ([`control`]: orphan detection by pid and start time, cancel signals).
//!
//! Data flows one way: the MCP layer calls in here; this layer calls `providers` (pure
//! adapters), `exec` (processes) and `store` (the only SQL). Nothing here speaks MCP.

pub mod admission;
pub mod answer;
pub mod control;
pub mod request_key;
pub mod runner;
pub mod service;
pub mod supervisor;
pub mod wait;

pub use admission::{Admitted, JobError};
pub use runner::RunPlan;
pub use service::JobService;
pub use wait::{WaitEnd, WaitOptions};
