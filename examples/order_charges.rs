//! Charging orders once a day, and never twice: the idempotency key a payment provider
//! deduplicates on, and the order's status written in the job's fenced transaction.
//!
//! ```text
//! cargo run -p tickguard-examples --example order_charges -- 20
//! cargo run -p tickguard-examples --example order_charges -- \
//!     --postgres postgres://postgres@127.0.0.1/test
//! ```
//!
//! The double charge: the job asks the payment provider to charge an order, the provider
//! takes the money, and the process dies before it records that the order is paid (a
//! SIGKILL, an OOM kill, a lost node), or the answer times out and the attempt is retried.
//! The run that takes over, or the retry, sees an unpaid order and charges it again. Two
//! things close the hole together:
//!
//! - every charge carries `ctx.idempotency_key(..)`, the same for every attempt and every
//!   instance running this execution (here `charge_orders-2026-12-06/order-3`); the
//!   provider, which keeps the keys it has seen, answers a repeated request with the
//!   charge it already made instead of making a new one (Stripe's `Idempotency-Key`
//!   header, Adyen's and PayPal's equivalents);
//! - the order is marked charged in `ctx.transaction()`, which commits only while this run
//!   still holds its execution: a stale run (paused past its lease while another instance
//!   took over) cannot write the order's status over the live run's.
//!
//! `idempotent(key = "charge_orders-{date}")` makes one execution a day: every tick of the
//! same day after the first completed run is skipped as a duplicate, and a run interrupted
//! mid-way is resumed (by this process after a restart, or by another instance) under the
//! same execution id, hence the same idempotency keys. The orders, and the provider's
//! record of the charges it took, are tables of the example's database (the SQLite file,
//! or PostgreSQL with `--postgres`); the provider is a stand-in that answers after 500 ms,
//! the window in which a crash leaves a charge unrecorded: kill the process when it logs
//! `payment provider: charge taken`, start it again, and the provider logs `duplicate
//! request` for that order, not a second charge. (A second run on the same day finds every
//! order charged: delete `tickguard-order_charges.db` to start the day over.)
//!
//! Copying it: replace `PaymentProvider` with the real client and pass the key in its
//! idempotency header; keep the key's scope (the provider's key retention is usually 24 h or
//! more: a daily job fits); replace the schedule (`cron = "0 0 6 * * *"`) and keep the
//! default `liveness`; write the order's status in the same database as the store, in the
//! fenced transaction.

use std::time::Duration;

use tickguard::{
    JobContext, JobResult, ResultExt, State, scheduled,
    sqlx::{
        self, AssertSqlSafe, Database, Executor, FromRow, IntoArguments, Pool, Postgres, Sqlite,
    },
    store::FencedDatabase,
};
use tickguard_examples::{Options, init_logging};

/// The tables, and which database they are on.
#[derive(Clone, Debug)]
struct Tables {
    postgres: bool,
    /// `orders (id, amount_cents, status, charged_on, charge_id)`.
    orders: String,
    /// The provider's own record: `payment_provider_charges (idempotency_key, order_id,
    /// amount_cents, charge_id, requests)`.
    provider_charges: String,
}

/// A stand-in for a payment provider that deduplicates requests by idempotency key: it
/// keeps the charges it took, by key, in a table of its own that outlives the job's
/// process, as a real provider's records do.
#[derive(Clone, Debug)]
enum PaymentProvider {
    Postgres(Pool<Postgres>, Tables),
    Sqlite(Pool<Sqlite>, Tables),
}

impl PaymentProvider {
    /// Charges `amount_cents` for `order`, once per `idempotency_key`: a repeated request
    /// returns the first one's charge id. Answers 500 ms after taking the charge.
    async fn charge(
        &self,
        idempotency_key: &str,
        order: i64,
        amount_cents: i64,
    ) -> Result<String, sqlx::Error> {
        let (charge_id, requests) = match self {
            Self::Postgres(pool, tables) => {
                take_charge(pool, tables, idempotency_key, order, amount_cents).await?
            }
            Self::Sqlite(pool, tables) => {
                take_charge(pool, tables, idempotency_key, order, amount_cents).await?
            }
        };
        if requests == 1 {
            tracing::info!(
                order,
                idempotency_key,
                charge_id,
                "payment provider: charge taken"
            );
        } else {
            tracing::info!(
                order,
                idempotency_key,
                charge_id,
                requests,
                "payment provider: duplicate request, the charge already taken is returned"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(charge_id)
    }
}

/// The provider's side of a charge: the charge for `key`, recorded now if new, and how many
/// requests named `key`.
async fn take_charge<DB: Database>(
    pool: &Pool<DB>,
    tables: &Tables,
    key: &str,
    order: i64,
    amount_cents: i64,
) -> Result<(String, i64), sqlx::Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    DB::Arguments: IntoArguments<DB>,
{
    let upsert = format!(
        "INSERT INTO {} AS c (idempotency_key, order_id, amount_cents, charge_id, requests) \
         VALUES ($1, $2, $3, $4, 1) \
         ON CONFLICT (idempotency_key) DO UPDATE SET requests = c.requests + 1 \
         RETURNING charge_id, requests",
        tables.provider_charges
    );
    let mut conn = pool.acquire().await?;
    sqlx::query_as(AssertSqlSafe(upsert))
        .bind(key)
        .bind(order)
        .bind(amount_cents)
        .bind(format!("ch_{order}_{}", unique_suffix()).as_str())
        .fetch_one(&mut *conn)
        .await
}

/// A suffix that makes charge ids unique, as a provider's are.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Every 5 s, one execution a day: charges the orders not charged today yet.
#[scheduled(
    cron = "*/5 * * * * *",
    idempotent(key = "charge_orders-{date}"),
    lock(ttl = "2s"),
    retry(attempts = 3, backoff = "500ms")
)]
async fn charge_orders(
    ctx: &JobContext,
    State(tables): State<Tables>,
    State(provider): State<PaymentProvider>,
) -> JobResult {
    if tables.postgres {
        charge_all::<Postgres>(ctx, &tables, &provider).await
    } else {
        charge_all::<Sqlite>(ctx, &tables, &provider).await
    }
}

/// Charges each order not charged on the tick's day, and marks it charged in the fenced
/// transaction.
async fn charge_all<DB>(ctx: &JobContext, tables: &Tables, provider: &PaymentProvider) -> JobResult
where
    DB: FencedDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    DB::Arguments: IntoArguments<DB>,
{
    let day = ctx.scheduled_at().date_naive().to_string();
    let execution_id = ctx.execution_id();
    let due = format!(
        "SELECT id, amount_cents FROM {} WHERE charged_on IS NULL OR charged_on <> $1 ORDER BY id",
        tables.orders
    );
    let mut tx = ctx.transaction::<DB>().await?;
    let orders: Vec<(i64, i64)> = sqlx::query_as(AssertSqlSafe(due))
        .bind(day.as_str())
        .fetch_all(&mut *tx)
        .await
        .transient()?;
    tx.rollback().await?;
    tracing::info!(execution_id, day, due = orders.len(), "charging orders");
    for (order, amount_cents) in orders {
        let key = ctx.idempotency_key(format_args!("order-{order}"));
        let charge_id = provider
            .charge(&key, order, amount_cents)
            .await
            .transient()?;
        let mark = format!(
            "UPDATE {} SET status = 'charged', charged_on = $1, charge_id = $2 WHERE id = $3",
            tables.orders
        );
        let mut tx = ctx.transaction::<DB>().await?;
        sqlx::query(AssertSqlSafe(mark))
            .bind(day.as_str())
            .bind(charge_id.as_str())
            .bind(order)
            .execute(&mut *tx)
            .await
            .transient()?;
        tx.commit().await?; // refused if another instance took this execution over
        tracing::info!(execution_id, order, charge_id, "order marked charged");
    }
    tracing::info!(execution_id, day, "orders charged");
    Ok(())
}

/// Creates the tables if missing, with five orders.
async fn create_tables<DB: Database>(pool: &Pool<DB>, tables: &Tables) -> Result<(), sqlx::Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id BIGINT PRIMARY KEY, amount_cents BIGINT NOT NULL, \
             status TEXT NOT NULL, charged_on TEXT, charge_id TEXT)",
            tables.orders
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (idempotency_key TEXT PRIMARY KEY, \
             order_id BIGINT NOT NULL, amount_cents BIGINT NOT NULL, charge_id TEXT NOT NULL, \
             requests BIGINT NOT NULL)",
            tables.provider_charges
        ),
        format!(
            "INSERT INTO {} (id, amount_cents, status) VALUES (1, 1200, 'open'), \
             (2, 4500, 'open'), (3, 990, 'open'), (4, 15000, 'open'), (5, 3100, 'open') \
             ON CONFLICT (id) DO NOTHING",
            tables.orders
        ),
    ];
    sqlx::raw_sql(AssertSqlSafe(statements.join(";\n")))
        .execute(pool)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let options = Options::from_args();
    const FILE: &str = "tickguard-order_charges.db";
    let tables = Tables {
        postgres: options.postgres.is_some(),
        orders: options.table("orders"),
        provider_charges: options.table("payment_provider_charges"),
    };
    let provider = match &options.postgres {
        Some(url) => PaymentProvider::Postgres(Pool::connect_lazy(url)?, tables.clone()),
        None => {
            let file = format!("sqlite://{FILE}?mode=rwc");
            PaymentProvider::Sqlite(Pool::connect_lazy(&file)?, tables.clone())
        }
    };
    // Connected at its first use, after the build: the build checks the servers and names
    // the address at fault, and creates the namespace's schema.
    let scheduler = options
        .builder(FILE)
        .state(tables)
        .state(provider.clone())
        // An instance counts as gone 3 s after its last heartbeat (30 s by default).
        .liveness(Duration::from_secs(3))
        .build()
        .await?;
    match &provider {
        PaymentProvider::Postgres(pool, tables) => create_tables(pool, tables).await?,
        PaymentProvider::Sqlite(pool, tables) => create_tables(pool, tables).await?,
    }
    options.run(scheduler).await?;
    Ok(())
}
