//! Defect 1 of issue 10: prepayment spent twice. Each account holds 100.00 of prepayment (a
//! counter payment) and a reading that bills 35.50; a bill (IssueBill, or the billing cycle)
//! and a refund of the whole 100.00 race on every account. Exactly one may take the money:
//! either the refund (the bill stays UNPAID) or the bill (the refund is refused), never both.
//! Also migration 6, which adds the balance column and its constraint.

use ::migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder};
use water_billing::config::{BillingConfig, DatabaseConfig};
use water_billing::grpc::pb;

use crate::helpers::*;

const ACCOUNTS: usize = 100;
const PAID_FEN: i64 = 10_000;
const BILL_FEN: i64 = 3_550;

fn today() -> chrono::NaiveDate {
    water_billing::gateway::beijing::beijing_date(chrono::Utc::now())
}

fn period() -> String {
    today().format("%Y-%m").to_string()
}

/// `ACCOUNTS` accounts, each with 100.00 paid at the counter (all prepayment) and a reading
/// of 10 m³ waiting for its bill.
async fn staged(batch_size: u32) -> TestApp {
    let mut app = spawn_app_with(BillingConfig {
        cycle_batch_size: batch_size,
        ..Default::default()
    })
    .await;
    app.upsert_tariff(flat_tariff()).await;
    let installed = (today() - chrono::Days::new(40)).to_string();
    let mut staging = Vec::new();
    for n in 0..ACCOUNTS {
        let (mut accounts, mut billing, mut payments) = (
            app.accounts.clone(),
            app.billing.clone(),
            app.payments.clone(),
        );
        let installed = installed.clone();
        staging.push(tokio::spawn(async move {
            let account_no = format!("A-{n}");
            accounts
                .create_account(pb::CreateAccountRequest {
                    account_no: account_no.clone(),
                    holder_name: "张三".into(),
                    address: "1 Water St".into(),
                    customer_class: wire::<pb::CustomerClass>("RESIDENTIAL"),
                    household_size: 4,
                    tariff_code: "FLAT".into(),
                })
                .await
                .unwrap();
            accounts
                .install_meter(pb::InstallMeterRequest {
                    account_no: account_no.clone(),
                    meter_no: format!("M-{account_no}"),
                    register_digits: 5,
                    initial_index: 0,
                    installed_on: installed,
                })
                .await
                .unwrap();
            payments
                .record_counter_payment(pb::RecordCounterPaymentRequest {
                    account_no: account_no.clone(),
                    amount: "100.00".into(),
                    cashier_id: "C-1".into(),
                    receipt_no: format!("R-{n}"),
                })
                .await
                .unwrap();
            billing
                .record_reading(pb::RecordReadingRequest {
                    meter_no: format!("M-{account_no}"),
                    index: 10,
                    read_on: today().to_string(),
                    source: wire::<pb::ReadingSource>("ACTUAL"),
                    reading_ref: String::new(),
                })
                .await
                .unwrap();
        }));
    }
    for task in staging {
        task.await.unwrap();
    }
    assert_eq!(
        app.count("accounts", &format!("prepayment_fen = {PAID_FEN}"))
            .await,
        ACCOUNTS as i64
    );
    app
}

/// Refunds the whole counter payment of every account, concurrently; refusals are expected.
fn refund_all(app: &TestApp) -> Vec<tokio::task::JoinHandle<Result<(), tonic::Status>>> {
    (0..ACCOUNTS)
        .map(|n| {
            let mut payments = app.payments.clone();
            tokio::spawn(async move {
                payments
                    .refund_counter_payment(pb::RefundCounterPaymentRequest {
                        out_trade_no: format!("CT-R-{n}"),
                        amount: "100.00".into(),
                        reason: "moving out".into(),
                        refund_no: format!("RF-{n}"),
                        cashier_id: "C-1".into(),
                    })
                    .await
                    .map(drop)
            })
        })
        .collect()
}

/// A refund may only be refused because the bill took the money first.
async fn refusals_are_preconditions(
    refunds: Vec<tokio::task::JoinHandle<Result<(), tonic::Status>>>,
) {
    for refund in refunds {
        if let Err(status) = refund.await.unwrap() {
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        }
    }
}

const JOURNAL_BALANCE: &str = "COALESCE((SELECT SUM(p.credit_fen - p.debit_fen) \
    FROM journal_postings p WHERE p.account_id = a.id AND p.ledger = 'PREPAYMENT'), 0)";

/// Prepayment never below zero, the column equal to the journal, and every fen of the
/// 100.00 accounted for: either all refunded, or 35.50 paid the bill and 64.50 is left.
async fn assert_every_fen_accounted_for(app: &TestApp) {
    assert_eq!(app.count("accounts", "prepayment_fen < 0").await, 0);
    assert_eq!(
        app.count("accounts a", &format!("{JOURNAL_BALANCE} < 0"))
            .await,
        0,
        "no journal balance below zero"
    );
    assert_eq!(
        app.count(
            "accounts a",
            &format!("a.prepayment_fen <> {JOURNAL_BALANCE}")
        )
        .await,
        0,
        "the balance column follows the journal"
    );
    let applied = "COALESCE((SELECT SUM(b.prepayment_applied_fen) FROM bills b \
        WHERE b.account_id = a.id), 0)";
    let refunded = "COALESCE((SELECT SUM(r.amount_fen) FROM refunds r \
        JOIN payments p ON p.id = r.payment_id \
        WHERE p.account_id = a.id AND r.status <> 'FAILED'), 0)";
    assert_eq!(
        app.count(
            "accounts a",
            &format!("a.prepayment_fen + {applied} + {refunded} <> {PAID_FEN}")
        )
        .await,
        0,
        "payment = paid from prepayment + refunded + prepayment left"
    );
    let one_or_the_other = format!(
        "({refunded} = {PAID_FEN} AND {applied} = 0) OR \
         ({refunded} = 0 AND {applied} = {BILL_FEN})"
    );
    assert_eq!(
        app.count("accounts a", &one_or_the_other).await,
        ACCOUNTS as i64,
        "the refund or the bill took the money, never both"
    );
    assert_eq!(app.count("bills", "1 = 1").await, ACCOUNTS as i64);
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn a_bill_and_a_refund_racing_on_one_prepayment_never_both_spend_it() {
    let app = staged(5_000).await;
    let bills: Vec<_> = (0..ACCOUNTS)
        .map(|n| {
            let mut billing = app.billing.clone();
            let period = period();
            tokio::spawn(async move {
                billing
                    .issue_bill(pb::IssueBillRequest {
                        account_no: format!("A-{n}"),
                        period,
                        issued_on: today().to_string(),
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let refunds = refund_all(&app);
    for bill in bills {
        bill.await.unwrap();
    }
    refusals_are_preconditions(refunds).await;
    assert_every_fen_accounted_for(&app).await;
}

#[tokio::test]
async fn the_billing_cycle_racing_refunds_never_spends_a_prepayment_twice() {
    let app = staged(7).await;
    let mut billing = app.billing.clone();
    let cycle = tokio::spawn(async move {
        let mut stream = billing
            .run_billing_cycle(pb::RunBillingCycleRequest {
                period: period(),
                issued_on: today().to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(progress) = stream.message().await.unwrap() {
            last = Some(progress);
        }
        last.unwrap()
    });
    let refunds = refund_all(&app);
    let last = cycle.await.unwrap();
    assert!(last.done);
    assert_eq!(
        (last.processed, last.issued, last.failed),
        (ACCOUNTS as u64, ACCOUNTS as u64, 0)
    );
    refusals_are_preconditions(refunds).await;
    assert_every_fen_accounted_for(&app).await;
}

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<u64, sea_orm::DbErr> {
    db.execute_unprepared(sql).await.map(|r| r.rows_affected())
}

async fn migrated_to_5() -> (DatabaseConnection, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_database().await;
    let db = water_billing::db::connect(&DatabaseConfig::new(url))
        .await
        .unwrap();
    Migrator::up(&db, Some(5)).await.unwrap();
    for n in 1..=2 {
        exec(&db, &format!("INSERT INTO accounts (account_no, holder_name, address, customer_class, household_size, tariff_code, status) VALUES ('A-{n}', 'Li', 'Road 1', 'RESIDENTIAL', 3, 'T', 'ACTIVE')")).await.unwrap();
    }
    (db, dir)
}

async fn posting(db: &DatabaseConnection, key: &str, account_id: i64, debit: i64, credit: i64) {
    exec(db, &format!("INSERT INTO journal_entries (entry_key, kind, account_id, posted_on) VALUES ('{key}', 'TEST', {account_id}, '2025-01-01')")).await.unwrap();
    exec(db, &format!("INSERT INTO journal_postings (entry_key, ledger, account_id, debit_fen, credit_fen) VALUES ('{key}', 'PREPAYMENT', {account_id}, {debit}, {credit}), ('{key}', 'COUNTER_CASH', {account_id}, {credit}, {debit})")).await.unwrap();
}

#[tokio::test]
async fn migration_6_copies_each_prepayment_from_the_journal_and_forbids_a_negative_one() {
    let (db, _dir) = migrated_to_5().await;
    posting(&db, "PAY:1", 1, 0, 50_000).await;
    posting(&db, "REFUND:1", 1, 20_000, 0).await;
    Migrator::up(&db, None).await.unwrap();
    let balances = water_billing::db::entity::account::Entity::find()
        .order_by_asc(water_billing::db::entity::account::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.account_no, a.prepayment_fen))
        .collect::<Vec<_>>();
    assert_eq!(balances, [("A-1".into(), 30_000), ("A-2".into(), 0)]);
    let negative = exec(&db, "UPDATE accounts SET prepayment_fen = -1 WHERE id = 2").await;
    assert!(
        negative
            .unwrap_err()
            .to_string()
            .contains("ck_accounts_prepayment_non_negative"),
        "the constraint refuses a negative balance"
    );

    // Back to just before migration 6, whatever came after it.
    let after_5 = u32::try_from(Migrator::migrations().len() - 5).unwrap();
    Migrator::down(&db, Some(after_5)).await.unwrap();
    assert!(
        exec(&db, "SELECT prepayment_fen FROM accounts")
            .await
            .is_err(),
        "the column is gone"
    );
    Migrator::up(&db, None).await.unwrap();
    let again: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT prepayment_fen AS n FROM accounts WHERE id = 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert_eq!(again, 30_000);
}

#[tokio::test]
async fn migration_6_refuses_a_journal_that_already_shows_a_negative_prepayment() {
    let (db, _dir) = migrated_to_5().await;
    posting(&db, "OVERSPENT:2", 2, 3_550, 0).await;
    let refused = Migrator::up(&db, None).await.unwrap_err().to_string();
    assert!(refused.contains("account id 2: -3550 fen"), "{refused}");
    assert!(
        exec(&db, "SELECT prepayment_fen FROM accounts")
            .await
            .is_err(),
        "nothing of the migration was applied"
    );
}
