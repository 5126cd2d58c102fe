//! Job reads: one job, a job with its newest progress (a `JobSnapshot`'s data), lists,
//! the active jobs orphan detection inspects, counts for health reports, and windows of the
//! parsed answer.
//!
//! Not here: raw output windows and events (`output.rs`).

use rusqlite::{Connection, OptionalExtension, blob::Blob, params};

use super::{
    ActiveJob, JOB_COLUMNS, JobCounts, JobFilter, JobRow, JobView, ResponseWindow, get,
    job_from_row,
};
use crate::providers::Provider;
use crate::store::output;
use crate::store::query::ListQuery;
use crate::store::types::{parse_col, sql_int};
use crate::store::{Cx, Store, StoreError, Usage};

pub(crate) fn get_op(
    conn: &Connection,
    _cx: &Cx,
    id: String,
) -> Result<Option<JobRow>, StoreError> {
    get(conn, &id)
}

pub(crate) fn view(
    conn: &Connection,
    _cx: &Cx,
    id: String,
    progress_limit: u32,
) -> Result<Option<JobView>, StoreError> {
    let Some(job) = get(conn, &id)? else {
        return Ok(None);
    };
    let progress = output::recent_events(conn, &id, progress_limit)?;
    Ok(Some(JobView { job, progress }))
}

/// Job lists' order: newest first, `id` breaking ties. The `jobs_by_*created_id` indexes
/// (schema v2) hold exactly this order, so a list reads its LIMIT rows and stops, whatever
/// the filter and however many jobs share a `created_at`.
pub(crate) const LIST_ORDER: &str = "created_at DESC, id DESC";

/// The list query of `filter`, without its order and limit.
pub(crate) fn list_query(filter: &JobFilter) -> ListQuery {
    ListQuery::new()
        .eq("status", filter.status.map(|status| status.as_str()))
        .eq("cli", filter.cli.map(Provider::key))
}

pub(crate) fn list(
    conn: &Connection,
    _cx: &Cx,
    filter: JobFilter,
) -> Result<Vec<JobView>, StoreError> {
    let jobs = list_query(&filter).run(
        conn,
        &format!("SELECT {JOB_COLUMNS} FROM jobs"),
        LIST_ORDER,
        filter.limit,
        job_from_row,
    )?;
    jobs.into_iter()
        .map(|job| {
            let progress = output::recent_events(conn, &job.id, filter.progress_limit)?;
            Ok(JobView { job, progress })
        })
        .collect()
}

pub(crate) fn active(conn: &Connection, _cx: &Cx) -> Result<Vec<ActiveJob>, StoreError> {
    let jobs = conn
        .prepare_cached(
            "SELECT id, cli, status, created_at, supervisor_pid, supervisor_start_time, \
                 heartbeat_at, pgid, pgid_start_time \
             FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id",
        )?
        .query_map([], |row| {
            Ok(ActiveJob {
                id: row.get("id")?,
                cli: parse_col(row, "cli")?,
                status: parse_col(row, "status")?,
                created_at: row.get("created_at")?,
                supervisor_pid: row.get("supervisor_pid")?,
                supervisor_start_time: row.get("supervisor_start_time")?,
                heartbeat_at: row.get("heartbeat_at")?,
                pgid: row.get("pgid")?,
                pgid_start_time: row.get("pgid_start_time")?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jobs)
}

/// Queued, running and orphaned counts for every CLI (zero included). Rows of a CLI this
/// binary does not know (written by a newer one) are not counted.
pub(crate) fn counts(conn: &Connection, _cx: &Cx) -> Result<Vec<JobCounts>, StoreError> {
    let mut counts: Vec<JobCounts> = Provider::ALL
        .iter()
        .map(|&cli| JobCounts {
            cli,
            queued: 0,
            running: 0,
            orphaned: 0,
        })
        .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT cli, status, count(*) FROM jobs \
         WHERE status IN ('queued', 'running', 'orphaned') GROUP BY cli, status",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (cli, status, n) = row?;
        let Some(entry) = counts.iter_mut().find(|c| c.cli.key() == cli) else {
            continue;
        };
        match status.as_str() {
            "queued" => entry.queued = n,
            "running" => entry.running = n,
            _ => entry.orphaned = n,
        }
    }
    Ok(counts)
}

/// A window of the parsed answer by character offset; `None` for an unknown job.
///
/// The answer is read through SQLite's incremental blob I/O (which also reads TEXT), so
/// only the bytes up to the window's end are read and only the window is held in memory.
/// `substr(response, …)` would make SQLite load the whole value first: a sync answer of
/// 20 MB cut to its first 100 000 characters cost the server 20 MB.
pub(crate) fn read_response(
    conn: &Connection,
    _cx: &Cx,
    job_id: String,
    char_offset: u64,
    max_chars: u64,
) -> Result<Option<ResponseWindow>, StoreError> {
    let offset = sql_int(char_offset);
    // `typeof()` of a column is answered from the record header, without loading the value
    // (`response IS NOT NULL` in a result column loads it: 20 MB for nothing).
    let found: Option<(i64, Option<i64>, bool)> = conn
        .prepare_cached(
            "SELECT rowid, response_chars, typeof(response) != 'null' FROM jobs WHERE id = ?1",
        )?
        .query_row([&job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((rowid, total, has_response)) = found else {
        return Ok(None);
    };
    let text = if has_response {
        let blob = conn.blob_open("main", "jobs", "response", rowid, true)?;
        Some(char_window(&blob, char_offset, max_chars)?)
    } else {
        None
    };
    let total_chars = total.unwrap_or(0);
    let taken = text
        .as_ref()
        .map_or(0, |t| i64::try_from(t.chars().count()).unwrap_or(i64::MAX));
    let end = offset.saturating_add(taken);
    Ok(Some(ResponseWindow {
        text,
        offset,
        total_chars,
        next_offset: (end < total_chars).then_some(end),
    }))
}

/// The sums behind [`usage_baseline`]; `jobs_by_provider_session` (schema v2) finds the
/// session's jobs without looking at the CLI's others.
pub(crate) const USAGE_BASELINE_SQL: &str = "SELECT count(*), \
             CASE WHEN count(input_tokens) = count(*) THEN sum(input_tokens) END, \
             CASE WHEN count(output_tokens) = count(*) THEN sum(output_tokens) END, \
             CASE WHEN count(cache_read_tokens) = count(*) THEN sum(cache_read_tokens) END, \
             CASE WHEN count(cache_creation_tokens) = count(*) \
                  THEN sum(cache_creation_tokens) END, \
             CASE WHEN count(reasoning_tokens) = count(*) THEN sum(reasoning_tokens) END, \
             CASE WHEN count(cost_usd) = count(*) THEN sum(cost_usd) END \
         FROM jobs \
         WHERE cli = ?1 AND provider_session_id = ?2 \
           AND status NOT IN ('queued', 'running') \
           AND coalesce(input_tokens, output_tokens, cache_read_tokens, \
                        cache_creation_tokens, reasoning_tokens, cost_usd) IS NOT NULL";

/// Bytes read per step while looking for a window's ends.
const WINDOW_SCAN_BYTES: usize = 64 * 1024;

/// `take` characters of the UTF-8 text in `blob` from character `skip` (fewer at the end),
/// like SQL `substr(text, skip + 1, take)`.
fn char_window(blob: &Blob<'_>, skip: u64, take: u64) -> Result<String, StoreError> {
    let mut buf = vec![0u8; WINDOW_SCAN_BYTES.min(blob.len())];
    let start = nth_char_start(blob, &mut buf, 0, skip)?;
    let end = nth_char_start(blob, &mut buf, start, take)?;
    drop(buf);
    let mut window = vec![0u8; end - start];
    blob.read_at_exact(&mut window, start)?;
    // Both ends are character starts, so this is valid unless the stored text was not.
    Ok(String::from_utf8(window)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The byte offset of the character `n` characters after byte `from` (itself a character
/// start), or the blob's length when the text ends first.
fn nth_char_start(
    blob: &Blob<'_>,
    buf: &mut [u8],
    from: usize,
    n: u64,
) -> Result<usize, StoreError> {
    // A byte starts a character unless it is a UTF-8 continuation byte (0b10xx_xxxx).
    let starts = |b: &&u8| (**b as i8) >= -0x40;
    let mut pos = from;
    let mut left = n;
    while pos < blob.len() {
        let read = blob.read_at(buf, pos)?;
        if read == 0 {
            break;
        }
        let chunk = &buf[..read];
        let count = chunk.iter().filter(starts).count() as u64;
        if count <= left {
            left -= count;
            pos += read;
            continue;
        }
        // `left < count`, so the `left`-th start is in this chunk.
        let index = chunk
            .iter()
            .enumerate()
            .filter(|(_, b)| starts(b))
            .nth(usize::try_from(left).unwrap_or(usize::MAX))
            .map_or(read, |(i, _)| i);
        return Ok(pos + index);
    }
    Ok(blob.len())
}

/// The running totals a provider session stood at after its last recorded run: the sum of
/// the per-invocation figures of every ended job of `cli` on that session that reported
/// usage (running totals telescope: each run stored its total minus the one before). A
/// figure is `None` when any of those jobs lacks it (the chain is broken); the whole answer
/// is `None` when no such job is recorded (providers.md: "Usage is normalised per
/// invocation").
pub(crate) fn usage_baseline(
    conn: &Connection,
    _cx: &Cx,
    cli: Provider,
    provider_session_id: String,
) -> Result<Option<Usage>, StoreError> {
    let row = conn.prepare_cached(USAGE_BASELINE_SQL)?.query_row(
        params![cli.key(), provider_session_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Usage {
                    input_tokens: r.get(1)?,
                    output_tokens: r.get(2)?,
                    cache_read_tokens: r.get(3)?,
                    cache_creation_tokens: r.get(4)?,
                    reasoning_tokens: r.get(5)?,
                    cost_usd: r.get(6)?,
                },
            ))
        },
    )?;
    Ok((row.0 > 0).then_some(row.1))
}

impl Store {
    store_ops! {
        /// One job, without its answer text.
        read fn get_job / get_job_blocking(job_id: String) -> Option<JobRow> = get_op;

        /// The running totals a provider session stood at after its last recorded run
        /// (`None`: nothing recorded) — the usage baseline of a run that resumes it.
        read fn usage_baseline / usage_baseline_blocking(
            cli: Provider,
            provider_session_id: String,
        ) -> Option<Usage> = usage_baseline;

        /// One job with its newest `progress_limit` events (a `JobSnapshot`'s data).
        read fn job_view / job_view_blocking(job_id: String, progress_limit: u32)
            -> Option<JobView> = view;

        /// Jobs newest first, filtered by status and CLI, each with its newest events.
        read fn list_jobs / list_jobs_blocking(filter: JobFilter) -> Vec<JobView> = list;

        /// Every queued or running job with its runner's identity, for orphan detection.
        read fn active_jobs / active_jobs_blocking() -> Vec<ActiveJob> = active;

        /// Queued/running/orphaned counts per CLI across the whole file.
        read fn job_counts / job_counts_blocking() -> Vec<JobCounts> = counts;

        /// A window of the job's parsed answer: `max_chars` characters from `char_offset`.
        read fn read_response / read_response_blocking(
            job_id: String,
            char_offset: u64,
            max_chars: u64,
        ) -> Option<ResponseWindow> = read_response;
    }
}
