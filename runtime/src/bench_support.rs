//! One guarded execution through the executor's own code path, for the `guarded` bench.
//! Not public API.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    executor::{self, Executed, Interrupts, JobEntry, Runtime},
    job::Job,
    lock::LockBackend,
    metrics::JobMetrics,
    store::ExecutionStore,
};

/// A job wired to a lock and a store as a scheduler would wire it, run one tick at a time.
pub struct GuardedBench {
    rt: Runtime,
    entry: JobEntry,
}

impl GuardedBench {
    /// `job` on `lock` and `store`, with the scheduler's default settings.
    pub fn new(lock: Arc<dyn LockBackend>, store: Arc<dyn ExecutionStore>, job: Job) -> Self {
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        let records_next_fire = store.sql().is_some();
        #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
        let records_next_fire = false;
        let rt = Runtime {
            lock,
            store,
            instance_id: format!("bench-{}", std::process::id()).into(),
            clock: Clock::default(),
            hooks: Vec::new(),
            cancel_grace: Duration::from_secs(5),
            liveness: Duration::from_secs(30),
            records_next_fire,
            stop_runs: CancellationToken::new(),
        };
        let entry = JobEntry {
            metrics: JobMetrics::new(&job.name),
            stop: Arc::new(CancellationToken::new()),
            firing: CancellationToken::new(),
            resume_from: Utc::now(),
            interrupted: Interrupts::default(),
            job,
        };
        Self { rt, entry }
    }

    /// Executes `tick` (lock, claim, run, finish, release); `true` if it ran.
    pub async fn run(&self, tick: DateTime<Utc>) -> bool {
        let executed = executor::execute(&self.rt, &self.entry, tick, false, None).await;
        matches!(executed, Executed::Ran { .. })
    }
}
