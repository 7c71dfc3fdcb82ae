//! The store methods whose bodies are the same on both SQL databases, expanded per database
//! by a macro (over `sqlx::Database` their trait bounds would outweigh them).
//!
//! Where the macros expand, the store module provides:
//! - `self.pool`, `self.sql` (its statements: `register`, `last_checkpoint`, `executions`,
//!   `execution`, `dead_letters`, `checkpoint`), `self.error(what, e)`;
//! - `self.run(op)`: runs `op(retried)`, once or (PostgreSQL, on a dead connection) twice;
//! - `self.claim_once(request, retried)`: one try of a claim;
//! - `self.interrupted_rows(jobs, liveness, limit)`: the rows of `interrupted`;
//! - types `Instant` (how the database stores an instant), `ExecutionRow` and
//!   `InterruptedRow`, and `fn at(DateTime<Utc>) -> Instant`;
//! - for the operations API, what [`operations_methods`] and [`operations_helpers`] name.

/// The store's pool (type `$pool`), and the statements a
/// [`JobContext::transaction`](crate::JobContext::transaction) runs: `fence_check` before it
/// commits (`$1` id, `$2` fence: returns a row, locking it, if the run still holds its
/// execution) and `checkpoint_statement` for
/// [`FencedTransaction::checkpoint`](crate::transaction::FencedTransaction::checkpoint) (`$3` the
/// JSON).
macro_rules! accessors {
    ($pool:ty) => {
        /// The pool the store's statements go through.
        pub fn pool(&self) -> &$pool {
            &self.pool
        }

        /// The statement that a [`JobContext::transaction`](crate::JobContext::transaction)
        /// runs before it commits: it returns the execution's row (locking it where the
        /// database locks rows) if this run still holds it.
        pub(crate) fn fence_check(&self) -> std::sync::Arc<str> {
            self.sql.fence_check.clone()
        }

        /// The fenced checkpoint statement (`$1` id, `$2` fence, `$3` the JSON), for
        /// [`FencedTransaction::checkpoint`](crate::transaction::FencedTransaction::checkpoint).
        pub(crate) fn checkpoint_statement(&self) -> String {
            self.sql.checkpoint.clone()
        }
    };
}

pub(crate) use accessors;

/// `fenced_write`: a fenced one-statement write on database `$db`, `$1` the execution id,
/// `$2` its fence, then what `bind` adds. No row touched means the run is stale.
macro_rules! fenced_write {
    ($db:ty) => {
        /// Runs a fenced one-statement write: `$1` the id, `$2` the fence, then what `bind`
        /// adds. No row touched means the run is stale.
        async fn fenced_write<'q>(
            &self,
            what: &str,
            exec: &ExecutionRef,
            statement: &'q str,
            bind: impl Fn(
                sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
        ) -> Result<(), StoreError> {
            let done = self
                .run(|_| {
                    bind(
                        sqlx::query(sqlx::AssertSqlSafe(statement))
                            .bind(exec.execution_id.as_str())
                            .bind($crate::store::sql::db_fence(exec.fence)),
                    )
                    .execute(&self.pool)
                })
                .await
                .map_err(|e| self.error(what, e))?;
            if done.rows_affected() == 1 {
                Ok(())
            } else {
                Err($crate::store::sql::fenced(exec))
            }
        }
    };
}

pub(crate) use fenced_write;

/// The [`ExecutionStore`](crate::store::ExecutionStore) methods that read rows, claim,
/// start a step and checkpoint, the same on both databases.
macro_rules! execution_store_methods {
    () => {
        fn register<'a>(
            &'a self,
            job: &'a JobRegistration<'a>,
        ) -> BoxFuture<'a, Result<JobRecord, StoreError>> {
            Box::pin(async move {
                let row: (i64, Instant, Option<Instant>) = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.sql.register.as_str()))
                            .bind(job.name)
                            .bind(&job.trigger)
                            .bind(&job.zone)
                            .bind(job.next_fire.map(at))
                            .bind(at(job.registered_at))
                            .bind($crate::store::sql::stored_breaker(job))
                            .fetch_one(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error(&format!("registering job `{}`", job.name), e))?;
                Ok($crate::store::sql::job_record(job.name, row))
            })
        }

        fn claim<'a>(
            &'a self,
            request: &'a ClaimRequest<'a>,
        ) -> BoxFuture<'a, Result<Claim, StoreError>> {
            Box::pin(async move {
                self.run(|retried| self.claim_once(request, retried))
                    .await
                    .map_err(|e| {
                        self.error(
                            &format!("the claim of execution `{}`", request.execution_id),
                            e,
                        )
                    })?
                    .map_err(
                        |$crate::store::sql::dialect::Refused(message)| StoreError::Refused {
                            message,
                        },
                    )
            })
        }

        fn checkpoint<'a>(
            &'a self,
            exec: &'a ExecutionRef,
            state: &'a str,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(
                self.fenced_write("a checkpoint", exec, &self.sql.checkpoint, move |q| {
                    q.bind(state)
                }),
            )
        }

        fn last_checkpoint<'a>(
            &'a self,
            exec: &'a ExecutionRef,
        ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
            Box::pin(async move {
                let row: Option<Option<String>> = self
                    .run(|_| {
                        sqlx::query_scalar(sqlx::AssertSqlSafe(self.sql.last_checkpoint.as_str()))
                            .bind(&exec.execution_id)
                            .bind($crate::store::sql::db_fence(exec.fence))
                            .fetch_optional(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("reading the checkpoint", e))?;
                row.ok_or_else(|| $crate::store::sql::fenced(exec))
            })
        }

        fn once_begin<'a>(
            &'a self,
            exec: &'a ExecutionRef,
            key: &'a str,
            scope: $crate::store::OnceScope,
        ) -> BoxFuture<'a, Result<OnceState, StoreError>> {
            Box::pin(async move {
                let stored = scope.stored_key(exec, key);
                let per_execution = scope.per_execution();
                match self
                    .run(|_| {
                        $crate::store::sql::dialect::once_begin(self, exec, &stored, per_execution)
                    })
                    .await
                    .map_err(|e| self.error(&format!("starting step `{key}`"), e))?
                {
                    $crate::store::sql::dialect::Step::State(state) => Ok(state),
                    $crate::store::sql::dialect::Step::Fenced => {
                        Err($crate::store::sql::fenced(exec))
                    }
                }
            })
        }

        fn executions<'a>(
            &'a self,
            job: &'a str,
            limit: usize,
        ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
            Box::pin(async move {
                let rows: Vec<ExecutionRow> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.sql.executions.as_str()))
                            .bind(job)
                            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error(&format!("reading the history of `{job}`"), e))?;
                $crate::store::sql::records(rows).map_err(|e| self.error("reading executions", e))
            })
        }

        fn execution<'a>(
            &'a self,
            id: &'a str,
        ) -> BoxFuture<'a, Result<Option<ExecutionRecord>, StoreError>> {
            Box::pin(async move {
                let row: Option<ExecutionRow> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.sql.execution.as_str()))
                            .bind(id)
                            .fetch_optional(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error(&format!("reading execution `{id}`"), e))?;
                row.map($crate::store::sql::record)
                    .transpose()
                    .map_err(|e| self.error(&format!("reading execution `{id}`"), e))
            })
        }

        fn dead_letters<'a>(
            &'a self,
            job: Option<&'a str>,
            limit: usize,
        ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
            Box::pin(async move {
                let rows: Vec<ExecutionRow> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.sql.dead_letters.as_str()))
                            .bind(job)
                            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("reading the dead letters", e))?;
                $crate::store::sql::records(rows).map_err(|e| self.error("reading executions", e))
            })
        }

        fn interrupted<'a>(
            &'a self,
            jobs: &'a [String],
            liveness: std::time::Duration,
            limit: usize,
        ) -> BoxFuture<'a, Result<Vec<Interrupted>, StoreError>> {
            Box::pin(async move {
                let rows: Vec<InterruptedRow> = self
                    .run(|_| self.interrupted_rows(jobs, liveness, limit))
                    .await
                    .map_err(|e| self.error("looking for interrupted executions", e))?;
                rows.into_iter()
                    .map($crate::store::sql::interrupted)
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.error("looking for interrupted executions", e))
            })
        }
    };
}

pub(crate) use execution_store_methods;

/// The [`ExecutionStore`](crate::store::ExecutionStore) methods of the operations API, the
/// same on both databases. Besides what [`execution_store_methods`] takes, the store module
/// provides `self.ops` (its operations statements: `history`, `runs`, `pause`, `resume`,
/// `trigger`, `rerun`, `paused`, `control_version`), the helpers of [`operations_helpers`],
/// `Self::name_list(names)` (a list of names as the database binds one) and the type
/// `Attempt` (how the database stores attempts).
macro_rules! operations_methods {
    () => {
        fn jobs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<$crate::store::JobSummary>, StoreError>> {
            Box::pin(self.job_summaries(None))
        }

        fn job<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<$crate::store::JobSummary>, StoreError>> {
            Box::pin(async move { Ok(self.job_summaries(Some(name)).await?.pop()) })
        }

        fn history<'a>(
            &'a self,
            query: &'a $crate::store::HistoryQuery,
        ) -> BoxFuture<'a, Result<$crate::store::HistoryPage, StoreError>> {
            Box::pin(async move {
                let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
                let statuses = Self::name_list(&statuses);
                let limit = query.limit.max(1);
                let rows: Vec<ExecutionRow> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.ops.history.as_str()))
                            .bind(&query.job)
                            .bind(&statuses)
                            .bind(query.since.map(at))
                            .bind(query.until.map(at))
                            .bind(query.after.as_ref().map(|c| at(c.scheduled_at)))
                            .bind(query.after.as_ref().map(|c| c.id.as_str()))
                            .bind(i64::try_from(limit).map_or(i64::MAX, |n| n.saturating_add(1)))
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| {
                        self.error(&format!("reading the history of `{}`", query.job), e)
                    })?;
                let records = $crate::store::sql::records(rows)
                    .map_err(|e| self.error("reading executions", e))?;
                Ok($crate::store::HistoryPage::from_rows(records, limit))
            })
        }

        fn execution_detail<'a>(
            &'a self,
            id: &'a str,
        ) -> BoxFuture<'a, Result<Option<$crate::store::ExecutionDetail>, StoreError>> {
            Box::pin(async move {
                let Some(execution) = self.execution(id).await? else {
                    return Ok(None);
                };
                let what = format!("reading the runs of `{id}`");
                let rows: Vec<$crate::store::sql::RunRow<Instant, Attempt>> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.ops.runs.as_str()))
                            .bind(id)
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error(&what, e))?;
                let runs = rows
                    .into_iter()
                    .map($crate::store::sql::run)
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.error(&what, e))?;
                Ok(Some($crate::store::ExecutionDetail { execution, runs }))
            })
        }

        fn pause<'a>(
            &'a self,
            job: &'a str,
            note: &'a str,
            by: &'a str,
        ) -> BoxFuture<'a, Result<$crate::store::JobSummary, StoreError>> {
            Box::pin(async move {
                let what = format!("pausing job `{job}`");
                let stamp = Some(chrono::Utc::now());
                if !self
                    .control_change(&what, &self.ops.pause, stamp, |q| {
                        q.bind(job).bind(note).bind(by)
                    })
                    .await?
                {
                    return Err($crate::store::sql::no_job(job));
                }
                self.existing_job(job).await
            })
        }

        fn resume<'a>(
            &'a self,
            job: &'a str,
        ) -> BoxFuture<'a, Result<$crate::store::JobSummary, StoreError>> {
            Box::pin(async move {
                let what = format!("resuming job `{job}`");
                if !self
                    .control_change(&what, &self.ops.resume, Some(chrono::Utc::now()), |q| {
                        q.bind(job)
                    })
                    .await?
                {
                    return Err($crate::store::sql::no_job(job));
                }
                self.existing_job(job).await
            })
        }

        fn trigger<'a>(
            &'a self,
            job: &'a str,
            by: &'a str,
        ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
            Box::pin(async move {
                let now = chrono::Utc::now();
                let id = $crate::store::sql::manual_id(job, now);
                let what = format!("triggering job `{job}`");
                if !self
                    .control_change(&what, &self.ops.trigger, Some(now), |q| {
                        q.bind(job).bind(id.as_str()).bind(by)
                    })
                    .await?
                {
                    return Err($crate::store::sql::no_job(job));
                }
                self.execution(&id)
                    .await?
                    .ok_or_else(|| $crate::store::sql::no_execution(&id))
            })
        }

        fn rerun<'a>(
            &'a self,
            id: &'a str,
            force: bool,
            by: &'a str,
        ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
            Box::pin(async move {
                let what = format!("re-running execution `{id}`");
                let changed = self
                    .control_change(&what, &self.ops.rerun, None, |q| {
                        q.bind(id).bind(force).bind(by)
                    })
                    .await?;
                let record = self
                    .execution(id)
                    .await?
                    .ok_or_else(|| $crate::store::sql::no_execution(id))?;
                if !changed {
                    // Refused: say why, by the state it is in.
                    return Err($crate::store::sql::rerun_refused(id, record.status, force)
                        .unwrap_or_else(|| StoreError::Refused {
                            message: format!(
                                "execution `{id}` changed while it was asked to re-run it; \
                                 try again"
                            ),
                        }));
                }
                Ok(record)
            })
        }

        fn request_cancel<'a>(
            &'a self,
            id: &'a str,
            kind: $crate::store::CancelKind,
            note: &'a str,
            by: &'a str,
        ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
            Box::pin(async move {
                let what = format!("asking execution `{id}` to stop");
                let ended = $crate::store::describe_cancel(kind, note, by);
                let changed = self
                    .control_change(&what, &self.ops.cancel, Some(chrono::Utc::now()), |q| {
                        q.bind(id)
                            .bind(kind.as_str())
                            .bind(note)
                            .bind(by)
                            .bind(ended.as_str())
                    })
                    .await?;
                let record = self
                    .execution(id)
                    .await?
                    .ok_or_else(|| $crate::store::sql::no_execution(id))?;
                if !changed {
                    // Refused: say why, by the state it is in (a CANCELLED one the
                    // update left alone had a request already).
                    return Err($crate::store::sql::cancel_refused(id, record.status, true)
                        .unwrap_or_else(|| StoreError::Refused {
                            message: format!(
                                "execution `{id}` changed while it was asked to stop; try again"
                            ),
                        }));
                }
                Ok(record)
            })
        }

        fn cancel_requests<'a>(
            &'a self,
            jobs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<$crate::store::CancelRequest>, StoreError>> {
            Box::pin(async move {
                let names = Self::name_list(jobs);
                let rows: Vec<$crate::store::sql::CancelRow<Instant>> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.ops.cancel_requests.as_str()))
                            .bind(&names)
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("reading the cancel requests", e))?;
                rows.into_iter()
                    .map($crate::store::sql::cancel_request)
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.error("reading the cancel requests", e))
            })
        }

        fn prune<'a>(
            &'a self,
            request: &'a $crate::store::PruneRequest,
        ) -> BoxFuture<'a, Result<$crate::store::PruneReport, StoreError>> {
            Box::pin(async move {
                self.prune_all(request)
                    .await
                    .map_err(|e| self.error("pruning the history", e))
            })
        }

        fn paused<'a>(
            &'a self,
            jobs: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<(String, $crate::store::Pause)>, StoreError>> {
            Box::pin(async move {
                let names = Self::name_list(jobs);
                let rows: Vec<$crate::store::sql::PauseRow<Instant>> = self
                    .run(|_| {
                        sqlx::query_as(sqlx::AssertSqlSafe(self.ops.paused.as_str()))
                            .bind(&names)
                            .fetch_all(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("reading the pauses", e))?;
                Ok(rows.into_iter().map($crate::store::sql::pause).collect())
            })
        }

        fn control_version<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
            Box::pin(async move {
                let version: i64 = self
                    .run(|_| {
                        sqlx::query_scalar(sqlx::AssertSqlSafe(self.ops.control_version.as_str()))
                            .fetch_one(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("reading the control version", e))?;
                Ok(version.unsigned_abs())
            })
        }

        fn announce<'a>(&'a self) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                self.control_change("announcing a change", &self.ops.announce, None, |q| q)
                    .await
                    .map(drop)
            })
        }
    };
}

pub(crate) use operations_methods;

/// The inherent helpers of the operations API on database `$db`, the same on both databases:
/// a control change's frame, a job's summary, and a prune's frame (the jobs it takes its turn at, then each job's statuses, batch by
/// batch). The store module provides `self.ops` (statements `jobs`, `all_jobs`,
/// `prune_count`) and what differs per database: `self.control_run(change, stamp)` (runs
/// a control change, its parameters bound, and bumps the control version; whether it changed
/// a row), `Self::prune_window(every)` and
/// `Self::prune_cutoff(keep)` (the instants a prune binds, read once from the store's clock
/// where the database does not read its own), `self.prune_due(names, window)` (the jobs whose
/// turn it is), `self.prune_turn(job, window)` (takes the job's turn, or `None`) and
/// `self.prune_batch(job, status, cutoff)` (deletes one batch; how many).
macro_rules! operations_helpers {
    ($db:ty) => {
        /// Runs one control statement (`$1`.. bound by `bind`), bumping the control version
        /// when it changed a row; whether it did.
        pub(super) async fn control_change<'q>(
            &'q self,
            what: &str,
            statement: &'q str,
            stamp: $crate::store::sql::Stamp,
            bind: impl FnOnce(
                $crate::store::sql::Query<'q, $db>,
            ) -> $crate::store::sql::Query<'q, $db>,
        ) -> Result<bool, StoreError> {
            let change = bind(sqlx::query(sqlx::AssertSqlSafe(statement)));
            self.control_run(change, stamp)
                .await
                .map_err(|e| self.error(what, e))
        }

        /// Jobs by name (`name`, or all), as summaries.
        pub(super) async fn job_summaries(
            &self,
            name: Option<&str>,
        ) -> Result<Vec<$crate::store::JobSummary>, StoreError> {
            let rows: Vec<$crate::store::sql::JobSummaryRow<Instant>> = self
                .run(|_| {
                    sqlx::query_as(sqlx::AssertSqlSafe(self.ops.jobs.as_str()))
                        .bind(name)
                        .fetch_all(&self.pool)
                })
                .await
                .map_err(|e| self.error("reading the jobs", e))?;
            rows.into_iter()
                .map($crate::store::sql::job_summary)
                .collect::<Result<_, _>>()
                .map_err(|e| self.error("reading the jobs", e))
        }

        /// The job `name`'s summary, or [`StoreError::NotFound`].
        pub(super) async fn existing_job(
            &self,
            name: &str,
        ) -> Result<$crate::store::JobSummary, StoreError> {
            self.job_summaries(Some(name))
                .await?
                .pop()
                .ok_or_else(|| $crate::store::sql::no_job(name))
        }

        /// The jobs a prune works on: those named (or all), less those another prune worked
        /// on within `at_most_every`, whose turn this prune takes.
        async fn prune_jobs(
            &self,
            request: &$crate::store::PruneRequest,
        ) -> Result<Vec<String>, sqlx::Error> {
            let named = match &request.jobs {
                Some(jobs) => jobs.clone(),
                None => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(self.ops.all_jobs.as_str()))
                        .fetch_all(&self.pool)
                        .await?
                }
            };
            let Some(every) = request.at_most_every else {
                return Ok(named);
            };
            let window = Self::prune_window(every);
            if request.dry_run {
                return self.prune_due(&named, window).await;
            }
            // One statement per job: each takes its turn at one job's row, never holding two.
            let mut turns = Vec::new();
            for job in named {
                turns.extend(self.prune_turn(&job, window).await?);
            }
            Ok(turns)
        }

        /// Prunes (or, dry, counts) one job's executions in `status` kept `keep`.
        async fn prune_status(
            &self,
            job: &str,
            status: $crate::store::Status,
            keep: std::time::Duration,
            dry_run: bool,
        ) -> Result<u64, sqlx::Error> {
            let cutoff = Self::prune_cutoff(keep);
            if dry_run {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(self.ops.prune_count.as_str()))
                    .bind(job)
                    .bind(status.as_str())
                    .bind(cutoff)
                    .fetch_one(&self.pool)
                    .await?;
                return Ok(n.unsigned_abs());
            }
            let mut deleted = 0;
            loop {
                let n = self.prune_batch(job, status, cutoff).await?;
                deleted += n;
                if n < $crate::store::sql::PRUNE_BATCH.unsigned_abs() {
                    return Ok(deleted);
                }
            }
        }

        /// A prune: the jobs it may work on, then each job's statuses, batch by batch.
        pub(super) async fn prune_all(
            &self,
            request: &$crate::store::PruneRequest,
        ) -> Result<$crate::store::PruneReport, sqlx::Error> {
            let jobs = self.prune_jobs(request).await?;
            let prunable = request.retention.prunable();
            let mut deleted: Vec<($crate::store::Status, u64)> =
                prunable.iter().map(|(s, _)| (*s, 0)).collect();
            for job in &jobs {
                for (i, (status, keep)) in prunable.iter().enumerate() {
                    deleted[i].1 += self
                        .prune_status(job, *status, *keep, request.dry_run)
                        .await?;
                }
            }
            Ok($crate::store::PruneReport {
                ran: request.dry_run || request.at_most_every.is_none() || !jobs.is_empty(),
                deleted,
            })
        }
    };
}

pub(crate) use operations_helpers;
