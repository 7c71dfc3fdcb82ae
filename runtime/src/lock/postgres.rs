use std::{fmt, sync::Arc, time::Duration};

use sqlx::{
    AssertSqlSafe, Connection, Error as SqlxError,
    postgres::{PgConnection, PgPool, PgPoolOptions},
};
use tokio::sync::OnceCell;

use crate::{
    future::BoxFuture,
    lock::{Acquired, Lease, LockBackend, LockError},
    postgres::{
        ACQUIRE_TIMEOUT, Failure, address, already_exists, connect, connection_lost, describe,
        hint, parse_url, quote, reason,
    },
};

/// Connections in the pool that [`PostgresLock::connect`] opens. Lock operations are one
/// short statement each; more connections would only sit idle on the server.
const MAX_CONNECTIONS: u32 = 4;

/// The key of the transaction-scoped advisory lock that serialises the creation of the table
/// across instances starting at once (the ASCII of `tickgrd!`). It is held only for the
/// creating transaction, never for a lease.
const SETUP_LOCK_KEY: i64 = 0x7469_636b_6772_6421;

/// The longest ttl sent to the server, in microseconds (about 142 years, and exact as the
/// float8 that `$4 * interval '1 microsecond'` computes with).
const MAX_MICROS: i64 = 1 << 52;

/// Leases held as rows of a PostgreSQL table, for many instances without Redis (feature
/// `postgres`).
///
/// Each lock is a row of `{schema}.tickguard_locks(name text primary key, owner text not null,
/// token bigint not null, expires_at timestamptz not null)`, and every operation is one
/// statement that judges expiry by the **database's** clock (`clock_timestamp()`), never by
/// the instances' clocks:
///
/// - **acquire** inserts the row, or takes over one whose `expires_at` has passed
///   (`INSERT .. ON CONFLICT (name) DO UPDATE .. WHERE expires_at <= clock_timestamp()`);
/// - **extend** moves `expires_at` if the row still holds this lease's owner and token and
///   has not expired;
/// - **release** deletes the row, or, with `hold_for > 0` (`at_least`), renames its owner to
///   `released:{owner}` and lets it expire after `hold_for`: the lock stays taken until then,
///   and the old handle can neither extend nor release it again.
///
/// The token is random per acquisition (the [`Lease::token`]), so two instances
/// misconfigured with the same instance id still cannot act on each other's leases. No
/// session-level advisory lock is involved: a lease does not depend on any connection
/// staying open, so it survives a pool that recycles connections, and it never vanishes
/// silently with one.
///
/// Statements go through a [`PgPool`]. An operation whose connection turns out to be dead
/// (the server restarted, or an administrator ran `pg_terminate_backend`) is sent once more
/// on a fresh connection; while the server is unreachable every operation fails with a
/// [`LockError`] within the pool's acquire timeout, and the executor then skips the tick (or,
/// for a renewal, retries until the lease can no longer be proven alive, then cancels the
/// run).
///
/// ```no_run
/// # async fn f() -> Result<(), tickguard::Error> {
/// use tickguard::{Scheduler, lock::PostgresLock};
///
/// let lock = PostgresLock::connect("postgres://app@10.0.0.7/app").await?;
/// let scheduler = Scheduler::builder().lock_backend(lock).build().await?;
/// # let _ = scheduler; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresLock {
    pool: PgPool,
    schema: String,
    sql: Arc<Statements>,
    /// Set once the table is known to exist in `schema`.
    ready: Arc<OnceCell<()>>,
    description: String,
}

impl fmt::Debug for PostgresLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLock")
            .field("server", &self.description)
            .field("table", &self.sql.table)
            .finish_non_exhaustive()
    }
}

impl PostgresLock {
    /// The schema of the table unless [`PostgresLock::with_schema`] or
    /// [`PostgresLock::connect_with_schema`] names another.
    pub const DEFAULT_SCHEMA: &'static str = "public";

    /// The table's name, in whichever schema.
    pub const TABLE: &'static str = "tickguard_locks";

    /// Connects to the PostgreSQL server at `url`
    /// (`postgres://[user[:password]@]host[:port]/database[?param=value&..]`, the libpq URL
    /// format) and creates the table in schema `public` if it does not exist yet.
    ///
    /// Fails with an error naming the address and what to check when the URL is malformed,
    /// the server cannot be reached within 5 s, it refuses the credentials or the database,
    /// or the table cannot be created. The pool holds at most 4 connections, opened on
    /// demand, named `tickguard` in `pg_stat_activity` unless the URL sets
    /// `application_name`; an operation waits at most 3 s for one.
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::connect_with_schema(url, Self::DEFAULT_SCHEMA).await
    }

    /// [`PostgresLock::connect`] with the table in `schema` instead of `public`; the schema
    /// is created if it does not exist. The name is used verbatim, as a quoted identifier
    /// (`"Billing"` and `billing` are two schemas), so any name is safe to pass.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, LockError> {
        let options = parse_url(url).map_err(LockError::new)?;
        let addr = address(&options);
        let sql = Arc::new(Statements::new(schema));
        let mut conn = connect(&options).await?;
        // The table is created on this first connection, so that an error in the setup
        // (no privilege on the schema, say) surfaces here rather than at the first tick.
        let created = create_table(&mut conn, &sql).await;
        let _ = conn.close().await;
        created.map_err(|e| setup_error(&addr, &sql, e))?;
        let description = describe(&options);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            schema: schema.to_owned(),
            sql,
            ready: Arc::new(OnceCell::new_with(Some(()))),
            description,
        })
    }

    /// Uses a ready pool (for connection settings beyond what a URL says, or to share the
    /// application's pool). Nothing is checked here: the table is created in schema `public`
    /// (or the one [`PostgresLock::with_schema`] names) on the first operation, or by
    /// [`PostgresLock::ensure_table`], which reports errors at once. The pool's own
    /// settings apply: with sqlx's defaults, an operation waits up to 30 s for a connection
    /// while the server is down, where [`PostgresLock::connect`] waits 3 s.
    pub fn from_pool(pool: PgPool) -> Self {
        let description = describe(&pool.connect_options());
        Self {
            pool,
            schema: Self::DEFAULT_SCHEMA.to_owned(),
            sql: Arc::new(Statements::new(Self::DEFAULT_SCHEMA)),
            ready: Arc::new(OnceCell::new()),
            description,
        }
    }

    /// Keeps the locks in `schema` instead of `public`. The name is used verbatim, as a
    /// quoted identifier (`"Billing"` and `billing` are two schemas), so any name is safe to
    /// pass. The table (and the schema, if missing) is created on the first operation, or by
    /// [`PostgresLock::ensure_table`]. Instances that share jobs must share the schema.
    ///
    /// [`PostgresLock::connect`] has already created the table in `public`; to keep `public`
    /// untouched, use [`PostgresLock::connect_with_schema`] instead.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self.sql = Arc::new(Statements::new(&self.schema));
        self.ready = Arc::new(OnceCell::new());
        self
    }

    /// The schema of the table (see [`PostgresLock::with_schema`]).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The pool the lock's statements go through.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the schema and the table if they do not exist yet, and checks the table has
    /// the expected columns. Runs once per lock; [`PostgresLock::connect`] has already done
    /// it, [`PostgresLock::from_pool`] and [`PostgresLock::with_schema`] do it on the first
    /// operation unless this is called first.
    ///
    /// Concurrent calls from many instances are safe: the creation runs in a transaction
    /// under a transaction-scoped advisory lock. If the table already exists, nothing is
    /// created: for a table created beforehand, `USAGE` on the schema and `SELECT, INSERT,
    /// UPDATE, DELETE` on the table are all the user needs.
    pub async fn ensure_table(&self) -> Result<(), LockError> {
        self.ready
            .get_or_try_init(|| async {
                let addr = address(&self.pool.connect_options());
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| self.error("the table's setup", None, e))?;
                create_table(&mut conn, &self.sql)
                    .await
                    .map_err(|e| setup_error(&addr, &self.sql, e))
            })
            .await
            .map(|_| ())
    }

    /// Runs a statement, and once more if its connection turned out to be dead (closed by
    /// the server, reset, terminated by an administrator): the pool then hands out a fresh
    /// connection. This happens on the first statement after the server restarted however
    /// long ago, and without the second try that statement would fail.
    ///
    /// The first attempt may have been applied before its connection died. Extend is
    /// idempotent; a repeated release reports the lease gone, which the executor only logs;
    /// a repeated acquire recognises its own row by the token (see the statement).
    async fn run<T, Fut>(&self, statement: impl Fn() -> Fut) -> Result<T, SqlxError>
    where
        Fut: Future<Output = Result<T, SqlxError>>,
    {
        match statement().await {
            Err(e) if connection_lost(&e) => statement().await,
            other => other,
        }
    }

    fn error(&self, what: &str, name: Option<&str>, e: SqlxError) -> LockError {
        let on = name.map(|n| format!(" of lock `{n}`")).unwrap_or_default();
        let hint = hint(
            &e,
            "the lock table is gone: restart the instance to create it again",
            "the lock table",
        );
        let reason = match &e {
            SqlxError::PoolTimedOut => format!(
                "no connection within {:?}",
                self.pool.options().get_acquire_timeout()
            ),
            e => reason(e),
        };
        LockError::with_source(
            format!(
                "PostgreSQL at {}: {what}{on} failed: {reason}{hint}",
                self.description
            ),
            e,
        )
    }
}

/// The statements, with the table's name quoted in.
struct Statements {
    /// `"schema".tickguard_locks`
    table: String,
    /// `"schema"`
    schema: String,
    create: String,
    check: String,
    acquire: Arc<str>,
    extend: Arc<str>,
    delete: Arc<str>,
    hold: Arc<str>,
}

impl Statements {
    fn new(schema: &str) -> Self {
        let schema = quote(schema);
        let table = format!("{schema}.{}", PostgresLock::TABLE);
        // `$4` is a duration in microseconds (int8, computed as float8 by the interval
        // product): durations travel as numbers, and every instant is the server's.
        let expiry = "clock_timestamp() + $4 * interval '1 microsecond'";
        Self {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 name text PRIMARY KEY, \
                 owner text NOT NULL, \
                 token bigint NOT NULL, \
                 expires_at timestamptz NOT NULL)"
            ),
            check: format!("SELECT name, owner, token, expires_at FROM {table} WHERE false"),
            // Takes a free or expired lock. Also matches the row of this very acquisition
            // (same owner and random token), so that a retry after a connection died under
            // the first attempt finds the lease it took instead of refusing it. When the
            // lock is not taken, the outer query answers with the holder: it reads the
            // table as it was before the statement, which is the live holder's row.
            acquire: format!(
                "WITH taken AS (\
                   INSERT INTO {table} AS held (name, owner, token, expires_at) \
                   VALUES ($1, $2, $3, {expiry}) \
                   ON CONFLICT (name) DO UPDATE \
                   SET owner = EXCLUDED.owner, token = EXCLUDED.token, \
                       expires_at = EXCLUDED.expires_at \
                   WHERE held.expires_at <= clock_timestamp() \
                      OR (held.owner = EXCLUDED.owner AND held.token = EXCLUDED.token) \
                   RETURNING token) \
                 SELECT (SELECT token FROM taken), \
                        (SELECT owner FROM {table} WHERE name = $1)"
            )
            .into(),
            extend: format!(
                "UPDATE {table} SET expires_at = {expiry} \
                 WHERE name = $1 AND owner = $2 AND token = $3 \
                   AND expires_at > clock_timestamp()"
            )
            .into(),
            delete: format!(
                "DELETE FROM {table} \
                 WHERE name = $1 AND owner = $2 AND token = $3 \
                   AND expires_at > clock_timestamp()"
            )
            .into(),
            // The tombstone: owned by nobody (no handle's owner starts with `released:` and
            // has this token), taken until `hold_for` has passed.
            hold: format!(
                "UPDATE {table} SET owner = 'released:' || owner, expires_at = {expiry} \
                 WHERE name = $1 AND owner = $2 AND token = $3 \
                   AND expires_at > clock_timestamp()"
            )
            .into(),
            table,
            schema,
        }
    }
}

/// Creates the schema and the table unless they exist, then checks the table's columns.
async fn create_table(conn: &mut PgConnection, sql: &Statements) -> Result<(), SetupError> {
    create(conn, sql).await.map_err(SetupError::Create)?;
    // A table created by hand with another shape, or without the privileges, fails here.
    sqlx::query(AssertSqlSafe(sql.check.as_str()))
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map_err(SetupError::Check)?;
    Ok(())
}

/// Which step of the table's setup failed.
enum SetupError {
    Create(SqlxError),
    Check(SqlxError),
}

async fn create(conn: &mut PgConnection, sql: &Statements) -> Result<(), SqlxError> {
    if !table_exists(conn, sql).await? {
        crate::postgres::create_schema(conn, &sql.schema).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SETUP_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        // Another instance may have created it while we waited for the advisory lock.
        if !table_exists(&mut tx, sql).await? {
            sqlx::query(AssertSqlSafe(sql.create.as_str()))
                .persistent(false)
                .execute(&mut *tx)
                .await
                .or_else(already_exists)?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn table_exists(conn: &mut PgConnection, sql: &Statements) -> Result<bool, SqlxError> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&sql.table)
        .fetch_one(conn)
        .await
}

impl From<Failure> for LockError {
    fn from(failure: Failure) -> Self {
        match failure.source {
            Some(source) => Self::with_source(failure.message, source),
            None => Self::new(failure.message),
        }
    }
}

/// The lease's token as stored: the same 64 bits, as `bigint`.
fn db_token(token: u64) -> i64 {
    i64::from_ne_bytes(token.to_ne_bytes())
}

/// A duration in whole microseconds, rounded up and capped (see [`MAX_MICROS`]).
fn micros(d: Duration) -> i64 {
    let us = d.as_nanos().div_ceil(1_000).max(1);
    i64::try_from(us).unwrap_or(i64::MAX).min(MAX_MICROS)
}

impl LockBackend for PostgresLock {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        Box::pin(async move {
            self.ensure_table().await?;
            let token = fastrand::u64(1..);
            let (taken, holder): (Option<i64>, Option<String>) = self
                .run(|| {
                    sqlx::query_as(AssertSqlSafe(self.sql.acquire.clone()))
                        .bind(name)
                        .bind(owner)
                        .bind(db_token(token))
                        .bind(micros(ttl))
                        .fetch_one(&self.pool)
                })
                .await
                .map_err(|e| self.error("acquire", Some(name), e))?;
            Ok(match taken {
                Some(_) => Acquired::Lease(Lease {
                    name: name.to_owned(),
                    owner: owner.to_owned(),
                    token,
                }),
                None => Acquired::Held { holder },
            })
        })
    }

    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(async move {
            self.ensure_table().await?;
            let done = self
                .run(|| {
                    sqlx::query(AssertSqlSafe(self.sql.extend.clone()))
                        .bind(&lease.name)
                        .bind(&lease.owner)
                        .bind(db_token(lease.token))
                        .bind(micros(ttl))
                        .execute(&self.pool)
                })
                .await
                .map_err(|e| self.error("extend", Some(&lease.name), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(async move {
            self.ensure_table().await?;
            let done = if hold_for.is_zero() {
                self.run(|| {
                    sqlx::query(AssertSqlSafe(self.sql.delete.clone()))
                        .bind(&lease.name)
                        .bind(&lease.owner)
                        .bind(db_token(lease.token))
                        .execute(&self.pool)
                })
                .await
            } else {
                self.run(|| {
                    sqlx::query(AssertSqlSafe(self.sql.hold.clone()))
                        .bind(&lease.name)
                        .bind(&lease.owner)
                        .bind(db_token(lease.token))
                        .bind(micros(hold_for))
                        .execute(&self.pool)
                })
                .await
            }
            .map_err(|e| self.error("release", Some(&lease.name), e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The startup error: connected, but the table could not be created or used.
fn setup_error(addr: &str, sql: &Statements, e: SetupError) -> LockError {
    let (creating, e) = match e {
        SetupError::Create(e) => (true, e),
        SetupError::Check(e) => (false, e),
    };
    let code = match &e {
        SqlxError::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let check = match code.as_deref() {
        // insufficient_privilege
        Some("42501") if creating => {
            "either create the table beforehand (its statement is in the lock's guide: \
             https://docs.rs/tickguard/latest/tickguard/docs/locks/index.html#postgres) and \
             grant this user USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on the \
             table, or grant it CREATE on the schema (and on the database, if the schema is \
             missing)"
        }
        Some("42501") => "grant this user SELECT, INSERT, UPDATE, DELETE on the table",
        // undefined_column
        Some("42703") => {
            "the table exists with other columns: drop it, or rename it and let tickguard \
             create it (its shape: \
             https://docs.rs/tickguard/latest/tickguard/docs/locks/index.html#postgres)"
        }
        Some(_) => {
            "check the table against \
             https://docs.rs/tickguard/latest/tickguard/docs/locks/index.html#postgres"
        }
        None => "is postgres running and reachable?",
    };
    LockError::with_source(
        format!(
            "PostgreSQL at {addr}: cannot set up the lock table {}: {}; {check}",
            sql.table,
            reason(&e)
        ),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        let sql = Statements::new("My\"Schema");
        assert_eq!(sql.table, "\"My\"\"Schema\".tickguard_locks");
    }

    #[test]
    fn rounds_micros_up_and_keeps_tokens() {
        assert_eq!(micros(Duration::ZERO), 1);
        assert_eq!(micros(Duration::from_nanos(1_500)), 2);
        assert_eq!(micros(Duration::from_secs(30)), 30_000_000);
        assert_eq!(micros(Duration::MAX), MAX_MICROS);
        assert_eq!(db_token(u64::MAX), -1);
        assert_eq!(db_token(7), 7);
    }
}
