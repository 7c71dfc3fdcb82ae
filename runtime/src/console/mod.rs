//! The web console (feature `console`): pages of the jobs, a job's history and its strip of
//! recent ticks, an execution with its runs, and the dead letters, with pause, resume,
//! trigger now and re-run; served from inside an application by
//! [`SchedulerBuilder::console`](crate::SchedulerBuilder::console), or for any store by
//! `tickguard console` (the same [`serve`]). See the
//! [console's manual page](crate::docs::console).
//!
//! Security: it needs a token ([`Access::token`]) for reading and acting, unless read-only
//! access without one is enabled ([`Access::anonymous_read`], [`Access::read_only`]); a
//! browser signs in with the token and gets an HttpOnly, `SameSite=Strict` session cookie;
//! a script sends `Authorization: Bearer TOKEN`. Every action is a POST, and a browser's
//! carries a CSRF token bound to its session. Pages show no store URL, password or token,
//! and escape every job name, note and error.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tickguard::console::{self, Access};
//! use tickguard::store::MemoryStore;
//!
//! # async fn example() -> Result<(), tickguard::Error> {
//! let listener = console::bind("127.0.0.1:9470").await?;
//! let access = Access::token(std::env::var("TICKGUARD_CONSOLE_TOKEN").unwrap_or_default());
//! console::serve(listener, Arc::new(MemoryStore::new()), access, std::future::pending()).await
//! # }
//! ```

mod auth;
mod csrf;
mod pages;
mod problem;
mod server;
mod stats;
mod strip;
mod words;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::Error;
use crate::store::ExecutionStore;

/// Who may read and act in the console.
#[derive(Clone)]
pub struct Access {
    token: Option<String>,
    anonymous_read: bool,
}

impl std::fmt::Debug for Access {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("anonymous_read", &self.anonymous_read)
            .finish()
    }
}

impl Access {
    /// Whoever has `token` reads and acts; nobody else reads.
    pub fn token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            anonymous_read: false,
        }
    }

    /// Nobody acts, and anyone who reaches the console reads it: only for a console that
    /// only trusted people can reach.
    pub fn read_only() -> Self {
        Self {
            token: None,
            anonymous_read: true,
        }
    }

    /// Whether anyone who reaches the console may read it without the token (acting still
    /// needs it).
    pub fn anonymous_read(mut self, anonymous_read: bool) -> Self {
        self.anonymous_read = anonymous_read;
        self
    }

    /// The token, checked: an [`Error::Config`] for an empty one or for no token without
    /// anonymous reading (a console nobody could open).
    fn checked_token(&self) -> Result<Option<&str>, Error> {
        match self.token.as_deref().map(str::trim) {
            Some("") => Err(Error::Config(
                "the console's token is empty: give it a long random one (such as the output \
                 of `openssl rand -hex 32`)"
                    .to_owned(),
            )),
            Some(token) => Ok(Some(token)),
            None if self.anonymous_read => Ok(None),
            None => Err(Error::Config(
                "the console needs a token (for reading too): set one, or enable read-only \
                 access without one explicitly"
                    .to_owned(),
            )),
        }
    }
}

/// Serves the console on `listener` for `store` until `shutdown` completes. Fails at once
/// with [`Error::Config`] for an [`Access`] that names no usable token (see
/// [`Access::token`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn ExecutionStore>,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let token = access.checked_token()?;
    let keys = auth::Keys::new(token)
        .map_err(|e| Error::Config(format!("the console cannot draw its random key: {e}")))?;
    let app = server::App {
        store,
        keys,
        anonymous_read: access.anonymous_read,
    };
    axum::serve(listener, server::router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Config(format!("the console stopped serving: {e}")))
}

/// Binds `addr` (`ip:port` or `host:port`), with an error that says what to change.
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!(
            "cannot serve the console on {addr}: {e}; give ip:port (127.0.0.1:9470 for this \
             host only) with a free port"
        ))
    })
}

/// Binds `addr` and serves the console there in a task of its own, for
/// [`SchedulerBuilder::console`](crate::SchedulerBuilder::console): the task serves until
/// aborted.
pub(crate) async fn start(
    addr: &str,
    access: Access,
    store: Arc<dyn ExecutionStore>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    access.checked_token()?;
    let listener = bind(addr).await?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("the console's address on {addr} is unknown: {e}")))?;
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, store, access, std::future::pending()).await {
            tracing::error!(error = %e, "the console stopped");
        }
    });
    tracing::info!(address = %local, "console: serving http://{local}/");
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_needs_a_usable_token_or_anonymous_reading() {
        let refused = |access: Access| access.checked_token().unwrap_err().to_string();
        assert!(refused(Access::token("  ")).contains("token is empty"));
        assert!(refused(Access::read_only().anonymous_read(false)).contains("needs a token"));
        assert_eq!(Access::token(" t0k ").checked_token().unwrap(), Some("t0k"));
        assert_eq!(Access::read_only().checked_token().unwrap(), None);
        let shown = format!("{:?}", Access::token("s3cret"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
