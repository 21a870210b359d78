//! PaymentService and the webhooks, through the loopback gateway simulators over real HTTP
//! with real signatures: nothing is lost, doubled or trusted unverified.

use std::time::Duration;

use tonic::Code;
use water_billing::config::PaymentsConfig;
use water_billing::gateway::alipay::notify::notification_sign_content;
use water_billing::gateway::alipay::sign::{Params, form_body};
use water_billing::gateway::keys::PrivateKey;
use water_billing::grpc::pb;
use water_billing::sandbox::faults::Faults;

use crate::helpers::*;

/// An account owing one bill of 35.50 (10 m³ at the all-in 3.55), issued today: not yet due,
/// so no late fee.
async fn app_with_bill(payments: PaymentsConfig) -> TestApp {
    let mut app = spawn_sandbox_app(payments).await;
    let today = water_billing::gateway::beijing::beijing_date(chrono::Utc::now());
    let installed = today - chrono::Days::new(40);
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, &installed.to_string())
        .await;
    app.read("M-A-1", 10, &today.to_string()).await.unwrap();
    let period = today.format("%Y-%m").to_string();
    app.issue("A-1", &period, &today.to_string()).await.unwrap();
    app
}

async fn create(
    app: &mut TestApp,
    channel: &str,
    amount: &str,
    key: &str,
) -> Result<pb::Payment, tonic::Status> {
    app.payments
        .create_payment(pb::CreatePaymentRequest {
            account_no: "A-1".into(),
            channel: wire::<pb::Channel>(channel),
            amount: amount.into(),
            idempotency_key: key.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn get(app: &mut TestApp, out_trade_no: &str) -> pb::Payment {
    app.payments
        .get_payment(pb::GetPaymentRequest {
            out_trade_no: out_trade_no.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Polls until the order leaves PENDING (notifications arrive asynchronously).
async fn settled(app: &mut TestApp, out_trade_no: &str) -> pb::Payment {
    for _ in 0..100 {
        let payment = get(app, out_trade_no).await;
        if payment.status().short() != "PENDING" {
            return payment;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {out_trade_no} stayed PENDING");
}

fn pay(app: &TestApp, channel: &str, out_trade_no: &str) {
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.pay(out_trade_no).map(|_| ()),
        _ => sandbox.wechat.pay(out_trade_no).map(|_| ()),
    }
    .unwrap();
}

fn set_faults(app: &TestApp, channel: &str, faults: Faults) {
    let sandbox = app.sandbox.as_ref().unwrap();
    match channel {
        "ALIPAY" => sandbox.alipay.set_faults(faults),
        _ => sandbox.wechat.set_faults(faults),
    }
}

async fn paid_once(app: &mut TestApp, channel: &str) {
    let order = create(app, channel, "", "order-1").await.unwrap();
    assert_eq!(
        (order.status().short(), order.amount.as_str()),
        ("PENDING", "35.50"),
        "amount defaults to the amount due"
    );
    assert!(!order.qr_code.is_empty());
    pay(app, channel, &order.out_trade_no);
    let paid = settled(app, &order.out_trade_no).await;
    assert_eq!(paid.status().short(), "SUCCEEDED");
    assert!(!paid.gateway_trade_no.is_empty());
    let account = app.account("A-1", "").await;
    assert_eq!(
        (
            account.amount_due.as_str(),
            account.arrears_principal.as_str()
        ),
        ("0.00", "0.00")
    );
    let bills = app
        .billing
        .list_bills(pb::ListBillsRequest {
            account_no: "A-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            bills.bills[0].status().short(),
            bills.bills[0].paid_amount.as_str()
        ),
        ("PAID", "35.50")
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn an_alipay_qr_payment_is_posted_once_from_its_verified_notification() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    paid_once(&mut app, "ALIPAY").await;
    assert_eq!(
        app.count_notifications(NotificationOutcome::Posted, Some(true))
            .await,
        1
    );
}

#[tokio::test]
async fn a_wechat_native_payment_is_posted_once_from_its_verified_notification() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    paid_once(&mut app, "WECHAT").await;
    assert_eq!(
        app.count_notifications(NotificationOutcome::Posted, Some(true))
            .await,
        1
    );
}

#[tokio::test]
async fn duplicate_notifications_arriving_concurrently_post_the_payment_once() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_bill(PaymentsConfig::default()).await;
        set_faults(
            &app,
            channel,
            Faults {
                duplicate: 6,
                ..Default::default()
            },
        );
        let order = create(&mut app, channel, "", "dup").await.unwrap();
        pay(&app, channel, &order.out_trade_no);
        settled(&mut app, &order.out_trade_no).await;
        for _ in 0..100 {
            if app.count("notifications", "1 = 1").await >= 7 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.count("notifications", "1 = 1").await,
            7,
            "{channel}: every copy is recorded raw"
        );
        assert_eq!(
            app.count("journal_entries", "kind = 'PAYMENT_RECEIVED'")
                .await,
            1,
            "{channel}"
        );
        assert_eq!(
            app.count("payment_allocations", "1 = 1").await,
            1,
            "{channel}"
        );
        assert_eq!(
            app.account("A-1", "").await.prepayment_balance,
            "0.00",
            "{channel}"
        );
    }
}

#[tokio::test]
async fn a_lost_notification_is_recovered_by_querying_the_gateway() {
    for channel in ["ALIPAY", "WECHAT"] {
        let payments = PaymentsConfig {
            pending_query_after_s: 0,
            ..Default::default()
        };
        let mut app = app_with_bill(payments).await;
        set_faults(
            &app,
            channel,
            Faults {
                drop_next_notifications: 1,
                ..Default::default()
            },
        );
        let order = create(&mut app, channel, "", "lost").await.unwrap();
        pay(&app, channel, &order.out_trade_no);
        let paid = get(&mut app, &order.out_trade_no).await;
        assert_eq!(
            paid.status().short(),
            "SUCCEEDED",
            "{channel}: GetPayment queried the gateway"
        );
        assert_eq!(
            app.count_settled_by(EvidenceSource::Query).await,
            1,
            "{channel}"
        );
        assert_eq!(app.count("notifications", "1 = 1").await, 0, "{channel}");
    }
}

#[tokio::test]
async fn a_notification_for_a_different_amount_goes_to_suspense_and_is_never_applied() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_bill(PaymentsConfig::default()).await;
        set_faults(
            &app,
            channel,
            Faults {
                wrong_amount_next: true,
                ..Default::default()
            },
        );
        let order = create(&mut app, channel, "", "wrong").await.unwrap();
        pay(&app, channel, &order.out_trade_no);
        for _ in 0..100 {
            if app.count_suspense(SuspenseReason::AmountMismatch, "").await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.count_suspense(SuspenseReason::AmountMismatch, "").await,
            1,
            "{channel}"
        );
        assert_eq!(
            get(&mut app, &order.out_trade_no).await.status().short(),
            "PENDING",
            "{channel}"
        );
        assert_eq!(
            app.account("A-1", "").await.amount_due,
            "35.50",
            "{channel}"
        );
        let (debits, credits) = app.journal_totals().await;
        assert_eq!(
            debits, credits,
            "{channel}: suspense is journaled and balanced"
        );
    }
}

#[tokio::test]
async fn a_notification_with_a_bad_signature_is_refused_and_the_payment_is_recovered_by_query() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_bill(PaymentsConfig {
            pending_query_after_s: 2,
            ..Default::default()
        })
        .await;
        set_faults(
            &app,
            channel,
            Faults {
                bad_signature_next: true,
                ..Default::default()
            },
        );
        let order = create(&mut app, channel, "", "bad-sig").await.unwrap();
        pay(&app, channel, &order.out_trade_no);
        for _ in 0..100 {
            if app.count("notifications", "verified = false").await >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            app.count_notifications(NotificationOutcome::Rejected, Some(false))
                .await
                >= 1,
            "{channel}"
        );
        assert_eq!(
            get(&mut app, &order.out_trade_no).await.status().short(),
            "PENDING",
            "{channel}: nothing trusted unverified"
        );
        assert_eq!(
            app.count("journal_entries", "kind = 'PAYMENT_RECEIVED'")
                .await,
            0,
            "{channel}"
        );
        // Once the order is stale, reading it queries the gateway, which posts it once.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let paid = get(&mut app, &order.out_trade_no).await;
        assert_eq!(
            (
                paid.status().short(),
                app.count_settled_by(EvidenceSource::Query).await
            ),
            ("SUCCEEDED", 1),
            "{channel}"
        );
        assert_eq!(
            app.count("journal_entries", "kind = 'PAYMENT_RECEIVED'")
                .await,
            1,
            "{channel}"
        );
    }
}

/// Posts a hand-made Alipay notification signed with `key`.
pub(crate) async fn post_alipay(app: &TestApp, params: &Params, key: &PrivateKey) -> (u16, String) {
    let mut params = params.clone();
    let sign = key
        .sign_base64(notification_sign_content(&params).as_bytes())
        .unwrap();
    params.insert("sign".into(), sign);
    params.insert("sign_type".into(), "RSA2".into());
    let response = reqwest::Client::new()
        .post(format!("http://{}/notify/alipay", app.http_addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&params))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub(crate) fn alipay_params(out_trade_no: &str, amount: &str) -> Params {
    let mut params = Params::new();
    for (k, v) in [
        ("notify_id", "2025010100222100021000000000000001"),
        ("notify_type", "trade_status_sync"),
        ("notify_time", "2025-01-01 10:00:22"),
        ("app_id", "2021000000000000"),
        ("seller_id", "2088000000000002"),
        ("trade_no", "2025010122001400000000000099"),
        ("trade_status", "TRADE_SUCCESS"),
        ("gmt_payment", "2025-01-01 10:00:21"),
        ("charset", "utf-8"),
        ("version", "1.0"),
    ] {
        params.insert(k.into(), v.into());
    }
    params.insert("out_trade_no".into(), out_trade_no.into());
    params.insert("total_amount".into(), amount.into());
    params
}

#[tokio::test]
async fn webhook_rules_hold_for_tampered_foreign_unknown_and_replayed_alipay_notifications() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    let gateway_key = PrivateKey::parse(&fixture("gateway_pkcs8.pem")).unwrap();
    let stranger_key = PrivateKey::parse(&fixture("platform_pkcs8.pem")).unwrap();
    let order = create(&mut app, "ALIPAY", "", "hand-made").await.unwrap();
    let params = alipay_params(&order.out_trade_no, "35.50");

    assert_eq!(
        post_alipay(&app, &params, &stranger_key).await.0,
        400,
        "signed with the wrong key"
    );
    let mut foreign = params.clone();
    foreign.insert("app_id".into(), "2021999999999999".into());
    assert_eq!(
        post_alipay(&app, &foreign, &gateway_key).await,
        (200, "success".into()),
        "not ours: acknowledged, ignored"
    );
    let unknown = alipay_params("WB-NOT-OURS-1", "12.00");
    assert_eq!(post_alipay(&app, &unknown, &gateway_key).await.1, "success");
    assert_eq!(
        app.count_suspense(SuspenseReason::UnknownOrder, "").await,
        1
    );
    assert_eq!(
        get(&mut app, &order.out_trade_no).await.status().short(),
        "PENDING"
    );

    let mut replies = Vec::new();
    for _ in 0..5 {
        let app_ref = &app;
        let params = params.clone();
        let key = gateway_key.clone();
        replies.push(async move { post_alipay(app_ref, &params, &key).await });
    }
    for (status, body) in futures::future::join_all(replies).await {
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    assert_eq!(
        get(&mut app, &order.out_trade_no).await.status().short(),
        "SUCCEEDED"
    );
    assert_eq!(
        app.count("journal_entries", "kind = 'PAYMENT_RECEIVED'")
            .await,
        1
    );
    assert_eq!(
        app.count_notifications(NotificationOutcome::Posted, None)
            .await,
        1
    );
    assert_eq!(
        app.count_notifications(NotificationOutcome::Duplicate, None)
            .await,
        4
    );

    // A tampered field breaks the signature: refused, recorded, nothing changes.
    let sign = gateway_key
        .sign_base64(notification_sign_content(&params).as_bytes())
        .unwrap();
    let mut tampered = params.clone();
    tampered.insert("total_amount".into(), "3550.00".into());
    tampered.insert("sign".into(), sign);
    tampered.insert("sign_type".into(), "RSA2".into());
    let response = reqwest::Client::new()
        .post(format!("http://{}/notify/alipay", app.http_addr))
        .body(form_body(&tampered))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn wechat_signtest_probes_and_stale_timestamps_are_refused() {
    let app = app_with_bill(PaymentsConfig::default()).await;
    let body = r#"{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}"#;
    let now = chrono::Utc::now().timestamp();
    for (timestamp, signature) in [(now, "WECHATPAY/SIGNTEST/abc"), (now - 600, "c2lnbmF0dXJl")] {
        let response = reqwest::Client::new()
            .post(format!("http://{}/notify/wechat", app.http_addr))
            .header("Wechatpay-Timestamp", timestamp.to_string())
            .header("Wechatpay-Nonce", "nonce")
            .header("Wechatpay-Signature", signature)
            .header(
                "Wechatpay-Serial",
                "PUB_KEY_ID_0000000000000024101100397200000006",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["code"], "FAIL");
    }
    assert_eq!(app.count("notifications", "verified = false").await, 2);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_order() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    let first = create(&mut app, "WECHAT", "20.00", "same-key")
        .await
        .unwrap();
    let again = create(&mut app, "WECHAT", "20.00", "same-key")
        .await
        .unwrap();
    assert_eq!(first.out_trade_no, again.out_trade_no);
    assert_code(
        create(&mut app, "ALIPAY", "20.00", "same-key").await,
        Code::AlreadyExists,
    );
    assert_eq!(app.count("payments", "1 = 1").await, 1);
}

#[tokio::test]
async fn bad_payment_requests_get_clear_errors() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    assert_code(
        create(&mut app, "ALIPAY", "1.234", "k1").await,
        Code::InvalidArgument,
    );
    assert_code(
        create(&mut app, "ALIPAY", "NaN", "k2").await,
        Code::InvalidArgument,
    );
    assert_code(
        create(&mut app, "ALIPAY", "0.00", "k3").await,
        Code::InvalidArgument,
    );
    assert_code(
        create(&mut app, "BITCOIN", "1.00", "k4").await,
        Code::InvalidArgument,
    );
    assert_code(
        create(&mut app, "ALIPAY", "1.00", "").await,
        Code::InvalidArgument,
    );
    assert_code(
        app.payments
            .get_payment(pb::GetPaymentRequest {
                out_trade_no: "nope".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(app.count("payments", "1 = 1").await, 0);
}

#[tokio::test]
async fn a_channel_without_keys_is_disabled_and_names_the_missing_setting() {
    let mut app = spawn_app().await;
    app.upsert_tariff(flat_tariff()).await;
    app.residential_account("A-1", "FLAT", 4, 0, "2024-01-01")
        .await;
    let message = assert_code(
        create(&mut app, "ALIPAY", "10.00", "k").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("BILLING_ALIPAY_APP_ID"), "{message}");
    let message = assert_code(
        create(&mut app, "WECHAT", "10.00", "k").await,
        Code::FailedPrecondition,
    );
    assert!(message.contains("BILLING_WECHAT_MCH_ID"), "{message}");
}

fn counter(receipt_no: &str, amount: &str) -> pb::RecordCounterPaymentRequest {
    pb::RecordCounterPaymentRequest {
        account_no: "A-1".into(),
        amount: amount.into(),
        cashier_id: "C-7".into(),
        receipt_no: receipt_no.into(),
    }
}

#[tokio::test]
async fn a_counter_payment_pays_the_oldest_bill_and_the_rest_becomes_prepayment() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    let payment = app
        .payments
        .record_counter_payment(counter("R-1", "50.00"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (payment.status().short(), payment.channel().short()),
        ("SUCCEEDED", "COUNTER")
    );
    let again = app
        .payments
        .record_counter_payment(counter("R-1", "50.00"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.out_trade_no, payment.out_trade_no,
        "a receipt is recorded once"
    );
    assert_code(
        app.payments
            .record_counter_payment(counter("R-1", "60.00"))
            .await,
        Code::AlreadyExists,
    );
    let account = app.account("A-1", "").await;
    assert_eq!(
        (
            account.prepayment_balance.as_str(),
            account.amount_due.as_str()
        ),
        ("14.50", "0.00")
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}

#[tokio::test]
async fn counter_payments_are_refused_while_a_closure_has_the_counters_closed() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    let today = chrono::Utc::now().date_naive();
    app.closures
        .schedule_closure(pb::ScheduleClosureRequest {
            starts_on: (today - chrono::Days::new(2)).to_string(),
            ends_on: (today + chrono::Days::new(2)).to_string(),
            reason: "epidemic lockdown".into(),
            waive_late_fees: true,
            close_counters: Some(true),
        })
        .await
        .unwrap();
    let message = assert_code(
        app.payments
            .record_counter_payment(counter("R-2", "10.00"))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        message.contains("epidemic lockdown")
            && message.contains("Alipay")
            && message.contains("WeChat"),
        "{message}"
    );
    assert_eq!(app.count("payments", "1 = 1").await, 0);
}

#[tokio::test]
async fn prepayment_is_refunded_through_the_gateway_once_per_refund_number() {
    for channel in ["ALIPAY", "WECHAT"] {
        let mut app = app_with_bill(PaymentsConfig::default()).await;
        let order = create(&mut app, channel, "100.00", "overpay")
            .await
            .unwrap();
        pay(&app, channel, &order.out_trade_no);
        settled(&mut app, &order.out_trade_no).await;
        assert_eq!(
            app.account("A-1", "").await.prepayment_balance,
            "64.50",
            "{channel}"
        );
        let refund = |amount: &str, refund_no: &str| pb::RefundPaymentRequest {
            out_trade_no: order.out_trade_no.clone(),
            amount: amount.into(),
            reason: "overpaid".into(),
            refund_no: refund_no.into(),
        };
        assert_code(
            app.payments.refund_payment(refund("70.00", "RF-1")).await,
            Code::FailedPrecondition,
        );
        let done = app
            .payments
            .refund_payment(refund("60.00", "RF-1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.status().short(), "SUCCEEDED", "{channel}");
        let again = app
            .payments
            .refund_payment(refund("60.00", "RF-1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            again, done,
            "{channel}: the same refund number is the same refund"
        );
        assert_code(
            app.payments.refund_payment(refund("1.00", "RF-1")).await,
            Code::AlreadyExists,
        );
        let account = app.account("A-1", "").await;
        assert_eq!(account.prepayment_balance, "4.50", "{channel}");
        assert_eq!(
            get(&mut app, &order.out_trade_no).await.status().short(),
            "PARTIALLY_REFUNDED"
        );
        let (debits, credits) = app.journal_totals().await;
        assert_eq!(debits, credits, "{channel}");
    }
}

#[tokio::test]
async fn list_payments_by_account_and_by_business_day() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    app.payments
        .record_counter_payment(counter("R-9", "5.00"))
        .await
        .unwrap();
    let by_account = app
        .payments
        .list_payments(pb::ListPaymentsRequest {
            account_no: "A-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_account.payments.len(), 1);
    let day = by_account.payments[0].business_date.clone();
    let by_day = app
        .payments
        .list_payments(pb::ListPaymentsRequest {
            business_date: day,
            channel: pb::Channel::Counter.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_day.payments.len(), 1);
    assert_code(
        app.payments
            .list_payments(pb::ListPaymentsRequest::default())
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn payments_of_one_account_committed_together_allocate_as_one_after_the_other() {
    let mut app = app_with_bill(PaymentsConfig::default()).await;
    let key = PrivateKey::parse(&fixture("gateway_pkcs8.pem")).unwrap();
    let owed = app.account("A-1", "").await.amount_due;
    let full = create(&mut app, "ALIPAY", &owed, "pays-the-bill")
        .await
        .unwrap();
    let extra = create(&mut app, "ALIPAY", "5.00", "prepays").await.unwrap();
    let mut first = alipay_params(&full.out_trade_no, &owed);
    first.insert("trade_no".into(), "2025010122001400000000000001".into());
    let mut second = alipay_params(&extra.out_trade_no, "5.00");
    second.insert("trade_no".into(), "2025010122001400000000000002".into());
    // Sent at once, so the group committer is likely to post them in one batch; the end
    // state must be the same either way.
    let (a, b, c) = tokio::join!(
        post_alipay(&app, &first, &key),
        post_alipay(&app, &second, &key),
        post_alipay(&app, &first, &key),
    );
    assert_eq!(
        (a.1.as_str(), b.1.as_str(), c.1.as_str()),
        ("success", "success", "success")
    );
    let account = app.account("A-1", "").await;
    assert_eq!(
        (
            account.amount_due.as_str(),
            account.prepayment_balance.as_str(),
            account.arrears_principal.as_str()
        ),
        ("0.00", "5.00", "0.00")
    );
    assert_eq!(
        app.count("journal_entries", "kind = 'PAYMENT_RECEIVED'")
            .await,
        2
    );
    assert_eq!(
        app.count_notifications(NotificationOutcome::Duplicate, None)
            .await,
        1
    );
    let (debits, credits) = app.journal_totals().await;
    assert_eq!(debits, credits);
}
