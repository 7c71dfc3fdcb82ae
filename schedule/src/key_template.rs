//! Templates of execution ids.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::error::ScheduleError;

/// A template for execution ids, such as `daily-orders-{date}`: two runs whose ids are equal
/// are the same execution, so at most one of them completes.
///
/// Placeholders, rendered on the tick's wall clock in the job's zone: `{job}` (the job's
/// name), `{date}` (`2026-11-29`), `{hour}` (`2026-11-29T02+01:00`), `{datetime}`
/// (`2026-11-29T02:00:00+01:00`), and `{tick}` (the tick in UTC, RFC 3339). `{hour}` and
/// `{datetime}` carry the UTC offset, so the two passes of a fall-back overlap hour are two
/// executions; `{date}` is one execution per local day, whatever the offset. Braces are
/// written `{{` and `}}`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tickguard_schedule::KeyTemplate;
///
/// let key = KeyTemplate::parse("orders-{date}")?;
/// let tick = Utc.with_ymd_and_hms(2026, 11, 29, 23, 30, 0).unwrap();
/// assert_eq!(key.render("orders", tick, chrono_tz::Tz::UTC), "orders-2026-11-29");
/// assert_eq!(key.render("orders", tick, chrono_tz::Tz::Asia__Tokyo), "orders-2026-11-30");
/// # Ok::<(), tickguard_schedule::ScheduleError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<KeyPart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyPart {
    Text(String),
    Job,
    Date,
    Hour,
    DateTime,
    Tick,
}

impl KeyTemplate {
    /// The default id of an execution: `{job}@{tick}`.
    pub fn default_key() -> Self {
        Self {
            parts: vec![KeyPart::Job, KeyPart::Text("@".to_owned()), KeyPart::Tick],
        }
    }

    /// Parses a template; unknown placeholders and unbalanced braces are errors.
    pub fn parse(template: &str) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidKey {
            template: template.to_owned(),
            reason,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(invalid(format!(
                            "unterminated placeholder `{{{name}`; close it with `}}`"
                        )));
                    }
                    let part = match name.as_str() {
                        "job" => KeyPart::Job,
                        "date" => KeyPart::Date,
                        "hour" => KeyPart::Hour,
                        "datetime" => KeyPart::DateTime,
                        "tick" => KeyPart::Tick,
                        other => {
                            return Err(invalid(format!(
                                "unknown placeholder `{{{other}}}`; use {{job}}, {{date}}, {{hour}}, {{datetime}} or {{tick}}"
                            )));
                        }
                    };
                    if !text.is_empty() {
                        parts.push(KeyPart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '}' => {
                    return Err(invalid(
                        "unmatched `}`; write `}}` for a literal brace".to_owned(),
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(KeyPart::Text(text));
        }
        if !parts
            .iter()
            .any(|p| !matches!(p, KeyPart::Text(_) | KeyPart::Job))
        {
            return Err(invalid(
                "the key names no time, so every tick would share one execution; include {date}, {hour}, {datetime} or {tick}".to_owned(),
            ));
        }
        Ok(Self { parts })
    }

    /// The execution id of `job`'s run for `tick`, with dates on the wall clock of `zone`.
    pub fn render(&self, job: &str, tick: DateTime<Utc>, zone: Tz) -> String {
        let local = tick.with_timezone(&zone);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                KeyPart::Text(t) => out.push_str(t),
                KeyPart::Job => out.push_str(job),
                KeyPart::Date => out.push_str(&local.format("%Y-%m-%d").to_string()),
                KeyPart::Hour => out.push_str(&local.format("%Y-%m-%dT%H%:z").to_string()),
                KeyPart::DateTime => {
                    out.push_str(&local.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
                }
                KeyPart::Tick => {
                    out.push_str(&tick.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse::parse_zone, test_support::utc};

    #[test]
    fn key_templates() {
        assert!(KeyTemplate::parse("orders-{date").is_err());
        assert!(KeyTemplate::parse("orders-{week}").is_err());
        assert!(KeyTemplate::parse("orders-}").is_err());
        assert!(KeyTemplate::parse("orders").is_err(), "a key with no time");
        // Fall-back in Berlin: 02:00 local happens twice, an hour apart.
        let key = KeyTemplate::parse("{job}-{datetime}").unwrap();
        let berlin = parse_zone("Europe/Berlin").unwrap();
        let first = key.render("j", utc(2025, 10, 26, 0, 0, 0), berlin);
        let second = key.render("j", utc(2025, 10, 26, 1, 0, 0), berlin);
        assert_eq!(first, "j-2025-10-26T02:00:00+02:00");
        assert_eq!(second, "j-2025-10-26T02:00:00+01:00");
        let daily = KeyTemplate::parse("{{{job}}}-{date}").unwrap();
        assert_eq!(
            daily.render("j", utc(2025, 10, 26, 1, 0, 0), berlin),
            "{j}-2025-10-26"
        );
    }
}
