//! Admin and observability tools (mcp-surface.md "Admin and observability tools"):
//! `list_models`, `llm_process_health`, `cli_versions`, `cli_upgrade` and
//! `llm_request_result`.
//!
//! Owns: their parameters, output shapes and rules — running the `--version` probes
//! concurrently and reporting them, the upgrade plan per CLI and the `[admin]
//! allow_cli_upgrade` gate of a real upgrade run (bounded by `timeoutMs`, killed as a group by
//! the executor), the window of a flight-recorder row. Not here: locating a CLI, the bounded
//! `--version` probe itself, reading and comparing its version ([`crate::cli_version`]);
//! `approval_list` (`approval_tools`), running provider requests, the store's SQL.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::GatewayState;
use super::result::ToolError;
use crate::cli_version::{self, VersionStatus};
use crate::exec;
use crate::models::CliModels;
use crate::providers::Provider;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListModelsParams {
    /// Only this CLI; all five when absent.
    #[serde(default)]
    pub cli: Option<Provider>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListModelsOutput {
    pub clis: Vec<CliModels>,
}

pub async fn list_models(
    state: &GatewayState,
    params: ListModelsParams,
) -> Result<Value, ToolError> {
    let clis = match params.cli {
        Some(cli) => vec![state.models.for_cli(cli).clone()],
        None => Provider::ALL
            .into_iter()
            .map(|cli| state.models.for_cli(cli).clone())
            .collect(),
    };
    Ok(json!(ListModelsOutput { clis }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthOutput {
    pub name: String,
    pub version: String,
    pub pid: u32,
    pub uptime_ms: u64,
    /// Resident memory of this server process, in bytes; null where it cannot be read.
    pub rss_bytes: Option<u64>,
    pub jobs: JobCounts,
    pub limits: LimitsView,
    pub persistence: PersistenceView,
    /// The providers whose tools are registered (`[providers.<cli>] enabled`).
    pub enabled_providers: Vec<Provider>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    pub running: u64,
    pub queued: u64,
    /// Per provider key; every provider is listed.
    pub by_provider: BTreeMap<String, ProviderJobCounts>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderJobCounts {
    pub running: u64,
    pub queued: u64,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsView {
    pub max_running_jobs: u32,
    pub max_running_jobs_per_provider: u32,
    pub max_queued_jobs: u32,
    pub queue_timeout_ms: u64,
    pub max_job_output_bytes: u64,
    pub max_prompt_chars: u32,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistenceView {
    /// `sqlite`, `memory` or `none`.
    pub backend: String,
    /// The database file; for `memory` and `none` a private file removed at exit.
    pub path: String,
    pub durable: bool,
    pub retention_days: u32,
    pub request_retention_days: u32,
    pub session_ttl_days: u32,
    pub dedup_window_ms: u64,
    /// Whether the async and job tools are registered.
    pub async_jobs_enabled: bool,
    /// Whether sync requests turn into deferred jobs at the sync deadline.
    pub sync_deferral_enabled: bool,
    pub flight_recorder_enabled: bool,
    pub journal_mode: String,
    pub schema_version: i64,
    pub sources: SourcesView,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcesView {
    /// The config file that was read, or null when defaults were used.
    pub config_file: Option<String>,
    pub env_overrides: Vec<EnvOverrideView>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvOverrideView {
    pub var: String,
    pub key: String,
    pub deprecated: bool,
}

pub async fn process_health(state: &GatewayState, _params: NoParams) -> Result<Value, ToolError> {
    let config = &state.loaded.config;
    let counts = state.store.job_counts().await.map_err(|error| {
        tracing::error!(%error, "reading job counts failed");
        ToolError::internal(format!("The gateway's database failed: {error}"))
    })?;
    let mut by_provider = BTreeMap::new();
    let (mut running, mut queued) = (0, 0);
    for cli in Provider::ALL {
        let (cli_running, cli_queued) = counts
            .iter()
            .find(|c| c.cli == cli)
            .map(|c| (c.running.max(0) as u64, c.queued.max(0) as u64))
            .unwrap_or_default();
        running += cli_running;
        queued += cli_queued;
        by_provider.insert(
            cli.key().to_string(),
            ProviderJobCounts {
                running: cli_running,
                queued: cli_queued,
            },
        );
    }
    let limits = &config.limits;
    let persistence = &config.persistence;
    let sources = &state.loaded.sources;
    Ok(json!(HealthOutput {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        rss_bytes: resident_memory_bytes(),
        jobs: JobCounts {
            running,
            queued,
            by_provider,
        },
        limits: LimitsView {
            max_running_jobs: limits.max_running_jobs,
            max_running_jobs_per_provider: limits.max_running_jobs_per_provider,
            max_queued_jobs: limits.max_queued_jobs,
            queue_timeout_ms: limits.queue_timeout_ms,
            max_job_output_bytes: limits.max_job_output_bytes,
            max_prompt_chars: limits.max_prompt_chars,
        },
        persistence: PersistenceView {
            backend: persistence.backend.as_str().to_string(),
            path: state.store.path().display().to_string(),
            durable: state.mode.durable(),
            retention_days: persistence.retention_days,
            request_retention_days: persistence.request_retention_days,
            session_ttl_days: persistence.session_ttl_days,
            dedup_window_ms: persistence.dedup_window_ms,
            async_jobs_enabled: state.mode.async_jobs_enabled(),
            sync_deferral_enabled: state.mode.async_jobs_enabled()
                && config.jobs.sync_deadline_ms > 0,
            flight_recorder_enabled: state.mode.flight_recorder_enabled(),
            journal_mode: state.store.journal_mode().to_string(),
            schema_version: state.store.schema_version(),
            sources: SourcesView {
                config_file: sources
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
                env_overrides: sources
                    .env_overrides
                    .iter()
                    .map(|o| EnvOverrideView {
                        var: o.var.clone(),
                        key: o.key.clone(),
                        deprecated: o.deprecated,
                    })
                    .collect(),
            },
        },
        enabled_providers: Provider::ALL
            .into_iter()
            .filter(|p| config.provider(*p).enabled)
            .collect(),
    }))
}

/// The resident set size of this process. Linux reads `/proc/self/statm`; elsewhere the
/// figure is unknown (null) rather than a guess.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page_size)
        .ok()
        .map(|size| resident_pages * size)
}

// ---------------------------------------------------------------------------------------
// cli_versions

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CliVersionsParams {
    /// Only this CLI; all five when absent.
    #[serde(default)]
    pub cli: Option<Provider>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CliVersionsOutput {
    pub clis: Vec<CliVersion>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CliVersion {
    /// The provider key (`mistral` runs the `vibe` binary).
    pub cli: Provider,
    /// `[providers.<cli>] binary`: a name looked up on PATH, or a path.
    pub binary: String,
    pub installed: bool,
    /// Where the binary was found; null when it is not installed.
    pub path: Option<String>,
    /// The version number `--version` printed (e.g. `2.1.329`); null when unknown.
    pub version: Option<String>,
    /// The first line `--version` printed, as is.
    pub raw_version: Option<String>,
    /// The version the gateway's adapter was written and tested against.
    pub tested_version: String,
    /// `tested`, `newer`, `older` or `unknown`.
    pub version_status: VersionStatus,
    /// True when the version is the tested one or newer within the same major version;
    /// null when the version is unknown.
    pub compatible: Option<bool>,
    /// Why the probe failed (timeout, non-zero exit), when it did.
    pub error: Option<String>,
}

/// The output of a bounded run: streams' tails and how it ended.
struct Captured {
    report: exec::ExecReport,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `spec` (an upgrade command) off the runtime with only a wall limit; keeps the last
/// `keep` bytes of each stream. A timeout kills the whole process group (the executor's
/// rule).
async fn run_bounded(spec: exec::ExecSpec, wall: Duration, keep: usize) -> Option<Captured> {
    tokio::task::spawn_blocking(move || {
        let limits = exec::Limits {
            idle_timeout: None,
            wall_timeout: Some(wall),
            output_cap: 16 * 1024 * 1024,
            kill_grace: Duration::from_secs(2),
            stray_wait: Duration::from_secs(1),
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut sink = |stream: exec::Stream, bytes: &[u8], _: std::time::SystemTime| {
            let buffer = match stream {
                exec::Stream::Stdout => &mut stdout,
                exec::Stream::Stderr => &mut stderr,
            };
            buffer.extend_from_slice(bytes);
            if buffer.len() > keep {
                buffer.drain(..buffer.len() - keep);
            }
            exec::Activity::Progress
        };
        let report = exec::run(&spec, &limits, &exec::CancelToken::new(), &mut sink);
        Captured {
            report,
            stdout,
            stderr,
        }
    })
    .await
    .ok()
}

/// Where `binary` is, on this process's `PATH` or in the usual install dirs.
fn resolve_binary(binary: &str) -> Option<std::path::PathBuf> {
    cli_version::locate(binary, &crate::paths::Env::from_process()).ok()
}

async fn probe(cli: Provider, binary: String) -> CliVersion {
    let mut out = CliVersion {
        cli,
        binary: binary.clone(),
        installed: false,
        path: None,
        version: None,
        raw_version: None,
        tested_version: cli.tested_version().to_string(),
        version_status: VersionStatus::Unknown,
        compatible: None,
        error: None,
    };
    let Some(path) = resolve_binary(&binary) else {
        out.error = Some(format!(
            "not found on PATH; install: {}",
            cli.install_command()
        ));
        return out;
    };
    out.installed = true;
    out.path = Some(path.display().to_string());
    let run = cli_version::probe_version_async(path, BTreeMap::new()).await;
    if run.end == exec::EndReason::Timeout {
        out.error = Some(format!(
            "`{} --version` did not answer within {} s",
            binary,
            cli_version::PROBE_TIMEOUT.as_secs()
        ));
    } else if !run.succeeded() {
        out.error = Some(format!(
            "`{} --version` failed ({}, exit {:?})",
            binary,
            run.end.as_str(),
            run.exit_code
        ));
    }
    let text = run.output();
    out.raw_version = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string());
    let parsed = cli_version::parse(text);
    out.version = parsed.as_ref().map(ToString::to_string);
    let comparison = cli_version::compare(parsed.as_ref(), cli.tested_version());
    out.version_status = comparison.status;
    out.compatible = comparison.compatible;
    out
}

fn selected(cli: Option<Provider>) -> Vec<Provider> {
    match cli {
        Some(cli) => vec![cli],
        None => Provider::ALL.to_vec(),
    }
}

pub async fn cli_versions(
    state: &GatewayState,
    params: CliVersionsParams,
) -> Result<Value, ToolError> {
    let probes: Vec<_> = selected(params.cli)
        .into_iter()
        .map(|cli| {
            let binary = state.loaded.config.provider(cli).binary.clone();
            tokio::spawn(probe(cli, binary))
        })
        .collect();
    let mut clis = Vec::new();
    for handle in probes {
        clis.push(
            handle
                .await
                .map_err(|e| ToolError::internal(format!("a version probe failed: {e}")))?,
        );
    }
    Ok(json!(CliVersionsOutput { clis }))
}

// ---------------------------------------------------------------------------------------
// cli_upgrade

const UPGRADE_TIMEOUT_MS: (i64, i64) = (30_000, 3_600_000);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CliUpgradeParams {
    /// The CLI to upgrade (`mistral` upgrades vibe).
    pub cli: Provider,
    /// `latest` (default) or a version / npm dist-tag such as `2.1.330` or `next`.
    #[serde(default = "default_target")]
    pub target: String,
    /// Only return the plan (default true). A real run needs `[admin] allow_cli_upgrade =
    /// true` in config.toml.
    #[serde(default = "default_true")]
    pub dry_run: bool,
    /// The most time the upgrade may take (30000..=3600000 ms, default 600000); it is killed
    /// with its whole process group after that.
    #[serde(default = "default_upgrade_timeout")]
    #[schemars(range(min = 30000, max = 3600000))]
    pub timeout_ms: i64,
}

fn default_target() -> String {
    "latest".to_string()
}

fn default_true() -> bool {
    true
}

fn default_upgrade_timeout() -> i64 {
    600_000
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeCommand {
    pub program: String,
    pub args: Vec<String>,
    /// The command as a person would type it.
    pub display: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRun {
    pub exit_code: Option<i32>,
    /// `exited`, `timeout`, … (the executor's end reason).
    pub end_reason: String,
    pub timed_out: bool,
    pub success: bool,
    pub duration_ms: u64,
    /// The last 4 KiB of stdout and stderr.
    pub stdout_tail: String,
    pub stderr_tail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CliUpgradeOutput {
    pub cli: Provider,
    pub target: String,
    pub dry_run: bool,
    /// `[admin] allow_cli_upgrade`: whether a real run is allowed.
    pub allowed: bool,
    /// The plan: the commands that upgrade the CLI, in order.
    pub commands: Vec<UpgradeCommand>,
    /// Whether the commands were run (false for a dry run).
    pub executed: bool,
    /// The run's outcome; null for a dry run.
    pub run: Option<UpgradeRun>,
    /// The version before (probed now).
    pub version_before: Option<String>,
    /// The version after a real run; null for a dry run.
    pub version_after: Option<String>,
    pub message: String,
}

/// Checks `target`: `latest`, or a version / dist-tag (letters, digits, `.`, `_`, `+`, `-`,
/// at most 64, not starting with `-` or `.`).
fn check_target(target: &str) -> Result<(), ToolError> {
    let ok = !target.is_empty()
        && target.len() <= 64
        && target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid_input(
            format!("Invalid target: \"{target}\" is not a version or tag"),
            "Pass target \"latest\" or a version such as 2.1.330 (letters, digits, . _ + -).",
        ))
    }
}

/// The commands that upgrade `cli` to `target` (the install commands of config-and-cli.md).
pub fn upgrade_plan(cli: Provider, target: &str) -> Vec<UpgradeCommand> {
    let (program, args): (&str, Vec<String>) = match cli {
        Provider::Mistral if target == "latest" => (
            "uv",
            vec![
                "tool".into(),
                "install".into(),
                "--upgrade".into(),
                "mistral-vibe".into(),
            ],
        ),
        Provider::Mistral => (
            "uv",
            vec![
                "tool".into(),
                "install".into(),
                "--force".into(),
                format!("mistral-vibe=={target}"),
            ],
        ),
        npm => {
            let package = npm
                .package()
                .strip_prefix("npm ")
                .unwrap_or_else(|| npm.package());
            (
                "npm",
                vec!["install".into(), "-g".into(), format!("{package}@{target}")],
            )
        }
    };
    let display = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    vec![UpgradeCommand {
        program: program.to_string(),
        args,
        display,
    }]
}

pub async fn cli_upgrade(
    state: &GatewayState,
    params: CliUpgradeParams,
) -> Result<Value, ToolError> {
    let timeout_ms =
        super::job_tools::in_range("timeoutMs", params.timeout_ms, UPGRADE_TIMEOUT_MS)?;
    check_target(&params.target)?;
    let cli = params.cli;
    let allowed = state.loaded.config.admin.allow_cli_upgrade;
    let commands = upgrade_plan(cli, &params.target);
    let binary = state.loaded.config.provider(cli).binary.clone();
    let version_before = probe(cli, binary.clone()).await.version;
    if params.dry_run {
        return Ok(json!(CliUpgradeOutput {
            cli,
            target: params.target,
            dry_run: true,
            allowed,
            message: format!(
                "Dry run: nothing was changed. Run these commands, or call cli_upgrade with dryRun: false{}.",
                if allowed {
                    ""
                } else {
                    " after setting `[admin] allow_cli_upgrade = true` in config.toml"
                }
            ),
            commands,
            executed: false,
            run: None,
            version_before,
            version_after: None,
        }));
    }
    if !allowed {
        return Err(ToolError::invalid_input(
            "cli_upgrade with dryRun: false is disabled: `[admin] allow_cli_upgrade` is false",
            "Set `allow_cli_upgrade = true` in the `[admin]` section of the gateway's config.toml and restart the server, or run the planned commands yourself (call cli_upgrade with dryRun: true to see them).",
        ));
    }
    let mut last = None;
    for command in &commands {
        let Some(program) = resolve_binary(&command.program) else {
            return Err(ToolError::new(
                crate::error::ErrorCategory::NotInstalled,
                format!(
                    "\"{}\" not found on PATH: cannot run `{}`",
                    command.program, command.display
                ),
                format!(
                    "Install {} first, or run the upgrade by hand.",
                    command.program
                ),
            ));
        };
        let spec = exec::ExecSpec::new(program).args(&command.args);
        let run = run_bounded(spec, Duration::from_millis(timeout_ms), 4096)
            .await
            .ok_or_else(|| ToolError::internal("the upgrade run could not be started"))?;
        let exit_code = run.report.exit.and_then(|e| e.code());
        let end = run.report.end;
        let outcome = UpgradeRun {
            exit_code,
            end_reason: end.as_str().to_string(),
            timed_out: end == exec::EndReason::Timeout,
            success: end == exec::EndReason::Exited && exit_code == Some(0),
            duration_ms: run.report.duration.as_millis() as u64,
            stdout_tail: String::from_utf8_lossy(&run.stdout).into_owned(),
            stderr_tail: String::from_utf8_lossy(&run.stderr).into_owned(),
        };
        let failed = !outcome.success;
        last = Some(outcome);
        if failed {
            break;
        }
    }
    let version_after = probe(cli, binary).await.version;
    let message = match &last {
        Some(run) if run.success => format!("{} was upgraded.", cli.default_binary()),
        Some(run) if run.timed_out => format!(
            "The upgrade did not finish within {timeout_ms} ms and was killed with its process group."
        ),
        _ => "The upgrade command failed: see stderrTail.".to_string(),
    };
    Ok(json!(CliUpgradeOutput {
        cli,
        target: params.target,
        dry_run: false,
        allowed,
        commands,
        executed: true,
        run: last,
        version_before,
        version_after,
        message,
    }))
}

// ---------------------------------------------------------------------------------------
// llm_request_result

const REQUEST_MAX_CHARS: (i64, i64) = (1_000, 1_000_000);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestResultParams {
    /// The correlationId of the request (the newest row when several share it).
    pub correlation_id: String,
    /// The most characters of the response (and of the prompt) to return (1000..=1000000,
    /// default 200000).
    #[serde(default = "default_request_max_chars")]
    #[schemars(range(min = 1000, max = 1000000))]
    pub max_chars: i64,
    /// Include the prompt text (default false: only its SHA-256 and length).
    #[serde(default)]
    pub include_prompt: bool,
}

fn default_request_max_chars() -> i64 {
    200_000
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarningView {
    pub code: String,
    pub message: String,
}

/// One flight-recorder row (storage.md `requests`).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub correlation_id: String,
    pub datetime_utc: String,
    pub completed_at: Option<String>,
    pub cli: Provider,
    pub model: Option<String>,
    /// `started`, `completed`, `failed`, `canceled`, `orphaned` or `deferred`.
    pub status: String,
    /// The prompt, only with includePrompt (and when prompts are stored); cut at maxChars.
    pub prompt: Option<String>,
    pub prompt_sha256: String,
    pub prompt_chars: i64,
    /// The recorded response, cut at maxChars.
    pub response: Option<String>,
    pub response_chars: Option<i64>,
    /// The response or prompt returned here was cut at maxChars.
    pub truncated: bool,
    /// The recorder itself kept only the first 1 MiB of the response.
    pub response_truncated: bool,
    pub exit_code: Option<i32>,
    pub error_category: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    /// The gateway session (`gw-…`).
    pub session_id: Option<String>,
    pub provider_session_id: Option<String>,
    pub job_id: Option<String>,
    pub deduped: bool,
    pub stop_reason: Option<String>,
    pub stable_prefix_hash: Option<String>,
    pub stable_prefix_tokens: Option<i64>,
    pub cache_control_blocks: Option<i64>,
    /// `approved` for an `mcp_managed` request that ran; null for `legacy`.
    pub approval_decision: Option<String>,
    pub warnings: Vec<WarningView>,
    pub working_dir: Option<String>,
    pub gateway_version: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestResultOutput {
    pub request: RequestView,
}

fn cut(text: Option<String>, max: usize, truncated: &mut bool) -> Option<String> {
    text.map(|t| match t.char_indices().nth(max) {
        Some((at, _)) => {
            *truncated = true;
            t[..at].to_string()
        }
        None => t,
    })
}

pub async fn request_result(
    state: &GatewayState,
    params: RequestResultParams,
) -> Result<Value, ToolError> {
    let max = super::job_tools::in_range("maxChars", params.max_chars, REQUEST_MAX_CHARS)?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let row = state
        .store
        .get_request_by_correlation(params.correlation_id.clone())
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading the flight recorder failed");
            ToolError::internal(format!("The gateway's database failed: {error}"))
        })?
        .ok_or_else(|| {
            ToolError::invalid_input(
                format!("Request not found: {}", params.correlation_id),
                "Pass the correlationId of a recorded request (structuredContent.correlationId of a request tool); rows older than requestRetentionDays are deleted.",
            )
        })?;
    let mut truncated = false;
    let prompt = if params.include_prompt {
        cut(row.prompt, max, &mut truncated)
    } else {
        None
    };
    let response = cut(row.response, max, &mut truncated);
    Ok(json!(RequestResultOutput {
        request: RequestView {
            id: row.id,
            correlation_id: row.correlation_id,
            datetime_utc: row.datetime_utc,
            completed_at: row.completed_at,
            cli: row.cli,
            model: row.model,
            status: row.status.as_str().to_string(),
            prompt,
            prompt_sha256: row.prompt_sha256,
            prompt_chars: row.prompt_chars,
            response,
            response_chars: row.response_chars,
            truncated,
            response_truncated: row.response_truncated,
            exit_code: row.exit_code,
            error_category: row.error_category,
            error_message: row.error_message,
            duration_ms: row.duration_ms,
            input_tokens: row.usage.input_tokens,
            output_tokens: row.usage.output_tokens,
            cache_read_tokens: row.usage.cache_read_tokens,
            cache_creation_tokens: row.usage.cache_creation_tokens,
            reasoning_tokens: row.usage.reasoning_tokens,
            cost_usd: row.usage.cost_usd,
            session_id: row.session_id,
            provider_session_id: row.provider_session_id,
            job_id: row.job_id,
            deduped: row.deduped,
            stop_reason: row.stop_reason,
            stable_prefix_hash: row.stable_prefix_hash,
            stable_prefix_tokens: row.stable_prefix_tokens,
            cache_control_blocks: row.cache_control_blocks,
            approval_decision: row.approval_decision,
            warnings: row
                .warnings
                .into_iter()
                .map(|w| WarningView {
                    code: w.code,
                    message: w.message,
                })
                .collect(),
            working_dir: row.working_dir,
            gateway_version: row.gateway_version,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_plans_use_the_install_commands() {
        let display = |cli, target| upgrade_plan(cli, target)[0].display.clone();
        assert_eq!(
            display(Provider::Claude, "latest"),
            "npm install -g @anthropic-ai/claude-code@latest"
        );
        assert_eq!(
            display(Provider::Codex, "0.170.0"),
            "npm install -g @openai/codex@0.170.0"
        );
        assert_eq!(
            display(Provider::Gemini, "latest"),
            "npm install -g @google/gemini-cli@latest"
        );
        assert_eq!(
            display(Provider::Grok, "latest"),
            "npm install -g @xai-official/grok@latest"
        );
        assert_eq!(
            display(Provider::Mistral, "latest"),
            "uv tool install --upgrade mistral-vibe"
        );
        assert_eq!(
            display(Provider::Mistral, "3.0.4"),
            "uv tool install --force mistral-vibe==3.0.4"
        );
        assert!(check_target("latest").is_ok());
        assert!(check_target("2.1.330").is_ok());
        for bad in ["", "-g", ".x", "1 2", "a;b", "x/y"] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
