#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone as _;

use super::*;
use crate::gateway::test_support::{
    fixture, gateway_public_key, header_pairs, platform_certificate,
};
use crate::gateway::wechat::resource::{RefundStatus, TradeState};

const D5_KEY: &str = "0123456789abcdefABCDEF0123456789";
const D5_PLAINTEXT: &str = r#"{"out_trade_no":"WB1","trade_state":"SUCCESS","amount":{"total":1}}"#;
const D5_WITH_AAD: &str = "ALJpWgfjwGXln2bIJUQ8zZlhnAltzb7jrl3kZhANeHoYeL7BpNgEjITqDfII2LgznNm4ORxYCEPKmMSx+zU5AybVD1yxbwXSMGMopClakAAkAgU=";
const D5_WITHOUT_AAD: &str = "ALJpWgfjwGXln2bIJUQ8zZlhnAltzb7jrl3kZhANeHoYeL7BpNgEjITqDfII2LgznNm4ORxYCEPKmMSx+zU5AybVD8ApgHbb+QLLmI+hiW/EBC8=";

fn api_key() -> ApiV3Key {
    ApiV3Key::parse(D5_KEY).unwrap()
}

fn d5_resource(ciphertext: &str, associated_data: Option<&str>) -> EncryptedResource {
    EncryptedResource {
        original_type: "transaction".into(),
        algorithm: "AEAD_AES_256_GCM".into(),
        ciphertext: ciphertext.into(),
        associated_data: associated_data.map(str::to_owned),
        nonce: "a1b2c3d4e5f6".into(),
    }
}

fn keys() -> WechatKeySet {
    let mut keys = WechatKeySet::new();
    let id = "PUB_KEY_ID_0000000000000024101100397200000006";
    keys.add_public_key(id, gateway_public_key()).unwrap();
    keys.add_platform_certificate(&platform_certificate())
        .unwrap();
    keys
}

fn notify(name: &str, api_v3_key: &ApiV3Key) -> Result<WechatNotification, WechatError> {
    let pairs = header_pairs(&format!("{name}.headers"));
    let headers = SignedHeaders::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = fixture(&format!("{name}.json"));
    let now = Utc.timestamp_opt(1_735_696_810, 0).unwrap();
    verify_notification(&headers.unwrap(), body.as_bytes(), &keys(), api_v3_key, now)
}

#[test]
fn both_part_d5_ciphertexts_decrypt_to_the_plaintext() {
    let with_aad = decrypt_resource(&d5_resource(D5_WITH_AAD, Some("transaction")), &api_key());
    assert_eq!(with_aad.unwrap(), D5_PLAINTEXT.as_bytes());
    for empty_aad in [Some(""), None] {
        let plain = decrypt_resource(&d5_resource(D5_WITHOUT_AAD, empty_aad), &api_key());
        assert_eq!(plain.unwrap(), D5_PLAINTEXT.as_bytes());
    }
}

#[test]
fn the_wrong_associated_data_fails_authentication() {
    let swapped = decrypt_resource(&d5_resource(D5_WITH_AAD, None), &api_key());
    assert_eq!(swapped, Err(WechatError::DecryptionFailed));
    let other = decrypt_resource(&d5_resource(D5_WITHOUT_AAD, Some("refund")), &api_key());
    assert_eq!(other, Err(WechatError::DecryptionFailed));
}

#[test]
fn the_wrong_api_v3_key_fails_authentication() {
    let wrong = ApiV3Key::parse("0123456789abcdefABCDEF012345678X").unwrap();
    let result = decrypt_resource(&d5_resource(D5_WITH_AAD, Some("transaction")), &wrong);
    assert_eq!(result, Err(WechatError::DecryptionFailed));
}

#[test]
fn a_truncated_or_modified_ciphertext_is_refused() {
    let sealed = BASE64.decode(D5_WITH_AAD).unwrap();
    let cut = BASE64.encode(&sealed[..sealed.len() - 4]);
    let result = decrypt_resource(&d5_resource(&cut, Some("transaction")), &api_key());
    assert_eq!(result, Err(WechatError::DecryptionFailed));
    let stub = BASE64.encode(&sealed[..10]);
    let result = decrypt_resource(&d5_resource(&stub, Some("transaction")), &api_key());
    assert_eq!(result, Err(WechatError::CiphertextTooShort));
    let mut flipped = sealed.clone();
    flipped[0] ^= 1;
    let flipped = BASE64.encode(flipped);
    let result = decrypt_resource(&d5_resource(&flipped, Some("transaction")), &api_key());
    assert_eq!(result, Err(WechatError::DecryptionFailed));
}

#[test]
fn bad_base64_a_short_nonce_or_another_algorithm_is_named() {
    let result = decrypt_resource(&d5_resource("***", Some("transaction")), &api_key());
    assert_eq!(result, Err(WechatError::CiphertextNotBase64));
    let short_nonce = EncryptedResource {
        nonce: "a1b2".into(),
        ..d5_resource(D5_WITH_AAD, None)
    };
    let result = decrypt_resource(&short_nonce, &api_key());
    assert_eq!(result, Err(WechatError::InvalidNonceLength { len: 4 }));
    let sm4 = EncryptedResource {
        algorithm: "AEAD_SM4_GCM".into(),
        ..d5_resource(D5_WITH_AAD, None)
    };
    let result = decrypt_resource(&sm4, &api_key());
    assert_eq!(
        result,
        Err(WechatError::UnsupportedAlgorithm {
            found: "AEAD_SM4_GCM".into()
        })
    );
}

#[test]
fn a_payment_notification_verifies_decrypts_and_reads_as_a_transaction() {
    let n = notify("wechat_notify_transaction", &api_key()).unwrap();
    assert_eq!(n.id, "EV-fe1d2c3b4a59");
    assert_eq!(n.event_type, "TRANSACTION.SUCCESS");
    assert_eq!(n.summary, "支付成功");
    assert_eq!(n.create_time.to_rfc3339(), "2025-01-01T10:00:22+08:00");
    let NotificationResource::Transaction(t) = n.resource else {
        panic!("not a transaction")
    };
    assert_eq!(
        (t.appid.as_str(), t.mchid.as_str()),
        ("wx0000000000000000", "1900000001")
    );
    assert_eq!(t.out_trade_no, "WB202501010001");
    assert_eq!(
        t.transaction_id.as_deref(),
        Some("4200000000202501010000000001")
    );
    assert_eq!(t.trade_state, TradeState::Success);
    assert_eq!(t.trade_type.as_deref(), Some("NATIVE"));
    assert_eq!((t.amount.total, t.amount.payer_total), (3580, Some(3580)));
    assert_eq!(t.payer.unwrap().openid, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(
        t.success_time.unwrap().to_rfc3339(),
        "2025-01-01T10:00:21+08:00"
    );
    assert!(
        n.resource_json
            .starts_with(r#"{"appid":"wx0000000000000000""#)
    );
}

#[test]
fn a_refund_notification_signed_with_a_platform_certificate_reads_as_a_refund() {
    let n = notify("wechat_notify_refund", &api_key()).unwrap();
    assert_eq!(n.event_type, "REFUND.SUCCESS");
    let NotificationResource::Refund(r) = n.resource else {
        panic!("not a refund")
    };
    assert_eq!(r.out_refund_no, "RF202501020001");
    assert_eq!(r.refund_id, "50000000002025010200000000001");
    assert_eq!(r.refund_status, RefundStatus::Success);
    assert_eq!((r.amount.total, r.amount.refund), (3580, 1000));
    assert_eq!((r.amount.payer_total, r.amount.payer_refund), (3580, 1000));
    assert_eq!(r.user_received_account.as_deref(), Some("支付用户零钱"));
}

#[test]
fn the_signature_is_checked_before_anything_is_decrypted() {
    let wrong = ApiV3Key::parse("0123456789abcdefABCDEF012345678X").unwrap();
    assert_eq!(
        notify("wechat_notify_transaction", &wrong),
        Err(WechatError::DecryptionFailed)
    );
    let pairs = header_pairs("wechat_notify_transaction.headers");
    let headers = SignedHeaders::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let now = Utc.timestamp_opt(1_735_696_810, 0).unwrap();
    let result = verify_notification(&headers.unwrap(), b"not json", &keys(), &wrong, now);
    assert_eq!(result, Err(WechatError::SignatureMismatch));
}

#[test]
fn a_resource_missing_required_fields_is_refused_naming_the_field() {
    let err = parse_resource("transaction", D5_PLAINTEXT).unwrap_err();
    let WechatError::MalformedResource { reason } = err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("appid"), "{reason}");
    let err = parse_resource("certificate", "{}").unwrap_err();
    assert_eq!(
        err,
        WechatError::UnsupportedResourceType {
            found: "certificate".into()
        }
    );
}

#[test]
fn an_envelope_that_is_not_json_is_malformed() {
    assert!(matches!(
        parse_envelope(b"{"),
        Err(WechatError::MalformedEnvelope { .. })
    ));
}
