//! A job's queue of interrupted executions, filled by the scheduler's recovery task and
//! drained by the job loop, which resumes them.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::store::Status;

/// A queued execution: its id, its tick, and its status when the recovery task found it
/// ([`Status::Pending`] for a tick of the ledger that no run claimed yet).
pub(crate) type Queued = (String, DateTime<Utc>, Status);

/// A job's queue of interrupted executions to resume.
#[derive(Default)]
pub(crate) struct Interrupts {
    queue: Mutex<Vec<Queued>>,
    /// Whether the queue may hold anything: the job loop reads it every round, so an empty
    /// queue costs one load, not a lock.
    pending: AtomicBool,
    pub(crate) ready: Notify,
}

impl Interrupts {
    /// Queues an execution unless it is queued already; `true` if it was added.
    pub(crate) fn push(&self, execution_id: String, tick: DateTime<Utc>, status: Status) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.iter().any(|(id, _, _)| *id == execution_id) {
            return false;
        }
        queue.push((execution_id, tick, status));
        self.pending.store(true, Ordering::Release);
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Takes every queued execution, oldest tick first.
    pub(crate) fn take(&self) -> Vec<Queued> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        let mut all = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        all.sort_by_key(|(_, tick, _)| *tick);
        all
    }
}
