//! The integration-test harness: the real `llm-cli-gateway` binary, driven over stdio by
//! rmcp's client, in an isolated home per test.
//!
//! Each [`TestHome`] is a temp dir holding `home/` (the child's `$HOME`), `gateway/` (its
//! `LLM_GATEWAY_HOME`, where config.toml and logs.db live) and `bin/` (first on the child's
//! `PATH`: put fake provider CLIs there). The child's environment is cleared and rebuilt,
//! so nothing from the developer's shell (a real `claude`, `SYNC_DEADLINE_MS`, …) leaks in.
//! Its stderr goes to `stderr.log` in the temp dir, readable with [`TestHome::server_log`].

#![allow(dead_code)]

pub mod fake_cli;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test, built by cargo for integration tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_llm-cli-gateway");

/// The name libtest gives test `name` of module `module` (pass `module_path!()`), for a
/// test that re-runs this binary with `--exact` to get a helper process: libtest names
/// tests by their module path without the crate's name.
pub fn libtest_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// The longest any single harness wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub type Client = RunningService<RoleClient, ()>;

pub struct TestHome {
    root: TempDir,
    extra_env: Vec<(String, String)>,
}

impl TestHome {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("gw-test-")
            .tempdir()
            .expect("create test temp dir");
        for sub in ["home", "gateway", "bin"] {
            std::fs::create_dir_all(root.path().join(sub)).expect("create test dirs");
        }
        TestHome {
            root,
            extra_env: Vec::new(),
        }
    }

    /// A home whose `config.toml` holds `toml`.
    pub fn with_config(toml: &str) -> Self {
        let home = Self::new();
        home.write_config(toml);
        home
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `$HOME` of the child.
    pub fn home_dir(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// `LLM_GATEWAY_HOME` of the child: config.toml and logs.db live here.
    pub fn gateway_dir(&self) -> PathBuf {
        self.root.path().join("gateway")
    }

    /// First on the child's `PATH`: fake provider CLIs go here.
    pub fn bin_dir(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    pub fn db_path(&self) -> PathBuf {
        self.gateway_dir().join("logs.db")
    }

    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.gateway_dir().join("config.toml"), toml).expect("write config.toml");
    }

    /// Adds an environment variable to every child started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.to_string(), value.to_string()));
    }

    fn stderr_path(&self) -> PathBuf {
        self.root.path().join("stderr.log")
    }

    /// Everything the servers started from this home wrote to stderr so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn apply_env(&self, command: &mut tokio::process::Command) {
        let system_path = "/usr/local/bin:/usr/bin:/bin";
        command
            .env_clear()
            .env("HOME", self.home_dir())
            .env("LLM_GATEWAY_HOME", self.gateway_dir())
            .env(
                "PATH",
                format!("{}:{system_path}", self.bin_dir().display()),
            )
            .env("RUST_LOG", "info")
            .env("TMPDIR", self.root.path());
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
    }

    /// A command for the binary with this home's environment.
    pub fn command<I, S>(&self, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = tokio::process::Command::new(BINARY);
        command.args(args);
        self.apply_env(&mut command);
        command.kill_on_drop(true);
        command
    }

    /// Runs the binary to completion with stdin closed, bounded by [`WAIT`].
    pub async fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = self.command(args);
        command.stdin(Stdio::null());
        tokio::time::timeout(WAIT, command.output())
            .await
            .expect("the binary did not finish in time")
            .expect("run the binary")
    }

    /// Starts `llm-cli-gateway serve` and completes the MCP handshake.
    pub async fn connect(&self) -> Client {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open stderr log");
        let (transport, _) = TokioChildProcess::builder(self.command(["serve"]))
            .stderr(stderr)
            .spawn()
            .expect("spawn the server");
        match tokio::time::timeout(WAIT, ().serve(transport)).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "MCP handshake failed: {error}\nserver stderr:\n{}",
                self.server_log()
            ),
            Err(_) => panic!(
                "MCP handshake timed out\nserver stderr:\n{}",
                self.server_log()
            ),
        }
    }
}

/// Calls a tool with a JSON object of arguments, bounded by [`WAIT`].
pub async fn call(client: &Client, name: &str, arguments: Value) -> CallToolResult {
    let arguments = match arguments {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        other => panic!("tool arguments must be an object, got {other}"),
    };
    let request = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
    tokio::time::timeout(WAIT, client.call_tool(request))
        .await
        .unwrap_or_else(|_| panic!("{name} timed out"))
        .unwrap_or_else(|error| panic!("{name} failed at the protocol level: {error}"))
}

/// The text of a result's first content block.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|block| block.as_text())
        .map(|text| text.text.clone())
        .unwrap_or_default()
}

/// Asserts success and returns `structuredContent`.
pub fn ok(result: CallToolResult) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "expected success, got error: {}",
        text_of(&result)
    );
    result
        .structured_content
        .expect("a successful result carries structuredContent")
}

/// Asserts an `isError` result and returns its text block.
pub fn err(result: CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error, got: {}",
        text_of(&result)
    );
    text_of(&result)
}

/// Asserts that a result's `structuredContent` matches the tool's advertised output schema
/// (MCP clients validate it and reject the whole call on a mismatch).
pub fn assert_matches_output_schema(tool: &Tool, result: &CallToolResult) {
    let Some(schema) = &tool.output_schema else {
        return;
    };
    let Some(structured) = &result.structured_content else {
        assert_eq!(
            result.is_error,
            Some(true),
            "{} declares an output schema but returned no structuredContent",
            tool.name
        );
        return;
    };
    let schema = Value::Object(schema.as_ref().clone());
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|error| panic!("output schema of {} is invalid: {error}", tool.name));
    let problems: Vec<String> = validator
        .iter_errors(structured)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{} result does not match its output schema:\n{}\nresult: {structured:#}",
        tool.name,
        problems.join("\n")
    );
}
