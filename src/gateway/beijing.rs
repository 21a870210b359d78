//! Beijing time (UTC+8, no daylight saving), the wall clock of every gateway timestamp and
//! the calendar of every bill date (protocol notes C.2).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The Beijing calendar day `at` falls on: the business date of bills.
pub fn beijing_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&BEIJING).date_naive()
}
