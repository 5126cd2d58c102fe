//! `llm-cli-gateway serve`: open the store, build the MCP server, serve stdio until the
//! client goes away or a signal asks us to stop.
//!
//! Exit rules (config-and-cli.md): 0 when stdin closes — also before `initialize`, which
//! rmcp reports as `ConnectionClosed` — and 0 on SIGTERM/SIGINT after a graceful stop.
//! With `[jobs] cancel_on_exit = true` both exits first cancel the jobs this server started
//! that still run (default: they run on, and their answers stay collectable).
//! Startup failures (bad config, unusable database) are reported by the caller with a
//! message naming the cause, and a non-zero exit. Only stderr carries logs: stdout is the
//! MCP channel.

use std::path::PathBuf;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;
use rmcp::transport::io::stdio_pipes;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Backend, Config, LoadedConfig};
use crate::mcp::{GatewayServer, GatewayState};
use crate::store::{OpenRole, Privacy, RetentionPolicy, Store, StoreOptions};

/// How long `cancel_on_exit` waits for in-process jobs to record their cancel.
const EXIT_CANCEL_GRACE: Duration = Duration::from_secs(5);

/// How often the retention sweep runs after the one at startup.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Why `serve` could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot create a private temporary directory for the {backend} backend: {source}")]
    TempDir {
        backend: &'static str,
        source: std::io::Error,
    },
    #[error(
        "cannot create the data directory {}: {source} (set LLM_GATEWAY_HOME to a writable directory)",
        path.display()
    )]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
    #[error("the MCP connection failed during initialization: {0}")]
    Initialize(String),
}

/// The open store, and the private directory that holds it when it is not durable (removed
/// when this value drops, that is when the server exits).
pub struct OpenedStore {
    pub store: Store,
    _private_dir: Option<tempfile::TempDir>,
}

/// Opens (and migrates) the database the configuration asks for.
///
/// `memory` and `none` still get a real SQLite file, in a private 0700 temp dir removed at
/// exit: the same code serves every backend, and sessions work for the server's lifetime.
/// With `none` it holds no jobs and no flight recorder rows.
pub fn open_store(config: &Config) -> Result<OpenedStore, ServeError> {
    let privacy = Privacy {
        store_prompts: config.privacy.store_prompts,
        redact_secrets: config.privacy.redact_secrets,
    };
    let (path, private_dir): (PathBuf, _) = match config.persistence.backend {
        Backend::Sqlite => (config.persistence.path.clone(), None),
        backend @ (Backend::Memory | Backend::None) => {
            let dir = tempfile::Builder::new()
                .prefix("llm-cli-gateway-")
                .tempdir()
                .map_err(|source| ServeError::TempDir {
                    backend: backend.as_str(),
                    source,
                })?;
            (dir.path().join("logs.db"), Some(dir))
        }
    };
    let store = Store::open(StoreOptions {
        path,
        role: OpenRole::Server,
        privacy,
        job_retention_days: config.persistence.retention_days,
    })?;
    Ok(OpenedStore {
        store,
        _private_dir: private_dir,
    })
}

/// Runs the stdio MCP server to completion.
pub fn run(loaded: LoadedConfig) -> Result<(), ServeError> {
    let data_dir = &loaded.config.data_dir;
    crate::paths::ensure_private_dir(data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let opened = open_store(&loaded.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(serve_stdio(loaded, opened.store.clone()));
    // A blocking stdin read may still be parked on a runtime thread; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    drop(opened);
    result
}

async fn serve_stdio(loaded: LoadedConfig, store: Store) -> Result<(), ServeError> {
    let retention = RetentionPolicy {
        job_days: loaded.config.persistence.retention_days,
        request_days: loaded.config.persistence.request_retention_days,
        session_ttl_days: loaded.config.persistence.session_ttl_days,
    };
    tokio::spawn(sweep_periodically(store.clone(), retention));
    // Jobs whose supervisor died while no server was watching are marked orphaned now, not
    // only when someone next reads them.
    let orphan_store = store.clone();
    tokio::task::spawn_blocking(move || {
        match crate::jobs::control::detect_orphans(&orphan_store) {
            Ok(orphans) if !orphans.is_empty() => {
                tracing::warn!(count = orphans.len(), "jobs orphaned by a dead supervisor")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "orphan detection at startup failed"),
        }
    });

    let mut sigterm = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let shutdown = async move {
        tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        }
    };
    tokio::pin!(shutdown);

    let cancel_on_exit = loaded.config.jobs.cancel_on_exit;
    let state = GatewayState::new(loaded, store);
    let jobs = std::sync::Arc::clone(&state.jobs);
    let server = GatewayServer::new(state);
    let running = tokio::select! {
        started = server.serve(stdio_pipes()) => match started {
            Ok(running) => running,
            Err(ServerInitializeError::ConnectionClosed(_)) => {
                tracing::info!("stdin closed before initialize; exiting");
                return Ok(());
            }
            Err(error) => return Err(ServeError::Initialize(error.to_string())),
        },
        signal = &mut shutdown => {
            tracing::info!(signal, "stopping before initialize");
            return Ok(());
        }
    };
    tracing::info!("MCP client connected");
    let cancel = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            tracing::info!(?quit, "MCP connection ended; exiting");
        }
        signal = &mut shutdown => {
            tracing::info!(signal, "stopping");
            cancel.cancel();
        }
    }
    if cancel_on_exit {
        jobs.cancel_started_jobs(EXIT_CANCEL_GRACE).await;
    }
    Ok(())
}

/// Deletes expired jobs, requests and sessions at startup and then hourly. The store
/// deletes in small batches, so requests interleave with a large sweep.
async fn sweep_periodically(store: Store, policy: RetentionPolicy) {
    let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticker.tick().await;
        match store.sweep(policy, chrono::Utc::now()).await {
            Ok(report) => tracing::debug!(?report, "retention sweep done"),
            Err(error) => tracing::warn!(%error, "retention sweep failed; will retry"),
        }
    }
}
