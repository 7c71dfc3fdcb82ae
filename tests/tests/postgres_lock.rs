//! The Postgres lock beyond the conformance suite: startup errors, the table and its schema,
//! expiry on the database's clock, the `at_least` tombstone, connections terminated under the
//! lock, an outage and recovery, and two schedulers sharing one Postgres lock in real time.
//!
//! Needs PostgreSQL at `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`), with the right to create schemas and to
//! terminate the test's own connections; `bash scripts/services` installs and starts it.
//! Without it the tests fail: they never skip. Each test keeps its table in a schema of its
//! own (`tg_test_..`) and drops it when it passes; the conformance suite sweeps up the
//! schemas of failed runs.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickguard::{
    Error, Scheduler,
    lock::{InProcessLock, Lease, LockBackend, PostgresLock},
    sqlx::{
        self, AssertSqlSafe, ConnectOptions,
        postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    },
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

const TTL: Duration = Duration::from_secs(30);

fn postgres_url() -> String {
    std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn no_postgres(e: impl std::fmt::Display) -> ! {
    panic!(
        "these tests need PostgreSQL at {} (set TICKGUARD_TEST_POSTGRES to use another): {e}\n\
         run `bash scripts/services` to start it",
        postgres_url()
    )
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A name no other test, run or process uses; as a schema, the conformance suite's sweep
/// recognises it (`tg_test_` .. `_{nanos}`).
fn unique(what: &str) -> String {
    format!("tg_test_{what}_{}_{}", std::process::id(), nanos())
}

/// The test URL with `application_name` set, so the test can find its connections in
/// `pg_stat_activity`.
fn url_named(application_name: &str) -> String {
    let url = postgres_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={application_name}")
}

/// A lock with its table in a schema of its own.
async fn lock_in(schema: &str, url: &str) -> PostgresLock {
    PostgresLock::connect_with_schema(url, schema)
        .await
        .unwrap_or_else(|e| no_postgres(e))
}

/// A plain pool, to look at the rows the lock writes and to play the administrator.
async fn admin() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&postgres_url())
        .await
        .unwrap_or_else(|e| no_postgres(e))
}

async fn drop_schema(admin: &PgPool, schema: &str) {
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
        schema.replace('"', "\"\"")
    )))
    .execute(admin)
    .await
    .unwrap();
}

/// The lock's row: owner, token, and seconds from the database's `now()` to `expires_at`.
async fn row(admin: &PgPool, schema: &str, name: &str) -> Option<(String, i64, f64)> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT owner, token, extract(epoch FROM expires_at - now())::float8 \
         FROM \"{schema}\".tickguard_locks WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let e = PostgresLock::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("cannot reach PostgreSQL at 127.0.0.1:1/test")
            && message.contains("connection refused")
            && message.contains("is postgres running, and listening on that address and port?")
            && !message.contains("scripts/"),
        "unclear error: {message}"
    );
}

#[tokio::test]
async fn malformed_urls_are_clear_errors_without_the_password() {
    for url in [
        "http://postgres:hunter2@127.0.0.1:5432/test",
        "127.0.0.1:5432",
        "postgres://postgres:hunter2@127.0.0.1:notaport/test",
        "redis://127.0.0.1:6379",
    ] {
        let message = PostgresLock::connect(url).await.unwrap_err().to_string();
        assert!(
            message.starts_with("invalid PostgreSQL URL `") && message.contains("postgres://"),
            "{url}: unclear error: {message}"
        );
        assert!(
            !message.contains("hunter2"),
            "password in the error: {message}"
        );
    }
}

#[tokio::test]
async fn a_missing_database_is_a_clear_error() {
    let options: PgConnectOptions = postgres_url().parse().unwrap();
    let url = options.database("tg_no_such_database").to_url_lossy();
    let message = PostgresLock::connect(url.as_str())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("/tg_no_such_database")
            && message.contains("does not exist")
            && message.contains("create the database"),
        "unclear error: {message}"
    );
}

#[tokio::test]
async fn builder_fails_at_build_with_the_clear_error() {
    let e = Scheduler::builder()
        .discover(false)
        .postgres_lock("postgres://postgres@127.0.0.1:1/test")
        .build()
        .await
        .err()
        .expect("built a scheduler on a closed port");
    assert!(matches!(e, Error::Lock(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("cannot reach PostgreSQL at 127.0.0.1:1/test"),
        "{e}"
    );

    let e = Scheduler::builder()
        .discover(false)
        .postgres_lock(postgres_url())
        .lock_backend(InProcessLock::new())
        .build()
        .await
        .err()
        .expect("two lock backends accepted");
    assert!(matches!(e, Error::Config(_)), "{e:?}");

    let e = Scheduler::builder()
        .discover(false)
        .redis("redis://127.0.0.1:6379")
        .postgres_lock(postgres_url())
        .build()
        .await
        .err()
        .expect("two lock backends accepted");
    assert!(
        matches!(&e, Error::Config(m) if m.contains(".redis(..)") && m.contains(".postgres_lock(..)")),
        "{e:?}"
    );
}

#[tokio::test]
async fn creates_its_table_and_describes_the_server_without_password() {
    let admin = admin().await;
    let schema = unique("table");
    let lock = lock_in(&schema, &postgres_url()).await;
    assert_eq!(lock.schema(), schema);
    let options: PgConnectOptions = postgres_url().parse().unwrap();
    assert_eq!(
        lock.describe(),
        format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        ),
        "described with a password, or not at all"
    );
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = 'tickguard_locks' ORDER BY ordinal_position",
    )
    .bind(&schema)
    .fetch_all(&admin)
    .await
    .unwrap();
    let columns: Vec<(&str, &str)> = columns
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("name", "text"),
            ("owner", "text"),
            ("token", "bigint"),
            ("expires_at", "timestamp with time zone")
        ]
    );
    // Connecting again (another instance starting) finds the table and changes nothing.
    let again = lock_in(&schema, &postgres_url()).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    assert!(
        again
            .acquire("a", "owner-2", TTL)
            .await
            .unwrap()
            .lease()
            .is_none(),
        "a second connection to the same schema does not see the lease"
    );
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    assert!(
        row(&admin, &schema, "a").await.is_none(),
        "release left the row"
    );
    drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn many_instances_starting_at_once_create_the_table_once() {
    let admin = admin().await;
    let schema = unique("race");
    let url = postgres_url();
    let mut starting = JoinSet::new();
    for _ in 0..8 {
        let (schema, url) = (schema.clone(), url.clone());
        starting.spawn(async move { PostgresLock::connect_with_schema(&url, &schema).await });
    }
    while let Some(started) = starting.join_next().await {
        started
            .unwrap()
            .unwrap_or_else(|e| panic!("a concurrent start failed: {e}"));
    }
    drop_schema(&admin, &schema).await;
}

/// A database user with no right to create anything works on a table created beforehand,
/// and one without rights on the table gets an error that says which to grant.
#[tokio::test]
async fn a_table_created_beforehand_needs_only_usage_and_dml_rights() {
    let admin = admin().await;
    let schema = unique("grants");
    let role = unique("role");
    // Created by the administrator, as the locks page's Postgres section shows.
    lock_in(&schema, &postgres_url()).await;
    sqlx::query(AssertSqlSafe(format!("CREATE ROLE \"{role}\" LOGIN")))
        .execute(&admin)
        .await
        .unwrap();
    let options: PgConnectOptions = postgres_url().parse().unwrap();
    let as_role = options.username(&role).to_url_lossy().to_string();

    let refused = || async {
        PostgresLock::connect_with_schema(&as_role, &schema)
            .await
            .expect_err("connected without the rights")
            .to_string()
    };
    let grant = |grant: String| async {
        sqlx::query(AssertSqlSafe(grant))
            .execute(&admin)
            .await
            .unwrap();
    };
    let e = refused().await;
    assert!(
        e.contains("permission denied")
            && e.contains("USAGE on the schema")
            && e.contains("https://docs.rs/tickguard/latest/tickguard/docs/locks/index.html")
            && !e.contains(".md"),
        "unclear error: {e}"
    );
    grant(format!("GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\"")).await;
    let e = refused().await;
    assert!(
        e.contains("permission denied")
            && e.contains("grant this user SELECT, INSERT, UPDATE, DELETE on the table"),
        "unclear error: {e}"
    );
    grant(format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON \"{schema}\".tickguard_locks TO \"{role}\""
    ))
    .await;
    let lock = PostgresLock::connect_with_schema(&as_role, &schema)
        .await
        .unwrap_or_else(|e| panic!("the usage and DML rights were not enough: {e}"));
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    assert!(lock.extend(&lease, TTL).await.unwrap());
    assert!(
        lock.release(&lease, Duration::from_millis(100))
            .await
            .unwrap()
    );
    lock.pool().close().await;
    drop_schema(&admin, &schema).await;
    sqlx::query(AssertSqlSafe(format!("DROP ROLE \"{role}\"")))
        .execute(&admin)
        .await
        .unwrap();
}

/// `from_pool` and `with_schema` create the table on the first operation, and any schema
/// name is quoted, not spliced into the SQL.
#[tokio::test]
async fn a_pool_and_an_odd_schema_name_work() {
    let admin = admin().await;
    let schema = format!("tg_test_\"Odd\"; Name_{}_{}", std::process::id(), nanos());
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(&postgres_url())
        .unwrap();
    let lock = PostgresLock::from_pool(pool).with_schema(schema.clone());
    assert_eq!(lock.schema(), schema);
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    let found: bool = sqlx::query_scalar(
        "SELECT to_regclass(format('%I.tickguard_locks', $1::text)) IS NOT NULL",
    )
    .bind(&schema)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(found, "no table in schema {schema:?}");
    assert!(lock.extend(&lease, TTL).await.unwrap());
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    // ensure_table after the fact is a no-op.
    lock.ensure_table().await.unwrap();
    drop_schema(&admin, &schema).await;
}

/// Every instant is the database's: the lease's `expires_at` is the server's `now()` plus the
/// ttl, after acquire, extend and an `at_least` release alike.
#[tokio::test]
async fn expiry_is_judged_by_the_database_clock() {
    let admin = admin().await;
    let schema = unique("clock");
    let lock = lock_in(&schema, &postgres_url()).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    let (owner, token, left) = row(&admin, &schema, "a").await.unwrap();
    assert_eq!(owner, "owner-1");
    assert_eq!(token as u64, lease.token);
    assert!((29.0..=30.0).contains(&left), "expires in {left} s, not 30");

    assert!(lock.extend(&lease, Duration::from_secs(90)).await.unwrap());
    let (_, _, left) = row(&admin, &schema, "a").await.unwrap();
    assert!((89.0..=90.0).contains(&left), "expires in {left} s, not 90");

    // A lease that the database's clock says has expired is free, whatever the ttl was.
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE \"{schema}\".tickguard_locks SET expires_at = clock_timestamp() WHERE name = 'a'"
    )))
    .execute(&admin)
    .await
    .unwrap();
    assert!(
        !lock.extend(&lease, TTL).await.unwrap(),
        "extended a lease the database's clock says has expired"
    );
    let next = lock.acquire("a", "owner-2", TTL).await.unwrap().lease();
    assert!(
        next.is_some(),
        "a lease expired by the database's clock is still held"
    );
    drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn at_least_leaves_a_tombstone_that_expires() {
    let admin = admin().await;
    let schema = unique("tombstone");
    let lock = lock_in(&schema, &postgres_url()).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    assert!(
        lock.release(&lease, Duration::from_millis(400))
            .await
            .unwrap()
    );
    let (owner, _, left) = row(&admin, &schema, "a").await.unwrap();
    assert_eq!(owner, "released:owner-1");
    assert!(
        (0.0..=0.4).contains(&left),
        "the tombstone expires in {left} s"
    );
    // Nobody can use the tombstone: not the old handle, not a new owner.
    assert!(!lock.extend(&lease, TTL).await.unwrap());
    assert!(!lock.release(&lease, Duration::ZERO).await.unwrap());
    assert!(
        lock.acquire("a", "owner-2", TTL)
            .await
            .unwrap()
            .lease()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        lock.acquire("a", "owner-2", TTL)
            .await
            .unwrap()
            .lease()
            .is_some()
    );
    drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn a_lease_with_the_same_owner_but_another_token_is_refused() {
    // Two instances misconfigured with one instance id make equal owner strings; the token
    // still tells their leases apart.
    let admin = admin().await;
    let schema = unique("token");
    let lock = lock_in(&schema, &postgres_url()).await;
    let lease = lock
        .acquire("a", "same-owner", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    let forged = Lease {
        token: lease.token ^ 1,
        ..lease.clone()
    };
    assert!(!lock.extend(&forged, TTL).await.unwrap());
    assert!(!lock.release(&forged, Duration::ZERO).await.unwrap());
    assert!(
        lock.acquire("a", "same-owner", TTL)
            .await
            .unwrap()
            .lease()
            .is_none(),
        "the same owner acquired a held lock again"
    );
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    drop_schema(&admin, &schema).await;
}

/// The pids of the server processes serving connections named `application_name`.
async fn backends(admin: &PgPool, application_name: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid")
        .bind(application_name)
        .fetch_all(admin)
        .await
        .unwrap()
}

/// Terminates every connection named `application_name` and waits until those are gone
/// (the pool may open fresh ones meanwhile); returns how many there were.
async fn terminate(admin: &PgPool, application_name: &str) -> usize {
    let terminated = backends(admin, application_name).await;
    // By pid, so that no filter order of the planner's can terminate anyone else.
    sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid")
        .bind(&terminated)
        .execute(admin)
        .await
        .unwrap();
    for _ in 0..100 {
        let left = backends(admin, application_name).await;
        if !left.iter().any(|pid| terminated.contains(pid)) {
            return terminated.len();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the connections {terminated:?} of {application_name} outlived pg_terminate_backend by 2 s"
    );
}

/// An administrator terminates every connection of the lock's pool while a lease is held
/// (`pg_terminate_backend`): the lease is a row, not a session, so it survives; the next
/// renewal goes through on a fresh connection (or at worst reports an error), and the
/// renewal after it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_replaced_and_the_lease_survives() {
    let admin = admin().await;
    let schema = unique("terminate");
    let app = unique("app");
    let lock = lock_in(&schema, &url_named(&app)).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();
    // Several connections in the pool, all of them idle.
    let (a, b, c) = tokio::join!(
        lock.extend(&lease, TTL),
        lock.extend(&lease, TTL),
        lock.extend(&lease, TTL)
    );
    assert!(a.unwrap() && b.unwrap() && c.unwrap());
    let before = backends(&admin, &app).await;
    assert!(!before.is_empty(), "the pool has no connection named {app}");

    for round in 0..3 {
        assert!(terminate(&admin, &app).await > 0);
        match lock.extend(&lease, TTL).await {
            Ok(extended) => assert!(extended, "round {round}: the lease was lost"),
            Err(e) => assert!(
                e.to_string().contains("PostgreSQL at"),
                "round {round}: the error does not name the server: {e}"
            ),
        }
        assert!(
            lock.extend(&lease, TTL).await.unwrap(),
            "round {round}: the renewal after the termination failed"
        );
        let after = backends(&admin, &app).await;
        assert!(
            !after.is_empty() && after.iter().all(|pid| !before.contains(pid)),
            "round {round}: no fresh connection: {before:?} -> {after:?}"
        );
    }
    assert!(
        lock.acquire("a", "owner-2", TTL)
            .await
            .unwrap()
            .lease()
            .is_none(),
        "the lease vanished with its connections"
    );
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    drop_schema(&admin, &schema).await;
}

/// A renewal's connection is terminated while the statement runs (it waits on a row lock an
/// administrator holds): the statement is sent again on a fresh connection and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_whose_connection_is_terminated_is_sent_again() {
    let admin = admin().await;
    let schema = unique("midway");
    let app = unique("app");
    let lock = lock_in(&schema, &url_named(&app)).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();

    let mut blocker = admin.begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT 1 FROM \"{schema}\".tickguard_locks WHERE name = 'a' FOR UPDATE"
    )))
    .execute(&mut *blocker)
    .await
    .unwrap();
    let renewal = tokio::spawn({
        let (lock, lease) = (lock.clone(), lease.clone());
        async move { lock.extend(&lease, TTL).await }
    });
    let waiting = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
            )
            .bind(&app)
            .fetch_one(&admin)
            .await
            .unwrap();
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the renewal never waited on the row lock");
    terminate(&admin, &app).await;
    blocker.rollback().await.unwrap();
    let extended = tokio::time::timeout(Duration::from_secs(10), renewal)
        .await
        .expect("the renewal hung")
        .unwrap();
    assert!(
        extended.unwrap_or_else(|e| panic!("the renewal was not sent again: {e}")),
        "the lease was lost"
    );
    assert!(lock.extend(&lease, TTL).await.unwrap());
    drop_schema(&admin, &schema).await;
}

/// A TCP proxy to the test server on `port`, so a test can take "the server" away and bring
/// it back. Stopping it drops every connection through it.
struct Proxy {
    port: u16,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16) -> Self {
        let target: PgConnectOptions = postgres_url().parse().unwrap();
        let target = format!("{}:{}", target.get_host(), target.get_port());
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, task }
    }

    fn url(&self) -> String {
        let options: PgConnectOptions = postgres_url().parse().unwrap();
        options
            .host("127.0.0.1")
            .port(self.port)
            .to_url_lossy()
            .to_string()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The server goes away under a connected lock: every operation fails within the pool's
/// acquire timeout (3 s) with an error that names the server (no panic, no hang), and once
/// the server is back the very next operation works, on the same lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_while_the_server_is_away_then_recovers() {
    let admin = admin().await;
    let schema = unique("outage");
    let port = tickguard_tests::free_port();
    let proxy = Proxy::start(port).await;
    let lock = lock_in(&schema, &proxy.url()).await;
    let lease = lock
        .acquire("a", "owner-1", TTL)
        .await
        .unwrap()
        .lease()
        .unwrap();

    // Away between two calls, back before the next: unnoticed.
    proxy.stop().await;
    let proxy = Proxy::start(port).await;
    assert!(
        lock.extend(&lease, TTL)
            .await
            .unwrap_or_else(|e| panic!("the first call after a restart failed: {e}")),
        "the lease was lost"
    );

    proxy.stop().await;
    let started = Instant::now();
    let (acquire, extend, release) = tokio::join!(
        lock.acquire("b", "owner-2", TTL),
        lock.extend(&lease, TTL),
        lock.release(&lease, Duration::ZERO)
    );
    let took = started.elapsed();
    for (what, error) in [
        ("acquire", acquire.err()),
        ("extend", extend.err()),
        ("release", release.err()),
    ] {
        let error = error.unwrap_or_else(|| panic!("{what} succeeded with the server away"));
        let message = error.to_string();
        assert!(
            message.contains(&format!("127.0.0.1:{port}"))
                && message.contains("is postgres running"),
            "{what}: unclear error: {message}"
        );
    }
    assert!(
        took < Duration::from_secs(5),
        "three failing calls took {took:?}"
    );

    let _proxy = Proxy::start(port).await;
    assert!(
        lock.extend(&lease, TTL)
            .await
            .unwrap_or_else(|e| panic!("the first call after the server came back failed: {e}")),
        "the lease was lost"
    );
    assert!(lock.release(&lease, Duration::ZERO).await.unwrap());
    drop_schema(&admin, &schema).await;
}

/// Two schedulers, each with its own in-memory store (so only the lock keeps them apart),
/// share one Postgres lock through `.postgres_lock(url)`: each tick of a job due every second
/// runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_share_the_lock_and_each_tick_runs_once() {
    let name = unique("e2e");
    tickguard_tests::two_schedulers_share_the_lock(&name, |b| b.postgres_lock(postgres_url()))
        .await;
    // The builder's lock lives in `public`: leave no tombstone there.
    sqlx::query("DELETE FROM public.tickguard_locks WHERE name = $1")
        .bind(&name)
        .execute(&admin().await)
        .await
        .unwrap();
}

/// The lock and the store connecting at once to a schema that does not exist yet both
/// create it: each start succeeds, twenty times over.
#[tokio::test]
async fn a_lock_and_a_store_connecting_at_once_to_a_new_schema_both_start() {
    let admin = admin().await;
    let url = postgres_url();
    let mut schemas = Vec::new();
    for round in 0..20 {
        let schema = unique(&format!("race_{round}"));
        let (lock, store) = tokio::join!(
            PostgresLock::connect_with_schema(&url, &schema),
            tickguard::store::PostgresStore::connect_with_schema(&url, &schema),
        );
        schemas.push(schema);
        let lock = lock.unwrap_or_else(|e| panic!("round {round}: the lock failed: {e:?}"));
        let store = store.unwrap_or_else(|e| panic!("round {round}: the store failed: {e:?}"));
        lock.pool().close().await;
        store.pool().close().await;
    }
    for schema in &schemas {
        drop_schema(&admin, schema).await;
    }
}
