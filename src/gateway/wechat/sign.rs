//! WeChat Pay v3 signing and signature verification (protocol notes B2, B3).
//!
//! Requests: SHA256withRSA with the merchant key over `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`
//! (empty body for GET, so the message ends `\n\n`), sent as the `Authorization` header.
//! Responses and notifications: the key is chosen by `Wechatpay-Serial` (a `PUB_KEY_ID_...`
//! WeChat Pay public key or a platform certificate serial, both during a migration), the
//! timestamp must be less than five minutes from `now`, and `WECHATPAY/SIGNTEST/` probe
//! signatures are rejected before any key is consulted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};

use super::WechatError;
use crate::gateway::keys::{PlatformCertificate, PrivateKey, PublicKey};

/// The only signature scheme of API v3, in `Authorization` and `Wechatpay-Signature-Type`.
pub const SIGNATURE_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// The official SDKs reject `|now - Wechatpay-Timestamp| >= 5 minutes`.
pub const TIMESTAMP_SKEW_MAX_SECS: u64 = 300;
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";
/// Bound on configured verification keys (a public key plus a few rotating certificates).
pub const VERIFICATION_KEYS_MAX: usize = 16;

/// One outgoing request as it will be sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// Upper case: `GET`, `POST`, ...
    pub method: &'a str,
    /// Absolute path plus `?query` exactly as sent, without scheme and host.
    pub canonical_url: &'a str,
    pub timestamp: DateTime<Utc>,
    /// Caller-generated, e.g. 32 characters of `[0-9A-Za-z]`.
    pub nonce: &'a str,
    /// The exact body text; empty for GET.
    pub body: &'a str,
}

/// `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`.
pub fn request_message(request: &RequestToSign<'_>) -> Result<String, WechatError> {
    check_request(request)?;
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n",
        request.method,
        request.canonical_url,
        request.timestamp.timestamp(),
        request.nonce,
        request.body
    ))
}

fn check_request(request: &RequestToSign<'_>) -> Result<(), WechatError> {
    let method_ok =
        !request.method.is_empty() && request.method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok {
        return Err(WechatError::InvalidRequestField { field: "method" });
    }
    let url = request.canonical_url;
    if !url.starts_with('/') || url.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(WechatError::InvalidRequestField {
            field: "canonical_url",
        });
    }
    check_token("nonce", request.nonce)
}

/// Values that go between quotes in the header: non-empty ASCII letters, digits and `_`.
fn check_token(field: &'static str, value: &str) -> Result<(), WechatError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WechatError::InvalidRequestField { field })
    }
}

/// Our merchant identity for signing requests.
#[derive(Debug, Clone)]
pub struct MerchantSigner {
    mchid: String,
    /// Serial of our merchant API certificate (`apiclient_cert.pem`), hex.
    serial_no: String,
    key: PrivateKey,
}

impl MerchantSigner {
    pub fn new(mchid: &str, serial_no: &str, key: PrivateKey) -> Result<Self, WechatError> {
        check_token("mchid", mchid)?;
        check_token("serial_no", serial_no)?;
        Ok(Self {
            mchid: mchid.to_owned(),
            serial_no: serial_no.to_owned(),
            key,
        })
    }

    /// Base64 SHA256withRSA signature of the request message.
    pub fn sign(&self, request: &RequestToSign<'_>) -> Result<String, WechatError> {
        Ok(self.key.sign_base64(request_message(request)?.as_bytes())?)
    }

    /// The complete `Authorization` header value.
    pub fn authorization(&self, request: &RequestToSign<'_>) -> Result<String, WechatError> {
        let signature = self.sign(request)?;
        Ok(format!(
            "{SIGNATURE_SCHEME} mchid=\"{}\",nonce_str=\"{}\",signature=\"{}\",timestamp=\"{}\",serial_no=\"{}\"",
            self.mchid,
            request.nonce,
            signature,
            request.timestamp.timestamp(),
            self.serial_no
        ))
    }
}

/// The `Wechatpay-*` headers of a response or notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub serial: &'a str,
    /// `Wechatpay-Signature-Type`; absent means the default scheme.
    pub signature_type: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    /// Picks the headers out of `(name, value)` pairs, names matched case-insensitively;
    /// a repeated `Wechatpay-*` header is refused.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, WechatError> {
        let (mut timestamp, mut nonce, mut signature, mut serial, mut signature_type) =
            (None, None, None, None, None);
        for (name, value) in pairs {
            let (slot, header) = match name.to_ascii_lowercase().as_str() {
                "wechatpay-timestamp" => (&mut timestamp, "Wechatpay-Timestamp"),
                "wechatpay-nonce" => (&mut nonce, "Wechatpay-Nonce"),
                "wechatpay-signature" => (&mut signature, "Wechatpay-Signature"),
                "wechatpay-serial" => (&mut serial, "Wechatpay-Serial"),
                "wechatpay-signature-type" => (&mut signature_type, "Wechatpay-Signature-Type"),
                _ => continue,
            };
            // Two values for a signed header leave it ambiguous which one was verified.
            if slot.replace(value).is_some() {
                return Err(WechatError::DuplicateHeader { header });
            }
        }
        let missing = |header| WechatError::MissingHeader { header };
        Ok(Self {
            timestamp: timestamp.ok_or(missing("Wechatpay-Timestamp"))?,
            nonce: nonce.ok_or(missing("Wechatpay-Nonce"))?,
            signature: signature.ok_or(missing("Wechatpay-Signature"))?,
            serial: serial.ok_or(missing("Wechatpay-Serial"))?,
            signature_type,
        })
    }
}

/// `TIMESTAMP\nNONCE\nBODY\n` over the raw body bytes (an empty body gives `ts\nnonce\n\n`).
pub fn verification_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [timestamp.as_bytes(), nonce.as_bytes(), body] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    message
}

/// WeChat's verification keys, looked up by the serial in `Wechatpay-Serial`.
#[derive(Debug, Clone, Default)]
pub struct WechatKeySet {
    keys: Vec<(String, PublicKey)>,
}

impl WechatKeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the WeChat Pay public key under its id (`PUB_KEY_ID_...`).
    pub fn add_public_key(&mut self, key_id: &str, key: PublicKey) -> Result<(), WechatError> {
        let id_ok = key_id.len() > PUBLIC_KEY_ID_PREFIX.len()
            && key_id.starts_with(PUBLIC_KEY_ID_PREFIX)
            && key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !id_ok {
            return Err(WechatError::InvalidPublicKeyId);
        }
        self.insert(key_id.to_owned(), key)
    }

    /// Adds a platform certificate under its serial number.
    pub fn add_platform_certificate(
        &mut self,
        certificate: &PlatformCertificate,
    ) -> Result<(), WechatError> {
        let serial = certificate.serial_hex().to_owned();
        self.insert(serial, certificate.public_key().clone())
    }

    fn insert(&mut self, serial: String, key: PublicKey) -> Result<(), WechatError> {
        self.keys
            .retain(|(known, _)| !known.eq_ignore_ascii_case(&serial));
        if self.keys.len() == VERIFICATION_KEYS_MAX {
            return Err(WechatError::TooManyVerificationKeys {
                max: VERIFICATION_KEYS_MAX,
            });
        }
        self.keys.push((serial, key));
        Ok(())
    }

    /// Hex serials are compared case-insensitively; ids are ASCII so the same rule fits.
    pub fn key_for(&self, serial: &str) -> Option<&PublicKey> {
        let found = self
            .keys
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(serial));
        found.map(|(_, key)| key)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verifies a signed response or notification body against `keys` at time `now`.
pub fn verify_signature(
    headers: &SignedHeaders<'_>,
    body: &[u8],
    keys: &WechatKeySet,
    now: DateTime<Utc>,
) -> Result<(), WechatError> {
    if let Some(found) = headers.signature_type.filter(|t| *t != SIGNATURE_SCHEME) {
        return Err(WechatError::UnsupportedSignatureType {
            found: found.to_owned(),
        });
    }
    if headers.signature.starts_with(SIGNTEST_PREFIX) {
        return Err(WechatError::SignTestProbe);
    }
    check_timestamp(headers.timestamp, now)?;
    let key = keys
        .key_for(headers.serial)
        .ok_or_else(|| WechatError::UnknownSerial {
            serial: headers.serial.to_owned(),
        })?;
    let signature = BASE64
        .decode(headers.signature)
        .map_err(|_| WechatError::SignatureNotBase64)?;
    let message = verification_message(headers.timestamp, headers.nonce, body);
    if !key.verify(&message, &signature) {
        return Err(WechatError::SignatureMismatch);
    }
    Ok(())
}

fn check_timestamp(timestamp: &str, now: DateTime<Utc>) -> Result<(), WechatError> {
    // Digits only: the header text itself is signed, so `+5` or ` 5` must not pass as 5.
    let digits_ok = !timestamp.is_empty()
        && timestamp.len() <= 18
        && timestamp.bytes().all(|b| b.is_ascii_digit());
    let seconds: i64 = match digits_ok {
        true => timestamp
            .parse()
            .map_err(|_| WechatError::InvalidTimestamp)?,
        false => return Err(WechatError::InvalidTimestamp),
    };
    let skew_secs = now.timestamp().abs_diff(seconds);
    if skew_secs >= TIMESTAMP_SKEW_MAX_SECS {
        return Err(WechatError::StaleTimestamp { skew_secs });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
