//! The MCP edge: the rmcp server handler, tool dispatch and the `instructions` text.
//!
//! Handlers here are thin: parse and validate arguments ([`params`]), call the store or the
//! model registry, shape the answer ([`result`]). Which tools exist is decided once at
//! startup by [`registry`] from the configuration. Business rules (sessions, jobs, limits)
//! live below this layer.

mod admin_tools;
mod approval_tools;
mod job_tools;
mod params;
pub mod registry;
mod request_tools;
mod resources;
mod result;
mod session_tools;
pub mod snapshot;

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::config::LoadedConfig;
use crate::jobs::JobService;
use crate::models::ModelRegistry;
use crate::providers::{AnyRequest, Provider};
use crate::store::Store;
use registry::{PersistenceMode, ToolEntry, ToolId};
use result::{ToolError, structured_success};

/// Everything a tool handler may read: the resolved config, the store, the model registry,
/// the jobs layer.
pub struct GatewayState {
    pub loaded: LoadedConfig,
    pub mode: PersistenceMode,
    pub store: Store,
    pub models: ModelRegistry,
    pub jobs: Arc<JobService>,
    pub started: Instant,
}

impl GatewayState {
    pub fn new(loaded: LoadedConfig, store: Store) -> Self {
        let mode = PersistenceMode::from_config(&loaded.config);
        let models = ModelRegistry::new(&loaded.config);
        let jobs = JobService::new(loaded.config.clone(), models.clone(), store.clone());
        GatewayState {
            loaded,
            mode,
            store,
            models,
            jobs,
            started: Instant::now(),
        }
    }
}

/// The rmcp server handler. Cheap to clone; rmcp clones it per connection.
#[derive(Clone)]
pub struct GatewayServer {
    state: Arc<GatewayState>,
    tools: Arc<Vec<ToolEntry>>,
    instructions: Arc<str>,
    cancels: request_tools::ExplicitCancels,
}

impl GatewayServer {
    pub fn new(state: GatewayState) -> Self {
        let tools = registry::registered_tools(&state.loaded.config, state.mode);
        let instructions = instructions(&tools, state.mode).into();
        GatewayServer {
            state: Arc::new(state),
            tools: Arc::new(tools),
            instructions,
            cancels: request_tools::ExplicitCancels::default(),
        }
    }

    fn entry(&self, name: &str) -> Option<&ToolEntry> {
        self.tools.iter().find(|entry| entry.tool.name == name)
    }

    async fn dispatch(
        &self,
        entry: &ToolEntry,
        arguments: Option<rmcp::model::JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, ToolError> {
        let state = &self.state;
        let name = entry.tool.name.as_ref();
        let schema = entry.input_schema();
        match entry.id {
            ToolId::SessionCreate => {
                session_tools::create(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::SessionList => {
                session_tools::list(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::SessionGet => {
                session_tools::get(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::SessionSetActive => {
                session_tools::set_active(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::SessionDelete => {
                session_tools::delete(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::SessionClearAll => {
                session_tools::clear_all(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::ListModels => {
                admin_tools::list_models(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::ProcessHealth => {
                admin_tools::process_health(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::JobStatus => {
                job_tools::status(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::JobWatch => {
                job_tools::watch(state, params::parse(name, schema, arguments)?, context).await
            }
            ToolId::JobResult => {
                job_tools::result(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::JobCancel => {
                job_tools::cancel(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::JobList => {
                job_tools::list(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::CliVersions => {
                admin_tools::cli_versions(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::CliUpgrade => {
                admin_tools::cli_upgrade(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::ApprovalList => {
                approval_tools::list(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::LlmRequestResult => {
                admin_tools::request_result(state, params::parse(name, schema, arguments)?).await
            }
            ToolId::Request(_) | ToolId::RequestAsync(_) => Err(ToolError::internal(
                "request tools are served by call_tool directly",
            )),
        }
    }
}

impl GatewayServer {
    /// The request tools: parse into the provider's typed request, then the generic handler.
    async fn request(
        &self,
        entry: &ToolEntry,
        provider: Provider,
        asynchronous: bool,
        arguments: Option<rmcp::model::JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResult, ToolError> {
        let name = entry.tool.name.as_ref();
        let schema = entry.input_schema();
        // Parsed straight into the provider's type, so errors carry the field path.
        let typed = match provider {
            Provider::Claude => AnyRequest::Claude(params::parse(name, schema, arguments)?),
            Provider::Codex => AnyRequest::Codex(params::parse(name, schema, arguments)?),
            Provider::Gemini => AnyRequest::Gemini(params::parse(name, schema, arguments)?),
            Provider::Grok => AnyRequest::Grok(params::parse(name, schema, arguments)?),
            Provider::Mistral => AnyRequest::Mistral(params::parse(name, schema, arguments)?),
        };
        request_tools::handle(
            &self.state.jobs,
            &self.cancels,
            provider,
            asynchronous,
            typed,
            context,
        )
        .await
    }
}

impl ServerHandler for GatewayServer {
    async fn on_cancelled(
        &self,
        notification: rmcp::model::CancelledNotificationParam,
        _context: rmcp::service::NotificationContext<RoleServer>,
    ) {
        if let Some(id) = &notification.request_id {
            self.cancels.cancelled(id);
        }
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(self.instructions.to_string())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.tools.iter().map(|entry| entry.tool.clone()).collect(),
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&self.state, &request.uri)
            .await
            .map(Into::into)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(entry) = self.entry(&request.name) else {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        if let ToolId::Request(p) | ToolId::RequestAsync(p) = entry.id {
            let asynchronous = matches!(entry.id, ToolId::RequestAsync(_));
            let result = match self
                .request(entry, p, asynchronous, request.arguments, &context)
                .await
            {
                Ok(result) => result,
                Err(error) => error.into_result(true),
            };
            return Ok(result.into());
        }
        let result = match self.dispatch(entry, request.arguments, &context).await {
            Ok(value) => structured_success(value),
            Err(error) => {
                tracing::debug!(tool = %request.name, category = error.category.as_str(), "tool call failed");
                error.into_result(!entry.has_output_schema())
            }
        };
        Ok(result.into())
    }
}

/// The `instructions` string: which tools exist in this configuration and when to use them.
fn instructions(tools: &[ToolEntry], mode: PersistenceMode) -> String {
    let names: Vec<&str> = tools.iter().map(|t| t.tool.name.as_ref()).collect();
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    let mut lines = vec![
        "llm-cli-gateway runs the coding-agent CLIs installed on this machine (claude, codex, \
         gemini, grok, mistral/vibe) and records every request."
            .to_string(),
    ];
    if has("llm_job_") {
        lines.push(
            "Use <cli>_request for work that finishes within a minute; a longer run is \
             deferred and returns a jobId. Use <cli>_request_async to start long work at once, \
             then llm_job_watch or llm_job_status to follow it and llm_job_result to collect \
             the answer."
                .to_string(),
        );
        lines.push("llm_job_list finds recent jobs; llm_job_cancel stops one.".to_string());
    } else if names.iter().any(|n| n.ends_with("_request")) {
        lines.push(
            "Use <cli>_request to run a CLI and wait for its answer (no job store is \
             configured, so there are no async or job tools)."
                .to_string(),
        );
    }
    lines.push(
        "Pass structuredContent.sessionId back as sessionId to continue a CLI's conversation; \
         session_create, session_list and session_set_active manage named gateway sessions \
         (gw-…)."
            .to_string(),
    );
    lines.push(
        "list_models shows model names and aliases; llm_process_health shows limits, running \
         jobs and persistence; cli_versions and cli_upgrade check and upgrade the CLIs; \
         approval_list shows mcp_managed approval decisions."
            .to_string(),
    );
    if mode == PersistenceMode::Off {
        lines.push(
            "Persistence is off ([persistence] backend = \"none\"): nothing is recorded and \
             sessions last only as long as this server process."
                .to_string(),
        );
    }
    lines.push(format!("Tools available now: {}.", names.join(", ")));
    lines.join("\n")
}
