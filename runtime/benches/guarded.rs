//! One guarded execution, tickguard's against the floor of any lock + dedupe design.
//!
//! ```text
//! cargo bench -p tickguard --features redis,postgres --bench guarded              # 10 blocks of 200
//! cargo bench -p tickguard --features redis,postgres --bench guarded -- 20 500    # 20 blocks of 500
//! cargo bench -p tickguard --features redis,postgres --bench guarded -- --statements
//! ```
//!
//! **The floor** is the work any design that locks a job and records its ticks once must do,
//! sent straight through a `redis` `ConnectionManager` and a `sqlx` pool: Redis
//! `SET lock token NX PX ttl` and the fencing `INCR`, pipelined as one round trip (two
//! commands); `INSERT .. ON CONFLICT (id) DO NOTHING` of the execution row with that fence;
//! the no-op job; the fenced `UPDATE .. WHERE id = $1 AND fence = $2` that finishes it; and a
//! compare-and-`DEL` of the lock in a Lua script. Four round trips. Its pool does not ping a
//! connection before handing it out (`test_before_acquire(false)`): a ping is no part of the
//! work. (sqlx still pings each connection as the pool takes it back, in a task of its own,
//! off the execution's path: the counts show those pings apart.)
//!
//! **tickguard** runs the executor's own code path (lock, claim, run, finish, release) for
//! an idempotent no-op job under a `RedisLock` and a `PostgresStore`, each execution a new
//! tick, exactly as a scheduler would.
//!
//! The two run interleaved in blocks in one process (a block of floor executions, a block of
//! tickguard executions, again), so both see the same machine; first one at a time, then at
//! concurrency 8: 8 tasks each running executions back to back, each task with a job (and
//! lock) of its own, since a job's lock and claims serialize its runs by design. It prints
//! p50/p99 of one execution and the throughput of each side, and the ratios tickguard /
//! floor.
//!
//! Then, through a counting TCP proxy (not timed), the Redis commands (RESP arrays the
//! client sends) and Postgres round trips (`Sync` and simple `Query` messages the client
//! sends) per execution on each side. With `--statements` it also prints what one execution
//! of each side sends. One tickguard execution, in order (2 Redis commands; 4 Postgres round
//! trips, of which 2 are the pool's pings as it takes a connection back, off the path: 2 on
//! the execution's path, as many as the floor's):
//!
//! ```text
//! redis     SET tickguard:bench:guarded:{job} {instance}#{seq}-{process}@{tick}/{token} NX PX 30000 GET
//! postgres  WITH bumped AS (UPDATE tickguard_jobs SET fence = fence + 1,
//!             last_tick = GREATEST(last_tick, $3), next_fire_at = GREATEST($6, next_fire_at),
//!             running_id = $2
//!             WHERE job = $1 AND running_id IS NULL AND (NOT $9 OR $3 <= ..)
//!               AND (pruned_through IS NULL OR $3 > pruned_through OR EXISTS (..))
//!               AND NOT EXISTS (SELECT 1 FROM tickguard_executions WHERE id = $2
//!               AND (job <> $1 OR status = 'RUNNING'
//!               OR ($7 AND status IN ('COMPLETED', 'FAILED', 'TIMED_OUT', 'SKIPPED'))))
//!             RETURNING fence),
//!           taken AS (INSERT INTO tickguard_executions AS e (id, job, scheduled_at, status,
//!             fence, owner, attempt, started_at, heartbeat_at, liveness_ms)
//!             SELECT $2, $1, $3, 'RUNNING', bumped.fence, $4, 1, clock_timestamp(),
//!               clock_timestamp(), $5 FROM bumped
//!             ON CONFLICT (id) DO UPDATE SET status = 'RUNNING', fence = EXCLUDED.fence,
//!               attempt = e.attempt + 1, owner = EXCLUDED.owner, .. , finished_at = NULL,
//!               error = NULL
//!             WHERE e.job = EXCLUDED.job AND e.status <> 'RUNNING'
//!               AND NOT ($7 AND e.status IN (..))
//!             RETURNING fence, attempt, checkpoint, started_at, xmax <> 0 AND attempt > 1),
//!           run AS (INSERT INTO tickguard_runs (execution_id, fence, job, owner, started_at,
//!             attempts) SELECT $2, fence, $1, $4, started_at, attempt FROM taken)
//!           SELECT fence, attempt - 1, checkpoint::text, resumed FROM taken
//! postgres  Sync alone (the pool's ping as it takes the connection back, off the path)
//! postgres  WITH job AS MATERIALIZED (SELECT 1 FROM tickguard_jobs WHERE job = $6 FOR UPDATE),
//!           finished AS (UPDATE tickguard_executions SET status = $3, attempt = $4,
//!             error = $5, finished_at = clock_timestamp()
//!             WHERE id = $1 AND fence = $2 AND status = 'RUNNING'
//!               AND (SELECT count(*) FROM job) >= 0 RETURNING id, finished_at),
//!           ended AS (UPDATE tickguard_runs r SET ended_at = f.finished_at, outcome = $3,
//!             attempts = $4, error = $5 FROM finished f
//!             WHERE r.execution_id = $1 AND r.fence = $2),
//!           freed AS (UPDATE tickguard_jobs SET running_id = NULL
//!             WHERE job = $6 AND running_id = $1 AND fence = $2
//!               AND EXISTS (SELECT 1 FROM finished))
//!           SELECT count(*) FROM finished
//! postgres  Sync alone (the pool's ping as it takes the connection back, off the path)
//! redis     EVALSHA {release script} 1 tickguard:bench:guarded:{job} {owner}/{token} 0
//! ```
//!
//! Then the claim's cost against the job's history: a job with 10 finished executions and
//! one with 10,000 (inserted with SQL), claims and finishes straight on the store and whole
//! executions, interleaved, p50/p99 side by side. Last, startup: registering 2,000 jobs one
//! statement each, against the store's `register_all`.
//!
//! Redis comes from `TICKGUARD_TEST_REDIS` (default `redis://127.0.0.1:6379`), PostgreSQL
//! from `TICKGUARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`);
//! `bash scripts/services` starts both. The tables live in the schema
//! `tickguard_bench_guarded`; the bench deletes its rows and keys when done.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use redis::{Script, Value, aio::ConnectionManager};
use tickguard::{
    Job, JobContext, LockPolicy, Schedule,
    bench_support::GuardedBench,
    lock::{LockBackend, RedisLock},
    sqlx::{self, AssertSqlSafe, PgPool, postgres::PgPoolOptions},
    store::{
        Claim, ClaimRequest, ExecutionRef, ExecutionStore, Finish, JobRegistration, PostgresStore,
        Status,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const TTL: Duration = Duration::from_secs(30);
const SCHEMA: &str = "tickguard_bench_guarded";
const PREFIX: &str = "tickguard:bench:guarded:";
const CONCURRENCY: usize = 8;
/// Executions per side in the counting pass.
const COUNTED: usize = 200;
/// The two history sizes the claim is measured at.
const HISTORY: [i32; 2] = [10, 10_000];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// p50 and p99 of samples in microseconds, in milliseconds.
fn p50_p99(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    (
        percentile(&us, 0.50) / 1000.0,
        percentile(&us, 0.99) / 1000.0,
    )
}

// ---------------------------------------------------------------------------------------
// The floor.

/// The four round trips, on connections of their own.
struct Floor {
    redis: ConnectionManager,
    pool: PgPool,
    insert: String,
    finish: String,
}

/// Deletes the lock if it still holds this token.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
         return redis.call('DEL', KEYS[1]) end return 0",
    )
});

impl Floor {
    async fn connect(redis_url: &str, pg_url: &str) -> Self {
        let client = redis::Client::open(redis_url).unwrap();
        let redis = ConnectionManager::new(client)
            .await
            .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start Redis"));
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .connect(pg_url)
            .await
            .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start PostgreSQL"));
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.floor_executions (\
             id text PRIMARY KEY, job text NOT NULL, scheduled_at timestamptz NOT NULL, \
             status text NOT NULL, fence bigint NOT NULL, owner text NOT NULL, \
             started_at timestamptz NOT NULL, finished_at timestamptz)"
        )))
        .execute(&pool)
        .await
        .unwrap();
        Self {
            redis,
            pool,
            insert: format!(
                "INSERT INTO {SCHEMA}.floor_executions \
                 (id, job, scheduled_at, status, fence, owner, started_at) \
                 VALUES ($1, $2, $3, 'RUNNING', $4, $5, now()) ON CONFLICT (id) DO NOTHING"
            ),
            finish: format!(
                "UPDATE {SCHEMA}.floor_executions SET status = 'COMPLETED', finished_at = now() \
                 WHERE id = $1 AND fence = $2"
            ),
        }
    }

    /// Locks `job`, records `tick` once, runs the no-op, finishes, unlocks; `true` if it ran.
    async fn execute(&self, job: &str, tick: DateTime<Utc>) -> bool {
        let mut conn = self.redis.clone();
        let key = format!("{PREFIX}lock:{job}");
        let token = format!("{job}#{}", fastrand::u64(..));
        let (set, fence): (Value, i64) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(TTL.as_millis() as u64)
            .cmd("INCR")
            .arg(format!("{PREFIX}fence:{job}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if set != Value::Okay {
            return false;
        }
        let id = format!("{job}@{}", tick.to_rfc3339());
        let inserted = sqlx::query(AssertSqlSafe(self.insert.as_str()))
            .bind(&id)
            .bind(job)
            .bind(tick)
            .bind(fence)
            .bind(&token)
            .execute(&self.pool)
            .await
            .unwrap()
            .rows_affected();
        if inserted == 1 {
            std::hint::black_box(());
            let finished = sqlx::query(AssertSqlSafe(self.finish.as_str()))
                .bind(&id)
                .bind(fence)
                .execute(&self.pool)
                .await
                .unwrap()
                .rows_affected();
            assert_eq!(finished, 1, "the fenced finish found its row");
        }
        let mut call = RELEASE.key(&key);
        call.arg(&token);
        let released: i64 = call.invoke_async(&mut conn).await.unwrap();
        assert_eq!(released, 1, "the lock was still ours");
        inserted == 1
    }
}

// ---------------------------------------------------------------------------------------
// Both sides, on one set of connections.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Floor,
    Tickguard,
}

/// The floor and [`CONCURRENCY`] tickguard jobs on one set of connections.
struct Bench {
    run: String,
    floor: Floor,
    store: Arc<PostgresStore>,
    lock: Arc<RedisLock>,
    jobs: Vec<GuardedBench>,
    /// Ticks are whole seconds from here, one for each execution.
    base: DateTime<Utc>,
    next_tick: AtomicI64,
}

fn no_op_job(name: &str) -> Job {
    Job::new(
        name,
        Schedule::every(Duration::from_secs(1)).unwrap(),
        |_ctx: JobContext| async { Ok(()) },
    )
    .idempotent()
    .lock(LockPolicy::new(TTL))
}

impl Bench {
    async fn connect(run: &str, redis_url: &str, pg_url: &str) -> Self {
        let store = PostgresStore::connect_with_schema(pg_url, SCHEMA)
            .await
            .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start PostgreSQL"));
        let store = Arc::new(store);
        let lock = RedisLock::connect(redis_url)
            .await
            .unwrap_or_else(|e| panic!("{e}\nrun `bash scripts/services` to start Redis"))
            .with_prefix(PREFIX);
        let lock = Arc::new(lock);
        let floor = Floor::connect(redis_url, pg_url).await;
        let jobs = (0..CONCURRENCY)
            .map(|k| GuardedBench::new(lock.clone(), store.clone(), no_op_job(&job(run, k))))
            .collect();
        let now = Utc::now().timestamp();
        Self {
            run: run.to_owned(),
            floor,
            store,
            lock,
            jobs,
            base: DateTime::from_timestamp(now, 0).unwrap(),
            next_tick: AtomicI64::new(0),
        }
    }

    fn tick(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::seconds(self.next_tick.fetch_add(1, Ordering::Relaxed))
    }

    /// One execution of task `k`'s job on `side`.
    async fn execute(&self, side: Side, k: usize) -> bool {
        match side {
            Side::Floor => {
                let job = format!("{}-floor-{k}", self.run);
                self.floor.execute(&job, self.tick()).await
            }
            Side::Tickguard => self.jobs[k].run(self.tick()).await,
        }
    }
}

/// The name of tickguard's job for task `k`.
fn job(run: &str, k: usize) -> String {
    format!("{run}-tickguard-{k}")
}

/// What one side's blocks measured.
#[derive(Default)]
struct Samples {
    /// One execution, in microseconds.
    us: Vec<f64>,
    /// Wall time of the side's blocks.
    busy: Duration,
}

impl Samples {
    fn throughput(&self) -> f64 {
        self.us.len() as f64 / self.busy.as_secs_f64()
    }
}

/// `n` executions of `side`, shared by `tasks` tasks that each run theirs back to back.
async fn block(bench: &Arc<Bench>, side: Side, n: usize, tasks: usize, into: &mut Samples) {
    let per_task = n.div_ceil(tasks);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|k| {
            let bench = bench.clone();
            tokio::spawn(async move {
                let mut us = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let began = Instant::now();
                    assert!(bench.execute(side, k).await, "a new tick runs");
                    us.push(began.elapsed().as_secs_f64() * 1e6);
                }
                us
            })
        })
        .collect();
    for h in handles {
        into.us.extend(h.await.unwrap());
    }
    into.busy += started.elapsed();
}

/// Both sides, interleaved block by block; the floor's samples first.
async fn interleaved(bench: &Arc<Bench>, blocks: usize, n: usize, tasks: usize) -> [Samples; 2] {
    let (mut floor, mut tickguard) = (Samples::default(), Samples::default());
    for _ in 0..blocks {
        block(bench, Side::Floor, n, tasks, &mut floor).await;
        block(bench, Side::Tickguard, n, tasks, &mut tickguard).await;
    }
    [floor, tickguard]
}

fn print_timings(label: &str, [floor, tickguard]: [Samples; 2]) {
    let (f_tp, t_tp) = (floor.throughput(), tickguard.throughput());
    let (f50, f99) = p50_p99(floor.us);
    let (t50, t99) = p50_p99(tickguard.us);
    println!("  {label}");
    println!("    {:<18} {f50:>8.3} {f99:>9.3} {f_tp:>10.0}", "floor");
    println!("    {:<18} {t50:>8.3} {t99:>9.3} {t_tp:>10.0}", "tickguard");
    println!(
        "    {:<18} {:>7.2}x {:>8.2}x {:>9.2}x",
        "tickguard / floor",
        t50 / f50,
        t99 / f99,
        t_tp / f_tp
    );
}

// ---------------------------------------------------------------------------------------
// The counting proxy.

/// What went through a proxy: Redis commands or Postgres round trips, and, while `log` is
/// `Some`, what they were.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    /// Postgres: round trips that are a `Sync` alone, the pool's pings.
    pings: AtomicU64,
    /// Names the protocol in the log.
    label: &'static str,
    /// Shared by the proxies, so that it is in the order sent.
    log: Arc<Mutex<Option<Vec<String>>>>,
}

impl Counts {
    fn note(&self, what: impl FnOnce() -> String) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = self.log.lock().unwrap().as_mut() {
            log.push(format!("{:<8}  {}", self.label, what()));
        }
    }
}

#[derive(Clone, Copy)]
enum Protocol {
    Redis,
    Postgres,
}

/// Listens on a free port of 127.0.0.1 and forwards every connection to `target`, counting
/// what clients send; returns the port.
async fn proxy(target: String, protocol: Protocol, counts: Arc<Counts>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&target).await.unwrap();
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
            });
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut parser = Parser::new(protocol);
                let mut chunk = vec![0; 64 * 1024];
                loop {
                    let read = client_rx.read(&mut chunk).await.unwrap_or(0);
                    // Counted before the server sees it, so before the client can see an
                    // answer: a count read after an execution includes all it sent.
                    parser.feed(&chunk[..read], &counts);
                    if read == 0 || server_tx.write_all(&chunk[..read]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Splits what a client sends into messages, as they arrive in pieces.
struct Parser {
    protocol: Protocol,
    buf: Vec<u8>,
    /// Postgres: past the startup packet.
    started: bool,
    /// Postgres: the text of each prepared statement, by name.
    prepared: HashMap<String, String>,
    /// Postgres: the statements bound since the last `Sync`.
    bound: Vec<String>,
}

impl Parser {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            buf: Vec::new(),
            started: false,
            prepared: HashMap::new(),
            bound: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8], counts: &Counts) {
        self.buf.extend_from_slice(bytes);
        loop {
            let used = match self.protocol {
                Protocol::Redis => redis_command(&self.buf).map(|(used, command)| {
                    counts.note(|| command);
                    used
                }),
                Protocol::Postgres => self.postgres_message(counts),
            };
            match used {
                Some(used) => drop(self.buf.drain(..used)),
                None => break,
            }
        }
    }

    /// Takes one whole message off the buffer: its length, if there is one.
    fn postgres_message(&mut self, counts: &Counts) -> Option<usize> {
        let buf = &self.buf;
        if !self.started {
            // Untyped: the startup packet, or an SSL or GSS encryption request before it.
            let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
            let code = u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?);
            buf.get(..len)?;
            self.started = !matches!(code, 80_877_103 | 80_877_104);
            return Some(len);
        }
        let kind = *buf.first()?;
        let len = u32::from_be_bytes(buf.get(1..5)?.try_into().ok()?) as usize;
        let body = buf.get(5..1 + len)?;
        let mut strings = body.split(|b| *b == 0).map(String::from_utf8_lossy);
        match kind {
            b'P' => {
                let name = strings.next()?.into_owned();
                let text = one_line(&strings.next()?);
                self.prepared.insert(name, text);
            }
            b'B' => {
                let _portal = strings.next()?;
                let name = strings.next()?;
                let text = self.prepared.get(name.as_ref()).cloned();
                self.bound
                    .push(text.unwrap_or_else(|| format!("<statement {name}>")));
            }
            b'S' => {
                let bound = std::mem::take(&mut self.bound);
                if bound.is_empty() {
                    counts.pings.fetch_add(1, Ordering::Relaxed);
                }
                counts.note(|| match bound.is_empty() {
                    true => "Sync alone (a ping of the pool)".to_owned(),
                    false => bound.join("; "),
                });
            }
            b'Q' => {
                let text = one_line(&strings.next()?);
                counts.note(|| format!("simple query: {text}"));
            }
            _ => {}
        }
        Some(1 + len)
    }
}

/// `sql` on one line, its runs of white space made one space.
fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One RESP command off the front of `buf`: its length and text (long arguments cut).
fn redis_command(buf: &[u8]) -> Option<(usize, String)> {
    fn line(buf: &[u8], from: usize) -> Option<(usize, &[u8])> {
        let end = from + buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((end + 2, &buf[from..end]))
    }
    fn number(bytes: &[u8]) -> usize {
        std::str::from_utf8(bytes).unwrap().parse().unwrap()
    }
    if buf.first()? != &b'*' {
        // An inline command.
        let (used, text) = line(buf, 0)?;
        return Some((used, String::from_utf8_lossy(text).into_owned()));
    }
    let (mut at, count) = line(buf, 1)?;
    let mut words = Vec::new();
    for _ in 0..number(count) {
        let (start, len) = line(buf, at + 1)?;
        let word = buf.get(start..start + number(len))?;
        buf.get(start + number(len) + 1)?;
        at = start + number(len) + 2;
        let word = String::from_utf8_lossy(word);
        words.push(match word.chars().count() > 48 {
            true => format!("{}..", word.chars().take(40).collect::<String>()),
            false => word.into_owned(),
        });
    }
    Some((at, words.join(" ")))
}

/// `url` with its host and port replaced by 127.0.0.1:`port`, and the host:port it named
/// (with `default_port` if none).
fn through(url: &str, port: u16, default_port: u16) -> (String, String) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    let target = match host.contains(':') {
        true => host.to_owned(),
        false => format!("{host}:{default_port}"),
    };
    let proxied = format!(
        "{}{}127.0.0.1:{port}{}",
        &url[..scheme_end],
        &authority[..host_start],
        &rest[authority_end..]
    );
    (proxied, target)
}

/// Counts per execution, through proxies, and with `statements` prints what one execution
/// of each side sends.
async fn count(run: &str, redis_url: &str, pg_url: &str, statements: bool) {
    let log = Arc::new(Mutex::new(None));
    let [redis_counts, pg_counts] = ["redis", "postgres"].map(|label| {
        Arc::new(Counts {
            label,
            log: log.clone(),
            ..Counts::default()
        })
    });
    let (_, redis_target) = through(redis_url, 0, 6379);
    let (_, pg_target) = through(pg_url, 0, 5432);
    let redis_port = proxy(redis_target, Protocol::Redis, redis_counts.clone()).await;
    let pg_port = proxy(pg_target, Protocol::Postgres, pg_counts.clone()).await;
    let bench = Bench::connect(
        &format!("{run}-counted"),
        &through(redis_url, redis_port, 6379).0,
        &through(pg_url, pg_port, 5432).0,
    )
    .await;
    let mut per_execution = Vec::new();
    for side in [Side::Floor, Side::Tickguard] {
        for _ in 0..20 {
            assert!(bench.execute(side, 0).await);
        }
        let now = || {
            [&redis_counts.sent, &pg_counts.sent, &pg_counts.pings]
                .map(|c| c.load(Ordering::Relaxed))
        };
        let before = now();
        for _ in 0..COUNTED {
            assert!(bench.execute(side, 0).await);
        }
        // The pool pings a connection as it takes it back, in a task of its own.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = now();
        per_execution.push([0, 1, 2].map(|i| (after[i] - before[i]) as f64 / COUNTED as f64));
        if statements {
            *log.lock().unwrap() = Some(Vec::new());
            assert!(bench.execute(side, 0).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let name = match side {
                Side::Floor => "the floor",
                Side::Tickguard => "tickguard",
            };
            println!("one execution of {name} sends:");
            for line in log.lock().unwrap().take().unwrap_or_default() {
                println!("  {line}");
            }
        }
    }
    println!("per execution (counted by a proxy over {COUNTED} executions of each side):");
    println!("    {:<26} {:>8} {:>10}", "", "floor", "tickguard");
    let [floor, tickguard] = [per_execution[0], per_execution[1]];
    println!(
        "    {:<26} {:>8.2} {:>10.2}",
        "redis commands", floor[0], tickguard[0]
    );
    println!(
        "    {:<26} {:>8.2} {:>10.2}",
        "postgres round trips", floor[1], tickguard[1]
    );
    println!(
        "    {:<26} {:>8.2} {:>10.2}",
        "  of which pool pings", floor[2], tickguard[2]
    );
    cleanup(&bench).await;
}

// ---------------------------------------------------------------------------------------
// History growth.

/// Records `rows` finished executions of `job`, older than any tick the bench runs.
async fn seed_history(bench: &Bench, job: &str, rows: i32) {
    let pool = bench.store.pool();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {SCHEMA}.tickguard_executions (id, job, scheduled_at, status, fence, \
         owner, attempt, started_at, heartbeat_at, liveness_ms, finished_at) \
         SELECT $1 || '@history-' || i, $1, t, 'COMPLETED', i, 'history#' || i, 1, t, t, \
         30000, t + interval '1 millisecond' \
         FROM generate_series(1, $3) AS i, LATERAL (SELECT $2 - i * interval '1 second') AS s(t)"
    )))
    .bind(job)
    .bind(bench.base)
    .bind(rows)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {SCHEMA}.tickguard_jobs (job, fence) VALUES ($1, $2)"
    )))
    .bind(job)
    .bind(i64::from(rows))
    .execute(pool)
    .await
    .unwrap();
}

/// A claim and a finish straight on the store, then one whole execution: their times.
async fn history_sample(bench: &Bench, job: &GuardedBench, name: &str, i: usize) -> [f64; 3] {
    let store: &dyn ExecutionStore = bench.store.as_ref();
    let tick = bench.tick();
    let id = format!("{name}@direct-{i}");
    let owner = format!("direct#{i}");
    let request = ClaimRequest::new(name, &id, tick, &owner);
    let began = Instant::now();
    let Claim::Acquired(claimed) = store.claim(&request).await.unwrap() else {
        panic!("a new execution is claimed");
    };
    let claim = began.elapsed();
    let exec = ExecutionRef {
        job: name.to_owned(),
        execution_id: id,
        fence: claimed.fence,
    };
    let began = Instant::now();
    store
        .finish(&exec, &Finish::new(Status::Completed, 1, None))
        .await
        .unwrap();
    let finish = began.elapsed();
    let began = Instant::now();
    assert!(job.run(bench.tick()).await, "a new tick runs");
    let whole = began.elapsed();
    [claim, finish, whole].map(|d| d.as_secs_f64() * 1e6)
}

/// The claim's cost with 10 and 10,000 executions in the job's history: each block seeds
/// fresh jobs, then takes `n` samples of each, which add `2 n` executions to their history.
async fn history(bench: &Bench, blocks: usize, n: usize) {
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new()]; HISTORY.len()];
    for b in 0..blocks {
        let mut jobs = Vec::new();
        for rows in HISTORY {
            let name = format!("{}-history-{rows}-{b}", bench.run);
            seed_history(bench, &name, rows).await;
            let lock: Arc<dyn LockBackend> = bench.lock.clone();
            let job = GuardedBench::new(lock, bench.store.clone(), no_op_job(&name));
            jobs.push((name, job));
        }
        if b == 0 {
            sqlx::query(AssertSqlSafe(format!(
                "ANALYZE {SCHEMA}.tickguard_executions"
            )))
            .execute(bench.store.pool())
            .await
            .unwrap();
        }
        for ((name, job), into) in jobs.iter().zip(&mut samples) {
            for i in 0..n {
                let sample = history_sample(bench, job, name, i).await;
                for (into, us) in into.iter_mut().zip(sample) {
                    into.push(us);
                }
            }
        }
    }
    println!(
        "claim cost against the job's history ({} samples each, ms; {blocks} blocks, each on \
         jobs seeded anew, whose history grows by {} during the block):",
        blocks * n,
        2 * n
    );
    println!(
        "    {:<16} {:>8} {:>8}   {:>8} {:>8}   {:>9} {:>9}",
        "history rows", "claim50", "claim99", "finish50", "finish99", "exec p50", "exec p99"
    );
    for (rows, [claim, finish, whole]) in HISTORY.iter().zip(samples) {
        let (c50, c99) = p50_p99(claim);
        let (f50, f99) = p50_p99(finish);
        let (w50, w99) = p50_p99(whole);
        println!(
            "    {rows:<16} {c50:>8.3} {c99:>8.3}   {f50:>8.3} {f99:>8.3}   {w50:>9.3} {w99:>9.3}"
        );
    }
}

/// Deletes the rows and keys of the bench's jobs.
/// How many jobs the startup table registers.
const STARTUP_JOBS: usize = 2_000;

/// Registering a scheduler's jobs at startup: one statement per job, as a store without
/// `register_all` does, against the store's `register_all`.
async fn startup(bench: &Bench, jobs: usize) {
    let names = |side: &str| -> Vec<String> {
        (0..jobs)
            .map(|i| format!("{}-startup-{side}-{i}", bench.run))
            .collect()
    };
    let one_by_one = names("one");
    let started = Instant::now();
    for registration in &registrations(&one_by_one) {
        bench.store.register(registration).await.unwrap();
    }
    let each = started.elapsed();
    let all = names("all");
    let started = Instant::now();
    bench
        .store
        .register_all(&registrations(&all))
        .await
        .unwrap();
    let together = started.elapsed();
    println!("startup: registering {jobs} jobs");
    println!(
        "    one statement per job   {:>9.1} ms",
        each.as_secs_f64() * 1e3
    );
    println!(
        "    register_all            {:>9.1} ms   ({:.0}x faster)",
        together.as_secs_f64() * 1e3,
        each.as_secs_f64() / together.as_secs_f64().max(1e-9)
    );
}

fn registrations(names: &[String]) -> Vec<JobRegistration<'_>> {
    names
        .iter()
        .map(|name| JobRegistration::new(name, "every 1s".into(), "UTC".into(), Some(Utc::now())))
        .collect()
}

async fn cleanup(bench: &Bench) {
    let pool = bench.store.pool();
    for table in ["tickguard_executions", "tickguard_jobs", "floor_executions"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {SCHEMA}.{table} WHERE job LIKE $1"
        )))
        .bind(format!("{}-%", bench.run))
        .execute(pool)
        .await
        .unwrap();
    }
    let mut conn = bench.floor.redis.clone();
    let fences: Vec<String> = (0..CONCURRENCY)
        .map(|k| format!("{PREFIX}fence:{}-floor-{k}", bench.run))
        .collect();
    let _: i64 = redis::cmd("DEL")
        .arg(&fences)
        .query_async(&mut conn)
        .await
        .unwrap();
}

struct Args {
    blocks: usize,
    per_block: usize,
    statements: bool,
}

fn args() -> Args {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    Args {
        blocks: numbers.first().copied().unwrap_or(10).max(1),
        per_block: numbers.get(1).copied().unwrap_or(200).max(CONCURRENCY),
        statements: std::env::args().any(|a| a == "--statements"),
    }
}

#[tokio::main]
async fn main() {
    let Args {
        blocks,
        per_block,
        statements,
    } = args();
    let redis_url = std::env::var("TICKGUARD_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let pg_url = std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let run = format!("bench-{}-{}", std::process::id(), fastrand::u32(..));
    let bench = Arc::new(Bench::connect(&run, &redis_url, &pg_url).await);

    // Warm up: opens the connections, loads the scripts, prepares the statements.
    interleaved(&bench, 2, CONCURRENCY * 20, CONCURRENCY).await;
    let sequential = interleaved(&bench, blocks, per_block, 1).await;
    let concurrent = interleaved(&bench, blocks, per_block, CONCURRENCY).await;
    println!(
        "guarded execution: Redis lock + Postgres store, idempotent no-op job, \
         {blocks} blocks of {per_block} executions per side, interleaved"
    );
    println!(
        "    {:<18} {:>8} {:>9} {:>10}",
        "", "p50 ms", "p99 ms", "exec/s"
    );
    print_timings("sequential", sequential);
    print_timings(&format!("concurrency {CONCURRENCY}"), concurrent);

    count(&run, &redis_url, &pg_url, statements).await;
    history(&bench, 2 * blocks, (per_block / 20).max(5)).await;
    startup(&bench, STARTUP_JOBS).await;
    cleanup(&bench).await;
}
