//! Alipay OpenAPI in public-key mode with RSA2 (SHA256withRSA): signing requests, verifying
//! the `sign` of synchronous responses, and verifying and parsing asynchronous notifications.
//!
//! Alipay signs text, not JSON: requests and notifications as sorted `key=value&...` strings,
//! responses as the raw JSON substring of the `<method>_response` node. Both must be built
//! from exactly the bytes that went over the wire, so this module never re-serializes.
//!
//! - [`sign`]: request string-to-sign, request signature and form body, Beijing timestamps,
//!   response node extraction and verification.
//! - [`notify`]: form-body parsing, notification verification, [`notify::AlipayNotification`].
//! - [`client`]: the outbound HTTP client over the real gateway API.

pub mod client;
pub mod notify;
pub mod sign;

use crate::gateway::keys::KeyError;

/// Why an Alipay request could not be signed or a response/notification was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlipayError {
    /// The body has neither the `<method>_response` node nor `error_response`.
    #[error("response has no `{node}` or `error_response` object")]
    ResponseNodeMissing { node: String },
    #[error("response node's JSON object is not terminated")]
    UnterminatedResponseNode,
    #[error("response body is not a JSON object")]
    MalformedResponseJson,
    #[error("`sign` is missing or empty")]
    SignMissing,
    #[error("`sign` is not valid standard base64")]
    SignNotBase64,
    #[error("signature does not match the Alipay public key")]
    SignatureMismatch,
    /// Requests must carry `sign_type=RSA2`; notifications, if they name one, must be RSA2.
    #[error("sign_type must be RSA2, found `{found}`")]
    SignTypeNotRsa2 { found: String },
    #[error("charset `{charset}` is not supported, only utf-8")]
    UnsupportedCharset { charset: String },
    #[error("form body is malformed: {reason}")]
    MalformedForm { reason: &'static str },
    #[error("form body repeats the parameter `{name}`")]
    DuplicateParam { name: String },
    #[error("form body has more than {max} parameters")]
    TooManyParams { max: usize },
    #[error("notification lacks `{field}`")]
    MissingField { field: &'static str },
    #[error("notification field `{field}` is invalid: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("signing failed: {0}")]
    Key(#[from] KeyError),
}
