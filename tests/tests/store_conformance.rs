//! The conformance suite every [`ExecutionStore`] passes: claims, fences, takeover of dead
//! owners, fenced writes, checkpoints, `once` and history.
//!
//! Each case is a generic `async fn` over an `Arc<dyn ExecutionStore>` and a prefix for job
//! names and `once` keys that is unique per case and per process, so the suite can run in
//! parallel against one shared database. [`store_conformance!`] instantiates every case for one
//! backend; a new backend plugs in with one line:
//!
//! ```text
//! store_conformance!(postgres, postgres_store().await);
//! ```
//!
//! Liveness is judged on real time (a database cannot see tokio's paused clock), with short
//! windows and generous margins, so the suite stays robust on a loaded machine. Every claimer
//! of one job uses the same liveness, as the instances of one deployment do, except in
//! `claim_judges_liveness_by_the_request`, which pins whose liveness decides.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use tickguard::CircuitBreaker;
use tickguard::store::{
    CancelKind, Claim, ClaimRequest, Claimed, ExecutionRecord, ExecutionRef, ExecutionStore,
    Finish, HistoryQuery, INTERRUPTED_PER_JOB, JobRecord, JobRegistration, JobSummary, LedgerTick,
    MemoryStore, OnceScope, OnceState, PostgresStore, PruneRequest, Retention, RunOutcome,
    SqliteStore, Status, StoreError,
};
use tickguard_tests::{no_postgres, postgres_url, sqlite_url};

/// A liveness no case ever waits out.
const LONG: Duration = Duration::from_secs(30);
/// A liveness a case waits out on purpose.
const SHORT: Duration = Duration::from_millis(300);
/// Long enough past [`SHORT`] that an owner that stopped heartbeating counts as gone, even on
/// a slow machine.
const PAST_SHORT: Duration = Duration::from_millis(700);

/// Instantiates every case of the suite as a `#[tokio::test]` in module `$module`, each with
/// a fresh store from `$store` (an expression evaluated inside the async test, so it may
/// `.await`).
macro_rules! store_conformance {
    ($module:ident, $store:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            store_conformance!(@cases $store;
                claims_once,
                failed_tick_is_not_run_again_but_cancelled_one_resumes,
                concurrent_claims_of_one_tick_have_one_winner,
                concurrent_claims_of_many_ticks_have_one_winner,
                completed_tick_is_skipped_when_idempotent,
                live_execution_makes_claims_busy,
                takes_over_a_dead_owner,
                stale_owner_is_fenced_out,
                new_tick_fences_out_a_dead_owner,
                fences_strictly_increase,
                losing_claim_changes_nothing,
                checkpoint_round_trip,
                once_done_after_success,
                once_runs_again_after_failure,
                once_busy_while_holder_lives,
                executions_newest_first,
                heartbeat_keeps_owner_live,
                claim_judges_liveness_by_the_request,
                once_under_concurrent_callers_runs_once,
                lists_interrupted_executions,
                records_ticks_in_the_ledger,
                a_finish_racing_a_takeover_has_one_winner,
                dead_letters_are_the_failed_executions,
                concurrent_claims_of_a_running_tick_have_one_winner,
                claims_with_one_owner_string_have_one_winner,
                reads_one_execution_by_its_id,
                registers_many_jobs_at_once,
                claims_after_a_long_history,
                once_is_scoped_to_its_execution,
                once_survives_a_takeover_of_its_execution,
                once_ever_runs_once_across_executions,
                retention_forgets_the_steps_of_ended_executions_only,
                jobs_list_their_pause_and_last_outcome,
                history_pages_through_every_execution,
                detail_shows_an_abandoned_run_and_its_takeover,
                pause_and_resume_move_the_control_version,
                a_resume_is_recorded_and_a_breaker_registered,
                announce_moves_the_control_version_and_changes_nothing_else,
                trigger_asks_for_one_manual_execution,
                a_backlog_never_keeps_a_request_waiting,
                rerun_follows_the_rules,
                prune_deletes_by_retention_and_never_reruns_a_tick,
                a_cancel_request_on_a_running_execution_is_listed_and_final,
                a_cancel_request_on_a_pending_execution_cancels_it_at_once,
                a_cancel_request_on_a_dead_owner_makes_its_abandonment_final,
                a_cancel_request_on_a_handed_back_execution_makes_it_final,
            );
        }
    };
    (@cases $store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: Arc<dyn ExecutionStore> = $store;
                super::$case(store, &super::unique(stringify!($case))).await;
            }
        )*
    };
}

store_conformance!(memory, Arc::new(MemoryStore::new()));
store_conformance!(postgres, Arc::new(postgres_store(CONFORMANCE_SCHEMA).await));
store_conformance!(sqlite, Arc::new(sqlite_store().await));

/// The schema the Postgres conformance cases share: job names and keys are unique per case.
const CONFORMANCE_SCHEMA: &str = "tickguard_store_conformance";

async fn postgres_store(schema: &str) -> PostgresStore {
    PostgresStore::connect_with_schema(&postgres_url(), schema)
        .await
        .unwrap_or_else(|e| no_postgres(e))
}

async fn sqlite_store() -> SqliteStore {
    SqliteStore::connect(&sqlite_url("tg_store"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a SQLite store: {e}"))
}

/// A prefix no other case, run or process uses.
fn unique(case: &str) -> String {
    tickguard_tests::unique_name(&format!("tg-store-{case}"))
}

/// The `n`th tick of a job: whole minutes, so every backend stores it exactly.
fn tick(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + n * 60, 0).expect("a valid timestamp")
}

/// The execution id an idempotent job gives tick `n`.
fn tick_id(job: &str, n: i64) -> String {
    format!("{job}@{}", tick(n).to_rfc3339())
}

/// Registers `job` as the scheduler does at startup, and returns its fence.
async fn fence_of(store: &dyn ExecutionStore, job: &str) -> u64 {
    let registration = JobRegistration::new(job, "every 1m".to_owned(), "UTC".to_owned(), None);
    store
        .register(&registration)
        .await
        .unwrap_or_else(|e| panic!("{}: register `{job}`: {e}", store.describe()))
        .fence
}

/// A claim of one execution, as the executor makes it.
struct Claimer<'a> {
    job: &'a str,
    id: &'a str,
    tick: i64,
    owner: &'a str,
    idempotent: bool,
    liveness: Duration,
}

impl<'a> Claimer<'a> {
    fn new(job: &'a str, id: &'a str, tick: i64, owner: &'a str) -> Self {
        Self {
            job,
            id,
            tick,
            owner,
            idempotent: true,
            liveness: LONG,
        }
    }

    fn liveness(self, liveness: Duration) -> Self {
        Self { liveness, ..self }
    }

    fn idempotent(self, idempotent: bool) -> Self {
        Self { idempotent, ..self }
    }

    async fn claim(&self, store: &dyn ExecutionStore) -> Claim {
        let request = ClaimRequest::new(self.job, self.id, tick(self.tick), self.owner)
            .idempotent(self.idempotent)
            .liveness(self.liveness);
        store
            .claim(&request)
            .await
            .unwrap_or_else(|e| panic!("{}: claim `{}`: {e}", store.describe(), self.id))
    }

    /// Claims and expects to win; returns the claim and the reference for fenced writes.
    async fn win(&self, store: &dyn ExecutionStore) -> (Claimed, ExecutionRef) {
        match self.claim(store).await {
            Claim::Acquired(claimed) => {
                let exec = ExecutionRef {
                    job: self.job.to_owned(),
                    execution_id: self.id.to_owned(),
                    fence: claimed.fence,
                };
                (claimed, exec)
            }
            other => panic!(
                "{}: `{}` claiming `{}` expected to win, got {other:?}",
                store.describe(),
                self.owner,
                self.id
            ),
        }
    }
}

fn ok<T>(store: &dyn ExecutionStore, what: &str, result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("{}: {what}: {e}", store.describe()))
}

fn is_fenced<T: std::fmt::Debug>(
    store: &dyn ExecutionStore,
    what: &str,
    result: Result<T, StoreError>,
) {
    match result {
        Err(StoreError::Fenced { .. }) => {}
        other => panic!(
            "{}: {what} of a stale owner: expected Fenced, got {other:?}",
            store.describe()
        ),
    }
}

async fn finish(
    store: &dyn ExecutionStore,
    exec: &ExecutionRef,
    status: Status,
    attempts: u32,
    error: Option<&str>,
) {
    let result = store
        .finish(exec, &Finish::new(status, attempts, error))
        .await;
    ok(store, "finish", result);
}

async fn executions(store: &dyn ExecutionStore, job: &str) -> Vec<ExecutionRecord> {
    let result = store.executions(job, 100).await;
    ok(store, "executions", result)
}

async fn record(store: &dyn ExecutionStore, job: &str, id: &str) -> ExecutionRecord {
    executions(store, job)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{}: no execution `{id}` of `{job}`", store.describe()))
}

async fn claims_once(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    let before = fence_of(&*store, &job).await;
    let (claimed, exec) = Claimer::new(&job, &id, 0, "owner-1").win(&*store).await;
    assert!(
        claimed.fence >= 1,
        "fence {} must be at least 1",
        claimed.fence
    );
    assert!(
        claimed.fence > before,
        "the claim did not move the fence past {before}"
    );
    assert!(!claimed.resumed, "a new execution is not resumed");
    assert_eq!(claimed.previous_attempts, 0);
    assert_eq!(claimed.checkpoint, None);
    assert_eq!(
        fence_of(&*store, &job).await,
        claimed.fence,
        "the job's fence is the claim's"
    );

    let row = record(&*store, &job, &id).await;
    assert_eq!(row.job, job);
    assert_eq!(row.scheduled_at, tick(0));
    assert_eq!(row.status, Status::Running);
    assert_eq!(row.fence, claimed.fence);
    assert_eq!(row.owner, "owner-1");
    assert_eq!(row.finished_at, None);
    assert_eq!(row.checkpoint, None);
    ok(&*store, "heartbeat", store.heartbeat(&exec).await);
}

/// 50 tasks claim one tick at once; the winner finishes at once, so the others see it either
/// running (`Busy`) or done (`Completed`). The winner's fence is the first after the one
/// before; a losing claim may still move the job's fence on (PostgreSQL's one-statement claim
/// can, when the winner's finish races it), never back.
async fn concurrent_claims_of_one_tick_have_one_winner(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    const CLAIMERS: usize = 50;
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    let before = fence_of(&*store, &job).await;
    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|i| {
            let (store, job, id, start) = (store.clone(), job.clone(), id.clone(), start.clone());
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                start.wait().await;
                let claimer = Claimer::new(&job, &id, 0, &owner);
                let claim = claimer.claim(&*store).await;
                if let Claim::Acquired(claimed) = &claim {
                    let exec = ExecutionRef {
                        job: job.clone(),
                        execution_id: id.clone(),
                        fence: claimed.fence,
                    };
                    finish(&*store, &exec, Status::Completed, 1, None).await;
                }
                (owner, claim)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (owner, claim) = task.await.expect("a claimer panicked");
        match claim {
            Claim::Acquired(claimed) => winners.push((owner, claimed)),
            Claim::Done { .. } => {}
            Claim::Busy { execution_id } => assert_eq!(execution_id, id),
            Claim::Early => panic!("a tick due now was refused as early"),
            Claim::Pruned => panic!("a tick nothing pruned was refused as pruned"),
            other => panic!("unexpected claim {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one claimer must win: {winners:?}"
    );
    let (owner, claimed) = &winners[0];
    assert_eq!(
        claimed.fence,
        before + 1,
        "the winner's claim must be the first to move the fence"
    );
    assert!(
        fence_of(&*store, &job).await > before,
        "the fence must never move back"
    );
    let rows = executions(&*store, &job).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!((&rows[0].owner, rows[0].status), (owner, Status::Completed));
    assert_eq!(rows[0].fence, claimed.fence);
}

/// 50 tasks claim 50 different ticks of one job at once: one execution of a job at a time.
async fn concurrent_claims_of_many_ticks_have_one_winner(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    const CLAIMERS: usize = 50;
    let job = format!("{prefix}-job");
    let before = fence_of(&*store, &job).await;
    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|i| {
            let (store, job, start) = (store.clone(), job.clone(), start.clone());
            tokio::spawn(async move {
                let (owner, id) = (format!("owner-{i}"), tick_id(&job, i as i64));
                start.wait().await;
                let claim = Claimer::new(&job, &id, i as i64, &owner)
                    .claim(&*store)
                    .await;
                (id, claim)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a claimer panicked"));
    }
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, c)| matches!(c, Claim::Acquired(_)))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one claimer must win: {winners:?}"
    );
    let (winner, _) = winners[0];
    for (id, claim) in &results {
        match claim {
            Claim::Acquired(claimed) => assert_eq!(claimed.fence, before + 1),
            Claim::Busy { execution_id } => {
                assert_eq!(execution_id, winner, "`{id}` busy with the wrong execution")
            }
            Claim::Done { .. } => panic!("`{id}` was never completed"),
            Claim::Early => panic!("`{id}` is due now but was refused as early"),
            Claim::Pruned => panic!("`{id}` was never pruned"),
            other => panic!("unexpected claim {other:?}"),
        }
    }
    assert_eq!(
        fence_of(&*store, &job).await,
        before + 1,
        "the fence must move exactly once"
    );
    let rows = executions(&*store, &job).await;
    assert_eq!(rows.len(), 1, "losers must not leave rows: {rows:#?}");
    assert_eq!(&rows[0].id, winner);
}

async fn completed_tick_is_skipped_when_idempotent(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (first, exec) = Claimer::new(&job, &id, 0, "owner-1").win(&*store).await;
    finish(&*store, &exec, Status::Completed, 1, None).await;

    for owner in ["owner-1", "owner-2"] {
        let claim = Claimer::new(&job, &id, 0, owner).claim(&*store).await;
        assert_eq!(
            claim,
            Claim::Done {
                status: Status::Completed
            },
            "the completed tick was claimed again by `{owner}`"
        );
    }
    assert_eq!(
        fence_of(&*store, &job).await,
        first.fence,
        "a skipped claim moved the fence"
    );

    // A job that is not idempotent runs each tick under a fresh id: a completed run of the
    // same tick does not stop it.
    let fresh = format!("{job}@{}#owner-3", tick(0).to_rfc3339());
    let (second, exec) = Claimer::new(&job, &fresh, 0, "owner-3")
        .idempotent(false)
        .win(&*store)
        .await;
    assert!(second.fence > first.fence);
    assert!(!second.resumed, "a fresh execution id is not resumed");
    assert_eq!(record(&*store, &job, &id).await.status, Status::Completed);
    assert_eq!(record(&*store, &job, &fresh).await.status, Status::Running);
    finish(&*store, &exec, Status::Completed, 1, None).await;

    // Not idempotent means a COMPLETED execution with this id does not make the tick done.
    let (third, _) = Claimer::new(&job, &id, 0, "owner-4")
        .idempotent(false)
        .win(&*store)
        .await;
    assert!(third.fence > second.fence);
}

async fn failed_tick_is_not_run_again_but_cancelled_one_resumes(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    // A tick whose last attempt failed, or that timed out, ran to its end: another instance
    // firing the same tick must not run it (and its side effects) again.
    for (n, status) in [(1, Status::Failed), (2, Status::TimedOut)] {
        let id = tick_id(&job, n);
        let (_, exec) = Claimer::new(&job, &id, n, "owner-1").win(&*store).await;
        finish(&*store, &exec, status, 3, Some("boom")).await;
        let claim = Claimer::new(&job, &id, n, "owner-2").claim(&*store).await;
        assert_eq!(claim, Claim::Done { status }, "{status} tick claimed again");
    }
    // A cancelled one (shutdown, lock loss) was interrupted: it resumes, attempts carried.
    let id = tick_id(&job, 3);
    let (_, exec) = Claimer::new(&job, &id, 3, "owner-1").win(&*store).await;
    finish(
        &*store,
        &exec,
        Status::Cancelled,
        2,
        Some("run stopped: shutdown"),
    )
    .await;
    let (resumed, _) = Claimer::new(&job, &id, 3, "owner-2").win(&*store).await;
    assert!(resumed.resumed);
    assert_eq!(resumed.previous_attempts, 2);
}

async fn live_execution_makes_claims_busy(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let (one, two) = (tick_id(&job, 1), tick_id(&job, 2));
    fence_of(&*store, &job).await;
    let (_, exec) = Claimer::new(&job, &one, 1, "owner-1").win(&*store).await;

    let busy = Claim::Busy {
        execution_id: one.clone(),
    };
    // Another tick of the same job, idempotent or not, and the same tick by another owner.
    assert_eq!(
        Claimer::new(&job, &two, 2, "owner-2").claim(&*store).await,
        busy
    );
    let unkeyed = format!("{two}#owner-2");
    let claim = Claimer::new(&job, &unkeyed, 2, "owner-2")
        .idempotent(false)
        .claim(&*store)
        .await;
    assert_eq!(claim, busy);
    assert_eq!(
        Claimer::new(&job, &one, 1, "owner-2").claim(&*store).await,
        busy
    );

    // Another job is not affected.
    let other = format!("{prefix}-other");
    fence_of(&*store, &other).await;
    Claimer::new(&other, &tick_id(&other, 2), 2, "owner-2")
        .win(&*store)
        .await;

    // Once the execution finished, the next tick runs.
    finish(&*store, &exec, Status::Completed, 1, None).await;
    Claimer::new(&job, &two, 2, "owner-2").win(&*store).await;
}

/// The first owner is interrupted (recording 2 attempts), the second resumes, checkpoints and
/// dies silently; the third takes over after the liveness window.
async fn takes_over_a_dead_owner(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (_, exec) = Claimer::new(&job, &id, 0, "owner-1")
        .liveness(SHORT)
        .win(&*store)
        .await;
    finish(&*store, &exec, Status::Cancelled, 2, Some("shutting down")).await;

    let (resumed, exec) = Claimer::new(&job, &id, 0, "owner-2")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(resumed.resumed, "an interrupted execution is resumed");
    assert_eq!(resumed.previous_attempts, 2);
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&exec, r#"{"cursor":17}"#).await,
    );

    // While owner-2 is live, nobody takes over.
    let busy = Claimer::new(&job, &id, 0, "owner-3")
        .liveness(SHORT)
        .claim(&*store)
        .await;
    assert_eq!(
        busy,
        Claim::Busy {
            execution_id: id.clone()
        }
    );

    tokio::time::sleep(PAST_SHORT).await;
    let (taken, _) = Claimer::new(&job, &id, 0, "owner-3")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(
        taken.fence > resumed.fence,
        "takeover fence {} not above {}",
        taken.fence,
        resumed.fence
    );
    assert!(taken.resumed, "a taken-over execution is resumed");
    assert_eq!(
        taken.previous_attempts, 3,
        "attempts recorded by earlier owners are carried, and owner-2's claim counted the \
         attempt it started before it died"
    );
    assert_eq!(taken.checkpoint.as_deref(), Some(r#"{"cursor":17}"#));

    let row = record(&*store, &job, &id).await;
    assert_eq!(
        (row.status, row.fence, row.owner.as_str()),
        (Status::Running, taken.fence, "owner-3")
    );
    assert_eq!(fence_of(&*store, &job).await, taken.fence);
    // The new owner starts live: the takeover renewed its heartbeat.
    let busy = Claimer::new(&job, &id, 0, "owner-4")
        .liveness(SHORT)
        .claim(&*store)
        .await;
    assert_eq!(
        busy,
        Claim::Busy {
            execution_id: id.clone()
        }
    );
}

/// After a takeover, every write of the old owner is refused and changes nothing.
async fn stale_owner_is_fenced_out(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    let (old_key, new_key) = (format!("{prefix}-step-old"), format!("{prefix}-step-new"));
    fence_of(&*store, &job).await;
    let (_, old) = Claimer::new(&job, &id, 0, "owner-old")
        .liveness(SHORT)
        .win(&*store)
        .await;
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&old, "\"old-1\"").await,
    );
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&old, &old_key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );

    // The old owner pauses past the liveness window and a new owner takes over.
    tokio::time::sleep(PAST_SHORT).await;
    let (_, new) = Claimer::new(&job, &id, 0, "owner-new")
        .liveness(SHORT)
        .win(&*store)
        .await;
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&new, "\"new-1\"").await,
    );
    let before = executions(&*store, &job).await;

    // The old owner wakes up and tries to carry on.
    is_fenced(&*store, "heartbeat", store.heartbeat(&old).await);
    is_fenced(
        &*store,
        "checkpoint",
        store.checkpoint(&old, "\"old-2\"").await,
    );
    is_fenced(
        &*store,
        "last_checkpoint",
        store.last_checkpoint(&old).await,
    );
    is_fenced(
        &*store,
        "once_begin",
        store.once_begin(&old, &new_key, OnceScope::Ever).await,
    );
    is_fenced(
        &*store,
        "once_end",
        store.once_end(&old, &old_key, OnceScope::Ever, true).await,
    );
    let done = Finish::new(Status::Completed, 1, None);
    is_fenced(&*store, "finish", store.finish(&old, &done).await);
    let failed = Finish::new(Status::Failed, 1, Some("stale"));
    is_fenced(&*store, "finish", store.finish(&old, &failed).await);

    // None of it landed: the row is the new owner's, still running, with its checkpoint.
    assert_eq!(
        executions(&*store, &job).await,
        before,
        "a fenced write changed the execution"
    );
    let row = record(&*store, &job, &id).await;
    assert_eq!((row.status, row.fence), (Status::Running, new.fence));
    assert_eq!(row.owner, "owner-new");
    assert_eq!(row.checkpoint.as_deref(), Some("\"new-1\""));
    assert_eq!(row.error, None);
    let last = store.last_checkpoint(&new).await;
    assert_eq!(
        ok(&*store, "last_checkpoint", last).as_deref(),
        Some("\"new-1\"")
    );
    // Neither step was recorded by the old owner: not `new_key` (refused), and `old_key` was
    // not marked done (the old owner is gone, so its hold no longer counts).
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&new, &new_key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&new, &old_key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );

    // The new owner is unaffected and finishes normally.
    ok(&*store, "heartbeat", store.heartbeat(&new).await);
    finish(&*store, &new, Status::Completed, 1, None).await;
    let row = record(&*store, &job, &id).await;
    assert_eq!((row.status, row.fence), (Status::Completed, new.fence));
    is_fenced(&*store, "finish", store.finish(&old, &done).await);
}

/// A claim of the next tick after the owner of the previous one died fences that owner out.
async fn new_tick_fences_out_a_dead_owner(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let (one, two) = (tick_id(&job, 1), tick_id(&job, 2));
    fence_of(&*store, &job).await;
    let (first, old) = Claimer::new(&job, &one, 1, "owner-1")
        .liveness(SHORT)
        .win(&*store)
        .await;
    tokio::time::sleep(PAST_SHORT).await;
    let (second, new) = Claimer::new(&job, &two, 2, "owner-2")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(second.fence > first.fence);
    assert!(!second.resumed);
    assert_eq!(
        second.checkpoint, None,
        "a checkpoint belongs to its execution"
    );

    is_fenced(&*store, "heartbeat", store.heartbeat(&old).await);
    is_fenced(
        &*store,
        "checkpoint",
        store.checkpoint(&old, "\"old\"").await,
    );
    is_fenced(
        &*store,
        "finish",
        store
            .finish(&old, &Finish::new(Status::Completed, 1, None))
            .await,
    );
    let row = record(&*store, &job, &one).await;
    assert_ne!(row.status, Status::Completed, "a fenced finish landed");
    assert_ne!(
        row.status,
        Status::Running,
        "a fenced-out execution must not stay running"
    );
    assert_eq!(row.checkpoint, None, "a fenced checkpoint landed");
    ok(&*store, "heartbeat", store.heartbeat(&new).await);
}

async fn fences_strictly_increase(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let mut last = fence_of(&*store, &job).await;
    let statuses = [
        Status::Completed,
        Status::Failed,
        Status::TimedOut,
        Status::Cancelled,
    ];
    for n in 0..12 {
        let id = tick_id(&job, n);
        let owner = format!("owner-{n}");
        let (claimed, exec) = Claimer::new(&job, &id, n, &owner).win(&*store).await;
        assert!(
            claimed.fence > last,
            "claim {n}: fence {} not above {last}",
            claimed.fence
        );
        last = claimed.fence;
        let status = statuses[n as usize % statuses.len()];
        finish(&*store, &exec, status, 1, None).await;
    }
    // A re-run of a failed execution (an explicit claim that ignores its end) is a claim too.
    let (claimed, _) = Claimer::new(&job, &tick_id(&job, 1), 1, "rerun")
        .idempotent(false)
        .win(&*store)
        .await;
    assert!(claimed.fence > last);
    assert!(claimed.resumed);
    assert_eq!(fence_of(&*store, &job).await, claimed.fence);
    // Another job's claims do not move this job's fence.
    let other = format!("{prefix}-other");
    fence_of(&*store, &other).await;
    Claimer::new(&other, &tick_id(&other, 0), 0, "other")
        .win(&*store)
        .await;
    assert_eq!(fence_of(&*store, &job).await, claimed.fence);
}

async fn losing_claim_changes_nothing(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let (done, live) = (tick_id(&job, 1), tick_id(&job, 2));
    fence_of(&*store, &job).await;
    let (_, first) = Claimer::new(&job, &done, 1, "owner-1").win(&*store).await;
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&first, "\"first\"").await,
    );
    finish(&*store, &first, Status::Completed, 1, None).await;
    let (winner, exec) = Claimer::new(&job, &live, 2, "owner-2").win(&*store).await;
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&exec, "\"winner\"").await,
    );

    let fence = fence_of(&*store, &job).await;
    let rows = executions(&*store, &job).await;
    let (next, unkeyed) = (tick_id(&job, 3), format!("{}#loser-d", tick_id(&job, 3)));
    let losers = [
        Claimer::new(&job, &done, 1, "loser-a"),
        Claimer::new(&job, &live, 2, "loser-b"),
        Claimer::new(&job, &next, 3, "loser-c"),
        Claimer::new(&job, &unkeyed, 3, "loser-d").idempotent(false),
    ];
    for loser in &losers {
        let claim = loser.claim(&*store).await;
        assert!(
            !matches!(claim, Claim::Acquired(_)),
            "`{}` won: {claim:?}",
            loser.owner
        );
        assert_eq!(
            fence_of(&*store, &job).await,
            fence,
            "`{}` moved the fence",
            loser.owner
        );
        assert_eq!(
            executions(&*store, &job).await,
            rows,
            "`{}` changed the executions",
            loser.owner
        );
    }
    // The winner was not fenced out by the losers.
    assert_eq!(winner.fence, fence);
    ok(&*store, "heartbeat", store.heartbeat(&exec).await);
    let last = store.last_checkpoint(&exec).await;
    assert_eq!(
        ok(&*store, "last_checkpoint", last).as_deref(),
        Some("\"winner\"")
    );
    finish(&*store, &exec, Status::Completed, 1, None).await;
}

async fn checkpoint_round_trip(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (_, exec) = Claimer::new(&job, &id, 0, "owner-1").win(&*store).await;
    let last = store.last_checkpoint(&exec).await;
    assert_eq!(ok(&*store, "last_checkpoint", last), None);
    let states = [
        r#"{"cursor":17}"#,
        r#"{"cursor":18,"note":"ünïcødé \"quoted\" 'single' \\ back"}"#,
        r#"[1,2,3]"#,
    ];
    for state in states {
        ok(&*store, "checkpoint", store.checkpoint(&exec, state).await);
        let last = store.last_checkpoint(&exec).await;
        assert_eq!(ok(&*store, "last_checkpoint", last).as_deref(), Some(state));
    }
    finish(&*store, &exec, Status::Failed, 3, Some("boom")).await;
    let row = record(&*store, &job, &id).await;
    assert_eq!(
        row.checkpoint.as_deref(),
        Some(states[2]),
        "finish keeps the checkpoint"
    );

    // A rerun of the execution (an explicit claim that ignores its end) resumes from it; a
    // fresh execution starts from nothing.
    let (rerun, exec) = Claimer::new(&job, &id, 0, "owner-2")
        .idempotent(false)
        .win(&*store)
        .await;
    assert_eq!(rerun.checkpoint.as_deref(), Some(states[2]));
    assert_eq!(rerun.previous_attempts, 3);
    finish(&*store, &exec, Status::Completed, 4, None).await;
    let (fresh, exec) = Claimer::new(&job, &tick_id(&job, 1), 1, "owner-3")
        .win(&*store)
        .await;
    assert_eq!(fresh.checkpoint, None);
    let last = store.last_checkpoint(&exec).await;
    assert_eq!(ok(&*store, "last_checkpoint", last), None);
}

async fn once_done_after_success(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let key = format!("{prefix}-charge-order-17");
    fence_of(&*store, &job).await;
    let (_, exec) = Claimer::new(&job, &tick_id(&job, 0), 0, "owner-1")
        .win(&*store)
        .await;
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&exec, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    ok(
        &*store,
        "once_end",
        store.once_end(&exec, &key, OnceScope::Ever, true).await,
    );
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&exec, &key, OnceScope::Ever).await
        ),
        OnceState::Done
    );
    // Another key is independent.
    let other_key = format!("{prefix}-charge-order-18");
    let state = store.once_begin(&exec, &other_key, OnceScope::Ever).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Acquired);
    finish(&*store, &exec, Status::Completed, 1, None).await;

    // Done for every later execution, of this job or another.
    let (_, next) = Claimer::new(&job, &tick_id(&job, 1), 1, "owner-2")
        .win(&*store)
        .await;
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&next, &key, OnceScope::Ever).await
        ),
        OnceState::Done
    );
    let other = format!("{prefix}-other");
    fence_of(&*store, &other).await;
    let (_, elsewhere) = Claimer::new(&other, &tick_id(&other, 0), 0, "owner-3")
        .win(&*store)
        .await;
    let state = store.once_begin(&elsewhere, &key, OnceScope::Ever).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Done);
}

async fn once_runs_again_after_failure(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (job, other) = (format!("{prefix}-job"), format!("{prefix}-other"));
    let key = format!("{prefix}-send-report");
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    let (_, a) = Claimer::new(&job, &tick_id(&job, 0), 0, "owner-a")
        .win(&*store)
        .await;
    let (_, b) = Claimer::new(&other, &tick_id(&other, 0), 0, "owner-b")
        .win(&*store)
        .await;

    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&a, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    ok(
        &*store,
        "once_end",
        store.once_end(&a, &key, OnceScope::Ever, false).await,
    );
    // The failed step may run again: by the same execution (its next attempt)...
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&a, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    ok(
        &*store,
        "once_end",
        store.once_end(&a, &key, OnceScope::Ever, false).await,
    );
    // ...or by another one, although the first is still live.
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&b, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    ok(
        &*store,
        "once_end",
        store.once_end(&b, &key, OnceScope::Ever, true).await,
    );
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&a, &key, OnceScope::Ever).await
        ),
        OnceState::Done
    );
}

async fn once_busy_while_holder_lives(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (job, other, third) = (
        format!("{prefix}-job"),
        format!("{prefix}-other"),
        format!("{prefix}-third"),
    );
    let (key, finished_key) = (format!("{prefix}-step"), format!("{prefix}-finished-step"));
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    fence_of(&*store, &third).await;
    let (_, holder) = Claimer::new(&job, &tick_id(&job, 0), 0, "holder")
        .liveness(SHORT)
        .win(&*store)
        .await;
    let (_, waiter) = Claimer::new(&other, &tick_id(&other, 0), 0, "waiter")
        .liveness(LONG)
        .win(&*store)
        .await;

    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&holder, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&waiter, &key, OnceScope::Ever).await
        ),
        OnceState::Busy
    );
    // Busy changed nothing: the holder still holds the step and can end it.
    ok(&*store, "heartbeat", store.heartbeat(&holder).await);
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&waiter, &key, OnceScope::Ever).await
        ),
        OnceState::Busy
    );

    // A holder that finished without ending the step no longer holds it.
    let (_, short_lived) = Claimer::new(&third, &tick_id(&third, 0), 0, "short-lived")
        .win(&*store)
        .await;
    let state = store
        .once_begin(&short_lived, &finished_key, OnceScope::Ever)
        .await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Acquired);
    finish(
        &*store,
        &short_lived,
        Status::Failed,
        1,
        Some("crashed mid-step"),
    )
    .await;
    let state = store
        .once_begin(&waiter, &finished_key, OnceScope::Ever)
        .await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Acquired);

    // A holder that stopped heartbeating is gone: the step may be taken.
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        ok(
            &*store,
            "once_begin",
            store.once_begin(&waiter, &key, OnceScope::Ever).await
        ),
        OnceState::Acquired
    );
    // The old holder wakes up (its own job was not taken over, so its fence is current) and
    // ends the step it no longer holds: refused, and the new holder keeps it.
    is_fenced(
        &*store,
        "once_end",
        store.once_end(&holder, &key, OnceScope::Ever, false).await,
    );
    is_fenced(
        &*store,
        "once_end",
        store.once_end(&holder, &key, OnceScope::Ever, true).await,
    );
    let fourth = format!("{prefix}-fourth");
    fence_of(&*store, &fourth).await;
    let (_, bystander) = Claimer::new(&fourth, &tick_id(&fourth, 0), 0, "bystander")
        .win(&*store)
        .await;
    let state = store.once_begin(&bystander, &key, OnceScope::Ever).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Busy);
    ok(
        &*store,
        "once_end",
        store.once_end(&waiter, &key, OnceScope::Ever, true).await,
    );
    let state = store.once_begin(&waiter, &key, OnceScope::Ever).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Done);
}

async fn executions_newest_first(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let ends: [(Status, u32, Option<&str>); 4] = [
        (Status::Completed, 1, None),
        (Status::Failed, 3, Some("boom: connection refused")),
        (Status::TimedOut, 2, Some("timed out after 10m")),
        (Status::Cancelled, 1, Some("shutting down")),
    ];
    let mut fences = Vec::new();
    for (n, (status, attempts, error)) in ends.iter().enumerate() {
        let n = n as i64;
        let (claimed, exec) = Claimer::new(&job, &tick_id(&job, n), n, &format!("owner-{n}"))
            .win(&*store)
            .await;
        finish(&*store, &exec, *status, *attempts, *error).await;
        fences.push(claimed.fence);
    }
    let (running, _) = Claimer::new(&job, &tick_id(&job, 4), 4, "owner-4")
        .win(&*store)
        .await;

    let rows = executions(&*store, &job).await;
    let ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
    let expected: Vec<_> = (0..5).rev().map(|n| tick_id(&job, n)).collect();
    assert_eq!(ids, expected, "executions must be newest first");

    assert_eq!(
        (rows[0].status, rows[0].fence),
        (Status::Running, running.fence)
    );
    assert_eq!((rows[0].finished_at, &rows[0].error), (None, &None));
    for (row, (n, (status, attempts, error))) in rows[1..].iter().rev().zip(ends.iter().enumerate())
    {
        assert_eq!(row.status, *status, "{row:#?}");
        assert_eq!(row.attempts, *attempts, "{row:#?}");
        assert_eq!(row.error.as_deref(), *error, "{row:#?}");
        assert_eq!(row.fence, fences[n], "{row:#?}");
        assert_eq!(row.owner, format!("owner-{n}"));
        assert_eq!(row.scheduled_at, tick(n as i64));
        assert_eq!(row.job, job);
        let finished = row
            .finished_at
            .unwrap_or_else(|| panic!("no finished_at: {row:#?}"));
        assert!(finished >= row.started_at, "{row:#?}");
    }

    let limited = store.executions(&job, 2).await;
    let limited: Vec<_> = ok(&*store, "executions", limited)
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(limited, expected[..2]);
    let none = store.executions(&format!("{prefix}-unknown"), 10).await;
    assert_eq!(ok(&*store, "executions", none), Vec::new());
}

/// Heartbeats every liveness/3 for twice the liveness window keep the owner live.
async fn heartbeat_keeps_owner_live(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (_, exec) = Claimer::new(&job, &id, 0, "owner-1")
        .liveness(SHORT)
        .win(&*store)
        .await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < SHORT * 2 {
        tokio::time::sleep(SHORT / 3).await;
        ok(&*store, "heartbeat", store.heartbeat(&exec).await);
    }
    let busy = Claim::Busy {
        execution_id: id.clone(),
    };
    let claim = Claimer::new(&job, &tick_id(&job, 1), 1, "owner-2")
        .liveness(SHORT)
        .claim(&*store)
        .await;
    assert_eq!(claim, busy, "a heartbeating owner was taken over");
    let claim = Claimer::new(&job, &id, 0, "owner-2")
        .liveness(SHORT)
        .claim(&*store)
        .await;
    assert_eq!(claim, busy, "a heartbeating owner was taken over");
    let row = record(&*store, &job, &id).await;
    assert!(
        row.heartbeat_at > row.started_at,
        "heartbeat_at was not updated: {row:#?}"
    );
    // Without heartbeats the same owner would be gone by now: the heartbeats did it.
    tokio::time::sleep(PAST_SHORT).await;
    Claimer::new(&job, &id, 0, "owner-2")
        .liveness(SHORT)
        .win(&*store)
        .await;
}

/// "An owner whose last heartbeat is older than [the request's liveness] is gone": the
/// claimer's liveness decides, not the one the owner claimed with (a database has only the
/// heartbeat's time to go on).
async fn claim_judges_liveness_by_the_request(store: Arc<dyn ExecutionStore>, prefix: &str) {
    // An owner that claimed with a long liveness, silent for longer than a short one.
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (first, old) = Claimer::new(&job, &id, 0, "slow-beating")
        .liveness(LONG)
        .win(&*store)
        .await;
    tokio::time::sleep(PAST_SHORT).await;
    let (taken, _) = Claimer::new(&job, &id, 0, "strict")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(taken.fence > first.fence);
    is_fenced(&*store, "heartbeat", store.heartbeat(&old).await);

    // An owner that claimed with a short liveness, silent for longer than it, but not for
    // longer than the claimer's.
    let other = format!("{prefix}-other");
    let id = tick_id(&other, 0);
    fence_of(&*store, &other).await;
    let (first, _) = Claimer::new(&other, &id, 0, "fast-beating")
        .liveness(SHORT)
        .win(&*store)
        .await;
    tokio::time::sleep(PAST_SHORT).await;
    let claim = Claimer::new(&other, &id, 0, "lenient")
        .liveness(LONG)
        .claim(&*store)
        .await;
    assert_eq!(
        claim,
        Claim::Busy {
            execution_id: id.clone()
        }
    );
    assert_eq!(fence_of(&*store, &other).await, first.fence);
}

async fn once_under_concurrent_callers_runs_once(store: Arc<dyn ExecutionStore>, prefix: &str) {
    // 20 executions (of 20 jobs, all live) race for one step; the ones told `Busy` try again
    // until the step is done. The body must run exactly once.
    let key = format!("{prefix}-step");
    let mut owners = Vec::new();
    for n in 0..20 {
        let job = format!("{prefix}-job{n}");
        fence_of(&*store, &job).await;
        let (_, exec) = Claimer::new(&job, &tick_id(&job, 0), 0, "racer")
            .liveness(LONG)
            .win(&*store)
            .await;
        owners.push(exec);
    }
    let ran = Arc::new(AtomicU64::new(0));
    let racers = owners.into_iter().map(|exec| {
        let (store, key, ran) = (store.clone(), key.clone(), ran.clone());
        tokio::spawn(async move {
            loop {
                match ok(
                    &*store,
                    "once_begin",
                    store.once_begin(&exec, &key, OnceScope::Ever).await,
                ) {
                    OnceState::Acquired => {
                        ran.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        ok(
                            &*store,
                            "once_end",
                            store.once_end(&exec, &key, OnceScope::Ever, true).await,
                        );
                        return;
                    }
                    OnceState::Done => return,
                    OnceState::Busy => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
    });
    for racer in racers.collect::<Vec<_>>() {
        racer.await.unwrap();
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the step's body must run exactly once"
    );
}

/// The ledger of ticks: `record_ticks` writes a pending or skipped row where a tick has
/// none, turns a pending row into a skipped one, and leaves a claimed row alone; a claim
/// takes a pending row as a new execution and finds a skipped one done; `interrupted` lists
/// due pending ticks after the interrupted executions, at most `INTERRUPTED_PER_JOB` of one
/// job.
async fn records_ticks_in_the_ledger(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    fence_of(&*store, &a).await;
    fence_of(&*store, &b).await;
    // Ticks in the past: pending ones are listed once due by the store's clock.
    let past = |n: i64| DateTime::from_timestamp(1_700_000_000 + n * 60, 0).unwrap();
    let id = |job: &str, n: i64| format!("{job}@{}", past(n).to_rfc3339());
    let mut ticks: Vec<LedgerTick> = (0..30)
        .map(|n| LedgerTick::pending(&a, id(&a, n), past(n), "w1"))
        .collect();
    ticks.push(LedgerTick::pending(&b, id(&b, 0), past(0), "w1"));
    ticks.push(LedgerTick::pending(&b, id(&b, 1), past(1), "w1").skipped("late"));
    // The call says which ticks it recorded as skipped.
    let skipped = ok(&*store, "record_ticks", store.record_ticks(&ticks).await);
    assert_eq!(skipped, [id(&b, 1)], "{}", store.describe());
    // A run of `a` stopped by shutdown: listed before every pending tick.
    let cancelled = tick_id(&a, 5);
    let (_, stopped) = Claimer::new(&a, &cancelled, 5, "stopped")
        .win(&*store)
        .await;
    finish(&*store, &stopped, Status::Cancelled, 1, Some("shutdown")).await;
    let jobs = [a.clone(), b.clone()];
    let found = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs, LONG, 100).await,
    );
    assert_eq!(
        (found[0].execution_id.as_str(), found[0].status),
        (cancelled.as_str(), Status::Cancelled),
        "{}",
        store.describe()
    );
    let of_a = found.iter().filter(|i| i.job == a).count();
    assert_eq!(of_a, INTERRUPTED_PER_JOB, "{}", store.describe());
    let of_b: Vec<(&str, Status)> = found
        .iter()
        .filter(|i| i.job == b)
        .map(|i| (i.execution_id.as_str(), i.status))
        .collect();
    assert_eq!(of_b, [(id(&b, 0).as_str(), Status::Pending)]);
    // A pending tick becomes skipped; a claim then finds it done.
    // Two instances skip it: the first record is what skipped it, the second changes nothing.
    let superseded = [LedgerTick::pending(&a, id(&a, 0), past(0), "w2").skipped("superseded")];
    let first = ok(
        &*store,
        "record_ticks",
        store.record_ticks(&superseded).await,
    );
    let second = ok(
        &*store,
        "record_ticks",
        store.record_ticks(&superseded).await,
    );
    assert_eq!((first, second), (vec![id(&a, 0)], vec![]));
    let row = ok(&*store, "execution", store.execution(&id(&a, 0)).await).unwrap();
    assert_eq!(
        (row.status, row.error.as_deref()),
        (Status::Skipped, Some("superseded"))
    );
    let skipped = id(&a, 0);
    let done = ClaimRequest::new(&a, &skipped, past(0), "x");
    assert_eq!(
        ok(&*store, "claim", store.claim(&done).await),
        Claim::Done {
            status: Status::Skipped
        }
    );
    // A pending tick is claimed as a new execution, and the ledger leaves it alone then.
    let pending = id(&a, 1);
    let take = ClaimRequest::new(&a, &pending, past(1), "x");
    let Claim::Acquired(claimed) = ok(&*store, "claim", store.claim(&take).await) else {
        panic!("{}: a pending tick was not claimed", store.describe())
    };
    assert_eq!((claimed.resumed, claimed.previous_attempts), (false, 0));
    let late = [LedgerTick::pending(&a, pending.clone(), past(1), "w2").skipped("late")];
    let none = ok(&*store, "record_ticks", store.record_ticks(&late).await);
    assert!(none.is_empty(), "{none:?}");
    let row = ok(&*store, "execution", store.execution(&pending).await).unwrap();
    assert_eq!((row.status, row.owner.as_str()), (Status::Running, "x"));
}

async fn lists_interrupted_executions(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let jobs: Vec<String> = (0..4).map(|n| format!("{prefix}-job{n}")).collect();
    for job in &jobs {
        fence_of(&*store, job).await;
    }
    // job0: an owner that died mid-run (claimed, then silent).
    let (_, _dead) = Claimer::new(&jobs[0], &tick_id(&jobs[0], 1), 1, "dead")
        .liveness(SHORT)
        .win(&*store)
        .await;
    // job1: a run stopped by shutdown, recorded as cancelled.
    let (_, stopped) = Claimer::new(&jobs[1], &tick_id(&jobs[1], 2), 2, "stopped")
        .liveness(SHORT)
        .win(&*store)
        .await;
    finish(
        &*store,
        &stopped,
        Status::Cancelled,
        1,
        Some("run stopped: shutdown"),
    )
    .await;
    // job2: completed; job3: alive and heartbeating.
    let (_, done) = Claimer::new(&jobs[2], &tick_id(&jobs[2], 0), 0, "done")
        .liveness(SHORT)
        .win(&*store)
        .await;
    finish(&*store, &done, Status::Completed, 1, None).await;
    let (_, alive) = Claimer::new(&jobs[3], &tick_id(&jobs[3], 0), 0, "alive")
        .liveness(SHORT)
        .win(&*store)
        .await;
    tokio::time::sleep(PAST_SHORT).await;
    ok(&*store, "heartbeat", store.heartbeat(&alive).await);

    let found = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs, SHORT, 10).await,
    );
    let found: Vec<(String, Status, DateTime<Utc>)> = found
        .into_iter()
        .map(|i| (i.execution_id, i.status, i.scheduled_at))
        .collect();
    assert_eq!(
        found,
        vec![
            (tick_id(&jobs[0], 1), Status::Running, tick(1)),
            (tick_id(&jobs[1], 2), Status::Cancelled, tick(2)),
        ],
        "the dead owner's and the cancelled execution, oldest tick first"
    );
    // Only the jobs asked about, and at most `limit`.
    let one = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs[1..], SHORT, 10).await,
    );
    assert_eq!(one.len(), 1);
    let limited = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs, SHORT, 1).await,
    );
    assert_eq!(limited.len(), 1);
    // Resuming one (a new claim of the same id) takes it off the list.
    let (claimed, _) = Claimer::new(&jobs[1], &tick_id(&jobs[1], 2), 2, "resumer")
        .liveness(LONG)
        .win(&*store)
        .await;
    assert!(claimed.resumed);
    assert_eq!(claimed.previous_attempts, 1);
    let left = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs[1..2], SHORT, 10).await,
    );
    assert!(left.is_empty(), "{left:?}");
}

async fn a_finish_racing_a_takeover_has_one_winner(store: Arc<dyn ExecutionStore>, prefix: &str) {
    // 30 executions whose owners went silent; each owner's finish races another instance's
    // takeover. Either the finish lands first (the tick is done: the takeover is told so) or
    // the takeover does (the finish is refused): never both.
    let mut races = Vec::new();
    for n in 0..30 {
        let job = format!("{prefix}-job{n}");
        let id = tick_id(&job, 0);
        fence_of(&*store, &job).await;
        let (_, exec) = Claimer::new(&job, &id, 0, "silent")
            .liveness(SHORT)
            .win(&*store)
            .await;
        races.push((job, id, exec));
    }
    tokio::time::sleep(PAST_SHORT).await;
    let tasks: Vec<_> = races
        .into_iter()
        .map(|(job, id, exec)| {
            let store = store.clone();
            tokio::spawn(async move {
                let done = Finish::new(Status::Completed, 1, None);
                let request = ClaimRequest::new(&job, &id, tick(0), "taker").liveness(SHORT);
                let (finished, claimed) =
                    tokio::join!(store.finish(&exec, &done), store.claim(&request));
                (id, finished.map_err(|e| e.is_fenced()), claimed.unwrap())
            })
        })
        .collect();
    for task in tasks {
        let (id, finished, claimed) = task.await.unwrap();
        match (&finished, &claimed) {
            (
                Ok(()),
                Claim::Done {
                    status: Status::Completed,
                },
            ) => {}
            (Err(true), Claim::Acquired(_)) => {}
            other => panic!("{id}: the finish and the takeover both won or both lost: {other:?}"),
        }
    }
}

async fn dead_letters_are_the_failed_executions(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    fence_of(&*store, &a).await;
    fence_of(&*store, &b).await;
    let outcomes = [
        (&a, 1, Status::Failed, Some("charge failed: card declined")),
        (&a, 2, Status::Completed, None),
        (&a, 3, Status::Cancelled, Some("run stopped: shutdown")),
        (&a, 4, Status::TimedOut, Some("timed out after 10s")),
        (&b, 1, Status::Failed, Some("export failed: disk full")),
    ];
    for (job, n, status, error) in outcomes {
        let (_, exec) = Claimer::new(job, &tick_id(job, n), n, "owner")
            .liveness(LONG)
            .win(&*store)
            .await;
        finish(&*store, &exec, status, 3, error).await;
        // Distinct finish times, in this order.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let of_a = ok(
        &*store,
        "dead_letters",
        store.dead_letters(Some(&a), 10).await,
    );
    let ids: Vec<&str> = of_a.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [tick_id(&a, 1)], "only the failed execution of `a`");
    assert_eq!(of_a[0].status, Status::Failed);
    assert_eq!(of_a[0].attempts, 3);
    assert_eq!(
        of_a[0].error.as_deref(),
        Some("charge failed: card declined")
    );
    assert!(of_a[0].finished_at.is_some());
    // Every job's, most recently finished first (other cases' rows may be there too).
    let all = ok(
        &*store,
        "dead_letters",
        store.dead_letters(None, 100_000).await,
    );
    let ours: Vec<&str> = all
        .iter()
        .filter(|r| r.job.starts_with(prefix))
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ours, [tick_id(&b, 1), tick_id(&a, 1)]);
    let one = ok(&*store, "dead_letters", store.dead_letters(None, 1).await);
    assert_eq!(one.len(), 1);
}

/// Claimers of one idempotent tick with different owners, all at once, while the winner is
/// still running: one wins, every other is told the execution is busy.
async fn concurrent_claims_of_a_running_tick_have_one_winner(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    const CLAIMERS: usize = 20;
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    let before = fence_of(&*store, &job).await;
    let claims = concurrent_claims(&store, &job, &id, CLAIMERS, |i| format!("owner-{i}")).await;
    let winners: Vec<_> = claims
        .iter()
        .filter_map(|claim| match claim {
            Claim::Acquired(claimed) => Some(claimed),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claimer must win: {claims:?}");
    assert_eq!(winners[0].fence, before + 1);
    let busy = Claim::Busy {
        execution_id: id.clone(),
    };
    assert_eq!(
        claims.iter().filter(|claim| **claim == busy).count(),
        CLAIMERS - 1,
        "{claims:?}"
    );
}

/// Two runs whose owner strings are equal (two instances configured with one instance id)
/// claim one tick at once: the store never takes the other's live row for its own.
async fn claims_with_one_owner_string_have_one_winner(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let claims = concurrent_claims(&store, &job, &id, 2, |_| "instance#0".to_owned()).await;
    let won = claims
        .iter()
        .filter(|claim| matches!(claim, Claim::Acquired(_)))
        .count();
    assert_eq!(won, 1, "exactly one run must win: {claims:?}");
    // Later, one by one, as well.
    assert_eq!(
        Claimer::new(&job, &id, 0, "instance#0")
            .claim(&*store)
            .await,
        Claim::Busy {
            execution_id: id.clone()
        }
    );
}

/// `n` tasks claim `id` at once (the owner of each from `owner`); nobody finishes.
async fn concurrent_claims(
    store: &Arc<dyn ExecutionStore>,
    job: &str,
    id: &str,
    n: usize,
    owner: impl Fn(usize) -> String,
) -> Vec<Claim> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, job, id, start) =
                (store.clone(), job.to_owned(), id.to_owned(), start.clone());
            let owner = owner(i);
            tokio::spawn(async move {
                start.wait().await;
                Claimer::new(&job, &id, 0, &owner).claim(&*store).await
            })
        })
        .collect();
    let mut claims = Vec::new();
    for task in tasks {
        claims.push(task.await.expect("a claimer panicked"));
    }
    claims
}

/// `execution(id)` reads one execution as `executions` lists it; an unknown id is `None`.
async fn reads_one_execution_by_its_id(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    assert_eq!(ok(&*store, "execution", store.execution(&id).await), None);
    let (_, exec) = Claimer::new(&job, &id, 0, "owner-1").win(&*store).await;
    let running = ok(&*store, "execution", store.execution(&id).await);
    assert_eq!(running.as_ref(), Some(&record(&*store, &job, &id).await));
    assert_eq!(running.map(|r| r.status), Some(Status::Running));
    finish(&*store, &exec, Status::Failed, 2, Some("boom")).await;
    let done = ok(&*store, "execution", store.execution(&id).await).unwrap();
    assert_eq!(done, record(&*store, &job, &id).await);
    assert_eq!(
        (done.status, done.attempts, done.error.as_deref()),
        (Status::Failed, 2, Some("boom"))
    );
    let unknown = format!("{prefix}-nothing@0");
    assert_eq!(
        ok(&*store, "execution", store.execution(&unknown).await),
        None
    );
}

/// `register_all` records every job at once, in order, as `register` would one by one: a
/// known job keeps its fence and first registration time.
async fn registers_many_jobs_at_once(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let names: Vec<String> = (0..5).map(|i| format!("{prefix}-job-{i}")).collect();
    let first = tick(-100);
    let known = JobRegistration::new(&names[2], "every 1m".to_owned(), "UTC".to_owned(), None)
        .registered_at(first);
    ok(&*store, "register", store.register(&known).await);
    let id = tick_id(&names[2], 0);
    let (claimed, _) = Claimer::new(&names[2], &id, 0, "owner-1")
        .win(&*store)
        .await;
    let later = tick(5);
    let registrations: Vec<JobRegistration<'_>> = names
        .iter()
        .map(|name| {
            JobRegistration::new(name, "every 1m".to_owned(), "UTC".to_owned(), Some(tick(6)))
                .registered_at(later)
        })
        .collect();
    let records: Vec<JobRecord> = ok(
        &*store,
        "register_all",
        store.register_all(&registrations).await,
    );
    let got: Vec<(&str, u64, DateTime<Utc>)> = records
        .iter()
        .map(|r| (r.name.as_str(), r.fence, r.created_at))
        .collect();
    let expected: Vec<(&str, u64, DateTime<Utc>)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if i == 2 {
                (name.as_str(), claimed.fence, first)
            } else {
                (name.as_str(), 0, later)
            }
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(records[2].last_tick, Some(tick(0)));
    // Again: the same records.
    let again = ok(
        &*store,
        "register_all",
        store.register_all(&registrations).await,
    );
    assert_eq!(again, records);
    let none = ok(&*store, "register_all", store.register_all(&[]).await);
    assert!(none.is_empty());
}

/// A job with a long history (200 finished executions) still claims right: a done tick is
/// done, a running execution makes other ticks busy.
async fn claims_after_a_long_history(store: Arc<dyn ExecutionStore>, prefix: &str) {
    const HISTORY: i64 = 200;
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    for n in 0..HISTORY {
        let id = format!("{job}@run-{n}");
        let (_, exec) = Claimer::new(&job, &id, n, "owner-1")
            .idempotent(false)
            .win(&*store)
            .await;
        finish(&*store, &exec, Status::Completed, 1, None).await;
    }
    let done = tick_id(&job, HISTORY);
    let (_, exec) = Claimer::new(&job, &done, HISTORY, "owner-2")
        .win(&*store)
        .await;
    finish(&*store, &exec, Status::Completed, 1, None).await;
    let running = tick_id(&job, HISTORY + 1);
    let (_, _live) = Claimer::new(&job, &running, HISTORY + 1, "owner-3")
        .win(&*store)
        .await;
    assert_eq!(
        Claimer::new(&job, &done, HISTORY, "owner-4")
            .claim(&*store)
            .await,
        Claim::Done {
            status: Status::Completed
        }
    );
    assert_eq!(
        Claimer::new(&job, &tick_id(&job, HISTORY + 2), HISTORY + 2, "owner-4")
            .claim(&*store)
            .await,
        Claim::Busy {
            execution_id: running.clone()
        }
    );
    assert_eq!(
        Claimer::new(&job, &running, HISTORY + 1, "owner-4")
            .claim(&*store)
            .await,
        Claim::Busy {
            execution_id: running
        }
    );
}

/// Runs the step `key` of `scope` in `exec` to success if it may run; returns whether it ran.
async fn run_step(
    store: &dyn ExecutionStore,
    exec: &ExecutionRef,
    key: &str,
    scope: OnceScope,
) -> bool {
    match ok(
        store,
        "once_begin",
        store.once_begin(exec, key, scope).await,
    ) {
        OnceState::Acquired => {
            ok(
                store,
                "once_end",
                store.once_end(exec, key, scope, true).await,
            );
            true
        }
        OnceState::Done => false,
        OnceState::Busy => panic!("{}: step `{key}` busy", store.describe()),
    }
}

/// Two executions of one job (a nightly job on two nights) with the same `once` key both run
/// the step; within one execution it runs once; another job's execution runs it too.
async fn once_is_scoped_to_its_execution(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (job, other) = (format!("{prefix}-job"), format!("{prefix}-other"));
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    let per = OnceScope::Execution;
    let (_, night1) = Claimer::new(&job, &tick_id(&job, 0), 0, "owner-1")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &night1, "charge-1", per).await);
    assert!(!run_step(&*store, &night1, "charge-1", per).await);
    assert!(run_step(&*store, &night1, "charge-2", per).await);
    finish(&*store, &night1, Status::Completed, 1, None).await;

    let (_, night2) = Claimer::new(&job, &tick_id(&job, 1), 1, "owner-2")
        .win(&*store)
        .await;
    assert!(
        run_step(&*store, &night2, "charge-1", per).await,
        "the next execution must run the step again"
    );
    assert!(!run_step(&*store, &night2, "charge-1", per).await);
    // A failed step runs again within its execution.
    let state = store.once_begin(&night2, "charge-2", per).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Acquired);
    ok(
        &*store,
        "once_end",
        store.once_end(&night2, "charge-2", per, false).await,
    );
    assert!(run_step(&*store, &night2, "charge-2", per).await);
    let (_, elsewhere) = Claimer::new(&other, &tick_id(&other, 1), 1, "owner-3")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &elsewhere, "charge-1", per).await);
}

/// An owner that dies after a step is taken over by another (a higher fence): the step it
/// recorded is done for the new owner, the one it left in progress runs again, and the old
/// owner can end neither.
async fn once_survives_a_takeover_of_its_execution(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    let per = OnceScope::Execution;
    fence_of(&*store, &job).await;
    let (_, old) = Claimer::new(&job, &id, 0, "owner-old")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(run_step(&*store, &old, "charge-1", per).await);
    let state = store.once_begin(&old, "charge-2", per).await;
    assert_eq!(ok(&*store, "once_begin", state), OnceState::Acquired);

    // The old owner stops heartbeating mid-step; another instance takes the execution over.
    tokio::time::sleep(PAST_SHORT).await;
    let (claimed, new) = Claimer::new(&job, &id, 0, "owner-new")
        .liveness(SHORT)
        .win(&*store)
        .await;
    assert!(claimed.fence > old.fence);
    assert!(
        !run_step(&*store, &new, "charge-1", per).await,
        "a takeover ran a done step again"
    );
    is_fenced(
        &*store,
        "once_end",
        store.once_end(&old, "charge-2", per, true).await,
    );
    assert!(run_step(&*store, &new, "charge-2", per).await);
    is_fenced(
        &*store,
        "once_begin",
        store.once_begin(&old, "charge-3", per).await,
    );
    finish(&*store, &new, Status::Completed, 2, None).await;
}

/// A `once_ever` step runs once across executions and jobs; a `once` step with the same key
/// is another step.
async fn once_ever_runs_once_across_executions(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (job, other) = (format!("{prefix}-job"), format!("{prefix}-other"));
    let key = format!("{prefix}-backfill");
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    let (_, first) = Claimer::new(&job, &tick_id(&job, 0), 0, "owner-1")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &first, &key, OnceScope::Ever).await);
    finish(&*store, &first, Status::Completed, 1, None).await;
    let (_, second) = Claimer::new(&job, &tick_id(&job, 1), 1, "owner-2")
        .win(&*store)
        .await;
    assert!(!run_step(&*store, &second, &key, OnceScope::Ever).await);
    assert!(run_step(&*store, &second, &key, OnceScope::Execution).await);
    let (_, elsewhere) = Claimer::new(&other, &tick_id(&other, 0), 0, "owner-3")
        .win(&*store)
        .await;
    assert!(!run_step(&*store, &elsewhere, &key, OnceScope::Ever).await);
}

/// Retention deletes the per-execution steps of executions that completed at least the
/// retention ago, of the jobs named, and keeps `once_ever` steps and the steps of
/// executions that may still run (running, cancelled) or be re-run (failed).
async fn retention_forgets_the_steps_of_ended_executions_only(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let (job, other) = (format!("{prefix}-job"), format!("{prefix}-other"));
    let ever = format!("{prefix}-ever");
    let per = OnceScope::Execution;
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    let forget = |jobs: Vec<String>, older_than: Duration| {
        let store = store.clone();
        async move {
            let forgot = store.forget_once_steps(&jobs, older_than).await;
            ok(&*store, "forget_once_steps", forgot)
        }
    };
    // Ended: completed, and failed, each with a step; the first also with a `once_ever`.
    let (_, completed) = Claimer::new(&job, &tick_id(&job, 0), 0, "o")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &completed, "step", per).await);
    assert!(run_step(&*store, &completed, &ever, OnceScope::Ever).await);
    finish(&*store, &completed, Status::Completed, 1, None).await;
    let (_, failed) = Claimer::new(&job, &tick_id(&job, 1), 1, "o")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &failed, "step", per).await);
    finish(&*store, &failed, Status::Failed, 3, Some("boom")).await;
    // Open: cancelled (to be resumed), then running.
    let (_, cancelled) = Claimer::new(&job, &tick_id(&job, 2), 2, "o")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &cancelled, "step", per).await);
    finish(&*store, &cancelled, Status::Cancelled, 1, Some("shutdown")).await;
    let (_, running) = Claimer::new(&job, &tick_id(&job, 3), 3, "o")
        .liveness(LONG)
        .win(&*store)
        .await;
    assert!(run_step(&*store, &running, "step", per).await);
    // Another job's ended execution, not named below.
    let (_, bystander) = Claimer::new(&other, &tick_id(&other, 0), 0, "o")
        .win(&*store)
        .await;
    assert!(run_step(&*store, &bystander, "step", per).await);
    finish(&*store, &bystander, Status::Completed, 1, None).await;

    assert_eq!(
        forget(vec![job.clone()], Duration::from_secs(3600)).await,
        0,
        "executions that ended just now are within the retention"
    );
    assert_eq!(forget(vec![job.clone()], Duration::ZERO).await, 1);
    assert_eq!(forget(vec![job.clone()], Duration::ZERO).await, 0);

    // Kept: the running execution's step, the `once_ever` step, the cancelled one's step.
    assert!(!run_step(&*store, &running, "step", per).await);
    assert!(!run_step(&*store, &running, &ever, OnceScope::Ever).await);
    finish(&*store, &running, Status::Cancelled, 1, Some("shutdown")).await;
    let (_, resumed) = Claimer::new(&job, &tick_id(&job, 2), 2, "p")
        .win(&*store)
        .await;
    assert!(
        !run_step(&*store, &resumed, "step", per).await,
        "a resumed execution ran a step that retention should have kept"
    );
    finish(&*store, &resumed, Status::Completed, 2, None).await;
    // Kept: the failed execution's step (a re-run of it must not repeat it).
    let rerun = ok(
        &*store,
        "rerun",
        store.rerun(&failed.execution_id, false, "ops").await,
    );
    assert_eq!(rerun.status, Status::Pending);
    let (_, retried) = Claimer::new(&job, &tick_id(&job, 1), 1, "p")
        .win(&*store)
        .await;
    assert!(
        !run_step(&*store, &retried, "step", per).await,
        "a re-run of a failed execution ran a step it had finished"
    );
    finish(&*store, &retried, Status::Completed, 1, None).await;
    // Forgotten: the completed execution's step, as a rerun of it shows.
    let (_, rerun) = Claimer::new(&job, &tick_id(&job, 0), 0, "p")
        .idempotent(false)
        .win(&*store)
        .await;
    assert!(run_step(&*store, &rerun, "step", per).await);
    finish(&*store, &rerun, Status::Completed, 2, None).await;
    // The other job's step was not touched until its job is named.
    assert_eq!(forget(vec![other.clone()], Duration::ZERO).await, 1);
}

// ---------------------------------------------------------------------------------------
// The operations API

/// The jobs of this case, as `jobs()` lists them (the Postgres schema is shared).
async fn own_jobs(store: &dyn ExecutionStore, prefix: &str) -> Vec<JobSummary> {
    ok(store, "jobs", store.jobs().await)
        .into_iter()
        .filter(|j| j.name.starts_with(prefix))
        .collect()
}

/// `jobs()` lists every job by name with its pause and its last execution that ended (a
/// running one is not an outcome); `job(name)` reads one.
async fn jobs_list_their_pause_and_last_outcome(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    fence_of(&*store, &b).await;
    fence_of(&*store, &a).await;
    let (_, first) = Claimer::new(&a, &tick_id(&a, 0), 0, "o").win(&*store).await;
    finish(&*store, &first, Status::Completed, 1, None).await;
    let (_, second) = Claimer::new(&a, &tick_id(&a, 1), 1, "o").win(&*store).await;
    finish(&*store, &second, Status::Failed, 3, Some("boom")).await;
    Claimer::new(&a, &tick_id(&a, 2), 2, "o").win(&*store).await;
    ok(
        &*store,
        "pause",
        store.pause(&b, "maintenance", "alice").await,
    );

    let jobs = own_jobs(&*store, prefix).await;
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, [a.as_str(), b.as_str()], "{}", store.describe());
    let (ja, jb) = (&jobs[0], &jobs[1]);
    assert_eq!((ja.trigger.as_str(), ja.zone.as_str()), ("every 1m", "UTC"));
    assert_eq!(ja.paused, None);
    let last = ja.last.as_ref().expect("a's last outcome");
    assert_eq!(
        (last.execution_id.as_str(), last.status, last.scheduled_at),
        (tick_id(&a, 1).as_str(), Status::Failed, tick(1)),
        "{}",
        store.describe()
    );
    assert!(last.finished_at.is_some());
    assert_eq!(ja.last_tick, Some(tick(2)));
    let pause = jb.paused.as_ref().expect("b is paused");
    assert_eq!(
        (pause.note.as_str(), pause.by.as_str()),
        ("maintenance", "alice")
    );
    assert_eq!(jb.last, None);
    assert_eq!(ok(&*store, "job", store.job(&a).await).as_ref(), Some(ja));
    let missing = format!("{prefix}-missing");
    assert_eq!(ok(&*store, "job", store.job(&missing).await), None);
}

/// History pages go newest tick first, ties broken by id, and never show a row twice nor
/// miss one across pages; statuses, since and until filter them. (One history, paged four
/// ways.)
async fn history_pages_through_every_execution(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let other = format!("{prefix}-other");
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    // Three rows on tick 1, two on tick 2, one on 3 and 4: half pending, half skipped.
    let mut ticks = Vec::new();
    for (n, ids) in [(1, 3), (2, 2), (3, 1), (4, 1)] {
        for i in 0..ids {
            let id = format!("{job}@{n}#{i}");
            let pending = LedgerTick::pending(&job, id, tick(n), "w");
            ticks.push(if (n + i) % 2 == 0 {
                pending.skipped("late")
            } else {
                pending
            });
        }
    }
    ticks.push(LedgerTick::pending(
        &other,
        format!("{other}@1"),
        tick(1),
        "w",
    ));
    ok(&*store, "record_ticks", store.record_ticks(&ticks).await);
    let mut expected: Vec<(DateTime<Utc>, String, Status)> = ticks
        .iter()
        .filter(|t| t.job == job)
        .map(|t| {
            let status = if t.skipped.is_some() {
                Status::Skipped
            } else {
                Status::Pending
            };
            (t.scheduled_at, t.execution_id.clone(), status)
        })
        .collect();
    expected.sort_by(|x, y| (y.0, &y.1).cmp(&(x.0, &x.1)));

    let pages = |query: HistoryQuery| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor = None;
            for _ in 0..20 {
                let page = ok(
                    &*store,
                    "history",
                    store.history(&query.clone().after(cursor)).await,
                );
                assert!(page.executions.len() <= query.limit, "{page:?}");
                seen.extend(
                    page.executions
                        .into_iter()
                        .map(|r| (r.scheduled_at, r.id, r.status)),
                );
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return seen,
                }
            }
            panic!("{}: history pages never end", store.describe());
        }
    };
    let all = pages(HistoryQuery::new(&job).limit(2)).await;
    assert_eq!(all, expected, "{}", store.describe());
    let skipped = pages(HistoryQuery::new(&job).limit(1).statuses([Status::Skipped])).await;
    let want: Vec<_> = expected
        .iter()
        .filter(|r| r.2 == Status::Skipped)
        .cloned()
        .collect();
    assert_eq!(skipped, want, "{}", store.describe());
    let window = pages(
        HistoryQuery::new(&job)
            .limit(3)
            .since(tick(2))
            .until(tick(4)),
    )
    .await;
    let want: Vec<_> = expected
        .iter()
        .filter(|r| r.0 >= tick(2) && r.0 < tick(4))
        .cloned()
        .collect();
    assert_eq!(window, want, "{}", store.describe());
    let none = pages(HistoryQuery::new(&job).statuses([Status::Failed])).await;
    assert!(none.is_empty(), "{none:?}");
}

/// An execution's detail shows its runs by fence: a crashed owner's run abandoned at its
/// last heartbeat, then the takeover's run with its end, attempts and error; and the run of
/// an execution abandoned by the job's next tick. (One scenario, each step on the last.)
async fn detail_shows_an_abandoned_run_and_its_takeover(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    let id = tick_id(&job, 0);
    fence_of(&*store, &job).await;
    let (_, crashed) = Claimer::new(&job, &id, 0, "owner-1")
        .liveness(SHORT)
        .win(&*store)
        .await;
    ok(&*store, "heartbeat", store.heartbeat(&crashed).await);
    let last_beat = record(&*store, &job, &id).await.heartbeat_at;
    tokio::time::sleep(PAST_SHORT).await;
    let (_, taken) = Claimer::new(&job, &id, 0, "owner-2")
        .liveness(SHORT)
        .win(&*store)
        .await;
    finish(&*store, &taken, Status::Failed, 2, Some("boom")).await;

    let detail = ok(&*store, "detail", store.execution_detail(&id).await).expect("the detail");
    assert_eq!(detail.execution.status, Status::Failed);
    let runs = &detail.runs;
    assert_eq!(runs.len(), 2, "{}: {runs:?}", store.describe());
    assert_eq!(
        (runs[0].owner.as_str(), runs[0].fence, runs[0].outcome),
        ("owner-1", crashed.fence, Some(RunOutcome::Abandoned)),
        "{}",
        store.describe()
    );
    assert_eq!(runs[0].ended_at, Some(last_beat), "{}", store.describe());
    assert_eq!(
        (
            runs[1].owner.as_str(),
            runs[1].fence,
            runs[1].outcome,
            runs[1].attempts,
            runs[1].error.as_deref()
        ),
        (
            "owner-2",
            taken.fence,
            Some(RunOutcome::Finished(Status::Failed)),
            2,
            Some("boom")
        ),
        "{}",
        store.describe()
    );
    assert!(runs[1].fence > runs[0].fence);
    assert!(runs[1].ended_at.is_some() && runs[1].started_at >= runs[0].started_at);

    // The job's next tick abandons a dead owner's execution, and its run with it.
    let next = tick_id(&job, 1);
    let (_, dead) = Claimer::new(&job, &next, 1, "owner-3")
        .liveness(SHORT)
        .win(&*store)
        .await;
    tokio::time::sleep(PAST_SHORT).await;
    Claimer::new(&job, &tick_id(&job, 2), 2, "owner-4")
        .liveness(SHORT)
        .win(&*store)
        .await;
    let detail = ok(&*store, "detail", store.execution_detail(&next).await).expect("the detail");
    assert_eq!(detail.runs.len(), 1, "{:?}", detail.runs);
    assert_eq!(
        (detail.runs[0].fence, detail.runs[0].outcome),
        (dead.fence, Some(RunOutcome::Abandoned)),
        "{}",
        store.describe()
    );
    let running = ok(
        &*store,
        "detail",
        store.execution_detail(&tick_id(&job, 2)).await,
    )
    .expect("the detail");
    assert_eq!(running.runs.len(), 1);
    assert_eq!(
        (running.runs[0].outcome, running.runs[0].ended_at),
        (None, None)
    );
    let missing = format!("{prefix}-missing@0");
    assert_eq!(
        ok(&*store, "detail", store.execution_detail(&missing).await),
        None
    );
}

/// An announce (a hand-back at shutdown) moves the control version, each time, and changes
/// no job.
async fn announce_moves_the_control_version_and_changes_nothing_else(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let before = ok(&*store, "jobs", store.job(&job).await);
    let v0 = ok(&*store, "control_version", store.control_version().await);
    ok(&*store, "announce", store.announce().await);
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    ok(&*store, "announce", store.announce().await);
    let v2 = ok(&*store, "control_version", store.control_version().await);
    assert!(v2 > v1, "{}: {v1} then {v2}", store.describe());
    assert_eq!(ok(&*store, "jobs", store.job(&job).await), before);
}

/// A pause is kept by the store, replaced (note and author, not its start) by a second
/// pause, cleared by resume; each moves the control version; an unknown job is NotFound.
async fn pause_and_resume_move_the_control_version(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    let other = format!("{prefix}-other");
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    let v0 = ok(&*store, "control_version", store.control_version().await);
    let paused = ok(&*store, "pause", store.pause(&job, "deploy", "alice").await);
    let first = paused.paused.clone().expect("paused");
    assert_eq!(
        (first.note.as_str(), first.by.as_str()),
        ("deploy", "alice")
    );
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    let again = ok(&*store, "pause", store.pause(&job, "longer", "bob").await);
    let second = again.paused.clone().expect("paused");
    assert_eq!(
        (second.note.as_str(), second.by.as_str(), second.at),
        ("longer", "bob", first.at)
    );
    let v2 = ok(&*store, "control_version", store.control_version().await);
    assert!(v2 > v1, "{}: {v1} then {v2}", store.describe());
    let jobs = [job.clone(), other.clone()];
    assert_eq!(
        ok(&*store, "paused", store.paused(&jobs).await),
        [(job.clone(), second.clone())]
    );
    let read = ok(&*store, "job", store.job(&job).await).expect("the job");
    assert_eq!(read.paused, Some(second));

    let before_resume = chrono::Utc::now();
    let resumed = ok(&*store, "resume", store.resume(&job).await);
    assert_eq!(resumed.paused, None);
    // The ticks skipped while paused are accounted for: a scheduler that starts later does
    // not count them as missed. A resume of a job that is not paused changes nothing.
    let accounted = resumed.last_tick.expect("the resume moved last_tick");
    assert!(
        accounted >= before_resume - chrono::Duration::seconds(5),
        "{}: last_tick {accounted} before the resume at {before_resume}",
        store.describe()
    );
    let again = ok(&*store, "resume", store.resume(&job).await);
    assert_eq!(again.last_tick, Some(accounted), "{}", store.describe());
    let v3 = ok(&*store, "control_version", store.control_version().await);
    assert!(v3 > v2, "{}: {v2} then {v3}", store.describe());
    assert!(ok(&*store, "paused", store.paused(&jobs).await).is_empty());

    let missing = format!("{prefix}-missing");
    for result in [
        store.pause(&missing, "x", "y").await,
        store.resume(&missing).await,
    ] {
        match result {
            Err(StoreError::NotFound { message }) => assert!(
                message.contains(&format!("no job `{missing}`"))
                    && message.contains("`tickguard jobs`"),
                "{message}"
            ),
            other => panic!("{}: expected NotFound, got {other:?}", store.describe()),
        }
    }
}

/// A trigger records a pending execution asked for by its author, listed by `interrupted`
/// as requested; concurrent claims of it have one winner, and once it completed it is not
/// claimed again. (One scenario, each step on the last.)
/// A job with more pending ticks than one look returns (a paused job holds them, an
/// outage leaves them): a manual execution asked for now still comes first.
async fn a_backlog_never_keeps_a_request_waiting(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let now = Utc::now();
    let backlog: Vec<LedgerTick> = (1..=2 * INTERRUPTED_PER_JOB as i64)
        .map(|n| {
            let at = now - chrono::Duration::minutes(n);
            LedgerTick::pending(&job, format!("{job}@backlog-{n}"), at, "w")
        })
        .collect();
    ok(&*store, "record_ticks", store.record_ticks(&backlog).await);
    let manual = ok(&*store, "trigger", store.trigger(&job, "alice").await);
    let jobs = [job.clone()];
    for limit in [1, 10, 100] {
        let listed = ok(
            &*store,
            "interrupted",
            store.interrupted(&jobs, LONG, limit).await,
        );
        assert_eq!(
            listed
                .first()
                .map(|i| (i.execution_id.as_str(), i.requested)),
            Some((manual.id.as_str(), true)),
            "{}: limit {limit}: {listed:?}",
            store.describe()
        );
    }
}

async fn trigger_asks_for_one_manual_execution(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let v0 = ok(&*store, "control_version", store.control_version().await);
    let manual = ok(&*store, "trigger", store.trigger(&job, "alice").await);
    assert!(
        manual.id.starts_with(&format!("{job}@manual-")),
        "{}",
        manual.id
    );
    assert_eq!(
        (
            manual.job.as_str(),
            manual.status,
            manual.attempts,
            manual.requested_by.as_deref()
        ),
        (job.as_str(), Status::Pending, 0, Some("alice"))
    );
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    let jobs = [job.clone()];
    let listed = ok(
        &*store,
        "interrupted",
        store.interrupted(&jobs, LONG, 10).await,
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].execution_id.as_str(),
            listed[0].status,
            listed[0].requested
        ),
        (manual.id.as_str(), Status::Pending, true)
    );

    let start = Arc::new(tokio::sync::Barrier::new(6));
    let claims: Vec<_> = (0..6)
        .map(|i| {
            let (store, job, id, start) =
                (store.clone(), job.clone(), manual.id.clone(), start.clone());
            let at = manual.scheduled_at;
            tokio::spawn(async move {
                start.wait().await;
                let owner = format!("owner-{i}");
                let request = ClaimRequest::new(&job, &id, at, &owner);
                store.claim(&request).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in claims {
        if let Claim::Acquired(claimed) = claim.await.unwrap() {
            winners.push(claimed);
        }
    }
    assert_eq!(winners.len(), 1, "{}: {winners:?}", store.describe());
    let exec = ExecutionRef {
        job: job.clone(),
        execution_id: manual.id.clone(),
        fence: winners[0].fence,
    };
    finish(&*store, &exec, Status::Completed, 1, None).await;
    let request = ClaimRequest::new(&job, &manual.id, manual.scheduled_at, "late");
    assert_eq!(
        ok(&*store, "claim", store.claim(&request).await),
        Claim::Done {
            status: Status::Completed
        }
    );
    let record = record(&*store, &job, &manual.id).await;
    assert_eq!(record.requested_by.as_deref(), Some("alice"));
    let missing = format!("{prefix}-missing");
    assert!(matches!(
        store.trigger(&missing, "alice").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Re-runs: failed, timed-out and cancelled executions become pending again with their
/// attempts from zero and their runs kept; completed ones only when forced, which also
/// drops the checkpoint; pending and running ones are refused, unknown ones not found. (One
/// scenario: each rule on the execution the one before left.)
async fn rerun_follows_the_rules(store: Arc<dyn ExecutionStore>, prefix: &str) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let id = tick_id(&job, 0);
    let (_, exec) = Claimer::new(&job, &id, 0, "o").win(&*store).await;
    ok(
        &*store,
        "checkpoint",
        store.checkpoint(&exec, r#"{"at":1}"#).await,
    );
    finish(&*store, &exec, Status::Failed, 3, Some("boom")).await;
    let v0 = ok(&*store, "control_version", store.control_version().await);
    let again = ok(&*store, "rerun", store.rerun(&id, false, "alice").await);
    assert_eq!(
        (
            again.status,
            again.attempts,
            again.error.as_deref(),
            again.finished_at,
            again.requested_by.as_deref(),
            again.checkpoint.as_deref()
        ),
        (
            Status::Pending,
            0,
            None,
            None,
            Some("alice"),
            Some(r#"{"at":1}"#)
        ),
        "{}",
        store.describe()
    );
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    let (claimed, exec) = Claimer::new(&job, &id, 0, "o2").win(&*store).await;
    assert_eq!(claimed.previous_attempts, 0, "{claimed:?}");
    finish(&*store, &exec, Status::Completed, 1, None).await;
    let detail = ok(&*store, "detail", store.execution_detail(&id).await).expect("the detail");
    assert_eq!(detail.runs.len(), 2, "the runs are kept: {:?}", detail.runs);

    // Completed: only with force, which drops the checkpoint.
    match store.rerun(&id, false, "alice").await {
        Err(StoreError::Refused { message }) => {
            assert!(message.contains("--force"), "{message}");
        }
        other => panic!("{}: expected Refused, got {other:?}", store.describe()),
    }
    let forced = ok(&*store, "rerun", store.rerun(&id, true, "bob").await);
    assert_eq!(
        (
            forced.status,
            forced.checkpoint,
            forced.requested_by.as_deref()
        ),
        (Status::Pending, None, Some("bob"))
    );
    // Pending (just re-run) and running ones are refused.
    match store.rerun(&id, true, "alice").await {
        Err(StoreError::Refused { message }) => {
            assert!(message.contains("already waiting to run"), "{message}");
        }
        other => panic!("{}: expected Refused, got {other:?}", store.describe()),
    }
    let running = tick_id(&job, 1);
    let (_, exec) = Claimer::new(&job, &running, 1, "o3").win(&*store).await;
    match store.rerun(&running, true, "alice").await {
        Err(StoreError::Refused { message }) => {
            assert!(message.contains("is running"), "{message}");
        }
        other => panic!("{}: expected Refused, got {other:?}", store.describe()),
    }
    // Cancelled: no force needed.
    finish(&*store, &exec, Status::Cancelled, 1, Some("shutdown")).await;
    let cancelled = ok(
        &*store,
        "rerun",
        store.rerun(&running, false, "alice").await,
    );
    assert_eq!(cancelled.status, Status::Pending);
    let missing = format!("{prefix}-missing@0");
    assert!(matches!(
        store.rerun(&missing, true, "alice").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A prune deletes the ended executions its retention lets go, never pending or running
/// ones nor another job's; a dry run deletes nothing; `at_most_every` makes a second prune
/// of the same job wait its turn; a claim of a pruned tick answers Pruned. (One scenario on
/// one history, each step on what the one before left.)
async fn prune_deletes_by_retention_and_never_reruns_a_tick(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let (job, other) = (format!("{prefix}-job"), format!("{prefix}-other"));
    fence_of(&*store, &job).await;
    fence_of(&*store, &other).await;
    for (n, status) in [
        (0, Status::Completed),
        (1, Status::Failed),
        (3, Status::Cancelled),
    ] {
        let (_, exec) = Claimer::new(&job, &tick_id(&job, n), n, "o")
            .win(&*store)
            .await;
        finish(&*store, &exec, status, 1, None).await;
    }
    let (_, exec) = Claimer::new(&other, &tick_id(&other, 0), 0, "o")
        .win(&*store)
        .await;
    finish(&*store, &exec, Status::Completed, 1, None).await;
    let ledger = [
        LedgerTick::pending(&job, tick_id(&job, 2), tick(2), "w").skipped("late"),
        LedgerTick::pending(&job, tick_id(&job, 5), tick(5), "w"),
        LedgerTick::pending(&job, tick_id(&job, -2), tick(-2), "w"),
    ];
    ok(&*store, "record_ticks", store.record_ticks(&ledger).await);
    let (_, running) = Claimer::new(&job, &tick_id(&job, 4), 4, "o")
        .win(&*store)
        .await;

    let retention = Retention::keep_forever()
        .completed(Some(Duration::ZERO))
        .skipped(Some(Duration::ZERO))
        .failed(Some(Duration::ZERO));
    let request = PruneRequest::new(retention).jobs(vec![job.clone()]);
    let expected = vec![
        (Status::Completed, 1),
        (Status::Skipped, 1),
        (Status::Failed, 1),
    ];
    let dry = ok(
        &*store,
        "prune",
        store.prune(&request.clone().dry_run(true)).await,
    );
    assert!(dry.ran);
    assert_eq!(dry.deleted, expected, "{}", store.describe());
    assert_eq!(
        executions(&*store, &job).await.len(),
        7,
        "a dry run deletes nothing"
    );

    let pruned = ok(&*store, "prune", store.prune(&request).await);
    assert!(pruned.ran);
    assert_eq!(pruned.deleted, expected, "{}", store.describe());
    let mut left: Vec<(String, Status)> = executions(&*store, &job)
        .await
        .into_iter()
        .map(|r| (r.id, r.status))
        .collect();
    left.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (tick_id(&job, 3), Status::Cancelled),
        (tick_id(&job, 4), Status::Running),
        (tick_id(&job, 5), Status::Pending),
        (tick_id(&job, -2), Status::Pending),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(left, want, "{}", store.describe());
    assert_eq!(
        executions(&*store, &other).await.len(),
        1,
        "another job's history stays"
    );
    assert_eq!(
        ok(
            &*store,
            "detail",
            store.execution_detail(&tick_id(&job, 0)).await
        ),
        None
    );

    // Ticks at or before the latest pruned one, with no record, are not run (again).
    finish(&*store, &running, Status::Completed, 1, None).await;
    for n in [0, 1, 2, -1] {
        let claim = Claimer::new(&job, &tick_id(&job, n), n, "late")
            .claim(&*store)
            .await;
        assert_eq!(claim, Claim::Pruned, "{}: tick {n}", store.describe());
        let claim = Claimer::new(&job, &tick_id(&job, n), n, "late")
            .idempotent(false)
            .claim(&*store)
            .await;
        assert_eq!(claim, Claim::Pruned, "{}: tick {n}", store.describe());
    }
    assert_eq!(
        ok(
            &*store,
            "execution",
            store.execution(&tick_id(&job, 0)).await
        ),
        None,
        "a pruned claim records nothing"
    );
    // Nor does the ledger: a tick noted late (an instance that lagged, a retried flush)
    // at or before the latest pruned tick is not recorded, so it cannot be run from there.
    let late = [LedgerTick::pending(&job, tick_id(&job, 0), tick(0), "late")];
    ok(&*store, "record_ticks", store.record_ticks(&late).await);
    assert_eq!(
        ok(
            &*store,
            "execution",
            store.execution(&tick_id(&job, 0)).await
        ),
        None,
        "{}: the ledger recorded a pruned tick",
        store.describe()
    );
    // A pending tick kept from before the watermark is still skipped by its policy.
    let skip = [LedgerTick::pending(&job, tick_id(&job, -2), tick(-2), "late").skipped("late")];
    let skipped = ok(&*store, "record_ticks", store.record_ticks(&skip).await);
    assert_eq!(skipped, vec![tick_id(&job, -2)], "{}", store.describe());
    assert_eq!(
        record(&*store, &job, &tick_id(&job, -2)).await.status,
        Status::Skipped
    );
    // A kept execution before the watermark, and a tick after it, are claimed as ever.
    let (resumed, exec) = Claimer::new(&job, &tick_id(&job, 3), 3, "o")
        .win(&*store)
        .await;
    assert!(resumed.resumed);
    finish(&*store, &exec, Status::Completed, 1, None).await;
    Claimer::new(&job, &tick_id(&job, 9), 9, "o")
        .win(&*store)
        .await;

    // Instances pruning on a timer take turns per job.
    let every = PruneRequest::new(retention)
        .jobs(vec![other.clone()])
        .at_most_every(Duration::from_secs(3600));
    let first = ok(&*store, "prune", store.prune(&every).await);
    assert!(first.ran);
    assert_eq!(first.total(), 1, "{first:?}");
    let second = ok(&*store, "prune", store.prune(&every).await);
    assert!(!second.ran, "{}: {second:?}", store.describe());
    assert_eq!(second.total(), 0);
}

/// The interrupted executions of `job`, judged with `liveness`.
/// Expects the execution `id` of `job`, cancelled with a request, to be final: never listed
/// as interrupted, a claim of it (idempotent or not) is done, and a second request is refused
/// as ended.
async fn is_final(store: &dyn ExecutionStore, job: &str, id: &str) {
    assert_eq!(
        interrupted_of(store, job, LONG).await,
        Vec::<String>::new(),
        "{}: a cancelled execution asked to stop is not resumed",
        store.describe()
    );
    for idempotent in [true, false] {
        let claim = Claimer::new(job, id, 0, "late")
            .idempotent(idempotent)
            .claim(store)
            .await;
        let done = Claim::Done {
            status: Status::Cancelled,
        };
        assert_eq!(claim, done, "{}: idempotent {idempotent}", store.describe());
    }
    match store
        .request_cancel(id, CancelKind::Operator, "", "bob")
        .await
    {
        Err(StoreError::Refused { message }) => {
            assert!(message.contains("already ended"), "{message}");
        }
        other => panic!("{}: expected Refused, got {other:?}", store.describe()),
    }
}

async fn interrupted_of(store: &dyn ExecutionStore, job: &str, liveness: Duration) -> Vec<String> {
    let jobs = [job.to_owned()];
    let found = store.interrupted(&jobs, liveness, 100).await;
    ok(store, "interrupted", found)
        .into_iter()
        .map(|i| i.execution_id)
        .collect()
}

/// A cancel request on a running execution: recorded, listed by `cancel_requests` (asking
/// again replaces the note), the control version moved; once its run ended CANCELLED it is
/// final: never listed as interrupted, a claim of it (idempotent or not) is done, a second
/// request is refused. A re-run clears the request and runs like any other.
async fn a_cancel_request_on_a_running_execution_is_listed_and_final(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let id = tick_id(&job, 0);
    let (_, exec) = Claimer::new(&job, &id, 0, "o").win(&*store).await;
    let v0 = ok(&*store, "control_version", store.control_version().await);
    let asked = store.request_cancel(&id, CancelKind::Operator, "bad input", "alice");
    let asked = ok(&*store, "request_cancel", asked.await);
    assert_eq!(
        (asked.id.as_str(), asked.status),
        (id.as_str(), Status::Running)
    );
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    let again = store.request_cancel(&id, CancelKind::Operator, "really", "bob");
    ok(&*store, "request_cancel", again.await);
    let jobs = [job.clone()];
    let listed = ok(
        &*store,
        "cancel_requests",
        store.cancel_requests(&jobs).await,
    );
    assert_eq!(listed.len(), 1, "{}: {listed:?}", store.describe());
    let request = &listed[0];
    assert_eq!(
        (
            request.execution_id.as_str(),
            request.job.as_str(),
            request.kind,
            request.note.as_str(),
            request.by.as_str()
        ),
        (
            id.as_str(),
            job.as_str(),
            CancelKind::Operator,
            "really",
            "bob"
        ),
        "{}",
        store.describe()
    );
    assert_eq!(request.describe(), "cancelled by bob: really");
    assert!(
        (Utc::now() - request.at).num_seconds().abs() < 60,
        "{}: asked at {}",
        store.describe(),
        request.at
    );

    finish(
        &*store,
        &exec,
        Status::Cancelled,
        1,
        Some("cancelled by bob: really"),
    )
    .await;
    let listed = ok(
        &*store,
        "cancel_requests",
        store.cancel_requests(&jobs).await,
    );
    assert!(listed.is_empty(), "{}: {listed:?}", store.describe());
    is_final(&*store, &job, &id).await;

    // A re-run clears the request: it is claimed and run again.
    let rerun = ok(&*store, "rerun", store.rerun(&id, false, "carol").await);
    assert_eq!(rerun.status, Status::Pending);
    let (_, exec) = Claimer::new(&job, &id, 0, "o2").win(&*store).await;
    let listed = ok(
        &*store,
        "cancel_requests",
        store.cancel_requests(&jobs).await,
    );
    assert!(listed.is_empty(), "{}: {listed:?}", store.describe());
    finish(&*store, &exec, Status::Completed, 1, None).await;
}

/// A cancel request on an execution handed back at shutdown (CANCELLED, waiting to be
/// resumed elsewhere) makes it final: it is no longer listed as interrupted, a claim of it is
/// done, its error says who asked; a second request is refused.
async fn a_cancel_request_on_a_handed_back_execution_makes_it_final(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let id = tick_id(&job, 0);
    let (_, exec) = Claimer::new(&job, &id, 0, "o").win(&*store).await;
    finish(&*store, &exec, Status::Cancelled, 1, Some("shutdown")).await;
    assert_eq!(
        interrupted_of(&*store, &job, LONG).await,
        vec![id.clone()],
        "{}: handed back, it waits to be resumed",
        store.describe()
    );
    let asked = store.request_cancel(&id, CancelKind::Operator, "bad input", "alice");
    let asked = ok(&*store, "request_cancel", asked.await);
    assert_eq!(
        (asked.status, asked.error.as_deref()),
        (Status::Cancelled, Some("cancelled by alice: bad input")),
        "{}",
        store.describe()
    );
    is_final(&*store, &job, &id).await;
}

/// A cancel request on a pending execution (a trigger not run yet) records it CANCELLED at
/// once, saying who asked, and no claim runs it; an unknown id is not found, an execution
/// that ended is refused.
async fn a_cancel_request_on_a_pending_execution_cancels_it_at_once(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let manual = ok(&*store, "trigger", store.trigger(&job, "alice").await);
    let v0 = ok(&*store, "control_version", store.control_version().await);
    let asked = store.request_cancel(&manual.id, CancelKind::Operator, "not today", "bob");
    let asked = ok(&*store, "request_cancel", asked.await);
    assert_eq!(
        (asked.status, asked.error.as_deref()),
        (Status::Cancelled, Some("cancelled by bob: not today")),
        "{}",
        store.describe()
    );
    assert!(asked.finished_at.is_some(), "{asked:?}");
    let v1 = ok(&*store, "control_version", store.control_version().await);
    assert!(v1 > v0, "{}: {v0} then {v1}", store.describe());
    assert_eq!(
        interrupted_of(&*store, &job, LONG).await,
        Vec::<String>::new()
    );
    let jobs = [job.clone()];
    let listed = ok(
        &*store,
        "cancel_requests",
        store.cancel_requests(&jobs).await,
    );
    assert!(listed.is_empty(), "{}: {listed:?}", store.describe());
    let request = ClaimRequest::new(&job, &manual.id, manual.scheduled_at, "o");
    assert_eq!(
        ok(&*store, "claim", store.claim(&request).await),
        Claim::Done {
            status: Status::Cancelled
        },
        "{}",
        store.describe()
    );

    let missing = format!("{prefix}-missing@0");
    assert!(
        matches!(
            store
                .request_cancel(&missing, CancelKind::Operator, "", "bob")
                .await,
            Err(StoreError::NotFound { .. })
        ),
        "{}",
        store.describe()
    );
    let id = tick_id(&job, 0);
    let (_, exec) = Claimer::new(&job, &id, 0, "o").win(&*store).await;
    finish(&*store, &exec, Status::Completed, 1, None).await;
    match store
        .request_cancel(&id, CancelKind::Superseded, "superseded by tick 1", "o2")
        .await
    {
        Err(StoreError::Refused { message }) => {
            assert!(message.contains("already ended (COMPLETED)"), "{message}");
        }
        other => panic!("{}: expected Refused, got {other:?}", store.describe()),
    }
}

/// A cancel request on a running execution whose owner then stops heartbeating: it is not
/// listed as interrupted nor claimed again (a claim of it is done), and the claim of the
/// job's next tick that abandons it records it CANCELLED, final.
async fn a_cancel_request_on_a_dead_owner_makes_its_abandonment_final(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    fence_of(&*store, &job).await;
    let id = tick_id(&job, 0);
    Claimer::new(&job, &id, 0, "o")
        .liveness(SHORT)
        .win(&*store)
        .await;
    let asked = store.request_cancel(&id, CancelKind::Superseded, "superseded by tick 1", "o2");
    ok(&*store, "request_cancel", asked.await);
    // The owner dies without recording the end.
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        interrupted_of(&*store, &job, SHORT).await,
        Vec::<String>::new(),
        "{}: a dead owner's execution asked to stop is not resumed",
        store.describe()
    );
    let claim = Claimer::new(&job, &id, 0, "late")
        .liveness(SHORT)
        .claim(&*store)
        .await;
    assert_eq!(
        claim,
        Claim::Done {
            status: Status::Cancelled
        },
        "{}",
        store.describe()
    );
    let next = tick_id(&job, 1);
    let (_, exec) = Claimer::new(&job, &next, 1, "o2")
        .liveness(SHORT)
        .win(&*store)
        .await;
    let abandoned = record(&*store, &job, &id).await;
    assert_eq!(abandoned.status, Status::Cancelled, "{abandoned:?}");
    assert!(
        abandoned
            .error
            .as_deref()
            .is_some_and(|e| e.contains("asked to stop")),
        "{abandoned:?}"
    );
    finish(&*store, &exec, Status::Completed, 1, None).await;
    assert_eq!(
        interrupted_of(&*store, &job, SHORT).await,
        Vec::<String>::new(),
        "{}",
        store.describe()
    );
}

/// A job's last resume is recorded, by the store's clock, only when it resumes a paused job
/// (`pause_on_failure` counts the failures after it); a registration records the job's
/// circuit breaker settings (the command line shows them), and the next registration's
/// replace them.
async fn a_resume_is_recorded_and_a_breaker_registered(
    store: Arc<dyn ExecutionStore>,
    prefix: &str,
) {
    let job = format!("{prefix}-job");
    let breaker = CircuitBreaker::new()
        .name("payments")
        .failure_rate(0.25)
        .window(8)
        .min_runs(4)
        .open_for(Duration::from_millis(1500));
    let registration = JobRegistration::new(&job, "every 1m".to_owned(), "UTC".to_owned(), None)
        .circuit_breaker(Some(breaker.clone()));
    ok(&*store, "register", store.register(&registration).await);
    let read = ok(&*store, "job", store.job(&job).await).expect("the job");
    assert_eq!(read.circuit_breaker, Some(breaker), "{}", store.describe());
    assert_eq!(read.resumed_at, None, "{}", store.describe());

    let not_paused = ok(&*store, "resume", store.resume(&job).await);
    assert_eq!(
        not_paused.resumed_at,
        None,
        "{}: a job that was not paused was not resumed",
        store.describe()
    );
    ok(&*store, "pause", store.pause(&job, "deploy", "alice").await);
    let before = chrono::Utc::now();
    let resumed = ok(&*store, "resume", store.resume(&job).await);
    let at = resumed.resumed_at.expect("the resume is recorded");
    let slack = chrono::Duration::seconds(5);
    assert!(
        at >= before - slack && at <= chrono::Utc::now() + slack,
        "{}: resumed at {at}, resumed around {before}",
        store.describe()
    );
    let again = ok(&*store, "resume", store.resume(&job).await);
    assert_eq!(again.resumed_at, Some(at), "{}", store.describe());
    let listed = ok(&*store, "jobs", store.jobs().await);
    let listed = listed.iter().find(|j| j.name == job).expect("listed");
    assert_eq!(listed.resumed_at, Some(at), "{}", store.describe());

    let without = JobRegistration::new(&job, "every 1m".to_owned(), "UTC".to_owned(), None);
    ok(&*store, "register", store.register(&without).await);
    let read = ok(&*store, "job", store.job(&job).await).expect("the job");
    assert_eq!(read.circuit_breaker, None, "{}", store.describe());
    ok(
        &*store,
        "register_all",
        store
            .register_all(std::slice::from_ref(&registration))
            .await,
    );
    let read = ok(&*store, "job", store.job(&job).await).expect("the job");
    assert_eq!(
        read.circuit_breaker,
        registration.circuit_breaker,
        "{}: register_all records the breaker too",
        store.describe()
    );
}
