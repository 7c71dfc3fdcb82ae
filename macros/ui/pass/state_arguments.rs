//! Any number of `State<T>` arguments, beside `JobContext` or `&JobContext`, destructured
//! or not; the builder checks that each one's value was given.

use std::sync::Arc;

use tickguard::{Error, JobContext, JobResult, State, scheduled};

struct Db {
    url: String,
}

struct Config {
    region: &'static str,
}

#[scheduled(every = "1m")]
async fn nightly_report(
    ctx: &JobContext,
    State(db): State<Db>,
    State(config): State<Config>,
) -> JobResult {
    let _: (&Arc<Db>, &Arc<Config>) = (&db, &config);
    let _ = (ctx.job(), db.url.len(), config.region);
    Ok(())
}

#[scheduled(every = "1m")]
async fn only_state(config: State<Config>) -> JobResult {
    let _ = config.region;
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(nightly_report))
        .job(tickguard::job!(only_state))
        .state(Db { url: "postgres://localhost/app".into() })
        .state(Config { region: "eu" })
        .build()
        .await
        .unwrap();
    assert_eq!(scheduler.jobs().count(), 2);

    let missing = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(nightly_report))
        .state(Config { region: "eu" })
        .build()
        .await;
    match missing {
        Err(Error::Config(message)) => assert!(message.contains("`nightly_report`"), "{message}"),
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error"),
    }
}
