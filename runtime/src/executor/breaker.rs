//! The first stage: a job whose circuit breaker is open skips its tick, before the lease is
//! taken or anything is claimed.

use std::collections::HashMap;

use tokio::time::Instant;

use super::{JobEntry, Runtime, Skip, Tick, bounded};
use crate::{
    circuit_breaker::{BreakerState, CircuitBreaker},
    job::Job,
    metrics::{CIRCUIT_STATE, SkipReason},
    store::{ExecutionRecord, StoreError},
};

/// A job's circuit breaker, with every job of this scheduler that shares it (the job alone
/// for an unnamed breaker), and the gauge of its state.
pub(crate) struct Breaker {
    pub(crate) settings: CircuitBreaker,
    /// The jobs whose executions count: the breaker's state is computed from all of them.
    pub(crate) jobs: Vec<String>,
    /// `tickguard_circuit_state{breaker}`.
    gauge: metrics::Gauge,
}

impl Breaker {
    /// The breaker of `job`, if it has one, shared with no other job yet.
    pub(crate) fn of(job: &Job) -> Option<Self> {
        let settings = job.circuit_breaker.clone()?;
        let label = settings.label(&job.name).to_owned();
        Some(Self {
            settings,
            jobs: vec![job.name.clone()],
            gauge: metrics::gauge!(CIRCUIT_STATE, "breaker" => label),
        })
    }
}

/// Gives each named breaker of `entries` every job that shares it (the jobs of this
/// scheduler whose breaker has the same name), in the order the jobs were given.
pub(crate) fn share(entries: &mut [JobEntry]) {
    let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
    for entry in entries.iter() {
        if let Some(name) = entry
            .job
            .circuit_breaker
            .as_ref()
            .and_then(|b| b.shared_name())
        {
            by_name
                .entry(name.to_owned())
                .or_default()
                .push(entry.job.name.clone());
        }
    }
    for entry in entries.iter_mut() {
        if let Some(breaker) = &mut entry.breaker
            && let Some(jobs) = breaker.settings.shared_name().and_then(|n| by_name.get(n))
        {
            breaker.jobs.clone_from(jobs);
        }
    }
}

/// Stage 1: skips the tick while the job's circuit breaker is open, or half-open with its
/// probe running ([`SkipReason::CircuitOpen`]); otherwise the tick goes on (as the probe,
/// when half-open). The state is computed from the store (the recent executions of every
/// job sharing the breaker, read with one bounded call each), so every instance computes
/// the same, and the gauge is set to it.
///
/// A requested execution (an operator's trigger or re-run) is never stopped by the breaker.
/// A store that cannot answer lets the tick go on: the claim, which needs the same store,
/// then fails and handles the tick as any tick of an unreachable store (counted, left to
/// the ledger, reported when lost), rather than the breaker dropping it on a guess.
pub(super) async fn check(t: &Tick<'_>) -> Skip<()> {
    let Some(breaker) = &t.entry.breaker else {
        return Ok(());
    };
    if t.requested_by.is_some() {
        return Ok(());
    }
    let executions = match history(t.rt, breaker).await {
        Ok(executions) => executions,
        Err(e) => {
            if t.entry
                .warnings
                .count(SkipReason::CircuitOpen, Instant::now(), 0)
                .is_some()
            {
                tracing::warn!(
                    job = %t.job().name, error = %e,
                    "cannot read the circuit breaker's executions; the tick goes on to its claim"
                );
            }
            return Ok(());
        }
    };
    let state = breaker
        .settings
        .state(&executions, t.rt.clock.now(), t.rt.liveness);
    breaker.gauge.set(state.gauge());
    if state.lets_tick_run() {
        if let BreakerState::HalfOpen { .. } = state {
            tracing::info!(
                job = %t.job().name,
                breaker = breaker.settings.label(&t.job().name),
                "circuit breaker half-open: this tick runs as the probe"
            );
        }
        return Ok(());
    }
    if !t.resuming {
        skipped(t, breaker, &state);
    }
    Err(SkipReason::CircuitOpen)
}

/// The recent executions of every job sharing the breaker.
async fn history(rt: &Runtime, breaker: &Breaker) -> Result<Vec<ExecutionRecord>, StoreError> {
    bounded(breaker.settings.read_history(&*rt.store, &breaker.jobs)).await
}

/// Sets the breaker's gauge again once a run of the job ended, whose outcome may have
/// changed the state (a probe's closes or reopens it): the gauge then says the state the
/// store holds, not the one the job's last tick saw, which may be an hour old. A store
/// that cannot answer leaves the gauge as it was.
pub(super) async fn refresh(rt: &Runtime, entry: &JobEntry) {
    let Some(breaker) = &entry.breaker else {
        return;
    };
    if let Ok(executions) = history(rt, breaker).await {
        let state = breaker
            .settings
            .state(&executions, rt.clock.now(), rt.liveness);
        breaker.gauge.set(state.gauge());
    }
}

/// Logs a skipped tick: the first, then one line a minute per job that sums up the ticks
/// since. The skip itself is counted by the pipeline's end.
fn skipped(t: &Tick<'_>, breaker: &Breaker, state: &BreakerState) {
    let Some(warning) = t
        .entry
        .warnings
        .count(SkipReason::CircuitOpen, Instant::now(), 1)
    else {
        return;
    };
    let job = &t.job().name;
    let label = breaker.settings.label(job);
    let (until, probe) = match state {
        BreakerState::Open { until, .. } => (Some(*until), None),
        BreakerState::HalfOpen { probe, .. } => (None, probe.as_deref()),
        BreakerState::Closed { .. } => (None, None),
    };
    tracing::warn!(
        %job, breaker = label, state = state.as_str(), until = until.map(tracing::field::display),
        probe, ticks = warning.ticks,
        "circuit breaker {}: ticks skipped{}",
        state.as_str(),
        if warning.first { "" } else { " since the last such warning (one a minute at most)" }
    );
}
