//! Alipay asynchronous notifications (protocol notes A2): parsing the raw form body,
//! verifying its RSA2 signature, and turning it into an [`AlipayNotification`].
//!
//! The body is decoded exactly once (`+` as space, then percent-decoding, strict UTF-8), split
//! on the first `=` only, and every received parameter except `sign` and `sign_type` takes
//! part in the signature, including ones this code does not know. Values are never trimmed.
//! Business checks (our app_id, seller_id, order amount) belong to the caller.

use chrono::NaiveDateTime;
use percent_encoding::percent_decode;

use super::AlipayError;
use super::sign::{Params, canonical_content, decode_sign};
use crate::gateway::keys::PublicKey;

/// Bound on parameters in one notification; real ones carry about 30.
pub const NOTIFY_PARAMS_MAX: usize = 256;

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// `trade_status` of a notification (A2.2). Only `TradeSuccess` and `TradeFinished` mean paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStatus {
    WaitBuyerPay,
    /// Unpaid trade timed out, or fully refunded (then `refund` is present).
    TradeClosed,
    /// Paid and still refundable.
    TradeSuccess,
    /// Paid and no longer refundable.
    TradeFinished,
}

impl TradeStatus {
    fn parse(value: &str) -> Result<Self, AlipayError> {
        match value {
            "WAIT_BUYER_PAY" => Ok(Self::WaitBuyerPay),
            "TRADE_CLOSED" => Ok(Self::TradeClosed),
            "TRADE_SUCCESS" => Ok(Self::TradeSuccess),
            "TRADE_FINISHED" => Ok(Self::TradeFinished),
            _ => Err(AlipayError::InvalidField {
                field: "trade_status",
                reason: "not one of WAIT_BUYER_PAY, TRADE_CLOSED, TRADE_SUCCESS, TRADE_FINISHED",
            }),
        }
    }

    pub fn is_paid(self) -> bool {
        matches!(self, Self::TradeSuccess | Self::TradeFinished)
    }
}

/// Refund data, present when the notification carries `refund_fee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayRefundInfo {
    /// Cumulative refunded amount in yuan, decimal string as sent.
    pub refund_fee: String,
    /// Beijing wall-clock time (Alipay sends milliseconds here).
    pub gmt_refund: Option<NaiveDateTime>,
    /// Our `out_request_no` of the refund.
    pub out_biz_no: Option<String>,
}

/// A notification whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayNotification {
    /// Stays the same across retries of one notification.
    pub notify_id: String,
    pub notify_type: String,
    pub notify_time: NaiveDateTime,
    pub app_id: String,
    pub seller_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub trade_status: TradeStatus,
    /// Order amount in yuan, decimal string exactly as sent (compare as a decimal).
    pub total_amount: String,
    /// Beijing wall-clock times; absent for unpaid trades.
    pub gmt_payment: Option<NaiveDateTime>,
    pub gmt_close: Option<NaiveDateTime>,
    pub refund: Option<AlipayRefundInfo>,
    /// Every received parameter, decoded, including `sign` and `sign_type`.
    pub params: Params,
}

/// Decodes an `application/x-www-form-urlencoded` body once. Only utf-8 is accepted, as the
/// `charset` parameter must confirm if present (GBK bodies come only from GBK requests).
pub fn parse_form(body: &[u8]) -> Result<Params, AlipayError> {
    let mut params = Params::new();
    for pair in body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
        if params.len() == NOTIFY_PARAMS_MAX {
            return Err(AlipayError::TooManyParams {
                max: NOTIFY_PARAMS_MAX,
            });
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        if params.contains_key(&name) {
            return Err(AlipayError::DuplicateParam { name });
        }
        params.insert(name, value);
    }
    match params.get("charset") {
        Some(charset) if !charset.eq_ignore_ascii_case("utf-8") => {
            Err(AlipayError::UnsupportedCharset {
                charset: charset.clone(),
            })
        }
        _ => Ok(params),
    }
}

fn decode_component(raw: &[u8]) -> Result<String, AlipayError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_decode(&spaced).collect();
    String::from_utf8(decoded).map_err(|_| AlipayError::MalformedForm {
        reason: "not UTF-8",
    })
}

/// The notification string to verify: all params except `sign` and `sign_type` (A2.3).
pub fn notification_sign_content(params: &Params) -> String {
    canonical_content(params, &["sign", "sign_type"])
}

/// Verifies the RSA2 signature of already-parsed notification params.
pub fn verify_params(params: &Params, alipay_key: &PublicKey) -> Result<(), AlipayError> {
    if let Some(sign_type) = params.get("sign_type").filter(|t| t.as_str() != "RSA2") {
        return Err(AlipayError::SignTypeNotRsa2 {
            found: sign_type.clone(),
        });
    }
    let sign = params
        .get("sign")
        .filter(|s| !s.is_empty())
        .ok_or(AlipayError::SignMissing)?;
    let signature = decode_sign(sign)?;
    let content = notification_sign_content(params);
    if !alipay_key.verify(content.as_bytes(), &signature) {
        return Err(AlipayError::SignatureMismatch);
    }
    Ok(())
}

/// Parses and verifies a raw notification body, then reads its typed fields.
pub fn verify_notification(
    body: &[u8],
    alipay_key: &PublicKey,
) -> Result<AlipayNotification, AlipayError> {
    let params = parse_form(body)?;
    verify_params(&params, alipay_key)?;
    AlipayNotification::from_verified(params)
}

impl AlipayNotification {
    fn from_verified(params: Params) -> Result<Self, AlipayError> {
        let refund = match optional(&params, "refund_fee") {
            None => None,
            Some(refund_fee) => Some(AlipayRefundInfo {
                refund_fee: refund_fee.to_owned(),
                gmt_refund: optional_time(&params, "gmt_refund")?,
                out_biz_no: optional(&params, "out_biz_no").map(str::to_owned),
            }),
        };
        Ok(Self {
            notify_id: required(&params, "notify_id")?.to_owned(),
            notify_type: required(&params, "notify_type")?.to_owned(),
            notify_time: parse_time("notify_time", required(&params, "notify_time")?)?,
            app_id: required(&params, "app_id")?.to_owned(),
            seller_id: required(&params, "seller_id")?.to_owned(),
            out_trade_no: required(&params, "out_trade_no")?.to_owned(),
            trade_no: required(&params, "trade_no")?.to_owned(),
            trade_status: TradeStatus::parse(required(&params, "trade_status")?)?,
            total_amount: required(&params, "total_amount")?.to_owned(),
            gmt_payment: optional_time(&params, "gmt_payment")?,
            gmt_close: optional_time(&params, "gmt_close")?,
            refund,
            params,
        })
    }
}

fn optional<'a>(params: &'a Params, field: &'static str) -> Option<&'a str> {
    params
        .get(field)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

fn required<'a>(params: &'a Params, field: &'static str) -> Result<&'a str, AlipayError> {
    optional(params, field).ok_or(AlipayError::MissingField { field })
}

fn optional_time(
    params: &Params,
    field: &'static str,
) -> Result<Option<NaiveDateTime>, AlipayError> {
    optional(params, field)
        .map(|value| parse_time(field, value))
        .transpose()
}

fn parse_time(field: &'static str, value: &str) -> Result<NaiveDateTime, AlipayError> {
    NaiveDateTime::parse_from_str(value, TIME_FORMAT).map_err(|_| AlipayError::InvalidField {
        field,
        reason: "not a yyyy-MM-dd HH:mm:ss time",
    })
}

#[cfg(test)]
mod tests;
