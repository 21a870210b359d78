//! Loading of the key material both gateways use: RSA private keys (ours), RSA public keys
//! (theirs), WeChat Pay platform certificates and the WeChat APIv3 key.
//!
//! Operators paste keys in whatever form the gateway console handed out: PEM with PKCS#1 or
//! PKCS#8 armour, or bare base64 DER without header lines (Alipay's key tool). One loader
//! accepts all of them so configuration mistakes surface at start-up with an error that says
//! which form was expected, and never echoes the key text. The holders' `Debug` output shows
//! only the key size, so a key cannot leak through a log line of a config struct.
//!
//! Signing and verification here are the single SHA256withRSA (RSASSA-PKCS1-v1_5) primitive
//! both gateways share; the gateway modules build the bytes to sign.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::der::pem;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use x509_cert::Certificate;
use x509_cert::der::Encode as _;

/// Both gateways require RSA-2048 for SHA256withRSA; anything smaller is a wrong key.
pub const RSA_BITS_MIN: usize = 2048;

/// The APIv3 key is used as raw AES-256 key bytes, so it must be exactly 32 bytes.
pub const API_V3_KEY_LEN: usize = 32;

/// Why key text could not be loaded. Messages name the expected form, never the key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key text is empty")]
    Empty,
    #[error("PEM armour is malformed (check the BEGIN/END lines and line breaks)")]
    MalformedPem,
    #[error("PEM block is `{label}`, expected one of: {expected}")]
    UnexpectedPemLabel {
        label: String,
        expected: &'static str,
    },
    #[error("key text is neither PEM nor valid standard base64")]
    NotBase64,
    #[error("DER does not hold an RSA private key in PKCS#8 or PKCS#1 form")]
    NotRsaPrivateKey,
    #[error("DER does not hold an RSA public key in SPKI (X.509) or PKCS#1 form")]
    NotRsaPublicKey,
    #[error("RSA key has {bits} bits, at least {RSA_BITS_MIN} are required")]
    KeyTooSmall { bits: usize },
    #[error("X.509 certificate could not be parsed")]
    MalformedCertificate,
    #[error("X.509 certificate does not carry an RSA public key")]
    CertificateNotRsa,
    #[error("APIv3 key has {len} bytes, exactly {API_V3_KEY_LEN} are required")]
    ApiV3KeyLength { len: usize },
    #[error("RSA signing failed")]
    SigningFailed,
}

const PRIVATE_LABELS: &str = "PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1)";
const PUBLIC_LABELS: &str = "PUBLIC KEY (SPKI), RSA PUBLIC KEY (PKCS#1)";
const CERTIFICATE_LABELS: &str = "CERTIFICATE";

/// Key text after its outer encoding is removed: the PEM label (if any) and the DER bytes.
struct Der {
    label: Option<String>,
    bytes: Vec<u8>,
}

/// Strips PEM armour, or base64-decodes bare key text (whitespace and line breaks ignored).
fn decode_key_text(text: &str) -> Result<Der, KeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    if text.starts_with("-----BEGIN") {
        let (label, bytes) =
            pem::decode_vec(text.as_bytes()).map_err(|_| KeyError::MalformedPem)?;
        return Ok(Der {
            label: Some(label.to_owned()),
            bytes,
        });
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = BASE64.decode(compact).map_err(|_| KeyError::NotBase64)?;
    Ok(Der { label: None, bytes })
}

fn check_size(bits: usize) -> Result<(), KeyError> {
    if bits < RSA_BITS_MIN {
        return Err(KeyError::KeyTooSmall { bits });
    }
    Ok(())
}

/// Our RSA private key (Alipay application key, WeChat merchant API key).
#[derive(Clone)]
pub struct PrivateKey {
    signer: SigningKey<Sha256>,
    bits: usize,
}

impl PrivateKey {
    /// Accepts PKCS#8 PEM, PKCS#1 PEM, or bare base64 DER of either.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = decode_key_text(text)?;
        let key = match der.label.as_deref() {
            Some("PRIVATE KEY") => RsaPrivateKey::from_pkcs8_der(&der.bytes).ok(),
            Some("RSA PRIVATE KEY") => RsaPrivateKey::from_pkcs1_der(&der.bytes).ok(),
            Some(label) => {
                return Err(KeyError::UnexpectedPemLabel {
                    label: label.to_owned(),
                    expected: PRIVATE_LABELS,
                });
            }
            None => RsaPrivateKey::from_pkcs8_der(&der.bytes)
                .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der.bytes))
                .ok(),
        };
        let key = key.ok_or(KeyError::NotRsaPrivateKey)?;
        let bits = key.n().bits();
        check_size(bits)?;
        Ok(Self {
            signer: SigningKey::new(key),
            bits,
        })
    }

    /// SHA256withRSA (PKCS#1 v1.5) over `message`, as standard base64 without line breaks.
    pub fn sign_base64(&self, message: &[u8]) -> Result<String, KeyError> {
        let signature = self
            .signer
            .try_sign(message)
            .map_err(|_| KeyError::SigningFailed)?;
        Ok(BASE64.encode(signature.to_bytes()))
    }

    pub fn bits(&self) -> usize {
        self.bits
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// A gateway's RSA public key (Alipay public key, WeChat Pay public key or certificate key).
#[derive(Clone)]
pub struct PublicKey {
    verifier: VerifyingKey<Sha256>,
    bits: usize,
}

impl PublicKey {
    /// Accepts SPKI PEM (`PUBLIC KEY`), PKCS#1 PEM (`RSA PUBLIC KEY`), or bare base64 DER of
    /// either (Alipay hands out bare SPKI base64 starting `MIIBIjANBgkqh`).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = decode_key_text(text)?;
        let key = match der.label.as_deref() {
            Some("PUBLIC KEY") => RsaPublicKey::from_public_key_der(&der.bytes).ok(),
            Some("RSA PUBLIC KEY") => RsaPublicKey::from_pkcs1_der(&der.bytes).ok(),
            Some(label) => {
                return Err(KeyError::UnexpectedPemLabel {
                    label: label.to_owned(),
                    expected: PUBLIC_LABELS,
                });
            }
            None => RsaPublicKey::from_public_key_der(&der.bytes)
                .or_else(|_| RsaPublicKey::from_pkcs1_der(&der.bytes))
                .ok(),
        };
        Self::from_rsa(key.ok_or(KeyError::NotRsaPublicKey)?)
    }

    fn from_rsa(key: RsaPublicKey) -> Result<Self, KeyError> {
        let bits = key.n().bits();
        check_size(bits)?;
        Ok(Self {
            verifier: VerifyingKey::new(key),
            bits,
        })
    }

    /// Whether `signature` (raw bytes, already base64-decoded) is a valid SHA256withRSA
    /// PKCS#1 v1.5 signature of `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match Signature::try_from(signature) {
            Ok(signature) => self.verifier.verify(message, &signature).is_ok(),
            Err(_) => false,
        }
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as SPKI PEM (`PUBLIC KEY`), e.g. to hand a simulator's key to a client.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let key: &RsaPublicKey = self.verifier.as_ref();
        key.to_public_key_pem(LineEnding::LF)
            .map_err(|_| KeyError::NotRsaPublicKey)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// A WeChat Pay platform certificate reduced to what verification needs.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    serial_hex: String,
    key: PublicKey,
}

impl PlatformCertificate {
    /// Reads an X.509 certificate in PEM (`CERTIFICATE`) or bare base64 DER.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = decode_key_text(text)?;
        if let Some(label) = der.label.as_deref().filter(|label| *label != "CERTIFICATE") {
            return Err(KeyError::UnexpectedPemLabel {
                label: label.to_owned(),
                expected: CERTIFICATE_LABELS,
            });
        }
        let cert = <Certificate as x509_cert::der::Decode>::from_der(&der.bytes)
            .map_err(|_| KeyError::MalformedCertificate)?;
        Self::from_certificate(&cert)
    }

    fn from_certificate(cert: &Certificate) -> Result<Self, KeyError> {
        let spki = &cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
            return Err(KeyError::CertificateNotRsa);
        }
        let spki_der = spki.to_der().map_err(|_| KeyError::MalformedCertificate)?;
        let key = RsaPublicKey::from_public_key_der(&spki_der)
            .map_err(|_| KeyError::CertificateNotRsa)?;
        let serial_hex = serial_to_hex(cert.tbs_certificate.serial_number.as_bytes());
        Ok(Self {
            serial_hex,
            key: PublicKey::from_rsa(key)?,
        })
    }

    /// Serial number as uppercase hex without leading zero bytes, the form WeChat sends in
    /// `Wechatpay-Serial` (and OpenSSL prints with `-serial`).
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }
}

/// DER integers carry a leading 0x00 when the high bit is set; WeChat's serials do not.
fn serial_to_hex(bytes: &[u8]) -> String {
    let first_significant = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let significant = match &bytes[first_significant..] {
        [] => &[0u8][..],
        rest => rest,
    };
    significant.iter().map(|b| format!("{b:02X}")).collect()
}

/// The WeChat Pay APIv3 key: 32 ASCII characters used as raw AES-256-GCM key bytes.
#[derive(Clone)]
pub struct ApiV3Key([u8; API_V3_KEY_LEN]);

impl ApiV3Key {
    /// Takes the key exactly as shown in the merchant platform (not hex or base64 decoded).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes: [u8; API_V3_KEY_LEN] = text
            .as_bytes()
            .try_into()
            .map_err(|_| KeyError::ApiV3KeyLength { len: text.len() })?;
        Ok(Self(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; API_V3_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests;
