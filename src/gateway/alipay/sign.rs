//! Alipay request signing and response verification (protocol notes A1.3 to A1.5).
//!
//! The string to sign is every parameter that will be sent except `sign`, empty values
//! dropped, sorted by key in byte order, joined raw (not URL-encoded) as `k=v&k=v`. Responses
//! are verified over the raw text of their `<method>_response` object, located by brace
//! matching that respects JSON strings, with the Java SDK's `\/` → `/` retry.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset, Utc};

use super::AlipayError;
use crate::gateway::keys::{PrivateKey, PublicKey};

/// Request or notification parameters; a `BTreeMap<String, _>` iterates in byte order of
/// the keys, which is the order Alipay signs in.
pub type Params = BTreeMap<String, String>;

const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The node Alipay uses for gateway-level failures instead of `<method>_response`.
pub const ERROR_RESPONSE_NODE: &str = "error_response";

/// `now_utc` as Alipay's `timestamp` parameter: `yyyy-MM-dd HH:mm:ss` in Beijing time.
/// Formatting in the server's local zone is the classic `isv.invalid-timestamp` bug.
pub fn beijing_timestamp(now_utc: DateTime<Utc>) -> String {
    now_utc
        .with_timezone(&BEIJING)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Sorted `k=v&...` over `params`, leaving out the `excluded` keys and empty values.
pub(crate) fn canonical_content(params: &Params, excluded: &[&str]) -> String {
    let mut content = String::new();
    let included = params
        .iter()
        .filter(|(key, value)| !value.is_empty() && !excluded.contains(&key.as_str()));
    for (key, value) in included {
        if !content.is_empty() {
            content.push('&');
        }
        content.push_str(key);
        content.push('=');
        content.push_str(value);
    }
    content
}

/// The request string to sign: all params except `sign`, `sign_type` included (A1.4).
pub fn request_sign_content(params: &Params) -> String {
    canonical_content(params, &["sign"])
}

/// RSA2 signature (base64) of the request params. They must already hold `sign_type=RSA2`,
/// because Alipay signs it along with the rest.
pub fn sign_request(params: &Params, app_key: &PrivateKey) -> Result<String, AlipayError> {
    match params.get("sign_type").map(String::as_str) {
        Some("RSA2") => {}
        other => {
            return Err(AlipayError::SignTypeNotRsa2 {
                found: other.unwrap_or("").to_owned(),
            });
        }
    }
    Ok(app_key.sign_base64(request_sign_content(params).as_bytes())?)
}

/// The params plus their `sign`, ready to be sent.
pub fn signed_params(mut params: Params, app_key: &PrivateKey) -> Result<Params, AlipayError> {
    let sign = sign_request(&params, app_key)?;
    params.insert("sign".to_owned(), sign);
    Ok(params)
}

/// `application/x-www-form-urlencoded` body (space as `+`, everything else that is not
/// alphanumeric or `*-._` percent-encoded, so `+/=` in `sign` survive the trip).
pub fn form_body(params: &Params) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// `alipay.trade.precreate` → `alipay_trade_precreate_response`.
pub fn response_node_name(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// Which node of the response body was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseNode {
    /// `<method>_response`: the API's own result (still check `code`).
    Method,
    /// `error_response`: the gateway rejected the call before reaching the API.
    GatewayError,
}

/// The raw JSON text of the signed node, exactly as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseContent<'a> {
    pub node: ResponseNode,
    pub json: &'a str,
}

/// Finds `<method>_response` (or else `error_response`) and returns its raw object text.
pub fn extract_response_content<'a>(
    raw_body: &'a str,
    method: &str,
) -> Result<ResponseContent<'a>, AlipayError> {
    let node_name = response_node_name(method);
    let (node, start) = match object_start(raw_body, &node_name) {
        Some(start) => (ResponseNode::Method, start),
        None => match object_start(raw_body, ERROR_RESPONSE_NODE) {
            Some(start) => (ResponseNode::GatewayError, start),
            None => return Err(AlipayError::ResponseNodeMissing { node: node_name }),
        },
    };
    let end = object_end(raw_body, start).ok_or(AlipayError::UnterminatedResponseNode)?;
    Ok(ResponseContent {
        node,
        json: &raw_body[start..end],
    })
}

/// Byte offset of the `{` that opens the value of the first `"name":` member.
fn object_start(text: &str, name: &str) -> Option<usize> {
    let quoted = format!("\"{name}\"");
    text.match_indices(&quoted).find_map(|(at, _)| {
        let after_name = &text[at + quoted.len()..];
        let after_colon = after_name.trim_start().strip_prefix(':')?;
        let value = after_colon.trim_start();
        value.starts_with('{').then(|| text.len() - value.len())
    })
}

/// Byte offset just past the `}` matching the `{` at `start`, skipping braces in strings.
/// Only ASCII bytes are inspected, which never occur inside multi-byte UTF-8 sequences.
fn object_end(text: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, byte) in text.as_bytes()[start..].iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(start + offset + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level `sign` of a response body.
fn response_sign(raw_body: &str) -> Result<String, AlipayError> {
    let value: serde_json::Value =
        serde_json::from_str(raw_body).map_err(|_| AlipayError::MalformedResponseJson)?;
    match value.get("sign").and_then(serde_json::Value::as_str) {
        Some(sign) if !sign.is_empty() => Ok(sign.to_owned()),
        _ => Err(AlipayError::SignMissing),
    }
}

pub(crate) fn decode_sign(sign: &str) -> Result<Vec<u8>, AlipayError> {
    BASE64.decode(sign).map_err(|_| AlipayError::SignNotBase64)
}

/// Verifies a response body against the Alipay public key and returns the signed node.
/// A gateway error without `sign` fails with [`AlipayError::SignMissing`]; the caller decides
/// whether such an unverifiable answer may be treated as "not executed" (notes A1.5, A3.6).
pub fn verify_response<'a>(
    raw_body: &'a str,
    method: &str,
    alipay_key: &PublicKey,
) -> Result<ResponseContent<'a>, AlipayError> {
    let content = extract_response_content(raw_body, method)?;
    let signature = decode_sign(&response_sign(raw_body)?)?;
    if alipay_key.verify(content.json.as_bytes(), &signature) {
        return Ok(content);
    }
    // The Java SDK retries once with `\/` unescaped: Alipay may sign the unescaped text.
    if content.json.contains("\\/") {
        let unescaped = content.json.replace("\\/", "/");
        if alipay_key.verify(unescaped.as_bytes(), &signature) {
            return Ok(content);
        }
    }
    Err(AlipayError::SignatureMismatch)
}

#[cfg(test)]
mod tests;
