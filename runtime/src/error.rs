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
///
/// A cause whose text the line before already contains is left out. `{:#?}` prints the
/// variant and its fields instead, as a derived `Debug` would.
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
    /// The message and its causes (see [`Error`]); with `{:#?}`, the variant and its fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return with_causes(self, f);
        }
        match self {
            Self::Schedule { job, source } => f
                .debug_struct("Schedule")
                .field("job", job)
                .field("source", source)
                .finish(),
            Self::InvalidJob { job, reason } => f
                .debug_struct("InvalidJob")
                .field("job", job)
                .field("reason", reason)
                .finish(),
            Self::DuplicateJob {
                name,
                first,
                second,
            } => f
                .debug_struct("DuplicateJob")
                .field("name", name)
                .field("first", first)
                .field("second", second)
                .finish(),
            Self::Config(message) => f.debug_tuple("Config").field(message).finish(),
            Self::Lock(e) => f.debug_tuple("Lock").field(e).finish(),
            Self::Store(e) => f.debug_tuple("Store").field(e).finish(),
        }
    }
}

/// Writes `error`'s message, then, if it has causes, a blank line, `Caused by:` and each
/// cause on a line of its own, numbered when there are several (as `anyhow` does): the
/// `Debug` form of tickguard's errors, which is what `main` prints when it returns one. A
/// cause whose text the line before it already contains (a message that quotes its cause,
/// a driver that wraps an error in one that says the same) is left out.
pub(crate) fn with_causes(
    error: &(dyn StdError + 'static),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let mut previous = error.to_string();
    f.write_str(&previous)?;
    let mut causes: Vec<String> = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !previous.contains(&text) {
            causes.push(text.clone());
            previous = text;
        }
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
    use tickguard_schedule::Schedule;

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

    #[test]
    fn debug_leaves_out_causes_the_line_before_already_says() {
        let schedule = Schedule::cron("not cron").err();
        let schedule = schedule.unwrap_or_else(|| panic!("`not cron` parsed"));
        let e = Error::Schedule {
            job: "bad".into(),
            source: schedule.clone(),
        };
        assert_eq!(format!("{e:?}"), format!("job `bad`: {schedule}"));
        // Two identical causes, as the Redis driver gives: one line.
        let e = LockError::with_source(
            "cannot reach Redis at h:6379: refused",
            Cause(
                "Connection refused (os error 111)",
                Some(Box::new(Cause("Connection refused (os error 111)", None))),
            ),
        );
        assert_eq!(
            format!("{e:?}"),
            "cannot reach Redis at h:6379: refused\n\nCaused by:\n    \
             Connection refused (os error 111)"
        );
        // A cause that says more than the message is kept.
        let e = LockError::with_source("refused", Cause("refused: by the firewall", None));
        assert_eq!(
            format!("{e:?}"),
            "refused\n\nCaused by:\n    refused: by the firewall"
        );
    }

    #[test]
    fn alternate_debug_shows_the_variant_and_its_fields() {
        let e = Error::Config("liveness 1ms is too short".into());
        assert_eq!(
            format!("{e:#?}"),
            "Config(\n    \"liveness 1ms is too short\",\n)"
        );
        let e = Error::DuplicateJob {
            name: "a".into(),
            first: "x.rs:1".into(),
            second: "y.rs:2".into(),
        };
        let pretty = format!("{e:#?}");
        assert!(
            pretty.starts_with("DuplicateJob {\n    name: \"a\",")
                && pretty.contains("second: \"y.rs:2\""),
            "{pretty}"
        );
        let e = Error::Lock(LockError::with_source("down", Cause("reset", None)));
        let pretty = format!("{e:#?}");
        assert!(
            pretty.starts_with("Lock(\n    LockError {\n        message: \"down\",")
                && pretty.contains("source: Some("),
            "{pretty}"
        );
        let e = Error::Store(StoreError::Fenced {
            execution_id: "e".into(),
            fence: 3,
        });
        let pretty = format!("{e:#?}");
        assert!(
            pretty.starts_with("Store(\n    Fenced {\n        execution_id: \"e\","),
            "{pretty}"
        );
    }
}
