//! Parsing of the plain identifiers and optional fields that arrive at the edge. Domain values
//! (money, prices, periods, tariffs) parse themselves in `domain/`; this is what is left.

use chrono::NaiveDate;

use super::{AppError, AppResult};
use crate::domain::calendar::{Period, parse_date};

const IDENTIFIER_LEN_MAX: usize = 32;

/// Account, meter and tariff numbers: 1 to 32 of `A-Z a-z 0-9 - _`.
pub fn identifier(field: &str, value: &str) -> AppResult<String> {
    let ok = !value.is_empty()
        && value.len() <= IDENTIFIER_LEN_MAX
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(AppError::invalid(
            field,
            format!("{value:?} must be 1 to {IDENTIFIER_LEN_MAX} letters, digits, '-' or '_'"),
        ))
    }
}

/// Free text such as a name or a reason: trimmed, non-empty, bounded.
pub fn text(field: &str, value: &str, len_max: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > len_max {
        return Err(AppError::invalid(
            field,
            format!("must be at most {len_max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn date(field: &str, value: &str) -> AppResult<NaiveDate> {
    parse_date(value).map_err(|err| AppError::invalid(field, err))
}

/// An optional date: empty means `default`.
pub fn date_or(field: &str, value: &str, default: NaiveDate) -> AppResult<NaiveDate> {
    if value.is_empty() {
        Ok(default)
    } else {
        date(field, value)
    }
}

pub fn period(field: &str, value: &str) -> AppResult<Period> {
    Period::parse(value).map_err(|err| AppError::invalid(field, err))
}

/// A date that must not lie after `today` (readings, installations).
pub fn not_future(field: &str, value: NaiveDate, today: NaiveDate) -> AppResult<NaiveDate> {
    if value > today {
        Err(AppError::invalid(
            field,
            format!("{value} is in the future (today is {today})"),
        ))
    } else {
        Ok(value)
    }
}
