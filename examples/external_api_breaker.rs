//! A job that calls an external API behind a circuit breaker, with a fallback to the last
//! good data: when the API keeps failing, the breaker opens and the job stops calling it for
//! a while, on every replica; a probe run checks it again later, and closes the breaker once
//! the API has recovered.
//!
//! ```text
//! cargo run -p tickguard-examples --example external_api_breaker -- 40
//! ```
//!
//! Each replica keeps the prices it serves in a cache of its own, and refreshes it from a
//! price API one second after its last refresh (`after = "1s"`: a fixed delay, on each
//! replica's own clock; with `every`, the replicas' ticks would be the same, and one replica
//! would run each tick for the cluster). When a call fails, the replica goes on serving the cached prices
//! (and logs how old they are), and the run fails, so that the breaker counts it.
//!
//! The breaker (`circuit_breaker(..)` in the attribute) is computed from the executions in the
//! store, so it is cluster-wide: the failures of every replica count together. Over the last
//! `window = 4` runs that ended, once at least `min_runs = 4` ended and half of them failed
//! (`failure_rate = 0.5`), it opens for `open_for = "5s"`: the job's ticks are skipped on every
//! replica (logged at WARN, counted in `tickguard_skips_total{reason="circuit_open"}`), and the
//! API gets no calls. Then the breaker is half-open: the next tick runs as the probe; if the
//! probe fails, the breaker opens again for 5 s; if it succeeds, the breaker closes and the
//! ticks run again. `tickguard_circuit_state{breaker="price_api"}` is 0 closed, 1 half-open,
//! 2 open, and `tickguard show refresh_prices` shows the breaker from the store.
//!
//! The price API is a fake in the process. With no file in the working directory, it is down
//! for seconds 10 to 19 of every half minute, so that a 40 s run shows the breaker open, a
//! probe, and the breaker close. A file `price-api.state` that reads `up` or `down` overrides
//! that, for every replica started in the same directory:
//!
//! ```text
//! echo down > price-api.state; sleep 10; echo up > price-api.state
//! ```
//!
//! Two replicas share the breaker when they share a store:
//!
//! ```text
//! cargo run -p tickguard-examples --example external_api_breaker -- \
//!     --postgres postgres://postgres@127.0.0.1/test --metrics 127.0.0.1:9464   # and again,
//!     # in a second terminal in the same directory, with --metrics 127.0.0.1:9465
//! ```
//!
//! When copying it: replace `PriceApi` with your client and `PriceCache` with your own
//! last-good store (a table, a file, a shared cache). The settings here are short to show the
//! cycle in seconds; in production, a window of 10 to 20 runs, `min_runs` of 5 or more and
//! `open_for` of minutes (the bare `circuit_breaker` is `failure_rate = 0.5, window = 10,
//! min_runs = 5, open_for = "5m"`). `name = "..."` shares one breaker between the jobs that
//! call the same API.

use std::{collections::BTreeMap, fmt, sync::Mutex, time::Duration};

use chrono::{DateTime, Timelike, Utc};
use tickguard::{JobContext, JobError, JobResult, State, scheduled};
use tickguard_examples::{Options, init_logging};

/// Prices by product.
type Prices = BTreeMap<&'static str, u64>;

/// The price API's failure.
#[derive(Debug)]
struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "price API answered 503: service unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// The fake price API (see above).
struct PriceApi;

impl PriceApi {
    async fn prices(&self) -> Result<Prices, Unavailable> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let up = match tokio::fs::read_to_string("price-api.state").await {
            Ok(state) => state.trim() != "down",
            Err(_) => !(10..20).contains(&(Utc::now().second() % 30)),
        };
        if !up {
            return Err(Unavailable);
        }
        let minute = u64::from(Utc::now().minute());
        Ok(Prices::from([
            ("apple", 120 + minute),
            ("pear", 95 + minute),
        ]))
    }
}

/// This replica's last good prices, and when it got them.
#[derive(Default)]
struct PriceCache(Mutex<Option<(DateTime<Utc>, Prices)>>);

/// Refreshes the cache from the price API; on a failure, serves the cached prices and fails
/// the run, which the breaker counts.
#[scheduled(
    after = "1s",
    circuit_breaker(
        name = "price_api",
        failure_rate = 0.5,
        window = 4,
        min_runs = 4,
        open_for = "5s"
    ),
    timeout = "900ms"
)]
async fn refresh_prices(
    ctx: &JobContext,
    State(api): State<PriceApi>,
    State(cache): State<PriceCache>,
) -> JobResult {
    match api.prices().await {
        Ok(prices) => {
            tracing::info!(?prices, "prices refreshed");
            *cache.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Utc::now(), prices));
            Ok(())
        }
        Err(error) => {
            let cached = cache.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match cached {
                Some((at, prices)) => tracing::warn!(
                    ?prices,
                    age_s = (ctx.scheduled_at() - at).num_seconds(),
                    "price API failed; serving the cached prices"
                ),
                None => tracing::warn!("price API failed and nothing is cached yet"),
            }
            Err(JobError::transient(error))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), tickguard::Error> {
    init_logging();
    let options = Options::from_args();
    let scheduler = options
        .builder("tickguard-external_api_breaker.db")
        .state(PriceApi)
        .state(PriceCache::default())
        .build()
        .await?;
    options.run(scheduler).await
}
