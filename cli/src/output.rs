//! Output for people: aligned tables, times in a job's zone with a relative time.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// Rows of cells printed as columns, each as wide as its widest cell, with indented notes
/// (error chains, pause notes) under a row.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push((cells, Vec::new()));
    }

    /// Adds a note under the last row: each line of `text` indented, after `label`.
    pub(crate) fn note(&mut self, label: &str, text: &str) {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.extend(indented(label, text));
        }
    }

    /// The table as text, one line per row and note, each line ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (i, cell) in cells.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(width),
                    None => widths.push(width),
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    out.push_str(&format!("{cell:<pad$}  "));
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        for (cells, notes) in &self.rows {
            out.push_str(&line(cells));
            for note in notes {
                out.push_str(note);
                out.push('\n');
            }
        }
        out
    }
}

/// `text` under a label, each line indented by four spaces: `    error: first line`.
pub(crate) fn indented(label: &str, text: &str) -> Vec<String> {
    let pad = " ".repeat(label.len() + 2);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("    {label}: {l}")
            } else {
                format!("    {pad}{l}")
            }
        })
        .collect()
}

/// `t` on the wall clock of `zone`, with its zone's abbreviation: `2026-12-05 03:00 CET`
/// (seconds only when they are not zero).
pub(crate) fn local(t: DateTime<Utc>, zone: Tz) -> String {
    let t = t.with_timezone(&zone);
    if t.second() == 0 && t.nanosecond() == 0 {
        t.format("%Y-%m-%d %H:%M %Z").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }
}

/// `t` in `zone` followed by how long ago or how soon: `2026-12-05 03:00 CET (2 min ago)`.
pub(crate) fn when(t: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    format!("{} ({})", local(t, zone), relative(t, now))
}

/// `when` of an optional instant, `-` for none.
pub(crate) fn when_opt(t: Option<DateTime<Utc>>, zone: Tz, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| when(t, zone, now))
}

/// How far `t` is from `now`: `in 3 h`, `2 min ago`, `5 d ago`, `now`.
pub(crate) fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let span = span(secs.unsigned_abs());
    match secs {
        0 => "now".to_owned(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// A span in its largest whole unit: `40 s`, `2 min`, `3 h` (up to two days), `5 d`.
pub(crate) fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

/// How long a run took, for tables: `1.2 s`, `3 min`.
pub(crate) fn took(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> String {
    match end.and_then(|e| (e - start).to_std().ok()) {
        Some(d) if d < Duration::from_secs(60) => format!("{:.1} s", d.as_secs_f64()),
        Some(d) => span(d.as_secs()),
        None => "-".to_owned(),
    }
}

/// Prints `text` to standard output as it is. A reader that went away (`tickguard history
/// job | head`) ends the command quietly, as it does any Unix tool, rather than in a panic.
pub(crate) fn print(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: could not write the output: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_local_with_a_relative_time() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap();
        assert_eq!(when(at, berlin, now), "2026-12-05 03:00 CET (in 2 h)");
        let july = Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 30).unwrap();
        assert_eq!(local(july, berlin), "2026-07-01 12:00:30 CEST");
        assert_eq!(
            relative(now - chrono::Duration::seconds(150), now),
            "2 min ago"
        );
        assert_eq!(relative(now - chrono::Duration::days(5), now), "5 d ago");
        assert_eq!(relative(now, now), "now");
        assert_eq!(
            relative(now + chrono::Duration::seconds(59), now),
            "in 59 s"
        );
        assert_eq!(relative(now + chrono::Duration::hours(47), now), "in 47 h");
    }

    #[test]
    fn tables_align_and_indent_notes() {
        let mut table = Table::new(&["JOB", "STATUS", "ID"]);
        table.row(vec!["a".into(), "COMPLETED".into(), "a@1".into()]);
        table.row(vec!["longer".into(), "FAILED".into(), "longer@1".into()]);
        table.note("error", "boom\nsecond line");
        assert_eq!(
            table.render(),
            "JOB     STATUS     ID\n\
             a       COMPLETED  a@1\n\
             longer  FAILED     longer@1\n    error: boom\n           second line\n"
        );
    }
}
