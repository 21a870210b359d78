//! Refunds. Only prepayment is refunded, on request and only with no arrears (domain.md 5):
//! the refund takes the money out of the account's prepayment and the order's refundable
//! amount in one committed transaction *before* the gateway is called, so a crash can never
//! pay out money the books still show; a definite refusal puts it back, an inconclusive
//! answer leaves the refund PENDING for a retry with the same refund number.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::gateways::Channel;
use super::payments::find_payment;
use super::settlement::{
    PARTIALLY_REFUNDED, PaymentChannel, REFUNDED, SUCCEEDED, lock_account, write_entry,
};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{bill, payment, refund};
use crate::db::queries;
use crate::domain::journal::{JournalEntry, Ledger, Posting};
use crate::domain::money::Money;
use crate::gateway::beijing::beijing_date;
use crate::gateway::error::GatewayError;
use crate::gateway::wechat::resource::RefundStatus;

pub const REFUND_PENDING: &str = "PENDING";
pub const REFUND_SUCCEEDED: &str = "SUCCEEDED";
pub const REFUND_FAILED: &str = "FAILED";
const REASON_LEN_MAX: usize = 80;

#[derive(Debug, Clone)]
pub struct RefundView {
    pub refund: refund::Model,
    pub out_trade_no: String,
}

impl App {
    pub async fn refund_payment(
        &self,
        out_trade_no: &str,
        amount: &str,
        reason: &str,
        refund_no: &str,
    ) -> AppResult<RefundView> {
        let amount =
            Money::parse_non_negative(amount).map_err(|e| AppError::invalid("amount", e))?;
        if !amount.is_positive() {
            return Err(AppError::invalid("amount", "must be positive"));
        }
        let reason = validate::text("reason", reason, REASON_LEN_MAX)?;
        let refund_no = validate::identifier("refund_no", refund_no)?;
        let order = find_payment(self, out_trade_no).await?;
        super::counter_refunds::refuse_counter_payment(&order)?;
        if let Some(existing) = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(&refund_no))
            .one(&self.db)
            .await?
        {
            if existing.payment_id != order.id || existing.amount_fen != amount.to_fen() {
                return Err(AppError::AlreadyExists(format!(
                    "refund_no {refund_no} was already used for a different refund"
                )));
            }
            return self.complete_refund(existing, &order).await;
        }
        let pending = self
            .reserve_refund(&order, amount, &reason, &refund_no)
            .await?;
        self.complete_refund(pending, &order).await
    }

    /// Takes the amount out of prepayment and the order, and records the refund as PENDING.
    async fn reserve_refund(
        &self,
        order: &payment::Model,
        amount: Money,
        reason: &str,
        refund_no: &str,
    ) -> AppResult<refund::Model> {
        let now = self.now();
        let txn = crate::db::begin_write(&self.db).await?;
        lock_account(&txn, order.account_id).await?;
        let order = payment::Entity::find_by_id(order.id)
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::NotFound("payment".into()))?;
        if ![SUCCEEDED, PARTIALLY_REFUNDED].contains(&order.status.as_str()) {
            return Err(AppError::FailedPrecondition(format!(
                "payment {} is {}; only a succeeded payment can be refunded",
                order.out_trade_no, order.status
            )));
        }
        let refundable = order.amount_fen - order.refunded_fen;
        if amount.to_fen() > refundable {
            return Err(AppError::FailedPrecondition(format!(
                "only {} of payment {} is left to refund",
                Money::from_fen(refundable),
                order.out_trade_no
            )));
        }
        let arrears = bill::Entity::find()
            .filter(bill::Column::AccountId.eq(order.account_id))
            .filter(
                bill::Column::Status
                    .is_in([super::billing::UNPAID, super::billing::PARTIALLY_PAID]),
            )
            .one(&txn)
            .await?;
        if let Some(open) = arrears {
            return Err(AppError::FailedPrecondition(format!(
                "the account has unpaid bill {}; prepayment is refunded only with no arrears",
                open.bill_no
            )));
        }
        super::refundable::ensure_refundable(&txn, &order, amount).await?;
        let balance = queries::prepayment_balances(&txn, &[order.account_id])
            .await?
            .get(&order.account_id)
            .copied()
            .unwrap_or(Money::ZERO);
        if balance < amount {
            return Err(AppError::FailedPrecondition(format!(
                "the account's prepayment is {balance}; only prepayment can be refunded"
            )));
        }
        let refunded = order.refunded_fen + amount.to_fen();
        let mut update: payment::ActiveModel = order.clone().into();
        update.refunded_fen = Set(refunded);
        update.status = Set(if refunded >= order.amount_fen {
            REFUNDED
        } else {
            PARTIALLY_REFUNDED
        }
        .to_owned());
        update.update(&txn).await?;
        let channel = PaymentChannel::parse(&order.channel)?;
        let entry = refund_entry("REFUND", channel, amount);
        write_entry(
            &txn,
            &format!("REFUND:{refund_no}"),
            &entry,
            Some(order.account_id),
            beijing_date(now),
        )
        .await?;
        let row = refund::ActiveModel {
            refund_no: Set(refund_no.to_owned()),
            payment_id: Set(order.id),
            amount_fen: Set(amount.to_fen()),
            reason: Set(reason.to_owned()),
            status: Set(REFUND_PENDING.to_owned()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            crate::app::error::unique_or(err, || {
                AppError::Conflict(format!(
                    "refund {refund_no} was requested concurrently; retry"
                ))
            })
        })?;
        txn.commit().await?;
        Ok(row)
    }

    /// Asks the gateway to pay a PENDING refund out (same numbers on every retry).
    async fn complete_refund(
        &self,
        row: refund::Model,
        order: &payment::Model,
    ) -> AppResult<RefundView> {
        if row.status != REFUND_PENDING {
            return Ok(RefundView {
                refund: row,
                out_trade_no: order.out_trade_no.clone(),
            });
        }
        let channel = PaymentChannel::parse(&order.channel)?;
        let now = self.now();
        let outcome: Result<(bool, Option<String>), GatewayError> =
            match (channel, &self.gateways.alipay, &self.gateways.wechat) {
                // Cash goes back over the counter: nothing to ask.
                (PaymentChannel::Counter, _, _) => Ok((true, None)),
                (PaymentChannel::Alipay, Channel::Enabled(alipay), _) => alipay
                    .refund(
                        &order.out_trade_no,
                        row.amount_fen,
                        &row.refund_no,
                        &row.reason,
                        now,
                    )
                    .await
                    .map(|r| (r.fund_change, Some(r.trade_no))),
                (PaymentChannel::Wechat, _, Channel::Enabled(wechat)) => wechat
                    .refund(
                        &order.out_trade_no,
                        &row.refund_no,
                        row.amount_fen,
                        order.amount_fen,
                        &row.reason,
                        now,
                    )
                    .await
                    .map(|r| (r.status == RefundStatus::Success, Some(r.refund_id))),
                _ => Err(GatewayError::Unknown(format!(
                    "the {} channel is disabled",
                    channel.as_str()
                ))),
            };
        match outcome {
            Ok((done, gateway_id)) => {
                let mut update: refund::ActiveModel = row.into();
                update.gateway_refund_id = Set(gateway_id);
                if done {
                    update.status = Set(REFUND_SUCCEEDED.to_owned());
                    update.completed_at = Set(Some(now));
                }
                Ok(RefundView {
                    refund: update.update(&self.db).await?,
                    out_trade_no: order.out_trade_no.clone(),
                })
            }
            Err(err) if err.is_unknown() => Err(AppError::Unavailable(format!(
                "the gateway did not confirm refund {} ({err}); retry with the same refund_no",
                row.refund_no
            ))),
            Err(err) => {
                self.release_refund(&row, order).await?;
                Err(AppError::FailedPrecondition(format!(
                    "the gateway refused refund {}: {err}",
                    row.refund_no
                )))
            }
        }
    }

    /// A refused refund: the money goes back to prepayment and the order.
    async fn release_refund(&self, row: &refund::Model, order: &payment::Model) -> AppResult<()> {
        let txn = crate::db::begin_write(&self.db).await?;
        let moved = refund::Entity::update_many()
            .col_expr(
                refund::Column::Status,
                sea_orm::sea_query::Expr::value(REFUND_FAILED),
            )
            .filter(refund::Column::Id.eq(row.id))
            .filter(refund::Column::Status.eq(REFUND_PENDING))
            .exec(&txn)
            .await?;
        if moved.rows_affected == 1 {
            let current = payment::Entity::find_by_id(order.id)
                .one(&txn)
                .await?
                .ok_or_else(|| AppError::NotFound("payment".into()))?;
            let refunded = current.refunded_fen - row.amount_fen;
            let mut update: payment::ActiveModel = current.into();
            update.refunded_fen = Set(refunded);
            update.status = Set(if refunded == 0 {
                SUCCEEDED
            } else {
                PARTIALLY_REFUNDED
            }
            .to_owned());
            update.update(&txn).await?;
            let channel = PaymentChannel::parse(&order.channel)?;
            let mut entry =
                refund_entry("REFUND_REVERSED", channel, Money::from_fen(row.amount_fen));
            for posting in &mut entry.postings {
                std::mem::swap(&mut posting.debit, &mut posting.credit);
            }
            let key = format!("REFUND_REVERSED:{}", row.refund_no);
            write_entry(
                &txn,
                &key,
                &entry,
                Some(order.account_id),
                beijing_date(self.now()),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// A refund notification: confirms a PENDING refund of ours (never creates one).
    pub(crate) async fn confirm_refund(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        refund_no: &str,
    ) -> AppResult<bool> {
        let moved = refund::Entity::update_many()
            .col_expr(
                refund::Column::Status,
                sea_orm::sea_query::Expr::value(REFUND_SUCCEEDED),
            )
            .col_expr(
                refund::Column::CompletedAt,
                sea_orm::sea_query::Expr::value(self.now()),
            )
            .filter(refund::Column::RefundNo.eq(refund_no))
            .filter(refund::Column::Status.eq(REFUND_PENDING))
            .exec(txn)
            .await?;
        Ok(moved.rows_affected == 1)
    }
}

fn refund_entry(kind: &'static str, channel: PaymentChannel, amount: Money) -> JournalEntry {
    JournalEntry {
        kind,
        postings: vec![
            Posting {
                ledger: Ledger::Prepayment,
                debit: amount,
                credit: Money::ZERO,
            },
            Posting {
                ledger: channel.ledger(),
                debit: Money::ZERO,
                credit: amount,
            },
        ],
    }
}
