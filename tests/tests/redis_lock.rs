//! The Redis lock beyond the conformance suite: startup errors, key layout, the `at_least`
//! tombstone, an outage and recovery, and two schedulers sharing one Redis lock in real time.
//!
//! Needs Redis at `TICKGUARD_TEST_REDIS` (default `redis://127.0.0.1:6379`), and the
//! `redis-server` binary for the outage test, which runs its own server on a free port;
//! `bash scripts/services` installs and starts Redis. Without it the tests fail: they never
//! skip.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use tickguard::{
    Error, Job, JobContext, LockPolicy, Schedule, Scheduler,
    lock::{InProcessLock, LockBackend, RedisLock},
    metrics as names,
};
use tickguard_tests::{RedisServer, free_port};

fn redis_url() -> String {
    std::env::var("TICKGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn no_redis(e: impl std::fmt::Display) -> ! {
    panic!(
        "these tests need Redis at {} (set TICKGUARD_TEST_REDIS to use another): {e}\n\
         run `bash scripts/services` to start it",
        redis_url()
    )
}

async fn redis_lock() -> RedisLock {
    RedisLock::connect(&redis_url())
        .await
        .unwrap_or_else(|e| no_redis(e))
}

/// A plain connection, to look at the keys the lock writes.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap_or_else(|e| no_redis(e))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| no_redis(e))
}

/// A name no other test, run or process uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("tg-redis-{what}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let e = RedisLock::connect("redis://127.0.0.1:1").await.unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("cannot reach Redis at 127.0.0.1:1")
            && message.contains("connection refused")
            && message.contains("redis-server running"),
        "unclear error: {message}"
    );
}

#[tokio::test]
async fn malformed_urls_are_clear_errors_without_the_password() {
    for url in [
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis://user:hunter2@127.0.0.1:notaport",
    ] {
        let message = RedisLock::connect(url).await.unwrap_err().to_string();
        assert!(
            message.starts_with("invalid Redis URL `") && message.contains("redis://"),
            "{url}: unclear error: {message}"
        );
        assert!(
            !message.contains("hunter2"),
            "password in the error: {message}"
        );
    }
}

#[tokio::test]
async fn builder_fails_at_build_with_the_clear_error() {
    let e = Scheduler::builder()
        .discover(false)
        .redis("redis://127.0.0.1:1")
        .build()
        .await
        .err()
        .expect("built a scheduler on a closed port");
    assert!(matches!(e, Error::Lock(_)), "{e:?}");
    assert!(
        e.to_string().contains("cannot reach Redis at 127.0.0.1:1"),
        "{e}"
    );

    let e = Scheduler::builder()
        .discover(false)
        .redis(redis_url())
        .lock_backend(InProcessLock::new())
        .build()
        .await
        .err()
        .expect("two lock backends accepted");
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

/// `redis_url()` with `userinfo@` in front of the host.
fn url_with_userinfo(userinfo: &str) -> String {
    redis_url().replacen("redis://", &format!("redis://{userinfo}@"), 1)
}

#[tokio::test]
async fn the_startup_line_shows_no_redis_credentials() {
    let host = redis_url().trim_start_matches("redis://").to_owned();
    for (url, shown) in [
        // The server's default user takes any password: each URL connects.
        (url_with_userinfo("default:hunter2"), "default:***@"),
        (url_with_userinfo("hunter2"), "***@"),
        (url_with_userinfo("default:hun%40ter2"), "default:***@"),
        (url_with_userinfo("hun%40ter2"), "***@"),
        (format!("{}?password=hunter2", redis_url()), ""),
    ] {
        let (captured, guard) =
            tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::INFO);
        let scheduler = Scheduler::builder()
            .discover(false)
            .redis(url.clone())
            .build()
            .await
            .unwrap_or_else(|e| no_redis(e));
        scheduler.run_until(async {}).await.unwrap();
        drop(guard);
        let logs = captured.text();
        let started = logs
            .lines()
            .find(|l| l.contains("scheduler started"))
            .unwrap_or_else(|| panic!("{url}: no startup line:\n{logs}"));
        assert!(
            started.contains(&format!(" lock=redis://{shown}{host}")),
            "{url}: {started}"
        );
        assert!(
            !logs.contains("hunter2") && !logs.contains("ter2"),
            "{url}: {logs}"
        );
    }
}

#[tokio::test]
async fn describes_the_server_and_namespaces_keys() {
    let lock = redis_lock().await;
    assert_eq!(lock.prefix(), "tickguard:lock:");
    assert!(
        lock.describe().starts_with("redis://") && !lock.describe().contains('@'),
        "{}",
        lock.describe()
    );
    let mut raw = raw().await;
    let name = unique("keys");
    let lease = lock
        .acquire(&name, "owner-1", Duration::from_secs(30))
        .await
        .unwrap()
        .lease()
        .unwrap();
    let key = format!("tickguard:lock:{name}");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let value = value.expect("no key under the default prefix");
    assert!(value.starts_with("owner-1/"), "value {value}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((29_000..=30_000).contains(&pttl), "pttl {pttl}");

    // Another prefix is another namespace: the same name is free there.
    let other = lock.clone().with_prefix("tickguard-test:other:");
    let there = other
        .acquire(&name, "owner-2", Duration::from_secs(30))
        .await
        .unwrap()
        .lease()
        .expect("the same name under another prefix is a different lock");
    assert!(other.release(&there, Duration::ZERO).await.unwrap());
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0, "release left the key");
}

#[tokio::test]
async fn at_least_leaves_a_tombstone_that_expires() {
    let lock = redis_lock().await.with_prefix("tickguard-test:lock:");
    let mut raw = raw().await;
    let name = unique("tombstone");
    let key = format!("tickguard-test:lock:{name}");
    let lease = lock
        .acquire(&name, "owner-1", Duration::from_secs(30))
        .await
        .unwrap()
        .lease()
        .unwrap();
    assert!(
        lock.release(&lease, Duration::from_millis(400))
            .await
            .unwrap()
    );
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(value.starts_with("released:owner-1/"), "value {value}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((0..=400).contains(&pttl), "pttl {pttl}");
    // Nobody can use the tombstone: not the old handle, not a new owner.
    assert!(!lock.extend(&lease, Duration::from_secs(30)).await.unwrap());
    assert!(!lock.release(&lease, Duration::ZERO).await.unwrap());
    assert!(
        lock.acquire(&name, "owner-2", Duration::from_secs(30))
            .await
            .unwrap()
            .lease()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        lock.acquire(&name, "owner-2", Duration::from_secs(30))
            .await
            .unwrap()
            .lease()
            .is_some()
    );
}

#[tokio::test]
async fn a_lease_with_the_same_owner_but_another_token_is_refused() {
    // Two instances misconfigured with one instance id make equal owner strings; the token
    // still tells their leases apart.
    let lock = redis_lock().await.with_prefix("tickguard-test:lock:");
    let name = unique("token");
    let lease = lock
        .acquire(&name, "same-owner", Duration::from_secs(30))
        .await
        .unwrap()
        .lease()
        .unwrap();
    let forged = tickguard::lock::Lease {
        token: lease.token ^ 1,
        ..lease.clone()
    };
    assert!(!lock.extend(&forged, Duration::from_secs(30)).await.unwrap());
    assert!(!lock.release(&forged, Duration::ZERO).await.unwrap());
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
}

/// Two schedulers, each with its own in-memory store (so only the lock keeps them apart),
/// share one Redis lock: each tick of a job due every second runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_share_the_lock_and_each_tick_runs_once() {
    let name = unique("e2e");
    tickguard_tests::two_schedulers_share_the_lock(&name, |b| b.redis(redis_url())).await;
}

/// Redis goes away under a connected lock: every operation fails at once with an error that
/// names the server (no panic, no hang, no backoff wait), and once Redis is back the very
/// next operation works, on the same lock.
#[tokio::test]
async fn errors_at_once_while_redis_is_down_then_recovers() {
    let port = free_port();
    let server = RedisServer::start(port).await;
    let lock = RedisLock::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let lease = lock
        .acquire("down", "owner-1", ttl)
        .await
        .unwrap()
        .lease()
        .unwrap();
    drop(server);

    for round in 0..3 {
        let started = std::time::Instant::now();
        let acquire = lock.acquire("other", "owner-2", ttl).await;
        let extend = lock.extend(&lease, ttl).await;
        let release = lock.release(&lease, Duration::ZERO).await;
        for (what, error) in [
            ("acquire", acquire.err()),
            ("extend", extend.err()),
            ("release", release.err()),
        ] {
            let error =
                error.unwrap_or_else(|| panic!("round {round}: {what} succeeded with Redis down"));
            assert!(
                error.to_string().contains(&format!("127.0.0.1:{port}")),
                "{what}: the error does not name the server: {error}"
            );
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "round {round}: three failing calls took {took:?}"
        );
    }

    // The server comes back empty (no persistence): the old lease is gone, the lock is free.
    let _server = RedisServer::start(port).await;
    let again = lock
        .acquire("down", "owner-3", ttl)
        .await
        .unwrap_or_else(|e| panic!("the first call after Redis came back failed: {e}"));
    assert!(
        again.lease().is_some(),
        "the restarted server still had the old lease"
    );
    assert!(
        !lock.extend(&lease, ttl).await.unwrap(),
        "the old lease survived the restart"
    );
}

/// Redis restarts while the lock's connection is idle (a daily job's lock sits idle for a
/// day): the first call afterwards must not fail on the dead connection.
#[tokio::test]
async fn a_restart_between_calls_goes_unnoticed() {
    let port = free_port();
    let server = RedisServer::start(port).await;
    let lock = RedisLock::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let before = lock
        .acquire("idle", "owner-1", ttl)
        .await
        .unwrap()
        .lease()
        .unwrap();
    drop(server);
    let server = RedisServer::start(port).await;
    // The restarted server (no persistence) forgot the lease: the holder learns it lost it,
    // and the lock is free, each on the first try.
    assert!(
        !lock
            .extend(&before, ttl)
            .await
            .unwrap_or_else(|e| panic!("the first call after a restart failed: {e}")),
        "the old lease survived the restart"
    );
    drop(server);
    let _server = RedisServer::start(port).await;
    let after = lock
        .acquire("idle", "owner-2", ttl)
        .await
        .unwrap_or_else(|e| panic!("the first acquire after a restart failed: {e}"));
    assert!(
        after.lease().is_some(),
        "the restarted server still had a lease"
    );
}

/// A scheduler whose Redis goes away: each tick that finds it down is tried again (never run
/// without the lock, never a panic) until the next tick is due, which takes over (the job is
/// not idempotent: a tick given up is counted as lost, `unavailable`); once Redis is back,
/// ticks run again.
#[tokio::test(flavor = "multi_thread")]
async fn a_tick_that_finds_redis_down_is_tried_again_and_runs_once_it_is_back() {
    let recorded = tickguard_tests::metrics();
    let port = free_port();
    let server = RedisServer::start(port).await;
    let name = unique("outage-scheduler");
    let ran: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
    let seen = ran.clone();
    let job = Job::new(
        name.clone(),
        Schedule::every(Duration::from_millis(500)).unwrap(),
        move |ctx: JobContext| {
            seen.lock().unwrap().push(ctx.scheduled_at());
            async { Ok(()) }
        },
    )
    .lock(LockPolicy::new(Duration::from_secs(2)));
    let scheduler = Scheduler::builder()
        .discover(false)
        .redis(format!("redis://127.0.0.1:{port}"))
        .job(job)
        .build()
        .await
        .unwrap();
    let skipped = |recorded: &tickguard_tests::Recorded| {
        recorded.counter(
            names::SKIPS_TOTAL,
            &[("job", name.as_str()), ("reason", "unavailable")],
        )
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let before_outage = ran.lock().unwrap().len();
        assert!(before_outage >= 1, "no tick ran before the outage");
        drop(server);
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        let during = ran.lock().unwrap().len() - before_outage;
        assert_eq!(during, 0, "ticks ran without a lock while Redis was down");
        assert!(
            skipped(&recorded) >= 1,
            "the ticks given up during the outage were not counted"
        );
        let _server = RedisServer::start(port).await;
        let back = ran.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        assert!(
            ran.lock().unwrap().len() > back,
            "no tick ran after Redis came back"
        );
    };
    scheduler.run_until(outage).await.unwrap();
}

#[tokio::test]
async fn a_client_of_the_reexported_redis_crate_builds_a_lock() {
    // `tickguard::redis` is the very crate the lock runs on: its client fits `from_client`
    // whatever version of `redis` the application itself depends on.
    let client = tickguard::redis::Client::open(redis_url()).unwrap_or_else(|e| no_redis(e));
    let lock = RedisLock::from_client(client)
        .await
        .unwrap_or_else(|e| no_redis(e));
    let name = unique("reexport");
    let lease = match lock
        .acquire(&name, "owner-1", Duration::from_secs(30))
        .await
        .unwrap()
    {
        tickguard::lock::Acquired::Lease(lease) => lease,
        held => panic!("a fresh lock is free, got {held:?}"),
    };
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
}
