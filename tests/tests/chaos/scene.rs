//! One chaos run's places and processes: the store's database and effects table, the lock
//! server, the proxies in front of Redis and PostgreSQL, and the worker processes.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::{PostgresStore, SqlStore, SqliteStore},
};
use tickguard_tests::{
    RedisServer, Worker, free_port, no_postgres, postgres_url,
    proxy::{Proxy, through_local_port},
    unique_name,
};

use super::{Effect, wait_ready};

/// The backends of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Combo {
    RedisPostgres,
    PostgresLockSqlite,
    SqliteAlone,
}

/// Slots `0..FAULTED` hold the workers faults aim at; the skewed worker, if any, follows.
pub(crate) const FAULTED: usize = 3;
/// The skewed worker's name and how far its wall clock lags (libfaketime's `FAKETIME`).
pub(crate) const SKEWED: &str = "skewed";
const SKEW_MS: i64 = 2_000;
const FAKETIME: &str = "-2";

/// One run's places and processes.
pub(crate) struct Scene {
    pub(crate) combo: Combo,
    dir: PathBuf,
    /// Postgres schema of the store or the lock, and the application name of the workers'
    /// connections.
    schema: String,
    store_arg: String,
    lock_arg: String,
    /// Where the harness reads the effects.
    reader: SqlStore,
    pub(crate) redis: Option<(u16, RedisServer)>,
    pub(crate) redis_proxy: Option<Proxy>,
    pub(crate) pg_proxy: Option<Proxy>,
    pub(crate) workers: Vec<Worker>,
    /// Each slot's worker: its name, metrics port and ready file.
    pub(crate) names: Vec<(String, u16, PathBuf)>,
    generation: u32,
}

const EFFECTS: &str = "CREATE TABLE {t} (id {serial} PRIMARY KEY, job TEXT NOT NULL, \
     tick BIGINT NOT NULL, fence BIGINT NOT NULL, worker TEXT NOT NULL, \
     started BIGINT NOT NULL, finished BIGINT NOT NULL, idem TEXT UNIQUE)";

impl Scene {
    pub(crate) async fn new(combo: Combo) -> Self {
        let schema = unique_name(&format!("tg_chaos_{combo:?}"));
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = dir.join("store.db");
        let (store_arg, reader) = if combo == Combo::RedisPostgres {
            let store = PostgresStore::connect_with_schema(&postgres_url(), &schema)
                .await
                .unwrap_or_else(|e| no_postgres(e));
            let table = format!("\"{schema}\".effects");
            let ddl = EFFECTS
                .replace("{t}", &table)
                .replace("{serial}", "bigserial");
            sqlx::query(AssertSqlSafe(ddl))
                .execute(store.pool())
                .await
                .unwrap();
            (format!("postgres:{schema}"), SqlStore::Postgres(store))
        } else {
            let store = SqliteStore::connect(&format!("sqlite://{}", sqlite.display()))
                .await
                .unwrap();
            let ddl = EFFECTS
                .replace("{t}", "effects")
                .replace("{serial}", "INTEGER");
            sqlx::query(AssertSqlSafe(
                ddl.replace("PRIMARY KEY", "PRIMARY KEY AUTOINCREMENT"),
            ))
            .execute(store.pool())
            .await
            .unwrap();
            (
                format!("sqlite:{}", sqlite.display()),
                SqlStore::Sqlite(store),
            )
        };
        let mut scene = Self {
            combo,
            dir,
            schema,
            store_arg,
            lock_arg: "none".to_owned(),
            reader,
            redis: None,
            redis_proxy: None,
            pg_proxy: None,
            workers: Vec::new(),
            names: Vec::new(),
            generation: 0,
        };
        scene.start_servers().await;
        scene
    }

    /// The lock's server and the proxies the workers reach PostgreSQL and Redis through.
    async fn start_servers(&mut self) {
        if self.combo != Combo::SqliteAlone {
            let (_, host, port) = through_local_port(&postgres_url(), 0);
            self.pg_proxy = Some(Proxy::start(&host, port).await);
        }
        match self.combo {
            Combo::RedisPostgres => {
                let port = free_port();
                let server = RedisServer::start(port).await;
                let proxy = Proxy::start("127.0.0.1", port).await;
                self.lock_arg = format!("redis:redis://127.0.0.1:{}", proxy.port());
                self.redis = Some((port, server));
                self.redis_proxy = Some(proxy);
            }
            Combo::PostgresLockSqlite => self.lock_arg = format!("postgres:{}", self.schema),
            Combo::SqliteAlone => {}
        }
    }

    /// Starts the faulted workers, and with the Postgres store the skewed one; waits until
    /// all are ready and checks their clocks.
    pub(crate) async fn start_workers(&mut self) {
        let mut ready: Vec<PathBuf> = (0..FAULTED).map(|i| self.spawn(i)).collect();
        if self.combo == Combo::RedisPostgres {
            ready.push(self.spawn_as(FAULTED, SKEWED.to_owned(), true));
        }
        wait_ready(&ready).await;
        for (name, _, file) in &self.names {
            let lag = clock_lag(file);
            let expected = if name == SKEWED { SKEW_MS } else { 0 };
            assert!(
                (expected - 100..=expected + 900).contains(&lag),
                "worker {name}'s wall clock lags the kernel's by {lag} ms, expected {expected} ms"
            );
            eprintln!(
                "chaos {:?}: worker {name}'s clock lags by {lag} ms",
                self.combo
            );
        }
    }

    /// The workers' Postgres URL: through the proxy, with the scene's application name, so
    /// that terminating their connections touches no other test.
    fn worker_postgres_url(&self) -> String {
        let base = match &self.pg_proxy {
            Some(proxy) => through_local_port(&postgres_url(), proxy.port()).0,
            None => postgres_url(),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}application_name={}", self.schema)
    }

    /// Starts a worker in `slot` (replacing the one there): its ready file.
    pub(crate) fn spawn(&mut self, slot: usize) -> PathBuf {
        self.generation += 1;
        let name = format!("w{slot}-{}", self.generation);
        self.spawn_as(slot, name, false)
    }

    fn spawn_as(&mut self, slot: usize, name: String, skewed: bool) -> PathBuf {
        let ready = self.dir.join(format!("{name}.ready"));
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_chaos_worker"));
        command
            .args([&self.store_arg, &self.lock_arg, &name])
            .arg(&ready)
            .arg(port.to_string())
            .env("TICKGUARD_TEST_POSTGRES", self.worker_postgres_url())
            .stdout(Stdio::null());
        // `TICKGUARD_CHAOS_LOG=<filter>` (e.g. `tickguard=debug`): each worker logs to
        // `<name>.log` in the scene's directory, kept with the schema for a look afterwards.
        match std::env::var("TICKGUARD_CHAOS_LOG") {
            Ok(filter) => {
                let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
                    .unwrap_or_else(|e| panic!("cannot create {name}'s log: {e}"));
                command.env("RUST_LOG", filter).stderr(log);
            }
            Err(_) => {
                command.env("RUST_LOG", "off").stderr(Stdio::null());
            }
        }
        if skewed {
            command
                .env("LD_PRELOAD", tickguard_tests::faketime_library())
                .env("FAKETIME", FAKETIME)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command
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

    /// Waits until the worker in `slot` exits after SIGTERM (its runs end within its
    /// shutdown grace), and checks that it stopped itself: killed by the signal's default
    /// action, it would not exit with success.
    pub(crate) async fn wait_exit(&mut self, slot: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let name = &self.names[slot].0;
        loop {
            if let Some(status) = self.workers[slot].0.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "worker {name} did not shut down gracefully on SIGTERM: {status}"
                );
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {name} did not exit within 20 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn terminate_backends(&self) {
        let admin = sqlx::PgPool::connect(&postgres_url())
            .await
            .unwrap_or_else(|e| no_postgres(e));
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&self.schema)
        .execute(&admin)
        .await;
        admin.close().await;
    }

    /// `CLIENT PAUSE` on the lock's Redis for `ms`, and waits that long.
    pub(crate) async fn pause_redis(&self, ms: u64) {
        let port = self.redis.as_ref().unwrap().0;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// The effects in commit order, the skewed worker's times shifted onto the real clock.
    pub(crate) async fn effects(&self) -> Vec<Effect> {
        let query = "SELECT id, job, tick, fence, worker, started, finished FROM {t} ORDER BY id";
        let mut effects: Vec<Effect> = match &self.reader {
            SqlStore::Postgres(store) => {
                let t = format!("\"{}\".effects", self.schema);
                sqlx::query_as(AssertSqlSafe(query.replace("{t}", &t)))
                    .fetch_all(store.pool())
                    .await
                    .unwrap()
            }
            SqlStore::Sqlite(store) => {
                sqlx::query_as(AssertSqlSafe(query.replace("{t}", "effects")))
                    .fetch_all(store.pool())
                    .await
                    .unwrap()
            }
            _ => unreachable!("the scene reads Postgres or SQLite"),
        };
        for e in effects.iter_mut().filter(|e| e.4 == SKEWED) {
            e.5 += SKEW_MS;
            e.6 += SKEW_MS;
        }
        effects
    }

    /// What the store recorded of each (job, tick in ms): the execution's status and error.
    pub(crate) async fn executions(&self) -> BTreeMap<(String, i64), (String, String)> {
        let rows: Vec<(String, i64, String, String)> = match &self.reader {
            SqlStore::Postgres(store) => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT job, (extract(epoch FROM scheduled_at) * 1000)::bigint, status, \
                     coalesce(error, '') FROM \"{}\".tickguard_executions",
                self.schema
            )))
            .fetch_all(store.pool())
            .await
            .unwrap(),
            SqlStore::Sqlite(store) => sqlx::query_as(
                "SELECT job, scheduled_at, status, coalesce(error, '') FROM tickguard_executions",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
            _ => unreachable!("the scene reads Postgres or SQLite"),
        };
        rows.into_iter()
            .map(|(job, tick, status, error)| ((job, tick), (status, error)))
            .collect()
    }

    /// Stops the workers and drops the scene's schema and files.
    pub(crate) async fn clean_up(self) {
        drop(self.workers);
        if std::env::var_os("TICKGUARD_CHAOS_LOG").is_some() {
            eprintln!(
                "chaos {:?}: logs in {}, tables in schema {}",
                self.combo,
                self.dir.display(),
                self.schema
            );
            return;
        }
        if self.combo != Combo::SqliteAlone {
            let admin = sqlx::PgPool::connect(&postgres_url())
                .await
                .unwrap_or_else(|e| no_postgres(e));
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            )))
            .execute(&admin)
            .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How far a worker's wall clock lagged the kernel's when it wrote its ready file (ms): the
/// file's modification time minus the `Utc::now()` it holds.
fn clock_lag(ready: &Path) -> i64 {
    let written: i64 = std::fs::read_to_string(ready)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: not a clock reading: {e}", ready.display()));
    let modified = std::fs::metadata(ready).unwrap().modified().unwrap();
    let modified = chrono::DateTime::<chrono::Utc>::from(modified).timestamp_millis();
    modified - written
}
