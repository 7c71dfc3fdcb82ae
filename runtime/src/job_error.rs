//! [`JobError`]: what a job returns when an attempt fails, and whether to retry it.

use std::{error::Error as StdError, fmt};

/// What a job returns: `Ok(())` or a [`JobError`].
pub type JobResult = Result<(), JobError>;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a job's run failed, and whether trying again may help.
///
/// `?` on any error type that implements [`std::error::Error`] gives a **transient** error,
/// which the job's retry policy retries. A **permanent** error (bad data, a failed
/// authorization, invalid input) is not retried:
///
/// ```
/// use tickguard::{JobError, JobResult, ResultExt};
///
/// fn parse(input: &str) -> JobResult {
///     let n: u32 = input.parse().permanent()?; // retrying will not fix the input
///     if n == 0 {
///         return Err(JobError::permanent("the batch size must not be zero"));
///     }
///     Ok(())
/// }
/// assert!(parse("x").unwrap_err().is_permanent());
/// ```
///
/// `JobError` does not implement [`std::error::Error`] itself (that would conflict with the
/// blanket `From`), like `anyhow::Error`; [`JobError::chain`] walks its causes.
pub struct JobError {
    kind: ErrorKind,
    inner: BoxError,
}

/// Whether a [`JobError`] is worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// May succeed if tried again: a timeout, a refused connection, a rate limit.
    Transient,
    /// Will fail again: bad data, authorization, invalid input. Not retried.
    Permanent,
    /// The job panicked; the message is the panic's. Not retried.
    Panic,
    /// The run stopped because the scheduler is shutting down, and hands its execution
    /// back for another instance to resume from its checkpoint (see
    /// [`JobContext::hand_back`](crate::JobContext::hand_back)). Not retried here; outside a
    /// shutdown, a failure.
    HandedBack,
}

impl JobError {
    /// A transient error: retried by the job's retry policy.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            inner: error.into(),
        }
    }

    /// A permanent error: never retried.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            inner: error.into(),
        }
    }

    /// An error of the given kind.
    pub(crate) fn with_kind(kind: ErrorKind, error: impl Into<BoxError>) -> Self {
        Self {
            kind,
            inner: error.into(),
        }
    }

    /// A hand-back: the run stops because the scheduler is shutting down, and its execution
    /// is resumed by another instance from its last checkpoint. Usually made by
    /// [`JobContext::hand_back`](crate::JobContext::hand_back), which saves the progress
    /// first; `reason` says what the run stopped doing.
    pub fn handed_back(reason: impl Into<BoxError>) -> Self {
        Self {
            kind: ErrorKind::HandedBack,
            inner: reason.into(),
        }
    }

    pub(crate) fn panic(message: String) -> Self {
        Self {
            kind: ErrorKind::Panic,
            inner: format!("job panicked: {message}").into(),
        }
    }

    /// Whether the error is transient, permanent, or a panic.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying is pointless (a permanent error, a panic, or a hand-back).
    pub fn is_permanent(&self) -> bool {
        self.kind != ErrorKind::Transient
    }

    /// The error and its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let first: &(dyn StdError + 'static) = &*self.inner;
        std::iter::successors(Some(first), |e: &&(dyn StdError + 'static)| (*e).source())
    }

    /// The messages of [`JobError::chain`].
    pub fn chain_messages(&self) -> Vec<String> {
        self.chain().map(ToString::to_string).collect()
    }

    /// The underlying error, if it is an `E`.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref()
    }

    /// The underlying error.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for JobError {
    fn from(error: E) -> Self {
        Self::transient(error)
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        if f.alternate() {
            for cause in self.chain().skip(1) {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("kind", &self.kind)
            .field("chain", &self.chain_messages())
            .finish()
    }
}

/// Marks the error of a `Result` as permanent or transient, for use with `?`.
pub trait ResultExt<T> {
    /// A failure here is permanent: not retried.
    fn permanent(self) -> Result<T, JobError>;
    /// A failure here is transient: retried (what `?` does by default).
    fn transient(self) -> Result<T, JobError>;
}

impl<T, E: Into<BoxError>> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, JobError> {
        self.map_err(JobError::permanent)
    }
    fn transient(self) -> Result<T, JobError> {
        self.map_err(JobError::transient)
    }
}
