use std::sync::Arc;

use chrono::{Duration, FixedOffset};
use water_billing::gateway::beijing::{BEIJING, beijing_date};
use water_billing::gateway::error::{GatewayError, http_client};
use water_billing::gateway::keys::{ApiV3Key, PrivateKey, PublicKey};
use water_billing::gateway::wechat::client::{BillTarType, TradeBill, WechatClient, WechatConfig};
use water_billing::gateway::wechat::notify::{
    NotificationResource, WechatNotification, verify_notification,
};
use water_billing::gateway::wechat::resource::{RefundStatus, TradeState};
use water_billing::gateway::wechat::sign::{MerchantSigner, SignedHeaders, WechatKeySet};
use water_billing::sandbox::delivery::DeliveryPolicy;
use water_billing::sandbox::faults::Faults;
use water_billing::sandbox::wechat::bill::{DETAIL_HEADER, SUMMARY_HEADER};
use water_billing::sandbox::wechat::{WechatSimConfig, WechatSimulator};

use crate::helpers::{
    Receiver, eventually, gateway_key_pem, merchant_key, merchant_public_key, now, stranger_key,
};

const MCH_ID: &str = "1900000001";
const APP_ID: &str = "wx0000000000000000";
const SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const API_V3_KEY: &str = "0123456789abcdefABCDEF0123456789";

struct Setup {
    sim: WechatSimulator,
    client: WechatClient,
    receiver: Receiver,
}

fn key_set(id: &str, key: PublicKey) -> WechatKeySet {
    let mut keys = WechatKeySet::new();
    keys.add_public_key(id, key).unwrap();
    keys
}

async fn setup() -> Setup {
    setup_with(merchant_key(), None).await
}

async fn setup_with(merchant: PrivateKey, wechat_key: Option<PublicKey>) -> Setup {
    let api_v3_key = ApiV3Key::parse(API_V3_KEY).unwrap();
    let mut config =
        WechatSimConfig::new(MCH_ID, APP_ID, merchant_public_key(), api_v3_key.clone());
    config.merchant_serial_no = Some(SERIAL.to_owned());
    config.gateway_key_pem = Some(gateway_key_pem());
    config.delivery = DeliveryPolicy::for_tests();
    let (sim, base_url) = WechatSimulator::start(config).await.unwrap();
    let sim_keys = key_set(sim.public_key_id(), sim.wechat_public_key());
    let receiver_key = api_v3_key.clone();
    let receiver = Receiver::start(Arc::new(move |headers, body| {
        let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let Ok(signed) = SignedHeaders::from_pairs(pairs) else {
            return false;
        };
        verify_notification(&signed, body, &sim_keys, &receiver_key, now()).is_ok()
    }))
    .await;
    let key_id = sim.public_key_id().to_owned();
    let config = WechatConfig {
        mch_id: MCH_ID.to_owned(),
        app_id: APP_ID.to_owned(),
        signer: MerchantSigner::new(MCH_ID, SERIAL, merchant).unwrap(),
        keys: key_set(
            &key_id,
            wechat_key.unwrap_or_else(|| sim.wechat_public_key()),
        ),
        public_key_id: Some(key_id),
        api_v3_key,
        base_url,
        notify_url: receiver.url.clone(),
    };
    let client = WechatClient::new(config, http_client().unwrap());
    Setup {
        sim,
        client,
        receiver,
    }
}

fn expiry() -> chrono::DateTime<FixedOffset> {
    (now() + Duration::minutes(30)).with_timezone(&BEIJING)
}

impl Setup {
    async fn paid(&self, no: &str, fen: i64) -> String {
        self.client
            .native_prepay(no, "水费-2025年01月", fen, expiry(), now())
            .await
            .unwrap();
        self.sim.pay(no).unwrap()
    }

    fn parse(&self, received: &crate::helpers::Received) -> WechatNotification {
        let pairs = received
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let signed = SignedHeaders::from_pairs(pairs).unwrap();
        let keys = key_set(self.sim.public_key_id(), self.sim.wechat_public_key());
        let api_v3_key = ApiV3Key::parse(API_V3_KEY).unwrap();
        verify_notification(&signed, &received.body, &keys, &api_v3_key, now()).unwrap()
    }
}

fn rejection(result: Result<impl std::fmt::Debug, GatewayError>) -> String {
    match result {
        Err(e @ GatewayError::Rejected { .. }) => e.rejection_code().unwrap().to_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn prepay_then_query_shows_notpay_until_the_customer_pays() {
    let s = setup().await;
    assert_eq!(s.client.query("WB000001", now()).await.unwrap(), None);
    let code_url = s
        .client
        .native_prepay("WB000001", "水费", 3580, expiry(), now())
        .await
        .unwrap();
    assert!(code_url.starts_with("weixin://wxpay/bizpayurl?pr="));
    let unpaid = s.client.query("WB000001", now()).await.unwrap().unwrap();
    assert_eq!(unpaid.trade_state, TradeState::NotPay);

    let transaction_id = s.sim.pay("WB000001").unwrap();
    assert!(transaction_id.len() >= 28);
    let paid = s.client.query("WB000001", now()).await.unwrap().unwrap();
    assert_eq!(paid.trade_state, TradeState::Success);
    assert_eq!(
        paid.transaction_id.as_deref(),
        Some(transaction_id.as_str())
    );
    assert_eq!(
        (paid.amount.total, paid.amount.payer_total),
        (3580, Some(3580))
    );
    assert!(paid.success_time.is_some());
}

#[tokio::test]
async fn a_repeated_prepay_returns_the_same_code_url_and_changed_params_are_refused() {
    let s = setup().await;
    let expire = expiry();
    let first = s
        .client
        .native_prepay("WB000002", "水费", 100, expire, now())
        .await
        .unwrap();
    let again = s
        .client
        .native_prepay("WB000002", "水费", 100, expire, now())
        .await
        .unwrap();
    assert_eq!(first, again);
    let changed = s
        .client
        .native_prepay("WB000002", "水费", 101, expire, now())
        .await;
    assert_eq!(rejection(changed), "INVALID_REQUEST");
}

#[tokio::test]
async fn close_answers_204_and_the_order_is_closed_and_unpayable() {
    let s = setup().await;
    s.client
        .native_prepay("WB000003", "水费", 100, expiry(), now())
        .await
        .unwrap();
    s.client.close("WB000003", now()).await.unwrap();
    let closed = s.client.query("WB000003", now()).await.unwrap().unwrap();
    assert_eq!(closed.trade_state, TradeState::Closed);
    assert!(s.sim.pay("WB000003").is_err());
}

#[tokio::test]
async fn refund_and_refund_query_work_and_an_identical_retry_returns_the_same_refund() {
    let s = setup().await;
    s.paid("WB000004", 3580).await;
    let refund = s
        .client
        .refund("WB000004", "RF1", 1000, 3580, "多缴", now())
        .await
        .unwrap();
    assert_eq!(refund.status, RefundStatus::Success);
    assert_eq!((refund.amount.refund, refund.amount.total), (1000, 3580));
    let retry = s
        .client
        .refund("WB000004", "RF1", 1000, 3580, "多缴", now())
        .await
        .unwrap();
    assert_eq!(retry.refund_id, refund.refund_id);
    let queried = s.client.refund_query("RF1", now()).await.unwrap();
    assert_eq!(queried, refund);
    assert_eq!(s.sim.trade("WB000004").unwrap().refunds.len(), 1);

    let changed = s
        .client
        .refund("WB000004", "RF1", 999, 3580, "多缴", now())
        .await;
    assert_eq!(rejection(changed), "INVALID_REQUEST");
    let too_much = s
        .client
        .refund("WB000004", "RF2", 2581, 3580, "多缴", now())
        .await;
    assert_eq!(rejection(too_much), "INVALID_REQUEST");
    let unknown = s.client.refund_query("RF9", now()).await;
    assert_eq!(rejection(unknown), "RESOURCE_NOT_EXISTS");
    let paid = s.client.query("WB000004", now()).await.unwrap().unwrap();
    assert_eq!(paid.trade_state, TradeState::Refund);
}

#[tokio::test]
async fn a_request_signed_with_another_key_gets_401_sign_error() {
    let s = setup_with(stranger_key(), None).await;
    let result = s
        .client
        .native_prepay("WB000005", "水费", 100, expiry(), now())
        .await;
    assert_eq!(rejection(result), "SIGN_ERROR");
    assert!(s.sim.trades().is_empty());
}

#[tokio::test]
async fn a_2xx_answer_that_does_not_verify_is_an_unknown_outcome() {
    let s = setup_with(merchant_key(), Some(merchant_public_key())).await;
    let result = s
        .client
        .native_prepay("WB000006", "水费", 100, expiry(), now())
        .await;
    assert!(
        result.as_ref().is_err_and(GatewayError::is_unknown),
        "{result:?}"
    );
}

#[tokio::test]
async fn payment_and_refund_notifications_verify_and_decrypt_with_the_existing_parser() {
    let mut s = setup().await;
    let transaction_id = s.paid("WB000007", 3580).await;
    let received = s.receiver.next().await;
    assert!(received.verified);
    let n = s.parse(&received);
    assert_eq!(n.event_type, "TRANSACTION.SUCCESS");
    let NotificationResource::Transaction(t) = n.resource else {
        panic!("a transaction resource");
    };
    assert_eq!((t.mchid.as_str(), t.appid.as_str()), (MCH_ID, APP_ID));
    assert_eq!(t.transaction_id.as_deref(), Some(transaction_id.as_str()));
    assert_eq!((t.trade_state, t.amount.total), (TradeState::Success, 3580));

    s.client
        .refund("WB000007", "RF1", 1000, 3580, "多缴", now())
        .await
        .unwrap();
    let received = s.receiver.next().await;
    let n = s.parse(&received);
    assert_eq!(n.event_type, "REFUND.SUCCESS");
    let NotificationResource::Refund(r) = n.resource else {
        panic!("a refund resource");
    };
    assert_eq!((r.out_refund_no.as_str(), r.amount.refund), ("RF1", 1000));
    assert_eq!(r.refund_status, RefundStatus::Success);
}

#[tokio::test]
async fn wrong_amount_and_bad_signature_faults_reach_the_receiver_as_described() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        wrong_amount_next: true,
        ..Faults::default()
    });
    s.paid("WB000008", 3580).await;
    let received = s.receiver.next().await;
    assert!(received.verified);
    let NotificationResource::Transaction(t) = s.parse(&received).resource else {
        panic!("a transaction resource");
    };
    assert_eq!(t.amount.total, 3581);

    s.sim.set_faults(Faults {
        bad_signature_next: true,
        ..Faults::default()
    });
    s.paid("WB000009", 100).await;
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
}

#[tokio::test]
async fn drop_duplicate_and_reorder_faults_shape_the_deliveries() {
    let mut s = setup().await;
    s.sim.set_faults(Faults {
        drop_next_notifications: 1,
        ..Faults::default()
    });
    s.paid("WB000010", 100).await;
    assert!(s.receiver.next_within(300).await.is_none());

    s.sim.set_faults(Faults {
        duplicate: 1,
        ..Faults::default()
    });
    s.paid("WB000011", 100).await;
    let (a, b) = (s.receiver.next().await, s.receiver.next().await);
    assert!(a.verified && b.verified && a.body == b.body);

    s.sim.set_faults(Faults {
        reorder: true,
        ..Faults::default()
    });
    s.paid("WB000012", 100).await;
    s.paid("WB000013", 100).await;
    let order: Vec<String> = [s.receiver.next().await, s.receiver.next().await]
        .iter()
        .map(|r| match s.parse(r).resource {
            NotificationResource::Transaction(t) => t.out_trade_no,
            NotificationResource::Refund(r) => r.out_trade_no,
        })
        .collect();
    assert_eq!(order, ["WB000013", "WB000012"]);
}

#[tokio::test]
async fn the_trade_bill_has_wechats_layout_and_its_sha1_holds_plain_and_gzipped() {
    let s = setup().await;
    s.sim.set_clock_offset(Duration::days(-2));
    s.paid("WB000020", 3580).await;
    s.paid("WB000021", 1000).await;
    s.client
        .refund("WB000020", "RF1", 1000, 3580, "多缴", now())
        .await
        .unwrap();
    s.sim.set_clock_offset(Duration::zero());
    let day = beijing_date(now()) - Duration::days(2);

    let TradeBill::Ready {
        hash_value,
        download_url,
    } = s
        .client
        .trade_bill(day, BillTarType::Plain, now())
        .await
        .unwrap()
    else {
        panic!("a day with trades has a bill");
    };
    let plain = s
        .client
        .download_bill(&download_url, &hash_value, now())
        .await
        .unwrap();
    let TradeBill::Ready {
        hash_value: gz_hash,
        download_url: gz_url,
    } = s
        .client
        .trade_bill(day, BillTarType::Gzip, now())
        .await
        .unwrap()
    else {
        panic!("a day with trades has a bill");
    };
    assert_eq!(gz_hash, hash_value);
    let gunzipped = s
        .client
        .download_bill(&gz_url, &gz_hash, now())
        .await
        .unwrap();
    assert_eq!(gunzipped, plain);

    let text = String::from_utf8(plain).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], DETAIL_HEADER);
    let rows: Vec<Vec<&str>> = lines[1..4].iter().map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().flatten().all(|field| field.starts_with('`')));
    assert!(rows.iter().all(|r| r.len() == 27));
    assert_eq!(
        (rows[0][6], rows[0][9], rows[0][12]),
        ("`WB000020", "`SUCCESS", "`35.80")
    );
    assert_eq!((rows[0][22], rows[0][23]), ("`0.21480", "`0.60%"));
    assert_eq!(
        (rows[2][9], rows[2][15], rows[2][16]),
        ("`REFUND", "`RF1", "`10.00")
    );
    assert_eq!(rows[2][22], "`-0.06000");
    assert_eq!(lines[4], SUMMARY_HEADER);
    assert_eq!(lines[5], "`3,`45.80,`10.00,`0.00,`0.21480,`45.80,`10.00");

    let tampered = s
        .client
        .download_bill(&download_url, &"0".repeat(40), now())
        .await;
    assert!(
        matches!(tampered, Err(GatewayError::Protocol(_))),
        "{tampered:?}"
    );
}

#[tokio::test]
async fn a_day_without_trades_has_no_statement_and_today_is_still_being_created() {
    let s = setup().await;
    let today = beijing_date(now());
    let empty = s
        .client
        .trade_bill(today - Duration::days(3), BillTarType::Gzip, now())
        .await;
    assert_eq!(empty.unwrap(), TradeBill::NoStatement);
    let early = s.client.trade_bill(today, BillTarType::Plain, now()).await;
    assert_eq!(early.unwrap(), TradeBill::NotReady);
}
