//! The routes: the pages (GET) and the actions (POST), each reading or changing the store
//! through its operations, on request only: the console adds no work to the scheduler.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{
    DefaultBodyLimit, Form, FromRequest, FromRequestParts, Path, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{COOKIE, Keys, SESSION_HOURS, Viewer};
use super::pages::{self, JobRow, JobView, PageCtx};
use super::problem::Problem;
use super::{csrf, stats, strip, words};
use crate::store::{Cursor, ExecutionStore, HistoryQuery, JobSummary};
use crate::{CircuitBreaker, Schedule};

/// How many executions a page of a job's history lists, and the dead letters page.
const LISTED: usize = 25;

/// Who a change made in the console is recorded as.
const BY: &str = "console";

/// The longest pause note, in characters: a sentence for the next operator, not a file.
pub(crate) const NOTE_MAX: usize = 1_000;

/// The largest request body: a form of a CSRF token and a note.
const BODY_MAX: usize = 16 * 1024;

/// What every request shares.
pub(crate) struct App {
    pub(crate) store: Arc<dyn ExecutionStore>,
    pub(crate) keys: Keys,
    pub(crate) anonymous_read: bool,
}

type Shared = Arc<App>;

/// The console's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/", get(jobs))
        .route("/jobs/{name}", get(job))
        .route("/jobs/{name}/pause", post(pause))
        .route("/jobs/{name}/resume", post(resume))
        .route("/jobs/{name}/trigger", post(trigger))
        .route("/executions/{id}", get(execution))
        .route("/executions/{id}/rerun", post(rerun))
        .route("/dead-letters", get(dead_letters))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .layer(middleware::from_fn(same_site))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::map_response(harden))
        .with_state(Arc::new(app))
}

/// How long a request may wait for the store before it is answered 503: a store that
/// holds every packet (a partition) must not hang the page.
const STORE_DEADLINE: Duration = Duration::from_secs(5);

/// Answers 503 for a request that waited [`STORE_DEADLINE`] for the store.
async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(STORE_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("console: the execution store did not answer within {STORE_DEADLINE:?}");
            Problem::Unavailable.into_response()
        }
    }
}

/// Refuses (403) a POST that a page of another site sent: the browser says so in
/// `Sec-Fetch-Site`, or in an `Origin` that is not this console's `Host`. This guards the
/// sign-in form too (a forged sign-in would put the victim in someone else's session), and
/// every form besides its CSRF token. A script (no such headers) is judged by its token.
async fn same_site(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && cross_site(request.headers()) {
        return Problem::Forbidden.into_response();
    }
    next.run(request).await
}

/// Whether `headers` are those of a request another site's page made. `Sec-Fetch-Site`
/// decides where the browser sends it (every current one does); an older browser's
/// `Origin` must then name this console's `Host` (`null`, from a sandboxed frame, is
/// refused).
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Headers on every answer: nothing is cached or framed, no address is sent elsewhere, and the pages run
/// no script (defence in depth: every value is escaped already).
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `?done=…`: what the action that redirected here did.
#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

impl Done {
    /// The notice of a known action; nothing for any other text.
    fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "paused" => "Paused on every instance: its ticks are skipped until it is resumed.",
            "resumed" => "Resumed: its next tick runs (ticks skipped while paused do not).",
            "triggered" => "Triggered: an instance of the job runs it within seconds.",
            "rerun" => "Pending again: an instance of the job runs it within seconds.",
            _ => return None,
        })
    }
}

/// The form of an action: its CSRF token, and a pause's note.
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// A page request: the app, and what the page knows of the viewer (401 without access).
struct Page {
    app: Shared,
    ctx: PageCtx,
}

impl FromRequestParts<Shared> for Page {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Problem> {
        let done = Query::<Done>::from_request_parts(parts, app)
            .await
            .map(|Query(done)| done)
            .unwrap_or_default();
        let ctx = app.page_ctx(&parts.headers, &done)?;
        Ok(Self {
            app: Arc::clone(app),
            ctx,
        })
    }
}

/// An action let through (401 without the token, 403 without the session's CSRF token),
/// with its form.
struct Act {
    app: Shared,
    form: ActionForm,
}

impl FromRequest<Shared> for Act {
    type Rejection = Problem;

    async fn from_request(request: Request, app: &Shared) -> Result<Self, Problem> {
        // The token first: a stranger learns nothing of the form it sent.
        let viewer = app.viewer(request.headers())?;
        if !viewer.may_act() {
            return Err(Problem::Unauthorized);
        }
        let Form(form) = Form::<ActionForm>::from_request(request, app)
            .await
            .map_err(|e| Problem::BadRequest(e.body_text()))?;
        if !csrf::passes(&app.keys, &viewer, form.csrf.as_deref()) {
            return Err(Problem::Forbidden);
        }
        Ok(Self {
            app: Arc::clone(app),
            form,
        })
    }
}

impl App {
    /// Who asks, or 401.
    fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, Problem> {
        self.keys
            .viewer(headers, self.anonymous_read)
            .ok_or(Problem::Unauthorized)
    }

    /// What the pages of this request know, or 401.
    fn page_ctx(&self, headers: &HeaderMap, done: &Done) -> Result<PageCtx, Problem> {
        let viewer = self.viewer(headers)?;
        Ok(PageCtx {
            now: Utc::now(),
            may_act: viewer.may_act(),
            csrf: csrf::token(&self.keys, &viewer),
            notice: done.notice(),
        })
    }

    /// A job as the pages show it: schedule in words, next fires, breaker, figures.
    async fn row(&self, job: JobSummary, all: &[JobSummary]) -> Result<JobRow, Problem> {
        let now = Utc::now();
        let zone = crate::parse_zone(&job.zone).unwrap_or(Tz::UTC);
        let schedule = job.trigger.parse::<Schedule>().ok();
        let words = schedule
            .as_ref()
            .map_or_else(|| job.trigger.clone(), words::schedule_in_words);
        let next = match &schedule {
            Some(s) if !s.is_fixed_delay() => s.upcoming(now).take(3).collect(),
            _ => job.next_fire.into_iter().collect(),
        };
        let breaker = match &job.circuit_breaker {
            Some(b) => {
                let sharing = b.sharing(&job.name, all);
                let liveness = CircuitBreaker::OBSERVED_LIVENESS;
                Some(
                    b.current_state(&*self.store, &sharing, now, liveness)
                        .await?,
                )
            }
            None => None,
        };
        let stats = stats::recent(&*self.store, &job.name).await?;
        Ok(JobRow {
            job,
            zone,
            words,
            next,
            breaker,
            stats,
        })
    }

    /// The zone of job `name` (UTC for a job the store no longer knows).
    async fn zone(&self, name: &str) -> Result<Tz, Problem> {
        let job = self.store.job(name).await?;
        Ok(job
            .and_then(|j| crate::parse_zone(&j.zone).ok())
            .unwrap_or(Tz::UTC))
    }
}

/// `GET /`: every job.
async fn jobs(Page { app, ctx }: Page) -> Result<Response, Problem> {
    let all = app.store.jobs().await?;
    let mut rows = Vec::with_capacity(all.len());
    for job in all.iter().cloned() {
        rows.push(app.row(job, &all).await?);
    }
    Ok(pages::jobs(&ctx, &rows).into_response())
}

/// `?after=CURSOR`: the page of history after a cursor.
#[derive(Debug, Default, Deserialize)]
struct Older {
    after: Option<String>,
}

/// `GET /jobs/{name}[?after=CURSOR]`: one job, its strip of recent ticks and a page of its
/// history.
async fn job(
    Path(name): Path<String>,
    Page { app, ctx }: Page,
    Query(older): Query<Older>,
) -> Result<Response, Problem> {
    let after = match older.after.as_deref().map(str::parse::<Cursor>) {
        Some(Err(e)) => return Err(Problem::BadRequest(e.to_string())),
        Some(Ok(cursor)) => Some(cursor),
        None => None,
    };
    let Some(job) = app.store.job(&name).await? else {
        return Err(Problem::NotFound(format!(
            "No job named `{name}` in this store."
        )));
    };
    let all = match &job.circuit_breaker {
        Some(b) if b.shared_name().is_some() => app.store.jobs().await?,
        _ => Vec::new(),
    };
    let strip = match job.trigger.parse::<Schedule>() {
        Ok(schedule) => strip::recent(&*app.store, &job, &schedule, ctx.now).await?,
        Err(_) => Vec::new(),
    };
    let newest = after.is_none();
    let page = app
        .store
        .history(&HistoryQuery::new(&name).after(after).limit(LISTED))
        .await?;
    let row = app.row(job, &all).await?;
    let view = JobView {
        row,
        strip,
        newest,
        history: page.executions,
        older: page.next,
    };
    Ok(pages::job(&ctx, &view).into_response())
}

/// `GET /executions/{id}`: one execution with its runs.
async fn execution(Path(id): Path<String>, Page { app, ctx }: Page) -> Result<Response, Problem> {
    let Some(detail) = app.store.execution_detail(&id).await? else {
        return Err(Problem::NotFound(format!(
            "No execution `{id}` in this store."
        )));
    };
    let zone = app.zone(&detail.execution.job).await?;
    Ok(pages::execution(&ctx, &detail, zone).into_response())
}

/// `GET /dead-letters`.
async fn dead_letters(Page { app, ctx }: Page) -> Result<Response, Problem> {
    let dead = app.store.dead_letters(None, LISTED).await?;
    let zones: std::collections::HashMap<String, Tz> = app
        .store
        .jobs()
        .await?
        .into_iter()
        .map(|j| {
            let zone = crate::parse_zone(&j.zone).unwrap_or(Tz::UTC);
            (j.name, zone)
        })
        .collect();
    let dead: Vec<_> = dead
        .into_iter()
        .map(|e| {
            let zone = zones.get(&e.job).copied().unwrap_or(Tz::UTC);
            (e, zone)
        })
        .collect();
    Ok(pages::dead_letters(&ctx, &dead).into_response())
}

/// A 303 to `path` with `?done=what`.
fn done(path: &str, what: &str) -> Response {
    Redirect::to(&format!("{path}?done={what}")).into_response()
}

/// `POST /jobs/{name}/pause` with a note.
async fn pause(Path(name): Path<String>, Act { app, form }: Act) -> Result<Response, Problem> {
    let note = form.note.as_deref().unwrap_or("").trim();
    if note.is_empty() {
        return Err(Problem::BadRequest(
            "The pause note is empty: say why, for whoever looks next.".to_owned(),
        ));
    }
    let chars = note.chars().count();
    if chars > NOTE_MAX {
        return Err(Problem::BadRequest(format!(
            "The pause note has {chars} characters: keep it to {NOTE_MAX}, a sentence for \
             whoever looks next."
        )));
    }
    app.store.pause(&name, note, BY).await?;
    Ok(done(&pages::job_path(&name), "paused"))
}

/// `POST /jobs/{name}/resume`.
async fn resume(Path(name): Path<String>, Act { app, .. }: Act) -> Result<Response, Problem> {
    app.store.resume(&name).await?;
    Ok(done(&pages::job_path(&name), "resumed"))
}

/// `POST /jobs/{name}/trigger`: a manual execution now.
async fn trigger(Path(name): Path<String>, Act { app, .. }: Act) -> Result<Response, Problem> {
    app.store.trigger(&name, BY).await?;
    Ok(done(&pages::job_path(&name), "triggered"))
}

/// `POST /executions/{id}/rerun`: a dead letter (or a timed-out or cancelled execution)
/// runs again.
async fn rerun(Path(id): Path<String>, Act { app, .. }: Act) -> Result<Response, Problem> {
    app.store.rerun(&id, false, BY).await?;
    Ok(done(&pages::execution_path(&id), "rerun"))
}

/// `GET /login`.
async fn login_page() -> Response {
    pages::login(StatusCode::OK, false)
}

/// The sign-in form's field.
#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /login`: the token for a session cookie (HttpOnly, SameSite=Strict, for
/// [`SESSION_HOURS`] hours); a wrong
/// token is the same 401 as none.
async fn login(State(app): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    if !app.keys.token_matches(form.token.trim()) {
        return pages::login(StatusCode::UNAUTHORIZED, true);
    }
    let session = match app.keys.new_session(Utc::now().timestamp()) {
        Ok(session) => session,
        Err(e) => {
            tracing::error!(error = %e, "console: no random bytes for a session");
            return Problem::Unavailable.into_response();
        }
    };
    let max_age = SESSION_HOURS * 3_600;
    let cookie =
        format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// `POST /logout`: forgets the session cookie.
async fn logout(_: Act) -> Result<Response, Problem> {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

/// Any other path: 404 (after the token, so that nothing is said to a stranger).
async fn not_found(State(app): State<Shared>, headers: HeaderMap) -> Problem {
    match app.viewer(&headers) {
        Ok(_) => Problem::NotFound("There is no such page.".to_owned()),
        Err(problem) => problem,
    }
}
