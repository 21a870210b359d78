//! When the daily reconciliation runs: the rule book of the `serve` scheduler, as a pure
//! function. Each morning the gateways publish yesterday's statement (Beijing business day);
//! from the configured start time the scheduler reconciles that day once per channel, retries
//! a statement that is not ready yet (or a failed attempt) every `retry_every`, and gives up on
//! the day at the deadline so a missing statement becomes an error someone reads, not a loop.
//!
//! Everything here works on Beijing wall-clock values handed in by the caller; the async task
//! around it (`crate::scheduler`) reads the clock, the database and the gateways.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

/// A Beijing time of day, written `HH:MM` (00:00 to 23:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(NaiveTime);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not a time of day: write HH:MM, from 00:00 to 23:59")]
    BadTimeOfDay(String),
    #[error("the deadline {deadline} must be later than the start time {start}")]
    DeadlineNotAfterStart {
        start: TimeOfDay,
        deadline: TimeOfDay,
    },
    #[error("the retry interval must be between 1 and {RETRY_EVERY_S_MAX} seconds, not {0}")]
    BadRetryInterval(u64),
}

/// A day has 86 400 seconds; retrying less often than daily means never retrying.
pub const RETRY_EVERY_S_MAX: u64 = 86_400;

impl TimeOfDay {
    /// 10:30, half an hour after the gateways publish yesterday's statements.
    pub const DEFAULT_START: Self = Self(match NaiveTime::from_hms_opt(10, 30, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    });
    /// 18:00: finance's day ends; a statement missing by then needs a person.
    pub const DEFAULT_DEADLINE: Self = Self(match NaiveTime::from_hms_opt(18, 0, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    });

    pub fn at(self, date: NaiveDate) -> NaiveDateTime {
        date.and_time(self.0)
    }
}

impl FromStr for TimeOfDay {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ScheduleError::BadTimeOfDay(text.to_owned());
        let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return Err(bad());
        }
        let hours = hours.parse().map_err(|_| bad())?;
        let minutes = minutes.parse().map_err(|_| bad())?;
        NaiveTime::from_hms_opt(hours, minutes, 0)
            .map(Self)
            .ok_or_else(bad)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

/// The scheduler's settings, checked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    start: TimeOfDay,
    deadline: TimeOfDay,
    retry_every: TimeDelta,
}

impl Schedule {
    pub fn new(
        start: TimeOfDay,
        deadline: TimeOfDay,
        retry_every_s: u64,
    ) -> Result<Self, ScheduleError> {
        if deadline <= start {
            return Err(ScheduleError::DeadlineNotAfterStart { start, deadline });
        }
        let bad_interval = ScheduleError::BadRetryInterval(retry_every_s);
        if !(1..=RETRY_EVERY_S_MAX).contains(&retry_every_s) {
            return Err(bad_interval);
        }
        let retry_every = i64::try_from(retry_every_s)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .ok_or(bad_interval)?;
        Ok(Self {
            start,
            deadline,
            retry_every,
        })
    }
}

/// What is known about one channel's due day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    NotAttempted,
    /// A run of the day is recorded (by this replica or another; any version).
    Recorded,
    /// The last attempt, at this Beijing time, did not record a run (not ready, or failed).
    Failed {
        at: NaiveDateTime,
    },
    /// The deadline passed without a run; reported once, not retried.
    GaveUp,
}

/// What to do about one channel at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Too early in the day: nothing before this Beijing time.
    WaitUntil(NaiveDateTime),
    /// Reconcile the channel's business day `date` now.
    Run { date: NaiveDate },
    /// The last attempt failed: try again at this Beijing time.
    RetryAt(NaiveDateTime),
    /// The deadline passed with no run for `date`: report it and stop trying.
    GiveUp { date: NaiveDate },
    /// The day is recorded (or given up); nothing until the next day's start.
    Done { until: NaiveDateTime },
}

impl Decision {
    /// When the scheduler should look again, if it does nothing now.
    pub fn wake_at(self, now: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::WaitUntil(at) | Self::RetryAt(at) | Self::Done { until: at } => at,
            Self::Run { .. } | Self::GiveUp { .. } => now,
        }
    }
}

/// The business day that is due at `now` (Beijing): yesterday.
pub fn due_date(now: NaiveDateTime) -> NaiveDate {
    now.date()
        .checked_sub_days(Days::new(1))
        .unwrap_or(now.date())
}

/// What to do at `now` (Beijing) about a channel whose due day is in `status`.
pub fn decide(now: NaiveDateTime, schedule: &Schedule, status: DayStatus) -> Decision {
    let today = now.date();
    let date = due_date(now);
    let start = schedule.start.at(today);
    let deadline = schedule.deadline.at(today);
    match status {
        DayStatus::Recorded | DayStatus::GaveUp => Decision::Done {
            until: schedule.start.at(today.succ_opt().unwrap_or(today)),
        },
        _ if now < start => Decision::WaitUntil(start),
        _ if now >= deadline => Decision::GiveUp { date },
        DayStatus::NotAttempted => Decision::Run { date },
        DayStatus::Failed { at } => {
            let retry = at.checked_add_signed(schedule.retry_every).unwrap_or(at);
            if now >= retry {
                Decision::Run { date }
            } else {
                // Wake at the deadline at the latest, to give up on time.
                Decision::RetryAt(retry.min(deadline))
            }
        }
    }
}

#[cfg(test)]
mod tests;
