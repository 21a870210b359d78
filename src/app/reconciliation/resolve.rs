//! Finance's side of reconciliation: resolving a discrepancy with an action (every action is
//! appended to `discrepancy_actions` and never edited), and the cashiers' daily close (扎帐),
//! which records over (长款) or short (短款) cash without touching any customer account.

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};

use super::{AUTO_RESOLVED, RESOLVED};
use crate::app::settlement::{
    PARTIALLY_REFUNDED, PaymentChannel, REFUNDED, SUCCEEDED, SettleOutcome, settle,
};
use crate::app::{App, AppError, AppResult, validate};
use crate::db::entity::{
    cashier_close, discrepancy, discrepancy_action, payment, reconciliation_run,
};
use crate::domain::money::Money;

/// Bound on an operator's note.
const NOTE_CHARS_MAX: usize = 2_000;

/// What finance can do about a discrepancy. Only POST changes money, and only for a
/// GATEWAY_ONLY payment the gateway confirms; the others record the decision for the
/// people who carry it out (a reversal is never automatic).
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
        let evidence = match action {
            Action::Post => Some(self.post_evidence(&item).await?),
            _ => None,
        };
        let txn = crate::db::begin_write(&self.db).await?;
        if let Some((channel, evidence)) = evidence {
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
        let now = self.now();
        discrepancy_action::ActiveModel {
            discrepancy_id: Set(item.id),
            action: Set(action.as_str().to_owned()),
            operator: Set(operator.clone()),
            note: Set(note.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let mut row = item.into_active_model();
        row.state = Set(RESOLVED.to_owned());
        row.action = Set(Some(action.as_str().to_owned()));
        row.operator = Set(Some(operator));
        row.note = Set(Some(note));
        row.resolved_at = Set(Some(now));
        let updated = row.update(&txn).await?;
        txn.commit().await?;
        Ok(updated)
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
        let run = reconciliation_run::Entity::find_by_id(item.run_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("run {} not found", item.run_id)))?;
        let channel = PaymentChannel::parse(&run.channel)?;
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

    /// Closes a cashier's day: expected = the cashier's counter payments of the date.
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
        let expected_fen: i64 = payment::Entity::find()
            .filter(payment::Column::Channel.eq(PaymentChannel::Counter.as_str()))
            .filter(payment::Column::CashierId.eq(&cashier_id))
            .filter(payment::Column::BusinessDate.eq(date))
            .filter(payment::Column::Status.is_in([SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED]))
            .all(&txn)
            .await?
            .iter()
            .map(|p| p.amount_fen)
            .sum();
        let counted_fen = counted.to_fen();
        let close = cashier_close::ActiveModel {
            cashier_id: Set(cashier_id.clone()),
            business_date: Set(date),
            expected_fen: Set(expected_fen),
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

async fn find_discrepancy(app: &App, id: i64) -> AppResult<discrepancy::Model> {
    discrepancy::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("discrepancy {id} not found")))
}
