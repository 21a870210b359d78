//! Set-wise posting for the webhook group committer: a batch of paid notifications is applied
//! with a fixed number of statements (lock the orders, move them to SUCCEEDED, lock the
//! accounts, read their open bills, write allocations, journal and raw records in multi-row
//! inserts) instead of a dozen round trips per notification.
//!
//! The same guards as [`settle`](super::settlement::settle) hold: the orders' rows are locked
//! (PostgreSQL `FOR UPDATE`, in id order; SQLite's `BEGIN IMMEDIATE` already excludes other
//! writers), only orders still PENDING or CLOSED are moved and posted, the move must touch
//! exactly those rows, and journal keys stay unique. Anything unusual in the batch (an
//! unknown order, a different amount, a refund or close notification) returns `None` before
//! anything is written, and the committer applies the batch one notification at a time with
//! savepoints instead; so does any database error, after a rollback.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::billing::{PAID, PARTIALLY_PAID, UNPAID};
use super::notifications::{OwnedRaw, RawNotification, Verified, raw_row};
use super::settlement::{
    CLOSED, PENDING, PaidEvidence, PaymentChannel, SUCCEEDED, allocation_row, entry_rows,
    open_bill, pay_bill,
};
use super::{App, AppError, AppResult};
use crate::db::entity::{bill, journal_entry, journal_posting, payment};
use crate::db::entity::{notification, payment_allocation};
use crate::db::writes::insert_chunked;
use crate::db::{prepayment, queries};
use crate::domain::allocation::{OpenBill, allocate};
use crate::domain::journal::payment_received;
use crate::domain::money::Money;
use crate::gateway::beijing::beijing_date;

/// One order this batch posts.
struct ToPost<'a> {
    channel: PaymentChannel,
    order: &'a payment::Model,
    evidence: &'a PaidEvidence,
}

/// The payments the jobs report, or `None` when one of them is not a plain payment.
pub(crate) fn plain_payments(
    jobs: &[(&Verified, &OwnedRaw)],
) -> Option<Vec<(PaymentChannel, PaidEvidence)>> {
    jobs.iter()
        .map(|(verified, _)| verified.paid_evidence())
        .collect()
}

/// Applies `jobs` (whose `payments` are `plain_payments(jobs)`) in `txn`. Returns each job's
/// outcome (`POSTED` or `DUPLICATE`), or `None` when the batch needs the one-by-one path.
pub(crate) async fn settle_group(
    app: &App,
    txn: &impl ConnectionTrait,
    jobs: &[(&Verified, &OwnedRaw)],
    payments: &[(PaymentChannel, PaidEvidence)],
) -> AppResult<Option<Vec<&'static str>>> {
    let orders = lock_orders(txn, payments).await?;
    let mut outcomes = Vec::with_capacity(payments.len());
    let mut to_post = Vec::new();
    let mut seen = HashSet::new();
    for (channel, evidence) in payments {
        let Some(order) = orders.get(&evidence.out_trade_no).filter(|order| {
            order.channel == channel.as_str() && order.amount_fen == evidence.amount_fen
        }) else {
            return Ok(None);
        };
        let open = order.status == PENDING || order.status == CLOSED;
        if open && seen.insert(order.id) {
            to_post.push(ToPost {
                channel: *channel,
                order,
                evidence,
            });
            outcomes.push("POSTED");
        } else {
            outcomes.push("DUPLICATE");
        }
    }
    if !to_post.is_empty() {
        mark_succeeded(txn, &to_post).await?;
        post_all(app, txn, &to_post).await?;
    }
    let raws: Vec<notification::ActiveModel> = jobs
        .iter()
        .zip(payments)
        .zip(&outcomes)
        .map(|(((_, raw), (channel, evidence)), outcome)| {
            let raw = RawNotification {
                headers: &raw.headers,
                body: &raw.body,
            };
            raw_row(
                channel.as_str(),
                &raw,
                true,
                outcome,
                None,
                Some(&evidence.out_trade_no),
            )
        })
        .collect();
    insert_chunked::<notification::Entity, _>(txn, raws).await?;
    Ok(Some(outcomes))
}

/// The batch's orders by number, locked on PostgreSQL (in id order, so batches that share
/// orders queue instead of deadlocking).
async fn lock_orders(
    txn: &impl ConnectionTrait,
    payments: &[(PaymentChannel, PaidEvidence)],
) -> AppResult<HashMap<String, payment::Model>> {
    let numbers: Vec<&str> = payments
        .iter()
        .map(|(_, evidence)| evidence.out_trade_no.as_str())
        .collect();
    let mut query = payment::Entity::find()
        .filter(payment::Column::OutTradeNo.is_in(numbers))
        .order_by_asc(payment::Column::Id);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query
        .all(txn)
        .await?
        .into_iter()
        .map(|order| (order.out_trade_no.clone(), order))
        .collect())
}

/// Moves every order of the batch to SUCCEEDED in one statement.
async fn mark_succeeded(txn: &impl ConnectionTrait, to_post: &[ToPost<'_>]) -> AppResult<()> {
    let mut trade_no = CaseStatement::new();
    let mut paid_at = CaseStatement::new();
    let mut business_date = CaseStatement::new();
    for item in to_post {
        let this = || payment::Column::Id.eq(item.order.id);
        let evidence = item.evidence;
        trade_no = trade_no.case(this(), Expr::val(evidence.gateway_trade_no.clone()));
        paid_at = paid_at.case(this(), Expr::val(evidence.paid_at));
        business_date = business_date.case(this(), Expr::val(beijing_date(evidence.paid_at)));
    }
    let ids: Vec<i64> = to_post.iter().map(|item| item.order.id).collect();
    let moved = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(SUCCEEDED))
        .col_expr(payment::Column::GatewayTradeNo, trade_no.into())
        .col_expr(payment::Column::PaidAt, paid_at.into())
        .col_expr(payment::Column::BusinessDate, business_date.into())
        .col_expr(payment::Column::SettledBy, Expr::value("NOTIFY"))
        .filter(payment::Column::Id.is_in(ids))
        .filter(payment::Column::Status.is_in([PENDING, CLOSED]))
        .exec(txn)
        .await?;
    if moved.rows_affected != to_post.len() as u64 {
        return Err(AppError::Database(sea_orm::DbErr::Custom(format!(
            "group settle moved {} of {} orders",
            moved.rows_affected,
            to_post.len()
        ))));
    }
    Ok(())
}

/// Locks the accounts, allocates every payment over its account's open bills (in batch
/// order, so two payments of one account see each other), and writes the results.
async fn post_all(app: &App, txn: &impl ConnectionTrait, to_post: &[ToPost<'_>]) -> AppResult<()> {
    let mut account_ids: Vec<i64> = to_post.iter().map(|item| item.order.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    prepayment::lock_accounts(txn, &account_ids).await?;
    let waivers = queries::late_fee_waivers(txn).await?;
    let mut bills: HashMap<i64, Vec<bill::Model>> = HashMap::new();
    for row in bill::Entity::find()
        .filter(bill::Column::AccountId.is_in(account_ids))
        .filter(bill::Column::Status.is_in([UNPAID, PARTIALLY_PAID]))
        .order_by_asc(bill::Column::DueOn)
        .all(txn)
        .await?
    {
        bills.entry(row.account_id).or_default().push(row);
    }
    let mut touched: BTreeMap<String, bill::Model> = BTreeMap::new();
    let mut allocations: Vec<payment_allocation::ActiveModel> = Vec::new();
    let mut heads: Vec<journal_entry::ActiveModel> = Vec::with_capacity(to_post.len());
    let mut postings: Vec<journal_posting::ActiveModel> = Vec::new();
    let mut prepayment_deltas: BTreeMap<i64, i64> = BTreeMap::new();
    for item in to_post {
        let order = item.order;
        let business_date = beijing_date(item.evidence.paid_at);
        let account_bills = bills.entry(order.account_id).or_default();
        let open: Vec<OpenBill> = account_bills
            .iter()
            .filter(|b| b.status != PAID)
            .map(|b| open_bill(b, business_date, &waivers, &app.settings))
            .collect();
        let allocation = allocate(Money::from_fen(order.amount_fen), &open);
        for part in &allocation.bills {
            if let Some(b) = account_bills.iter_mut().find(|b| b.bill_no == part.bill_no) {
                pay_bill(b, part);
                touched.insert(b.bill_no.clone(), b.clone());
            }
            allocations.push(allocation_row(order.id, part));
        }
        let entry = payment_received(item.channel.ledger(), &allocation);
        *prepayment_deltas.entry(order.account_id).or_default() +=
            prepayment::prepayment_delta_fen(&entry);
        let key = format!("{}:{}", entry.kind, order.out_trade_no);
        let (head, rows) = entry_rows(&key, &entry, Some(order.account_id), business_date)?;
        heads.push(head);
        postings.extend(rows);
    }
    update_bills(txn, touched.into_values()).await?;
    insert_chunked::<payment_allocation::Entity, _>(txn, allocations).await?;
    insert_chunked::<journal_entry::Entity, _>(txn, heads).await?;
    insert_chunked::<journal_posting::Entity, _>(txn, postings).await?;
    prepayment::adjust_prepayments(txn, &prepayment_deltas).await
}

async fn update_bills(
    txn: &impl ConnectionTrait,
    paid: impl Iterator<Item = bill::Model>,
) -> AppResult<()> {
    for b in paid {
        bill::Entity::update_many()
            .col_expr(
                bill::Column::PrincipalPaidFen,
                Expr::value(b.principal_paid_fen),
            )
            .col_expr(
                bill::Column::LateFeePaidFen,
                Expr::value(b.late_fee_paid_fen),
            )
            .col_expr(bill::Column::Status, Expr::value(b.status))
            .filter(bill::Column::Id.eq(b.id))
            .exec(txn)
            .await?;
    }
    Ok(())
}
