//! PATH lookup done at admission, before any job row or process exists (jobs.md: a missing
//! binary is `not_installed`, naming the dirs searched).
//!
//! Owns: the search order (the user's PATH first, then the usual install dirs of npm, pip/uv,
//! cargo, bun and nvm, appended after it) and [`NotFound`]. [`resolve_program`] and
//! [`search_dirs`] read nothing but their arguments and the candidate files, so tests can
//! drive them with a made-up PATH and home. Not here: the install command (the provider's).

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A program that is not an executable file in any searched dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The name (or path) asked for.
    pub program: String,
    /// The dirs searched, in order; empty when `program` was a path.
    pub searched: Vec<PathBuf>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.searched.is_empty() {
            return write!(f, "`{}` is not an executable file", self.program);
        }
        write!(f, "`{}` was not found in: ", self.program)?;
        for (i, dir) in self.searched.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{}", dir.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for NotFound {}

/// The usual install dirs of these CLIs, in search order: `~/.local/bin` (pip, uv, the
/// claude installer), `~/.npm-global/bin`, `/usr/local/bin`, `~/.cargo/bin`, `~/.bun/bin`,
/// then every `~/.nvm/versions/node/*/bin`, newest node version first. Without a home only
/// `/usr/local/bin` remains.
pub fn install_dirs(home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = home {
        dirs.push(home.join(".local/bin"));
        dirs.push(home.join(".npm-global/bin"));
    }
    dirs.push(PathBuf::from("/usr/local/bin"));
    if let Some(home) = home {
        dirs.push(home.join(".cargo/bin"));
        dirs.push(home.join(".bun/bin"));
        dirs.extend(nvm_bin_dirs(home));
    }
    dirs
}

/// `~/.nvm/versions/node/<version>/bin`, newest version first (`v22.3.0` after `v22.10.1`,
/// compared numerically); names that are not versions come last, by name.
fn nvm_bin_dirs(home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(home.join(".nvm/versions/node")) else {
        return Vec::new();
    };
    let mut versions: Vec<(Option<Vec<u64>>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            let name = entry.file_name();
            let version = name.to_str().and_then(parse_version);
            (version, entry.path())
        })
        .collect();
    versions.sort_by(|(va, pa), (vb, pb)| match (va, vb) {
        (Some(a), Some(b)) => b.cmp(a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => pa.cmp(pb),
    });
    versions
        .into_iter()
        .map(|(_, dir)| dir.join("bin"))
        .collect()
}

fn parse_version(name: &str) -> Option<Vec<u64>> {
    name.strip_prefix('v')
        .unwrap_or(name)
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

/// The dirs [`resolve_program`] searches, in order: each absolute entry of `path_env`, then
/// `extra_dirs`, without repeats. Empty and relative PATH entries are skipped: they mean
/// "the current directory", and a gateway must not run whatever sits in a caller's cwd.
pub fn search_dirs(path_env: Option<&OsStr>, extra_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let from_path = path_env
        .map(|path| std::env::split_paths(path).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in from_path.into_iter().chain(extra_dirs.iter().cloned()) {
        if dir.is_absolute() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Finds `program`: a name containing `/` is checked as is; a bare name is looked up in
/// [`search_dirs`]`(path_env, extra_dirs)` and the first executable regular file wins.
pub fn resolve_program(
    program: &str,
    path_env: Option<&OsStr>,
    extra_dirs: &[PathBuf],
) -> Result<PathBuf, NotFound> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if is_executable_file(&path) {
            Ok(path)
        } else {
            Err(NotFound {
                program: program.to_string(),
                searched: Vec::new(),
            })
        };
    }
    let searched = search_dirs(path_env, extra_dirs);
    if !program.is_empty() {
        for dir in &searched {
            let candidate = dir.join(program);
            if is_executable_file(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(NotFound {
        program: program.to_string(),
        searched,
    })
}

/// [`resolve_program`] with this process's `PATH` and the [`install_dirs`] of its `HOME`.
pub fn resolve_program_from_env(program: &str) -> Result<PathBuf, NotFound> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from);
    let extra = install_dirs(home.as_deref());
    resolve_program(program, std::env::var_os("PATH").as_deref(), &extra)
}

/// A regular file (after following symlinks, as npm's bin links are) with an execute bit.
fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
