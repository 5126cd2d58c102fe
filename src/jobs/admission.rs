//! Admission: everything between a typed request and a stored job, in the order that makes
//! every bad input cost nothing (quality.md "Bad input"): validate the request, resolve the
//! model, the session (providers.md "Sessions", cases 1–6) and the cwd, check `addDir` and
//! `images`, look the binary up on PATH, build the invocation, compute the request key —
//! and only then write: the session upsert of case 3 and `admit_job` (dedup + queue limit,
//! one transaction in the store).
//!
//! Not here: running the job (`runner`), waiting (`wait`), MCP shaping. Per-session
//! serialisation is the store's claim rule, not an admission check.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::ErrorCategory;
use crate::exec::{self, NotFound};
use crate::paths;
use crate::providers::request::{OutputFormat, SessionIntent};
use crate::providers::{
    AnyRequest, BuildContext, Invocation, McpServerSpec, Provider, SessionBinding, ValidationError,
    ValidationKind,
};
use crate::store::{
    Admission, DedupPolicy, JobRow, NewJob, NewRequest, Runner, SessionRow, Warning,
    is_gateway_session_id,
};

use super::request_key::{KeyInput, redact_prompt, request_key};
use super::runner::{BaselineKind, RunLimits, RunPlan};
use super::service::JobService;

/// Default `maxResponseChars` (mcp-surface.md).
pub const DEFAULT_MAX_RESPONSE_CHARS: u64 = 100_000;

/// Why a request failed: a category of mcp-surface.md, the message and the `Fix:` text, and
/// what is known about the job (for the structured error).
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub category: ErrorCategory,
    pub message: String,
    pub remediation: String,
    pub job_id: Option<String>,
    pub exit_code: Option<i32>,
    /// The CLI's own session id, when the run reported one.
    pub session_id: Option<String>,
    /// The approval record of an `approval_denied` error (policy.md).
    pub approval: Option<Box<Value>>,
}

impl JobError {
    pub fn new(
        category: ErrorCategory,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> JobError {
        JobError {
            category,
            message: message.into(),
            remediation: remediation.into(),
            job_id: None,
            exit_code: None,
            session_id: None,
            approval: None,
        }
    }

    pub fn invalid(message: impl Into<String>, remediation: impl Into<String>) -> JobError {
        JobError::new(ErrorCategory::InvalidInput, message, remediation)
    }

    /// A gateway fault (the store failed, a file could not be written).
    pub fn internal(message: impl Into<String>) -> JobError {
        JobError::new(
            ErrorCategory::Internal,
            message,
            "This is a gateway fault, not a problem with the request: retry, and if it \
             persists run `llm-cli-gateway doctor` and check the server's stderr log.",
        )
    }

    /// The error of a job that ended without success, from its row (the runner stored the
    /// category and message; the remediation follows from the category).
    pub fn from_job(job: &JobRow) -> JobError {
        let cli = job.cli;
        let category = job
            .error_category
            .as_deref()
            .and_then(ErrorCategory::parse)
            .unwrap_or(match job.status {
                crate::store::JobStatus::Canceled => ErrorCategory::Canceled,
                _ => ErrorCategory::Internal,
            });
        let message = job
            .error
            .clone()
            .unwrap_or_else(|| format!("The {} job ended {}", cli, job.status));
        let mut error = JobError::new(category, message, remediation(category, cli));
        error.job_id = Some(job.id.clone());
        error.exit_code = job.exit_code;
        error.session_id = job.provider_session_id.clone();
        error
    }

    fn from_validation(error: ValidationError) -> JobError {
        let category = match error.kind {
            ValidationKind::InvalidInput => ErrorCategory::InvalidInput,
            ValidationKind::InputTooLarge => ErrorCategory::InputTooLarge,
        };
        JobError::new(category, error.message, error.remediation)
    }

    fn not_installed(cli: Provider, missing: &NotFound) -> JobError {
        let searched: Vec<String> = missing
            .searched
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        JobError::new(
            ErrorCategory::NotInstalled,
            format!(
                "\"{}\" not found on PATH (searched: {}). Install: {}",
                missing.program,
                searched.join(":"),
                cli.install_command()
            ),
            format!(
                "Install {}: {} (or set `[providers.{}] binary` to its path), then call again.",
                cli.default_binary(),
                cli.install_command(),
                cli.key()
            ),
        )
    }
}

/// The `Fix:` text of a job that failed with `category`.
fn remediation(category: ErrorCategory, cli: Provider) -> String {
    use crate::providers::ErrorKind;
    let key = cli.key();
    match category {
        ErrorCategory::AuthError => ErrorKind::NotAuthenticated.remediation(cli),
        ErrorCategory::InputTooLarge => ErrorKind::InputTooLarge.remediation(cli),
        ErrorCategory::Timeout => format!(
            "Allow more time with timeoutMs (or `[providers.{key}] timeout_ms`), split the task, or start it with {key}_request_async."
        ),
        ErrorCategory::IdleTimeout => format!(
            "The CLI went silent: raise idleTimeoutMs (or `[providers.{key}] idle_timeout_ms`) if it legitimately thinks that long; the partial output is readable with llm_job_result."
        ),
        ErrorCategory::OutputOverflow => "Ask for less output, or raise `[limits] max_job_output_bytes`; the output up to the cap is readable with llm_job_result.".to_string(),
        ErrorCategory::Canceled => "The job was canceled; call again to run it anew.".to_string(),
        ErrorCategory::NotInstalled => format!(
            "Install {}: {} (or set `[providers.{key}] binary`).",
            cli.default_binary(),
            cli.install_command()
        ),
        ErrorCategory::QueueTimeout => "Too much work was queued ahead of it: retry later, or raise `[limits] max_running_jobs` / `queue_timeout_ms`.".to_string(),
        ErrorCategory::Saturated => "Retry in a little while, or raise `[limits] max_queued_jobs`.".to_string(),
        ErrorCategory::Internal => "The job's runner stopped unexpectedly: retry; the partial output is readable with llm_job_result.".to_string(),
        _ => ErrorKind::Failed.remediation(cli),
    }
}

/// A request the store accepted: its job (new, or the one it attached to) and its own
/// flight-recorder row.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub job: JobRow,
    pub request_id: String,
    pub deduped: bool,
    pub correlation_id: String,
    pub gateway_session: Option<String>,
    /// How to run the job; `None` when the request attached to an existing job.
    pub plan: Option<RunPlan>,
    pub output_format: OutputFormat,
    pub max_response_chars: u64,
    /// Admission warnings (the job adds its own when it ends).
    pub warnings: Vec<Warning>,
    /// claude with `mcpServers` or `strictMcpConfig`: which servers the run gets.
    pub mcp_servers: Option<crate::providers::claude::McpServerReport>,
    /// The gateway worktree the run uses (`worktree`).
    pub worktree: Option<crate::worktree::Worktree>,
}

/// The session facts admission resolved.
struct ResolvedSession {
    binding: SessionBinding,
    /// The gateway session in play (named, active, or upserted for a native id).
    gateway: Option<SessionRow>,
    /// Case 3: a native id to upsert a session for once every check passed.
    upsert_native: Option<String>,
}

fn pv(w: crate::providers::Warning) -> Warning {
    Warning::new(w.code, w.message)
}

pub(crate) async fn admit(
    svc: &JobService,
    request: AnyRequest,
    correlation_id: String,
) -> Result<Admitted, JobError> {
    let cli = request.provider();
    let config = svc.config();
    let limits = crate::providers::Limits {
        max_prompt_chars: config.limits.max_prompt_chars as usize,
    };
    let mut warnings: Vec<Warning> = request
        .validate(limits)
        .map_err(JobError::from_validation)?
        .into_iter()
        .map(pv)
        .collect();
    warnings.extend(crate::policy::integrity::request_warning(&request));
    let common = request.common();
    let model = svc.models().resolve(cli, common.model).model;

    let session = resolve_session(svc, cli, common.session_intent()).await?;
    if matches!(session.binding, SessionBinding::Resume(_))
        && let Some(w) = crate::policy::cache::ttl_warning(
            &config.cache_awareness,
            cli,
            session.gateway.as_ref().map(|s| s.last_used_at.as_str()),
            chrono::Utc::now(),
        )
    {
        warnings.push(w);
    }

    // The cwd: workingDir (checked), else the session's recorded dir, else the scratch dir.
    let working_dir = match common.working_dir {
        Some(dir) => Some(existing_dir(dir, "workingDir")?),
        None => None,
    };
    let session_cwd = session.gateway.as_ref().and_then(|s| s.cwd.clone());
    if cli == Provider::Gemini
        && let (Some(dir), Some(recorded)) = (&working_dir, &session_cwd)
        && matches!(session.binding, SessionBinding::Resume(_))
        && Path::new(recorded) != dir.as_path()
    {
        return Err(JobError::invalid(
            format!(
                "Invalid workingDir: gemini sessions are project-scoped and this session runs in {recorded}"
            ),
            "Omit workingDir to resume in the session's directory, or set createNewSession: true.",
        ));
    }
    let (cwd, cwd_key) = match (&working_dir, &session_cwd) {
        (Some(dir), _) => (dir.clone(), Some(dir.display().to_string())),
        (None, Some(recorded)) if Path::new(recorded).is_dir() => {
            (PathBuf::from(recorded), Some(recorded.clone()))
        }
        _ => {
            let scratch = paths::scratch_dir(&config.data_dir, cli);
            paths::ensure_private_dir(&scratch).map_err(|e| {
                JobError::internal(format!(
                    "cannot create the scratch dir {}: {e}",
                    scratch.display()
                ))
            })?;
            (scratch, None)
        }
    };

    check_paths(&request.to_value(), &cwd)?;

    let provider_config = config.provider(cli);
    let home = paths::home_dir();
    let program = exec::resolve_program(
        &provider_config.binary,
        std::env::var_os("PATH").as_deref(),
        &exec::install_dirs(home.as_deref()),
    )
    .map_err(|missing| JobError::not_installed(cli, &missing))?;

    // `worktree`: the run moves into a gateway worktree of the cwd's repository.
    let worktree = match common.worktree {
        Some(param) => prepare_worktree(param, &cwd, session.gateway.as_ref()).await?,
        None => None,
    };
    let worktree_guard = worktree.as_ref().map(crate::worktree::CreatedGuard::new);
    let (cwd, cwd_key) = match &worktree {
        Some(wt) => (wt.path.clone(), Some(wt.path.display().to_string())),
        None => (cwd, cwd_key),
    };

    let temp_dir = config
        .data_dir
        .join("tmp")
        .join(uuid::Uuid::now_v7().to_string());
    let mut ctx = BuildContext::new(program.display().to_string(), &cwd, &temp_dir);
    ctx.model = model.clone();
    ctx.session = session.binding.clone();
    // SAFETY: geteuid has no preconditions and cannot fail.
    ctx.is_root = unsafe { libc::geteuid() } == 0;
    ctx.root_bypass_sets_is_sandbox = provider_config.root_bypass_sets_is_sandbox;
    ctx.provider_env = provider_config
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ctx.max_prompt_chars = limits.max_prompt_chars;
    ctx.mcp_servers = config
        .mcp_servers
        .iter()
        .map(|(name, server)| {
            (
                name.clone(),
                McpServerSpec {
                    command: server.command.clone(),
                    args: server.args.clone(),
                    env: server.env.clone(),
                },
            )
        })
        .collect();
    // mcp_managed approvals: decided and recorded before anything exists (policy.md).
    let gate = crate::policy::approval::GateInput {
        correlation_id: &correlation_id,
        native_resume: session.upsert_native.is_some()
            || session.binding == SessionBinding::ResumeLatest,
    };
    let approved = crate::policy::approval::gate(svc.store(), config, &request, gate).await?;
    ctx.pin_permission_mode = approved.is_some();
    let to_build = approved.as_ref().map_or(&request, |a| &a.request);
    let invocation: Invocation = to_build.build(&ctx).map_err(JobError::from_validation)?;
    let mcp_servers = match to_build {
        AnyRequest::Claude(r) if !r.mcp_servers.is_empty() || r.strict_mcp_config => {
            Some(r.mcp_server_report(&ctx))
        }
        _ => None,
    };
    for w in &invocation.warnings {
        if !warnings.iter().any(|x| x.code == w.code) {
            warnings.push(pv(w.clone()));
        }
    }

    // Every check passed: from here on the request may write.
    let gateway = match &session.upsert_native {
        Some(native) => Some(
            svc.store()
                .upsert_session_for_provider_id(
                    cli,
                    native.clone(),
                    Some(cwd.display().to_string()),
                )
                .await
                .map_err(|e| JobError::internal(format!("cannot record the session: {e}")))?,
        ),
        None => session.gateway.clone(),
    };
    let gateway_session = gateway.as_ref().map(|s| s.id.clone());
    let key = request_key(KeyInput {
        cli,
        invocation: &invocation,
        temp_dir: &temp_dir,
        cwd: cwd_key.as_deref(),
        gateway_session: gateway_session.as_deref(),
    });
    let idle_timeout_ms = common
        .idle_timeout_ms
        .unwrap_or(provider_config.idle_timeout_ms);
    let timeout_ms = common.timeout_ms.unwrap_or(provider_config.timeout_ms);
    let runner = svc.runner();
    let new_job = NewJob {
        correlation_id: correlation_id.clone(),
        request_key: key,
        cli,
        model: model.clone(),
        runner,
        program: invocation.program.clone(),
        argv: redact_prompt(&invocation.argv, &invocation.prompt.text),
        env: invocation.env_overrides.iter().cloned().collect(),
        cwd: Some(cwd.display().to_string()),
        session_id: gateway_session.clone(),
        idle_timeout_ms: Some(idle_timeout_ms),
        timeout_ms: Some(timeout_ms),
    };
    let mut new_request = NewRequest::new(&correlation_id, cli, invocation.prompt.text.clone());
    new_request.model = model;
    new_request.session_id = gateway_session.clone();
    new_request.provider_session_id = match &session.binding {
        SessionBinding::Resume(id) => Some(id.clone()),
        _ => None,
    };
    new_request.working_dir = Some(cwd.display().to_string());
    new_request.stable_prefix_hash = invocation.prompt.stable_prefix_hash.clone();
    new_request.stable_prefix_tokens = invocation
        .prompt
        .stable_prefix_tokens
        .and_then(|t| i64::try_from(t).ok());
    new_request.cache_control_blocks =
        crate::policy::cache::cache_control_blocks(common.prompt_parts);
    new_request.warnings = warnings.clone();
    new_request.approval_decision = approved.map(|a| a.row.status.as_str().to_string());
    let dedup = DedupPolicy {
        window_ms: config.persistence.dedup_window_ms,
        session_bound: gateway_session.is_some()
            || !matches!(session.binding, SessionBinding::Fresh),
        force_refresh: common.force_refresh,
    };
    let admission = svc
        .store()
        .admit_job(new_job, new_request, dedup, config.limits.max_queued_jobs)
        .await
        .map_err(|e| JobError::internal(format!("cannot admit the job: {e}")))?;
    let (job, request_id, deduped) = match admission {
        Admission::Admitted {
            job,
            request_id,
            deduped,
        } => (*job, request_id, deduped),
        Admission::Saturated { queued, max_queued } => {
            return Err(JobError::new(
                ErrorCategory::Saturated,
                format!("The job queue is full: {queued} jobs wait (maximum {max_queued})"),
                "Retry in a little while, or raise `[limits] max_queued_jobs`.",
            ));
        }
    };
    let plan = (!deduped).then(|| RunPlan {
        job_id: job.id.clone(),
        cli,
        invocation,
        temp_dir,
        baseline: match &session.binding {
            SessionBinding::Fresh => BaselineKind::NewSession,
            SessionBinding::Resume(id) => BaselineKind::Resumed(id.clone()),
            SessionBinding::ResumeLatest => BaselineKind::Unknown,
        },
        limits: RunLimits {
            idle_timeout_ms,
            timeout_ms,
            output_cap: config.limits.max_job_output_bytes,
            kill_grace_ms: config.jobs.kill_grace_ms,
            max_running: config.limits.max_running_jobs,
            max_running_per_provider: config.limits.max_running_jobs_per_provider,
            queue_timeout_ms: config.limits.queue_timeout_ms,
        },
        gateway_session: gateway_session.clone(),
        cwd: cwd.display().to_string(),
        worktree: worktree.clone(),
    });
    if plan.is_some()
        && let Some(guard) = worktree_guard
    {
        guard.disarm();
    }
    Ok(Admitted {
        job,
        request_id,
        deduped,
        correlation_id,
        gateway_session,
        plan,
        output_format: common.output_format,
        max_response_chars: common
            .max_response_chars
            .unwrap_or(DEFAULT_MAX_RESPONSE_CHARS),
        warnings,
        mcp_servers,
        worktree,
    })
}

/// providers.md "Sessions", first match wins.
async fn resolve_session(
    svc: &JobService,
    cli: Provider,
    intent: SessionIntent<'_>,
) -> Result<ResolvedSession, JobError> {
    let store = svc.store();
    let fault =
        |e: crate::store::StoreError| JobError::internal(format!("cannot read sessions: {e}"));
    let continue_session = |row: SessionRow| ResolvedSession {
        binding: match &row.provider_session_id {
            Some(id) => SessionBinding::Resume(id.clone()),
            None => SessionBinding::Fresh,
        },
        gateway: Some(row),
        upsert_native: None,
    };
    Ok(match intent {
        // Case 1: fresh; a gateway session in play (active) is rebound by a successful run.
        SessionIntent::New => ResolvedSession {
            binding: SessionBinding::Fresh,
            gateway: store.active_session(cli).await.map_err(fault)?,
            upsert_native: None,
        },
        // Case 2.
        SessionIntent::Id(id) if is_gateway_session_id(id) => {
            match store.get_session(id.to_string()).await.map_err(fault)? {
                Some(row) if row.cli == cli => continue_session(row),
                Some(row) => {
                    return Err(JobError::invalid(
                        format!(
                            "Invalid sessionId: gateway session \"{id}\" belongs to {}, not {}",
                            row.cli, cli
                        ),
                        format!("Pass a {cli} session (session_list with cli: \"{cli}\")."),
                    ));
                }
                None => {
                    return Err(JobError::invalid(
                        format!("Unknown gateway session \"{id}\" (sessionId)"),
                        "List the gateway sessions with session_list, or create one with session_create.",
                    ));
                }
            }
        }
        // Case 3: a provider-native id, resumed in its recorded cwd when known.
        SessionIntent::Id(id) => {
            let known = store
                .find_session_by_provider_id(cli, id.to_string())
                .await
                .map_err(fault)?;
            ResolvedSession {
                binding: SessionBinding::Resume(id.to_string()),
                upsert_native: known.is_none().then(|| id.to_string()),
                gateway: known,
            }
        }
        // Case 4.
        SessionIntent::Latest => ResolvedSession {
            binding: SessionBinding::ResumeLatest,
            gateway: None,
            upsert_native: None,
        },
        // Cases 5 and 6.
        SessionIntent::Unspecified => match store.active_session(cli).await.map_err(fault)? {
            Some(row) => continue_session(row),
            None => ResolvedSession {
                binding: SessionBinding::Fresh,
                gateway: None,
                upsert_native: None,
            },
        },
    })
}

/// Creates or reuses the gateway worktree `param` asks for (`None` for `worktree: false`);
/// a cwd outside a git repository, a bad ref or a name in use is `invalid_input`.
async fn prepare_worktree(
    param: &crate::providers::request::WorktreeParam,
    cwd: &Path,
    session: Option<&SessionRow>,
) -> Result<Option<crate::worktree::Worktree>, JobError> {
    use crate::providers::request::WorktreeParam;
    use crate::worktree::{WorktreeError, prepare};
    let (name, git_ref) = match param {
        WorktreeParam::Enabled(false) => return Ok(None),
        WorktreeParam::Enabled(true) => (None, None),
        WorktreeParam::Spec(spec) => (spec.name.clone(), spec.git_ref.clone()),
    };
    let dir = cwd.to_path_buf();
    let session = session.map(|s| s.id.clone());
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(
            &dir,
            name.as_deref(),
            git_ref.as_deref(),
            session.as_deref(),
        )
    })
    .await
    .map_err(|e| JobError::internal(format!("cannot prepare the worktree: {e}")))?;
    match prepared {
        Ok(wt) => Ok(Some(wt)),
        Err(WorktreeError::InvalidInput(message)) => Err(JobError::invalid(
            message,
            "Pass a workingDir inside a git checkout, an existing ref, and a worktree name not in use (or omit the name).",
        )),
        Err(WorktreeError::Git(message)) => Err(JobError::internal(format!(
            "cannot create the worktree: {message}"
        ))),
    }
}

/// `dir` must exist and be a directory; returns its realpath.
fn existing_dir(dir: &str, field: &str) -> Result<PathBuf, JobError> {
    let path = Path::new(dir);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => path.canonicalize().map_err(|e| {
            JobError::invalid(
                format!("Invalid {field}: cannot resolve {dir}: {e}"),
                format!("Pass an existing, accessible directory as {field}."),
            )
        }),
        Ok(_) => Err(JobError::invalid(
            format!("Invalid {field}: {dir} is not a directory"),
            format!("Pass an existing directory as {field}."),
        )),
        Err(_) => Err(JobError::invalid(
            format!("Invalid {field}: {dir} does not exist"),
            format!("Pass an existing directory as {field}."),
        )),
    }
}

/// `addDir` / `includeDirs` entries must be existing directories and `images` existing
/// files (relative paths are taken from the run's cwd, as the CLI would).
fn check_paths(args: &Value, cwd: &Path) -> Result<(), JobError> {
    let strings = |key: &str| -> Vec<String> {
        args.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for key in ["addDir", "includeDirs"] {
        for (i, dir) in strings(key).iter().enumerate() {
            if !cwd.join(dir).is_dir() {
                return Err(JobError::invalid(
                    format!("Invalid {key}[{i}]: {dir} is not an existing directory"),
                    format!("Pass existing directories in {key}."),
                ));
            }
        }
    }
    for (i, file) in strings("images").iter().enumerate() {
        if !cwd.join(file).is_file() {
            return Err(JobError::invalid(
                format!("Invalid images[{i}]: {file} is not an existing file"),
                "Pass existing image files in images.",
            ));
        }
    }
    Ok(())
}

/// The runner a job gets under this configuration (jobs.md: `memory`/`none` always run
/// in-process).
pub(crate) fn runner_for(config: &crate::config::Config) -> Runner {
    use crate::config::{Backend, Runner as ConfigRunner};
    match (config.persistence.backend, config.jobs.runner) {
        (Backend::Sqlite, ConfigRunner::Supervisor) => Runner::Supervisor,
        _ => Runner::InProcess,
    }
}
