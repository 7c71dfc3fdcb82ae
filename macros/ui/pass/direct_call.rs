//! The attributed fn stays an ordinary fn: it can be called and awaited as written.

use std::future::Future;

use tickguard::{JobContext, JobError, JobResult, scheduled};

#[scheduled(every = "1s")]
async fn add_one() -> JobResult {
    Err(JobError::permanent("called directly"))
}

#[scheduled(every = "1s", retry(attempts = 2))]
pub async fn with_context(ctx: JobContext) -> JobResult {
    let _ = ctx.instance_id();
    Ok(())
}

fn takes_job<F, Fut>(_job: F)
where
    F: Fn(JobContext) -> Fut,
    Fut: Future<Output = JobResult> + Send + 'static,
{
}

#[tokio::main]
async fn main() {
    let error = add_one().await.unwrap_err();
    assert!(error.is_permanent());
    assert_eq!(error.to_string(), "called directly");
    takes_job(with_context);
    let pointer: fn() -> _ = add_one;
    assert!(pointer().await.is_err());
}
