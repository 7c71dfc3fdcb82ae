//! The recovery task: finds interrupted executions of idempotent jobs and queues them on
//! their job loops, which resume them.

use std::sync::Arc;

use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;

use crate::{
    executor::{BACKEND_TIMEOUT, JobEntry, Runtime},
    store::StoreError,
};

/// How many interrupted executions one look at the store brings back, at most.
const RECOVERY_BATCH: usize = 100;

/// Finds executions of idempotent jobs whose run was interrupted (their owner died, or was
/// stopped by shutdown or lock loss) and queues them on their job loops, which resume them
/// with a new claim: at start, then every third of the liveness, so an execution is resumed
/// soon after its owner can be proven gone rather than at the job's next tick.
pub(crate) async fn recover_interrupted(
    rt: Arc<Runtime>,
    entries: Vec<Arc<JobEntry>>,
    firing: CancellationToken,
) {
    let names: Vec<String> = entries.iter().map(|e| e.job.name.clone()).collect();
    let every = rt.liveness / 3;
    loop {
        let found = timeout(
            BACKEND_TIMEOUT,
            rt.store.interrupted(&names, rt.liveness, RECOVERY_BATCH),
        )
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)));
        match found {
            Ok(found) => {
                for interrupted in found {
                    let Some(entry) = entries.iter().find(|e| e.job.name == interrupted.job) else {
                        continue;
                    };
                    if entry
                        .interrupted
                        .push(interrupted.execution_id.clone(), interrupted.scheduled_at)
                    {
                        tracing::info!(
                            job = %interrupted.job,
                            execution_id = %interrupted.execution_id,
                            status = %interrupted.status,
                            "found an interrupted execution; resuming it"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(
                store = %rt.store.describe(), error = %e,
                "cannot look for interrupted executions; trying again"
            ),
        }
        tokio::select! {
            () = firing.cancelled() => return,
            () = sleep(every) => {}
        }
    }
}
