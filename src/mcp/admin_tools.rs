//! Observability tools that need only the config and the store: `list_models` and
//! `llm_process_health`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::GatewayState;
use super::result::ToolError;
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
