//! `StoreError`: every way the store can fail, worded for the person who has to fix it.
//!
//! Owns the error type and the translation of SQLite result codes into causes and fixes
//! (a full disk, a corrupt file, a lock held too long, a network filesystem). Not here: the
//! mapping to MCP error categories, which the MCP layer does once at its edge (a store fault
//! is `internal` there; `UnknownSession`/`SessionCliMismatch` are `invalid_input`;
//! `UnknownJob` is the "Job not found" result).

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use crate::providers::Provider;

/// A store failure. Messages name the file and the cause, and end with a `Fix:` when there is
/// something a person can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the data directory {}: {source}. Fix: create it (mode 0700), or set \
         [persistence] path to a file in a writable local directory",
        dir.display()
    )]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot open the database file {}: {source}. Fix: make it a regular file this user \
         owns and can write, or set [persistence] path to a file on a local disk",
        path.display()
    )]
    OpenFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot restrict {} to mode 0600: {source}. Fix: make this user its owner (chown), or \
         set [persistence] path to a file of your own",
        path.display()
    )]
    Permissions {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{}", describe_sqlite(path, "cannot open", source))]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "{} cannot use SQLite's WAL journal mode (SQLite answered journal_mode={mode}); this \
         happens on network filesystems (NFS, SMB, some FUSE mounts), where several processes \
         cannot share the file safely. Fix: set [persistence] path to a file on a local disk",
        path.display()
    )]
    WalRefused { path: PathBuf, mode: String },

    #[error(
        "{} stayed locked by other processes for {waited_ms} ms while switching it to WAL mode \
         ({source}). Fix: retry; if it persists, find the process holding it (`fuser {}`) or \
         set [persistence] path to another file",
        path.display(),
        path.display()
    )]
    WalBusy {
        path: PathBuf,
        waited_ms: u64,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "{} has schema version {found}, newer than this llm-cli-gateway ({}) knows (version \
         {known}): the file was written by a newer llm-cli-gateway, and opening it here could \
         lose data. Fix: upgrade llm-cli-gateway, or set [persistence] path to another file",
        path.display(),
        env!("CARGO_PKG_VERSION")
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error(
        "{} has schema version {found}, older than this supervisor needs (version {needed}). \
         Fix: run `llm-cli-gateway serve` (or `doctor`) once with this [persistence] path so it \
         migrates the file",
        path.display()
    )]
    SchemaTooOld {
        path: PathBuf,
        found: i64,
        needed: i64,
    },

    #[error(
        "migrating {} to schema version {version} failed, and that step was rolled back: \
         {source}. Fix: check free disk space and the file's permissions, or set \
         [persistence] path to another file",
        path.display()
    )]
    Migration {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },

    /// A SQLite failure while serving an operation, with the file it happened on.
    #[error("{}", describe_sqlite(path, "database error on", source))]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A SQLite failure not yet tagged with its file. Table functions produce it through `?`;
    /// the `Store` turns it into [`StoreError::Database`] before a caller sees it.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error(
        "the store's writer thread for {} has stopped (a write panicked or the store is \
         shutting down). Fix: restart llm-cli-gateway; the file itself is intact",
        path.display()
    )]
    WriterStopped { path: PathBuf },

    #[error("a read of {} did not complete: {detail}", path.display())]
    ReaderFailed { path: PathBuf, detail: String },

    #[error("Unknown gateway session \"{0}\"")]
    UnknownSession(String),

    #[error("gateway session \"{id}\" belongs to {session_cli}, not {cli}")]
    SessionCliMismatch {
        id: String,
        session_cli: Provider,
        cli: Provider,
    },

    #[error("Job not found: {0}")]
    UnknownJob(String),

    #[error("invalid {what}: {detail}")]
    InvalidArgument { what: &'static str, detail: String },
}

impl StoreError {
    /// Tags an untagged SQLite failure with the file it happened on.
    pub(crate) fn at(self, path: &Path) -> StoreError {
        match self {
            StoreError::Sqlite(source) => StoreError::Database {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        }
    }

    /// True for failures that may succeed when retried (a lock held too long by another
    /// process); the MCP layer reports them as retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database { source, .. }
            | StoreError::Sqlite(source)
            | StoreError::Open { source, .. } => is_busy(source),
            StoreError::WalBusy { .. } | StoreError::WriterStopped { .. } => true,
            _ => false,
        }
    }
}

/// True when SQLite gave up waiting for a lock another connection holds.
pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// One sentence naming the file, the cause and, where there is one, the fix.
fn describe_sqlite(path: &Path, doing: &str, err: &rusqlite::Error) -> String {
    let p = path.display();
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "{p} stayed locked by another process longer than the busy timeout ({err}). Fix: \
             retry; if it persists, find the process holding it (`fuser {p}`)"
        ),
        Some(ErrorCode::DiskFull) => format!(
            "the disk holding {p} is full ({err}). Fix: free some space, or set \
             [persistence] path to a file on another disk"
        ),
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => format!(
            "{p} cannot be written ({err}). Fix: make the file and its directory writable by \
             this user, or set [persistence] path elsewhere"
        ),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => format!(
            "{p} is not a valid SQLite database or is damaged ({err}). Fix: move the file \
             aside (a fresh one is created on the next start), or set [persistence] path to \
             another file"
        ),
        Some(ErrorCode::CannotOpen) => format!(
            "{doing} {p} ({err}). Fix: check that its directory exists and is writable, or \
             set [persistence] path to a file on a local disk"
        ),
        Some(ErrorCode::SystemIoFailure | ErrorCode::FileLockingProtocolFailed) => format!(
            "I/O error on {p} ({err}). Fix: check the disk; on a network filesystem set \
             [persistence] path to a file on a local disk"
        ),
        _ => format!("{doing} {p}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_the_fix() {
        let err = StoreError::WalRefused {
            path: PathBuf::from("/mnt/nfs/logs.db"),
            mode: "delete".into(),
        };
        let text = err.to_string();
        assert!(text.contains("/mnt/nfs/logs.db"), "{text}");
        assert!(text.contains("journal_mode=delete"), "{text}");
        assert!(text.contains("[persistence] path"), "{text}");

        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let text = StoreError::Sqlite(full)
            .at(Path::new("/x/logs.db"))
            .to_string();
        assert!(text.contains("disk holding /x/logs.db is full"), "{text}");
    }

    #[test]
    fn busy_is_retryable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(StoreError::Sqlite(busy).is_retryable());
        assert!(!StoreError::UnknownJob("x".into()).is_retryable());
    }
}
