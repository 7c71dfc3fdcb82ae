//! The attempts of one run: the job's handler, retried by its policy, under its timeout and
//! the run's cancellation.

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc, sync::atomic::Ordering};

use futures_util::FutureExt;
use tokio::time::{Instant, sleep, timeout};
use tracing::Instrument;

use super::{JobEntry, Runtime, end::RunEnd, watchdog::sleep_until_some};
use crate::{
    context::{CancelReason, Execution, JobContext},
    job_error::JobError,
};

/// Runs the attempts under the timeout and cancellation; returns how the run ended.
pub(super) async fn run(rt: &Runtime, entry: &JobEntry, exec: &Arc<Execution>) -> RunEnd {
    let job = &entry.job;
    let tries = tries(entry, exec);
    tokio::pin!(tries);
    let deadline = job.timeout.map(|t| Instant::now() + t);
    // The job first: one that finishes in its first poll never registers with the
    // cancellation tokens or arms the timeout's timer.
    let finished = tokio::select! {
        biased;
        result = &mut tries => Some(result),
        () = sleep_until_some(deadline) => {
            exec.cancel(CancelReason::Timeout);
            None
        }
        () = exec.cancelled() => None,
    };
    let result = match finished {
        Some(result) => Some(result),
        // Asked to stop: give the job a grace period to return, then drop it. (After a
        // lock loss the watchdog's deadline cuts this short.)
        None => timeout(rt.cancel_grace, &mut tries).await.ok(),
    };
    let attempts = exec.attempts.load(Ordering::Relaxed);
    match (exec.reason(), result) {
        (None | Some(CancelReason::Shutdown), Some(Ok(()))) => RunEnd::completed(attempts),
        (None, Some(Err(error))) => RunEnd::failed(attempts, error),
        (Some(CancelReason::Timeout), result) => RunEnd::stopped(
            CancelReason::Timeout,
            format!("timed out after {:?}", job.timeout.unwrap_or_default()),
            attempts,
            result.and_then(Result::err),
        ),
        // The job finished its work although its lease (or the store) could not be proven
        // held: the run counts as cancelled, and is reported, but the execution is recorded
        // COMPLETED if the store still takes this run's fenced finish (no other claim took
        // it over), so that it is not resumed and run again.
        (
            Some(reason @ (CancelReason::LockLost | CancelReason::StoreUnreachable)),
            Some(Ok(())),
        ) => {
            let mut end = RunEnd::stopped(
                reason,
                format!(
                    "the job finished, but its run was stopped: {}",
                    reason.as_str()
                ),
                attempts,
                None,
            );
            end.status = crate::store::Status::Completed;
            end
        }
        // Without a reason the select above only ends with a result; `LockLost` keeps this
        // total. A failed last attempt stays in the chain, under the stop.
        (reason, result) => {
            let reason = reason.unwrap_or(CancelReason::LockLost);
            RunEnd::stopped(
                reason,
                format!("run stopped: {}", reason.as_str()),
                attempts,
                result.and_then(Result::err),
            )
        }
    }
}

/// The attempts, one after the other, until one succeeds, the policy gives up, or the run
/// is asked to stop.
async fn tries(entry: &JobEntry, exec: &Arc<Execution>) -> Result<(), JobError> {
    let job = &entry.job;
    loop {
        let attempt = exec.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let ctx = JobContext::new(exec.clone(), attempt);
        let result = AssertUnwindSafe((job.handler)(ctx))
            .catch_unwind()
            .instrument(tracing::info_span!("tickguard.attempt", attempt))
            .await
            .unwrap_or_else(|panic| Err(JobError::panic(panic_message(&*panic))));
        let error = match result {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        // The budget counts the attempts of earlier owners of this execution too, so a job
        // that crashes its process is not retried forever across takeovers.
        if exec.is_cancelled() || !job.retry.should_retry(&error, attempt) {
            return Err(error);
        }
        let delay = job.retry.jittered_delay(attempt);
        entry.metrics.retries.increment(1);
        tracing::warn!(attempt, error = %format!("{error:#}"), ?delay, "attempt failed; retrying");
        tokio::select! {
            () = sleep(delay) => {}
            () = exec.cancelled() => return Err(error),
        }
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
