//! `llm-cli-gateway run <cli> [--model M] [--session S] [--async] [--json] PROMPT`: one
//! request through the same pipeline as the MCP request tools, for terminals and scripts.
//!
//! The request is parsed into the same typed [`AnyRequest`] as a tool call's arguments,
//! admitted by [`JobService::submit`] (validation, sessions, PATH lookup, dedup, queue
//! limits, the flight-recorder row) and waited for with [`wait::wait_for_end`]. A terminal
//! has no client-side tool timeout, so a sync `run` waits for the job's end instead of
//! deferring; Ctrl-C cancels the job. `--async` prints the job id and returns at once (the
//! job runs on under its supervisor; collect it with `jobs result`).
//!
//! Owns the terminal output: the answer (or `--json` the structured result) on stdout, a
//! progress line per event on stderr only when stderr is a terminal, errors on stderr with
//! their category and fix, exit 1 when the request failed. Not here: any rule of admission
//! or running (`jobs`), and MCP shapes.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{CliError, print_json};
use crate::config::LoadedConfig;
use crate::jobs::{JobError, JobService, WaitEnd, WaitOptions, answer, wait};
use crate::models::ModelRegistry;
use crate::providers::{AnyRequest, Provider};
use crate::store::{JobStatus, Runner};

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub cli: Provider,
    pub model: Option<String>,
    pub session: Option<String>,
    pub asynchronous: bool,
    pub json: bool,
    /// The prompt, or `-` to read it from stdin.
    pub prompt: String,
}

fn job_error(error: JobError) -> CliError {
    let mut message = format!("{}: {}", error.category.as_str(), error.message);
    if let Some(job) = &error.job_id {
        message.push_str(&format!(" (job {job})"));
    }
    if !error.remediation.is_empty() {
        message.push_str(&format!("\nFix: {}", error.remediation));
    }
    CliError::failed(message)
}

/// The tool arguments this command line stands for.
fn request_arguments(args: &RunArgs, prompt: String) -> Value {
    let mut map = Map::new();
    map.insert("prompt".into(), Value::String(prompt));
    if let Some(model) = &args.model {
        map.insert("model".into(), Value::String(model.clone()));
    }
    if let Some(session) = &args.session {
        map.insert("sessionId".into(), Value::String(session.clone()));
    }
    Value::Object(map)
}

fn read_prompt(raw: &str) -> Result<String, CliError> {
    if raw != "-" {
        return Ok(raw.to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|error| CliError::failed(format!("cannot read the prompt from stdin: {error}")))?;
    if text.trim().is_empty() {
        return Err(CliError::usage(
            "the prompt read from stdin is empty: pipe the prompt in, e.g. `echo 'hi' | llm-cli-gateway run claude -`",
        ));
    }
    Ok(text)
}

/// Runs the command.
pub fn run(loaded: LoadedConfig, args: RunArgs) -> Result<(), CliError> {
    let prompt = read_prompt(&args.prompt)?;
    let request =
        AnyRequest::from_value(args.cli, request_arguments(&args, prompt)).map_err(|error| {
            CliError::usage(format!("invalid request for {}: {error}", args.cli.key()))
        })?;
    let config = loaded.config.clone();
    if !config.provider(args.cli).enabled {
        return Err(CliError::failed(format!(
            "{} is disabled in config.toml ([providers.{}] enabled = false)",
            args.cli.key(),
            args.cli.key()
        )));
    }
    crate::paths::ensure_private_dir(&config.data_dir).map_err(|error| {
        CliError::failed(format!(
            "cannot create the data directory {}: {error} (set LLM_GATEWAY_HOME to a writable directory)",
            config.data_dir.display()
        ))
    })?;
    let opened =
        crate::serve::open_store(&config).map_err(|error| CliError::failed(error.to_string()))?;
    let runtime = super::runtime()?;
    let models = ModelRegistry::new(&config);
    let result = runtime.block_on(async {
        let jobs = JobService::new(config, models, opened.store.clone());
        if args.asynchronous && jobs.runner() != Runner::Supervisor {
            return Err(CliError::usage(
                "--async needs durable jobs run by a supervisor (`[persistence] backend = \"sqlite\"` and `[jobs] runner = \"supervisor\"`): with this configuration the job would die when this command exits. Run without --async.",
            ));
        }
        let correlation_id = uuid::Uuid::now_v7().to_string();
        let admitted = jobs
            .submit(request, correlation_id)
            .await
            .map_err(job_error)?;
        if args.asynchronous {
            return print_async(&args, &admitted);
        }
        run_sync(&jobs, &args, &admitted).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    drop(opened);
    result
}

fn print_async(args: &RunArgs, admitted: &crate::jobs::Admitted) -> Result<(), CliError> {
    if args.json {
        print_json(&json!({
            "jobId": admitted.job.id,
            "deduped": admitted.deduped,
            "cli": args.cli.key(),
            "correlationId": admitted.correlation_id,
            "gatewaySessionId": admitted.gateway_session,
        }))
    } else {
        println!("{}", admitted.job.id);
        Ok(())
    }
}

async fn run_sync(
    jobs: &Arc<JobService>,
    args: &RunArgs,
    admitted: &crate::jobs::Admitted,
) -> Result<(), CliError> {
    let job_id = admitted.job.id.clone();
    let progress = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let cli = args.cli.key();
    let on_event = |event: &crate::store::EventRow| {
        if progress {
            eprintln!(
                "[{cli} {:>4}s] {}: {}",
                started.elapsed().as_secs(),
                event.kind,
                event.message
            );
        }
    };
    let options = WaitOptions {
        deadline: None,
        wake: jobs.subscribe(&job_id),
        after_seq: if admitted.deduped {
            admitted.job.last_event_seq
        } else {
            0
        },
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let end = wait::wait_for_end(jobs.store(), &job_id, options, on_event, interrupt)
        .await
        .map_err(|error| CliError::failed(format!("the job store failed: {error}")))?;
    let job = match end {
        WaitEnd::Ended(job) | WaitEnd::Deadline(job) => job,
        WaitEnd::Interrupted(_) => {
            // Cancels the job only when no other caller (of any process) is attached to it.
            jobs.cancel_for_caller(&job_id, &admitted.request_id)
                .await
                .map_err(|error| CliError::failed(format!("cannot cancel the job: {error}")))?;
            return Err(CliError::failed(format!(
                "interrupted: job {job_id} was canceled"
            )));
        }
    };
    if job.status != JobStatus::Completed {
        return Err(job_error(JobError::from_job(&job)));
    }
    let answer = answer::collect(jobs.store(), admitted, &job)
        .await
        .map_err(|error| CliError::failed(format!("the job store failed: {error}")))?;
    if args.json {
        return print_json(&answer.structured);
    }
    let answer = answer.text;
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{answer}");
    if !answer.ends_with('\n') {
        let _ = writeln!(stdout);
    }
    Ok(())
}
