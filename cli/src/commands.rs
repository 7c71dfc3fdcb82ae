//! The commands: each reads or changes the store and prints a table or JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tickguard::gaps::{self, Gap, NoGaps};
use tickguard::store::{
    CancelKind, ExecutionRecord, ExecutionStore, HistoryQuery, JobSummary, PruneRequest, Retention,
    Status, StoreError,
};
use tickguard::{BreakerState, CircuitBreaker, Schedule};

use crate::args::{HistoryArgs, PruneArgs};
use crate::error::Failure;
use crate::json;
use crate::output::{Table, indented, print};
use crate::parse;
use tickguard::human::{local, relative, span, took, when, when_opt};

/// Executions read per page when a command reads a whole window of history.
const WINDOW_PAGE: usize = 1_000;

/// What every command works with: the store and one `now` for the whole output.
pub(crate) struct Ctx {
    /// The store.
    pub(crate) store: Arc<dyn ExecutionStore>,
    /// The time the command started, by this machine's clock.
    pub(crate) now: DateTime<Utc>,
}

/// The zone of a job's schedule (UTC if the store names none this build knows).
fn zone_of(job: &JobSummary) -> Tz {
    tickguard::parse_zone(&job.zone).unwrap_or(Tz::UTC)
}

/// `text` quoted for a POSIX shell, when it needs to be.
pub(crate) fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:/=+,%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

impl Ctx {
    /// The job `name`, or a failure that says it is unknown.
    async fn job(&self, name: &str) -> Result<JobSummary, Failure> {
        self.store.job(name).await?.ok_or_else(|| unknown_job(name))
    }

    /// The zone of job `name`, UTC for a job the store no longer knows.
    async fn zone(&self, name: &str) -> Result<Tz, Failure> {
        Ok(self
            .store
            .job(name)
            .await?
            .as_ref()
            .map_or(Tz::UTC, zone_of))
    }
}

fn unknown_job(name: &str) -> Failure {
    Failure::new(format!("no job named `{name}` in this store"))
        .hint("`tickguard jobs` lists the jobs the store knows")
}

fn unknown_execution(id: &str) -> Failure {
    Failure::new(format!("no execution `{id}` in this store"))
        .hint("`tickguard history JOB` lists a job's executions with their ids")
}

/// A store answer of `NotFound` as the command's own sentence.
fn not_found(e: StoreError, sentence: impl FnOnce() -> Failure) -> Failure {
    match e {
        StoreError::NotFound { .. } => sentence(),
        e => e.into(),
    }
}

/// `tickguard jobs`.
pub(crate) async fn jobs(ctx: &Ctx, as_json: bool) -> Result<(), Failure> {
    let jobs = ctx.store.jobs().await?;
    if as_json {
        return json::print(&jobs.iter().map(json::Job::from).collect::<Vec<_>>());
    }
    if jobs.is_empty() {
        print("no jobs in this store yet: a scheduler registers its jobs when it starts\n");
        return Ok(());
    }
    let mut table = Table::new(&["JOB", "SCHEDULE", "NEXT", "LAST", "STATE"]);
    for job in &jobs {
        let zone = zone_of(job);
        let last = job.last.as_ref().map_or_else(
            || "-".to_owned(),
            |l| format!("{} {}", l.status, when(l.scheduled_at, zone, ctx.now)),
        );
        let state = if job.paused.is_some() {
            "paused"
        } else {
            "active"
        };
        table.row(vec![
            job.name.clone(),
            job.trigger.clone(),
            when_opt(job.next_fire, zone, ctx.now),
            last,
            state.to_owned(),
        ]);
        if let Some(p) = &job.paused {
            let since = relative(p.at, ctx.now);
            table.note("paused", &format!("{} (by {}, {since})", p.note, p.by));
        }
    }
    print(&table.render());
    Ok(())
}

/// `tickguard show JOB`.
pub(crate) async fn show(ctx: &Ctx, name: &str, as_json: bool) -> Result<(), Failure> {
    let job = ctx.job(name).await?;
    let recent = ctx
        .store
        .history(&HistoryQuery::new(name).limit(5))
        .await?
        .executions;
    let breaker = match &job.circuit_breaker {
        Some(settings) => Some((settings, breaker_state(ctx, &job.name, settings).await?)),
        None => None,
    };
    if as_json {
        return json::print(&json::Show {
            job: json::Job::from(&job),
            circuit_breaker: breaker.as_ref().map(|(settings, (jobs, state))| {
                json::Breaker::new(&job.name, settings, jobs, state)
            }),
            recent: recent.iter().map(json::Execution::from).collect(),
        });
    }
    let zone = zone_of(&job);
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<11}{value}");
    };
    line("job", job.name.clone());
    line("schedule", job.trigger.clone());
    line("zone", job.zone.clone());
    match &job.paused {
        Some(p) => line(
            "state",
            format!(
                "paused by {}, {}: {}",
                p.by,
                when(p.at, zone, ctx.now),
                p.note
            ),
        ),
        None => line("state", "active".to_owned()),
    }
    if let Some((settings, (jobs, state))) = &breaker {
        line(
            "breaker",
            breaker_line(&job.name, settings, jobs, state, zone, ctx.now),
        );
        line("", settings.to_string());
    }
    line("next fire", when_opt(job.next_fire, zone, ctx.now));
    line("last tick", when_opt(job.last_tick, zone, ctx.now));
    if let Some(l) = &job.last {
        line(
            "last",
            format!(
                "{} {}, {}",
                l.status,
                when(l.scheduled_at, zone, ctx.now),
                l.execution_id
            ),
        );
    }
    line("created", when(job.created_at, zone, ctx.now));
    line("fence", job.fence.to_string());
    out.push('\n');
    if recent.is_empty() {
        out.push_str("no executions yet\n");
    } else {
        out.push_str("latest executions:\n");
        out.push_str(&executions_table(&recent, zone, ctx.now).render());
    }
    print(&out);
    Ok(())
}

/// The jobs that share `job`'s circuit breaker, and its state computed from their
/// executions as the scheduler computes it.
async fn breaker_state(
    ctx: &Ctx,
    job: &str,
    breaker: &CircuitBreaker,
) -> Result<(Vec<String>, BreakerState), Failure> {
    let jobs = breaker.sharing(job, &ctx.store.jobs().await?);
    let state = breaker
        .current_state(
            &*ctx.store,
            &jobs,
            ctx.now,
            CircuitBreaker::OBSERVED_LIVENESS,
        )
        .await?;
    Ok((jobs, state))
}

/// `payments: open until 14:05:00 (in 4m), shared with card, bank`.
fn breaker_line(
    job: &str,
    breaker: &CircuitBreaker,
    jobs: &[String],
    state: &BreakerState,
    zone: Tz,
    now: DateTime<Utc>,
) -> String {
    let mut text = format!("{}: ", breaker.label(job));
    match state {
        BreakerState::Closed { runs, failures } => {
            let _ = write!(text, "closed ({failures} of the last {runs} runs failed)");
        }
        BreakerState::Open { until, .. } => {
            let _ = write!(text, "open until {}", when(*until, zone, now));
        }
        BreakerState::HalfOpen {
            probe: Some(probe), ..
        } => {
            let _ = write!(text, "half-open, probe {probe} running");
        }
        BreakerState::HalfOpen { .. } => {
            text.push_str("half-open, the next tick runs as the probe")
        }
        _ => text.push_str(state.as_str()),
    }
    if jobs.len() > 1 {
        let _ = write!(text, "; shared by {}", jobs.join(", "));
    }
    text
}

/// Executions of one job as a table, with their errors and requesters under them.
fn executions_table(executions: &[ExecutionRecord], zone: Tz, now: DateTime<Utc>) -> Table {
    let mut table = Table::new(&["TICK", "STATUS", "ATTEMPTS", "TOOK", "ID"]);
    for e in executions {
        let ran = !matches!(e.status, Status::Pending | Status::Skipped);
        table.row(vec![
            when(e.scheduled_at, zone, now),
            e.status.to_string(),
            e.attempts.to_string(),
            if ran {
                took(e.started_at, e.finished_at)
            } else {
                "-".to_owned()
            },
            e.id.clone(),
        ]);
        if let Some(by) = &e.requested_by {
            table.note("requested by", by);
        }
        if let Some(error) = &e.error {
            let label = if e.status == Status::Skipped {
                "reason"
            } else {
                "error"
            };
            table.note(label, error);
        }
    }
    table
}

/// `tickguard history JOB`.
pub(crate) async fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<(), Failure> {
    let job = ctx.job(&args.job).await?;
    let statuses = args
        .statuses
        .iter()
        .map(|s| parse::status(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut query = HistoryQuery::new(&args.job)
        .statuses(statuses.iter().copied())
        .limit(usize::try_from(args.limit).unwrap_or(usize::MAX));
    if let Some(since) = &args.since {
        query = query.since(parse::instant("--since", since, ctx.now)?);
    }
    if let Some(until) = &args.until {
        query = query.until(parse::instant("--until", until, ctx.now)?);
    }
    if let Some(after) = &args.after {
        query = query.after(Some(parse::cursor(after)?));
    }
    let page = ctx.store.history(&query).await?;
    let next = page.next.as_ref().map(ToString::to_string);
    if args.json.json {
        return json::print(&json::History {
            job: args.job.clone(),
            executions: page.executions.iter().map(json::Execution::from).collect(),
            next,
        });
    }
    let zone = zone_of(&job);
    let mut out = if page.executions.is_empty() {
        "no executions match\n".to_owned()
    } else {
        executions_table(&page.executions, zone, ctx.now).render()
    };
    if let Some(next) = next {
        let _ = writeln!(out, "\nmore: {}", next_page_command(&query, &next));
    }
    print(&out);
    Ok(())
}

/// The command line of the page after this one: the same filters (times made absolute, so
/// the window does not move) and `--after`.
fn next_page_command(query: &HistoryQuery, cursor: &str) -> String {
    let mut command = format!("tickguard history {}", shell_quote(&query.job));
    for status in &query.statuses {
        let _ = write!(command, " --status {}", parse::status_name(*status));
    }
    if let Some(since) = query.since {
        let _ = write!(command, " --since {}", json::time(since));
    }
    if let Some(until) = query.until {
        let _ = write!(command, " --until {}", json::time(until));
    }
    let _ = write!(
        command,
        " --limit {} --after {}",
        query.limit,
        shell_quote(cursor)
    );
    command
}

/// `tickguard execution ID`.
pub(crate) async fn execution(ctx: &Ctx, id: &str, as_json: bool) -> Result<(), Failure> {
    let detail = ctx
        .store
        .execution_detail(id)
        .await?
        .ok_or_else(|| unknown_execution(id))?;
    if as_json {
        return json::print(&json::Detail::from(&detail));
    }
    let e = &detail.execution;
    let zone = ctx.zone(&e.job).await?;
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<14}{value}");
    };
    line("execution", e.id.clone());
    line("job", e.job.clone());
    line("tick", when(e.scheduled_at, zone, ctx.now));
    line("status", e.status.to_string());
    line("attempts", e.attempts.to_string());
    line("owner", format!("{} (fence {})", e.owner, e.fence));
    line("started", when(e.started_at, zone, ctx.now));
    line("heartbeat", when(e.heartbeat_at, zone, ctx.now));
    line("finished", when_opt(e.finished_at, zone, ctx.now));
    if let Some(by) = &e.requested_by {
        line("requested by", by.clone());
    }
    if let Some(error) = &e.error {
        for l in indented("error", error) {
            out.push_str(l.trim_start_matches("    "));
            out.push('\n');
        }
    }
    out.push('\n');
    if detail.runs.is_empty() {
        out.push_str("no runs yet: no instance has claimed it\n");
    } else {
        let mut runs = Table::new(&["FENCE", "OWNER", "STARTED", "ENDED", "OUTCOME", "ATTEMPTS"]);
        for r in &detail.runs {
            runs.row(vec![
                r.fence.to_string(),
                r.owner.clone(),
                when(r.started_at, zone, ctx.now),
                r.ended_at
                    .map_or_else(|| "-".to_owned(), |t| local(t, zone)),
                r.outcome
                    .map_or_else(|| "running".to_owned(), |o| o.to_string()),
                r.attempts.to_string(),
            ]);
            if let Some(error) = &r.error {
                runs.note("error", error);
            }
        }
        out.push_str("runs:\n");
        out.push_str(&runs.render());
    }
    print(&out);
    Ok(())
}

/// `tickguard failed [JOB]`.
pub(crate) async fn failed(
    ctx: &Ctx,
    job: Option<&str>,
    limit: u32,
    as_json: bool,
) -> Result<(), Failure> {
    if let Some(name) = job {
        ctx.job(name).await?;
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let dead = ctx.store.dead_letters(job, limit).await?;
    if as_json {
        return json::print(&dead.iter().map(json::Execution::from).collect::<Vec<_>>());
    }
    if dead.is_empty() {
        print("no dead letters\n");
        return Ok(());
    }
    let zones: std::collections::HashMap<String, Tz> = ctx
        .store
        .jobs()
        .await?
        .iter()
        .map(|j| (j.name.clone(), zone_of(j)))
        .collect();
    let mut table = Table::new(&["JOB", "TICK", "FINISHED", "ATTEMPTS", "ID"]);
    for e in &dead {
        let zone = zones.get(&e.job).copied().unwrap_or(Tz::UTC);
        table.row(vec![
            e.job.clone(),
            local(e.scheduled_at, zone),
            when_opt(e.finished_at, zone, ctx.now),
            e.attempts.to_string(),
            e.id.clone(),
        ]);
        if let Some(error) = &e.error {
            table.note("error", error);
        }
    }
    print(&table.render());
    Ok(())
}

/// Every execution of `job` with a tick in `[from, to)`, page by page.
async fn window(
    ctx: &Ctx,
    job: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ExecutionRecord>, Failure> {
    let mut query = HistoryQuery::new(job)
        .since(from)
        .until(to)
        .limit(WINDOW_PAGE);
    let mut all = Vec::new();
    loop {
        let page = ctx.store.history(&query).await?;
        all.extend(page.executions);
        match page.next {
            Some(next) => query = query.after(Some(next)),
            None => return Ok(all),
        }
    }
}

/// `tickguard gaps JOB`.
pub(crate) async fn gaps(
    ctx: &Ctx,
    name: &str,
    (since, until): (&str, &str),
    as_json: bool,
) -> Result<(), Failure> {
    let since = parse::instant("--since", since, ctx.now)?;
    let until = parse::instant("--until", until, ctx.now)?;
    let job = ctx.job(name).await?;
    let schedule: Schedule = job.trigger.parse().map_err(|e| {
        Failure::new(format!(
            "the schedule of `{name}` as the store has it does not parse: {e}"
        ))
    })?;
    // Ticks before the job existed are not its; ticks whose records a prune deleted are
    // not judged (their absence says nothing); the most recent ones may not be claimed yet.
    let pruned = job
        .pruned_through
        .filter(|p| *p >= since.max(job.created_at));
    let from = match pruned {
        Some(p) => p + chrono::Duration::nanoseconds(1),
        None => since.max(job.created_at),
    };
    let ticks = gaps::ticks(&schedule, from, until).map_err(|e| match e {
        NoGaps::FixedDelay => Failure::new(format!(
            "`{name}` runs {}: a fixed delay counts from the end of each run, so it has no fixed ticks to check",
            job.trigger
        ))
        .hint(format!("`tickguard history {}` shows its runs", shell_quote(name))),
        NoGaps::TooManyTicks => Failure::new(format!(
            "`{name}` ({}) has more than {} ticks since {}: too many to check at once",
            job.trigger,
            gaps::MAX_TICKS,
            json::time(from)
        ))
        .hint("look at a shorter window with a later --since"),
    })?;
    let executions = window(ctx, name, from, ctx.now).await?;
    let found = gaps::find(&ticks, &executions);
    if as_json {
        return json::print(&json::Gaps {
            job: name.to_owned(),
            trigger: job.trigger.clone(),
            since: json::time(from),
            until: json::time(until),
            pruned_through: pruned.map(json::time),
            ticks: ticks.len(),
            gaps: found.iter().map(gap_json).collect(),
        });
    }
    let zone = zone_of(&job);
    let mut out = format!(
        "{name} ({}): {} ticks since {}, {} did not run\n",
        job.trigger,
        ticks.len(),
        when(from, zone, ctx.now),
        found.len()
    );
    if let Some(p) = pruned {
        out.push_str(&format!(
            "(the history up to {} was pruned: older ticks are not judged)\n",
            when(p, zone, ctx.now)
        ));
    }
    if !found.is_empty() {
        out.push('\n');
        out.push_str(&gaps_table(&found, zone, ctx.now).render());
    }
    print(&out);
    Ok(())
}

/// Consecutive ticks with no execution from this many on are one row of the table.
const GROUPED: usize = 3;

/// The gaps as a table, with each skip's reason under its row. A run of [`GROUPED`] or more
/// consecutive ticks with no execution (an outage) is one row: its first and last tick.
fn gaps_table(found: &[Gap], zone: Tz, now: DateTime<Utc>) -> Table {
    let mut table = Table::new(&["TICK", "GAP", "EXECUTION"]);
    let mut rest = found;
    while let Some(gap) = rest.first() {
        let run = gaps::missing_run(rest);
        if run.len() >= GROUPED {
            if let (Some(first), Some(last)) = (run.first(), run.last()) {
                table.row(vec![
                    format!("{} … {}", when(*first, zone, now), when(*last, zone, now)),
                    format!("no execution ({} ticks)", run.len()),
                    "-".into(),
                ]);
            }
            rest = &rest[run.len()..];
            continue;
        }
        match gap {
            Gap::Missing { tick, .. } => {
                table.row(vec![
                    when(*tick, zone, now),
                    "no execution".into(),
                    "-".into(),
                ]);
            }
            Gap::Skipped {
                tick,
                execution_id,
                reason,
                ..
            } => {
                table.row(vec![
                    when(*tick, zone, now),
                    "skipped".into(),
                    execution_id.clone(),
                ]);
                if let Some(reason) = reason {
                    table.note("reason", reason);
                }
            }
        }
        rest = &rest[1..];
    }
    table
}

fn gap_json(gap: &Gap) -> json::Gap {
    match gap {
        Gap::Missing { tick, .. } => json::Gap {
            tick: json::time(*tick),
            kind: "missing",
            execution_id: None,
            reason: None,
        },
        Gap::Skipped {
            tick,
            execution_id,
            reason,
            ..
        } => json::Gap {
            tick: json::time(*tick),
            kind: "skipped",
            execution_id: Some(execution_id.clone()),
            reason: reason.clone(),
        },
    }
}

/// `tickguard trigger JOB`.
pub(crate) async fn trigger(ctx: &Ctx, name: &str, by: &str) -> Result<(), Failure> {
    let e = ctx
        .store
        .trigger(name, by)
        .await
        .map_err(|e| not_found(e, || unknown_job(name)))?;
    print(&format!(
        "triggered {name}: execution {} is pending, requested by {by}; an instance of the job runs it within seconds\nfollow it with: tickguard execution {}\n",
        e.id,
        shell_quote(&e.id)
    ));
    Ok(())
}

/// `tickguard rerun ID`.
pub(crate) async fn rerun(ctx: &Ctx, id: &str, force: bool, by: &str) -> Result<(), Failure> {
    let e = match ctx.store.rerun(id, force, by).await {
        Ok(e) => e,
        Err(StoreError::NotFound { .. }) => return Err(unknown_execution(id)),
        Err(StoreError::Refused { message }) => {
            let current = ctx.store.execution(id).await?;
            let done = current
                .as_ref()
                .is_some_and(|e| matches!(e.status, Status::Completed | Status::Skipped));
            // The store's sentence may already say how to force it.
            let hint = done && !force && !message.contains("--force");
            let failure = Failure::new(message);
            return Err(if hint {
                failure.hint(format!(
                    "to run it again anyway: tickguard rerun {} --force",
                    shell_quote(id)
                ))
            } else {
                failure
            });
        }
        Err(e) => return Err(e.into()),
    };
    print(&format!(
        "execution {} of {} is pending again, requested by {by}; an instance of the job runs it within seconds\nfollow it with: tickguard execution {}\n",
        e.id,
        e.job,
        shell_quote(&e.id)
    ));
    Ok(())
}

/// `tickguard cancel ID [--note …]`.
pub(crate) async fn cancel(ctx: &Ctx, id: &str, note: &str, by: &str) -> Result<(), Failure> {
    let e = match ctx
        .store
        .request_cancel(id, CancelKind::Operator, note, by)
        .await
    {
        Ok(e) => e,
        Err(StoreError::NotFound { .. }) => return Err(unknown_execution(id)),
        Err(StoreError::Refused { message }) if message.contains("already ended") => {
            return Err(Failure::new(message).hint(format!(
                "to run it again: tickguard rerun {}",
                shell_quote(id)
            )));
        }
        Err(StoreError::Refused { message }) => return Err(Failure::new(message)),
        Err(e) => return Err(e.into()),
    };
    let why = if note.is_empty() {
        format!("by {by}")
    } else {
        format!("by {by}: {note}")
    };
    let what = if e.status == Status::Running {
        format!(
            "asked execution {} of {} to stop ({why}); the instance running it stops it within a second, and it is not resumed",
            e.id, e.job
        )
    } else if e.attempts > 0 {
        // Handed back at shutdown, it waited to be resumed by another instance.
        format!(
            "cancelled execution {} of {}, handed back at shutdown ({why}); it will not be resumed",
            e.id, e.job
        )
    } else {
        format!(
            "cancelled execution {} of {} before it ran ({why}); it will not run",
            e.id, e.job
        )
    };
    print(&format!(
        "{what}\nfollow it with: tickguard execution {}\n",
        shell_quote(&e.id)
    ));
    Ok(())
}

/// `tickguard pause JOB --note …`.
pub(crate) async fn pause(ctx: &Ctx, name: &str, note: &str, by: &str) -> Result<(), Failure> {
    if note.trim().is_empty() {
        return Err(Failure::new("the pause note is empty")
            .hint("say why, for whoever looks next: --note \"waiting for the bank's API\""));
    }
    ctx.store
        .pause(name, note, by)
        .await
        .map_err(|e| not_found(e, || unknown_job(name)))?;
    print(&format!(
        "paused {name} on every instance (by {by}): {note}\nits ticks are skipped until: tickguard resume {}\n",
        shell_quote(name)
    ));
    Ok(())
}

/// `tickguard resume JOB`.
pub(crate) async fn resume(ctx: &Ctx, name: &str) -> Result<(), Failure> {
    let before = ctx.job(name).await?;
    if before.paused.is_none() {
        print(&format!("{name} is not paused: nothing changed\n"));
        return Ok(());
    }
    ctx.store
        .resume(name)
        .await
        .map_err(|e| not_found(e, || unknown_job(name)))?;
    print(&format!(
        "resumed {name}: its next tick runs (ticks skipped while it was paused do not)\n"
    ));
    Ok(())
}

/// The retention `prune` applies: `Retention::default()` with the options given.
pub(crate) fn retention(args: &PruneArgs) -> Result<Retention, Failure> {
    let mut r = Retention::default();
    if let Some(k) = &args.completed {
        r = r.completed(parse::keep("--completed", k)?);
    }
    if let Some(k) = &args.skipped {
        r = r.skipped(parse::keep("--skipped", k)?);
    }
    if let Some(k) = &args.failed {
        r = r.failed(parse::keep("--failed", k)?);
    }
    if let Some(k) = &args.timed_out {
        r = r.timed_out(parse::keep("--timed-out", k)?);
    }
    if let Some(k) = &args.cancelled {
        r = r.cancelled(parse::keep("--cancelled", k)?);
    }
    Ok(r)
}

/// `tickguard prune`.
pub(crate) async fn prune(ctx: &Ctx, args: &PruneArgs) -> Result<(), Failure> {
    let retention = retention(args)?;
    for job in &args.jobs {
        ctx.job(job).await?;
    }
    let mut request = PruneRequest::new(retention).dry_run(args.dry_run);
    if !args.jobs.is_empty() {
        request = request.jobs(args.jobs.clone());
    }
    let report = ctx.store.prune(&request).await?;
    let counts: std::collections::HashMap<Status, u64> = report.deleted.iter().copied().collect();
    let verb = if args.dry_run {
        "WOULD DELETE"
    } else {
        "DELETED"
    };
    let mut table = Table::new(&["STATUS", "KEPT FOR", verb]);
    for status in [
        Status::Completed,
        Status::Skipped,
        Status::Failed,
        Status::TimedOut,
        Status::Cancelled,
    ] {
        let kept = retention
            .keep(status)
            .map_or_else(|| "forever".to_owned(), |d| span(d.as_secs()));
        let n = counts.get(&status).copied().unwrap_or(0);
        table.row(vec![status.to_string(), kept, n.to_string()]);
    }
    let scope = if args.jobs.is_empty() {
        "every job".to_owned()
    } else {
        args.jobs.join(", ")
    };
    let total = report.total();
    let summary = if args.dry_run {
        format!("dry run on {scope}: {total} executions would be deleted; nothing was\n")
    } else {
        format!("pruned {scope}: {total} executions deleted\n")
    };
    print(&(table.render() + "\n" + &summary));
    Ok(())
}
