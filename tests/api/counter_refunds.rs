//! Refunds return money to where it came from: an online refund of an order gives back only
//! what that order brought that is still unapplied prepayment, and cash goes back over the
//! counter with `RefundCounterPayment`, recorded with its cashier and counted in the cashier's
//! close.

use ::migrations::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use std::time::Duration;
use tonic::Code;
use water_billing::config::{DatabaseConfig, PaymentsConfig};
use water_billing::grpc::pb;

use crate::helpers::*;

fn today() -> chrono::NaiveDate {
    water_billing::gateway::beijing::beijing_date(chrono::Utc::now())
}

/// An account with a meter and no bill yet (the reading for this month comes later).
async fn app_with_account() -> TestApp {
    let mut app = spawn_sandbox_app(PaymentsConfig::default()).await;
    let installed = today() - chrono::Days::new(40);
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, &installed.to_string())
        .await;
    app
}

/// This month's 35.50 bill (10 m³ at the all-in 3.55), issued today.
async fn issue_bill(app: &mut TestApp) -> pb::Bill {
    app.read("M-A-1", 10, &today().to_string()).await.unwrap();
    let period = today().format("%Y-%m").to_string();
    app.issue("A-1", &period, &today().to_string())
        .await
        .unwrap()
}

/// An online order of `amount`, paid by the customer at the simulator and posted.
async fn paid_online(app: &mut TestApp, channel: &str, amount: &str, key: &str) -> String {
    let order = app
        .payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: wire::<pb::Channel>(channel),
            amount: amount.into(),
            idempotency_key: key.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.pay(&order.out_trade_no).map(|_| ()),
        _ => sandbox.wechat.pay(&order.out_trade_no).map(|_| ()),
    }
    .unwrap();
    for _ in 0..100 {
        if payment(app, &order.out_trade_no).await.status().short() != "PENDING" {
            return order.out_trade_no;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {} stayed PENDING", order.out_trade_no);
}

async fn paid_at_counter(app: &mut TestApp, receipt: &str, amount: &str, cashier: &str) -> String {
    app.payments
        .record_counter_payment(pb::RecordCounterPaymentRequest {
            account_no: "A-1".into(),
            amount: amount.into(),
            cashier_id: cashier.into(),
            receipt_no: receipt.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .out_trade_no
}

async fn payment(app: &mut TestApp, out_trade_no: &str) -> pb::Payment {
    app.payments
        .get_payment(pb::GetPaymentRequest {
            out_trade_no: out_trade_no.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn refund_online(
    app: &mut TestApp,
    out_trade_no: &str,
    amount: &str,
    refund_no: &str,
) -> Result<pb::Refund, tonic::Status> {
    app.payments
        .refund_payment(pb::RefundPaymentRequest {
            out_trade_no: out_trade_no.into(),
            amount: amount.into(),
            reason: "overpaid".into(),
            refund_no: refund_no.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn refund_cash(
    app: &mut TestApp,
    out_trade_no: &str,
    amount: &str,
    refund_no: &str,
    cashier: &str,
) -> Result<pb::Refund, tonic::Status> {
    app.payments
        .refund_counter_payment(pb::RefundCounterPaymentRequest {
            out_trade_no: out_trade_no.into(),
            amount: amount.into(),
            reason: "customer moved away".into(),
            refund_no: refund_no.into(),
            cashier_id: cashier.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn close(app: &mut TestApp, cashier: &str, counted: &str) -> pb::CashierClose {
    app.reconciliation
        .close_cashier_day(pb::CloseCashierDayRequest {
            cashier_id: cashier.into(),
            business_date: today().to_string(),
            counted_cash: counted.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// What the simulator of `channel` has paid back on an order.
fn refunded_at_gateway(app: &TestApp, channel: &str, out_trade_no: &str) -> i64 {
    let sandbox = app.sandbox.as_ref().unwrap();
    let trades = match channel {
        "ALIPAY" => sandbox.alipay.trades(),
        _ => sandbox.wechat.trades(),
    };
    trades
        .iter()
        .find(|t| t.out_trade_no == out_trade_no)
        .map(|t| t.refunded_fen())
        .unwrap()
}

async fn prepayment(app: &mut TestApp) -> String {
    app.account("A-1", "").await.prepayment_balance
}

async fn assert_journal_balanced(app: &TestApp) {
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn an_online_refund_cannot_send_back_cash_another_payer_brought() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_account().await;
        let bill = issue_bill(&mut app).await;
        let online = paid_online(&mut app, channel, "35.50", "pays-the-bill").await;
        paid_at_counter(&mut app, "R-1", "35.50", "C-1").await;
        assert_eq!(prepayment(&mut app).await, "35.50", "{channel}");

        let refused = refund_online(&mut app, &online, "35.50", "RF-1").await;
        let message = assert_code(refused, Code::FailedPrecondition);
        assert!(message.contains("only 0.00"), "{channel}: {message}");
        assert_eq!(refunded_at_gateway(&app, channel, &online), 0, "{channel}");
        assert_eq!(app.count("refunds", "1 = 1").await, 0, "{channel}");
        let bill = app
            .billing
            .get_bill(pb::GetBillRequest {
                bill_no: bill.bill_no,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(bill.status().short(), "PAID", "{channel}");
        assert_eq!(prepayment(&mut app).await, "35.50", "{channel}");
        assert_eq!(
            payment(&mut app, &online).await.status().short(),
            "SUCCEEDED"
        );
        assert_journal_balanced(&app).await;
    }
}

#[tokio::test]
async fn only_the_part_of_an_online_payment_that_went_to_prepayment_is_refundable() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_account().await;
        issue_bill(&mut app).await;
        let online = paid_online(&mut app, channel, "100.00", "overpays").await;
        paid_at_counter(&mut app, "R-1", "20.00", "C-1").await;
        assert_eq!(prepayment(&mut app).await, "84.50", "{channel}");

        let message = assert_code(
            refund_online(&mut app, &online, "64.51", "RF-1").await,
            Code::FailedPrecondition,
        );
        assert!(message.contains("only 64.50"), "{channel}: {message}");
        assert_eq!(refunded_at_gateway(&app, channel, &online), 0);
        let done = refund_online(&mut app, &online, "64.50", "RF-1")
            .await
            .unwrap();
        assert_eq!(done.status().short(), "SUCCEEDED", "{channel}");
        assert_eq!(refunded_at_gateway(&app, channel, &online), 6450);
        assert_eq!(prepayment(&mut app).await, "20.00", "{channel}");
        assert_code(
            refund_online(&mut app, &online, "0.01", "RF-2").await,
            Code::FailedPrecondition,
        );
        assert_journal_balanced(&app).await;
    }
}

#[tokio::test]
async fn a_bill_takes_the_oldest_prepayment_first() {
    let mut app = app_with_account().await;
    let online = paid_online(&mut app, "ALIPAY", "50.00", "first-in").await;
    let cash = paid_at_counter(&mut app, "R-1", "40.00", "C-1").await;
    assert_eq!(prepayment(&mut app).await, "90.00");
    let bill = issue_bill(&mut app).await;
    assert_eq!(
        bill.status().short(),
        "PAID",
        "the bill is paid from prepayment"
    );
    assert_eq!(prepayment(&mut app).await, "54.50");

    // The bill took 35.50 of the Alipay money (first in): 14.50 of it is left.
    let message = assert_code(
        refund_online(&mut app, &online, "14.51", "RF-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("only 14.50"), "{message}");
    let message = assert_code(
        refund_cash(&mut app, &cash, "40.01", "RF-C1", "C-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("only 40.00"), "{message}");
    refund_online(&mut app, &online, "14.50", "RF-1")
        .await
        .unwrap();
    let cash_back = refund_cash(&mut app, &cash, "40.00", "RF-C1", "C-1")
        .await
        .unwrap();
    assert_eq!(cash_back.status().short(), "SUCCEEDED");
    assert_eq!(prepayment(&mut app).await, "0.00");
    assert_eq!(payment(&mut app, &cash).await.status().short(), "REFUNDED");
    assert_journal_balanced(&app).await;
}

#[tokio::test]
async fn a_counter_refund_is_counted_in_its_cashiers_close() {
    let mut app = app_with_account().await;
    let honest = paid_at_counter(&mut app, "R-1", "100.00", "C-1").await;
    let kept = paid_at_counter(&mut app, "R-2", "100.00", "C-2").await;
    let partly = paid_at_counter(&mut app, "R-3", "100.00", "C-3").await;
    let refund = refund_cash(&mut app, &honest, "100.00", "RF-1", "C-1")
        .await
        .unwrap();
    assert_eq!(
        (refund.status().short(), refund.cashier_id.as_str()),
        ("SUCCEEDED", "C-1")
    );
    refund_cash(&mut app, &kept, "100.00", "RF-2", "C-2")
        .await
        .unwrap();
    refund_cash(&mut app, &partly, "40.00", "RF-3", "C-3")
        .await
        .unwrap();
    let journal = app.journal_totals().await;

    // 100.00 in, 100.00 paid back, an empty drawer: balanced (it was SHORT -100.00).
    let balanced = close(&mut app, "C-1", "0.00").await;
    assert_eq!(
        (
            balanced.payments.as_str(),
            balanced.refunds.as_str(),
            balanced.expected.as_str(),
            balanced.difference.as_str(),
            balanced.outcome().short()
        ),
        ("100.00", "100.00", "0.00", "0.00", "BALANCED")
    );
    // Refunded in the books but the cash is still in the drawer: no longer BALANCED.
    let over = close(&mut app, "C-2", "100.00").await;
    assert_eq!(
        (
            over.expected.as_str(),
            over.difference.as_str(),
            over.outcome().short()
        ),
        ("0.00", "100.00", "OVER")
    );
    // 60.00 should be left after the 40.00 refund; 50.00 is.
    let short = close(&mut app, "C-3", "50.00").await;
    assert_eq!(
        (
            short.refunds.as_str(),
            short.expected.as_str(),
            short.difference.as_str(),
            short.outcome().short()
        ),
        ("40.00", "60.00", "-10.00", "SHORT")
    );
    assert_eq!(
        app.journal_totals().await,
        journal,
        "a close moves no money"
    );
    let late = paid_at_counter(&mut app, "R-4", "10.00", "C-4").await;
    let message = assert_code(
        refund_cash(&mut app, &late, "10.00", "RF-4", "C-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("already closed"), "{message}");
    refund_cash(&mut app, &late, "10.00", "RF-4", "C-4")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_counter_refund_number_is_one_refund() {
    let mut app = app_with_account().await;
    let cash = paid_at_counter(&mut app, "R-1", "50.00", "C-1").await;
    let other = paid_at_counter(&mut app, "R-2", "10.00", "C-1").await;
    let first = refund_cash(&mut app, &cash, "20.00", "RF-1", "C-1")
        .await
        .unwrap();
    let again = refund_cash(&mut app, &cash, "20.00", "RF-1", "C-1")
        .await
        .unwrap();
    assert_eq!(again, first, "the same refund number is the same refund");
    assert_code(
        refund_cash(&mut app, &cash, "21.00", "RF-1", "C-1").await,
        Code::AlreadyExists,
    );
    assert_code(
        refund_cash(&mut app, &other, "20.00", "RF-1", "C-1").await,
        Code::AlreadyExists,
    );
    assert_eq!(app.count("refunds", "1 = 1").await, 1);
    assert_eq!(prepayment(&mut app).await, "40.00");
    let order = payment(&mut app, &cash).await;
    assert_eq!(
        (order.status().short(), order.refunded_amount.as_str()),
        ("PARTIALLY_REFUNDED", "20.00")
    );
    assert_code(
        refund_cash(&mut app, &cash, "1.00", "RF-2", "").await,
        Code::InvalidArgument,
    );
    assert_journal_balanced(&app).await;
}

#[tokio::test]
async fn cash_is_refunded_at_the_counter_and_online_money_online() {
    let mut app = app_with_account().await;
    let cash = paid_at_counter(&mut app, "R-1", "30.00", "C-1").await;
    let online = paid_online(&mut app, "WECHAT", "30.00", "online").await;

    let message = assert_code(
        refund_online(&mut app, &cash, "30.00", "RF-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("RefundCounterPayment"), "{message}");
    let message = assert_code(
        refund_cash(&mut app, &online, "30.00", "RF-2", "C-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("RefundPayment"), "{message}");
    assert_eq!(
        app.count("refunds", "1 = 1").await,
        0,
        "nothing was written"
    );
    assert_eq!(payment(&mut app, &cash).await.status().short(), "SUCCEEDED");
    assert_eq!(prepayment(&mut app).await, "60.00");
    assert_journal_balanced(&app).await;
}

#[tokio::test]
async fn the_refund_cashier_migration_keeps_old_closes_and_goes_back_down() {
    let (url, _dir) = fresh_database().await;
    let db = water_billing::db::connect(&DatabaseConfig::new(url))
        .await
        .unwrap();
    let all = Migrator::migrations();
    let before = all
        .iter()
        .position(|m| m.name() == "m20261204_000007_refund_cashier")
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO cashier_closes (cashier_id, business_date, expected_fen, counted_fen, \
         difference_fen, created_at) VALUES ('C-1', '2026-11-28', 1500, 1600, 100, \
         '2026-11-28 10:00:00+00:00')",
    )
    .await
    .unwrap();
    Migrator::up(&db, None).await.unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT payments_fen, refunds_fen FROM cashier_closes",
        ))
        .await
        .unwrap()
        .unwrap();
    let shown: (i64, i64) = (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
    );
    assert_eq!(shown, (1500, 0), "an old close counted payments only");
    db.execute_unprepared("SELECT cashier_id, business_date FROM refunds")
        .await
        .unwrap();

    Migrator::down(&db, Some(u32::try_from(all.len() - before).unwrap()))
        .await
        .unwrap();
    assert!(
        db.execute_unprepared("SELECT cashier_id FROM refunds")
            .await
            .is_err()
    );
    assert!(
        db.execute_unprepared("SELECT payments_fen FROM cashier_closes")
            .await
            .is_err()
    );
    Migrator::up(&db, None).await.unwrap();
}
