//! The gateway's configuration: `config.toml` plus environment overrides, resolved into one
//! validated [`Config`] together with where every value came from.
//!
//! This module owns the schema and defaults of config.toml (spec: config-and-cli.md), strict
//! validation with `<file>:<line>: <key>: <problem>` messages, the environment overrides and
//! their precedence (defaults → file → environment, with the recorded exceptions), and the
//! text of `llm-cli-gateway config --show`. It does not own where the data dir is or how
//! directories are created (`paths`), and it acts on no value: opening the store, spawning
//! CLIs and logging the returned warnings belong to the callers.
//!
//! Loading never reads the process environment. The caller takes one [`Env`] snapshot at
//! startup and passes it in, so tests are hermetic.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

pub use crate::paths::Env;
use crate::paths::{self, expand_tilde};
use crate::providers::Provider;
use crate::suggest;

/// The example configuration shipped with the crate: every key, its default and one line of
/// explanation. `llm-cli-gateway config --example` prints it.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// The variable naming the config file (default: `config.toml` in the data dir).
pub const CONFIG_VAR: &str = "LLM_GATEWAY_CONFIG";
/// The config file's name inside the data dir.
pub const CONFIG_FILE_NAME: &str = "config.toml";

/// Deprecated: `none`, or the path of a SQLite store.
pub const LOGS_DB_VAR: &str = "LLM_GATEWAY_LOGS_DB";
/// Deprecated spelling of [`LOGS_DB_VAR`]; loses when both are set.
pub const JOBS_DB_VAR: &str = "LLM_GATEWAY_JOBS_DB";
/// Deprecated: `[persistence] retentionDays`.
pub const JOB_RETENTION_DAYS_VAR: &str = "LLM_GATEWAY_JOB_RETENTION_DAYS";
/// Deprecated: `[persistence] dedupWindowMs`.
pub const DEDUP_WINDOW_MS_VAR: &str = "LLM_GATEWAY_DEDUP_WINDOW_MS";
/// Deprecated: `[persistence] acknowledgeEphemeral` (`1`, `true` or `yes` mean true).
pub const ACKNOWLEDGE_EPHEMERAL_VAR: &str = "LLM_GATEWAY_ACKNOWLEDGE_EPHEMERAL";
/// `[jobs] sync_deadline_ms`.
pub const SYNC_DEADLINE_MS_VAR: &str = "SYNC_DEADLINE_MS";
/// `[approvals] policy`.
pub const APPROVAL_POLICY_VAR: &str = "LLM_GATEWAY_APPROVAL_POLICY";
/// `[approvals] allow_bypass`.
pub const APPROVAL_ALLOW_BYPASS_VAR: &str = "LLM_GATEWAY_APPROVAL_ALLOW_BYPASS";

/// `<KEY>_DEFAULT_MODEL`: the provider's default model.
pub fn default_model_var(provider: Provider) -> String {
    format!("{}_DEFAULT_MODEL", provider.env_prefix())
}

/// `<KEY>_MODEL_ALIASES`: extra model aliases as `name=model,name=model`.
pub fn model_aliases_var(provider: Provider) -> String {
    format!("{}_MODEL_ALIASES", provider.env_prefix())
}

// ---------------------------------------------------------------------------------------
// The resolved configuration
// ---------------------------------------------------------------------------------------

/// The resolved configuration. All five providers are always present in `providers` and
/// `models`, enabled or not, so lookups never fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `LLM_GATEWAY_HOME` or `~/.llm-cli-gateway`: the store, scratch dirs, temp files.
    pub data_dir: PathBuf,
    pub persistence: PersistenceConfig,
    pub jobs: JobsConfig,
    pub limits: LimitsConfig,
    pub providers: BTreeMap<Provider, ProviderConfig>,
    pub models: BTreeMap<Provider, ModelsConfig>,
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    pub admin: AdminConfig,
    pub approvals: ApprovalsConfig,
    pub cache_awareness: CacheAwarenessConfig,
    pub privacy: PrivacyConfig,
}

impl Config {
    /// The built-in defaults, with the data dir the environment selects.
    pub fn defaults(env: &Env) -> Config {
        Config::with_data_dir(paths::default_data_dir(env))
    }

    /// The built-in defaults around a given data dir (the store defaults to `logs.db` in it).
    pub fn with_data_dir(data_dir: PathBuf) -> Config {
        Config {
            persistence: PersistenceConfig::defaults(&data_dir),
            data_dir,
            jobs: JobsConfig::default(),
            limits: LimitsConfig::default(),
            providers: Provider::ALL
                .into_iter()
                .map(|provider| (provider, ProviderConfig::defaults(provider)))
                .collect(),
            models: Provider::ALL
                .into_iter()
                .map(|provider| (provider, ModelsConfig::default()))
                .collect(),
            mcp_servers: BTreeMap::new(),
            admin: AdminConfig::default(),
            approvals: ApprovalsConfig::default(),
            cache_awareness: CacheAwarenessConfig::default(),
            privacy: PrivacyConfig::default(),
        }
    }

    /// The settings of one provider.
    pub fn provider(&self, provider: Provider) -> &ProviderConfig {
        self.providers
            .get(&provider)
            .expect("every provider has settings: Config is built from Provider::ALL")
    }

    /// The model overlays (`[models.<cli>]` and environment) of one provider.
    pub fn models_of(&self, provider: Provider) -> &ModelsConfig {
        self.models
            .get(&provider)
            .expect("every provider has model settings: Config is built from Provider::ALL")
    }
}

/// Where the job store and flight recorder live. Keys are camelCase in the file, as in the
/// older system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersistenceConfig {
    pub backend: Backend,
    /// The SQLite file for `backend = "sqlite"`.
    pub path: PathBuf,
    /// Days a finished job and its output are kept.
    pub retention_days: u32,
    /// Days flight-recorder requests and approvals are kept; 0 keeps them forever.
    pub request_retention_days: u32,
    /// Days an unused session is kept.
    pub session_ttl_days: u32,
    /// How long an identical request attaches to an earlier job; 0 disables dedup.
    pub dedup_window_ms: u64,
    /// Required to run with `backend = "memory"`, whose jobs vanish with the server.
    pub acknowledge_ephemeral: bool,
}

impl PersistenceConfig {
    /// The defaults, with the store at `<data dir>/logs.db`.
    pub fn defaults(data_dir: &Path) -> PersistenceConfig {
        PersistenceConfig {
            backend: Backend::Sqlite,
            path: data_dir.join("logs.db"),
            retention_days: 30,
            request_retention_days: 90,
            session_ttl_days: 30,
            dedup_window_ms: 3_600_000,
            acknowledge_ephemeral: false,
        }
    }
}

/// How jobs run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobsConfig {
    pub runner: Runner,
    /// How long a sync request waits before it is deferred to a job; 0 = never defer.
    pub sync_deadline_ms: u64,
    /// Cancel running jobs when the server exits.
    pub cancel_on_exit: bool,
    /// Time between SIGTERM and SIGKILL when a job is stopped.
    pub kill_grace_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            runner: Runner::Supervisor,
            sync_deadline_ms: 45_000,
            cancel_on_exit: false,
            kill_grace_ms: 5_000,
        }
    }
}

/// Admission limits, counted across every server process sharing the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitsConfig {
    pub max_running_jobs: u32,
    pub max_running_jobs_per_provider: u32,
    pub max_queued_jobs: u32,
    pub queue_timeout_ms: u64,
    pub max_job_output_bytes: u64,
    pub max_prompt_chars: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_running_jobs: 32,
            max_running_jobs_per_provider: 16,
            max_queued_jobs: 128,
            queue_timeout_ms: 120_000,
            max_job_output_bytes: 52_428_800,
            max_prompt_chars: 100_000,
        }
    }
}

/// `[providers.<cli>]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderConfig {
    /// False: the provider's tools are not registered.
    pub enabled: bool,
    /// A command name looked up on `PATH`, or an absolute path (`~/` expanded).
    pub binary: String,
    /// Kill a run after this long without output.
    pub idle_timeout_ms: u64,
    /// Wall-clock cap of one run.
    pub timeout_ms: u64,
    /// Extra environment for this CLI only. Values may be secrets: never print them.
    pub env: BTreeMap<String, String>,
    /// Claude only (always false for the others): as root, set `IS_SANDBOX=1` when a bypass
    /// was requested and allowed (providers.md).
    pub root_bypass_sets_is_sandbox: bool,
}

impl ProviderConfig {
    /// The defaults of one provider.
    pub fn defaults(provider: Provider) -> ProviderConfig {
        ProviderConfig {
            enabled: true,
            binary: provider.default_binary().to_string(),
            idle_timeout_ms: 600_000,
            timeout_ms: 14_400_000,
            env: BTreeMap::new(),
            root_bypass_sets_is_sandbox: provider == Provider::Claude,
        }
    }
}

/// `[models.<cli>]` overlaid by `<KEY>_DEFAULT_MODEL` and `<KEY>_MODEL_ALIASES`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelsConfig {
    /// The model used for `model: default` / `latest`; none = let the CLI pick.
    pub default: Option<Sourced<String>>,
    /// Alias name → model id.
    pub aliases: BTreeMap<String, Sourced<String>>,
    /// Model ids `list_models` shows beyond the bundled table.
    pub extra: Vec<String>,
}

impl ModelsConfig {
    /// True when neither the file nor the environment set anything.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.aliases.is_empty() && self.extra.is_empty()
    }
}

/// A value together with whether config.toml or the environment set it (`list_models` says
/// where each entry came from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: ModelSource,
}

/// Where a model setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelSource {
    Config,
    Env,
}

impl ModelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSource::Config => "config",
            ModelSource::Env => "env",
        }
    }
}

/// `[mcp_servers.<name>]`: an MCP server a claude request may name in `mcpServers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpServerConfig {
    pub command: String,
    pub args: Vec<String>,
    /// Values may be secrets: never print them.
    pub env: BTreeMap<String, String>,
    /// Added to the approval score per request that names this server (policy.md).
    pub approval_score: u32,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AdminConfig {
    /// Allow `cli_upgrade` with `dryRun: false`.
    pub allow_cli_upgrade: bool,
}

/// `[approvals]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApprovalsConfig {
    pub policy: ApprovalPolicy,
    /// Let an `mcp_managed` request that asks for a bypass be approved at all.
    pub allow_bypass: bool,
}

/// `[cache_awareness]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheAwarenessConfig {
    /// Anthropic's prompt-cache lifetime: 300 or 3600.
    pub anthropic_ttl_seconds: u32,
    /// Warn when a claude session's cache is about to expire.
    pub warn_on_ttl_expiry: bool,
}

impl Default for CacheAwarenessConfig {
    fn default() -> Self {
        CacheAwarenessConfig {
            anthropic_ttl_seconds: 300,
            warn_on_ttl_expiry: false,
        }
    }
}

/// `[privacy]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrivacyConfig {
    /// Store prompt and response text in the flight recorder (else only hash and length).
    pub store_prompts: bool,
    /// Replace obvious secrets by `[REDACTED:<kind>]` in what the recorder writes.
    pub redact_secrets: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            store_prompts: true,
            redact_secrets: true,
        }
    }
}

/// `[persistence] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The durable SQLite store (the default).
    Sqlite,
    /// A private database in a temp dir, removed when the server exits.
    Memory,
    /// No job store and no flight recorder; only sync requests, run in-process.
    None,
}

/// `[jobs] runner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// Each job runs under its own supervisor process and survives the server.
    Supervisor,
    /// Jobs run as tasks inside the server and end with it.
    InProcess,
}

/// `[approvals] policy`: the score threshold of `mcp_managed` approvals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalPolicy {
    Strict,
    #[default]
    Balanced,
    Permissive,
}

/// The enums of config.toml: a closed set of spellings.
trait ConfigEnum: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    /// The value with this exact spelling, or the problem to report.
    fn parse_config(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == text)
            .ok_or_else(|| {
                let spellings: Vec<String> = Self::ALL
                    .iter()
                    .map(|v| format!("\"{}\"", v.as_str()))
                    .collect();
                format!(
                    "unknown value \"{text}\" (expected {})",
                    join_alternatives(&spellings)
                )
            })
    }
}

impl ConfigEnum for Backend {
    const ALL: &'static [Self] = &[Backend::Sqlite, Backend::Memory, Backend::None];

    fn as_str(self) -> &'static str {
        Backend::as_str(self)
    }

    fn parse_config(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("postgres") || lower == "pg" {
            return Err(format!(
                "unknown value \"{text}\": PostgreSQL is not supported; \
                 use \"sqlite\" (the default) or \"memory\""
            ));
        }
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == text)
            .ok_or_else(|| {
                format!("unknown value \"{text}\" (expected \"sqlite\", \"memory\" or \"none\")")
            })
    }
}

impl ConfigEnum for Runner {
    const ALL: &'static [Self] = &[Runner::Supervisor, Runner::InProcess];

    fn as_str(self) -> &'static str {
        Runner::as_str(self)
    }
}

impl ConfigEnum for ApprovalPolicy {
    const ALL: &'static [Self] = &[
        ApprovalPolicy::Strict,
        ApprovalPolicy::Balanced,
        ApprovalPolicy::Permissive,
    ];

    fn as_str(self) -> &'static str {
        ApprovalPolicy::as_str(self)
    }
}

impl Backend {
    /// The spelling in config.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Memory => "memory",
            Backend::None => "none",
        }
    }
}

impl Runner {
    /// The spelling in config.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Supervisor => "supervisor",
            Runner::InProcess => "in-process",
        }
    }
}

impl ApprovalPolicy {
    /// The spelling in config.toml and in the `approvalPolicy` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Strict => "strict",
            ApprovalPolicy::Balanced => "balanced",
            ApprovalPolicy::Permissive => "permissive",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sources and the load result
// ---------------------------------------------------------------------------------------

/// A resolved configuration, where its values came from, and the warnings the caller logs
/// once (deprecated variables, ignored keys, overrides that did not apply).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    pub sources: Sources,
    pub warnings: Vec<String>,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sources {
    /// Where the config file was looked for.
    pub config_path: PathBuf,
    /// Some when a config file was read.
    pub config_file: Option<PathBuf>,
    /// Every environment override that was applied, in the order applied.
    pub env_overrides: Vec<EnvOverride>,
    /// The source of each resolved value by dotted key (`jobs.sync_deadline_ms`,
    /// `providers.claude.env`, `models.claude.aliases.fast`, `data_dir`, …).
    pub values: BTreeMap<String, ValueSource>,
}

impl Sources {
    /// The source of a dotted key; keys never set anywhere are defaults.
    pub fn source_of(&self, key: &str) -> &ValueSource {
        self.values.get(key).unwrap_or(&ValueSource::Default)
    }
}

/// One environment variable that changed a setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvOverride {
    pub var: String,
    /// The dotted key it set.
    pub key: String,
    /// Deprecated variables also produce a warning.
    pub deprecated: bool,
}

/// Where one resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ValueSource {
    Default,
    File { line: usize },
    Env { var: String },
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Default => f.write_str("default"),
            ValueSource::File { line } => write!(f, "file:{line}"),
            ValueSource::Env { var } => write!(f, "env:{var}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why the configuration cannot be used. The Display text is what a person sees: it names
/// the file and line (or the variable), the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "{}: config file not found ({CONFIG_VAR} names it; create the file or unset the variable)",
        path.display()
    )]
    ExplicitFileMissing { path: PathBuf },

    #[error("{}:{line}: invalid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A key, a value or a variable that is not acceptable.
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        problem: String,
    },

    /// More than one problem; each is shown on its own line, in file order, then the
    /// environment's.
    #[error("{}", join_lines(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// Each problem's message, one per problem (for `doctor --json` `config.errors`).
    pub fn messages(&self) -> Vec<String> {
        match self {
            ConfigError::Several(errors) => errors.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }

    fn from_problems(mut problems: Vec<ConfigError>) -> ConfigError {
        if problems.len() == 1 {
            problems.remove(0)
        } else {
            ConfigError::Several(problems)
        }
    }
}

fn join_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where an invalid setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// Loads the configuration: defaults, then the config file (`LLM_GATEWAY_CONFIG`, else
/// `config.toml` in the data dir), then the environment.
///
/// A missing default file means defaults; a missing file named by `LLM_GATEWAY_CONFIG` is an
/// error, since someone set the variable on purpose. The only I/O is reading that file.
pub fn load(env: &Env) -> Result<LoadedConfig, ConfigError> {
    let home = env.home_dir();
    let named = env.get(CONFIG_VAR).map(str::trim).filter(|v| !v.is_empty());
    let config_path = match named {
        Some(raw) => expand_tilde(raw, home.as_deref()),
        None => paths::default_data_dir(env).join(CONFIG_FILE_NAME),
    };
    match std::fs::read_to_string(&config_path) {
        Ok(text) => resolve(Some(&text), config_path, env),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if named.is_some() {
                Err(ConfigError::ExplicitFileMissing { path: config_path })
            } else {
                resolve(None, config_path, env)
            }
        }
        Err(source) => Err(ConfigError::Read {
            path: config_path,
            source,
        }),
    }
}

/// Loads the configuration from file text that was read from `file_path` (used in messages).
pub fn load_from_str(text: &str, file_path: &Path, env: &Env) -> Result<LoadedConfig, ConfigError> {
    resolve(Some(text), file_path.to_path_buf(), env)
}

fn resolve(
    text: Option<&str>,
    config_path: PathBuf,
    env: &Env,
) -> Result<LoadedConfig, ConfigError> {
    let home = env.home_dir();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    let data_dir = paths::default_data_dir(env);
    let data_dir_source = match env.get(paths::HOME_VAR).map(str::trim) {
        Some(raw) if !raw.is_empty() => {
            if !data_dir.is_absolute() {
                problems.push(ConfigError::Invalid {
                    origin: Origin::Env {
                        var: paths::HOME_VAR.to_string(),
                    },
                    key: "data_dir".to_string(),
                    problem: format!("must be an absolute path or start with \"~/\" (got {raw:?})"),
                });
            }
            ValueSource::Env {
                var: paths::HOME_VAR.to_string(),
            }
        }
        _ => ValueSource::Default,
    };

    let mut config = Config::with_data_dir(data_dir);
    let mut values: BTreeMap<String, ValueSource> = show_lines(&config)
        .into_iter()
        .map(|line| (line.source_key, ValueSource::Default))
        .collect();
    values.insert("data_dir".to_string(), data_dir_source);

    if let Some(text) = text {
        let document = DeTable::parse(text).map_err(|err| ConfigError::Syntax {
            path: config_path.clone(),
            line: err
                .span()
                .map_or(1, |span| LineIndex::new(text).line(span.start)),
            message: err.message().to_string(),
        })?;
        let mut reader = FileReader::new(&config_path, text, home.clone());
        reader.read_document(document.get_ref(), &mut config);
        reader.problems.sort_by_key(|(line, _)| *line);
        problems.extend(reader.problems.into_iter().map(|(_, problem)| problem));
        warnings.extend(reader.warnings);
        values.extend(reader.values);
    }

    let mut overlay = EnvOverlay {
        env,
        home: home.as_deref(),
        config_path: &config_path,
        config: &mut config,
        values: &mut values,
        overrides: Vec::new(),
        warnings: &mut warnings,
        problems: &mut problems,
    };
    overlay.apply();
    let env_overrides = overlay.overrides;

    if problems.is_empty() {
        check_combinations(&config, &values, &config_path, &mut problems);
    }
    if !problems.is_empty() {
        return Err(ConfigError::from_problems(problems));
    }

    let config_file = text.map(|_| config_path.clone());
    Ok(LoadedConfig {
        config,
        sources: Sources {
            config_path,
            config_file,
            env_overrides,
            values,
        },
        warnings,
    })
}

/// Checks that need the merged result (file and environment together).
fn check_combinations(
    config: &Config,
    values: &BTreeMap<String, ValueSource>,
    config_path: &Path,
    problems: &mut Vec<ConfigError>,
) {
    let persistence = &config.persistence;
    if persistence.backend == Backend::Memory && !persistence.acknowledge_ephemeral {
        let origin = match values.get("persistence.backend") {
            Some(ValueSource::Env { var }) => Origin::Env { var: var.clone() },
            Some(ValueSource::File { line }) => Origin::File {
                path: config_path.to_path_buf(),
                line: *line,
            },
            // Only the file can choose "memory"; line 1 keeps the message well-formed.
            _ => Origin::File {
                path: config_path.to_path_buf(),
                line: 1,
            },
        };
        problems.push(ConfigError::Invalid {
            origin,
            key: "persistence.backend".to_string(),
            problem: "\"memory\" keeps jobs in a temporary database that is deleted when the \
                      server exits; set acknowledgeEphemeral = true in [persistence] to accept \
                      that, or use backend = \"sqlite\" (the default)"
                .to_string(),
        });
    }
}

// ---------------------------------------------------------------------------------------
// Validation ranges (documented in config.example.toml)
// ---------------------------------------------------------------------------------------

/// An inclusive range of accepted integers.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: u64,
    max: u64,
}

impl Bounds {
    const fn new(min: u64, max: u64) -> Bounds {
        Bounds { min, max }
    }

    fn check(self, n: i128) -> Result<u64, String> {
        if n < i128::from(self.min) {
            Err(format!("must be at least {} (got {n})", self.min))
        } else if n > i128::from(self.max) {
            Err(format!("must be at most {} (got {n})", self.max))
        } else {
            Ok(n as u64)
        }
    }
}

/// Ten years: longer retention is almost certainly a typo.
const RETENTION_DAYS: Bounds = Bounds::new(1, 3_650);
/// 0 keeps requests and approvals forever.
const REQUEST_RETENTION_DAYS: Bounds = Bounds::new(0, 3_650);
const SESSION_TTL_DAYS: Bounds = Bounds::new(1, 3_650);
/// 0 disables dedup; at most a week.
const DEDUP_WINDOW_MS: Bounds = Bounds::new(0, 604_800_000);
/// 0 never defers; at most the MCP surface's cap on `timeoutMs` (24 h).
const SYNC_DEADLINE_MS: Bounds = Bounds::new(0, 86_400_000);
/// 0 kills at once; at most 5 minutes.
const KILL_GRACE_MS: Bounds = Bounds::new(0, 300_000);
const RUNNING_JOBS: Bounds = Bounds::new(1, 1_024);
const QUEUED_JOBS: Bounds = Bounds::new(1, 100_000);
const QUEUE_TIMEOUT_MS: Bounds = Bounds::new(1_000, 86_400_000);
/// 1 KiB to 1 GiB.
const JOB_OUTPUT_BYTES: Bounds = Bounds::new(1_024, 1_073_741_824);
const PROMPT_CHARS: Bounds = Bounds::new(1, 10_000_000);
/// The MCP surface's `idleTimeoutMs` range.
const IDLE_TIMEOUT_MS: Bounds = Bounds::new(1_000, 3_600_000);
/// The MCP surface's `timeoutMs` range.
const TIMEOUT_MS: Bounds = Bounds::new(1_000, 86_400_000);
const APPROVAL_SCORE: Bounds = Bounds::new(0, 100);
/// Anthropic offers exactly these two prompt-cache lifetimes.
const ANTHROPIC_TTL_SECONDS: [u64; 2] = [300, 3_600];

// ---------------------------------------------------------------------------------------
// Reading the file
// ---------------------------------------------------------------------------------------

const SECTIONS: &[&str] = &[
    "persistence",
    "jobs",
    "limits",
    "providers",
    "models",
    "mcp_servers",
    "admin",
    "approvals",
    "cache_awareness",
    "privacy",
];
/// One key of a section: its name in the file and how its value is read into the section's
/// settings `S`. A section's fields, in order, are also the keys an unknown key is matched
/// against ("did you mean", "expected one of").
type Field<S> = (
    &'static str,
    fn(&mut FileReader<'_>, &Entry<'_, '_>, &mut S),
);

const PERSISTENCE_FIELDS: &[Field<PersistenceConfig>] = &[
    ("backend", |r, e, out| {
        r.set(e, &mut out.backend, FileReader::enumerated)
    }),
    ("path", |r, e, out| {
        r.set(e, &mut out.path, FileReader::path)
    }),
    ("retentionDays", |r, e, out| {
        r.set_unsigned(e, RETENTION_DAYS, &mut out.retention_days)
    }),
    ("requestRetentionDays", |r, e, out| {
        r.set_unsigned(e, REQUEST_RETENTION_DAYS, &mut out.request_retention_days)
    }),
    ("sessionTtlDays", |r, e, out| {
        r.set_unsigned(e, SESSION_TTL_DAYS, &mut out.session_ttl_days)
    }),
    ("dedupWindowMs", |r, e, out| {
        r.set_unsigned(e, DEDUP_WINDOW_MS, &mut out.dedup_window_ms)
    }),
    ("acknowledgeEphemeral", |r, e, out| {
        r.set(e, &mut out.acknowledge_ephemeral, FileReader::boolean)
    }),
];
const JOBS_FIELDS: &[Field<JobsConfig>] = &[
    ("runner", |r, e, out| {
        r.set(e, &mut out.runner, FileReader::enumerated)
    }),
    ("sync_deadline_ms", |r, e, out| {
        r.set_unsigned(e, SYNC_DEADLINE_MS, &mut out.sync_deadline_ms)
    }),
    ("cancel_on_exit", |r, e, out| {
        r.set(e, &mut out.cancel_on_exit, FileReader::boolean)
    }),
    ("kill_grace_ms", |r, e, out| {
        r.set_unsigned(e, KILL_GRACE_MS, &mut out.kill_grace_ms)
    }),
];
const LIMITS_FIELDS: &[Field<LimitsConfig>] = &[
    ("max_running_jobs", |r, e, out| {
        r.set_unsigned(e, RUNNING_JOBS, &mut out.max_running_jobs)
    }),
    ("max_running_jobs_per_provider", |r, e, out| {
        r.set_unsigned(e, RUNNING_JOBS, &mut out.max_running_jobs_per_provider)
    }),
    ("max_queued_jobs", |r, e, out| {
        r.set_unsigned(e, QUEUED_JOBS, &mut out.max_queued_jobs)
    }),
    ("queue_timeout_ms", |r, e, out| {
        r.set_unsigned(e, QUEUE_TIMEOUT_MS, &mut out.queue_timeout_ms)
    }),
    ("max_job_output_bytes", |r, e, out| {
        r.set_unsigned(e, JOB_OUTPUT_BYTES, &mut out.max_job_output_bytes)
    }),
    ("max_prompt_chars", |r, e, out| {
        r.set_unsigned(e, PROMPT_CHARS, &mut out.max_prompt_chars)
    }),
];
/// `[providers.<cli>]`; claude also has [`CLAUDE_ONLY_FIELD`].
const PROVIDER_FIELDS: &[Field<ProviderConfig>] = &[
    ("enabled", |r, e, out| {
        r.set(e, &mut out.enabled, FileReader::boolean)
    }),
    ("binary", |r, e, out| {
        r.set(e, &mut out.binary, FileReader::command)
    }),
    ("idle_timeout_ms", |r, e, out| {
        r.set_unsigned(e, IDLE_TIMEOUT_MS, &mut out.idle_timeout_ms)
    }),
    ("timeout_ms", |r, e, out| {
        r.set_unsigned(e, TIMEOUT_MS, &mut out.timeout_ms)
    }),
    ("env", |r, e, out| {
        r.set(e, &mut out.env, FileReader::env_table)
    }),
];
const CLAUDE_ONLY_KEY: &str = "root_bypass_sets_is_sandbox";
const CLAUDE_ONLY_FIELD: Field<ProviderConfig> = (CLAUDE_ONLY_KEY, |r, e, out| {
    r.set(e, &mut out.root_bypass_sets_is_sandbox, FileReader::boolean)
});
/// `[models.<cli>]`.
const MODELS_FIELDS: &[Field<ModelsConfig>] = &[
    ("default", |r, e, out| {
        r.set(e, &mut out.default, |r, dotted, value| {
            r.non_empty_string(dotted, value)
                .map(|model| Some(model_from_file(model)))
        })
    }),
    ("aliases", |r, e, out| r.read_aliases(e, &mut out.aliases)),
    ("extra", |r, e, out| {
        r.set(e, &mut out.extra, |r, dotted, value| {
            r.string_list(dotted, value, true)
        })
    }),
];
/// `[mcp_servers.<name>]`.
const MCP_SERVER_FIELDS: &[Field<McpServerConfig>] = &[
    ("command", |r, e, out| {
        r.set(e, &mut out.command, FileReader::command)
    }),
    ("args", |r, e, out| {
        r.set(e, &mut out.args, |r, dotted, value| {
            r.string_list(dotted, value, false)
        })
    }),
    ("env", |r, e, out| {
        r.set(e, &mut out.env, FileReader::env_table)
    }),
    ("approval_score", |r, e, out| {
        r.set_unsigned(e, APPROVAL_SCORE, &mut out.approval_score)
    }),
];
const ADMIN_FIELDS: &[Field<AdminConfig>] = &[("allow_cli_upgrade", |r, e, out| {
    r.set(e, &mut out.allow_cli_upgrade, FileReader::boolean)
})];
const APPROVALS_FIELDS: &[Field<ApprovalsConfig>] = &[
    ("policy", |r, e, out| {
        r.set(e, &mut out.policy, FileReader::enumerated)
    }),
    ("allow_bypass", |r, e, out| {
        r.set(e, &mut out.allow_bypass, FileReader::boolean)
    }),
];
const CACHE_AWARENESS_FIELDS: &[Field<CacheAwarenessConfig>] = &[
    ("anthropic_ttl_seconds", |r, e, out| {
        r.set(e, &mut out.anthropic_ttl_seconds, FileReader::anthropic_ttl)
    }),
    ("warn_on_ttl_expiry", |r, e, out| {
        r.set(e, &mut out.warn_on_ttl_expiry, FileReader::boolean)
    }),
];
/// A key of the older system, accepted and ignored with a warning.
const IGNORED_CACHE_KEY: &str = "emit_anthropic_cache_control";
const PRIVACY_FIELDS: &[Field<PrivacyConfig>] = &[
    ("store_prompts", |r, e, out| {
        r.set(e, &mut out.store_prompts, FileReader::boolean)
    }),
    ("redact_secrets", |r, e, out| {
        r.set(e, &mut out.redact_secrets, FileReader::boolean)
    }),
];

/// The key names of a section, in order.
fn field_names<S>(fields: &[Field<S>]) -> Vec<&'static str> {
    fields.iter().map(|(name, _)| *name).collect()
}

/// A model setting written in config.toml.
fn model_from_file(value: String) -> Sourced<String> {
    Sourced {
        value,
        source: ModelSource::Config,
    }
}

/// One `key = value` of a section, with the key's dotted name (messages and sources).
struct Entry<'t, 'i> {
    dotted: String,
    key: &'t Key<'i>,
    value: &'t Value<'i>,
}

impl Entry<'_, '_> {
    /// The key as written.
    fn name(&self) -> &str {
        self.key.get_ref().as_ref()
    }
}

type Key<'i> = Spanned<DeString<'i>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Byte offset → 1-based line number.
struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { line_starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }
}

/// Walks the parsed document, section by section, so every unknown key, wrong type and
/// out-of-range value is reported with its own line. Problems are collected rather than
/// returned at the first one, so a person fixes a file in one pass.
struct FileReader<'a> {
    path: &'a Path,
    lines: LineIndex,
    home: Option<PathBuf>,
    problems: Vec<(usize, ConfigError)>,
    warnings: Vec<String>,
    values: BTreeMap<String, ValueSource>,
}

impl<'a> FileReader<'a> {
    fn new(path: &'a Path, text: &str, home: Option<PathBuf>) -> FileReader<'a> {
        FileReader {
            path,
            lines: LineIndex::new(text),
            home,
            problems: Vec::new(),
            warnings: Vec::new(),
            values: BTreeMap::new(),
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        self.lines.line(span.start)
    }

    fn problem(&mut self, span: Range<usize>, key: &str, problem: impl Into<String>) {
        let line = self.line(span);
        self.problems.push((
            line,
            ConfigError::Invalid {
                origin: Origin::File {
                    path: self.path.to_path_buf(),
                    line,
                },
                key: key.to_string(),
                problem: problem.into(),
            },
        ));
    }

    /// Records that the file set `dotted` on the key's line.
    fn record(&mut self, dotted: &str, key: &Key<'_>) {
        let line = self.line(key.span());
        self.values
            .insert(dotted.to_string(), ValueSource::File { line });
    }

    /// Stores a parsed value and records its source; a value that failed to parse was
    /// already reported and leaves the default in place.
    fn store<T>(&mut self, dotted: &str, key: &Key<'_>, parsed: Option<T>, slot: &mut T) {
        if let Some(value) = parsed {
            *slot = value;
            self.record(dotted, key);
        }
    }

    fn unknown_key(&mut self, dotted: &str, key: &Key<'_>, valid: &[&str]) {
        let name = key.get_ref().as_ref();
        let hint = match suggest::closest(name, valid) {
            Some(candidate) => format!("did you mean \"{candidate}\"?"),
            None => format!("expected one of: {}", valid.join(", ")),
        };
        self.problem(key.span(), dotted, format!("unknown key ({hint})"));
    }

    fn wrong_type(&mut self, dotted: &str, value: &Value<'_>, expected: &str) {
        let found = value.get_ref();
        let mut problem = format!("expected {expected}, found {}", type_name(found));
        if let DeValue::String(text) = found {
            let unquoted_fits = match expected {
                "an integer" => text.trim().parse::<i128>().is_ok(),
                "a boolean" => matches!(text.trim(), "true" | "false"),
                _ => false,
            };
            if unquoted_fits {
                problem.push_str(&format!(" (write {} without quotes)", text.trim()));
            }
        }
        self.problem(value.span(), dotted, problem);
    }

    fn table<'v, 'i>(&mut self, dotted: &str, value: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.wrong_type(dotted, value, "a table");
                None
            }
        }
    }

    fn boolean(&mut self, dotted: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.wrong_type(dotted, value, "a boolean");
                None
            }
        }
    }

    fn integer(&mut self, dotted: &str, value: &Value<'_>) -> Option<i128> {
        match value.get_ref() {
            DeValue::Integer(integer) => {
                match i128::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.problem(
                            value.span(),
                            dotted,
                            format!("integer {integer} is too large"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(dotted, value, "an integer");
                None
            }
        }
    }

    fn unsigned<T: TryFrom<u64>>(
        &mut self,
        dotted: &str,
        value: &Value<'_>,
        bounds: Bounds,
    ) -> Option<T> {
        let n = self.integer(dotted, value)?;
        let checked = bounds.check(n).and_then(|n| {
            T::try_from(n).map_err(|_| format!("must be at most {} (got {n})", bounds.max))
        });
        match checked {
            Ok(n) => Some(n),
            Err(problem) => {
                self.problem(value.span(), dotted, problem);
                None
            }
        }
    }

    fn string(&mut self, dotted: &str, value: &Value<'_>) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) if text.contains('\0') => {
                self.problem(value.span(), dotted, "must not contain a NUL character");
                None
            }
            DeValue::String(text) => Some(text.to_string()),
            _ => {
                self.wrong_type(dotted, value, "a string");
                None
            }
        }
    }

    fn non_empty_string(&mut self, dotted: &str, value: &Value<'_>) -> Option<String> {
        let text = self.string(dotted, value)?;
        if text.trim().is_empty() {
            self.problem(value.span(), dotted, "must not be empty");
            return None;
        }
        Some(text)
    }

    fn enumerated<E: ConfigEnum>(&mut self, dotted: &str, value: &Value<'_>) -> Option<E> {
        let text = self.string(dotted, value)?;
        match E::parse_config(&text) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                self.problem(value.span(), dotted, problem);
                None
            }
        }
    }

    /// An absolute path, `~/` expanded.
    fn path(&mut self, dotted: &str, value: &Value<'_>) -> Option<PathBuf> {
        let raw = self.non_empty_string(dotted, value)?;
        let path = expand_tilde(&raw, self.home.as_deref());
        if path.is_absolute() {
            Some(path)
        } else {
            self.problem(
                value.span(),
                dotted,
                format!("must be an absolute path or start with \"~/\" (got {raw:?})"),
            );
            None
        }
    }

    /// A command name looked up on `PATH`, or an absolute path (`~/` expanded).
    fn command(&mut self, dotted: &str, value: &Value<'_>) -> Option<String> {
        let raw = self.non_empty_string(dotted, value)?;
        if !raw.contains('/') {
            return Some(raw);
        }
        let path = expand_tilde(&raw, self.home.as_deref());
        if path.is_absolute() {
            Some(path.to_string_lossy().into_owned())
        } else {
            self.problem(
                value.span(),
                dotted,
                format!(
                    "must be a command name looked up on PATH or an absolute path (got {raw:?})"
                ),
            );
            None
        }
    }

    fn string_list(
        &mut self,
        dotted: &str,
        value: &Value<'_>,
        non_empty: bool,
    ) -> Option<Vec<String>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(dotted, value, "an array of strings");
            return None;
        };
        let mut list = Vec::with_capacity(items.len());
        let mut all_valid = true;
        for (index, item) in items.iter().enumerate() {
            let item_key = format!("{dotted}[{index}]");
            let parsed = if non_empty {
                self.non_empty_string(&item_key, item)
            } else {
                self.string(&item_key, item)
            };
            match parsed {
                Some(text) => list.push(text),
                None => all_valid = false,
            }
        }
        all_valid.then_some(list)
    }

    /// An `env` table: variable name → string value. Names must be usable in a process
    /// environment.
    fn env_table(&mut self, dotted: &str, value: &Value<'_>) -> Option<BTreeMap<String, String>> {
        let table = self.table(dotted, value)?;
        let mut vars = BTreeMap::new();
        let mut all_valid = true;
        for (name_key, var_value) in in_file_order(table) {
            let name = name_key.get_ref().as_ref();
            let var_dotted = format!("{dotted}.{name}");
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                self.problem(
                    name_key.span(),
                    &var_dotted,
                    "invalid environment variable name (it must be non-empty and contain \
                     neither '=' nor a NUL character)",
                );
                all_valid = false;
                continue;
            }
            match self.string(&var_dotted, var_value) {
                Some(text) => {
                    vars.insert(name.to_string(), text);
                }
                None => all_valid = false,
            }
        }
        all_valid.then_some(vars)
    }

    /// A provider key of `[providers.<cli>]` or `[models.<cli>]`.
    fn provider_key(&mut self, dotted: &str, section: &str, key: &Key<'_>) -> Option<Provider> {
        let name = key.get_ref().as_ref();
        if let Some(provider) = Provider::ALL.into_iter().find(|p| p.key() == name) {
            return Some(provider);
        }
        if name == "vibe" {
            self.problem(
                key.span(),
                dotted,
                format!("unknown key (the vibe CLI is configured as [{section}.mistral])"),
            );
        } else {
            let keys = Provider::ALL.map(Provider::key);
            self.unknown_key(dotted, key, &keys);
        }
        None
    }

    fn read_document(&mut self, document: &DeTable<'_>, config: &mut Config) {
        for (key, value) in in_file_order(document) {
            let name = key.get_ref().as_ref();
            if !SECTIONS.contains(&name) {
                self.unknown_key(name, key, SECTIONS);
                continue;
            }
            let Some(table) = self.table(name, value) else {
                continue;
            };
            match name {
                "persistence" => {
                    self.read_section(name, table, PERSISTENCE_FIELDS, &mut config.persistence)
                }
                "jobs" => self.read_section(name, table, JOBS_FIELDS, &mut config.jobs),
                "limits" => self.read_section(name, table, LIMITS_FIELDS, &mut config.limits),
                "providers" => self.read_providers(table, &mut config.providers),
                "models" => self.read_models(table, &mut config.models),
                "mcp_servers" => self.read_mcp_servers(table, &mut config.mcp_servers),
                "admin" => self.read_section(name, table, ADMIN_FIELDS, &mut config.admin),
                "approvals" => {
                    self.read_section(name, table, APPROVALS_FIELDS, &mut config.approvals)
                }
                "cache_awareness" => self.read_cache_awareness(table, &mut config.cache_awareness),
                "privacy" => self.read_section(name, table, PRIVACY_FIELDS, &mut config.privacy),
                _ => unreachable!("SECTIONS lists exactly the sections matched here"),
            }
        }
    }

    /// Reads a section's keys in file order: a key of `fields` with its reader, any other
    /// with `other` (given the section's key names), which reports it unless the section has
    /// a rule of its own for it.
    fn read_fields<S>(
        &mut self,
        prefix: &str,
        table: &DeTable<'_>,
        fields: &[Field<S>],
        out: &mut S,
        other: impl Fn(&mut Self, &Entry<'_, '_>, &[&str]),
    ) {
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let entry = Entry {
                dotted: format!("{prefix}.{name}"),
                key,
                value,
            };
            match fields.iter().find(|(field, _)| *field == name) {
                Some((_, read)) => read(self, &entry, out),
                None => other(self, &entry, &field_names(fields)),
            }
        }
    }

    /// [`read_fields`](Self::read_fields) where every other key is unknown.
    fn read_section<S>(
        &mut self,
        prefix: &str,
        table: &DeTable<'_>,
        fields: &[Field<S>],
        out: &mut S,
    ) {
        self.read_fields(prefix, table, fields, out, Self::unknown_entry);
    }

    fn unknown_entry(&mut self, entry: &Entry<'_, '_>, valid: &[&str]) {
        self.unknown_key(&entry.dotted, entry.key, valid);
    }

    /// Parses an entry's value with `parse` and stores it (see [`store`](Self::store)).
    fn set<T>(
        &mut self,
        entry: &Entry<'_, '_>,
        slot: &mut T,
        parse: impl FnOnce(&mut Self, &str, &Value<'_>) -> Option<T>,
    ) {
        let parsed = parse(self, &entry.dotted, entry.value);
        self.store(&entry.dotted, entry.key, parsed, slot);
    }

    /// [`set`](Self::set) for an unsigned integer within `bounds`.
    fn set_unsigned<T: TryFrom<u64>>(
        &mut self,
        entry: &Entry<'_, '_>,
        bounds: Bounds,
        slot: &mut T,
    ) {
        self.set(entry, slot, |reader, dotted, value| {
            reader.unsigned(dotted, value, bounds)
        });
    }

    fn read_providers(
        &mut self,
        table: &DeTable<'_>,
        out: &mut BTreeMap<Provider, ProviderConfig>,
    ) {
        for (key, value) in in_file_order(table) {
            let dotted = format!("providers.{}", key.get_ref());
            let Some(provider) = self.provider_key(&dotted, "providers", key) else {
                continue;
            };
            let Some(provider_table) = self.table(&dotted, value) else {
                continue;
            };
            let settings = out
                .get_mut(&provider)
                .expect("every provider has settings: Config is built from Provider::ALL");
            let mut fields = PROVIDER_FIELDS.to_vec();
            if provider == Provider::Claude {
                fields.push(CLAUDE_ONLY_FIELD);
            }
            self.read_fields(&dotted, provider_table, &fields, settings, |reader, entry, valid| {
                if entry.name() == CLAUDE_ONLY_KEY {
                    reader.problem(
                        entry.key.span(),
                        &entry.dotted,
                        "unknown key (only [providers.claude] has it: no other CLI needs IS_SANDBOX)",
                    );
                } else {
                    reader.unknown_entry(entry, valid);
                }
            });
        }
    }

    fn read_models(&mut self, table: &DeTable<'_>, out: &mut BTreeMap<Provider, ModelsConfig>) {
        for (key, value) in in_file_order(table) {
            let dotted = format!("models.{}", key.get_ref());
            let Some(provider) = self.provider_key(&dotted, "models", key) else {
                continue;
            };
            let Some(models_table) = self.table(&dotted, value) else {
                continue;
            };
            let models = out
                .get_mut(&provider)
                .expect("every provider has model settings: Config is built from Provider::ALL");
            self.read_section(&dotted, models_table, MODELS_FIELDS, models);
        }
    }

    /// `[models.<cli>] aliases`: alias name → model id, each alias recorded on its own line.
    fn read_aliases(&mut self, entry: &Entry<'_, '_>, out: &mut BTreeMap<String, Sourced<String>>) {
        let Some(aliases) = self.table(&entry.dotted, entry.value) else {
            return;
        };
        for (alias_key, model) in in_file_order(aliases) {
            let alias = alias_key.get_ref().as_ref();
            let alias_dotted = format!("{}.{alias}", entry.dotted);
            if alias.trim().is_empty() {
                self.problem(
                    alias_key.span(),
                    &alias_dotted,
                    "alias name must not be empty",
                );
                continue;
            }
            if let Some(model) = self.non_empty_string(&alias_dotted, model) {
                out.insert(alias.to_string(), model_from_file(model));
                self.record(&alias_dotted, alias_key);
            }
        }
    }

    fn read_mcp_servers(
        &mut self,
        table: &DeTable<'_>,
        out: &mut BTreeMap<String, McpServerConfig>,
    ) {
        for (key, value) in in_file_order(table) {
            let name = key.get_ref().as_ref();
            let dotted = format!("mcp_servers.{name}");
            if !is_server_name(name) {
                self.problem(
                    key.span(),
                    &dotted,
                    "invalid server name (use only letters, digits, '_' and '-')",
                );
                continue;
            }
            let Some(server_table) = self.table(&dotted, value) else {
                continue;
            };
            if let Some(server) = self.read_mcp_server(&dotted, key, server_table) {
                out.insert(name.to_string(), server);
            }
        }
    }

    fn read_mcp_server(
        &mut self,
        prefix: &str,
        name_key: &Key<'_>,
        table: &DeTable<'_>,
    ) -> Option<McpServerConfig> {
        let mut server = McpServerConfig {
            command: String::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            approval_score: 1,
        };
        let problems_before = self.problems.len();
        self.read_section(prefix, table, MCP_SERVER_FIELDS, &mut server);
        if !table.contains_key("command") {
            self.problem(
                name_key.span(),
                &format!("{prefix}.command"),
                "missing (every MCP server needs the command that starts it)",
            );
        }
        // A present command either parsed or was reported, so no new problem means the
        // server is complete.
        (self.problems.len() == problems_before).then_some(server)
    }

    fn read_cache_awareness(&mut self, table: &DeTable<'_>, out: &mut CacheAwarenessConfig) {
        let prefix = "cache_awareness";
        self.read_fields(
            prefix,
            table,
            CACHE_AWARENESS_FIELDS,
            out,
            |reader, entry, valid| {
                if entry.name() == IGNORED_CACHE_KEY {
                    let line = reader.line(entry.key.span());
                    reader.warnings.push(format!(
                        "{}:{line}: {}: ignored (a key of the older system; the gateway \
                     does not add Anthropic cache_control blocks)",
                        reader.path.display(),
                        entry.dotted
                    ));
                } else {
                    reader.unknown_entry(entry, valid);
                }
            },
        );
    }

    /// `[cache_awareness] anthropic_ttl_seconds`: one of Anthropic's two cache lifetimes.
    fn anthropic_ttl(&mut self, dotted: &str, value: &Value<'_>) -> Option<u32> {
        let n = self.integer(dotted, value)?;
        let accepted = u64::try_from(n)
            .ok()
            .filter(|n| ANTHROPIC_TTL_SECONDS.contains(n))
            .and_then(|n| u32::try_from(n).ok());
        if accepted.is_none() {
            self.problem(
                value.span(),
                dotted,
                format!("must be 300 or 3600 (got {n})"),
            );
        }
        accepted
    }
}

/// A table's entries in the order they appear in the file (the parsed map is sorted by
/// key), so problems are reported top to bottom.
fn in_file_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `^[A-Za-z0-9_-]+$`: the name is used in claude's `--mcp-config` file and in messages.
fn is_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// ---------------------------------------------------------------------------------------
// The environment overlay
// ---------------------------------------------------------------------------------------

/// Applies the environment overrides after the file. An empty (or blank) variable counts as
/// unset, the way shells and client configs usually clear a variable.
struct EnvOverlay<'a> {
    env: &'a Env,
    home: Option<&'a Path>,
    config_path: &'a Path,
    config: &'a mut Config,
    values: &'a mut BTreeMap<String, ValueSource>,
    overrides: Vec<EnvOverride>,
    warnings: &'a mut Vec<String>,
    problems: &'a mut Vec<ConfigError>,
}

impl<'a> EnvOverlay<'a> {
    fn apply(&mut self) {
        self.apply_store_location();

        if let Some(days) = self.unsigned(
            JOB_RETENTION_DAYS_VAR,
            "persistence.retentionDays",
            RETENTION_DAYS,
        ) {
            self.config.persistence.retention_days = days;
            self.applied(JOB_RETENTION_DAYS_VAR, "persistence.retentionDays", true);
        }
        if let Some(window) = self.unsigned(
            DEDUP_WINDOW_MS_VAR,
            "persistence.dedupWindowMs",
            DEDUP_WINDOW_MS,
        ) {
            self.config.persistence.dedup_window_ms = window;
            self.applied(DEDUP_WINDOW_MS_VAR, "persistence.dedupWindowMs", true);
        }
        if let Some(raw) = self.get(ACKNOWLEDGE_EPHEMERAL_VAR) {
            // The older system's rule: these spellings are true, anything else is false.
            let acknowledged = ["1", "true", "yes"]
                .iter()
                .any(|yes| raw.eq_ignore_ascii_case(yes));
            self.config.persistence.acknowledge_ephemeral = acknowledged;
            self.applied(
                ACKNOWLEDGE_EPHEMERAL_VAR,
                "persistence.acknowledgeEphemeral",
                true,
            );
        }

        if let Some(deadline) = self.unsigned(
            SYNC_DEADLINE_MS_VAR,
            "jobs.sync_deadline_ms",
            SYNC_DEADLINE_MS,
        ) {
            self.config.jobs.sync_deadline_ms = deadline;
            self.applied(SYNC_DEADLINE_MS_VAR, "jobs.sync_deadline_ms", false);
        }
        if let Some(raw) = self.get(APPROVAL_POLICY_VAR) {
            match ApprovalPolicy::parse_config(&raw.to_ascii_lowercase()) {
                Ok(policy) => {
                    self.config.approvals.policy = policy;
                    self.applied(APPROVAL_POLICY_VAR, "approvals.policy", false);
                }
                Err(problem) => self.problem(APPROVAL_POLICY_VAR, "approvals.policy", problem),
            }
        }
        if let Some(raw) = self.get(APPROVAL_ALLOW_BYPASS_VAR) {
            // Unlike the deprecated flag above, a value that is neither yes nor no is an
            // error: silently reading a typo as "false" would hide a misconfiguration.
            match parse_switch(raw) {
                Some(allow) => {
                    self.config.approvals.allow_bypass = allow;
                    self.applied(APPROVAL_ALLOW_BYPASS_VAR, "approvals.allow_bypass", false);
                }
                None => self.problem(
                    APPROVAL_ALLOW_BYPASS_VAR,
                    "approvals.allow_bypass",
                    format!("expected true or false (or 1/0, yes/no, on/off), found {raw:?}"),
                ),
            }
        }

        for provider in Provider::ALL {
            self.apply_models(provider);
        }
    }

    /// `LLM_GATEWAY_LOGS_DB` / `LLM_GATEWAY_JOBS_DB`: `none`, or a SQLite path.
    fn apply_store_location(&mut self) {
        let logs_db = self.get(LOGS_DB_VAR);
        let jobs_db = self.get(JOBS_DB_VAR);
        let (var, raw) = match (logs_db, jobs_db) {
            (Some(raw), Some(_)) => {
                self.warnings.push(format!(
                    "{JOBS_DB_VAR} is ignored because {LOGS_DB_VAR} is also set (both are \
                     deprecated: set backend and path in [persistence] of config.toml)"
                ));
                (LOGS_DB_VAR, raw)
            }
            (Some(raw), None) => (LOGS_DB_VAR, raw),
            (None, Some(raw)) => (JOBS_DB_VAR, raw),
            (None, None) => return,
        };

        // A file that states its backend is the deliberate, current way to choose the store;
        // this deprecated variable does not override it.
        if let Some(ValueSource::File { line }) = self.values.get("persistence.backend") {
            self.warnings.push(format!(
                "{var} is deprecated and was not applied: {}:{line} sets persistence.backend \
                 explicitly, and the file wins; remove the variable",
                self.config_path.display()
            ));
            return;
        }

        if raw.eq_ignore_ascii_case("none") {
            self.config.persistence.backend = Backend::None;
            self.applied(var, "persistence.backend", true);
            return;
        }
        let path = expand_tilde(raw, self.home);
        if !path.is_absolute() {
            self.problem(
                var,
                "persistence.path",
                format!("must be \"none\", an absolute path, or start with \"~/\" (got {raw:?})"),
            );
            return;
        }
        self.config.persistence.backend = Backend::Sqlite;
        self.config.persistence.path = path;
        self.applied(var, "persistence.backend", true);
        self.applied(var, "persistence.path", true);
    }

    fn apply_models(&mut self, provider: Provider) {
        let default_var = default_model_var(provider);
        if let Some(model) = self.get(&default_var) {
            let model = model.to_string();
            let key = format!("models.{provider}.default");
            self.models(provider).default = Some(Sourced {
                value: model,
                source: ModelSource::Env,
            });
            self.applied(&default_var, &key, false);
        }

        let aliases_var = model_aliases_var(provider);
        let Some(raw) = self.get(&aliases_var) else {
            return;
        };
        let key = format!("models.{provider}.aliases");
        match parse_alias_list(raw) {
            Ok(aliases) => {
                for (alias, model) in aliases {
                    self.values.insert(
                        format!("{key}.{alias}"),
                        ValueSource::Env {
                            var: aliases_var.clone(),
                        },
                    );
                    self.models(provider).aliases.insert(
                        alias,
                        Sourced {
                            value: model,
                            source: ModelSource::Env,
                        },
                    );
                }
                self.overrides.push(EnvOverride {
                    var: aliases_var,
                    key,
                    deprecated: false,
                });
            }
            Err(problem) => self.problem(&aliases_var, &key, problem),
        }
    }

    fn models(&mut self, provider: Provider) -> &mut ModelsConfig {
        self.config
            .models
            .get_mut(&provider)
            .expect("every provider has model settings: Config is built from Provider::ALL")
    }

    /// The trimmed value of a set, non-blank variable.
    fn get(&self, var: &str) -> Option<&'a str> {
        self.env
            .get(var)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    fn unsigned<T: TryFrom<u64>>(&mut self, var: &str, key: &str, bounds: Bounds) -> Option<T> {
        let raw = self.get(var)?;
        let checked = raw
            .parse::<i128>()
            .map_err(|_| format!("expected an integer, found {raw:?}"))
            .and_then(|n| bounds.check(n))
            .and_then(|n| {
                T::try_from(n).map_err(|_| format!("must be at most {} (got {n})", bounds.max))
            });
        match checked {
            Ok(n) => Some(n),
            Err(problem) => {
                self.problem(var, key, problem);
                None
            }
        }
    }

    fn applied(&mut self, var: &str, key: &str, deprecated: bool) {
        self.values.insert(
            key.to_string(),
            ValueSource::Env {
                var: var.to_string(),
            },
        );
        let first_for_var = !self.overrides.iter().any(|o| o.var == var);
        if deprecated && first_for_var {
            self.warnings.push(deprecation_warning(var, key));
        }
        self.overrides.push(EnvOverride {
            var: var.to_string(),
            key: key.to_string(),
            deprecated,
        });
    }

    fn problem(&mut self, var: &str, key: &str, problem: impl Into<String>) {
        self.problems.push(ConfigError::Invalid {
            origin: Origin::Env {
                var: var.to_string(),
            },
            key: key.to_string(),
            problem: problem.into(),
        });
    }
}

fn deprecation_warning(var: &str, key: &str) -> String {
    let replacement = match key {
        "persistence.backend" | "persistence.path" => "backend and path".to_string(),
        other => other.rsplit('.').next().unwrap_or(other).to_string(),
    };
    let section = key.split('.').next().unwrap_or(key);
    format!("{var} is deprecated: set {replacement} in [{section}] of config.toml instead")
}

/// `1|true|yes|on` → true, `0|false|no|off` → false (case-insensitive), else None.
fn parse_switch(raw: &str) -> Option<bool> {
    let lower = raw.to_ascii_lowercase();
    match lower.as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `name=model,name=model` (spaces around items allowed, empty items skipped).
fn parse_alias_list(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut aliases = Vec::new();
    for item in raw
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        match item.split_once('=') {
            Some((alias, model)) if !alias.trim().is_empty() && !model.trim().is_empty() => {
                aliases.push((alias.trim().to_string(), model.trim().to_string()));
            }
            _ => {
                return Err(format!(
                    "entry {item:?} is not name=model \
                     (expected a list like \"fast=haiku,big=opus\")"
                ));
            }
        }
    }
    Ok(aliases)
}

// ---------------------------------------------------------------------------------------
// `config --show`
// ---------------------------------------------------------------------------------------

/// One line of `config --show`.
struct ShowLine {
    /// Lines with different groups are separated by a blank line.
    group: String,
    key: String,
    value: String,
    /// The key in [`Sources::values`] that says where the value came from.
    source_key: String,
}

impl LoadedConfig {
    /// The text of `llm-cli-gateway config --show`: every resolved key as
    /// `section.key = value   # source`, grouped by section, then the warnings. Values of
    /// `env` tables are hidden (they may hold tokens); their names are shown.
    pub fn render_show(&self) -> String {
        let sources = &self.sources;
        let mut out = String::new();
        out.push_str(
            "# llm-cli-gateway configuration as resolved: defaults, then the file, \
             then the environment\n",
        );
        match &sources.config_file {
            Some(file) => out.push_str(&format!("# config file: {}\n", file.display())),
            None => out.push_str(&format!(
                "# config file: {} (not present; built-in defaults)\n",
                sources.config_path.display()
            )),
        }
        out.push_str(&format!(
            "# data dir: {}   # {}\n",
            self.config.data_dir.display(),
            sources.source_of("data_dir")
        ));

        let lines = show_lines(&self.config);
        let width = lines
            .iter()
            .map(|line| line.key.len() + 3 + line.value.chars().count())
            .max()
            .unwrap_or(0)
            .min(72);
        let mut group = None;
        for line in &lines {
            if group != Some(&line.group) {
                out.push('\n');
                group = Some(&line.group);
            }
            let assignment = format!("{} = {}", line.key, line.value);
            out.push_str(&format!(
                "{assignment:<width$}   # {}\n",
                sources.source_of(&line.source_key)
            ));
        }

        out.push('\n');
        if self.warnings.is_empty() {
            out.push_str("# warnings: none\n");
        } else {
            out.push_str("# warnings:\n");
            for warning in &self.warnings {
                out.push_str(&format!("#   {warning}\n"));
            }
        }
        out
    }
}

/// Collects [`ShowLine`]s; most values are their own source key.
#[derive(Default)]
struct ShowLines(Vec<ShowLine>);

impl ShowLines {
    fn push(&mut self, group: &str, key: &str, value: String) {
        self.push_sourced(group, key, value, key);
    }

    fn push_sourced(&mut self, group: &str, key: &str, value: String, source_key: &str) {
        self.0.push(ShowLine {
            group: group.to_string(),
            key: key.to_string(),
            value,
            source_key: source_key.to_string(),
        });
    }

    /// An `env` table: the names, never the values (they may be tokens).
    fn push_env(&mut self, group: &str, key: &str, env: &BTreeMap<String, String>) {
        if env.is_empty() {
            self.push(group, key, "{}".to_string());
        }
        for name in env.keys() {
            self.push_sourced(group, &format!("{key}.{name}"), quoted("…"), key);
        }
    }
}

/// Every resolved setting in display order.
fn show_lines(config: &Config) -> Vec<ShowLine> {
    let mut lines = ShowLines::default();

    let group = "persistence";
    let p = &config.persistence;
    lines.push(group, "persistence.backend", quoted(p.backend.as_str()));
    lines.push(group, "persistence.path", quoted(&p.path.to_string_lossy()));
    lines.push(
        group,
        "persistence.retentionDays",
        p.retention_days.to_string(),
    );
    lines.push(
        group,
        "persistence.requestRetentionDays",
        p.request_retention_days.to_string(),
    );
    lines.push(
        group,
        "persistence.sessionTtlDays",
        p.session_ttl_days.to_string(),
    );
    lines.push(
        group,
        "persistence.dedupWindowMs",
        p.dedup_window_ms.to_string(),
    );
    lines.push(
        group,
        "persistence.acknowledgeEphemeral",
        p.acknowledge_ephemeral.to_string(),
    );

    let group = "jobs";
    let j = &config.jobs;
    lines.push(group, "jobs.runner", quoted(j.runner.as_str()));
    lines.push(
        group,
        "jobs.sync_deadline_ms",
        j.sync_deadline_ms.to_string(),
    );
    lines.push(group, "jobs.cancel_on_exit", j.cancel_on_exit.to_string());
    lines.push(group, "jobs.kill_grace_ms", j.kill_grace_ms.to_string());

    let group = "limits";
    let l = &config.limits;
    lines.push(
        group,
        "limits.max_running_jobs",
        l.max_running_jobs.to_string(),
    );
    lines.push(
        group,
        "limits.max_running_jobs_per_provider",
        l.max_running_jobs_per_provider.to_string(),
    );
    lines.push(
        group,
        "limits.max_queued_jobs",
        l.max_queued_jobs.to_string(),
    );
    lines.push(
        group,
        "limits.queue_timeout_ms",
        l.queue_timeout_ms.to_string(),
    );
    lines.push(
        group,
        "limits.max_job_output_bytes",
        l.max_job_output_bytes.to_string(),
    );
    lines.push(
        group,
        "limits.max_prompt_chars",
        l.max_prompt_chars.to_string(),
    );

    for provider in Provider::ALL {
        let settings = config.provider(provider);
        let group = format!("providers.{provider}");
        let group = group.as_str();
        lines.push(
            group,
            &format!("{group}.enabled"),
            settings.enabled.to_string(),
        );
        lines.push(group, &format!("{group}.binary"), quoted(&settings.binary));
        lines.push(
            group,
            &format!("{group}.idle_timeout_ms"),
            settings.idle_timeout_ms.to_string(),
        );
        lines.push(
            group,
            &format!("{group}.timeout_ms"),
            settings.timeout_ms.to_string(),
        );
        lines.push_env(group, &format!("{group}.env"), &settings.env);
        if provider == Provider::Claude {
            lines.push(
                group,
                &format!("{group}.{CLAUDE_ONLY_KEY}"),
                settings.root_bypass_sets_is_sandbox.to_string(),
            );
        }
    }

    if config.models.values().all(ModelsConfig::is_empty) {
        lines.push("models", "models", "{}".to_string());
    }
    for provider in Provider::ALL {
        let models = config.models_of(provider);
        let group = format!("models.{provider}");
        let group = group.as_str();
        if let Some(default) = &models.default {
            lines.push(group, &format!("{group}.default"), quoted(&default.value));
        }
        for (alias, model) in &models.aliases {
            lines.push(
                group,
                &format!("{group}.aliases.{alias}"),
                quoted(&model.value),
            );
        }
        if !models.extra.is_empty() {
            lines.push(
                group,
                &format!("{group}.extra"),
                string_array(&models.extra),
            );
        }
    }

    if config.mcp_servers.is_empty() {
        lines.push("mcp_servers", "mcp_servers", "{}".to_string());
    }
    for (name, server) in &config.mcp_servers {
        let group = format!("mcp_servers.{name}");
        let group = group.as_str();
        lines.push(group, &format!("{group}.command"), quoted(&server.command));
        lines.push(group, &format!("{group}.args"), string_array(&server.args));
        lines.push_env(group, &format!("{group}.env"), &server.env);
        lines.push(
            group,
            &format!("{group}.approval_score"),
            server.approval_score.to_string(),
        );
    }

    lines.push(
        "admin",
        "admin.allow_cli_upgrade",
        config.admin.allow_cli_upgrade.to_string(),
    );
    lines.push(
        "approvals",
        "approvals.policy",
        quoted(config.approvals.policy.as_str()),
    );
    lines.push(
        "approvals",
        "approvals.allow_bypass",
        config.approvals.allow_bypass.to_string(),
    );
    let c = &config.cache_awareness;
    lines.push(
        "cache_awareness",
        "cache_awareness.anthropic_ttl_seconds",
        c.anthropic_ttl_seconds.to_string(),
    );
    lines.push(
        "cache_awareness",
        "cache_awareness.warn_on_ttl_expiry",
        c.warn_on_ttl_expiry.to_string(),
    );
    lines.push(
        "privacy",
        "privacy.store_prompts",
        config.privacy.store_prompts.to_string(),
    );
    lines.push(
        "privacy",
        "privacy.redact_secrets",
        config.privacy.redact_secrets.to_string(),
    );
    lines.0
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn string_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| quoted(item)).collect();
    format!("[{}]", items.join(", "))
}

// ---------------------------------------------------------------------------------------
// Small text helpers
// ---------------------------------------------------------------------------------------

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/home/u/.llm-cli-gateway/config.toml";

    /// An environment with `HOME=/home/u` plus the given pairs.
    fn env_with(pairs: &[(&str, &str)]) -> Env {
        let mut all = vec![("HOME", "/home/u")];
        all.extend_from_slice(pairs);
        Env::from_pairs(all)
    }

    fn load_text(text: &str, pairs: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
        load_from_str(text, Path::new(FILE), &env_with(pairs))
    }

    fn loaded(text: &str, pairs: &[(&str, &str)]) -> LoadedConfig {
        load_text(text, pairs).unwrap_or_else(|err| panic!("config should load, got:\n{err}"))
    }

    fn error(text: &str, pairs: &[(&str, &str)]) -> String {
        match load_text(text, pairs) {
            Ok(_) => panic!("config should be refused:\n{text}"),
            Err(err) => err.to_string(),
        }
    }

    fn file_source(line: usize) -> ValueSource {
        ValueSource::File { line }
    }

    fn env_source(var: &str) -> ValueSource {
        ValueSource::Env {
            var: var.to_string(),
        }
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::defaults(&env_with(&[]));
        assert_eq!(config.data_dir, PathBuf::from("/home/u/.llm-cli-gateway"));
        let p = &config.persistence;
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.path, PathBuf::from("/home/u/.llm-cli-gateway/logs.db"));
        assert_eq!(
            (
                p.retention_days,
                p.request_retention_days,
                p.session_ttl_days
            ),
            (30, 90, 30)
        );
        assert_eq!(p.dedup_window_ms, 3_600_000);
        assert!(!p.acknowledge_ephemeral);
        assert_eq!(
            config.jobs,
            JobsConfig {
                runner: Runner::Supervisor,
                sync_deadline_ms: 45_000,
                cancel_on_exit: false,
                kill_grace_ms: 5_000,
            }
        );
        assert_eq!(
            config.limits,
            LimitsConfig {
                max_running_jobs: 32,
                max_running_jobs_per_provider: 16,
                max_queued_jobs: 128,
                queue_timeout_ms: 120_000,
                max_job_output_bytes: 52_428_800,
                max_prompt_chars: 100_000,
            }
        );
        assert_eq!(config.providers.len(), 5);
        assert_eq!(config.models.len(), 5);
        for provider in Provider::ALL {
            let settings = config.provider(provider);
            assert!(settings.enabled);
            assert_eq!(settings.idle_timeout_ms, 600_000);
            assert_eq!(settings.timeout_ms, 14_400_000);
            assert!(settings.env.is_empty());
            assert!(config.models_of(provider).is_empty());
        }
        assert_eq!(config.provider(Provider::Mistral).binary, "vibe");
        assert_eq!(config.provider(Provider::Claude).binary, "claude");
        assert!(
            config
                .provider(Provider::Claude)
                .root_bypass_sets_is_sandbox
        );
        assert!(config.mcp_servers.is_empty());
        assert!(!config.admin.allow_cli_upgrade);
        assert_eq!(config.approvals.policy, ApprovalPolicy::Balanced);
        assert!(!config.approvals.allow_bypass);
        assert_eq!(config.cache_awareness.anthropic_ttl_seconds, 300);
        assert!(!config.cache_awareness.warn_on_ttl_expiry);
        assert!(config.privacy.store_prompts && config.privacy.redact_secrets);
    }

    #[test]
    fn an_empty_file_gives_defaults_with_default_sources() {
        let loaded = loaded("", &[]);
        assert_eq!(loaded.config, Config::defaults(&env_with(&[])));
        assert!(loaded.warnings.is_empty());
        assert!(loaded.sources.env_overrides.is_empty());
        assert_eq!(loaded.sources.config_file, Some(PathBuf::from(FILE)));
        assert_eq!(
            loaded.sources.source_of("jobs.sync_deadline_ms"),
            &ValueSource::Default
        );
        assert_eq!(
            loaded.sources.values["limits.max_prompt_chars"],
            ValueSource::Default
        );
        assert_eq!(loaded.sources.values["data_dir"], ValueSource::Default);
    }

    #[test]
    fn the_example_equals_the_defaults() {
        for pairs in [vec![], vec![("LLM_GATEWAY_HOME", "/srv/gateway")]] {
            let loaded = loaded(EXAMPLE, &pairs);
            assert_eq!(loaded.config, Config::defaults(&env_with(&pairs)));
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        }
    }

    #[test]
    fn the_example_sets_every_mandatory_key_uncommented() {
        let loaded = loaded(EXAMPLE, &[]);
        // Commented out on purpose: the store path follows the data dir by default, and the
        // optional tables have no defaults to show.
        let commented = ["persistence.path", "data_dir", "models", "mcp_servers"];
        for (key, source) in &loaded.sources.values {
            if commented.contains(&key.as_str()) {
                assert_eq!(source, &ValueSource::Default, "{key}");
            } else {
                assert!(
                    matches!(source, ValueSource::File { .. }),
                    "{key} is not in the example"
                );
            }
        }
    }

    /// Uncomments `# key = value` and `# [table]` lines of the example.
    fn uncomment_example_assignments() -> String {
        EXAMPLE
            .lines()
            .map(|line| {
                let Some(rest) = line.strip_prefix("# ") else {
                    return line.to_string();
                };
                let is_table = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
                let is_assignment = rest.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
                if is_table || is_assignment {
                    rest.to_string()
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_examples_commented_keys_are_valid_and_mean_what_they_say() {
        let text = uncomment_example_assignments();
        let loaded = loaded(&text, &[]);
        let config = &loaded.config;
        // The commented path is the default path when LLM_GATEWAY_HOME is not set.
        assert_eq!(
            config.persistence.path,
            Config::defaults(&env_with(&[])).persistence.path
        );
        let claude = config.models_of(Provider::Claude);
        assert_eq!(claude.default.as_ref().unwrap().value, "sonnet");
        assert_eq!(claude.aliases["fast"].value, "haiku");
        assert_eq!(claude.aliases["fast"].source, ModelSource::Config);
        assert_eq!(claude.extra, vec!["claude-sonnet-4-5".to_string()]);
        assert_eq!(
            config.mcp_servers["docs"],
            McpServerConfig {
                command: "docs-mcp".into(),
                args: vec!["--stdio".into()],
                env: BTreeMap::new(),
                approval_score: 1,
            }
        );
    }

    #[test]
    fn file_values_replace_defaults_and_record_their_lines() {
        let text = "\
[persistence]
retentionDays = 7
path = \"~/stores/gw.db\"

[jobs]
runner = \"in-process\"
sync_deadline_ms = 0

[providers.codex]
binary = \"~/bin/codex\"
env = { OPENAI_BASE_URL = \"http://localhost\" }

[approvals]
policy = \"strict\"
";
        let loaded = loaded(text, &[]);
        let config = &loaded.config;
        assert_eq!(config.persistence.retention_days, 7);
        assert_eq!(
            config.persistence.path,
            PathBuf::from("/home/u/stores/gw.db")
        );
        assert_eq!(config.jobs.runner, Runner::InProcess);
        assert_eq!(config.jobs.sync_deadline_ms, 0);
        assert_eq!(config.provider(Provider::Codex).binary, "/home/u/bin/codex");
        assert_eq!(
            config.provider(Provider::Codex).env["OPENAI_BASE_URL"],
            "http://localhost"
        );
        assert_eq!(config.approvals.policy, ApprovalPolicy::Strict);
        let values = &loaded.sources.values;
        assert_eq!(values["persistence.retentionDays"], file_source(2));
        assert_eq!(values["persistence.path"], file_source(3));
        assert_eq!(values["jobs.runner"], file_source(6));
        assert_eq!(values["providers.codex.binary"], file_source(10));
        assert_eq!(values["providers.codex.env"], file_source(11));
        assert_eq!(values["approvals.policy"], file_source(14));
        assert_eq!(values["jobs.kill_grace_ms"], ValueSource::Default);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line_in_every_section() {
        let cases = [
            (
                "[persistence]\nretention_days = 3\n",
                "2: persistence.retention_days: unknown key (did you mean \"retentionDays\"?)",
            ),
            (
                "[jobs]\nrunner = \"supervisor\"\nsync_deadline_msx = 1\n",
                "3: jobs.sync_deadline_msx: unknown key (did you mean \"sync_deadline_ms\"?)",
            ),
            (
                "[limits]\nmax_running_job = 3\n",
                "2: limits.max_running_job: unknown key (did you mean \"max_running_jobs\"?)",
            ),
            (
                "[providers.codex]\nidle_timeout = 5000\n",
                "2: providers.codex.idle_timeout: unknown key (did you mean \"idle_timeout_ms\"?)",
            ),
            (
                "[models.gemini]\nfallback = \"x\"\n",
                "2: models.gemini.fallback: unknown key (expected one of: default, aliases, extra)",
            ),
            (
                "[mcp_servers.docs]\ncommand = \"docs\"\ncwd = \"/tmp\"\n",
                "3: mcp_servers.docs.cwd: unknown key (expected one of: command, args, env, \
                 approval_score)",
            ),
            (
                "[admin]\nallow_upgrade = true\n",
                "2: admin.allow_upgrade: unknown key (expected one of: allow_cli_upgrade)",
            ),
            (
                "[approvals]\nallowBypass = true\n",
                "2: approvals.allowBypass: unknown key (did you mean \"allow_bypass\"?)",
            ),
            (
                "[cache_awareness]\nttl = 300\n",
                "2: cache_awareness.ttl: unknown key (expected one of: anthropic_ttl_seconds, \
                 warn_on_ttl_expiry)",
            ),
            (
                "[privacy]\nstore_prompt = false\n",
                "2: privacy.store_prompt: unknown key (did you mean \"store_prompts\"?)",
            ),
            (
                "\n[persistance]\n",
                "2: persistance: unknown key (did you mean \"persistence\"?)",
            ),
            (
                "log_level = \"debug\"\n",
                "1: log_level: unknown key (expected one of: persistence, jobs, limits, \
                 providers, models, mcp_servers, admin, approvals, cache_awareness, privacy)",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                error(text, &[]),
                format!("{FILE}:{expected}"),
                "for:\n{text}"
            );
        }
    }

    #[test]
    fn wrong_types_say_what_was_expected_and_found() {
        let text = "[limits]\nmax_running_jobs = \"32\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: limits.max_running_jobs: expected an integer, found a string \
                 (write 32 without quotes)"
            )
        );
        let text = "[jobs]\n\ncancel_on_exit = 1\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:3: jobs.cancel_on_exit: expected a boolean, found an integer")
        );
        let text = "[providers.claude]\nenv = [\"A=1\"]\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:2: providers.claude.env: expected a table, found an array")
        );
        let text = "jobs = 5\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:1: jobs: expected a table, found an integer")
        );
        let text = "[models.claude]\nextra = [\"a\", 3]\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:2: models.claude.extra[1]: expected a string, found an integer")
        );
    }

    #[test]
    fn out_of_range_values_name_the_bound() {
        let text = "# limits\n\n\n\n\n[limits]\nmax_running_jobs = 0\n";
        assert_eq!(
            error(text, &[]),
            "/home/u/.llm-cli-gateway/config.toml:7: \
             limits.max_running_jobs: must be at least 1 (got 0)"
        );
        let text = "[providers.codex]\nidle_timeout_ms = 5\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:2: providers.codex.idle_timeout_ms: must be at least 1000 (got 5)")
        );
        let text = "[providers.gemini]\ntimeout_ms = 86400001\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: providers.gemini.timeout_ms: must be at most 86400000 (got 86400001)"
            )
        );
        let text = "[persistence]\nretentionDays = -1\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:2: persistence.retentionDays: must be at least 1 (got -1)")
        );
        let text = "[cache_awareness]\nanthropic_ttl_seconds = 600\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: cache_awareness.anthropic_ttl_seconds: must be 300 or 3600 (got 600)"
            )
        );
        let text = "[jobs]\nkill_grace_ms = 99999999999999999999999999999999999999999\n";
        assert!(error(text, &[]).contains("jobs.kill_grace_ms: integer"));
    }

    #[test]
    fn zero_is_accepted_where_it_means_off_or_forever() {
        let text = "[persistence]\nrequestRetentionDays = 0\ndedupWindowMs = 0\n\
                    [jobs]\nsync_deadline_ms = 0\nkill_grace_ms = 0\n";
        let config = loaded(text, &[]).config;
        assert_eq!(config.persistence.request_retention_days, 0);
        assert_eq!(config.persistence.dedup_window_ms, 0);
        assert_eq!(config.jobs.sync_deadline_ms, 0);
        assert_eq!(config.jobs.kill_grace_ms, 0);
    }

    #[test]
    fn bad_enum_values_list_the_accepted_spellings() {
        let text = "[jobs]\nrunner = \"inprocess\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: jobs.runner: unknown value \"inprocess\" (expected \"supervisor\" or \
                 \"in-process\")"
            )
        );
        let text = "[approvals]\npolicy = \"lenient\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: approvals.policy: unknown value \"lenient\" (expected \"strict\", \
                 \"balanced\" or \"permissive\")"
            )
        );
    }

    #[test]
    fn postgres_is_refused_with_what_to_use_instead() {
        let text = "# store\n\n[persistence]\nbackend = \"postgres\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:4: persistence.backend: unknown value \"postgres\": PostgreSQL is not \
                 supported; use \"sqlite\" (the default) or \"memory\""
            )
        );
    }

    #[test]
    fn memory_requires_acknowledge_ephemeral() {
        let text = "[persistence]\nbackend = \"memory\"\n";
        let message = error(text, &[]);
        assert!(
            message.starts_with(&format!(
                "{FILE}:2: persistence.backend: \"memory\" keeps jobs"
            )),
            "{message}"
        );
        assert!(message.contains("set acknowledgeEphemeral = true in [persistence]"));
        assert!(message.contains("backend = \"sqlite\""));

        let text = "[persistence]\nbackend = \"memory\"\nacknowledgeEphemeral = true\n";
        assert_eq!(
            loaded(text, &[]).config.persistence.backend,
            Backend::Memory
        );

        let text = "[persistence]\nbackend = \"memory\"\n";
        let loaded = loaded(text, &[(ACKNOWLEDGE_EPHEMERAL_VAR, "YES")]);
        assert!(loaded.config.persistence.acknowledge_ephemeral);
    }

    #[test]
    fn provider_sections_must_name_a_provider() {
        let text = "[providers.claud]\nenabled = false\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:1: providers.claud: unknown key (did you mean \"claude\"?)")
        );
        let text = "[providers.openai]\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:1: providers.openai: unknown key (expected one of: claude, codex, \
                 gemini, grok, mistral)"
            )
        );
        let text = "\n[providers.vibe]\nbinary = \"vibe\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: providers.vibe: unknown key (the vibe CLI is configured as \
                 [providers.mistral])"
            )
        );
        let text = "[models.vibe]\ndefault = \"devstral\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:1: models.vibe: unknown key (the vibe CLI is configured as \
                 [models.mistral])"
            )
        );
    }

    #[test]
    fn root_bypass_sets_is_sandbox_belongs_to_claude_only() {
        let text = "[providers.claude]\nroot_bypass_sets_is_sandbox = false\n";
        let config = loaded(text, &[]).config;
        assert!(
            !config
                .provider(Provider::Claude)
                .root_bypass_sets_is_sandbox
        );

        let text = "[providers.codex]\nroot_bypass_sets_is_sandbox = false\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: providers.codex.root_bypass_sets_is_sandbox: unknown key (only \
                 [providers.claude] has it: no other CLI needs IS_SANDBOX)"
            )
        );
    }

    #[test]
    fn paths_and_commands_must_be_absolute_or_plain_names() {
        let text = "[persistence]\npath = \"logs.db\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: persistence.path: must be an absolute path or start with \"~/\" \
                 (got \"logs.db\")"
            )
        );
        let text = "[providers.grok]\nbinary = \"./grok\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: providers.grok.binary: must be a command name looked up on PATH or \
                 an absolute path (got \"./grok\")"
            )
        );
        let text = "[providers.grok]\nbinary = \"\"\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:2: providers.grok.binary: must not be empty")
        );
        let text = "[providers.claude]\nenv = { \"\" = \"x\" }\n";
        assert!(error(text, &[]).starts_with(&format!(
            "{FILE}:2: providers.claude.env.: invalid environment variable name"
        )));
    }

    #[test]
    fn mcp_servers_are_validated() {
        let text = "\
[mcp_servers.docs]
command = \"~/bin/docs-mcp\"
args = [\"--stdio\"]
env = { DOCS_TOKEN = \"secret\" }
approval_score = 2
";
        let config = loaded(text, &[]).config;
        assert_eq!(
            config.mcp_servers["docs"],
            McpServerConfig {
                command: "/home/u/bin/docs-mcp".into(),
                args: vec!["--stdio".into()],
                env: BTreeMap::from([("DOCS_TOKEN".to_string(), "secret".to_string())]),
                approval_score: 2,
            }
        );

        let text = "[mcp_servers.\"my docs\"]\ncommand = \"docs\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:1: mcp_servers.my docs: invalid server name (use only letters, digits, \
                 '_' and '-')"
            )
        );
        let text = "[mcp_servers.docs]\nargs = []\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:1: mcp_servers.docs.command: missing (every MCP server needs the \
                 command that starts it)"
            )
        );
        // A command that is present but invalid is reported once, not also as missing.
        let text = "[mcp_servers.docs]\ncommand = \"bin/docs\"\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: mcp_servers.docs.command: must be a command name looked up on PATH \
                 or an absolute path (got \"bin/docs\")"
            )
        );
    }

    #[test]
    fn model_settings_are_validated() {
        let text = "[models.claude]\ndefault = \" \"\naliases = { \"\" = \"opus\" }\n";
        assert_eq!(
            error(text, &[]),
            format!(
                "{FILE}:2: models.claude.default: must not be empty\n\
                 {FILE}:3: models.claude.aliases.: alias name must not be empty"
            )
        );
        let loaded = loaded("[models.claude]\ndefault = \"opus\"\n", &[]);
        assert_eq!(
            loaded.config.models_of(Provider::Claude).default,
            Some(Sourced {
                value: "opus".to_string(),
                source: ModelSource::Config,
            })
        );
        assert_eq!(
            loaded.sources.values["models.claude.default"],
            file_source(2)
        );
    }

    #[test]
    fn emit_anthropic_cache_control_is_ignored_with_a_warning() {
        let text = "[cache_awareness]\nemit_anthropic_cache_control = true\n";
        let loaded = loaded(text, &[]);
        assert_eq!(loaded.config, Config::defaults(&env_with(&[])));
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].starts_with(&format!(
            "{FILE}:2: cache_awareness.emit_anthropic_cache_control: ignored"
        )));
    }

    #[test]
    fn toml_syntax_errors_give_the_line() {
        let text = "[jobs]\nrunner = \"supervisor\"\nsync_deadline_ms = \n";
        let message = error(text, &[]);
        assert!(
            message.starts_with(&format!("{FILE}:3: invalid TOML: ")),
            "{message}"
        );
        let text = "[jobs]\nkill_grace_ms = 1\nkill_grace_ms = 2\n";
        assert_eq!(
            error(text, &[]),
            format!("{FILE}:3: invalid TOML: duplicate key")
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = "[privacy]\nstore_prompt = true\n[limits]\nmax_queued_jobs = 0\n";
        let err = load_text(text, &[(SYNC_DEADLINE_MS_VAR, "soon")]).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                format!(
                    "{FILE}:2: privacy.store_prompt: unknown key (did you mean \"store_prompts\"?)"
                ),
                format!("{FILE}:4: limits.max_queued_jobs: must be at least 1 (got 0)"),
                "environment variable SYNC_DEADLINE_MS: jobs.sync_deadline_ms: expected an \
                 integer, found \"soon\""
                    .to_string(),
            ]
        );
        assert_eq!(err.to_string(), err.messages().join("\n"));
    }

    #[test]
    fn llm_gateway_home_moves_the_data_dir_and_default_store() {
        let loaded = loaded("", &[("LLM_GATEWAY_HOME", "~/gw")]);
        assert_eq!(loaded.config.data_dir, PathBuf::from("/home/u/gw"));
        assert_eq!(
            loaded.config.persistence.path,
            PathBuf::from("/home/u/gw/logs.db")
        );
        assert_eq!(
            loaded.sources.values["data_dir"],
            env_source("LLM_GATEWAY_HOME")
        );

        let message = error("", &[("LLM_GATEWAY_HOME", "relative/dir")]);
        assert_eq!(
            message,
            "environment variable LLM_GATEWAY_HOME: data_dir: must be an absolute path or \
             start with \"~/\" (got \"relative/dir\")"
        );
    }

    #[test]
    fn load_reads_the_data_dirs_config_file_or_uses_defaults() {
        let home = tempfile::tempdir().unwrap();
        let home_str = home.path().to_str().unwrap();
        let env = Env::from_pairs([("HOME", "/home/u"), ("LLM_GATEWAY_HOME", home_str)]);

        let loaded = load(&env).unwrap();
        assert_eq!(loaded.config, Config::defaults(&env));
        assert_eq!(loaded.sources.config_path, home.path().join("config.toml"));
        assert_eq!(loaded.sources.config_file, None);

        std::fs::write(
            home.path().join("config.toml"),
            "[jobs]\nkill_grace_ms = 100\n",
        )
        .unwrap();
        let loaded = load(&env).unwrap();
        assert_eq!(loaded.config.jobs.kill_grace_ms, 100);
        assert_eq!(
            loaded.sources.config_file,
            Some(home.path().join("config.toml"))
        );
    }

    #[test]
    fn llm_gateway_config_names_the_file_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gw.toml");
        std::fs::write(&file, "[admin]\nallow_cli_upgrade = true\n").unwrap();
        let env = env_with(&[(CONFIG_VAR, file.to_str().unwrap())]);
        let loaded = load(&env).unwrap();
        assert!(loaded.config.admin.allow_cli_upgrade);
        assert_eq!(loaded.sources.config_file, Some(file.clone()));
        assert_eq!(
            loaded.sources.values["admin.allow_cli_upgrade"],
            file_source(2)
        );

        let missing = dir.path().join("missing.toml");
        let env = env_with(&[(CONFIG_VAR, missing.to_str().unwrap())]);
        let message = load(&env).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}: config file not found (LLM_GATEWAY_CONFIG names it; create the file or \
                 unset the variable)",
                missing.display()
            )
        );

        // `~/` is expanded in the variable too.
        let env = Env::from_pairs([
            ("HOME", dir.path().to_str().unwrap()),
            (CONFIG_VAR, "~/gw.toml"),
        ]);
        assert!(load(&env).unwrap().config.admin.allow_cli_upgrade);
    }

    #[test]
    fn non_deprecated_env_overrides_apply_and_are_recorded() {
        let loaded = loaded(
            "[jobs]\nsync_deadline_ms = 1000\n[approvals]\npolicy = \"strict\"\n",
            &[
                (SYNC_DEADLINE_MS_VAR, "0"),
                (APPROVAL_POLICY_VAR, "Permissive"),
                (APPROVAL_ALLOW_BYPASS_VAR, "yes"),
            ],
        );
        let config = &loaded.config;
        assert_eq!(config.jobs.sync_deadline_ms, 0);
        assert_eq!(config.approvals.policy, ApprovalPolicy::Permissive);
        assert!(config.approvals.allow_bypass);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(
            loaded.sources.env_overrides,
            vec![
                EnvOverride {
                    var: SYNC_DEADLINE_MS_VAR.into(),
                    key: "jobs.sync_deadline_ms".into(),
                    deprecated: false,
                },
                EnvOverride {
                    var: APPROVAL_POLICY_VAR.into(),
                    key: "approvals.policy".into(),
                    deprecated: false,
                },
                EnvOverride {
                    var: APPROVAL_ALLOW_BYPASS_VAR.into(),
                    key: "approvals.allow_bypass".into(),
                    deprecated: false,
                },
            ]
        );
        let values = &loaded.sources.values;
        assert_eq!(
            values["jobs.sync_deadline_ms"],
            env_source(SYNC_DEADLINE_MS_VAR)
        );
        assert_eq!(values["approvals.policy"], env_source(APPROVAL_POLICY_VAR));
        assert_eq!(
            values["approvals.allow_bypass"],
            env_source(APPROVAL_ALLOW_BYPASS_VAR)
        );
    }

    #[test]
    fn deprecated_env_overrides_apply_with_a_warning_each() {
        let loaded = loaded(
            "",
            &[
                (JOB_RETENTION_DAYS_VAR, "7"),
                (DEDUP_WINDOW_MS_VAR, "0"),
                (ACKNOWLEDGE_EPHEMERAL_VAR, "true"),
            ],
        );
        let p = &loaded.config.persistence;
        assert_eq!(p.retention_days, 7);
        assert_eq!(p.dedup_window_ms, 0);
        assert!(p.acknowledge_ephemeral);
        let overrides: Vec<_> = loaded
            .sources
            .env_overrides
            .iter()
            .map(|o| (o.var.as_str(), o.key.as_str(), o.deprecated))
            .collect();
        assert_eq!(
            overrides,
            vec![
                (JOB_RETENTION_DAYS_VAR, "persistence.retentionDays", true),
                (DEDUP_WINDOW_MS_VAR, "persistence.dedupWindowMs", true),
                (
                    ACKNOWLEDGE_EPHEMERAL_VAR,
                    "persistence.acknowledgeEphemeral",
                    true
                ),
            ]
        );
        assert_eq!(
            loaded.warnings,
            vec![
                "LLM_GATEWAY_JOB_RETENTION_DAYS is deprecated: set retentionDays in \
                 [persistence] of config.toml instead",
                "LLM_GATEWAY_DEDUP_WINDOW_MS is deprecated: set dedupWindowMs in [persistence] \
                 of config.toml instead",
                "LLM_GATEWAY_ACKNOWLEDGE_EPHEMERAL is deprecated: set acknowledgeEphemeral in \
                 [persistence] of config.toml instead",
            ]
        );
        assert_eq!(
            loaded.sources.values["persistence.retentionDays"],
            env_source(JOB_RETENTION_DAYS_VAR)
        );
    }

    #[test]
    fn acknowledge_ephemeral_reads_only_the_old_true_spellings() {
        for (raw, expected) in [
            ("1", true),
            ("TRUE", true),
            ("Yes", true),
            ("0", false),
            ("on", false),
            ("nope", false),
        ] {
            let text = "[persistence]\nacknowledgeEphemeral = true\n";
            let loaded = loaded(text, &[(ACKNOWLEDGE_EPHEMERAL_VAR, raw)]);
            assert_eq!(
                loaded.config.persistence.acknowledge_ephemeral, expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let loaded = loaded("", &[(SYNC_DEADLINE_MS_VAR, ""), (LOGS_DB_VAR, "  ")]);
        assert_eq!(loaded.config, Config::defaults(&env_with(&[])));
        assert!(loaded.sources.env_overrides.is_empty());
    }

    #[test]
    fn bad_env_values_name_the_variable_and_the_problem() {
        assert_eq!(
            error("", &[(SYNC_DEADLINE_MS_VAR, "abc")]),
            "environment variable SYNC_DEADLINE_MS: jobs.sync_deadline_ms: expected an integer, \
             found \"abc\""
        );
        assert_eq!(
            error("", &[(SYNC_DEADLINE_MS_VAR, "86400001")]),
            "environment variable SYNC_DEADLINE_MS: jobs.sync_deadline_ms: must be at most \
             86400000 (got 86400001)"
        );
        assert_eq!(
            error("", &[(JOB_RETENTION_DAYS_VAR, "0")]),
            "environment variable LLM_GATEWAY_JOB_RETENTION_DAYS: persistence.retentionDays: \
             must be at least 1 (got 0)"
        );
        assert_eq!(
            error("", &[(APPROVAL_POLICY_VAR, "yolo")]),
            "environment variable LLM_GATEWAY_APPROVAL_POLICY: approvals.policy: unknown value \
             \"yolo\" (expected \"strict\", \"balanced\" or \"permissive\")"
        );
        assert_eq!(
            error("", &[(APPROVAL_ALLOW_BYPASS_VAR, "maybe")]),
            "environment variable LLM_GATEWAY_APPROVAL_ALLOW_BYPASS: approvals.allow_bypass: \
             expected true or false (or 1/0, yes/no, on/off), found \"maybe\""
        );
    }

    #[test]
    fn logs_db_selects_a_sqlite_path_or_none() {
        let loaded = loaded("", &[(LOGS_DB_VAR, "~/old/logs.db")]);
        let p = &loaded.config.persistence;
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.path, PathBuf::from("/home/u/old/logs.db"));
        let overrides: Vec<_> = loaded
            .sources
            .env_overrides
            .iter()
            .map(|o| (o.var.as_str(), o.key.as_str(), o.deprecated))
            .collect();
        assert_eq!(
            overrides,
            vec![
                (LOGS_DB_VAR, "persistence.backend", true),
                (LOGS_DB_VAR, "persistence.path", true),
            ]
        );
        assert_eq!(
            loaded.warnings,
            vec![
                "LLM_GATEWAY_LOGS_DB is deprecated: set backend and path in [persistence] of \
                 config.toml instead"
            ]
        );
        assert_eq!(
            loaded.sources.values["persistence.path"],
            env_source(LOGS_DB_VAR)
        );

        let loaded = loaded_none();
        assert_eq!(loaded.config.persistence.backend, Backend::None);
        assert_eq!(
            loaded.sources.values["persistence.backend"],
            env_source(JOBS_DB_VAR)
        );

        assert_eq!(
            error("", &[(LOGS_DB_VAR, "logs.db")]),
            "environment variable LLM_GATEWAY_LOGS_DB: persistence.path: must be \"none\", an \
             absolute path, or start with \"~/\" (got \"logs.db\")"
        );
    }

    fn loaded_none() -> LoadedConfig {
        loaded("", &[(JOBS_DB_VAR, "NONE")])
    }

    #[test]
    fn logs_db_wins_over_jobs_db() {
        let loaded = loaded(
            "",
            &[(LOGS_DB_VAR, "/a/logs.db"), (JOBS_DB_VAR, "/b/jobs.db")],
        );
        assert_eq!(loaded.config.persistence.path, PathBuf::from("/a/logs.db"));
        assert!(
            loaded.warnings[0].starts_with(
                "LLM_GATEWAY_JOBS_DB is ignored because LLM_GATEWAY_LOGS_DB is also set"
            )
        );
        assert!(
            loaded
                .sources
                .env_overrides
                .iter()
                .all(|o| o.var == LOGS_DB_VAR)
        );
    }

    #[test]
    fn an_explicit_file_backend_wins_over_logs_db() {
        let text = "[persistence]\nbackend = \"sqlite\"\npath = \"/var/gw/logs.db\"\n";
        for raw in ["/tmp/other.db", "none"] {
            let loaded = loaded(text, &[(LOGS_DB_VAR, raw)]);
            let p = &loaded.config.persistence;
            assert_eq!(p.backend, Backend::Sqlite);
            assert_eq!(p.path, PathBuf::from("/var/gw/logs.db"));
            assert!(loaded.sources.env_overrides.is_empty());
            assert_eq!(
                loaded.warnings,
                vec![format!(
                    "LLM_GATEWAY_LOGS_DB is deprecated and was not applied: {FILE}:2 sets \
                     persistence.backend explicitly, and the file wins; remove the variable"
                )]
            );
            assert_eq!(loaded.sources.values["persistence.backend"], file_source(2));
        }

        // A file that sets only the path does not stop the (later) environment.
        let text = "[persistence]\npath = \"/var/gw/logs.db\"\n";
        let loaded = loaded(text, &[(LOGS_DB_VAR, "/tmp/other.db")]);
        assert_eq!(
            loaded.config.persistence.path,
            PathBuf::from("/tmp/other.db")
        );
    }

    #[test]
    fn model_env_vars_overlay_the_file() {
        let text = "\
[models.claude]
default = \"sonnet\"
aliases = { fast = \"haiku\", big = \"opus\" }
";
        let loaded = loaded(
            text,
            &[
                ("CLAUDE_DEFAULT_MODEL", "opus"),
                (
                    "CLAUDE_MODEL_ALIASES",
                    "fast=claude-haiku-4-5, tiny = haiku ,",
                ),
                ("MISTRAL_DEFAULT_MODEL", "devstral-2"),
                ("VIBE_DEFAULT_MODEL", "ignored"),
            ],
        );
        let claude = loaded.config.models_of(Provider::Claude);
        assert_eq!(
            claude.default,
            Some(Sourced {
                value: "opus".into(),
                source: ModelSource::Env,
            })
        );
        assert_eq!(claude.aliases["fast"].value, "claude-haiku-4-5");
        assert_eq!(claude.aliases["fast"].source, ModelSource::Env);
        assert_eq!(claude.aliases["big"].source, ModelSource::Config);
        assert_eq!(claude.aliases["tiny"].value, "haiku");
        let mistral = loaded.config.models_of(Provider::Mistral);
        assert_eq!(mistral.default.as_ref().unwrap().value, "devstral-2");
        assert!(loaded.config.models_of(Provider::Codex).is_empty());

        let values = &loaded.sources.values;
        assert_eq!(
            values["models.claude.default"],
            env_source("CLAUDE_DEFAULT_MODEL")
        );
        assert_eq!(
            values["models.claude.aliases.fast"],
            env_source("CLAUDE_MODEL_ALIASES")
        );
        assert_eq!(values["models.claude.aliases.big"], file_source(3));
        assert!(loaded.warnings.is_empty());
        assert!(loaded.sources.env_overrides.contains(&EnvOverride {
            var: "CLAUDE_MODEL_ALIASES".into(),
            key: "models.claude.aliases".into(),
            deprecated: false,
        }));
    }

    #[test]
    fn malformed_model_aliases_name_the_variable() {
        assert_eq!(
            error("", &[("GEMINI_MODEL_ALIASES", "fast=flash,pro")]),
            "environment variable GEMINI_MODEL_ALIASES: models.gemini.aliases: entry \"pro\" is \
             not name=model (expected a list like \"fast=haiku,big=opus\")"
        );
        assert!(error("", &[("GROK_MODEL_ALIASES", "=grok-4")]).contains("entry \"=grok-4\""));
    }

    #[test]
    fn render_show_lists_values_with_sources_and_hides_env_values() {
        let text = "[jobs]\nkill_grace_ms = 100\n\
                    [providers.claude]\nenv = { ANTHROPIC_API_KEY = \"sk-secret\" }\n";
        let loaded = loaded(
            text,
            &[
                (SYNC_DEADLINE_MS_VAR, "1000"),
                (JOB_RETENTION_DAYS_VAR, "3"),
            ],
        );
        let shown = loaded.render_show();
        let line_of = |key: &str| {
            shown
                .lines()
                .find(|line| line.starts_with(&format!("{key} = ")))
                .unwrap_or_else(|| panic!("{key} missing from:\n{shown}"))
                .to_string()
        };
        assert!(line_of("jobs.kill_grace_ms").ends_with("# file:2"));
        assert!(line_of("jobs.sync_deadline_ms").ends_with("# env:SYNC_DEADLINE_MS"));
        assert!(line_of("jobs.runner").contains("= \"supervisor\""));
        assert!(line_of("jobs.runner").ends_with("# default"));
        assert!(line_of("persistence.path").contains("/home/u/.llm-cli-gateway/logs.db"));
        let key_line = line_of("providers.claude.env.ANTHROPIC_API_KEY");
        assert!(key_line.contains("= \"…\""), "{key_line}");
        assert!(key_line.ends_with("# file:4"));
        assert!(!shown.contains("sk-secret"));
        assert!(line_of("providers.codex.env").contains("= {}"));
        assert!(line_of("providers.claude.root_bypass_sets_is_sandbox").ends_with("# default"));
        assert!(shown.contains(&format!("# config file: {FILE}\n")));
        assert!(shown.contains("# warnings:\n#   LLM_GATEWAY_JOB_RETENTION_DAYS is deprecated"));
        for section in [
            "persistence.",
            "jobs.",
            "limits.",
            "providers.mistral.",
            "admin.",
            "approvals.",
            "cache_awareness.",
            "privacy.",
        ] {
            assert!(shown.contains(&format!("\n{section}")), "{section}");
        }
    }

    #[test]
    fn render_show_says_when_no_file_was_read() {
        let home = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([
            ("HOME", "/home/u"),
            ("LLM_GATEWAY_HOME", home.path().to_str().unwrap()),
        ]);
        let shown = load(&env).unwrap().render_show();
        assert!(
            shown.contains("(not present; built-in defaults)"),
            "{shown}"
        );
        assert!(shown.contains("# env:LLM_GATEWAY_HOME"), "{shown}");
        assert!(shown.contains("# warnings: none"));
    }

    #[test]
    fn enums_spell_as_in_the_file() {
        assert_eq!(Backend::None.as_str(), "none");
        assert_eq!(Runner::InProcess.as_str(), "in-process");
        assert_eq!(ApprovalPolicy::Permissive.as_str(), "permissive");
        assert_eq!(ModelSource::Env.as_str(), "env");
        let json = serde_json::to_value(Config::defaults(&env_with(&[]))).unwrap();
        assert_eq!(json["jobs"]["runner"], "supervisor");
        assert_eq!(json["persistence"]["backend"], "sqlite");
        assert_eq!(json["providers"]["mistral"]["binary"], "vibe");
    }

    #[test]
    fn unknown_keys_are_matched_against_the_sections_own_keys() {
        assert_eq!(
            suggest::closest("retention_days", &field_names(PERSISTENCE_FIELDS)),
            Some("retentionDays")
        );
        assert_eq!(
            suggest::closest("SYNC_DEADLINE_MS", &field_names(JOBS_FIELDS)),
            Some("sync_deadline_ms")
        );
        assert_eq!(
            suggest::closest("runer", &field_names(JOBS_FIELDS)),
            Some("runner")
        );
    }
}
