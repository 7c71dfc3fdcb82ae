//! A `#[scheduled]` fn declared by a `macro_rules!` whose argument types, retry predicate
//! and failure hook are passed as token trees: the generated code names them with the
//! spans they were written with, and still finds its own variables.

use tickguard::{FailureReport, JobContext, JobError, JobResult, State, scheduled};

struct Config {
    region: &'static str,
}

fn transient(error: &JobError) -> bool {
    !error.is_permanent()
}

async fn alert(report: FailureReport) {
    let _ = report.job;
}

macro_rules! declare_job {
    (
        $name:ident,
        context: [$($ctx:tt)*],
        state: [$($state:tt)*],
        when: [$($when:tt)*],
        on_failure: [$($hook:tt)*]
    ) => {
        #[scheduled(every = "1m", retry(attempts = 3, when = $($when)*), on_failure = $($hook)*)]
        async fn $name(ctx: $($ctx)*, config: $($state)*) -> JobResult {
            let _ = (ctx.job(), config.region);
            Ok(())
        }
    };
}

declare_job!(
    owned,
    context: [JobContext],
    state: [State<Config>],
    when: [transient],
    on_failure: [alert]
);
declare_job!(
    borrowed,
    context: [&JobContext],
    state: [State<Config>],
    when: [transient],
    on_failure: [alert]
);

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(owned))
        .job(tickguard::job!(borrowed))
        .state(Config { region: "eu" })
        .build()
        .await
        .unwrap();
    assert_eq!(scheduler.jobs().count(), 2);
}
