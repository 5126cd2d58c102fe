//! Jobs above the store: the rules of jobs.md that need more than SQL — process-level
//! control (orphan detection, cancel signals) today, admission and waiting as they arrive.
//!
//! The store records job state; this layer inspects and signals processes and decides.
//! Nothing here speaks SQL or MCP.

pub mod control;
