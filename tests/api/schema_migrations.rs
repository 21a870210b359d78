//! Migration 5 (compact bills) on a database that already holds bills: lines move into the
//! bill as JSON and back, and the bills' foreign key to accounts goes and comes back.

use ::migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use water_billing::config::DatabaseConfig;
use water_billing::db::bill_lines;

use crate::helpers::fresh_database;

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<u64, sea_orm::DbErr> {
    db.execute_unprepared(sql).await.map(|r| r.rows_affected())
}

async fn text(db: &DatabaseConnection, sql: &str) -> String {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

const BILL: &str = "INSERT INTO bills (bill_no, account_id, period, estimated, volume_m3, \
    period_from, period_to, total_fen, principal_paid_fen, late_fee_paid_fen, \
    prepayment_applied_fen, status, issued_on, due_on) VALUES";

#[tokio::test]
async fn bill_lines_move_into_the_bill_and_back() {
    let (url, _dir) = fresh_database().await;
    let db = water_billing::db::connect(&DatabaseConfig::new(url))
        .await
        .unwrap();
    Migrator::up(&db, Some(4)).await.unwrap();
    exec(&db, "INSERT INTO accounts (account_no, holder_name, address, customer_class, household_size, tariff_code, status) VALUES ('A-1', 'Li', 'Road 1', 'RESIDENTIAL', 3, 'T', 'ACTIVE')").await.unwrap();
    exec(&db, &format!("{BILL} ('B202501-A-1', 1, '2025-01', false, 10, '2025-01-01', '2025-01-31', 3590, 0, 0, 0, 'UNPAID', '2025-02-01', '2025-02-15')")).await.unwrap();
    exec(&db, &format!("{BILL} ('B202501-EMPTY', 1, '2025-02', false, 0, '2025-02-01', '2025-02-28', 0, 0, 0, 0, 'PAID', '2025-03-01', '2025-03-15')")).await.unwrap();
    exec(&db, "INSERT INTO bill_lines (bill_no, line_no, kind, volume_m3, unit_price, amount_fen) VALUES ('B202501-A-1', 2, 'SEWAGE', 10, '0.95', 950), ('B202501-A-1', 1, 'WATER_TIER_1', 10, '2.6400', 2640)").await.unwrap();

    Migrator::up(&db, None).await.unwrap();
    let lines = bill_lines::decode(
        &text(&db, "SELECT lines FROM bills WHERE bill_no = 'B202501-A-1'").await,
    )
    .unwrap();
    let shown: Vec<(i32, &str, i64, &str, i64)> = lines
        .iter()
        .map(|l| {
            (
                l.line_no,
                l.kind.as_str(),
                l.volume_m3,
                l.unit_price.as_str(),
                l.amount_fen,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (1, "WATER_TIER_1", 10, "2.6400", 2640),
            (2, "SEWAGE", 10, "0.95", 950)
        ]
    );
    let empty = text(
        &db,
        "SELECT lines FROM bills WHERE bill_no = 'B202501-EMPTY'",
    )
    .await;
    assert!(bill_lines::decode(&empty).unwrap().is_empty());
    // No foreign key any more: the account is not looked up (and locked) per bill.
    exec(&db, &format!("{BILL} ('B-ORPHAN', 999, '2025-01', false, 0, '2025-01-01', '2025-01-31', 0, 0, 0, 0, 'PAID', '2025-02-01', '2025-02-15')")).await.unwrap();
    exec(&db, "DELETE FROM bills WHERE bill_no = 'B-ORPHAN'")
        .await
        .unwrap();

    // Back to just before migration 5, whatever came after it.
    let after_4 = u32::try_from(Migrator::migrations().len() - 4).unwrap();
    Migrator::down(&db, Some(after_4)).await.unwrap();
    let restored = text(&db, "SELECT kind || ':' || unit_price || ':' || CAST(amount_fen AS TEXT) FROM bill_lines WHERE bill_no = 'B202501-A-1' AND line_no = 1").await;
    assert_eq!(restored, "WATER_TIER_1:2.6400:2640");
    let orphan = exec(&db, &format!("{BILL} ('B-ORPHAN', 999, '2025-01', false, 0, '2025-01-01', '2025-01-31', 0, 0, 0, 0, 'PAID', '2025-02-01', '2025-02-15')")).await;
    assert!(orphan.is_err(), "the foreign key is back: {orphan:?}");
    assert_eq!(
        text(
            &db,
            "SELECT status FROM bills WHERE bill_no = 'B202501-A-1'"
        )
        .await,
        "UNPAID"
    );
}
