//! The pages, as HTML that maud escapes: every job name, note, error and id is text, never
//! markup. Plain links and forms: nothing needs JavaScript. Times are shown on the wall
//! clock of the job's zone.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use super::csrf;
use super::server::NOTE_MAX;
use super::stats::RunStats;
use super::strip::Cell;
use crate::BreakerState;
use crate::human::{duration, local, relative, took, when, when_opt};
use crate::store::{Cursor, ExecutionDetail, ExecutionRecord, JobSummary, RunOutcome, Status};

/// What every page of one request knows.
pub(crate) struct PageCtx {
    /// The request's time.
    pub(crate) now: DateTime<Utc>,
    /// Whether the viewer may act (forms are shown).
    pub(crate) may_act: bool,
    /// The CSRF token the forms carry, for a browser's session.
    pub(crate) csrf: Option<String>,
    /// What the action that led here did, in words.
    pub(crate) notice: Option<&'static str>,
}

/// A job as the jobs page lists it.
pub(crate) struct JobRow {
    pub(crate) job: JobSummary,
    pub(crate) zone: Tz,
    pub(crate) words: String,
    pub(crate) next: Vec<DateTime<Utc>>,
    pub(crate) breaker: Option<BreakerState>,
    pub(crate) stats: RunStats,
}

/// A job's page.
pub(crate) struct JobView {
    pub(crate) row: JobRow,
    pub(crate) strip: Vec<(DateTime<Utc>, Cell)>,
    /// Whether the history page is the newest one.
    pub(crate) newest: bool,
    /// A page of its history, newest first.
    pub(crate) history: Vec<ExecutionRecord>,
    /// Where the next (older) page starts, if there is one.
    pub(crate) older: Option<Cursor>,
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header b{font-size:16px;margin-right:12px}
main{padding:16px 24px;max-width:1200px}h1{font-size:20px;margin:8px 0 12px}
table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:16px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef0f4;font-weight:600}pre{white-space:pre-wrap;margin:4px 0;font-size:12px;
background:#fbf3f3;padding:6px;border-left:3px solid #c0392b}pre.json{background:#f3f6fb;
border-color:#2c6fbb}.muted{color:#6b7280}.tag{display:inline-block;padding:1px 6px;
border-radius:3px;font-size:12px;font-weight:600}.COMPLETED{background:#d8f0dd;color:#17692b}
.FAILED,.TIMED_OUT,.open{background:#f8d7d7;color:#8e1b1b}.RUNNING,.PENDING{background:#dbe8fb;
color:#1c4f94}.CANCELLED,.SKIPPED,.half-open{background:#fbecc8;color:#7a5300}
.paused{background:#fbecc8;color:#7a5300}.closed{background:#e6e8ec;color:#374151}
.strip{display:flex;gap:2px;margin:6px 0 16px}.strip a,.strip span{width:14px;height:22px;
display:block;border-radius:2px}.c-ok{background:#3fa55b}.c-fail{background:#c0392b}
.c-run{background:#2c6fbb}.c-skip{background:#e6a817}.c-paused{background:#b9a36a}
.c-missing{background:#fff;border:2px dashed #c0392b;box-sizing:border-box}
.c-due{background:#d5d9e0}.legend span{display:inline-block;width:10px;height:10px;
border-radius:2px;margin-left:8px}.notice{background:#d8f0dd;padding:8px 12px;margin-bottom:12px}
form.inline{display:inline}dl{display:grid;grid-template-columns:150px 1fr;gap:4px 12px;
background:#fff;padding:12px;margin:0 0 16px}dt{color:#6b7280}dd{margin:0}
button{cursor:pointer}input[type=text]{width:280px}#jobs td{white-space:nowrap}
#jobs td.state,#jobs td.sched{white-space:normal;min-width:150px;max-width:240px}";

/// A whole page.
fn layout(title: &str, ctx: Option<&PageCtx>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · tickguard" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    b { "tickguard" }
                    a href="/" { "Jobs" }
                    a href="/dead-letters" { "Dead letters" }
                    @if let Some(ctx) = ctx {
                        @if ctx.csrf.is_some() {
                            form.inline method="post" action="/logout" {
                                (csrf_field(ctx))
                                button type="submit" { "Sign out" }
                            }
                        } @else if !ctx.may_act {
                            a href="/login" { "Sign in to act" }
                        }
                    }
                }
                main {
                    @if let Some(notice) = ctx.and_then(|c| c.notice) {
                        div.notice role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
fn csrf_field(ctx: &PageCtx) -> Markup {
    html! {
        @if let Some(token) = &ctx.csrf {
            input type="hidden" name=(csrf::FIELD) value=(token);
        }
    }
}

/// A page of one sentence: errors.
pub(crate) fn message(title: &str, text: &str) -> Markup {
    layout(title, None, html! { h1 { (title) } p { (text) } })
}

/// The sign-in page, with `status` (401 where a page was asked for without the token).
pub(crate) fn login(status: StatusCode, failed: bool) -> Response {
    let page = layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if failed { p { "That token was not accepted." } }
            p { "This console needs its access token." }
            form method="post" action="/login" {
                input type="password" name="token" autocomplete="current-password" autofocus;
                " "
                button type="submit" { "Sign in" }
            }
        },
    );
    (status, [(header::CACHE_CONTROL, "no-store")], page).into_response()
}

/// The path of a job's page (its name percent-encoded as one segment).
pub(crate) fn job_path(name: &str) -> String {
    format!("/jobs/{}", segment(name))
}

/// The path of an execution's page.
pub(crate) fn execution_path(id: &str) -> String {
    format!("/executions/{}", segment(id))
}

/// `text` as one path segment or query value: every byte but the unreserved ones
/// percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A status as a coloured tag.
fn status_tag(status: &str) -> Markup {
    html! { span class=(format!("tag {status}")) { (status) } }
}

/// A breaker's state in words.
fn breaker_words(state: &BreakerState, zone: Tz, now: DateTime<Utc>) -> String {
    match state {
        BreakerState::Closed { runs, failures } => {
            format!("closed: {failures} of the last {runs} runs failed")
        }
        BreakerState::Open { until, .. } => format!("open until {}", when(*until, zone, now)),
        BreakerState::HalfOpen { probe: Some(p), .. } => format!("half-open: probe {p} runs"),
        BreakerState::HalfOpen { .. } => "half-open: the next tick is the probe".to_owned(),
    }
}

/// A job's state: active, or paused with its note.
fn state_cell(job: &JobSummary, zone: Tz, now: DateTime<Utc>) -> Markup {
    html! {
        @match &job.paused {
            Some(p) => {
                span.tag.paused { "paused" }
                div.note { (p.note) }
                div.muted { "by " (p.by) ", " (when(p.at, zone, now)) }
            }
            None => { span.muted { "active" } }
        }
    }
}

/// The success share and p95 of a job's latest runs.
fn stats_cells(stats: &RunStats) -> Markup {
    html! {
        td {
            @match stats.success_percent() {
                Some(p) => { (format!("{p:.0}%")) span.muted { " of " (stats.runs) } }
                None => { span.muted { "-" } }
            }
        }
        td { (stats.p95.map_or_else(|| "-".to_owned(), duration)) }
    }
}

/// The jobs page.
pub(crate) fn jobs(ctx: &PageCtx, rows: &[JobRow]) -> Markup {
    let body = html! {
        h1 { "Jobs" }
        @if rows.is_empty() {
            p { "No jobs in this store yet: a scheduler registers its jobs when it starts." }
        } @else {
            table id="jobs" {
                thead { tr {
                    th { "Job" } th { "Schedule" } th { "Next fire" } th { "State" }
                    th { "Breaker" } th { "Last outcome" } th { "Success" } th { "p95" }
                } }
                tbody {
                    @for row in rows {
                        tr data-job=(row.job.name) {
                            td { a href=(job_path(&row.job.name)) { (row.job.name) } }
                            td.sched {
                                (row.words)
                                @if row.words != row.job.trigger { div.muted { (row.job.trigger) } }
                            }
                            td.next {
                                @for t in &row.next { div { (local(*t, row.zone)) } }
                                @if row.job.paused.is_some() {
                                    div.muted { "skipped while paused" }
                                } @else if let Some(t) = row.next.first() {
                                    div.muted { (relative(*t, ctx.now)) }
                                }
                            }
                            td.state { (state_cell(&row.job, row.zone, ctx.now)) }
                            td { @match &row.breaker {
                                Some(b) => { span class=(format!("tag {}", b.as_str())) { (b.as_str()) } }
                                None => { span.muted { "-" } }
                            } }
                            td { @match &row.job.last {
                                Some(l) => {
                                    a href=(execution_path(&l.execution_id)) { (status_tag(l.status.as_str())) }
                                    div.muted { (when(l.scheduled_at, row.zone, ctx.now)) }
                                }
                                None => { span.muted { "-" } }
                            } }
                            (stats_cells(&row.stats))
                        }
                    }
                }
            }
        }
    };
    layout("Jobs", Some(ctx), body)
}

/// The class and title of a cell of the strip.
fn cell_look(cell: &Cell) -> (&'static str, String) {
    match cell {
        Cell::Ran(Status::Completed, id) => ("c-ok", format!("completed: {id}")),
        Cell::Ran(status @ (Status::Failed | Status::TimedOut), id) => {
            ("c-fail", format!("{status}: {id}"))
        }
        Cell::Ran(status, id) => ("c-run", format!("{status}: {id}")),
        Cell::Skipped(id, reason) => (
            "c-skip",
            format!("skipped: {id}: {}", reason.as_deref().unwrap_or("")),
        ),
        Cell::Paused => ("c-paused", "paused: not run".to_owned()),
        Cell::Missing => ("c-missing", "gap: no execution".to_owned()),
        Cell::Due => ("c-due", "due: not claimed yet".to_owned()),
    }
}

/// What the colours of the strip say.
const LEGEND: [(&str, &str); 7] = [
    ("c-ok", "completed"),
    ("c-fail", "failed"),
    ("c-run", "running or pending"),
    ("c-skip", "skipped"),
    ("c-paused", "paused"),
    ("c-missing", "gap: no execution"),
    ("c-due", "due"),
];

/// The strip of recent ticks.
fn strip(strip: &[(DateTime<Utc>, Cell)], zone: Tz) -> Markup {
    html! {
        div.strip aria-label="recent ticks" {
            @for (tick, cell) in strip {
                @let (class, title) = cell_look(cell);
                @let title = format!("{} {}", local(*tick, zone), title);
                @match cell {
                    Cell::Ran(_, id) | Cell::Skipped(id, _) => {
                        a class=(class) href=(execution_path(id)) title=(title) {}
                    }
                    _ => { span class=(class) title=(title) {} }
                }
            }
        }
        p.legend.muted {
            @for (class, what) in LEGEND { span class=(class) {} " " (what) " " }
        }
    }
}

/// The pause, resume and trigger forms of a job.
fn job_actions(ctx: &PageCtx, job: &JobSummary) -> Markup {
    let base = job_path(&job.name);
    html! {
        @if ctx.may_act {
            p.actions {
                form.inline method="post" action=(format!("{base}/trigger")) {
                    (csrf_field(ctx))
                    button id="trigger" type="submit" { "Trigger now" }
                }
                " "
                @if job.paused.is_some() {
                    form.inline method="post" action=(format!("{base}/resume")) {
                        (csrf_field(ctx))
                        button id="resume" type="submit" { "Resume" }
                    }
                } @else {
                    form.inline method="post" action=(format!("{base}/pause")) {
                        (csrf_field(ctx))
                        input id="note" type="text" name="note" required maxlength=(NOTE_MAX) placeholder="why (shown to every operator)";
                        " "
                        button id="pause" type="submit" { "Pause" }
                    }
                }
            }
        }
    }
}

/// Executions of one job, newest first, with their errors.
fn history_table(executions: &[ExecutionRecord], zone: Tz, now: DateTime<Utc>) -> Markup {
    html! {
        table id="history" {
            thead { tr { th { "Tick" } th { "Status" } th { "Attempts" } th { "Took" } th { "Execution" } } }
            tbody {
                @for e in executions {
                    tr {
                        td { (when(e.scheduled_at, zone, now)) }
                        td { (status_tag(e.status.as_str())) }
                        td { (e.attempts) }
                        td { @if matches!(e.status, Status::Pending | Status::Skipped) { "-" }
                             @else { (took(e.started_at, e.finished_at)) } }
                        td {
                            a href=(execution_path(&e.id)) { (e.id) }
                            @if let Some(by) = &e.requested_by { div.muted { "requested by " (by) } }
                            @if let Some(error) = &e.error { pre { (error) } }
                        }
                    }
                }
            }
        }
    }
}

/// A job's page.
pub(crate) fn job(ctx: &PageCtx, view: &JobView) -> Markup {
    let JobRow {
        job, zone, words, ..
    } = &view.row;
    let (zone, now) = (*zone, ctx.now);
    let body = html! {
        h1 { (job.name) }
        dl {
            dt { "Schedule" } dd {
                (words)
                @if *words != job.trigger { span.muted { " · " (job.trigger) } }
            }
            dt { "Zone" } dd { (job.zone) }
            dt { "State" } dd id="state" { (state_cell(job, zone, now)) }
            dt { "Next fire" } dd {
                @for t in &view.row.next { div { (when(*t, zone, now)) } }
                @if job.paused.is_some() { div.muted { "skipped while paused" } }
            }
            @if let Some(b) = &view.row.breaker {
                dt { "Breaker" } dd { (breaker_words(b, zone, now)) }
            }
            dt { "Last tick" } dd { (when_opt(job.last_tick, zone, now)) }
            dt { "Success" } dd {
                @match view.row.stats.success_percent() {
                    Some(p) => { (format!("{p:.0}% of the last {} runs", view.row.stats.runs)) }
                    None => { "no runs yet" }
                }
                @if let Some(p95) = view.row.stats.p95 { ", p95 " (duration(p95)) }
            }
            dt { "Fence" } dd { (job.fence) }
        }
        (job_actions(ctx, job))
        h2 { "Recent ticks" }
        (strip(&view.strip, zone))
        h2 { "History" }
        @if view.history.is_empty() { p { "No executions yet." } }
        @else { (history_table(&view.history, zone, now)) }
        p.pages {
            @if !view.newest { a href=(job_path(&job.name)) { "Newest executions" } " " }
            @if let Some(cursor) = &view.older {
                a id="older" href=(format!("{}?after={}", job_path(&job.name), segment(&cursor.to_string()))) {
                    "Older executions"
                }
            }
        }
    };
    layout(&job.name, Some(ctx), body)
}

/// The re-run form of an execution.
fn rerun_form(ctx: &PageCtx, e: &ExecutionRecord) -> Markup {
    html! {
        @if ctx.may_act && matches!(e.status, Status::Failed | Status::TimedOut | Status::Cancelled) {
            form.inline method="post" action=(format!("{}/rerun", execution_path(&e.id))) {
                (csrf_field(ctx))
                button.rerun type="submit" { "Re-run" }
            }
        }
    }
}

/// An execution's page.
pub(crate) fn execution(ctx: &PageCtx, detail: &ExecutionDetail, zone: Tz) -> Markup {
    let e = &detail.execution;
    let now = ctx.now;
    let takeovers = detail
        .runs
        .iter()
        .filter(|r| r.outcome == Some(RunOutcome::Abandoned))
        .count();
    let checkpoint = e.checkpoint.as_deref().map(|c| {
        serde_json::from_str::<serde_json::Value>(c)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| c.to_owned())
    });
    let body = html! {
        h1 { "Execution " (e.id) }
        dl {
            dt { "Job" } dd { a href=(job_path(&e.job)) { (e.job) } }
            dt { "Tick" } dd { (when(e.scheduled_at, zone, now)) }
            dt { "Status" } dd id="status" { (status_tag(e.status.as_str())) " " (rerun_form(ctx, e)) }
            dt { "Attempts" } dd { (e.attempts) }
            dt { "Takeovers" } dd { (takeovers) }
            dt { "Owner" } dd { (e.owner) span.muted { " (fence " (e.fence) ")" } }
            dt { "Started" } dd { (when(e.started_at, zone, now)) }
            dt { "Heartbeat" } dd { (when(e.heartbeat_at, zone, now)) }
            dt { "Finished" } dd { (when_opt(e.finished_at, zone, now)) }
            @if let Some(by) = &e.requested_by { dt { "Requested by" } dd { (by) } }
        }
        @if let Some(error) = &e.error { h2 { "Error chain" } pre id="error" { (error) } }
        @if let Some(json) = &checkpoint { h2 { "Checkpoint" } pre.json id="checkpoint" { (json) } }
        h2 { "Runs" }
        @if detail.runs.is_empty() { p { "No runs yet: no instance has claimed it." } }
        @else {
            table id="runs" {
                thead { tr { th { "Fence" } th { "Owner" } th { "Started" } th { "Ended" } th { "Outcome" } th { "Attempts" } } }
                tbody {
                    @for r in &detail.runs {
                        tr {
                            td { (r.fence) } td { (r.owner) } td { (when(r.started_at, zone, now)) }
                            td { (r.ended_at.map_or_else(|| "-".to_owned(), |t| local(t, zone))) }
                            td { (status_tag(&r.outcome.map_or_else(|| "RUNNING".to_owned(), |o| o.to_string()))) }
                            td { (r.attempts) }
                        }
                        @if let Some(error) = &r.error { tr { td colspan="6" { pre { (error) } } } }
                    }
                }
            }
        }
    };
    layout(&format!("Execution {}", e.id), Some(ctx), body)
}

/// The dead letters page: each with its job's zone.
pub(crate) fn dead_letters(ctx: &PageCtx, dead: &[(ExecutionRecord, Tz)]) -> Markup {
    let body = html! {
        h1 { "Dead letters" }
        p.muted { "Executions that failed after their last attempt, most recent first." }
        @if dead.is_empty() { p { "No dead letters." } }
        @else {
            table id="dead" {
                thead { tr { th { "Job" } th { "Tick" } th { "Finished" } th { "Attempts" } th { "Execution" } th {} } }
                tbody {
                    @for (e, zone) in dead {
                        tr data-execution=(e.id) {
                            td { a href=(job_path(&e.job)) { (e.job) } }
                            td { (local(e.scheduled_at, *zone)) }
                            td { (when_opt(e.finished_at, *zone, ctx.now)) }
                            td { (e.attempts) }
                            td {
                                a href=(execution_path(&e.id)) { (e.id) }
                                @if let Some(error) = &e.error { pre { (error) } }
                            }
                            td { (rerun_form(ctx, e)) }
                        }
                    }
                }
            }
        }
    };
    layout("Dead letters", Some(ctx), body)
}
