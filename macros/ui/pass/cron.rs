//! Every cron form the attribute accepts, with and without a zone.

use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(cron = "0 */5 * * * *")]
async fn six_fields(ctx: JobContext) -> JobResult {
    let _ = ctx.scheduled_at();
    Ok(())
}

#[scheduled(cron = "*/15 9-17 * * 1-5")]
async fn five_fields(_ctx: JobContext) -> JobResult {
    Ok(())
}

#[scheduled(cron = "@daily", zone = "Europe/Berlin")]
async fn daily() -> JobResult {
    Ok(())
}

#[scheduled(cron = "0 0 23 L * *", zone = "America/New_York")]
async fn last_day_of_month() -> JobResult {
    Ok(())
}

#[scheduled(cron = "0 0 18 LW * *")]
async fn last_weekday_of_month() -> JobResult {
    Ok(())
}

#[scheduled(cron = "0 0 12 ? * 5L")]
async fn last_friday() -> JobResult {
    Ok(())
}

#[scheduled(cron = "0 30 8 ? * 1#2", zone = "UTC")]
async fn second_monday() -> JobResult {
    Ok(())
}

#[scheduled(cron = "0 0 6 L-3 * *")]
async fn three_days_before_last() -> JobResult {
    Ok(())
}

/// The line of the attribute below, which the job's location names.
const WEEKDAYS_LINE: u32 = line!() + 1;
#[scheduled(cron = "0 0 9 ? * MON-FRI", zone = "Asia/Tokyo")]
async fn weekdays() -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder().build().await.unwrap();
    let mut names: Vec<&str> = scheduler.jobs().map(|j| j.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "daily",
            "five_fields",
            "last_day_of_month",
            "last_friday",
            "last_weekday_of_month",
            "second_monday",
            "six_fields",
            "three_days_before_last",
            "weekdays",
        ]
    );
    let weekdays = scheduler.jobs().find(|j| j.name() == "weekdays").unwrap();
    assert_eq!(
        weekdays.schedule().zone(),
        tickguard::parse_zone("Asia/Tokyo").unwrap()
    );
    assert!(
        weekdays
            .location()
            .ends_with(&format!("cron.rs:{WEEKDAYS_LINE}")),
        "{}",
        weekdays.location()
    );
}
