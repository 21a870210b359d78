//! How much of one payment a refund may still return: the account's prepayment history read
//! from the journal and replayed by [`crate::domain::refundable`], inside the caller's locked
//! refund transaction.
//!
//! Every PREPAYMENT posting of the account is one movement, in the order it was booked; its
//! journal entry key names what moved it: `PAYMENT_RECEIVED:<out_trade_no>` (the part of a
//! payment its bills did not take), `PREPAYMENT_APPLIED:<bill_no>` (prepayment paying a bill),
//! `REFUND:<refund_no>` and `REFUND_REVERSED:<refund_no>` (a refund of the refund's payment and
//! its refusal put back), `PAYMENT_REVERSED:<out_trade_no>`. Any other entry touching
//! prepayment is money the history cannot attribute to a payment: refundable by no online
//! order, and taken from the oldest money when it leaves.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{AppError, AppResult};
use crate::db::entity::{journal_posting, payment, refund};
use crate::domain::journal::{Ledger, PAYMENT_RECEIVED, PAYMENT_REVERSED, PREPAYMENT_APPLIED};
use crate::domain::money::Money;
use crate::domain::refundable::{Movement, Prepayment};

/// Journal kinds of a refund taking prepayment out and of a refused one putting it back.
const REFUND_KIND: &str = "REFUND";
const REFUND_REVERSED_KIND: &str = "REFUND_REVERSED";

/// Refuses (FAILED_PRECONDITION, nothing written) a refund of `amount` to `order` beyond what
/// the order brought that is still unapplied prepayment. The caller holds the account.
pub(crate) async fn ensure_refundable(
    txn: &impl ConnectionTrait,
    order: &payment::Model,
    amount: Money,
) -> AppResult<()> {
    let prepayment = prepayment_by_payment(txn, order.account_id).await?;
    prepayment
        .check_refund(&order.id, amount)
        .map_err(|refused| {
            AppError::FailedPrecondition(format!(
                "only {} of payment {} is refundable (what it brought that is still unapplied \
             prepayment); {} was asked",
                refused.refundable, order.out_trade_no, refused.requested
            ))
        })
}

/// The account's prepayment as lots per payment id.
pub(crate) async fn prepayment_by_payment(
    txn: &impl ConnectionTrait,
    account_id: i64,
) -> AppResult<Prepayment<i64>> {
    let postings: Vec<(String, i64, i64)> = journal_posting::Entity::find()
        .select_only()
        .column(journal_posting::Column::EntryKey)
        .column(journal_posting::Column::DebitFen)
        .column(journal_posting::Column::CreditFen)
        .filter(journal_posting::Column::AccountId.eq(account_id))
        .filter(journal_posting::Column::Ledger.eq(Ledger::Prepayment.as_str()))
        .order_by_asc(journal_posting::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    let payments: HashMap<String, i64> = payment::Entity::find()
        .select_only()
        .column(payment::Column::OutTradeNo)
        .column(payment::Column::Id)
        .filter(payment::Column::AccountId.eq(account_id))
        .into_tuple::<(String, i64)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let refunds: HashMap<String, i64> = refund::Entity::find()
        .select_only()
        .column(refund::Column::RefundNo)
        .column(refund::Column::PaymentId)
        .filter(refund::Column::PaymentId.is_in(payments.values().copied()))
        .into_tuple::<(String, i64)>()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    let mut prepayment = Prepayment::default();
    for (key, debit_fen, credit_fen) in postings {
        prepayment.apply(movement(&key, credit_fen - debit_fen, &payments, &refunds)?);
    }
    Ok(prepayment)
}

/// One posting as a movement: `net_fen` is credit − debit, money in when positive.
fn movement(
    key: &str,
    net_fen: i64,
    payments: &HashMap<String, i64>,
    refunds: &HashMap<String, i64>,
) -> AppResult<Movement<i64>> {
    let (kind, subject) = key.split_once(':').ok_or_else(|| {
        AppError::Database(sea_orm::DbErr::Custom(format!(
            "journal entry key {key:?} names no event"
        )))
    })?;
    let source = match kind {
        PAYMENT_RECEIVED | PAYMENT_REVERSED => payments.get(subject).copied(),
        REFUND_KIND | REFUND_REVERSED_KIND => refunds.get(subject).copied(),
        _ => None,
    };
    let amount = Money::from_fen(net_fen);
    Ok(if kind == PREPAYMENT_APPLIED {
        Movement::Applied { amount: -amount }
    } else if amount.is_negative() {
        Movement::Withdrawn {
            source,
            amount: -amount,
        }
    } else {
        Movement::Credit { source, amount }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_name_the_payment_whose_money_moved() {
        let payments = HashMap::from([("WB1".to_owned(), 1), ("CT-R1".to_owned(), 2)]);
        let refunds = HashMap::from([("RF-1".to_owned(), 1)]);
        let history: Vec<Movement<i64>> = [
            ("PAYMENT_RECEIVED:WB1", 6450),
            ("PAYMENT_RECEIVED:CT-R1", 3550),
            ("PREPAYMENT_APPLIED:B202612-A-1", -3550),
            ("REFUND:RF-1", -1000),
            ("REFUND_REVERSED:RF-1", 1000),
            ("REFUND:RF-1", -1000),
        ]
        .iter()
        .map(|(key, net)| movement(key, *net, &payments, &refunds).unwrap())
        .collect();
        let prepayment = Prepayment::replay(&history);
        assert_eq!(prepayment.unapplied(&1), Money::from_fen(1900));
        assert_eq!(prepayment.unapplied(&2), Money::from_fen(3550));
    }

    #[test]
    fn a_key_without_an_event_is_corrupt() {
        assert!(movement("nonsense", 1, &HashMap::new(), &HashMap::new()).is_err());
    }
}
