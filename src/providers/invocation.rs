//! What a provider's `build` receives besides the request ([`BuildContext`]) and what it
//! returns ([`Invocation`]): the exact program, argv, environment additions, stdin, cwd and
//! temp files of one CLI run.
//!
//! Owns: those types, the argv builder every adapter uses (`--flag=value` form, per-element
//! size check), and the prompt-size constants of providers.md.
//! Not here: spawning, writing or removing the temp files, PATH lookup, reading the
//! gateway's environment — the executor does those with what an `Invocation` says.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::request::{
    AssembledPrompt, Limits, ValidationError, Warning, check_session_id, no_leading_dash, non_empty,
};

/// Prompts whose UTF-8 size is over this go through stdin or a prompt file, never a single
/// argv element (providers.md "Rules for every provider": 100 KiB).
pub const LARGE_PROMPT_BYTES: usize = 100 * 1024;

/// Linux rejects one argv element of 131 072 bytes or more (`MAX_ARG_STRLEN`, counting the
/// terminating NUL).
pub const MAX_ARG_BYTES: usize = 131_071;

/// How the run relates to the CLI's own sessions, as the caller resolved it from the request
/// and the store (providers.md "Sessions").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionBinding {
    /// A new conversation: no resume flag.
    #[default]
    Fresh,
    /// Resume this provider-native session id.
    Resume(String),
    /// The CLI's own "latest" session in the run's cwd.
    ResumeLatest,
}

/// An MCP server from `[mcp_servers.<name>]` in config.toml, as claude's `--mcp-config` file
/// carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerSpec {
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// Everything the gateway knows that a provider needs to build a run, so `build` stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    /// The binary to run: a name looked up on PATH or an absolute path (`[providers.<cli>]
    /// binary`).
    pub program: String,
    /// The model after alias resolution by the caller's model registry; `None` = no model
    /// flag (the CLI picks).
    pub model: Option<String>,
    /// The resolved session binding. `createNewSession` in the request still wins (the build
    /// treats it as [`SessionBinding::Fresh`]).
    pub session: SessionBinding,
    /// The process cwd (already checked to exist by the caller).
    pub cwd: PathBuf,
    /// A private directory for this run's files (prompt file, schema, MCP config, vibe's
    /// `--output-dir`). The caller creates it 0700 and removes it after parsing.
    pub temp_dir: PathBuf,
    /// Whether the gateway's effective uid is 0.
    pub is_root: bool,
    /// `[providers.claude] root_bypass_sets_is_sandbox` (default true).
    pub root_bypass_sets_is_sandbox: bool,
    /// `[providers.<cli>] env`, appended after the documented additions (so it can override
    /// them).
    pub provider_env: Vec<(String, String)>,
    /// `[limits] max_prompt_chars`.
    pub max_prompt_chars: usize,
    /// `[mcp_servers.*]` from config.toml, for claude's `mcpServers`.
    pub mcp_servers: BTreeMap<String, McpServerSpec>,
    /// Emit claude's permission mode even when it is `default` (normally no flag). Set by
    /// `mcp_managed` approvals, which pin the mode so a user settings file cannot widen it.
    pub pin_permission_mode: bool,
}

impl BuildContext {
    /// A context with the config defaults: fresh session, no model, not root, sandbox bypass
    /// allowed, no extra env, 100 000 prompt characters, no MCP servers.
    pub fn new(
        program: impl Into<String>,
        cwd: impl Into<PathBuf>,
        temp_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            program: program.into(),
            model: None,
            session: SessionBinding::Fresh,
            cwd: cwd.into(),
            temp_dir: temp_dir.into(),
            is_root: false,
            root_bypass_sets_is_sandbox: true,
            provider_env: Vec::new(),
            max_prompt_chars: 100_000,
            mcp_servers: BTreeMap::new(),
            pin_permission_mode: false,
        }
    }

    /// The request limits a build checks against (`[limits]`).
    pub fn limits(&self) -> Limits {
        Limits {
            max_prompt_chars: self.max_prompt_chars,
        }
    }
}

/// A file the caller writes (mode 0600) before the run and removes after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TempFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    /// Always 0o600: prompts, schemas and MCP configs may be private.
    pub mode: u32,
}

impl TempFile {
    /// A 0600 file `name` inside `dir`.
    pub fn new(dir: &Path, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: dir.join(name),
            contents: contents.into(),
            mode: 0o600,
        }
    }
}

/// One CLI run, exactly: the executor spawns `program` with `argv` (no shell), the gateway's
/// environment plus `env_overrides`, `cwd`, and stdin carrying `stdin` then closed (or null
/// when `None`). Serialisable, so a supervisor process can receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub program: String,
    /// Arguments after the program name.
    pub argv: Vec<String>,
    /// Added to (or replacing in) the gateway's environment, in order.
    pub env_overrides: Vec<(String, String)>,
    /// Bytes written to stdin before closing it; `None` = stdin is null.
    pub stdin: Option<Vec<u8>>,
    pub cwd: PathBuf,
    /// Files to write (0600) before the run and remove after it.
    pub temp_files: Vec<TempFile>,
    /// A file the CLI writes that the parser's `finish` needs (vibe's `export.json`): read it
    /// after the exit and pass its bytes in `FinishInput::export_json`.
    pub result_file: Option<PathBuf>,
    /// The prompt as sent, with its stable-prefix facts for the flight recorder.
    pub prompt: AssembledPrompt,
    /// Request-level warnings (legacy parameters, ignored flags, `session_ignored`, …).
    pub warnings: Vec<Warning>,
}

/// Builds argv in the house style: single-value options as `--flag=value` (every one of
/// these CLIs accepts it, and a value may then begin with `-`), and no element over
/// [`MAX_ARG_BYTES`].
#[derive(Debug, Default, Clone)]
pub struct Argv(Vec<String>);

impl Argv {
    pub fn new() -> Self {
        Self::default()
    }

    /// A bare flag or positional.
    pub fn push(&mut self, arg: impl Into<String>) -> &mut Self {
        self.0.push(arg.into());
        self
    }

    /// `--flag=value`.
    pub fn value(&mut self, flag: &str, value: impl Display) -> &mut Self {
        self.0.push(format!("{flag}={value}"));
        self
    }

    /// `--flag=value` when the value is present.
    pub fn opt_value<T: Display>(&mut self, flag: &str, value: Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.value(flag, value);
        }
        self
    }

    /// A bare flag when `on`.
    pub fn flag_if(&mut self, flag: &str, on: bool) -> &mut Self {
        if on {
            self.0.push(flag.to_string());
        }
        self
    }

    /// `--flag=value` once per value (repeatable single-value options).
    pub fn each_value(&mut self, flag: &str, values: &[String]) -> &mut Self {
        for value in values {
            self.value(flag, value);
        }
        self
    }

    /// `--flag=a,b,c` when the list is not empty (options that take a comma-separated list).
    pub fn joined(&mut self, flag: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.value(flag, values.join(","));
        }
        self
    }

    /// `--flag v1 v2 …` when the list is not empty (variadic options; the prompt then comes
    /// after `--`, so they cannot swallow it).
    pub fn variadic(&mut self, flag: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.0.push(flag.to_string());
            self.0.extend(values.iter().cloned());
        }
        self
    }

    /// The session flags: none for a fresh conversation, `--resume=<id>` for a session id,
    /// and `latest` (the CLI's own spelling: `--continue`, `--resume=latest`) for its most
    /// recent session.
    pub fn resume(&mut self, session: &SessionBinding, latest: &str) -> &mut Self {
        match session {
            SessionBinding::Fresh => {}
            SessionBinding::Resume(id) => {
                self.value("--resume", id);
            }
            SessionBinding::ResumeLatest => {
                self.push(latest);
            }
        }
        self
    }

    /// The prompt as `<flag>=<prompt>`, or, when it is large (over [`LARGE_PROMPT_BYTES`]),
    /// as `<file_flag>=<path>` of a 0600 `prompt.txt` in the run's temp dir: the returned file,
    /// which the run must carry in its `temp_files`. For CLIs that do not read stdin.
    pub fn prompt_or_file(
        &mut self,
        ctx: &BuildContext,
        flag: &str,
        file_flag: &str,
        prompt: &str,
    ) -> Option<TempFile> {
        if is_large_prompt(prompt) {
            let file = TempFile::new(&ctx.temp_dir, "prompt.txt", prompt.as_bytes());
            self.value(file_flag, file.path.display());
            Some(file)
        } else {
            self.value(flag, prompt);
            None
        }
    }

    /// The finished argv, or `input_too_large` naming the first element over the Linux limit.
    pub fn finish(self) -> Result<Vec<String>, ValidationError> {
        check_arg_sizes(&self.0)?;
        Ok(self.0)
    }
}

/// Rejects any argv element over [`MAX_ARG_BYTES`] (the OS would fail the spawn with E2BIG).
pub fn check_arg_sizes(argv: &[String]) -> Result<(), ValidationError> {
    for arg in argv {
        if arg.len() > MAX_ARG_BYTES {
            let flag = match arg.split_once('=') {
                Some((flag, _)) if flag.starts_with('-') => flag,
                _ => "a positional argument",
            };
            return Err(ValidationError::too_large(
                "argv",
                format!(
                    "argument too long: {flag} is {} bytes (the Linux limit for one argument is {MAX_ARG_BYTES} bytes)",
                    arg.len()
                ),
                "Shorten that parameter; it is never truncated.",
            ));
        }
    }
    Ok(())
}

/// Whether a prompt must avoid argv (providers.md: over 100 KiB of UTF-8).
pub fn is_large_prompt(prompt: &str) -> bool {
    prompt.len() > LARGE_PROMPT_BYTES
}

/// The session binding a build uses: `createNewSession` wins over whatever the caller
/// resolved (providers.md "Sessions" rule 1), and a resumed id is checked like a request
/// value, since it becomes a flag value or positional.
pub fn effective_session(
    create_new_session: bool,
    ctx: &BuildContext,
) -> Result<SessionBinding, ValidationError> {
    if create_new_session {
        return Ok(SessionBinding::Fresh);
    }
    if let SessionBinding::Resume(id) = &ctx.session {
        check_session_id("sessionId", id)?;
    }
    Ok(ctx.session.clone())
}

/// The resolved model, checked like a request value (it may come from config or env).
pub fn resolved_model(ctx: &BuildContext) -> Result<Option<&str>, ValidationError> {
    match ctx.model.as_deref() {
        Some(model) => {
            non_empty("model", model)?;
            no_leading_dash("model", model)?;
            Ok(Some(model))
        }
        None => Ok(None),
    }
}

/// The documented per-provider additions, then `[providers.<cli>] env` (which may override
/// them).
pub fn env_overrides(documented: &[(&str, &str)], ctx: &BuildContext) -> Vec<(String, String)> {
    documented
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(ctx.provider_env.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_builder_uses_equals_form_and_checks_sizes() {
        let mut argv = Argv::new();
        argv.push("-p")
            .value("--model", "m")
            .opt_value::<&str>("--x", None)
            .joined("--tools", &["a".into(), "b".into()])
            .variadic("--add", &["d1".into(), "d2".into()]);
        assert_eq!(
            argv.finish().unwrap(),
            ["-p", "--model=m", "--tools=a,b", "--add", "d1", "d2"]
        );
        let mut big = Argv::new();
        big.value("--system-prompt", "x".repeat(MAX_ARG_BYTES));
        let err = big.finish().unwrap_err();
        assert_eq!(err.kind.as_str(), "input_too_large");
        assert!(
            err.message
                .starts_with("argument too long: --system-prompt is 131087 bytes")
        );
    }

    #[test]
    fn session_flags_and_prompt_file() {
        let mut argv = Argv::new();
        argv.resume(&SessionBinding::Fresh, "--continue")
            .resume(&SessionBinding::Resume("s-1".into()), "--continue")
            .resume(&SessionBinding::ResumeLatest, "--resume=latest");
        assert_eq!(argv.finish().unwrap(), ["--resume=s-1", "--resume=latest"]);

        let ctx = BuildContext::new("grok", "/work", "/tmp/run");
        assert_eq!(ctx.limits().max_prompt_chars, 100_000);
        let mut argv = Argv::new();
        assert_eq!(
            argv.prompt_or_file(&ctx, "--single", "--prompt-file", "hi"),
            None
        );
        let large = "x".repeat(LARGE_PROMPT_BYTES + 1);
        let file = argv
            .prompt_or_file(&ctx, "--single", "--prompt-file", &large)
            .expect("a large prompt goes through a file");
        assert_eq!(file.path, Path::new("/tmp/run/prompt.txt"));
        assert_eq!((file.contents.len(), file.mode), (large.len(), 0o600));
        assert_eq!(
            argv.finish().unwrap(),
            ["--single=hi", "--prompt-file=/tmp/run/prompt.txt"]
        );
    }
}
