use std::{
    fmt,
    sync::{Arc, LazyLock},
    time::Duration,
};

use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisError, RedisResult, Script, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
};

use self::sentinel::{
    MASTER_TIMEOUT, SentinelMaster, is_read_only, master_may_have_moved, may_have_applied,
};
use super::{Acquired, Lease, LockBackend, LockError};
use crate::future::BoxFuture;

mod sentinel;

/// How long [`RedisLock::connect`] waits for the server before it reports it unreachable.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reconnection attempt at run time may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Extends the lease if the key still holds this acquisition's value.
/// `KEYS[1]` the lock's key; `ARGV[1]` the value written by acquire; `ARGV[2]` the ttl in ms.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Releases the lease if the key still holds this acquisition's value: deletes it when
/// `ARGV[2]` (ms) is `0`, or else replaces the value with a tombstone that expires in
/// `ARGV[2]` ms. The tombstone keeps everyone out until then (`at_least`) while no
/// handle, this one included, can extend or release it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], 'released:' .. ARGV[1], 'PX', ARGV[2])
end
return 1
",
    )
});

/// Leases held in Redis: one key per lock, for many instances (feature `redis`).
///
/// - **acquire** is `SET {prefix}{name} {value} NX PX {ttl}`;
/// - **extend** and **release** are Lua scripts (sent by `EVALSHA`, loaded on first use) that
///   compare the stored value first, so a holder can never extend or delete a lease that
///   expired and was taken by someone else;
/// - a release with `hold_for > 0` (`at_least`) replaces the value with a tombstone that
///   expires after `hold_for`: the lock stays taken until then, and the old handle can
///   neither extend nor release it again.
///
/// The stored value is the lease's owner followed by a random 64-bit token (the
/// [`Lease::token`]), so two instances misconfigured with the same instance id still cannot
/// act on each other's leases.
///
/// Commands go through a [`ConnectionManager`]: one multiplexed connection, reconnected when
/// it drops. While Redis is unreachable every operation fails at once with a [`LockError`]
/// (the next one tries to reconnect); the executor then skips the tick (or, for a renewal,
/// retries until the lease can no longer be proven alive, then cancels the run).
///
/// ```no_run
/// # async fn f() -> Result<(), tickguard::Error> {
/// use tickguard::{Scheduler, lock::RedisLock};
///
/// let lock = RedisLock::connect("redis://127.0.0.1:6379").await?.with_prefix("myapp:lock:");
/// let scheduler = Scheduler::builder().lock_backend(lock).build().await?;
/// # let _ = scheduler; Ok(()) }
/// ```
///
/// Under Redis Sentinel, [`RedisLock::connect_sentinel`] finds the master through the
/// sentinels and follows it when a failover moves it; see
/// [locks](crate::docs::locks#failover-and-redis-sentinel) for what a failover does to a held
/// lock. Redis Cluster is not supported.
#[derive(Clone)]
pub struct RedisLock {
    server: Server,
    prefix: String,
}

/// Where the commands go.
#[derive(Clone)]
enum Server {
    /// One address, with its description (a URL without the password).
    One {
        conn: ConnectionManager,
        description: String,
    },
    /// The master of a Sentinel-monitored set, wherever it is now.
    Sentinel(Arc<SentinelMaster>),
}

impl Server {
    fn describe(&self) -> String {
        match self {
            Self::One { description, .. } => description.clone(),
            Self::Sentinel(master) => master.describe(),
        }
    }
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("server", &self.server.describe())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLock {
    /// The key prefix unless [`RedisLock::with_prefix`] sets another: the lock of job
    /// `nightly` is the key `tickguard:lock:nightly`.
    pub const DEFAULT_PREFIX: &'static str = "tickguard:lock:";

    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket`) and checks it answers `PING`.
    ///
    /// Fails with an error naming the address and what to check when the URL is malformed,
    /// the server cannot be reached within 5 s, or it refuses the credentials. Sets
    /// `TCP_NODELAY` and, on Linux, a 30 s `TCP_USER_TIMEOUT` so that a connection to a
    /// server that vanished is dropped and re-established instead of hanging.
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        let client = Client::open(url).map_err(|e| {
            let message = if url.starts_with("rediss://") || url.starts_with("valkeys://") {
                format!(
                    "cannot use Redis URL `{}`: TLS needs the redis crate's TLS support, which \
                     tickguard does not enable; add `redis = {{ version = \"1\", features = \
                     [\"tokio-rustls-comp\"] }}` (or \"tokio-native-tls-comp\") to your own \
                     dependencies",
                    redact(url)
                )
            } else {
                format!(
                    "invalid Redis URL `{}`: {}; expected redis://[user:password@]host[:port][/db]",
                    redact(url),
                    reason(&e)
                )
            };
            LockError::with_source(message, e)
        })?;
        let info = client.get_connection_info();
        let info = info
            .clone()
            .set_tcp_settings(tcp_settings(info.tcp_settings()));
        let client = Client::open(info).map_err(|e| {
            LockError::with_source(format!("invalid Redis URL `{}`: {e}", redact(url)), e)
        })?;
        Self::from_client(client).await
    }

    /// Uses a ready [`redis::Client`]: checks the server answers `PING`, as
    /// [`RedisLock::connect`] does, then opens a reconnecting [`ConnectionManager`] on it.
    pub async fn from_client(client: Client) -> Result<Self, LockError> {
        let info = client.get_connection_info();
        let description = describe(info);
        let addr = address(info);
        let check = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(STARTUP_TIMEOUT))
            .set_response_timeout(Some(STARTUP_TIMEOUT));
        // A plain connection first: a wrong address or password fails here, within the
        // startup timeout, with an error that says what to check.
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&check)
            .await
            .map_err(|e| unreachable_error(&addr, e))?;
        redis::cmd("PING")
            .query_async::<Value>(&mut conn)
            .await
            .map_err(|e| unreachable_error(&addr, e))?;
        drop(conn);
        let config = ConnectionManagerConfig::new()
            // One connection attempt per reconnect, no retries with backoff: while Redis is
            // down each operation fails at once (with retries, each would wait out ~5 s of
            // backoff), and the next operation tries to reconnect again. Lock operations are
            // few (one acquire per tick, one renewal per ttl/3 or ttl/15 while failing), so
            // on-demand reconnection is prompt enough.
            .set_number_of_retries(0)
            .set_connection_timeout(Some(RECONNECT_TIMEOUT))
            // The executor bounds every call with its own deadlines (a renewal by the
            // watchdog's loss deadline); a shorter client-side timeout would only turn a slow
            // but working server into errors.
            .set_response_timeout(Some(Duration::from_secs(10)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| unreachable_error(&addr, e))?;
        Ok(Self::on(Server::One { conn, description }))
    }

    fn on(server: Server) -> Self {
        Self {
            server,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// Connects to the master named `master_name` of a Redis Sentinel set, through the
    /// sentinels at `sentinel_urls` (`redis://[user:password@]host:26379`, the sentinels'
    /// own addresses and credentials), and follows it when a failover moves it.
    ///
    /// The sentinels are asked for the master, which must answer `ROLE` as a master; a
    /// command that then gets `READONLY` (the server was demoted to a replica), finds the
    /// connection refused or dropped, or gets no answer within 2 s, asks the sentinels again
    /// and, if they name another master, is sent once more there; a WARN line names the old
    /// and the new address. A `READONLY` answer is never taken for a lock held by someone
    /// else. The master is reached without credentials; for a master with a password, or
    /// other settings, build the [`SentinelClient`] yourself and use
    /// [`RedisLock::from_sentinel_client`].
    ///
    /// Fails with an error naming what to check when no URL is given, a URL is malformed,
    /// the master name is empty, no sentinel answers, the sentinels know no such master, or
    /// the master cannot be reached.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tickguard::Error> {
    /// use tickguard::lock::RedisLock;
    ///
    /// let lock = RedisLock::connect_sentinel(
    ///     ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"],
    ///     "mymaster",
    /// )
    /// .await?;
    /// # let _ = lock; Ok(()) }
    /// ```
    pub async fn connect_sentinel<I, S>(
        sentinel_urls: I,
        master_name: &str,
    ) -> Result<Self, LockError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let urls: Vec<String> = sentinel_urls
            .into_iter()
            .map(|url| url.as_ref().to_owned())
            .collect();
        if urls.is_empty() {
            return Err(LockError::new(
                "Redis Sentinel: no sentinel URL given; pass the sentinels' addresses \
                 (redis://host:26379), one or more",
            ));
        }
        let mut infos = Vec::with_capacity(urls.len());
        for url in &urls {
            let info = url.as_str().into_connection_info().map_err(|e| {
                LockError::with_source(
                    format!(
                        "invalid Redis Sentinel URL `{}`: {}; expected redis://[user:password@]host[:port]",
                        redact(url),
                        reason(&e)
                    ),
                    e,
                )
            })?;
            infos.push(
                info.clone()
                    .set_tcp_settings(tcp_settings(info.tcp_settings())),
            );
        }
        let node = SentinelNodeConnectionInfo::default()
            .set_tcp_settings(tcp_settings(&redis::io::tcp::TcpSettings::default()));
        // The watcher goes through the sentinels itself: see `SentinelMaster::sentinels`.
        let infos_for_watcher = infos.clone();
        let client = SentinelClient::build(
            infos,
            master_name.to_owned(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(|e| LockError::with_source(format!("Redis Sentinel: {}", reason(&e)), e))?;
        Self::sentinel(
            client,
            infos_for_watcher,
            master_name,
            &sentinel_list(&urls),
        )
        .await
    }

    /// Uses a ready [`SentinelClient`] for the master named `master_name` (the name the
    /// client was built with; it shows in logs and errors): for a master with a password,
    /// TLS, or other settings that [`RedisLock::connect_sentinel`] does not take. Built with
    /// [`SentinelServerType::Replica`], it would lock on a replica, which refuses writes:
    /// build it for the master. Checks and follows the master as
    /// [`RedisLock::connect_sentinel`] does, with one limit: a [`SentinelClient`] does not
    /// tell its sentinels' addresses, so the watcher that asks every second whether the
    /// master moved cannot go through them in turn itself and asks the sentinel the client
    /// picks, which, with the `redis` crate 1.8, may keep being a first-listed sentinel that
    /// is down; commands that fail still ask all of them.
    pub async fn from_sentinel_client(
        client: SentinelClient,
        master_name: &str,
    ) -> Result<Self, LockError> {
        Self::sentinel(client, Vec::new(), master_name, "the sentinels given").await
    }

    async fn sentinel(
        client: SentinelClient,
        addresses: Vec<ConnectionInfo>,
        master_name: &str,
        sentinels: &str,
    ) -> Result<Self, LockError> {
        if master_name.trim().is_empty() {
            return Err(LockError::new(
                "Redis Sentinel: the master name is empty; give the name of the \
                 `sentinel monitor <name> ...` line of sentinel.conf",
            ));
        }
        let config = ConnectionManagerConfig::new()
            // As for one server (see `from_client`), with shorter timeouts: see MASTER_TIMEOUT.
            .set_number_of_retries(0)
            .set_connection_timeout(Some(MASTER_TIMEOUT))
            .set_response_timeout(Some(MASTER_TIMEOUT));
        let master = SentinelMaster::connect(client, addresses, master_name.to_owned(), config)
            .await
            .map_err(|e| sentinel_error(sentinels, master_name, e))?;
        Ok(Self::on(Server::Sentinel(master)))
    }

    /// Uses a ready [`ConnectionManager`] (for a connection configured beyond what a URL
    /// says). Nothing is checked: the first operation reports an unreachable server. The
    /// manager's own reconnection settings apply: with the `redis` crate's defaults, an
    /// operation while Redis is down waits out several retries with backoff (about 5 s)
    /// before it fails, where [`RedisLock::connect`] and [`RedisLock::from_client`] make one
    /// attempt (`ConnectionManagerConfig::set_number_of_retries(0)`).
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        Self::on(Server::One {
            conn,
            description: "redis (connection manager)".to_owned(),
        })
    }

    /// Puts the locks under `prefix` instead of [`RedisLock::DEFAULT_PREFIX`]: the lock of
    /// job `name` is the key `{prefix}{name}`. Include the separator (`"myapp:lock:"`).
    /// Instances that share jobs must share the prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix (see [`RedisLock::with_prefix`]).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Sends a command, and once more on a fresh connection if the connection was refused or
    /// had dropped. Both happen on the first command after Redis restarted or the network
    /// blipped, however long ago (the manager learns of a dropped connection only when a
    /// command fails on it), and without the second try that command would fail: a daily
    /// job would skip its tick because Redis restarted at noon.
    ///
    /// Returns the reply and whether the first attempt may have been applied (the connection
    /// dropped after the command was written). Extend is idempotent; a repeated release
    /// reports the lease gone, which the executor only logs; acquire checks (see there).
    /// Timeouts are not retried: the command may still be on its way.
    ///
    /// Under Sentinel, a failure that may mean the master moved (see
    /// [`RedisLock::connect_sentinel`]) asks the sentinels; the command is sent once more to
    /// the master they name if it is another one, or, after a refused or dropped connection,
    /// to the same one (also when the sentinels cannot be asked).
    ///
    /// A failure comes with the server the failed command went to (see
    /// [`RedisLock::op_error`]).
    async fn send<T, F, Fut>(&self, send: F) -> Result<(T, bool), (RedisError, String)>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let master = match &self.server {
            Server::One { conn, description } => {
                return match send(conn.clone()).await {
                    Err(e) => resend_once(e, conn.clone(), send).await,
                    Ok(reply) => Ok((reply, false)),
                }
                .map_err(|e| (e, description.clone()));
            }
            Server::Sentinel(master) => master,
        };
        let current = master.connection();
        let at = |e| (e, master.describe_at(&current.addr));
        let e = match send(current.conn.clone()).await {
            Err(e) if master_may_have_moved(&e) => e,
            other => return other.map(|reply| (reply, false)).map_err(at),
        };
        match master.follow(current.generation, true).await {
            Ok(Some(moved)) => match send(moved.conn).await {
                Ok(reply) => Ok((reply, may_have_applied(&e))),
                Err(again) => Err((again, master.describe_at(&moved.addr))),
            },
            Ok(None) => resend_once(e, current.conn.clone(), send).await.map_err(at),
            Err(asked) => {
                tracing::debug!(
                    master = %master.describe(), error = %reason(&asked),
                    "cannot ask the sentinels where the master is"
                );
                resend_once(e, current.conn.clone(), send).await.map_err(at)
            }
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The error of operation `what` on lock `name`, which failed with `e` on the server
    /// described as `at` (under Sentinel, the master the command went to: after a failover
    /// the old one's `READONLY` names the old one).
    fn op_error(&self, what: &str, name: &str, (e, at): (RedisError, String)) -> LockError {
        let hint = if is_read_only(&e) {
            " (READONLY: the server is a replica now; a failover moved the master)"
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
            "; is redis-server running and reachable?"
        } else {
            ""
        };
        LockError::with_source(
            format!(
                "Redis at {at}: {what} of lock `{}` failed: {}{hint}",
                self.key(name),
                reason(&e)
            ),
            e,
        )
    }
}

/// After the command `send` sent on `conn` failed with `e`: sends it once more on `conn`
/// if the connection was refused or had dropped (the manager reconnects), and returns the
/// reply and whether the first attempt may have been applied; any other failure is `e`.
async fn resend_once<T, F, Fut>(
    e: RedisError,
    conn: ConnectionManager,
    send: F,
) -> RedisResult<(T, bool)>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    if e.is_connection_refusal() || e.is_connection_dropped() {
        Ok((send(conn).await?, may_have_applied(&e)))
    } else {
        Err(e)
    }
}

/// The value stored for an acquisition: the owner and the random token.
fn value(lease: &Lease) -> String {
    format!("{}/{:016x}", lease.owner, lease.token)
}

/// The owner part of a stored value.
fn owner_of(value: &str) -> &str {
    value.rsplit_once('/').map_or(value, |(owner, _)| owner)
}

/// A duration in whole milliseconds for `PX`/`PEXPIRE`, rounded up (a `PX` of 0 is an
/// error, a `PEXPIRE` of 0 deletes the key) and capped where Redis would overflow.
fn millis(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX).min(1 << 50)
}

impl LockBackend for RedisLock {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        Box::pin(async move {
            let lease = Lease {
                name: name.to_owned(),
                owner: owner.to_owned(),
                token: fastrand::u64(1..),
            };
            // `GET` makes a refused `SET` answer with the holder's value, in the same round
            // trip (Redis 7.0 or later).
            let mut set = redis::cmd("SET");
            set.arg(self.key(name))
                .arg(value(&lease))
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .arg("GET");
            let set = &set;
            let (reply, maybe_applied) = self
                .send(|mut conn| async move { set.query_async(&mut conn).await })
                .await
                .map_err(|e| self.op_error("acquire (SET NX PX GET)", name, e))?;
            match reply {
                Value::Nil => Ok(Acquired::Lease(lease)),
                Value::BulkString(held) => {
                    let held = String::from_utf8_lossy(&held);
                    // Refused, but perhaps by our own first attempt, whose reply was lost
                    // with the connection: the value tells (it is unique to this
                    // acquisition).
                    if maybe_applied && held == value(&lease) {
                        return Ok(Acquired::Lease(lease));
                    }
                    Ok(Acquired::Held {
                        holder: Some(owner_of(&held).to_owned()),
                    })
                }
                other => Err(LockError::new(format!(
                    "Redis at {}: acquire of lock `{}` got an unexpected reply {other:?}",
                    self.server.describe(),
                    self.key(name)
                ))),
            }
        })
    }

    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(async move {
            let mut call = EXTEND.key(self.key(&lease.name));
            call.arg(value(lease)).arg(millis(ttl));
            let call = &call;
            let (extended, _): (i64, _) = self
                .send(|mut conn| async move { call.invoke_async(&mut conn).await })
                .await
                .map_err(|e| self.op_error("extend", &lease.name, e))?;
            Ok(extended == 1)
        })
    }

    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(async move {
            let hold_ms = if hold_for.is_zero() {
                0
            } else {
                millis(hold_for)
            };
            let mut call = RELEASE.key(self.key(&lease.name));
            call.arg(value(lease)).arg(hold_ms);
            let call = &call;
            let (released, _): (i64, _) = self
                .send(|mut conn| async move { call.invoke_async(&mut conn).await })
                .await
                .map_err(|e| self.op_error("release", &lease.name, e))?;
            Ok(released == 1)
        })
    }

    fn describe(&self) -> String {
        self.server.describe()
    }
}

/// What failed, in plain words: the crate's message without its error-kind decoration.
fn reason(e: &RedisError) -> String {
    if e.is_connection_refusal() {
        return "connection refused".to_owned();
    }
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    if e.kind() == ErrorKind::Parse {
        return format!(
            "unexpected reply ({})",
            e.to_string().replace('\n', " ").trim()
        );
    }
    // `{description} - {kind:?}[: {detail}]`
    e.to_string()
        .replacen(&format!(" - {:?}", e.kind()), "", 1)
        .replace('\n', " ")
}

/// The startup error: the server at `addr` could not be reached or refused us.
fn unreachable_error(addr: &str, e: RedisError) -> LockError {
    let check = match e.kind() {
        ErrorKind::AuthenticationFailed => {
            "check the user name and password in the URL (redis://user:password@host:port)"
        }
        ErrorKind::Server(_) => "check the credentials and the database number in the URL",
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            "the server there does not speak the Redis protocol; is the port right?"
        }
        _ if e.is_connection_refusal() => {
            "is redis-server running, and listening on that address and port? (check the \
             host and port in the URL, and that a firewall lets the connection through)"
        }
        _ if e.is_timeout() => "is the address right, and does a firewall drop the packets?",
        _ => "is the address right, and is redis-server running there?",
    };
    LockError::with_source(
        format!("cannot reach Redis at {addr}: {}; {check}", reason(&e)),
        e,
    )
}

/// The startup error under Sentinel: no sentinel answered, none knows the master, or the
/// master named could not be reached.
fn sentinel_error(sentinels: &str, master: &str, e: RedisError) -> LockError {
    let check = match e.kind() {
        ErrorKind::MasterNameNotFoundBySentinel => format!(
            "the sentinels know no master `{master}` that is up and answers ROLE as a master; \
             check the name (the `sentinel monitor <name> ...` line of sentinel.conf) and that \
             the master is running"
        ),
        ErrorKind::InvalidClientConfig => "is each address a sentinel's (port 26379 by \
             default), not a Redis server's?"
            .to_owned(),
        ErrorKind::AuthenticationFailed => {
            "check the user name and password in the sentinel URLs".to_owned()
        }
        _ => "is redis-sentinel running at these addresses, and does a firewall let the \
              connections through? The master they name must be reachable from here too"
            .to_owned(),
    };
    LockError::with_source(
        format!(
            "cannot find Redis master `{master}` through the sentinels at {sentinels}: {}; {check}",
            reason(&e)
        ),
        e,
    )
}

/// The sentinels' addresses, `host:port` each, without credentials, for errors.
fn sentinel_list(urls: &[String]) -> String {
    urls.iter()
        .map(|url| match url.as_str().into_connection_info() {
            Ok(info) => address(&info),
            Err(_) => redact(url),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `TCP_NODELAY` and, on Linux, a 30 s `TCP_USER_TIMEOUT` on top of `tcp`: a connection to a
/// server that vanished is dropped and re-established instead of hanging.
fn tcp_settings(tcp: &redis::io::tcp::TcpSettings) -> redis::io::tcp::TcpSettings {
    let tcp = tcp.clone().set_nodelay(true);
    #[cfg(target_os = "linux")]
    let tcp = tcp.set_user_timeout(Duration::from_secs(30));
    tcp
}

/// `host:port` or the socket path, for errors.
fn address(info: &ConnectionInfo) -> String {
    info.addr().to_string()
}

/// The server as a URL without the password, for logs. A user part with a password shows
/// as `user:***@`; a user part without one shows as `***@`, because some clients read
/// `redis://secret@host` as a password (the URL's errors mask it the same way); a password
/// alone, and the query, are left out.
fn describe(info: &ConnectionInfo) -> String {
    let redis = info.redis_settings();
    let user = match (redis.username(), redis.password()) {
        (Some(user), Some(_)) => format!("{}:***@", encode_user(user)),
        (Some(_), None) => "***@".to_owned(),
        (None, _) => String::new(),
    };
    let db = match redis.db() {
        0 => String::new(),
        n => format!("/{n}"),
    };
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{user}{host}:{port}{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{user}{host}:{port}{db}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        other => format!("redis://{user}{other}{db}"),
    }
}

/// A user name as written in a URL: the characters that would end or split the user part
/// percent-encoded, so `us@er` reads `us%40er`.
fn encode_user(user: &str) -> String {
    let mut encoded = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '@' | ':' | '/' | '?' | '#' | '%' | '[' | ']' => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    encoded.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() || c == ' ' => encoded.push_str(&format!("%{:02X}", c as u32)),
            c => encoded.push(c),
        }
    }
    encoded
}

/// `url` with the password replaced by `***`, for an error about a URL that did not parse.
/// `redis://password@host` is accepted by some clients, so a bare user part is masked too.
fn redact(url: &str) -> String {
    super::redact_url(url, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("redis://u:secret@h:1/0"),
            "redis://u:***@h:1/0".to_owned()
        );
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h".to_owned());
        assert_eq!(redact("redis://secret@h"), "redis://***@h".to_owned());
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0".to_owned());
        assert_eq!(redact("not a url"), "not a url".to_owned());
    }

    #[test]
    fn describes_without_password() {
        let client = Client::open("redis://user:secret@example.com:6380/2")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            describe(client.get_connection_info()),
            "redis://user:***@example.com:6380/2"
        );
        for (url, described) in [
            // A password alone.
            ("redis://:secret@127.0.0.1", "redis://127.0.0.1:6379"),
            // A bare user part, which some clients take for a password.
            ("redis://hunter2@h:6379", "redis://***@h:6379"),
            // Percent-encoded user and password: the user stays encoded.
            (
                "redis://us%40er:p%40ss%3Aword@h",
                "redis://us%40er:***@h:6379",
            ),
            ("redis://hun%40ter2@h", "redis://***@h:6379"),
            // A password in the query is not sent, and not shown.
            ("redis://h:6379/0?password=hunter2", "redis://h:6379"),
            (
                "redis://u:hunter2@h?password=hunter2",
                "redis://u:***@h:6379",
            ),
        ] {
            let client = Client::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(describe(client.get_connection_info()), described, "{url}");
        }
    }

    #[test]
    fn rounds_millis_up() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_secs(30)), 30_000);
        assert_eq!(millis(Duration::MAX), 1 << 50);
    }
}
