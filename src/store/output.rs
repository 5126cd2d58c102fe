//! A job's captured output (`job_output`) and progress events (`job_events`).
//!
//! Output is bytes until someone parses it: chunks are appended as BLOBs with a per-stream
//! `seq` and the stream's byte offset, never rewritten, and read back by byte offset without
//! touching earlier chunks (the older system's cost was quadratic in output size). Events keep
//! the newest [`EVENTS_KEPT_PER_JOB`] per job, numbered by a strictly increasing `seq`.
//!
//! Not here: the output cap (the executor enforces it and says so through
//! `JobCompletion::output_truncated`), UTF-8 boundaries of raw windows (the reader of raw
//! output adjusts them), and parsing.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::jobs;
use super::types::{JobStatus, Stream, sql_int};
use super::{Cx, Store, StoreError, redact};
use crate::clock::now_iso;

/// Progress events kept per job; older ones are deleted as new ones arrive.
pub const EVENTS_KEPT_PER_JOB: i64 = 200;

/// Longest event message stored, in characters (jobs.md "Progress").
pub const EVENT_MESSAGE_MAX_CHARS: usize = 200;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub message: String,
}

/// A progress event to store: `kind` is `started`, `thinking`, `tool`, `file`, `writing`,
/// `usage` or `finished` (the parsers' vocabulary; not checked here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: String,
    pub message: String,
}

/// Bytes of one stream read back from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputWindow {
    pub data: Vec<u8>,
    /// The byte offset of `data[0]` in the stream.
    pub offset: i64,
    /// Bytes of this stream stored so far.
    pub total_bytes: i64,
}

impl OutputWindow {
    /// Where the next window starts; `None` when this one reaches the end.
    pub fn next_offset(&self) -> Option<i64> {
        let end = self.offset + i64::try_from(self.data.len()).unwrap_or(i64::MAX);
        (end < self.total_bytes).then_some(end)
    }
}

/// Everything a runner has to store since its last flush, written in one transaction
/// (the supervisor flushes at most every 250 ms or 256 KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressBatch {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Time of the newest output byte, if any arrived.
    pub last_activity_at: Option<DateTime<Utc>>,
    pub events: Vec<NewEvent>,
    /// Also refresh `heartbeat_at`.
    pub heartbeat: bool,
}

/// The state after a [`ProgressBatch`] was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProgressAck {
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub last_event_seq: i64,
    pub status: JobStatus,
    pub cancel_requested: bool,
}

fn bytes_column(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout_bytes",
        Stream::Stderr => "stderr_bytes",
    }
}

/// Bytes of `stream` stored so far; `None` for an unknown job.
fn stream_total(
    conn: &Connection,
    job_id: &str,
    stream: Stream,
) -> Result<Option<i64>, StoreError> {
    let sql = format!("SELECT {} FROM jobs WHERE id = ?1", bytes_column(stream));
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([job_id], |r| r.get(0))
        .optional()?)
}

/// Appends one chunk; returns the stream's new total. Empty data stores nothing.
pub(crate) fn append(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    stream: Stream,
    data: Vec<u8>,
) -> Result<i64, StoreError> {
    append_chunk(conn, &job_id, stream, &data, &now_iso())
}

fn append_chunk(
    conn: &Connection,
    job_id: &str,
    stream: Stream,
    data: &[u8],
    at: &str,
) -> Result<i64, StoreError> {
    let offset = stream_total(conn, job_id, stream)?
        .ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))?;
    if data.is_empty() {
        return Ok(offset);
    }
    let len = i64::try_from(data.len()).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO job_output (job_id, stream, seq, byte_offset, len, at, data) \
         VALUES (?1, ?2, \
                 (SELECT coalesce(max(seq), 0) + 1 FROM job_output \
                  WHERE job_id = ?1 AND stream = ?2), \
                 ?3, ?4, ?5, ?6)",
    )?
    .execute(params![job_id, stream.as_str(), offset, len, at, data])?;
    let sql = format!(
        "UPDATE jobs SET {col} = {col} + ?2 WHERE id = ?1",
        col = bytes_column(stream)
    );
    conn.prepare_cached(&sql)?.execute(params![job_id, len])?;
    Ok(offset + len)
}

/// Up to `max_bytes` of `stream` from `byte_offset` (clamped to what is stored).
pub(crate) fn read(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    stream: Stream,
    byte_offset: u64,
    max_bytes: u64,
) -> Result<OutputWindow, StoreError> {
    let total = stream_total(conn, &job_id, stream)?
        .ok_or_else(|| StoreError::UnknownJob(job_id.clone()))?;
    read_range(
        conn,
        &job_id,
        stream,
        sql_int(byte_offset),
        sql_int(max_bytes),
        total,
    )
}

/// The last `max_bytes` of `stream` (e.g. the stderr tail of a failed job).
pub(crate) fn read_tail(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    stream: Stream,
    max_bytes: u64,
) -> Result<OutputWindow, StoreError> {
    let total = stream_total(conn, &job_id, stream)?
        .ok_or_else(|| StoreError::UnknownJob(job_id.clone()))?;
    let max = sql_int(max_bytes);
    read_range(
        conn,
        &job_id,
        stream,
        total.saturating_sub(max).max(0),
        max,
        total,
    )
}

fn read_range(
    conn: &Connection,
    job_id: &str,
    stream: Stream,
    offset: i64,
    max: i64,
    total: i64,
) -> Result<OutputWindow, StoreError> {
    let start = offset.clamp(0, total);
    let end = start.saturating_add(max).min(total);
    let mut data = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
    if start < end {
        // Only the chunks overlapping [start, end): the one containing `start` (found through
        // the offset index) and those after it.
        let mut stmt = conn.prepare_cached(
            "SELECT byte_offset, data FROM job_output \
             WHERE job_id = ?1 AND stream = ?2 AND byte_offset < ?4 \
               AND byte_offset >= (SELECT coalesce(max(byte_offset), 0) FROM job_output \
                                   WHERE job_id = ?1 AND stream = ?2 AND byte_offset <= ?3) \
             ORDER BY byte_offset",
        )?;
        let mut rows = stmt.query(params![job_id, stream.as_str(), start, end])?;
        while let Some(row) = rows.next()? {
            let chunk_start: i64 = row.get(0)?;
            let chunk = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let chunk_end = chunk_start + i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            let from = usize::try_from(start.max(chunk_start) - chunk_start).unwrap_or(0);
            let to = usize::try_from(end.min(chunk_end) - chunk_start).unwrap_or(0);
            if from < to {
                data.extend_from_slice(&chunk[from..to]);
            }
        }
    }
    Ok(OutputWindow {
        data,
        offset: start,
        total_bytes: total,
    })
}

/// Stores one event (message cut to [`EVENT_MESSAGE_MAX_CHARS`], secret shapes redacted when
/// asked) and drops the job's events older than the newest [`EVENTS_KEPT_PER_JOB`].
pub(crate) fn add_event(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    kind: String,
    message: String,
) -> Result<i64, StoreError> {
    insert_event(conn, cx, &job_id, &kind, &message, &now_iso())
}

fn insert_event(
    conn: &Connection,
    cx: &Cx,
    job_id: &str,
    kind: &str,
    message: &str,
    at: &str,
) -> Result<i64, StoreError> {
    let message = if cx.privacy.redact_secrets {
        redact::redact_secrets(message)
    } else {
        message.into()
    };
    let message: String = message.chars().take(EVENT_MESSAGE_MAX_CHARS).collect();
    // The counter lives on the job row, so seq keeps increasing after old events are gone.
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE jobs SET last_event_seq = last_event_seq + 1 WHERE id = ?1 \
             RETURNING last_event_seq",
        )?
        .query_row([job_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownJob(job_id.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO job_events (job_id, seq, at, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![job_id, seq, at, kind, message])?;
    conn.prepare_cached("DELETE FROM job_events WHERE job_id = ?1 AND seq <= ?2")?
        .execute(params![job_id, seq - EVENTS_KEPT_PER_JOB])?;
    Ok(seq)
}

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: row.get("seq")?,
        at: row.get("at")?,
        kind: row.get("kind")?,
        message: row.get("message")?,
    })
}

/// Events with `seq > after_seq`, oldest first, at most `limit`.
pub(crate) fn events_after(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let events = conn
        .prepare_cached(
            "SELECT seq, at, kind, message FROM job_events \
             WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![job_id, after_seq, limit], event_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// The newest `limit` events, oldest first.
pub(crate) fn recent_events(
    conn: &Connection,
    job_id: &str,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut events = conn
        .prepare_cached(
            "SELECT seq, at, kind, message FROM job_events \
             WHERE job_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?
        .query_map(params![job_id, limit], event_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    events.reverse();
    Ok(events)
}

fn recent_events_op(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    recent_events(conn, &job_id, limit)
}

/// The job's newest event seq (0 before any); `None` for an unknown job.
pub(crate) fn latest_event_seq(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last_event_seq FROM jobs WHERE id = ?1")?
        .query_row([job_id], |r| r.get(0))
        .optional()?)
}

/// Stores a runner's batch — output chunks, activity time, events, heartbeat — at once.
pub(crate) fn record_progress(
    conn: &Connection,
    cx: &Cx,
    job_id: String,
    batch: ProgressBatch,
) -> Result<ProgressAck, StoreError> {
    let now = now_iso();
    let stdout_bytes = append_chunk(conn, &job_id, Stream::Stdout, &batch.stdout, &now)?;
    let stderr_bytes = append_chunk(conn, &job_id, Stream::Stderr, &batch.stderr, &now)?;
    if let Some(at) = batch.last_activity_at {
        jobs::record_activity(conn, cx, job_id.clone(), at)?;
    }
    for event in &batch.events {
        insert_event(conn, cx, &job_id, &event.kind, &event.message, &now)?;
    }
    let liveness = if batch.heartbeat {
        jobs::heartbeat(conn, cx, job_id.clone())?
    } else {
        jobs::liveness(conn, &job_id)?
    };
    let last_event_seq = latest_event_seq(conn, cx, job_id.clone())?.unwrap_or(0);
    Ok(ProgressAck {
        stdout_bytes,
        stderr_bytes,
        last_event_seq,
        status: liveness.status,
        cancel_requested: liveness.cancel_requested,
    })
}

impl Store {
    store_ops! {
        /// Appends one chunk of a stream (never rewriting earlier ones) and returns the
        /// stream's new byte total. `Err(UnknownJob)` for an id not in the file.
        write fn append_output / append_output_blocking(
            job_id: String,
            stream: Stream,
            data: Vec<u8>,
        ) -> i64 = append;

        /// Up to `max_bytes` of a stream from `byte_offset`, with the stream's total.
        read fn read_output / read_output_blocking(
            job_id: String,
            stream: Stream,
            byte_offset: u64,
            max_bytes: u64,
        ) -> OutputWindow = read;

        /// The last `max_bytes` of a stream.
        read fn read_output_tail / read_output_tail_blocking(
            job_id: String,
            stream: Stream,
            max_bytes: u64,
        ) -> OutputWindow = read_tail;

        /// Stores a progress event and returns its seq (strictly increasing per job).
        write fn add_event / add_event_blocking(
            job_id: String,
            kind: String,
            message: String,
        ) -> i64 = add_event;

        /// Events after `after_seq`, oldest first, at most `limit`.
        read fn events_after / events_after_blocking(
            job_id: String,
            after_seq: i64,
            limit: u32,
        ) -> Vec<EventRow> = events_after;

        /// The newest `limit` events, oldest first.
        read fn recent_events / recent_events_blocking(job_id: String, limit: u32)
            -> Vec<EventRow> = recent_events_op;

        /// The newest event seq of a job (0 before any event); `None` for an unknown job.
        read fn latest_event_seq / latest_event_seq_blocking(job_id: String) -> Option<i64>
            = latest_event_seq;

        /// Stores a runner's whole flush (output, activity, events, heartbeat) in one
        /// transaction and reports the job's state back (e.g. a pending cancel).
        write fn record_progress / record_progress_blocking(
            job_id: String,
            batch: ProgressBatch,
        ) -> ProgressAck = record_progress;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::tests::{ROOMY, admit_key, claim_now};
    use crate::store::testing::store;

    #[test]
    fn output_is_appended_in_chunks_and_read_by_offset() {
        let (_dir, store) = store();
        let (job, _, _) = admit_key(&store, "k");
        claim_now(&store, &job.id, ROOMY);
        let id = || job.id.clone();
        assert_eq!(
            store
                .append_output_blocking(id(), Stream::Stdout, b"hello ".to_vec())
                .unwrap(),
            6
        );
        assert_eq!(
            store
                .append_output_blocking(id(), Stream::Stdout, Vec::new())
                .unwrap(),
            6
        );
        store
            .append_output_blocking(id(), Stream::Stderr, b"warn".to_vec())
            .unwrap();
        // "é" split across two chunks comes back intact: bytes are stored as they came.
        store
            .append_output_blocking(id(), Stream::Stdout, b"w\xc3".to_vec())
            .unwrap();
        assert_eq!(
            store
                .append_output_blocking(id(), Stream::Stdout, b"\xa9rld".to_vec())
                .unwrap(),
            12
        );

        let all = store
            .read_output_blocking(id(), Stream::Stdout, 0, 1000)
            .unwrap();
        assert_eq!(String::from_utf8(all.data.clone()).unwrap(), "hello wérld");
        assert_eq!(
            (all.offset, all.total_bytes, all.next_offset()),
            (0, 12, None)
        );

        let middle = store
            .read_output_blocking(id(), Stream::Stdout, 4, 5)
            .unwrap();
        assert_eq!(middle.data, b"o w\xc3\xa9");
        assert_eq!(middle.next_offset(), Some(9));
        let past = store
            .read_output_blocking(id(), Stream::Stdout, 99, 5)
            .unwrap();
        assert!(past.data.is_empty());
        assert_eq!(past.offset, 12);
        let tail = store
            .read_output_tail_blocking(id(), Stream::Stdout, 3)
            .unwrap();
        assert_eq!(tail.data, b"rld");
        assert_eq!(tail.offset, 9);
        let err = store
            .read_output_blocking("nope".into(), Stream::Stdout, 0, 1)
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownJob(_)));

        let job_row = store.get_job_blocking(id()).unwrap().unwrap();
        assert_eq!((job_row.stdout_bytes, job_row.stderr_bytes), (12, 4));
        // Chunks are numbered per stream and never rewritten.
        assert_eq!(
            store.query_i64(&format!(
                "SELECT max(seq) FROM job_output WHERE job_id = '{}' AND stream = 'stdout'",
                job.id
            )),
            3
        );
    }

    #[test]
    fn events_keep_the_newest_200_with_increasing_seq() {
        let (_dir, store) = store();
        let (job, _, _) = admit_key(&store, "k");
        assert_eq!(
            store.latest_event_seq_blocking(job.id.clone()).unwrap(),
            Some(0)
        );
        for i in 1..=205 {
            let seq = store
                .add_event_blocking(job.id.clone(), "tool".into(), format!("Read file{i}"))
                .unwrap();
            assert_eq!(seq, i);
        }
        assert_eq!(
            store.query_i64("SELECT count(*) FROM job_events"),
            EVENTS_KEPT_PER_JOB
        );
        assert_eq!(store.query_i64("SELECT min(seq) FROM job_events"), 6);
        assert_eq!(
            store.latest_event_seq_blocking(job.id.clone()).unwrap(),
            Some(205)
        );
        assert_eq!(store.latest_event_seq_blocking("x".into()).unwrap(), None);

        let after = store.events_after_blocking(job.id.clone(), 200, 3).unwrap();
        let seqs: Vec<i64> = after.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![201, 202, 203]);
        let recent = store.recent_events_blocking(job.id.clone(), 2).unwrap();
        assert_eq!(
            recent.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![204, 205]
        );
        assert_eq!(recent[1].message, "Read file205");
    }

    #[test]
    fn event_messages_are_cut_and_redacted() {
        let (_dir, store) = store();
        let (job, _, _) = admit_key(&store, "k");
        let long = "é".repeat(500);
        store
            .add_event_blocking(job.id.clone(), "writing".into(), long)
            .unwrap();
        store
            .add_event_blocking(
                job.id.clone(),
                "tool".into(),
                "Bash curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123'".into(),
            )
            .unwrap();
        let events = store.recent_events_blocking(job.id.clone(), 10).unwrap();
        assert_eq!(events[0].message.chars().count(), EVENT_MESSAGE_MAX_CHARS);
        assert!(events[1].message.contains("Bearer [REDACTED:bearer_token]"));
        let err = store
            .add_event_blocking("nope".into(), "tool".into(), "x".into())
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownJob(_)));
    }

    #[test]
    fn a_progress_batch_is_stored_at_once() {
        let (_dir, store) = store();
        let (job, _, _) = admit_key(&store, "k");
        claim_now(&store, &job.id, ROOMY);
        store.request_cancel_blocking(job.id.clone()).unwrap();
        let ack = store
            .record_progress_blocking(
                job.id.clone(),
                ProgressBatch {
                    stdout: b"out".to_vec(),
                    stderr: b"errors".to_vec(),
                    last_activity_at: Some(Utc::now()),
                    events: vec![
                        NewEvent {
                            kind: "thinking".into(),
                            message: "planning".into(),
                        },
                        NewEvent {
                            kind: "tool".into(),
                            message: "Read src/main.rs".into(),
                        },
                    ],
                    heartbeat: true,
                },
            )
            .unwrap();
        assert_eq!(
            ack,
            ProgressAck {
                stdout_bytes: 3,
                stderr_bytes: 6,
                last_event_seq: 2,
                status: JobStatus::Running,
                cancel_requested: true,
            }
        );
        let row = store.get_job_blocking(job.id.clone()).unwrap().unwrap();
        assert!(row.last_activity_at.is_some());
    }
}
