//! The executor (`src/exec/`) against real processes: `/bin/sh` scripts that exit, read
//! stdin, flood their pipes, ignore SIGTERM, or leave grandchildren behind.
//!
//! Owns: the behaviour jobs.md promises for one run — end reasons, exit statuses, byte
//! counts, the group kill, the stray rule, the parent-death signal. Not here: PATH lookup
//! (exec_resolve.rs) or anything about jobs and providers.
//!
//! Waits are on events (a line from the child, a FIFO, the run's end); the only polling is
//! for a killed process to disappear, bounded. Limits are short so the suite takes seconds.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::common::libtest_name;
use llm_cli_gateway::exec::{
    self, Activity, CancelToken, DEFAULT_OUTPUT_CAP, EndReason, ExecReport, ExecSpec, Limits,
    OutputSink, ProcessExit, SpawnError, Stream,
};

/// Every run's safety net: no test can hang on a run longer than this.
const SAFETY_WALL: Duration = Duration::from_secs(20);

/// Short grace and stray wait, so kills in tests take a fraction of a second.
fn limits() -> Limits {
    Limits {
        idle_timeout: None,
        wall_timeout: Some(SAFETY_WALL),
        output_cap: DEFAULT_OUTPUT_CAP,
        kill_grace: Duration::from_millis(300),
        stray_wait: Duration::from_millis(300),
    }
}

fn sh(script: &str) -> ExecSpec {
    ExecSpec::new("/bin/sh").arg("-c").arg(script)
}

type Hook = Box<dyn FnMut(Stream, &[u8])>;

/// Keeps everything it is given; optionally marks output as noise or calls a hook.
#[derive(Default)]
struct Collect {
    pid: Option<u32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_chunks: Vec<Vec<u8>>,
    noise: bool,
    hook: Option<Hook>,
}

impl Collect {
    fn with_hook(hook: impl FnMut(Stream, &[u8]) + 'static) -> Self {
        Self {
            hook: Some(Box::new(hook)),
            ..Self::default()
        }
    }
}

impl OutputSink for Collect {
    fn on_spawn(&mut self, pid: u32) {
        assert!(self.pid.is_none(), "on_spawn called twice");
        self.pid = Some(pid);
    }

    fn on_output(&mut self, stream: Stream, bytes: &[u8], _at: SystemTime) -> Activity {
        assert!(self.pid.is_some(), "output before on_spawn");
        match stream {
            Stream::Stdout => {
                self.stdout.extend_from_slice(bytes);
                self.stdout_chunks.push(bytes.to_vec());
            }
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
        if let Some(hook) = &mut self.hook {
            hook(stream, bytes);
        }
        if self.noise {
            Activity::Noise
        } else {
            Activity::Progress
        }
    }
}

fn run(spec: &ExecSpec, limits: &Limits, sink: &mut Collect) -> ExecReport {
    exec::run(spec, limits, &CancelToken::new(), sink)
}

/// The first whole line of `bytes` as a pid (scripts print `$!` first).
fn first_line_pid(bytes: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (line, _) = text.split_once('\n')?;
    line.trim().parse().ok()
}

/// Whether `pid` no longer runs. A zombie counts as gone: it runs nothing, and whether it
/// is reaped depends on this container's init, not on the executor.
fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } == -1 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        // No /proc (macOS): kill(0) said it exists.
        Err(_) => false,
    }
}

/// Polls until `pid` is gone; a SIGKILLed process takes milliseconds.
fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if gone(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    gone(pid)
}

/// Kills a process the test started indirectly, if an assertion failed before the executor
/// could.
fn cleanup(pid: i32) {
    if !gone(pid) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn normal_exit_reports_output_status_env_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh("printf 'out:%s' \"$EXEC_TEST_VAR\"; printf 'err\\n' >&2; pwd >&2; exit 3")
        .env("EXEC_TEST_VAR", "first")
        .env("EXEC_TEST_VAR", "second")
        .cwd(dir.path());
    let mut sink = Collect::default();
    let before = SystemTime::now();
    let report = run(&spec, &limits(), &mut sink);

    assert_eq!(report.end, EndReason::Exited, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Code(3)));
    assert_eq!(report.compat_exit_code(), None);
    assert_eq!(sink.stdout, b"out:second");
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(sink.stderr, format!("err\n{}\n", cwd.display()).as_bytes());
    assert_eq!(report.stdout_bytes, sink.stdout.len() as u64);
    assert_eq!(report.stderr_bytes, sink.stderr.len() as u64);
    assert!(!report.truncated);
    assert_eq!(report.pid, sink.pid);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.started_at >= before && report.ended_at >= report.started_at);
    let first = report.first_activity_at.expect("output counts as activity");
    let last = report.last_activity_at.unwrap();
    assert!(report.started_at <= first && first <= last && last <= report.ended_at);
}

#[test]
fn stdin_is_delivered_byte_exact_and_closed() {
    // Every byte value, and more than a pipe buffer, so the writer must run concurrently
    // with the reader; `cat` ends only at EOF, so finishing proves stdin was closed.
    let data: Vec<u8> = (0..(1 << 20) + 12_345)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let spec = sh("exec cat").stdin(data.clone());
    let mut sink = Collect::default();
    let report = run(&spec, &limits(), &mut sink);
    assert_eq!(report.end, EndReason::Exited, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Code(0)));
    assert!(sink.stdout == data, "stdout differs from stdin");
    assert_eq!(report.stdout_bytes, data.len() as u64);
}

#[test]
fn a_child_that_ignores_stdin_is_not_a_failure() {
    // The writer gets EPIPE once the child is gone; that is normal, not a warning.
    let spec = sh("exit 0").stdin(vec![b'x'; 1 << 20]);
    let report = run(&spec, &limits(), &mut Collect::default());
    assert_eq!(report.exit, Some(ProcessExit::Code(0)));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn stdin_none_is_null() {
    let mut script = String::from("cat; echo \"cat=$?\"");
    if cfg!(target_os = "linux") {
        script.push_str("; readlink /proc/self/fd/0");
    }
    let mut sink = Collect::default();
    let report = run(&sh(&script), &limits(), &mut sink);
    assert_eq!(report.exit, Some(ProcessExit::Code(0)), "{report:?}");
    let expected = if cfg!(target_os = "linux") {
        "cat=0\n/dev/null\n"
    } else {
        "cat=0\n"
    };
    assert_eq!(String::from_utf8_lossy(&sink.stdout), expected);
}

#[test]
fn a_child_killed_by_a_signal_reports_the_signal() {
    let report = run(&sh("kill -TERM $$"), &limits(), &mut Collect::default());
    assert_eq!(report.end, EndReason::Exited);
    assert_eq!(report.exit, Some(ProcessExit::Signal(libc::SIGTERM)));
    assert_eq!(report.compat_exit_code(), None);
}

#[test]
fn a_missing_program_is_not_found_with_compat_127() {
    for program in [
        "/nonexistent/llm-cli-gateway-no-such-cli",
        "llm-cli-gateway-no-such-cli",
    ] {
        let mut sink = Collect::default();
        let report = run(&ExecSpec::new(program), &limits(), &mut sink);
        assert_eq!(report.end, EndReason::SpawnFailed);
        assert!(
            matches!(&report.spawn_error, Some(SpawnError::NotFound { program: p }) if p.as_os_str() == program),
            "{report:?}"
        );
        assert_eq!(report.compat_exit_code(), Some(127));
        assert_eq!((report.pid, report.exit, sink.pid), (None, None, None));
    }
}

#[test]
fn a_missing_cwd_is_not_reported_as_a_missing_program() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let report = run(
        &sh("true").cwd(&missing),
        &limits(),
        &mut Collect::default(),
    );
    assert_eq!(report.end, EndReason::SpawnFailed);
    assert!(
        matches!(&report.spawn_error, Some(SpawnError::Cwd { cwd, .. }) if *cwd == missing),
        "{report:?}"
    );
    assert_eq!(report.compat_exit_code(), None);
}

#[test]
fn a_non_executable_program_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-executable");
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    let report = run(&ExecSpec::new(&file), &limits(), &mut Collect::default());
    assert_eq!(report.end, EndReason::SpawnFailed);
    assert!(
        matches!(
            &report.spawn_error,
            Some(SpawnError::PermissionDenied { .. })
        ),
        "{report:?}"
    );
}

#[test]
fn idle_timeout_ends_a_silent_child() {
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(300)),
        ..limits()
    };
    let started = Instant::now();
    let mut sink = Collect::default();
    let report = run(&sh("echo started; exec sleep 30"), &limits, &mut sink);
    assert_eq!(report.end, EndReason::IdleTimeout, "{report:?}");
    assert_eq!(report.compat_exit_code(), Some(125));
    assert_eq!(report.exit, Some(ProcessExit::Signal(libc::SIGTERM)));
    assert_eq!(sink.stdout, b"started\n");
    assert!(report.first_activity_at.is_some());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn noise_does_not_reset_the_idle_timer() {
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(400)),
        ..limits()
    };
    let mut sink = Collect {
        noise: true,
        ..Collect::default()
    };
    let script = "while :; do echo Reconnecting; sleep 0.05; done";
    let report = run(&sh(script), &limits, &mut sink);
    assert_eq!(report.end, EndReason::IdleTimeout, "{report:?}");
    assert!(!sink.stdout.is_empty(), "noise was still delivered");
    assert_eq!(report.first_activity_at, None);
    assert_eq!(report.last_activity_at, None);
}

#[test]
fn progress_keeps_a_run_alive_past_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Some(Duration::from_millis(400)),
        ..limits()
    };
    // 20 ticks 50 ms apart: ~1 s in all, never 400 ms quiet.
    let script = "i=0; while [ $i -lt 20 ]; do echo tick; sleep 0.05; i=$((i+1)); done";
    let mut sink = Collect::default();
    let report = run(&sh(script), &limits, &mut sink);
    assert_eq!(report.end, EndReason::Exited, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Code(0)));
    assert_eq!(sink.stdout, "tick\n".repeat(20).as_bytes());
}

#[test]
fn wall_timeout_ends_a_busy_child() {
    let limits = Limits {
        idle_timeout: Some(Duration::from_secs(2)),
        wall_timeout: Some(Duration::from_millis(400)),
        ..limits()
    };
    let started = Instant::now();
    let report = run(
        &sh("while :; do echo tick; sleep 0.05; done"),
        &limits,
        &mut Collect::default(),
    );
    assert_eq!(report.end, EndReason::Timeout, "{report:?}");
    assert_eq!(report.compat_exit_code(), Some(124));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn cancel_from_another_thread_kills_the_group_grandchild_included() {
    let cancel = CancelToken::new();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let canceler = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            if ready_rx.recv_timeout(SAFETY_WALL).is_ok() {
                cancel.cancel();
            }
        })
    };
    // The leader waits on a grandchild; both must die.
    let mut sink = Collect::with_hook(move |stream, _| {
        if stream == Stream::Stdout {
            let _ = ready_tx.send(());
        }
    });
    let started = Instant::now();
    let report = exec::run(
        &sh("sleep 1000 & echo $!; wait"),
        &limits(),
        &cancel,
        &mut sink,
    );
    canceler.join().unwrap();
    let grandchild = first_line_pid(&sink.stdout).expect("the script prints its grandchild");
    let grandchild_gone = wait_gone(grandchild);
    cleanup(grandchild);

    assert_eq!(report.end, EndReason::Canceled, "{report:?}");
    assert_eq!(report.compat_exit_code(), None);
    assert!(report.exit.is_some_and(|exit| exit.signal().is_some()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        grandchild_gone,
        "grandchild {grandchild} survived the cancel"
    );
}

#[test]
fn a_token_canceled_before_the_run_spawns_nothing() {
    let cancel = CancelToken::new();
    cancel.cancel();
    let mut sink = Collect::default();
    let report = exec::run(&sh("echo never"), &limits(), &cancel, &mut sink);
    assert_eq!(report.end, EndReason::Canceled);
    assert_eq!((report.pid, sink.pid), (None, None));
    assert!(sink.stdout.is_empty());
}

/// Peak resident memory of this test process (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn output_cap_stops_a_term_ignoring_flood_quickly_with_bounded_memory() {
    const CAP: u64 = 1 << 20;
    // Default grace (5 s): an overflow still ends within 2 s of the crossing.
    let limits = Limits {
        output_cap: CAP,
        kill_grace: exec::DEFAULT_KILL_GRACE,
        ..limits()
    };
    let rss_before = peak_rss();
    let crossed = std::rc::Rc::new(std::cell::Cell::new(None::<Instant>));
    let mut sink = {
        let crossed = std::rc::Rc::clone(&crossed);
        let mut seen = 0u64;
        Collect::with_hook(move |_, bytes| {
            seen += bytes.len() as u64;
            if seen >= CAP && crossed.get().is_none() {
                crossed.set(Some(Instant::now()));
            }
        })
    };
    // `yes` inherits the ignored SIGTERM and writes as fast as the pipe takes it.
    let report = run(&sh("trap '' TERM; exec yes"), &limits, &mut sink);
    let ended = Instant::now();

    assert_eq!(report.end, EndReason::OutputOverflow, "{report:?}");
    assert_eq!(report.compat_exit_code(), Some(126));
    assert!(report.truncated);
    assert_eq!(report.exit, Some(ProcessExit::Signal(libc::SIGKILL)));
    assert_eq!(
        sink.stdout.len() as u64,
        CAP,
        "exactly the cap reaches the sink"
    );
    assert!(sink.stdout.chunks(2).all(|pair| pair == b"y\n"));
    assert!(report.stdout_bytes > CAP, "reading went on past the cap");
    let crossed = crossed.get().expect("the sink saw the cap");
    assert!(
        ended - crossed < Duration::from_secs(2),
        "ended {:?} after the crossing",
        ended - crossed
    );
    if let (Some(before), Some(after)) = (rss_before, peak_rss()) {
        // The sink kept 1 MiB (plus chunk copies); a drain that buffered would show the
        // hundreds of MiB `yes` wrote.
        assert!(
            after.saturating_sub(before) < 64 << 20,
            "peak RSS grew by {} bytes while {} bytes were read",
            after - before,
            report.stdout_bytes
        );
    }
}

#[test]
fn output_cap_counts_stdout_and_stderr_together() {
    const CAP: u64 = 256 * 1024;
    let limits = Limits {
        output_cap: CAP,
        ..limits()
    };
    let mut sink = Collect::default();
    let report = run(&sh("yes out & exec yes err >&2"), &limits, &mut sink);
    assert_eq!(report.end, EndReason::OutputOverflow, "{report:?}");
    assert_eq!((sink.stdout.len() + sink.stderr.len()) as u64, CAP);
    assert!(report.output_bytes() > CAP);
}

#[test]
fn output_past_the_cap_after_the_leader_exited_is_still_an_overflow() {
    const CAP: u64 = 64 * 1024;
    // The leader exits at once; its background child writes past the cap. Whichever the
    // loop sees first, the output is incomplete and the run says so.
    let limits = Limits {
        output_cap: CAP,
        stray_wait: exec::DEFAULT_STRAY_WAIT,
        ..limits()
    };
    let started = Instant::now();
    let mut sink = Collect::default();
    let report = run(
        &sh("head -c 1000000 /dev/zero & exit 0"),
        &limits,
        &mut sink,
    );
    assert_eq!(report.end, EndReason::OutputOverflow, "{report:?}");
    assert_eq!(report.compat_exit_code(), Some(126));
    assert!(report.truncated);
    assert_eq!(sink.stdout.len() as u64, CAP);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_cancel_does_not_wait_out_the_stray_rule() {
    let cancel = CancelToken::new();
    let canceler = cancel.clone();
    // Cancel as soon as the grandchild's pid is out; the leader exits about then, so the
    // cancel lands before or after its exit, and neither may wait the 2 s stray rule.
    let mut sink = Collect::with_hook(move |_, _| canceler.cancel());
    let limits = Limits {
        stray_wait: exec::DEFAULT_STRAY_WAIT,
        ..limits()
    };
    let started = Instant::now();
    let report = exec::run(
        &sh("sleep 1000 & echo $!; exit 0"),
        &limits,
        &cancel,
        &mut sink,
    );
    let elapsed = started.elapsed();
    let grandchild = first_line_pid(&sink.stdout).expect("the script prints its grandchild");
    let grandchild_gone = wait_gone(grandchild);
    cleanup(grandchild);

    assert!(
        matches!(report.end, EndReason::Canceled | EndReason::Exited),
        "{report:?}"
    );
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert!(grandchild_gone, "grandchild {grandchild} survived");
}

#[test]
fn a_term_ignoring_child_dies_by_sigkill_after_the_grace() {
    let limits = Limits {
        wall_timeout: Some(Duration::from_millis(300)),
        ..limits()
    };
    let started = Instant::now();
    let report = run(
        &sh("trap '' TERM; echo ready; while :; do sleep 1; done"),
        &limits,
        &mut Collect::default(),
    );
    let elapsed = started.elapsed();
    assert_eq!(report.end, EndReason::Timeout, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Signal(libc::SIGKILL)));
    // Wall timeout, then the whole 300 ms grace, then SIGKILL.
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn a_stray_grandchild_holding_the_pipes_is_killed_after_2s() {
    // The default stray wait: the contract is "at most 2 s".
    let limits = Limits {
        stray_wait: exec::DEFAULT_STRAY_WAIT,
        ..limits()
    };
    let started = Instant::now();
    let mut sink = Collect::default();
    let report = run(&sh("sleep 1000 & echo $!; exit 0"), &limits, &mut sink);
    let elapsed = started.elapsed();
    let grandchild = first_line_pid(&sink.stdout).expect("the script prints its grandchild");
    let grandchild_gone = wait_gone(grandchild);
    cleanup(grandchild);

    assert_eq!(report.end, EndReason::Exited, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Code(0)));
    assert!(report.has_warning("stray_processes_killed"), "{report:?}");
    assert!(!report.has_warning("pipes_left_open"), "{report:?}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert!(grandchild_gone, "grandchild {grandchild} survived");
}

#[test]
fn a_grandchild_that_closed_its_pipes_dies_with_the_run() {
    let started = Instant::now();
    let mut sink = Collect::default();
    let report = run(
        &sh("sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"),
        &limits(),
        &mut sink,
    );
    let elapsed = started.elapsed();
    let grandchild = first_line_pid(&sink.stdout).expect("the script prints its grandchild");
    let grandchild_gone = wait_gone(grandchild);
    cleanup(grandchild);

    assert_eq!(report.end, EndReason::Exited, "{report:?}");
    assert_eq!(report.exit, Some(ProcessExit::Code(0)));
    // Nothing held the pipes, so no stray wait and no warning: the final group kill got it.
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(elapsed < limits().stray_wait, "{elapsed:?}");
    assert!(grandchild_gone, "grandchild {grandchild} survived");
}

#[cfg(target_os = "linux")]
#[test]
fn a_process_that_left_the_group_cannot_hang_the_run() {
    // `setsid` puts the holder of the pipes out of reach of the group kill; the run still
    // ends, one stray wait after the kill.
    let started = Instant::now();
    let mut sink = Collect::default();
    let report = run(&sh("setsid sleep 1000 & echo $!"), &limits(), &mut sink);
    let elapsed = started.elapsed();
    let escaped = first_line_pid(&sink.stdout).expect("the script prints the escaped pid");
    cleanup(escaped);

    assert_eq!(report.exit, Some(ProcessExit::Code(0)), "{report:?}");
    assert!(report.has_warning("stray_processes_killed"), "{report:?}");
    assert!(report.has_warning("pipes_left_open"), "{report:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn a_utf8_character_split_across_writes_arrives_intact() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("go");
    make_fifo(&fifo);
    // The child writes the first two bytes of "€" (E2 82 AC), then blocks on the FIFO until
    // the sink has seen them, so the character is certainly split across two reads.
    let script = r#"exec 3<>"$FIFO"; printf '\342\202'; read go <&3; printf '\254 end'"#;
    let spec = sh(script).env("FIFO", &fifo);
    let mut released = false;
    let mut sink = Collect::with_hook(move |stream, _| {
        if stream == Stream::Stdout && !released {
            released = true;
            let mut writer = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .expect("the child holds the FIFO open");
            writer.write_all(b"go\n").unwrap();
        }
    });
    let report = run(&spec, &limits(), &mut sink);
    assert_eq!(report.exit, Some(ProcessExit::Code(0)), "{report:?}");
    assert_eq!(sink.stdout_chunks[0], [0xE2, 0x82]);
    assert!(sink.stdout_chunks.len() >= 2);
    assert_eq!(sink.stdout, "€ end".as_bytes());
}

fn make_fifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// Run inside a child copy of this test binary by the next test: spawns a long sleep with
/// the parent-death signal, prints its pid, and waits to be killed.
#[cfg(target_os = "linux")]
#[test]
fn parent_death_signal_helper() {
    if std::env::var_os("EXEC_PDEATHSIG_HELPER").is_none() {
        return;
    }
    struct PrintPid;
    impl OutputSink for PrintPid {
        fn on_spawn(&mut self, pid: u32) {
            println!("CHILD_PID={pid}");
            std::io::stdout().flush().unwrap();
        }
        fn on_output(&mut self, _: Stream, _: &[u8], _: SystemTime) -> Activity {
            Activity::Progress
        }
    }
    let spec = ExecSpec::new("/bin/sleep").arg("1000");
    exec::run(&spec, &limits(), &CancelToken::new(), &mut PrintPid);
}

#[cfg(target_os = "linux")]
#[test]
fn parent_death_signal_kills_the_child_when_its_parent_dies() {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &libtest_name(module_path!(), "parent_death_signal_helper"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EXEC_PDEATHSIG_HELPER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = helper.stdout.take().unwrap();
    let child_pid: i32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints "test … ... " before it on the same line.
        .find_map(|line| line.split_once("CHILD_PID=")?.1.trim().parse().ok())
        .expect("the helper reports its child's pid");
    // on_spawn runs after exec, so the child has already set PR_SET_PDEATHSIG.
    helper.kill().unwrap();
    helper.wait().unwrap();
    let child_gone = wait_gone(child_pid);
    cleanup(child_pid);
    assert!(
        child_gone,
        "child {child_pid} outlived the process that spawned it"
    );
}

#[test]
fn defaults_are_those_of_jobs_md() {
    let limits = Limits::default();
    assert_eq!(limits.idle_timeout, Some(Duration::from_millis(600_000)));
    assert_eq!(limits.wall_timeout, Some(Duration::from_secs(4 * 3600)));
    assert_eq!(limits.output_cap, 50 * 1024 * 1024);
    assert_eq!(limits.kill_grace, Duration::from_secs(5));
    assert_eq!(limits.stray_wait, Duration::from_secs(2));
    assert!(ExecSpec::new("x").parent_death_signal);
    assert_eq!(
        [
            EndReason::Exited,
            EndReason::IdleTimeout,
            EndReason::Timeout,
            EndReason::OutputOverflow,
            EndReason::Canceled,
            EndReason::SpawnFailed,
        ]
        .map(EndReason::as_str),
        [
            "exited",
            "idle_timeout",
            "timeout",
            "output_overflow",
            "canceled",
            "spawn_failed"
        ]
    );
}
