//! WeChat Pay v3 notifications (protocol notes B4): the JSON envelope, AEAD_AES_256_GCM
//! decryption of its `resource` with the APIv3 key, and the verified, typed result.
//!
//! The signature over the raw body is checked before anything is parsed or decrypted, as the
//! official Go SDK does. Decryption uses key = the 32 APIv3 key bytes as-is, nonce = the
//! 12 bytes of `resource.nonce`, AAD = `resource.associated_data` (may be empty), and input =
//! base64 ciphertext with the 16-byte tag appended.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;

use super::WechatError;
use super::resource::{WechatRefund, WechatTransaction, rfc3339};
use super::sign::{SignedHeaders, WechatKeySet, verify_signature};
use crate::gateway::keys::ApiV3Key;

pub const RESOURCE_ALGORITHM: &str = "AEAD_AES_256_GCM";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The notification body as WeChat sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NotificationEnvelope {
    /// Unique notification id, for de-duplication.
    pub id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub create_time: DateTime<FixedOffset>,
    pub resource_type: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`, ...
    pub event_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: EncryptedResource,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EncryptedResource {
    /// `transaction` or `refund`.
    pub original_type: String,
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: Option<String>,
    pub nonce: String,
}

/// The decrypted payload, by `original_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationResource {
    Transaction(WechatTransaction),
    Refund(WechatRefund),
}

/// A notification whose signature was verified and whose resource was decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatNotification {
    pub id: String,
    pub create_time: DateTime<FixedOffset>,
    pub event_type: String,
    pub summary: String,
    pub resource: NotificationResource,
    /// The decrypted JSON exactly as WeChat sent it, for the audit record.
    pub resource_json: String,
}

pub fn parse_envelope(body: &[u8]) -> Result<NotificationEnvelope, WechatError> {
    serde_json::from_slice(body).map_err(|e| WechatError::MalformedEnvelope {
        reason: e.to_string(),
    })
}

/// AEAD_AES_256_GCM decryption of a notification (or certificate) resource.
pub fn decrypt_resource(
    resource: &EncryptedResource,
    api_v3_key: &ApiV3Key,
) -> Result<Vec<u8>, WechatError> {
    if resource.algorithm != RESOURCE_ALGORITHM {
        return Err(WechatError::UnsupportedAlgorithm {
            found: resource.algorithm.clone(),
        });
    }
    let nonce: [u8; NONCE_LEN] =
        resource
            .nonce
            .as_bytes()
            .try_into()
            .map_err(|_| WechatError::InvalidNonceLength {
                len: resource.nonce.len(),
            })?;
    let sealed = BASE64
        .decode(&resource.ciphertext)
        .map_err(|_| WechatError::CiphertextNotBase64)?;
    if sealed.len() < TAG_LEN {
        return Err(WechatError::CiphertextTooShort);
    }
    let aad = resource.associated_data.as_deref().unwrap_or("");
    let cipher = Aes256Gcm::new(&(*api_v3_key.as_bytes()).into());
    let payload = Payload {
        msg: &sealed,
        aad: aad.as_bytes(),
    };
    cipher
        .decrypt(&Nonce::from(nonce), payload)
        .map_err(|_| WechatError::DecryptionFailed)
}

/// Verifies, parses and decrypts a raw notification; `now` bounds the timestamp skew.
pub fn verify_notification(
    headers: &SignedHeaders<'_>,
    body: &[u8],
    keys: &WechatKeySet,
    api_v3_key: &ApiV3Key,
    now: DateTime<Utc>,
) -> Result<WechatNotification, WechatError> {
    verify_signature(headers, body, keys, now)?;
    let envelope = parse_envelope(body)?;
    let plaintext = decrypt_resource(&envelope.resource, api_v3_key)?;
    let resource_json =
        String::from_utf8(plaintext).map_err(|_| WechatError::MalformedResource {
            reason: "not UTF-8".to_owned(),
        })?;
    let resource = parse_resource(&envelope.resource.original_type, &resource_json)?;
    Ok(WechatNotification {
        id: envelope.id,
        create_time: envelope.create_time,
        event_type: envelope.event_type,
        summary: envelope.summary,
        resource,
        resource_json,
    })
}

/// Deserializes decrypted JSON according to the envelope's `original_type`.
pub fn parse_resource(
    original_type: &str,
    json: &str,
) -> Result<NotificationResource, WechatError> {
    let malformed = |e: serde_json::Error| WechatError::MalformedResource {
        reason: e.to_string(),
    };
    match original_type {
        "transaction" => serde_json::from_str(json)
            .map(NotificationResource::Transaction)
            .map_err(malformed),
        "refund" => serde_json::from_str(json)
            .map(NotificationResource::Refund)
            .map_err(malformed),
        other => Err(WechatError::UnsupportedResourceType {
            found: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
