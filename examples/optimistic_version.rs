//! Optimistic locking, the version-column pattern (JPA's `@Version`), inside the job's
//! fenced transaction: two jobs, on any number of instances, update the same rows, and no
//! update is lost, not even one from a run that was paused past its lease.
//!
//! ```text
//! cargo run -p tickguard-examples --example optimistic_version -- 20
//! cargo run -p tickguard-examples --example optimistic_version -- \
//!     --postgres postgres://postgres@127.0.0.1/test      # in two terminals: two instances
//! ```
//!
//! Every account row has a `version`. A writer reads the row and its version, computes, and
//! writes back only if the version is still the one it read:
//!
//! ```sql
//! UPDATE accounts SET balance = $1, version = version + 1 WHERE id = $2 AND version = $3
//! ```
//!
//! Zero rows updated means someone else changed the row in between: the writer reads it
//! again and recomputes, instead of overwriting the other's update (the lost update two
//! read-modify-write cycles make without the check). Here `apply_interest` and
//! `charge_fees` race on the same three accounts every two seconds, from every instance: the
//! log shows `version changed under us` when they collide.
//!
//! The version protects a row against other writers; it cannot tell a live run from a
//! stale one. A run paused past its lease (SIGSTOP, a long GC pause, a frozen VM) whose
//! execution another instance took over would, on waking, still hold a version it read
//! and could write its update a second time. That is why each update runs in
//! `ctx.transaction()`: the commit checks the run's fence in the same transaction and
//! refuses a stale run, so its update, its ledger entry and its progress are all rolled
//! back. The progress (`tx.checkpoint`) commits with the update, so a retried or resumed run
//! starts at the next account and credits none twice.
//!
//! Copying it: keep the version check in every writer of the table (the web application's
//! too), retry a conflict a bounded number of times, and keep the transaction short. The
//! same SQL runs on SQLite (the default here, where a transaction holds the file's write
//! lock, so writers queue instead of colliding) and PostgreSQL; a service on one database
//! drops the generic parameter and names its own (`ctx.transaction::<sqlx::Postgres>()`).

use std::time::Duration;

use tickguard::{
    JobContext, JobError, JobResult, ResultExt, State, scheduled,
    sqlx::{
        self, AssertSqlSafe, Database, Executor, FromRow, IntoArguments, Pool, Postgres, Sqlite,
    },
    store::FencedDatabase,
};
use tickguard_examples::{Options, init_logging};

/// The accounts both jobs update.
const ACCOUNTS: i64 = 3;
/// Conflicts one update may meet before the run gives up (and is retried).
const MAX_CONFLICTS: u32 = 10;

/// Where the application's tables are, and on which database.
#[derive(Clone, Debug)]
struct Tables {
    postgres: bool,
    /// `accounts (id, balance, version)`.
    accounts: String,
    /// `account_entries (account_id, job, execution_id, fence, amount, version)`: one row
    /// per update, in the same transaction.
    entries: String,
}

/// Every two seconds, credits 10 to every account.
#[scheduled(
    every = "2s",
    lock(ttl = "2s"),
    idempotent,
    retry(attempts = 3, backoff = "200ms")
)]
async fn apply_interest(ctx: &JobContext, State(tables): State<Tables>) -> JobResult {
    update_accounts(ctx, &tables, 10).await
}

/// Every two seconds, debits 3 from every account: the same rows as `apply_interest`, at the
/// same moments.
#[scheduled(
    every = "2s",
    lock(ttl = "2s"),
    idempotent,
    retry(attempts = 3, backoff = "200ms")
)]
async fn charge_fees(ctx: &JobContext, State(tables): State<Tables>) -> JobResult {
    update_accounts(ctx, &tables, -3).await
}

/// Adds `amount` to every account not yet updated by this execution.
async fn update_accounts(ctx: &JobContext, tables: &Tables, amount: i64) -> JobResult {
    let first: i64 = ctx.last_checkpoint().await?.unwrap_or(1);
    for account in first..=ACCOUNTS {
        if tables.postgres {
            update_account::<Postgres>(ctx, tables, account, amount).await?;
        } else {
            update_account::<Sqlite>(ctx, tables, account, amount).await?;
        }
    }
    Ok(())
}

/// Adds `amount` to `account` with the version check, in one fenced transaction with its
/// ledger entry and the run's progress; reads again on a conflict.
async fn update_account<DB>(
    ctx: &JobContext,
    tables: &Tables,
    account: i64,
    amount: i64,
) -> JobResult
where
    DB: FencedDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    DB::Arguments: IntoArguments<DB>,
{
    let (execution_id, fence) = (ctx.execution_id(), ctx.fence());
    for _ in 0..MAX_CONFLICTS {
        let mut tx = ctx.transaction::<DB>().await?;
        let read = format!(
            "SELECT balance, version FROM {} WHERE id = $1",
            tables.accounts
        );
        let (balance, version): (i64, i64) = sqlx::query_as(AssertSqlSafe(read))
            .bind(account)
            .fetch_one(&mut *tx)
            .await
            .transient()?;
        tracing::info!(execution_id, fence, account, version, "account read");
        // The computation between the read and the write, where another writer can slip in.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let update = format!(
            "UPDATE {} SET balance = $1, version = version + 1 WHERE id = $2 AND version = $3 \
             RETURNING version",
            tables.accounts
        );
        let updated: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(update))
            .bind(balance + amount)
            .bind(account)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .transient()?;
        if updated.is_none() {
            tracing::info!(
                execution_id,
                account,
                version,
                "version changed under us; reading again"
            );
            tx.rollback().await?;
            continue;
        }
        let entry = format!(
            "INSERT INTO {} (account_id, job, execution_id, fence, amount, version) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            tables.entries
        );
        sqlx::query(AssertSqlSafe(entry))
            .bind(account)
            .bind(ctx.job())
            .bind(execution_id)
            .bind(i64::try_from(fence).permanent()?)
            .bind(amount)
            .bind(version + 1)
            .execute(&mut *tx)
            .await
            .transient()?;
        tx.checkpoint(&(account + 1)).await?;
        tx.commit().await?; // refused if another instance took this execution over
        tracing::info!(
            execution_id,
            fence,
            account,
            version = version + 1,
            "account updated"
        );
        return Ok(());
    }
    Err(JobError::transient(format!(
        "account {account}: {MAX_CONFLICTS} conflicts in a row"
    )))
}

/// Creates the tables if missing and opens the three accounts at 1000, version 0.
async fn create_tables<DB: Database>(url: &str, tables: &Tables) -> Result<(), sqlx::Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let pool = Pool::<DB>::connect(url).await?;
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, \
             version BIGINT NOT NULL)",
            tables.accounts
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (account_id BIGINT NOT NULL, job TEXT NOT NULL, \
             execution_id TEXT NOT NULL, fence BIGINT NOT NULL, amount BIGINT NOT NULL, \
             version BIGINT NOT NULL)",
            tables.entries
        ),
        format!(
            "INSERT INTO {} (id, balance, version) VALUES (1, 1000, 0), (2, 1000, 0), \
             (3, 1000, 0) ON CONFLICT (id) DO NOTHING",
            tables.accounts
        ),
    ];
    sqlx::raw_sql(AssertSqlSafe(statements.join(";\n")))
        .execute(&pool)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let options = Options::from_args();
    const FILE: &str = "tickguard-optimistic_version.db";
    let tables = Tables {
        postgres: options.postgres.is_some(),
        accounts: options.table("accounts"),
        entries: options.table("account_entries"),
    };
    // Built first: it creates the namespace's schema and the SQLite file.
    let scheduler = options
        .builder(FILE)
        .state(tables.clone())
        // An instance counts as gone 3 s after its last heartbeat (30 s by default).
        .liveness(Duration::from_secs(3))
        .build()
        .await?;
    match &options.postgres {
        Some(url) => create_tables::<Postgres>(url, &tables).await?,
        None => create_tables::<Sqlite>(&format!("sqlite://{FILE}"), &tables).await?,
    }
    options.run(scheduler).await?;
    Ok(())
}
