//! The integration suite, built as one test binary.
//!
//! One binary instead of one per file: each test binary links the whole crate and its
//! dependencies, so thirty of them cost minutes of linking and gigabytes of disk (enough to
//! run CI out of space). Each file below is one area; `cargo test <module>::` runs one area,
//! for example `cargo test --test integration store_concurrency::`.
//!
//! Shared helpers: `common` (a `TestHome` per test, the real binary over rmcp's client, fake
//! CLIs) and `providers_support` (fixtures for the pure adapter tests).

mod common;
#[path = "../../examples/gwbench/harness.rs"]
mod harness;
mod providers_support;

mod admin_tools;
mod bench_smoke;
mod cache_resources;
mod cli_client_config;
mod cli_commands;
mod datasette;
mod doctor;
mod exec_process;
mod exec_resolve;
mod fake_cli;
mod job_tools;
mod jobs_durable;
mod jobs_lifecycle;
mod mcp_server;
mod mcp_servers;
mod policy_approval;
mod policy_integrity;
mod providers_claude;
mod providers_codex;
mod providers_gemini;
mod providers_grok;
mod providers_help_contract;
mod providers_proptest;
mod providers_request;
mod providers_vibe;
mod request_tools;
mod session_tools;
mod store_concurrency;
mod worktree;
