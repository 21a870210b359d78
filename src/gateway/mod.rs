//! Payment gateway protocols: Alipay OpenAPI (RSA2) and WeChat Pay API v3.
//!
//! Everything here is pure: it builds the exact bytes each gateway signs, signs and verifies
//! them, and parses notifications into typed values. No network, no clock (callers pass
//! `now`, timestamps and nonces), no floats (Alipay amounts stay decimal strings as sent,
//! WeChat amounts are integer fen). HTTP clients and webhook handlers sit on top of this.
//!
//! - [`keys`]: loading RSA keys, platform certificates and the APIv3 key; the shared
//!   SHA256withRSA primitive.
//! - [`alipay`]: request signing, response verification, notification parsing.
//! - [`wechat`]: request `Authorization` header, response/notification verification,
//!   notification decryption and the decrypted resources.

pub mod alipay;
pub mod keys;
pub mod wechat;

#[cfg(test)]
pub(crate) mod test_support;
