//! The recovery task: records the ticks the job loops left to the ledger, finds interrupted
//! executions and pending ticks of idempotent jobs, and queues them on their job loops,
//! which resume or run them.

use std::sync::Arc;

use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use crate::{
    executor::{JobEntry, Queued, Runtime, bounded},
    ledger,
    store::{Interrupted, Status},
};

/// How many interrupted executions one look at the store brings back, at most.
const RECOVERY_BATCH: usize = 100;

/// Queues the executions among `found` that no operator asked for (those are the control
/// task's: it queues them with who asked, and they bypass the misfire policy) on the job
/// loops of their jobs among `entries`, if idempotent: interrupted ones to resume, pending
/// ticks of the ledger to run.
pub(crate) fn queue_interrupted(entries: &[Arc<JobEntry>], found: Vec<Interrupted>) {
    for interrupted in found {
        if interrupted.requested {
            continue;
        }
        let Some(entry) = entries
            .iter()
            .find(|e| e.job.name == interrupted.job && e.job.key.is_some())
        else {
            continue;
        };
        if entry.interrupted.push(Queued::interrupted(
            interrupted.execution_id.clone(),
            interrupted.scheduled_at,
            interrupted.status,
        )) {
            let what = if interrupted.status == Status::Pending {
                "found a pending tick in the ledger; running it"
            } else {
                "found an interrupted execution; resuming it"
            };
            tracing::info!(
                job = %interrupted.job,
                execution_id = %interrupted.execution_id,
                status = %interrupted.status,
                "{what}"
            );
        }
    }
}

/// Records the ledger's due notes ([`ledger::flush`]), then finds executions of idempotent
/// jobs whose run was interrupted (their owner died, or was stopped by shutdown or lock
/// loss) and pending ticks of the ledger, and queues them on their job loops, which resume
/// or run them with a new claim: at start, then about every third of the liveness (each
/// pause a random 75-125% of it, so that instances started together do not ask together),
/// so an execution is resumed soon after its owner can be proven gone rather than at the
/// job's next tick.
pub(crate) async fn recover_interrupted(
    rt: Arc<Runtime>,
    entries: Vec<Arc<JobEntry>>,
    firing: CancellationToken,
) {
    let names: Vec<String> = entries.iter().map(|e| e.job.name.clone()).collect();
    let every = rt.liveness / 3;
    loop {
        ledger::flush(&rt, &entries, false).await;
        let found = bounded(rt.store.interrupted(&names, rt.liveness, RECOVERY_BATCH)).await;
        match found {
            Ok(found) => queue_interrupted(&entries, found),
            Err(e) => tracing::warn!(
                store = %rt.store.describe(), error = %e,
                "cannot look for interrupted executions; trying again"
            ),
        }
        tokio::select! {
            () = firing.cancelled() => return,
            () = sleep(every.mul_f64(0.75 + fastrand::f64() / 2.0)) => {}
        }
    }
}
