//! The decrypted notification resources (protocol notes B4.3, B4.4), also the shape of query
//! responses. Amounts are integer fen; times are RFC 3339 with their `+08:00` offset kept.
//!
//! Fields WeChat always sends for a final state are required so a malformed resource fails
//! loudly; fields that only some states or versions carry are `Option`.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer};

/// `trade_state` (B4.3). Only `Success` means paid; notifications are sent for `Success` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TradeState {
    Success,
    /// Paid, then (partly) refunded.
    Refund,
    NotPay,
    Closed,
    Revoked,
    UserPaying,
    PayError,
    Accept,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Payer {
    pub openid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransactionAmount {
    /// Order total in fen; compare with our order amount before booking.
    pub total: i64,
    /// What the payer actually paid after coupons, in fen.
    pub payer_total: Option<i64>,
    pub currency: Option<String>,
    pub payer_currency: Option<String>,
}

/// A payment (`original_type: transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WechatTransaction {
    pub appid: String,
    pub mchid: String,
    pub out_trade_no: String,
    pub transaction_id: Option<String>,
    /// `NATIVE`, `JSAPI`, ... kept as text: it is informational and the list grows.
    pub trade_type: Option<String>,
    pub trade_state: TradeState,
    pub trade_state_desc: Option<String>,
    pub bank_type: Option<String>,
    pub attach: Option<String>,
    #[serde(default, deserialize_with = "optional_rfc3339")]
    pub success_time: Option<DateTime<FixedOffset>>,
    pub payer: Option<Payer>,
    pub amount: TransactionAmount,
}

/// `refund_status` (B4.4). `Abnormal` is not final and needs manual handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RefundStatus {
    Success,
    Closed,
    Abnormal,
    Processing,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundAmount {
    /// Original order total, fen.
    pub total: i64,
    /// This refund, fen.
    pub refund: i64,
    pub payer_total: i64,
    pub payer_refund: i64,
}

/// A refund (`original_type: refund`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WechatRefund {
    pub mchid: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub out_refund_no: String,
    pub refund_id: String,
    pub refund_status: RefundStatus,
    #[serde(default, deserialize_with = "optional_rfc3339")]
    pub success_time: Option<DateTime<FixedOffset>>,
    /// E.g. `支付用户零钱` or a masked bank card.
    pub user_received_account: Option<String>,
    pub amount: RefundAmount,
}

pub(crate) fn rfc3339<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)
}

fn optional_rfc3339<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    let text = text.filter(|text| !text.is_empty());
    let parse = |text: String| DateTime::parse_from_rfc3339(&text);
    text.map(parse)
        .transpose()
        .map_err(serde::de::Error::custom)
}
