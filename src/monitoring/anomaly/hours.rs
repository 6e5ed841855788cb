//! The firm's working hours, for the off-hours rule: days of the week and a span of the day at
//! a fixed offset from UTC, written `Mon-Fri 08:00-19:00 +01:00` (the offset may be left out,
//! for UTC). A span that ends before it starts runs over midnight (`22:00-06:00`). A fixed
//! offset does not follow daylight saving: a firm that changes its clocks changes this setting
//! with them.

use chrono::{Datelike, FixedOffset, TimeZone, Timelike};
use thiserror::Error;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a working-hours setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "working_hours must read like `Mon-Fri 08:00-19:00 +01:00` (days, a span of the day, and \
     an optional UTC offset): {0}"
)]
pub struct WorkingHoursError(&'static str);

/// When the firm works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u32,
    end: u32,
    offset: FixedOffset,
}

impl WorkingHours {
    pub fn parse(text: &str) -> Result<Self, WorkingHoursError> {
        let mut parts = text.split_whitespace();
        let days = parse_days(parts.next().ok_or(WorkingHoursError("no days"))?)?;
        let span = parts
            .next()
            .ok_or(WorkingHoursError("no span of the day"))?;
        let (start, end) = span
            .split_once('-')
            .ok_or(WorkingHoursError("the span is not HH:MM-HH:MM"))?;
        let (start, end) = (parse_minutes(start)?, parse_minutes(end)?);
        if start == end {
            return Err(WorkingHoursError("the span is empty"));
        }
        let offset = match parts.next() {
            None => FixedOffset::east_opt(0),
            Some(offset) => parse_offset(offset)?,
        }
        .ok_or(WorkingHoursError("the offset is out of range"))?;
        if parts.next().is_some() {
            return Err(WorkingHoursError("unexpected text after the offset"));
        }
        Ok(WorkingHours {
            days,
            start,
            end,
            offset,
        })
    }

    /// Whether `at_ms` (Unix milliseconds) falls within working hours.
    pub fn contains(&self, at_ms: i64) -> bool {
        let Some(local) = self.offset.timestamp_millis_opt(at_ms).single() else {
            return false;
        };
        let minute = local.hour() * 60 + local.minute();
        let weekday = local.weekday().num_days_from_monday() as usize;
        if self.start < self.end {
            self.days[weekday] && (self.start..self.end).contains(&minute)
        } else if minute >= self.start {
            self.days[weekday]
        } else {
            // After midnight, the shift belongs to the day it started on.
            minute < self.end && self.days[(weekday + 6) % 7]
        }
    }
}

fn day(text: &str) -> Result<usize, WorkingHoursError> {
    let lower = text.to_ascii_lowercase();
    DAYS.iter()
        .position(|day| *day == lower)
        .ok_or(WorkingHoursError(
            "a day is not Mon, Tue, Wed, Thu, Fri, Sat or Sun",
        ))
}

fn parse_days(text: &str) -> Result<[bool; 7], WorkingHoursError> {
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let mut at = first;
                loop {
                    days[at] = true;
                    if at == last {
                        break;
                    }
                    at = (at + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_minutes(text: &str) -> Result<u32, WorkingHoursError> {
    let invalid = WorkingHoursError("a time is not HH:MM");
    let (hours, minutes) = text.split_once(':').ok_or(invalid.clone())?;
    let hours: u32 = hours.parse().map_err(|_| invalid.clone())?;
    let minutes: u32 = minutes.parse().map_err(|_| invalid.clone())?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(invalid);
    }
    Ok(hours * 60 + minutes)
}

fn parse_offset(text: &str) -> Result<Option<FixedOffset>, WorkingHoursError> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(FixedOffset::east_opt(0));
    }
    let invalid = WorkingHoursError("the offset is not +HH:MM or -HH:MM");
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid),
    };
    let minutes = i32::try_from(parse_minutes(rest).map_err(|_| invalid)?).unwrap_or(i32::MAX);
    Ok(FixedOffset::east_opt(sign * minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn office_hours_at_an_offset() {
        let hours = WorkingHours::parse("Mon-Fri 08:00-19:00 +01:00").unwrap();
        // Thursday 2026-12-03.
        assert!(hours.contains(at("2026-12-03T07:00:00Z")), "08:00 local");
        assert!(!hours.contains(at("2026-12-03T06:59:59Z")), "07:59 local");
        assert!(
            !hours.contains(at("2026-12-03T18:00:00Z")),
            "19:00 local is after"
        );
        assert!(!hours.contains(at("2026-12-05T10:00:00Z")), "Saturday");
    }

    #[test]
    fn a_night_shift_runs_over_midnight_from_its_own_day() {
        let hours = WorkingHours::parse("Fri 22:00-06:00").unwrap();
        assert!(hours.contains(at("2026-12-04T23:00:00Z")), "Friday night");
        assert!(
            hours.contains(at("2026-12-05T05:59:00Z")),
            "Saturday morning of Friday's shift"
        );
        assert!(
            !hours.contains(at("2026-12-05T23:00:00Z")),
            "Saturday night"
        );
        assert!(
            !hours.contains(at("2026-12-04T05:00:00Z")),
            "Friday morning is Thursday's"
        );
    }

    #[test]
    fn day_lists_and_wrapping_ranges() {
        let hours = WorkingHours::parse("Sat-Mon,wed 09:00-10:00 UTC").unwrap();
        assert!(hours.contains(at("2026-12-06T09:30:00Z")), "Sunday");
        assert!(hours.contains(at("2026-12-02T09:30:00Z")), "Wednesday");
        assert!(!hours.contains(at("2026-12-01T09:30:00Z")), "Tuesday");
    }

    #[test]
    fn bad_settings_are_refused() {
        for text in [
            "",
            "Mon-Fri",
            "Mon-Fri 8-19",
            "Mon-Fri 08:00-25:00",
            "Mon-Fri 08:00-08:00",
            "Mon-Fry 08:00-19:00",
            "Mon-Fri 08:00-19:00 01:00",
            "Mon-Fri 08:00-19:00 +30:00",
            "Mon-Fri 08:00-19:00 +01:00 extra",
        ] {
            assert!(WorkingHours::parse(text).is_err(), "{text:?}");
        }
    }
}
