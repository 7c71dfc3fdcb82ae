//! The fourth stage: the run's attempts under the watchdog, which keeps the lease and the
//! store's heartbeat alive while they run, and stops the run when either is lost.

use std::{
    sync::{Arc, atomic::Ordering},
    task::Poll,
};

use tokio::time::{Instant, sleep_until, timeout};

use super::{JobEntry, Runtime, attempts, end::RunEnd, lease::Held};
use crate::context::{CancelReason, Execution, identity_unless_in_span};

/// Stage 4: runs the attempts beside the watchdog, in this task (one spawn less per run,
/// and the watchdog cannot outlive the run). When the watchdog reports the lease (or the
/// store) lost, the run is dropped at the deadline it gives, whatever grace the run was
/// otherwise given.
pub(super) async fn supervise(
    rt: &Runtime,
    entry: &JobEntry,
    exec: &Arc<Execution>,
    lease: &mut Option<Held>,
) -> RunEnd {
    let keeper = keep_alive(rt, entry, exec, lease);
    let run = attempts::run(rt, entry, exec);
    tokio::pin!(keeper, run);
    // First poll: the job first, so that one that finishes at once never arms the
    // watchdog's timers (the lease was just proven valid). After that: the drop deadline,
    // then the watchdog, then the job, so that a process resumed after a pause (SIGSTOP, a
    // VM freeze) past its lease never polls the job again once the watchdog can tell the
    // lease is lost.
    let first = std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await;
    if let Poll::Ready(end) = first {
        return end;
    }
    let mut watching = true;
    let mut drop_at = None;
    loop {
        tokio::select! {
            biased;
            () = sleep_until_some(drop_at) => {
                let reason = exec.reason().unwrap_or(CancelReason::LockLost);
                break RunEnd::stopped_for(reason, exec.attempts.load(Ordering::Relaxed));
            }
            deadline = &mut keeper, if watching => {
                watching = false;
                drop_at = deadline;
            }
            end = &mut run => break end,
        }
    }
}

/// Keeps the lease (see [`Held::keep`]) and heartbeats the store every liveness/3 while the
/// run lives, and returns only when the run must stop: the lease cannot be proven held (it
/// must be gone by the returned deadline, when it may expire), the store's heartbeats failed
/// for so long that another instance could soon count the owner gone, or the store fenced
/// the run out (no deadline: its grace applies).
async fn keep_alive(
    rt: &Runtime,
    entry: &JobEntry,
    exec: &Execution,
    lease: &mut Option<Held>,
) -> Option<Instant> {
    let lock = &*rt.lock;
    let keep_lease = async {
        match lease.as_mut() {
            Some(held) => loop {
                if let Err(lost) = held.keep(lock).await {
                    lock_lost(entry, exec, lost.why);
                    return Some(lost.valid_until);
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        deadline = keep_lease => deadline,
        deadline = heartbeat(rt, exec) => deadline,
    }
}

/// Heartbeats the store every liveness/3. Returns when the run must stop: another instance
/// counts this owner gone `liveness` after its last heartbeat, so the run is cancelled a
/// third of that before (and dropped by then), or at once when the store fenced it out.
async fn heartbeat(rt: &Runtime, exec: &Execution) -> Option<Instant> {
    let beat_every = rt.liveness / 3;
    let mut last_beat = Instant::now();
    let mut next_beat = last_beat + beat_every;
    loop {
        let store_lost_at = last_beat + rt.liveness - beat_every;
        tokio::select! {
            biased;
            () = sleep_until(store_lost_at) => {
                let (job, execution_id) = identity_unless_in_span(&exec.exec);
                tracing::error!(
                    job,
                    execution_id,
                    "cannot heartbeat the execution store: another instance may take this \
                     execution over; cancelling this run"
                );
                exec.cancel(CancelReason::StoreUnreachable);
                return Some(last_beat + rt.liveness);
            }
            () = sleep_until(next_beat) => {}
        }
        let sent = Instant::now();
        next_beat = sent + beat_every;
        let left = store_lost_at.saturating_duration_since(sent);
        match timeout(left, rt.store.heartbeat(&exec.exec)).await {
            Ok(Ok(())) => last_beat = sent,
            Ok(Err(e)) if e.is_fenced() => {
                exec.store_error(e);
                return None;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot heartbeat the execution store"),
            Err(_) => tracing::warn!("execution store heartbeat timed out"),
        }
    }
}

fn lock_lost(entry: &JobEntry, exec: &Execution, why: &str) {
    entry.metrics.lock_lost.increment(1);
    let (job, execution_id) = identity_unless_in_span(&exec.exec);
    tracing::error!(
        job,
        execution_id,
        why,
        "lock lost: another instance may hold it now; cancelling this run"
    );
    exec.cancel(CancelReason::LockLost);
}

/// Sleeps until `deadline`, or forever without one.
pub(super) async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
