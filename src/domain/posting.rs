//! The one posting rule: what money arriving at or leaving an account does to it.
//!
//! Given an account's books (its bills as domain values and its prepayment), a movement of
//! money and the terms in force (the date, late-fee waivers, the late-fee policy), the
//! functions here answer with the whole effect: each touched bill's new paid amounts and
//! state, the allocation (the rows recording how the money was shared), the prepayment
//! movement and the balanced journal entry. Every path that moves money (a notification, the
//! group committer, our own query, a counter payment, reconciliation repair, a reversal)
//! applies one of these effects and computes nothing of its own, so the single and the group
//! path cannot drift apart. Pure: the caller reads the books under the account lock and
//! writes the effect in the same transaction.

use chrono::NaiveDate;
use thiserror::Error;

use super::allocation::{Allocation, OpenBill, allocate};
use super::bill_status::{BillBalance, BillEvent, BillRefusal, transition};
use super::calendar::DateRange;
use super::journal::{JournalEntry, Ledger, PAYMENT_REVERSED, payment_received, reversal};
use super::late_fee::{LateFeePolicy, late_fee};
use super::money::Money;

/// One bill of an account as the posting rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedBill {
    pub bill_no: String,
    pub due_on: NaiveDate,
    pub balance: BillBalance,
}

/// What the rule needs of an account: the bills the movement may touch and the prepayment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountBooks {
    pub bills: Vec<BookedBill>,
    pub prepayment: Money,
}

/// The terms a payment is allocated under on its business date.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    pub on: NaiveDate,
    pub waivers: &'a [DateRange],
    pub late_fee: &'a LateFeePolicy,
}

/// What one movement does to an account; the caller writes exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Each touched bill's number and its new balance, in allocation order.
    pub bills: Vec<(String, BillBalance)>,
    pub allocation: Allocation,
    /// How the prepayment moves (negative: it shrinks).
    pub prepayment_delta: Money,
    pub entry: JournalEntry,
}

/// Why the rule refused a movement; nothing is to be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PostingRefusal {
    #[error("an amount of {0} cannot be posted")]
    NotPositive(Money),
    #[error("bill {bill_no}: {refusal}")]
    Bill {
        bill_no: String,
        refusal: BillRefusal,
    },
    #[error("bill {0} is not among the account's bills")]
    UnknownBill(String),
    #[error("{needed} went to prepayment but the account holds only {held}")]
    PrepaymentShort { held: Money, needed: Money },
}

/// What an open bill owes on `terms.on`: its principal and its late fee so far, net of what
/// was paid of each.
pub fn owed(bill: &BookedBill, terms: &Terms<'_>) -> OpenBill {
    let principal_due = bill.balance.principal_due();
    let fee = late_fee(
        principal_due,
        bill.due_on,
        terms.on,
        terms.waivers,
        terms.late_fee,
    );
    let fee_due = fee - bill.balance.late_fee_paid;
    OpenBill {
        bill_no: bill.bill_no.clone(),
        due_on: bill.due_on,
        late_fee_due: fee_due.max(Money::ZERO),
        principal_due,
    }
}

/// Money arriving on `channel`: shared over the open bills (oldest first, late fee before
/// principal, domain.md 5), the rest to prepayment.
pub fn receive(
    books: &AccountBooks,
    amount: Money,
    channel: Ledger,
    terms: &Terms<'_>,
) -> Result<Effect, PostingRefusal> {
    if !amount.is_positive() {
        return Err(PostingRefusal::NotPositive(amount));
    }
    let open: Vec<OpenBill> = books
        .bills
        .iter()
        .filter(|b| b.balance.status.is_open())
        .map(|b| owed(b, terms))
        .collect();
    let allocation = allocate(amount, &open);
    let bills = moved_bills(books, &allocation, |principal, late_fee| BillEvent::Pay {
        principal,
        late_fee,
    })?;
    Ok(Effect {
        bills,
        prepayment_delta: allocation.to_prepayment,
        entry: payment_received(channel, &allocation),
        allocation,
    })
}

/// Money leaving: a posted payment on `channel` taken back (the gateway never took it). Each
/// bill gives back its share, and the part that went to prepayment must still be there.
pub fn take_back(
    books: &AccountBooks,
    allocation: &Allocation,
    channel: Ledger,
) -> Result<Effect, PostingRefusal> {
    if books.prepayment < allocation.to_prepayment {
        return Err(PostingRefusal::PrepaymentShort {
            held: books.prepayment,
            needed: allocation.to_prepayment,
        });
    }
    let bills = moved_bills(books, allocation, |principal, late_fee| BillEvent::Unpay {
        principal,
        late_fee,
    })?;
    Ok(Effect {
        bills,
        prepayment_delta: -allocation.to_prepayment,
        entry: reversal(PAYMENT_REVERSED, &payment_received(channel, allocation)),
        allocation: allocation.clone(),
    })
}

fn moved_bills(
    books: &AccountBooks,
    allocation: &Allocation,
    event: impl Fn(Money, Money) -> BillEvent,
) -> Result<Vec<(String, BillBalance)>, PostingRefusal> {
    allocation
        .bills
        .iter()
        .map(|part| {
            let bill = books
                .bills
                .iter()
                .find(|b| b.bill_no == part.bill_no)
                .ok_or_else(|| PostingRefusal::UnknownBill(part.bill_no.clone()))?;
            transition(&bill.balance, event(part.principal, part.late_fee))
                .map(|after| (part.bill_no.clone(), after))
                .map_err(|refusal| PostingRefusal::Bill {
                    bill_no: part.bill_no.clone(),
                    refusal,
                })
        })
        .collect()
}

impl AccountBooks {
    /// The books after `effect`, so the next movement on the account (in the same batch)
    /// sees it.
    pub fn apply(&mut self, effect: &Effect) {
        for (bill_no, after) in &effect.bills {
            if let Some(bill) = self.bills.iter_mut().find(|b| &b.bill_no == bill_no) {
                bill.balance = *after;
            }
        }
        self.prepayment += effect.prepayment_delta;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::bill_status::BillStatus;
    use crate::domain::calendar::parse_date;
    use proptest::prelude::*;

    fn m(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn booked(no: &str, due: &str, total: i64, paid: i64) -> BookedBill {
        let (total, paid) = (Money::from_fen(total), Money::from_fen(paid));
        BookedBill {
            bill_no: no.into(),
            due_on: parse_date(due).unwrap(),
            balance: BillBalance {
                total,
                principal_paid: paid,
                late_fee_paid: Money::ZERO,
                status: BillStatus::of(total, paid, Money::ZERO),
            },
        }
    }

    fn terms<'a>(policy: &'a LateFeePolicy, on: &str) -> Terms<'a> {
        Terms {
            on: parse_date(on).unwrap(),
            waivers: &[],
            late_fee: policy,
        }
    }

    #[test]
    fn a_payment_pays_the_oldest_bill_with_its_fee_and_the_rest_is_prepayment() {
        let books = AccountBooks {
            bills: vec![
                booked("B2", "2025-02-15", 3_550, 0),
                booked("B1", "2025-01-15", 3_550, 1_000),
            ],
            prepayment: Money::ZERO,
        };
        let policy = LateFeePolicy::default();
        // B1 is 10 days late on 2025-01-26: 25.50 * 0.003 * 10 = 0.765 -> 0.76 (truncated).
        let effect = receive(
            &books,
            m("50.00"),
            Ledger::CounterCash,
            &terms(&policy, "2025-01-26"),
        )
        .unwrap();
        let shown: Vec<(&str, BillStatus, i64, i64)> = effect
            .bills
            .iter()
            .map(|(no, b)| {
                (
                    no.as_str(),
                    b.status,
                    b.principal_paid.to_fen(),
                    b.late_fee_paid.to_fen(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("B1", BillStatus::Paid, 3_550, 76),
                ("B2", BillStatus::PartiallyPaid, 2_374, 0)
            ]
        );
        assert_eq!(effect.prepayment_delta, Money::ZERO);
        assert!(effect.entry.is_balanced());
    }

    #[test]
    fn a_reversal_needs_the_prepayment_it_made_and_gives_back_each_share() {
        let books = AccountBooks {
            bills: vec![booked("B1", "2025-01-15", 3_550, 0)],
            prepayment: Money::ZERO,
        };
        let policy = LateFeePolicy::default();
        let paid = receive(
            &books,
            m("100.00"),
            Ledger::GatewayClearing,
            &terms(&policy, "2025-01-10"),
        )
        .unwrap();
        let mut after = books.clone();
        after.apply(&paid);
        assert_eq!(after.prepayment, m("64.50"));
        let back = take_back(&after, &paid.allocation, Ledger::GatewayClearing).unwrap();
        after.apply(&back);
        assert_eq!(after, books, "a reversal leaves the books as they were");
        let spent = AccountBooks {
            prepayment: m("64.49"),
            ..after.clone()
        };
        assert_eq!(
            take_back(&spent, &paid.allocation, Ledger::GatewayClearing),
            Err(PostingRefusal::PrepaymentShort {
                held: m("64.49"),
                needed: m("64.50")
            })
        );
    }

    fn ledger_net(entry: &JournalEntry, ledger: Ledger) -> Money {
        entry
            .postings
            .iter()
            .filter(|p| p.ledger == ledger)
            .map(|p| p.credit - p.debit)
            .sum()
    }

    proptest! {
        /// Random payments and reversals on a few bills: no fen is created or lost, the
        /// prepayment never goes below zero, no bill is paid above its total, and every
        /// entry balances and moves the prepayment ledger exactly as the effect says.
        #[test]
        fn posting_never_creates_or_loses_a_fen(
            totals in prop::collection::vec(0_i64..20_000, 0..4),
            moves in prop::collection::vec((0_i64..30_000, any::<bool>(), 0_u32..90), 1..12),
        ) {
            let policy = LateFeePolicy::default();
            let mut books = AccountBooks {
                bills: totals
                    .iter()
                    .enumerate()
                    .map(|(i, t)| booked(&format!("B{i}"), "2025-01-15", *t, 0))
                    .collect(),
                prepayment: Money::ZERO,
            };
            let mut received: Vec<(Money, Allocation)> = Vec::new();
            for (fen, reverse, days) in moves {
                let on = parse_date("2025-01-01").unwrap() + chrono::Days::new(u64::from(days));
                let terms = Terms { on, waivers: &[], late_fee: &policy };
                let effect = if reverse && !received.is_empty() {
                    let (_, allocation) = received.remove(0);
                    match take_back(&books, &allocation, Ledger::CounterCash) {
                        Ok(effect) => effect,
                        Err(PostingRefusal::PrepaymentShort { .. }) => continue,
                        Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
                    }
                } else {
                    match receive(&books, Money::from_fen(fen), Ledger::CounterCash, &terms) {
                        Ok(effect) => {
                            prop_assert_eq!(effect.allocation.total(), Money::from_fen(fen));
                            received.push((Money::from_fen(fen), effect.allocation.clone()));
                            effect
                        }
                        Err(PostingRefusal::NotPositive(_)) => continue,
                        Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
                    }
                };
                prop_assert!(effect.entry.is_balanced());
                prop_assert_eq!(ledger_net(&effect.entry, Ledger::Prepayment), effect.prepayment_delta);
                books.apply(&effect);
                prop_assert!(!books.prepayment.is_negative());
                for bill in &books.bills {
                    prop_assert!(bill.balance.principal_paid <= bill.balance.total);
                    prop_assert!(!bill.balance.principal_paid.is_negative());
                }
            }
            // What stays received is on the bills or in prepayment, fen for fen.
            let kept: Money = received.iter().map(|(amount, _)| *amount).sum();
            let on_bills: Money = books
                .bills
                .iter()
                .map(|b| b.balance.principal_paid + b.balance.late_fee_paid)
                .sum();
            prop_assert_eq!(kept, on_bills + books.prepayment);
        }
    }
}
