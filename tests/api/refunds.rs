//! The refund lifecycle against the loopback gateways with injected refund faults: a refund
//! ends SUCCEEDED only when the gateway paid, FAILED only on a definitive refusal, and stays
//! PENDING (money reserved, payment not yet shown refunded) for everything else until the
//! refund sweeper or a verified notification settles it. Nothing is lost or paid twice.

use std::time::Duration;

use tonic::Code;
use water_billing::config::PaymentsConfig;
use water_billing::grpc::pb;
use water_billing::sandbox::faults::Faults;

use crate::helpers::*;

const CHANNELS: [&str; 2] = ["ALIPAY", "WECHAT"];

/// The sweeper loop never runs on its own here (tests drive `sweep_refunds`), and a refund
/// is stale at once.
fn refund_settings() -> PaymentsConfig {
    PaymentsConfig {
        refund_query_after_s: 0,
        refund_sweep_interval_s: 3600,
        ..PaymentsConfig::default()
    }
}

/// A paid 35.50 bill and 64.50 of prepayment, brought by one order of 100.00 through
/// `channel`. Returns the app and the order number.
async fn app_with_prepayment(channel: &str) -> (TestApp, String) {
    app_with_prepayment_using(channel, refund_settings()).await
}

async fn app_with_prepayment_using(channel: &str, settings: PaymentsConfig) -> (TestApp, String) {
    let mut app = spawn_sandbox_app(settings).await;
    let today = water_billing::gateway::beijing::beijing_date(chrono::Utc::now());
    let installed = today - chrono::Days::new(40);
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, &installed.to_string())
        .await;
    app.read("M-A-1", 10, &today.to_string()).await.unwrap();
    let period = today.format("%Y-%m").to_string();
    app.issue("A-1", &period, &today.to_string()).await.unwrap();
    let order = app
        .payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: wire::<pb::Channel>(channel),
            amount: "100.00".into(),
            idempotency_key: "overpay".into(),
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
        if payment(&mut app, &order.out_trade_no)
            .await
            .status()
            .short()
            != "PENDING"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(prepayment(&mut app).await, "64.50", "{channel}");
    (app, order.out_trade_no)
}

fn set_faults(app: &TestApp, channel: &str, faults: Faults) {
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.set_faults(faults),
        _ => sandbox.wechat.set_faults(faults),
    }
}

fn faults(app: &TestApp, channel: &str) -> Faults {
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.faults(),
        _ => sandbox.wechat.faults(),
    }
}

/// What the gateway itself paid back on the order, fen.
fn gateway_refunded_fen(app: &TestApp, channel: &str, out_trade_no: &str) -> i64 {
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.trade(out_trade_no),
        _ => sandbox.wechat.trade(out_trade_no),
    }
    .unwrap()
    .refunded_fen()
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

async fn prepayment(app: &mut TestApp) -> String {
    app.account("A-1", "").await.prepayment_balance
}

async fn refund(
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

async fn get_refund(app: &mut TestApp, refund_no: &str) -> pb::Refund {
    app.payments
        .get_refund(pb::GetRefundRequest {
            refund_no: refund_no.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The refund is PENDING: the prepayment is reserved, the payment does not show it yet.
async fn assert_pending(app: &mut TestApp, out_trade_no: &str, refund_no: &str, what: &str) {
    assert_eq!(
        get_refund(app, refund_no).await.status().short(),
        "PENDING",
        "{what}"
    );
    let order = payment(app, out_trade_no).await;
    assert_eq!(
        (order.status().short(), order.refunded_amount.as_str()),
        ("SUCCEEDED", "0.00"),
        "{what}: a payment shows a refund only once the gateway confirmed it"
    );
    assert_eq!(
        prepayment(app).await,
        "4.50",
        "{what}: the money stays reserved"
    );
}

/// The refund is SUCCEEDED, shown on the payment, and the gateway paid it exactly once.
async fn assert_succeeded_once(
    app: &mut TestApp,
    channel: &str,
    out_trade_no: &str,
    refund_no: &str,
) {
    assert_eq!(
        get_refund(app, refund_no).await.status().short(),
        "SUCCEEDED",
        "{channel}"
    );
    let order = payment(app, out_trade_no).await;
    assert_eq!(
        (order.status().short(), order.refunded_amount.as_str()),
        ("PARTIALLY_REFUNDED", "60.00"),
        "{channel}"
    );
    assert_eq!(prepayment(app).await, "4.50", "{channel}");
    assert_eq!(
        gateway_refunded_fen(app, channel, out_trade_no),
        6000,
        "{channel}: paid once"
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits, "{channel}");
}

#[tokio::test]
async fn a_refund_through_a_gateway_that_is_down_stays_pending_and_one_sweep_settles_it_when_it_is_back()
 {
    for channel in CHANNELS {
        let (mut app, order) = app_with_prepayment(channel).await;
        set_faults(
            &app,
            channel,
            Faults {
                refund_unavailable_next: 1000,
                ..Faults::default()
            },
        );
        assert_code(
            refund(&mut app, &order, "60.00", "RF-1").await,
            Code::Unavailable,
        );
        assert_pending(&mut app, &order, "RF-1", channel).await;
        let down = app.app.sweep_refunds().await.unwrap();
        assert_eq!((down.looked_at, down.settled, down.inconclusive), (1, 0, 1));
        assert_pending(&mut app, &order, "RF-1", channel).await;

        set_faults(&app, channel, Faults::default());
        let back = app.app.sweep_refunds().await.unwrap();
        assert_eq!((back.looked_at, back.settled), (1, 1), "{channel}");
        assert_succeeded_once(&mut app, channel, &order, "RF-1").await;
        let again = app.app.sweep_refunds().await.unwrap();
        assert_eq!(again.looked_at, 0, "{channel}: nothing left to sweep");
    }
}

#[tokio::test]
async fn a_refund_answered_after_the_client_timeout_stays_pending_until_the_query_finds_it_paid() {
    for channel in CHANNELS {
        let (mut app, order) = app_with_prepayment(channel).await;
        let client_timeout_ms = water_billing::gateway::error::REQUEST_TIMEOUT_SECS * 1000;
        set_faults(
            &app,
            channel,
            Faults {
                refund_answer_delay_next_ms: client_timeout_ms + 1000,
                drop_next_notifications: 1,
                ..Faults::default()
            },
        );
        assert_code(
            refund(&mut app, &order, "60.00", "RF-1").await,
            Code::Unavailable,
        );
        assert_eq!(
            gateway_refunded_fen(&app, channel, &order),
            6000,
            "{channel}: the gateway paid, we could not know"
        );
        assert_pending(&mut app, &order, "RF-1", channel).await;
        let sweep = app.app.sweep_refunds().await.unwrap();
        assert_eq!(sweep.settled, 1, "{channel}");
        assert_succeeded_once(&mut app, channel, &order, "RF-1").await;
    }
}

#[tokio::test]
async fn a_signed_answer_with_renamed_fields_leaves_the_refund_pending_and_its_money_reserved() {
    for channel in CHANNELS {
        let (mut app, order) = app_with_prepayment(channel).await;
        set_faults(
            &app,
            channel,
            Faults {
                refund_garbled_next: true,
                drop_next_notifications: 1,
                ..Faults::default()
            },
        );
        assert_code(
            refund(&mut app, &order, "60.00", "RF-1").await,
            Code::Unavailable,
        );
        assert_pending(&mut app, &order, "RF-1", channel).await;
        // The reserved 60.00 cannot be refunded a second time under another number.
        assert_code(
            refund(&mut app, &order, "60.00", "RF-2").await,
            Code::FailedPrecondition,
        );
        // A retry with the same number is the same refund: the gateway recognises it.
        let retried = refund(&mut app, &order, "60.00", "RF-1").await.unwrap();
        assert_eq!(retried.status().short(), "SUCCEEDED", "{channel}");
        assert_succeeded_once(&mut app, channel, &order, "RF-1").await;
    }
}

#[tokio::test]
async fn a_wechat_refund_that_ends_closed_or_abnormal_stays_pending_and_reserved() {
    for status in ["CLOSED", "ABNORMAL"] {
        let (mut app, order) = app_with_prepayment("WECHAT").await;
        set_faults(
            &app,
            "WECHAT",
            Faults {
                refund_status_next: Some(status.into()),
                ..Faults::default()
            },
        );
        let answered = refund(&mut app, &order, "60.00", "RF-1").await.unwrap();
        assert_eq!(answered.status().short(), "PENDING", "{status}");
        let sweep = app.app.sweep_refunds().await.unwrap();
        assert_eq!((sweep.looked_at, sweep.settled), (1, 0), "{status}");
        assert_pending(&mut app, &order, "RF-1", status).await;
        assert_eq!(gateway_refunded_fen(&app, "WECHAT", &order), 0, "{status}");
        let (debits, credits) = app.journal_totals().await;
        assert_eq!(debits, credits, "{status}");
    }
}

#[tokio::test]
async fn a_definitive_refusal_fails_the_refund_and_a_late_verified_success_is_raised_as_money_left_twice()
 {
    for channel in CHANNELS {
        let (mut app, order) = app_with_prepayment(channel).await;
        // The notification of the payout the gateway denied arrives after its refusal.
        set_faults(
            &app,
            channel,
            Faults {
                refund_refused_but_paid_next: true,
                delay_ms: 1000,
                ..Faults::default()
            },
        );
        assert_code(
            refund(&mut app, &order, "60.00", "RF-1").await,
            Code::FailedPrecondition,
        );
        assert_eq!(
            get_refund(&mut app, "RF-1").await.status().short(),
            "FAILED"
        );
        assert_eq!(prepayment(&mut app).await, "64.50", "{channel}: restored");
        let raised = "amount_fen = 6000";
        for _ in 0..100 {
            if app
                .count_suspense(SuspenseReason::RefundPaidAfterFailure, raised)
                .await
                > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.count_suspense(SuspenseReason::RefundPaidAfterFailure, raised)
                .await,
            1,
            "{channel}: the money that left twice is raised for finance"
        );
        assert_eq!(
            get_refund(&mut app, "RF-1").await.status().short(),
            "FAILED",
            "{channel}"
        );
        let order_now = payment(&mut app, &order).await;
        assert_eq!(order_now.status().short(), "SUCCEEDED", "{channel}");
        assert_eq!(gateway_refunded_fen(&app, channel, &order), 6000);
        let (debits, credits) = app.journal_totals().await;
        assert_eq!(debits, credits, "{channel}");
    }
}

#[tokio::test]
async fn get_refund_and_list_refunds_read_without_asking_the_gateway() {
    let (mut app, order) = app_with_prepayment("ALIPAY").await;
    let done = refund(&mut app, &order, "10.00", "RF-1").await.unwrap();
    assert_eq!(done.status().short(), "SUCCEEDED");
    assert!(!done.completed_at.is_empty() && !done.gateway_refund_id.is_empty());
    set_faults(
        &app,
        "ALIPAY",
        Faults {
            refund_unavailable_next: 5,
            ..Faults::default()
        },
    );
    assert_code(
        refund(&mut app, &order, "20.00", "RF-2").await,
        Code::Unavailable,
    );
    let calls_left = faults(&app, "ALIPAY").refund_unavailable_next;
    assert_eq!(
        get_refund(&mut app, "RF-2").await.status().short(),
        "PENDING"
    );
    assert_eq!(get_refund(&mut app, "RF-1").await, done);
    let listed = app
        .payments
        .list_refunds(pb::ListRefundsRequest {
            out_trade_no: order.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    let numbers: Vec<(&str, &str)> = listed
        .iter()
        .map(|r| (r.refund_no.as_str(), r.status().short()))
        .collect();
    assert_eq!(numbers, [("RF-1", "SUCCEEDED"), ("RF-2", "PENDING")]);
    assert_eq!(
        faults(&app, "ALIPAY").refund_unavailable_next,
        calls_left,
        "reading refunds never calls the gateway"
    );
    assert_code(
        app.payments
            .get_refund(pb::GetRefundRequest {
                refund_no: "RF-9".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn two_sweepers_settling_the_same_refund_pay_and_book_it_once() {
    let (mut app, order) = app_with_prepayment("WECHAT").await;
    set_faults(
        &app,
        "WECHAT",
        Faults {
            refund_unavailable_next: 1,
            ..Faults::default()
        },
    );
    assert_code(
        refund(&mut app, &order, "60.00", "RF-1").await,
        Code::Unavailable,
    );
    let (one, two) = tokio::join!(app.app.sweep_refunds(), app.app.sweep_refunds());
    let settled = one.unwrap().settled + two.unwrap().settled;
    assert!(settled >= 1, "{settled}");
    assert_succeeded_once(&mut app, "WECHAT", &order, "RF-1").await;
}

#[tokio::test]
async fn a_refund_through_a_disabled_channel_is_refused_before_anything_is_booked() {
    let mut app = spawn_app().await;
    let today = water_billing::gateway::beijing::beijing_date(chrono::Utc::now());
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, &today.to_string())
        .await;
    // An Alipay payment recorded while the channel was configured.
    app.execute(
        "INSERT INTO payments (out_trade_no, account_id, channel, amount_fen, status, \
         created_at, refunded_fen) SELECT 'WB-OLD', id, 'ALIPAY', 10000, 'SUCCEEDED', \
         CURRENT_TIMESTAMP, 0 FROM accounts WHERE account_no = 'A-1'",
    )
    .await;
    let entries_before = app.count("journal_entries", "1 = 1").await;
    let message = assert_code(
        refund(&mut app, "WB-OLD", "10.00", "RF-1").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("ALIPAY"), "{message}");
    assert_eq!(app.count("refunds", "1 = 1").await, 0);
    assert_eq!(app.count("journal_entries", "1 = 1").await, entries_before);
}

#[tokio::test]
async fn the_background_refund_sweeper_settles_a_refund_left_pending_by_an_outage() {
    let settings = PaymentsConfig {
        refund_query_after_s: 0,
        refund_sweep_interval_s: 1,
        ..PaymentsConfig::default()
    };
    let (mut app, order) = app_with_prepayment_using("ALIPAY", settings).await;
    set_faults(
        &app,
        "ALIPAY",
        Faults {
            refund_unavailable_next: 1,
            ..Faults::default()
        },
    );
    assert_code(
        refund(&mut app, &order, "60.00", "RF-1").await,
        Code::Unavailable,
    );
    for _ in 0..100 {
        if get_refund(&mut app, "RF-1").await.status().short() != "PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_succeeded_once(&mut app, "ALIPAY", &order, "RF-1").await;
}
