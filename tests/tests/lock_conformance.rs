//! The conformance suite every [`LockBackend`] passes, modelled on ShedLock's
//! `AbstractLockProviderIntegrationTest`.
//!
//! Each case is a generic `async fn` over an `Arc<dyn LockBackend>` and a name prefix that is
//! unique per case and per process, so the suite can run in parallel against one shared
//! server. [`lock_conformance!`] instantiates every case for one backend; a new backend plugs in
//! with one line:
//!
//! ```text
//! lock_conformance!(redis, redis_lock().await);
//! ```
//!
//! Time is real time everywhere (the distributed backends cannot see tokio's paused clock), with
//! short ttls and generous margins, so the suite stays robust on a loaded machine.
//!
//! The Redis cases need a server at `TICKGUARD_TEST_REDIS` (default `redis://127.0.0.1:6379`),
//! the Postgres cases one at `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `bash scripts/services` starts both. Without
//! them they fail: they never skip. The Postgres cases keep their table in a schema of their
//! own per process (`tg_test_{pid}_{nanos}`), and drop those of runs over an hour old.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tickguard::{
    lock::{Acquired, InProcessLock, Lease, LockBackend, PostgresLock, RedisLock},
    sqlx::{self, AssertSqlSafe},
};

/// A ttl no case ever waits out.
const LONG: Duration = Duration::from_secs(30);
/// A ttl a case waits out on purpose.
const SHORT: Duration = Duration::from_millis(300);
/// Long enough past [`SHORT`] that the lease has expired even on a slow machine.
const PAST_SHORT: Duration = Duration::from_millis(700);

/// Instantiates every case of the suite as a `#[tokio::test]` in module `$module`, each with
/// a fresh backend from `$backend` (an expression evaluated inside the async test, so it may
/// `.await`).
macro_rules! lock_conformance {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            lock_conformance!(@cases $backend;
                acquires,
                refuses_a_second_owner,
                a_refusal_names_the_holder,
                names_are_independent,
                reacquires_right_after_release,
                expires_after_ttl,
                at_least_holds_after_release_then_frees,
                extends_once,
                extends_many_times,
                no_extend_after_expiry,
                no_extend_or_release_after_release,
                old_handle_is_refused_after_takeover,
                serialises_concurrent_holders,
            );
        }
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend: Arc<dyn LockBackend> = $backend;
                super::$case(backend, &super::unique(stringify!($case))).await;
            }
        )*
    };
}

lock_conformance!(in_process, Arc::new(InProcessLock::new()));
lock_conformance!(redis, redis_lock().await);
lock_conformance!(postgres, postgres_lock().await);

/// A [`RedisLock`] on the test server. Lock names are unique per case and process (see
/// [`unique`]), so every case shares one key prefix and still runs in parallel; every key
/// expires by itself within [`LONG`].
async fn redis_lock() -> Arc<dyn LockBackend> {
    let url = std::env::var("TICKGUARD_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let lock = RedisLock::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "the Redis lock tests need Redis at {url} (set TICKGUARD_TEST_REDIS to use another): \
             {e}\nrun `bash scripts/services` to start it"
        )
    });
    Arc::new(lock.with_prefix("tickguard-test:lock:"))
}

/// A [`PostgresLock`] on the test database, with its table in this process's own schema
/// (every case shares it: lock names are unique per case).
async fn postgres_lock() -> Arc<dyn LockBackend> {
    static SCHEMA: OnceLock<String> = OnceLock::new();
    static SWEPT: AtomicBool = AtomicBool::new(false);
    let url = std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = SCHEMA.get_or_init(|| format!("tg_test_{}_{}", std::process::id(), nanos()));
    let lock = PostgresLock::connect_with_schema(&url, schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the Postgres lock tests need PostgreSQL at {url} (set TICKGUARD_TEST_POSTGRES \
                 to use another): {e}\nrun `bash scripts/services` to start it"
            )
        });
    if !SWEPT.swap(true, Ordering::Relaxed) {
        drop_stale_schemas(&lock).await;
    }
    Arc::new(lock)
}

/// Drops the schemas (and roles) of test runs that started over an hour ago: their names
/// start with `tg_test_` and end in their start time, so the test database does not fill up
/// with those of runs that failed before cleaning up.
async fn drop_stale_schemas(lock: &PostgresLock) {
    let hour_ago = nanos().saturating_sub(3_600 * 1_000_000_000);
    let stale = |name: &String| {
        name.rsplit('_')
            .next()
            .and_then(|n| n.parse::<u128>().ok())
            .is_some_and(|started| started < hour_ago)
    };
    for (list, drop) in [
        (
            r"SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tg\_test\_%'",
            "DROP SCHEMA IF EXISTS {} CASCADE",
        ),
        (
            r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'tg\_test\_%'",
            "DROP ROLE IF EXISTS {}",
        ),
    ] {
        let names: Vec<String> = sqlx::query_scalar(list)
            .fetch_all(lock.pool())
            .await
            .unwrap_or_default();
        for name in names.iter().filter(|name| stale(name)) {
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            // Another process may be dropping it too: either way it is gone.
            let _ = sqlx::query(AssertSqlSafe(drop.replace("{}", &quoted)))
                .execute(lock.pool())
                .await;
        }
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A name prefix no other case, run or process uses.
fn unique(case: &str) -> String {
    tickguard_tests::unique_name(&format!("tg-lock-{case}"))
}

async fn acquire(lock: &dyn LockBackend, name: &str, owner: &str, ttl: Duration) -> Option<Lease> {
    lock.acquire(name, owner, ttl)
        .await
        .unwrap_or_else(|e| panic!("{}: acquire `{name}` by `{owner}`: {e}", lock.describe()))
        .lease()
}

async fn must_acquire(lock: &dyn LockBackend, name: &str, owner: &str, ttl: Duration) -> Lease {
    acquire(lock, name, owner, ttl).await.unwrap_or_else(|| {
        panic!(
            "{}: `{owner}` could not acquire free lock `{name}`",
            lock.describe()
        )
    })
}

async fn refused(lock: &dyn LockBackend, name: &str, owner: &str, why: &str) {
    if let Some(lease) = acquire(lock, name, owner, LONG).await {
        panic!(
            "{}: `{owner}` acquired `{name}` ({lease:?}) but {why}",
            lock.describe()
        );
    }
}

async fn extend(lock: &dyn LockBackend, lease: &Lease, ttl: Duration) -> bool {
    lock.extend(lease, ttl)
        .await
        .unwrap_or_else(|e| panic!("{}: extend {lease:?}: {e}", lock.describe()))
}

async fn release(lock: &dyn LockBackend, lease: &Lease, hold_for: Duration) -> bool {
    lock.release(lease, hold_for)
        .await
        .unwrap_or_else(|e| panic!("{}: release {lease:?}: {e}", lock.describe()))
}

async fn acquires(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let lease = must_acquire(&*lock, &name, "owner-1", LONG).await;
    assert_eq!(lease.name, name);
    assert_eq!(lease.owner, "owner-1");
    assert!(
        release(&*lock, &lease, Duration::ZERO).await,
        "the holder must be able to release"
    );
}

async fn refuses_a_second_owner(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let held = must_acquire(&*lock, &name, "owner-1", LONG).await;
    refused(&*lock, &name, "owner-2", "`owner-1` holds it").await;
    // Not re-entrant either: a held lock is held, whoever asks.
    refused(&*lock, &name, "owner-1", "`owner-1` already holds it").await;
    // The refusals changed nothing: the holder still holds it.
    assert!(
        extend(&*lock, &held, LONG).await,
        "the holder lost its lease to a refused acquire"
    );
    assert!(release(&*lock, &held, Duration::ZERO).await);
    must_acquire(&*lock, &name, "owner-2", LONG).await;
}

/// A refused acquire says who holds the lock, in the same round trip: the executor's owners
/// name their tick, so an instance knows which tick the holder runs.
async fn a_refusal_names_the_holder(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let held = must_acquire(&*lock, &name, "api-1#7-00ff@1800000000000", LONG).await;
    let refusal = lock
        .acquire(&name, "api-2#1-0aa0@1800000001000", LONG)
        .await
        .unwrap_or_else(|e| panic!("{}: acquire: {e}", lock.describe()));
    assert_eq!(
        refusal,
        Acquired::Held {
            holder: Some("api-1#7-00ff@1800000000000".to_owned())
        },
        "{}",
        lock.describe()
    );
    assert!(release(&*lock, &held, Duration::ZERO).await);
}

async fn names_are_independent(lock: Arc<dyn LockBackend>, prefix: &str) {
    let (one, two) = (format!("{prefix}-one"), format!("{prefix}-two"));
    let a = must_acquire(&*lock, &one, "owner-a", LONG).await;
    let b = must_acquire(&*lock, &two, "owner-b", LONG).await;
    refused(&*lock, &one, "owner-c", "`owner-a` holds it").await;
    refused(&*lock, &two, "owner-c", "`owner-b` holds it").await;
    assert!(release(&*lock, &a, Duration::ZERO).await);
    // Releasing one name leaves the other held.
    refused(&*lock, &two, "owner-c", "`owner-b` still holds it").await;
    assert!(extend(&*lock, &b, LONG).await);
    must_acquire(&*lock, &one, "owner-c", LONG).await;
    // A lease names its lock: b's handle does not act on `one`.
    let on_one = Lease {
        name: one.clone(),
        ..b.clone()
    };
    assert!(
        !release(&*lock, &on_one, Duration::ZERO).await,
        "`owner-b` released `owner-c`'s lock"
    );
    refused(&*lock, &one, "owner-d", "`owner-c` holds it").await;
}

async fn reacquires_right_after_release(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    for i in 0..10 {
        let owner = format!("owner-{i}");
        let lease = must_acquire(&*lock, &name, &owner, LONG).await;
        refused(&*lock, &name, "intruder", "it was just acquired").await;
        assert!(
            release(&*lock, &lease, Duration::ZERO).await,
            "round {i}: release refused"
        );
    }
}

async fn expires_after_ttl(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    must_acquire(&*lock, &name, "owner-1", SHORT).await;
    refused(&*lock, &name, "owner-2", "its ttl has not run out").await;
    tokio::time::sleep(PAST_SHORT).await;
    must_acquire(&*lock, &name, "owner-2", LONG).await;
}

async fn at_least_holds_after_release_then_frees(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let lease = must_acquire(&*lock, &name, "owner-1", LONG).await;
    assert!(release(&*lock, &lease, SHORT).await);
    refused(
        &*lock,
        &name,
        "owner-2",
        "it was released with at_least still running",
    )
    .await;
    // Released is released: the old handle can neither renew the lease nor cut its
    // `at_least` short.
    assert!(
        !extend(&*lock, &lease, LONG).await,
        "extended after release"
    );
    assert!(
        !release(&*lock, &lease, Duration::ZERO).await,
        "released twice"
    );
    refused(
        &*lock,
        &name,
        "owner-2",
        "a second release cut at_least short",
    )
    .await;
    tokio::time::sleep(PAST_SHORT).await;
    // Freed after `hold_for`, not after the (long) original ttl.
    must_acquire(&*lock, &name, "owner-2", LONG).await;
}

async fn extends_once(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let lease = must_acquire(&*lock, &name, "owner-1", SHORT).await;
    assert!(
        extend(&*lock, &lease, LONG).await,
        "extend of a live lease refused"
    );
    tokio::time::sleep(PAST_SHORT).await;
    refused(
        &*lock,
        &name,
        "owner-2",
        "it was extended past its original ttl",
    )
    .await;
    assert!(
        extend(&*lock, &lease, LONG).await,
        "the extended lease is gone"
    );
    assert!(release(&*lock, &lease, Duration::ZERO).await);
    must_acquire(&*lock, &name, "owner-2", LONG).await;
}

async fn extends_many_times(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    // Renew every ttl/5 for three ttls, as a watchdog does (it renews every ttl/3).
    let ttl = Duration::from_millis(500);
    let lease = must_acquire(&*lock, &name, "owner-1", ttl).await;
    for i in 0..15 {
        tokio::time::sleep(ttl / 5).await;
        assert!(extend(&*lock, &lease, ttl).await, "renewal {i} refused");
    }
    refused(&*lock, &name, "owner-2", "it was renewed throughout").await;
    assert!(release(&*lock, &lease, Duration::ZERO).await);
}

async fn no_extend_after_expiry(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let lease = must_acquire(&*lock, &name, "owner-1", SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    assert!(
        !extend(&*lock, &lease, LONG).await,
        "an expired lease was extended"
    );
    // The refused extend did not bring the lease back.
    let next = must_acquire(&*lock, &name, "owner-2", LONG).await;
    assert!(
        !release(&*lock, &lease, Duration::ZERO).await,
        "an expired lease was released"
    );
    assert!(
        extend(&*lock, &next, LONG).await,
        "the new holder lost its lease"
    );
}

async fn no_extend_or_release_after_release(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let lease = must_acquire(&*lock, &name, "owner-1", LONG).await;
    assert!(release(&*lock, &lease, Duration::ZERO).await);
    assert!(
        !extend(&*lock, &lease, LONG).await,
        "a released lease was extended"
    );
    assert!(
        !release(&*lock, &lease, Duration::ZERO).await,
        "a lease was released twice"
    );
    assert!(
        !release(&*lock, &lease, LONG).await,
        "a released lease was held again"
    );
    // None of the refused calls took the lock again.
    let next = must_acquire(&*lock, &name, "owner-2", LONG).await;
    assert!(!extend(&*lock, &lease, LONG).await);
    assert!(!release(&*lock, &lease, Duration::ZERO).await);
    refused(&*lock, &name, "owner-3", "`owner-2` holds it").await;
    assert!(release(&*lock, &next, Duration::ZERO).await);
}

async fn old_handle_is_refused_after_takeover(lock: Arc<dyn LockBackend>, prefix: &str) {
    let name = format!("{prefix}-a");
    let old = must_acquire(&*lock, &name, "owner-old", SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let new = must_acquire(&*lock, &name, "owner-new", LONG).await;
    assert!(
        !extend(&*lock, &old, LONG).await,
        "the old holder extended the new holder's lease"
    );
    assert!(
        !release(&*lock, &old, Duration::ZERO).await,
        "the old holder deleted the new lease"
    );
    assert!(
        !release(&*lock, &old, SHORT).await,
        "the old holder shortened the new lease"
    );
    // The refused calls changed nothing: the new lease stays held, for its full ttl.
    tokio::time::sleep(PAST_SHORT).await;
    refused(&*lock, &name, "owner-third", "`owner-new` holds it").await;
    assert!(
        extend(&*lock, &new, LONG).await,
        "the new holder lost its lease"
    );
    assert!(
        release(&*lock, &new, Duration::ZERO).await,
        "the new holder cannot release"
    );
}

/// 8 tasks, 4 on each of 2 names, each increment their name's counter 100 times under the
/// lock through a racy read-yield-write; both counters must come out at exactly 400, and no
/// two holders of a name may ever be inside the critical section together.
async fn serialises_concurrent_holders(lock: Arc<dyn LockBackend>, prefix: &str) {
    const NAMES: usize = 2;
    const TASKS_PER_NAME: usize = 4;
    const INCREMENTS: u64 = 100;

    struct Guarded {
        name: String,
        count: AtomicU64,
        inside: AtomicBool,
    }
    let guarded: Vec<Arc<Guarded>> = (0..NAMES)
        .map(|n| {
            Arc::new(Guarded {
                name: format!("{prefix}-{n}"),
                count: AtomicU64::new(0),
                inside: AtomicBool::new(false),
            })
        })
        .collect();
    let start = Arc::new(tokio::sync::Barrier::new(NAMES * TASKS_PER_NAME));
    let mut tasks = Vec::new();
    for g in &guarded {
        for t in 0..TASKS_PER_NAME {
            let (lock, g, start) = (lock.clone(), g.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                for i in 0..INCREMENTS {
                    let owner = format!("task-{t}-run-{i}");
                    let lease = loop {
                        if let Some(lease) = acquire(&*lock, &g.name, &owner, LONG).await {
                            break lease;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    };
                    assert!(
                        !g.inside.swap(true, Ordering::SeqCst),
                        "two holders of `{}` at once",
                        g.name
                    );
                    // Not atomic: without mutual exclusion, increments are lost.
                    let seen = g.count.load(Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    g.count.store(seen + 1, Ordering::SeqCst);
                    g.inside.store(false, Ordering::SeqCst);
                    assert!(
                        release(&*lock, &lease, Duration::ZERO).await,
                        "release refused"
                    );
                }
            }));
        }
    }
    for task in tasks {
        if let Err(e) = task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    for g in &guarded {
        assert_eq!(
            g.count.load(Ordering::SeqCst),
            TASKS_PER_NAME as u64 * INCREMENTS,
            "increments under `{}` were lost",
            g.name
        );
    }
}
