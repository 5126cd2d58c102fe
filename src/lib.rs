//! llm-cli-gateway: a stdio MCP server that drives the coding-agent CLIs on this machine.
//!
//! Data flows one way through these layers (see README.md, "Architecture"):
//! `mcp` (thin handlers) → `providers` (pure adapters) → `jobs` (admission, waiting) →
//! `store` (the only module that speaks SQL). `config` and `paths` resolve the settings
//! every layer reads; `clock` is the one timestamp format.

pub mod cli;
pub mod cli_version;
pub mod client_config;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod jobs;
pub mod mcp;
pub mod models;
pub mod paths;
pub mod policy;
pub mod providers;
pub mod serve;
pub mod store;
pub mod suggest;
pub mod worktree;
