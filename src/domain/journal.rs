//! Double-entry journal entries for every money movement (append-only).
//!
//! Each business event (a bill issued, prepayment applied, a payment received) becomes one
//! entry whose debits equal its credits. This module only builds entries from domain values;
//! storing them (append-only, never edited) is the database layer's job. Postings are netted
//! per ledger and zero postings omitted, so an entry reads like the accountant would write it.

use std::collections::BTreeMap;

use thiserror::Error;

use super::allocation::Allocation;
use super::money::Money;
use super::rating::{BillLine, LineKind};

pub const BILL_ISSUED: &str = "BILL_ISSUED";
pub const PREPAYMENT_APPLIED: &str = "PREPAYMENT_APPLIED";
pub const PAYMENT_RECEIVED: &str = "PAYMENT_RECEIVED";
pub const PAYMENT_REVERSED: &str = "PAYMENT_REVERSED";

/// The accounts money moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ledger {
    Receivable,
    WaterRevenue,
    SewageFeePayable,
    ResourceTaxPayable,
    LateFeeIncome,
    Adjustment,
    Prepayment,
    GatewayClearing,
    CounterCash,
    Suspense,
    GatewayFees,
}

/// Why a ledger name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("ledger {input:?} is unknown; expected one of {}", Ledger::ALL.map(Ledger::as_str).join(", "))]
pub struct UnknownLedger {
    pub input: String,
}

impl Ledger {
    pub const ALL: [Ledger; 11] = [
        Ledger::Receivable,
        Ledger::WaterRevenue,
        Ledger::SewageFeePayable,
        Ledger::ResourceTaxPayable,
        Ledger::LateFeeIncome,
        Ledger::Adjustment,
        Ledger::Prepayment,
        Ledger::GatewayClearing,
        Ledger::CounterCash,
        Ledger::Suspense,
        Ledger::GatewayFees,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ledger::Receivable => "RECEIVABLE",
            Ledger::WaterRevenue => "WATER_REVENUE",
            Ledger::SewageFeePayable => "SEWAGE_FEE_PAYABLE",
            Ledger::ResourceTaxPayable => "RESOURCE_TAX_PAYABLE",
            Ledger::LateFeeIncome => "LATE_FEE_INCOME",
            Ledger::Adjustment => "ADJUSTMENT",
            Ledger::Prepayment => "PREPAYMENT",
            Ledger::GatewayClearing => "GATEWAY_CLEARING",
            Ledger::CounterCash => "COUNTER_CASH",
            Ledger::Suspense => "SUSPENSE",
            Ledger::GatewayFees => "GATEWAY_FEES",
        }
    }

    pub fn parse(input: &str) -> Result<Ledger, UnknownLedger> {
        Ledger::ALL
            .into_iter()
            .find(|ledger| ledger.as_str() == input)
            .ok_or_else(|| UnknownLedger {
                input: input.to_string(),
            })
    }

    /// The ledger credited when a bill line of this kind is issued.
    pub fn for_line(kind: LineKind) -> Ledger {
        match kind {
            LineKind::WaterTier(_) => Ledger::WaterRevenue,
            LineKind::Sewage => Ledger::SewageFeePayable,
            LineKind::ResourceTax => Ledger::ResourceTaxPayable,
            LineKind::LateFee => Ledger::LateFeeIncome,
            LineKind::Adjustment => Ledger::Adjustment,
        }
    }
}

/// One side of one ledger in an entry; exactly one of debit and credit is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub ledger: Ledger,
    pub debit: Money,
    pub credit: Money,
}

/// A balanced set of postings recording one business event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The event, e.g. [`BILL_ISSUED`].
    pub kind: &'static str,
    pub postings: Vec<Posting>,
}

impl JournalEntry {
    pub fn is_balanced(&self) -> bool {
        self.total_debits() == self.total_credits()
    }

    pub fn total_debits(&self) -> Money {
        self.postings.iter().map(|p| p.debit).sum()
    }

    pub fn total_credits(&self) -> Money {
        self.postings.iter().map(|p| p.credit).sum()
    }

    /// Builds an entry from net debits per ledger (negative = credit), omitting zeros. The
    /// caller's nets must sum to zero for the entry to balance.
    fn from_net_debits(kind: &'static str, nets: &[(Ledger, Money)]) -> JournalEntry {
        let mut by_ledger: BTreeMap<Ledger, Money> = BTreeMap::new();
        let mut order: Vec<Ledger> = Vec::new();
        for (ledger, amount) in nets {
            if !by_ledger.contains_key(ledger) {
                order.push(*ledger);
            }
            *by_ledger.entry(*ledger).or_default() += *amount;
        }
        let postings = order
            .into_iter()
            .filter_map(|ledger| {
                let net = by_ledger.get(&ledger).copied().unwrap_or_default();
                posting(ledger, net)
            })
            .collect();
        JournalEntry { kind, postings }
    }
}

fn posting(ledger: Ledger, net_debit: Money) -> Option<Posting> {
    if net_debit.is_zero() {
        return None;
    }
    let (debit, credit) = if net_debit.is_positive() {
        (net_debit, Money::ZERO)
    } else {
        (Money::ZERO, -net_debit)
    };
    Some(Posting {
        ledger,
        debit,
        credit,
    })
}

/// Dr Receivable for the bill total; Cr revenue and payables per line kind. A negative
/// adjustment lands on the debit side of its ledger.
pub fn bill_issued(lines: &[BillLine]) -> JournalEntry {
    let total: Money = lines.iter().map(|line| line.amount).sum();
    let mut nets = vec![(Ledger::Receivable, total)];
    let mut credits: Vec<(Ledger, Money)> = lines
        .iter()
        .map(|line| (Ledger::for_line(line.kind), -line.amount))
        .collect();
    credits.sort_by_key(|(ledger, _)| *ledger);
    nets.extend(credits);
    JournalEntry::from_net_debits(BILL_ISSUED, &nets)
}

/// Prepayment balance used to settle a newly issued bill: Dr Prepayment, Cr Receivable.
pub fn prepayment_applied(amount: Money) -> JournalEntry {
    JournalEntry::from_net_debits(
        PREPAYMENT_APPLIED,
        &[(Ledger::Prepayment, amount), (Ledger::Receivable, -amount)],
    )
}

/// Money received on a channel (gateway clearing or counter cash) and how it was allocated:
/// Dr channel; Cr Receivable (principal), LateFeeIncome (late fees), Prepayment (remainder).
pub fn payment_received(channel_ledger: Ledger, allocation: &Allocation) -> JournalEntry {
    let principal: Money = allocation.bills.iter().map(|b| b.principal).sum();
    let late_fees: Money = allocation.bills.iter().map(|b| b.late_fee).sum();
    JournalEntry::from_net_debits(
        PAYMENT_RECEIVED,
        &[
            (channel_ledger, allocation.total()),
            (Ledger::Receivable, -principal),
            (Ledger::LateFeeIncome, -late_fees),
            (Ledger::Prepayment, -allocation.to_prepayment),
        ],
    )
}

/// The exact opposite of `entry` under another kind: every debit becomes a credit of the same
/// ledger and amount, so the two entries together leave every ledger where it was. Used to
/// undo a posting (a payment the gateway never took) without editing the journal.
pub fn reversal(kind: &'static str, entry: &JournalEntry) -> JournalEntry {
    JournalEntry {
        kind,
        postings: entry
            .postings
            .iter()
            .map(|p| Posting {
                ledger: p.ledger,
                debit: p.credit,
                credit: p.debit,
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::allocation::{OpenBill, allocate};
    use crate::domain::calendar::parse_date;
    use crate::domain::money::UnitPrice;
    use proptest::prelude::*;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn line(kind: LineKind, amount: &str) -> BillLine {
        BillLine {
            kind,
            volume_m3: 0,
            unit_price: UnitPrice::parse("0").unwrap(),
            amount: money(amount),
        }
    }

    fn shown(entry: &JournalEntry) -> Vec<(&'static str, String, String)> {
        entry
            .postings
            .iter()
            .map(|p| (p.ledger.as_str(), p.debit.to_string(), p.credit.to_string()))
            .collect()
    }

    fn row(ledger: &'static str, debit: &str, credit: &str) -> (&'static str, String, String) {
        (ledger, debit.to_string(), credit.to_string())
    }

    #[test]
    fn ledgers_round_trip_through_their_names() {
        for ledger in Ledger::ALL {
            assert_eq!(Ledger::parse(ledger.as_str()).unwrap(), ledger);
        }
        assert!(
            Ledger::parse("receivable")
                .unwrap_err()
                .to_string()
                .contains("RECEIVABLE, WATER_REVENUE")
        );
    }

    #[test]
    fn issuing_example_7_1_debits_receivable_and_credits_each_fee_item() {
        let lines = [
            line(LineKind::WaterTier(1), "43.20"),
            line(LineKind::WaterTier(2), "97.20"),
            line(LineKind::Sewage, "42.75"),
            line(LineKind::ResourceTax, "9.00"),
        ];
        let entry = bill_issued(&lines);
        assert_eq!(entry.kind, "BILL_ISSUED");
        assert_eq!(
            shown(&entry),
            vec![
                row("RECEIVABLE", "192.15", "0.00"),
                row("WATER_REVENUE", "0.00", "140.40"),
                row("SEWAGE_FEE_PAYABLE", "0.00", "42.75"),
                row("RESOURCE_TAX_PAYABLE", "0.00", "9.00"),
            ]
        );
        assert!(entry.is_balanced());
    }

    #[test]
    fn a_negative_adjustment_is_debited_and_a_zero_bill_posts_nothing() {
        let entry = bill_issued(&[
            line(LineKind::Sewage, "10.00"),
            line(LineKind::Adjustment, "-3.00"),
        ]);
        assert_eq!(
            shown(&entry),
            vec![
                row("RECEIVABLE", "7.00", "0.00"),
                row("SEWAGE_FEE_PAYABLE", "0.00", "10.00"),
                row("ADJUSTMENT", "3.00", "0.00")
            ]
        );
        assert!(bill_issued(&[]).postings.is_empty());
    }

    #[test]
    fn applying_prepayment_moves_it_against_the_receivable() {
        let entry = prepayment_applied(money("12.30"));
        assert_eq!(
            shown(&entry),
            vec![
                row("PREPAYMENT", "12.30", "0.00"),
                row("RECEIVABLE", "0.00", "12.30")
            ]
        );
    }

    #[test]
    fn a_payment_credits_principal_late_fees_and_prepayment() {
        let bills = [OpenBill {
            bill_no: "B1".to_string(),
            due_on: parse_date("2024-03-15").unwrap(),
            late_fee_due: money("4.82"),
            principal_due: money("96.40"),
        }];
        let entry = payment_received(Ledger::GatewayClearing, &allocate(money("120.00"), &bills));
        assert_eq!(
            shown(&entry),
            vec![
                row("GATEWAY_CLEARING", "120.00", "0.00"),
                row("RECEIVABLE", "0.00", "96.40"),
                row("LATE_FEE_INCOME", "0.00", "4.82"),
                row("PREPAYMENT", "0.00", "18.78"),
            ]
        );
        assert_eq!(entry.total_debits().to_string(), "120.00");
    }

    fn arbitrary_line() -> impl Strategy<Value = BillLine> {
        (0_usize..7, -100_000_i64..1_000_000).prop_map(|(kind, fen)| {
            let kinds = [
                LineKind::WaterTier(1),
                LineKind::WaterTier(3),
                LineKind::Sewage,
                LineKind::ResourceTax,
                LineKind::LateFee,
                LineKind::Adjustment,
                LineKind::WaterTier(2),
            ];
            BillLine {
                kind: kinds[kind],
                volume_m3: 1,
                unit_price: UnitPrice::parse("1").unwrap(),
                amount: Money::from_fen(fen),
            }
        })
    }

    proptest! {
        #[test]
        fn every_entry_balances(
            lines in proptest::collection::vec(arbitrary_line(), 0..10),
            paid_fen in 0_i64..1_000_000,
            dues in proptest::collection::vec((0_i64..1_000, 0_i64..100_000), 0..5),
        ) {
            prop_assert!(bill_issued(&lines).is_balanced());
            prop_assert!(prepayment_applied(Money::from_fen(paid_fen)).is_balanced());
            let bills: Vec<OpenBill> = dues.iter().enumerate().map(|(i, (fee, principal))| OpenBill {
                bill_no: format!("B{i}"),
                due_on: parse_date("2024-01-01").unwrap(),
                late_fee_due: Money::from_fen(*fee),
                principal_due: Money::from_fen(*principal),
            }).collect();
            let entry = payment_received(Ledger::CounterCash, &allocate(Money::from_fen(paid_fen), &bills));
            prop_assert!(entry.is_balanced());
            prop_assert_eq!(entry.total_debits(), Money::from_fen(paid_fen));
            prop_assert!(entry.postings.iter().all(|p| p.debit.is_zero() != p.credit.is_zero()));
            let undone = reversal(PAYMENT_REVERSED, &entry);
            prop_assert!(undone.is_balanced());
            for ledger in Ledger::ALL {
                let net = |e: &JournalEntry| e.postings.iter().filter(|p| p.ledger == ledger)
                    .map(|p| p.debit - p.credit).sum::<Money>();
                prop_assert_eq!(net(&entry) + net(&undone), Money::ZERO);
            }
        }
    }
}
