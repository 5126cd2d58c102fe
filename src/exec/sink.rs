//! Where output goes: the caller's [`OutputSink`], called on the thread running
//! [`run`](super::run) as chunks arrive.
//!
//! Owns: the sink trait, [`Stream`] and [`Activity`]. Not here: storing or parsing output;
//! the executor never holds more than the chunks in flight between its reader threads and
//! the sink.

use std::time::SystemTime;

/// Which pipe a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Whether a chunk counts as activity for the idle timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Resets the idle timer and updates the activity times of the report.
    Progress,
    /// Delivered, but the run is still idle (codex `Reconnecting…` lines).
    Noise,
}

/// Receives a run's events in order, on the thread that called [`run`](super::run).
///
/// Chunks are exactly the bytes the child wrote, split wherever the pipe reads split them
/// (a multi-byte UTF-8 character may straddle two chunks). A sink that must stop the run
/// (its store failed) trips the [`CancelToken`](super::CancelToken) it was given.
pub trait OutputSink {
    /// The child was spawned (it already leads its own process group, `pgid == pid`).
    /// Called once, before any output.
    fn on_spawn(&mut self, pid: u32) {
        let _ = pid;
    }

    /// A chunk of output, read at `at`. Returns whether it counts as activity.
    fn on_output(&mut self, stream: Stream, bytes: &[u8], at: SystemTime) -> Activity;
}

impl<F> OutputSink for F
where
    F: FnMut(Stream, &[u8], SystemTime) -> Activity,
{
    fn on_output(&mut self, stream: Stream, bytes: &[u8], at: SystemTime) -> Activity {
        self(stream, bytes, at)
    }
}
