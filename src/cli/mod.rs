//! The terminal commands: `doctor`, `print-client-config`, `run`, `jobs …` and `logs …`
//! (config-and-cli.md, "Command line").
//!
//! Owns: what each command prints (stdout for results, stderr for progress and errors),
//! its exit code (0 success, 1 the operation failed — clap itself exits 2 on a usage
//! error, and so does a malformed job or request id), and opening the configured store the
//! way a command line does. Each command goes through the same layers as the MCP tools:
//! `run` through [`crate::jobs::JobService`], `jobs` through the store and
//! [`crate::jobs::control`] (orphan detection before any status is shown, the same cancel),
//! `logs` through the store's flight-recorder reads and retention sweep.
//!
//! Not here: argument parsing (`main.rs`, clap), the diagnostics themselves
//! ([`crate::doctor`]), the client entries ([`crate::client_config`]), and any SQL.

pub mod jobs;
pub mod logs;
pub mod run;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use crate::config::{self, Backend, Env, LoadedConfig};
use crate::serve::{OpenedStore, open_store};

/// Exit code of a usage error (clap's).
pub const EXIT_USAGE: u8 = 2;

/// A command's failure: the message for stderr and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// The operation failed (exit 1).
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// The command was used wrongly (exit 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }
}

/// Turns a command's result into the process exit code, printing the error on stderr.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("llm-cli-gateway: error: {}", error.message);
            ExitCode::from(error.code)
        }
    }
}

/// Loads the configuration (logging its warnings), or fails with its message.
pub fn load_config() -> Result<LoadedConfig, CliError> {
    match config::load(&Env::from_process()) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            Ok(loaded)
        }
        Err(error) => Err(CliError::failed(error.to_string())),
    }
}

/// Opens the durable store for a command that reads jobs or the flight recorder. With
/// backend `memory` or `none` there is nothing durable to read, and the error says so.
pub fn open_durable_store(loaded: &LoadedConfig) -> Result<OpenedStore, CliError> {
    let config = &loaded.config;
    if config.persistence.backend != Backend::Sqlite {
        return Err(CliError::failed(format!(
            "backend `{}` keeps no durable jobs or flight recorder, so there is nothing to read \
             from a terminal (set `[persistence] backend = \"sqlite\"` in config.toml)",
            config.persistence.backend.as_str()
        )));
    }
    crate::paths::ensure_private_dir(&config.data_dir).map_err(|error| {
        CliError::failed(format!(
            "cannot create the data directory {}: {error} (set LLM_GATEWAY_HOME to a writable directory)",
            config.data_dir.display()
        ))
    })?;
    open_store(config).map_err(|error| CliError::failed(error.to_string()))
}

/// A small tokio runtime for the commands that wait on jobs (`run`, `jobs watch`).
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| CliError::failed(format!("cannot start the async runtime: {error}")))
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| CliError::failed(format!("cannot serialise the result: {error}")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .map_err(|error| CliError::failed(format!("cannot write to stdout: {error}")))
}

/// Checks that `id` looks like the UUID the store hands out (a usage error otherwise).
pub fn check_uuid(what: &str, id: &str) -> Result<(), CliError> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        CliError::usage(format!(
            "`{id}` is not a {what} id: expected a UUID such as 0190a5c4-1d2b-7c3e-9f00-123456789abc \
             (see `llm-cli-gateway {} list`)",
            if what == "job" { "jobs" } else { "logs" }
        ))
    })
}

/// `llm-cli-gateway doctor [--json]`: exit 0 when `ok`, else 1.
pub fn doctor(json: bool) -> ExitCode {
    let binary = std::env::current_exe().ok();
    let report = crate::doctor::diagnose(&Env::from_process(), binary);
    let printed = if json {
        match serde_json::to_value(&report) {
            Ok(value) => print_json(&value),
            Err(error) => Err(CliError::failed(format!(
                "cannot serialise the report: {error}"
            ))),
        }
    } else {
        let color = std::io::stdout().is_terminal();
        print!("{}", crate::doctor::render_human(&report, color));
        Ok(())
    };
    if let Err(error) = printed {
        return finish(Err(error));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `llm-cli-gateway print-client-config [--client …]`.
pub fn print_client_config(client: Option<crate::client_config::Client>) -> ExitCode {
    finish((|| {
        let loaded = load_config()?;
        let binary = std::env::current_exe()
            .and_then(|path| path.canonicalize())
            .map_err(|error| {
                CliError::failed(format!("cannot find the path of this binary: {error}"))
            })?;
        let clients: Vec<_> = match client {
            Some(client) => vec![client],
            None => crate::client_config::Client::ALL.to_vec(),
        };
        print!(
            "{}",
            crate::client_config::render_all(
                &clients,
                &binary,
                loaded.config.jobs.sync_deadline_ms
            )
        );
        Ok(())
    })())
}
