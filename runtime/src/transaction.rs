//! The transaction a job's context hands out on a SQL store: the job's own writes and the
//! fence check commit together, or not at all. See
//! [`JobContext::transaction`](crate::context::JobContext::transaction).

use std::{
    fmt,
    ops::{Deref, DerefMut},
    time::Duration,
};

use crate::{
    context::JobContext,
    future::BoxFuture,
    job_error::JobError,
    store::{
        ExecutionRef, StoreError,
        sql::{db_fence, fenced},
    },
};

/// A store that keeps executions in a SQL database, which jobs can write to in the same
/// transaction as their fence check: see [`JobContext::transaction`](crate::context::JobContext::transaction).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SqlStore {
    /// A [`PostgresStore`](crate::store::PostgresStore).
    #[cfg(feature = "postgres")]
    Postgres(crate::store::PostgresStore),
    /// A [`SqliteStore`](crate::store::SqliteStore).
    #[cfg(feature = "sqlite")]
    Sqlite(crate::store::SqliteStore),
}

impl SqlStore {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "PostgreSQL",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "SQLite",
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A database whose store can fence a job's transaction: [`sqlx::Postgres`] (feature
/// `postgres`) and [`sqlx::Sqlite`] (feature `sqlite`).
pub trait FencedDatabase: sqlx::Database + sealed::Sealed {
    #[doc(hidden)]
    fn __begin(
        store: &SqlStore,
        liveness: Duration,
    ) -> Option<BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>>>;

    #[doc(hidden)]
    fn __holds<'a>(
        store: &'a SqlStore,
        conn: &'a mut Self::Connection,
        exec: &'a ExecutionRef,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;

    #[doc(hidden)]
    fn __checkpoint<'a>(
        store: &'a SqlStore,
        conn: &'a mut Self::Connection,
        exec: &'a ExecutionRef,
        state: String,
    ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;
}

/// The fenced statements of a job's transaction, the same on both databases: the check at
/// commit (`__holds`) and `FencedTransaction::checkpoint` (`__checkpoint`), each on the
/// store's own statement with `$1` the execution id and `$2` its fence.
macro_rules! fenced_statements {
    ($variant:ident) => {
        fn __holds<'a>(
            store: &'a SqlStore,
            conn: &'a mut Self::Connection,
            exec: &'a ExecutionRef,
        ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
            Box::pin(async move {
                #[allow(irrefutable_let_patterns)]
                let SqlStore::$variant(store) = store else {
                    return Ok(false);
                };
                let row: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(store.fence_check()))
                    .bind(&exec.execution_id)
                    .bind(db_fence(exec.fence))
                    .fetch_optional(conn)
                    .await?;
                Ok(row.is_some())
            })
        }

        fn __checkpoint<'a>(
            store: &'a SqlStore,
            conn: &'a mut Self::Connection,
            exec: &'a ExecutionRef,
            state: String,
        ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
            Box::pin(async move {
                #[allow(irrefutable_let_patterns)]
                let SqlStore::$variant(store) = store else {
                    return Ok(false);
                };
                let done = sqlx::query(sqlx::AssertSqlSafe(store.checkpoint_statement()))
                    .bind(&exec.execution_id)
                    .bind(db_fence(exec.fence))
                    .bind(state)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        }
    };
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}

#[cfg(feature = "postgres")]
impl FencedDatabase for sqlx::Postgres {
    fn __begin(
        store: &SqlStore,
        liveness: Duration,
    ) -> Option<BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>>> {
        #[allow(irrefutable_let_patterns)] // with only this store's feature
        let SqlStore::Postgres(store) = store else {
            return None;
        };
        Some(Box::pin(async move {
            let mut tx = store.pool().begin().await?;
            // A transaction left idle longer than an owner may go silent is a paused or
            // stuck run's: the server ends it, so its row locks cannot stall the instance
            // that takes the execution over.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL idle_in_transaction_session_timeout = {}",
                crate::store::sql::millis(liveness)
            )))
            .execute(&mut *tx)
            .await?;
            Ok(tx)
        }))
    }

    fenced_statements!(Postgres);
}

#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

#[cfg(feature = "sqlite")]
impl FencedDatabase for sqlx::Sqlite {
    fn __begin(
        store: &SqlStore,
        _liveness: Duration,
    ) -> Option<BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>>> {
        #[allow(irrefutable_let_patterns)]
        let SqlStore::Sqlite(store) = store else {
            return None;
        };
        // The write lock from the start: no claim can commit while the job writes, and the
        // check at commit cannot be overtaken.
        Some(Box::pin(store.pool().begin_with("BEGIN IMMEDIATE")))
    }

    fenced_statements!(Sqlite);
}

/// A transaction on the store's database that commits only if the run still holds its
/// execution: see [`JobContext::transaction`](crate::context::JobContext::transaction). Dereferences to the connection, for sqlx's
/// queries; dropped without [`commit`](FencedTransaction::commit), it rolls back.
pub struct FencedTransaction<DB: FencedDatabase> {
    tx: sqlx::Transaction<'static, DB>,
    store: SqlStore,
    ctx: JobContext,
}

impl<DB: FencedDatabase> fmt::Debug for FencedTransaction<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FencedTransaction")
            .field("execution_id", &self.ctx.execution_id())
            .field("fence", &self.ctx.fence())
            .finish_non_exhaustive()
    }
}

impl<DB: FencedDatabase> FencedTransaction<DB> {
    pub(crate) async fn begin(ctx: &JobContext) -> Result<Self, JobError> {
        let inner = &ctx.inner;
        let Some(store) = inner.store.sql() else {
            return Err(JobError::permanent(format!(
                "ctx.transaction() needs a SQL execution store (PostgresStore or SqliteStore); \
                 this scheduler's store is {}",
                inner.store.describe()
            )));
        };
        let Some(begin) = DB::__begin(&store, inner.liveness) else {
            return Err(JobError::permanent(format!(
                "ctx.transaction() was asked for another database than the store's ({}): \
                 name the store's database, as in ctx.transaction::<sqlx::{}>()",
                store.name(),
                match store.name() {
                    "SQLite" => "Sqlite",
                    _ => "Postgres",
                }
            )));
        };
        let tx = begin.await.map_err(|e| {
            JobError::transient(StoreError::unavailable(
                format!("cannot begin a transaction on {}", inner.store.describe()),
                Some(Box::new(e)),
            ))
        })?;
        Ok(Self {
            tx,
            store,
            ctx: ctx.clone(),
        })
    }

    /// Commits, if this run still holds its execution: the execution's row is locked and
    /// checked in the transaction itself, so no claim can take the execution over between
    /// the check and the commit. A stale run (another instance took the execution over)
    /// gets an error, is stopped like any fenced run, and its writes are rolled back.
    pub async fn commit(mut self) -> Result<(), JobError> {
        let inner = &self.ctx.inner;
        let holds = DB::__holds(&self.store, &mut self.tx, &inner.exec)
            .await
            .map_err(|e| self.unavailable("the fence check before commit", e))?;
        if !holds {
            let _ = self.tx.rollback().await;
            return Err(inner.store_error(fenced(&inner.exec)));
        }
        let FencedTransaction { tx, store, ctx } = self;
        tx.commit().await.map_err(|e| {
            let t = FencedTransaction::<DB>::describe_error(&store, &ctx, "the commit", e);
            JobError::transient(t)
        })
    }

    /// Saves the run's progress in this transaction: it is committed with the rows the job
    /// wrote, or not at all. A run that takes the execution over after a crash resumes from
    /// exactly what was committed, so work done in the database is neither lost nor done
    /// twice. It also locks the execution's row until the transaction ends: a takeover waits
    /// for it.
    ///
    /// A stale run (another instance took the execution over) gets an error and is stopped.
    pub async fn checkpoint<T: serde::Serialize + ?Sized>(
        &mut self,
        state: &T,
    ) -> Result<(), JobError> {
        let json = serde_json::to_string(state).map_err(JobError::permanent)?;
        let inner = &self.ctx.inner;
        let saved = DB::__checkpoint(&self.store, &mut self.tx, &inner.exec, json)
            .await
            .map_err(|e| self.unavailable("a checkpoint", e))?;
        if saved {
            Ok(())
        } else {
            Err(inner.store_error(fenced(&inner.exec)))
        }
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), JobError> {
        let FencedTransaction { tx, store, ctx } = self;
        tx.rollback()
            .await
            .map_err(|e| JobError::transient(Self::describe_error(&store, &ctx, "the rollback", e)))
    }

    fn unavailable(&self, what: &str, e: sqlx::Error) -> JobError {
        JobError::transient(Self::describe_error(&self.store, &self.ctx, what, e))
    }

    fn describe_error(
        store: &SqlStore,
        ctx: &JobContext,
        what: &str,
        e: sqlx::Error,
    ) -> StoreError {
        StoreError::unavailable(
            format!(
                "{} transaction of execution `{}`: {what} failed",
                store.name(),
                ctx.execution_id()
            ),
            Some(Box::new(e)),
        )
    }
}

impl<DB: FencedDatabase> Deref for FencedTransaction<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: FencedDatabase> DerefMut for FencedTransaction<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}
