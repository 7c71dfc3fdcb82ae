//! The web console, in a real headless Chromium driven through WebDriver (Debian's
//! `chromium` and `chromium-driver`), against a running scheduler with the console embedded
//! (`SchedulerBuilder::console`) on real PostgreSQL (a scratch schema):
//!
//! - no token, or a wrong one, gives the same 401; the token gives the pages, which never
//!   show the token or the store's URL; an unknown job is a 404 page;
//! - a browser signs in with the token; the jobs page lists the jobs with their next fire
//!   in each job's zone;
//! - the trigger button runs the job once, and its history shows it;
//! - pause (with a note) stops the ticks and the page shows the note; resume restarts them;
//! - a dead letter whose error is `<script>alert(1)</script>` shows it as text, and no
//!   alert opens; its re-run button runs it again, and it completes;
//! - a POST with the session cookie but without its CSRF token (or with a wrong one) is
//!   refused with 403 and changes nothing; with the token it goes through;
//! - a store that stops answering is a 503 page that names no URL nor password.
//!
//! With `TICKGUARD_SCREENSHOTS=docs/console` the browser test also writes the pages'
//! screenshots (`jobs.png`, `job.png`, `execution.png`, `dead-letters.png`) there.
//!
//! Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`), `chromium` and `chromedriver`; `bash
//! scripts/services` provides them. Without them it fails; it never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tickguard::console::{self, Access};
use tickguard::store::{
    Claim, ClaimRequest, ExecutionRef, ExecutionStore, Finish, HistoryQuery, JobRegistration,
    MemoryStore, PostgresStore, Status,
};
use tickguard::{CircuitBreaker, Job, JobContext, JobError, Schedule, Scheduler};
use tickguard_tests::proxy::{Proxy, Traffic, through_local_port};
use tickguard_tests::{
    free_port, http_request as http, no_postgres, postgres_url, scratch_schema, unique_name,
};
use tokio::time::{Instant, sleep};

/// The console's token in these tests.
const TOKEN: &str = "c0ns0le-t0ken-for-tests";

/// The error the failing job ends with: markup that must show as text.
const XSS: &str = "<script>alert(1)</script>";

/// A cron expression that fires once a year: the job runs only when asked.
const YEARLY: &str = "0 0 0 1 1 *";

/// The header that carries `token`.
fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// chromedriver on a free port and a headless Chromium session through it, ended (and the
/// driver killed) when dropped.
struct Browser {
    driver: Child,
    client: Option<Client>,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs chromedriver (run `bash scripts/services`): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            sleep(Duration::from_millis(25)).await;
        }
        let profile = std::env::temp_dir().join(unique_name("tg_console_chromium"));
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session (is `chromium` installed?): {e}"));
        Self {
            driver,
            client: Some(client),
            profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// The text of the first element `css` finds.
    async fn text(&self, css: &str) -> String {
        let client = self.client();
        let found = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await,
            Err(e) => Err(e),
        };
        found.unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }

    /// Clicks the first element `css` finds, and waits until the page it was on is gone
    /// (the form's answer replaced it).
    async fn submit(&self, css: &str) {
        let client = self.client();
        let old = client.find(Locator::Css("html")).await.unwrap();
        client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The old page's root goes stale once the new page replaced it.
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "clicking `{css}` loaded no page");
            sleep(Duration::from_millis(25)).await;
        }
    }

    /// Reloads the page until `css`'s text contains `wanted` (within 15 s).
    async fn reload_until(&self, css: &str, wanted: &str, step: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{step}: `{css}` never showed `{wanted}`; it shows:\n{text}"
            );
            sleep(Duration::from_millis(200)).await;
            self.client().refresh().await.unwrap();
        }
    }

    /// Writes the page's screenshot to `$TICKGUARD_SCREENSHOTS/name.png`, when set (relative
    /// to the workspace).
    async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("TICKGUARD_SCREENSHOTS") else {
            return;
        };
        let png = self.client().screenshot().await.unwrap();
        // A relative directory is the workspace's (tests run in tests/).
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = root.join(dir).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Ends the session (and Chromium) before the driver goes.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async { client.close().await })
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// How many times each job ran.
#[derive(Clone, Default)]
struct Runs {
    ticker: Arc<AtomicUsize>,
    report: Arc<AtomicUsize>,
    import: Arc<AtomicUsize>,
}

/// The jobs: a ticker every second, a yearly report, a yearly import with a circuit breaker
/// that fails its first run with [`XSS`] after a checkpoint, and a nightly job in Berlin.
fn jobs(runs: &Runs) -> Vec<Job> {
    let yearly = || Schedule::cron(YEARLY).unwrap();
    let count = |counter: &Arc<AtomicUsize>| {
        let counter = counter.clone();
        move |_ctx: JobContext| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    };
    let import = runs.import.clone();
    let nightly = Schedule::cron("0 0 2 * * *")
        .unwrap()
        .in_zone("Europe/Berlin")
        .unwrap();
    vec![
        Job::new(
            "ticker",
            Schedule::every(Duration::from_secs(1)).unwrap(),
            count(&runs.ticker),
        ),
        Job::new("yearly-report", yearly(), count(&runs.report)),
        Job::new("flaky-import", yearly(), move |ctx: JobContext| {
            let import = import.clone();
            async move {
                if import.fetch_add(1, Ordering::SeqCst) == 0 {
                    ctx.checkpoint(&serde_json::json!({ "batch": 3, "rows": 1200 }))
                        .await?;
                    return Err(JobError::permanent(XSS));
                }
                Ok(())
            }
        })
        .circuit_breaker(CircuitBreaker::new()),
        Job::new("nightly-cleanup", nightly, |_ctx: JobContext| async {
            Ok(())
        }),
    ]
}

/// Waits until `job` has a dead letter, and returns its id.
async fn dead_letter(store: &PostgresStore, job: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = store.dead_letters(Some(job), 1).await.unwrap().pop() {
            return e.id;
        }
        assert!(Instant::now() < deadline, "{job} never failed");
        sleep(Duration::from_millis(50)).await;
    }
}

/// The executions of `job` in the store.
async fn history_len(store: &PostgresStore, job: &str) -> usize {
    store
        .history(&HistoryQuery::new(job).limit(100))
        .await
        .unwrap()
        .executions
        .len()
}

/// The scheduler with the console, on a scratch schema, and what the steps check against.
struct Site {
    schema: String,
    store: PostgresStore,
    runs: Runs,
    port: u16,
    base: String,
    /// The dead letter of `flaky-import`.
    failed: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_and_acts_in_a_browser() {
    let (schema, _dir, store) = scratch_schema("tg_console", &[]).await;
    let runs = Runs::default();
    let port = free_port();
    let mut builder = Scheduler::builder()
        .discover(false)
        .postgres(postgres_url())
        .namespace(&schema)
        .control_every(Duration::from_millis(100))
        .console(format!("127.0.0.1:{port}"))
        .console_token(TOKEN);
    for job in jobs(&runs) {
        builder = builder.job(job);
    }
    let scheduler = builder.build().await.unwrap_or_else(|e| no_postgres(e));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(scheduler.run_until(async move {
        let _ = stopped.await;
    }));
    store.trigger("flaky-import", "test").await.unwrap();
    let failed = dead_letter(&store, "flaky-import").await;
    let site = Site {
        schema,
        store,
        runs,
        port,
        base: format!("http://127.0.0.1:{port}"),
        failed,
    };
    tokens(&site);
    let browser = Browser::start().await;
    sign_in_and_list(&browser, &site).await;
    trigger(&browser, &site).await;
    pause(&browser, &site).await;
    rerun_a_dead_letter(&browser, &site).await;
    drop(browser);
    csrf(&site).await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// Step 1: no token, a wrong one, and the token, as plain HTTP.
fn tokens(site: &Site) {
    let (port, schema) = (site.port, &site.schema);
    let none = http(port, "GET", "/", &[], "");
    assert_eq!(none.status, 401, "no token: {}", none.head);
    let wrong = http(port, "GET", "/", &[bearer("wrong-token")], "");
    assert_eq!(wrong.status, 401, "a wrong token: {}", wrong.head);
    assert_eq!(
        wrong.body, none.body,
        "a wrong token is refused as a missing one"
    );
    let page = http(port, "GET", "/", &[bearer(TOKEN)], "");
    assert_eq!(page.status, 200, "the token opens the jobs page");
    for header in [
        "content-security-policy: default-src 'none'",
        "cache-control: no-store",
    ] {
        assert!(page.head.contains(header), "{header}: {}", page.head);
    }
    assert!(page.body.contains("yearly-report"), "{}", page.body);
    for secret in [TOKEN, "postgres://", schema.as_str()] {
        assert!(!page.body.contains(secret), "the page shows `{secret}`");
    }
    let unknown = http(port, "GET", "/jobs/no-such-job", &[bearer(TOKEN)], "");
    assert_eq!(unknown.status, 404, "an unknown job");
    assert!(unknown.body.contains("No job named `no-such-job`"));
    let unknown = http(port, "GET", "/executions/nope%2F1", &[bearer(TOKEN)], "");
    assert_eq!(unknown.status, 404, "an unknown execution");
    assert!(
        unknown.body.contains("No execution `nope/1`"),
        "{}",
        unknown.body
    );
}

/// Step 2: sign in; the jobs page lists the jobs with their next fire in their zone.
async fn sign_in_and_list(browser: &Browser, site: &Site) {
    let (client, base) = (browser.client(), &site.base);
    client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        client.title().await.unwrap(),
        "Sign in · tickguard",
        "the login page"
    );
    let field = client
        .find(Locator::Css("input[name=token]"))
        .await
        .unwrap();
    field.send_keys(TOKEN).await.unwrap();
    browser.submit("button[type=submit]").await;
    let next_year = chrono::Datelike::year(&chrono::Utc::now()) + 1;
    let report = browser.text("tr[data-job='yearly-report'] td.next").await;
    assert!(
        report.contains(&format!("{next_year}-01-01 00:00 UTC")),
        "the yearly job's next fire: {report}"
    );
    let nightly = browser.text("tr[data-job='nightly-cleanup'] td.next").await;
    assert!(
        nightly.contains("02:00 CET") || nightly.contains("02:00 CEST"),
        "the nightly job's next fire, in Berlin: {nightly}"
    );
    assert!(
        browser.text("#jobs").await.contains("every 1s"),
        "the ticker's schedule"
    );
}

/// Step 3: the trigger button runs the job once; its history shows it.
async fn trigger(browser: &Browser, site: &Site) {
    let (client, base, runs, store) = (browser.client(), &site.base, &site.runs, &site.store);
    client
        .goto(&format!("{base}/jobs/yearly-report"))
        .await
        .unwrap();
    browser.submit("#trigger").await;
    let history = browser
        .reload_until("#history", "COMPLETED", "trigger")
        .await;
    assert!(history.contains("requested by console"), "{history}");
    assert_eq!(
        runs.report.load(Ordering::SeqCst),
        1,
        "the trigger ran it once"
    );
    assert_eq!(history_len(store, "yearly-report").await, 1);
}

/// Step 4: pause with a note stops the ticks, and the page shows the note.
async fn pause(browser: &Browser, site: &Site) {
    let (client, base, runs, store) = (browser.client(), &site.base, &site.runs, &site.store);
    let note = "waiting for the bank's API <b>not bold</b>";
    client.goto(&format!("{base}/jobs/ticker")).await.unwrap();
    client
        .find(Locator::Id("note"))
        .await
        .unwrap()
        .send_keys(note)
        .await
        .unwrap();
    browser.submit("#pause").await;
    let state = browser.text("#state").await;
    assert!(state.contains("paused") && state.contains(note), "{state}");
    assert!(state.contains("by console"), "{state}");
    let paused_at = store
        .job("ticker")
        .await
        .unwrap()
        .unwrap()
        .paused
        .unwrap()
        .at;
    assert!(
        runs.ticker.load(Ordering::SeqCst) > 0,
        "the ticker ran before the pause"
    );
    // Three ticks' time: the control task applies the pause within its 100 ms, so no tick
    // from half a second after the pause on may run (a tick claimed before may still end).
    sleep(Duration::from_secs(3)).await;
    let since = paused_at + chrono::Duration::milliseconds(500);
    let ran: Vec<_> = store
        .history(&HistoryQuery::new("ticker").since(since))
        .await
        .unwrap()
        .executions
        .into_iter()
        .filter(|e| e.status != Status::Skipped)
        .map(|e| (e.scheduled_at, e.status))
        .collect();
    assert!(ran.is_empty(), "a paused job's ticks ran: {ran:?}");
    let before = runs.ticker.load(Ordering::SeqCst);
    client.refresh().await.unwrap();
    browser.screenshot("job").await;
    client.goto(&format!("{base}/")).await.unwrap();
    let listed = browser.text("tr[data-job='ticker'] td.state").await;
    assert!(
        listed.contains(note),
        "the jobs page shows the note: {listed}"
    );
    let breaker = browser.text("tr[data-job='flaky-import']").await;
    assert!(breaker.contains("closed"), "the breaker's state: {breaker}");
    browser.screenshot("jobs").await;
    client.goto(&format!("{base}/jobs/ticker")).await.unwrap();
    browser.submit("#resume").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs.ticker.load(Ordering::SeqCst) == before {
        assert!(Instant::now() < deadline, "the resumed ticker never ran");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Step 5: the dead letter's error is text, and no alert opens; its re-run completes.
async fn rerun_a_dead_letter(browser: &Browser, site: &Site) {
    let (client, base, runs, failed) = (browser.client(), &site.base, &site.runs, &site.failed);
    client.goto(&format!("{base}/dead-letters")).await.unwrap();
    let row = format!("tr[data-execution='{failed}'] pre");
    assert_eq!(browser.text(&row).await, XSS, "the error is shown as text");
    assert!(
        client.get_alert_text().await.is_err(),
        "an alert dialog opened"
    );
    browser.screenshot("dead-letters").await;
    client
        .goto(&format!("{base}/executions/{failed}"))
        .await
        .unwrap();
    assert_eq!(
        browser.text("#error").await,
        XSS,
        "the error chain, as text"
    );
    assert!(browser.text("#checkpoint").await.contains("\"rows\": 1200"));
    assert!(
        client.get_alert_text().await.is_err(),
        "an alert dialog opened"
    );
    browser.screenshot("execution").await;
    browser.submit("button.rerun").await;
    browser.reload_until("#status", "COMPLETED", "re-run").await;
    assert_eq!(runs.import.load(Ordering::SeqCst), 2, "the re-run ran once");
    client.goto(&format!("{base}/dead-letters")).await.unwrap();
    assert!(browser.text("main").await.contains("No dead letters."));
}

/// Step 6: a POST with the session cookie but no (or a wrong) CSRF token is refused, and
/// changes nothing; with its token it goes through. A completed execution's re-run is a 409.
async fn csrf(site: &Site) {
    let (port, store, failed) = (site.port, &site.store, &site.failed);
    let login = http(port, "POST", "/login", &[], &format!("token={TOKEN}"));
    assert_eq!(login.status, 303, "sign in: {}", login.head);
    let cookie = login
        .head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie: {}", login.head))
        .to_owned();
    assert!(login.head.contains("HttpOnly") && login.head.contains("SameSite=Strict"));
    let with_cookie = [format!("Cookie: {cookie}")];
    let trigger = "/jobs/yearly-report/trigger";
    let missing = http(port, "POST", trigger, &with_cookie, "");
    assert_eq!(missing.status, 403, "no CSRF token: {}", missing.head);
    let forged = http(port, "POST", trigger, &with_cookie, "csrf=00ff00ff");
    assert_eq!(forged.status, 403, "a wrong CSRF token");
    let anonymous = http(port, "POST", trigger, &[], "");
    assert_eq!(anonymous.status, 401, "no session at all");
    assert_eq!(
        history_len(store, "yearly-report").await,
        1,
        "refused POSTs changed nothing"
    );
    let page = http(port, "GET", "/jobs/yearly-report", &with_cookie, "");
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field on the job's page"))
        .to_owned();
    let allowed = http(port, "POST", trigger, &with_cookie, &format!("csrf={csrf}"));
    assert_eq!(
        allowed.status, 303,
        "with its CSRF token the form goes through"
    );
    assert_eq!(history_len(store, "yearly-report").await, 2);

    let refused = http(
        port,
        "POST",
        &format!("/executions/{failed}/rerun"),
        &[bearer(TOKEN)],
        "",
    );
    assert_eq!(refused.status, 409, "a completed execution is not re-run");
    assert!(refused.body.contains("completed"), "{}", refused.body);
}

#[tokio::test]
async fn the_builder_refuses_a_console_without_a_token_or_a_port() {
    let no_token = Scheduler::builder()
        .discover(false)
        .console("127.0.0.1:0")
        .build()
        .await
        .err()
        .expect("a console without a token");
    assert!(no_token.to_string().contains("needs a token"), "{no_token}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let busy = Scheduler::builder()
        .discover(false)
        .console(&addr)
        .console_token(TOKEN)
        .build()
        .await
        .err()
        .expect("a console on a taken port");
    assert!(
        busy.to_string()
            .contains(&format!("cannot serve the console on {addr}")),
        "{busy}"
    );
}

/// An in-memory store with one job, `hourly-sync`.
async fn hourly_sync() -> Arc<dyn ExecutionStore> {
    let store: Arc<dyn ExecutionStore> = Arc::new(MemoryStore::new());
    let hourly = Schedule::every(Duration::from_secs(3_600)).unwrap();
    let registration =
        JobRegistration::new("hourly-sync", hourly.to_string(), "UTC".to_owned(), None);
    store.register(&registration).await.unwrap();
    store
}

/// The console of `store` on a free port: the port, and the task serving it.
async fn serve(
    store: &Arc<dyn ExecutionStore>,
    access: Access,
) -> (u16, tokio::task::JoinHandle<Result<(), tickguard::Error>>) {
    let listener = console::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = tokio::spawn(console::serve(
        listener,
        Arc::clone(store),
        access,
        std::future::pending(),
    ));
    (port, serving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reading_shows_the_pages_and_no_action() {
    let store = hourly_sync().await;
    for (access, token) in [
        (Access::read_only(), None),
        (Access::token(TOKEN).anonymous_read(true), Some(TOKEN)),
    ] {
        let (port, serving) = serve(&store, access).await;
        let page = http(port, "GET", "/jobs/hourly-sync", &[], "");
        assert_eq!(page.status, 200, "anonymous reading");
        assert!(page.body.contains("hourly-sync"));
        let form = "action=\"/jobs/hourly-sync/trigger\"";
        assert!(
            !page.body.contains(form),
            "an anonymous reader sees no action"
        );
        let trigger = "/jobs/hourly-sync/trigger";
        assert_eq!(http(port, "POST", trigger, &[], "").status, 401, "no token");
        let wrong = http(port, "POST", trigger, &[bearer("guess")], "");
        assert_eq!(wrong.status, 401, "a wrong token");
        if let Some(token) = token {
            let page = http(port, "GET", "/jobs/hourly-sync", &[bearer(token)], "");
            assert!(page.body.contains(form), "the token sees the actions");
            let allowed = http(port, "POST", trigger, &[bearer(token)], "");
            assert_eq!(allowed.status, 303, "the token still acts");
        }
        serving.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_is_paged() {
    let store = hourly_sync().await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(store.trigger("hourly-sync", "ops").await.unwrap().id);
    }
    let (port, serving) = serve(&store, Access::token(TOKEN)).await;
    let shown = |body: &str| ids.iter().filter(|id| body.contains(id.as_str())).count();
    let first = http(port, "GET", "/jobs/hourly-sync", &[bearer(TOKEN)], "");
    assert_eq!(shown(&first.body), 25, "the newest page");
    let older = first
        .body
        .split("id=\"older\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link to older executions"))
        .replace("&amp;", "&");
    let second = http(port, "GET", &older, &[bearer(TOKEN)], "");
    assert_eq!(second.status, 200, "{older}");
    assert_eq!(shown(&second.body), 5, "the rest");
    assert!(!second.body.contains("id=\"older\""), "the last page");
    let bad = http(
        port,
        "GET",
        "/jobs/hourly-sync?after=x",
        &[bearer(TOKEN)],
        "",
    );
    assert_eq!(bad.status, 400, "a cursor that is none");
    assert!(bad.body.contains("is not a history cursor"), "{}", bad.body);
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_answering_is_a_503_without_its_url() {
    let (schema, _dir, _store) = scratch_schema("tg_console_503", &[]).await;
    let (_, host, port) = through_local_port(&postgres_url(), 0);
    let proxy = Proxy::start(&host, port).await;
    // Trust authentication ignores the password: it is there to be kept off the page.
    let (url, _, _) = through_local_port(&postgres_url(), proxy.port());
    let url = url.replacen('@', ":hunter2@", 1);
    assert!(url.contains(":hunter2@"), "{url}");
    let store: Arc<dyn ExecutionStore> = Arc::new(
        PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| no_postgres(e)),
    );
    let (console_port, serving) = serve(&store, Access::token(TOKEN)).await;
    let ok = http(console_port, "GET", "/", &[bearer(TOKEN)], "");
    assert_eq!(ok.status, 200, "the store answers: {}", ok.body);

    proxy.set(Traffic::Blackhole);
    let started = Instant::now();
    let down = http(console_port, "GET", "/", &[bearer(TOKEN)], "");
    assert_eq!(down.status, 503, "{}", down.head);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the page waited too long"
    );
    assert!(down.body.contains("could not be reached"), "{}", down.body);
    for secret in ["hunter2", "postgres://", &proxy.port().to_string(), &schema] {
        assert!(!down.body.contains(secret), "the 503 page shows `{secret}`");
    }
    proxy.set(Traffic::Pass);
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_long_notes_and_hostile_input_are_refused_with_headers_set() {
    let store = hourly_sync().await;
    let (port, serving) = serve(&store, Access::token(TOKEN)).await;

    // A sign-in form posted by another site's page is refused before the token is read.
    let body = format!("token={TOKEN}");
    for forged in [
        "Origin: http://evil.example",
        "Origin: null",
        "Sec-Fetch-Site: cross-site",
        "Sec-Fetch-Site: same-site",
    ] {
        let login = http(port, "POST", "/login", &[forged.to_owned()], &body);
        assert_eq!(login.status, 403, "{forged}: {}", login.head);
        assert!(!login.head.contains("set-cookie"), "{}", login.head);
    }
    let same = ["Origin: http://127.0.0.1".to_owned()];
    let login = http(port, "POST", "/login", &same, &body);
    assert_eq!(login.status, 303, "a sign-in from the console's own page");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(login.head.contains(flag), "{flag}: {}", login.head);
    }
    assert!(login.head.contains("location: /\r"), "{}", login.head);
    let trigger = "/jobs/hourly-sync/trigger";
    let cross = [bearer(TOKEN), "Origin: http://evil.example".to_owned()];
    assert_eq!(http(port, "POST", trigger, &cross, "").status, 403);
    assert!(
        store
            .history(&HistoryQuery::new("hourly-sync"))
            .await
            .unwrap()
            .executions
            .is_empty(),
        "a cross-site POST triggered nothing"
    );

    // A long note is a clear 400; a body far beyond a form's size too.
    let note = |chars: usize| {
        let body = format!("note={}", "x".repeat(chars));
        http(
            port,
            "POST",
            "/jobs/hourly-sync/pause",
            &[bearer(TOKEN)],
            &body,
        )
    };
    let long = note(1_001);
    assert_eq!(long.status, 400, "{}", long.head);
    assert!(long.body.contains("1001 characters"), "{}", long.body);
    let huge = note(100_000);
    assert_eq!(huge.status, 400, "{}", huge.head);
    assert!(
        store
            .job("hourly-sync")
            .await
            .unwrap()
            .unwrap()
            .paused
            .is_none()
    );

    // What a request names and a page echoes is text, and every answer carries the headers.
    let script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for path in [
        format!("/jobs/{script}"),
        format!("/executions/{script}"),
        format!("/jobs/hourly-sync?after={script}"),
    ] {
        let page = http(port, "GET", &path, &[bearer(TOKEN)], "");
        assert!(matches!(page.status, 400 | 404), "{path}: {}", page.head);
        assert!(!page.body.contains("<script>"), "{path}: {}", page.body);
        assert!(
            page.body.contains("&lt;script&gt;"),
            "{path}: {}",
            page.body
        );
    }
    for path in ["/", "/login", "/nowhere"] {
        for headers in [&[][..], &[bearer(TOKEN)][..]] {
            let page = http(port, "GET", path, headers, "");
            for header in [
                "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                "x-frame-options: DENY",
                "x-content-type-options: nosniff",
                "referrer-policy: same-origin",
                "cache-control: no-store",
            ] {
                assert!(
                    page.head.contains(header),
                    "{path}: {header}: {}",
                    page.head
                );
            }
        }
    }
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_s_owner_checkpoint_and_error_render_as_text() {
    let store = hourly_sync().await;
    let (id, owner) = ("hourly-sync@1", "<b>replica</b>");
    let claim = ClaimRequest::new("hourly-sync", id, chrono::Utc::now(), owner);
    let Claim::Acquired(claimed) = store.claim(&claim).await.unwrap() else {
        panic!("the claim of a fresh execution");
    };
    let exec = ExecutionRef {
        job: "hourly-sync".to_owned(),
        execution_id: id.to_owned(),
        fence: claimed.fence,
    };
    let checkpoint = r#"{"row":"</pre><script>alert(1)</script>"}"#;
    store.checkpoint(&exec, checkpoint).await.unwrap();
    let error = "<img src=x onerror=alert(1)>";
    let finish = Finish::new(Status::Failed, 1, Some(error));
    store.finish(&exec, &finish).await.unwrap();
    let (port, serving) = serve(&store, Access::token(TOKEN)).await;
    for path in [
        "/executions/hourly-sync%401",
        "/dead-letters",
        "/jobs/hourly-sync",
    ] {
        let page = http(port, "GET", path, &[bearer(TOKEN)], "");
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        for raw in ["<script>", "<img", "<b>replica"] {
            assert!(
                !page.body.contains(raw),
                "{path}: {raw} as markup: {}",
                page.body
            );
        }
        assert!(
            page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}"
        );
    }
    let page = http(
        port,
        "GET",
        "/executions/hourly-sync%401",
        &[bearer(TOKEN)],
        "",
    );
    for text in ["&lt;b&gt;replica&lt;/b&gt;", "&lt;/pre&gt;&lt;script&gt;"] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    serving.abort();
}
