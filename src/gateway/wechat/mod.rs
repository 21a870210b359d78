//! WeChat Pay API v3: the request `Authorization` header, verification of signed responses
//! and notifications, and decryption of notification resources.
//!
//! WeChat signs `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n` on requests and
//! `TIMESTAMP\nNONCE\nBODY\n` on responses and notifications, always over the raw body bytes;
//! notification payloads are additionally AES-256-GCM encrypted with the APIv3 key. Amounts
//! are integer fen throughout.
//!
//! - [`sign`]: request messages and the `Authorization` header, the verification key set
//!   (WeChat Pay public key and platform certificates by serial), signature verification.
//! - [`notify`]: the notification envelope, AES-256-GCM decryption, verified notifications.
//! - [`resource`]: the decrypted transaction and refund resources.
//! - [`client`]: the outbound HTTP client over the real gateway API.

pub mod client;
pub mod notify;
pub mod resource;
pub mod sign;

use crate::gateway::keys::KeyError;

/// Why a WeChat request could not be signed or a response/notification was not accepted.
/// Each verification failure has its own variant so logs say which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    /// A value we were asked to put into a request message or header would corrupt it.
    #[error("request field `{field}` is empty or has characters that are not allowed")]
    InvalidRequestField { field: &'static str },
    #[error("header `{header}` is missing")]
    MissingHeader { header: &'static str },
    #[error("header `{header}` appears more than once")]
    DuplicateHeader { header: &'static str },
    #[error("signature type `{found}` is not WECHATPAY2-SHA256-RSA2048")]
    UnsupportedSignatureType { found: String },
    /// WeChat's probe that checks we really verify; always a failure by design.
    #[error("signature is a WECHATPAY/SIGNTEST/ probe")]
    SignTestProbe,
    #[error("Wechatpay-Timestamp is not a number of Unix seconds")]
    InvalidTimestamp,
    #[error("Wechatpay-Timestamp is {skew_secs} s away from now (limit: under 300 s)")]
    StaleTimestamp { skew_secs: u64 },
    #[error("no WeChat Pay public key or platform certificate has serial `{serial}`")]
    UnknownSerial { serial: String },
    #[error("a WeChat Pay public key id must start with PUB_KEY_ID_")]
    InvalidPublicKeyId,
    #[error("more than {max} verification keys configured")]
    TooManyVerificationKeys { max: usize },
    #[error("signature is not valid standard base64")]
    SignatureNotBase64,
    #[error("signature does not match the key named by Wechatpay-Serial")]
    SignatureMismatch,
    #[error("notification envelope is malformed: {reason}")]
    MalformedEnvelope { reason: String },
    #[error("resource algorithm `{found}` is not AEAD_AES_256_GCM")]
    UnsupportedAlgorithm { found: String },
    #[error("resource nonce has {len} bytes, 12 are required")]
    InvalidNonceLength { len: usize },
    #[error("resource ciphertext is not valid standard base64")]
    CiphertextNotBase64,
    #[error("resource ciphertext is shorter than its 16-byte tag")]
    CiphertextTooShort,
    /// Wrong APIv3 key, wrong associated data, or a modified ciphertext.
    #[error("resource decryption failed (authentication tag mismatch)")]
    DecryptionFailed,
    #[error("decrypted resource is malformed: {reason}")]
    MalformedResource { reason: String },
    #[error("resource original_type `{found}` is neither transaction nor refund")]
    UnsupportedResourceType { found: String },
    #[error("signing failed: {0}")]
    Key(#[from] KeyError),
}
