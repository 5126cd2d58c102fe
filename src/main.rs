//! The `llm-cli-gateway` command line: `serve` (the default) and the terminal commands.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_cli_gateway::config::{self, Env};
use llm_cli_gateway::serve;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "llm-cli-gateway",
    version,
    about = "A stdio MCP server that drives the coding-agent CLIs on this machine \
             (claude, codex, gemini, grok, vibe), with one SQLite flight recorder.",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (the default when no command is given).
    Serve,
    /// Show the resolved configuration with the source of each value, or the example file.
    Config {
        /// Print every resolved value and where it came from (the default).
        #[arg(long, conflicts_with = "example")]
        show: bool,
        /// Print config.example.toml: every key with its default and a line of explanation.
        #[arg(long)]
        example: bool,
    },
    /// Run one job detached from the server that admitted it (started by the server).
    #[command(hide = true)]
    Supervise { job_id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run_serve(),
        Command::Config { show: _, example } => run_config(example),
        Command::Supervise { job_id } => run_supervise(&job_id),
    }
}

/// Logs go to stderr only (stdout is the MCP channel); `RUST_LOG` filters, default `info`.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

fn load_config() -> Result<config::LoadedConfig, ExitCode> {
    match config::load(&Env::from_process()) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            Ok(loaded)
        }
        Err(error) => {
            eprintln!("llm-cli-gateway: error: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn run_serve() -> ExitCode {
    let loaded = match load_config() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match serve::run(loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("llm-cli-gateway: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_supervise(job_id: &str) -> ExitCode {
    match llm_cli_gateway::jobs::supervisor::run(job_id) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(job = job_id, %error, "supervisor failed");
            ExitCode::FAILURE
        }
    }
}

fn run_config(example: bool) -> ExitCode {
    if example {
        print!("{}", config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    match load_config() {
        Ok(loaded) => {
            print!("{}", loaded.render_show());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
