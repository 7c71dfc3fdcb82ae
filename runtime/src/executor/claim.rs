//! The second stage: claim the execution in the store, asking again while the store cannot
//! answer, and wait out a tick that finds the job busy.

use std::time::Duration;

use tokio::{
    sync::Notify,
    time::{Instant, sleep, sleep_until},
};

use chrono::{DateTime, Utc};

use super::{BACKEND_TIMEOUT, JobEntry, Runtime, Skip, Tick, bounded, lease::Held, supersede};
use crate::{
    job::{Job, Overlap},
    metrics::SkipReason,
    store::{Claim, ClaimRequest, Claimed, StoreError, claim::EARLY_TOLERANCE},
};

/// The longest pause between the tries of a claim the store could not answer: they wait
/// 100, 200, 400 and 800 ms.
const CLAIM_BACKOFF_MAX: Duration = Duration::from_millis(800);

/// Stage 2: claims the execution. Skips the tick when it is done already, or running
/// elsewhere (`duplicate`), another execution of the job is live (`overlap`), the tick is
/// not due yet by the store's clock (`early`: this instance's clock runs ahead), or the
/// store cannot answer (`unavailable`: a run never starts without a claim).
pub(super) async fn claim(t: &mut Tick<'_>) -> Skip<Claimed> {
    let rt = t.rt;
    let job = &t.entry.job;
    let next_fire = if rt.records_next_fire {
        job.schedule.next_after(t.at)
    } else {
        None
    };
    // Owned here, so that the request does not borrow `t`, which a busy tick's wait takes.
    let (execution_id, owner) = (t.execution_id.clone(), t.owner.clone());
    let request = ClaimRequest::new(&job.name, &execution_id, t.at, &owner)
        // A requested execution's id is unique per request: claiming it as idempotent is
        // what runs it once across instances, whatever the job.
        // A queued execution (resumed or requested) names one execution: once it ran to its
        // end it is done, whatever the job, or a stale queue entry would run it again.
        .idempotent(job.key.is_some() || t.requested_by.is_some() || t.resuming)
        .liveness(rt.liveness)
        .next_fire(next_fire)
        .refuse_early(rt.refuse_early);
    let mut claimed = ask(rt, t.entry, &request).await;
    if !t.resuming
        && let Ok(Claim::Busy { execution_id }) = &claimed
    {
        let busy = execution_id.clone();
        claimed = when_busy(t, &request, busy).await?;
    }
    // A job busy with this tick's run elsewhere (another id: a job that is not idempotent)
    // or a newer tick's loses nothing here.
    let busy_with_this_or_newer = match &claimed {
        Ok(Claim::Busy { execution_id }) if *execution_id != t.execution_id => {
            !busy_with_older(rt, execution_id, t.at).await
        }
        _ => false,
    };
    match claimed {
        Ok(Claim::Acquired(claimed)) => Ok(claimed),
        Ok(Claim::Early) => {
            warn_early(t);
            Err(SkipReason::Early)
        }
        Ok(other) => {
            let reason = match other {
                Claim::Done { .. } | Claim::Pruned => SkipReason::Duplicate,
                // The tick's own execution, live elsewhere: not lost.
                Claim::Busy { execution_id } if execution_id == t.execution_id => {
                    SkipReason::Duplicate
                }
                Claim::Busy { .. } if busy_with_this_or_newer => SkipReason::Duplicate,
                _ => SkipReason::Overlap,
            };
            tracing::debug!(
                job = %job.name, execution_id = %t.execution_id, reason = reason.as_str(),
                "tick skipped"
            );
            Err(reason)
        }
        Err(e) if is_transient(&e) => {
            tracing::warn!(
                job = %job.name, execution_id = %t.execution_id, store = %rt.store.describe(),
                error = %e, "cannot claim the execution; tick skipped (never run without a claim)"
            );
            Err(SkipReason::Unavailable)
        }
        Err(e) => {
            tracing::error!(
                job = %job.name, execution_id = %t.execution_id, error = %e,
                "the store refused the claim; tick skipped"
            );
            Err(SkipReason::Unavailable)
        }
    }
}

/// A claim that found the job busy with execution `busy`: under `cancel_other`, asks it to
/// stop and waits for the job to be free (see [`supersede_busy`]); a job still busy after
/// that (an owner that died cannot stop its run: it is proven gone only after a liveness),
/// or under the other policies, waits as [`wait_while_busy`] says. The store's last answer,
/// or `Paused` when the job was paused meanwhile.
async fn when_busy(
    t: &mut Tick<'_>,
    request: &ClaimRequest<'_>,
    mut busy: String,
) -> Skip<Result<Claim, StoreError>> {
    let (rt, entry) = (t.rt, t.entry);
    let requested = t.requested_by.is_some();
    if supersede::supersedes(t) {
        let until = supersede::deadline(t);
        let superseded = supersede_busy(rt, entry, &mut t.lease, request, &busy, until).await;
        if superseded.paused {
            return Err(SkipReason::Paused);
        }
        t.deferred = superseded.deferred;
        match superseded.claim {
            Ok(Claim::Busy { execution_id })
                if !t.deferred && busy_with_older(rt, &execution_id, t.at).await =>
            {
                busy = execution_id;
            }
            other => return Ok(other),
        }
    }
    let waited = wait_while_busy(rt, entry, &mut t.lease, request, &busy, requested).await;
    if waited.paused {
        return Err(SkipReason::Paused);
    }
    t.deferred = waited.deferred;
    Ok(waited.claim)
}

/// Warns (the first time, then once a minute per job at most) that this instance's clock
/// runs ahead of the store's. The lease is released at once: the instances whose clock is
/// right need it.
fn warn_early(t: &mut Tick<'_>) {
    t.hold_at_least = false;
    let Some(warning) = t.entry.warnings.count(SkipReason::Early, Instant::now(), 1) else {
        return;
    };
    tracing::warn!(
        job = %t.job().name, tick = %t.at, tolerance = ?EARLY_TOLERANCE, ticks = warning.ticks,
        "the tick is not due yet by the store's clock: this instance's clock runs ahead \
         (check its time sync); the tick is left to instances whose clock is right"
    );
}

/// Whether asking again may get another answer: a store that could not be reached may
/// answer later; a refused request (an execution id that belongs to another job) is refused
/// again, and a fence rejection is final.
fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable { .. })
}

/// Asks the store for the claim. A store that cannot be reached is asked again with backoff
/// for about a second and a half (a database restarting, a failover): a blip does not cost
/// the tick. All tries together are bounded like one backend call.
async fn ask(
    rt: &Runtime,
    entry: &JobEntry,
    request: &ClaimRequest<'_>,
) -> Result<Claim, StoreError> {
    let mut delay = Duration::from_millis(100);
    let deadline = Instant::now() + BACKEND_TIMEOUT;
    loop {
        let claimed = tokio::time::timeout_at(deadline, rt.store.claim(request))
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("the claim timed out", None)));
        match claimed {
            Err(e)
                if is_transient(&e)
                    && delay <= CLAIM_BACKOFF_MAX
                    && Instant::now() + delay < deadline =>
            {
                tracing::warn!(
                    job = %request.job, execution_id = %request.execution_id, error = %e,
                    ?delay, "cannot claim the execution; asking again"
                );
                tokio::select! {
                    () = sleep(delay) => delay *= 2,
                    () = entry.firing.cancelled() => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// What waiting out a busy job came to.
struct Waited {
    /// The last answer of the store.
    claim: Result<Claim, StoreError>,
    /// The wait ended because this run could no longer keep its lease: the tick is left to
    /// the ledger, for whoever holds the lock next.
    deferred: bool,
    /// The job was paused during the wait: the tick is skipped as paused, unclaimed.
    paused: bool,
}

/// A tick that finds the job busy. The live execution may be a dead owner's that has not
/// been silent for a whole liveness yet: wait that long (keeping this run's lease), then
/// look. A dead owner is then proven gone, its execution is abandoned (to be resumed) and
/// this tick runs, late; a live one has heartbeated meanwhile, and the tick overlaps it,
/// unless its overlap policy buffers it ([`wait_buffered`]); the claims of the instances
/// that waited together pick one to run it. A wait that loses its lease leaves
/// the tick to the ledger, as a claim that outlasts its lease leaves its execution to be
/// resumed: the tick is not skipped.
async fn wait_while_busy(
    rt: &Runtime,
    entry: &JobEntry,
    lease: &mut Option<Held>,
    request: &ClaimRequest<'_>,
    busy: &str,
    requested: bool,
) -> Waited {
    let job = &entry.job;
    let busy_claim = |deferred| Waited {
        claim: Ok(Claim::Busy {
            execution_id: busy.to_owned(),
        }),
        deferred,
        paused: false,
    };
    // A tick of the schedule that waited is not claimed once the job is paused (a manual
    // execution runs whatever the pause).
    let paused = || {
        (!requested && entry.pause.is_paused()).then(|| Waited {
            paused: true,
            ..busy_claim(false)
        })
    };
    let until = Instant::now() + rt.liveness + rt.liveness / 10;
    let mut dead = false;
    while !dead {
        match wait_holding(rt, entry, lease, until, Some(&entry.interrupted.ready)).await {
            Wait::Waited => break,
            // Something was queued for the job: the busy execution may have been handed
            // back at shutdown, and is then claimed now rather than after the whole wait.
            Wait::Woken => dead = is_interrupted(rt, job, busy).await,
            // Stopped: shutdown; the tick is left to the instances that go on.
            Wait::LeaseLost | Wait::Stopped => return busy_claim(true),
        }
    }
    if let Some(paused) = paused() {
        return paused;
    }
    let dead = dead || is_interrupted(rt, job, busy).await;
    let claimed = if dead {
        ask(rt, entry, request).await
    } else {
        busy_claim(false).claim
    };
    wait_buffered(rt, entry, lease, request, claimed, requested).await
}

/// After a busy tick's first wait: `buffer_all` waits for the job to be free, `buffer_one`
/// too, until the job's next tick (which then waits in its place), asking for the claim
/// again every third of the liveness while keeping the lease; the other policies do not
/// wait. A job found busy with this tick or a newer one (another instance's run of it)
/// ends the wait: that run is this tick's.
async fn wait_buffered(
    rt: &Runtime,
    entry: &JobEntry,
    lease: &mut Option<Held>,
    request: &ClaimRequest<'_>,
    mut claimed: Result<Claim, StoreError>,
    requested: bool,
) -> Waited {
    let job = &entry.job;
    let buffer_until = match job.overlap_policy() {
        Overlap::BufferAll => Some(None),
        Overlap::BufferOne => Some(before_next_tick(rt, job, request.scheduled_at)),
        Overlap::Skip | Overlap::CancelOther => None,
    };
    let (mut deferred, mut paused) = (false, false);
    while let Some(buffer_until) = buffer_until
        && let Ok(Claim::Busy { execution_id }) = &claimed
    {
        if !busy_with_older(rt, execution_id, request.scheduled_at).await {
            break;
        }
        let mut until = Instant::now() + rt.liveness / 3;
        if let Some(limit) = buffer_until {
            if Instant::now() >= limit {
                break;
            }
            until = until.min(limit);
        }
        match wait_holding(rt, entry, lease, until, None).await {
            Wait::Waited | Wait::Woken => {}
            Wait::LeaseLost | Wait::Stopped => {
                deferred = true;
                break;
            }
        }
        if !requested && entry.pause.is_paused() {
            paused = true;
            break;
        }
        claimed = ask(rt, entry, request).await;
    }
    Waited {
        claim: claimed,
        deferred,
        paused,
    }
}

/// The instant a `buffer_one` tick stops waiting for a busy job: a little before the job's
/// next tick, which then waits in its place (`None`: no next tick, no limit).
fn before_next_tick(rt: &Runtime, job: &Job, tick: DateTime<Utc>) -> Option<Instant> {
    if job.schedule.is_fixed_delay() {
        return None;
    }
    let next = job.schedule.next_after(tick)?;
    let left = (next - rt.clock.now()).to_std().unwrap_or_default();
    Some(
        Instant::now()
            + left
                .saturating_sub(left / 10)
                .saturating_sub(supersede::POLL),
    )
}

/// Whether the busy execution `busy` runs a tick before `tick`, or is a requested one (or
/// cannot be read): the job is busy with another run, which `tick` overlaps.
async fn busy_with_older(rt: &Runtime, busy: &str, tick: DateTime<Utc>) -> bool {
    match bounded(rt.store.execution(busy)).await {
        // A requested execution (a trigger, a re-run) is no tick's run, whatever its time.
        Ok(Some(record)) => record.scheduled_at < tick || record.requested_by.is_some(),
        _ => true,
    }
}

/// A `cancel_other` tick that found the job busy: asks the busy execution to stop if it
/// runs an older tick, then asks for the claim again every [`supersede::POLL`] (keeping
/// this run's lease) until the job is free, it is found busy with this tick or a newer one
/// (another instance got there first), the job is paused, or `until`. The store's last
/// answer.
async fn supersede_busy(
    rt: &Runtime,
    entry: &JobEntry,
    lease: &mut Option<Held>,
    request: &ClaimRequest<'_>,
    busy: &str,
    until: Instant,
) -> Waited {
    let tick = request.scheduled_at;
    let answer = |claim, deferred, paused| Waited {
        claim,
        deferred,
        paused,
    };
    let mut claimed = Ok(Claim::Busy {
        execution_id: busy.to_owned(),
    });
    if !busy_with_older(rt, busy, tick).await {
        return answer(claimed, false, false);
    }
    // Refused when the execution ended meanwhile: the claim asked below then finds the job
    // free.
    supersede::request_one(rt, entry, busy, tick).await;
    loop {
        if entry.pause.is_paused() {
            return answer(claimed, false, true);
        }
        claimed = ask(rt, entry, request).await;
        let still_older = match &claimed {
            Ok(Claim::Busy { execution_id }) => {
                execution_id == busy || busy_with_older(rt, execution_id, tick).await
            }
            _ => false,
        };
        if !still_older || Instant::now() >= until {
            return answer(claimed, false, false);
        }
        let wake = (Instant::now() + supersede::POLL).min(until);
        match wait_holding(rt, entry, lease, wake, None).await {
            Wait::Waited | Wait::Woken => {}
            Wait::LeaseLost | Wait::Stopped => return answer(claimed, true, false),
        }
    }
}

/// Whether execution `busy` of `job` is interrupted (its owner gone, or it was handed
/// back): one that may be claimed now.
async fn is_interrupted(rt: &Runtime, job: &Job, busy: &str) -> bool {
    let interrupted = bounded(rt.store.interrupted(
        std::slice::from_ref(&job.name),
        rt.liveness,
        100,
    ))
    .await;
    interrupted.is_ok_and(|found| found.iter().any(|i| i.execution_id == busy))
}

/// How a wait holding the lease ended.
enum Wait {
    /// The time passed.
    Waited,
    /// `wake` was notified.
    Woken,
    /// The lease was lost: it is no longer this run's to use.
    LeaseLost,
    /// Firing stopped.
    Stopped,
}

/// Waits until `until` while keeping the lease (if any), or until `wake` is notified.
async fn wait_holding(
    rt: &Runtime,
    entry: &JobEntry,
    lease: &mut Option<Held>,
    until: Instant,
    wake: Option<&Notify>,
) -> Wait {
    let woken = async {
        match wake {
            Some(wake) => wake.notified().await,
            None => std::future::pending().await,
        }
    };
    let lock = &*rt.lock;
    let firing = &entry.firing;
    let job = &entry.job.name;
    let keep = async {
        match lease.as_mut() {
            Some(held) => loop {
                if let Err(lost) = held.keep(lock).await {
                    return lost;
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = sleep_until(until) => Wait::Waited,
        lost = keep => {
            tracing::warn!(
                job = %job, why = lost.why,
                "lease lost while the job was busy elsewhere; the tick waits in the ledger"
            );
            Wait::LeaseLost
        }
        () = firing.cancelled() => Wait::Stopped,
        () = woken => Wait::Woken,
    }
}
