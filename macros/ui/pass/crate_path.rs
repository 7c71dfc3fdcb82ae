//! `crate = "..."`: the runtime reached through an absolute path or a re-export.

mod rt {
    pub use ::tickguard;
}

mod nested {
    use tickguard::JobResult;

    #[tickguard::scheduled(every = "5s", crate = "crate::rt::tickguard")]
    pub(crate) async fn through_crate_path() -> JobResult {
        Ok(())
    }
}

#[tickguard::scheduled(every = "5s", crate = "::tickguard")]
async fn absolute() -> tickguard::JobResult {
    Ok(())
}

#[rt::tickguard::scheduled(every = "5s", crate = "rt::tickguard", lock, retry, on_failure = hook)]
async fn through_reexport(_ctx: rt::tickguard::JobContext) -> rt::tickguard::JobResult {
    Ok(())
}

async fn hook(_report: rt::tickguard::FailureReport) {}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(absolute))
        .job(tickguard::job!(through_reexport))
        .job(tickguard::job!(nested::through_crate_path))
        .build()
        .await
        .unwrap();
    assert_eq!(scheduler.jobs().count(), 3);
}
