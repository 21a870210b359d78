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

use super::notifications::{OwnedRaw, RawNotification, Verified, raw_row};
use super::settlement::{
    PaidEvidence, PaymentChannel, SUCCEEDED, allocation_row, entry_rows, payment_status, refused,
    stored, write_bill_balances,
};
use super::{App, AppError, AppResult, BillingSettings};
use crate::db::entity::{journal_entry, journal_posting, payment};
use crate::db::entity::{notification, payment_allocation};
use crate::db::writes::insert_chunked;
use crate::db::{prepayment, queries};
use crate::domain::bill_status::BillBalance;
use crate::domain::evidence::{EvidenceSource, NotificationOutcome};
use crate::domain::money::Money;
use crate::domain::payment::{PaymentEvent, PaymentRefusal, PaymentStatus};
use crate::domain::posting::{self, AccountBooks, Terms};
use crate::gateway::beijing::beijing_date;

/// One order this batch posts.
pub(crate) struct ToPost<'a> {
    pub(crate) channel: PaymentChannel,
    pub(crate) order: &'a payment::Model,
    pub(crate) evidence: &'a PaidEvidence,
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
) -> AppResult<Option<Vec<NotificationOutcome>>> {
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
        // The same transition function as the one-by-one path decides; a payment for a
        // reversed order goes to suspense, which that path does.
        let open = match payment_status(order)?.on(PaymentEvent::Paid) {
            Ok(_) => true,
            Err(PaymentRefusal::AlreadyPosted) => false,
            Err(_) => return Ok(None),
        };
        if open && seen.insert(order.id) {
            to_post.push(ToPost {
                channel: *channel,
                order,
                evidence,
            });
            outcomes.push(NotificationOutcome::Posted);
        } else {
            outcomes.push(NotificationOutcome::Duplicate);
        }
    }
    if !to_post.is_empty() {
        mark_succeeded(txn, &to_post).await?;
        post_all(txn, &to_post, &app.settings).await?;
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
                *outcome,
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
        .col_expr(
            payment::Column::SettledBy,
            Expr::value(EvidenceSource::Notify.as_str()),
        )
        .filter(payment::Column::Id.is_in(ids))
        .filter(payment::Column::Status.is_in(stored(PaymentStatus::accepting(PaymentEvent::Paid))))
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

/// Locks the accounts, applies the posting rule to every payment over its account's open
/// bills (in batch order, so two payments of one account see each other), and writes the
/// effects set-wise: the same rule and the same rows as `settlement::post_to_account`.
pub(crate) async fn post_all(
    txn: &impl ConnectionTrait,
    to_post: &[ToPost<'_>],
    settings: &BillingSettings,
) -> AppResult<()> {
    let mut account_ids: Vec<i64> = to_post.iter().map(|item| item.order.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let mut books: HashMap<i64, AccountBooks> = prepayment::lock_accounts(txn, &account_ids)
        .await?
        .into_iter()
        .map(|a| {
            let books = AccountBooks {
                bills: Vec::new(),
                prepayment: Money::from_fen(a.prepayment_fen),
            };
            (a.id, books)
        })
        .collect();
    let waivers = queries::late_fee_waivers(txn).await?;
    let rows = queries::open_bills(txn, &account_ids).await?;
    for row in &rows {
        if let Some(account) = books.get_mut(&row.account_id) {
            account.bills.push(queries::booked_bill(row)?);
        }
    }
    let mut touched: BTreeMap<String, BillBalance> = BTreeMap::new();
    let mut allocations: Vec<payment_allocation::ActiveModel> = Vec::new();
    let mut heads: Vec<journal_entry::ActiveModel> = Vec::with_capacity(to_post.len());
    let mut postings: Vec<journal_posting::ActiveModel> = Vec::new();
    let mut prepayment_deltas: BTreeMap<i64, i64> = BTreeMap::new();
    for item in to_post {
        let order = item.order;
        let business_date = beijing_date(item.evidence.paid_at);
        let account = books.get_mut(&order.account_id).ok_or_else(|| {
            queries::corrupt(
                "payment",
                format!("account id {} missing", order.account_id),
            )
        })?;
        let terms = Terms {
            on: business_date,
            waivers: &waivers,
            late_fee: &settings.late_fee,
        };
        let amount = Money::from_fen(order.amount_fen);
        let effect =
            posting::receive(account, amount, item.channel.ledger(), &terms).map_err(refused)?;
        account.apply(&effect);
        touched.extend(effect.bills.iter().cloned());
        allocations.extend(
            effect
                .allocation
                .bills
                .iter()
                .map(|part| allocation_row(order.id, part)),
        );
        *prepayment_deltas.entry(order.account_id).or_default() +=
            prepayment::prepayment_delta_fen(&effect.entry);
        let key = format!("{}:{}", effect.entry.kind, order.out_trade_no);
        let (head, rows) = entry_rows(&key, &effect.entry, Some(order.account_id), business_date)?;
        heads.push(head);
        postings.extend(rows);
    }
    let touched: Vec<(String, BillBalance)> = touched.into_iter().collect();
    write_bill_balances(txn, &rows, &touched).await?;
    insert_chunked::<payment_allocation::Entity, _>(txn, allocations).await?;
    insert_chunked::<journal_entry::Entity, _>(txn, heads).await?;
    insert_chunked::<journal_posting::Entity, _>(txn, postings).await?;
    prepayment::adjust_prepayments(txn, &prepayment_deltas).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The group path and the single path on the same batch: same accounts, same bills, same
    //! payments, two databases; the rows they leave must be the same.

    use chrono::{TimeZone, Utc};
    use sea_orm::{DatabaseConnection, Statement};

    use super::*;
    use crate::app::settlement::{PENDING, post_to_account};
    use crate::config::DatabaseConfig;

    const SEED: &str = "
        INSERT INTO accounts (account_no, holder_name, address, customer_class, household_size, tariff_code, status, prepayment_fen) VALUES
          ('A-1', 'Li', 'Road 1', 'RESIDENTIAL', 3, 'T', 'ACTIVE', 0),
          ('A-2', 'Wang', 'Road 2', 'RESIDENTIAL', 3, 'T', 'ACTIVE', 0),
          ('A-3', 'Zhao', 'Road 3', 'RESIDENTIAL', 3, 'T', 'ACTIVE', 0);
        INSERT INTO bills (bill_no, account_id, period, estimated, volume_m3, period_from, period_to, total_fen, principal_paid_fen, late_fee_paid_fen, prepayment_applied_fen, status, issued_on, due_on, lines) VALUES
          ('B1-A-1', 1, '2025-01', false, 10, '2025-01-01', '2025-01-31', 3550, 1000, 0, 1000, 'PARTIALLY_PAID', '2025-02-01', '2025-02-15', '[]'),
          ('B2-A-1', 1, '2025-02', false, 10, '2025-02-01', '2025-02-28', 3550, 0, 0, 0, 'UNPAID', '2025-03-01', '2025-03-15', '[]'),
          ('B1-A-2', 2, '2025-02', false, 20, '2025-02-01', '2025-02-28', 7100, 0, 0, 0, 'UNPAID', '2025-03-01', '2025-03-15', '[]');";

    async fn seeded() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&DatabaseConfig::new(url)).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        db.execute_unprepared(SEED).await.unwrap();
        (db, dir)
    }

    /// Two payments of A-1 (the second sees the first), one of A-2, one of A-3 (no bills).
    fn orders() -> Vec<(payment::Model, PaidEvidence)> {
        let paid_at = Utc.with_ymd_and_hms(2025, 3, 20, 2, 0, 0).unwrap();
        [(1, 1, 3000), (2, 1, 5000), (3, 2, 7100), (4, 3, 1234)]
            .into_iter()
            .map(|(id, account_id, amount_fen)| {
                let out_trade_no = format!("WB-{id}");
                let order = payment::Model {
                    id,
                    out_trade_no: out_trade_no.clone(),
                    account_id,
                    channel: "ALIPAY".into(),
                    amount_fen,
                    status: PENDING.into(),
                    idempotency_key: None,
                    qr_code: None,
                    created_at: paid_at,
                    expires_at: None,
                    last_queried_at: None,
                    gateway_trade_no: None,
                    paid_at: None,
                    business_date: None,
                    refunded_fen: 0,
                    cashier_id: None,
                    receipt_no: None,
                    settled_by: None,
                };
                let evidence = PaidEvidence {
                    out_trade_no,
                    gateway_trade_no: format!("G-{id}"),
                    amount_fen,
                    paid_at,
                    source: EvidenceSource::Notify,
                };
                (order, evidence)
            })
            .collect()
    }

    async fn rows(db: &DatabaseConnection) -> Vec<String> {
        let mut out = Vec::new();
        for sql in [
            "SELECT bill_no || ':' || CAST(principal_paid_fen AS TEXT) || ':' || CAST(late_fee_paid_fen AS TEXT) || ':' || status AS r FROM bills ORDER BY bill_no",
            "SELECT CAST(payment_id AS TEXT) || ':' || bill_no || ':' || CAST(late_fee_fen AS TEXT) || ':' || CAST(principal_fen AS TEXT) AS r FROM payment_allocations ORDER BY payment_id, bill_no",
            "SELECT entry_key || ':' || kind || ':' || CAST(account_id AS TEXT) || ':' || CAST(posted_on AS TEXT) AS r FROM journal_entries ORDER BY entry_key",
            "SELECT entry_key || ':' || ledger || ':' || CAST(account_id AS TEXT) || ':' || CAST(debit_fen AS TEXT) || ':' || CAST(credit_fen AS TEXT) AS r FROM journal_postings ORDER BY entry_key, ledger",
            "SELECT account_no || ':' || CAST(prepayment_fen AS TEXT) AS r FROM accounts ORDER BY id",
        ] {
            for row in db
                .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
            {
                out.push(row.try_get::<String>("", "r").unwrap());
            }
        }
        out
    }

    #[tokio::test]
    async fn the_group_path_and_the_single_path_leave_the_same_rows() {
        let settings = BillingSettings::default();
        let orders = orders();
        let (single, _a) = seeded().await;
        let txn = crate::db::begin_write(&single).await.unwrap();
        for (order, evidence) in &orders {
            post_to_account(
                &txn,
                order.account_id,
                order.id,
                &order.out_trade_no,
                Money::from_fen(order.amount_fen),
                PaymentChannel::Alipay,
                beijing_date(evidence.paid_at),
                &settings,
            )
            .await
            .unwrap();
        }
        txn.commit().await.unwrap();

        let (group, _b) = seeded().await;
        let to_post: Vec<ToPost<'_>> = orders
            .iter()
            .map(|(order, evidence)| ToPost {
                channel: PaymentChannel::Alipay,
                order,
                evidence,
            })
            .collect();
        let txn = crate::db::begin_write(&group).await.unwrap();
        post_all(&txn, &to_post, &settings).await.unwrap();
        txn.commit().await.unwrap();

        let (single, group) = (rows(&single).await, rows(&group).await);
        assert_eq!(single, group);
        // The batch did something worth comparing: late fees, a second payment of one
        // account seeing the first, prepayment left over.
        assert!(
            single.contains(&"B1-A-1:3550:244:PAID".to_owned()),
            "{single:#?}"
        );
        assert!(
            single.contains(&"B2-A-1:3550:42:PAID".to_owned()),
            "{single:#?}"
        );
        assert!(single.contains(&"A-1:1614".to_owned()), "{single:#?}");
        assert!(single.contains(&"A-3:1234".to_owned()), "{single:#?}");
    }
}
