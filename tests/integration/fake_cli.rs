//! The fake provider CLIs themselves (`tests/fake-cli/fake-cli.sh` through
//! `tests/integration/common/fake_cli.rs`), run directly with an environment cleared like the harness's:
//! default replay equals the captured bytes, the recording is byte-exact, and every knob
//! does what the gateway's integration tests rely on. No gateway is involved here.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::fake_cli::*;
use common::{TestHome, WAIT};

/// A home with all five fakes installed and a record dir.
fn setup() -> (TestHome, PathBuf) {
    let home = TestHome::new();
    install_all(&home);
    let records = record_dir(&home);
    (home, records)
}

/// The fake `cli` looked up on PATH, as the gateway's child would see it: cleared
/// environment, the home's bin dir first, recording into `records`.
fn fake(home: &TestHome, records: &Path, cli: &str) -> Command {
    fake_program(home, records, Path::new(cli))
}

fn fake_program(home: &TestHome, records: &Path, program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("HOME", home.home_dir())
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", home.bin_dir().display()),
        )
        .env("TMPDIR", home.root())
        .env(knob::RECORD_DIR, records)
        .current_dir(home.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs to completion within [`WAIT`], writing `stdin` (then closing it) when given.
fn run(mut command: Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn the fake");
    let pid = child.id();
    // From a thread: a prompt larger than the pipe buffer must not deadlock against output.
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || pipe.write_all(&bytes).expect("write the fake's stdin"))
    });
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output = match receiver.recv_timeout(WAIT) {
        Ok(output) => output.expect("wait for the fake"),
        Err(_) => {
            send_signal(pid as i32, libc::SIGKILL);
            panic!("the fake did not finish within {WAIT:?}");
        }
    };
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    output
}

/// Kills a fake's whole process group when dropped, so a test that fails half-way leaves
/// no hanging fake or grandchild behind.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        send_signal(-self.0, libc::SIGKILL);
    }
}

/// Spawns in a new process group (as the gateway's executor does), guarded.
fn spawn_guarded(command: &mut Command) -> (Child, GroupGuard) {
    let child = command.process_group(0).spawn().expect("spawn the fake");
    let guard = GroupGuard(child.id() as i32);
    (child, guard)
}

/// Waits for `child` to exit within `timeout`; `None` if it is still running then.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads the first stdout line of a running fake within [`WAIT`].
fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    receiver
        .recv_timeout(WAIT)
        .expect("the fake printed no line in time")
}

/// The argv the gateway gives each CLI for a plain prompt (providers.md goldens).
fn streaming_argv(cli: &str, prompt: &str, tmp: &Path) -> Vec<String> {
    let args: Vec<String> = match cli {
        "claude" => vec![
            "-p".into(),
            "--output-format=stream-json".into(),
            "--verbose".into(),
            "--include-partial-messages".into(),
            "--".into(),
            prompt.into(),
        ],
        "codex" => vec![
            "exec".into(),
            "--json".into(),
            "--skip-git-repo-check".into(),
            "--".into(),
            "-".into(),
        ],
        "gemini" => vec![
            "--skip-trust".into(),
            "--output-format=stream-json".into(),
            format!("--prompt={prompt}"),
        ],
        "grok" => vec![
            "--no-auto-update".into(),
            "--output-format=streaming-json".into(),
            format!("--single={prompt}"),
        ],
        "vibe" => vec![
            "--output=streaming".into(),
            format!("--output-dir={}", tmp.display()),
            "--agent=accept-edits".into(),
            format!("--prompt={prompt}"),
        ],
        other => panic!("no CLI {other}"),
    };
    args
}

fn line_of(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[test]
fn each_fake_replays_its_default_streaming_case_byte_for_byte() {
    let (home, records) = setup();
    for cli in CLIS {
        let case = default_case(cli);
        let expected = fixture(cli, case, "stdout");
        assert!(!expected.is_empty(), "{cli}/{case}.stdout is captured");
        let tmp = home.root().join(format!("{cli}-out"));
        let mut command = fake(&home, &records, cli);
        command.args(streaming_argv(cli, "say hello", &tmp));
        let output = run(command, (cli == "codex").then_some(b"say hello".as_slice()));
        assert_eq!(output.status.code(), Some(0), "{cli} exit");
        assert!(
            output.stdout == expected,
            "{cli} stdout differs from {case}.stdout"
        );
        assert_eq!(
            output.stderr,
            fixture(cli, case, "stderr"),
            "{cli} stderr differs from {case}.stderr"
        );
        if cli == "vibe" {
            let export = std::fs::read(tmp.join("export.json")).expect("vibe wrote export.json");
            assert!(export == fixture("vibe", case, "export.json"));
        }
    }
    let runs = recordings(&records);
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|run| run.exit_code == Some(0)));
}

#[test]
fn version_replays_the_captured_version_whatever_the_knobs() {
    let (home, records) = setup();
    let expected = [
        ("claude", "2.1.329 (Claude Code)\n"),
        ("codex", "codex-cli 0.169.0\n"),
        ("gemini", "0.61.0\n"),
        ("grok", "grok 1.0.41 (4220f3b224a6)\n"),
        ("vibe", "vibe 3.0.3\n"),
    ];
    for (cli, version) in expected {
        let mut command = fake(&home, &records, cli);
        // Knobs are for runs: a version probe must neither hang nor fail.
        command
            .arg("--version")
            .env(knob::HANG, "1")
            .env(knob::EXIT, "3")
            .env(knob::CASE, "no-such-case");
        let output = run(command, None);
        assert_eq!(output.status.code(), Some(0), "{cli} --version exit");
        assert_eq!(String::from_utf8_lossy(&output.stdout), version, "{cli}");
    }
}

#[test]
fn records_argv_cwd_env_and_stdin_byte_exact() {
    let (home, records) = setup();
    let cwd = home.root().join("a work dir ü");
    std::fs::create_dir(&cwd).unwrap();
    let prompt = "--leading dashes\n\"double\" 'single' `tick` $(touch x) ; \\ \t\
                  ünïcødé 🎉 中文\n\nlast line without newline";
    let args = [
        "-p",
        "--model=sonnet",
        "",
        "-- -",
        "ends with newline\n",
        "--",
        prompt,
    ];
    let stdin: &[u8] = b"stdin \x00 nul, \xff not UTF-8,\r\n and no final newline";
    let mut command = fake(&home, &records, "claude");
    command
        .args(args)
        .current_dir(&cwd)
        .env("DISABLE_AUTOUPDATER", "1")
        .env("VIBE_ACTIVE_MODEL", "devstral-fake")
        .env("IS_SANDBOX", "1")
        .env("MULTI_LINE", "a\nb=c\n");
    let output = run(command, Some(stdin));
    assert_eq!(output.status.code(), Some(0));

    let runs = recordings(&records);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.number, 1);
    assert_eq!(run.argv, args);
    assert_eq!(run.stdin, stdin);
    assert_eq!(Path::new(&run.cwd), cwd.canonicalize().unwrap());
    assert_eq!(run.flag_value("--model"), Some("sonnet"));
    // Exactly the environment it was given: nothing added, values intact.
    let expected_env: BTreeMap<String, String> = [
        ("DISABLE_AUTOUPDATER", "1".to_string()),
        ("HOME", home.home_dir().display().to_string()),
        ("IS_SANDBOX", "1".to_string()),
        ("MULTI_LINE", "a\nb=c\n".to_string()),
        (
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", home.bin_dir().display()),
        ),
        (knob::RECORD_DIR, records.display().to_string()),
        ("TMPDIR", home.root().display().to_string()),
        ("VIBE_ACTIVE_MODEL", "devstral-fake".to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    assert_eq!(run.env, expected_env);
    assert!(run.pid > 1, "recorded pid {}", run.pid);
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.grandchild_pid, None);
}

#[test]
fn no_arguments_and_an_empty_argument_are_told_apart() {
    let (home, records) = setup();
    run(fake(&home, &records, "grok"), None);
    let mut command = fake(&home, &records, "grok");
    command.arg("");
    run(command, None);
    let runs = recordings(&records);
    assert_eq!(runs[0].argv, Vec::<String>::new());
    assert_eq!(runs[1].argv, vec![String::new()]);
}

#[test]
fn stdin_from_dev_null_does_not_block() {
    let (home, records) = setup();
    let (mut child, _guard) = spawn_guarded(
        fake(&home, &records, "codex")
            .args(["exec", "--json", "--skip-git-repo-check", "--", "-"])
            .stdout(Stdio::null()),
    );
    let status = wait_bounded(&mut child, WAIT).expect("the fake blocked on /dev/null stdin");
    assert!(status.success());
    assert_eq!(recordings(&records)[0].stdin, b"");
}

#[test]
fn a_prompt_larger_than_the_pipe_buffer_is_read_to_the_end() {
    let (home, records) = setup();
    let prompt: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|i| b"abc\xc3\xa9\n"[i % 6])
        .collect();
    let mut command = fake(&home, &records, "codex");
    command.args(["exec", "--json", "--skip-git-repo-check", "--", "-"]);
    let output = run(command, Some(&prompt));
    assert!(output.status.success());
    assert!(recordings(&records)[0].stdin == prompt, "stdin differs");
}

#[test]
fn temp_files_named_by_flags_are_kept_with_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (home, records) = setup();
    let write = |name: &str, content: &str, mode: u32| {
        let path = home.root().join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let prompt_file = write("prompt.txt", "a big prompt\n", 0o600);
    let mcp = write("mcp.json", "{\"mcpServers\":{}}", 0o640);

    let mut command = fake(&home, &records, "grok");
    command.arg(format!("--prompt-file={}", prompt_file.display()));
    run(command, None);
    let mut command = fake(&home, &records, "vibe");
    // The `--flag value` form, and a look-alike after `--` that is prompt text, not a flag.
    command.args(["--prompt-file", &prompt_file.display().to_string()]);
    command.args(["--", &format!("--mcp-config={}", mcp.display())]);
    run(command, None);
    let mut command = fake(&home, &records, "claude");
    command.arg(format!("--mcp-config={}", mcp.display()));
    run(command, None);
    // The gateway removes its temp files after the run: the record must not depend on them.
    std::fs::remove_file(&prompt_file).unwrap();
    std::fs::remove_file(&mcp).unwrap();

    let runs = recordings(&records);
    let prompt = RecordedFile {
        bytes: b"a big prompt\n".to_vec(),
        mode: 0o600,
    };
    assert_eq!(runs[0].files.get("prompt-file"), Some(&prompt));
    assert_eq!(runs[1].files.get("prompt-file"), Some(&prompt));
    assert_eq!(runs[1].files.len(), 1, "{:?}", runs[1].files.keys());
    assert_eq!(
        runs[2].files.get("mcp-config"),
        Some(&RecordedFile {
            bytes: b"{\"mcpServers\":{}}".to_vec(),
            mode: 0o640,
        })
    );
}

#[test]
fn delay_knob_answers_late_with_the_same_output() {
    let (home, records) = setup();
    let mut command = fake(&home, &records, "gemini");
    command.env(knob::DELAY_MS, "300");
    let started = Instant::now();
    let output = run(command, None);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(output.status.success());
    assert!(output.stdout == fixture("gemini", "stream-json-ok", "stdout"));
}

#[test]
fn exit_knob_and_the_cases_own_exit_codes() {
    let (home, records) = setup();
    let mut command = fake(&home, &records, "grok");
    command.env(knob::EXIT, "7");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(7));
    assert!(output.stdout == fixture("grok", "streaming-json-ok", "stdout"));

    // A captured failure replays with the exit code of its manifest line.
    let mut command = fake(&home, &records, "gemini");
    command.env(knob::CASE, "bad-api-key-stream-json");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(144));
    assert!(output.stdout == fixture("gemini", "bad-api-key-stream-json", "stdout"));
    assert!(output.stderr == fixture("gemini", "bad-api-key-stream-json", "stderr"));

    let exits: Vec<_> = recordings(&records).iter().map(|r| r.exit_code).collect();
    assert_eq!(exits, [Some(7), Some(144)]);
}

#[test]
fn stderr_knob_follows_the_cases_stderr() {
    let (home, records) = setup();
    let mut command = fake(&home, &records, "gemini");
    command.env(knob::STDERR, "Error: 401 Unauthorized");
    let output = run(command, None);
    let mut expected = fixture("gemini", "stream-json-ok", "stderr");
    assert!(!expected.is_empty());
    expected.extend_from_slice(b"Error: 401 Unauthorized\n");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&expected)
    );
    assert!(output.stdout == fixture("gemini", "stream-json-ok", "stdout"));
}

#[test]
fn big_output_knob_prints_exactly_that_many_more_bytes() {
    let (home, records) = setup();
    let big = 8 * 1024 * 1024;
    let mut command = fake(&home, &records, "claude");
    command.env(knob::BIG_OUTPUT_BYTES, big.to_string());
    let output = run(command, None);
    assert!(output.status.success());
    let replay = fixture("claude", "stream-json-partial-ok", "stdout");
    assert_eq!(output.stdout.len(), big + replay.len());
    assert!(output.stdout[..big - 1].iter().all(|b| *b == b'x'));
    assert_eq!(output.stdout[big - 1], b'\n');
    // The replay comes last, so the final result line is still the last line.
    assert!(output.stdout[big..] == replay[..]);
}

#[test]
fn ignore_term_knob_survives_sigterm_and_dies_on_sigkill() {
    let (home, records) = setup();
    let (mut child, _guard) = spawn_guarded(
        fake(&home, &records, "claude")
            .env(knob::IGNORE_TERM, "1")
            .env(knob::HANG, "1"),
    );
    first_line(&mut child);
    let pid = child.id() as i32;
    assert!(send_signal(pid, libc::SIGTERM));
    // Nothing to await for "still alive": give the signal a bounded moment to act.
    assert!(
        wait_bounded(&mut child, Duration::from_millis(500)).is_none(),
        "SIGTERM ended a fake that ignores it"
    );
    assert!(send_signal(pid, libc::SIGKILL));
    let status = wait_bounded(&mut child, WAIT).expect("SIGKILL did not end the fake");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(
        recordings(&records)[0].exit_code,
        None,
        "killed, not finished"
    );
}

#[test]
fn without_the_knob_sigterm_ends_it() {
    let (home, records) = setup();
    let (mut child, _guard) = spawn_guarded(fake(&home, &records, "claude").env(knob::HANG, "1"));
    first_line(&mut child);
    assert!(send_signal(child.id() as i32, libc::SIGTERM));
    let status = wait_bounded(&mut child, WAIT).expect("SIGTERM did not end the fake");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

#[test]
fn grandchild_knob_leaves_a_recorded_sleeper_in_the_group_holding_stdout() {
    let (home, records) = setup();
    // In its own group, as the gateway's executor spawns it: the group kill must find it.
    let (mut child, _guard) =
        spawn_guarded(fake(&home, &records, "codex").env(knob::GRANDCHILD, "1"));
    let fake_pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        let _ = sender.send(all);
    });
    let status = wait_bounded(&mut child, WAIT).expect("the fake did not exit");
    assert!(status.success());

    let grandchild = grandchild_pid(&records, 1).expect("grandchild.pid recorded");
    assert_eq!(recordings(&records)[0].grandchild_pid, Some(grandchild));
    assert_ne!(grandchild, fake_pid);
    assert!(process_alive(grandchild));
    // SAFETY: getpgid has no memory-safety preconditions.
    let group = unsafe { libc::getpgid(grandchild as libc::pid_t) };
    assert_eq!(
        group, fake_pid as libc::pid_t,
        "grandchild in the fake's group"
    );
    // The leader is gone but the grandchild still holds the pipe: no EOF yet.
    assert!(
        receiver.recv_timeout(Duration::from_millis(200)).is_err(),
        "stdout reached EOF while the grandchild lives"
    );

    assert!(send_signal(-(fake_pid as i32), libc::SIGKILL));
    assert!(
        wait_until_dead(grandchild, WAIT),
        "the group kill missed it"
    );
    let stdout = receiver
        .recv_timeout(WAIT)
        .expect("EOF once the group is gone");
    assert!(stdout == fixture("codex", "exec-stdin-dash", "stdout"));
}

#[test]
fn hang_knob_prints_the_first_line_then_waits() {
    let (home, records) = setup();
    let (mut child, _guard) = spawn_guarded(
        fake(&home, &records, "vibe")
            .arg(format!(
                "--output-dir={}",
                home.root().join("out").display()
            ))
            .env(knob::HANG, "1"),
    );
    let line = first_line(&mut child);
    assert_eq!(line, line_of(&fixture("vibe", "streaming-ok", "stdout")));
    assert!(
        wait_bounded(&mut child, Duration::from_millis(300)).is_none(),
        "a hanging fake exited"
    );
    let run = &recordings(&records)[0];
    assert_eq!(run.pid, child.id(), "still the recorded process");
    assert!(process_alive(run.pid));
    child.kill().unwrap();
    wait_bounded(&mut child, WAIT).expect("SIGKILL ends it");
    assert!(
        !home.root().join("out/export.json").exists(),
        "never finished"
    );
}

#[test]
fn concurrent_invocations_get_distinct_records() {
    let (home, records) = setup();
    let count = 16;
    let children: Vec<_> = (0..count)
        .map(|i| {
            let mut command = fake(&home, &records, CLIS[i % CLIS.len()]);
            command.arg(format!("--run={i}"));
            std::thread::spawn(move || run(command, Some(format!("prompt {i}").as_bytes())))
        })
        .collect();
    for child in children {
        assert!(child.join().unwrap().status.success());
    }
    let runs = recordings(&records);
    let numbers: Vec<u32> = runs.iter().map(|run| run.number).collect();
    assert_eq!(numbers, (1..=count as u32).collect::<Vec<_>>());
    let mut seen: Vec<(String, Vec<u8>)> = runs
        .iter()
        .map(|run| (run.argv[0].clone(), run.stdin.clone()))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("--run={i}"), format!("prompt {i}").into_bytes()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "each record holds its own invocation");
}

#[test]
fn records_are_listed_in_invocation_order_past_nine() {
    let (home, records) = setup();
    for i in 1..=11 {
        let mut command = fake(&home, &records, "grok");
        command.arg(i.to_string());
        run(command, None);
    }
    let argv: Vec<String> = recordings(&records)
        .into_iter()
        .map(|run| run.argv[0].clone())
        .collect();
    assert_eq!(argv, (1..=11).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(wait_for_recordings(&records, 11, WAIT).len(), 11);
}

#[test]
fn fake_cli_name_and_fixtures_select_what_is_played() {
    let (home, records) = setup();
    // The script itself, not a symlink named after a CLI.
    let mut command = fake_program(&home, &records, &script());
    command.env(knob::NAME, "grok");
    let output = run(command, None);
    assert!(output.stdout == fixture("grok", "streaming-json-ok", "stdout"));

    // A test's own fixture: a case the real CLI was never captured in.
    let custom = home.root().join("fixtures");
    std::fs::create_dir_all(custom.join("claude")).unwrap();
    std::fs::write(custom.join("claude/split.stdout"), "é split\n").unwrap();
    let mut command = fake(&home, &records, "claude");
    command
        .env(knob::FIXTURES, &custom)
        .env(knob::CASE, "split");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(0), "no manifest: exit 0");
    assert_eq!(output.stdout, "é split\n".as_bytes());
}

#[test]
fn misuse_is_a_clear_failure() {
    let (home, records) = setup();
    let mut command = fake(&home, &records, "gemini");
    command.env(knob::CASE, "no-such-case");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-case"));

    let mut command = fake(&home, &records, "gemini");
    command.env(knob::DELAY_MS, "1.5");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FAKE_CLI_DELAY_MS"));

    let mut command = fake(&home, &records, "gemini");
    command.env(knob::NAME, "copilot");
    let output = run(command, None);
    assert_eq!(output.status.code(), Some(99));
    assert!(String::from_utf8_lossy(&output.stderr).contains("copilot"));
}
