//! Our side of a run: the channel's posted payments and completed refunds of the business
//! date, and the statement rows, both converted into the matcher's inputs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use futures::{FutureExt as _, Stream, TryStreamExt as _};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, JoinType, QueryFilter,
    QuerySelect, StreamTrait,
};

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

/// How long a SQLite reader lets the driver's worker thread fill its row buffer before it
/// looks again (see [`for_each_row`]): short against the ≈ 6 ms the worker takes to fill a
/// buffer of `db::SQLITE_ROW_BUFFER_ROWS` (tokio's timer rounds it up to 1 ms).
const SQLITE_REFILL_WAIT_US: u64 = 500;

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

/// Loads the channel's payments and refunds of `date`.
pub async fn load(
    db: &(impl ConnectionTrait + StreamTrait),
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Ledger> {
    let payments = load_payments(db, channel, date).await?;
    let refunds = load_refunds(db, channel, date).await?;
    Ok(Ledger { payments, refunds })
}

/// The channel's succeeded payments of `date`: one query, no full models, and each row
/// converted as it arrives, so a day of a million payments never exists twice in memory
/// (`fetch_all` used to hold ≈ 1.3 GiB of driver rows before the first conversion).
async fn load_payments(
    db: &(impl ConnectionTrait + StreamTrait),
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Vec<LedgerPayment>> {
    use sea_orm::sea_query::{Expr, Func};
    let to_account = payment::Entity::belongs_to(account::Entity)
        .from(payment::Column::AccountId)
        .to(account::Column::Id)
        .into();
    let paid_at = Func::coalesce([
        Expr::col((payment::Entity, payment::Column::PaidAt)),
        Expr::col((payment::Entity, payment::Column::CreatedAt)),
    ]);
    let rows = payment::Entity::find()
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
        .into_tuple::<PaymentRow>()
        .stream(db)
        .await?;
    let sqlite = ConnectionTrait::get_database_backend(db) == DatabaseBackend::Sqlite;
    let mut payments = Vec::new();
    for_each_row(rows, sqlite, |row| payments.push(ledger_payment(row))).await?;
    Ok(payments)
}

fn ledger_payment(row: PaymentRow) -> LedgerPayment {
    let (out_trade_no, gateway_trade_no, account_no, amount_fen, text, refunded_fen, at) = row;
    LedgerPayment {
        status: status(&text),
        paid_at: beijing(at),
        out_trade_no,
        gateway_trade_no,
        account_no: account_no.unwrap_or_default(),
        amount_fen,
        refunded_fen,
    }
}

/// Calls `each` with every row of `rows`, in order.
///
/// sqlx-sqlite steps a query on its own worker thread and hands each row over a bounded
/// channel. A reader that awaits the empty channel is woken once per row: two context
/// switches per row, which `perf` showed to be most of a million-row load (3–5 s against
/// 0.8 s for the same SELECT in the `sqlite3` shell). So on SQLite a reader that finds no row
/// ready sleeps [`SQLITE_REFILL_WAIT_US`] while the worker fills its buffer
/// (`db::SQLITE_ROW_BUFFER_ROWS`) and then takes the buffered rows without waiting. The
/// PostgreSQL driver decodes rows from the socket in this task, so there it simply awaits.
async fn for_each_row<T>(
    mut rows: impl Stream<Item = Result<T, DbErr>> + Unpin,
    sqlite: bool,
    mut each: impl FnMut(T),
) -> AppResult<()> {
    let refill = Duration::from_micros(SQLITE_REFILL_WAIT_US);
    loop {
        let next = match rows.try_next().now_or_never() {
            Some(next) => next?,
            None if sqlite => {
                tokio::time::sleep(refill).await;
                continue;
            }
            None => rows.try_next().await?,
        };
        match next {
            Some(row) => each(row),
            None => return Ok(()),
        }
    }
}

/// Our payments of the previous and next business dates: a statement row that is one of
/// them is a near-midnight payment the gateway dated differently, not money we lack.
pub async fn adjacent_payments(
    db: &(impl ConnectionTrait + StreamTrait),
    channel: PaymentChannel,
    date: NaiveDate,
) -> AppResult<Vec<LedgerPayment>> {
    let mut payments = Vec::new();
    for day in [date.pred_opt(), date.succ_opt()].into_iter().flatten() {
        payments.extend(load_payments(db, channel, day).await?);
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

/// The matcher's view of a statement row, borrowing its numbers.
pub fn gateway_row(row: &StatementRow) -> GatewayRow<'_> {
    GatewayRow {
        movement: match row.kind {
            RowKind::Payment => Movement::Payment,
            RowKind::Refund => Movement::Refund,
        },
        out_trade_no: Cow::Borrowed(&row.out_trade_no),
        gateway_trade_no: Cow::Borrowed(&row.gateway_trade_no),
        refund_no: row.refund_no.as_deref().map(Cow::Borrowed),
        amount_fen: row.amount_fen,
        fee: row.fee,
        trade_time: row.trade_time,
        line_no: row.line_no,
    }
}
