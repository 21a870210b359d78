use std::io::Read as _;
use std::sync::Arc;

use chrono::Duration;
use water_billing::gateway::alipay::client::{
    AlipayClient, AlipayConfig, AlipayRefundQuery, AlipayTrade, AlipayTradeStatus, BillUrl,
};
use water_billing::gateway::alipay::notify::{
    AlipayNotification, TradeStatus, verify_notification,
};
use water_billing::gateway::beijing::beijing_date;
use water_billing::gateway::error::{GatewayError, http_client};
use water_billing::gateway::keys::{PrivateKey, PublicKey};
use water_billing::sandbox::alipay::bill::{DETAIL_END_MARKER, DETAIL_HEADER, DETAIL_START_MARKER};
use water_billing::sandbox::alipay::{AlipaySimConfig, AlipaySimulator};
use water_billing::sandbox::delivery::DeliveryPolicy;
use water_billing::sandbox::faults::Faults;

use crate::helpers::{
    Receiver, eventually, gateway_key_pem, merchant_key, merchant_public_key, now, stranger_key,
};

const APP_ID: &str = "2021000000000000";
const SELLER_ID: &str = "2088000000000002";

struct Setup {
    sim: AlipaySimulator,
    client: AlipayClient,
    receiver: Receiver,
}

async fn setup() -> Setup {
    setup_with(merchant_key(), None).await
}

async fn setup_with(app_key: PrivateKey, alipay_key: Option<PublicKey>) -> Setup {
    let mut config = AlipaySimConfig::new(APP_ID, SELLER_ID, merchant_public_key());
    config.gateway_key_pem = Some(gateway_key_pem());
    config.delivery = DeliveryPolicy::for_tests();
    let (sim, _base_url) = AlipaySimulator::start(config).await.unwrap();
    let public = sim.alipay_public_key();
    let receiver = Receiver::start(Arc::new(move |_, body| {
        verify_notification(body, &public).is_ok()
    }))
    .await;
    let config = AlipayConfig {
        app_id: APP_ID.to_owned(),
        seller_id: SELLER_ID.to_owned(),
        app_private_key: app_key,
        alipay_public_key: alipay_key.unwrap_or_else(|| sim.alipay_public_key()),
        gateway_url: sim.gateway_url(),
        notify_url: receiver.url.clone(),
    };
    let client = AlipayClient::new(config, http_client().unwrap());
    Setup {
        sim,
        client,
        receiver,
    }
}

impl Setup {
    async fn paid(&self, no: &str, fen: i64) {
        self.client
            .precreate(no, fen, "水费-2025年01月", "30m", now())
            .await
            .unwrap();
        self.sim.pay(no).unwrap();
    }

    async fn next_notification(&mut self) -> AlipayNotification {
        let received = self.receiver.next().await;
        self.parse(&received.body)
    }

    fn parse(&self, body: &[u8]) -> AlipayNotification {
        verify_notification(body, &self.sim.alipay_public_key()).unwrap()
    }
}

fn rejection(result: Result<impl std::fmt::Debug, GatewayError>) -> String {
    match result {
        Err(e @ GatewayError::Rejected { .. }) => e.rejection_code().unwrap().to_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn precreate_then_query_says_not_exist_until_the_customer_pays() {
    let s = setup().await;
    let qr = s
        .client
        .precreate("WB1", 3580, "水费", "30m", now())
        .await
        .unwrap();
    assert!(qr.starts_with("https://qr.alipay.com/bax"), "{qr}");
    assert_eq!(
        s.client.query("WB1", now()).await.unwrap(),
        AlipayTrade::NotExist
    );

    let trade_no = s.sim.pay("WB1").unwrap();
    assert_eq!(trade_no.len(), 28);
    let AlipayTrade::Found(info) = s.client.query("WB1", now()).await.unwrap() else {
        panic!("trade should exist after payment");
    };
    assert_eq!(info.trade_no, trade_no);
    assert_eq!(info.trade_status, AlipayTradeStatus::TradeSuccess);
    assert_eq!(
        (info.total_amount.as_str(), info.total_fen),
        ("35.80", 3580)
    );
    assert_eq!(info.buyer_pay_amount.as_deref(), Some("35.80"));
    assert!(info.send_pay_date.is_some());
}

#[tokio::test]
async fn a_repeated_precreate_returns_the_same_qr_code_and_a_changed_amount_is_refused() {
    let s = setup().await;
    let first = s
        .client
        .precreate("WB2", 100, "水费", "30m", now())
        .await
        .unwrap();
    let again = s
        .client
        .precreate("WB2", 100, "水费", "30m", now())
        .await
        .unwrap();
    assert_eq!(first, again);
    let changed = s.client.precreate("WB2", 101, "水费", "30m", now()).await;
    assert_eq!(rejection(changed), "ACQ.CONTEXT_INCONSISTENT");
}

#[tokio::test]
async fn a_scanned_trade_can_be_closed_and_can_then_no_longer_be_paid() {
    let s = setup().await;
    s.client
        .precreate("WB3", 100, "水费", "30m", now())
        .await
        .unwrap();
    s.sim.scan("WB3").unwrap();
    let AlipayTrade::Found(info) = s.client.query("WB3", now()).await.unwrap() else {
        panic!("a scanned trade exists");
    };
    assert_eq!(info.trade_status, AlipayTradeStatus::WaitBuyerPay);
    s.client.close("WB3", now()).await.unwrap();
    let AlipayTrade::Found(info) = s.client.query("WB3", now()).await.unwrap() else {
        panic!("a closed trade exists");
    };
    assert_eq!(info.trade_status, AlipayTradeStatus::TradeClosed);
    assert!(s.sim.pay("WB3").is_err());
}

#[tokio::test]
async fn closing_an_unscanned_precreate_says_not_exist_but_locks_the_order() {
    let s = setup().await;
    s.client
        .precreate("WB4", 100, "水费", "30m", now())
        .await
        .unwrap();
    assert_eq!(
        rejection(s.client.close("WB4", now()).await),
        "ACQ.TRADE_NOT_EXIST"
    );
    assert!(s.sim.pay("WB4").is_err());
}

#[tokio::test]
async fn refund_and_refund_query_work_and_an_identical_retry_moves_no_money() {
    let s = setup().await;
    s.paid("WB5", 3580).await;
    let refund = s
        .client
        .refund("WB5", 1000, "R1", "多缴", now())
        .await
        .unwrap();
    assert!(refund.fund_change);
    assert_eq!(refund.refund_fee, 1000);
    let retry = s
        .client
        .refund("WB5", 1000, "R1", "多缴", now())
        .await
        .unwrap();
    assert!(!retry.fund_change);
    assert_eq!(retry.refund_fee, 1000);

    let found = s.client.refund_query("WB5", "R1", now()).await.unwrap();
    assert_eq!(
        found,
        AlipayRefundQuery::Found {
            out_request_no: "R1".to_owned(),
            refund_fen: 1000,
            total_fen: 3580,
            refund_status: Some("REFUND_SUCCESS".to_owned()),
        }
    );
    let missing = s.client.refund_query("WB5", "R9", now()).await.unwrap();
    assert_eq!(missing, AlipayRefundQuery::NotFound);

    let discordant = s.client.refund("WB5", 999, "R1", "多缴", now()).await;
    assert_eq!(rejection(discordant), "ACQ.DISCORDANT_REPEAT_REQUEST");
    let too_much = s.client.refund("WB5", 2581, "R2", "多缴", now()).await;
    assert_eq!(rejection(too_much), "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL");
    assert_eq!(s.sim.trade("WB5").unwrap().refunded_fen(), 1000);
}

#[tokio::test]
async fn a_request_signed_with_another_key_is_rejected_as_an_invalid_signature() {
    let s = setup_with(stranger_key(), None).await;
    let result = s.client.precreate("WB6", 100, "水费", "30m", now()).await;
    assert_eq!(rejection(result), "isv.invalid-signature");
    assert!(s.sim.trades().is_empty());
}

#[tokio::test]
async fn an_answer_that_does_not_verify_with_the_alipay_key_is_an_unknown_outcome() {
    let s = setup_with(merchant_key(), Some(merchant_public_key())).await;
    let result = s.client.precreate("WB7", 100, "水费", "30m", now()).await;
    assert!(
        result.as_ref().is_err_and(GatewayError::is_unknown),
        "{result:?}"
    );
}

#[tokio::test]
async fn payment_and_refund_notifications_verify_with_the_existing_parser() {
    let mut s = setup().await;
    s.paid("WB8", 3580).await;
    let paid = s.receiver.next().await;
    assert!(paid.verified);
    let n = s.parse(&paid.body);
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(
        (n.app_id.as_str(), n.seller_id.as_str()),
        (APP_ID, SELLER_ID)
    );
    assert_eq!(
        (n.out_trade_no.as_str(), n.total_amount.as_str()),
        ("WB8", "35.80")
    );
    assert_eq!(n.trade_no.len(), 28);
    assert!(n.gmt_payment.is_some() && !n.notify_id.is_empty());
    assert_eq!(n.params["subject"], "水费-2025年01月");

    s.client
        .refund("WB8", 1000, "R1", "多缴", now())
        .await
        .unwrap();
    let partial = s.next_notification().await;
    assert_eq!(partial.trade_status, TradeStatus::TradeSuccess);
    let info = partial.refund.unwrap();
    assert_eq!(
        (info.refund_fee.as_str(), info.out_biz_no.as_deref()),
        ("10.00", Some("R1"))
    );
    assert!(info.gmt_refund.is_some());

    s.client
        .refund("WB8", 2580, "R2", "多缴", now())
        .await
        .unwrap();
    let full = s.next_notification().await;
    assert_eq!(full.trade_status, TradeStatus::TradeClosed);
    assert_eq!(full.refund.unwrap().refund_fee, "35.80");
    assert!(full.gmt_close.is_some());
}

#[tokio::test]
async fn a_notification_is_retried_until_the_receiver_says_success() {
    let mut s = setup().await;
    s.receiver.fail_first(2);
    s.paid("WB9", 100).await;
    for _ in 0..3 {
        s.receiver.next().await;
    }
    eventually(|| {
        s.sim
            .deliveries()
            .iter()
            .any(|d| d.acked && d.attempts == 3)
    })
    .await;
}

#[tokio::test]
async fn a_dropped_notification_never_arrives() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        drop_next_notifications: 1,
        ..Faults::default()
    });
    s.paid("WB10", 100).await;
    assert!(s.receiver.next_within(300).await.is_none());
    assert!(s.sim.deliveries().iter().any(|d| d.dropped));
    assert_eq!(s.sim.faults(), Faults::default());
}

#[tokio::test]
async fn duplicates_set_over_http_arrive_as_identical_verified_copies() {
    let mut s = setup().await;
    let faults_url = format!("{}/sandbox/faults", s.sim.base_url());
    let answer = reqwest::Client::new()
        .post(faults_url)
        .json(&serde_json::json!({ "duplicate": 2 }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    s.client
        .precreate("WB11", 100, "水费", "30m", now())
        .await
        .unwrap();
    let pay_url = format!("{}/sandbox/pay", s.sim.base_url());
    let paid = reqwest::Client::new()
        .post(pay_url)
        .json(&serde_json::json!({ "out_trade_no": "WB11" }))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success());
    let copies = [
        s.receiver.next().await,
        s.receiver.next().await,
        s.receiver.next().await,
    ];
    assert!(
        copies
            .iter()
            .all(|c| c.verified && c.body == copies[0].body)
    );
    assert!(s.receiver.next_within(200).await.is_none());
}

#[tokio::test]
async fn a_wrong_amount_notification_is_correctly_signed_but_carries_another_amount() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        wrong_amount_next: true,
        ..Faults::default()
    });
    s.paid("WB12", 3580).await;
    let received = s.receiver.next().await;
    assert!(received.verified);
    assert_eq!(s.parse(&received.body).total_amount, "35.81");
}

#[tokio::test]
async fn a_bad_signature_notification_fails_verification_and_is_retried_to_the_bound() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        bad_signature_next: true,
        ..Faults::default()
    });
    s.paid("WB13", 100).await;
    for _ in 0..DeliveryPolicy::for_tests().attempts_max {
        assert!(!s.receiver.next().await.verified);
    }
    eventually(|| {
        s.sim
            .deliveries()
            .iter()
            .any(|d| !d.acked && d.attempts == 5)
    })
    .await;
    assert!(s.receiver.next_within(200).await.is_none());
}

#[tokio::test]
async fn reorder_delivers_the_next_two_notifications_in_reverse_and_delay_holds_them_back() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        reorder: true,
        ..Faults::default()
    });
    s.paid("WB14", 100).await;
    s.paid("WB15", 100).await;
    assert_eq!(s.next_notification().await.out_trade_no, "WB15");
    assert_eq!(s.next_notification().await.out_trade_no, "WB14");

    s.sim.set_faults(Faults {
        delay_ms: 400,
        ..Faults::default()
    });
    s.paid("WB16", 100).await;
    assert!(s.receiver.next_within(200).await.is_none());
    assert_eq!(s.next_notification().await.out_trade_no, "WB16");
}

/// Reads the zip, decoding entry names as GBK.
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let name = encoding_rs::GBK.decode(file.name_raw()).0.into_owned();
        let mut raw = Vec::new();
        file.read_to_end(&mut raw).unwrap();
        let (text, _, had_errors) = encoding_rs::GBK.decode(&raw);
        assert!(!had_errors, "{name} is valid GBK");
        entries.push((name, text.into_owned()));
    }
    entries
}

#[tokio::test]
async fn the_bill_is_a_gbk_zip_in_alipays_layout_with_matching_footer_totals() {
    let s = setup().await;
    s.sim.set_clock_offset(Duration::days(-2));
    s.paid("WB20", 3580).await;
    s.paid("WB21", 1000).await;
    s.client
        .refund("WB20", 1000, "R1", "多缴", now())
        .await
        .unwrap();
    s.sim.set_clock_offset(Duration::zero());
    let day = beijing_date(now()) - Duration::days(2);

    let BillUrl::Url(url) = s.client.bill_download_url(day, now()).await.unwrap() else {
        panic!("a day with trades has a bill");
    };
    let entries = unzip(&s.client.download_bill(&url).await.unwrap());
    let stem = format!("{SELLER_ID}0156_{}", day.format("%Y%m%d"));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{stem}_业务明细.csv"),
            format!("{stem}_业务明细(汇总).csv")
        ]
    );
    let lines: Vec<&str> = entries[0].1.split("\r\n").collect();
    assert_eq!(lines[0], "#支付宝业务明细查询");
    assert_eq!(lines[1], format!("#账号：[{SELLER_ID}0156]"));
    assert!(lines[2].starts_with("#起始日期：["));
    assert_eq!((lines[3], lines[4]), (DETAIL_START_MARKER, DETAIL_HEADER));
    let rows: Vec<Vec<&str>> = lines[5..8].iter().map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 25));
    let trade_no = s.sim.trade("WB20").unwrap().gateway_trade_no.unwrap();
    assert_eq!(rows[0][0], format!("{trade_no}\t"));
    assert_eq!(
        (rows[0][1], rows[0][2], rows[0][11]),
        ("WB20\t", "交易\t", "35.80")
    );
    assert_eq!(
        (rows[2][1], rows[2][2], rows[2][12]),
        ("WB20\t", "退款\t", "-10.00")
    );
    assert_eq!(rows[2][21], "R1\t");
    assert_eq!(lines[8], DETAIL_END_MARKER);
    assert_eq!(
        lines[9],
        "#交易合计：2笔，商家实收共45.80元，商家优惠共0.00元"
    );
    assert_eq!(
        lines[10],
        "#退款合计：1笔，商家实收退款共-10.00元，商家优惠退款共0.00元"
    );
    assert!(lines[11].starts_with("#导出时间：["));
}

#[tokio::test]
async fn a_day_without_trades_has_no_bill_and_today_is_not_ready() {
    let s = setup().await;
    let today = beijing_date(now());
    let empty = s
        .client
        .bill_download_url(today - Duration::days(3), now())
        .await;
    assert_eq!(empty.unwrap(), BillUrl::NoBill);
    let early = s.client.bill_download_url(today, now()).await;
    assert_eq!(early.unwrap(), BillUrl::NotReady);
}
