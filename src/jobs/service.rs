//! [`JobService`]: the jobs layer as the MCP handlers see it — submit a request, start its
//! runner, wait for it, cancel it.
//!
//! Owns: the choice of runner per job (supervisor or in-process), the wake-up channel of
//! each job this server started (a counter bumped on every "progress"/"done" notice, from
//! the in-process runner or the supervisor's pipe), a caller's explicit cancel (the job is
//! canceled only when that caller's request row is its only open one, counted in the store
//! so callers of every server process on the file count), and `[jobs] cancel_on_exit`.
//! Not here: admission rules (`admission`), the run itself (`runner`), MCP shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Backend, Config};
use crate::exec::CancelToken;
use crate::models::ModelRegistry;
use crate::providers::AnyRequest;
use crate::store::{CallerCancel, CancelOutcome, Runner, Store, StoreError};

use super::admission::{self, Admitted, JobError};
use super::control;
use super::runner::{self, Notice, RunPlan};
use super::supervisor;

/// A job started by this server: its wake-up counter, its in-process cancel token and
/// how many of this server's callers wait on it.
struct Local {
    wake: watch::Sender<u64>,
    cancel: CancelToken,
}

/// The jobs layer of one server process. Cheap to share (`Arc`).
pub struct JobService {
    config: Config,
    models: ModelRegistry,
    store: Store,
    local: Mutex<HashMap<String, Arc<Local>>>,
}

impl JobService {
    pub fn new(config: Config, models: ModelRegistry, store: Store) -> Arc<JobService> {
        Arc::new(JobService {
            config,
            models,
            store,
            local: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn models(&self) -> &ModelRegistry {
        &self.models
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runner new jobs get (`memory`/`none` always run in-process).
    pub fn runner(&self) -> Runner {
        admission::runner_for(&self.config)
    }

    /// How long a sync request waits before it is deferred; `None` = never defer (`0`, or
    /// backend `none`, where no job id could be collected later).
    pub fn sync_deadline(&self) -> Option<Duration> {
        let ms = self.config.jobs.sync_deadline_ms;
        (ms > 0 && self.config.persistence.backend != Backend::None)
            .then(|| Duration::from_millis(ms))
    }

    /// Admits `request` and, unless it attached to an existing job, starts its runner.
    /// `correlation_id` is the caller's, or one it generated.
    pub async fn submit(
        self: &Arc<Self>,
        request: AnyRequest,
        correlation_id: String,
    ) -> Result<Admitted, JobError> {
        let admitted = admission::admit(self, request, correlation_id).await?;
        if let Some(plan) = &admitted.plan {
            self.start(plan.clone());
        }
        Ok(admitted)
    }

    fn start(self: &Arc<Self>, plan: RunPlan) {
        let (wake, _) = watch::channel(0u64);
        let local = Arc::new(Local {
            wake,
            cancel: CancelToken::new(),
        });
        self.local_map()
            .insert(plan.job_id.clone(), Arc::clone(&local));
        let this = Arc::clone(self);
        let job_id = plan.job_id.clone();
        let notify = move |notice: Notice| {
            local.wake.send_modify(|n| *n += 1);
            if notice == Notice::Done {
                this.local_map().remove(&job_id);
            }
        };
        match self.runner() {
            Runner::InProcess => {
                let store = self.store.clone();
                let cancel = self.local_of(&plan.job_id).map(|l| l.cancel.clone());
                let cancel = cancel.unwrap_or_default();
                tokio::task::spawn_blocking(move || {
                    runner::run_in_process(&store, &plan, &cancel, &notify);
                });
            }
            Runner::Supervisor => {
                let job_id = plan.job_id.clone();
                if let Err(error) =
                    supervisor::spawn(&self.config, &plan, self.store.path(), notify)
                {
                    tracing::error!(job = %job_id, %error, "cannot start the supervisor");
                    let store = self.store.clone();
                    let this = Arc::clone(self);
                    tokio::task::spawn_blocking(move || {
                        runner::fail_unstarted(
                            &store,
                            &job_id,
                            crate::error::ErrorCategory::Internal,
                            format!("cannot start the job's supervisor: {error}"),
                        );
                        if let Some(local) = this.local_map().remove(&job_id) {
                            local.wake.send_modify(|n| *n += 1);
                        }
                    });
                }
            }
        }
    }

    fn local_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Local>>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn local_of(&self, job_id: &str) -> Option<Arc<Local>> {
        self.local_map().get(job_id).cloned()
    }

    /// A receiver bumped on every notice of a job this server started and that still runs;
    /// `None` otherwise (the waiter polls the row).
    pub fn subscribe(&self, job_id: &str) -> Option<watch::Receiver<u64>> {
        self.local_of(job_id).map(|l| l.wake.subscribe())
    }

    /// One caller's explicit cancel (`notifications/cancelled`): the job is canceled only
    /// when `request_id` is its last open request row, across every server on the file;
    /// otherwise just that row ends `canceled` and the job runs on. A canceled running
    /// job's runner is woken at once (in-process token, or `SIGTERM` to its supervisor)
    /// instead of at its next poll of the flag.
    pub async fn cancel_for_caller(
        &self,
        job_id: &str,
        request_id: &str,
    ) -> Result<CallerCancel, StoreError> {
        let outcome = self
            .store
            .cancel_for_request(job_id.to_string(), request_id.to_string())
            .await?;
        if outcome == CallerCancel::Job(CancelOutcome::Requested) {
            self.wake_canceled(job_id).await;
        }
        Ok(outcome)
    }

    /// Trips the runner of a job whose cancel flag is set.
    async fn wake_canceled(&self, job_id: &str) {
        if let Some(local) = self.local_of(job_id) {
            local.cancel.cancel();
        }
        let store = self.store.clone();
        let job = job_id.to_string();
        let _ = tokio::task::spawn_blocking(move || control::wake_supervisor(&store, &job)).await;
    }

    /// `[jobs] cancel_on_exit`: cancels every job this server started that still runs (a
    /// supervisor gets `SIGTERM` and finishes the job itself), then waits — at most
    /// `grace` — for the in-process ones to write their terminal state before the process
    /// exits under them. Jobs other servers started are left alone.
    pub async fn cancel_started_jobs(&self, grace: Duration) {
        let started: Vec<(String, Arc<Local>)> = self
            .local_map()
            .iter()
            .map(|(id, local)| (id.clone(), Arc::clone(local)))
            .collect();
        let mut waiting = Vec::new();
        for (job_id, local) in started {
            match self.store.request_cancel(job_id.clone()).await {
                Ok(CancelOutcome::Requested) => {
                    self.wake_canceled(&job_id).await;
                    waiting.push(local.wake.subscribe());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(job = %job_id, %error, "cannot cancel at exit"),
            }
            tracing::info!(job = %job_id, "canceled at exit (cancel_on_exit)");
        }
        if self.runner() != Runner::InProcess {
            return;
        }
        let all_done = async {
            for mut wake in waiting {
                // The sender is dropped once the runner reported Done.
                while wake.changed().await.is_ok() {}
            }
        };
        let _ = tokio::time::timeout(grace, all_done).await;
    }
}
