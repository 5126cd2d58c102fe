//! [`JobService`]: the jobs layer as the MCP handlers see it — submit a request, start its
//! runner, wait for it, cancel it.
//!
//! Owns: the choice of runner per job (supervisor or in-process), the wake-up channel of
//! each job this server started (a counter bumped on every "progress"/"done" notice, from
//! the in-process runner or the supervisor's pipe), and the count of this server's callers
//! attached to each job (an explicit cancel cancels the job only when it is the last one).
//! Not here: admission rules (`admission`), the run itself (`runner`), MCP shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Backend, Config};
use crate::exec::CancelToken;
use crate::models::ModelRegistry;
use crate::providers::AnyRequest;
use crate::store::{CancelOutcome, Runner, Store, StoreError};

use super::admission::{self, Admitted, JobError};
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
    /// This server's callers waiting per job (dedup attaches several to one job).
    attached: Mutex<HashMap<String, usize>>,
}

impl JobService {
    pub fn new(config: Config, models: ModelRegistry, store: Store) -> Arc<JobService> {
        Arc::new(JobService {
            config,
            models,
            store,
            local: Mutex::new(HashMap::new()),
            attached: Mutex::new(HashMap::new()),
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
                            "internal",
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

    /// Counts a caller of this server waiting on `job_id`; the guard uncounts it.
    pub fn attach(self: &Arc<Self>, job_id: &str) -> Attachment {
        let mut attached = self.attached_map();
        *attached.entry(job_id.to_string()).or_insert(0) += 1;
        Attachment {
            service: Arc::clone(self),
            job_id: job_id.to_string(),
        }
    }

    fn attached_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.attached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests the job's cancel: a queued job ends at once, a running one is killed by its
    /// runner (which polls the flag every 250 ms; an in-process run is tripped at once).
    pub async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StoreError> {
        let outcome = self.store.request_cancel(job_id.to_string()).await?;
        if let Some(local) = self.local_of(job_id)
            && self.runner() == Runner::InProcess
        {
            local.cancel.cancel();
        }
        Ok(outcome)
    }
}

/// One caller attached to a job (see [`JobService::attach`]).
pub struct Attachment {
    service: Arc<JobService>,
    job_id: String,
}

impl Attachment {
    /// Whether this is the only caller of this server waiting on the job.
    pub fn is_sole(&self) -> bool {
        self.service
            .attached_map()
            .get(&self.job_id)
            .is_none_or(|n| *n <= 1)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut map = self.service.attached_map();
        if let Some(n) = map.get_mut(&self.job_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.job_id);
            }
        }
    }
}
