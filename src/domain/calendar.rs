//! Beijing calendar dates, billing periods and inclusive date ranges.
//!
//! Every date in billing (periods, due dates, late-fee days, business dates) is a Beijing date
//! (UTC+8). The domain never reads a clock: callers pass "now" in, and [`beijing_today`] turns it
//! into the business date with plain arithmetic. Periods and dates are parsed strictly from the
//! forms the API uses ("2024-03", "2024-03-15") so a typo is refused, not reinterpreted.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use thiserror::Error;

/// Hours Beijing time is ahead of UTC (China has no daylight saving time).
pub const BEIJING_UTC_OFFSET_HOURS: i64 = 8;
/// Years a billing period may name.
pub const PERIOD_YEAR_MIN: i32 = 2000;
pub const PERIOD_YEAR_MAX: i32 = 2099;

/// Why a period, date or range was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error("period {input:?} is not of the form YYYY-MM (e.g. \"2024-03\")")]
    MalformedPeriod { input: String },
    #[error("period {input:?} is out of range: the year must be 2000..=2099 and the month 01..=12")]
    PeriodOutOfRange { input: String },
    #[error(
        "date {input:?} is not a real calendar date of the form YYYY-MM-DD (e.g. \"2024-03-15\")"
    )]
    MalformedDate { input: String },
    #[error("date range ends on {end}, before it starts on {start}")]
    EndBeforeStart { start: NaiveDate, end: NaiveDate },
}

/// A billing month, e.g. 2024-03. Ordered chronologically. The fields are public for reading
/// (bill numbers are built from them); construct with [`Period::parse`] or [`Period::new`] so the
/// month is always 1..=12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    /// Parses exactly "YYYY-MM" with a year in 2000..=2099.
    pub fn parse(input: &str) -> Result<Period, CalendarError> {
        let bytes = input.as_bytes();
        let well_formed = bytes.len() == 7
            && bytes[4] == b'-'
            && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit);
        if !well_formed {
            return Err(CalendarError::MalformedPeriod {
                input: input.to_string(),
            });
        }
        let year = digits_value(&bytes[..4]);
        let month = digits_value(&bytes[5..]);
        Period::new(i32::try_from(year).unwrap_or(i32::MAX), month).map_err(|_| {
            CalendarError::PeriodOutOfRange {
                input: input.to_string(),
            }
        })
    }

    /// A period from its parts, with the same limits as [`Period::parse`].
    pub fn new(year: i32, month: u32) -> Result<Period, CalendarError> {
        if !(PERIOD_YEAR_MIN..=PERIOD_YEAR_MAX).contains(&year) || !(1..=12).contains(&month) {
            return Err(CalendarError::PeriodOutOfRange {
                input: format!("{year:04}-{month:02}"),
            });
        }
        Ok(Period { year, month })
    }

    /// The period a date falls in (dates outside 2000..=2099 still get their month).
    pub fn containing(date: NaiveDate) -> Period {
        Period {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        calendar_date(self.year, self.month, 1)
    }

    pub fn last_day(self) -> NaiveDate {
        calendar_date(self.year, self.month, days_in_month(self.year, self.month))
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        self.first_day() <= date && date <= self.last_day()
    }

    /// The following month. Stepping past 2099-12 is allowed: the limit is on parsed input.
    pub fn next(self) -> Period {
        match self.month {
            12 => Period {
                year: self.year + 1,
                month: 1,
            },
            month => Period {
                year: self.year,
                month: month + 1,
            },
        }
    }

    /// The preceding month.
    pub fn prev(self) -> Period {
        match self.month {
            1 => Period {
                year: self.year - 1,
                month: 12,
            },
            month => Period {
                year: self.year,
                month: month - 1,
            },
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Parses exactly "YYYY-MM-DD" into a real calendar date.
pub fn parse_date(input: &str) -> Result<NaiveDate, CalendarError> {
    let malformed = || CalendarError::MalformedDate {
        input: input.to_string(),
    };
    let bytes = input.as_bytes();
    let well_formed = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && [&bytes[..4], &bytes[5..7], &bytes[8..]]
            .iter()
            .all(|part| part.iter().all(u8::is_ascii_digit));
    if !well_formed {
        return Err(malformed());
    }
    let year = i32::try_from(digits_value(&bytes[..4])).map_err(|_| malformed())?;
    NaiveDate::from_ymd_opt(year, digits_value(&bytes[5..7]), digits_value(&bytes[8..]))
        .ok_or_else(malformed)
}

/// The Beijing (UTC+8) calendar date at the given instant.
pub fn beijing_today(now_utc: DateTime<Utc>) -> NaiveDate {
    let naive = now_utc.naive_utc();
    naive
        .checked_add_signed(TimeDelta::hours(BEIJING_UTC_OFFSET_HOURS))
        .map_or(naive.date(), |beijing| beijing.date())
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// An inclusive range of dates, e.g. a closure 2022-05-01..=2023-03-31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<DateRange, CalendarError> {
        if end < start {
            return Err(CalendarError::EndBeforeStart { start, end });
        }
        Ok(DateRange { start, end })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    /// Number of days in the range (at least 1).
    pub fn days(&self) -> u32 {
        day_count(days_between(self.start, self.end) + 1)
    }

    /// The days both ranges cover, if any.
    pub fn intersection(&self, other: &DateRange) -> Option<DateRange> {
        DateRange::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }

    /// How many days both ranges cover (0 when they are disjoint).
    pub fn overlap_days(&self, other: &DateRange) -> u32 {
        self.intersection(other).map_or(0, |range| range.days())
    }
}

/// A day count as `u32`, clamped at 0 and at `u32::MAX` (chrono spans fit comfortably).
pub(crate) fn day_count(days: i64) -> u32 {
    u32::try_from(days.max(0)).unwrap_or(u32::MAX)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 31,
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// A date known to exist (period invariants guarantee it); falls back to chrono's minimum
/// rather than panicking if that invariant were ever broken.
fn calendar_date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// The value of a short run of ASCII digits (callers check the bytes are digits).
fn digits_value(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn periods_parse_strictly() {
        assert_eq!(Period::parse("2024-03").unwrap().to_string(), "2024-03");
        for bad in [
            "2024-3",
            "24-03",
            "2024/03",
            "2024-13",
            "2024-00",
            "1999-12",
            "2100-01",
            " 2024-03",
            "2024-03-01",
            "+024-03",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn a_period_knows_its_first_and_last_day_including_leap_februaries() {
        let cases = [
            ("2024-02", "2024-02-01", "2024-02-29"),
            ("2023-02", "2023-02-01", "2023-02-28"),
            ("2000-02", "2000-02-01", "2000-02-29"),
            ("2024-04", "2024-04-01", "2024-04-30"),
            ("2024-12", "2024-12-01", "2024-12-31"),
        ];
        for (period, first, last) in cases {
            let period = Period::parse(period).unwrap();
            assert_eq!(period.first_day(), date(first));
            assert_eq!(period.last_day(), date(last));
        }
    }

    #[test]
    fn next_and_prev_cross_year_boundaries() {
        let dec = Period::parse("2024-12").unwrap();
        assert_eq!(dec.next().to_string(), "2025-01");
        assert_eq!(dec.next().prev(), dec);
        assert_eq!(
            Period::parse("2024-01").unwrap().prev().to_string(),
            "2023-12"
        );
        assert!(dec < dec.next());
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(date("2024-02-29").to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-2-01",
            "2024-02-01T00:00",
            "20240201",
            "",
            "2024-02-1 ",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn beijing_today_rolls_over_at_sixteen_hundred_utc() {
        let before = DateTime::parse_from_rfc3339("2024-03-31T15:59:59Z")
            .unwrap()
            .to_utc();
        let after = DateTime::parse_from_rfc3339("2024-03-31T16:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(beijing_today(before), date("2024-03-31"));
        assert_eq!(beijing_today(after), date("2024-04-01"));
    }

    #[test]
    fn date_ranges_are_inclusive_and_measure_their_overlap() {
        let waiver = DateRange::new(date("2022-05-01"), date("2023-03-31")).unwrap();
        assert!(waiver.contains(date("2022-05-01")) && waiver.contains(date("2023-03-31")));
        assert!(!waiver.contains(date("2023-04-01")));
        let window = DateRange::new(date("2023-03-30"), date("2023-04-05")).unwrap();
        assert_eq!(waiver.overlap_days(&window), 2);
        let disjoint = DateRange::new(date("2024-01-01"), date("2024-01-01")).unwrap();
        assert_eq!(waiver.overlap_days(&disjoint), 0);
        assert_eq!(disjoint.days(), 1);
        assert!(DateRange::new(date("2024-01-02"), date("2024-01-01")).is_err());
    }
}
