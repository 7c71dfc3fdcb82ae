//! What the chaos harness concludes from the effects table: the ticks due, which have their
//! effect, which fault windows each fell in, and the figures per fault kind.

use std::collections::BTreeMap;

use super::{Effect, Fault, TTL_MS};

/// One applied fault: its kind and when it began and ended (milliseconds since the epoch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) fault: Fault,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl Window {
    /// Whether a tick due at `tick` may have been touched by the fault: from 1 s before it
    /// began (a run then in progress) to ttl + 1 s after it ended (a dead holder's lease).
    pub(crate) fn touches(&self, tick: i64) -> bool {
        (self.start - 1_000..=self.end + TTL_MS + 1_000).contains(&tick)
    }
}

/// The checked ticks, `first..=last`, one per second.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticks {
    pub(crate) first: i64,
    pub(crate) last: i64,
}

impl Ticks {
    fn each(self) -> impl Iterator<Item = i64> {
        (self.first..=self.last).step_by(1_000)
    }

    /// The (job, tick) pairs due in `self` without an effect.
    pub(crate) fn missing(self, effects: &[Effect]) -> Vec<(&'static str, i64)> {
        let present: std::collections::BTreeSet<(&str, i64)> =
            effects.iter().map(|e| (e.1.as_str(), e.2)).collect();
        self.each()
            .flat_map(|tick| JOBS.map(|job| (job, tick)))
            .filter(|key| !present.contains(key))
            .collect()
    }

    /// The missing ticks, each with the fault windows it fell in, times in seconds after
    /// the first tick.
    pub(crate) fn describe_missing(self, missing: &[(&str, i64)], windows: &[Window]) -> String {
        let secs = |t: i64| (t - self.first) as f64 / 1_000.0;
        let mut lines = Vec::new();
        for (job, tick) in missing {
            let inside: Vec<String> = windows
                .iter()
                .filter(|w| w.touches(*tick))
                .map(|w| format!("{:?} {:+.1}..{:+.1} s", w.fault, secs(w.start), secs(w.end)))
                .collect();
            let place = if inside.is_empty() {
                "outside every fault window".to_owned()
            } else {
                format!("in {}", inside.join(", "))
            };
            lines.push(format!(
                "  `{job}` tick {tick} ({:+.0} s): {place}",
                secs(*tick)
            ));
        }
        lines.join("\n")
    }

    /// Per fault kind: faults applied, (job, tick) pairs due inside its windows, those run,
    /// those lost; then the pairs outside every window, and all of them.
    pub(crate) fn figures(self, effects: &[Effect], windows: &[Window], kinds: &[Fault]) -> String {
        let missing = self.missing(effects);
        let lost = |job: &str, tick: i64| missing.contains(&(job, tick));
        let mut rows: BTreeMap<String, [u64; 4]> = BTreeMap::new();
        for kind in kinds {
            rows.insert(format!("{kind:?}"), [0; 4]);
        }
        for w in windows {
            rows.entry(format!("{:?}", w.fault)).or_default()[0] += 1;
        }
        let mut outside = [0_u64; 4];
        let mut total = [0_u64; 4];
        for tick in self.each() {
            let kinds_here: std::collections::BTreeSet<String> = windows
                .iter()
                .filter(|w| w.touches(tick))
                .map(|w| format!("{:?}", w.fault))
                .collect();
            for job in JOBS {
                let (run, gone) = if lost(job, tick) { (0, 1) } else { (1, 0) };
                let mut rows_here: Vec<&mut [u64; 4]> = vec![&mut total];
                if kinds_here.is_empty() {
                    rows_here.push(&mut outside);
                }
                for row in &mut rows_here {
                    row[1] += 1;
                    row[2] += run;
                    row[3] += gone;
                }
                for kind in &kinds_here {
                    let row = rows.entry(kind.clone()).or_default();
                    row[1] += 1;
                    row[2] += run;
                    row[3] += gone;
                }
            }
        }
        total[0] = windows.len() as u64;
        let line = |name: &str, r: [u64; 4]| {
            format!("{name:<22}{:>8}{:>10}{:>10}{:>10}", r[0], r[1], r[2], r[3])
        };
        let mut table = vec![format!(
            "{:<22}{:>8}{:>10}{:>10}{:>10}",
            "fault", "applied", "due", "run", "lost"
        )];
        table.extend(rows.iter().map(|(name, r)| line(name, *r)));
        table.push(line("(outside every window)", outside));
        table.push(line("(all ticks)", total));
        table.join("\n")
    }
}

/// The workers' jobs, both `misfire = run_all`.
pub(crate) const JOBS: [&str; 2] = ["tx", "once"];
