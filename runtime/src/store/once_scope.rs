//! [`OnceScope`]: whether a `once` step runs at most once within its execution or at most once
//! ever, and the key a store records it under.

use std::borrow::Cow;

use crate::store::ExecutionRef;

/// How far a `once` step's "at most once" reaches, as the store records it.
///
/// [`JobContext::once`](crate::JobContext::once) asks for [`OnceScope::Execution`],
/// [`JobContext::once_ever`](crate::JobContext::once_ever) for [`OnceScope::Ever`]. A store
/// records the step under [`OnceScope::stored_key`] and remembers which scope it has
/// ([`OnceScope::per_execution`], the `per_execution` column of the SQL stores), so that
/// [`ExecutionStore::forget_once_steps`](crate::store::ExecutionStore::forget_once_steps) can
/// delete the steps of executions that ended and keep the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnceScope {
    /// At most once per key within one execution (its attempts, resumptions and takeovers
    /// by other instances); another execution of the job runs it again. Recorded under
    /// `{execution_id}/{key}`, as [`JobContext::idempotency_key`](crate::JobContext::idempotency_key)
    /// builds its keys, and forgotten once the execution ended longer ago than the scheduler's
    /// [`once_retention`](crate::SchedulerBuilder::once_retention).
    Execution,
    /// At most once per key ever, across every execution of every job sharing the store.
    /// Recorded under the key as given, and kept forever.
    Ever,
}

impl OnceScope {
    /// The key the store records the step `key` of `exec` under: `{execution_id}/{key}` for
    /// [`OnceScope::Execution`], `key` itself for [`OnceScope::Ever`].
    pub fn stored_key<'a>(self, exec: &ExecutionRef, key: &'a str) -> Cow<'a, str> {
        match self {
            Self::Execution => Cow::Owned(format!("{}/{key}", exec.execution_id)),
            Self::Ever => Cow::Borrowed(key),
        }
    }

    /// Whether steps of this scope belong to one execution (the `per_execution` column).
    pub fn per_execution(self) -> bool {
        matches!(self, Self::Execution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_execution_keys_are_prefixed_by_the_execution_and_ever_keys_are_kept() {
        let exec = ExecutionRef {
            job: "nightly".into(),
            execution_id: "nightly@2026-01-02T00:00:00Z".into(),
            fence: 3,
        };
        assert_eq!(
            OnceScope::Execution.stored_key(&exec, "charge-1"),
            "nightly@2026-01-02T00:00:00Z/charge-1"
        );
        assert_eq!(OnceScope::Ever.stored_key(&exec, "charge-1"), "charge-1");
        assert!(OnceScope::Execution.per_execution());
        assert!(!OnceScope::Ever.per_execution());
    }
}
