//! The executions of this process whose ends are not recorded yet: shutdown waits for them.

use std::sync::Mutex;

/// The executions of this process whose runs were claimed and whose ends are not recorded
/// yet: shutdown waits for them, and names those it gives up on.
#[derive(Default)]
pub(crate) struct Unrecorded(Mutex<Vec<String>>);

impl Unrecorded {
    /// Counts `execution_id` as unrecorded until the returned guard is dropped.
    pub(super) fn track(&self, execution_id: &str) -> Pending<'_> {
        self.lock().push(execution_id.to_owned());
        Pending {
            all: self,
            execution_id: execution_id.to_owned(),
        }
    }

    /// The executions whose ends are not recorded yet.
    pub(crate) fn left(&self) -> Vec<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An execution counted in [`Unrecorded`] until dropped: once its end is recorded (or its
/// recording gave up), or when a panic unwinds through the pipeline.
pub(super) struct Pending<'a> {
    all: &'a Unrecorded,
    execution_id: String,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut all = self.all.lock();
        if let Some(i) = all.iter().position(|id| *id == self.execution_id) {
            all.swap_remove(i);
        }
    }
}
