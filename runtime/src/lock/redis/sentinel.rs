//! Redis Sentinel for [`RedisLock`](super::RedisLock): the master of a named set, found
//! through the sentinels at startup and found again when it moves (a failover).
//!
//! The `redis` crate's [`SentinelClient`] asks the sentinels for the master and checks, with
//! `ROLE`, that the server named is a master; it hands back a [`redis::Client`] for one fixed
//! address. [`SentinelMaster`] keeps a reconnecting [`ConnectionManager`] on that address and
//! replaces it when a command's failure says the master may have moved: a `READONLY` answer
//! (the server was demoted to a replica), a refused or dropped connection, or a timeout (a
//! frozen or unreachable server). It then asks the sentinels again; if they name another
//! master, every later command goes there, and a WARN line says so, with both addresses.
//!
//! A master that was frozen (or cut off) during the failover comes back believing it is
//! still the master, and answers writes until the sentinels demote it, which can take them
//! 10 s or more. Commands that do not fail cannot tell, so a watcher task also asks a
//! sentinel every second for as long as a handle to the lock exists, and switches as a
//! failure would.

use std::{
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ErrorKind, RedisError, RedisResult,
    ServerErrorKind,
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    sentinel::SentinelClient,
};

use super::reason;

/// How long a run-time question to the sentinels (with the `ROLE` check of the master they
/// name) may take before it counts as failed.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a command to the master, or a connection to it, may take under Sentinel. Shorter
/// than a single server's 10 s: a master frozen by a failover answers nothing, and only a
/// timeout tells the lock to ask the sentinels where the master is now. A lock operation
/// takes well under a millisecond on a healthy server.
pub(super) const MASTER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the answer of the sentinels to a failure on one master stands for the failures
/// of other commands on the same master: commands in flight when a master stalls all fail
/// together, and one question answers them all (each asking in turn would make the last
/// one wait for all the others).
const ANSWER_STANDS_FOR: Duration = Duration::from_secs(1);

/// How often the watcher asks the sentinels whether the master moved.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// After how many questions in a row that no sentinel answered the watcher logs a WARN.
const WARN_AFTER_FAILURES: u32 = 5;

/// How often, at most, the watcher repeats that WARN while no sentinel answers.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The master of one Sentinel-monitored set, and a connection to it.
pub(super) struct SentinelMaster {
    /// The master's name, as in `sentinel monitor <name> ...`.
    name: String,
    /// The sentinels, asked one question at a time.
    client: tokio::sync::Mutex<SentinelClient>,
    /// The sentinels' addresses, which the watcher goes through in turn. Empty for a ready
    /// [`SentinelClient`] (it does not tell them): the watcher then asks the client for a
    /// sentinel.
    sentinels: Vec<ConnectionInfo>,
    /// Settings of each connection to a master.
    config: ConnectionManagerConfig,
    /// The master in use.
    current: RwLock<Current>,
    /// The last answer to [`SentinelMaster::follow`] that did not switch; written while
    /// `client` is locked.
    last: std::sync::Mutex<Option<Answer>>,
}

/// What the sentinels answered [`SentinelMaster::follow`] for the master of `generation`,
/// when they named the same master (`Ok`) or could not be asked (`Err`).
struct Answer {
    generation: u64,
    at: Instant,
    outcome: Result<(), RedisError>,
}

/// A master in use: its address, a connection to it, and how many times the master moved
/// before it (so that concurrent failures switch once).
#[derive(Clone)]
pub(super) struct Current {
    /// The master's `host:port`.
    pub(super) addr: String,
    /// A connection to it.
    pub(super) conn: ConnectionManager,
    /// How many times the master moved before it.
    pub(super) generation: u64,
}

impl SentinelMaster {
    /// Asks the sentinels of `client` for the master `name`, connects to it, and starts the
    /// watcher, which ends when the last handle is dropped.
    /// `sentinels` are the sentinels' addresses if known (see [`SentinelMaster::sentinels`]).
    pub(super) async fn connect(
        mut client: SentinelClient,
        sentinels: Vec<ConnectionInfo>,
        name: String,
        config: ConnectionManagerConfig,
    ) -> RedisResult<Arc<Self>> {
        let (addr, conn) = locate(&mut client, &config).await?;
        let master = Arc::new(Self {
            name,
            client: tokio::sync::Mutex::new(client),
            sentinels,
            config,
            current: RwLock::new(Current {
                addr,
                conn,
                generation: 0,
            }),
            last: std::sync::Mutex::new(None),
        });
        tokio::spawn(watch(Arc::downgrade(&master)));
        Ok(master)
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The master in use: its address, a connection to it, and its generation (for
    /// [`SentinelMaster::follow`]).
    pub(super) fn connection(&self) -> Current {
        self.current()
    }

    /// The master in use and its name, for logs and errors, as
    /// ``redis://host:port (master `name` of the sentinels)``.
    pub(super) fn describe(&self) -> String {
        self.describe_at(&self.current().addr)
    }

    /// The server at `addr` (`host:port`) as a master of this set, for logs and errors: an
    /// error names the server the command went to, which may no longer be the master in use.
    pub(super) fn describe_at(&self, addr: &str) -> String {
        format!("redis://{addr} (master `{}` of the sentinels)", self.name)
    }

    /// The master's address (`host:port`) as a sentinel names it, through `sentinel` (a
    /// connection to a sentinel, opened if `None`, to the sentinel `turn` points at).
    async fn named(
        &self,
        sentinel: &mut Option<MultiplexedConnection>,
        turn: &Turn,
    ) -> RedisResult<String> {
        let conn = match sentinel {
            Some(conn) => conn,
            None => {
                let client = match turn.pick(&self.sentinels) {
                    Some(info) => Client::open(info.clone())?,
                    // The mutex is held only while the client picks a sentinel, not
                    // for the question.
                    None => self.client.lock().await.async_get_sentinel_client().await?,
                };
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(MASTER_TIMEOUT))
                    .set_response_timeout(Some(MASTER_TIMEOUT));
                sentinel.insert(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
        };
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.name)
            .query_async(conn)
            .await?;
        Ok(format!("{host}:{port}"))
    }

    /// After a command on the connection of generation `seen` failed in a way that says the
    /// master may have moved: asks the sentinels where the master is. Returns the master
    /// if it is another one than `seen`'s (this call or a concurrent one switched to it),
    /// `None` if the sentinels still name the same master.
    ///
    /// Concurrent failures share one question: with `reuse`, a call that finds that the
    /// sentinels were asked about the same master less than [`ANSWER_STANDS_FOR`] ago takes
    /// that answer. The watcher, which saw the sentinels name another master, asks again.
    pub(super) async fn follow(&self, seen: u64, reuse: bool) -> RedisResult<Option<Current>> {
        // One question at a time: the failures of concurrent commands switch once.
        let mut client = tokio::time::timeout(DISCOVERY_TIMEOUT, self.client.lock())
            .await
            .map_err(|_| timed_out("waiting for another question to the sentinels"))?;
        let current = self.current();
        if current.generation != seen {
            return Ok(Some(current));
        }
        if let Some(outcome) = self.recent_answer(seen).filter(|_| reuse) {
            return outcome.map(|()| None);
        }
        let asked = tokio::time::timeout(DISCOVERY_TIMEOUT, client.async_get_client())
            .await
            .map_err(|_| timed_out("asking the sentinels for the master"))
            .and_then(|found| found);
        let found = match asked {
            Ok(found) if found.get_connection_info().addr().to_string() != current.addr => found,
            other => {
                let outcome = other.map(|_| ());
                *self
                    .last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Answer {
                    generation: seen,
                    at: Instant::now(),
                    outcome: outcome.clone(),
                });
                return outcome.map(|()| None);
            }
        };
        let addr = found.get_connection_info().addr().to_string();
        let conn = ConnectionManager::new_with_config(found, self.config.clone()).await?;
        tracing::warn!(
            master = %self.name, from = %current.addr, to = %addr,
            "the Redis master moved (Sentinel failover): locks now go to the new master"
        );
        let moved = Current {
            addr,
            conn,
            generation: seen + 1,
        };
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = moved.clone();
        Ok(Some(moved))
    }

    /// The answer the sentinels gave [`SentinelMaster::follow`] for the master of
    /// `generation`, if less than [`ANSWER_STANDS_FOR`] ago.
    fn recent_answer(&self, generation: u64) -> Option<RedisResult<()>> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref()
            .filter(|answer| answer.generation == generation)
            .filter(|answer| answer.at.elapsed() < ANSWER_STANDS_FOR)
            .map(|answer| answer.outcome.clone())
    }
}

/// Every [`WATCH_EVERY`], while the master is in use, asks a sentinel for the master's
/// address (`SENTINEL get-master-addr-by-name`, on a connection kept open) and follows the
/// master if they name another one: a stale master that answers writes is left as soon as
/// the sentinels promoted its replica, not when they demote it.
///
/// A sentinel that cannot be reached or does not answer is left for the next one in the
/// list; when none answers for [`WARN_AFTER_FAILURES`] questions in a row, a WARN says that
/// a stale master would not be noticed, repeated at most every [`WARN_EVERY`].
async fn watch(master: Weak<SentinelMaster>) {
    let mut sentinel = None;
    let mut turn = Turn::default();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(master) = master.upgrade() else {
            return;
        };
        match master.named(&mut sentinel, &turn).await {
            Ok(named) => {
                turn.answered();
                if named == master.current().addr {
                    continue;
                }
            }
            Err(e) => {
                sentinel = None;
                tracing::debug!(master = %master.name, error = %reason(&e), "cannot ask a sentinel for the master");
                if turn.failed(Instant::now()) {
                    tracing::warn!(
                        master = %master.name, failures = turn.failures, error = %reason(&e),
                        "no sentinel answers: a master the sentinels replaced would not be \
                         noticed until a command to it fails"
                    );
                }
                continue;
            }
        }
        let generation = master.connection().generation;
        if let Err(e) = master.follow(generation, false).await {
            tracing::debug!(master = %master.name, error = %reason(&e), "cannot follow the master");
        }
    }
}

/// Which sentinel the watcher asks, and how many questions in a row failed.
#[derive(Debug, Default)]
struct Turn {
    /// The index of the sentinel to ask (modulo their number).
    next: usize,
    /// Questions in a row that no sentinel answered.
    failures: u32,
    /// When the last WARN about it was logged.
    warned: Option<Instant>,
}

impl Turn {
    /// The sentinel to ask, of `sentinels` (`None` if there are none).
    fn pick<'a>(&self, sentinels: &'a [ConnectionInfo]) -> Option<&'a ConnectionInfo> {
        (!sentinels.is_empty()).then(|| &sentinels[self.next % sentinels.len()])
    }

    /// A sentinel answered: the next question goes to it again.
    fn answered(&mut self) {
        self.failures = 0;
        self.warned = None;
    }

    /// The sentinel asked did not answer: the next question goes to the next one. Returns
    /// whether to WARN (at `now`).
    fn failed(&mut self, now: Instant) -> bool {
        self.next = self.next.wrapping_add(1);
        self.failures = self.failures.saturating_add(1);
        let due = self
            .warned
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if self.failures >= WARN_AFTER_FAILURES && due {
            self.warned = Some(now);
            return true;
        }
        false
    }
}

/// The master the sentinels name, checked with `ROLE`, and a connection to it.
async fn locate(
    client: &mut SentinelClient,
    config: &ConnectionManagerConfig,
) -> RedisResult<(String, ConnectionManager)> {
    let found = tokio::time::timeout(DISCOVERY_TIMEOUT, client.async_get_client())
        .await
        .map_err(|_| timed_out("asking the sentinels for the master"))??;
    let addr = found.get_connection_info().addr().to_string();
    let conn = ConnectionManager::new_with_config(found, config.clone()).await?;
    Ok((addr, conn))
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// Whether a command's failure may mean the master moved: the server answered `READONLY`
/// (it is a replica now), or it could not be reached or did not answer in time.
pub(super) fn master_may_have_moved(e: &RedisError) -> bool {
    is_read_only(e)
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_io_error()
        || e.is_timeout()
}

/// A `READONLY` answer: the command reached a replica. A Lua script's write on a replica
/// answers the same, with the script's name after it.
pub(super) fn is_read_only(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || e.code() == Some("READONLY")
        || e.to_string().contains("READONLY")
}

/// Whether the failed command may have been applied anyway: its connection dropped or timed
/// out after it was written. A refusal or a `READONLY` answer applied nothing.
pub(super) fn may_have_applied(e: &RedisError) -> bool {
    !(is_read_only(e) || e.is_connection_refusal())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a server's `-{line}` reply is.
    fn server_error(line: &str) -> RedisError {
        let reply = redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        match reply.extract_error() {
            Err(e) => e,
            Ok(v) => panic!("not an error: {v:?}"),
        }
    }

    #[test]
    fn read_only_answers_mean_the_master_moved_and_applied_nothing() {
        for line in [
            "READONLY You can't write against a read only replica.",
            // A Lua script's write on a replica.
            "READONLY You can't write against a read only replica. script: 4e6d8f, on @user_script:3.",
        ] {
            let e = server_error(line);
            assert!(is_read_only(&e), "{line}");
            assert!(master_may_have_moved(&e), "{line}");
            assert!(!may_have_applied(&e), "{line}");
        }
    }

    #[test]
    fn the_watcher_goes_through_the_sentinels_and_warns_when_none_answers() {
        let sentinels: Vec<ConnectionInfo> = ["redis://127.0.0.1:1", "redis://127.0.0.1:2"]
            .into_iter()
            .map(|url| redis::IntoConnectionInfo::into_connection_info(url).unwrap())
            .collect();
        let port = |turn: &Turn| turn.pick(&sentinels).map(|info| info.addr().to_string());
        let mut turn = Turn::default();
        assert_eq!(port(&turn).as_deref(), Some("127.0.0.1:1"));
        let start = Instant::now();
        assert!(!turn.failed(start));
        // A dead first sentinel is left for the second, and the second kept while it answers.
        assert_eq!(port(&turn).as_deref(), Some("127.0.0.1:2"));
        turn.answered();
        assert_eq!(port(&turn).as_deref(), Some("127.0.0.1:2"));
        // The WARN comes after WARN_AFTER_FAILURES failures in a row, then once per WARN_EVERY.
        let warned: Vec<bool> = (0..WARN_AFTER_FAILURES + 2)
            .map(|_| turn.failed(start))
            .collect();
        let mut expected = vec![false; WARN_AFTER_FAILURES as usize + 2];
        expected[WARN_AFTER_FAILURES as usize - 1] = true;
        assert_eq!(warned, expected);
        assert!(turn.failed(start + WARN_EVERY));
        assert!(!turn.failed(start + WARN_EVERY));
        // An answer starts the count again.
        turn.answered();
        assert!(!turn.failed(start + WARN_EVERY));
        assert!(Turn::default().pick(&[]).is_none());
    }

    #[test]
    fn other_errors_are_not_a_move() {
        for line in [
            "ERR wrong number of arguments",
            "NOSCRIPT No matching script",
        ] {
            let e = server_error(line);
            assert!(!is_read_only(&e), "{line}");
            assert!(!master_may_have_moved(&e), "{line}");
        }
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(master_may_have_moved(&dropped));
        assert!(may_have_applied(&dropped));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(master_may_have_moved(&refused));
        assert!(!may_have_applied(&refused));
        let silent = timed_out("a test");
        assert!(master_may_have_moved(&silent) && may_have_applied(&silent));
    }
}
