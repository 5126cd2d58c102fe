//! The process executor: runs one program in its own process group and reports what
//! happened (jobs.md, "The executor").
//!
//! Owns so far: the PATH lookup done at admission ([`resolve_program`]).
//!
//! Not here: anything about providers or MCP. The caller maps [`NotFound`] to
//! `not_installed` with the provider's install command.

mod resolve;

pub use resolve::{NotFound, install_dirs, resolve_program, resolve_program_from_env, search_dirs};
