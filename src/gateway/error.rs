//! The one error type of the outbound gateway clients, and the HTTP client they share.
//!
//! Callers need exactly three answers from a gateway call that did not succeed:
//! the outcome is **unknown** (query before doing anything else, and retry only with the same
//! merchant numbers), the gateway **rejected** the request for a business reason (record it,
//! do not retry), or the answer was **malformed** (a protocol bug on one side). The variants
//! below are those answers; the protocol notes A3.6 and B5.5 say which gateway answer is which.

use std::time::Duration;

/// Time allowed to establish a TCP+TLS connection. Both gateways answer from nearby data
/// centres; a connect that takes longer is a network problem, better reported quickly.
pub const CONNECT_TIMEOUT_SECS: u64 = 3;
/// Time allowed for a whole request, from sending to the last body byte. Both gateways
/// document their APIs as synchronous and fast; after this the outcome is [`GatewayError::Unknown`].
pub const REQUEST_TIMEOUT_SECS: u64 = 10;
/// Bound on a JSON API response body; real ones are a few KiB.
pub const RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Bound on a downloaded bill file (compressed or not); a busy day is a few MiB.
pub const BILL_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The outcome of a gateway call that did not return a usable result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway may or may not have executed the request: timeout, connection error, HTTP
    /// 5xx or 429, Alipay `20000` or `ACQ.SYSTEM_ERROR`, WeChat `SYSTEM_ERROR`, or a response
    /// whose signature does not verify. Query before retrying, and retry only with the same
    /// `out_trade_no` / `out_request_no` / `out_refund_no`.
    #[error("gateway outcome unknown: {0}")]
    Unknown(String),
    /// A definite business failure, e.g. Alipay `40004` + `ACQ.TRADE_HAS_SUCCESS` or WeChat
    /// `ORDERPAID`. For Alipay `code` is the public code and `sub_code` the `ACQ.*`/`isv.*`
    /// code; for WeChat `code` is the error code of the body and `sub_code` is `None`.
    #[error("gateway rejected the request: {code} {sub_code:?}: {message}")]
    Rejected {
        code: String,
        sub_code: Option<String>,
        message: String,
    },
    /// The response could not be understood (missing fields, bad JSON, bad amount text).
    #[error("gateway response is malformed: {0}")]
    Protocol(String),
}

impl GatewayError {
    /// Whether the request may have been executed, so the caller must query before acting.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }

    /// A transport failure: we cannot know whether the request reached the gateway.
    pub(crate) fn transport(error: &reqwest::Error) -> Self {
        Self::Unknown(format!("transport: {error}"))
    }

    /// The rejection's `sub_code` (Alipay) or `code` (WeChat), for matching on a specific one.
    pub fn rejection_code(&self) -> Option<&str> {
        match self {
            Self::Rejected {
                sub_code: Some(sub_code),
                ..
            } => Some(sub_code),
            Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The HTTP client both gateway clients should be given: explicit connect and request
/// timeouts, no redirects (a gateway never redirects an API call), rustls.
pub fn http_client() -> Result<reqwest::Client, GatewayError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| GatewayError::Protocol(format!("building the HTTP client: {e}")))
}

/// Reads a response body, refusing more than `max` bytes so a broken or hostile peer
/// cannot exhaust memory. A failure mid-body is a transport error (outcome unknown).
pub(crate) async fn read_body_bounded(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, GatewayError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(GatewayError::Protocol(format!(
            "response body larger than {max} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| GatewayError::transport(&e))?
    {
        if body.len() + chunk.len() > max {
            return Err(GatewayError::Protocol(format!(
                "response body larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
