//! Lease locks: at most one instance runs a job's tick at a time, and a crashed holder's lease
//! expires by itself.
//!
//! A lease is taken with a time to live, renewed by the executor's watchdog every ttl/3 while
//! the job runs, and released by compare-and-delete. Every operation compares the owner, so a
//! holder can never extend or delete a lease that someone else now holds.
//!
//! The lock is an optimisation: correctness comes from the execution store, whose fencing
//! rejects the writes of a holder that lost its lease while paused (see
//! [`ExecutionStore`](crate::store::ExecutionStore)).
//!
//! Backends: [`InProcessLock`] (the embedded default, for one instance); with the feature
//! `redis`, `RedisLock` (one Redis server shared by every instance); with the feature
//! `postgres`, `PostgresLock` (lease rows in a PostgreSQL table, for users without Redis).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use std::{error::Error as StdError, fmt, time::Duration};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::PostgresLock;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisLock;
pub use memory::InProcessLock;

use crate::future::BoxFuture;

/// A held lease, as returned by [`LockBackend::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lock's name (the job's name).
    pub name: String,
    /// Who holds it: unique per execution, so two runs on one instance are told apart.
    pub owner: String,
    /// A backend-specific token that identifies this acquisition (0 if unused).
    pub token: u64,
}

/// The answer to [`LockBackend::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is this owner's now.
    Lease(Lease),
    /// Another owner holds the lock. `holder` is its owner string, when the backend can tell
    /// in the same round trip (the built-in backends do): the executor's owner strings name
    /// the tick they hold the lock for, so an instance that finds the lock held knows
    /// whether the holder runs its tick or another one.
    Held {
        /// The holder's owner string, if known.
        holder: Option<String>,
    },
}

impl Acquired {
    /// The lease, if the lock was taken.
    pub fn lease(self) -> Option<Lease> {
        match self {
            Self::Lease(lease) => Some(lease),
            Self::Held { .. } => None,
        }
    }
}

/// A store of named lease locks.
///
/// Implementations must make every operation atomic and compare the owner: `extend` and
/// `release` of a lease that expired or that another owner took over change nothing and
/// return `Ok(false)`. An `Err` means the backend could not be asked (unreachable, timed out):
/// the caller cannot tell whether the lease is still held.
pub trait LockBackend: Send + Sync + 'static {
    /// Takes the lock `name` for `ttl` if nobody holds it; [`Acquired::Held`] (with the
    /// holder's owner string, if the backend can tell) if somebody does.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>>;

    /// Sets the lease's remaining time to `ttl` if `lease` still holds it.
    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>>;

    /// Releases the lease if `lease` still holds it: deletes it when `hold_for` is zero, or
    /// shortens it to expire `hold_for` from now (`at_least`: a fast job on an instance with a
    /// skewed clock must not run the same tick again elsewhere). Either way `lease` no longer
    /// holds it: it can neither extend it nor release it again.
    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>>;

    /// A short description for logs, such as `redis://127.0.0.1:6379`.
    fn describe(&self) -> String;

    /// Whether the lock holds its leases in this process only, so that other processes
    /// cannot see them (`true` for [`InProcessLock`]): the scheduler then warns at start
    /// that with several replicas every replica runs every tick. `false` by default; a
    /// wrapper around another backend answers for the backend it wraps.
    fn is_process_local(&self) -> bool {
        false
    }
}

impl<L: LockBackend + ?Sized> LockBackend for std::sync::Arc<L> {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        (**self).acquire(name, owner, ttl)
    }
    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        (**self).extend(lease, ttl)
    }
    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        (**self).release(lease, hold_for)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn is_process_local(&self) -> bool {
        (**self).is_process_local()
    }
}

/// A lock backend could not be asked. Its `Debug` form is its message followed by its
/// causes, as [`Error`](crate::Error)'s is.
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct LockError {
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl LockError {
    /// An error with a message that says what failed and what to check.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        message: impl fmt::Display,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.to_string(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Debug for LockError {
    /// The message and its causes; with `{:#?}`, the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("LockError")
                .field("message", &self.message)
                .field("source", &self.source)
                .finish();
        }
        crate::error::with_causes(self, f)
    }
}

/// `url` with its secrets replaced by `***`, for errors about URLs that did not parse: the
/// password of its user part (everything up to the last `@`, so a password with an
/// unescaped `/` or `?` is masked too) and the value of every query parameter that names a
/// password, key or token (`?password=..`, `sslpassword`, `passfile`). With
/// `bare_is_password`, a user part without `:` is masked whole.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn redact_url(url: &str, bare_is_password: bool) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@"),
                None if bare_is_password => "***@".to_owned(),
                None => format!("{userinfo}@"),
            };
            (masked, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let after = match after.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if is_secret_param(key) => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => after.to_owned(),
    };
    format!("{}{userinfo}{after}", &url[..scheme_end + 3])
}

/// Whether a URL's query parameter `key` carries a secret.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "key", "token"]
        .iter()
        .any(|word| key.contains(word))
}
