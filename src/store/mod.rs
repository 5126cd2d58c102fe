//! The store: the one SQLite file of storage.md, and the only module that speaks SQL.
//!
//! Owns opening the file (modes 0600/0700, WAL verified, pragmas, migrations by role), the
//! [`Store`] handle with its single writer thread and its pool of read connections, and the
//! plumbing that runs every typed operation in two flavours: `async` for the MCP server
//! (writes go over a channel to the writer thread, reads run on tokio's blocking pool, so no
//! SQLite call ever runs on a tokio worker) and `_blocking` for synchronous callers (the
//! supervisor, the command line). The per-table SQL and the typed methods live in the sibling
//! files (`jobs.rs`, `output.rs`, `sessions.rs`, `requests.rs`, `approvals.rs`,
//! `retention.rs`); each adds its methods to `Store` through `store_ops!`.
//!
//! Not here: job policy (limits and dedup windows arrive as arguments), process inspection
//! (orphan detection decides; the store records), MCP shaping, and configuration parsing.
//!
//! Concurrency model. Several server processes and supervisors share the file. Inside one
//! process all writes are serialised on the writer thread; across processes every write is
//! one short `BEGIN IMMEDIATE … COMMIT` transaction, and the busy handler (`busy.rs`, up
//! to [`BUSY_TIMEOUT`]) makes a writer wait for another process's transaction instead of
//! failing. Reads see a consistent snapshot (one deferred transaction per read) and never
//! block writers (WAL).

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// Declares typed store operations, each in two flavours that share one table function:
/// `async fn $name` and `fn $blocking`. `write` operations run in one `BEGIN IMMEDIATE`
/// transaction on the writer thread; `read` operations run in one read transaction on a
/// pooled read connection. The table function is called as `$func(conn, &cx, args…)`.
macro_rules! store_ops {
    ($(
        $(#[$attr:meta])*
        $kind:ident fn $name:ident / $blocking:ident ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty
            = $func:path;
    )*) => {$(
        $(#[$attr])*
        pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, $crate::store::StoreError> {
            let cx = self.cx();
            let store = self;
            store_ops!(@async $kind store,
                move |conn: &rusqlite::Connection| $func(conn, &cx $(, $arg)*))
        }

        #[doc = concat!(
            "Blocking twin of [`Store::", stringify!($name),
            "`], for callers without an async runtime (the supervisor, the command line)."
        )]
        pub fn $blocking(&self $(, $arg: $ty)*) -> Result<$ret, $crate::store::StoreError> {
            let cx = self.cx();
            let store = self;
            store_ops!(@blocking $kind store,
                move |conn: &rusqlite::Connection| $func(conn, &cx $(, $arg)*))
        }
    )*};
    (@async write $store:ident, $f:expr) => { $store.write($f).await };
    (@async read $store:ident, $f:expr) => { $store.read($f).await };
    (@blocking write $store:ident, $f:expr) => { $store.write_blocking($f) };
    (@blocking read $store:ident, $f:expr) => { $store.read_blocking($f) };
}

mod approvals;
mod busy;
mod error;
mod jobs;
mod migrations;
mod output;
mod query;
mod redact;
mod requests;
mod retention;
mod sessions;
mod types;

pub use approvals::{ApprovalRow, NewApproval};
pub use error::StoreError;
pub use jobs::{
    ActiveJob, Admission, CallerCancel, CancelOutcome, Claim, ClaimLimits, DedupPolicy,
    JobCompletion, JobCounts, JobFilter, JobLiveness, JobRow, JobView, NewJob, QUEUED_LIVENESS_MS,
    ResponseWindow, SessionBinding, SupervisorId, WaitReason,
};
pub use migrations::{SCHEMA_VERSION, SUPERVISOR_MIN_VERSION};
pub use output::{
    EVENT_MESSAGE_MAX_CHARS, EVENTS_KEPT_PER_JOB, EventRow, NewEvent, OutputWindow, ProgressAck,
    ProgressBatch,
};
pub use redact::{RECORDED_RESPONSE_MAX_BYTES, redact_secrets, sha256_hex};
pub use requests::{
    CacheStatsFilter, CacheStatsRow, NewRequest, RequestCompletion, RequestFilter, RequestRow,
};
pub use retention::{RetentionPolicy, SWEEP_BATCH, SweepReport};
pub use sessions::{
    GATEWAY_SESSION_PREFIX, SessionRow, SessionUse, is_gateway_session_id, new_session_id,
};
pub use types::{
    ApprovalStatus, JobStatus, ParseValueError, RequestStatus, Runner, Stream, Usage, Warning,
};

/// How long a statement waits for another process's lock before failing with `busy`.
/// Write transactions are short, so waiting this long means something is wrong.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening keeps retrying the switch to WAL while other processes hold the file.
const WAL_SWITCH_DEADLINE: Duration = Duration::from_secs(15);

/// Read connections kept open between reads; more are opened on demand under load and
/// closed afterwards, so an idle server holds few.
const MAX_IDLE_READERS: usize = 4;

/// Prepared statements kept per connection.
const STATEMENT_CACHE_CAPACITY: usize = 96;

/// What the opening process is, which decides who migrates (storage.md "Migrations").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRole {
    /// Migrates the file to [`SCHEMA_VERSION`]; refuses a newer file.
    Server,
    /// Never migrates; accepts any version ≥ [`SUPERVISOR_MIN_VERSION`], newer included.
    Supervisor,
}

/// `[privacy]`: what the flight recorder may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privacy {
    /// Keep prompt and answer text in `requests`; when false only their SHA-256 and length.
    pub store_prompts: bool,
    /// Replace obvious secrets with `[REDACTED:<kind>]` in what the recorder writes.
    pub redact_secrets: bool,
}

impl Default for Privacy {
    fn default() -> Privacy {
        Privacy {
            store_prompts: true,
            redact_secrets: true,
        }
    }
}

/// Everything [`Store::open`] needs.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database file (`[persistence] path`); made absolute when opened.
    pub path: PathBuf,
    pub role: OpenRole,
    pub privacy: Privacy,
    /// `[persistence] retentionDays`, used only to fill `jobs.expires_at` at the terminal
    /// write (0 = never expires). The sweep itself takes its policy as an argument.
    pub job_retention_days: u32,
}

impl StoreOptions {
    /// Options with the default privacy settings and a 30-day job retention.
    pub fn new(path: impl Into<PathBuf>, role: OpenRole) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            role,
            privacy: Privacy::default(),
            job_retention_days: RetentionPolicy::default().job_days,
        }
    }
}

/// The per-call settings every table function receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx {
    pub privacy: Privacy,
    pub job_retention_days: u32,
}

/// A write waiting for the writer thread.
type WriteJob = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// A handle on the open store. Cheap to clone; every clone shares one writer thread and one
/// read pool. The writer thread stops (and the write connection closes) when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    cx: Cx,
    schema_version: i64,
    journal_mode: String,
    writer: Option<Sender<WriteJob>>,
    writer_thread: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Readers close first, so the write connection is the file's last one here and its
        // close checkpoints the WAL. Closing the channel ends the writer loop; joining lets
        // that close finish before the process goes on, e.g. to exit.
        self.readers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.writer.take();
        if let Some(handle) = self.writer_thread.take()
            && handle.thread().id() != thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("schema_version", &self.inner.schema_version)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when missing) the database file, verifies WAL, applies the pragmas and
    /// — for a server — the migrations, then starts the writer thread. Blocking; call it at
    /// startup. Every failure names the path and what to do (see [`StoreError`]).
    pub fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        let path = std::path::absolute(&opts.path).map_err(|source| StoreError::OpenFile {
            path: opts.path.clone(),
            source,
        })?;
        prepare_file(&path)?;
        let mut conn = open_connection(&path, ConnKind::Writer)?;
        let journal_mode = enable_wal(&conn, &path)?;
        let schema_version = match opts.role {
            OpenRole::Server => migrations::migrate(&mut conn, &path)?,
            OpenRole::Supervisor => migrations::check_for_supervisor(&conn, &path)?,
        };
        restrict_sidecars(&path)?;

        let (sender, receiver) = mpsc::channel::<WriteJob>();
        let writer_thread = thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || {
                for job in receiver.iter() {
                    run_write_job(&mut conn, job);
                }
            })
            .map_err(|source| StoreError::OpenFile {
                path: path.clone(),
                source,
            })?;

        Ok(Store {
            inner: Arc::new(Inner {
                path,
                cx: Cx {
                    privacy: opts.privacy,
                    job_retention_days: opts.job_retention_days,
                },
                schema_version,
                journal_mode,
                writer: Some(sender),
                writer_thread: Some(writer_thread),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The absolute path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the file when it was opened (after migrating, for a server).
    pub fn schema_version(&self) -> i64 {
        self.inner.schema_version
    }

    /// The journal mode SQLite confirmed at open: always `wal`.
    pub fn journal_mode(&self) -> &str {
        &self.inner.journal_mode
    }

    /// The privacy settings the recorder applies.
    pub fn privacy(&self) -> Privacy {
        self.inner.cx.privacy
    }

    pub(crate) fn cx(&self) -> Cx {
        self.inner.cx
    }

    fn stopped(&self) -> StoreError {
        StoreError::WriterStopped {
            path: self.inner.path.clone(),
        }
    }

    fn submit(&self, job: WriteJob) -> Result<(), StoreError> {
        let sender = self.inner.writer.as_ref().ok_or_else(|| self.stopped())?;
        sender.send(job).map_err(|_| self.stopped())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer thread and awaits it
    /// without blocking the runtime. An error rolls the transaction back. Dropping the
    /// returned future does not cancel a write already handed to the writer: it completes,
    /// and only its answer is lost — a write is never cut in half.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(run_in_write_transaction(conn, f));
        }))?;
        let result = answer.await.map_err(|_| self.stopped())?;
        result.map_err(|e| e.at(&self.inner.path))
    }

    /// [`Store::write`] for synchronous callers: blocks the calling thread until done.
    pub(crate) fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(run_in_write_transaction(conn, f));
        }))?;
        let result = answer.recv().map_err(|_| self.stopped())?;
        result.map_err(|e| e.at(&self.inner.path))
    }

    /// Runs `f` in one read transaction on tokio's blocking pool (never on a worker thread).
    /// Must be called from within a tokio runtime.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::ReaderFailed {
                path: self.inner.path.clone(),
                detail: e.to_string(),
            })?
    }

    /// [`Store::read`] on the calling thread.
    pub(crate) fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.inner.path, ConnKind::Reader)?,
        };
        let result = run_in_read_transaction(&mut conn, f);
        // A connection is only reused in a clean state: outside any transaction.
        if conn.is_autocommit() {
            let mut idle = self
                .inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result.map_err(|e| e.at(&self.inner.path))
    }
}

/// Runs one queued write; a panic inside it is contained so the writer thread (and every
/// later write) survives it. The caller sees `WriterStopped` for that one write, because its
/// reply channel was dropped during the unwind.
fn run_write_job(conn: &mut Connection, job: WriteJob) {
    if panic::catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
        tracing::error!("a store write panicked; it was rolled back and the writer goes on");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

fn run_in_write_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

fn run_in_read_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let value = f(&tx)?;
    tx.finish()?;
    Ok(value)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnKind {
    Writer,
    Reader,
}

/// Makes sure the directory exists (created 0700 when missing) and the file exists with mode
/// 0600 before SQLite touches it; SQLite then gives its `-wal` and `-shm` files the same
/// mode. An existing directory is left as it is: it may be shared (e.g. `/tmp`).
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| StoreError::OpenFile {
            path: path.to_path_buf(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| StoreError::OpenFile {
        path: path.to_path_buf(),
        source,
    })?;
    restrict_mode(path, meta.permissions().mode())
}

/// Sets mode 0600 on a file whose mode is anything else.
fn restrict_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    if mode & 0o777 == 0o600 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
        StoreError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Brings the `-wal` and `-shm` files to 0600 too, in case an earlier tool created them with
/// a wider mode.
fn restrict_sidecars(path: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let sidecar = PathBuf::from(name);
        // Missing (never created, or removed by another process closing the file) is fine.
        if let Ok(meta) = fs::metadata(&sidecar) {
            restrict_mode(&sidecar, meta.permissions().mode())?;
        }
    }
    Ok(())
}

fn open_connection(path: &Path, kind: ConnKind) -> Result<Connection, StoreError> {
    let open_err = |source: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = match kind {
        ConnKind::Writer => {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        }
        // Readers never create the file, and `query_only` below keeps them from writing;
        // they stay read-write at the VFS level because WAL readers need the -shm file.
        ConnKind::Reader => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    };
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    busy::install(&mut conn, BUSY_TIMEOUT).map_err(open_err)?;
    // Every typed operation uses cached statements; the default cache (16) is smaller than
    // the set a busy server cycles through.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    match kind {
        ConnKind::Writer => {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(open_err)?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(open_err)?;
        }
        ConnKind::Reader => {
            conn.pragma_update(None, "query_only", "ON")
                .map_err(open_err)?;
        }
    }
    Ok(conn)
}

/// Switches the file to WAL and checks that SQLite really did. When several processes open a
/// fresh file at once the switch can answer `SQLITE_BUSY`; that is retried with backoff. An
/// answer other than `wal` (a network filesystem answers `delete`) is retried briefly, then
/// refused: running without WAL is never a silent fallback.
fn enable_wal(conn: &Connection, path: &Path) -> Result<String, StoreError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(2);
    let mut refusals = 0;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok("wal".to_string()),
            Ok(mode) => {
                refusals += 1;
                if refusals >= 3 {
                    return Err(StoreError::WalRefused {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
            }
            Err(source) if error::is_busy(&source) => {
                if started.elapsed() >= WAL_SWITCH_DEADLINE {
                    return Err(StoreError::WalBusy {
                        path: path.to_path_buf(),
                        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        source,
                    });
                }
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the store's own unit tests.

    use super::*;

    /// A fresh server-role store in a new temp dir (kept alive by the returned guard).
    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        store_with(Privacy::default())
    }

    pub(crate) fn store_with(privacy: Privacy) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut opts = StoreOptions::new(dir.path().join("logs.db"), OpenRole::Server);
        opts.privacy = privacy;
        let store = Store::open(opts).expect("open store");
        (dir, store)
    }

    /// `EXPLAIN QUERY PLAN` of `sql` bound to `params`: one detail per line.
    pub(crate) fn query_plan(
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let details = stmt
            .query_map(params, |r| r.get::<_, String>("detail"))
            .expect("plan")
            .collect::<Result<Vec<_>, _>>()
            .expect("plan rows");
        details.join("\n")
    }

    /// Asserts that `plan` walks `table` through an index whose name contains `index`, reads no row it could skip (no
    /// `SCAN` of the table itself) and sorts nothing (no temp b-tree).
    pub(crate) fn assert_plan_uses(plan: &str, table: &str, index: &str) {
        assert!(
            plan.lines()
                .any(|l| l.contains(" INDEX ") && l.contains(index)),
            "{index} unused:\n{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "sorts:\n{plan}");
        for line in plan.lines() {
            assert!(
                !line.starts_with(&format!("SCAN {table}")) || line.contains(" INDEX "),
                "scans {table}:\n{plan}"
            );
        }
    }

    impl Store {
        /// Runs raw SQL in a write transaction (tests only: to age rows, break rules).
        pub(crate) fn exec_raw(&self, sql: &str) -> Result<(), StoreError> {
            let sql = sql.to_string();
            self.write_blocking(move |conn| Ok(conn.execute_batch(&sql)?))
        }

        /// Appends `n` copies of `table`'s first row, like the benchmark's seed: the
        /// columns in `fresh` get distinct values (the last 12 characters replaced by a
        /// counter), every other column — timestamps included — is copied as is.
        pub(crate) fn clone_first_row(&self, table: &str, n: usize, fresh: &[&str]) {
            let table_name = table.to_string();
            let columns: Vec<String> = self
                .read_blocking(move |conn| {
                    let mut stmt = conn.prepare(
                        "SELECT name FROM pragma_table_info(?1) WHERE NOT (pk = 1 AND name = 'seq')",
                    )?;
                    let names = stmt.query_map([table_name], |r| r.get(0))?;
                    Ok(names.collect::<Result<Vec<String>, _>>()?)
                })
                .expect("columns");
            let values: Vec<String> = columns
                .iter()
                .map(|c| {
                    if fresh.contains(&c.as_str()) {
                        format!("substr(t.{c}, 1, length(t.{c}) - 12) || printf('%012x', n.i)")
                    } else {
                        format!("t.{c}")
                    }
                })
                .collect();
            self.exec_raw(&format!(
                "INSERT INTO {table} ({}) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 SELECT {} FROM (SELECT * FROM {table} LIMIT 1) AS t, n",
                columns.join(", "),
                values.join(", ")
            ))
            .expect("clone rows");
        }

        /// Reads one integer with raw SQL (tests only).
        pub(crate) fn query_i64(&self, sql: &str) -> i64 {
            let sql = sql.to_string();
            self.read_blocking(move |conn| Ok(conn.query_row(&sql, [], |r| r.get(0))?))
                .expect("query")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const ONE_APPROVAL: &str = "INSERT INTO approvals \
        (id, at, cli, status, policy, score, threshold, prompt_sha256, operation) \
        VALUES ('a', 'x', 'claude', 'approved', 'balanced', 0, 5, 'h', 'claude_request')";

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn opening_an_empty_path_creates_everything() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        let path = data.join("logs.db");
        let store = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap();
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        assert_eq!(store.journal_mode(), "wal");
        assert_eq!(store.path(), path);
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&data), 0o700);
        for suffix in ["-wal", "-shm"] {
            let sidecar = PathBuf::from(format!("{}{suffix}", path.display()));
            if sidecar.exists() {
                assert_eq!(mode_of(&sidecar), 0o600, "{suffix}");
            }
        }

        let names: Vec<(String, String)> = store
            .read_blocking(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' \
                     ORDER BY type, name",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        for (kind, name) in [
            ("table", "jobs"),
            ("table", "job_output"),
            ("table", "job_events"),
            ("table", "sessions"),
            ("table", "requests"),
            ("table", "requests_fts"),
            ("table", "approvals"),
            ("view", "recent_requests"),
            ("view", "usage_by_day"),
            ("view", "job_overview"),
            ("index", "sessions_one_active_per_cli"),
            ("trigger", "requests_fts_insert"),
            ("trigger", "requests_fts_update"),
            ("trigger", "requests_fts_delete"),
        ] {
            assert!(
                names.iter().any(|(k, n)| k == kind && n == name),
                "{kind} {name} missing from {names:?}"
            );
        }
        // The views compile against the tables.
        for view in ["recent_requests", "usage_by_day", "job_overview"] {
            assert_eq!(store.query_i64(&format!("SELECT count(*) FROM {view}")), 0);
        }
        assert_eq!(store.query_i64("PRAGMA user_version"), SCHEMA_VERSION);
        assert_eq!(
            store
                .read_blocking(|c| Ok(
                    c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?
                ))
                .unwrap(),
            "wal"
        );
    }

    #[test]
    fn existing_wide_file_is_restricted_to_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap();
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn reopening_is_a_no_op() {
        let (dir, store) = store();
        store.exec_raw(ONE_APPROVAL).unwrap();
        drop(store);
        let again = Store::open(StoreOptions::new(
            dir.path().join("logs.db"),
            OpenRole::Server,
        ))
        .unwrap();
        assert_eq!(again.schema_version(), SCHEMA_VERSION);
        assert_eq!(again.query_i64("SELECT count(*) FROM approvals"), 1);
    }

    #[test]
    fn every_earlier_version_migrates_to_the_current_one() {
        for start in 0..SCHEMA_VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("logs.db");
            {
                let mut conn = Connection::open(&path).unwrap();
                let at = migrations::migrate_to(&mut conn, &path, start).unwrap();
                assert_eq!(at, start);
            }
            let store = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap();
            assert_eq!(store.schema_version(), SCHEMA_VERSION, "from {start}");
        }
    }

    /// v3 moves `jobs.response` last (a big answer's zeroblob then stays unexpanded):
    /// answers written before keep their value.
    #[test]
    fn a_version_2_file_keeps_its_answers_with_response_as_the_last_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(migrations::migrate_to(&mut conn, &path, 2).unwrap(), 2);
        }
        let v2 = Store::open(StoreOptions::new(&path, OpenRole::Supervisor)).unwrap();
        let (job, _, _) = jobs::tests::admit_key(&v2, "before the upgrade");
        v2.exec_raw(&format!(
            "UPDATE jobs SET status = 'completed', response = 'old answer', response_chars = 10 \
             WHERE id = '{}'",
            job.id
        ))
        .unwrap();
        drop(v2);
        let store = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap();
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        assert_eq!(
            store.query_i64(
                "SELECT name = 'response' FROM pragma_table_info('jobs') ORDER BY cid DESC LIMIT 1"
            ),
            1
        );
        assert_eq!(
            store.query_i64(
                "SELECT count(*) FROM pragma_table_info('jobs') WHERE name LIKE 'response%'"
            ),
            2
        );
        let w = store
            .read_response_blocking(job.id.clone(), 0, 100)
            .unwrap()
            .unwrap();
        assert_eq!(w.text.as_deref(), Some("old answer"));
    }

    #[test]
    fn a_version_1_file_with_jobs_and_requests_migrates_to_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(migrations::migrate_to(&mut conn, &path, 1).unwrap(), 1);
        }
        // A supervisor of this binary works on the v1 file without migrating it.
        let v1 = Store::open(StoreOptions::new(&path, OpenRole::Supervisor)).unwrap();
        assert_eq!(v1.schema_version(), 1);
        let (job, _, _) = jobs::tests::admit_key(&v1, "before the upgrade");
        drop(v1);

        let store = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap();
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        let indexes = |table: &str| -> Vec<String> {
            let table = table.to_string();
            store
                .read_blocking(move |conn| {
                    let mut stmt = conn.prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                         AND name NOT LIKE 'sqlite_%' ORDER BY name",
                    )?;
                    let names = stmt.query_map([table], |r| r.get(0))?;
                    Ok(names.collect::<Result<Vec<String>, _>>()?)
                })
                .unwrap()
        };
        assert_eq!(
            indexes("jobs"),
            [
                "jobs_by_cli_created_id",
                "jobs_by_correlation",
                "jobs_by_created_id",
                "jobs_by_finished",
                "jobs_by_provider_session",
                "jobs_by_request_key",
                "jobs_by_session",
                "jobs_by_status_created_id",
            ]
        );
        assert!(indexes("requests").contains(&"requests_cache_stats".to_string()));
        // The rows written before the upgrade read through the new indexes.
        let listed = store
            .list_jobs_blocking(JobFilter {
                status: Some(JobStatus::Queued),
                cli: Some(crate::providers::Provider::Claude),
                limit: 5,
                progress_limit: 0,
            })
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].job.id, job.id);
        let stats = store
            .cache_stats_blocking(CacheStatsFilter {
                since: chrono::Utc::now() - chrono::Duration::hours(1),
                session_id: None,
                stable_prefix_hash: None,
            })
            .unwrap();
        assert_eq!(stats.iter().map(|s| s.requests).sum::<i64>(), 1);
        let integrity: String = store
            .read_blocking(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(integrity, "ok");
    }

    #[test]
    fn a_newer_file_is_refused_by_servers_and_accepted_by_supervisors() {
        let (dir, store) = store();
        store.exec_raw("PRAGMA user_version = 99").unwrap();
        drop(store);
        let path = dir.path().join("logs.db");

        let err = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err:?}"
        );
        assert!(
            text.contains("written by a newer llm-cli-gateway"),
            "{text}"
        );
        assert!(text.contains("[persistence] path"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");

        let supervisor = Store::open(StoreOptions::new(&path, OpenRole::Supervisor)).unwrap();
        assert_eq!(supervisor.schema_version(), 99);
    }

    #[test]
    fn a_supervisor_refuses_an_unmigrated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let err = Store::open(StoreOptions::new(&path, OpenRole::Supervisor)).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooOld { found: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("llm-cli-gateway serve"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(StoreOptions::new(&path, OpenRole::Server)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not a valid SQLite database"), "{text}");
    }

    #[test]
    fn a_failed_write_rolls_back_and_the_writer_goes_on() {
        let (_dir, store) = store();
        let err = store
            .write_blocking(|conn| {
                conn.execute_batch(ONE_APPROVAL)?;
                Err::<(), _>(StoreError::InvalidArgument {
                    what: "test",
                    detail: "abort".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument { .. }));
        assert_eq!(store.query_i64("SELECT count(*) FROM approvals"), 0);

        let panicked = store.write_blocking(|_conn| -> Result<(), StoreError> {
            panic!("boom");
        });
        assert!(matches!(panicked, Err(StoreError::WriterStopped { .. })));
        store.exec_raw("CREATE TABLE t(x)").unwrap();
    }

    #[test]
    fn the_handle_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<Store>();
    }

    #[test]
    fn the_writer_thread_ends_with_the_last_handle() {
        let (_dir, store) = store();
        let weak = Arc::downgrade(&store.inner);
        let clone = store.clone();
        drop(store);
        assert!(weak.upgrade().is_some());
        drop(clone);
        assert!(weak.upgrade().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_reads_and_writes_work_from_a_runtime() {
        let (_dir, store) = store();
        store
            .write(|conn| Ok(conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (7)")?))
            .await
            .unwrap();
        let x: i64 = store
            .read(|conn| Ok(conn.query_row("SELECT x FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(x, 7);
        let readonly = store
            .read(|conn| Ok(conn.execute_batch("INSERT INTO t VALUES (8)")?))
            .await;
        assert!(readonly.is_err(), "read connections are query_only");
    }
}
