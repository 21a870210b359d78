#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone as _;

use super::*;
use crate::gateway::test_support::{
    fixture, gateway_public_key, merchant_key, merchant_public_key, sha256_hex,
};

const BIZ_CONTENT: &str = r#"{"out_trade_no":"WB202501010001","total_amount":"35.80","subject":"水费-2025年01月","qr_code_timeout_express":"30m"}"#;

/// The request of protocol notes A1.4 / D1.
fn precreate_params() -> Params {
    [
        ("app_id", "2021000000000000"),
        ("method", "alipay.trade.precreate"),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2025-01-01 10:00:00"),
        ("version", "1.0"),
        ("notify_url", "https://pay.example.com/notify/alipay"),
        ("biz_content", BIZ_CONTENT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn the_request_string_to_sign_matches_part_d1() {
    let content = request_sign_content(&precreate_params());
    assert_eq!(content, fixture("alipay_request.txt"));
    assert_eq!(
        sha256_hex(content.as_bytes()),
        "bf6c4f7a0e627ccbcd97d621d100e345b2cc8d3844dbc618da8e142ff4fadd87"
    );
}

#[test]
fn empty_values_and_sign_are_left_out_but_sign_type_is_signed() {
    let mut params = precreate_params();
    params.insert("app_auth_token".into(), String::new());
    params.insert("sign".into(), "old".into());
    let content = request_sign_content(&params);
    assert_eq!(content, fixture("alipay_request.txt"));
    assert!(content.contains("&sign_type=RSA2&"));
}

#[test]
fn the_request_signature_is_byte_identical_to_openssl() {
    let sign = sign_request(&precreate_params(), &merchant_key()).unwrap();
    assert_eq!(sign, fixture("alipay_request.sig"));
}

#[test]
fn a_request_without_sign_type_rsa2_is_not_signed() {
    let mut params = precreate_params();
    params.remove("sign_type");
    let err = sign_request(&params, &merchant_key()).unwrap_err();
    assert_eq!(
        err,
        AlipayError::SignTypeNotRsa2 {
            found: String::new()
        }
    );
}

#[test]
fn the_form_body_matches_python_urlencode_of_part_d1() {
    let expected = "app_id=2021000000000000&biz_content=%7B%22out_trade_no%22%3A%22WB202501010001%22%2C%22total_amount%22%3A%2235.80%22%2C%22subject%22%3A%22%E6%B0%B4%E8%B4%B9-2025%E5%B9%B401%E6%9C%88%22%2C%22qr_code_timeout_express%22%3A%2230m%22%7D&charset=utf-8&format=JSON&method=alipay.trade.precreate&notify_url=https%3A%2F%2Fpay.example.com%2Fnotify%2Falipay&sign_type=RSA2&timestamp=2025-01-01+10%3A00%3A00&version=1.0";
    let body = form_body(&precreate_params());
    assert!(body.starts_with("app_id=2021000000000000&biz_content=%7B%22out_trade_no%22%3A"));
    assert!(body.contains("timestamp=2025-01-01+10%3A00%3A00"));
    assert_eq!(body, expected);
}

#[test]
fn a_signed_form_body_keeps_the_plus_slash_and_equals_of_the_sign() {
    let params = signed_params(precreate_params(), &merchant_key()).unwrap();
    let decoded = crate::gateway::alipay::notify::parse_form(form_body(&params).as_bytes());
    assert_eq!(decoded.unwrap(), params);
}

#[test]
fn the_timestamp_is_beijing_time_even_across_midnight() {
    let morning = Utc.with_ymd_and_hms(2025, 1, 1, 2, 0, 0).unwrap();
    assert_eq!(beijing_timestamp(morning), "2025-01-01 10:00:00");
    let new_year = Utc.with_ymd_and_hms(2024, 12, 31, 16, 30, 5).unwrap();
    assert_eq!(beijing_timestamp(new_year), "2025-01-01 00:30:05");
}

#[test]
fn the_response_node_is_cut_from_the_raw_body_without_reserializing() {
    let body = fixture("alipay_response.json");
    let content = extract_response_content(&body, "alipay.trade.precreate").unwrap();
    assert_eq!(content.node, ResponseNode::Method);
    assert!(content.json.starts_with(r#"{"code":"10000","#));
    assert!(content.json.ends_with(r#"bax03431ljhokirwl38f00a7"}"#));
}

#[test]
fn braces_and_escaped_quotes_inside_strings_do_not_end_the_node() {
    let body = r#"{ "alipay_trade_query_response" : {"msg":"a}\"{b","n":{"x":"\\"}} ,"sign":"x"}"#;
    let content = extract_response_content(body, "alipay.trade.query").unwrap();
    assert_eq!(content.json, r#"{"msg":"a}\"{b","n":{"x":"\\"}}"#);
}

#[test]
fn a_gateway_error_is_found_under_error_response() {
    let body = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments"},"sign":"x"}"#;
    let content = extract_response_content(body, "alipay.trade.query").unwrap();
    assert_eq!(content.node, ResponseNode::GatewayError);
    assert_eq!(
        content.json,
        r#"{"code":"40002","msg":"Invalid Arguments"}"#
    );
}

#[test]
fn a_missing_or_unterminated_node_is_reported() {
    let err = extract_response_content(r#"{"other":{}}"#, "alipay.trade.query").unwrap_err();
    let node = "alipay_trade_query_response".to_owned();
    assert_eq!(err, AlipayError::ResponseNodeMissing { node });
    let err = extract_response_content(
        r#"{"alipay_trade_query_response":{"a":"}"#,
        "alipay.trade.query",
    );
    assert_eq!(err.unwrap_err(), AlipayError::UnterminatedResponseNode);
}

#[test]
fn a_response_signed_by_openssl_verifies() {
    let body = fixture("alipay_response.json");
    let content = verify_response(&body, "alipay.trade.precreate", &gateway_public_key());
    assert_eq!(content.unwrap().node, ResponseNode::Method);
}

#[test]
fn a_response_with_escaped_slashes_verifies_through_the_unescaped_retry() {
    let body = fixture("alipay_response_escaped.json");
    assert!(body.contains(r"https:\/\/qr.alipay.com"));
    assert!(verify_response(&body, "alipay.trade.precreate", &gateway_public_key()).is_ok());
}

#[test]
fn a_tampered_response_or_the_wrong_key_fails_verification() {
    let body = fixture("alipay_response.json").replace("WB202501010001", "WB202501010002");
    let err = verify_response(&body, "alipay.trade.precreate", &gateway_public_key());
    assert_eq!(err.unwrap_err(), AlipayError::SignatureMismatch);
    let body = fixture("alipay_response.json");
    let err = verify_response(&body, "alipay.trade.precreate", &merchant_public_key());
    assert_eq!(err.unwrap_err(), AlipayError::SignatureMismatch);
}

#[test]
fn a_response_without_sign_or_with_bad_base64_is_not_trusted() {
    let key = gateway_public_key();
    let unsigned = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments"}}"#;
    let err = verify_response(unsigned, "alipay.trade.query", &key).unwrap_err();
    assert_eq!(err, AlipayError::SignMissing);
    let bad = r#"{"alipay_trade_query_response":{"code":"10000"},"sign":"!!not base64!!"}"#;
    let err = verify_response(bad, "alipay.trade.query", &key).unwrap_err();
    assert_eq!(err, AlipayError::SignNotBase64);
}
