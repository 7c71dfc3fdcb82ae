//! `gaps`: the ticks a job's schedule says were due that have no execution, or whose
//! execution was skipped.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tickguard::Schedule;
use tickguard::store::{ExecutionRecord, Status};

/// The most ticks `gaps` looks at in one call.
pub(crate) const MAX_TICKS: usize = 100_000;

/// A tick that did not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// No execution of the schedule's covers the tick.
    Missing(DateTime<Utc>),
    /// Its execution was skipped for good.
    Skipped {
        /// The tick.
        tick: DateTime<Utc>,
        /// The skipped execution.
        execution_id: String,
        /// Why, as recorded.
        reason: Option<String>,
    },
}

/// What `gaps` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// The ticks the schedule had in the window.
    pub(crate) ticks: usize,
    /// Those that did not run, oldest first.
    pub(crate) gaps: Vec<Gap>,
}

/// Why the gaps cannot be found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoGaps {
    /// A fixed delay fires after each run: it has no fixed ticks.
    FixedDelay,
    /// More than [`MAX_TICKS`] ticks in the window.
    TooManyTicks,
}

/// Whether an execution was asked for by hand ([`trigger`](tickguard::store::ExecutionStore::trigger)):
/// it does not cover a tick of the schedule.
pub(crate) fn is_manual(execution: &ExecutionRecord) -> bool {
    execution.requested_by.is_some() && execution.id.contains("@manual-")
}

/// The ticks of `schedule` in `[from, to)` that no execution of `executions` covers, or
/// whose executions were all skipped.
pub(crate) fn find(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    executions: &[ExecutionRecord],
) -> Result<Found, NoGaps> {
    if schedule.is_fixed_delay() {
        return Err(NoGaps::FixedDelay);
    }
    // Ticks are whole milliseconds (cron: whole seconds); stores keep at least that.
    let mut by_tick: HashMap<i64, Vec<&ExecutionRecord>> = HashMap::new();
    for execution in executions.iter().filter(|e| !is_manual(e)) {
        by_tick
            .entry(execution.scheduled_at.timestamp_millis())
            .or_default()
            .push(execution);
    }
    let first = if schedule.latest_at_or_before(from) == Some(from) {
        Some(from)
    } else {
        schedule.next_after(from)
    };
    let ticks = std::iter::successors(first, |t| schedule.next_after(*t)).take_while(|t| *t < to);
    let mut found = Found {
        ticks: 0,
        gaps: Vec::new(),
    };
    for tick in ticks {
        found.ticks += 1;
        if found.ticks > MAX_TICKS {
            return Err(NoGaps::TooManyTicks);
        }
        match by_tick.get(&tick.timestamp_millis()) {
            None => found.gaps.push(Gap::Missing(tick)),
            Some(runs) if runs.iter().all(|e| e.status == Status::Skipped) => {
                let skipped = runs.first().map(|e| (*e).clone());
                if let Some(e) = skipped {
                    found.gaps.push(Gap::Skipped {
                        tick,
                        execution_id: e.id,
                        reason: e.error,
                    });
                }
            }
            Some(_) => {}
        }
    }
    Ok(found)
}
