//! A job's queue of interrupted executions and requested ones, filled by the scheduler's
//! recovery and control tasks and drained by the job loop, which resumes or runs them.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::store::Status;

/// A queued execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    /// Its id.
    pub(crate) execution_id: String,
    /// Its tick.
    pub(crate) tick: DateTime<Utc>,
    /// Its status when it was found ([`Status::Pending`] for a tick of the ledger that no
    /// run claimed yet, and for a requested execution).
    pub(crate) status: Status,
    /// `Some(who)` for an execution an operator asked for (a trigger or a re-run): it runs
    /// whatever the misfire policy and the pause say, claimed once whatever the job.
    pub(crate) requested_by: Option<String>,
}

impl Queued {
    /// An execution found interrupted (or pending in the ledger).
    pub(crate) fn interrupted(execution_id: String, tick: DateTime<Utc>, status: Status) -> Self {
        Self {
            execution_id,
            tick,
            status,
            requested_by: None,
        }
    }

    /// An execution an operator asked for, by `by`.
    pub(crate) fn requested(execution_id: String, tick: DateTime<Utc>, by: String) -> Self {
        Self {
            execution_id,
            tick,
            status: Status::Pending,
            requested_by: Some(by),
        }
    }

    /// Whether an operator asked for it.
    pub(crate) fn is_requested(&self) -> bool {
        self.requested_by.is_some()
    }
}

/// A job's queue of interrupted and requested executions.
#[derive(Default)]
pub(crate) struct Interrupts {
    queue: Mutex<Vec<Queued>>,
    /// Whether the queue may hold anything: the job loop reads it every round, so an empty
    /// queue costs one load, not a lock.
    pending: AtomicBool,
    pub(crate) ready: Notify,
}

impl Interrupts {
    /// Queues an execution unless it is queued already (a requested one replaces an
    /// unrequested entry of the same id); `true` if it was added.
    pub(crate) fn push(&self, queued: Queued) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = queue
            .iter_mut()
            .find(|q| q.execution_id == queued.execution_id)
        {
            if queued.is_requested() && !old.is_requested() {
                *old = queued;
            }
            return false;
        }
        queue.push(queued);
        self.pending.store(true, Ordering::Release);
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Takes every queued execution, oldest tick first; while the job is `paused`, only the
    /// requested ones (the others stay queued until it is resumed).
    pub(crate) fn take(&self, paused: bool) -> Vec<Queued> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = if paused {
            let (requested, held): (Vec<_>, Vec<_>) = std::mem::take(&mut *queue)
                .into_iter()
                .partition(Queued::is_requested);
            if !held.is_empty() {
                self.pending.store(true, Ordering::Release);
            }
            *queue = held;
            requested
        } else {
            std::mem::take(&mut *queue)
        };
        drop(queue);
        all.sort_by_key(|q| q.tick);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_job_takes_only_requested_executions() {
        let q = Interrupts::default();
        let t = Utc::now();
        assert!(q.push(Queued::interrupted("a".into(), t, Status::Pending)));
        assert!(q.push(Queued::requested("b".into(), t, "ops".into())));
        let taken = q.take(true);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].execution_id, "b");
        assert!(q.take(true).is_empty());
        let rest = q.take(false);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].execution_id, "a");
        assert!(q.take(false).is_empty());
    }

    #[test]
    fn a_request_replaces_an_unrequested_entry_of_the_same_id() {
        let q = Interrupts::default();
        let t = Utc::now();
        assert!(q.push(Queued::interrupted("a".into(), t, Status::Pending)));
        assert!(!q.push(Queued::requested("a".into(), t, "ops".into())));
        assert!(q.take(false)[0].is_requested());
    }
}
