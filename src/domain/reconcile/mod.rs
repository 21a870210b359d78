//! Reconciliation of our ledger against a gateway statement for one channel and one business
//! date (domain rules section 6). Pure: no I/O, no clock; the caller loads the ledger and the
//! parsed statement and records the result.
//!
//! Every input lands in exactly one place of the result: each statement row and each ledger
//! payment or refund is either part of a [`Matched`] pair or of exactly one [`Discrepancy`].
//! Money is integer fen on both sides (the statement parser converts exactly), signed for
//! totals as **payments positive, refunds negative**. Each item's `difference_fen` is its
//! gateway contribution minus its ledger contribution, so
//! `ledger_fen + Σ difference_fen = gateway_fen` always holds (domain example 7.11:
//! 576.35 − 150.00 + 55.00 − 90.00 = 391.35).
//!
//! Matching, in one pass over each side with hash maps sized up front:
//! - payment rows: on `out_trade_no` (`join`: split by hash across threads), then on the
//!   gateway trade number when ours is unknown; equal amounts → MATCHED, different → AMOUNT_MISMATCH; no ledger payment → GATEWAY_ONLY;
//! - refund rows: against ledger refunds on our refund number, then (for a row without one)
//!   on `out_trade_no`; a refund on one side only is a STATUS_MISMATCH ("refunded on one side
//!   only"), different amounts an AMOUNT_MISMATCH;
//! - ledger payments no row claimed → LEDGER_ONLY;
//! - DUPLICATE: among the MATCHED payments, those of one account with the same amount on the
//!   same business date, not refunded in full: the earliest (by `paid_at`, then
//!   `out_trade_no`) stays MATCHED, every later one is a DUPLICATE pointing at it. Both sides
//!   agree on the money (difference 0); finance turns it into prepayment or a refund.
//!
//! States: a LEDGER_ONLY (or ledger-only refund) within `near_midnight_minutes` of midnight is
//! HELD for the adjacent day's statement; when the caller passes the adjacent days' rows or
//! payments ([`Neighbours`]) and the counterpart is there with the same amount, the item is
//! AUTO_RESOLVED with a [`CrossDay`] note. The class stays, so the day's totals still tie.

mod held;
mod join;
mod matcher;
mod totals;

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

pub use held::{HeldItem, HeldVerdict, recheck_held};
pub use matcher::reconcile;

/// Default window around midnight in which a ledger-only item waits for the adjacent day.
pub const NEAR_MIDNIGHT_MINUTES_DEFAULT: u32 = 10;

/// Our payment's status as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Succeeded,
    PartiallyRefunded,
    Refunded,
}

/// One of our succeeded payments of the business date (Beijing date of `paid_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPayment {
    pub out_trade_no: String,
    pub gateway_trade_no: Option<String>,
    pub account_no: String,
    pub amount_fen: i64,
    pub status: PaymentStatus,
    pub refunded_fen: i64,
    /// Gateway success time as we recorded it, Beijing wall clock.
    pub paid_at: NaiveDateTime,
}

/// One of our refunds whose gateway business date is the run's date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRefund {
    /// The refunded payment's order number.
    pub out_trade_no: String,
    /// Our refund request number (Alipay `out_request_no`, WeChat `out_refund_no`).
    pub refund_no: String,
    pub account_no: String,
    /// Positive.
    pub amount_fen: i64,
    pub refunded_at: NaiveDateTime,
}

/// Payment or refund, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Movement {
    Payment,
    Refund,
}

/// A statement row as matching needs it (the app layer converts the parser's rows). The
/// numbers borrow from the parsed statement where there is one (a million rows are not copied
/// to be matched) and are owned where the rows were read back from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRow<'a> {
    pub movement: Movement,
    pub out_trade_no: Cow<'a, str>,
    pub gateway_trade_no: Cow<'a, str>,
    pub refund_no: Option<Cow<'a, str>>,
    /// Customer money, positive; `movement` gives the sign.
    pub amount_fen: i64,
    /// Fee in yuan, charged to us = positive.
    pub fee: Decimal,
    pub trade_time: NaiveDateTime,
    /// Line in the statement file, for the report.
    pub line_no: usize,
}

/// What the adjacent business dates hold, when already known. Both may be empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neighbours<'a> {
    /// Rows of the previous and next days' statements.
    pub statement_rows: &'a [GatewayRow<'a>],
    /// Our payments of the previous and next business dates.
    pub payments: &'a [LedgerPayment],
}

/// Everything one run compares.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReconcileInput<'a> {
    pub payments: &'a [LedgerPayment],
    pub refunds: &'a [LedgerRefund],
    pub statement: &'a [GatewayRow<'a>],
    pub neighbours: Neighbours<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    pub business_date: NaiveDate,
    pub near_midnight_minutes: u32,
    /// Parts the order-number join is split into, run on as many threads for a large day.
    /// Changes the speed, never the result.
    pub threads: usize,
}

/// Upper bound on [`MatchOptions::threads`] by default: the join is memory-bound beyond it.
const MATCH_THREADS_MAX: usize = 8;

impl MatchOptions {
    /// Options for `business_date`: the default window, and one thread per core (up to
    /// [`MATCH_THREADS_MAX`]).
    pub fn new(business_date: NaiveDate) -> MatchOptions {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        MatchOptions {
            business_date,
            near_midnight_minutes: NEAR_MIDNIGHT_MINUTES_DEFAULT,
            threads: cores.min(MATCH_THREADS_MAX),
        }
    }
}

/// Which ledger entry an item refers to: an index into `payments` or `refunds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerRef {
    Payment(usize),
    Refund(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Matched,
    GatewayOnly,
    LedgerOnly,
    AmountMismatch,
    StatusMismatch,
    Duplicate,
}

/// Initial state of a discrepancy; RESOLVED (by finance) is recorded later by the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Open,
    /// Near midnight: waiting for the adjacent day's statement.
    Held,
    /// The adjacent day explains it (see [`CrossDay`]).
    AutoResolved,
}

/// The counterpart found on an adjacent business date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrossDay {
    /// A ledger-only item is on this line of an adjacent day's statement.
    StatementLine(usize),
    /// A gateway-only row is our payment of an adjacent business date, paid at this time.
    LedgerPaidAt(NaiveDateTime),
}

/// A statement row and a ledger entry that agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub ledger: LedgerRef,
    /// Index into the statement rows.
    pub row: usize,
    pub movement: Movement,
    pub amount_fen: i64,
}

/// One exception for finance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub class: Class,
    pub state: State,
    pub movement: Movement,
    pub out_trade_no: String,
    pub gateway_trade_no: Option<String>,
    pub refund_no: Option<String>,
    pub account_no: Option<String>,
    /// Positive amounts as each side records them.
    pub ledger_fen: Option<i64>,
    pub gateway_fen: Option<i64>,
    /// Signed gateway contribution − signed ledger contribution (refunds count negative).
    pub difference_fen: i64,
    pub ledger_time: Option<NaiveDateTime>,
    pub gateway_time: Option<NaiveDateTime>,
    pub ledger: Option<LedgerRef>,
    /// Index into the statement rows.
    pub row: Option<usize>,
    pub statement_line: Option<usize>,
    /// DUPLICATE: the order number of the payment kept as the original.
    pub duplicate_of: Option<String>,
    pub cross_day: Option<CrossDay>,
}

/// Count and signed sums of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassTotal {
    pub count: usize,
    pub ledger_fen: i64,
    pub gateway_fen: i64,
    pub difference_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileTotals {
    /// Ledger entries (payments + refunds) and their signed sum (payments − refunds).
    pub ledger_count: usize,
    pub ledger_fen: i64,
    /// Statement rows and their signed sum (payments − refunds).
    pub gateway_count: usize,
    pub gateway_fen: i64,
    pub gateway_payments_fen: i64,
    /// Positive.
    pub gateway_refunds_fen: i64,
    pub matched_count: usize,
    /// Signed sum of the matched pairs.
    pub matched_fen: i64,
    pub gateway_only: ClassTotal,
    pub ledger_only: ClassTotal,
    pub amount_mismatch: ClassTotal,
    pub status_mismatch: ClassTotal,
    pub duplicate: ClassTotal,
    pub open_count: usize,
    pub held_count: usize,
    pub auto_resolved_count: usize,
    /// Sum of the statement's fees (yuan, exact).
    pub fee_total: Decimal,
    /// `gateway_fen` in yuan minus `fee_total`: what the gateway owes us for the day.
    pub net_settlement: Decimal,
}

impl ReconcileTotals {
    /// The class total of a discrepancy class; `None` for MATCHED (see `matched_*`).
    pub fn class(&self, class: Class) -> Option<&ClassTotal> {
        match class {
            Class::Matched => None,
            Class::GatewayOnly => Some(&self.gateway_only),
            Class::LedgerOnly => Some(&self.ledger_only),
            Class::AmountMismatch => Some(&self.amount_mismatch),
            Class::StatusMismatch => Some(&self.status_mismatch),
            Class::Duplicate => Some(&self.duplicate),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileResult {
    /// In statement row order.
    pub matched: Vec<Matched>,
    /// Sorted by `out_trade_no`, then movement, refund number and statement line.
    pub discrepancies: Vec<Discrepancy>,
    pub totals: ReconcileTotals,
}

/// Signed contribution of a movement to a total.
fn signed(movement: Movement, fen: i64) -> i64 {
    match movement {
        Movement::Payment => fen,
        Movement::Refund => -fen,
    }
}

#[cfg(test)]
mod tests;
