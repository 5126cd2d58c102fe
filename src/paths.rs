//! Where the gateway keeps its files, and the environment snapshot those answers come from.
//!
//! This module owns the locations of the data dir (`~/.llm-cli-gateway`, moved by
//! `LLM_GATEWAY_HOME`), the providers' stable scratch dirs inside it, `~` expansion and the
//! creation of private (0700) directories. It does not read config.toml (that is `config`)
//! and does not open the store. Everything that depends on environment variables takes an
//! [`Env`] snapshot instead of reading the process environment, so tests stay hermetic.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::providers::Provider;

/// The variable that moves the data dir.
pub const HOME_VAR: &str = "LLM_GATEWAY_HOME";

/// The data dir's name under the user's home directory when `LLM_GATEWAY_HOME` is not set.
pub const DEFAULT_DATA_DIR_NAME: &str = ".llm-cli-gateway";

/// An immutable snapshot of environment variables.
///
/// Configuration loading reads variables only through this type: production code takes one
/// snapshot at startup with [`Env::from_process`], tests build one with [`Env::from_pairs`]
/// and never touch the process environment (which is shared by every test thread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Snapshots the process environment. A name or value that is not UTF-8 is converted
    /// lossily rather than dropped, so a variable that is set is never silently missing.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )
            })
            .collect();
        Env { vars }
    }

    /// Builds a snapshot from explicit pairs (later pairs win on repeated names).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        Env { vars }
    }

    /// The value of a variable, exactly as set (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The user's home directory: `$HOME` when it is set to an absolute path, otherwise the
    /// home directory of the effective user in the password database (a client may start
    /// the server with a scrubbed environment).
    pub fn home_dir(&self) -> Option<PathBuf> {
        home_from(self.get("HOME"))
    }
}

/// The user's home directory from the process environment (`$HOME`, else the password
/// database). Code that resolves configuration uses [`Env::home_dir`] instead.
pub fn home_dir() -> Option<PathBuf> {
    let home = std::env::var("HOME").ok();
    home_from(home.as_deref())
}

fn home_from(home_var: Option<&str>) -> Option<PathBuf> {
    match home_var {
        Some(home) if Path::new(home).is_absolute() => Some(PathBuf::from(home)),
        _ => home_from_password_database(),
    }
}

#[cfg(unix)]
fn home_from_password_database() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;

    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero `passwd` is a valid value (null pointers, zero ids); it is only
    // read after getpwuid_r reports success.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned by this frame;
    // getpwuid_r writes the strings of `entry` into `buffer`, which outlives their use.
    let status = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: on success `pw_dir` points to a NUL-terminated string inside `buffer`.
    let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    dir.is_absolute().then(|| dir.to_path_buf())
}

#[cfg(not(unix))]
fn home_from_password_database() -> Option<PathBuf> {
    None
}

/// Expands a leading `~` (alone, or followed by `/`) to `home`. Other forms, such as
/// `~alice/x`, and every path when `home` is unknown are returned unchanged.
pub fn expand_tilde(raw: &str, home: Option<&Path>) -> PathBuf {
    match (raw, home) {
        ("~", Some(home)) => home.to_path_buf(),
        (_, Some(home)) if raw.starts_with("~/") => home.join(raw[2..].trim_start_matches('/')),
        _ => PathBuf::from(raw),
    }
}

/// The data dir: `LLM_GATEWAY_HOME` (with `~` expanded) when set and non-empty, else
/// `~/.llm-cli-gateway`. Without any known home directory the fallback is relative to the
/// working directory; `config::load` refuses a data dir that is not absolute.
pub fn default_data_dir(env: &Env) -> PathBuf {
    let home = env.home_dir();
    match env.get(HOME_VAR).map(str::trim) {
        Some(dir) if !dir.is_empty() => expand_tilde(dir, home.as_deref()),
        _ => match home {
            Some(home) => home.join(DEFAULT_DATA_DIR_NAME),
            None => PathBuf::from(DEFAULT_DATA_DIR_NAME),
        },
    }
}

/// Creates `dir` (and missing parents) and makes `dir` itself private to the user (0700 on
/// Unix). Parents that already exist keep their modes; parents created here get 0700 too
/// (subject to the umask), since they are usually the data dir itself.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask or an earlier run may have left the directory more open than 0700.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The stable scratch dir of one CLI, `<data dir>/work/<key>/`: the working directory of a
/// request that names none and has no session directory.
pub fn scratch_dir(data_dir: &Path, provider: Provider) -> PathBuf {
    data_dir.join("work").join(provider.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_snapshot_answers_from_its_pairs_only() {
        let env = Env::from_pairs([("A", "1"), ("B", ""), ("A", "2")]);
        assert_eq!(env.get("A"), Some("2"));
        assert_eq!(env.get("B"), Some(""));
        assert_eq!(env.get("PATH"), None);
    }

    #[test]
    fn home_dir_comes_from_home_when_absolute() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(env.home_dir(), Some(PathBuf::from("/home/u")));
    }

    #[test]
    fn tilde_expands_only_alone_or_before_a_slash() {
        let home = Path::new("/home/u");
        assert_eq!(expand_tilde("~", Some(home)), PathBuf::from("/home/u"));
        assert_eq!(
            expand_tilde("~/a/b.db", Some(home)),
            PathBuf::from("/home/u/a/b.db")
        );
        assert_eq!(expand_tilde("~//x", Some(home)), PathBuf::from("/home/u/x"));
        assert_eq!(
            expand_tilde("~alice/x", Some(home)),
            PathBuf::from("~alice/x")
        );
        assert_eq!(
            expand_tilde("/abs/~/x", Some(home)),
            PathBuf::from("/abs/~/x")
        );
        assert_eq!(expand_tilde("~/x", None), PathBuf::from("~/x"));
    }

    #[test]
    fn data_dir_defaults_under_home_and_moves_with_llm_gateway_home() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            default_data_dir(&env),
            PathBuf::from("/home/u/.llm-cli-gateway")
        );

        let env = Env::from_pairs([("HOME", "/home/u"), (HOME_VAR, "~/gw")]);
        assert_eq!(default_data_dir(&env), PathBuf::from("/home/u/gw"));

        let env = Env::from_pairs([("HOME", "/home/u"), (HOME_VAR, "/srv/gw")]);
        assert_eq!(default_data_dir(&env), PathBuf::from("/srv/gw"));

        let env = Env::from_pairs([("HOME", "/home/u"), (HOME_VAR, "  ")]);
        assert_eq!(
            default_data_dir(&env),
            PathBuf::from("/home/u/.llm-cli-gateway")
        );
    }

    #[test]
    fn scratch_dir_is_per_provider_key() {
        let dir = scratch_dir(Path::new("/d"), Provider::Mistral);
        assert_eq!(dir, PathBuf::from("/d/work/mistral"));
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_created_recursively_with_mode_0700() {
        use std::os::unix::fs::PermissionsExt;

        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        // An existing, more open directory is tightened.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
