//! Jobs in a module, `pub` and not, registered one by one with `job!` and discovery off.

mod jobs {
    use tickguard::{JobContext, JobResult, scheduled};

    #[scheduled(every = "1s")]
    pub async fn public_job(_ctx: JobContext) -> JobResult {
        Ok(())
    }

    #[scheduled(cron = "0 * * * * *")]
    pub(crate) async fn crate_job() -> JobResult {
        Ok(())
    }

    pub mod deeper {
        #[tickguard::scheduled(after = "100ms", name = "deep")]
        pub async fn deeper_job() -> tickguard::JobResult {
            Ok(())
        }
    }
}

#[tickguard::scheduled(every = "1s")]
async fn not_registered() -> tickguard::JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(jobs::public_job))
        .job(tickguard::job!(crate::jobs::crate_job))
        .job(tickguard::job!(jobs::deeper::deeper_job,))
        .build()
        .await
        .unwrap();
    let mut names: Vec<&str> = scheduler.jobs().map(|j| j.name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["crate_job", "deep", "public_job"]);

    let all = tickguard::Scheduler::builder().build().await.unwrap();
    assert_eq!(all.jobs().count(), 4);
    let _ = not_registered;
}
