//! The `llm-cli-gateway` command line: `serve` (the default) and the terminal commands.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_cli_gateway::cli::{self, CliError};
use llm_cli_gateway::client_config::Client;
use llm_cli_gateway::config::{self, Env};
use llm_cli_gateway::providers::Provider;
use llm_cli_gateway::serve;
use llm_cli_gateway::store::{JobStatus, RequestStatus};
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
    /// Diagnose the setup: config, store, and each CLI's install, version and login.
    /// Exits 0 when the gateway can serve, 1 otherwise.
    Doctor {
        /// Print the report as JSON (schema_version 1).
        #[arg(long)]
        json: bool,
    },
    /// Print the MCP client entry for this binary (all clients when no --client).
    PrintClientConfig {
        /// Only this client's entry.
        #[arg(long, value_enum)]
        client: Option<Client>,
    },
    /// Send one request to a CLI through the gateway's pipeline (recorded like MCP calls).
    Run {
        /// The CLI: claude, codex, gemini, grok, or vibe (= mistral).
        cli: Provider,
        /// The model (a name or an alias; see the `list_models` tool).
        #[arg(long)]
        model: Option<String>,
        /// Continue a session: a gateway session id (gw-…) or the CLI's own session id.
        #[arg(long)]
        session: Option<String>,
        /// Print the job id and return at once; collect it with `jobs result ID`.
        #[arg(long = "async")]
        asynchronous: bool,
        /// Print the structured result as JSON instead of the answer text.
        #[arg(long)]
        json: bool,
        /// The prompt; `-` reads it from stdin.
        prompt: String,
    },
    /// The job store: list, show, result, cancel, watch.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The flight recorder (one row per request): list, show, prune.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Run one job detached from the server that admitted it (started by the server).
    #[command(hide = true)]
    Supervise { job_id: String },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs in this state (queued, running, completed, failed, canceled, orphaned).
        #[arg(long)]
        status: Option<JobStatus>,
        /// Only this CLI's jobs.
        #[arg(long)]
        cli: Option<Provider>,
        /// How many jobs (1..=200).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
        limit: u32,
        /// Print JSON (`{"jobs": [JobSnapshot]}`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One job as JSON.
    Show { id: String },
    /// A finished job's answer (exit 1 unless it completed).
    Result {
        id: String,
        /// Print the structured result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job.
    Cancel { id: String },
    /// Follow a job until it ends (progress on stderr when it is a terminal).
    Watch { id: String },
}

#[derive(Subcommand)]
enum LogsCommand {
    /// Recorded requests, newest first.
    List {
        /// Only this CLI's requests.
        #[arg(long)]
        cli: Option<Provider>,
        /// Only requests in this state (started, deferred, completed, failed, canceled, orphaned).
        #[arg(long)]
        status: Option<RequestStatus>,
        /// How many rows (1..=1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One request (by request id or correlation id) as JSON.
    Show { id: String },
    /// Delete what retention no longer keeps, now.
    Prune {
        /// Delete requests and approvals older than this many days (default:
        /// `requestRetentionDays`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        older_than: Option<u32>,
    },
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run_serve(),
        Command::Config { show: _, example } => run_config(example),
        Command::Doctor { json } => cli::doctor(json),
        Command::PrintClientConfig { client } => cli::print_client_config(client),
        Command::Run {
            cli: provider,
            model,
            session,
            asynchronous,
            json,
            prompt,
        } => cli::finish(cli::load_config().and_then(|loaded| {
            cli::run::run(
                loaded,
                cli::run::RunArgs {
                    cli: provider,
                    model,
                    session,
                    asynchronous,
                    json,
                    prompt,
                },
            )
        })),
        Command::Jobs(command) => cli::finish(run_jobs(command)),
        Command::Logs(command) => cli::finish(run_logs(command)),
        Command::Supervise { job_id } => run_supervise(&job_id),
    }
}

fn run_jobs(command: JobsCommand) -> Result<(), CliError> {
    let loaded = cli::load_config()?;
    let opened = cli::open_durable_store(&loaded)?;
    let store = &opened.store;
    match command {
        JobsCommand::List {
            status,
            cli: provider,
            limit,
            json,
        } => cli::jobs::list(store, status, provider, limit, json),
        JobsCommand::Show { id } => cli::jobs::show(store, &id),
        JobsCommand::Result { id, json } => cli::jobs::result(store, &id, json),
        JobsCommand::Cancel { id } => cli::jobs::cancel(store, &id),
        JobsCommand::Watch { id } => cli::jobs::watch(store, &id),
    }
}

fn run_logs(command: LogsCommand) -> Result<(), CliError> {
    let loaded = cli::load_config()?;
    let opened = cli::open_durable_store(&loaded)?;
    let store = &opened.store;
    match command {
        LogsCommand::List {
            cli: provider,
            status,
            limit,
            json,
        } => cli::logs::list(store, provider, status, limit, json),
        LogsCommand::Show { id } => cli::logs::show(store, &id),
        LogsCommand::Prune { older_than } => cli::logs::prune(store, &loaded.config, older_than),
    }
}

/// glibc gives threads that allocate at the same time arenas of their own (up to 8 per
/// core), each keeping freed memory around: with a thread per running supervised job that
/// was megabytes of the server's RSS. Two arenas are plenty for this workload. Before any
/// thread starts, so every thread sees it.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called while the process has one thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
