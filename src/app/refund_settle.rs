//! Settling refunds: applying what the gateway said (a refund answer, a refund query, a
//! verified notification) to a refund row through the one transition function of the refund
//! aggregate, and the refund sweeper that asks about PENDING refunds nobody else finishes.
//!
//! Every change of a refund's state happens in one write transaction that holds the account
//! (the same lock the refund was reserved under) and re-reads the refund inside it, so two
//! replicas, a sweeper and a notification can never settle one refund two ways: the second
//! one sees the first one's state and the transition function says what that means
//! (usually nothing; for a refund we FAILED that the gateway now says it paid, a record for
//! finance, because the money left twice).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::refunds::{RefundCall, corrupt, refund_entry, refund_state};
use super::settlement::write_entry;
use super::settlement::{PARTIALLY_REFUNDED, REFUNDED, SUCCEEDED, lock_account};
use super::{App, AppError, AppResult};
use crate::db::entity::{payment, refund, suspense_item};
use crate::domain::evidence::{NotificationOutcome, SuspenseReason};
use crate::domain::money::Money;
use crate::domain::refund::{RefundEvent, RefundState, RefundStep, transition};
use crate::gateway::beijing::beijing_date;
use crate::gateway::refund::RefundAnswer;

/// Inconclusive answers after which a sweep round stops: the gateway is probably down, and
/// the loop backs off instead of asking about every pending refund.
pub const REFUND_SWEEP_INCONCLUSIVE_MAX: u64 = 3;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The refund moved (or stayed) per the transition function.
    Step(RefundStep),
    /// The refund was already settled; the event does not change it.
    AlreadySettled,
    /// No refund of ours has that number.
    NoSuchRefund,
}

/// One round of the refund sweeper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundSweep {
    /// PENDING refunds asked about.
    pub looked_at: u64,
    /// Of those, now SUCCEEDED or FAILED.
    pub settled: u64,
    /// Of those, the gateway did not answer conclusively.
    pub inconclusive: u64,
    /// The highest refund id looked at (the next round may start after it).
    pub last_id: Option<i64>,
}

impl App {
    /// Applies a gateway answer about `row` in its own transaction; returns the row as it is
    /// afterwards.
    pub(crate) async fn apply_refund_answer(
        &self,
        row: &refund::Model,
        answer: &RefundAnswer,
    ) -> AppResult<refund::Model> {
        let txn = crate::db::begin_write(&self.db).await?;
        let applied = self
            .apply_refund_event(
                &txn,
                &row.refund_no,
                answer.event(),
                answer.gateway_refund_id(),
            )
            .await?;
        if let RefundAnswer::NeedsAttention { why } | RefundAnswer::Unknown { why } = answer {
            tracing::warn!(refund_no = %row.refund_no, ?applied, why, "refund not settled");
        }
        let after = refund::Entity::find_by_id(row.id)
            .one(&txn)
            .await?
            .ok_or_else(|| corrupt(format!("refund {} vanished", row.refund_no)))?;
        txn.commit().await?;
        Ok(after)
    }

    /// The one place a refund's state changes: locks the account, re-reads the refund, asks
    /// the transition function, and writes what it says.
    pub(crate) async fn apply_refund_event(
        &self,
        txn: &impl ConnectionTrait,
        refund_no: &str,
        event: RefundEvent,
        gateway_refund_id: Option<&str>,
    ) -> AppResult<Applied> {
        let Some(found) = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(refund_no))
            .one(txn)
            .await?
        else {
            return Ok(Applied::NoSuchRefund);
        };
        let order = payment::Entity::find_by_id(found.payment_id)
            .one(txn)
            .await?
            .ok_or_else(|| corrupt(format!("refund {refund_no} names no payment")))?;
        lock_account(txn, order.account_id).await?;
        // Re-read under the lock: another writer may have settled it meanwhile.
        let row = refund::Entity::find_by_id(found.id)
            .one(txn)
            .await?
            .ok_or_else(|| corrupt(format!("refund {refund_no} vanished")))?;
        let state = refund_state(&row)?;
        let step = match transition(state, event) {
            Ok(step) => step,
            Err(refusal) => {
                tracing::info!(refund_no, %refusal, "late gateway word about a settled refund");
                return Ok(Applied::AlreadySettled);
            }
        };
        match step {
            RefundStep::Succeed => self.mark_succeeded(txn, &row, gateway_refund_id).await?,
            RefundStep::Fail => self.release_refund(txn, &row, &order).await?,
            RefundStep::MoneyLeftTwice => self.record_paid_after_failure(txn, &row, &order).await?,
            RefundStep::Attention => {
                tracing::error!(
                    refund_no,
                    out_trade_no = %order.out_trade_no,
                    "refund needs a person: the gateway reports it CLOSED, ABNORMAL or of another amount; it stays PENDING"
                );
            }
            RefundStep::AskAgain | RefundStep::Resend | RefundStep::Unchanged => {}
        }
        // The gateway's number, once it gave one (a notification may have settled the
        // refund before the answer that carried it).
        if let (Some(id), None, false) = (
            gateway_refund_id,
            &row.gateway_refund_id,
            step == RefundStep::Succeed,
        ) {
            refund::Entity::update_many()
                .col_expr(refund::Column::GatewayRefundId, Expr::value(id))
                .filter(refund::Column::Id.eq(row.id))
                .exec(txn)
                .await?;
        }
        Ok(Applied::Step(step))
    }

    /// PENDING -> SUCCEEDED, and the payment now shows the refund.
    async fn mark_succeeded(
        &self,
        txn: &impl ConnectionTrait,
        row: &refund::Model,
        gateway_refund_id: Option<&str>,
    ) -> AppResult<()> {
        let mut update = refund::Entity::update_many()
            .col_expr(
                refund::Column::Status,
                Expr::value(RefundState::Succeeded.as_str()),
            )
            .col_expr(refund::Column::CompletedAt, Expr::value(self.now()));
        if let Some(id) = gateway_refund_id {
            update = update.col_expr(refund::Column::GatewayRefundId, Expr::value(id));
        }
        let moved = update
            .filter(refund::Column::Id.eq(row.id))
            .filter(refund::Column::Status.eq(RefundState::Pending.as_str()))
            .exec(txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(AppError::Conflict(format!(
                "refund {} was settled concurrently; retry",
                row.refund_no
            )));
        }
        let current = payment::Entity::find_by_id(row.payment_id)
            .one(txn)
            .await?
            .ok_or_else(|| corrupt(format!("refund {} names no payment", row.refund_no)))?;
        let refunded = current.refunded_fen + row.amount_fen;
        let status = match current.status.as_str() {
            SUCCEEDED | PARTIALLY_REFUNDED | REFUNDED if refunded >= current.amount_fen => REFUNDED,
            SUCCEEDED | PARTIALLY_REFUNDED | REFUNDED => PARTIALLY_REFUNDED,
            other => {
                tracing::error!(
                    refund_no = %row.refund_no,
                    status = other,
                    "refund confirmed for a payment that is no longer refundable; status kept"
                );
                other
            }
        }
        .to_owned();
        let mut update: payment::ActiveModel = current.into();
        update.refunded_fen = Set(refunded);
        update.status = Set(status);
        update.update(txn).await?;
        Ok(())
    }

    /// PENDING -> FAILED after a definitive refusal: the reserved money goes back to
    /// prepayment (the payment never showed the refund).
    async fn release_refund(
        &self,
        txn: &impl ConnectionTrait,
        row: &refund::Model,
        order: &payment::Model,
    ) -> AppResult<()> {
        let moved = refund::Entity::update_many()
            .col_expr(
                refund::Column::Status,
                Expr::value(RefundState::Failed.as_str()),
            )
            .col_expr(refund::Column::CompletedAt, Expr::value(self.now()))
            .filter(refund::Column::Id.eq(row.id))
            .filter(refund::Column::Status.eq(RefundState::Pending.as_str()))
            .exec(txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(AppError::Conflict(format!(
                "refund {} was settled concurrently; retry",
                row.refund_no
            )));
        }
        let channel = super::settlement::stored_channel(&order.channel)?;
        let mut entry = refund_entry("REFUND_REVERSED", channel, Money::from_fen(row.amount_fen));
        for posting in &mut entry.postings {
            std::mem::swap(&mut posting.debit, &mut posting.credit);
        }
        write_entry(
            txn,
            &format!("REFUND_REVERSED:{}", row.refund_no),
            &entry,
            Some(order.account_id),
            beijing_date(self.now()),
        )
        .await
    }

    /// A verified payout of a refund we FAILED (its money already back in prepayment): the
    /// money left twice. Recorded once as a suspense item for finance and logged as an
    /// error; the books are not silently changed.
    async fn record_paid_after_failure(
        &self,
        txn: &impl ConnectionTrait,
        row: &refund::Model,
        order: &payment::Model,
    ) -> AppResult<()> {
        let detail = format!(
            "refund {} of {} was marked FAILED after a definitive refusal and its prepayment \
             restored, but the gateway now reports it paid: the money left twice",
            row.refund_no,
            Money::from_fen(row.amount_fen)
        );
        tracing::error!(
            refund_no = %row.refund_no,
            out_trade_no = %order.out_trade_no,
            amount_fen = row.amount_fen,
            "refund paid after we marked it FAILED: money left twice; raised for finance"
        );
        let recorded = suspense_item::Entity::find()
            .filter(
                suspense_item::Column::Reason.eq(SuspenseReason::RefundPaidAfterFailure.as_str()),
            )
            .filter(suspense_item::Column::OutTradeNo.eq(&order.out_trade_no))
            .filter(suspense_item::Column::Detail.eq(&detail))
            .one(txn)
            .await?;
        if recorded.is_some() {
            return Ok(());
        }
        suspense_item::ActiveModel {
            channel: Set(order.channel.clone()),
            out_trade_no: Set(order.out_trade_no.clone()),
            gateway_trade_no: Set(row.gateway_refund_id.clone().unwrap_or_default()),
            amount_fen: Set(row.amount_fen),
            reason: Set(SuspenseReason::RefundPaidAfterFailure.as_str().to_owned()),
            detail: Set(detail),
            created_at: Set(self.now()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(())
    }

    /// A verified refund notification (`success`: the gateway says it paid; otherwise it
    /// reports CLOSED / ABNORMAL). Never creates a refund. Returns the notification outcome.
    pub(crate) async fn confirm_refund(
        &self,
        txn: &impl ConnectionTrait,
        refund_no: &str,
        success: bool,
    ) -> AppResult<NotificationOutcome> {
        let event = if success {
            RefundEvent::VerifiedSuccess
        } else {
            RefundEvent::NeedsAttention
        };
        Ok(
            match self.apply_refund_event(txn, refund_no, event, None).await? {
                Applied::Step(RefundStep::Succeed) => NotificationOutcome::RefundConfirmed,
                Applied::Step(RefundStep::MoneyLeftTwice) => {
                    NotificationOutcome::RefundPaidAfterFailure
                }
                Applied::Step(RefundStep::Attention) => NotificationOutcome::RefundNotFinal,
                Applied::Step(_) | Applied::AlreadySettled | Applied::NoSuchRefund => {
                    NotificationOutcome::RefundSeen
                }
            },
        )
    }

    /// One round of the refund sweeper from the start (tests drive it directly).
    pub async fn sweep_refunds(&self) -> AppResult<RefundSweep> {
        self.sweep_refunds_after(0).await
    }

    /// One round: queries up to `refund_sweep_batch_max` PENDING refunds older than
    /// `refund_query_after_s` with an id above `after_id`, in id order; a refund the gateway
    /// has no record of is sent again with the same number. Stops early after
    /// [`REFUND_SWEEP_INCONCLUSIVE_MAX`] inconclusive answers. Safe on several replicas:
    /// each answer is applied under the account lock (see the module docs).
    pub async fn sweep_refunds_after(&self, after_id: i64) -> AppResult<RefundSweep> {
        let age = chrono::Duration::seconds(
            i64::try_from(self.payments.refund_query_after_s).unwrap_or(i64::MAX / 1000),
        );
        let stale_before = self.now() - age;
        let rows = refund::Entity::find()
            .filter(refund::Column::Status.eq(RefundState::Pending.as_str()))
            .filter(refund::Column::CreatedAt.lte(stale_before))
            .filter(refund::Column::Id.gt(after_id))
            .order_by_asc(refund::Column::Id)
            .limit(self.payments.refund_sweep_batch_max)
            .all(&self.db)
            .await?;
        let mut sweep = RefundSweep::default();
        for row in rows {
            sweep.looked_at += 1;
            sweep.last_id = Some(row.id);
            let (after, inconclusive) = self.sweep_one(&row).await?;
            if refund_state(&after)? != RefundState::Pending {
                sweep.settled += 1;
            }
            if inconclusive {
                sweep.inconclusive += 1;
                if sweep.inconclusive >= REFUND_SWEEP_INCONCLUSIVE_MAX {
                    break;
                }
            }
        }
        Ok(sweep)
    }

    /// Queries one PENDING refund (and resends it when the gateway has no record of it), and
    /// applies the answer. Returns the row afterwards and whether the gateway was silent.
    async fn sweep_one(&self, row: &refund::Model) -> AppResult<(refund::Model, bool)> {
        let order = payment::Entity::find_by_id(row.payment_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| corrupt(format!("refund {} names no payment", row.refund_no)))?;
        let mut answer = self.ask_gateway(row, &order, RefundCall::Query).await;
        if answer == RefundAnswer::NotFound {
            tracing::info!(refund_no = %row.refund_no, "gateway has no record of the refund; resending it");
            answer = self.ask_gateway(row, &order, RefundCall::Request).await;
        }
        let inconclusive = matches!(answer, RefundAnswer::Unknown { .. });
        let after = self.apply_refund_answer(row, &answer).await?;
        Ok((after, inconclusive))
    }
}
