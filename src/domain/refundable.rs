//! Whose money an account's prepayment is: "refunds return money to where it came from"
//! (domain.md 5) needs to know, for each payment, how much of what it brought is still sitting
//! unapplied in prepayment.
//!
//! Prepayment is account-wide, but every fen of it arrived with one payment (the part of the
//! payment its bills did not take) and leaves by a bill application, a refund or a reversal.
//! Replaying that history in order gives the account's prepayment as *lots*, one per arrival,
//! each naming its source:
//! - money arriving (a payment's remainder, a refused refund put back) is a new lot of its source;
//! - a bill application consumes the lots first in, first out: the oldest money pays first;
//! - a refund or reversal of payment X consumes X's own lots first, and only what X no longer
//!   holds from the oldest other lots (a reversal takes back everything X left in prepayment,
//!   even when a bill already used X's money and another payer's stands in for it).
//!
//! What a lot of X still holds is what an online refund of X may return: never money another
//! payer brought, never money a bill already used. Money leaving beyond every lot (a history
//! that went below zero) is carried as `overdrawn` and repaid first by the next arrival, so the
//! lots minus the overdraft always equal the journal's balance: no fen is created or lost.
//! Pure: the history comes in as values, the caller reads it from the journal.

use thiserror::Error;

use super::money::Money;

/// One movement of an account's prepayment, in the order it was booked. `S` names a source
/// (a payment); `None` is money the history cannot attribute to a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Movement<S> {
    /// Money of `source` entering prepayment.
    Credit { source: Option<S>, amount: Money },
    /// Prepayment applied to a bill: the oldest lots first.
    Applied { amount: Money },
    /// Money leaving on account of `source` (its refund or reversal): its own lots first.
    Withdrawn { source: Option<S>, amount: Money },
}

/// Money of one source still in prepayment, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot<S> {
    pub source: Option<S>,
    pub amount: Money,
}

/// An account's prepayment split by where its money came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepayment<S> {
    lots: Vec<Lot<S>>,
    overdrawn: Money,
}

/// Why a refund of one source was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "only {refundable} of what this payment brought is unapplied prepayment; {requested} was asked"
)]
pub struct NotRefundable {
    pub requested: Money,
    pub refundable: Money,
}

impl<S> Default for Prepayment<S> {
    fn default() -> Self {
        Prepayment {
            lots: Vec::new(),
            overdrawn: Money::ZERO,
        }
    }
}

impl<S: PartialEq + Clone> Prepayment<S> {
    /// Replays `history`, oldest first.
    pub fn replay<'a>(history: impl IntoIterator<Item = &'a Movement<S>>) -> Self
    where
        S: 'a,
    {
        let mut prepayment = Prepayment::default();
        for movement in history {
            prepayment.apply(movement.clone());
        }
        prepayment
    }

    /// Books one movement. A negative amount is the opposite movement of the same source.
    pub fn apply(&mut self, movement: Movement<S>) {
        match movement {
            Movement::Credit { source, amount } if amount.is_negative() => {
                self.withdraw(source.as_ref(), -amount)
            }
            Movement::Credit { source, amount } => self.credit(source, amount),
            Movement::Applied { amount } if amount.is_negative() => self.credit(None, -amount),
            Movement::Applied { amount } => self.withdraw(None, amount),
            Movement::Withdrawn { source, amount } if amount.is_negative() => {
                self.credit(source, -amount)
            }
            Movement::Withdrawn { source, amount } => self.withdraw(source.as_ref(), amount),
        }
    }

    /// What `source` brought that is still unapplied.
    pub fn unapplied(&self, source: &S) -> Money {
        self.lots
            .iter()
            .filter(|lot| lot.source.as_ref() == Some(source))
            .map(|lot| lot.amount)
            .sum()
    }

    /// Refuses a refund of `amount` to `source` beyond what it still holds.
    pub fn check_refund(&self, source: &S, amount: Money) -> Result<(), NotRefundable> {
        let refundable = self.unapplied(source);
        if amount > refundable {
            return Err(NotRefundable {
                requested: amount,
                refundable,
            });
        }
        Ok(())
    }

    /// The prepayment balance the history adds up to (negative only if it was overdrawn).
    pub fn balance(&self) -> Money {
        self.lots.iter().map(|lot| lot.amount).sum::<Money>() - self.overdrawn
    }

    pub fn lots(&self) -> &[Lot<S>] {
        &self.lots
    }

    /// Money that left beyond every lot and no later arrival has made good yet.
    pub fn overdrawn(&self) -> Money {
        self.overdrawn
    }

    fn credit(&mut self, source: Option<S>, amount: Money) {
        let repaid = amount.min(self.overdrawn);
        self.overdrawn -= repaid;
        let rest = amount - repaid;
        if rest.is_positive() {
            self.lots.push(Lot {
                source,
                amount: rest,
            });
        }
    }

    fn withdraw(&mut self, source: Option<&S>, amount: Money) {
        let mut left = amount;
        if let Some(source) = source {
            left = take(&mut self.lots, left, |lot| {
                lot.source.as_ref() == Some(source)
            });
        }
        left = take(&mut self.lots, left, |_| true);
        self.overdrawn += left;
    }
}

/// Takes up to `amount` from the lots `pick` selects, oldest first; empty lots are dropped.
/// Returns what could not be taken.
fn take<S>(lots: &mut Vec<Lot<S>>, amount: Money, pick: impl Fn(&Lot<S>) -> bool) -> Money {
    let mut left = amount;
    for lot in lots.iter_mut().filter(|lot| pick(lot)) {
        if !left.is_positive() {
            break;
        }
        let taken = left.min(lot.amount);
        lot.amount -= taken;
        left -= taken;
    }
    lots.retain(|lot| lot.amount.is_positive());
    left
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn credit(source: &'static str, amount: &str) -> Movement<&'static str> {
        Movement::Credit {
            source: Some(source),
            amount: m(amount),
        }
    }

    fn applied(amount: &str) -> Movement<&'static str> {
        Movement::Applied { amount: m(amount) }
    }

    fn withdrawn(source: &'static str, amount: &str) -> Movement<&'static str> {
        Movement::Withdrawn {
            source: Some(source),
            amount: m(amount),
        }
    }

    #[test]
    fn an_online_payment_cannot_refund_cash_another_payer_brought() {
        // Defect 4: the Alipay order paid the bill (nothing to prepayment); 35.50 cash at the
        // counter is the whole prepayment.
        let prepayment = Prepayment::replay(&[credit("counter", "35.50")]);
        assert_eq!(prepayment.unapplied(&"alipay"), Money::ZERO);
        assert_eq!(
            prepayment.check_refund(&"alipay", m("35.50")),
            Err(NotRefundable {
                requested: m("35.50"),
                refundable: Money::ZERO
            })
        );
        assert_eq!(prepayment.check_refund(&"counter", m("35.50")), Ok(()));
    }

    #[test]
    fn bills_consume_the_oldest_money_first() {
        let prepayment = Prepayment::replay(&[
            credit("first", "30.00"),
            credit("second", "50.00"),
            applied("35.50"),
        ]);
        assert_eq!(prepayment.unapplied(&"first"), Money::ZERO);
        assert_eq!(prepayment.unapplied(&"second"), m("44.50"));
        assert_eq!(prepayment.balance(), m("44.50"));
    }

    #[test]
    fn a_refund_takes_its_own_lot_and_a_refused_one_puts_it_back() {
        let mut prepayment =
            Prepayment::replay(&[credit("first", "30.00"), credit("second", "50.00")]);
        prepayment.apply(withdrawn("second", "20.00"));
        assert_eq!(prepayment.unapplied(&"first"), m("30.00"));
        assert_eq!(prepayment.unapplied(&"second"), m("30.00"));
        prepayment.apply(credit("second", "20.00"));
        assert_eq!(prepayment.unapplied(&"second"), m("50.00"));
    }

    #[test]
    fn a_reversal_beyond_its_lot_takes_the_oldest_other_money() {
        let prepayment = Prepayment::replay(&[
            credit("first", "30.00"),
            credit("second", "50.00"),
            applied("40.00"),
            // "first" left 30.00 in prepayment and is reversed: all of it comes back out.
            withdrawn("first", "30.00"),
        ]);
        assert_eq!(prepayment.unapplied(&"first"), Money::ZERO);
        assert_eq!(prepayment.unapplied(&"second"), m("10.00"));
    }

    #[test]
    fn an_overdraft_is_repaid_by_the_next_arrival() {
        let mut prepayment = Prepayment::replay(&[credit("first", "10.00"), applied("15.00")]);
        assert_eq!(
            (prepayment.overdrawn(), prepayment.balance()),
            (m("5.00"), m("-5.00"))
        );
        prepayment.apply(credit("second", "8.00"));
        assert_eq!(prepayment.overdrawn(), Money::ZERO);
        assert_eq!(prepayment.unapplied(&"second"), m("3.00"));
    }

    #[test]
    fn a_negative_amount_is_the_opposite_movement() {
        let prepayment = Prepayment::replay(&[
            credit("first", "10.00"),
            Movement::Credit {
                source: Some("first"),
                amount: m("-4.00"),
            },
        ]);
        assert_eq!(prepayment.unapplied(&"first"), m("6.00"));
    }

    fn arbitrary_history() -> impl Strategy<Value = Vec<Movement<u8>>> {
        let movement = (
            0_u8..3,
            proptest::option::weighted(0.8, 0_u8..4),
            0_i64..20_000,
        )
            .prop_map(|(kind, source, fen)| {
                let amount = Money::from_fen(fen);
                match kind {
                    0 => Movement::Credit { source, amount },
                    1 => Movement::Applied { amount },
                    _ => Movement::Withdrawn { source, amount },
                }
            });
        proptest::collection::vec(movement, 0..40)
    }

    fn net(movement: &Movement<u8>) -> Money {
        match movement {
            Movement::Credit { amount, .. } => *amount,
            Movement::Applied { amount } | Movement::Withdrawn { amount, .. } => -*amount,
        }
    }

    proptest! {
        #[test]
        fn the_lots_add_up_to_the_balance_and_no_fen_is_created_or_lost(history in arbitrary_history()) {
            let mut prepayment = Prepayment::default();
            let mut balance = Money::ZERO;
            let mut ever_negative = false;
            for movement in &history {
                prepayment.apply(movement.clone());
                balance += net(movement);
                ever_negative |= balance.is_negative();
                prop_assert_eq!(prepayment.balance(), balance);
                prop_assert!(prepayment.lots().iter().all(|lot| lot.amount.is_positive()));
                prop_assert!(!prepayment.overdrawn().is_negative());
                if !balance.is_negative() {
                    prop_assert_eq!(prepayment.overdrawn(), Money::ZERO);
                }
            }
            if !ever_negative {
                prop_assert_eq!(prepayment.overdrawn(), Money::ZERO);
            }
            let by_source: Money = (0_u8..4).map(|s| prepayment.unapplied(&s)).sum::<Money>()
                + prepayment.lots().iter().filter(|l| l.source.is_none()).map(|l| l.amount).sum::<Money>();
            prop_assert_eq!(by_source - prepayment.overdrawn(), balance);
        }

        #[test]
        fn a_refund_within_its_lot_touches_no_other_source(history in arbitrary_history(), source in 0_u8..4) {
            let before = Prepayment::replay(&history);
            let refundable = before.unapplied(&source);
            prop_assert!(before.check_refund(&source, refundable).is_ok());
            prop_assert!(before.check_refund(&source, refundable + Money::from_fen(1)).is_err());
            let mut after = before.clone();
            after.apply(Movement::Withdrawn { source: Some(source), amount: refundable });
            prop_assert_eq!(after.unapplied(&source), Money::ZERO);
            for other in (0_u8..4).filter(|other| *other != source) {
                prop_assert_eq!(after.unapplied(&other), before.unapplied(&other));
            }
        }

        #[test]
        fn a_bill_application_empties_older_lots_before_touching_newer_ones(history in arbitrary_history(), fen in 0_i64..30_000) {
            let before = Prepayment::replay(&history);
            let mut after = before.clone();
            after.apply(Movement::Applied { amount: Money::from_fen(fen) });
            // What remains is a suffix of the lots: only the oldest surviving one may be cut.
            let kept = after.lots().len();
            let skipped = before.lots().len() - kept;
            for (i, lot) in after.lots().iter().enumerate() {
                let original = &before.lots()[skipped + i];
                prop_assert_eq!(&lot.source, &original.source);
                if i > 0 {
                    prop_assert_eq!(lot.amount, original.amount);
                }
            }
        }
    }
}
