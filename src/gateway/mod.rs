//! Payment gateway protocols: Alipay OpenAPI (RSA2) and WeChat Pay API v3.
//!
//! The protocol layer is pure: it builds the exact bytes each gateway signs, signs and
//! verifies them, and parses notifications into typed values. No network, no clock (callers
//! pass `now`, timestamps and nonces), no floats (Alipay amounts stay decimal strings as
//! sent, WeChat amounts are integer fen). The outbound clients sit on top of it.
//!
//! - [`keys`]: loading RSA keys, platform certificates and the APIv3 key; the shared
//!   SHA256withRSA primitive.
//! - [`amount`]: fen ↔ yuan strings, exact.
//! - [`beijing`]: the UTC+8 clock and calendar of gateway times and bill dates.
//! - [`error`]: [`error::GatewayError`] (unknown / rejected / malformed) shared by both
//!   clients, and the HTTP client with explicit timeouts.
//! - [`alipay`]: request signing, response verification, notification parsing, and
//!   [`alipay::client::AlipayClient`].
//! - [`refund`]: [`refund::RefundAnswer`], a refund request's or query's answer classified
//!   (paid, processing, refused, needs attention, not found, unknown).
//! - [`statement`]: strict parsers of the daily statements (Alipay zip of GBK CSV, WeChat
//!   backtick CSV), checked against their own control totals.
//! - [`wechat`]: request `Authorization` header, response/notification verification,
//!   notification decryption and the decrypted resources, and
//!   [`wechat::client::WechatClient`].

pub mod alipay;
pub mod amount;
pub mod beijing;
pub mod error;
pub mod keys;
pub mod refund;
pub mod statement;
pub mod wechat;

#[cfg(test)]
pub(crate) mod test_support;
