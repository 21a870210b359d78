//! Posting money to an account, exactly once: the one path every confirmed payment takes,
//! whether the confirmation came from a notification, our own query, a counter or
//! reconciliation. The payment row's conditional status change is the guard (only one writer
//! can move it out of PENDING), the account row lock serialises allocations on one account,
//! and the journal entry key is unique, so nothing can be posted twice even under races.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::{AppError, AppResult, BillingSettings};
use crate::db::entity::{
    bill, journal_entry, journal_posting, payment, payment_allocation, suspense_item,
};
use crate::db::writes::insert_chunked;
use crate::db::{prepayment, queries};
use crate::domain::allocation::{Allocation, BillAllocation};
use crate::domain::bill_status::BillBalance;
use crate::domain::evidence::{EvidenceSource, SuspenseReason};
use crate::domain::journal::{JournalEntry, Ledger, Posting};
use crate::domain::money::Money;
use crate::domain::payment::{PaymentEvent, PaymentRefusal, PaymentStatus};
use crate::domain::posting::{self, AccountBooks, PostingRefusal, Terms};
use crate::gateway::beijing::beijing_date;

// The stored texts of the payment states, for queries; what a state may become is decided by
// `PaymentStatus::on` alone.
pub const PENDING: &str = PaymentStatus::Pending.as_str();
pub const SUCCEEDED: &str = PaymentStatus::Succeeded.as_str();
pub const CLOSED: &str = PaymentStatus::Closed.as_str();
pub const PARTIALLY_REFUNDED: &str = PaymentStatus::PartiallyRefunded.as_str();
pub const REFUNDED: &str = PaymentStatus::Refunded.as_str();

pub use crate::domain::channel::PaymentChannel;

/// A channel a request names; anything else is INVALID_ARGUMENT naming `channel`.
pub fn requested_channel(text: &str) -> AppResult<PaymentChannel> {
    PaymentChannel::parse(text).map_err(|_| {
        AppError::invalid(
            "channel",
            format!("{text:?} is not ALIPAY, WECHAT or COUNTER"),
        )
    })
}

/// A channel a row stores; anything else is a corrupt row, never a default.
pub fn stored_channel(text: &str) -> AppResult<PaymentChannel> {
    PaymentChannel::parse(text).map_err(|e| queries::corrupt("row", e).into())
}

/// A gateway's word that an order was paid.
#[derive(Debug, Clone)]
pub struct PaidEvidence {
    pub out_trade_no: String,
    pub gateway_trade_no: String,
    pub amount_fen: i64,
    pub paid_at: DateTime<Utc>,
    /// Stored as the payment's `settled_by`.
    pub source: EvidenceSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// This call posted the payment.
    Posted,
    /// It had been posted before; nothing changed.
    AlreadyPosted,
    /// No order with that number: recorded in suspense for finance.
    UnknownOrder,
    /// The amounts differ: recorded in suspense, never applied.
    AmountMismatch { ours_fen: i64, theirs_fen: i64 },
    /// The order had been reversed: recorded in suspense, never applied, and discrepancy
    /// `discrepancy_id` opened for finance.
    PaidAfterReversal { discrepancy_id: i64 },
}

/// Posts `evidence` to its order inside the caller's transaction.
pub async fn settle(
    txn: &impl ConnectionTrait,
    channel: PaymentChannel,
    evidence: &PaidEvidence,
    settings: &BillingSettings,
) -> AppResult<SettleOutcome> {
    let found = payment::Entity::find()
        .filter(payment::Column::OutTradeNo.eq(&evidence.out_trade_no))
        .one(txn)
        .await?;
    let Some(order) = found.filter(|p| p.channel == channel.as_str()) else {
        record_suspense(
            txn,
            channel,
            evidence,
            SuspenseReason::UnknownOrder,
            "no order of ours has this number",
        )
        .await?;
        return Ok(SettleOutcome::UnknownOrder);
    };
    let decided = payment_status(&order)?.on(PaymentEvent::Paid);
    if decided == Err(PaymentRefusal::Reversed) {
        // Finance reversed this order (the gateway had said it was not paid): the money is
        // real now, but not applied; finance decides.
        let detail = format!(
            "order {} was reversed before this payment",
            order.out_trade_no
        );
        record_suspense(
            txn,
            channel,
            evidence,
            SuspenseReason::ReversedOrder,
            &detail,
        )
        .await?;
        let discrepancy_id =
            super::reconciliation::open_paid_after_reversal(txn, &order, evidence).await?;
        return Ok(SettleOutcome::PaidAfterReversal { discrepancy_id });
    }
    if order.amount_fen != evidence.amount_fen {
        let detail = format!(
            "order {} is for {} fen, the gateway says {} fen",
            order.out_trade_no, order.amount_fen, evidence.amount_fen
        );
        record_suspense(
            txn,
            channel,
            evidence,
            SuspenseReason::AmountMismatch,
            &detail,
        )
        .await?;
        return Ok(SettleOutcome::AmountMismatch {
            ours_fen: order.amount_fen,
            theirs_fen: evidence.amount_fen,
        });
    }
    let next = match decided {
        Ok(next) => next,
        Err(PaymentRefusal::AlreadyPosted) => return Ok(SettleOutcome::AlreadyPosted),
        Err(other) => return Err(queries::corrupt("payment", other).into()),
    };
    let business_date = beijing_date(evidence.paid_at);
    // Conditional on the states a payment may be posted from: of two writers that asked the
    // transition function at once, one moves the row and the other sees it posted.
    let moved = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(next.as_str()))
        .col_expr(
            payment::Column::GatewayTradeNo,
            Expr::value(evidence.gateway_trade_no.clone()),
        )
        .col_expr(payment::Column::PaidAt, Expr::value(evidence.paid_at))
        .col_expr(payment::Column::BusinessDate, Expr::value(business_date))
        .col_expr(
            payment::Column::SettledBy,
            Expr::value(evidence.source.as_str()),
        )
        .filter(payment::Column::Id.eq(order.id))
        .filter(payment::Column::Status.is_in(stored(PaymentStatus::accepting(PaymentEvent::Paid))))
        .exec(txn)
        .await?;
    if moved.rows_affected == 0 {
        return Ok(SettleOutcome::AlreadyPosted);
    }
    let amount = Money::from_fen(order.amount_fen);
    post_to_account(
        txn,
        order.account_id,
        order.id,
        &order.out_trade_no,
        amount,
        channel,
        business_date,
        settings,
    )
    .await?;
    Ok(SettleOutcome::Posted)
}

/// Allocates `amount` over the account's open bills (oldest first, late fee before principal,
/// the rest to prepayment: `domain::posting::receive`), then writes that effect: the bills'
/// paid amounts and states, the allocation rows, the journal entry and the prepayment. The
/// caller's transaction must already own the payment row; the account row is locked here,
/// before its bills and balance are read.
#[allow(clippy::too_many_arguments)]
pub async fn post_to_account(
    txn: &impl ConnectionTrait,
    account_id: i64,
    payment_id: i64,
    out_trade_no: &str,
    amount: Money,
    channel: PaymentChannel,
    business_date: NaiveDate,
    settings: &BillingSettings,
) -> AppResult<Allocation> {
    let account = prepayment::lock_account(txn, account_id).await?;
    let waivers = queries::late_fee_waivers(txn).await?;
    let rows = queries::open_bills(txn, &[account_id]).await?;
    let books = AccountBooks {
        bills: rows
            .iter()
            .map(queries::booked_bill)
            .collect::<crate::db::DbResult<_>>()?,
        prepayment: Money::from_fen(account.prepayment_fen),
    };
    let terms = Terms {
        on: business_date,
        waivers: &waivers,
        late_fee: &settings.late_fee,
    };
    let effect = posting::receive(&books, amount, channel.ledger(), &terms).map_err(refused)?;
    write_bill_balances(txn, &rows, &effect.bills).await?;
    let allocations: Vec<payment_allocation::ActiveModel> = effect
        .allocation
        .bills
        .iter()
        .map(|part| allocation_row(payment_id, part))
        .collect();
    insert_chunked::<payment_allocation::Entity, _>(txn, allocations).await?;
    write_entry(
        txn,
        &format!("{}:{out_trade_no}", effect.entry.kind),
        &effect.entry,
        Some(account_id),
        business_date,
    )
    .await?;
    Ok(effect.allocation)
}

/// A refusal of the posting rule: nothing was written (the caller's transaction rolls back).
/// A payment row's state; a text that is none of ours is a corrupt row, never a default.
pub(crate) fn payment_status(order: &payment::Model) -> AppResult<PaymentStatus> {
    Ok(PaymentStatus::parse(&order.status).map_err(|e| queries::corrupt("payment", e))?)
}

/// The stored texts of `states`, for a conditional update.
pub(crate) fn stored(states: Vec<PaymentStatus>) -> Vec<&'static str> {
    states.into_iter().map(PaymentStatus::as_str).collect()
}

pub(crate) fn refused(refusal: PostingRefusal) -> AppError {
    AppError::FailedPrecondition(refusal.to_string())
}

/// Stores the new paid amounts and states of the bills an effect touched (`rows` holds them).
pub(crate) async fn write_bill_balances(
    txn: &impl ConnectionTrait,
    rows: &[bill::Model],
    changed: &[(String, BillBalance)],
) -> AppResult<()> {
    for (bill_no, after) in changed {
        let row = rows
            .iter()
            .find(|b| &b.bill_no == bill_no)
            .ok_or_else(|| queries::corrupt("posting", format!("bill {bill_no} not loaded")))?;
        bill::Entity::update_many()
            .col_expr(
                bill::Column::PrincipalPaidFen,
                Expr::value(after.principal_paid.to_fen()),
            )
            .col_expr(
                bill::Column::LateFeePaidFen,
                Expr::value(after.late_fee_paid.to_fen()),
            )
            .col_expr(bill::Column::Status, Expr::value(after.status.as_str()))
            .filter(bill::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

pub(crate) fn allocation_row(
    payment_id: i64,
    part: &BillAllocation,
) -> payment_allocation::ActiveModel {
    payment_allocation::ActiveModel {
        payment_id: Set(payment_id),
        bill_no: Set(part.bill_no.clone()),
        late_fee_fen: Set(part.late_fee.to_fen()),
        principal_fen: Set(part.principal.to_fen()),
        ..Default::default()
    }
}

/// Serialises writers on one account: the account row is the lock on its bills and
/// prepayment (`db::prepayment`). Take it before reading either.
pub async fn lock_account(txn: &impl ConnectionTrait, account_id: i64) -> AppResult<()> {
    prepayment::lock_account(txn, account_id).await?;
    Ok(())
}

/// Appends a balanced journal entry under a unique key, and moves the account's prepayment
/// balance by what the entry does to the PREPAYMENT ledger.
pub async fn write_entry(
    txn: &impl ConnectionTrait,
    key: &str,
    entry: &JournalEntry,
    account_id: Option<i64>,
    posted_on: NaiveDate,
) -> AppResult<()> {
    let (head, postings) = entry_rows(key, entry, account_id, posted_on)?;
    journal_entry::Entity::insert(head)
        .exec_without_returning(txn)
        .await?;
    journal_posting::Entity::insert_many(postings)
        .exec_without_returning(txn)
        .await?;
    match (prepayment::prepayment_delta_fen(entry), account_id) {
        (0, _) => Ok(()),
        (delta_fen, Some(account_id)) => {
            Ok(prepayment::adjust_prepayment(txn, account_id, delta_fen).await?)
        }
        (_, None) => Err(queries::corrupt(
            "journal entry",
            format!("{key} moves prepayment but names no account"),
        )
        .into()),
    }
}

type EntryRows = (
    journal_entry::ActiveModel,
    Vec<journal_posting::ActiveModel>,
);

/// The rows of a journal entry, its head and its postings; an unbalanced entry is refused.
pub(crate) fn entry_rows(
    key: &str,
    entry: &JournalEntry,
    account_id: Option<i64>,
    posted_on: NaiveDate,
) -> AppResult<EntryRows> {
    if !entry.is_balanced() {
        return Err(AppError::Database(sea_orm::DbErr::Custom(format!(
            "unbalanced journal entry {key}"
        ))));
    }
    let head = journal_entry::ActiveModel {
        entry_key: Set(key.to_owned()),
        kind: Set(entry.kind.to_owned()),
        account_id: Set(account_id),
        bill_no: Set(None),
        posted_on: Set(posted_on),
        ..Default::default()
    };
    let postings = entry
        .postings
        .iter()
        .map(|p| journal_posting::ActiveModel {
            entry_key: Set(key.to_owned()),
            ledger: Set(p.ledger.as_str().to_owned()),
            account_id: Set(account_id),
            debit_fen: Set(p.debit.to_fen()),
            credit_fen: Set(p.credit.to_fen()),
            ..Default::default()
        })
        .collect();
    Ok((head, postings))
}

/// Money that arrived but cannot be applied, once per gateway trade and reason.
async fn record_suspense(
    txn: &impl ConnectionTrait,
    channel: PaymentChannel,
    evidence: &PaidEvidence,
    reason: SuspenseReason,
    detail: &str,
) -> AppResult<()> {
    let exists = suspense_item::Entity::find()
        .filter(suspense_item::Column::Channel.eq(channel.as_str()))
        .filter(suspense_item::Column::GatewayTradeNo.eq(&evidence.gateway_trade_no))
        .filter(suspense_item::Column::Reason.eq(reason.as_str()))
        .one(txn)
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    tracing::warn!(channel = channel.as_str(), out_trade_no = %evidence.out_trade_no, reason = reason.as_str(), "payment held in suspense");
    suspense_item::ActiveModel {
        channel: Set(channel.as_str().to_owned()),
        out_trade_no: Set(evidence.out_trade_no.clone()),
        gateway_trade_no: Set(evidence.gateway_trade_no.clone()),
        amount_fen: Set(evidence.amount_fen),
        reason: Set(reason.as_str().to_owned()),
        detail: Set(detail.to_owned()),
        created_at: Set(evidence.paid_at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    // The money is real even if it cannot be applied: the books hold it in suspense.
    let amount = Money::from_fen(evidence.amount_fen);
    let entry = JournalEntry {
        kind: "SUSPENSE",
        postings: vec![
            Posting {
                ledger: channel.ledger(),
                debit: amount,
                credit: Money::ZERO,
            },
            Posting {
                ledger: Ledger::Suspense,
                debit: Money::ZERO,
                credit: amount,
            },
        ],
    };
    let key = format!(
        "SUSPENSE:{}:{}:{reason}",
        channel.as_str(),
        evidence.gateway_trade_no
    );
    write_entry(txn, &key, &entry, None, beijing_date(evidence.paid_at)).await
}
