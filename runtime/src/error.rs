//! [`Error`]: what the scheduler reports when it cannot be built or run.

use std::{error::Error as StdError, fmt};

pub use tickguard_schedule::ScheduleError;

use crate::{lock::LockError, store::StoreError};

/// What can stop a [`Scheduler`](crate::Scheduler) from starting or running.
///
/// Its `Debug` form is what a `main` returning `Result<(), tickguard::Error>` prints: the
/// message, then the chain of causes, one per line:
///
/// ```text
/// cannot reach PostgreSQL at 127.0.0.1:5432/app: connection refused; is postgres running there?
///
/// Caused by:
///     error communicating with database: Connection refused (os error 111)
/// ```
#[derive(thiserror::Error)]
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

impl fmt::Debug for Error {
    /// The message and its causes (see [`Error`]), not the variant's fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_causes(self, f)
    }
}

/// Writes `error`'s message, then, if it has causes, a blank line, `Caused by:` and each
/// cause on a line of its own, numbered when there are several (as `anyhow` does): the
/// `Debug` form of tickguard's errors, which is what `main` prints when it returns one.
pub(crate) fn with_causes(
    error: &(dyn StdError + 'static),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(f, "{error}")?;
    let mut causes: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause);
        next = cause.source();
    }
    match causes.as_slice() {
        [] => Ok(()),
        [only] => write!(f, "\n\nCaused by:\n    {only}"),
        all => {
            f.write_str("\n\nCaused by:")?;
            for (i, cause) in all.iter().enumerate() {
                write!(f, "\n    {i}: {cause}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct Cause(&'static str, Option<Box<Cause>>);

    impl fmt::Display for Cause {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Cause {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|c| c as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn debug_reads_like_display_then_the_causes() {
        let plain = Error::Config("liveness 1ms is too short: at least 30ms".into());
        assert_eq!(
            format!("{plain:?}"),
            "invalid scheduler configuration: liveness 1ms is too short: at least 30ms"
        );
        let one = Error::Lock(LockError::with_source(
            "cannot reach Redis at 127.0.0.1:6390: connection refused",
            Cause("Connection refused (os error 111)", None),
        ));
        assert_eq!(
            format!("{one:?}"),
            "cannot reach Redis at 127.0.0.1:6390: connection refused\n\
             \n\
             Caused by:\n    \
             Connection refused (os error 111)"
        );
        let two = Error::Store(StoreError::unavailable(
            "cannot reach PostgreSQL at db:5432/app: timed out",
            Some(Box::new(Cause(
                "pool timed out",
                Some(Box::new(Cause("no route to host", None))),
            ))),
        ));
        assert_eq!(
            format!("{two:?}"),
            "cannot reach PostgreSQL at db:5432/app: timed out\n\
             \n\
             Caused by:\n    \
             0: pool timed out\n    \
             1: no route to host"
        );
        let lock = LockError::with_source("lost", Cause("reset", None));
        assert_eq!(format!("{lock:?}"), "lost\n\nCaused by:\n    reset");
        let store = StoreError::unavailable("down", Some(Box::new(Cause("reset", None))));
        assert_eq!(format!("{store:?}"), "down\n\nCaused by:\n    reset");
        let fenced = StoreError::Fenced {
            execution_id: "e".into(),
            fence: 3,
        };
        assert_eq!(format!("{fenced:?}"), fenced.to_string());
    }
}
