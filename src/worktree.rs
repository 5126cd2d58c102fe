//! Gateway worktrees (policy.md "Gateway worktrees"): a request with `worktree: true |
//! {name?, ref?}` runs in `<repo>/.worktrees/<name>` on a new branch `gateway/<name>`.
//!
//! Owns: finding the repository of a `workingDir`, creating, reusing and removing
//! worktrees, the clean check that decides removal, and the hardened way every git command
//! runs — argv only (never a shell), no hooks (`core.hooksPath=/dev/null`), no fsmonitor,
//! no system or user config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`), no
//! inherited `GIT_*` variables, no pager, no prompts, stdin closed, 10 s per command.
//!
//! A worktree bound to a gateway session records the session id in its git admin dir
//! (`<repo>/.git/worktrees/<name>/gateway-session`, outside the checkout), so a later
//! request of that session reuses it and another caller's same name is a collision.
//! Removal happens only when the worktree is clean: no uncommitted, untracked or ignored
//! files, and neither `HEAD` nor its branch moved from the commit it was created at.
//! Otherwise it is kept and reported: an agent's work is never deleted.
//!
//! Not here: the name rules (checked with the request in `providers::request`), when a
//! worktree is created or finished (`jobs::admission`, `jobs::runner`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The longest one git command may run.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where worktrees live inside a repository.
pub const WORKTREES_DIR: &str = ".worktrees";

/// The warning a job carries when its worktree was kept because it holds work.
pub const WORKTREE_KEPT: &str = "worktree_kept";

/// The file in a worktree's git admin dir naming the gateway session it is bound to.
const SESSION_MARKER: &str = "gateway-session";

/// Why a worktree could not be prepared. `InvalidInput` is the caller's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorktreeError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("git failed: {0}")]
    Git(String),
}

/// A worktree a run uses: where it is, its branch, and the commit it started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    /// The main repository's top-level directory.
    pub repo: PathBuf,
    pub name: String,
    /// `<repo>/.worktrees/<name>`.
    pub path: PathBuf,
    /// `gateway/<name>`.
    pub branch: String,
    /// The commit `ref` resolved to when the worktree was created.
    pub base: String,
    /// The gateway session it is bound to (then it lasts as long as the session).
    pub session: Option<String>,
    /// This request created it (a reused worktree is not this request's to remove).
    pub created: bool,
}

/// What became of a worktree at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Removed,
    /// Bound to a gateway session: it stays for the session's next request.
    KeptForSession,
    /// It holds work (the reason says what); path and branch are kept.
    KeptWithWork(String),
}

/// A fresh default name: 12 random hex digits.
pub fn random_name() -> String {
    let simple = uuid::Uuid::now_v7().simple().to_string();
    simple[simple.len() - 12..].to_string()
}

/// The default name of a session's worktree: stable for the session, so later requests
/// with `worktree: true` find it again.
pub fn session_name(session_id: &str) -> String {
    let hex: String = session_id.chars().filter(char::is_ascii_hexdigit).collect();
    format!("gw-{}", &hex[hex.len().saturating_sub(12)..])
}

/// A git command with the hardening of the module doc, run in `dir`.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("PAGER", "cat")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        .env("LC_ALL", "C")
        .args([
            "--no-pager",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "advice.detachedHead=false",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs hardened git with `args` in `dir`, bounded by [`GIT_TIMEOUT`]; its trimmed stdout,
/// or its stderr as the error.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, WorktreeError> {
    let mut child = git_command(dir)
        .args(args)
        .spawn()
        .map_err(|e| WorktreeError::Git(format!("cannot run git: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= GIT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorktreeError::Git(format!(
                    "git {} took longer than {} s",
                    args.first().unwrap_or(&""),
                    GIT_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(WorktreeError::Git(format!("cannot wait for git: {e}"))),
        }
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if status.success() {
        Ok(stdout.trim_end().to_string())
    } else {
        Err(WorktreeError::Git(format!(
            "git {}: {}",
            args.join(" "),
            stderr.trim()
        )))
    }
}

/// The main repository containing `dir` (also when `dir` is inside one of its linked
/// worktrees) and its common git dir.
pub fn find_repo(dir: &Path) -> Result<(PathBuf, PathBuf), WorktreeError> {
    let common = git(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .map_err(|_| {
        WorktreeError::InvalidInput(format!(
            "Invalid worktree: workingDir {} is not inside a git repository",
            dir.display()
        ))
    })?;
    let common = PathBuf::from(common);
    match (common.file_name(), common.parent()) {
        (Some(name), Some(repo)) if name == ".git" => Ok((repo.to_path_buf(), common.clone())),
        _ => Err(WorktreeError::InvalidInput(format!(
            "Invalid worktree: {} is a bare repository or uses a separate git dir; gateway worktrees need a normal checkout",
            common.display()
        ))),
    }
}

/// Creates (or, for the same gateway session, reuses) the worktree `name` of the
/// repository containing `working_dir`, on `gateway/<name>` from `git_ref` (default
/// `HEAD`). A name in use by someone else is an `InvalidInput` collision.
pub fn prepare(
    working_dir: &Path,
    name: Option<&str>,
    git_ref: Option<&str>,
    session: Option<&str>,
) -> Result<Worktree, WorktreeError> {
    let (repo, common) = find_repo(working_dir)?;
    let name = match (name, session) {
        (Some(name), _) => name.to_string(),
        (None, Some(session)) => session_name(session),
        (None, None) => random_name(),
    };
    let path = repo.join(WORKTREES_DIR).join(&name);
    let branch = format!("gateway/{name}");
    let admin = common.join("worktrees").join(&name);
    if path.exists() || admin.exists() {
        if let Some(session) = session
            && let Some(base) = bound_base(&admin, session)
            && path.is_dir()
        {
            return Ok(Worktree {
                repo,
                name,
                path,
                branch,
                base,
                session: Some(session.to_string()),
                created: false,
            });
        }
        return Err(WorktreeError::InvalidInput(format!(
            "Invalid worktree.name: \"{name}\" is already in use at {} (another agent's worktree)",
            path.display()
        )));
    }
    if git(
        &repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok()
    {
        return Err(WorktreeError::InvalidInput(format!(
            "Invalid worktree.name: the branch {branch} already exists in {}",
            repo.display()
        )));
    }
    let git_ref = git_ref.unwrap_or("HEAD");
    let base = git(
        &repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{git_ref}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        WorktreeError::InvalidInput(format!(
            "Invalid worktree.ref: \"{git_ref}\" is not a commit in {}",
            repo.display()
        ))
    })?;
    exclude_worktrees_dir(&common);
    let path_text = path.to_string_lossy().into_owned();
    if let Err(error) = git(
        &repo,
        &["worktree", "add", "-b", &branch, &path_text, &base],
    ) {
        // A parallel request that took the same name first is a collision, not a fault.
        return Err(if path.exists() {
            WorktreeError::InvalidInput(format!(
                "Invalid worktree.name: \"{name}\" was just taken at {}",
                path.display()
            ))
        } else {
            error
        });
    }
    if let Some(session) = session {
        let _ = std::fs::write(admin.join(SESSION_MARKER), format!("{session}\n{base}\n"));
    }
    Ok(Worktree {
        repo,
        name,
        path,
        branch,
        base,
        session: session.map(str::to_string),
        created: true,
    })
}

/// The base commit recorded for `session` in a worktree's admin dir, when it is bound to
/// that session (the marker holds the session id, then the base commit).
fn bound_base(admin: &Path, session: &str) -> Option<String> {
    let marker = std::fs::read_to_string(admin.join(SESSION_MARKER)).ok()?;
    let mut lines = marker.lines();
    (lines.next()? == session).then(|| lines.next().map(str::to_string))?
}

/// The gateway worktree at `cwd` bound to `session`, if `cwd` is one.
pub fn bound_to_session(cwd: &Path, session: &str) -> Option<Worktree> {
    if !cwd.is_dir() {
        return None;
    }
    let (repo, common) = find_repo(cwd).ok()?;
    let name = cwd.file_name()?.to_string_lossy().into_owned();
    let path = repo.join(WORKTREES_DIR).join(&name);
    if cwd.canonicalize().ok()? != path.canonicalize().ok()? {
        return None;
    }
    let base = bound_base(&common.join("worktrees").join(&name), session)?;
    Some(Worktree {
        repo,
        branch: format!("gateway/{name}"),
        name,
        path,
        base,
        session: Some(session.to_string()),
        created: false,
    })
}

/// A deleted session's worktree (its recorded cwd, when that is a gateway worktree bound
/// to it): removed when clean, else kept. `None` when the session had none.
pub fn release_session(cwd: &Path, session: &str) -> Option<(Worktree, Finish)> {
    let wt = bound_to_session(cwd, session)?;
    let finish = remove_if_clean(&wt);
    Some((wt, finish))
}

/// Adds `/.worktrees/` to the repository's `info/exclude` (never a tracked file), so the
/// main checkout does not show the worktrees as untracked.
fn exclude_worktrees_dir(common: &Path) {
    let exclude = common.join("info").join("exclude");
    let line = format!("/{WORKTREES_DIR}/");
    let existing = std::fs::read_to_string(&exclude).unwrap_or_default();
    if existing.lines().any(|l| l.trim() == line) {
        return;
    }
    let _ = std::fs::create_dir_all(common.join("info"));
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    let _ = std::fs::write(&exclude, text);
}

/// Why `wt` holds work, or `None` when it is clean (nothing uncommitted, untracked or
/// ignored; `HEAD` and the branch still at the base commit). Errors count as work.
pub fn work_in(wt: &Worktree) -> Option<String> {
    let check = || -> Result<Option<String>, WorktreeError> {
        let status = git(
            &wt.path,
            &[
                "status",
                "--porcelain",
                "--untracked-files=all",
                "--ignored",
            ],
        )?;
        if !status.is_empty() {
            return Ok(Some("it has uncommitted or untracked files".into()));
        }
        let head = git(&wt.path, &["rev-parse", "HEAD"])?;
        let tip = git(
            &wt.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{}", wt.branch),
            ],
        )?;
        if head != wt.base || tip != wt.base {
            return Ok(Some(format!("{} has commits beyond its base", wt.branch)));
        }
        Ok(None)
    };
    check().unwrap_or_else(|e| Some(format!("its state could not be checked ({e})")))
}

/// Removes `wt` and its branch if it is clean; never forces.
pub fn remove_if_clean(wt: &Worktree) -> Finish {
    if !wt.path.is_dir() {
        return Finish::Removed;
    }
    if let Some(reason) = work_in(wt) {
        return Finish::KeptWithWork(reason);
    }
    let path = wt.path.to_string_lossy().into_owned();
    if let Err(e) = git(&wt.repo, &["worktree", "remove", &path]) {
        return Finish::KeptWithWork(format!("git refused to remove it ({e})"));
    }
    // The branch points at the base commit, which existed before: deleting it loses nothing.
    let _ = git(&wt.repo, &["branch", "-D", &wt.branch]);
    Finish::Removed
}

/// The end of a run in `wt`: a session's worktree stays; any other is removed when clean.
pub fn finish(wt: &Worktree) -> Finish {
    if wt.session.is_some() {
        return Finish::KeptForSession;
    }
    remove_if_clean(wt)
}

/// The `worktree_kept` warning text for a worktree kept with work in it.
pub fn kept_message(wt: &Worktree, reason: &str) -> String {
    format!(
        "The worktree {} (branch {}) was kept because {reason}; remove it with `git worktree remove` once its work is merged",
        wt.path.display(),
        wt.branch
    )
}

/// Removes a worktree this request created when admission fails (or attaches to an
/// identical earlier job) after creating it — and only if it is still clean.
pub struct CreatedGuard(Option<Worktree>);

impl CreatedGuard {
    pub fn new(wt: &Worktree) -> CreatedGuard {
        CreatedGuard(wt.created.then(|| wt.clone()))
    }

    /// The job owns the worktree now.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedGuard {
    fn drop(&mut self) {
        if let Some(wt) = self.0.take() {
            let _ = remove_if_clean(&wt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_and_session_names_stable() {
        let n = random_name();
        assert_eq!(n.len(), 12);
        assert!(n.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(random_name(), random_name());
        let id = "gw-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(session_name(id), "gw-0c1d2e3f4a5b");
        assert_eq!(session_name(id), session_name(id));
    }

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]).unwrap();
        std::fs::write(repo.join("f"), "1").unwrap();
        git(&repo, &["add", "f"]).unwrap();
        git(
            &repo,
            &[
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@e",
                "commit",
                "-qm",
                "c",
            ],
        )
        .unwrap();
        let repo = repo.canonicalize().unwrap();
        (dir, repo)
    }

    #[test]
    fn prepare_reuse_collision_and_clean_removal() {
        let (_dir, repo) = repo();
        let wt = prepare(&repo, Some("a"), None, Some("gw-s1")).unwrap();
        assert!(wt.created && wt.path.ends_with(".worktrees/a"));
        // The same session reuses it, from the worktree itself too; anyone else collides.
        let again = prepare(&wt.path, Some("a"), None, Some("gw-s1")).unwrap();
        assert!(!again.created);
        assert_eq!(again.path, wt.path);
        for session in [None, Some("gw-other")] {
            assert!(matches!(
                prepare(&repo, Some("a"), None, session),
                Err(WorktreeError::InvalidInput(_))
            ));
        }
        assert_eq!(finish(&wt), Finish::KeptForSession);
        assert_eq!(bound_to_session(&wt.path, "gw-s1").unwrap().base, wt.base);
        assert!(bound_to_session(&wt.path, "gw-other").is_none());
        assert!(bound_to_session(&repo, "gw-s1").is_none());
        std::fs::write(wt.path.join("new"), "work").unwrap();
        assert!(matches!(remove_if_clean(&wt), Finish::KeptWithWork(_)));
        std::fs::remove_file(wt.path.join("new")).unwrap();
        assert_eq!(remove_if_clean(&wt), Finish::Removed);
        assert!(!wt.path.exists());
        assert_eq!(git(&repo, &["branch", "--list", "gateway/*"]).unwrap(), "");
    }

    #[test]
    fn not_a_repository_is_invalid_input() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            prepare(dir.path(), None, None, None),
            Err(WorktreeError::InvalidInput(m)) if m.contains("not inside a git repository")
        ));
    }

    #[test]
    fn git_runs_hardened() {
        let cmd = git_command(Path::new("/"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"core.hooksPath=/dev/null".to_string()));
        assert!(args.contains(&"core.fsmonitor=false".to_string()));
        let envs: Vec<_> = cmd
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        for (k, v) in [
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("GIT_TERMINAL_PROMPT", "0"),
        ] {
            assert!(envs.contains(&(k.to_string(), v.to_string())), "{k}");
        }
        assert_eq!(cmd.get_program(), "git");
    }
}
