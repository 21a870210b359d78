//! Our side of a run: the channel's posted payments and completed refunds of the business
//! date, and the statement rows, both converted into the matcher's inputs.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect};

use crate::app::AppResult;
use crate::app::payments::beijing_to_utc;
use crate::app::refunds::REFUND_SUCCEEDED;
use crate::app::settlement::{PARTIALLY_REFUNDED, PaymentChannel, REFUNDED, SUCCEEDED};
use crate::db::entity::{account, payment, refund};
use crate::domain::reconcile::{GatewayRow, LedgerPayment, LedgerRefund, Movement, PaymentStatus};
use crate::gateway::beijing::BEIJING;
use crate::gateway::statement::{RowKind, StatementRow};

/// Bound on one day's ledger for one channel: far above a city utility's busiest day.
const LEDGER_ROWS_MAX: usize = 5_000_000;

pub struct Ledger {
    pub payments: Vec<LedgerPayment>,
    pub refunds: Vec<LedgerRefund>,
}

fn beijing(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&BEIJING).naive_local()
}

fn status(text: &str) -> PaymentStatus {
    match text {
        PARTIALLY_REFUNDED => PaymentStatus::PartiallyRefunded,
        REFUNDED => PaymentStatus::Refunded,
        _ => PaymentStatus::Succeeded,
    }
}

async fn account_numbers(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> AppResult<HashMap<i64, String>> {
    let mut numbers = HashMap::with_capacity(ids.len());
    // Chunks keep the IN list under both databases' bind-parameter limits.
    for chunk in ids.chunks(10_000) {
        let rows = account::Entity::find()
            .filter(account::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        numbers.extend(rows.into_iter().map(|a| (a.id, a.account_no)));
    }
    Ok(numbers)
}

/// The columns of a payment the matcher reads, by position: order number, gateway trade
/// number, account number (joined in SQL), amount, status, refunded amount, and the time it
/// was paid (`COALESCE(paid_at, created_at)` in SQL, so one timestamp is decoded per row).
type PaymentRow = (
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
    DateTime<Utc>,
);

/// Loads the channel's payments and refunds of `date`: one query and no full models for a
/// day of a million payments.
pub async fn load(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Ledger> {
    use sea_orm::sea_query::{Expr, Func};
    let to_account = payment::Entity::belongs_to(account::Entity)
        .from(payment::Column::AccountId)
        .to(account::Column::Id)
        .into();
    let paid_at = Func::coalesce([
        Expr::col((payment::Entity, payment::Column::PaidAt)),
        Expr::col((payment::Entity, payment::Column::CreatedAt)),
    ]);
    let rows: Vec<PaymentRow> = payment::Entity::find()
        .select_only()
        .columns([payment::Column::OutTradeNo, payment::Column::GatewayTradeNo])
        .column(account::Column::AccountNo)
        .columns([
            payment::Column::AmountFen,
            payment::Column::Status,
            payment::Column::RefundedFen,
        ])
        .expr(paid_at)
        .join(JoinType::LeftJoin, to_account)
        .filter(payment::Column::Channel.eq(channel.as_str()))
        .filter(payment::Column::BusinessDate.eq(date))
        .filter(payment::Column::Status.is_in([SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED]))
        .limit(LEDGER_ROWS_MAX as u64)
        .into_tuple()
        .all(db)
        .await?;
    let payments: Vec<LedgerPayment> = rows
        .into_iter()
        .map(
            |(out_trade_no, gateway_trade_no, account_no, amount_fen, text, refunded_fen, at)| {
                LedgerPayment {
                    status: status(&text),
                    paid_at: beijing(at),
                    out_trade_no,
                    gateway_trade_no,
                    account_no: account_no.unwrap_or_default(),
                    amount_fen,
                    refunded_fen,
                }
            },
        )
        .collect();
    let refunds = load_refunds(db, channel, date).await?;
    Ok(Ledger { payments, refunds })
}

/// Our payments of the previous and next business dates: a statement row that is one of
/// them is a near-midnight payment the gateway dated differently, not money we lack.
pub async fn adjacent_payments(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Vec<LedgerPayment>> {
    let mut payments = Vec::new();
    for day in [date.pred_opt(), date.succ_opt()].into_iter().flatten() {
        payments.extend(load(db, channel, day).await?.payments);
    }
    Ok(payments)
}

/// Completed refunds whose completion falls on `date` (Beijing), of the channel's payments.
async fn load_refunds(
    db: &impl ConnectionTrait,
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Vec<LedgerRefund>> {
    let start = beijing_to_utc(date.and_time(NaiveTime::MIN));
    let end = date
        .succ_opt()
        .and_then(|next| beijing_to_utc(next.and_time(NaiveTime::MIN)));
    let (Some(start), Some(end)) = (start, end) else {
        return Ok(Vec::new());
    };
    let on_date: Vec<refund::Model> = refund::Entity::find()
        .filter(refund::Column::Status.eq(REFUND_SUCCEEDED))
        .filter(refund::Column::CompletedAt.gte(start))
        .filter(refund::Column::CompletedAt.lt(end))
        .all(db)
        .await?
        .into_iter()
        .take(LEDGER_ROWS_MAX)
        .collect();
    if on_date.is_empty() {
        return Ok(Vec::new());
    }
    let payment_ids: Vec<i64> = on_date.iter().map(|r| r.payment_id).collect();
    let orders: HashMap<i64, payment::Model> = payment::Entity::find()
        .filter(payment::Column::Id.is_in(payment_ids))
        .filter(payment::Column::Channel.eq(channel.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let numbers = account_numbers(db, orders.values().map(|p| p.account_id).collect()).await?;
    Ok(on_date
        .into_iter()
        .filter_map(|r| {
            let order = orders.get(&r.payment_id)?;
            Some(LedgerRefund {
                out_trade_no: order.out_trade_no.clone(),
                refund_no: r.refund_no,
                account_no: numbers.get(&order.account_id).cloned().unwrap_or_default(),
                amount_fen: r.amount_fen,
                refunded_at: beijing(r.completed_at.unwrap_or(r.created_at)),
            })
        })
        .collect())
}

/// The matcher's view of a statement row.
pub fn gateway_row(row: &StatementRow) -> GatewayRow {
    GatewayRow {
        movement: match row.kind {
            RowKind::Payment => Movement::Payment,
            RowKind::Refund => Movement::Refund,
        },
        out_trade_no: row.out_trade_no.clone(),
        gateway_trade_no: row.gateway_trade_no.clone(),
        refund_no: row.refund_no.clone(),
        amount_fen: row.amount_fen,
        fee: row.fee,
        trade_time: row.trade_time,
        line_no: row.line_no,
    }
}
