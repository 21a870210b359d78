//! Finance's side of reconciliation: resolving a discrepancy with an action (every action is
//! appended to `discrepancy_actions` and never edited), and the cashiers' daily close (扎帐),
//! which records over (长款) or short (短款) cash without touching any customer account.

use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{AUTO_RESOLVED, HELD, OPEN, RESOLVED};
use crate::app::reversal::reverse_payment;
use crate::app::settlement::{
    PARTIALLY_REFUNDED, PaidEvidence, PaymentChannel, REFUNDED, SUCCEEDED, SettleOutcome, settle,
};
use crate::app::{App, AppError, AppResult, validate};
use crate::db::entity::{
    cashier_close, discrepancy, discrepancy_action, payment, reconciliation_run, refund,
};
use crate::domain::money::Money;

/// Bound on an operator's note.
const NOTE_CHARS_MAX: usize = 2_000;

/// What finance can do about a discrepancy. POST posts a GATEWAY_ONLY payment the gateway
/// confirms; REVERSE undoes a LEDGER_ONLY payment the gateway says it never took; REFUND
/// gives a DUPLICATE payment back through its gateway; WRITE_OFF and EXPLAIN record the
/// decision. Nothing is reversed or refunded unless finance asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Post,
    Reverse,
    Refund,
    WriteOff,
    Explain,
}

impl Action {
    pub fn parse(text: &str) -> AppResult<Self> {
        match text {
            "POST" => Ok(Self::Post),
            "REVERSE" => Ok(Self::Reverse),
            "REFUND" => Ok(Self::Refund),
            "WRITE_OFF" => Ok(Self::WriteOff),
            "EXPLAIN" => Ok(Self::Explain),
            other => Err(AppError::invalid(
                "action",
                format!("{other:?} is not POST, REVERSE, REFUND, WRITE_OFF or EXPLAIN"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Reverse => "REVERSE",
            Self::Refund => "REFUND",
            Self::WriteOff => "WRITE_OFF",
            Self::Explain => "EXPLAIN",
        }
    }
}

/// What a resolution does besides being recorded.
enum Effect {
    Post(PaymentChannel, PaidEvidence),
    Reverse,
    /// The refund was requested; the summary goes into the note.
    Refunded(String),
    Record,
}

/// A recorded close and what it found.
#[derive(Debug, Clone)]
pub struct CashierClose {
    pub close: cashier_close::Model,
}

impl CashierClose {
    /// 长款 (over), 短款 (short) or 平 (balanced).
    pub fn outcome(&self) -> &'static str {
        match self.close.difference_fen {
            d if d > 0 => "OVER",
            d if d < 0 => "SHORT",
            _ => "BALANCED",
        }
    }
}

impl App {
    /// Resolves an open discrepancy; the action is appended to the audit trail.
    pub async fn resolve_discrepancy(
        &self,
        discrepancy_id: i64,
        action: &str,
        note: &str,
        operator: &str,
    ) -> AppResult<discrepancy::Model> {
        let action = Action::parse(action)?;
        let operator = validate::identifier("operator", operator)?;
        let note = validate::text("note", note, NOTE_CHARS_MAX)?;
        let item = find_discrepancy(self, discrepancy_id).await?;
        if item.state == RESOLVED || item.state == AUTO_RESOLVED {
            return Err(AppError::FailedPrecondition(format!(
                "discrepancy {discrepancy_id} is already {}",
                item.state
            )));
        }
        let (effect, mut note) = self.prepare_effect(&item, action, note).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        match effect {
            Effect::Post(channel, evidence) => {
                match settle(&txn, channel, &evidence, &self.settings).await? {
                    SettleOutcome::Posted | SettleOutcome::AlreadyPosted => {}
                    other => {
                        return Err(AppError::FailedPrecondition(format!(
                            "cannot post {}: {other:?}",
                            item.out_trade_no
                        )));
                    }
                }
            }
            Effect::Reverse => {
                reverse_payment(&txn, &item.out_trade_no, self.today()).await?;
                note = with_outcome(&note, "payment reversed");
            }
            Effect::Refunded(summary) => note = with_outcome(&note, &summary),
            Effect::Record => {}
        }
        let now = self.now();
        // Conditional on the item still being open: of two concurrent resolutions one wins,
        // the other rolls back whatever its effect wrote.
        let claimed = discrepancy::Entity::update_many()
            .col_expr(discrepancy::Column::State, Expr::value(RESOLVED))
            .col_expr(discrepancy::Column::Action, Expr::value(action.as_str()))
            .col_expr(discrepancy::Column::Operator, Expr::value(operator.clone()))
            .col_expr(discrepancy::Column::Note, Expr::value(note.clone()))
            .col_expr(discrepancy::Column::ResolvedAt, Expr::value(now))
            .filter(discrepancy::Column::Id.eq(item.id))
            .filter(discrepancy::Column::State.is_in([OPEN, HELD]))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(AppError::FailedPrecondition(format!(
                "discrepancy {discrepancy_id} was resolved meanwhile"
            )));
        }
        discrepancy_action::ActiveModel {
            discrepancy_id: Set(item.id),
            action: Set(action.as_str().to_owned()),
            operator: Set(operator),
            note: Set(note),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let updated = find_discrepancy_in(&txn, item.id).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Checks what `action` needs and does what must happen outside the transaction (gateway
    /// queries, the refund request, which is idempotent on its refund number).
    async fn prepare_effect(
        &self,
        item: &discrepancy::Model,
        action: Action,
        note: String,
    ) -> AppResult<(Effect, String)> {
        let effect = match action {
            Action::Post => {
                let (channel, evidence) = self.post_evidence(item).await?;
                Effect::Post(channel, evidence)
            }
            Action::Reverse => {
                self.check_reversible(item).await?;
                Effect::Reverse
            }
            Action::Refund => self.refund_effect(item, &note).await?,
            Action::WriteOff | Action::Explain => Effect::Record,
        };
        Ok((effect, note))
    }

    /// REVERSE needs a LEDGER_ONLY payment that the gateway, asked now, says is not paid.
    async fn check_reversible(&self, item: &discrepancy::Model) -> AppResult<()> {
        if item.class != "LEDGER_ONLY" || item.movement != "PAYMENT" {
            return Err(AppError::FailedPrecondition(format!(
                "REVERSE applies to a LEDGER_ONLY payment; discrepancy {} is a {} {}",
                item.id, item.class, item.movement
            )));
        }
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

    /// REFUND gives a DUPLICATE payment back through its gateway (from the account's
    /// prepayment, where the second payment landed); the refund number is derived from the
    /// discrepancy, so a retry finds the same refund instead of refunding twice. Money that
    /// reached the gateway without an order of ours (GATEWAY_ONLY, AMOUNT_MISMATCH) can only be
    /// refunded by hand in the merchant portal: the decision is recorded. A LEDGER_ONLY item
    /// has no money at the gateway to give back.
    async fn refund_effect(&self, item: &discrepancy::Model, note: &str) -> AppResult<Effect> {
        match (item.class.as_str(), item.movement.as_str()) {
            ("DUPLICATE", "PAYMENT") => {}
            ("LEDGER_ONLY", _) => {
                return Err(AppError::FailedPrecondition(format!(
                    "discrepancy {} is LEDGER_ONLY: the gateway holds no money to refund",
                    item.id
                )));
            }
            _ => {
                return Ok(Effect::Refunded(
                    "to be refunded by hand in the gateway's merchant portal".to_owned(),
                ));
            }
        }
        let amount = Money::from_fen(item.ledger_fen.unwrap_or_default()).to_string();
        let reason = if note.is_empty() {
            "duplicate payment"
        } else {
            note
        };
        let refund_no = format!("RC-{}", item.id);
        let view = self
            .refund_payment(&item.out_trade_no, &amount, reason, &refund_no)
            .await?;
        Ok(Effect::Refunded(format!(
            "refund {refund_no} of {amount}: {}",
            view.refund.status
        )))
    }

    async fn run_channel(&self, item: &discrepancy::Model) -> AppResult<PaymentChannel> {
        let run = reconciliation_run::Entity::find_by_id(item.run_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("run {} not found", item.run_id)))?;
        PaymentChannel::parse(&run.channel)
    }

    /// POST needs a GATEWAY_ONLY payment of a known order that the gateway confirms now.
    async fn post_evidence(
        &self,
        item: &discrepancy::Model,
    ) -> AppResult<(PaymentChannel, crate::app::settlement::PaidEvidence)> {
        if item.class != "GATEWAY_ONLY" || item.movement != "PAYMENT" {
            return Err(AppError::FailedPrecondition(format!(
                "POST applies to a GATEWAY_ONLY payment; discrepancy {} is a {} {}",
                item.id, item.class, item.movement
            )));
        }
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
                evidence.source = "RECONCILIATION";
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
fn with_outcome(note: &str, outcome: &str) -> String {
    if note.is_empty() {
        format!("[{outcome}]")
    } else {
        format!("{note} [{outcome}]")
    }
}

async fn find_discrepancy(app: &App, id: i64) -> AppResult<discrepancy::Model> {
    find_discrepancy_in(&app.db, id).await
}

async fn find_discrepancy_in(
    db: &impl sea_orm::ConnectionTrait,
    id: i64,
) -> AppResult<discrepancy::Model> {
    discrepancy::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("discrepancy {id} not found")))
}
