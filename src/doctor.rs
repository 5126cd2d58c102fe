//! `llm-cli-gateway doctor [--json]`: "can this gateway serve, and what do I fix?"
//! (config-and-cli.md, "doctor --json").
//!
//! Owns: the diagnostics report ([`Report`], serialised as the exact JSON shape of the
//! spec), the probes behind it — the config load, opening and migrating the store, and per
//! CLI the PATH lookup, the raw `--version` output and the non-interactive auth probe — the
//! `checks` and `next_actions` derived from them, the `ok` rule, and the human-readable
//! rendering. Every process probe is a [`cli_version::probe`] (5 s wall timeout, then the
//! process group is killed), all of them on their own threads at once, so the whole command
//! stays under 10 s even when a CLI hangs. Auth probes report the *method* (a variable name,
//! a file path), never a value.
//!
//! Not here: locating a CLI, running its bounded probes, reading and comparing its version
//! number (all [`crate::cli_version`]); parsing the command line or choosing colours for
//! the terminal (the caller passes `color`); anything that needs network or a login flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli_version::{self, PROBE_TIMEOUT, Probe, VersionStatus};
use crate::config::{self, Backend, Config, Env, ProviderConfig};
use crate::exec::EndReason;
use crate::providers::Provider;

/// The shape version of the JSON report.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report; its JSON is the `doctor --json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub ok: bool,
    pub generated_at: String,
    pub gateway: GatewayInfo,
    pub config: ConfigStatus,
    pub persistence: PersistenceStatus,
    pub providers: BTreeMap<String, ProviderStatus>,
    pub checks: Vec<Check>,
    pub next_actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub binary: Option<String>,
    pub os: &'static str,
    pub arch: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// The config file that was read, or null when none exists (defaults apply).
    pub file: Option<String>,
    pub loaded: bool,
    /// The environment variables that changed a setting (names only).
    pub env_overrides: Vec<String>,
    /// `config.toml:<line>: <key>: <problem>` messages; empty when `loaded`.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersistenceStatus {
    pub backend: &'static str,
    /// The database file; null for `memory` and `none` (a private temp file).
    pub path: Option<String>,
    pub writable: bool,
    pub journal_mode: Option<String>,
    pub schema_version: Option<i64>,
    pub async_jobs_enabled: bool,
    pub jobs: JobCounts,
    /// Why the store could not be opened, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub orphaned: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    /// The configured binary (a name looked up on PATH, or a path).
    pub binary: String,
    pub enabled: bool,
    pub path: Option<String>,
    pub installed: bool,
    /// The raw `--version` output (trimmed), or null when it could not be read.
    pub version: Option<String>,
    pub tested_version: &'static str,
    pub version_status: VersionStatus,
    pub auth: AuthStatus,
    pub ready: bool,
    pub install: String,
    pub login: String,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthStatus {
    pub status: AuthState,
    /// How the CLI authenticates (`env:CODEX_API_KEY`, `file:~/.codex/auth.json`,
    /// `claude auth status: api_key`), or null when nothing was found.
    pub method: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    Authenticated,
    NotAuthenticated,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub status: CheckStatus,
    pub message: String,
    /// What to do about it; empty for `ok`.
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

/// Runs every probe and builds the report. `env` is the process environment snapshot;
/// `binary` the path of the running gateway.
pub fn diagnose(env: &Env, binary: Option<PathBuf>) -> Report {
    let mut checks = Vec::new();

    let (config, config_status) = load_config(env);
    checks.push(if config_status.loaded {
        Check::ok(
            "config",
            match &config_status.file {
                Some(file) => format!("configuration loaded from {file}"),
                None => "no config file: built-in defaults apply".to_string(),
            },
        )
    } else {
        Check::fail(
            "config",
            format!("the configuration is invalid: {}", config_status.errors.join("; ")),
            "Fix the lines named above in config.toml (`llm-cli-gateway config --example` lists every key with its default).",
        )
    });

    // The providers' probes run on their own threads while the store is opened here.
    let (persistence, providers) = std::thread::scope(|scope| {
        let handles: Vec<_> = Provider::ALL
            .into_iter()
            .map(|provider| {
                let settings = config.provider(provider).clone();
                scope.spawn(move || probe_provider(provider, &settings, env))
            })
            .collect();
        let persistence = probe_persistence(&config);
        let providers: BTreeMap<String, ProviderStatus> = Provider::ALL
            .into_iter()
            .zip(handles)
            .map(|(provider, handle)| {
                let status = handle.join().unwrap_or_else(|_| {
                    failed_probe(
                        provider,
                        config.provider(provider),
                        "the probe thread panicked",
                    )
                });
                (provider.key().to_string(), status)
            })
            .collect();
        (persistence, providers)
    });

    match &persistence.error {
        None => checks.push(Check::ok(
            "store",
            match &persistence.path {
                Some(path) => format!(
                    "the store opens and migrates: {path} (schema {}, journal {})",
                    persistence.schema_version.unwrap_or_default(),
                    persistence.journal_mode.as_deref().unwrap_or("?")
                ),
                None => format!(
                    "backend `{}`: a private temporary database, removed when the server exits",
                    persistence.backend
                ),
            },
        )),
        Some(error) => checks.push(Check::fail(
            "store",
            format!("the store cannot be opened: {error}"),
            "Make the data directory writable, or point `[persistence] path` (or LLM_GATEWAY_HOME) at a writable place.",
        )),
    }
    if persistence.error.is_none() && !persistence.async_jobs_enabled {
        checks.push(Check::warn(
            "async_jobs",
            "backend `none`: no async or job tools; sync requests are not deferred and nothing is recorded",
            "Set `[persistence] backend = \"sqlite\"` to get durable jobs and the flight recorder.",
        ));
    }
    if persistence.jobs.orphaned > 0 {
        checks.push(Check::warn(
            "orphaned_jobs",
            format!(
                "{} job(s) were orphaned: their supervisor died before they ended",
                persistence.jobs.orphaned
            ),
            "Inspect them with `llm-cli-gateway jobs list` and run the requests again if needed.",
        ));
    }

    for (key, status) in &providers {
        checks.push(provider_check(key, status));
    }
    let any_ready = providers.values().any(|p| p.ready);
    if !any_ready {
        checks.push(Check::fail(
            "providers",
            "no CLI is ready: the gateway can start, but every request would fail",
            "Install and log in to at least one CLI (see the provider checks above), then run `llm-cli-gateway doctor` again.",
        ));
    }

    let ok = config_status.loaded && persistence.error.is_none() && any_ready;
    let next_actions = next_actions(&checks, ok);
    Report {
        schema_version: SCHEMA_VERSION,
        ok,
        generated_at: crate::clock::now_iso(),
        gateway: GatewayInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            binary: binary.map(|path| path.display().to_string()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        },
        config: config_status,
        persistence,
        providers,
        checks,
        next_actions,
    }
}

impl Check {
    fn ok(id: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: CheckStatus::Ok,
            message: message.into(),
            fix: String::new(),
        }
    }

    fn warn(id: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: CheckStatus::Warn,
            message: message.into(),
            fix: fix.into(),
        }
    }

    fn fail(id: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: CheckStatus::Fail,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

fn load_config(env: &Env) -> (Config, ConfigStatus) {
    match config::load(env) {
        Ok(loaded) => {
            let status = ConfigStatus {
                file: loaded
                    .sources
                    .config_file
                    .as_ref()
                    .map(|path| path.display().to_string()),
                loaded: true,
                env_overrides: loaded
                    .sources
                    .env_overrides
                    .iter()
                    .map(|o| o.var.clone())
                    .collect(),
                errors: Vec::new(),
            };
            (loaded.config, status)
        }
        Err(error) => {
            let file = env
                .get(config::CONFIG_VAR)
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    crate::paths::default_data_dir(env).join(config::CONFIG_FILE_NAME)
                });
            let status = ConfigStatus {
                file: file.exists().then(|| file.display().to_string()),
                loaded: false,
                env_overrides: Vec::new(),
                errors: error.messages(),
            };
            // The rest of the report still runs, on the defaults.
            (Config::defaults(env), status)
        }
    }
}

fn probe_persistence(config: &Config) -> PersistenceStatus {
    let backend = config.persistence.backend;
    let mut status = PersistenceStatus {
        backend: backend.as_str(),
        path: (backend == Backend::Sqlite).then(|| config.persistence.path.display().to_string()),
        writable: false,
        journal_mode: None,
        schema_version: None,
        async_jobs_enabled: backend != Backend::None,
        jobs: JobCounts::default(),
        error: None,
    };
    if let Err(error) = crate::paths::ensure_private_dir(&config.data_dir) {
        status.error = Some(format!(
            "cannot create the data directory {}: {error}",
            config.data_dir.display()
        ));
        return status;
    }
    let opened = match crate::serve::open_store(config) {
        Ok(opened) => opened,
        Err(error) => {
            status.error = Some(error.to_string());
            return status;
        }
    };
    let store = &opened.store;
    status.journal_mode = Some(store.journal_mode().to_string());
    status.schema_version = Some(store.schema_version());
    status.writable = std::fs::OpenOptions::new()
        .append(true)
        .open(store.path())
        .is_ok();
    // Jobs whose supervisor died are marked now, so the counts below are true.
    let _ = crate::jobs::control::detect_orphans(store);
    match store.job_counts_blocking() {
        Ok(counts) => {
            for row in counts {
                status.jobs.queued += row.queued;
                status.jobs.running += row.running;
                status.jobs.orphaned += row.orphaned;
            }
        }
        Err(error) => status.error = Some(format!("cannot count jobs: {error}")),
    }
    status
}

fn failed_probe(provider: Provider, settings: &ProviderConfig, why: &str) -> ProviderStatus {
    ProviderStatus {
        binary: settings.binary.clone(),
        enabled: settings.enabled,
        path: None,
        installed: false,
        version: None,
        tested_version: provider.tested_version(),
        version_status: VersionStatus::Unknown,
        auth: AuthStatus {
            status: AuthState::Unknown,
            method: None,
            detail: why.to_string(),
        },
        ready: false,
        install: provider.install_command().to_string(),
        login: login_guidance(provider).to_string(),
        notes: vec![why.to_string()],
    }
}

fn probe_provider(provider: Provider, settings: &ProviderConfig, env: &Env) -> ProviderStatus {
    let mut status = failed_probe(provider, settings, "");
    status.notes.clear();
    status.auth.detail.clear();
    let path = match cli_version::locate(&settings.binary, env) {
        Ok(path) => path,
        Err(not_found) => {
            status.notes.push(format!("{not_found}"));
            status.auth = file_or_env_auth(provider, settings, env).unwrap_or_else(|| AuthStatus {
                status: AuthState::Unknown,
                method: None,
                detail: "not probed: the CLI is not installed".to_string(),
            });
            return status;
        }
    };
    status.path = Some(path.display().to_string());
    status.installed = true;

    // `--version` and the auth probe run at once.
    let (version, auth) = std::thread::scope(|scope| {
        let version = scope.spawn(|| cli_version::probe_version(&path, &settings.env));
        let auth = if provider == Provider::Claude {
            claude_auth(&path, settings)
        } else {
            file_or_env_auth(provider, settings, env).unwrap_or_else(|| AuthStatus {
                status: AuthState::NotAuthenticated,
                method: None,
                detail: format!("no credentials found: {}", auth_places(provider)),
            })
        };
        let version = version
            .join()
            .unwrap_or_else(|_| Probe::failed("the probe thread panicked"));
        (version, auth)
    });
    status.auth = auth;

    let version_ok = version.succeeded();
    let raw = version.stdout.trim();
    if !raw.is_empty() {
        status.version = Some(raw.to_string());
    }
    if version.end == EndReason::Timeout {
        status.notes.push(format!(
            "`{} --version` did not answer within {} s and was killed",
            path.display(),
            PROBE_TIMEOUT.as_secs()
        ));
    } else if let Some(error) = &version.spawn_error {
        status
            .notes
            .push(format!("`--version` could not run: {error}"));
    } else if !version_ok {
        status.notes.push(format!(
            "`{} --version` failed ({})",
            path.display(),
            version
                .exit_code
                .map(|code| format!("exit code {code}"))
                .unwrap_or_else(|| version.end.to_string())
        ));
    }
    status.version_status = match status.version.as_deref() {
        Some(raw) if version_ok => {
            cli_version::compare(cli_version::parse(raw).as_ref(), provider.tested_version()).status
        }
        _ => VersionStatus::Unknown,
    };
    match status.version_status {
        VersionStatus::Newer => status.notes.push(format!(
            "newer than the tested {}: usually fine; if requests fail to parse, report it",
            provider.tested_version()
        )),
        VersionStatus::Older => status.notes.push(format!(
            "older than the tested {}: upgrade with `{}`",
            provider.tested_version(),
            provider.install_command()
        )),
        _ => {}
    }
    if !settings.enabled {
        status.notes.push(format!(
            "disabled in config.toml ([providers.{}] enabled = false)",
            provider.key()
        ));
    }
    status.ready = settings.enabled
        && status.installed
        && version_ok
        && status.auth.status != AuthState::NotAuthenticated;
    status
}

/// `claude auth status` prints JSON (`loggedIn`, `authMethod`) and exits 1 when logged out.
fn claude_auth(path: &Path, settings: &ProviderConfig) -> AuthStatus {
    let probe = cli_version::probe(path, &["auth", "status"], &settings.env);
    if probe.end == EndReason::Timeout {
        return AuthStatus {
            status: AuthState::Unknown,
            method: None,
            detail: format!(
                "`claude auth status` did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
        };
    }
    let parsed: Option<serde_json::Value> = serde_json::from_str(probe.stdout.trim()).ok();
    let logged_in = parsed
        .as_ref()
        .and_then(|v| v.get("loggedIn"))
        .and_then(serde_json::Value::as_bool);
    let method = parsed
        .as_ref()
        .and_then(|v| v.get("authMethod"))
        .and_then(serde_json::Value::as_str)
        .filter(|m| *m != "none")
        .map(str::to_string);
    let source = parsed
        .as_ref()
        .and_then(|v| v.get("apiKeySource"))
        .and_then(serde_json::Value::as_str)
        .map(|s| format!(" (from {s})"))
        .unwrap_or_default();
    match logged_in {
        Some(true) => AuthStatus {
            status: AuthState::Authenticated,
            method: method.clone(),
            detail: format!(
                "claude auth status: logged in with {}{source}",
                method.as_deref().unwrap_or("an unnamed method")
            ),
        },
        Some(false) => AuthStatus {
            status: AuthState::NotAuthenticated,
            method: None,
            detail: "claude auth status: not logged in".to_string(),
        },
        None => AuthStatus {
            status: AuthState::Unknown,
            method: None,
            detail: format!(
                "`claude auth status` gave no readable answer ({})",
                probe
                    .exit_code
                    .map(|code| format!("exit code {code}"))
                    .unwrap_or_else(|| probe.end.to_string())
            ),
        },
    }
}

/// Where each CLI's credentials are looked for, for messages.
fn auth_places(provider: Provider) -> &'static str {
    match provider {
        Provider::Claude => "claude auth status",
        Provider::Codex => "CODEX_API_KEY, OPENAI_API_KEY, $CODEX_HOME/auth.json",
        Provider::Gemini => {
            "GEMINI_API_KEY, GOOGLE_API_KEY, GOOGLE_GENAI_USE_VERTEXAI/GOOGLE_CLOUD_PROJECT, ~/.gemini/oauth_creds.json"
        }
        Provider::Grok => "XAI_API_KEY, GROK_CODE_XAI_API_KEY, $GROK_HOME/auth.json",
        Provider::Mistral => "MISTRAL_API_KEY, $VIBE_HOME/.env",
    }
}

/// The env-or-file probes of codex, gemini, grok and vibe (claude asks its CLI). `None`
/// when nothing was found (and always for claude).
fn file_or_env_auth(
    provider: Provider,
    settings: &ProviderConfig,
    env: &Env,
) -> Option<AuthStatus> {
    let home = env.home_dir().unwrap_or_default();
    let var = |name: &str| -> Option<String> {
        let set = settings
            .env
            .get(name)
            .map(String::as_str)
            .or_else(|| env.get(name))
            .is_some_and(|value| !value.trim().is_empty());
        set.then(|| name.to_string())
    };
    let dir_of = |var_name: &str, default: &str| -> PathBuf {
        settings
            .env
            .get(var_name)
            .map(String::as_str)
            .or_else(|| env.get(var_name))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(default))
    };
    let (vars, file): (&[&str], Option<PathBuf>) = match provider {
        Provider::Claude => return None,
        Provider::Codex => (
            &["CODEX_API_KEY", "OPENAI_API_KEY"],
            Some(dir_of("CODEX_HOME", ".codex").join("auth.json")),
        ),
        Provider::Gemini => (
            &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            Some(home.join(".gemini/oauth_creds.json")),
        ),
        Provider::Grok => (
            &["XAI_API_KEY", "GROK_CODE_XAI_API_KEY"],
            Some(dir_of("GROK_HOME", ".grok").join("auth.json")),
        ),
        Provider::Mistral => (
            &["MISTRAL_API_KEY"],
            Some(dir_of("VIBE_HOME", ".vibe").join(".env")),
        ),
    };
    if let Some(name) = vars.iter().find_map(|name| var(name)) {
        return Some(AuthStatus {
            status: AuthState::Authenticated,
            method: Some(format!("env:{name}")),
            detail: format!("{name} is set in the environment (value not shown)"),
        });
    }
    if provider == Provider::Gemini
        && var("GOOGLE_GENAI_USE_VERTEXAI").is_some()
        && var("GOOGLE_CLOUD_PROJECT").is_some()
    {
        return Some(AuthStatus {
            status: AuthState::Authenticated,
            method: Some("env:GOOGLE_GENAI_USE_VERTEXAI".to_string()),
            detail: "Vertex AI variables are set (GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_CLOUD_PROJECT)"
                .to_string(),
        });
    }
    let file = file?;
    if provider == Provider::Mistral {
        // The .env holds other settings too: only a MISTRAL_API_KEY line counts.
        let text = std::fs::read_to_string(&file).ok()?;
        let has_key = text.lines().any(|line| {
            line.trim_start()
                .trim_start_matches("export ")
                .strip_prefix("MISTRAL_API_KEY=")
                .is_some_and(|value| !value.trim().trim_matches(['"', '\'']).is_empty())
        });
        return has_key.then(|| AuthStatus {
            status: AuthState::Authenticated,
            method: Some(format!("file:{}", file.display())),
            detail: format!(
                "MISTRAL_API_KEY is set in {} (value not shown)",
                file.display()
            ),
        });
    }
    file.is_file().then(|| AuthStatus {
        status: AuthState::Authenticated,
        method: Some(format!("file:{}", file.display())),
        detail: format!("credentials file {} exists", file.display()),
    })
}

/// How a person logs a CLI in, non-interactively where the CLI allows it.
pub fn login_guidance(provider: Provider) -> &'static str {
    match provider {
        Provider::Claude => {
            "claude auth login (or export ANTHROPIC_API_KEY=… in the environment the MCP client starts the gateway with)"
        }
        Provider::Codex => "codex login (or export CODEX_API_KEY=…)",
        Provider::Gemini => {
            "run `gemini` once and choose \"Login with Google\" (or export GEMINI_API_KEY=…)"
        }
        Provider::Grok => "grok login (or export XAI_API_KEY=…)",
        Provider::Mistral => "vibe --setup (or export MISTRAL_API_KEY=…)",
    }
}

fn provider_check(key: &str, status: &ProviderStatus) -> Check {
    let id = format!("provider.{key}");
    if !status.enabled {
        return Check::ok(id, format!("{key}: disabled in config.toml"));
    }
    if !status.installed {
        return Check::warn(
            id,
            format!("{key}: `{}` is not installed", status.binary),
            format!("Install {key}: {}", status.install),
        );
    }
    if status.version_status == VersionStatus::Unknown && !status.ready {
        return Check::warn(
            id,
            format!(
                "{key}: `{} --version` did not work: {}",
                status.path.as_deref().unwrap_or(&status.binary),
                status.notes.join("; ")
            ),
            format!(
                "Check that `{} --version` runs in a terminal; if it does not, reinstall {key}: {}",
                status.path.as_deref().unwrap_or(&status.binary),
                status.install
            ),
        );
    }
    if status.auth.status == AuthState::NotAuthenticated {
        return Check::warn(
            id,
            format!(
                "{key}: installed but not logged in ({})",
                status.auth.detail
            ),
            format!("Log in to {key}: {}", status.login),
        );
    }
    let mut message = format!(
        "{key}: ready ({})",
        status.version.as_deref().unwrap_or("version unknown")
    );
    if status.auth.status == AuthState::Unknown {
        message.push_str(&format!("; auth unknown: {}", status.auth.detail));
    }
    if status.version_status == VersionStatus::Older {
        return Check::warn(
            id,
            format!("{message}; older than the tested {}", status.tested_version),
            format!("Upgrade {key}: {}", status.install),
        );
    }
    Check::ok(id, message)
}

fn next_actions(checks: &[Check], ok: bool) -> Vec<String> {
    let mut actions: Vec<String> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .chain(checks.iter().filter(|c| c.status == CheckStatus::Warn))
        .filter(|c| !c.fix.is_empty())
        .map(|c| c.fix.clone())
        .collect();
    actions.dedup();
    if ok {
        actions.push(
            "Add the gateway to your MCP client: run `llm-cli-gateway print-client-config` and paste the entry for your client."
                .to_string(),
        );
    } else {
        actions.push("Run `llm-cli-gateway doctor` again after these fixes.".to_string());
    }
    actions
}

/// The human-readable report. `color` adds ANSI colours (only when stdout is a terminal).
pub fn render_human(report: &Report, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mark = |status: CheckStatus| match status {
        CheckStatus::Ok => paint("32", "ok  "),
        CheckStatus::Warn => paint("33", "warn"),
        CheckStatus::Fail => paint("31", "FAIL"),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "{} {} ({}; {}/{})\n",
        report.gateway.name,
        report.gateway.version,
        report
            .gateway
            .binary
            .as_deref()
            .unwrap_or("binary path unknown"),
        report.gateway.os,
        report.gateway.arch
    ));
    let p = &report.persistence;
    out.push_str(&format!(
        "store: backend {}, {}, jobs queued {} running {} orphaned {}\n",
        p.backend,
        p.path.as_deref().unwrap_or("private temporary file"),
        p.jobs.queued,
        p.jobs.running,
        p.jobs.orphaned
    ));
    out.push('\n');
    for (key, status) in &report.providers {
        out.push_str(&format!(
            "{:<8} {}  version: {} (tested {}, {})  auth: {}\n",
            key,
            if status.ready {
                paint("32", "ready    ")
            } else {
                paint("33", "not ready")
            },
            status
                .version
                .as_deref()
                .unwrap_or("-")
                .lines()
                .next()
                .unwrap_or("-"),
            status.tested_version,
            status.version_status.as_str(),
            status
                .auth
                .method
                .as_deref()
                .unwrap_or(match status.auth.status {
                    AuthState::Authenticated => "authenticated",
                    AuthState::NotAuthenticated => "not authenticated",
                    AuthState::Unknown => "unknown",
                }),
        ));
    }
    out.push_str("\nchecks:\n");
    for check in &report.checks {
        out.push_str(&format!("  [{}] {}\n", mark(check.status), check.message));
        if !check.fix.is_empty() && check.status != CheckStatus::Ok {
            out.push_str(&format!("         fix: {}\n", check.fix));
        }
    }
    out.push_str("\nnext:\n");
    for (i, action) in report.next_actions.iter().enumerate() {
        out.push_str(&format!("  {}. {action}\n", i + 1));
    }
    out.push_str(&format!(
        "\n{}\n",
        if report.ok {
            paint("32", "ok: this gateway can serve")
        } else {
            paint("31", "not ok: fix the FAIL lines above")
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_actions_are_never_empty() {
        assert!(!next_actions(&[], true).is_empty());
        assert!(!next_actions(&[], false).is_empty());
    }
}
