//! The schema, as an ordered list of migrations versioned by `PRAGMA user_version`.
//!
//! Owns every `CREATE` statement (tables, indexes, the FTS index and its triggers, the
//! Datasette views) and the rules of who migrates: a server applies the missing steps, each
//! in its own `BEGIN IMMEDIATE` transaction, and refuses a file newer than it knows; a
//! supervisor never migrates and accepts any version at least [`SUPERVISOR_MIN_VERSION`].
//! Not here: opening the file or its pragmas (`mod.rs`), and any data access.
//!
//! Adding a version = appending one `Migration` to [`MIGRATIONS`]; a released step is never
//! edited. Keep steps additive (new tables, new nullable columns, new indexes and views;
//! replacing an index no SQL names is fine): supervisors of the previous binary
//! keep writing to the file after an upgrade until their jobs end. That is also why no
//! column carries a `CHECK (status IN …)`: a new status must not need a table rebuild.
//! A step may also move a column when every statement names it (v3): old supervisors'
//! statements name columns, never positions.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// One schema step: the SQL that takes the file from `version - 1` to `version`.
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// Every step, oldest first; versions are consecutive from 1.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: V1,
    },
    Migration {
        version: 2,
        sql: V2,
    },
    Migration {
        version: 3,
        sql: V3,
    },
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 3;

/// The oldest schema a supervisor of this binary can work with. Raise it only when a
/// migration adds something the supervisor itself reads or writes.
pub const SUPERVISOR_MIN_VERSION: i64 = 1;

// A supervisor started by this binary's server must accept the file that server wrote.
const _: () = assert!(SUPERVISOR_MIN_VERSION <= SCHEMA_VERSION);

/// Version 1: jobs and their output, sessions, the flight recorder with its full-text index,
/// approvals, and the views people open in Datasette.
const V1: &str = r#"
CREATE TABLE jobs (
    id                    TEXT PRIMARY KEY,           -- UUID v7
    correlation_id        TEXT NOT NULL,
    request_key           TEXT NOT NULL,              -- dedup key (jobs.md "Dedup")
    cli                   TEXT NOT NULL,              -- provider key
    model                 TEXT,
    -- queued | running | completed | failed | canceled | orphaned
    status                TEXT NOT NULL,
    runner                TEXT NOT NULL,              -- supervisor|in-process
    program               TEXT NOT NULL,
    -- argv with the prompt replaced by <prompt sha256:…>
    argv                  TEXT NOT NULL CHECK (json_valid(argv)),
    env                   TEXT NOT NULL CHECK (json_valid(env)),    -- env additions
    cwd                   TEXT,
    -- gateway session (gw-…), kept after the session itself is deleted
    session_id            TEXT,
    idle_timeout_ms       INTEGER,
    timeout_ms            INTEGER,
    created_at            TEXT NOT NULL,
    queued_at             TEXT NOT NULL,              -- start of the wait the queue timeout counts
    started_at            TEXT,
    finished_at           TEXT,
    expires_at            TEXT,                       -- finished_at + retention in force then
    supervisor_pid        INTEGER,
    supervisor_start_time TEXT,
    pgid                  INTEGER,                    -- the CLI's process group
    pgid_start_time       TEXT,
    heartbeat_at          TEXT,
    last_activity_at      TEXT,
    cancel_requested_at   TEXT,
    exit_code             INTEGER,
    end_reason            TEXT,
    error_category        TEXT,
    error                 TEXT,
    stdout_bytes          INTEGER NOT NULL DEFAULT 0,
    stderr_bytes          INTEGER NOT NULL DEFAULT 0,
    output_truncated      INTEGER NOT NULL DEFAULT 0 CHECK (output_truncated IN (0, 1)),
    response              TEXT,                       -- the full parsed answer, stored once
    response_chars        INTEGER,
    provider_session_id   TEXT,
    stop_reason           TEXT,
    input_tokens          INTEGER,
    output_tokens         INTEGER,
    cache_read_tokens     INTEGER,
    cache_creation_tokens INTEGER,
    reasoning_tokens      INTEGER,
    cost_usd              REAL,
    warnings              TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(warnings)),
    last_event_seq        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_status_created ON jobs(status, created_at);
CREATE INDEX jobs_by_request_key ON jobs(request_key, created_at);
CREATE INDEX jobs_by_created ON jobs(created_at);
CREATE INDEX jobs_by_cli_created ON jobs(cli, created_at);
CREATE INDEX jobs_by_correlation ON jobs(correlation_id);
CREATE INDEX jobs_by_session ON jobs(session_id, status) WHERE session_id IS NOT NULL;
CREATE INDEX jobs_by_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE job_output (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    stream      TEXT NOT NULL,                        -- stdout|stderr
    seq         INTEGER NOT NULL,                     -- 1, 2, … per job and stream
    byte_offset INTEGER NOT NULL,                     -- offset of data[0] in the stream
    len         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (job_id, stream, seq)
);
CREATE UNIQUE INDEX job_output_by_offset ON job_output(job_id, stream, byte_offset);

CREATE TABLE job_events (
    job_id  TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id                    TEXT PRIMARY KEY,           -- gw- + UUID v7
    cli                   TEXT NOT NULL,
    provider_session_id   TEXT,
    description           TEXT,
    cwd                   TEXT,
    is_active             INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    created_at            TEXT NOT NULL,
    last_used_at          TEXT NOT NULL,
    request_count         INTEGER NOT NULL DEFAULT 0,
    input_tokens          INTEGER NOT NULL DEFAULT 0,
    output_tokens         INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_usd              REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sessions_one_active_per_cli ON sessions(cli) WHERE is_active = 1;
CREATE INDEX sessions_by_provider_id ON sessions(cli, provider_session_id)
    WHERE provider_session_id IS NOT NULL;
CREATE INDEX sessions_by_last_used ON sessions(last_used_at);

-- `seq` is the rowid the full-text index points at; an explicit INTEGER PRIMARY KEY keeps it
-- stable across VACUUM, which may renumber implicit rowids.
CREATE TABLE requests (
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,       -- UUID v7
    correlation_id        TEXT NOT NULL,
    datetime_utc          TEXT NOT NULL,
    completed_at          TEXT,
    cli                   TEXT NOT NULL,
    model                 TEXT,
    prompt                TEXT,                       -- NULL when [privacy] store_prompts = false
    prompt_sha256         TEXT NOT NULL,
    prompt_chars          INTEGER NOT NULL,
    response              TEXT,                       -- at most 1 MiB of the answer
    response_sha256       TEXT,
    response_chars        INTEGER,
    response_truncated    INTEGER NOT NULL DEFAULT 0 CHECK (response_truncated IN (0, 1)),
    -- started | deferred | completed | failed | canceled | orphaned
    status                TEXT NOT NULL,
    exit_code             INTEGER,
    error_category        TEXT,
    error_message         TEXT,
    duration_ms           INTEGER,
    input_tokens          INTEGER,
    output_tokens         INTEGER,
    cache_read_tokens     INTEGER,
    cache_creation_tokens INTEGER,
    reasoning_tokens      INTEGER,
    cost_usd              REAL,
    session_id            TEXT,
    provider_session_id   TEXT,
    job_id                TEXT,                       -- kept after the job itself is deleted
    deduped               INTEGER NOT NULL DEFAULT 0 CHECK (deduped IN (0, 1)),
    stop_reason           TEXT,
    stable_prefix_hash    TEXT,
    stable_prefix_tokens  INTEGER,
    cache_control_blocks  INTEGER,
    approval_decision     TEXT,
    warnings              TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(warnings)),
    working_dir           TEXT,
    gateway_version       TEXT NOT NULL
);
CREATE INDEX requests_by_correlation ON requests(correlation_id, datetime_utc);
CREATE INDEX requests_by_job ON requests(job_id) WHERE job_id IS NOT NULL;
CREATE INDEX requests_by_datetime ON requests(datetime_utc);
CREATE INDEX requests_by_session ON requests(session_id, datetime_utc) WHERE session_id IS NOT NULL;
CREATE INDEX requests_by_prefix ON requests(stable_prefix_hash, datetime_utc)
    WHERE stable_prefix_hash IS NOT NULL;

-- External-content FTS5 index over the recorder's text. `content=[requests]` is the spelling
-- Datasette recognises to offer full-text search on the requests table.
CREATE VIRTUAL TABLE requests_fts USING fts5(
    prompt, response,
    content=[requests], content_rowid=[seq]
);
CREATE TRIGGER requests_fts_insert AFTER INSERT ON requests BEGIN
    INSERT INTO requests_fts(rowid, prompt, response)
    VALUES (new.seq, new.prompt, new.response);
END;
CREATE TRIGGER requests_fts_delete AFTER DELETE ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, prompt, response)
    VALUES ('delete', old.seq, old.prompt, old.response);
END;
CREATE TRIGGER requests_fts_update AFTER UPDATE OF prompt, response ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, prompt, response)
    VALUES ('delete', old.seq, old.prompt, old.response);
    INSERT INTO requests_fts(rowid, prompt, response)
    VALUES (new.seq, new.prompt, new.response);
END;

CREATE TABLE approvals (
    id                    TEXT PRIMARY KEY,           -- UUID v7
    at                    TEXT NOT NULL,
    cli                   TEXT NOT NULL,
    correlation_id        TEXT,
    status                TEXT NOT NULL,              -- approved|denied
    policy                TEXT NOT NULL,              -- strict|balanced|permissive
    score                 INTEGER NOT NULL,
    threshold             INTEGER NOT NULL,
    reasons               TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(reasons)),
    prompt_sha256         TEXT NOT NULL,              -- never the prompt itself
    operation             TEXT NOT NULL,
    requested_mcp_servers TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(requested_mcp_servers)),
    bypass_requested      INTEGER NOT NULL DEFAULT 0 CHECK (bypass_requested IN (0, 1))
);
CREATE INDEX approvals_by_at ON approvals(at);
CREATE INDEX approvals_by_cli_at ON approvals(cli, at);

CREATE VIEW recent_requests AS
SELECT datetime_utc, cli, model, status, duration_ms, input_tokens, output_tokens,
       cache_read_tokens, cost_usd, deduped, error_category,
       substr(prompt, 1, 120) AS prompt_start, correlation_id, job_id, session_id, id
FROM requests
ORDER BY datetime_utc DESC;

CREATE VIEW usage_by_day AS
SELECT substr(datetime_utc, 1, 10) AS day, cli, model,
       count(*) AS requests,
       sum(deduped) AS deduped,
       sum(coalesce(input_tokens, 0)) AS input_tokens,
       sum(coalesce(output_tokens, 0)) AS output_tokens,
       sum(coalesce(cache_read_tokens, 0)) AS cache_read_tokens,
       sum(coalesce(cache_creation_tokens, 0)) AS cache_creation_tokens,
       sum(coalesce(reasoning_tokens, 0)) AS reasoning_tokens,
       round(sum(coalesce(cost_usd, 0)), 6) AS cost_usd
FROM requests
GROUP BY day, cli, model
ORDER BY day DESC, cli, model;

CREATE VIEW job_overview AS
SELECT id, cli, status, model, created_at, started_at, finished_at,
       CAST(round((julianday(coalesce(started_at, finished_at,
                                      strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
                   - julianday(created_at)) * 86400000) AS INTEGER) AS queued_ms,
       CASE WHEN started_at IS NOT NULL THEN
           CAST(round((julianday(coalesce(finished_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
                       - julianday(started_at)) * 86400000) AS INTEGER)
       END AS duration_ms,
       exit_code, end_reason, error_category, error,
       stdout_bytes, stderr_bytes, output_truncated,
       cancel_requested_at IS NOT NULL AS cancel_requested,
       input_tokens, output_tokens, cost_usd,
       correlation_id, session_id, provider_session_id, supervisor_pid, heartbeat_at
FROM jobs
ORDER BY created_at DESC;
"#;

/// Version 2: indexes shaped for the flight-recorder reads on a big file (quality.md: 100 000
/// rows, each read ≤ 50 ms). Only indexes change, so a supervisor of the previous binary keeps
/// working on a migrated file ([`SUPERVISOR_MIN_VERSION`] stays 1); no SQL names an index.
///
/// - Job lists walk `ORDER BY created_at DESC, id DESC` newest first. Indexes ending at
///   `created_at` left the `id` tie-break to a sort of every row with the same timestamp
///   (under any `status`/`cli` filter too); with `id` in the index the walk stops after
///   LIMIT rows. They replace the v1 indexes they extend, which no query needs any more.
/// - The usage baseline of a resumed provider session looked at every job of the CLI.
/// - `cache-state://global` sums the last 24 h of requests per (cli, model). A covering
///   index led by `(cli, model, datetime_utc)` answers each pair with one range scan of
///   index entries and no sort (see `store::requests::cache_stats`); one led by
///   `datetime_utc` would still sort every row of the window for the GROUP BY.
const V2: &str = r#"
DROP INDEX jobs_by_created;
DROP INDEX jobs_by_status_created;
DROP INDEX jobs_by_cli_created;
CREATE INDEX jobs_by_created_id ON jobs(created_at, id);
CREATE INDEX jobs_by_status_created_id ON jobs(status, created_at, id);
CREATE INDEX jobs_by_cli_created_id ON jobs(cli, created_at, id);
CREATE INDEX jobs_by_provider_session ON jobs(cli, provider_session_id)
    WHERE provider_session_id IS NOT NULL;
CREATE INDEX requests_cache_stats ON requests(
    cli, model, datetime_utc,
    deduped, input_tokens, cache_read_tokens, cache_creation_tokens, cost_usd
);
"#;

/// Version 3: `jobs.response` becomes the table's last column, with its values unchanged.
///
/// An answer over 1 MiB is written as `zeroblob(len)` and then filled through incremental
/// blob I/O (`store::jobs::finish`). SQLite leaves a zeroblob unexpanded only when nothing
/// with data follows it in the row's record; in the middle of the row it materializes the
/// zeros and copies them into the record: 40 MB of memory for a 20 MB answer. At the end
/// the record stays small and the answer is never held by SQLite at all.
///
/// The name is kept, so supervisors of the previous binary (which write `response` by name)
/// keep working; the copy and `DROP COLUMN` rewrite every job row once.
const V3: &str = r#"
ALTER TABLE jobs RENAME COLUMN response TO response_v2;
ALTER TABLE jobs ADD COLUMN response TEXT;  -- the full parsed answer; > 1 MiB: BLOB of UTF-8
UPDATE jobs SET response = response_v2 WHERE response_v2 IS NOT NULL;
ALTER TABLE jobs DROP COLUMN response_v2;
"#;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the file up to [`SCHEMA_VERSION`] (server role) and returns the version it is at.
///
/// Several servers may open a fresh file at once: each step re-reads the version inside its
/// `BEGIN IMMEDIATE` transaction, so exactly one process applies it and the others see it
/// done.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<i64, StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies the steps up to `target` (tests build older files with it).
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<i64, StoreError> {
    let open_err = |source: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let found = user_version(conn).map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    // An up-to-date file (every start but the first) takes no write lock at all.
    for step in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        let step_err = |source: rusqlite::Error| StoreError::Migration {
            path: path.to_path_buf(),
            version: step.version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(step_err)?;
        let current = user_version(&tx).map_err(step_err)?;
        if current >= step.version {
            continue;
        }
        tx.execute_batch(step.sql).map_err(step_err)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(step_err)?;
        tx.commit().map_err(step_err)?;
    }
    user_version(conn).map_err(open_err)
}

/// The supervisor's check: never migrates; accepts any version it can work with, including
/// newer ones (after an upgrade, old supervisors finish their jobs).
pub(crate) fn check_for_supervisor(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let found = user_version(conn).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if found < SUPERVISOR_MIN_VERSION {
        return Err(StoreError::SchemaTooOld {
            path: path.to_path_buf(),
            found,
            needed: SUPERVISOR_MIN_VERSION,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_end_at_the_current_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
