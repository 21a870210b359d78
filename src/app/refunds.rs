//! Refunds. Only prepayment is refunded, on request and only with no arrears (domain.md 5).
//!
//! The channel is checked before anything is written. The refund then reserves the money
//! (prepayment taken, journal entry, refund row PENDING) in one committed transaction *before*
//! the gateway is called, so a crash can never pay out money the books still show. The
//! gateway's answer arrives classified ([`RefundAnswer`]) and goes through the refund
//! aggregate's one transition function ([`crate::domain::refund::transition`], applied in
//! `refund_settle`): a definitive refusal puts the reservation back (FAILED); a confirmed
//! payout marks the payment PARTIALLY_REFUNDED / REFUNDED (SUCCEEDED); anything else leaves
//! the refund PENDING for the refund sweeper, a verified notification, or a retry with the
//! same refund number. Reading refunds (`get_refund`, `list_refunds`) has no side effects.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::gateways::Channel;
use super::payments::find_payment;
use super::settlement::{PARTIALLY_REFUNDED, PaymentChannel, SUCCEEDED, lock_account, write_entry};
use super::validate;
use super::{App, AppError, AppResult};
use crate::db::entity::{bill, payment, refund};
use crate::db::queries;
use crate::domain::journal::{JournalEntry, Ledger, Posting};
use crate::domain::money::Money;
use crate::domain::refund::RefundState;
use crate::gateway::beijing::beijing_date;
use crate::gateway::refund::RefundAnswer;

pub const REFUND_PENDING: &str = "PENDING";
pub const REFUND_SUCCEEDED: &str = "SUCCEEDED";
pub const REFUND_FAILED: &str = "FAILED";
const REASON_LEN_MAX: usize = 80;

#[derive(Debug, Clone)]
pub struct RefundView {
    pub refund: refund::Model,
    pub out_trade_no: String,
}

/// Which gateway call to make for a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundCall {
    /// Send the refund (again: same number, same amount).
    Request,
    /// Ask what became of it.
    Query,
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
        self.check_refund_channel(super::settlement::stored_channel(&order.channel)?)?;
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

    /// A refund through a disabled channel is refused before anything is booked, naming the
    /// setting that is missing.
    fn check_refund_channel(&self, channel: PaymentChannel) -> AppResult<()> {
        let disabled = match channel {
            PaymentChannel::Alipay => self.gateways.alipay.enabled().err(),
            PaymentChannel::Wechat => self.gateways.wechat.enabled().err(),
            PaymentChannel::Counter => None,
        };
        match disabled {
            Some(why) => Err(AppError::FailedPrecondition(format!(
                "refunds through {} are unavailable: {why}",
                channel.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Takes the amount out of prepayment and records the refund as PENDING. The payment's
    /// own status changes only once the gateway confirms (`refund_settle`); what is still
    /// refundable counts the PENDING refunds of the order as taken.
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
        let order = refundable_payment(&txn, order.id).await?;
        let pending_fen: i64 = refund::Entity::find()
            .filter(refund::Column::PaymentId.eq(order.id))
            .filter(refund::Column::Status.eq(RefundState::Pending.as_str()))
            .all(&txn)
            .await?
            .iter()
            .map(|r| r.amount_fen)
            .sum();
        let refundable = order.amount_fen - order.refunded_fen - pending_fen;
        if amount.to_fen() > refundable {
            return Err(AppError::FailedPrecondition(format!(
                "only {} of payment {} is left to refund",
                Money::from_fen(refundable.max(0)),
                order.out_trade_no
            )));
        }
        ensure_no_arrears(&txn, order.account_id).await?;
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
        let channel = super::settlement::stored_channel(&order.channel)?;
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
            status: Set(RefundState::Pending.as_str().to_owned()),
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

    /// Asks the gateway to pay a PENDING refund out (same numbers on every retry) and applies
    /// its answer. An Alipay `fund_change=N` (or a WeChat PROCESSING) is followed by one
    /// refund query at once, so a retry of a refund that already paid settles now.
    async fn complete_refund(
        &self,
        row: refund::Model,
        order: &payment::Model,
    ) -> AppResult<RefundView> {
        if refund_state(&row)? != RefundState::Pending {
            return Ok(self.refund_view(row, order));
        }
        let mut answer = self.ask_gateway(&row, order, RefundCall::Request).await;
        if matches!(answer, RefundAnswer::Processing { .. }) {
            answer = match self.ask_gateway(&row, order, RefundCall::Query).await {
                RefundAnswer::Unknown { .. } | RefundAnswer::NotFound => answer,
                queried => queried,
            };
        }
        let settled = self.apply_refund_answer(&row, &answer).await?;
        match (refund_state(&settled)?, &answer) {
            (RefundState::Failed, RefundAnswer::Refused { code, message }) => {
                Err(AppError::FailedPrecondition(format!(
                    "the gateway refused refund {}: {code} {message}; the prepayment was restored",
                    row.refund_no
                )))
            }
            (RefundState::Pending, RefundAnswer::Unknown { why }) => {
                Err(AppError::Unavailable(format!(
                    "the gateway did not confirm refund {} ({why}); it stays PENDING and is \
                     settled by the refund query; retry with the same refund_no",
                    row.refund_no
                )))
            }
            _ => Ok(self.refund_view(settled, order)),
        }
    }

    /// One refund call, classified. Counter cash goes back over the counter: nothing to ask.
    /// A channel disabled since the refund was booked cannot be asked: unknown.
    pub(crate) async fn ask_gateway(
        &self,
        row: &refund::Model,
        order: &payment::Model,
        call: RefundCall,
    ) -> RefundAnswer {
        let channel = match PaymentChannel::parse(&order.channel) {
            Ok(channel) => channel,
            Err(err) => {
                return RefundAnswer::Unknown {
                    why: err.to_string(),
                };
            }
        };
        let now = self.now();
        match (channel, &self.gateways.alipay, &self.gateways.wechat, call) {
            (PaymentChannel::Counter, _, _, _) => RefundAnswer::Paid {
                gateway_refund_id: None,
            },
            (PaymentChannel::Alipay, Channel::Enabled(alipay), _, RefundCall::Request) => {
                alipay
                    .request_refund(
                        &order.out_trade_no,
                        row.amount_fen,
                        &row.refund_no,
                        &row.reason,
                        now,
                    )
                    .await
            }
            (PaymentChannel::Alipay, Channel::Enabled(alipay), _, RefundCall::Query) => {
                alipay
                    .query_refund(&order.out_trade_no, &row.refund_no, row.amount_fen, now)
                    .await
            }
            (PaymentChannel::Wechat, _, Channel::Enabled(wechat), RefundCall::Request) => {
                wechat
                    .request_refund(
                        &order.out_trade_no,
                        &row.refund_no,
                        row.amount_fen,
                        order.amount_fen,
                        &row.reason,
                        now,
                    )
                    .await
            }
            (PaymentChannel::Wechat, _, Channel::Enabled(wechat), RefundCall::Query) => {
                wechat
                    .query_refund(&row.refund_no, row.amount_fen, now)
                    .await
            }
            _ => RefundAnswer::Unknown {
                why: format!("the {} channel is disabled", channel.as_str()),
            },
        }
    }

    /// A refund by its number, as stored: no gateway call.
    pub async fn get_refund(&self, refund_no: &str) -> AppResult<RefundView> {
        let refund_no = validate::identifier("refund_no", refund_no)?;
        let row = refund::Entity::find()
            .filter(refund::Column::RefundNo.eq(&refund_no))
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("refund {refund_no:?} does not exist")))?;
        refund_state(&row)?;
        let order = payment::Entity::find_by_id(row.payment_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| corrupt(format!("refund {refund_no} names no payment")))?;
        Ok(self.refund_view(row, &order))
    }

    /// The refunds of one order, oldest first, as stored: no gateway call.
    pub async fn list_refunds(&self, out_trade_no: &str) -> AppResult<Vec<RefundView>> {
        let order = find_payment(self, out_trade_no).await?;
        let rows = refund::Entity::find()
            .filter(refund::Column::PaymentId.eq(order.id))
            .order_by_asc(refund::Column::Id)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                refund_state(&row)?;
                Ok(self.refund_view(row, &order))
            })
            .collect()
    }

    fn refund_view(&self, refund: refund::Model, order: &payment::Model) -> RefundView {
        RefundView {
            refund,
            out_trade_no: order.out_trade_no.clone(),
        }
    }
}

/// The stored state of a refund row; an unknown value is a corrupt row, never a default.
pub(crate) fn refund_state(row: &refund::Model) -> AppResult<RefundState> {
    RefundState::parse(&row.status)
        .map_err(|e| corrupt(format!("refund {} (id {}): {e}", row.refund_no, row.id)))
}

/// A row that breaks an invariant of ours: a database-side failure (INTERNAL), logged.
pub(crate) fn corrupt(what: String) -> AppError {
    AppError::Database(sea_orm::DbErr::Custom(format!("corrupt row: {what}")))
}

/// Money leaving prepayment through `channel` (or, postings swapped, coming back).
pub(crate) fn refund_entry(
    kind: &'static str,
    channel: PaymentChannel,
    amount: Money,
) -> JournalEntry {
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

/// The payment re-read inside the refund's transaction (the account already locked); only a
/// succeeded, not wholly refunded payment can be refunded. Online and counter refunds share it.
pub(super) async fn refundable_payment(
    txn: &impl sea_orm::ConnectionTrait,
    payment_id: i64,
) -> AppResult<payment::Model> {
    let order = payment::Entity::find_by_id(payment_id)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::NotFound("payment".into()))?;
    if ![SUCCEEDED, PARTIALLY_REFUNDED].contains(&order.status.as_str()) {
        return Err(AppError::FailedPrecondition(format!(
            "payment {} is {}; only a succeeded payment can be refunded",
            order.out_trade_no, order.status
        )));
    }
    Ok(order)
}

/// Prepayment is refunded only with no arrears (domain.md 5).
pub(super) async fn ensure_no_arrears(
    txn: &impl sea_orm::ConnectionTrait,
    account_id: i64,
) -> AppResult<()> {
    let arrears = bill::Entity::find()
        .filter(bill::Column::AccountId.eq(account_id))
        .filter(
            bill::Column::Status.is_in([super::billing::UNPAID, super::billing::PARTIALLY_PAID]),
        )
        .one(txn)
        .await?;
    match arrears {
        Some(open) => Err(AppError::FailedPrecondition(format!(
            "the account has unpaid bill {}; prepayment is refunded only with no arrears",
            open.bill_no
        ))),
        None => Ok(()),
    }
}
