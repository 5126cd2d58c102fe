//! `llm-cli-gateway doctor [--json]` through the built binary: the JSON shape of
//! config-and-cli.md, the `ok`/exit-code rule, the auth probes (method, never the secret),
//! bounded probes with a hanging CLI, and the plain-text report off a terminal.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::TestHome;
use common::fake_cli::{install_fake_cli, knob};
use serde_json::Value;

const KEYS: [&str; 5] = ["claude", "codex", "gemini", "grok", "mistral"];

async fn doctor_json(home: &TestHome) -> (Value, i32, String) {
    let out = home.run(["doctor", "--json"]).await;
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}):\n{stdout}"));
    (value, out.status.code().expect("exit code"), stdout)
}

fn assert_shape(report: &Value) {
    assert_eq!(report["schema_version"], 1);
    assert!(report["ok"].is_boolean());
    assert!(report["generated_at"].as_str().unwrap().ends_with('Z'));
    for key in ["name", "version", "binary", "os", "arch"] {
        assert!(report["gateway"].get(key).is_some(), "gateway.{key}");
    }
    for key in ["file", "loaded", "env_overrides", "errors"] {
        assert!(report["config"].get(key).is_some(), "config.{key}");
    }
    let p = &report["persistence"];
    for key in [
        "backend",
        "path",
        "writable",
        "journal_mode",
        "schema_version",
        "async_jobs_enabled",
    ] {
        assert!(p.get(key).is_some(), "persistence.{key}");
    }
    for key in ["queued", "running", "orphaned"] {
        assert!(p["jobs"][key].is_i64(), "persistence.jobs.{key}");
    }
    let providers = report["providers"].as_object().unwrap();
    assert_eq!(providers.len(), 5);
    for key in KEYS {
        let cli = &providers[key];
        for field in [
            "binary",
            "path",
            "installed",
            "version",
            "tested_version",
            "version_status",
            "auth",
            "ready",
            "install",
            "login",
            "notes",
        ] {
            assert!(cli.get(field).is_some(), "providers.{key}.{field}");
        }
        let status = cli["version_status"].as_str().unwrap();
        assert!(
            ["tested", "newer", "older", "unknown"].contains(&status),
            "{status}"
        );
        let auth = cli["auth"]["status"].as_str().unwrap();
        assert!(
            ["authenticated", "not_authenticated", "unknown"].contains(&auth),
            "{auth}"
        );
        assert!(cli["auth"].get("method").is_some());
        assert!(cli["auth"]["detail"].is_string());
    }
    for check in report["checks"].as_array().unwrap() {
        assert!(check["id"].is_string());
        assert!(["ok", "warn", "fail"].contains(&check["status"].as_str().unwrap()));
        assert!(check["message"].is_string());
        assert!(check["fix"].is_string());
    }
    assert!(
        !report["next_actions"].as_array().unwrap().is_empty(),
        "next_actions is never empty"
    );
}

#[tokio::test]
async fn nothing_installed_is_not_ok_exits_1_and_says_how_to_install_each_cli() {
    let home = TestHome::new();
    let (report, code, _) = doctor_json(&home).await;
    assert_shape(&report);
    assert_eq!(report["ok"], false);
    assert_eq!(code, 1);
    assert_eq!(report["config"]["loaded"], true);
    assert_eq!(report["config"]["file"], Value::Null);
    let p = &report["persistence"];
    assert_eq!(p["backend"], "sqlite");
    assert_eq!(p["writable"], true);
    assert_eq!(p["journal_mode"], "wal");
    assert!(p["schema_version"].as_i64().unwrap() >= 1);
    assert_eq!(p["async_jobs_enabled"], true);
    assert!(
        home.db_path().exists(),
        "doctor opens and migrates the store"
    );
    let actions = report["next_actions"].to_string();
    for key in KEYS {
        let cli = &report["providers"][key];
        assert_eq!(cli["installed"], false, "{key}");
        assert_eq!(cli["path"], Value::Null);
        assert_eq!(cli["ready"], false);
        assert_eq!(cli["version_status"], "unknown");
        let install = cli["install"].as_str().unwrap();
        assert!(
            install.contains("npm install -g") || install.contains("uv tool install"),
            "{install}"
        );
        assert!(actions.contains(install), "{actions} lacks {install}");
    }
    let failing: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["providers"]);
}

#[tokio::test]
async fn a_logged_in_claude_makes_it_ok_and_env_secrets_are_never_printed() {
    let mut home = TestHome::new();
    install_fake_cli(&home, "claude");
    install_fake_cli(&home, "codex");
    install_fake_cli(&home, "grok");
    home.set_env(knob::CASE, "auth-status-apikey");
    home.set_env("CODEX_API_KEY", "sk-codex-very-secret-1234");
    let (report, code, stdout) = doctor_json(&home).await;
    assert_shape(&report);
    assert_eq!(report["ok"], true, "{stdout}");
    assert_eq!(code, 0);

    let claude = &report["providers"]["claude"];
    assert_eq!(claude["installed"], true);
    assert_eq!(
        claude["version"], "2.1.329 (Claude Code)",
        "the raw --version output"
    );
    assert_eq!(claude["tested_version"], "2.1.329");
    assert_eq!(claude["version_status"], "tested");
    assert_eq!(claude["auth"]["status"], "authenticated");
    assert_eq!(claude["auth"]["method"], "api_key");
    assert_eq!(claude["ready"], true);
    assert!(
        claude["path"]
            .as_str()
            .unwrap()
            .starts_with(&home.bin_dir().display().to_string())
    );

    let codex = &report["providers"]["codex"];
    assert_eq!(codex["version"], "codex-cli 0.169.0");
    assert_eq!(codex["auth"]["method"], "env:CODEX_API_KEY");
    assert_eq!(codex["ready"], true);
    assert!(!stdout.contains("sk-codex-very-secret"), "a secret leaked");

    // grok: installed, but no key and no auth.json.
    let grok = &report["providers"]["grok"];
    assert_eq!(grok["auth"]["status"], "not_authenticated");
    assert_eq!(grok["ready"], false);
    assert!(
        report["next_actions"].to_string().contains("grok login"),
        "{}",
        report["next_actions"]
    );
    assert!(
        report["next_actions"]
            .to_string()
            .contains("print-client-config")
    );
}

#[tokio::test]
async fn credential_files_count_as_a_login_and_are_named_by_path() {
    let home = TestHome::new();
    install_fake_cli(&home, "grok");
    install_fake_cli(&home, "vibe");
    install_fake_cli(&home, "gemini");
    let h = home.home_dir();
    std::fs::create_dir_all(h.join(".grok")).unwrap();
    std::fs::write(
        h.join(".grok/auth.json"),
        "{\"token\":\"xai-secret-token\"}",
    )
    .unwrap();
    std::fs::create_dir_all(h.join(".vibe")).unwrap();
    std::fs::write(h.join(".vibe/.env"), "MISTRAL_API_KEY=mistral-secret-key\n").unwrap();
    std::fs::create_dir_all(h.join(".gemini")).unwrap();
    std::fs::write(h.join(".gemini/oauth_creds.json"), "{}").unwrap();
    let (report, code, stdout) = doctor_json(&home).await;
    assert_eq!(code, 0, "{stdout}");
    for key in ["grok", "mistral", "gemini"] {
        let cli = &report["providers"][key];
        assert_eq!(cli["auth"]["status"], "authenticated", "{key}: {cli}");
        assert!(cli["auth"]["method"].as_str().unwrap().starts_with("file:"));
        assert_eq!(cli["ready"], true, "{key}");
    }
    assert_eq!(report["providers"]["grok"]["version_status"], "tested");
    assert!(!stdout.contains("xai-secret-token"));
    assert!(!stdout.contains("mistral-secret-key"));
}

#[tokio::test]
async fn a_logged_out_claude_is_not_ready_and_the_fix_is_the_login_command() {
    let mut home = TestHome::new();
    install_fake_cli(&home, "claude");
    home.set_env(knob::CASE, "auth-status-none");
    let (report, code, _) = doctor_json(&home).await;
    let claude = &report["providers"]["claude"];
    assert_eq!(claude["auth"]["status"], "not_authenticated");
    assert_eq!(claude["auth"]["method"], Value::Null);
    assert_eq!(claude["ready"], false);
    assert_eq!(code, 1);
    assert!(
        report["next_actions"]
            .to_string()
            .contains("claude auth login")
    );
}

#[tokio::test]
async fn a_hanging_cli_is_killed_after_5_s_and_doctor_ends_within_10_s() {
    let mut home = TestHome::new();
    install_fake_cli(&home, "claude");
    home.set_env(knob::CASE, "auth-status-apikey");
    // Hangs on `--version` (the fake never does): a tiny script of our own.
    for name in ["gemini", "vibe"] {
        let path = home.bin_dir().join(name);
        std::fs::write(&path, "#!/bin/sh\nsleep 60\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let started = Instant::now();
    let (report, code, _) = doctor_json(&home).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "doctor took {took:?}");
    assert!(
        took >= Duration::from_secs(4),
        "the probe was not waited for: {took:?}"
    );
    assert_eq!(code, 0, "claude is ready");
    for key in ["gemini", "mistral"] {
        let cli = &report["providers"][key];
        assert_eq!(cli["installed"], true);
        assert_eq!(cli["version"], Value::Null);
        assert_eq!(cli["version_status"], "unknown");
        assert_eq!(cli["ready"], false);
        assert!(
            cli["notes"]
                .to_string()
                .contains("did not answer within 5 s"),
            "{cli}"
        );
    }
}

#[tokio::test]
async fn an_invalid_config_is_reported_not_crashed_on() {
    let home = TestHome::with_config("[limits]\nmax_running_jobs = 0\n");
    let (report, code, _) = doctor_json(&home).await;
    assert_shape(&report);
    assert_eq!(report["config"]["loaded"], false);
    let errors = report["config"]["errors"].to_string();
    assert!(
        errors.contains("config.toml:2: limits.max_running_jobs"),
        "{errors}"
    );
    assert_eq!(report["ok"], false);
    assert_eq!(code, 1);
    assert!(report["checks"].to_string().contains("\"fail\""));
}

#[tokio::test]
async fn backend_none_reports_no_async_jobs() {
    let home = TestHome::with_config("[persistence]\nbackend = \"none\"\n");
    let (report, _, _) = doctor_json(&home).await;
    assert_eq!(report["persistence"]["backend"], "none");
    assert_eq!(report["persistence"]["path"], Value::Null);
    assert_eq!(report["persistence"]["async_jobs_enabled"], false);
    assert!(report["checks"].to_string().contains("async_jobs"));
}

#[tokio::test]
async fn the_human_report_has_no_colour_off_a_terminal() {
    let mut home = TestHome::new();
    install_fake_cli(&home, "claude");
    home.set_env(knob::CASE, "auth-status-apikey");
    let out = home.run(["doctor"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "ANSI escapes off a terminal:\n{text}"
    );
    assert!(text.contains("checks:"), "{text}");
    assert!(text.contains("next:"), "{text}");
    assert!(text.contains("claude"), "{text}");
    assert!(text.contains("npm install -g @openai/codex"), "{text}");
}
