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
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::{
    executor::{JobEntry, Lost, Runtime, bounded, report_lost},
    metrics::SkipReason,
    store::LedgerTick,
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
    /// A skip to report as a lost tick once the store says this instance's record skipped
    /// it (every instance that takes a pending tick up may skip it; one reports): why, and
    /// the report's detail.
    report: Option<(SkipReason, String)>,
}

impl Ledger {
    /// Notes `tick`, to be recorded `after` from now. A note for an execution noted before
    /// replaces it (a skip wins over a pending note).
    pub(crate) fn note(&self, tick: LedgerTick, after: Duration) {
        self.add(Note {
            tick,
            due: Instant::now() + after,
            report: None,
        });
    }

    /// Notes `tick`, skipped for good by the job's misfire policy, to be recorded now and
    /// reported lost (with `detail`) if the store says this record is what skipped it.
    pub(crate) fn skip(&self, tick: LedgerTick, detail: String) {
        self.skip_after(tick, Duration::ZERO, SkipReason::Misfire, detail);
    }

    /// Notes `tick`, skipped for good for `reason`, to be recorded `after` from now (unless
    /// a run claims it meanwhile) and reported lost (with `detail`) if the store says this
    /// record is what skipped it.
    pub(crate) fn skip_after(
        &self,
        tick: LedgerTick,
        after: Duration,
        reason: SkipReason,
        detail: String,
    ) {
        self.add(Note {
            tick,
            due: Instant::now() + after,
            report: Some((reason, detail)),
        });
    }

    fn add(&self, note: Note) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = notes
            .iter_mut()
            .find(|n| n.tick.execution_id == note.tick.execution_id)
        {
            if note.tick.skipped.is_some() || old.tick.skipped.is_none() {
                old.due = old.due.min(note.due);
                old.tick = note.tick;
                old.report = note.report.or(old.report.take());
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
        notes.push(note);
    }

    /// Takes the notes that are due at `now` (every note, with `None`).
    fn take_due(&self, now: Option<Instant>) -> Vec<Note> {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.is_empty() {
            return Vec::new();
        }
        let (due, waiting): (Vec<Note>, Vec<Note>) = std::mem::take(&mut *notes)
            .into_iter()
            .partition(|n| now.is_none_or(|now| n.due <= now));
        *notes = waiting;
        due
    }

    /// Puts back notes the store could not record, due at once.
    fn put_back(&self, notes: Vec<Note>) {
        for mut note in notes {
            note.due = Instant::now();
            self.add(note);
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
        let left = entry.ledger.take_due(None);
        let Some(latest) = left.iter().map(|n| n.tick.scheduled_at).max() else {
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
/// trip, and reports the skips this record made; `false` if the store could not record
/// them (they wait for the next call).
pub(crate) async fn flush(rt: &Runtime, entries: &[Arc<JobEntry>], all: bool) -> bool {
    let now = (!all).then(Instant::now);
    let by_job: Vec<(&JobEntry, Vec<Note>)> = entries
        .iter()
        .map(|entry| (&**entry, entry.ledger.take_due(now)))
        .filter(|(_, notes)| !notes.is_empty())
        .collect();
    if by_job.is_empty() {
        return true;
    }
    let ticks: Vec<LedgerTick> = by_job
        .iter()
        .flat_map(|(_, notes)| notes.iter().map(|n| n.tick.clone()))
        .collect();
    let recorded = bounded(rt.store.record_ticks(&ticks)).await;
    match recorded {
        Ok(skipped) => {
            tracing::debug!(ticks = ticks.len(), "ticks recorded in the ledger");
            let skipped: HashSet<String> = skipped.into_iter().collect();
            for (entry, notes) in by_job {
                report_skips(rt, entry, notes, &skipped).await;
            }
            true
        }
        Err(e) => {
            tracing::warn!(
                store = %rt.store.describe(), error = %e, ticks = ticks.len(),
                "cannot record ticks in the ledger; trying again"
            );
            for (entry, notes) in by_job {
                entry.ledger.put_back(notes);
            }
            false
        }
    }
}

/// Reports lost the ticks of `entry` that the store says this record skipped (`skipped`),
/// among the `notes` that asked for a report: one report per reason, with the latest tick.
async fn report_skips(rt: &Runtime, entry: &JobEntry, notes: Vec<Note>, skipped: &HashSet<String>) {
    let mut lost: Vec<(SkipReason, DateTime<Utc>, String)> = notes
        .into_iter()
        .filter(|n| skipped.contains(&n.tick.execution_id))
        .filter_map(|n| {
            let (reason, detail) = n.report?;
            Some((reason, n.tick.scheduled_at, detail))
        })
        .collect();
    lost.sort_by_key(|(reason, at, _)| (reason.as_str(), *at));
    for group in lost.chunk_by(|a, b| a.0 == b.0) {
        let Some((reason, latest, detail)) = group.last().cloned() else {
            continue;
        };
        let lost = Lost {
            reason,
            ticks: group.len() as u64,
            latest,
            detail,
        };
        report_lost(rt, entry, lost).await;
    }
}

#[cfg(test)]
mod tests {
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
        let ticks = |notes: Vec<Note>| notes.into_iter().map(|n| n.tick).collect::<Vec<_>>();
        let due = ticks(ledger.take_due(Some(Instant::now())));
        assert_eq!(due, vec![tick("a").skipped("overlap")]);
        assert!(ledger.take_due(Some(Instant::now())).is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            ticks(ledger.take_due(Some(Instant::now()))),
            vec![tick("b")]
        );
    }
}
