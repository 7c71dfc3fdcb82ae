use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::{Acquired, Lease, LockBackend, LockError};
use crate::future::BoxFuture;

/// Leases held in this process's memory: the embedded default, for one instance.
///
/// It follows the same contract as the distributed backends (expiry, owner-compared extend
/// and release), so a job behaves the same when it moves to Redis or Postgres. Expiry is
/// measured on tokio's clock, so tests under a paused clock see leases expire.
#[derive(Debug, Default)]
pub struct InProcessLock {
    leases: Mutex<HashMap<String, Held>>,
    tokens: AtomicU64,
}

#[derive(Debug)]
struct Held {
    owner: String,
    token: u64,
    expires: Instant,
    /// Released with `at_least` still running: kept until it expires, owned by nobody.
    released: bool,
}

impl InProcessLock {
    /// An empty set of leases.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Held>) -> T) -> T {
        // A poisoned map is still consistent: every update below is a single insert/remove.
        let mut map = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    fn holds(map: &HashMap<String, Held>, lease: &Lease, now: Instant) -> bool {
        map.get(&lease.name).is_some_and(|h| {
            !h.released && h.owner == lease.owner && h.token == lease.token && h.expires > now
        })
    }
}

impl LockBackend for InProcessLock {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        let now = Instant::now();
        let acquired = self.with(|map| {
            if let Some(held) = map.get(name).filter(|h| h.expires > now) {
                return Acquired::Held {
                    holder: Some(held.owner.clone()),
                };
            }
            let token = self.tokens.fetch_add(1, Ordering::Relaxed) + 1;
            map.insert(
                name.to_owned(),
                Held {
                    owner: owner.to_owned(),
                    token,
                    expires: now + ttl,
                    released: false,
                },
            );
            Acquired::Lease(Lease {
                name: name.to_owned(),
                owner: owner.to_owned(),
                token,
            })
        });
        Box::pin(std::future::ready(Ok(acquired)))
    }

    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        let now = Instant::now();
        let extended = self.with(|map| {
            if !Self::holds(map, lease, now) {
                return false;
            }
            if let Some(h) = map.get_mut(&lease.name) {
                h.expires = now + ttl;
            }
            true
        });
        Box::pin(std::future::ready(Ok(extended)))
    }

    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        let now = Instant::now();
        let released = self.with(|map| {
            if !Self::holds(map, lease, now) {
                return false;
            }
            if hold_for.is_zero() {
                map.remove(&lease.name);
            } else if let Some(h) = map.get_mut(&lease.name) {
                h.expires = now + hold_for;
                h.released = true;
            }
            true
        });
        Box::pin(std::future::ready(Ok(released)))
    }

    fn describe(&self) -> String {
        "in-process".to_owned()
    }

    fn is_process_local(&self) -> bool {
        true
    }
}
