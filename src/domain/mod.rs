//! The pure domain core of water billing: rules and arithmetic, no I/O.
//!
//! Nothing here talks to a database, a gateway or a clock; every date and "now" comes in as an
//! argument, and money is `rust_decimal::Decimal` end to end (no floats). That keeps the rule
//! book (`docs/domain.md`) testable as plain functions with its worked examples as test vectors.
//!
//! # Layout
//! - [`money`]: `Money` (yuan at scale 2), `UnitPrice`, strict parsing, half-up line amounts.
//! - [`calendar`]: billing periods (`YYYY-MM`), strict dates, Beijing "today", inclusive ranges.
//! - [`cashier`]: a cashier's day close and its outcome (over, short, balanced).
//! - [`channel`]: the channels money goes through (Alipay, WeChat Pay, counter), their ledger.
//! - [`tariff`]: customer classes, tariff versions and their validity, the tier column format,
//!   household-size thresholds, the version in force on a date.
//! - [`rating`]: pricing one bill's volume: year and price-change splits, annual tier ladder,
//!   merged and rounded bill lines.
//! - [`reading`]: register rollover, estimates (估抄) and catch-up against the system index (等针).
//! - [`late_fee`]: chargeable days with waivers, the late fee (违约金) under a policy.
//! - [`allocation`]: sharing a payment over open bills (oldest first, fee before principal).
//! - [`journal`]: balanced double-entry entries for bills, prepayment and payments.
//! - [`bill_status`]: a bill's state (UNPAID .. VOID) and its one transition, typed refusals.
//! - [`evidence`]: who vouched that an order was paid, why money was held in suspense, what
//!   became of a notification: the closed sets stored with payments, suspense and notifications.
//! - [`posting`]: the one posting rule: what money arriving at or leaving an account does.
//! - [`payment`]: the payment aggregate: its states, events and one transition function.
//! - [`billing`]: drafting one account's bill for a period from a snapshot of plain values.
//! - [`discrepancy`]: what finance is asked to look at, its states, actions and the one
//!   transition function (claim first, then act).
//! - [`reconcile`]: matching a day's ledger payments against a gateway statement in one pass.
//! - [`reconcile_schedule`]: when the `serve` scheduler reconciles a day, retries, gives up.
//! - [`refundable`]: whose money prepayment is: per payment, what it brought that is still
//!   unapplied (bills take the oldest first), the most an online refund of it may return.
//! - [`refund`]: the refund lifecycle: states, gateway events, the one transition function.

pub mod allocation;
pub mod bill_status;
pub mod billing;
pub mod calendar;
pub mod cashier;
pub mod channel;
pub mod discrepancy;
pub mod evidence;
pub mod journal;
pub mod late_fee;
pub mod money;
pub mod payment;
pub mod posting;
pub mod rating;
pub mod reading;
pub mod reconcile;
pub mod reconcile_schedule;
pub mod refund;
pub mod refundable;
pub mod tariff;
