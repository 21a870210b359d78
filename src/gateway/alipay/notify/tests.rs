#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;

use super::*;
use crate::gateway::test_support::{fixture, gateway_public_key, merchant_public_key, sha256_hex};

const D2_VERIFY_STRING: &str = r#"app_id=2021000000000000&auth_app_id=2021000000000000&buyer_id=2088000000000001&buyer_logon_id=138****0000&buyer_pay_amount=35.80&charset=utf-8&fund_bill_list=[{"amount":"35.80","fundChannel":"ALIPAYACCOUNT"}]&gmt_create=2025-01-01 10:00:20&gmt_payment=2025-01-01 10:00:21&invoice_amount=35.80&notify_id=2025010100222100021000000000000000&notify_time=2025-01-01 10:00:22&notify_type=trade_status_sync&out_trade_no=WB202501010001&point_amount=0.00&receipt_amount=35.80&seller_email=bill***@example.com&seller_id=2088000000000002&subject=水费-2025年01月&total_amount=35.80&trade_no=2025010122001400000000000001&trade_status=TRADE_SUCCESS&version=1.0"#;

fn paid_body() -> String {
    fixture("alipay_notify_paid.txt")
}

fn time(day: u32, h: u32, m: u32, s: u32, ms: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 1, day)
        .unwrap()
        .and_hms_milli_opt(h, m, s, ms)
        .unwrap()
}

#[test]
fn the_verify_string_of_the_part_d2_notification_matches() {
    let params = parse_form(paid_body().as_bytes()).unwrap();
    assert_eq!(params["sign_type"], "RSA2");
    let content = notification_sign_content(&params);
    assert_eq!(content, D2_VERIFY_STRING);
    assert_eq!(
        sha256_hex(content.as_bytes()),
        "65e13b665851dcb0bcb9c3cf92e6aaf997424aff0a40162f34ceeba7e2e49065"
    );
}

#[test]
fn a_paid_notification_signed_by_openssl_verifies_into_typed_fields() {
    let n = verify_notification(paid_body().as_bytes(), &gateway_public_key()).unwrap();
    assert_eq!(n.notify_id, "2025010100222100021000000000000000");
    assert_eq!(n.notify_type, "trade_status_sync");
    assert_eq!(n.notify_time, time(1, 10, 0, 22, 0));
    assert_eq!(n.app_id, "2021000000000000");
    assert_eq!(n.seller_id, "2088000000000002");
    assert_eq!(n.out_trade_no, "WB202501010001");
    assert_eq!(n.trade_no, "2025010122001400000000000001");
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    assert!(n.trade_status.is_paid());
    assert_eq!(n.total_amount, "35.80");
    assert_eq!(n.gmt_payment, Some(time(1, 10, 0, 21, 0)));
    assert_eq!(n.gmt_close, None);
    assert_eq!(n.refund, None);
    assert_eq!(n.params["subject"], "水费-2025年01月");
}

#[test]
fn a_refund_notification_keeps_plus_signs_trailing_spaces_and_unknown_fields() {
    let body = fixture("alipay_notify_refunded.txt");
    let n = verify_notification(body.as_bytes(), &gateway_public_key()).unwrap();
    assert_eq!(n.trade_status, TradeStatus::TradeClosed);
    assert_eq!(n.params["subject"], "会员+ 水费 ");
    assert_eq!(n.params["passback_params"], "a=b&c=d%2B");
    assert_eq!(n.params["brand_new_field"], "x");
    assert_eq!(n.params["body"], "");
    let refund = n.refund.unwrap();
    assert_eq!(refund.refund_fee, "35.80");
    assert_eq!(refund.gmt_refund, Some(time(2, 9, 0, 4, 123)));
    assert_eq!(refund.out_biz_no.as_deref(), Some("RF202501020001"));
    assert_eq!(n.gmt_close, Some(time(2, 9, 0, 4, 0)));
}

#[test]
fn a_tampered_amount_fails_verification() {
    let body = paid_body().replace("total_amount=35.80", "total_amount=0.01");
    let err = verify_notification(body.as_bytes(), &gateway_public_key()).unwrap_err();
    assert_eq!(err, AlipayError::SignatureMismatch);
}

#[test]
fn a_notification_checked_against_the_wrong_key_fails() {
    let err = verify_notification(paid_body().as_bytes(), &merchant_public_key()).unwrap_err();
    assert_eq!(err, AlipayError::SignatureMismatch);
}

#[test]
fn dropping_sign_type_from_the_body_does_not_change_the_verdict() {
    let body = paid_body().replace("&sign_type=RSA2", "");
    assert!(verify_notification(body.as_bytes(), &gateway_public_key()).is_ok());
}

#[test]
fn a_missing_sign_bad_base64_or_legacy_sign_type_is_refused() {
    let key = gateway_public_key();
    let without_sign: String = paid_body()
        .split('&')
        .filter(|p| !p.starts_with("sign="))
        .collect::<Vec<_>>()
        .join("&");
    let err = verify_notification(without_sign.as_bytes(), &key).unwrap_err();
    assert_eq!(err, AlipayError::SignMissing);
    let bad_sign = format!("{without_sign}&sign=%21%21%21");
    let err = verify_notification(bad_sign.as_bytes(), &key).unwrap_err();
    assert_eq!(err, AlipayError::SignNotBase64);
    let rsa1 = paid_body().replace("sign_type=RSA2", "sign_type=RSA");
    let err = verify_notification(rsa1.as_bytes(), &key).unwrap_err();
    assert_eq!(
        err,
        AlipayError::SignTypeNotRsa2 {
            found: "RSA".into()
        }
    );
}

#[test]
fn form_parsing_splits_on_the_first_equals_and_decodes_once() {
    let params = parse_form(b"sign=ab%2Bc%3D%3D&s=a+b%2B&empty=&flag&x==y").unwrap();
    assert_eq!(params["sign"], "ab+c==");
    assert_eq!(params["s"], "a b+");
    assert_eq!(params["empty"], "");
    assert_eq!(params["flag"], "");
    assert_eq!(params["x"], "=y");
}

#[test]
fn malformed_forms_are_refused_with_the_reason() {
    let err = parse_form(b"a=1&a=2").unwrap_err();
    assert_eq!(err, AlipayError::DuplicateParam { name: "a".into() });
    let err = parse_form(b"a=%FF").unwrap_err();
    assert_eq!(
        err,
        AlipayError::MalformedForm {
            reason: "not UTF-8"
        }
    );
    let err = parse_form(b"charset=gbk&a=1").unwrap_err();
    assert_eq!(
        err,
        AlipayError::UnsupportedCharset {
            charset: "gbk".into()
        }
    );
    let many: Vec<String> = (0..=NOTIFY_PARAMS_MAX).map(|i| format!("k{i}=v")).collect();
    let err = parse_form(many.join("&").as_bytes()).unwrap_err();
    assert_eq!(
        err,
        AlipayError::TooManyParams {
            max: NOTIFY_PARAMS_MAX
        }
    );
}

#[test]
fn an_unknown_trade_status_or_missing_field_is_named_in_the_error() {
    let mut params = parse_form(paid_body().as_bytes()).unwrap();
    params.insert("trade_status".into(), "TRADE_PENDING".into());
    let err = AlipayNotification::from_verified(params.clone()).unwrap_err();
    assert!(matches!(
        err,
        AlipayError::InvalidField {
            field: "trade_status",
            ..
        }
    ));
    params.remove("out_trade_no");
    let err = AlipayNotification::from_verified(params).unwrap_err();
    assert_eq!(
        err,
        AlipayError::MissingField {
            field: "out_trade_no"
        }
    );
}
