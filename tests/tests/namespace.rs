//! `SchedulerBuilder::namespace` on the real servers: schedulers of two services that share a
//! Redis and a PostgreSQL database, with a job of the same name, each run their job: neither
//! sees the other's lock, claims or history. Also what the startup line shows for shared
//! backends (no password, no process-local warning), that sqlx's statements stay out of an
//! INFO log, and which namespaces `build()` refuses.
//!
//! Needs Redis at `TICKGUARD_TEST_REDIS` (default `redis://127.0.0.1:6379`) and PostgreSQL
//! at `TICKGUARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`), with
//! the right to create schemas; without them the tests fail, never skip. Each test drops the
//! schemas and deletes the keys it created.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tickguard::{
    Error, Job, JobContext, LockPolicy, Schedule, Scheduler, SchedulerBuilder,
    lock::{LockBackend, PostgresLock},
    metrics as names,
    sqlx::{self, AssertSqlSafe},
    store::{ExecutionStore, PostgresStore},
};
use tickguard_tests::{no_postgres, postgres_url, unique_name};

fn redis_url() -> String {
    std::env::var("TICKGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn no_redis(e: impl std::fmt::Display) -> ! {
    panic!(
        "this test needs Redis at {} (set TICKGUARD_TEST_REDIS to use another): {e}",
        redis_url()
    )
}

/// The test database's URL with a password in it (the test server trusts local users, so
/// any password is accepted): it must show nowhere.
fn url_with_password() -> String {
    postgres_url().replacen("://postgres@", "://postgres:hunter2@", 1)
}

/// Drops the schemas and deletes the Redis keys of the namespaces, when the test ends.
struct Cleanup(Vec<String>);

impl Cleanup {
    async fn run(&self) {
        let pool = sqlx::PgPool::connect(&postgres_url())
            .await
            .unwrap_or_else(|e| no_postgres(e));
        for ns in &self.0 {
            sqlx::query(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{ns}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
        let mut redis = redis::Client::open(redis_url())
            .unwrap_or_else(|e| no_redis(e))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| no_redis(e));
        for ns in &self.0 {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("tickguard:{ns}:*"))
                .query_async(&mut redis)
                .await
                .unwrap();
            for key in keys {
                let _: () = redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Each scheduler's runs (ticks), by namespace; and whether its lock key existed in its
/// namespace while it ran.
type Runs = Arc<Mutex<BTreeMap<String, Vec<(chrono::DateTime<chrono::Utc>, bool)>>>>;

/// A job `name`, due every second, idempotent and locked with `at_least`: two schedulers
/// sharing its lock or store would run each tick once between them.
fn job(name: &str, ns: &str, runs: &Runs, redis_key: bool) -> Job {
    let (runs, ns, name) = (runs.clone(), ns.to_owned(), name.to_owned());
    let every = Schedule::every(Duration::from_secs(1)).unwrap();
    Job::new(name.clone(), every, move |ctx: JobContext| {
        let (runs, ns, name) = (runs.clone(), ns.clone(), name.clone());
        async move {
            let held = if redis_key {
                let mut redis = redis::Client::open(redis_url())
                    .unwrap_or_else(|e| no_redis(e))
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap_or_else(|e| no_redis(e));
                redis::cmd("EXISTS")
                    .arg(format!("tickguard:{ns}:lock:{name}"))
                    .query_async::<bool>(&mut redis)
                    .await
                    .unwrap()
            } else {
                true
            };
            runs.lock()
                .unwrap()
                .entry(ns)
                .or_default()
                .push((ctx.scheduled_at(), held));
            Ok(())
        }
    })
    .lock(LockPolicy::new(Duration::from_secs(5)).at_least(Duration::from_millis(800)))
    .idempotent()
}

#[tokio::test]
async fn two_services_with_a_job_of_the_same_name_each_run_theirs_on_shared_servers() {
    let recorded = tickguard_tests::metrics();
    let name = unique_name("shared_job");
    // Two services on a Redis lock, two on a PostgreSQL lock; all four on one database.
    let namespaces: Vec<String> = ["redis_a", "redis_b", "pg_a", "pg_b"]
        .iter()
        .map(|s| unique_name(&format!("tg_ns_{s}")))
        .collect();
    let cleanup = Cleanup(namespaces.clone());
    let runs: Runs = Arc::default();
    let (captured, guard) =
        tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::INFO);
    let mut schedulers = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let on_redis = i < 2;
        let b = Scheduler::builder()
            .discover(false)
            .instance_id(ns.clone())
            .namespace(ns.clone())
            .postgres(url_with_password())
            .job(job(&name, ns, &runs, on_redis));
        let b = if on_redis {
            b.redis(redis_url())
        } else {
            b.postgres_lock(url_with_password())
        };
        schedulers.push(b.build().await.unwrap_or_else(|e| no_postgres(e)));
    }
    let stores: Vec<Arc<dyn ExecutionStore>> = schedulers.iter().map(|s| s.store()).collect();
    let running = schedulers
        .into_iter()
        .map(|s| s.run_until(tokio::time::sleep(Duration::from_millis(2_600))));
    for ran in futures_util::future::join_all(running).await {
        ran.unwrap();
    }
    drop(guard);
    let logs = captured.text();

    let runs = runs.lock().unwrap().clone();
    for (ns, store) in namespaces.iter().zip(&stores) {
        let ran = runs.get(ns).cloned().unwrap_or_default();
        assert!(ran.len() >= 2, "{ns} ran {ran:?}; all runs: {runs:#?}");
        assert!(
            ran.iter().all(|(_, held)| *held),
            "{ns}'s lock key is not tickguard:{ns}:lock:{name}: {ran:?}"
        );
        // Its history holds its own executions, and only those.
        let history = store.executions(&name, 100).await.unwrap();
        assert_eq!(history.len(), ran.len(), "{ns}: {history:#?}");
        assert!(
            history.iter().all(|e| e.owner.starts_with(ns.as_str())),
            "{ns} sees another service's executions: {history:#?}"
        );
    }
    let skips =
        |reason| recorded.counter(names::SKIPS_TOTAL, &[("job", &name), ("reason", reason)]);
    assert_eq!(skips("locked"), 0, "a service was refused another's lock");
    assert_eq!(skips("duplicate"), 0, "a service found another's claim");

    // The schemas were created: the store's tables in each, the lock's table in pg_*.
    let pool = sqlx::PgPool::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| no_postgres(e));
    for (i, ns) in namespaces.iter().enumerate() {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(ns)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            tables.iter().any(|t| t == "tickguard_executions"),
            "{ns}: {tables:?}"
        );
        assert_eq!(
            tables.iter().any(|t| t == "tickguard_locks"),
            i >= 2,
            "{ns}: {tables:?}"
        );
    }

    // The startup lines name the backends without the password, and the namespace; shared
    // backends are not warned of; sqlx's statements stay at DEBUG.
    for ns in &namespaces {
        assert!(
            logs.lines().any(|l| l.contains("scheduler started")
                && l.contains(&format!("instance_id={ns} "))
                && l.ends_with(&format!(
                    "namespace=\"{ns}\" ({} lock, postgres store)",
                    if ns.contains("redis") {
                        "redis"
                    } else {
                        "postgres"
                    }
                ))
                && l.contains("store=postgres://postgres@")),
            "no startup line for {ns}:\n{logs}"
        );
    }
    assert!(!logs.contains("hunter2"), "a password in the logs:\n{logs}");
    assert!(!logs.contains(" WARN "), "a warning:\n{logs}");
    assert!(
        !logs.contains("sqlx::query"),
        "sqlx statements logged at INFO:\n{logs}"
    );
    assert!(logs.contains("execution finished"), "{logs}");
    cleanup.run().await;
}

#[tokio::test]
async fn postgres_backends_describe_their_server_without_the_password() {
    let ns = unique_name("tg_ns_describe");
    let cleanup = Cleanup(vec![ns.clone()]);
    let lock = PostgresLock::connect_with_schema(&url_with_password(), &ns)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    let store = PostgresStore::connect_with_schema(&url_with_password(), &ns)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    let separator = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let in_query = format!("{}{separator}password=hunter2", postgres_url());
    let query_lock = PostgresLock::connect_with_schema(&in_query, &ns)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    for described in [lock.describe(), store.describe(), query_lock.describe()] {
        assert!(
            described.starts_with("postgres://postgres@")
                && !described.contains("hunter2")
                && !described.contains('?'),
            "{described}"
        );
    }
    cleanup.run().await;
}

/// The configuration error `build()` returns for a namespace, before any connection.
async fn refused(namespace: &str) -> String {
    let b: SchedulerBuilder = Scheduler::builder()
        .discover(false)
        .namespace(namespace)
        // Nobody listens there: a namespace that passed would fail to connect instead.
        .postgres("postgres://postgres@127.0.0.1:1/test");
    match b.build().await.err() {
        Some(Error::Config(message)) => message,
        other => panic!("namespace `{namespace}`: {other:?}"),
    }
}

#[tokio::test]
async fn namespaces_that_are_not_plain_schema_names_are_refused_at_build() {
    for (namespace, why) in [
        ("", "is empty"),
        ("Billing", "lower-case ASCII letters, digits and `_`"),
        ("billing-eu", "lower-case ASCII letters, digits and `_`"),
        ("bill\"ing", "lower-case ASCII letters, digits and `_`"),
        ("1billing", "must not start with a digit"),
        ("pg_billing", "must not start with `pg_`"),
        ("public", "would share their tables"),
        ("information_schema", "PostgreSQL's catalog schema"),
        (&"b".repeat(64), "longer than 63 characters"),
    ] {
        let message = refused(namespace).await;
        assert!(
            message.contains("use lower-case letters, digits and `_`, such as `billing`"),
            "{message}"
        );
        assert!(
            message.starts_with(&format!("namespace `{namespace}` ")),
            "{message}"
        );
        assert!(message.contains(why), "`{namespace}`: {message}");
    }
}

/// A namespace that is an SQL keyword works: tickguard quotes the schema's name.
#[tokio::test]
async fn a_namespace_that_is_a_keyword_works() {
    let ns = "select".to_owned();
    let cleanup = Cleanup(vec![ns.clone()]);
    let scheduler = Scheduler::builder()
        .discover(false)
        .namespace(ns.clone())
        .postgres(postgres_url())
        .postgres_lock(postgres_url())
        .build()
        .await
        .unwrap_or_else(|e| no_postgres(e));
    assert_eq!(
        scheduler
            .store()
            .executions("keyword", 1)
            .await
            .unwrap()
            .len(),
        0
    );
    drop(scheduler);
    let pool = sqlx::PgPool::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| no_postgres(e));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&ns)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t == "tickguard_locks")
            && tables.iter().any(|t| t == "tickguard_executions"),
        "{tables:?}"
    );
    cleanup.run().await;
}
