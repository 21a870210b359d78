#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::gateway::test_support::{fixture, merchant_key, merchant_public_key};

/// The base64 body of a PEM file, as Alipay's key tool hands it out.
fn bare_base64(pem_text: &str) -> String {
    pem_text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

fn request_text() -> String {
    fixture("alipay_request.txt")
}

#[test]
fn a_pkcs8_pem_key_signs_exactly_like_openssl() {
    let signature = merchant_key()
        .sign_base64(request_text().as_bytes())
        .unwrap();
    assert_eq!(signature, fixture("alipay_request.sig"));
}

#[test]
fn the_pkcs1_pem_and_both_bare_base64_forms_of_the_key_sign_identically() {
    let expected = fixture("alipay_request.sig");
    for text in [
        fixture("merchant_pkcs1.pem"),
        bare_base64(&fixture("merchant_pkcs8.pem")),
        bare_base64(&fixture("merchant_pkcs1.pem")),
    ] {
        let key = PrivateKey::parse(&text).unwrap();
        assert_eq!(
            key.sign_base64(request_text().as_bytes()).unwrap(),
            expected
        );
    }
}

#[test]
fn public_keys_load_from_spki_pem_pkcs1_pem_and_bare_base64() {
    let signature = BASE64.decode(fixture("alipay_request.sig")).unwrap();
    for text in [
        fixture("merchant_spki.pem"),
        fixture("merchant_pkcs1_pub.pem"),
        bare_base64(&fixture("merchant_spki.pem")),
        bare_base64(&fixture("merchant_pkcs1_pub.pem")),
    ] {
        let key = PublicKey::parse(&text).unwrap();
        assert_eq!(key.bits(), 2048);
        assert!(key.verify(request_text().as_bytes(), &signature));
    }
}

#[test]
fn a_key_with_windows_line_endings_and_surrounding_blank_lines_still_loads() {
    let text = format!(
        "\n{}\n",
        fixture("merchant_pkcs8.pem").replace('\n', "\r\n")
    );
    assert!(PrivateKey::parse(&text).is_ok());
}

#[test]
fn verification_fails_for_a_tampered_message_and_for_another_key() {
    let signature = BASE64.decode(fixture("alipay_request.sig")).unwrap();
    let tampered = request_text().replace("35.80", "0.01");
    assert!(!merchant_public_key().verify(tampered.as_bytes(), &signature));
    let other = PublicKey::parse(&fixture("gateway_spki.pem")).unwrap();
    assert!(!other.verify(request_text().as_bytes(), &signature));
    assert!(!merchant_public_key().verify(request_text().as_bytes(), b"short"));
}

#[test]
fn a_public_key_given_to_the_private_key_loader_is_refused_by_its_pem_label() {
    let err = PrivateKey::parse(&fixture("merchant_spki.pem")).unwrap_err();
    assert_eq!(
        err,
        KeyError::UnexpectedPemLabel {
            label: "PUBLIC KEY".into(),
            expected: PRIVATE_LABELS
        }
    );
    let err = PublicKey::parse(&fixture("merchant_pkcs8.pem")).unwrap_err();
    assert!(matches!(err, KeyError::UnexpectedPemLabel { .. }));
}

#[test]
fn text_that_is_not_base64_or_not_a_key_is_refused_with_a_clear_error() {
    assert_eq!(PrivateKey::parse("  \n").unwrap_err(), KeyError::Empty);
    assert_eq!(
        PrivateKey::parse("not a key!").unwrap_err(),
        KeyError::NotBase64
    );
    assert_eq!(
        PrivateKey::parse("aGVsbG8=").unwrap_err(),
        KeyError::NotRsaPrivateKey
    );
    assert_eq!(
        PublicKey::parse("aGVsbG8=").unwrap_err(),
        KeyError::NotRsaPublicKey
    );
    let broken = fixture("merchant_pkcs8.pem").replace("-----END PRIVATE KEY-----", "");
    assert_eq!(
        PrivateKey::parse(&broken).unwrap_err(),
        KeyError::MalformedPem
    );
}

#[test]
fn a_1024_bit_key_is_refused_as_too_small() {
    let err = PrivateKey::parse(&fixture("rsa1024_pkcs8.pem")).unwrap_err();
    assert_eq!(err, KeyError::KeyTooSmall { bits: 1024 });
}

#[test]
fn errors_and_debug_output_never_contain_key_material() {
    let pem_text = fixture("merchant_pkcs8.pem");
    let body = bare_base64(&pem_text);
    let mangled = format!("{}!", &body[..200]);
    let err = PrivateKey::parse(&mangled).unwrap_err().to_string();
    assert!(!err.contains(&body[..40]), "{err}");
    assert_eq!(
        format!("{:?}", merchant_key()),
        "PrivateKey { bits: 2048, .. }"
    );
    let api_key = ApiV3Key::parse("0123456789abcdefABCDEF0123456789").unwrap();
    assert_eq!(format!("{api_key:?}"), "ApiV3Key(<redacted>)");
}

#[test]
fn a_platform_certificate_yields_its_rsa_key_and_uppercase_hex_serial() {
    let cert = PlatformCertificate::parse(&fixture("platform_cert.pem")).unwrap();
    assert_eq!(
        cert.serial_hex(),
        "6E1D414B17AFC0A15A2E4491C9C14927801AF3EC"
    );
    assert_eq!(cert.public_key().bits(), 2048);
}

#[test]
fn a_serial_with_the_high_bit_set_loses_its_der_sign_byte() {
    let cert = PlatformCertificate::parse(&fixture("platform_cert_high_serial.pem")).unwrap();
    assert_eq!(
        cert.serial_hex(),
        "9A1D414B17AFC0A15A2E4491C9C14927801AF3EC"
    );
    assert_eq!(serial_to_hex(&[0, 0]), "00");
}

#[test]
fn an_ec_certificate_or_a_key_in_place_of_a_certificate_is_refused() {
    let err = PlatformCertificate::parse(&fixture("ec_cert.pem")).unwrap_err();
    assert_eq!(err, KeyError::CertificateNotRsa);
    let err = PlatformCertificate::parse(&fixture("merchant_spki.pem")).unwrap_err();
    assert!(matches!(err, KeyError::UnexpectedPemLabel { .. }));
    let err = PlatformCertificate::parse("aGVsbG8=").unwrap_err();
    assert_eq!(err, KeyError::MalformedCertificate);
}

#[test]
fn the_api_v3_key_must_be_exactly_32_bytes() {
    assert_eq!(
        ApiV3Key::parse("short").unwrap_err(),
        KeyError::ApiV3KeyLength { len: 5 }
    );
    assert!(ApiV3Key::parse("0123456789abcdefABCDEF0123456789").is_ok());
}
