//! BillingService: bills for every worked example of domain.md section 7, idempotency, errors.

use tonic::Code;
use water_billing::grpc::pb;

use crate::helpers::*;

/// Bills January (to reach `billed_so_far`), then February for 45 m³ more.
async fn february_bill(household: u32, billed_so_far: u64) -> pb::Bill {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    app.residential_account("A-1", "RES", household, 1234 - billed_so_far, "2024-01-01")
        .await;
    app.read("M-A-1", 1234, "2024-01-31").await.unwrap();
    app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    app.read("M-A-1", 1279, "2024-02-29").await.unwrap();
    app.issue("A-1", "2024-02", "2024-03-01").await.unwrap()
}

#[tokio::test]
async fn example_7_1_a_bill_crossing_a_tier_totals_192_15() {
    let bill = february_bill(4, 198).await;
    assert_eq!(
        line(&bill, "WATER_TIER_1"),
        vec![(18, "2.40".into(), "43.20".into())]
    );
    assert_eq!(
        line(&bill, "WATER_TIER_2"),
        vec![(27, "3.60".into(), "97.20".into())]
    );
    assert_eq!(
        line(&bill, "SEWAGE"),
        vec![(45, "0.95".into(), "42.75".into())]
    );
    assert_eq!(
        line(&bill, "RESOURCE_TAX"),
        vec![(45, "0.20".into(), "9.00".into())]
    );
    assert_eq!(bill.total_amount, "192.15");
    assert_eq!(bill.segments.len(), 1);
    assert_eq!(
        (
            bill.segments[0].previous_index,
            bill.segments[0].current_index,
            bill.segments[0].volume_m3
        ),
        (1234, 1279, 45)
    );
}

#[tokio::test]
async fn example_7_2_a_large_household_stays_in_tier_1() {
    let bill = february_bill(6, 198).await;
    assert_eq!(
        line(&bill, "WATER_TIER_1"),
        vec![(45, "2.40".into(), "108.00".into())]
    );
    assert_eq!(bill.total_amount, "159.75");
}

#[tokio::test]
async fn example_7_3_a_bill_crossing_from_tier_2_to_tier_3_totals_332_55() {
    let bill = february_bill(4, 288).await;
    assert_eq!(
        line(&bill, "WATER_TIER_2"),
        vec![(12, "3.60".into(), "43.20".into())]
    );
    assert_eq!(
        line(&bill, "WATER_TIER_3"),
        vec![(33, "7.20".into(), "237.60".into())]
    );
    assert_eq!(bill.total_amount, "332.55");
}

#[tokio::test]
async fn example_7_4_a_bill_across_the_year_end_is_split_by_days() {
    let mut app = spawn_app().await;
    app.upsert_tariff(residential_tariff()).await;
    app.residential_account("A-1", "RES", 4, 0, "2024-01-01")
        .await;
    app.read("M-A-1", 290, "2024-12-01").await.unwrap();
    app.issue("A-1", "2024-12", "2024-12-02").await.unwrap();
    app.read("M-A-1", 330, "2025-02-01").await.unwrap();
    let bill = app.issue("A-1", "2025-02", "2025-02-02").await.unwrap();
    assert_eq!(
        line(&bill, "WATER_TIER_1"),
        vec![(20, "2.40".into(), "48.00".into())]
    );
    assert_eq!(
        line(&bill, "WATER_TIER_2"),
        vec![(10, "3.60".into(), "36.00".into())]
    );
    assert_eq!(
        line(&bill, "WATER_TIER_3"),
        vec![(10, "7.20".into(), "72.00".into())]
    );
    assert_eq!(
        line(&bill, "SEWAGE"),
        vec![(40, "0.95".into(), "38.00".into())]
    );
    assert_eq!(
        line(&bill, "RESOURCE_TAX"),
        vec![(40, "0.20".into(), "8.00".into())]
    );
    assert_eq!(bill.total_amount, "202.00");
}

#[tokio::test]
async fn example_7_5_a_non_residential_bill_totals_650_75() {
    let mut app = spawn_app().await;
    app.upsert_tariff(non_residential_tariff()).await;
    app.create_account("B-1", "NONRES", "NON_RESIDENTIAL", 1)
        .await;
    app.install_meter("B-1", "MB1", 6, 0, "2024-01-01").await;
    app.read("MB1", 137, "2024-01-31").await.unwrap();
    let bill = app.issue("B-1", "2024-01", "2024-02-01").await.unwrap();
    assert_eq!(
        line(&bill, "WATER_TIER_1"),
        vec![(137, "3.15".into(), "431.55".into())]
    );
    assert_eq!(
        line(&bill, "SEWAGE"),
        vec![(137, "1.40".into(), "191.80".into())]
    );
    assert_eq!(
        line(&bill, "RESOURCE_TAX"),
        vec![(137, "0.20".into(), "27.40".into())]
    );
    assert_eq!(bill.total_amount, "650.75");
}

async fn price_change_bill(method: &str) -> pb::Bill {
    let mut app = spawn_app().await;
    app.upsert_tariff(non_residential_tariff()).await;
    let mut new_price = non_residential_tariff();
    new_price.effective_from = "2024-04-01".into();
    new_price.tiers = vec![tier("", "3.45")];
    new_price.price_change = wire::<pb::PriceChange>(method);
    app.upsert_tariff(new_price).await;
    app.create_account("B-1", "NONRES", "NON_RESIDENTIAL", 1)
        .await;
    app.install_meter("B-1", "MB1", 6, 0, "2024-03-10").await;
    app.read("MB1", 31, "2024-05-09").await.unwrap();
    app.issue("B-1", "2024-05", "2024-05-10").await.unwrap()
}

#[tokio::test]
async fn example_7_6_a_price_change_prices_the_period_at_the_reading_date_by_default() {
    let bill = price_change_bill("READING_DATE").await;
    assert_eq!(
        line(&bill, "WATER_TIER_1"),
        vec![(31, "3.45".into(), "106.95".into())]
    );
    assert_eq!(bill.total_amount, "156.55");
}

#[tokio::test]
async fn example_7_6_a_price_change_splits_the_volume_by_days_when_asked() {
    let bill = price_change_bill("SPLIT_BY_DAYS").await;
    let mut water = line(&bill, "WATER_TIER_1");
    water.sort();
    assert_eq!(
        water,
        vec![
            (11, "3.15".into(), "34.65".into()),
            (20, "3.45".into(), "69.00".into())
        ]
    );
    assert_eq!(
        line(&bill, "SEWAGE"),
        vec![(31, "1.40".into(), "43.40".into())]
    );
    assert_eq!(bill.total_amount, "153.25");
}

#[tokio::test]
async fn example_7_7_late_fees_skip_waived_closure_days_and_are_capped() {
    let mut app = spawn_app().await;
    let mut tariff = flat_tariff();
    tariff.code = "LF".into();
    tariff.tiers = vec![tier("", "86.35")];
    tariff.sewage_price = "0.00".into();
    tariff.resource_price = "0.00".into();
    app.upsert_tariff(tariff).await;
    app.residential_account("A-1", "LF", 4, 0, "2022-03-01")
        .await;
    app.read("M-A-1", 1, "2022-04-01").await.unwrap();
    let bill = app.issue("A-1", "2022-04", "2022-04-05").await.unwrap();
    assert_eq!(
        (bill.total_amount.as_str(), bill.due_on.as_str()),
        ("86.35", "2022-04-20")
    );
    let uncapped = app.account("A-1", "2023-06-15").await;
    assert_eq!(
        uncapped.late_fee, "86.35",
        "420 days at 3‰ is 108.801, capped at the principal"
    );
    app.closures
        .schedule_closure(pb::ScheduleClosureRequest {
            starts_on: "2022-05-01".into(),
            ends_on: "2023-03-31".into(),
            reason: "epidemic lockdown".into(),
            waive_late_fees: true,
            close_counters: Some(true),
        })
        .await
        .unwrap();
    let waived = app.account("A-1", "2023-06-15").await;
    assert_eq!(
        waived.late_fee, "22.01",
        "85 chargeable days: 22.01925 truncated"
    );
    assert_eq!(waived.arrears_principal, "86.35");
    assert_eq!(waived.amount_due, "108.36");
    let before_due = app.account("A-1", "2022-04-20").await;
    assert_eq!(before_due.late_fee, "0.00");
}

async fn history_for_estimates(app: &mut crate::helpers::TestApp) {
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 1931, "2024-01-01")
        .await;
    for (index, on, period, issued) in [
        (1969, "2024-01-31", "2024-01", "2024-02-01"),
        (2010, "2024-02-29", "2024-02", "2024-03-01"),
        (2046, "2024-03-31", "2024-03", "2024-04-01"),
    ] {
        app.read("M-A-1", index, on).await.unwrap();
        app.issue("A-1", period, issued).await.unwrap();
    }
}

#[tokio::test]
async fn example_7_8_a_missing_reading_is_estimated_and_the_next_actual_catches_up() {
    let mut app = spawn_app().await;
    history_for_estimates(&mut app).await;
    let estimate = app.issue("A-1", "2024-04", "2024-05-01").await.unwrap();
    assert!(estimate.estimated);
    assert_eq!(
        (estimate.volume_m3, estimate.total_amount.as_str()),
        (38, "134.90")
    );
    assert_eq!(estimate.segments[0].current_index, 2084);
    app.read("M-A-1", 2131, "2024-05-31").await.unwrap();
    let actual = app.issue("A-1", "2024-05", "2024-06-01").await.unwrap();
    assert!(!actual.estimated);
    assert_eq!(
        (actual.volume_m3, actual.total_amount.as_str()),
        (47, "166.85")
    );
}

#[tokio::test]
async fn example_7_8_an_actual_below_the_estimate_waits_for_the_needle() {
    let mut app = spawn_app().await;
    history_for_estimates(&mut app).await;
    app.issue("A-1", "2024-04", "2024-05-01").await.unwrap();
    app.read("M-A-1", 2071, "2024-05-31").await.unwrap();
    let waiting = app.issue("A-1", "2024-05", "2024-06-01").await.unwrap();
    assert_eq!(
        (waiting.volume_m3, waiting.total_amount.as_str()),
        (0, "0.00")
    );
    app.read("M-A-1", 2110, "2024-06-30").await.unwrap();
    let caught_up = app.issue("A-1", "2024-06", "2024-07-01").await.unwrap();
    assert_eq!(
        (caught_up.volume_m3, caught_up.total_amount.as_str()),
        (26, "92.30")
    );
}

#[tokio::test]
async fn issuing_a_bill_twice_returns_the_same_bill_and_journals_it_once() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    app.read("M-A-1", 10, "2024-01-31").await.unwrap();
    let first = app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    let (debits_once, credits_once) = app.journal_totals().await;
    let again = app.issue("A-1", "2024-01", "2024-02-05").await.unwrap();
    assert_eq!(first, again);
    assert_eq!(app.journal_totals().await, (debits_once, credits_once));
    assert_eq!(debits_once, credits_once);
    assert_eq!(debits_once, 3550);
    let fetched = app
        .billing
        .get_bill(pb::GetBillRequest {
            bill_no: first.bill_no.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, first);
}

#[tokio::test]
async fn concurrent_issues_of_one_bill_produce_one_bill() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    app.read("M-A-1", 10, "2024-01-31").await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut client = app.billing.clone();
        calls.push(tokio::spawn(async move {
            client
                .issue_bill(pb::IssueBillRequest {
                    account_no: "A-1".into(),
                    period: "2024-01".into(),
                    issued_on: "2024-02-01".into(),
                })
                .await
        }));
    }
    let mut numbers = std::collections::HashSet::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(bill) => {
                numbers.insert(bill.into_inner().bill_no);
            }
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(numbers.len(), 1);
    assert_eq!(app.journal_totals().await, (3550, 3550));
}

#[tokio::test]
async fn a_prepayment_balance_is_applied_when_a_bill_is_issued() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    seed_prepayment(&app, "A-1", 1230).await;
    assert_eq!(
        app.account("A-1", "2024-01-15").await.prepayment_balance,
        "12.30"
    );
    app.read("M-A-1", 10, "2024-01-31").await.unwrap();
    let bill = app.issue("A-1", "2024-01", "2024-02-01").await.unwrap();
    assert_eq!(
        (bill.total_amount.as_str(), bill.prepayment_applied.as_str()),
        ("35.50", "12.30")
    );
    assert_eq!(
        (bill.paid_amount.as_str(), bill.status().short()),
        ("12.30", "PARTIALLY_PAID")
    );
    let account = app.account("A-1", "2024-02-01").await;
    assert_eq!(
        (
            account.prepayment_balance.as_str(),
            account.amount_due.as_str()
        ),
        ("0.00", "23.20")
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

/// Credits the account's prepayment as a counter payment would (payments arrive with issue 3).
async fn seed_prepayment(app: &crate::helpers::TestApp, account_no: &str, fen: i64) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(&app.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let id_sql = format!("SELECT id FROM accounts WHERE account_no = '{account_no}'");
    let row = db
        .query_one_raw(Statement::from_string(backend, id_sql))
        .await
        .unwrap()
        .unwrap();
    let id: i64 = row.try_get("", "id").unwrap();
    for sql in [
        format!(
            "INSERT INTO journal_entries (entry_key, kind, account_id, posted_on) VALUES ('SEED:{id}', 'SEED', {id}, '2024-01-01')"
        ),
        format!(
            "INSERT INTO journal_postings (entry_key, ledger, account_id, debit_fen, credit_fen) VALUES ('SEED:{id}', 'COUNTER_CASH', {id}, {fen}, 0)"
        ),
        format!(
            "INSERT INTO journal_postings (entry_key, ledger, account_id, debit_fen, credit_fen) VALUES ('SEED:{id}', 'PREPAYMENT', {id}, 0, {fen})"
        ),
        // The account row mirrors its PREPAYMENT ledger (migration 6).
        format!("UPDATE accounts SET prepayment_fen = prepayment_fen + {fen} WHERE id = {id}"),
    ] {
        db.execute_unprepared(&sql).await.unwrap();
    }
}

#[tokio::test]
async fn bad_bill_requests_get_clear_errors_and_issue_nothing() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    assert_code(
        app.issue("NOPE", "2024-01", "2024-02-01").await,
        Code::NotFound,
    );
    assert_code(app.issue("A-1", "2024-1", "").await, Code::InvalidArgument);
    assert_code(app.issue("A-1", "2024-13", "").await, Code::InvalidArgument);
    assert_code(app.issue("A-1", "2999-01", "").await, Code::InvalidArgument);
    assert_code(
        app.issue("A-1", "2024-02", "2024-01-31").await,
        Code::InvalidArgument,
    );
    let message = assert_code(
        app.issue("A-1", "2024-01", "2024-02-01").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("estimate"), "{message}");
    assert_code(
        app.billing
            .get_bill(pb::GetBillRequest {
                bill_no: "B000000-X".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(app.journal_totals().await, (0, 0));
}

#[tokio::test]
async fn periods_are_billed_in_order() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    app.read("M-A-1", 10, "2024-02-20").await.unwrap();
    app.issue("A-1", "2024-02", "2024-03-01").await.unwrap();
    assert_code(
        app.issue("A-1", "2024-01", "2024-03-01").await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn list_bills_pages_newest_first_and_filters_by_status() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    for (month, index) in [(1, 10), (2, 20), (3, 30)] {
        app.read("M-A-1", index, &format!("2024-{month:02}-20"))
            .await
            .unwrap();
        app.issue(
            "A-1",
            &format!("2024-{month:02}"),
            &format!("2024-{:02}-01", month + 1),
        )
        .await
        .unwrap();
    }
    let request = |token: &str, status: &str| pb::ListBillsRequest {
        account_no: "A-1".into(),
        status: wire::<pb::BillStatus>(status),
        page_size: 2,
        page_token: token.into(),
    };
    let first = app
        .billing
        .list_bills(request("", ""))
        .await
        .unwrap()
        .into_inner();
    let periods: Vec<&str> = first.bills.iter().map(|b| b.period.as_str()).collect();
    assert_eq!(periods, ["2024-03", "2024-02"]);
    let second = app
        .billing
        .list_bills(request(&first.next_page_token, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.bills.len(), 1);
    assert_eq!(second.next_page_token, "");
    let paid = app
        .billing
        .list_bills(request("", "PAID"))
        .await
        .unwrap()
        .into_inner();
    assert!(paid.bills.is_empty());
    assert_code(
        app.billing.list_bills(request("", "OWED")).await,
        Code::InvalidArgument,
    );
    assert_code(
        app.billing.list_bills(request("garbage", "")).await,
        Code::InvalidArgument,
    );
}
