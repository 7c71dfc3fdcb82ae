//! One guarded execution through the executor's own code path, for the `guarded` bench.
//! Not public API.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    executor::{self, Executed, JobEntry, Runtime},
    job::Job,
    lock::LockBackend,
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
        let instance_id = format!("bench-{}", std::process::id()).into();
        let rt = Runtime::direct(lock, store, instance_id, Duration::from_secs(30));
        let stop = Arc::new(CancellationToken::new());
        let entry = JobEntry::new(job, stop, CancellationToken::new(), Utc::now());
        Self { rt, entry }
    }

    /// Executes `tick` (lock, claim, run, finish, release); `true` if it ran.
    pub async fn run(&self, tick: DateTime<Utc>) -> bool {
        let executed = executor::execute(&self.rt, &self.entry, tick, false, None, None).await;
        matches!(executed, Executed::Ran { .. })
    }
}
