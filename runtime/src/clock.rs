//! Wall-clock time, read through one seam so tests can make it jump.

use std::sync::Arc;
#[cfg(feature = "testing")]
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Where the scheduler reads the wall clock.
#[derive(Clone, Default)]
pub(crate) struct Clock {
    #[cfg(feature = "testing")]
    manual: Option<Arc<Manual>>,
    #[cfg(not(feature = "testing"))]
    _private: Option<Arc<()>>,
}

impl Clock {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        #[cfg(feature = "testing")]
        if let Some(manual) = &self.manual {
            return manual.now();
        }
        Utc::now()
    }
}

#[cfg(feature = "testing")]
struct Manual {
    wall: DateTime<Utc>,
    base: tokio::time::Instant,
    offset_ms: AtomicI64,
}

#[cfg(feature = "testing")]
impl Manual {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.base.elapsed()).unwrap_or_default();
        self.wall + elapsed + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// A wall clock for tests: it advances with tokio's clock (so `tokio::time::pause` and
/// `advance` drive it), starts where you say, and can jump like an NTP correction would.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use chrono::{TimeZone, Utc};
/// use tickguard::testing::TestClock;
///
/// let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
/// tokio::time::advance(std::time::Duration::from_secs(10)).await;
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 10).unwrap());
/// clock.jump(chrono::Duration::hours(-1));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 10).unwrap());
/// # }
/// ```
#[cfg(feature = "testing")]
#[derive(Clone)]
pub struct TestClock(Arc<Manual>);

#[cfg(feature = "testing")]
impl TestClock {
    /// A clock that reads `start` now. Call it inside a tokio runtime.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Manual {
            wall: start,
            base: tokio::time::Instant::now(),
            offset_ms: AtomicI64::new(0),
        }))
    }

    /// The current wall time.
    pub fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    /// Moves the wall clock by `by` (negative to go back), without moving tokio's clock.
    pub fn jump(&self, by: chrono::Duration) {
        self.0
            .offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    pub(crate) fn into_clock(self) -> Clock {
        Clock {
            manual: Some(self.0),
        }
    }
}
