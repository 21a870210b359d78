#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::gateway::test_support::{
    fixture, gateway_public_key, header_pairs, merchant_key, merchant_public_key,
    platform_certificate, sha256_hex,
};

const NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";
const PREPAY_BODY: &str = r#"{"appid":"wx0000000000000000","mchid":"1900000001","description":"water bill 2025-01","out_trade_no":"WB202501010001","notify_url":"https://pay.example.com/notify/wechat","amount":{"total":3580,"currency":"CNY"}}"#;
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0000000000000024101100397200000006";
const PLATFORM_SERIAL: &str = "6E1D414B17AFC0A15A2E4491C9C14927801AF3EC";
/// `Wechatpay-Timestamp` of the notification fixtures.
const SIGNED_AT: i64 = 1_735_696_805;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn request<'a>(method: &'a str, url: &'a str, body: &'a str) -> RequestToSign<'a> {
    RequestToSign {
        method,
        canonical_url: url,
        timestamp: at(1_735_696_800),
        nonce: NONCE,
        body,
    }
}

fn prepay() -> RequestToSign<'static> {
    request("POST", "/v3/pay/transactions/native", PREPAY_BODY)
}

fn keys() -> WechatKeySet {
    let mut keys = WechatKeySet::new();
    keys.add_public_key(PUBLIC_KEY_ID, gateway_public_key())
        .unwrap();
    keys.add_platform_certificate(&platform_certificate())
        .unwrap();
    keys
}

/// Verifies a notification fixture, letting the test edit headers and body first.
fn verify_fixture(
    name: &str,
    now: DateTime<Utc>,
    edit: impl FnOnce(&mut Vec<(String, String)>, &mut String),
    keys: &WechatKeySet,
) -> Result<(), WechatError> {
    let mut pairs = header_pairs(&format!("{name}.headers"));
    let mut body = fixture(&format!("{name}.json"));
    edit(&mut pairs, &mut body);
    let headers = SignedHeaders::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
    verify_signature(&headers, body.as_bytes(), keys, now)
}

fn set_header(pairs: &mut [(String, String)], name: &str, value: &str) {
    pairs
        .iter_mut()
        .filter(|(n, _)| n == name)
        .for_each(|(_, v)| *v = value.to_owned());
}

#[test]
fn request_messages_match_part_d3() {
    let cases = [
        (
            prepay(),
            "a1c03b0dcbbaa462ce90fabb8b7912ae26d690915df878a946f87a7389ac7e31",
        ),
        (
            request(
                "GET",
                "/v3/pay/transactions/out-trade-no/WB202501010001?mchid=1900000001",
                "",
            ),
            "2d5df0a85711aebc4bf932d84a59e8bd15579a4b1dd5158aa9d1ca8fd46f7e5d",
        ),
        (
            request(
                "GET",
                "/v3/bill/tradebill?bill_date=2025-01-01&bill_type=ALL&tar_type=GZIP",
                "",
            ),
            "55dbcf8325b44ddbc33c46a8e00b4eb8d7a921c9c082ede0ada032d7934968cb",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            sha256_hex(request_message(&request).unwrap().as_bytes()),
            expected
        );
    }
    let get = request("GET", "/v3/x", "");
    assert!(
        request_message(&get)
            .unwrap()
            .ends_with(&format!("{NONCE}\n\n"))
    );
}

#[test]
fn the_request_signature_is_byte_identical_to_openssl() {
    assert_eq!(
        request_message(&prepay()).unwrap(),
        fixture("wechat_request.txt")
    );
    let signer = MerchantSigner::new(
        "1900000001",
        "5157F09EFDC096DE15EBE81A47057A72",
        merchant_key(),
    );
    assert_eq!(
        signer.unwrap().sign(&prepay()).unwrap(),
        fixture("wechat_request.sig")
    );
}

#[test]
fn the_authorization_header_carries_all_five_fields() {
    let signer = MerchantSigner::new(
        "1900000001",
        "5157F09EFDC096DE15EBE81A47057A72",
        merchant_key(),
    )
    .unwrap();
    let expected = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"{NONCE}\",signature=\"{}\",timestamp=\"1735696800\",serial_no=\"5157F09EFDC096DE15EBE81A47057A72\"",
        fixture("wechat_request.sig")
    );
    assert_eq!(signer.authorization(&prepay()).unwrap(), expected);
    let signature = BASE64.decode(fixture("wechat_request.sig")).unwrap();
    let message = request_message(&prepay()).unwrap();
    assert!(merchant_public_key().verify(message.as_bytes(), &signature));
}

#[test]
fn values_that_would_corrupt_the_message_or_header_are_refused() {
    let lower = request("post", "/v3/x", "");
    let err = request_message(&lower).unwrap_err();
    assert_eq!(err, WechatError::InvalidRequestField { field: "method" });
    let absolute = request("GET", "https://api.mch.weixin.qq.com/v3/x", "");
    let err = request_message(&absolute).unwrap_err();
    assert_eq!(
        err,
        WechatError::InvalidRequestField {
            field: "canonical_url"
        }
    );
    let quoted = RequestToSign {
        nonce: "a\",b",
        ..prepay()
    };
    let err = request_message(&quoted).unwrap_err();
    assert_eq!(err, WechatError::InvalidRequestField { field: "nonce" });
    let err = MerchantSigner::new("", "ABC", merchant_key()).unwrap_err();
    assert_eq!(err, WechatError::InvalidRequestField { field: "mchid" });
}

#[test]
fn verification_messages_match_part_d4() {
    let body = br#"{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}"#;
    let message = verification_message("1735696805", "abcdef0123456789", body);
    assert_eq!(
        sha256_hex(&message),
        "2f99ebd1ca4f74f18df09272755128fcbb71546bb936b01d5f9c0e7e3f95f8e6"
    );
    let empty = verification_message("1735696805", "abcdef0123456789", b"");
    assert_eq!(empty, b"1735696805\nabcdef0123456789\n\n");
    assert_eq!(
        sha256_hex(&empty),
        "dc57fc2b3fcd1707ef9b6596467d034c6649a7f9b446c9b28c962e7c38d4a2b5"
    );
}

#[test]
fn a_body_signed_with_the_wechat_pay_public_key_verifies() {
    let result = verify_fixture(
        "wechat_notify_transaction",
        at(SIGNED_AT + 60),
        |_, _| {},
        &keys(),
    );
    assert_eq!(result, Ok(()));
}

#[test]
fn a_body_signed_with_a_platform_certificate_verifies_whatever_the_serial_case() {
    let lower_serial = |pairs: &mut Vec<(String, String)>, _: &mut String| {
        set_header(
            pairs,
            "Wechatpay-Serial",
            &PLATFORM_SERIAL.to_ascii_lowercase(),
        );
    };
    assert_eq!(
        verify_fixture("wechat_notify_refund", at(SIGNED_AT), |_, _| {}, &keys()),
        Ok(())
    );
    assert_eq!(
        verify_fixture("wechat_notify_refund", at(SIGNED_AT), lower_serial, &keys()),
        Ok(())
    );
}

#[test]
fn header_names_are_matched_case_insensitively_and_missing_ones_are_named() {
    let pairs = [
        ("wechatpay-timestamp", "1"),
        ("WECHATPAY-NONCE", "n"),
        ("Wechatpay-Serial", "s"),
    ];
    let err = SignedHeaders::from_pairs(pairs).unwrap_err();
    assert_eq!(
        err,
        WechatError::MissingHeader {
            header: "Wechatpay-Signature"
        }
    );
}

#[test]
fn a_tampered_body_fails_verification() {
    let tamper = |_: &mut Vec<(String, String)>, body: &mut String| {
        *body = body.replace("EV-fe1d2c3b4a59", "EV-fe1d2c3b4a5a");
    };
    let result = verify_fixture("wechat_notify_transaction", at(SIGNED_AT), tamper, &keys());
    assert_eq!(result, Err(WechatError::SignatureMismatch));
}

#[test]
fn a_signature_checked_against_the_wrong_key_fails() {
    let mut wrong = WechatKeySet::new();
    wrong
        .add_public_key(PUBLIC_KEY_ID, merchant_public_key())
        .unwrap();
    let result = verify_fixture(
        "wechat_notify_transaction",
        at(SIGNED_AT),
        |_, _| {},
        &wrong,
    );
    assert_eq!(result, Err(WechatError::SignatureMismatch));
}

#[test]
fn a_serial_we_do_not_know_is_refused_by_name() {
    let other_serial = |pairs: &mut Vec<(String, String)>, _: &mut String| {
        set_header(
            pairs,
            "Wechatpay-Serial",
            "PUB_KEY_ID_0000000000000000000000000000000001",
        );
    };
    let result = verify_fixture(
        "wechat_notify_transaction",
        at(SIGNED_AT),
        other_serial,
        &keys(),
    );
    let serial = "PUB_KEY_ID_0000000000000000000000000000000001".to_owned();
    assert_eq!(result, Err(WechatError::UnknownSerial { serial }));
    let empty = WechatKeySet::new();
    let result = verify_fixture("wechat_notify_refund", at(SIGNED_AT), |_, _| {}, &empty);
    assert!(matches!(result, Err(WechatError::UnknownSerial { .. })));
}

#[test]
fn a_timestamp_five_minutes_or_more_away_from_now_is_stale() {
    let verify = |now| verify_fixture("wechat_notify_transaction", at(now), |_, _| {}, &keys());
    assert_eq!(verify(SIGNED_AT + 299), Ok(()));
    assert_eq!(verify(SIGNED_AT - 299), Ok(()));
    assert_eq!(
        verify(SIGNED_AT + 300),
        Err(WechatError::StaleTimestamp { skew_secs: 300 })
    );
    assert_eq!(
        verify(SIGNED_AT - 3600),
        Err(WechatError::StaleTimestamp { skew_secs: 3600 })
    );
}

#[test]
fn a_timestamp_that_is_not_plain_digits_is_refused() {
    for bad in [
        "+1735696805",
        " 1735696805",
        "",
        "1735696805.0",
        "99999999999999999999",
    ] {
        let edit = |pairs: &mut Vec<(String, String)>, _: &mut String| {
            set_header(pairs, "Wechatpay-Timestamp", bad);
        };
        let result = verify_fixture("wechat_notify_transaction", at(SIGNED_AT), edit, &keys());
        assert_eq!(result, Err(WechatError::InvalidTimestamp), "{bad:?}");
    }
}

#[test]
fn a_signtest_probe_is_rejected_as_a_probe() {
    let probe = |pairs: &mut Vec<(String, String)>, _: &mut String| {
        set_header(
            pairs,
            "Wechatpay-Signature",
            "WECHATPAY/SIGNTEST/abcdefAAAA==",
        );
    };
    let result = verify_fixture("wechat_notify_transaction", at(SIGNED_AT), probe, &keys());
    assert_eq!(result, Err(WechatError::SignTestProbe));
}

#[test]
fn a_signature_that_is_not_base64_or_of_another_type_is_refused() {
    let garbled = |pairs: &mut Vec<(String, String)>, _: &mut String| {
        set_header(pairs, "Wechatpay-Signature", "not*base64");
    };
    let result = verify_fixture("wechat_notify_transaction", at(SIGNED_AT), garbled, &keys());
    assert_eq!(result, Err(WechatError::SignatureNotBase64));
    let sm2 = |pairs: &mut Vec<(String, String)>, _: &mut String| {
        set_header(pairs, "Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3");
    };
    let result = verify_fixture("wechat_notify_transaction", at(SIGNED_AT), sm2, &keys());
    let found = "WECHATPAY2-SM2-WITH-SM3".to_owned();
    assert_eq!(result, Err(WechatError::UnsupportedSignatureType { found }));
}

#[test]
fn a_public_key_must_be_registered_under_a_pub_key_id() {
    let mut keys = WechatKeySet::new();
    let err = keys
        .add_public_key(PLATFORM_SERIAL, gateway_public_key())
        .unwrap_err();
    assert_eq!(err, WechatError::InvalidPublicKeyId);
    assert!(keys.is_empty());
}
