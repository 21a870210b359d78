//! Test-only access to the OpenSSL-made fixtures in `tests/fixtures/gateway/`
//! (see `generate.sh` there for how each one was produced).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::keys::{PlatformCertificate, PrivateKey, PublicKey};

pub(crate) fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/gateway/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Ours: Alipay application key / WeChat merchant key.
pub(crate) fn merchant_key() -> PrivateKey {
    PrivateKey::parse(&fixture("merchant_pkcs8.pem")).unwrap()
}

pub(crate) fn merchant_public_key() -> PublicKey {
    PublicKey::parse(&fixture("merchant_spki.pem")).unwrap()
}

/// Theirs: plays the Alipay public key and the WeChat Pay public key.
pub(crate) fn gateway_public_key() -> PublicKey {
    PublicKey::parse(&fixture("gateway_spki.pem")).unwrap()
}

pub(crate) fn platform_certificate() -> PlatformCertificate {
    PlatformCertificate::parse(&fixture("platform_cert.pem")).unwrap()
}

/// SHA-256 as lowercase hex, for comparing against part D of the protocol notes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `Name: value` lines of a `.headers` fixture.
pub(crate) fn header_pairs(name: &str) -> Vec<(String, String)> {
    fixture(name)
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
