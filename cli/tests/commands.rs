//! The `tickguard` binary against real stores (a SQLite file, a Postgres schema), seeded
//! through the store API: each command's table and JSON, the changes the writes make, and
//! every kind of bad input with its message and exit code.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tickguard::Schedule;
use tickguard::store::{
    CancelKind, Claim, ClaimRequest, HistoryQuery, PruneRequest, Retention, Status,
};

use common::{Backend, HOUR, Store, hours_ago, run_with};

/// What [`seed`] put in the store.
struct Seeded {
    store: Store,
    /// `report` (every hour): the ids of its ticks 6 h ago (completed), 5 h ago (failed).
    completed: String,
    failed: String,
    /// The ticks of `report` with no execution (4 h ago) and skipped (3 h ago).
    missing: DateTime<Utc>,
    skipped: DateTime<Utc>,
    /// `nightly` (02:00 in Berlin): its next fire.
    nightly_next: DateTime<Utc>,
}

const FAILURE: &str = "charge failed: card declined";
const SKIP_REASON: &str = "the job was paused";

/// Three jobs: `report` every hour since 6 h ago (ticks 6 h and 2..0 h ago completed, 5 h
/// ago failed, 4 h ago missing, 3 h ago skipped), `nightly` at 02:00 in Berlin with one
/// completed run, and `drain`, a fixed delay.
async fn seed(backend: Backend) -> Seeded {
    let store = Store::new(backend).await;
    // One reading of the clock for every tick, so an hour that turns while seeding cannot
    // shift some of them.
    let this_hour = hours_ago(0);
    let hours_ago = |n: i64| this_hour - chrono::Duration::hours(n);
    let every_hour = Schedule::every(HOUR).expect("a schedule");
    store
        .register(
            "report",
            &every_hour,
            "UTC",
            hours_ago(6) - chrono::Duration::minutes(30),
        )
        .await;
    let completed = store
        .ran("report", hours_ago(6), Status::Completed, 1, None)
        .await;
    let failed = store
        .ran("report", hours_ago(5), Status::Failed, 3, Some(FAILURE))
        .await;
    store.skipped("report", hours_ago(3), SKIP_REASON).await;
    for n in 0..=2 {
        store
            .ran("report", hours_ago(n), Status::Completed, 1, None)
            .await;
    }
    // The next tick, when it comes while the test runs.
    if hours_ago(-1) - Utc::now() < chrono::Duration::minutes(2) {
        store
            .ran("report", hours_ago(-1), Status::Completed, 1, None)
            .await;
    }
    let nightly = Schedule::cron("0 0 2 * * *")
        .and_then(|s| s.in_zone("Europe/Berlin"))
        .expect("a schedule");
    let three_days_ago = Utc::now() - chrono::Duration::days(3);
    store
        .register("nightly", &nightly, "Europe/Berlin", three_days_ago)
        .await;
    let last = nightly.latest_at_or_before(Utc::now()).expect("a tick");
    store.ran("nightly", last, Status::Completed, 1, None).await;
    let drain = Schedule::after(Duration::from_secs(300)).expect("a schedule");
    store.register("drain", &drain, "UTC", three_days_ago).await;
    Seeded {
        store,
        completed,
        failed,
        missing: hours_ago(4),
        skipped: hours_ago(3),
        nightly_next: nightly.next_after(Utc::now()).expect("a tick"),
    }
}

/// `t` as the tables print it in `zone`, without the relative part.
fn local(t: DateTime<Utc>, zone: &str) -> String {
    let zone: Tz = zone.parse().expect("a zone");
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

async fn jobs_lists_every_job(backend: Backend) {
    let s = seed(backend).await;
    let run = s.store.run(&["jobs"]);
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("JOB "), "{out}");
    for header in ["SCHEDULE", "NEXT", "LAST", "STATE"] {
        assert!(lines[0].contains(header), "{out}");
    }
    let nightly = lines
        .iter()
        .find(|l| l.starts_with("nightly "))
        .unwrap_or_else(|| panic!("no nightly row: {out}"));
    assert!(
        nightly.contains(r#"cron "0 0 2 * * *" in Europe/Berlin"#),
        "{out}"
    );
    assert!(
        nightly.contains(&format!("{} (in ", local(s.nightly_next, "Europe/Berlin"))),
        "{out}"
    );
    assert!(nightly.contains("COMPLETED"), "{out}");
    assert!(nightly.ends_with("active"), "{out}");
    let report = lines
        .iter()
        .find(|l| l.starts_with("report "))
        .expect("a report row");
    assert!(report.contains("every 1h"), "{out}");
    // Columns are aligned: every row's schedule starts where the header's does.
    let column = lines[0].find("SCHEDULE").expect("a column");
    assert_eq!(nightly.find("cron"), Some(column), "{out}");
    assert_eq!(report.find("every"), Some(column), "{out}");

    let json = s.store.run(&["jobs", "--json"]).json();
    let jobs = json.as_array().expect("an array");
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["name"].as_str()).collect();
    assert_eq!(names, ["drain", "nightly", "report"]);
    assert_eq!(jobs[1]["zone"], "Europe/Berlin");
    assert_eq!(jobs[1]["next_fire"], rfc3339(s.nightly_next));
    assert_eq!(jobs[1]["paused"], serde_json::Value::Null);
    assert_eq!(jobs[2]["trigger"], "every 1h");
    assert_eq!(jobs[2]["last"]["status"], "COMPLETED");
}

async fn show_describes_one_job(backend: Backend) {
    let s = seed(backend).await;
    let run = s.store.run(&["show", "nightly"]);
    let out = run.ok();
    assert!(out.contains("job        nightly\n"), "{out}");
    assert!(
        out.contains("schedule   cron \"0 0 2 * * *\" in Europe/Berlin\n"),
        "{out}"
    );
    assert!(out.contains("state      active\n"), "{out}");
    assert!(
        out.contains(&format!(
            "next fire  {} (in ",
            local(s.nightly_next, "Europe/Berlin")
        )),
        "{out}"
    );
    assert!(out.contains("latest executions:\nTICK"), "{out}");

    let json = s.store.run(&["show", "report", "--json"]).json();
    assert_eq!(json["job"]["name"], "report");
    let recent = json["recent"].as_array().expect("an array");
    assert_eq!(recent.len(), 5, "{json}");
    assert_eq!(recent[0]["job"], "report");

    let err = s.store.run(&["show", "nope"]);
    let err = err.fails(1);
    assert!(
        err.starts_with("error: no job named `nope` in this store\n"),
        "{err}"
    );
    assert!(err.contains("hint: `tickguard jobs` lists"), "{err}");
}

/// `show` reads a job's circuit breaker settings from the store (the command does not have
/// the job's code) and computes its state from the executions of every job sharing it: two
/// failures of `card` open the breaker `payments` for `bank` too.
async fn show_computes_a_shared_breaker_from_the_store(backend: Backend) {
    let store = Store::new(backend).await;
    let breaker = tickguard::CircuitBreaker::new()
        .name("payments")
        .failure_rate(0.5)
        .window(4)
        .min_runs(2)
        .open_for(Duration::from_secs(3600));
    let every = Schedule::every(Duration::from_secs(60)).expect("a valid period");
    for job in ["card", "bank", "plain"] {
        let registration =
            tickguard::store::JobRegistration::new(job, every.to_string(), "UTC".to_owned(), None)
                .circuit_breaker((job != "plain").then(|| breaker.clone()));
        store
            .api
            .register(&registration)
            .await
            .unwrap_or_else(|e| panic!("register `{job}`: {e}"));
    }
    store
        .ran("bank", hours_ago(3), Status::Completed, 1, None)
        .await;
    let out = store.run(&["show", "bank"]).ok().to_owned();
    assert!(
        out.contains(
            "breaker    payments: closed (0 of the last 1 runs failed); shared by bank, card\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "           name = \"payments\", failure_rate = 0.5, window = 4, min_runs = 2, \
             open_for = 3600s\n"
        ),
        "{out}"
    );
    store
        .ran("card", hours_ago(2), Status::Failed, 1, Some("gateway 503"))
        .await;
    store
        .ran("card", hours_ago(1), Status::TimedOut, 1, Some("timed out"))
        .await;
    let out = store.run(&["show", "bank"]).ok().to_owned();
    assert!(out.contains("breaker    payments: open until "), "{out}");

    let json = store.run(&["show", "bank", "--json"]).json();
    let b = &json["circuit_breaker"];
    assert_eq!(b["name"], "payments", "{json}");
    assert_eq!(b["shared"], true);
    assert_eq!(b["state"], "open");
    assert_eq!(b["jobs"], serde_json::json!(["bank", "card"]));
    assert_eq!(
        (b["window"].clone(), b["min_runs"].clone()),
        (4.into(), 2.into())
    );
    assert_eq!(b["failure_rate"], 0.5);
    assert_eq!(b["open_for_ms"], 3_600_000);
    assert!(b["until"].is_string(), "{json}");
    let plain = store.run(&["show", "plain", "--json"]).json();
    assert_eq!(plain["circuit_breaker"], serde_json::Value::Null);
    assert!(!store.run(&["show", "plain"]).ok().contains("breaker"));
}

/// The rows of a table of executions (not its header, notes nor next-page hint).
fn execution_rows(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.contains("report@") && !l.starts_with(' ') && !l.starts_with("more:"))
        .collect()
}

async fn history_pages_and_filters(backend: Backend) {
    let s = seed(backend).await;
    let run = s
        .store
        .run(&["history", "report", "--limit", "2", "--since", "7h"]);
    let out = run.ok();
    let rows = execution_rows(out);
    assert_eq!(rows.len(), 2, "{out}");
    let more = out
        .lines()
        .find_map(|l| l.strip_prefix("more: "))
        .unwrap_or_else(|| panic!("no next-page hint: {out}"));
    assert!(
        more.starts_with("tickguard history report --since "),
        "{more}"
    );
    let args: Vec<&str> = more.split_whitespace().skip(1).collect();
    let mut seen = rows.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let next = s.store.run(&args);
    let next = next.ok();
    let next_rows = execution_rows(next);
    assert_eq!(next_rows.len(), 2, "{next}");
    for row in next_rows {
        assert!(!seen.contains(&row.to_string()), "page 2 repeats {row}");
        seen.push(row.to_string());
    }

    let failed = s.store.run(&["history", "report", "--status", "failed"]);
    let failed = failed.ok();
    assert!(failed.contains(&s.failed), "{failed}");
    assert!(
        failed.contains(&format!("    error: {FAILURE}")),
        "{failed}"
    );
    assert_eq!(execution_rows(failed).len(), 1, "{failed}");
    assert!(!failed.contains("more:"), "{failed}");

    let json = s
        .store
        .run(&[
            "history", "report", "--status", "failed", "--status", "skipped", "--json",
        ])
        .json();
    let executions = json["executions"].as_array().expect("an array");
    let statuses: Vec<&str> = executions
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, ["SKIPPED", "FAILED"], "{json}");
    assert_eq!(executions[1]["error"], FAILURE);
    assert_eq!(executions[1]["attempts"], 3);
    assert_eq!(executions[0]["scheduled_at"], rfc3339(s.skipped));
    assert_eq!(json["next"], serde_json::Value::Null);
    let paged = s
        .store
        .run(&["history", "report", "--limit", "1", "--json"])
        .json();
    assert!(paged["next"].is_string(), "{paged}");

    let err = s
        .store
        .run(&["history", "report", "--since", "last tuesday"]);
    let err = err.fails(2);
    assert!(
        err.starts_with("error: --since `last tuesday` is neither a duration nor a time\n"),
        "{err}"
    );
    assert!(
        err.contains("hint: write a duration ago such as `--since 24h`"),
        "{err}"
    );
    let err = s.store.run(&["history", "report", "--status", "done"]);
    err.fails_with(2, "error: `done` is not an execution status");
    let err = s.store.run(&["history", "nope"]);
    err.fails_with(1, "error: no job named `nope`");
}

async fn execution_shows_runs_and_errors(backend: Backend) {
    let s = seed(backend).await;
    let run = s.store.run(&["execution", &s.failed]);
    let out = run.ok();
    assert!(
        out.starts_with(&format!("execution     {}\n", s.failed)),
        "{out}"
    );
    assert!(out.contains("status        FAILED\n"), "{out}");
    assert!(out.contains(&format!("error: {FAILURE}\n")), "{out}");
    let runs = out
        .split("runs:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no runs: {out}"));
    assert!(runs.starts_with("FENCE"), "{out}");
    assert!(runs.contains("host-a/run-1"), "{out}");
    assert!(runs.contains("FAILED"), "{out}");
    assert!(runs.contains(&format!("\n    error: {FAILURE}\n")), "{out}");

    let json = s.store.run(&["execution", &s.failed, "--json"]).json();
    assert_eq!(json["execution"]["id"], s.failed.as_str());
    assert_eq!(json["execution"]["status"], "FAILED");
    assert_eq!(json["runs"][0]["outcome"], "FAILED");
    assert_eq!(json["runs"][0]["owner"], "host-a/run-1");
    assert_eq!(json["runs"][0]["error"], FAILURE);

    let err = s.store.run(&["execution", "report@never"]);
    let err = err.fails(1);
    assert!(
        err.starts_with("error: no execution `report@never` in this store\n"),
        "{err}"
    );
}

async fn failed_lists_dead_letters(backend: Backend) {
    let s = seed(backend).await;
    let run = s.store.run(&["failed"]);
    let out = run.ok();
    assert!(out.starts_with("JOB "), "{out}");
    assert!(out.contains(&s.failed), "{out}");
    assert!(out.contains(&format!("    error: {FAILURE}\n")), "{out}");
    let json = s.store.run(&["failed", "report", "--json"]).json();
    let dead = json.as_array().expect("an array");
    assert_eq!(dead.len(), 1, "{json}");
    assert_eq!(dead[0]["id"], s.failed.as_str());
    let none = s.store.run(&["failed", "nightly"]);
    assert_eq!(none.ok(), "no dead letters\n");
    let err = s.store.run(&["failed", "nope"]);
    err.fails_with(1, "error: no job named `nope`");
}

async fn gaps_finds_missing_and_skipped_ticks(backend: Backend) {
    let s = seed(backend).await;
    // A manual execution is not a tick of the schedule: it changes nothing here.
    s.store.run(&["trigger", "report"]).ok();
    let run = s.store.run(&["gaps", "report", "--since", "24h"]);
    let out = run.ok();
    assert!(out.starts_with("report (every 1h): "), "{out}");
    assert!(out.contains(", 2 did not run\n"), "{out}");
    let missing = out
        .lines()
        .find(|l| l.starts_with(&local(s.missing, "UTC")))
        .unwrap_or_else(|| panic!("no missing tick: {out}"));
    assert!(missing.contains("no execution"), "{out}");
    let skipped = out
        .lines()
        .find(|l| l.starts_with(&local(s.skipped, "UTC")))
        .unwrap_or_else(|| panic!("no skipped tick: {out}"));
    assert!(skipped.contains("skipped"), "{out}");
    assert!(
        out.contains(&format!("    reason: {SKIP_REASON}\n")),
        "{out}"
    );

    let json = s.store.run(&["gaps", "report", "--json"]).json();
    let gaps = json["gaps"].as_array().expect("an array");
    assert_eq!(gaps.len(), 2, "{json}");
    assert_eq!(gaps[0]["tick"], rfc3339(s.missing));
    assert_eq!(gaps[0]["kind"], "missing");
    assert_eq!(gaps[1]["tick"], rfc3339(s.skipped));
    assert_eq!(gaps[1]["kind"], "skipped");
    assert_eq!(gaps[1]["reason"], SKIP_REASON);
    assert!(json["ticks"].as_u64().is_some_and(|n| n >= 7), "{json}");

    // Only the ticks since: the last two hours had all their ticks.
    let recent = s.store.run(&["gaps", "report", "--since", "150m"]);
    assert!(recent.ok().contains(", 0 did not run\n"), "{recent:?}");

    let err = s.store.run(&["gaps", "drain"]);
    let err = err.fails(1);
    assert!(err.contains("a fixed delay"), "{err}");
    let err = s.store.run(&["gaps", "report", "--since", "yesterday-ish"]);
    err.fails_with(2, "error: --since `yesterday-ish`");
    let err = s.store.run(&["gaps", "nope"]);
    err.fails_with(1, "error: no job named `nope`");

    // Once a prune deleted the records of the job's ticks, their absence says nothing: the
    // window starts after the latest pruned tick, and the output says so.
    let zero = Some(Duration::ZERO);
    let retention = Retention::keep_forever().completed(zero).skipped(zero);
    let pruned = s
        .store
        .api
        .prune(&PruneRequest::new(retention).jobs(vec!["report".to_owned()]))
        .await
        .expect("prune");
    assert!(pruned.total() > 0, "{pruned:?}");
    let after = s.store.run(&["gaps", "report", "--since", "24h"]);
    let out = after.ok();
    assert!(
        out.contains("was pruned: older ticks are not judged"),
        "{out}"
    );
    assert!(!out.contains("no execution"), "{out}");
    let json = s.store.run(&["gaps", "report", "--json"]).json();
    assert!(json["pruned_through"].is_string(), "{json}");
}

async fn gaps_groups_outages_and_caps_its_ticks(backend: Backend) {
    let store = Store::new(backend).await;
    let every_second = Schedule::every(Duration::from_secs(1)).expect("a schedule");
    let long_ago = Utc::now() - chrono::Duration::days(3);
    store
        .register("ticker", &every_second, "UTC", long_ago)
        .await;
    // An outage: consecutive ticks with no execution are one row of the table.
    let run = store.run(&["gaps", "ticker", "--since", "10s", "--until", "0s"]);
    let out = run.ok();
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains(" … "), "{out}");
    assert!(rows[0].contains("no execution (1"), "{out}");
    let json = store
        .run(&[
            "gaps", "ticker", "--since", "10s", "--until", "0s", "--json",
        ])
        .json();
    let ticks = json["ticks"].as_u64().expect("a count");
    assert!((10..=12).contains(&ticks), "{json}");
    assert_eq!(
        json["gaps"].as_array().map(Vec::len),
        usize::try_from(ticks).ok()
    );
    let err = store.run(&["gaps", "ticker", "--since", "2d"]);
    let err = err.fails(1);
    assert!(err.contains("has more than 100000 ticks"), "{err}");
    assert!(err.contains("hint: look at a shorter window"), "{err}");
}

async fn trigger_asks_for_a_manual_execution(backend: Backend) {
    let s = seed(backend).await;
    let run = s.store.run(&["trigger", "report", "--by", "alice"]);
    let out = run.ok();
    assert!(
        out.starts_with("triggered report: execution report@manual-"),
        "{out}"
    );
    let page = s
        .store
        .api
        .history(&HistoryQuery::new("report").statuses([Status::Pending]))
        .await
        .expect("history");
    assert_eq!(page.executions.len(), 1, "{page:?}");
    let manual = &page.executions[0];
    assert!(manual.id.contains("@manual-"), "{manual:?}");
    assert_eq!(manual.requested_by.as_deref(), Some("alice"));
    assert!(out.contains(&manual.id), "{out}");
    // The default requester: user and host.
    s.store.run(&["trigger", "nightly"]).ok();
    let page = s
        .store
        .api
        .history(&HistoryQuery::new("nightly").statuses([Status::Pending]))
        .await
        .expect("history");
    assert_eq!(
        page.executions[0].requested_by.as_deref(),
        Some("ops@bastion")
    );

    let err = s.store.run(&["trigger", "nope"]);
    err.fails_with(1, "error: no job named `nope`");
}

async fn pause_and_resume(backend: Backend) {
    let s = seed(backend).await;
    let err = s.store.run(&["pause", "report"]);
    assert!(err.fails(2).contains("--note"), "{err:?}");

    let run = s
        .store
        .run(&["pause", "report", "--note", "bank maintenance until 6"]);
    assert!(
        run.ok()
            .starts_with("paused report on every instance (by ops@bastion)"),
        "{run:?}"
    );
    let job = s
        .store
        .api
        .job("report")
        .await
        .expect("job")
        .expect("report");
    let pause = job.paused.expect("paused");
    assert_eq!(pause.note, "bank maintenance until 6");
    assert_eq!(pause.by, "ops@bastion");
    let jobs = s.store.run(&["jobs"]);
    let out = jobs.ok();
    let row = out
        .lines()
        .find(|l| l.starts_with("report "))
        .expect("a row");
    assert!(row.ends_with("paused"), "{out}");
    assert!(
        out.contains("    paused: bank maintenance until 6 (by ops@bastion, "),
        "{out}"
    );
    let json = s.store.run(&["show", "report", "--json"]).json();
    assert_eq!(json["job"]["paused"]["note"], "bank maintenance until 6");
    assert_eq!(json["job"]["paused"]["by"], "ops@bastion");

    let run = s.store.run(&["resume", "report"]);
    assert!(run.ok().starts_with("resumed report"), "{run:?}");
    let job = s
        .store
        .api
        .job("report")
        .await
        .expect("job")
        .expect("report");
    assert_eq!(job.paused, None);
    let again = s.store.run(&["resume", "report"]);
    assert_eq!(again.ok(), "report is not paused: nothing changed\n");

    let err = s.store.run(&["pause", "nope", "--note", "x"]);
    err.fails_with(1, "error: no job named `nope`");
    let err = s.store.run(&["resume", "nope"]);
    err.fails_with(1, "error: no job named `nope`");
}

async fn rerun_refuses_then_forces(backend: Backend) {
    let s = seed(backend).await;
    let err = s.store.run(&["rerun", &s.completed]);
    let err = err.fails(1);
    assert!(err.starts_with("error: "), "{err}");
    // How to force it, said once (by the store or by the command).
    let force = format!("tickguard rerun {} --force", s.completed);
    assert_eq!(err.matches(&force).count(), 1, "{err}");
    let unchanged = s
        .store
        .api
        .execution(&s.completed)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(unchanged.status, Status::Completed);

    let run = s
        .store
        .run(&["rerun", &s.completed, "--force", "--by", "bob"]);
    assert!(
        run.ok().contains("is pending again, requested by bob"),
        "{run:?}"
    );
    let rerun = s
        .store
        .api
        .execution(&s.completed)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(rerun.status, Status::Pending);
    assert_eq!(rerun.requested_by.as_deref(), Some("bob"));

    s.store.run(&["rerun", &s.failed]).ok();
    let rerun = s
        .store
        .api
        .execution(&s.failed)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(rerun.status, Status::Pending);
    // A pending one is refused, and --force does not change that.
    let err = s.store.run(&["rerun", &s.failed, "--force"]);
    assert!(!err.fails(1).contains("hint"), "{err:?}");

    let err = s.store.run(&["rerun", "report@never"]);
    err.fails_with(1, "error: no execution `report@never`");
}

/// `cancel` asks a running execution to stop (its request listed for the instance running
/// it), cancels a pending one at once, refuses one that ended (saying how to run it again)
/// and does not find an unknown one.
async fn cancel_stops_a_run_and_refuses_an_ended_one(backend: Backend) {
    let s = seed(backend).await;
    let running = "report@cancel-running";
    let claim = ClaimRequest::new("report", running, Utc::now(), "worker-1");
    let claimed = s.store.api.claim(&claim).await.expect("claim");
    assert!(matches!(claimed, Claim::Acquired(_)), "{claimed:?}");
    let run = s.store.run(&[
        "cancel",
        running,
        "--note",
        "wrong input file",
        "--by",
        "alice",
    ]);
    let out = run.ok();
    assert!(
        out.starts_with(&format!(
            "asked execution {running} of report to stop (by alice: wrong input file); the \
             instance running it stops it within a second"
        )),
        "{out}"
    );
    let requests = s
        .store
        .api
        .cancel_requests(&["report".to_owned()])
        .await
        .expect("cancel requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (
            requests[0].execution_id.as_str(),
            requests[0].kind,
            requests[0].note.as_str(),
            requests[0].by.as_str()
        ),
        (running, CancelKind::Operator, "wrong input file", "alice")
    );

    let manual = s.store.api.trigger("report", "bob").await.expect("trigger");
    let run = s.store.run(&["cancel", &manual.id]);
    let out = run.ok();
    assert!(
        out.starts_with(&format!(
            "cancelled execution {} of report before it ran (by ops@bastion); it will not run",
            manual.id
        )),
        "{out}"
    );
    let cancelled = s
        .store
        .api
        .execution(&manual.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (cancelled.status, cancelled.error.as_deref()),
        (Status::Cancelled, Some("cancelled by ops@bastion"))
    );

    let err = s.store.run(&["cancel", &s.completed]);
    let err = err.fails(1);
    assert!(
        err.starts_with(&format!(
            "error: execution `{}` already ended (COMPLETED)",
            s.completed
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("tickguard rerun {}", s.completed)),
        "{err}"
    );
    let err = s.store.run(&["cancel", "report@never"]);
    err.fails_with(1, "error: no execution `report@never`");
}

async fn prune_counts_then_deletes(backend: Backend) {
    let s = seed(backend).await;
    let before = s
        .store
        .api
        .executions("report", 100)
        .await
        .expect("read")
        .len();
    let completed = s
        .store
        .api
        .executions("report", 100)
        .await
        .expect("read")
        .iter()
        .filter(|e| e.status == Status::Completed)
        .count();
    let run = s
        .store
        .run(&["prune", "--dry-run", "--job", "report", "--completed", "0s"]);
    let out = run.ok();
    assert!(out.starts_with("STATUS "), "{out}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.ends_with("WOULD DELETE")),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("COMPLETED "))
        .expect("a row");
    assert!(row.ends_with(&format!(" {completed}")), "{out}");
    let failed_row = out
        .lines()
        .find(|l| l.starts_with("FAILED "))
        .expect("a row");
    assert!(failed_row.contains("30 d"), "{out}");
    assert!(
        out.contains(&format!(
            "dry run on report: {completed} executions would be deleted"
        )),
        "{out}"
    );
    let after = s
        .store
        .api
        .executions("report", 100)
        .await
        .expect("read")
        .len();
    assert_eq!(after, before, "a dry run deleted");

    let run = s.store.run(&[
        "prune",
        "--job",
        "report",
        "--completed",
        "0s",
        "--skipped",
        "forever",
    ]);
    assert!(
        run.ok()
            .contains(&format!("pruned report: {completed} executions deleted")),
        "{run:?}"
    );
    let left = s.store.api.executions("report", 100).await.expect("read");
    assert_eq!(left.len(), before - completed, "{left:?}");
    assert!(
        left.iter().all(|e| e.status != Status::Completed),
        "{left:?}"
    );
    let nightly = s.store.api.executions("nightly", 100).await.expect("read");
    assert_eq!(nightly.len(), 1, "another job was pruned");

    let err = s.store.run(&["prune", "--failed", "a month"]);
    let err = err.fails(2);
    assert!(
        err.starts_with("error: --failed `a month` is not a duration"),
        "{err}"
    );
    assert!(err.contains("`--failed forever`"), "{err}");
    let err = s.store.run(&["prune", "--job", "nope"]);
    err.fails_with(1, "error: no job named `nope`");
}

async fn a_manual_execution_does_not_cover_a_tick(backend: Backend) {
    let store = Store::new(backend).await;
    // Every millisecond is a tick, so the manual execution's tick (the store's clock) is one.
    let every_ms = Schedule::every(Duration::from_millis(1)).expect("a schedule");
    let created = Utc::now() - chrono::Duration::seconds(1);
    store.register("fast", &every_ms, "UTC", created).await;
    let manual = store.api.trigger("fast", "alice").await.expect("trigger");
    let tick =
        DateTime::from_timestamp_millis(manual.scheduled_at.timestamp_millis()).expect("a tick");
    let json = store
        .run(&["gaps", "fast", "--until", "0s", "--json"])
        .json();
    let gaps = json["gaps"].as_array().expect("an array");
    let at_tick: Vec<_> = gaps.iter().filter(|g| g["tick"] == rfc3339(tick)).collect();
    assert_eq!(
        at_tick.len(),
        1,
        "{} not among {} gaps",
        rfc3339(tick),
        gaps.len()
    );
    assert_eq!(at_tick[0]["kind"], "missing");
    assert_eq!(json["ticks"].as_u64(), u64::try_from(gaps.len()).ok());
}

/// Generates one test per backend for each scenario.
macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_every_store!(
    jobs_lists_every_job,
    show_describes_one_job,
    show_computes_a_shared_breaker_from_the_store,
    history_pages_and_filters,
    execution_shows_runs_and_errors,
    failed_lists_dead_letters,
    gaps_finds_missing_and_skipped_ticks,
    gaps_groups_outages_and_caps_its_ticks,
    trigger_asks_for_a_manual_execution,
    pause_and_resume,
    rerun_refuses_then_forces,
    cancel_stops_a_run_and_refuses_an_ended_one,
    prune_counts_then_deletes,
    a_manual_execution_does_not_cover_a_tick,
);

#[test]
fn no_store_is_a_usage_error() {
    let run = run_with(&["jobs"], &[]);
    let err = run.fails(2);
    assert!(
        err.starts_with("error: no store given: pass --store URL"),
        "{err}"
    );
    assert!(err.contains("Usage: tickguard"), "{err}");
}

#[test]
fn usage_errors_are_clap_s() {
    let err = run_with(
        &["frobnicate"],
        &[("TICKGUARD_STORE", "sqlite:///nowhere.db")],
    );
    assert!(
        err.fails(2)
            .contains("unrecognized subcommand 'frobnicate'"),
        "{err:?}"
    );
    let err = run_with(&["history"], &[("TICKGUARD_STORE", "sqlite:///nowhere.db")]);
    assert!(err.fails(2).contains("<JOB>"), "{err:?}");
    let err = run_with(
        &["failed", "--limit", "0"],
        &[("TICKGUARD_STORE", "sqlite:///nowhere.db")],
    );
    err.fails(2);
}

#[test]
fn an_unreachable_server_fails_without_its_password() {
    let url = "postgres://u:hunter2@127.0.0.1:1/db";
    let run = run_with(&["--store", url, "jobs"], &[]);
    let err = run.fails(1);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // Nor in the help, with the URL in the environment.
    let help = run_with(&["--help"], &[("TICKGUARD_STORE", url)]);
    assert!(!help.ok().contains("hunter2"), "{help:?}");
    assert!(help.stdout.contains("TICKGUARD_STORE"), "{help:?}");
    // Nor when the URL does not parse, nor when the password has an unescaped `/` or is a
    // query parameter.
    for url in [
        "postgres://u:hunter2@[::1/db",
        "postgres://u:hun/ter2@127.0.0.1:notaport/db",
        "postgres://u@127.0.0.1:notaport/db?password=hunter2",
        "postgres://u@127.0.0.1:1/db?sslmode=disable&password=hunter2",
    ] {
        let run = run_with(&["--store", url, "jobs"], &[]);
        let err = run.fails(1);
        assert!(
            !err.contains("hunter2") && !err.contains("ter2"),
            "{url}: {run:?}"
        );
    }
}

#[test]
fn other_schemes_are_refused() {
    let run = run_with(&["--store", "mysql://u:hunter2@host/db", "jobs"], &[]);
    let err = run.fails(1);
    assert!(
        err.starts_with("error: the store URL's scheme `mysql` is not one tickguard can open"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let run = run_with(&["--store", "nightly.db", "jobs"], &[]);
    run.fails_with(1, "error: the store is not a URL");
}

#[tokio::test]
async fn a_schema_without_tables_is_not_created() {
    let schema = common::unique_name("tg_cli_empty");
    let url = common::postgres_url();
    let run = run_with(&["--schema", &schema, "jobs"], &[("TICKGUARD_STORE", &url)]);
    let err = run.fails(1);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(&schema), "{err}");
    // Still no tables: the command created nothing.
    let again = run_with(&["--schema", &schema, "jobs"], &[("TICKGUARD_STORE", &url)]);
    assert_eq!(again.fails(1), err);
}

#[test]
fn a_missing_sqlite_file_is_not_created() {
    let path = std::env::temp_dir().join(format!("{}.db", common::unique_name("tg_cli_none")));
    let url = format!("sqlite://{}", path.display());
    let run = run_with(&["--store", &url, "jobs"], &[]);
    let err = run.fails(1);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!path.exists(), "the command created {}", path.display());
}

#[tokio::test]
async fn tables_at_another_version_are_refused() {
    let store = Store::new(Backend::Postgres).await;
    let pool = tickguard::sqlx::PgPool::connect(&store.url)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", store.url));
    let insert = format!(
        "INSERT INTO \"{}\".tickguard_migrations (version, description) VALUES (999, 'a later build')",
        store.schema
    );
    tickguard::sqlx::query(tickguard::sqlx::AssertSqlSafe(insert))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("record a later migration: {e}"));
    pool.close().await;
    let run = store.run(&["jobs"]);
    let err = run.fails(1);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("version 999"), "{err}");
    assert!(err.contains(&store.schema), "{err}");
}

#[tokio::test]
async fn a_reader_that_goes_away_ends_the_command_quietly() {
    let s = seed(Backend::Sqlite).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tickguard"))
        .args(["--store", &s.store.url, "history", "report"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tickguard");
    // Close the reading end before the command writes (`tickguard history report | head -0`).
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for tickguard");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
