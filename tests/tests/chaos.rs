//! The chaos harness: three worker processes (`src/bin/chaos_worker.rs`) run two jobs due
//! every second that write one effect row per tick, while a seeded fault driver kills them
//! (SIGKILL, then a restart), stops them past their lease (SIGSTOP, then SIGCONT), terminates
//! their Postgres backends, restarts Redis, pauses it (`CLIENT PAUSE`), and delays or
//! blackholes their Redis traffic through a proxy in this process. Then it checks:
//!
//! - at most one effect per (job, tick);
//! - every tick due while the workers ran has its effect once faults cleared, except ticks
//!   during a fault (and for ttl + 1 s after) that kept every worker from the lock;
//! - fences strictly increase in commit order, per job;
//! - no two effects of one job were made by runs that overlapped in time;
//! - the live workers' Prometheus counters (`tickguard_executions_total`, scraped from their
//!   `/metrics`) count every effect they wrote.
//!
//! Three backend combinations: Redis lock + Postgres store; Postgres lock + SQLite store;
//! SQLite store alone. Short mode by default (80 s each, run in parallel).
//! `TICKGUARD_CHAOS_SECONDS` sets the length (a soak run: `TICKGUARD_CHAOS_SECONDS=1800`),
//! `TICKGUARD_CHAOS_SEED` replays a run's faults (each run prints its seed).
//!
//! Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`) and `redis-server` on the PATH; `bash
//! scripts/services` provides both. Without them it fails; it never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::{PostgresStore, SqliteStore},
};
use tickguard_tests::{RedisServer, Worker, free_port, no_postgres, postgres_url, unique_name};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The workers' lease ttl and liveness (`chaos_worker`).
const TTL_MS: i64 = 1_500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combo {
    RedisPostgres,
    PostgresLockSqlite,
    SqliteAlone,
}

/// A TCP proxy to Redis whose traffic can be delayed or held.
#[derive(Clone)]
struct Proxy {
    mode: Arc<AtomicU8>,
}

const PASS: u8 = 0;
const LATENCY: u8 = 1;
const BLACKHOLE: u8 = 2;

impl Proxy {
    async fn start(upstream: u16) -> (u16, Self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            mode: Arc::new(AtomicU8::new(PASS)),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, p.mode.clone()));
                tokio::spawn(pipe(ro, wi, p.mode.clone()));
            }
        });
        (port, proxy)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            match mode.load(Ordering::SeqCst) {
                BLACKHOLE => tokio::time::sleep(Duration::from_millis(20)).await,
                LATENCY => {
                    tokio::time::sleep(Duration::from_millis(1_200)).await;
                    break;
                }
                _ => break,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// One run's places and processes.
struct Scene {
    combo: Combo,
    dir: PathBuf,
    /// Postgres schema of the store or the lock, and the application name of the workers'
    /// connections.
    schema: String,
    sqlite: PathBuf,
    store_arg: String,
    lock_arg: String,
    redis: Option<(u16, RedisServer)>,
    proxy: Option<Proxy>,
    workers: Vec<Worker>,
    /// Each slot's worker: its name, metrics port and ready file.
    names: Vec<(String, u16, PathBuf)>,
    generation: u32,
}

impl Scene {
    async fn new(combo: Combo) -> Self {
        let schema = unique_name(&format!("tg_chaos_{combo:?}"));
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = dir.join("store.db");
        let effects_pg = format!(
            "CREATE TABLE \"{schema}\".effects (id bigserial PRIMARY KEY, job text NOT NULL, \
             tick bigint NOT NULL, fence bigint NOT NULL, worker text NOT NULL, \
             started bigint NOT NULL, finished bigint NOT NULL, idem text UNIQUE)"
        );
        let effects_sqlite = "CREATE TABLE effects (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             job TEXT NOT NULL, tick INTEGER NOT NULL, fence INTEGER NOT NULL, \
             worker TEXT NOT NULL, started INTEGER NOT NULL, finished INTEGER NOT NULL, \
             idem TEXT UNIQUE)";
        let (store_arg, lock_arg, redis, proxy) = match combo {
            Combo::RedisPostgres => {
                let store = PostgresStore::connect_with_schema(&postgres_url(), &schema)
                    .await
                    .unwrap_or_else(|e| no_postgres(e));
                sqlx::query(AssertSqlSafe(effects_pg))
                    .execute(store.pool())
                    .await
                    .unwrap();
                let port = free_port();
                let server = RedisServer::start(port).await;
                let (proxy_port, proxy) = Proxy::start(port).await;
                (
                    format!("postgres:{schema}"),
                    format!("redis:redis://127.0.0.1:{proxy_port}"),
                    Some((port, server)),
                    Some(proxy),
                )
            }
            Combo::PostgresLockSqlite | Combo::SqliteAlone => {
                let store = SqliteStore::connect(&format!("sqlite://{}", sqlite.display()))
                    .await
                    .unwrap();
                sqlx::query(effects_sqlite)
                    .execute(store.pool())
                    .await
                    .unwrap();
                let lock = if combo == Combo::PostgresLockSqlite {
                    format!("postgres:{schema}")
                } else {
                    "none".to_owned()
                };
                (format!("sqlite:{}", sqlite.display()), lock, None, None)
            }
        };
        Self {
            combo,
            dir,
            schema,
            sqlite,
            store_arg,
            lock_arg,
            redis,
            proxy,
            workers: Vec::new(),
            names: Vec::new(),
            generation: 0,
        }
    }

    /// The workers' Postgres URL: their connections carry the scene's application name, so
    /// that terminating them touches no other test.
    fn worker_postgres_url(&self) -> String {
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}application_name={}", self.schema)
    }

    fn spawn(&mut self, slot: usize) -> PathBuf {
        self.generation += 1;
        let name = format!("w{slot}-{}", self.generation);
        let ready = self.dir.join(format!("{name}.ready"));
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_chaos_worker"))
            .args([&self.store_arg, &self.lock_arg, &name])
            .arg(&ready)
            .arg(port.to_string())
            .env("TICKGUARD_TEST_POSTGRES", self.worker_postgres_url())
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chaos_worker: {e}"));
        let worker = Worker(child);
        if slot < self.workers.len() {
            self.workers[slot] = worker;
            self.names[slot] = (name, port, ready.clone());
        } else {
            self.workers.push(worker);
            self.names.push((name, port, ready.clone()));
        }
        ready
    }

    async fn terminate_backends(&self) {
        let admin = PostgresStore::connect_with_schema(&postgres_url(), &self.schema)
            .await
            .unwrap_or_else(|e| no_postgres(e));
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&self.schema)
        .execute(admin.pool())
        .await;
    }

    /// `(id, job, tick, fence, worker, started, finished)`, in commit order.
    async fn effects(&self) -> Vec<Effect> {
        let query = "SELECT id, job, tick, fence, worker, started, finished FROM {t} ORDER BY id";
        match self.combo {
            Combo::RedisPostgres => {
                let store = PostgresStore::connect_with_schema(&postgres_url(), &self.schema)
                    .await
                    .unwrap_or_else(|e| no_postgres(e));
                let t = format!("\"{}\".effects", self.schema);
                sqlx::query_as(AssertSqlSafe(query.replace("{t}", &t)))
                    .fetch_all(store.pool())
                    .await
                    .unwrap()
            }
            _ => {
                let store = SqliteStore::connect(&format!("sqlite://{}", self.sqlite.display()))
                    .await
                    .unwrap();
                sqlx::query_as(AssertSqlSafe(query.replace("{t}", "effects")))
                    .fetch_all(store.pool())
                    .await
                    .unwrap()
            }
        }
    }
}

type Effect = (i64, String, i64, i64, String, i64, i64);

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Stop,
    TerminateBackends,
    RestartRedis,
    PauseRedis,
    SlowRedis,
    BlackholeRedis,
}

async fn wait_ready(files: &[PathBuf]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !files.iter().all(|f| f.exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "workers not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn chaos(combo: Combo) {
    let seconds: u64 = std::env::var("TICKGUARD_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let seed: u64 = std::env::var("TICKGUARD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut scene = Scene::new(combo).await;
    let ready: Vec<PathBuf> = (0..3).map(|i| scene.spawn(i)).collect();
    wait_ready(&ready).await;
    // Ticks from here on are checked.
    let first_tick = (now_ms() / 1000 + 2) * 1000;
    let mut faults: Vec<Fault> = vec![Fault::Kill, Fault::Stop];
    if combo != Combo::SqliteAlone {
        faults.push(Fault::TerminateBackends);
    }
    if combo == Combo::RedisPostgres {
        faults.extend([
            Fault::RestartRedis,
            Fault::PauseRedis,
            Fault::SlowRedis,
            Fault::BlackholeRedis,
        ]);
    }
    let locked = combo != Combo::SqliteAlone;
    // Windows (ms) in which ticks may be skipped because no worker could hold the lock.
    let mut excused: Vec<(i64, i64)> = Vec::new();
    let mut applied: BTreeMap<String, u32> = BTreeMap::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut round = 0_u32;
    while tokio::time::Instant::now() < until {
        round += 1;
        // Every fourth fault is followed by a quiet spell, so that ticks outside every
        // fault's window are checked under a lock too.
        let quiet = if locked && round.is_multiple_of(4) {
            5_000
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(quiet + rng.u64(800..=2_000))).await;
        let fault = faults[rng.usize(0..faults.len())];
        let slot = rng.usize(0..3);
        let start = now_ms();
        match fault {
            Fault::Kill => {
                scene.workers[slot].signal("KILL");
                let _ = scene.workers[slot].0.wait();
                tokio::time::sleep(Duration::from_millis(rng.u64(0..=1_000))).await;
                scene.spawn(slot);
            }
            Fault::Stop => {
                scene.workers[slot].signal("STOP");
                tokio::time::sleep(Duration::from_millis(rng.u64(1_700..=3_000))).await;
                scene.workers[slot].signal("CONT");
            }
            Fault::TerminateBackends => scene.terminate_backends().await,
            Fault::RestartRedis => {
                let (port, server) = scene.redis.take().unwrap();
                drop(server);
                tokio::time::sleep(Duration::from_millis(rng.u64(200..=800))).await;
                scene.redis = Some((port, RedisServer::start(port).await));
            }
            Fault::PauseRedis => {
                let port = scene.redis.as_ref().unwrap().0;
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                let _: () = redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(2_000)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2_000)).await;
            }
            Fault::SlowRedis | Fault::BlackholeRedis => {
                let proxy = scene.proxy.clone().unwrap();
                proxy.set(if matches!(fault, Fault::SlowRedis) {
                    LATENCY
                } else {
                    BLACKHOLE
                });
                tokio::time::sleep(Duration::from_millis(rng.u64(1_000..=2_500))).await;
                proxy.set(PASS);
            }
        }
        *applied.entry(format!("{fault:?}")).or_default() += 1;
        let end = now_ms();
        if locked {
            excused.push((start - 1_000, end + TTL_MS + 1_000));
        }
    }
    // Faults are over: interrupted executions are resumed within a few liveness windows, and
    // the ticks of this quiet end are checked too.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let last_tick = ((now_ms() - 2_000) / 1000) * 1000;
    // What the live workers' metrics say, before they stop.
    let scraped = now_ms();
    let mut counted: BTreeMap<(String, String), u64> = BTreeMap::new();
    let final_ready: Vec<PathBuf> = scene.names.iter().map(|n| n.2.clone()).collect();
    wait_ready(&final_ready).await;
    for (name, port, _) in &scene.names {
        let mut answer = tickguard_tests::http_get(*port, "/metrics");
        for _ in 0..50 {
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            answer = tickguard_tests::http_get(*port, "/metrics");
        }
        let text = answer.unwrap_or_else(|e| panic!("{combo:?}: worker {name}'s metrics: {e}"));
        for job in ["tx", "once"] {
            let runs: u64 = text
                .lines()
                .filter(|l| {
                    l.starts_with("tickguard_executions_total{")
                        && l.contains(&format!("job=\"{job}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            counted.insert((name.clone(), job.to_owned()), runs);
        }
    }
    for worker in &scene.workers {
        worker.signal("KILL");
    }
    let effects = scene.effects().await;

    let report = |problem: String| -> String {
        format!(
            "{combo:?}, seed {seed} (TICKGUARD_CHAOS_SEED={seed} replays it): {problem}\n\
             faults: {applied:?}"
        )
    };
    // At most one effect per (job, tick).
    let mut by_tick: BTreeMap<(String, i64), Vec<&Effect>> = BTreeMap::new();
    for e in &effects {
        by_tick.entry((e.1.clone(), e.2)).or_default().push(e);
    }
    let twice: Vec<_> = by_tick.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{}",
        report(format!("ticks with two effects: {twice:?}"))
    );
    // None missing, but for ticks a lock fault excused.
    let mut missing = Vec::new();
    let (mut checked, mut skipped_under_faults) = (0, 0);
    let mut tick = first_tick;
    while tick <= last_tick {
        let excused_here = excused.iter().any(|(a, b)| (*a..=*b).contains(&tick));
        for job in ["tx", "once"] {
            let present = by_tick.contains_key(&(job.to_owned(), tick));
            if excused_here {
                skipped_under_faults += u32::from(!present);
            } else {
                checked += 1;
                if !present {
                    missing.push((job, tick));
                }
            }
        }
        tick += 1_000;
    }
    assert!(
        missing.is_empty(),
        "{}",
        report(format!("missing effects: {missing:?}"))
    );
    // Fences strictly increase in commit order, and runs of one job never overlapped: for
    // `tx`, whose effects are fenced at commit. (A stale `once` run may still write its
    // effect after a newer run, by design: its idempotency key is what makes it harmless.)
    for job in ["tx"] {
        let mine: Vec<&Effect> = effects.iter().filter(|e| e.1 == job).collect();
        for pair in mine.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                a.3 < b.3,
                "{}",
                report(format!(
                    "fence went from {} to {}: {a:?} then {b:?}",
                    a.3, b.3
                ))
            );
            assert!(
                b.5 >= a.6,
                "{}",
                report(format!("overlapping runs of `{job}`: {a:?} and {b:?}"))
            );
        }
    }
    // The metrics agree with the tables: every effect a live worker wrote (and finished well
    // before the scrape) is counted among its executions.
    for ((name, job), runs) in &counted {
        let written = effects
            .iter()
            .filter(|e| e.4 == *name && e.1 == *job && e.6 < scraped - 2_000)
            .count() as u64;
        assert!(
            written <= *runs,
            "{}",
            report(format!(
                "worker {name} wrote {written} `{job}` effects but counted {runs} executions"
            ))
        );
    }
    let counted_runs: u64 = counted.values().sum();
    let ticks = (last_tick - first_tick) / 1000 + 1;
    let faults_total: u32 = applied.values().sum();
    eprintln!(
        "chaos {combo:?}: seed {seed}, {seconds} s, {ticks} ticks x 2 jobs, {} effects, \
         {faults_total} faults {applied:?}: none twice; {checked} tick-jobs checked outside \
         lock-fault windows, none missing ({skipped_under_faults} skipped inside them, as \
         lock holders died or Redis was away); fences increasing; no overlap; the live \
         workers' {counted_runs} counted executions cover their effects",
        effects.len()
    );
    // At least 20 faults in the short mode's 90 s, and as many per minute in other runs.
    let wanted = u32::try_from(seconds * 2 / 9).unwrap_or(u32::MAX);
    assert!(
        faults_total >= wanted,
        "only {faults_total} faults in {seconds} s"
    );
    drop(scene.workers);
    if combo != Combo::SqliteAlone {
        let admin = sqlx::PgPool::connect(&postgres_url())
            .await
            .unwrap_or_else(|e| no_postgres(e));
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            scene.schema
        )))
        .execute(&admin)
        .await;
    }
    let _ = std::fs::remove_dir_all(&scene.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_lock_and_postgres_store() {
    chaos(Combo::RedisPostgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_postgres_lock_and_sqlite_store() {
    chaos(Combo::PostgresLockSqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_sqlite_store_alone() {
    chaos(Combo::SqliteAlone).await;
}
