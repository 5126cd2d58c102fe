//! Fake provider CLIs for the integration tests: installs `tests/fake-cli/fake-cli.sh` into
//! a [`TestHome`]'s bin dir under the real CLIs' names, and reads back what each invocation
//! recorded (argv, cwd, environment, stdin, the temp files it was handed, pids, exit code).
//!
//! The fake replays the output captured from the real CLI (`tests/fixtures/cli-samples`),
//! by default each CLI's successful streaming case ([`default_case`]). Its knobs are
//! environment variables ([`knob`]); the gateway passes its environment on to the CLIs, so
//! a test sets them on the server with [`TestHome::set_env`]. The script's header comment is
//! the reference for what each knob does.
//!
//! ```ignore
//! let mut home = TestHome::new();
//! install_all(&home);
//! let records = record_into(&mut home);
//! home.set_env(knob::DELAY_MS, "200");
//! // … drive the server …
//! let runs = wait_for_recordings(&records, 1, WAIT);
//! assert_eq!(runs[0].stdin, b"the prompt");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::TestHome;

/// The binaries the fake can play.
pub const CLIS: [&str; 5] = ["claude", "codex", "gemini", "grok", "vibe"];

/// The environment variables the fake obeys.
pub mod knob {
    /// Which CLI to play when the file name does not say (e.g. running the script itself).
    pub const NAME: &str = "FAKE_CLI_NAME";
    /// Dir to record each invocation in, as `<dir>/<n>/`.
    pub const RECORD_DIR: &str = "FAKE_CLI_RECORD_DIR";
    /// Fixture case to replay instead of the default streaming success.
    pub const CASE: &str = "FAKE_CLI_CASE";
    /// Fixture root (`<root>/<cli>/<case>.stdout`, optional `manifest.jsonl`) instead of
    /// `tests/fixtures/cli-samples`.
    pub const FIXTURES: &str = "FAKE_CLI_FIXTURES";
    /// Milliseconds to sleep before answering.
    pub const DELAY_MS: &str = "FAKE_CLI_DELAY_MS";
    /// Exit code instead of the case's captured one.
    pub const EXIT: &str = "FAKE_CLI_EXIT";
    /// A line to print on stderr (after the case's own stderr).
    pub const STDERR: &str = "FAKE_CLI_STDERR";
    /// That many more bytes on stdout (`x`… and a newline), before the case's stdout.
    pub const BIG_OUTPUT_BYTES: &str = "FAKE_CLI_BIG_OUTPUT_BYTES";
    /// `1`: ignore SIGTERM (so only SIGKILL ends it).
    pub const IGNORE_TERM: &str = "FAKE_CLI_IGNORE_TERM";
    /// `1`: leave a `sleep 1000` grandchild holding stdout/stderr; its pid is recorded.
    pub const GRANDCHILD: &str = "FAKE_CLI_GRANDCHILD";
    /// `1`: print the case's first stdout line, then wait (an hour: forever, for a test).
    pub const HANG: &str = "FAKE_CLI_HANG";
}

/// The script every installed fake points at.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-cli/fake-cli.sh")
}

/// The captured real outputs the fake replays.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli-samples")
}

/// The case a fake replays when [`knob::CASE`] is unset: the CLI's successful run in the
/// machine-readable streaming mode the gateway uses.
pub fn default_case(cli: &str) -> &'static str {
    match cli {
        "claude" => "stream-json-partial-ok",
        "codex" => "exec-stdin-dash",
        "gemini" => "stream-json-ok",
        "grok" => "streaming-json-ok",
        "vibe" => "streaming-ok",
        other => panic!("no fake CLI named {other}"),
    }
}

/// A captured file, `<cli>/<case>.<ext>` (`stdout`, `stderr`, `export.json`); empty when
/// the capture has none (the fake prints nothing for it either).
pub fn fixture(cli: &str, case: &str, ext: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(cli).join(format!("{case}.{ext}"))).unwrap_or_default()
}

/// Installs the fake as `name` in `bin_dir` (a symlink, so the script finds the fixtures
/// next to itself) and returns its path.
pub fn install_into(bin_dir: &Path, name: &str) -> PathBuf {
    assert!(CLIS.contains(&name), "no fake CLI named {name}");
    let script = script();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&script)
            .unwrap_or_else(|e| panic!("fake CLI script {}: {e}", script.display()))
            .permissions(),
    );
    // The symlink runs with the script's own mode; git keeps it 0755.
    assert_eq!(
        mode & 0o755,
        0o755,
        "{} must be mode 0755 (is {mode:o})",
        script.display()
    );
    let link = bin_dir.join(name);
    std::os::unix::fs::symlink(&script, &link)
        .unwrap_or_else(|e| panic!("install fake {name} at {}: {e}", link.display()));
    link
}

/// Installs the fake as `name` first on the home's `PATH`.
pub fn install_fake_cli(home: &TestHome, name: &str) -> PathBuf {
    install_into(&home.bin_dir(), name)
}

/// Installs all five fakes.
pub fn install_all(home: &TestHome) {
    for name in CLIS {
        install_fake_cli(home, name);
    }
}

/// The dir [`record_into`] uses: `fake-cli-records` in the home's temp dir.
pub fn record_dir(home: &TestHome) -> PathBuf {
    home.root().join("fake-cli-records")
}

/// Makes every fake started from this home record its invocations; returns the dir to pass
/// to [`recordings`].
pub fn record_into(home: &mut TestHome) -> PathBuf {
    let dir = record_dir(home);
    std::fs::create_dir_all(&dir).expect("create the record dir");
    home.set_env(knob::RECORD_DIR, &dir.display().to_string());
    dir
}

/// A temp file the fake was handed (`--prompt-file`, `--mcp-config`, `--output-schema`),
/// copied when it ran because the gateway removes it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    pub bytes: Vec<u8>,
    /// Permission bits, e.g. `0o600`.
    pub mode: u32,
}

/// One invocation of a fake.
#[derive(Debug, Clone)]
pub struct Recording {
    /// 1, 2, … in the order the invocations started.
    pub number: u32,
    pub dir: PathBuf,
    /// The arguments after the program name, byte-exact.
    pub argv: Vec<String>,
    /// The physical working directory (symlinks resolved).
    pub cwd: String,
    /// The whole environment the process was started with.
    pub env: BTreeMap<String, String>,
    /// Every byte read from stdin (to EOF).
    pub stdin: Vec<u8>,
    pub pid: u32,
    /// By flag name without dashes: `prompt-file`, `mcp-config`, `output-schema`.
    pub files: BTreeMap<String, RecordedFile>,
    /// The `sleep` left behind with [`knob::GRANDCHILD`].
    pub grandchild_pid: Option<u32>,
    /// `None` while it runs, or when it was killed before finishing.
    pub exit_code: Option<i32>,
}

impl Recording {
    /// The value of `--flag=value` or `--flag value` before any `--`.
    pub fn flag_value(&self, flag: &str) -> Option<&str> {
        let prefix = format!("{flag}=");
        let mut args = self.argv.iter().take_while(|arg| *arg != "--");
        while let Some(arg) = args.next() {
            if arg == flag {
                return args.next().map(String::as_str);
            }
            if let Some(value) = arg.strip_prefix(&prefix) {
                return Some(value);
            }
        }
        None
    }

    fn read(number: u32, dir: PathBuf) -> Recording {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("fake CLI record {}/{name}: {e}", dir.display()))
        };
        let text = |bytes: Vec<u8>, what: &str| {
            String::from_utf8(bytes)
                .unwrap_or_else(|e| panic!("{what} in {} is not UTF-8: {e}", dir.display()))
        };
        // Each element is NUL-terminated, so an empty argument is "\0" and no argument is "".
        let argv_bytes = read("argv");
        let argv = match argv_bytes.strip_suffix(&[0]) {
            None => Vec::new(),
            Some(body) => body
                .split(|b| *b == 0)
                .map(|arg| text(arg.to_vec(), "an argument"))
                .collect(),
        };
        let env = read("env")
            .split(|b| *b == 0)
            .filter(|entry| !entry.is_empty())
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (key, value) = entry.split_once('=')?;
                Some((key.to_string(), value.to_string()))
            })
            .collect();
        let mut files = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("files")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".mode") {
                    continue;
                }
                let mode = std::fs::read_to_string(dir.join("files").join(format!("{name}.mode")))
                    .ok()
                    .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
                    .unwrap_or(0);
                let bytes = std::fs::read(entry.path()).expect("read a recorded file");
                files.insert(name, RecordedFile { bytes, mode });
            }
        }
        Recording {
            number,
            argv,
            cwd: text(read("cwd"), "cwd"),
            env,
            stdin: read("stdin"),
            pid: read_number(&dir.join("pid")).expect("a recorded pid"),
            files,
            grandchild_pid: read_number(&dir.join("grandchild.pid")),
            exit_code: read_number(&dir.join("exit")),
            dir,
        }
    }
}

/// A number the fake wrote, if it wrote that file.
fn read_number<T: std::str::FromStr>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    // A one-line printf: the file is either empty (being written) or complete.
    if text.trim().is_empty() {
        return None;
    }
    Some(
        text.trim().parse().ok().unwrap_or_else(|| {
            panic!("fake CLI record {}: not a number: {text:?}", path.display())
        }),
    )
}

/// The complete records in `dir` (argv, env, stdin… all written), by invocation number.
/// An invocation still reading its stdin is not listed yet; a missing dir is no records.
pub fn recordings(dir: &Path) -> Vec<Recording> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut numbered: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let number = entry.file_name().to_str()?.parse().ok()?;
            let path = entry.path();
            path.join("recorded").exists().then_some((number, path))
        })
        .collect();
    // Numerically: 10 comes after 9.
    numbered.sort();
    numbered
        .into_iter()
        .map(|(number, path)| Recording::read(number, path))
        .collect()
}

/// Waits (bounded) until `dir` holds at least `count` complete records, e.g. to know a
/// fake is running before cancelling it. Panics at the deadline.
pub fn wait_for_recordings(dir: &Path, count: usize, timeout: Duration) -> Vec<Recording> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = recordings(dir);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} fake CLI invocations in {} within {timeout:?}, found {}",
            dir.display(),
            found.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The grandchild pid recorded by invocation `number` (with [`knob::GRANDCHILD`]).
pub fn grandchild_pid(dir: &Path, number: u32) -> Option<u32> {
    read_number(&dir.join(number.to_string()).join("grandchild.pid"))
}

/// Whether `pid` is a live process: it exists and is not a zombie (a killed process whose
/// parent has not reaped it yet, or one reparented to an init that never reaps, is dead).
pub fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self/stat").exists() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // "pid (comm) S …": comm may hold spaces and parens, so the state follows the last ')'.
        let state = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].trim_start().chars().next());
        return !matches!(state, None | Some('Z') | Some('X'));
    }
    // No /proc (macOS): ps prints nothing for a missing pid and `Z…` for a zombie.
    std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .map(|out| {
            let state = String::from_utf8_lossy(&out.stdout);
            let state = state.trim();
            !state.is_empty() && !state.starts_with('Z')
        })
        .unwrap_or(false)
}

/// Waits (bounded) for `pid` to die; whether it did.
pub fn wait_until_dead(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Sends `signal` (e.g. `libc::SIGKILL`) to `pid`, or to the process group `-pid` when
/// `pid` is negative; whether it was delivered.
pub fn send_signal(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) == 0 }
}
