//! Late fees (违约金) on unpaid principal (domain.md section 4).
//!
//! The fee is a daily rate on the unpaid principal for each chargeable day: from the day after
//! the due date up to (not including) the payment date, less days inside waiver windows (e.g. an
//! epidemic lockdown). It is computed at full precision, capped at the principal, and only then
//! rounded to the fen, truncating by default, so no intermediate rounding can favour either
//! side. Rate, rounding and cap are policy parameters because utilities set them differently.

use chrono::{Days, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use super::calendar::{DateRange, day_count};
use super::money::Money;

/// How the fee is brought to the fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FeeRounding {
    /// Drop fractions of a fen (the default: never overcharge).
    #[default]
    Truncate,
    /// Round half-up (四舍五入).
    HalfUp,
}

impl FeeRounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            FeeRounding::Truncate => RoundingStrategy::ToZero,
            FeeRounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// The utility's late-fee terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LateFeePolicy {
    /// Fraction of the unpaid principal charged per chargeable day (0.003 = 3‰).
    pub rate_per_day: Decimal,
    pub rounding: FeeRounding,
    /// Whether the fee may never exceed the unpaid principal.
    pub cap_at_principal: bool,
}

impl Default for LateFeePolicy {
    /// 3‰ per day, truncated to the fen, capped at the principal.
    fn default() -> LateFeePolicy {
        LateFeePolicy {
            rate_per_day: Decimal::new(3, 3),
            rounding: FeeRounding::Truncate,
            cap_at_principal: true,
        }
    }
}

/// Days from `due_on + 1` (inclusive) to `paid_on` (exclusive), less the days inside any waiver.
/// Overlapping waivers are merged first, so no day is waived twice.
pub fn chargeable_days(due_on: NaiveDate, paid_on: NaiveDate, waivers: &[DateRange]) -> u32 {
    let Some(window) = chargeable_window(due_on, paid_on) else {
        return 0;
    };
    let mut waived: Vec<DateRange> = waivers
        .iter()
        .filter_map(|waiver| waiver.intersection(&window))
        .collect();
    waived.sort_unstable();
    let waived_days = merged_days(&waived);
    window.days().saturating_sub(waived_days)
}

/// The fee on `unpaid_principal` if paid on `paid_on`. Never negative.
pub fn late_fee(
    unpaid_principal: Money,
    due_on: NaiveDate,
    paid_on: NaiveDate,
    waivers: &[DateRange],
    policy: &LateFeePolicy,
) -> Money {
    let days = chargeable_days(due_on, paid_on, waivers);
    if !unpaid_principal.is_positive() || days == 0 || policy.rate_per_day <= Decimal::ZERO {
        return Money::ZERO;
    }
    let principal = unpaid_principal.as_decimal();
    let exact = principal
        .checked_mul(policy.rate_per_day)
        .and_then(|daily| daily.checked_mul(Decimal::from(days)));
    let fee = match exact {
        Some(fee) if policy.cap_at_principal => fee.min(principal),
        Some(fee) => fee,
        // Only an absurd rate overflows 28 digits; the principal is the safe answer.
        None => principal,
    };
    Money::round_from(fee, policy.rounding.strategy()).max(Money::ZERO)
}

/// The inclusive range of chargeable dates before waivers, if any.
fn chargeable_window(due_on: NaiveDate, paid_on: NaiveDate) -> Option<DateRange> {
    let first = due_on.checked_add_days(Days::new(1))?;
    let last = paid_on.pred_opt()?;
    DateRange::new(first, last).ok()
}

/// Days covered by the union of ranges sorted by start.
fn merged_days(sorted: &[DateRange]) -> u32 {
    let mut total = 0_u32;
    let mut current: Option<(NaiveDate, NaiveDate)> = None;
    for range in sorted {
        current = match current {
            Some((start, end)) if range.start() <= end.succ_opt().unwrap_or(end) => {
                Some((start, end.max(range.end())))
            }
            Some((start, end)) => {
                total = total.saturating_add(span_days(start, end));
                Some((range.start(), range.end()))
            }
            None => Some((range.start(), range.end())),
        };
    }
    if let Some((start, end)) = current {
        total = total.saturating_add(span_days(start, end));
    }
    total
}

fn span_days(start: NaiveDate, end: NaiveDate) -> u32 {
    day_count((end - start).num_days() + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::calendar::parse_date;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn range(start: &str, end: &str) -> DateRange {
        DateRange::new(date(start), date(end)).unwrap()
    }

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    #[test]
    fn example_7_7_a_waiver_removes_the_lockdown_days_and_the_fee_is_truncated() {
        let waiver = [range("2022-05-01", "2023-03-31")];
        assert_eq!(
            chargeable_days(date("2022-04-20"), date("2023-06-15"), &waiver),
            85
        );
        let fee = late_fee(
            money("86.35"),
            date("2022-04-20"),
            date("2023-06-15"),
            &waiver,
            &LateFeePolicy::default(),
        );
        assert_eq!(fee.to_string(), "22.01");
    }

    #[test]
    fn example_7_7_without_a_waiver_the_fee_is_capped_at_the_principal() {
        assert_eq!(
            chargeable_days(date("2022-04-20"), date("2023-06-15"), &[]),
            420
        );
        let fee = late_fee(
            money("86.35"),
            date("2022-04-20"),
            date("2023-06-15"),
            &[],
            &LateFeePolicy::default(),
        );
        assert_eq!(fee.to_string(), "86.35");
    }

    #[test]
    fn policy_options_change_rounding_and_cap() {
        let half_up = LateFeePolicy {
            rounding: FeeRounding::HalfUp,
            ..LateFeePolicy::default()
        };
        let waiver = [range("2022-05-01", "2023-03-31")];
        let fee = late_fee(
            money("86.35"),
            date("2022-04-20"),
            date("2023-06-15"),
            &waiver,
            &half_up,
        );
        assert_eq!(fee.to_string(), "22.02");
        let uncapped = LateFeePolicy {
            cap_at_principal: false,
            ..LateFeePolicy::default()
        };
        let fee = late_fee(
            money("86.35"),
            date("2022-04-20"),
            date("2023-06-15"),
            &[],
            &uncapped,
        );
        assert_eq!(fee.to_string(), "108.80");
    }

    #[test]
    fn paying_on_or_before_the_due_date_or_the_day_after_costs_nothing() {
        let policy = LateFeePolicy::default();
        for paid in ["2024-03-01", "2024-03-15", "2024-03-16"] {
            assert_eq!(
                chargeable_days(date("2024-03-15"), date(paid), &[]),
                0,
                "{paid}"
            );
            assert!(
                late_fee(
                    money("100.00"),
                    date("2024-03-15"),
                    date(paid),
                    &[],
                    &policy
                )
                .is_zero()
            );
        }
        assert_eq!(
            chargeable_days(date("2024-03-15"), date("2024-03-17"), &[]),
            1
        );
    }

    #[test]
    fn overlapping_and_touching_waivers_are_not_subtracted_twice() {
        let due = date("2024-01-31");
        let paid = date("2024-03-01");
        let cases = [
            (
                vec![
                    range("2024-02-01", "2024-02-10"),
                    range("2024-02-05", "2024-02-15"),
                ],
                14,
            ),
            (
                vec![
                    range("2024-02-01", "2024-02-10"),
                    range("2024-02-11", "2024-02-15"),
                ],
                14,
            ),
            (
                vec![
                    range("2024-02-10", "2024-02-12"),
                    range("2024-02-01", "2024-02-29"),
                ],
                0,
            ),
            (
                vec![
                    range("2024-01-01", "2024-02-03"),
                    range("2024-02-27", "2024-12-31"),
                ],
                23,
            ),
        ];
        for (waivers, days) in cases {
            assert_eq!(chargeable_days(due, paid, &waivers), days, "{waivers:?}");
        }
    }

    #[test]
    fn a_zero_or_negative_principal_has_no_fee() {
        let policy = LateFeePolicy::default();
        for principal in ["0.00", "-5.00"] {
            assert!(
                late_fee(
                    money(principal),
                    date("2024-01-01"),
                    date("2024-06-01"),
                    &[],
                    &policy
                )
                .is_zero()
            );
        }
    }

    proptest! {
        #[test]
        fn a_capped_fee_never_exceeds_the_principal_and_grows_with_the_payment_date(
            fen in 0_i64..10_000_000, delay in 0_i64..2_000, waiver_start in 0_i64..400, waiver_len in 0_i64..200
        ) {
            let principal = Money::from_fen(fen);
            let due = date("2024-01-15");
            let start = due + chrono::TimeDelta::days(waiver_start);
            let waivers = [DateRange::new(start, start + chrono::TimeDelta::days(waiver_len)).unwrap()];
            let paid = due + chrono::TimeDelta::days(delay);
            let policy = LateFeePolicy::default();
            let fee = late_fee(principal, due, paid, &waivers, &policy);
            let fee_a_day_later = late_fee(principal, due, paid + chrono::TimeDelta::days(1), &waivers, &policy);
            prop_assert!(fee <= principal);
            prop_assert!(!fee.is_negative());
            prop_assert!(fee <= fee_a_day_later);
        }
    }
}
