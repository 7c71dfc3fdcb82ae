//! The round trip of each lock operation: Redis and Postgres against the in-process lock.
//!
//! ```text
//! cargo bench -p tickguard --features redis --bench lock_roundtrip          # 2,000 rounds
//! cargo bench -p tickguard --features redis --bench lock_roundtrip -- 10000 # 10,000 rounds
//! cargo bench -p tickguard --features redis,postgres --bench lock_roundtrip # and Postgres
//! ```
//!
//! One round is what one guarded execution does with its lock: acquire, extend (one watchdog
//! renewal), release (every other round with `hold_for`, as `at_least` does). Each call is
//! timed alone, one at a time, on one connection; the figures are p50/p99/max in
//! microseconds. Two floors come first: a bare `PING`, and the same three commands sent
//! straight through a `redis` `ConnectionManager`, interleaved round by round with the
//! lock's so both see the same machine; the difference between those and the lock's rows is
//! what `RedisLock` itself costs. Redis comes from `TICKGUARD_TEST_REDIS` (default
//! `redis://127.0.0.1:6379`); `bash scripts/services` starts one.
//!
//! With the feature `postgres`, the same rounds run on a `PostgresLock`, after a bare
//! `SELECT 1` through the same pool as its floor. Its table is in the schema
//! `tickguard_bench` of `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the bench deletes its rows when done.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use redis::{Script, Value, aio::ConnectionManager};
use tickguard::lock::{InProcessLock, LockBackend, RedisLock};

const TTL: Duration = Duration::from_secs(30);
const PREFIX: &str = "tickguard:bench:";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn row(what: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    println!(
        "  {what:<38} p50 {:>7.2} us   p99 {:>7.2} us   max {:>8.1} us",
        percentile(&us, 0.50),
        percentile(&us, 0.99),
        us.last().copied().unwrap_or(f64::NAN),
    );
}

/// Samples of one operation, in microseconds.
#[derive(Default)]
struct Ops {
    acquire: Vec<f64>,
    extend: Vec<f64>,
    release: Vec<f64>,
    release_hold: Vec<f64>,
}

impl Ops {
    fn print(self, label: &str) {
        row(&format!("{label}acquire"), self.acquire);
        row(&format!("{label}extend"), self.extend);
        row(&format!("{label}release"), self.release);
        row(&format!("{label}release, hold_for 1ms"), self.release_hold);
    }
}

async fn timed<T>(into: &mut Vec<f64>, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    into.push(started.elapsed().as_secs_f64() * 1e6);
    out
}

/// One round of acquire, extend, release on a fresh name (so that an `at_least` tombstone
/// never blocks a later round).
async fn lock_round(lock: &dyn LockBackend, name: &str, i: usize, ops: &mut Ops) {
    let name = format!("{name}-{i}");
    let owner = format!("bench#{i}");
    let lease = timed(&mut ops.acquire, lock.acquire(&name, &owner, TTL))
        .await
        .unwrap()
        .lease()
        .expect("the lock is free");
    assert!(
        timed(&mut ops.extend, lock.extend(&lease, TTL))
            .await
            .unwrap()
    );
    let released = if i.is_multiple_of(2) {
        timed(&mut ops.release, lock.release(&lease, Duration::ZERO)).await
    } else {
        let hold = Duration::from_millis(1);
        timed(&mut ops.release_hold, lock.release(&lease, hold)).await
    };
    assert!(released.unwrap());
}

/// The same commands as [`RedisLock`] sends, straight through a connection manager.
async fn bare_round(conn: &mut ConnectionManager, name: &str, i: usize, ops: &mut Ops) {
    static EXTEND: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then \
             return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
        )
    });
    static RELEASE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end \
             if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else \
             redis.call('SET', KEYS[1], 'released:' .. ARGV[1], 'PX', ARGV[2]) end return 1",
        )
    });
    let key = format!("{PREFIX}{name}-bare-{i}");
    let value = format!("bench#{i}/0123456789abcdef");
    let mut set = redis::cmd("SET");
    set.arg(&key).arg(&value).arg("NX").arg("PX").arg(30_000);
    let reply: Value = timed(&mut ops.acquire, set.query_async(conn))
        .await
        .unwrap();
    assert_eq!(reply, Value::Okay);
    let mut call = EXTEND.key(&key);
    call.arg(&value).arg(30_000);
    let extended: i64 = timed(&mut ops.extend, call.invoke_async(conn))
        .await
        .unwrap();
    assert_eq!(extended, 1);
    let mut call = RELEASE.key(&key);
    let into = if i.is_multiple_of(2) {
        call.arg(&value).arg(0);
        &mut ops.release
    } else {
        call.arg(&value).arg(1);
        &mut ops.release_hold
    };
    let released: i64 = timed(into, call.invoke_async(conn)).await.unwrap();
    assert_eq!(released, 1);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let url = std::env::var("TICKGUARD_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let name = format!("bench-{}-{}", std::process::id(), fastrand::u32(..));

    let redis = RedisLock::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start Redis"))
        .with_prefix(PREFIX);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut bare = ConnectionManager::new(client).await.unwrap();

    // Warm up: loads the scripts and the connections.
    let mut ops = Ops::default();
    for i in 0..200 {
        lock_round(&redis, &format!("{name}-warm"), i, &mut ops).await;
        bare_round(&mut bare, &format!("{name}-warm"), i, &mut ops).await;
    }

    let mut ping = Vec::with_capacity(n);
    for _ in 0..n {
        let cmd = redis::cmd("PING");
        let _: Value = timed(&mut ping, cmd.query_async(&mut bare)).await.unwrap();
    }
    let (mut lock_ops, mut bare_ops) = (Ops::default(), Ops::default());
    for i in 0..n {
        bare_round(&mut bare, &name, i, &mut bare_ops).await;
        lock_round(&redis, &name, i, &mut lock_ops).await;
    }
    println!("{} ({n} rounds, one call at a time)", redis.describe());
    row("PING", ping);
    bare_ops.print("bare commands: ");
    lock_ops.print("RedisLock: ");

    #[cfg(feature = "postgres")]
    postgres(n, &name).await;

    let in_process = InProcessLock::new();
    let mut ops = Ops::default();
    for i in 0..n {
        lock_round(&in_process, &name, i, &mut ops).await;
    }
    println!("in-process ({n} rounds)");
    ops.print("InProcessLock: ");
}

/// The rounds on a `PostgresLock`, and a bare `SELECT 1` through the same pool.
#[cfg(feature = "postgres")]
async fn postgres(n: usize, name: &str) {
    use tickguard::{
        lock::PostgresLock,
        sqlx::{self, AssertSqlSafe},
    };

    let pg_url = std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let postgres = PostgresLock::connect_with_schema(&pg_url, "tickguard_bench")
        .await
        .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start PostgreSQL"));
    let mut ops = Ops::default();
    for i in 0..200 {
        lock_round(&postgres, &format!("{name}-warm"), i, &mut ops).await;
    }
    let (mut select, mut pg_ops) = (Vec::with_capacity(n), Ops::default());
    for i in 0..n {
        let one = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(postgres.pool());
        timed(&mut select, one).await.unwrap();
        lock_round(&postgres, name, i, &mut pg_ops).await;
    }
    println!("{} ({n} rounds, one call at a time)", postgres.describe());
    row("SELECT 1", select);
    pg_ops.print("PostgresLock: ");
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM tickguard_bench.tickguard_locks WHERE name LIKE '{name}-%'"
    )))
    .execute(postgres.pool())
    .await
    .unwrap();
}
