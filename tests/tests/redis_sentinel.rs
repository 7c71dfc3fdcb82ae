//! Redis Sentinel failover under three scheduler processes: real `redis-server` and
//! `redis-sentinel` processes on free loopback ports (one master, one replica, three
//! sentinels, `down-after-milliseconds` 1000, `failover-timeout` 3000), and three
//! `chaos_worker` processes locking through `.redis_sentinel(..)` with a PostgreSQL store
//! (a scratch schema). Their idempotent `run_all` jobs, due every second, write one effect row
//! per tick in a plain table, `tx` inside `ctx.transaction()`, `once` inside `ctx.once(..)`.
//!
//! Two faults, each while a run holds its lease on the master (the lease key is there):
//!
//! - `master_killed`: SIGKILL of the master;
//! - `master_frozen_then_stale`: SIGSTOP of the master past `down-after-milliseconds`, then,
//!   once the sentinels promoted the replica, SIGCONT: the old master comes back believing it
//!   is the master, with the workers' commands still queued on its sockets, until the
//!   sentinels demote it.
//!
//! Each checks: every tick of both jobs, from the first after the workers were ready to 3 s
//! after the failover settled, has exactly one effect (none twice, none lost: `run_all`
//! catches up the ticks skipped while no master answered); the `tx` effects' fences increase
//! in commit order; a run starts again within `down-after + failover-timeout + ttl` of the
//! fault (the figure is printed); every worker logged the WARN line naming the old and the
//! new master; no worker panicked.
//!
//! `a_lease_lost_in_the_failover_duplicates_no_effect`: two `sentinel_worker` processes, one
//! tick whose effect is written in fenced steps, and a lease the failover loses while its
//! run goes on (the replica stopped replicating before the lease was taken): the second
//! instance takes the lock on the promoted replica and fires the same tick, its claim finds
//! the first run live and does not start it, the first run is cancelled as lock lost at its
//! next renewal, and the tick resumes from its checkpoint: every step once.
//!
//! Three quicker tests without workers: the same lost lease at the lock's level (a second
//! handle takes the lock, the first one's renewal answers "lost"); a master demoted behind
//! the sentinels' back answers `READONLY`, which every lock operation reports as an error,
//! never as a held lock or a lost lease; and each bad `.redis_sentinel(..)` configuration
//! fails `build()` with a clear error.
//!
//! Needs `redis-server` and `redis-sentinel` on the PATH and PostgreSQL
//! (`TICKGUARD_TEST_POSTGRES`); `bash scripts/services` provides them. Without them it fails.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use chrono::Utc;
use redis::{AsyncConnectionConfig, FromRedisValue};
use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::{ExecutionStore, PostgresStore, Status},
};
use tickguard_tests::{Worker, free_port, postgres_url, scratch_schema};

/// The master's name in the sentinels' configuration.
const MASTER: &str = "tickguard-test";
const DOWN_AFTER_MS: i64 = 1_000;
const FAILOVER_TIMEOUT_MS: i64 = 3_000;
/// `chaos_worker`'s lease ttl.
const TTL_MS: i64 = 1_500;
/// The jobs of `chaos_worker`, due every second.
const JOBS: [&str; 2] = ["tx", "once"];
const EFFECTS: &str = "effects (id bigserial PRIMARY KEY, job TEXT NOT NULL, \
     tick BIGINT NOT NULL, fence BIGINT NOT NULL, worker TEXT NOT NULL, \
     started BIGINT NOT NULL, finished BIGINT NOT NULL, idem TEXT UNIQUE)";
/// How long each wait below may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL of the master.
    Kill,
    /// SIGSTOP of the master until the replica is promoted, then SIGCONT.
    FreezeThenResume,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed() {
    failover(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_frozen_then_stale() {
    failover(Fault::FreezeThenResume).await;
}

/// The Redis processes of one test, killed when dropped.
struct SentinelSet {
    master_port: u16,
    replica_port: u16,
    sentinel_ports: Vec<u16>,
    master: Worker,
    _replica: Worker,
    _sentinels: Vec<Worker>,
}

impl SentinelSet {
    /// Starts the master, its replica and three sentinels; returns once the sentinels know
    /// each other and the replica, and the replica is in sync.
    async fn start(dir: &Path) -> Self {
        let master_port = free_port();
        let master = redis_server(dir, "master", master_port, None).await;
        let replica_port = free_port();
        let replica = redis_server(dir, "replica", replica_port, Some(master_port)).await;
        let mut sentinel_ports = Vec::new();
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port();
            sentinels.push(sentinel(dir, i, port, master_port).await);
            sentinel_ports.push(port);
        }
        let set = Self {
            master_port,
            replica_port,
            sentinel_ports,
            master,
            _replica: replica,
            _sentinels: sentinels,
        };
        wait_for(
            "the replica in sync and known to all three sentinels",
            || set.settled(),
        )
        .await;
        set
    }

    async fn settled(&self) -> Option<()> {
        let info: String = ask(self.replica_port, redis::cmd("INFO").arg("replication"))
            .await
            .ok()?;
        if !info.contains("master_link_status:up") {
            return None;
        }
        for &port in &self.sentinel_ports {
            let master: HashMap<String, String> =
                ask(port, redis::cmd("SENTINEL").arg("MASTER").arg(MASTER))
                    .await
                    .ok()?;
            let known = |field: &str| master.get(field).map(String::as_str);
            if known("num-other-sentinels") != Some("2") || known("num-slaves") != Some("1") {
                return None;
            }
        }
        Some(())
    }

    /// The port of the master the first sentinel names.
    async fn named_master(&self) -> Option<u16> {
        let addr: Vec<String> = ask(
            self.sentinel_ports[0],
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(MASTER),
        )
        .await
        .ok()?;
        addr.get(1)?.parse().ok()
    }

    /// The replica stops replicating (its master is now a port nobody listens on): it keeps
    /// its data, and the sentinels still count it as the master's replica, so what the
    /// master writes from now on is lost when the replica is promoted.
    async fn stop_replication(&self) {
        let nowhere = free_port().to_string();
        let _: () = ask(
            self.replica_port,
            redis::cmd("REPLICAOF").arg("127.0.0.1").arg(&nowhere),
        )
        .await
        .unwrap();
    }

    /// The workers' lock: the three sentinels, after one that is down (a first-listed
    /// sentinel on a dead host must not keep the lock from following the master).
    fn lock_arg(&self) -> String {
        let urls: Vec<String> = std::iter::once(free_port())
            .chain(self.sentinel_ports.iter().copied())
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect();
        format!("sentinel:{MASTER}:{}", urls.join(","))
    }
}

/// A `redis-server` on `port`, a replica of `master` if given, logging to `dir`.
async fn redis_server(dir: &Path, name: &str, port: u16, master: Option<u16>) -> Worker {
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    if let Some(master) = master {
        command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
    }
    spawn(command, dir, name, port, "redis-server").await
}

/// A `redis-sentinel` on `port` watching the master on `master`, with its (rewritable)
/// configuration file in `dir`.
async fn sentinel(dir: &Path, i: usize, port: u16, master: u16) -> Worker {
    let conf = dir.join(format!("sentinel{i}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\n\
             sentinel monitor {MASTER} 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER} 1\n"
        ),
    )
    .unwrap();
    let mut command = Command::new("redis-sentinel");
    command.arg(&conf);
    spawn(
        command,
        dir,
        &format!("sentinel{i}"),
        port,
        "redis-sentinel",
    )
    .await
}

async fn spawn(mut command: Command, dir: &Path, name: &str, port: u16, program: &str) -> Worker {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let worker = Worker(
        command
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}); run `bash scripts/services` to install it")
            }),
    );
    wait_for(&format!("{program} listening on {port}"), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(drop)
    })
    .await;
    worker
}

/// One command on a fresh connection to `127.0.0.1:port`, bounded by 1 s (a frozen server
/// answers nothing).
async fn ask<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let limit = Some(Duration::from_secs(1));
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(limit)
        .set_response_timeout(limit);
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    cmd.query_async(&mut conn).await
}

/// Polls `probe` every 20 ms until it gives a value, for at most [`PATIENCE`].
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `(job, tick, fence, worker, started)` of every effect, in commit order.
type Effect = (String, i64, i64, String, i64);

async fn effects(store: &PostgresStore, schema: &str) -> Vec<Effect> {
    rows(
        store,
        format!("SELECT job, tick, fence, worker, started FROM \"{schema}\".effects ORDER BY id"),
    )
    .await
}

/// The rows `sql` selects from the store's database.
async fn rows<T>(store: &PostgresStore, sql: String) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// The three workers: `chaos_worker` processes logging WARN and above to `dir/<name>.log`.
fn start_workers(dir: &Path, schema: &str, lock_arg: &str) -> (Vec<Worker>, Vec<PathBuf>) {
    let mut workers = Vec::new();
    let mut ready = Vec::new();
    for i in 0..3 {
        let name = format!("w{i}");
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let file = dir.join(format!("{name}.ready"));
        let child = Command::new(env!("CARGO_BIN_EXE_chaos_worker"))
            .arg(format!("postgres:{schema}"))
            .arg(lock_arg)
            .arg(&name)
            .arg(&file)
            .arg(free_port().to_string())
            .env("TICKGUARD_TEST_POSTGRES", postgres_url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chaos_worker: {e}"));
        workers.push(Worker(child));
        ready.push(file);
    }
    (workers, ready)
}

/// What one failover measured, in ms after the fault.
struct Figures {
    /// The first sentinel names the replica.
    promoted: i64,
    /// The old master answers as a replica (after SIGCONT), for a frozen master.
    demoted: Option<i64>,
    /// The first run that started after the fault started.
    ran_again: i64,
}

async fn failover(fault: Fault) {
    let (schema, dir, store) = scratch_schema("tg_sentinel", &[EFFECTS]).await;
    let set = SentinelSet::start(&dir).await;
    let (workers, ready) = start_workers(&dir, &schema, &set.lock_arg());
    wait_for("the workers ready", || async {
        ready.iter().all(|f| f.exists()).then_some(())
    })
    .await;
    let first_tick = now_ms().div_euclid(1_000) * 1_000 + 1_000;
    // Mid-run: a lease is on the master (`tx`'s or `once`'s), after a first effect.
    wait_for("a first effect", || async {
        (!effects(&store, &schema).await.is_empty()).then_some(())
    })
    .await;
    wait_for("a lease held on the master", || async {
        let held: Vec<String> = ask(set.master_port, redis::cmd("KEYS").arg("tickguard:lock:*"))
            .await
            .ok()?;
        (!held.is_empty()).then_some(())
    })
    .await;
    let at = now_ms();
    let figures = apply(fault, &set, &store, &schema, at).await;
    let settled = at + figures.ran_again.max(figures.demoted.unwrap_or(0));
    let last_tick = settled.div_euclid(1_000) * 1_000 + 3_000;
    let wanted = (last_tick - first_tick) / 1_000 + 1;
    wait_for(
        "an effect for every tick up to 3 s after the failover",
        || async {
            let done = effects(&store, &schema)
                .await
                .iter()
                .filter(|(_, tick, ..)| (first_tick..=last_tick).contains(tick))
                .count() as i64;
            (done >= wanted * JOBS.len() as i64).then_some(())
        },
    )
    .await;
    for worker in &workers {
        worker.signal("TERM");
    }
    drop(workers);
    let all = effects(&store, &schema).await;
    check_effects(&all, first_tick, last_tick);
    let followed = check_logs(&dir, &set) - at;
    let bound = DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS + TTL_MS;
    eprintln!(
        "redis sentinel, {fault:?}: replica promoted {} ms after the fault, old master \
         demoted after {}, every worker on the new master after {followed} ms, a run \
         started again after {} ms (bound: down-after {DOWN_AFTER_MS} \
         + failover-timeout {FAILOVER_TIMEOUT_MS} + ttl {TTL_MS} = {bound} ms); ticks \
         checked: {} per job, from {first_tick} to {last_tick}",
        figures.promoted,
        figures
            .demoted
            .map_or("-".to_owned(), |ms| format!("{ms} ms")),
        figures.ran_again,
        (last_tick - first_tick) / 1_000 + 1,
    );
    assert!(
        followed <= bound,
        "{fault:?}: the last worker followed the master only {followed} ms after the fault, \
         more than down-after + failover-timeout + ttl = {bound} ms; the sentinels:\n{}",
        sentinel_events(&dir)
    );
    assert!(
        figures.ran_again <= bound,
        "{fault:?}: a run started again only {} ms after the fault, more than down-after + \
         failover-timeout + ttl = {bound} ms; the sentinels:\n{}",
        figures.ran_again,
        sentinel_events(&dir)
    );
    drop(set);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sentinels' events (`+sdown`, `+odown`, `+elected-leader`, `+switch-master`, ..), for
/// a failure message.
fn sentinel_events(dir: &Path) -> String {
    (0..3)
        .flat_map(|i| {
            let log =
                std::fs::read_to_string(dir.join(format!("sentinel{i}.log"))).unwrap_or_default();
            log.lines()
                .filter(|line| line.contains(" # ") || line.contains(" * +"))
                .map(|line| format!("sentinel{i}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Applies `fault` at `at` (wall ms) and waits for the failover: its figures.
async fn apply(
    fault: Fault,
    set: &SentinelSet,
    store: &PostgresStore,
    schema: &str,
    at: i64,
) -> Figures {
    set.master.signal(match fault {
        Fault::Kill => "KILL",
        Fault::FreezeThenResume => "STOP",
    });
    wait_for("the sentinels to promote the replica", || async {
        (set.named_master().await? == set.replica_port).then_some(())
    })
    .await;
    let promoted = now_ms() - at;
    let demoted = if fault == Fault::FreezeThenResume {
        set.master.signal("CONT");
        wait_for("the old master demoted to a replica", || async {
            let info: String = ask(set.master_port, redis::cmd("INFO").arg("replication"))
                .await
                .ok()?;
            info.contains("role:slave").then_some(())
        })
        .await;
        Some(now_ms() - at)
    } else {
        None
    };
    let ran_again = wait_for("a run started after the fault", || async {
        effects(store, schema)
            .await
            .iter()
            .map(|(.., started)| *started)
            .filter(|started| *started > at)
            .min()
    })
    .await;
    Figures {
        promoted,
        demoted,
        ran_again: ran_again - at,
    }
}

/// Exactly one effect per job and tick from `first` to `last`, none twice anywhere, and the
/// `tx` effects' fences increasing in commit order.
fn check_effects(all: &[Effect], first: i64, last: i64) {
    let mut count: BTreeMap<(&str, i64), Vec<&str>> = BTreeMap::new();
    for (job, tick, _, worker, _) in all {
        count.entry((job, *tick)).or_default().push(worker);
    }
    let twice: Vec<_> = count.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "effects made twice: {twice:?}");
    for job in JOBS {
        let missing: Vec<i64> = (first..=last)
            .step_by(1_000)
            .filter(|tick| !count.contains_key(&(job, *tick)))
            .collect();
        assert!(missing.is_empty(), "job {job}: ticks lost: {missing:?}");
    }
    let fences: Vec<i64> = all
        .iter()
        .filter(|(job, ..)| job == "tx")
        .map(|(_, _, fence, ..)| *fence)
        .collect();
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "tx fences out of commit order: {fences:?}"
    );
}

/// Every worker logged the move from the old master to the new one, once; none panicked.
/// Returns when the last one logged it (wall ms).
fn check_logs(dir: &Path, set: &SentinelSet) -> i64 {
    let mut last = 0;
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("w{i}.log"))).unwrap();
        assert!(!log.contains("panicked"), "worker w{i} panicked:\n{log}");
        let moved: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("the Redis master moved"))
            .collect();
        assert_eq!(
            moved.len(),
            1,
            "worker w{i} must log the master's move once:\n{log}"
        );
        let line = moved[0];
        assert!(
            line.contains(" WARN ")
                && line.contains(&format!("from=127.0.0.1:{}", set.master_port))
                && line.contains(&format!("to=127.0.0.1:{}", set.replica_port)),
            "worker w{i}: {line}"
        );
        let at = line.split_whitespace().next().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap_or_else(|e| panic!("worker w{i}: `{at}`: {e}"));
        last = last.max(at.timestamp_millis());
    }
    last
}

/// `build()` with `.redis_sentinel(..)`: each bad configuration is an `Error::Lock` that
/// says what to check, and never shows a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sentinel_configurations_are_clear_errors() {
    let one = OneSentinel::start("tg_sentinel_bad").await;
    let (master_port, sentinel_port) = (one.master_port, one.sentinel_port);
    let sentinel_url = format!("redis://127.0.0.1:{sentinel_port}");
    let closed = free_port();
    let cases: [(Vec<String>, &str, &[&str]); 6] = [
        (vec![], MASTER, &["no sentinel URL given"]),
        (
            vec![sentinel_url.clone()],
            " ",
            &["the master name is empty"],
        ),
        (
            vec!["redis://:hunter2@[bad".to_owned()],
            MASTER,
            &["invalid Redis Sentinel URL", "***"],
        ),
        (
            vec![format!("redis://user:hunter2@127.0.0.1:{closed}")],
            MASTER,
            &[
                &format!("through the sentinels at 127.0.0.1:{closed}"),
                "is redis-sentinel running",
            ],
        ),
        (
            vec![sentinel_url.clone()],
            "no-such-master",
            &["know no master `no-such-master`", "sentinel monitor"],
        ),
        (
            vec![format!("redis://127.0.0.1:{master_port}")],
            MASTER,
            &["is each address a sentinel's"],
        ),
    ];
    for (urls, master, expected) in cases {
        let built = tickguard::Scheduler::builder()
            .discover(false)
            .redis_sentinel(urls.clone(), master)
            .build()
            .await;
        let Err(tickguard::Error::Lock(e)) = built else {
            panic!("{urls:?} / `{master}`: expected Error::Lock");
        };
        let message = format!("{e:#}");
        for part in expected {
            assert!(message.contains(part), "{urls:?} / `{master}`: {message}");
        }
        assert!(!message.contains("hunter2"), "a password shows: {message}");
    }
    // The good configuration builds, and takes its locks on the master under the
    // namespace's prefix.
    let (held, was_held) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let every = tickguard::Schedule::every(Duration::from_secs(1)).unwrap();
    let probe = tickguard::Job::new("probe", every, move |_ctx: tickguard::JobContext| {
        let held = held.clone();
        async move {
            let key = "tickguard:sentinel_ns:lock:probe";
            let exists: bool = ask(master_port, redis::cmd("EXISTS").arg(key))
                .await
                .unwrap();
            let _ = held.send(exists);
            Ok(())
        }
    })
    .lock(tickguard::LockPolicy::new(Duration::from_secs(5)));
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .namespace("sentinel_ns")
        .redis_sentinel([sentinel_url], MASTER)
        .job(probe)
        .build()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut was_held = was_held;
    let mut exists = None;
    scheduler
        .run_until(async { exists = was_held.recv().await })
        .await
        .unwrap();
    assert_eq!(
        exists,
        Some(true),
        "the lease is not under the namespace's prefix"
    );
}

/// A master demoted to a replica behind the sentinels' back answers `READONLY`: acquire,
/// extend and release then fail (the lock asks the sentinels, which name no master that
/// answers `ROLE` as one), and none of them reads it as "the lock is held" or "the lease is
/// lost". Once it is a master again, the same handle works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_is_a_moved_master_never_a_held_lock() {
    use tickguard::lock::{Acquired, LockBackend, RedisLock};

    let one = OneSentinel::start("tg_sentinel_ro").await;
    let (master_port, sentinel_port) = (one.master_port, one.sentinel_port);
    let lock = RedisLock::connect_sentinel([format!("redis://127.0.0.1:{sentinel_port}")], MASTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ttl = Duration::from_secs(30);
    let Acquired::Lease(lease) = lock.acquire("ro", "a", ttl).await.unwrap() else {
        panic!("the lock was free");
    };
    // A replica of a server that is not there: it keeps its data, lease included, and
    // refuses writes.
    let nowhere = free_port().to_string();
    let _: () = ask(
        master_port,
        redis::cmd("REPLICAOF").arg("127.0.0.1").arg(&nowhere),
    )
    .await
    .unwrap();
    for name in ["ro", "other"] {
        let refused = lock.acquire(name, "b", ttl).await;
        let e = refused.expect_err("an acquire on a replica must fail, not report a holder");
        assert!(e.to_string().contains("READONLY"), "acquire of {name}: {e}");
    }
    // Each error names the server that answered READONLY.
    let at = format!("Redis at redis://127.0.0.1:{master_port} ");
    let extended = lock.extend(&lease, ttl).await;
    assert!(
        extended
            .as_ref()
            .is_err_and(|e| e.to_string().contains("READONLY") && e.to_string().contains(&at)),
        "an extend on a replica must fail, not report the lease lost: {extended:?}"
    );
    let released = lock.release(&lease, Duration::ZERO).await;
    assert!(
        released
            .as_ref()
            .is_err_and(|e| e.to_string().contains("READONLY") && e.to_string().contains(&at)),
        "a release on a replica must fail with READONLY: {released:?}"
    );
    let _: () = ask(master_port, redis::cmd("REPLICAOF").arg("NO").arg("ONE"))
        .await
        .unwrap();
    assert!(
        lock.extend(&lease, ttl).await.unwrap(),
        "the lease is still there"
    );
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
}

/// A master without replicas and one sentinel watching it, for the tests that need no
/// failover; killed, and their directory removed, when dropped.
struct OneSentinel {
    dir: PathBuf,
    master_port: u16,
    sentinel_port: u16,
    _master: Worker,
    _sentinel: Worker,
}

impl OneSentinel {
    async fn start(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(tickguard_tests::unique_name(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        let master_port = free_port();
        let master = redis_server(&dir, "master", master_port, None).await;
        let sentinel_port = free_port();
        let sentinel = sentinel(&dir, 0, sentinel_port, master_port).await;
        Self {
            dir,
            master_port,
            sentinel_port,
            _master: master,
            _sentinel: sentinel,
        }
    }
}

impl Drop for OneSentinel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a failover can do to a held lease: one written to the master after its replica
/// stopped replicating is missing on the promoted replica, so a second instance takes the
/// lock while the first still holds it by its ttl; the first learns of the loss at its next
/// renewal (`extend` answers `false`), and cannot release the second one's lease. (What
/// keeps the overlap harmless, with scheduler processes and a store:
/// `a_lease_lost_in_the_failover_duplicates_no_effect`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_replicated_before_the_failover_is_gone() {
    use tickguard::lock::{Acquired, LockBackend, RedisLock};

    let dir = std::env::temp_dir().join(tickguard_tests::unique_name("tg_sentinel_lost"));
    std::fs::create_dir_all(&dir).unwrap();
    let set = SentinelSet::start(&dir).await;
    let urls: Vec<String> = set
        .sentinel_ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    let first = RedisLock::connect_sentinel(&urls, MASTER).await.unwrap();
    let second = RedisLock::connect_sentinel(&urls, MASTER).await.unwrap();
    set.stop_replication().await;
    let ttl = Duration::from_secs(60);
    let Acquired::Lease(lease) = first.acquire("lost", "first", ttl).await.unwrap() else {
        panic!("the lock was free");
    };
    assert!(
        matches!(
            second.acquire("lost", "second", ttl).await.unwrap(),
            Acquired::Held { .. }
        ),
        "the first holds the lock on the master"
    );
    set.master.signal("KILL");
    wait_for("the sentinels to promote the replica", || async {
        (set.named_master().await? == set.replica_port).then_some(())
    })
    .await;
    // Within its ttl, the first lease is gone: the second instance takes the lock.
    let taken = wait_for("the second instance to take the lock", || async {
        match second.acquire("lost", "second", ttl).await {
            Ok(Acquired::Lease(lease)) => Some(lease),
            _ => None,
        }
    })
    .await;
    assert!(
        !first.extend(&lease, ttl).await.unwrap(),
        "the first holder's renewal must report the lease lost"
    );
    assert!(!first.release(&lease, Duration::ZERO).await.unwrap());
    assert!(
        second.extend(&taken, ttl).await.unwrap(),
        "the second keeps it"
    );
    drop(set);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The effect rows of the `steps` job of `sentinel_worker`: one per step of a tick, no
/// unique key (a step written twice shows as two rows).
const STEP_EFFECTS: &str = "effects (id bigserial PRIMARY KEY, tick BIGINT NOT NULL, \
     step BIGINT NOT NULL, fence BIGINT NOT NULL, worker TEXT NOT NULL, at BIGINT NOT NULL)";
/// The runs of the `steps` job, as they start and end.
const STEP_RUNS: &str = "runs (id bigserial PRIMARY KEY, execution_id TEXT NOT NULL, \
     tick BIGINT NOT NULL, fence BIGINT NOT NULL, worker TEXT NOT NULL, \
     from_step BIGINT NOT NULL, started BIGINT NOT NULL, ended BIGINT, how TEXT)";
/// The lease ttl of the lease-loss test: long enough that the holder's first renewal
/// (a third of it after the tick) comes after the failover and the second instance's
/// acquisition, so the second takes the lock while the first run still holds it by its
/// ttl.
const STEPS_TTL_MS: i64 = 15_000;
/// Steps of 500 ms: a run of 7 s, which outlasts that first renewal.
const STEPS: i64 = 14;
const STEP_MS: i64 = 500;

/// A `sentinel_worker` process named `name` (its instance id), logging WARN and above to
/// `dir/<name>.log`; and its ready file.
fn start_sentinel_worker(
    dir: &Path,
    schema: &str,
    set: &SentinelSet,
    name: &str,
) -> (Worker, PathBuf) {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let ready = dir.join(format!("{name}.ready"));
    let lock = set.lock_arg();
    let child = Command::new(env!("CARGO_BIN_EXE_sentinel_worker"))
        .arg(name)
        .arg(&ready)
        .env("TICKGUARD_TEST_POSTGRES", postgres_url())
        .env("SENTINEL_SCHEMA", schema)
        .env("SENTINEL_LOCK", lock.strip_prefix("sentinel:").unwrap())
        .env("SENTINEL_AT", dir.join("at"))
        .env("SENTINEL_TTL_MS", STEPS_TTL_MS.to_string())
        .env("SENTINEL_STEPS", STEPS.to_string())
        .env("SENTINEL_STEP_MS", STEP_MS.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sentinel_worker: {e}"));
    (Worker(child), ready)
}

/// Workers `a` and `b`, built with their job due at tick T, the first whole second at least
/// 1.5 s after both connected (time for the schedulers to build); T in Unix seconds.
async fn start_steps_workers(dir: &Path, schema: &str, set: &SentinelSet) -> (Worker, Worker, i64) {
    let (a, a_ready) = start_sentinel_worker(dir, schema, set, "a");
    let (b, b_ready) = start_sentinel_worker(dir, schema, set, "b");
    wait_for("the workers connected", || async {
        (a_ready.exists() && b_ready.exists()).then_some(())
    })
    .await;
    let tick = (now_ms() + 2_500).div_euclid(1_000);
    let aside = dir.join("at.tmp");
    std::fs::write(&aside, tick.to_string()).unwrap();
    std::fs::rename(&aside, dir.join("at")).unwrap();
    let built = |ready: &Path| PathBuf::from(format!("{}.built", ready.display()));
    wait_for("the schedulers built", || async {
        (built(&a_ready).exists() && built(&b_ready).exists()).then_some(())
    })
    .await;
    assert!(
        now_ms() < tick * 1_000 - 200,
        "the schedulers were built only after T"
    );
    (a, b, tick)
}

/// A run of the `steps` job: `(execution_id, fence, worker, from_step, started, ended, how)`.
type StepRun = (String, i64, String, i64, i64, Option<i64>, Option<String>);
/// A step's effect: `(step, fence, worker, at)`.
type StepEffect = (i64, i64, String, i64);

async fn step_runs(store: &PostgresStore, schema: &str) -> Vec<StepRun> {
    let sql = format!(
        "SELECT execution_id, fence, worker, from_step, started, ended, how \
         FROM \"{schema}\".runs ORDER BY fence, id"
    );
    rows(store, sql).await
}

async fn step_effects(store: &PostgresStore, schema: &str) -> Vec<StepEffect> {
    let sql = format!("SELECT step, fence, worker, at FROM \"{schema}\".effects ORDER BY id");
    rows(store, sql).await
}

/// The value of the lease key of job `steps` on the server at `port`, if it answers.
async fn steps_lease(port: u16) -> Option<String> {
    ask::<Option<String>>(port, redis::cmd("GET").arg("tickguard:lock:steps"))
        .await
        .ok()
        .flatten()
}

/// The central case, end to end: a lease that the failover loses while its run
/// goes on. Two `sentinel_worker` processes, `a` and `b`, run the idempotent job `steps`,
/// which fires once, at tick T, and writes T's effect in 14 steps of 500 ms, each step's
/// row committed in a `ctx.transaction()` with the checkpoint that counts it done.
///
/// `b` is frozen (SIGSTOP) before T, so `a` alone fires T, takes the lease on the master
/// and starts the run; the replica stopped replicating just before, so the lease is on the
/// master only. SIGKILL of the master; once the sentinels promoted the replica, `b` is let
/// go (SIGCONT): it fires T late, and takes the lock on the new master, which has no lease,
/// while `a`'s run goes on. Checks, as locks.md says:
///
/// - `b` held the lease of T on the new master while `a`'s execution of T was live (RUNNING,
///   `a`'s claim, its fence) and `a`'s run had not ended: the lease really was lost;
/// - `b`'s claim found that execution live and did not start T: no step was written under
///   another fence while `a`'s run was alive;
/// - `a`'s run was cancelled as `lock_lost` (its next renewal, on the new master, found the
///   lease gone) and logged the loss;
/// - T was then resumed under a higher fence from `a`'s last checkpoint and completed: every
///   step of T has exactly one row (none twice, none missing);
/// - no worker panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_in_the_failover_duplicates_no_effect() {
    let (schema, dir, store) =
        scratch_schema("tg_sentinel_steps", &[STEP_EFFECTS, STEP_RUNS]).await;
    let set = SentinelSet::start(&dir).await;
    let (a, b, tick) = start_steps_workers(&dir, &schema, &set).await;
    b.signal("STOP");
    // From now on, what the master writes stays on the master.
    set.stop_replication().await;
    wait_for(
        "a's run of T started under its lease on the master",
        || async {
            let lease = steps_lease(set.master_port).await?;
            let runs = step_runs(&store, &schema).await;
            (lease.starts_with("a#") && !runs.is_empty()).then_some(())
        },
    )
    .await;
    let fault = now_ms();
    set.master.signal("KILL");
    wait_for("the sentinels to promote the replica", || async {
        (set.named_master().await? == set.replica_port).then_some(())
    })
    .await;
    let promoted = now_ms() - fault;
    b.signal("CONT");
    let lease = wait_for("b to take the lock on the new master", || async {
        steps_lease(set.replica_port)
            .await
            .filter(|lease| lease.starts_with("b#"))
    })
    .await;
    let taken = now_ms() - fault;
    let (execution_id, fence) = check_a_live(&store, &schema, &lease, tick, taken).await;
    let done = wait_for("T completed", || async {
        let record = store.execution(&execution_id).await.ok()??;
        (record.status == Status::Completed).then(now_ms)
    })
    .await
        - fault;
    a.signal("TERM");
    b.signal("TERM");
    drop((a, b));
    let runs = step_runs(&store, &schema).await;
    let effects = step_effects(&store, &schema).await;
    let first = &runs[0];
    let a_ended = first.5.expect("a's run recorded its end");
    check_steps(&effects, fence, a_ended, &runs);
    assert_eq!(
        first.6.as_deref(),
        Some("cancelled:lock_lost"),
        "a's run must be cancelled as lock lost: runs {runs:?}"
    );
    for name in ["a", "b"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
        assert!(!log.contains("panicked"), "worker {name} panicked:\n{log}");
        assert!(
            name == "b" || log.contains("lock lost: another instance may hold it now"),
            "a must log the lock's loss:\n{log}"
        );
    }
    let a_steps = effects.iter().filter(|(_, f, ..)| *f == fence).count();
    eprintln!(
        "redis sentinel, lease lost in the failover: replica promoted {promoted} ms after the \
         fault, b took the lock {taken} ms after it while a's run was live; a's run was \
         cancelled as lock lost {} ms after the fault, after {a_steps} of {STEPS} steps; T \
         resumed from that checkpoint under a fence above {fence} and completed {done} ms after \
         the fault; runs: {:?}",
        a_ended - fault,
        runs.iter()
            .map(|(_, fence, worker, from, _, _, how)| format!(
                "{worker} fence {fence} from step {from}: {}",
                how.as_deref().unwrap_or("?")
            ))
            .collect::<Vec<_>>(),
    );
    drop(set);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `a`'s execution and run were while `b` held `lease` (taken `taken` ms after the
/// fault): the lease is T's, and `a`'s execution of T live (RUNNING, `a`'s claim, the fence
/// of `a`'s run, which has not ended). Its id and `a`'s fence.
async fn check_a_live(
    store: &PostgresStore,
    schema: &str,
    lease: &str,
    tick: i64,
    taken: i64,
) -> (String, i64) {
    let runs = step_runs(store, schema).await;
    let (execution_id, fence, worker, ..) = runs[0].clone();
    let record = store.execution(&execution_id).await.unwrap().unwrap();
    assert_eq!(worker, "a", "the first run of T is a's: {runs:?}");
    assert!(
        lease.contains(&format!("@{}/", tick * 1_000)),
        "b's lease is not for T: {lease}"
    );
    assert!(
        record.status == Status::Running
            && record.owner.starts_with("a#")
            && record.fence == fence as u64
            && runs.len() == 1
            && runs[0].5.is_none(),
        "b took the lock {taken} ms after the fault, but a's run was no longer live (a \
         failover slower than a third of the ttl, {} ms, lets a's first renewal find the \
         lease gone first): {record:?}, runs {runs:?}",
        STEPS_TTL_MS / 3
    );
    (execution_id, fence)
}

/// Every step of T exactly once; the steps written under `a`'s fence before its run ended;
/// every other step under a higher fence, after `a`'s run ended (no second run of T while
/// it was alive), by runs that resumed from the last checkpoint.
fn check_steps(effects: &[StepEffect], a_fence: i64, a_ended: i64, runs: &[StepRun]) {
    let mut count: BTreeMap<i64, Vec<(i64, &str)>> = BTreeMap::new();
    for (step, fence, worker, _) in effects {
        count.entry(*step).or_default().push((*fence, worker));
    }
    let twice: Vec<_> = count.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "steps written twice: {twice:?}");
    let missing: Vec<i64> = (0..STEPS).filter(|s| !count.contains_key(s)).collect();
    assert!(missing.is_empty(), "steps never written: {missing:?}");
    let alongside: Vec<_> = effects
        .iter()
        .filter(|(_, fence, _, at)| *fence != a_fence && *at <= a_ended)
        .collect();
    assert!(
        alongside.is_empty(),
        "steps written by another run while a's run was alive: {alongside:?}; runs {runs:?}"
    );
    let started_alongside: Vec<_> = runs[1..]
        .iter()
        .filter(|(.., started, _, _)| *started <= a_ended)
        .collect();
    assert!(
        started_alongside.is_empty(),
        "another run of T started while a's run was alive: {started_alongside:?}"
    );
    assert!(
        effects.iter().all(|(_, fence, ..)| *fence >= a_fence),
        "a step under a fence older than a's: {effects:?}"
    );
    for (_, fence, worker, from, ..) in &runs[1..] {
        let before = effects.iter().filter(|(_, f, ..)| f < fence).count() as i64;
        assert_eq!(
            *from, before,
            "the run of {worker} under fence {fence} did not resume from the last step"
        );
    }
}
