//! The attempts of one run: the job's handler, retried by its policy, under its timeout and
//! the run's cancellation.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use futures_util::FutureExt;
use tokio::time::{Instant, sleep, timeout};
use tracing::Instrument;

use super::{JobEntry, Runtime, end::RunEnd, watchdog::sleep_until_some};
use crate::{
    context::{CancelReason, Execution, JobContext, identity_unless_in_span},
    job_error::{ErrorKind, JobError},
};

/// Runs the attempts under the timeout and cancellation; returns how the run ended.
pub(super) async fn run(rt: &Runtime, entry: &JobEntry, exec: &Arc<Execution>) -> RunEnd {
    let job = &entry.job;
    let longest = AtomicU64::new(0);
    let tries = tries(rt, entry, exec, &longest);
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
    let longest = Duration::from_nanos(longest.load(Ordering::Relaxed));
    let blocked = job.timeout.filter(|limit| longest > *limit);
    if let Some(limit) = blocked {
        warn_blocked(exec, longest, limit);
    }
    end_of(entry, exec, result, blocked.is_some())
}

/// An attempt that held its thread past the job's timeout in one go: the timer could not
/// fire meanwhile, so the timeout could not stop it.
fn warn_blocked(exec: &Execution, longest: Duration, limit: Duration) {
    let (job, execution_id) = identity_unless_in_span(&exec.exec);
    tracing::warn!(
        job,
        execution_id,
        blocked_ms = u64::try_from(longest.as_millis()).unwrap_or(u64::MAX),
        timeout = ?limit,
        "the job blocked its thread past its timeout, so the timeout could not stop it; the \
         run is recorded as timed out. Run blocking work in `tokio::task::spawn_blocking`"
    );
    exec.cancel(CancelReason::Timeout);
}

/// How the run ended, from why it was asked to stop (if it was) and what its attempts
/// returned (`None`: dropped before they returned). A run that `blocked` its thread past
/// its timeout timed out, whatever else stopped it.
fn end_of(
    entry: &JobEntry,
    exec: &Execution,
    result: Option<Result<(), JobError>>,
    blocked: bool,
) -> RunEnd {
    let attempts = exec.attempts.load(Ordering::Relaxed);
    match (exec.reason(), result) {
        (reason, result) if blocked || reason == Some(CancelReason::Timeout) => RunEnd::stopped(
            CancelReason::Timeout,
            format!(
                "timed out after {:?}",
                entry.job.timeout.unwrap_or_default()
            ),
            attempts,
            result.and_then(Result::err),
        ),
        // The job finished its work: the run completed, whatever stopped it meanwhile (a
        // shutdown, or a lease or store lost after its last step). Its fenced finish
        // decides: if another claim took the execution over, the store refuses it and the
        // run is recorded CANCELLED (see `conclude::record`), as when the store already
        // fenced it out.
        (reason, Some(Ok(()))) if reason != Some(CancelReason::Fenced) => {
            RunEnd::completed(attempts)
        }
        // The job handed its execution back (`ctx.hand_back`) because shutdown began,
        // before or after the grace ran out: another instance resumes it.
        (None | Some(CancelReason::Shutdown), Some(Err(error)))
            if error.kind() == ErrorKind::HandedBack && exec.is_draining() =>
        {
            exec.cancel(CancelReason::Shutdown);
            handed_back(attempts, error)
        }
        (None, Some(Err(error))) => RunEnd::failed(attempts, error),
        // Without a reason the select above only ends with a result; `LockLost` keeps this
        // total. A failed last attempt stays in the chain, under the stop.
        (reason, result) => {
            let reason = reason.unwrap_or(CancelReason::LockLost);
            // A run someone asked to stop says who asked, and why.
            let what = match (reason, exec.stop_note()) {
                (CancelReason::Requested | CancelReason::Superseded, Some(note)) => note.to_owned(),
                _ => format!("run stopped: {}", reason.as_str()),
            };
            RunEnd::stopped(reason, what, attempts, result.and_then(Result::err))
        }
    }
}

/// A run that handed its execution back at shutdown: recorded CANCELLED, which another
/// instance resumes (an idempotent job's, or a requested execution). The attempt it cut
/// short does not count against the retry budget, since it goes on elsewhere from its
/// checkpoint: a long job redeployed often is not failed for it. A run that does not hand
/// back (cancelled when the grace ran out, or dropped after the cancel grace) counts its
/// attempt, so an execution that keeps outlasting shutdowns is failed after the resume
/// allowance.
fn handed_back(attempts: u32, job_error: JobError) -> RunEnd {
    RunEnd::stopped(
        CancelReason::Shutdown,
        "handed back at shutdown".to_owned(),
        attempts.saturating_sub(1),
        Some(job_error),
    )
}

/// The attempts, one after the other, until one succeeds, the policy gives up, or the run
/// is asked to stop.
/// `longest` keeps the wall time of the longest single poll of an attempt, in nanoseconds:
/// a poll longer than the job's timeout blocked the thread the timer needed.
async fn tries(
    rt: &Runtime,
    entry: &JobEntry,
    exec: &Arc<Execution>,
    longest: &AtomicU64,
) -> Result<(), JobError> {
    let job = &entry.job;
    loop {
        let attempt = exec.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let ctx = JobContext::new(exec.clone(), attempt, rt.state.clone());
        let mut handler = AssertUnwindSafe((job.handler)(ctx)).catch_unwind();
        let result = std::future::poll_fn(|cx| {
            let polled = Instant::now();
            let poll = Pin::new(&mut handler).poll(cx);
            let took = u64::try_from(polled.elapsed().as_nanos()).unwrap_or(u64::MAX);
            longest.fetch_max(took, Ordering::Relaxed);
            poll
        })
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
