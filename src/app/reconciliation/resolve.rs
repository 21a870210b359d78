//! Finance's side of reconciliation: resolving a discrepancy with an action (every action is
//! appended to `discrepancy_actions` and never edited), and the cashiers' daily close (扎帐),
//! which records over (长款) or short (短款) cash without touching any customer account.
//!
//! A resolution is decided by the discrepancy's transition function and claims the item before
//! anything moves: POST, REVERSE and recorded decisions claim and act in one transaction (the
//! gateway is asked first, outside it); a gateway REFUND commits its claim first (`claim`).

use chrono::NaiveDate;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::claim::{Claim, append_audit};
use super::{corrupt, refused};
use crate::app::reversal::reverse_payment;
use crate::app::settlement::{
    PARTIALLY_REFUNDED, PaidEvidence, PaymentChannel, REFUNDED, SUCCEEDED, SettleOutcome, settle,
};
use crate::app::{App, AppError, AppResult, validate};
use crate::db::entity::{
    cashier_close, discrepancy, discrepancy_action, payment, reconciliation_run, refund,
};
use crate::domain::cashier::CloseOutcome;
use crate::domain::discrepancy::{Action, Class, Effect, Event, State, transition};
use crate::domain::money::Money;
use crate::domain::reconcile::Movement;

/// Bound on an operator's note.
const NOTE_CHARS_MAX: usize = 2_000;

/// A caller's action name.
fn parse_action(text: &str) -> AppResult<Action> {
    Action::parse(text).map_err(|_| {
        AppError::invalid(
            "action",
            format!("{text:?} is not POST, REVERSE, REFUND, WRITE_OFF or EXPLAIN"),
        )
    })
}

/// What a claim that acts in the claiming transaction does there.
enum InClaim {
    Post(PaymentChannel, PaidEvidence),
    Reverse,
    /// Nothing moves; the outcome goes into the note.
    Record(Option<&'static str>),
}

/// One resolution request, validated.
pub(super) struct Request {
    pub(super) row: discrepancy::Model,
    pub(super) action: Action,
    pub(super) operator: String,
    pub(super) note: String,
}

/// A recorded close and what it found.
#[derive(Debug, Clone)]
pub struct CashierClose {
    pub close: cashier_close::Model,
}

impl CashierClose {
    /// 长款 (over), 短款 (short) or 平 (balanced).
    pub fn outcome(&self) -> CloseOutcome {
        CloseOutcome::of(Money::from_fen(self.close.difference_fen))
    }
}

impl App {
    /// Resolves a discrepancy with `action`, claim first: the item's conditional move out of
    /// OPEN/HELD (with its audit row) is what lets a resolution act, so of two concurrent
    /// ones exactly one does. POST, REVERSE and recorded decisions claim and act in one
    /// transaction; a gateway REFUND commits its claim (RESOLVING) before any money moves.
    pub async fn resolve_discrepancy(
        &self,
        discrepancy_id: i64,
        action: &str,
        note: &str,
        operator: &str,
    ) -> AppResult<discrepancy::Model> {
        let action = parse_action(action)?;
        let operator = validate::identifier("operator", operator)?;
        let note = validate::text("note", note, NOTE_CHARS_MAX)?;
        let row = find_discrepancy_in(&self.db, discrepancy_id).await?;
        let step = transition(row.item().map_err(corrupt)?, Event::Claim(action))
            .map_err(|refusal| refused(discrepancy_id, refusal))?;
        let request = Request {
            row,
            action,
            operator,
            note,
        };
        let in_claim = match step.effect {
            Some(Effect::GatewayRefund) => {
                return self.refund_resolution(request, step.continues).await;
            }
            Some(Effect::Post) => {
                let (channel, evidence) = self.post_evidence(&request.row).await?;
                InClaim::Post(channel, evidence)
            }
            Some(Effect::Reverse) => {
                self.check_reversible(&request.row).await?;
                InClaim::Reverse
            }
            Some(Effect::Record) | None => InClaim::Record(manual_refund(&request)),
        };
        self.claim_and_act(request, step.state, in_claim).await
    }

    /// Claims the item and acts in one transaction: if the effect fails, the claim rolls back
    /// with it.
    async fn claim_and_act(
        &self,
        request: Request,
        to: State,
        in_claim: InClaim,
    ) -> AppResult<discrepancy::Model> {
        let Request {
            row,
            action,
            operator,
            note,
        } = request;
        let now = self.now();
        let txn = crate::db::begin_write(&self.db).await?;
        let note = match &in_claim {
            InClaim::Reverse => with_outcome(&note, "payment reversed"),
            InClaim::Record(Some(outcome)) => with_outcome(&note, outcome),
            InClaim::Post(..) | InClaim::Record(None) => note,
        };
        let claim = Claim {
            id: row.id,
            to,
            action,
            operator: &operator,
            note: &note,
            refund_no: None,
        };
        claim.commit_to(&txn, now).await?;
        match in_claim {
            InClaim::Post(channel, evidence) => {
                match settle(&txn, channel, &evidence, &self.settings).await? {
                    SettleOutcome::Posted | SettleOutcome::AlreadyPosted => {}
                    other => {
                        return Err(AppError::FailedPrecondition(format!(
                            "cannot post {}: {other:?}",
                            row.out_trade_no
                        )));
                    }
                }
            }
            InClaim::Reverse => reverse_payment(&txn, &row.out_trade_no, self.today()).await?,
            InClaim::Record(_) => {}
        }
        append_audit(&txn, row.id, action.as_str(), &operator, &note, now).await?;
        let updated = find_discrepancy_in(&txn, row.id).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// REVERSE (of a LEDGER_ONLY payment, the transition checked) needs the gateway, asked
    /// now, to say it is not paid.
    async fn check_reversible(&self, item: &discrepancy::Model) -> AppResult<()> {
        let channel = self.run_channel(item).await?;
        match self.query_paid(channel, &item.out_trade_no).await {
            Ok(None) => Ok(()),
            Ok(Some(evidence)) => Err(AppError::FailedPrecondition(format!(
                "the gateway reports {} paid at {}: it is money we hold, EXPLAIN it instead",
                item.out_trade_no, evidence.paid_at
            ))),
            Err(err) => Err(AppError::Unavailable(format!(
                "the gateway did not answer ({err}); a reversal needs its word, retry"
            ))),
        }
    }

    /// The channel of the item's run, or of its order for an item outside any run.
    async fn run_channel(&self, item: &discrepancy::Model) -> AppResult<PaymentChannel> {
        let channel = match item.run_id {
            Some(run_id) => {
                reconciliation_run::Entity::find_by_id(run_id)
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("run {run_id} not found")))?
                    .channel
            }
            None => {
                crate::app::payments::find_payment(self, &item.out_trade_no)
                    .await?
                    .channel
            }
        };
        crate::app::settlement::stored_channel(&channel)
    }

    /// POST (of a GATEWAY_ONLY payment, the transition checked) needs a known order that the
    /// gateway confirms now.
    async fn post_evidence(
        &self,
        item: &discrepancy::Model,
    ) -> AppResult<(PaymentChannel, crate::app::settlement::PaidEvidence)> {
        let channel = self.run_channel(item).await?;
        let known = payment::Entity::find()
            .filter(payment::Column::OutTradeNo.eq(&item.out_trade_no))
            .filter(payment::Column::Channel.eq(channel.as_str()))
            .one(&self.db)
            .await?;
        if known.is_none() {
            return Err(AppError::FailedPrecondition(format!(
                "{} is not an order of ours; the money is in suspense",
                item.out_trade_no
            )));
        }
        match self.query_paid(channel, &item.out_trade_no).await {
            Ok(Some(mut evidence)) => {
                evidence.source = crate::domain::evidence::EvidenceSource::Reconciliation;
                Ok((channel, evidence))
            }
            Ok(None) => Err(AppError::FailedPrecondition(format!(
                "the gateway does not confirm {} as paid",
                item.out_trade_no
            ))),
            Err(err) => Err(AppError::Unavailable(format!(
                "the gateway did not answer ({err}); retry"
            ))),
        }
    }

    /// The audit trail of one discrepancy, oldest first.
    pub async fn discrepancy_actions(
        &self,
        discrepancy_id: i64,
    ) -> AppResult<Vec<discrepancy_action::Model>> {
        Ok(discrepancy_action::Entity::find()
            .filter(discrepancy_action::Column::DiscrepancyId.eq(discrepancy_id))
            .order_by_asc(discrepancy_action::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Closes a cashier's day: expected = the cashier's counter payments of the date minus
    /// the counter refunds they paid out that day.
    pub async fn close_cashier_day(
        &self,
        cashier_id: &str,
        business_date: &str,
        counted_cash: &str,
    ) -> AppResult<CashierClose> {
        let cashier_id = validate::identifier("cashier_id", cashier_id)?;
        let date: NaiveDate = validate::date("business_date", business_date)?;
        let counted = Money::parse_non_negative(counted_cash)
            .map_err(|e| AppError::invalid("counted_cash", e))?;
        let txn = crate::db::begin_write(&self.db).await?;
        let payments_fen: i64 = payment::Entity::find()
            .filter(payment::Column::Channel.eq(PaymentChannel::Counter.as_str()))
            .filter(payment::Column::CashierId.eq(&cashier_id))
            .filter(payment::Column::BusinessDate.eq(date))
            .filter(payment::Column::Status.is_in([SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED]))
            .all(&txn)
            .await?
            .iter()
            .map(|p| p.amount_fen)
            .sum();
        let refunds_fen = counter_refunds_fen(&txn, &cashier_id, date).await?;
        let expected_fen = payments_fen - refunds_fen;
        let counted_fen = counted.to_fen();
        let close = cashier_close::ActiveModel {
            cashier_id: Set(cashier_id.clone()),
            business_date: Set(date),
            expected_fen: Set(expected_fen),
            payments_fen: Set(payments_fen),
            refunds_fen: Set(refunds_fen),
            counted_fen: Set(counted_fen),
            difference_fen: Set(counted_fen - expected_fen),
            created_at: Set(self.now()),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|err| {
            crate::app::error::unique_or(err, || {
                AppError::AlreadyExists(format!("cashier {cashier_id} already closed {date}"))
            })
        })?;
        txn.commit().await?;
        Ok(CashierClose { close })
    }
}

impl App {
    /// Every cashier's close of `business_date`, by cashier.
    pub async fn cashier_closes(&self, business_date: &str) -> AppResult<Vec<CashierClose>> {
        let date = validate::date("business_date", business_date)?;
        Ok(cashier_close::Entity::find()
            .filter(cashier_close::Column::BusinessDate.eq(date))
            .order_by_asc(cashier_close::Column::CashierId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|close| CashierClose { close })
            .collect())
    }
}

/// The cash a cashier paid out in counter refunds on `date` (a counter refund is SUCCEEDED
/// when booked; nothing else is counted).
async fn counter_refunds_fen(
    txn: &impl sea_orm::ConnectionTrait,
    cashier_id: &str,
    date: NaiveDate,
) -> AppResult<i64> {
    Ok(refund::Entity::find()
        .filter(refund::Column::CashierId.eq(cashier_id))
        .filter(refund::Column::BusinessDate.eq(date))
        .filter(refund::Column::Status.eq(crate::app::refunds::REFUND_SUCCEEDED))
        .all(txn)
        .await?
        .iter()
        .map(|r| r.amount_fen)
        .sum())
}

/// The operator's note followed by what the service did, in brackets.
pub(super) fn with_outcome(note: &str, outcome: &str) -> String {
    if note.is_empty() {
        format!("[{outcome}]")
    } else {
        format!("{note} [{outcome}]")
    }
}

pub(super) async fn find_discrepancy_in(
    db: &impl sea_orm::ConnectionTrait,
    id: i64,
) -> AppResult<discrepancy::Model> {
    discrepancy::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("discrepancy {id} not found")))
}

/// What a recorded REFUND says it did: money at the gateway without a duplicate payment of
/// ours to refund is refunded by hand.
fn manual_refund(request: &Request) -> Option<&'static str> {
    let item = request.row.item().ok()?;
    let by_hand = request.action == Action::Refund
        && !(item.class == Class::Duplicate && item.movement == Movement::Payment);
    by_hand.then_some("to be refunded by hand in the gateway's merchant portal")
}
