//! The process start-time token recorded with a pid, so a reused pid is told apart from the
//! process that was recorded (jobs.md "Supervised jobs").
//!
//! Owns reading that token. Not here: deciding that a job is orphaned (`control`).

/// An opaque token for when process `pid` started, compared for equality only: on Linux the
/// `starttime` field of `/proc/<pid>/stat` (clock ticks since boot); elsewhere `None` (the
/// caller then relies on the heartbeat age alone).
pub fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count fields after the
    // last ')'. `starttime` is field 22, the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// This process's token, or `pid:<pid>` where the OS offers none (still a stable value for
/// the lifetime of the process).
pub fn own_start_time() -> String {
    let pid = std::process::id();
    start_time(pid).unwrap_or_else(|| format!("pid:{pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn own_start_time_is_stable_and_numeric() {
        let a = own_start_time();
        assert_eq!(a, own_start_time());
        assert!(a.chars().all(|c| c.is_ascii_digit()), "{a}");
    }
}
