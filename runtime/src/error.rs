//! [`Error`]: what the scheduler reports when it cannot be built or run.

pub use tickguard_schedule::ScheduleError;

use crate::{lock::LockError, store::StoreError};

/// What can stop a [`Scheduler`](crate::Scheduler) from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A job's schedule, zone or key is invalid (only for jobs built at run time; the
    /// attribute checks these at compile time).
    #[error("job `{job}`: {source}")]
    Schedule {
        /// The job's name.
        job: String,
        /// What is wrong.
        #[source]
        source: ScheduleError,
    },
    /// A job's settings contradict each other.
    #[error("job `{job}`: {reason}")]
    InvalidJob {
        /// The job's name.
        job: String,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// Two jobs have the same name; names identify jobs in locks, the store and metrics.
    #[error(
        "two jobs are named `{name}` ({first} and {second}); give one of them `name = \"...\"`"
    )]
    DuplicateJob {
        /// The shared name.
        name: String,
        /// Where the first is defined.
        first: String,
        /// Where the second is defined.
        second: String,
    },
    /// The scheduler's settings are invalid.
    #[error("invalid scheduler configuration: {0}")]
    Config(String),
    /// The lock backend failed at startup.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The execution store failed at startup.
    #[error(transparent)]
    Store(#[from] StoreError),
}
