//! The ledger of ticks: every tick of an idempotent job that some instance fired is
//! accounted for in the store, even when the instance could not run it.
//!
//! A tick that finds the job's lock held for another tick, the job busy past the point where
//! this instance could keep its lease, or a backend unreachable until the tick became a
//! misfire, is *noted* here. The recovery task records the notes in the store, in one round
//! trip for every job ([`flush`]), as [`Status::Pending`](crate::store::Status::Pending)
//! rows; it then finds them among the interrupted executions and queues them on their job
//! loops, which run them or skip them by the job's misfire policy. A claim takes a pending
//! row like any other, so a tick that some run claimed meanwhile is never run twice.
//!
//! A tick whose lock is held for *the same* tick is run by the holder. It is noted too, but
//! recorded only a lease's ttl later: by then the holder's claim has written the tick's row
//! (the note then changes nothing) unless the holder died between taking the lock and
//! claiming, and the tick is not lost with it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::{Instant, timeout};

use crate::{
    executor::{BACKEND_TIMEOUT, JobEntry, Lost, Runtime, report_lost},
    metrics::SkipReason,
    store::{LedgerTick, StoreError},
};

/// The most ticks of one job that wait here to be recorded: beyond it (a store unreachable
/// for a long time under a short period), the oldest are dropped with a warning.
const BACKLOG: usize = 10_000;

/// One job's ticks waiting to be recorded in the store.
#[derive(Default)]
pub(crate) struct Ledger {
    notes: Mutex<Vec<Note>>,
}

/// A tick to record once `due` has passed.
struct Note {
    tick: LedgerTick,
    due: Instant,
}

impl Ledger {
    /// Notes `tick`, to be recorded `after` from now. A note for an execution noted before
    /// replaces it (a skip wins over a pending note).
    pub(crate) fn note(&self, tick: LedgerTick, after: Duration) {
        let due = Instant::now() + after;
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = notes
            .iter_mut()
            .find(|n| n.tick.execution_id == tick.execution_id)
        {
            if tick.skipped.is_some() || old.tick.skipped.is_none() {
                old.tick = tick;
                old.due = old.due.min(due);
            }
            return;
        }
        if notes.len() >= BACKLOG {
            let dropped = notes.remove(0);
            tracing::error!(
                job = %dropped.tick.job, tick = %dropped.tick.scheduled_at, backlog = BACKLOG,
                "too many ticks wait to be recorded (is the store unreachable?); dropped the oldest"
            );
        }
        notes.push(Note { tick, due });
    }

    /// Takes the notes that are due at `now`.
    fn take_due(&self, now: Instant) -> Vec<LedgerTick> {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.is_empty() {
            return Vec::new();
        }
        let (due, waiting): (Vec<Note>, Vec<Note>) = std::mem::take(&mut *notes)
            .into_iter()
            .partition(|n| n.due <= now);
        *notes = waiting;
        due.into_iter().map(|n| n.tick).collect()
    }

    /// Puts back ticks the store could not record, due at once.
    fn put_back(&self, ticks: Vec<LedgerTick>) {
        for tick in ticks {
            self.note(tick, Duration::ZERO);
        }
    }
}

/// Records every note of `entries` at shutdown, once the job loops have stopped (so that
/// the ticks they noted last are in): the store is asked up to three times; ticks it still
/// could not record are logged and reported lost.
pub(crate) async fn flush_at_shutdown(rt: &Runtime, entries: &[Arc<JobEntry>]) {
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        if flush(rt, entries, true).await {
            return;
        }
        tokio::time::sleep(delay).await;
        delay *= 4;
    }
    for entry in entries {
        let left = entry
            .ledger
            .take_due(Instant::now() + Duration::from_secs(86_400 * 365));
        let Some(latest) = left.iter().map(|t| t.scheduled_at).max() else {
            continue;
        };
        tracing::error!(
            job = %entry.job.name, ticks = left.len(), %latest,
            "shutdown: ticks left to the ledger could not be recorded"
        );
        let lost = Lost {
            reason: SkipReason::Unavailable,
            ticks: left.len() as u64,
            latest,
            detail: "shutdown: the store could not record the ticks left to the ledger".to_owned(),
        };
        report_lost(rt, entry, lost).await;
    }
}

/// Records the due notes of every job in `entries` (with `all`, every note), in one round
/// trip; `false` if the store could not record them (they wait for the next call).
pub(crate) async fn flush(rt: &Runtime, entries: &[Arc<JobEntry>], all: bool) -> bool {
    let now = if all {
        Instant::now() + Duration::from_secs(86_400 * 365)
    } else {
        Instant::now()
    };
    let mut by_job: HashMap<&str, (&JobEntry, Vec<LedgerTick>)> = HashMap::new();
    for entry in entries {
        let due = entry.ledger.take_due(now);
        if !due.is_empty() {
            by_job.insert(&entry.job.name, (entry, due));
        }
    }
    if by_job.is_empty() {
        return true;
    }
    let ticks: Vec<LedgerTick> = by_job.values().flat_map(|(_, t)| t.clone()).collect();
    let recorded = timeout(BACKEND_TIMEOUT, rt.store.record_ticks(&ticks))
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)));
    match recorded {
        Ok(()) => {
            tracing::debug!(ticks = ticks.len(), "ticks recorded in the ledger");
            true
        }
        Err(e) => {
            tracing::warn!(
                store = %rt.store.describe(), error = %e, ticks = ticks.len(),
                "cannot record ticks in the ledger; trying again"
            );
            for (entry, ticks) in by_job.into_values() {
                entry.ledger.put_back(ticks);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn tick(id: &str) -> LedgerTick {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        LedgerTick::pending("job", id, at, "me")
    }

    #[tokio::test(start_paused = true)]
    async fn notes_come_due_after_their_delay_and_a_skip_replaces_a_pending_note() {
        let ledger = Ledger::default();
        ledger.note(tick("a"), Duration::ZERO);
        ledger.note(tick("b"), Duration::from_secs(10));
        ledger.note(tick("a").skipped("overlap"), Duration::from_secs(5));
        ledger.note(tick("a"), Duration::ZERO);
        let due = ledger.take_due(Instant::now());
        assert_eq!(due, vec![tick("a").skipped("overlap")]);
        assert!(ledger.take_due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(ledger.take_due(Instant::now()), vec![tick("b")]);
    }
}
