//! The transactions the SQL stores run, written once: a claim and the start of a `once`
//! step. Each database supplies its statements through [`SqlDialect`]: how it begins (a plain
//! `BEGIN` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), which rows it locks, and whether
//! "now" is a bound parameter (SQLite's Unix milliseconds) or `clock_timestamp()` in the
//! statement (PostgreSQL).

use chrono::{DateTime, Utc};
use sqlx::{Database, Transaction};

use crate::store::{
    Claim, ClaimRequest, Claimed, ExecutionRef, OnceState,
    claim::{Outcome, SeenRow, decide},
    sql,
};

/// A row a claim read: the execution's id, status, whether it is live, its owner, and
/// whether it was asked to stop.
pub(crate) type OpenRow = (String, String, bool, String, bool);

/// A step's row as a `once_begin` read it: the holder's execution id, its fence, and
/// whether the step is done.
pub(crate) type OnceRow = (String, i64, bool);

/// An execution row a claim took (or found its own): the fence as stored, the attempts
/// before this one and the last checkpoint.
pub(crate) struct Taken {
    /// The fence, as stored.
    pub(crate) fence: i64,
    /// The attempts before this one.
    pub(crate) attempts: u32,
    /// The last checkpoint.
    pub(crate) checkpoint: Option<String>,
}

impl Taken {
    /// A taken row: `attempts` as stored (never negative).
    pub(crate) fn new(fence: i64, attempts: impl TryInto<u32>, checkpoint: Option<String>) -> Self {
        Self {
            fence,
            attempts: sql::attempts(attempts),
            checkpoint,
        }
    }
}

/// Who held a step before this run's `once_begin` made it its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// No row: the step never started, or its holder's step failed.
    Nobody,
    /// This very run (at this fence), which started it before.
    This,
    /// Another execution, which is no longer live.
    Gone,
}

/// What a `once_begin` transaction decided.
pub(crate) enum Step {
    /// The step's state for this run.
    State(OnceState),
    /// The run no longer holds its execution.
    Fenced,
}

/// A store transaction on `S`'s database.
pub(crate) type Tx<S> = Transaction<'static, <S as SqlDialect>::Db>;

/// The per-database statements of the claim and `once_begin` transactions. Each runs one
/// statement in `tx`, the transaction [`SqlDialect::begin`] opened.
pub(crate) trait SqlDialect {
    /// The database.
    type Db: Database;
    /// What the statements of one claim bind as "now": the same instant for all of them
    /// (`()` where the statements read the database's clock).
    type Now: Copy;

    /// The instant a claim's statements bind as "now".
    fn now() -> Self::Now;

    /// Begins a store transaction (holding whatever lock the database takes up front).
    async fn begin(&self) -> sqlx::Result<Tx<Self>>;

    /// Inserts or locks the job's row; returns the job's running execution, if any,
    /// whether the tick is due by the database's clock (within
    /// [`EARLY_TOLERANCE`](crate::store::claim::EARLY_TOLERANCE); always, where the
    /// database's clock is the instances' own), and the latest tick whose record a prune
    /// deleted.
    async fn lock_job(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        now: Self::Now,
    ) -> sqlx::Result<(Option<String>, bool, Option<DateTime<Utc>>)>;

    /// Reads this execution's row and the job's running one (`running`).
    async fn open_rows(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        now: Self::Now,
    ) -> sqlx::Result<Vec<OpenRow>>;

    /// Reads the row of an execution an earlier try of this claim already took.
    async fn own_row(&self, tx: &mut Tx<Self>, req: &ClaimRequest<'_>) -> sqlx::Result<Taken>;

    /// Bumps the job's fence, abandons its running execution (`running`, not live), and
    /// inserts or takes over this execution. `None` when the id is another job's.
    async fn take(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        now: Self::Now,
    ) -> sqlx::Result<Option<Taken>>;

    /// Whether `exec` still holds its execution, read in `tx`.
    async fn holds(&self, tx: &mut Tx<Self>, exec: &ExecutionRef) -> sqlx::Result<bool>;

    /// The step's row (`key` as stored), locked where the database locks rows. `None` when
    /// it had none; a database that inserts this run's row first has then inserted it, with
    /// `per_execution`.
    async fn once_row(
        &self,
        tx: &mut Tx<Self>,
        exec: &ExecutionRef,
        key: &str,
        per_execution: bool,
    ) -> sqlx::Result<Option<OnceRow>>;

    /// Whether the step's holder (`holder` at `fence`) is live.
    async fn holder_live(&self, tx: &mut Tx<Self>, holder: &str, fence: i64) -> sqlx::Result<bool>;

    /// Makes the step's row (`key` as stored) this run's; `holder` says whose it was. A row
    /// it inserts records `per_execution`.
    async fn once_put(
        &self,
        tx: &mut Tx<Self>,
        exec: &ExecutionRef,
        key: &str,
        per_execution: bool,
        holder: Holder,
    ) -> sqlx::Result<()>;
}

/// A claim the store refuses however often it is asked: the message of a
/// [`StoreError::Refused`](crate::store::StoreError::Refused).
pub(crate) struct Refused(pub(crate) String);

/// A claim as one transaction: the job's row first (claims of one job queue up on it),
/// then the rows [`decide`] judges, then the statements its outcome needs. `retried` when
/// an earlier try of this claim may have committed.
pub(crate) async fn claim<S: SqlDialect>(
    store: &S,
    req: &ClaimRequest<'_>,
    retried: bool,
) -> sqlx::Result<Result<Claim, Refused>> {
    let mut tx = store.begin().await?;
    let now = S::now();
    let (running, due, pruned_through) = store.lock_job(&mut tx, req, now).await?;
    let open = store
        .open_rows(&mut tx, req, running.as_deref(), now)
        .await?;
    // No record of this execution, and a prune deleted the job's records up to its tick:
    // it may have run, so it does not run (again).
    if pruned_through.is_some_and(|through| req.scheduled_at <= through)
        && !open.iter().any(|(id, ..)| id == req.execution_id)
    {
        tx.rollback().await?;
        return Ok(Ok(Claim::Pruned));
    }
    let rows: Vec<SeenRow<'_>> = open
        .iter()
        .map(|(id, status, live, owner, cancel_requested)| {
            Ok(SeenRow {
                id,
                status: sql::status(status)?,
                owner,
                live: *live,
                cancel_requested: *cancel_requested,
            })
        })
        .collect::<sqlx::Result<_>>()?;
    let resumed = match decide(req, retried, due, &rows) {
        Outcome::Done(status) => {
            tx.rollback().await?;
            return Ok(Ok(Claim::Done { status }));
        }
        Outcome::Early => {
            tx.rollback().await?;
            return Ok(Ok(Claim::Early));
        }
        Outcome::Busy(id) => {
            let execution_id = id.to_owned();
            tx.rollback().await?;
            return Ok(Ok(Claim::Busy { execution_id }));
        }
        Outcome::Own => {
            let own = store.own_row(&mut tx, req).await?;
            tx.commit().await?;
            return Ok(Ok(Claim::Acquired(claimed(own, false))));
        }
        Outcome::Take { resumed } => resumed,
    };
    let Some(taken) = store.take(&mut tx, req, running.as_deref(), now).await? else {
        tx.rollback().await?;
        return Ok(Err(Refused(format!(
            "execution id `{}` belongs to another job; make the key template of job `{}` \
             include {{job}}",
            req.execution_id, req.job
        ))));
    };
    tx.commit().await?;
    Ok(Ok(Claim::Acquired(claimed(taken, resumed))))
}

/// The claim of a taken row.
pub(crate) fn claimed(taken: Taken, resumed: bool) -> Claimed {
    Claimed {
        fence: sql::fence(taken.fence),
        previous_attempts: taken.attempts,
        checkpoint: taken.checkpoint,
        resumed,
    }
}

/// The start of a `once` step (`key` as stored, with its scope's `per_execution`) as one
/// transaction: refused unless `exec` holds its execution; the step is done, busy (its
/// holder is live), or becomes this run's.
pub(crate) async fn once_begin<S: SqlDialect>(
    store: &S,
    exec: &ExecutionRef,
    key: &str,
    per_execution: bool,
) -> sqlx::Result<Step> {
    let mut tx = store.begin().await?;
    if !store.holds(&mut tx, exec).await? {
        tx.rollback().await?;
        return Ok(Step::Fenced);
    }
    let holder = match store.once_row(&mut tx, exec, key, per_execution).await? {
        None => Holder::Nobody,
        Some((_, _, true)) => {
            tx.rollback().await?;
            return Ok(Step::State(OnceState::Done));
        }
        Some((holder, fence, false))
            if holder == exec.execution_id && sql::fence(fence) == exec.fence =>
        {
            Holder::This
        }
        Some((holder, fence, false)) => {
            if store.holder_live(&mut tx, &holder, fence).await? {
                tx.rollback().await?;
                return Ok(Step::State(OnceState::Busy));
            }
            Holder::Gone
        }
    };
    store
        .once_put(&mut tx, exec, key, per_execution, holder)
        .await?;
    tx.commit().await?;
    Ok(Step::State(OnceState::Acquired))
}

/// The [`SqlDialect`] methods whose bodies are the same on both databases, on the store's
/// statements `own_row` (`$1` the execution id) and `holds` (`$1` the id, `$2` the fence) and
/// its `Attempt` type.
macro_rules! shared_dialect_methods {
    () => {
        async fn own_row(&self, tx: &mut Tx<Self>, req: &ClaimRequest<'_>) -> sqlx::Result<Taken> {
            let (fence, attempts, checkpoint): (i64, Attempt, Option<String>) =
                sqlx::query_as(sqlx::AssertSqlSafe(self.sql.own_row.as_str()))
                    .bind(req.execution_id)
                    .fetch_one(&mut **tx)
                    .await?;
            Ok(Taken::new(fence, attempts, checkpoint))
        }

        async fn holds(&self, tx: &mut Tx<Self>, exec: &ExecutionRef) -> sqlx::Result<bool> {
            let held: Option<i32> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(self.sql.holds.as_str()))
                    .bind(&exec.execution_id)
                    .bind($crate::store::sql::db_fence(exec.fence))
                    .fetch_optional(&mut **tx)
                    .await?;
            Ok(held.is_some())
        }
    };
}

pub(crate) use shared_dialect_methods;
