//! The tool catalogue and the registration rule.
//!
//! Every tool the gateway can expose is described once here (name, description, input and
//! output schema, annotations) together with the condition under which it is registered.
//! A tool that is not registered is absent from `tools/list`: with `[persistence] backend =
//! "none"` a client sees at connect time that async and job tools do not exist, instead of
//! starting work that would silently be lost. A provider with `enabled = false` has no
//! tools at all.

use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;

use super::admin_tools::{
    CliUpgradeOutput, CliUpgradeParams, CliVersionsOutput, CliVersionsParams, HealthOutput,
    ListModelsOutput, ListModelsParams, NoParams, RequestResultOutput, RequestResultParams,
};
use super::approval_tools::{ApprovalListOutput, ApprovalListParams};
use super::job_tools::{
    CancelOutput, JobIdParams, JobListOutput, JobListParams, JobOutput, JobResultOutput,
    ResultParams, WatchParams,
};
use super::request_tools::AsyncStartOutput;
use super::session_tools::{
    ClearOutput, CreateParams, DeleteOutput, ListOutput, ListParams, SessionDetailOutput,
    SessionIdParams, SessionOutput, SetActiveOutput, SetActiveParams,
};
use crate::config::Config;
use crate::providers::Provider;

/// Which handler serves a registered tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolId {
    SessionCreate,
    SessionList,
    SessionGet,
    SessionSetActive,
    SessionDelete,
    SessionClearAll,
    ListModels,
    ProcessHealth,
    JobStatus,
    JobWatch,
    JobResult,
    JobCancel,
    JobList,
    CliVersions,
    CliUpgrade,
    ApprovalList,
    /// `llm_request_result` (the flight recorder; not `llm_job_result`).
    LlmRequestResult,
    /// `<p>_request`.
    Request(Provider),
    /// `<p>_request_async`.
    RequestAsync(Provider),
}

/// When a tool is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Always,
    /// Only when jobs are persisted (backend `sqlite`, or `memory` acknowledged): the job
    /// tools and anything else that hands out a job id to come back for.
    WithPersistence,
    /// Only when this provider is enabled (its sync request tool).
    Provider(Provider),
    /// Only when this provider is enabled and jobs are persisted (its async request tool).
    ProviderWithPersistence(Provider),
}

/// How the configured backend behaves; derived from `[persistence] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistenceMode {
    /// `sqlite`: durable jobs and flight recorder in the configured file.
    Durable,
    /// `memory`: jobs and recorder in a private file removed when the server exits.
    Ephemeral,
    /// `none`: no job store, no flight recorder; sync requests only.
    Off,
}

impl PersistenceMode {
    pub fn from_config(config: &Config) -> Self {
        match config.persistence.backend {
            crate::config::Backend::Sqlite => PersistenceMode::Durable,
            crate::config::Backend::Memory => PersistenceMode::Ephemeral,
            crate::config::Backend::None => PersistenceMode::Off,
        }
    }

    pub fn durable(self) -> bool {
        self == PersistenceMode::Durable
    }

    /// Whether job ids can be handed out (async tools, job tools, sync deferral).
    pub fn async_jobs_enabled(self) -> bool {
        self != PersistenceMode::Off
    }

    pub fn flight_recorder_enabled(self) -> bool {
        self != PersistenceMode::Off
    }
}

/// Whether a tool with this availability is registered under this configuration.
pub fn is_registered(availability: Availability, config: &Config, mode: PersistenceMode) -> bool {
    match availability {
        Availability::Always => true,
        Availability::WithPersistence => mode.async_jobs_enabled(),
        Availability::Provider(p) => config.provider(p).enabled,
        Availability::ProviderWithPersistence(p) => {
            config.provider(p).enabled && mode.async_jobs_enabled()
        }
    }
}

/// A registered tool: its MCP description and the handler that serves it.
#[derive(Debug, Clone)]
pub struct ToolEntry {
    pub id: ToolId,
    pub tool: Tool,
}

impl ToolEntry {
    pub fn input_schema(&self) -> &JsonObject {
        &self.tool.input_schema
    }

    pub fn has_output_schema(&self) -> bool {
        self.tool.output_schema.is_some()
    }
}

/// Annotation presets: every tool states all four hints explicitly.
#[derive(Clone, Copy)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
}

const READ_ONLY: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

fn define<P: JsonSchema + 'static, O: JsonSchema + 'static>(
    id: ToolId,
    name: &'static str,
    title: &str,
    description: &'static str,
    hints: Hints,
) -> ToolEntry {
    let input = schema_for_input::<P>()
        .unwrap_or_else(|error| panic!("input schema of {name} is not an object: {error}"));
    let annotations = ToolAnnotations::with_title(title)
        .read_only(hints.read_only)
        .destructive(hints.destructive)
        .idempotent(hints.idempotent)
        .open_world(hints.open_world);
    let tool = Tool::new(name, description, input)
        .with_title(title)
        .with_raw_output_schema(schema_for_output::<O>())
        .with_annotations(annotations);
    ToolEntry { id, tool }
}

/// `<p>_request` (no output schema: its result is an answer or a deferral) and
/// `<p>_request_async` (the async start, with its schema).
fn request_tools(provider: Provider) -> [(Availability, ToolEntry); 2] {
    let schema = crate::providers::request_schema(provider);
    let input: JsonObject = schema.as_object().cloned().unwrap_or_default();
    let key = provider.key();
    let binary = provider.default_binary();
    let hints = |title: String| {
        ToolAnnotations::with_title(title)
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    };
    let sync_title = format!("Run {binary}");
    let sync = Tool::new(
        format!("{key}_request"),
        format!(
            "Run the {binary} CLI with a prompt and wait for its answer. The text block is the \
             answer; structuredContent has sessionId (pass it back to continue the \
             conversation), usage and the jobId. A run that outlives the sync deadline returns \
             {{status: \"deferred\", jobId}} instead: collect it with llm_job_result."
        ),
        input.clone(),
    )
    .with_title(sync_title.clone())
    .with_annotations(hints(sync_title));
    let async_title = format!("Start {binary} in the background");
    let asynchronous = Tool::new(
        format!("{key}_request_async"),
        format!(
            "Start the {binary} CLI as a background job and return its jobId and snapshot at \
             once. Follow it with llm_job_watch or llm_job_status, collect the answer with \
             llm_job_result, stop it with llm_job_cancel."
        ),
        input,
    )
    .with_title(async_title.clone())
    .with_raw_output_schema(schema_for_output::<AsyncStartOutput>())
    .with_annotations(hints(async_title));
    [
        (
            Availability::Provider(provider),
            ToolEntry {
                id: ToolId::Request(provider),
                tool: sync,
            },
        ),
        (
            Availability::ProviderWithPersistence(provider),
            ToolEntry {
                id: ToolId::RequestAsync(provider),
                tool: asynchronous,
            },
        ),
    ]
}

/// Every tool with its availability, in the order `tools/list` shows them.
fn catalogue() -> Vec<(Availability, ToolEntry)> {
    let mut all: Vec<(Availability, ToolEntry)> =
        Provider::ALL.into_iter().flat_map(request_tools).collect();
    all.extend(fixed_tools());
    all
}

fn fixed_tools() -> Vec<(Availability, ToolEntry)> {
    vec![
        (
            Availability::Always,
            define::<CreateParams, SessionOutput>(
                ToolId::SessionCreate,
                "session_create",
                "Create gateway session",
                "Create a gateway session (id gw-…) for one CLI: a named conversation that later \
                 requests continue by passing it as sessionId. With setAsActive (default true) \
                 it becomes the CLI's active session, which requests without sessionId continue.",
                Hints {
                    read_only: false,
                    destructive: false,
                    idempotent: false,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::Always,
            define::<ListParams, ListOutput>(
                ToolId::SessionList,
                "session_list",
                "List gateway sessions",
                "List gateway sessions, most recently used first, optionally for one CLI; shows \
                 which one is active per CLI and the CLI's own session id bound to each.",
                READ_ONLY,
            ),
        ),
        (
            Availability::Always,
            define::<SessionIdParams, SessionDetailOutput>(
                ToolId::SessionGet,
                "session_get",
                "Get a gateway session",
                "Show one gateway session: its CLI, bound provider session id, working \
                 directory, request count, last use, token and cost totals.",
                READ_ONLY,
            ),
        ),
        (
            Availability::Always,
            define::<SetActiveParams, SetActiveOutput>(
                ToolId::SessionSetActive,
                "session_set_active",
                "Set the active gateway session",
                "Make a gateway session the active one of its CLI (requests without sessionId \
                 continue it), or pass sessionId null to clear the CLI's active session so \
                 requests run stateless.",
                Hints {
                    read_only: false,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::Always,
            define::<SessionIdParams, DeleteOutput>(
                ToolId::SessionDelete,
                "session_delete",
                "Delete a gateway session",
                "Delete one gateway session record. The CLI's own conversation history is not \
                 touched; it can still be resumed by its provider session id.",
                Hints {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::Always,
            define::<ListParams, ClearOutput>(
                ToolId::SessionClearAll,
                "session_clear_all",
                "Delete all gateway sessions",
                "Delete every gateway session record, or only one CLI's. The CLIs' own \
                 conversation histories are not touched.",
                Hints {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::Always,
            define::<ListModelsParams, ListModelsOutput>(
                ToolId::ListModels,
                "list_models",
                "List models",
                "List the models and aliases each CLI accepts through this gateway, with where \
                 each came from (bundled, config, env) and the default model passed when a \
                 request names none. Any other model id is passed to the CLI unchanged.",
                READ_ONLY,
            ),
        ),
        (
            Availability::Always,
            define::<NoParams, HealthOutput>(
                ToolId::ProcessHealth,
                "llm_process_health",
                "Gateway health",
                "Report this gateway process: version, uptime, pid, memory, running and queued \
                 jobs per provider, limits, and persistence (backend, path, retention, dedup \
                 window, whether async jobs are enabled, and which config file and environment \
                 overrides were applied).",
                Hints {
                    read_only: true,
                    destructive: false,
                    idempotent: false,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::WithPersistence,
            define::<JobIdParams, JobOutput>(
                ToolId::JobStatus,
                "llm_job_status",
                "Job status",
                "Show one job now: its state (queued, running, completed, failed, canceled, \
                 orphaned), timings, exit code, error, output sizes, the CLI's session id and \
                 its newest progress events. A job whose supervisor died is detected here and \
                 reported as orphaned. Collect the answer with llm_job_result.",
                READ_ONLY,
            ),
        ),
        (
            Availability::WithPersistence,
            define::<WatchParams, JobOutput>(
                ToolId::JobWatch,
                "llm_job_watch",
                "Watch a job",
                "Wait until a job ends or reports progress newer than afterSeq (default: its \
                 newest event when called), at most waitMs (default 25000, max 30000), then \
                 return its snapshot. Call it in a loop, passing the newest progress seq seen \
                 as afterSeq, to follow a long job without busy polling; with a progress token \
                 the new events also arrive as notifications/progress.",
                READ_ONLY,
            ),
        ),
        (
            Availability::WithPersistence,
            define::<ResultParams, JobResultOutput>(
                ToolId::JobResult,
                "llm_job_result",
                "Collect a job's result",
                "Collect a job's answer: a window of the parsed final answer from offset (in \
                 characters; page on with nextOffset until it is null), with the CLI's session \
                 id, token usage, cost, stop reason and the last 4 KiB of stderr. raw: true \
                 pages through the CLI's raw stdout by byte offset instead. A failed, canceled \
                 or orphaned job gives what partial answer (or stdout tail) exists, with \
                 partial: true; a queued or running job has no response yet.",
                READ_ONLY,
            ),
        ),
        (
            Availability::WithPersistence,
            define::<JobIdParams, CancelOutput>(
                ToolId::JobCancel,
                "llm_job_cancel",
                "Cancel a job",
                "Cancel a job and answer at once. A queued job becomes canceled; a running one \
                 reports running with cancelRequested: true while its CLI and every process it \
                 started are killed within seconds (follow it with llm_job_status). A job that \
                 already ended is left unchanged.",
                Hints {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                    open_world: false,
                },
            ),
        ),
        (
            Availability::WithPersistence,
            define::<JobListParams, JobListOutput>(
                ToolId::JobList,
                "llm_job_list",
                "List jobs",
                "List recent jobs, newest first (limit 1..200, default 20), optionally only one \
                 status or one CLI, each as a snapshot with its newest progress events. Use it \
                 to find a jobId again.",
                READ_ONLY,
            ),
        ),
        (
            Availability::Always,
            define::<CliVersionsParams, CliVersionsOutput>(
                ToolId::CliVersions,
                "cli_versions",
                "CLI versions",
                "Report, per CLI (or one), whether its binary is installed, its path, the \
                 version `<bin> --version` prints (5 s limit each, probed concurrently), the \
                 version the gateway was tested against, and whether the installed one is \
                 compatible (the tested version or newer within the same major version).",
                READ_ONLY,
            ),
        ),
        (
            Availability::Always,
            define::<CliUpgradeParams, CliUpgradeOutput>(
                ToolId::CliUpgrade,
                "cli_upgrade",
                "Upgrade a CLI",
                "Plan (dryRun: true, the default) or run the upgrade of one CLI to target \
                 (default latest) with its install command (npm install -g …, uv tool install \
                 for vibe). A real run needs `[admin] allow_cli_upgrade = true` in config.toml \
                 and is killed with its process group after timeoutMs (30000..3600000, default \
                 600000); the result reports the versions before and after.",
                Hints {
                    read_only: false,
                    destructive: true,
                    idempotent: false,
                    open_world: true,
                },
            ),
        ),
        (
            Availability::Always,
            define::<ApprovalListParams, ApprovalListOutput>(
                ToolId::ApprovalList,
                "approval_list",
                "List approval decisions",
                "List recent approvalStrategy mcp_managed decisions, newest first (limit \
                 1..500, default 50), optionally of one CLI: status, policy, score, threshold, \
                 reasons, requested MCP servers, whether a bypass was asked for, and the \
                 prompt's SHA-256 (never its text).",
                READ_ONLY,
            ),
        ),
        (
            Availability::WithPersistence,
            define::<RequestResultParams, RequestResultOutput>(
                ToolId::LlmRequestResult,
                "llm_request_result",
                "Flight-recorder row of a request",
                "Show the flight-recorder row of a past request by its correlationId (the \
                 newest when several share it): status, model, timings, exit code, error, \
                 tokens, cost, sessions, job id, warnings, approval decision and the recorded \
                 response cut at maxChars (default 200000). The prompt is included only with \
                 includePrompt: true.",
                READ_ONLY,
            ),
        ),
    ]
}

/// The tools registered under this configuration.
pub fn registered_tools(config: &Config, mode: PersistenceMode) -> Vec<ToolEntry> {
    catalogue()
        .into_iter()
        .filter(|(availability, _)| is_registered(*availability, config, mode))
        .map(|(_, entry)| entry)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, Env};

    fn config(backend: Backend) -> Config {
        let mut config = Config::defaults(&Env::from_pairs([("HOME", "/home/u")]));
        config.persistence.backend = backend;
        config
    }

    #[test]
    fn persistence_decides_async_and_job_tools() {
        for (backend, persisted) in [
            (Backend::Sqlite, true),
            (Backend::Memory, true),
            (Backend::None, false),
        ] {
            let config = config(backend);
            let mode = PersistenceMode::from_config(&config);
            assert_eq!(mode.async_jobs_enabled(), persisted, "{backend:?}");
            assert!(is_registered(Availability::Always, &config, mode));
            assert_eq!(
                is_registered(Availability::WithPersistence, &config, mode),
                persisted
            );
            for p in Provider::ALL {
                assert!(is_registered(Availability::Provider(p), &config, mode));
                assert_eq!(
                    is_registered(Availability::ProviderWithPersistence(p), &config, mode),
                    persisted
                );
            }
        }
    }

    #[test]
    fn a_disabled_provider_has_no_tools() {
        let mut config = config(Backend::Sqlite);
        config
            .providers
            .get_mut(&Provider::Grok)
            .expect("every provider has a section")
            .enabled = false;
        let mode = PersistenceMode::from_config(&config);
        assert!(!is_registered(
            Availability::Provider(Provider::Grok),
            &config,
            mode
        ));
        assert!(!is_registered(
            Availability::ProviderWithPersistence(Provider::Grok),
            &config,
            mode
        ));
        assert!(is_registered(
            Availability::Provider(Provider::Codex),
            &config,
            mode
        ));
    }

    #[test]
    fn every_registered_tool_has_object_schemas_and_a_unique_name() {
        let config = config(Backend::Sqlite);
        let tools = registered_tools(&config, PersistenceMode::from_config(&config));
        let mut names: Vec<&str> = tools.iter().map(|t| t.tool.name.as_ref()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tools.len());
        for entry in &tools {
            assert_eq!(
                entry.input_schema().get("type").and_then(|t| t.as_str()),
                Some("object")
            );
            // The sync request tools alone have none: their result is an answer or a
            // deferral (mcp-surface.md).
            let sync_request = matches!(entry.id, ToolId::Request(_));
            assert_eq!(
                entry.has_output_schema(),
                !sync_request,
                "{}",
                entry.tool.name
            );
        }
    }
}
