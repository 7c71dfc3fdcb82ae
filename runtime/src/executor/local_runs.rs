//! The executions of a job running on this instance, by id: where a cancel request read
//! from the store ([`ExecutionStore::cancel_requests`]) finds the run to stop. A run is
//! registered once claimed, and removed when its pass through the pipeline ends (a drop
//! guard, so a panic unwinding through the pipeline removes it too).
//!
//! [`ExecutionStore::cancel_requests`]: crate::store::ExecutionStore::cancel_requests

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{context::Execution, store::CancelRequest};

/// The executions of one job running on this instance. Per job, so that starting a run
/// takes no lock another job's runs share.
#[derive(Default)]
pub(crate) struct LocalRuns {
    runs: Mutex<HashMap<String, Arc<Execution>>>,
}

/// What [`LocalRuns::deliver`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The execution runs here and was asked to stop now.
    Stopped,
    /// The execution runs here and was already asked to stop.
    Already,
    /// The execution does not run here (another instance runs it, or its run has not
    /// registered yet, or has ended).
    NotHere,
}

impl LocalRuns {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Execution>>> {
        // Each critical section is one map operation: nothing can leave it half done.
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `exec` as running here until the guard is dropped.
    pub(crate) fn register(&self, exec: &Arc<Execution>) -> LocalRun<'_> {
        self.runs()
            .insert(exec.exec.execution_id.clone(), exec.clone());
        LocalRun {
            runs: self,
            exec: exec.clone(),
        }
    }

    /// Stops the execution `request` names, if it runs here, with the request's reason.
    pub(crate) fn deliver(&self, request: &CancelRequest) -> Delivered {
        let exec = self.runs().get(&request.execution_id).cloned();
        match exec {
            None => Delivered::NotHere,
            Some(exec) if exec.stop_requested(request) => Delivered::Stopped,
            Some(_) => Delivered::Already,
        }
    }

    /// How many executions of the job run here.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.runs().len()
    }
}

/// A run registered in [`LocalRuns`]: removed when dropped.
pub(crate) struct LocalRun<'a> {
    runs: &'a LocalRuns,
    exec: Arc<Execution>,
}

impl Drop for LocalRun<'_> {
    fn drop(&mut self) {
        let mut runs = self.runs.runs();
        // Only this run's entry: a later run of the same id registered meanwhile stays.
        if runs
            .get(&self.exec.exec.execution_id)
            .is_some_and(|e| Arc::ptr_eq(e, &self.exec))
        {
            runs.remove(&self.exec.exec.execution_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{
        context::CancelReason,
        store::{CancelKind, ExecutionRef, MemoryStore},
    };

    fn execution(id: &str) -> Arc<Execution> {
        Arc::new(Execution::new(
            ExecutionRef {
                job: "j".into(),
                execution_id: id.into(),
                fence: 1,
            },
            Utc::now(),
            0,
            "i".into(),
            Arc::new(MemoryStore::new()),
            std::time::Duration::from_secs(30),
            Arc::new(CancellationToken::new()),
            CancellationToken::new(),
            metrics::Counter::noop(),
        ))
    }

    #[test]
    fn a_request_stops_the_run_registered_here_once_with_its_reason_and_note() {
        let runs = LocalRuns::default();
        let exec = execution("j@1");
        let guard = runs.register(&exec);
        let request = CancelRequest::new(
            "j@1",
            "j",
            CancelKind::Operator,
            "bad data",
            "ops",
            Utc::now(),
        );
        let elsewhere = CancelRequest::new("j@2", "j", CancelKind::Operator, "", "ops", Utc::now());
        assert_eq!(runs.deliver(&elsewhere), Delivered::NotHere);
        assert!(!exec.is_cancelled());
        assert_eq!(runs.deliver(&request), Delivered::Stopped);
        assert!(exec.is_cancelled());
        assert_eq!(exec.reason(), Some(CancelReason::Requested));
        assert_eq!(exec.stop_note(), Some("cancelled by ops: bad data"));
        assert_eq!(runs.deliver(&request), Delivered::Already);
        drop(guard);
        assert_eq!(runs.len(), 0);
        assert_eq!(runs.deliver(&request), Delivered::NotHere);
    }
}
