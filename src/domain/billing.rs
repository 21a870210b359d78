//! Drafting one account's bill for a period from plain values (what the bill run calls).
//!
//! The bill run loads an [`AccountSnapshot`] (meters and their states, tariff versions, history,
//! prepayment) and asks [`draft_bill`] what to issue. Every meter with a reading in the period
//! contributes an actual segment (a replaced meter's final reading and its successor's first add
//! up); with no reading anywhere the active meter is estimated from billed actual history (估抄),
//! or the account is skipped with a reason an operator can act on. The summed volume is priced
//! by `rating`, and available prepayment is applied. Nothing here is stored: the caller persists
//! the draft, the segments' new meter states and the usage per year in one transaction.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Days, NaiveDate};
use thiserror::Error;

use super::calendar::Period;
use super::money::Money;
use super::rating::{BillLine, RatingError, RatingInput, rate};
use super::reading::{
    MeterState, ReadingError, apply_estimate, bill_actual_reading, estimate_volume,
    register_modulus,
};
use super::tariff::TariffVersion;

/// Default days from issue to due date.
pub const DEFAULT_DUE_DAYS: u32 = 15;

/// One meter of the account as the bill run sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterSnapshot {
    pub meter_no: String,
    pub register_digits: u8,
    pub state: MeterState,
    /// Date of the last billed reading, or the install date.
    pub last_billed_on: NaiveDate,
    /// The newest unbilled reading dated in or before the period, if any: (index, read_on).
    pub new_reading: Option<(u64, NaiveDate)>,
    pub active: bool,
}

/// Everything about one account that a bill depends on.
#[derive(Debug, Clone)]
pub struct AccountSnapshot<'a> {
    pub account_no: &'a str,
    pub household_size: u32,
    pub versions: &'a [TariffVersion],
    pub meters: Vec<MeterSnapshot>,
    /// Volumes of billed, non-estimated periods, oldest first.
    pub recent_actual_volumes: Vec<u64>,
    pub billed_by_year: BTreeMap<i32, u64>,
    pub prepayment_balance: Money,
}

/// The bill run's parameters for one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillRequest {
    pub period: Period,
    pub issued_on: NaiveDate,
    /// Days from issue to due date ([`DEFAULT_DUE_DAYS`] by default).
    pub due_days: u32,
    pub rollover_max_m3: u64,
}

/// One meter's contribution to a bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub meter_no: String,
    /// The system index billing started from.
    pub previous_index: u64,
    /// The system index billing got to.
    pub current_index: u64,
    pub volume_m3: u64,
    /// The index actually read; `None` for an estimate.
    pub actual_index: Option<u64>,
    pub read_on: NaiveDate,
    /// The meter's state once this bill is issued (for the caller to persist).
    pub new_state: MeterState,
}

/// A bill ready to be numbered and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftBill {
    pub segments: Vec<Segment>,
    pub estimated: bool,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub volume_m3: u64,
    pub lines: Vec<BillLine>,
    pub total: Money,
    pub usage_by_year: Vec<(i32, u64)>,
    /// Prepayment balance used towards this bill (0 ≤ applied ≤ total).
    pub prepayment_applied: Money,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
}

/// Why an account gets no bill this period (reported, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// No reading in the period and no billed actual history to estimate from.
    NoHistoryToEstimate { period: Period },
    /// No reading in the period and no active meter to estimate on.
    NoActiveMeter { period: Period },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoHistoryToEstimate { period } => write!(
                f,
                "no reading in {period} and no billed actual history to estimate from"
            ),
            SkipReason::NoActiveMeter { period } => write!(
                f,
                "no reading in {period} and no active meter to estimate on"
            ),
        }
    }
}

/// What the bill run should do for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillOutcome {
    Issue(DraftBill),
    Skip(SkipReason),
}

/// Why a bill could not be drafted; the account needs attention before it can be billed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BillingError {
    #[error("meter {meter_no}: {source}")]
    Reading {
        meter_no: String,
        #[source]
        source: ReadingError,
    },
    #[error(
        "meter {meter_no}: reading on {read_on} is after the billing period {period}; it \
         belongs to a later period's bill"
    )]
    ReadingAfterPeriod {
        meter_no: String,
        read_on: NaiveDate,
        period: Period,
    },
    #[error(
        "meter {meter_no}: an estimate would be dated {read_on}, before the meter's last billed \
         reading on {last_billed_on}; bill the periods in order"
    )]
    EstimateBeforeLastBilled {
        meter_no: String,
        read_on: NaiveDate,
        last_billed_on: NaiveDate,
    },
    #[error("account {account_no}: {source}")]
    Rating {
        account_no: String,
        #[source]
        source: RatingError,
    },
    #[error("due date {due_days} days after {issued_on} is beyond the calendar")]
    DueDateOutOfRange { issued_on: NaiveDate, due_days: u32 },
}

/// Drafts the account's bill for `req.period`, or says why it is skipped.
pub fn draft_bill(
    account: &AccountSnapshot,
    req: &BillRequest,
) -> Result<BillOutcome, BillingError> {
    let mut segments = actual_segments(account, req)?;
    let estimated = segments.is_empty();
    if estimated {
        match estimated_segment(account, req)? {
            Ok(segment) => segments.push(segment),
            Err(reason) => return Ok(BillOutcome::Skip(reason)),
        }
    }
    let (from, to) = segment_span(account, &segments);
    let volume_m3 = segments.iter().map(|s| s.volume_m3).sum();
    let rated = rate(&RatingInput {
        versions: account.versions,
        household_size: account.household_size,
        from,
        to,
        volume_m3,
        billed_by_year: &account.billed_by_year,
    })
    .map_err(|source| BillingError::Rating {
        account_no: account.account_no.to_string(),
        source,
    })?;
    let prepayment_applied = account.prepayment_balance.min(rated.total).max(Money::ZERO);
    let due_on = req
        .issued_on
        .checked_add_days(Days::new(u64::from(req.due_days)))
        .ok_or(BillingError::DueDateOutOfRange {
            issued_on: req.issued_on,
            due_days: req.due_days,
        })?;
    Ok(BillOutcome::Issue(DraftBill {
        segments,
        estimated,
        from,
        to,
        volume_m3,
        lines: rated.lines,
        total: rated.total,
        usage_by_year: rated.usage_by_year,
        prepayment_applied,
        issued_on: req.issued_on,
        due_on,
    }))
}

/// One segment per meter with a reading in the period, billed against its system index.
fn actual_segments(
    account: &AccountSnapshot,
    req: &BillRequest,
) -> Result<Vec<Segment>, BillingError> {
    let mut segments = Vec::new();
    for meter in &account.meters {
        let Some((index, read_on)) = meter.new_reading else {
            continue;
        };
        check_read_on(meter, read_on, req.period)?;
        let (volume_m3, new_state) = bill_actual_reading(
            meter.state,
            index,
            meter.register_digits,
            req.rollover_max_m3,
        )
        .map_err(|source| reading_error(meter, source))?;
        segments.push(Segment {
            meter_no: meter.meter_no.clone(),
            previous_index: meter.state.system_index,
            current_index: new_state.system_index,
            volume_m3,
            actual_index: Some(index),
            read_on,
            new_state,
        });
    }
    Ok(segments)
}

/// The estimated segment on the (first) active meter, or why there can be none.
fn estimated_segment(
    account: &AccountSnapshot,
    req: &BillRequest,
) -> Result<Result<Segment, SkipReason>, BillingError> {
    let period = req.period;
    let Some(meter) = account.meters.iter().find(|meter| meter.active) else {
        return Ok(Err(SkipReason::NoActiveMeter { period }));
    };
    let Some(volume_m3) = estimate_volume(&account.recent_actual_volumes) else {
        return Ok(Err(SkipReason::NoHistoryToEstimate { period }));
    };
    register_modulus(meter.register_digits).map_err(|source| reading_error(meter, source))?;
    let read_on = period.last_day().min(req.issued_on);
    if read_on < meter.last_billed_on {
        return Err(BillingError::EstimateBeforeLastBilled {
            meter_no: meter.meter_no.clone(),
            read_on,
            last_billed_on: meter.last_billed_on,
        });
    }
    let new_state = apply_estimate(meter.state, volume_m3, meter.register_digits);
    Ok(Ok(Segment {
        meter_no: meter.meter_no.clone(),
        previous_index: meter.state.system_index,
        current_index: new_state.system_index,
        volume_m3,
        actual_index: None,
        read_on,
        new_state,
    }))
}

/// A reading may be from the period or from an earlier one not yet billed (a skipped period),
/// but never from a later period.
fn check_read_on(
    meter: &MeterSnapshot,
    read_on: NaiveDate,
    period: Period,
) -> Result<(), BillingError> {
    if read_on > period.last_day() {
        return Err(BillingError::ReadingAfterPeriod {
            meter_no: meter.meter_no.clone(),
            read_on,
            period,
        });
    }
    Ok(())
}

fn reading_error(meter: &MeterSnapshot, source: ReadingError) -> BillingError {
    BillingError::Reading {
        meter_no: meter.meter_no.clone(),
        source,
    }
}

/// The rating period: from the earliest last-billed date of the segments' meters to the
/// latest segment date. An actual reading dated before the estimate it trues up (recorded
/// late) is priced as of the estimate date: its volume was billed through that date.
fn segment_span(account: &AccountSnapshot, segments: &[Segment]) -> (NaiveDate, NaiveDate) {
    let latest_read_on = segments.iter().map(|s| s.read_on).max();
    let from = account
        .meters
        .iter()
        .filter(|meter| segments.iter().any(|s| s.meter_no == meter.meter_no))
        .map(|meter| meter.last_billed_on)
        .min()
        .or(latest_read_on)
        .unwrap_or(NaiveDate::MIN);
    (from, latest_read_on.unwrap_or(from).max(from))
}

/// The number of an account's bill for a period, `B<yyyy><mm>-<account_no>`: an account gets
/// at most one bill per period, so the number is the bill's natural key.
pub fn bill_no(period: Period, account_no: &str) -> String {
    format!("B{:04}{:02}-{account_no}", period.year, period.month)
}

#[cfg(test)]
#[path = "billing_tests.rs"]
mod tests;
