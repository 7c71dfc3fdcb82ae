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
//!   `InterruptedRow`, and `fn at(DateTime<Utc>) -> Instant`.

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
