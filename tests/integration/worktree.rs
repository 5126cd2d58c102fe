//! Gateway worktrees through the real binary with the fake CLIs and a real temporary git
//! repository (issue 5 items 4 and 7): created under `<repo>/.worktrees/` on
//! `gateway/<name>` without running the repository's hooks, the CLI runs there and the
//! answer is prefixed `[gateway] worktree=<path>`; removed at the end only when clean —
//! uncommitted files or new commits keep it (warning `worktree_kept`); bound to a gateway
//! session and reused; bad names, a name in use and a `workingDir` outside a repository
//! are `invalid_input` before any job.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fake_cli::{self, knob};
use common::{Client, TestHome, WAIT, call, err, ok, text_of};
use serde_json::{Value, json};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=Test", "-c", "user.email=t@example.com"])
        // The test's own git must not trip the fsmonitor planted below.
        .args(["-c", "core.fsmonitor=false"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with one commit and a post-checkout hook that would leave a marker.
fn repo(home: &TestHome) -> PathBuf {
    let repo = home.root().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let hook = repo.join(".git/hooks/post-checkout");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ntouch {}\n",
            home.root().join("HOOK_RAN").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Repository and user config that would run programs: the gateway's git ignores both.
    let script = |marker: &str| {
        let path = home.root().join(format!("{marker}.sh"));
        std::fs::write(
            &path,
            format!("#!/bin/sh\ntouch {}\n", home.root().join(marker).display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path.display().to_string()
    };
    git(
        &repo,
        &["config", "core.fsmonitor", &script("LOCAL_FSMONITOR_RAN")],
    );
    std::fs::write(
        home.home_dir().join(".gitconfig"),
        format!(
            "[core]\n\thooksPath = {}\n\tfsmonitor = {}\n",
            home.root().join("user-hooks").display(),
            script("USER_FSMONITOR_RAN")
        ),
    )
    .unwrap();
    repo.canonicalize().unwrap()
}

/// No hook or fsmonitor program ran.
fn assert_nothing_ran(home: &TestHome) {
    for marker in ["HOOK_RAN", "LOCAL_FSMONITOR_RAN", "USER_FSMONITOR_RAN"] {
        assert!(!home.root().join(marker).exists(), "git ran {marker}");
    }
}

fn start(knobs: &[(&str, &str)]) -> (TestHome, PathBuf, PathBuf) {
    start_with("", knobs)
}

fn start_with(config: &str, knobs: &[(&str, &str)]) -> (TestHome, PathBuf, PathBuf) {
    let mut home = TestHome::with_config(config);
    fake_cli::install_all(&home);
    let records = fake_cli::record_into(&mut home);
    for (k, v) in knobs {
        home.set_env(k, v);
    }
    let repo = repo(&home);
    (home, records, repo)
}

fn codes(s: &Value) -> Vec<String> {
    s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

fn branches(repo: &Path) -> String {
    git(repo, &["branch", "--list", "gateway/*"])
}

fn jobs(home: &TestHome) -> i64 {
    rusqlite::Connection::open(home.db_path())
        .unwrap()
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap()
}

/// Runs a sync request while `during` acts on the worktree once the fake CLI started.
async fn call_during(
    client: &Client,
    records: &Path,
    args: Value,
    during: impl FnOnce(&Path),
) -> rmcp::model::CallToolResult {
    let before = fake_cli::recordings(records).len();
    let request = call(client, "claude_request", args);
    let act = async {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(run) = fake_cli::recordings(records).get(before) {
                during(Path::new(&run.cwd));
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the fake never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (result, ()) = tokio::join!(request, act);
    result
}

#[tokio::test]
async fn a_clean_worktree_is_created_without_hooks_used_and_removed() {
    let (home, records, repo) = start(&[]);
    let client = home.connect().await;
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": true}),
    )
    .await;
    let text = text_of(&result);
    let s = ok(result);
    let path = s["worktree"]["path"].as_str().unwrap().to_string();
    let name = s["worktree"]["name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 12, "a random 12-hex name: {name}");
    assert_eq!(
        path,
        repo.join(".worktrees").join(&name).display().to_string()
    );
    assert_eq!(s["worktree"]["branch"], format!("gateway/{name}"));
    assert!(
        text.starts_with(&format!("[gateway] worktree={path}\n")),
        "{text}"
    );
    let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
    assert_eq!(runs[0].cwd, path);
    assert!(!Path::new(&path).exists(), "a clean worktree is removed");
    assert_eq!(branches(&repo), "", "its branch is removed too");
    assert_nothing_ran(&home);
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "main checkout untouched"
    );
    assert!(!codes(&s).contains(&"worktree_kept".to_string()));

    // From a ref.
    let first = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second"]);
    let s = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "from-v1", "ref": "v1"}}),
    )
    .await);
    assert_eq!(s["worktree"]["branch"], "gateway/from-v1");
    let runs = fake_cli::wait_for_recordings(&records, 2, WAIT);
    assert!(runs[1].cwd.ends_with("/.worktrees/from-v1"));
    assert_ne!(first, git(&repo, &["rev-parse", "HEAD"]));
    assert_eq!(branches(&repo), "");
}

#[tokio::test]
async fn uncommitted_files_or_new_commits_keep_the_worktree() {
    let (home, records, repo) = start(&[(knob::DELAY_MS, "700")]);
    let client = home.connect().await;
    let result = call_during(
        &client,
        &records,
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "dirty"}}),
        |wt| std::fs::write(wt.join("work.txt"), "precious").unwrap(),
    )
    .await;
    let s = ok(result);
    assert!(codes(&s).contains(&"worktree_kept".to_string()), "{s}");
    let kept = repo.join(".worktrees/dirty");
    let message = s["warnings"].to_string();
    assert!(message.contains(&kept.display().to_string()) && message.contains("gateway/dirty"));
    assert_eq!(
        std::fs::read_to_string(kept.join("work.txt")).unwrap(),
        "precious"
    );
    assert!(branches(&repo).contains("gateway/dirty"));

    let result = call_during(
        &client,
        &records,
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "committed"}}),
        |wt| {
            std::fs::write(wt.join("feature.txt"), "new").unwrap();
            git(wt, &["add", "feature.txt"]);
            git(wt, &["commit", "-q", "-m", "agent work"]);
        },
    )
    .await;
    let s = ok(result);
    assert!(codes(&s).contains(&"worktree_kept".to_string()), "{s}");
    assert!(repo.join(".worktrees/committed/feature.txt").exists());
    assert_nothing_ran(&home);
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%s", "gateway/committed"]),
        "agent work"
    );
}

#[tokio::test]
async fn bad_names_collisions_and_non_repositories_fail_before_any_job() {
    let (home, records, repo) = start(&[]);
    let client = home.connect().await;
    for name in ["../evil", "-x", ".hidden", "a/b", "a..b", &"x".repeat(65)] {
        let result = call(
            &client,
            "claude_request",
            json!({"prompt": "p", "workingDir": repo, "worktree": {"name": name}}),
        )
        .await;
        let structured = result.structured_content.clone().unwrap();
        err(result);
        assert_eq!(structured["errorCategory"], "invalid_input", "{name}");
    }

    // A name in use: an existing worktree dir, or an existing branch.
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "gateway/taken",
            ".worktrees/taken",
        ],
    );
    git(&repo, &["branch", "gateway/branch-only"]);
    for name in ["taken", "branch-only"] {
        let result = call(
            &client,
            "claude_request",
            json!({"prompt": "p", "workingDir": repo, "worktree": {"name": name}}),
        )
        .await;
        let structured = result.structured_content.clone().unwrap();
        let text = err(result);
        assert_eq!(
            structured["errorCategory"], "invalid_input",
            "{name}: {text}"
        );
        assert!(text.contains(name), "{text}");
    }
    // An unknown ref.
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": {"ref": "no-such-ref"}}),
    )
    .await;
    assert!(err(result).contains("no-such-ref"));

    let plain = home.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": plain, "worktree": true}),
    )
    .await;
    let structured = result.structured_content.clone().unwrap();
    let text = err(result);
    assert_eq!(structured["errorCategory"], "invalid_input");
    assert!(text.contains("not inside a git repository"), "{text}");

    assert_eq!(jobs(&home), 0, "no job was admitted");
    assert!(fake_cli::recordings(&records).is_empty());
    assert!(
        repo.join(".worktrees/taken").is_dir(),
        "the other worktree is untouched"
    );
}

#[tokio::test]
async fn a_session_binds_and_reuses_its_worktree() {
    let (home, records, repo) = start(&[]);
    let client = home.connect().await;
    ok(call(&client, "session_create", json!({"cli": "claude"})).await);
    let first = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "one", "workingDir": repo, "worktree": true}),
    )
    .await);
    let path = first["worktree"]["path"].as_str().unwrap().to_string();
    assert!(
        first["worktree"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gw-")
    );
    assert!(Path::new(&path).is_dir(), "a session's worktree stays");
    // The next request of the session (its recorded cwd is the worktree) reuses it.
    let second = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "two", "worktree": true}),
    )
    .await);
    assert_eq!(second["worktree"]["path"], path.as_str());
    let runs = fake_cli::wait_for_recordings(&records, 2, WAIT);
    assert_eq!(
        (runs[0].cwd.as_str(), runs[1].cwd.as_str()),
        (path.as_str(), path.as_str())
    );
    assert_eq!(
        git(&repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
}

#[tokio::test]
async fn the_supervisor_removes_a_clean_worktree_and_keeps_a_dirty_one() {
    let (home, records, repo) = start_with(
        "[jobs]\nrunner = \"supervisor\"\n",
        &[(knob::DELAY_MS, "500")],
    );
    let client = home.connect().await;
    let s = ok(call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "clean"}}),
    )
    .await);
    assert!(!repo.join(".worktrees/clean").exists(), "{s}");
    let s = ok(call_during(
        &client,
        &records,
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "dirty"}}),
        |wt| std::fs::write(wt.join("wip.txt"), "x").unwrap(),
    )
    .await);
    assert!(codes(&s).contains(&"worktree_kept".to_string()), "{s}");
    assert!(repo.join(".worktrees/dirty/wip.txt").exists());
}

#[tokio::test]
async fn deleting_a_session_removes_its_clean_worktree_and_keeps_a_dirty_one() {
    let (home, _records, repo) = start(&[]);
    let client = home.connect().await;
    let mut paths = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = ok(call(&client, "session_create", json!({"cli": "claude"})).await);
        ids.push(
            created["session"]["sessionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let s = ok(call(
            &client,
            "claude_request",
            json!({"prompt": "p", "workingDir": repo, "worktree": true}),
        )
        .await);
        paths.push(PathBuf::from(s["worktree"]["path"].as_str().unwrap()));
    }
    assert_ne!(paths[0], paths[1]);
    std::fs::write(paths[1].join("wip.txt"), "work").unwrap();

    let clean = ok(call(&client, "session_delete", json!({"sessionId": ids[0]})).await);
    assert_eq!(clean["worktree"]["removed"], true, "{clean}");
    assert!(!paths[0].exists());

    let dirty = ok(call(&client, "session_delete", json!({"sessionId": ids[1]})).await);
    assert_eq!(dirty["worktree"]["removed"], false, "{dirty}");
    assert!(
        dirty["worktree"]["reason"]
            .as_str()
            .unwrap()
            .contains("uncommitted")
    );
    assert!(paths[1].join("wip.txt").exists(), "work is never deleted");
}

#[tokio::test]
async fn deleting_a_session_whose_runs_all_failed_still_removes_its_worktree() {
    // A failed run does not record its cwd on the session; the job row has it.
    let (home, _records, repo) = start(&[(knob::EXIT, "1")]);
    let client = home.connect().await;
    let created = ok(call(&client, "session_create", json!({"cli": "claude"})).await);
    let id = created["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": true}),
    )
    .await;
    assert_eq!(failed.is_error, Some(true), "{failed:?}");
    let listed = ok(call(&client, "session_get", json!({"sessionId": id})).await);
    assert!(listed["session"]["cwd"].is_null(), "{listed}");
    let worktrees: Vec<PathBuf> = std::fs::read_dir(repo.join(".worktrees"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        worktrees.len(),
        1,
        "the session's worktree outlives a failed run"
    );
    let path = &worktrees[0];

    let deleted = ok(call(&client, "session_delete", json!({"sessionId": id})).await);
    assert_eq!(deleted["worktree"]["removed"], true, "{deleted}");
    assert!(!path.exists(), "removed with the session");
    assert!(branches(&repo).trim().is_empty(), "{}", branches(&repo));
}

#[tokio::test]
async fn a_request_rejected_after_the_worktree_was_made_leaves_none_behind() {
    let (home, records, repo) = start(&[]);
    let client = home.connect().await;
    // An unknown MCP server under strictMcpConfig is found when the invocation is built,
    // after the worktree exists: admission removes it again.
    let result = call(
        &client,
        "claude_request",
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "late"},
               "mcpServers": ["nope"], "strictMcpConfig": true}),
    )
    .await;
    let structured = result.structured_content.clone().unwrap();
    err(result);
    assert_eq!(structured["errorCategory"], "invalid_input");
    assert!(!repo.join(".worktrees/late").exists());
    assert_eq!(branches(&repo), "");
    assert_eq!(jobs(&home), 0);
    assert!(fake_cli::recordings(&records).is_empty());
}

#[tokio::test]
async fn an_async_start_names_its_worktree() {
    let (home, records, repo) = start(&[]);
    let client = home.connect().await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "claude_request_async")
        .unwrap()
        .clone();
    let result = call(
        &client,
        "claude_request_async",
        json!({"prompt": "p", "workingDir": repo, "worktree": {"name": "bg"}}),
    )
    .await;
    common::assert_matches_output_schema(&tool, &result);
    let s = ok(result);
    assert_eq!(s["worktree"]["branch"], "gateway/bg", "{s}");
    let runs = fake_cli::wait_for_recordings(&records, 1, WAIT);
    assert!(runs[0].cwd.ends_with("/.worktrees/bg"));
}
