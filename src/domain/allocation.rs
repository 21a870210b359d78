//! Allocation of money received to an account's open bills (domain.md section 5).
//!
//! The default order follows the Civil Code: the oldest due bill first and, within a bill, its
//! late fee before its principal; whatever is left becomes prepayment (预存). The order is
//! decided here from due dates and bill numbers, never from the order the caller happened to
//! load the bills in, so the same payment always allocates the same way.

use chrono::NaiveDate;

use super::money::Money;

/// What a bill still owes at the moment of the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBill {
    pub bill_no: String,
    pub due_on: NaiveDate,
    /// Late fee as of the payment's Beijing date.
    pub late_fee_due: Money,
    pub principal_due: Money,
}

/// What one bill receives from a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillAllocation {
    pub bill_no: String,
    pub late_fee: Money,
    pub principal: Money,
}

impl BillAllocation {
    pub fn total(&self) -> Money {
        self.late_fee + self.principal
    }
}

/// How a payment is shared: bills in allocation order (only those receiving something), then
/// the remainder for the prepayment balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub bills: Vec<BillAllocation>,
    pub to_prepayment: Money,
}

impl Allocation {
    /// Everything allocated, prepayment included; always equals the amount allocated.
    pub fn total(&self) -> Money {
        self.bills.iter().map(BillAllocation::total).sum::<Money>() + self.to_prepayment
    }
}

/// Shares `amount` over `open_bills`: oldest due first (ties by bill number), late fee then
/// principal, remainder to prepayment. A zero or negative amount pays no bill and is passed
/// through to `to_prepayment` unchanged, so the parts always add up to `amount`.
pub fn allocate(amount: Money, open_bills: &[OpenBill]) -> Allocation {
    let mut ordered: Vec<&OpenBill> = open_bills.iter().collect();
    ordered.sort_by(|a, b| (a.due_on, &a.bill_no).cmp(&(b.due_on, &b.bill_no)));

    let mut remaining = amount;
    let mut bills = Vec::new();
    for bill in ordered {
        if !remaining.is_positive() {
            break;
        }
        let late_fee = take(&mut remaining, bill.late_fee_due);
        let principal = take(&mut remaining, bill.principal_due);
        if late_fee.is_positive() || principal.is_positive() {
            bills.push(BillAllocation {
                bill_no: bill.bill_no.clone(),
                late_fee,
                principal,
            });
        }
    }
    Allocation {
        bills,
        to_prepayment: remaining,
    }
}

/// Takes up to `due` (never below zero) out of `remaining`.
fn take(remaining: &mut Money, due: Money) -> Money {
    let taken = due.max(Money::ZERO).min((*remaining).max(Money::ZERO));
    *remaining -= taken;
    taken
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::calendar::parse_date;
    use proptest::prelude::*;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn bill(no: &str, due: &str, fee: &str, principal: &str) -> OpenBill {
        OpenBill {
            bill_no: no.to_string(),
            due_on: parse_date(due).unwrap(),
            late_fee_due: money(fee),
            principal_due: money(principal),
        }
    }

    fn shown(allocation: &Allocation) -> Vec<(String, String, String)> {
        allocation
            .bills
            .iter()
            .map(|b| {
                (
                    b.bill_no.clone(),
                    b.late_fee.to_string(),
                    b.principal.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn example_7_10_the_oldest_bills_are_paid_first_fee_before_principal() {
        // Given out of order on purpose: the allocation must not trust input order.
        let bills = [
            bill("B3", "2024-05-15", "0.00", "134.90"),
            bill("B1", "2024-03-15", "4.82", "96.40"),
            bill("B2", "2024-04-15", "1.20", "120.55"),
        ];
        let available = money("240.00") + money("12.30");
        let allocation = allocate(available, &bills);
        assert_eq!(
            shown(&allocation),
            vec![
                ("B1".to_string(), "4.82".to_string(), "96.40".to_string()),
                ("B2".to_string(), "1.20".to_string(), "120.55".to_string()),
                ("B3".to_string(), "0.00".to_string(), "29.33".to_string()),
            ]
        );
        assert_eq!(allocation.bills[0].total().to_string(), "101.22");
        assert_eq!(allocation.bills[1].total().to_string(), "121.75");
        assert_eq!(
            (money("134.90") - allocation.bills[2].principal).to_string(),
            "105.57"
        );
        assert_eq!(allocation.to_prepayment.to_string(), "0.00");
    }

    #[test]
    fn money_beyond_all_open_bills_becomes_prepayment() {
        let allocation = allocate(money("50.00"), &[bill("B1", "2024-03-15", "0.50", "20.00")]);
        assert_eq!(allocation.to_prepayment.to_string(), "29.50");
    }

    #[test]
    fn a_partial_payment_covers_the_late_fee_before_any_principal() {
        let allocation = allocate(money("3.00"), &[bill("B1", "2024-03-15", "4.82", "96.40")]);
        assert_eq!(
            shown(&allocation),
            vec![("B1".to_string(), "3.00".to_string(), "0.00".to_string())]
        );
    }

    #[test]
    fn bills_due_the_same_day_are_ordered_by_bill_number() {
        let bills = [
            bill("B9", "2024-03-15", "0.00", "10.00"),
            bill("B10", "2024-03-15", "0.00", "10.00"),
        ];
        let allocation = allocate(money("10.00"), &bills);
        assert_eq!(allocation.bills[0].bill_no, "B10");
        assert_eq!(allocation.bills.len(), 1);
    }

    #[test]
    fn a_zero_amount_allocates_nothing() {
        let allocation = allocate(Money::ZERO, &[bill("B1", "2024-03-15", "1.00", "10.00")]);
        assert!(allocation.bills.is_empty());
        assert!(allocation.to_prepayment.is_zero());
    }

    fn arbitrary_bills() -> impl Strategy<Value = Vec<OpenBill>> {
        proptest::collection::vec((0_u32..60, 0_i64..2_000, 0_i64..50_000, 0_u32..1000), 0..8)
            .prop_map(|rows| {
                // Bill numbers are unique per account; the random part varies their order.
                rows.into_iter()
                    .enumerate()
                    .map(|(index, (day, fee, principal, no))| OpenBill {
                        bill_no: format!("B{no}-{index}"),
                        due_on: parse_date("2024-01-01").unwrap()
                            + chrono::Days::new(u64::from(day)),
                        late_fee_due: Money::from_fen(fee),
                        principal_due: Money::from_fen(principal),
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn allocation_never_creates_or_loses_a_fen(fen in 0_i64..500_000, bills in arbitrary_bills()) {
            let amount = Money::from_fen(fen);
            let allocation = allocate(amount, &bills);
            prop_assert_eq!(allocation.total(), amount);
            prop_assert!(!allocation.to_prepayment.is_negative());
        }

        #[test]
        fn no_bill_receives_more_than_it_owes(fen in 0_i64..500_000, bills in arbitrary_bills()) {
            let allocation = allocate(Money::from_fen(fen), &bills);
            for paid in &allocation.bills {
                let owed = bills.iter().find(|b| b.bill_no == paid.bill_no).unwrap();
                prop_assert!(paid.late_fee <= owed.late_fee_due);
                prop_assert!(paid.principal <= owed.principal_due);
                prop_assert!(!paid.late_fee.is_negative() && !paid.principal.is_negative());
            }
        }

        #[test]
        fn a_zero_amount_never_allocates_anything(bills in arbitrary_bills()) {
            let allocation = allocate(Money::ZERO, &bills);
            prop_assert!(allocation.bills.is_empty());
            prop_assert!(allocation.to_prepayment.is_zero());
        }
    }
}
