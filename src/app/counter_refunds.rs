//! Counter refunds: cash a customer paid at a service hall goes back over the counter, by a
//! cashier, and leaves that cashier's drawer (domain.md 5 and 6).
//!
//! The same rules as an online refund decide how much may go back: only with no arrears, and
//! only what that counter payment brought that is still unapplied prepayment
//! ([`super::refundable`]); the account is held while that is read and the money booked. There
//! is no gateway to wait for: the refund is SUCCEEDED the moment it is booked, with the cashier
//! and the Beijing day on the row so the cashier's close counts it (and none once that cashier
//! has closed the day, which would no longer count it). The caller's refund number
//! makes a retry safe: the same number for the same payment and amount is the same refund,
//! anything else under that number is ALREADY_EXISTS.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::payments::find_payment;
use super::refunds::{REFUND_SUCCEEDED, RefundView, ensure_no_arrears, refundable_payment};
use super::settlement::{PARTIALLY_REFUNDED, PaymentChannel, REFUNDED, lock_account, write_entry};
use super::{App, AppError, AppResult, validate};
use crate::db::entity::{cashier_close, payment, refund};
use crate::domain::journal::{JournalEntry, Ledger, Posting};
use crate::domain::money::Money;
use crate::gateway::beijing::beijing_date;

const REASON_LEN_MAX: usize = 80;

/// A counter refund as asked, validated.
struct CounterRefund {
    amount: Money,
    reason: String,
    refund_no: String,
    cashier_id: String,
}

impl App {
    pub async fn refund_counter_payment(
        &self,
        out_trade_no: &str,
        amount: &str,
        reason: &str,
        refund_no: &str,
        cashier_id: &str,
    ) -> AppResult<RefundView> {
        let amount =
            Money::parse_non_negative(amount).map_err(|e| AppError::invalid("amount", e))?;
        if !amount.is_positive() {
            return Err(AppError::invalid("amount", "must be positive"));
        }
        let asked = CounterRefund {
            amount,
            reason: validate::text("reason", reason, REASON_LEN_MAX)?,
            refund_no: validate::identifier("refund_no", refund_no)?,
            cashier_id: validate::identifier("cashier_id", cashier_id)?,
        };
        let order = find_payment(self, out_trade_no).await?;
        if order.channel != PaymentChannel::Counter.as_str() {
            return Err(AppError::FailedPrecondition(format!(
                "payment {} was made through {}: refund it with RefundPayment",
                order.out_trade_no, order.channel
            )));
        }
        if let Some(existing) = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(&asked.refund_no))
            .one(&self.db)
            .await?
        {
            return same_refund(existing, &order, &asked);
        }
        let row = self.book_counter_refund(&order, &asked).await?;
        Ok(RefundView {
            refund: row,
            out_trade_no: order.out_trade_no,
        })
    }

    /// Takes the amount out of prepayment and the order and records the refund as paid, in one
    /// transaction holding the account.
    async fn book_counter_refund(
        &self,
        order: &payment::Model,
        asked: &CounterRefund,
    ) -> AppResult<refund::Model> {
        let now = self.now();
        let today = beijing_date(now);
        let txn = crate::db::begin_write(&self.db).await?;
        lock_account(&txn, order.account_id).await?;
        let order = refundable_payment(&txn, order.id).await?;
        ensure_not_closed(&txn, &asked.cashier_id, today).await?;
        ensure_no_arrears(&txn, order.account_id).await?;
        super::refundable::ensure_refundable(&txn, &order, asked.amount).await?;
        let refunded = order.refunded_fen + asked.amount.to_fen();
        let mut update: payment::ActiveModel = order.clone().into();
        update.refunded_fen = Set(refunded);
        update.status = Set(if refunded >= order.amount_fen {
            REFUNDED
        } else {
            PARTIALLY_REFUNDED
        }
        .to_owned());
        update.update(&txn).await?;
        write_entry(
            &txn,
            &format!("REFUND:{}", asked.refund_no),
            &cash_refunded(asked.amount),
            Some(order.account_id),
            today,
        )
        .await?;
        let row = refund::ActiveModel {
            refund_no: Set(asked.refund_no.clone()),
            payment_id: Set(order.id),
            amount_fen: Set(asked.amount.to_fen()),
            reason: Set(asked.reason.clone()),
            status: Set(REFUND_SUCCEEDED.to_owned()),
            created_at: Set(now),
            completed_at: Set(Some(now)),
            cashier_id: Set(Some(asked.cashier_id.clone())),
            business_date: Set(Some(today)),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            crate::app::error::unique_or(err, || {
                AppError::Conflict(format!(
                    "refund {} was requested concurrently; retry",
                    asked.refund_no
                ))
            })
        })?;
        txn.commit().await?;
        Ok(row)
    }
}

/// RefundPayment is for money a gateway holds; cash is refunded at the counter, by a cashier.
/// Called before anything is written.
pub(crate) fn refuse_counter_payment(order: &payment::Model) -> AppResult<()> {
    if order.channel == PaymentChannel::Counter.as_str() {
        return Err(AppError::FailedPrecondition(format!(
            "payment {} was paid in cash at the counter: use RefundCounterPayment, \
             so the cashier who pays it out is recorded",
            order.out_trade_no
        )));
    }
    Ok(())
}

/// A refund number already used: the same refund again, or a different one under that number.
fn same_refund(
    existing: refund::Model,
    order: &payment::Model,
    asked: &CounterRefund,
) -> AppResult<RefundView> {
    if existing.payment_id != order.id || existing.amount_fen != asked.amount.to_fen() {
        return Err(AppError::AlreadyExists(format!(
            "refund_no {} was already used for a different refund",
            asked.refund_no
        )));
    }
    Ok(RefundView {
        refund: existing,
        out_trade_no: order.out_trade_no.clone(),
    })
}

/// Cash cannot leave a drawer whose day is already closed: the close would no longer count it.
async fn ensure_not_closed(
    txn: &impl sea_orm::ConnectionTrait,
    cashier_id: &str,
    today: chrono::NaiveDate,
) -> AppResult<()> {
    let closed = cashier_close::Entity::find()
        .filter(cashier_close::Column::CashierId.eq(cashier_id))
        .filter(cashier_close::Column::BusinessDate.eq(today))
        .one(txn)
        .await?;
    match closed {
        Some(_) => Err(AppError::FailedPrecondition(format!(
            "cashier {cashier_id} already closed {today}; another cashier pays the refund out"
        ))),
        None => Ok(()),
    }
}

/// Dr Prepayment, Cr CounterCash: the cash left the drawer.
fn cash_refunded(amount: Money) -> JournalEntry {
    JournalEntry {
        kind: "REFUND",
        postings: vec![
            Posting {
                ledger: Ledger::Prepayment,
                debit: amount,
                credit: Money::ZERO,
            },
            Posting {
                ledger: Ledger::CounterCash,
                debit: Money::ZERO,
                credit: amount,
            },
        ],
    }
}
