//! The executor's PATH lookup (`exec::resolve_program`, `exec::install_dirs`) over made-up
//! PATHs and homes in temp dirs.
//!
//! Owns: search order, what counts as a program, and the `NotFound` report. Not here:
//! running anything (exec_process.rs).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use llm_cli_gateway::exec::{NotFound, install_dirs, resolve_program, search_dirs};

fn executable(dir: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn path_env(dirs: &[&Path]) -> OsString {
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn path_comes_first_in_its_own_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, extra) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("x"),
    );
    executable(&b, "claude");
    let in_a = executable(&a, "claude");
    executable(&extra, "claude");
    let path = path_env(&[&a, &b]);
    assert_eq!(
        resolve_program("claude", Some(&path), std::slice::from_ref(&extra)),
        Ok(in_a)
    );
}

#[test]
fn install_dirs_are_searched_after_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (on_path, extra) = (tmp.path().join("bin"), tmp.path().join("npm"));
    fs::create_dir_all(&on_path).unwrap();
    let in_extra = executable(&extra, "codex");
    let path = path_env(&[&on_path]);
    assert_eq!(
        resolve_program("codex", Some(&path), std::slice::from_ref(&extra)),
        Ok(in_extra.clone())
    );
    // No PATH at all still searches the install dirs.
    assert_eq!(
        resolve_program("codex", None, std::slice::from_ref(&extra)),
        Ok(in_extra)
    );
}

#[test]
fn non_executables_and_directories_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("gemini"), "not executable").unwrap();
    fs::create_dir_all(b.join("gemini")).unwrap();
    let found = executable(&c, "gemini");
    let path = path_env(&[&a, &b, &c]);
    assert_eq!(resolve_program("gemini", Some(&path), &[]), Ok(found));
}

#[test]
fn not_found_lists_the_dirs_searched_in_order_without_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // An empty and a relative entry mean the cwd: never searched.
    let mut path = path_env(&[&a, &b]);
    path.push("::relative/bin");
    let err = resolve_program(
        "grok",
        Some(&path),
        &[b.clone(), PathBuf::from("/usr/local/bin")],
    )
    .unwrap_err();
    assert_eq!(
        err,
        NotFound {
            program: "grok".into(),
            searched: vec![a.clone(), b.clone(), PathBuf::from("/usr/local/bin")],
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`grok` was not found in: {}:{}:/usr/local/bin",
            a.display(),
            b.display()
        )
    );
    assert_eq!(
        search_dirs(Some(&path), std::slice::from_ref(&b)),
        vec![a.clone(), b.clone()]
    );
}

#[test]
fn a_name_with_a_slash_is_checked_as_a_path() {
    let tmp = tempfile::tempdir().unwrap();
    let vibe = executable(tmp.path(), "vibe");
    let as_str = vibe.to_str().unwrap();
    // PATH is not consulted for a path.
    assert_eq!(resolve_program(as_str, None, &[]), Ok(vibe.clone()));
    let missing = tmp.path().join("missing");
    let err = resolve_program(missing.to_str().unwrap(), None, &[tmp.path().into()]).unwrap_err();
    assert!(err.searched.is_empty());
    assert_eq!(
        err.to_string(),
        format!("`{}` is not an executable file", missing.display())
    );
}

#[test]
fn an_empty_name_is_never_found() {
    let tmp = tempfile::tempdir().unwrap();
    executable(tmp.path(), "x");
    assert!(resolve_program("", None, &[tmp.path().into()]).is_err());
}

#[test]
fn install_dirs_order_with_nvm_newest_first() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for version in ["v18.20.4", "v22.3.0", "v22.10.1", "system"] {
        fs::create_dir_all(h.join(".nvm/versions/node").join(version).join("bin")).unwrap();
    }
    // A stray file in the versions dir is not a node install.
    fs::write(h.join(".nvm/versions/node/README"), "").unwrap();
    let node = |v: &str| h.join(".nvm/versions/node").join(v).join("bin");
    assert_eq!(
        install_dirs(Some(h)),
        vec![
            h.join(".local/bin"),
            h.join(".npm-global/bin"),
            PathBuf::from("/usr/local/bin"),
            h.join(".cargo/bin"),
            h.join(".bun/bin"),
            node("v22.10.1"),
            node("v22.3.0"),
            node("v18.20.4"),
            node("system"),
        ]
    );
    assert_eq!(install_dirs(None), vec![PathBuf::from("/usr/local/bin")]);
}

#[test]
fn a_program_in_an_nvm_dir_is_found() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".nvm/versions/node/v20.1.0/bin");
    let claude = executable(&bin, "claude");
    let empty = tempfile::tempdir().unwrap();
    let path = path_env(&[empty.path()]);
    assert_eq!(
        resolve_program("claude", Some(&path), &install_dirs(Some(home.path()))),
        Ok(claude)
    );
}
