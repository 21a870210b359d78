//! The outbound Alipay OpenAPI client: precreate, query, close, refund, refund query and the
//! bill download URL, over `POST gateway.do` (protocol notes A1, A3, A4.1).
//!
//! Like the Java SDK, system parameters (and their `sign`) travel in the query string and
//! `biz_content` in the form body; the signature covers the union. Every response is verified
//! on its raw body with the Alipay public key before any field is trusted; a `10000` whose
//! signature does not verify is [`GatewayError::Unknown`], never a success. Amounts cross this
//! boundary as integer fen and are formatted/parsed as yuan strings here, without floats.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Timelike as _, Utc};
use serde_json::{Map, Value, json};

use super::AlipayError;
use super::sign::{Params, ResponseNode, extract_response_content, form_body, signed_params};
use super::sign::{beijing_timestamp, verify_response};
use crate::gateway::amount::{fen_to_yuan, yuan_to_fen};
use crate::gateway::beijing::BEIJING;
use crate::gateway::error::{BILL_BYTES_MAX, GatewayError, RESPONSE_BYTES_MAX, read_body_bounded};
use crate::gateway::keys::{PrivateKey, PublicKey};
use crate::gateway::refund::RefundAnswer;

pub const METHOD_PRECREATE: &str = "alipay.trade.precreate";
pub const METHOD_QUERY: &str = "alipay.trade.query";
pub const METHOD_CLOSE: &str = "alipay.trade.close";
pub const METHOD_REFUND: &str = "alipay.trade.refund";
pub const METHOD_REFUND_QUERY: &str = "alipay.trade.fastpay.refund.query";
pub const METHOD_BILL_URL: &str = "alipay.data.dataservice.bill.downloadurl.query";

const CODE_SUCCESS: &str = "10000";
const CODE_UNKNOWN: &str = "20000";
const SUB_CODE_SYSTEM_ERROR: &str = "ACQ.SYSTEM_ERROR";
const SUB_CODE_TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";
/// Public codes that mean the gateway refused the call before executing it, so even an
/// unsigned answer with one of them is safe to treat as a rejection (A1.5, A3.6).
const CODES_NOT_EXECUTED: [&str; 4] = ["20001", "40001", "40002", "40006"];
/// Alipay generates a day's bill during the next morning; after this Beijing hour a
/// "bill does not exist" answer means there were no trades (A4.1).
pub const BILL_READY_HOUR_BEIJING: u32 = 10;
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Merchant identity and keys for Alipay public-key mode.
#[derive(Clone)]
pub struct AlipayConfig {
    pub app_id: String,
    /// Our 16-digit PID (2088...), checked against notifications by the caller.
    pub seller_id: String,
    pub app_private_key: PrivateKey,
    pub alipay_public_key: PublicKey,
    /// `https://openapi.alipay.com/gateway.do` in production.
    pub gateway_url: String,
    pub notify_url: String,
}

impl fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .field("gateway_url", &self.gateway_url)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

/// `trade_status` of a queried trade (A2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlipayTradeStatus {
    WaitBuyerPay,
    TradeClosed,
    TradeSuccess,
    TradeFinished,
}

impl AlipayTradeStatus {
    fn parse(text: &str) -> Result<Self, GatewayError> {
        match text {
            "WAIT_BUYER_PAY" => Ok(Self::WaitBuyerPay),
            "TRADE_CLOSED" => Ok(Self::TradeClosed),
            "TRADE_SUCCESS" => Ok(Self::TradeSuccess),
            "TRADE_FINISHED" => Ok(Self::TradeFinished),
            other => Err(GatewayError::Protocol(format!(
                "unknown trade_status `{other}`"
            ))),
        }
    }

    pub fn is_paid(self) -> bool {
        matches!(self, Self::TradeSuccess | Self::TradeFinished)
    }
}

/// What `alipay.trade.query` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlipayTrade {
    /// `ACQ.TRADE_NOT_EXIST`: nobody scanned the QR code yet (or the number is unknown).
    NotExist,
    Found(AlipayTradeInfo),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayTradeInfo {
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: AlipayTradeStatus,
    /// Order amount as sent, yuan.
    pub total_amount: String,
    pub total_fen: i64,
    pub buyer_pay_amount: Option<String>,
    /// Payment time, Beijing wall clock.
    pub send_pay_date: Option<NaiveDateTime>,
}

/// The answer of `alipay.trade.refund`. Only `fund_change` says money moved; with `false`
/// confirm with [`AlipayClient::refund_query`] (A3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayRefund {
    pub trade_no: String,
    pub out_trade_no: String,
    pub fund_change: bool,
    /// Cumulative refunded amount of the trade, fen.
    pub refund_fee: i64,
    pub gmt_refund_pay: Option<NaiveDateTime>,
}

/// What `alipay.trade.fastpay.refund.query` found, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlipayRefundQuery {
    /// No refund with that `out_request_no` was received (the answer carries no amount).
    NotFound,
    Found {
        out_request_no: String,
        refund_fen: i64,
        total_fen: i64,
        /// `REFUND_SUCCESS` or absent (synchronous refund API) both mean success.
        refund_status: Option<String>,
    },
}

/// What `alipay.data.dataservice.bill.downloadurl.query` said about a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillUrl {
    /// Download at once: the URL lives 30 seconds.
    Url(String),
    /// The bill was generated and there is none: no trades that day.
    NoBill,
    /// Asked too early (the day is not over, or it is before the generation hour).
    NotReady,
}

#[derive(Debug)]
pub struct AlipayClient {
    config: AlipayConfig,
    http: reqwest::Client,
}

impl AlipayClient {
    /// `http` should come from [`crate::gateway::error::http_client`] (explicit timeouts).
    pub fn new(config: AlipayConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn config(&self) -> &AlipayConfig {
        &self.config
    }

    /// Creates the order's QR code and returns its content (`https://qr.alipay.com/...`).
    /// `timeout_express` is Alipay's relative expiry, e.g. `"30m"`.
    pub async fn precreate(
        &self,
        out_trade_no: &str,
        amount_fen: i64,
        subject: &str,
        timeout_express: &str,
        now: DateTime<Utc>,
    ) -> Result<String, GatewayError> {
        let biz = json!({
            "out_trade_no": out_trade_no,
            "total_amount": fen_to_yuan(amount_fen),
            "subject": subject,
            "timeout_express": timeout_express,
        });
        let node = self.call(METHOD_PRECREATE, &biz, true, now).await?;
        required_str(&node, "qr_code")
    }

    pub async fn query(
        &self,
        out_trade_no: &str,
        now: DateTime<Utc>,
    ) -> Result<AlipayTrade, GatewayError> {
        let biz = json!({ "out_trade_no": out_trade_no });
        let node = match self.call(METHOD_QUERY, &biz, false, now).await {
            Err(e) if e.rejection_code() == Some(SUB_CODE_TRADE_NOT_EXIST) => {
                return Ok(AlipayTrade::NotExist);
            }
            other => other?,
        };
        let total_amount = required_str(&node, "total_amount")?;
        Ok(AlipayTrade::Found(AlipayTradeInfo {
            trade_no: required_str(&node, "trade_no")?,
            out_trade_no: required_str(&node, "out_trade_no")?,
            trade_status: AlipayTradeStatus::parse(&required_str(&node, "trade_status")?)?,
            total_fen: parse_fen("total_amount", &total_amount)?,
            total_amount,
            buyer_pay_amount: optional_str(&node, "buyer_pay_amount"),
            send_pay_date: optional_time(&node, "send_pay_date")?,
        }))
    }

    /// Closes an unpaid trade. Before the QR code is scanned Alipay answers
    /// `ACQ.TRADE_NOT_EXIST` (a rejection): expire the order on our side too (A3.5).
    pub async fn close(&self, out_trade_no: &str, now: DateTime<Utc>) -> Result<(), GatewayError> {
        let biz = json!({ "out_trade_no": out_trade_no });
        self.call(METHOD_CLOSE, &biz, false, now).await.map(|_| ())
    }

    /// Refunds `refund_fen` of a paid trade. Retrying after an unknown outcome must reuse the
    /// same `out_request_no` and amount; a changed one is `ACQ.DISCORDANT_REPEAT_REQUEST`.
    pub async fn refund(
        &self,
        out_trade_no: &str,
        refund_fen: i64,
        out_request_no: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<AlipayRefund, GatewayError> {
        let biz = json!({
            "out_trade_no": out_trade_no,
            "refund_amount": fen_to_yuan(refund_fen),
            "out_request_no": out_request_no,
            "refund_reason": reason,
        });
        let node = self.call(METHOD_REFUND, &biz, false, now).await?;
        parse_refund(&node)
    }

    pub async fn refund_query(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        now: DateTime<Utc>,
    ) -> Result<AlipayRefundQuery, GatewayError> {
        let biz = json!({ "out_trade_no": out_trade_no, "out_request_no": out_request_no });
        let node = self.call(METHOD_REFUND_QUERY, &biz, false, now).await?;
        parse_refund_query(&node, out_request_no)
    }

    /// [`Self::refund`], classified (A3.3, A3.6): `fund_change=Y` is paid, `N` (or no field)
    /// is accepted-but-ask-again, a business rejection is a refusal. A signed `10000` we
    /// cannot fully read is [`RefundAnswer::Unknown`]: it was accepted, money may have moved.
    pub async fn request_refund(
        &self,
        out_trade_no: &str,
        refund_fen: i64,
        out_request_no: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> RefundAnswer {
        match self
            .refund(out_trade_no, refund_fen, out_request_no, reason, now)
            .await
        {
            Ok(refund) if refund.fund_change => RefundAnswer::Paid {
                gateway_refund_id: Some(refund.trade_no),
            },
            // This call moved no money; the refund query says whether an earlier one did.
            Ok(refund) => RefundAnswer::Processing {
                gateway_refund_id: Some(refund.trade_no),
            },
            Err(error) => RefundAnswer::from_request_error(error),
        }
    }

    /// [`Self::refund_query`] about our refund of `refund_fen`, classified (A3.4).
    pub async fn query_refund(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        refund_fen: i64,
        now: DateTime<Utc>,
    ) -> RefundAnswer {
        match self.refund_query(out_trade_no, out_request_no, now).await {
            Ok(found) => classify_refund_query(found, refund_fen),
            Err(error) => RefundAnswer::from_query_error(error),
        }
    }

    /// The download URL of the daily `trade` bill of `bill_date` (a Beijing calendar day).
    /// Asking before the day is over answers [`BillUrl::NotReady`] without calling Alipay.
    pub async fn bill_download_url(
        &self,
        bill_date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<BillUrl, GatewayError> {
        let beijing_now = now.with_timezone(&BEIJING);
        if bill_date >= beijing_now.date_naive() {
            return Ok(BillUrl::NotReady);
        }
        let biz =
            json!({ "bill_type": "trade", "bill_date": bill_date.format("%Y-%m-%d").to_string() });
        match self.call(METHOD_BILL_URL, &biz, false, now).await {
            Ok(node) => Ok(BillUrl::Url(required_str(&node, "bill_download_url")?)),
            Err(e) if e.rejection_code().is_some_and(is_bill_not_exist) => {
                let generated = bill_date + Duration::days(1) < beijing_now.date_naive()
                    || beijing_now.hour() >= BILL_READY_HOUR_BEIJING;
                Ok(if generated {
                    BillUrl::NoBill
                } else {
                    BillUrl::NotReady
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Downloads the bill zip (unauthenticated GET, as Alipay serves it). Parse it with a
    /// GBK-aware zip reader; the bytes are returned unchanged.
    pub async fn download_bill(&self, url: &str) -> Result<Vec<u8>, GatewayError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| GatewayError::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status));
        }
        read_body_bounded(response, BILL_BYTES_MAX).await
    }

    /// Signs and sends one API call and returns the verified `<method>_response` object of a
    /// `10000` answer; every other answer becomes the matching [`GatewayError`].
    async fn call(
        &self,
        method: &str,
        biz: &Value,
        with_notify_url: bool,
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, GatewayError> {
        let (query, body) = self.signed_request(method, biz, with_notify_url, now)?;
        let url = format!("{}?{}", self.config.gateway_url, query);
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| GatewayError::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status));
        }
        let raw = read_body_bounded(response, RESPONSE_BYTES_MAX).await?;
        let raw = String::from_utf8(raw)
            .map_err(|_| GatewayError::Protocol("response is not UTF-8".to_owned()))?;
        let node = self.verified_node(&raw, method)?;
        interpret_code(node)
    }

    /// `(query string, form body)`: system params and `sign` in the query, `biz_content` in
    /// the body, exactly as the Java SDK sends them.
    fn signed_request(
        &self,
        method: &str,
        biz: &Value,
        with_notify_url: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, String), GatewayError> {
        let biz_content = biz.to_string();
        let mut params = Params::new();
        for (key, value) in [
            ("app_id", self.config.app_id.as_str()),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
        ] {
            params.insert(key.to_owned(), value.to_owned());
        }
        params.insert("timestamp".to_owned(), beijing_timestamp(now));
        if with_notify_url {
            params.insert("notify_url".to_owned(), self.config.notify_url.clone());
        }
        params.insert("biz_content".to_owned(), biz_content.clone());
        let mut signed = signed_params(params, &self.config.app_private_key)
            .map_err(|e| GatewayError::Protocol(format!("signing the request: {e}")))?;
        signed.remove("biz_content");
        let mut body = Params::new();
        body.insert("biz_content".to_owned(), biz_content);
        Ok((form_body(&signed), form_body(&body)))
    }

    /// Verifies the response signature and parses the signed node. An unsigned answer is
    /// accepted only as a rejection whose public code says "not executed".
    fn verified_node(&self, raw: &str, method: &str) -> Result<Map<String, Value>, GatewayError> {
        let content = match verify_response(raw, method, &self.config.alipay_public_key) {
            Ok(content) => content,
            Err(AlipayError::SignMissing) => {
                let content = extract_response_content(raw, method)
                    .map_err(|e| GatewayError::Protocol(e.to_string()))?;
                let node = parse_node(content.json)?;
                let code = optional_str(&node, "code").unwrap_or_default();
                if CODES_NOT_EXECUTED.contains(&code.as_str()) {
                    // Not 10000, so this is always the rejection.
                    return interpret_code(node);
                }
                return Err(GatewayError::Unknown(format!(
                    "unsigned {method} response with code `{code}`"
                )));
            }
            Err(
                e @ (AlipayError::ResponseNodeMissing { .. }
                | AlipayError::UnterminatedResponseNode
                | AlipayError::MalformedResponseJson),
            ) => return Err(GatewayError::Protocol(e.to_string())),
            Err(e) => {
                return Err(GatewayError::Unknown(format!(
                    "{method} response signature not verified: {e}"
                )));
            }
        };
        let node = parse_node(content.json)?;
        if content.node == ResponseNode::GatewayError && code_of(&node) == CODE_SUCCESS {
            return Err(GatewayError::Protocol(
                "error_response with code 10000".to_owned(),
            ));
        }
        Ok(node)
    }
}

fn parse_node(json: &str) -> Result<Map<String, Value>, GatewayError> {
    serde_json::from_str(json)
        .map_err(|e| GatewayError::Protocol(format!("response node is not a JSON object: {e}")))
}

fn code_of(node: &Map<String, Value>) -> String {
    optional_str(node, "code").unwrap_or_default()
}

/// `10000` → the node; `20000` / `ACQ.SYSTEM_ERROR` → unknown; anything else → rejected.
fn interpret_code(node: Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let code = code_of(&node);
    if code == CODE_SUCCESS {
        return Ok(node);
    }
    let sub_code = optional_str(&node, "sub_code");
    let message = optional_str(&node, "sub_msg")
        .or_else(|| optional_str(&node, "msg"))
        .unwrap_or_default();
    if code == CODE_UNKNOWN || sub_code.as_deref() == Some(SUB_CODE_SYSTEM_ERROR) {
        return Err(GatewayError::Unknown(format!(
            "Alipay {code} {}: {message}",
            sub_code.unwrap_or_default()
        )));
    }
    if code.is_empty() {
        return Err(GatewayError::Protocol(
            "response node has no code".to_owned(),
        ));
    }
    Err(GatewayError::Rejected {
        code,
        sub_code,
        message,
    })
}

/// 5xx, 429 and 408 may have been executed; other statuses mean a wrong URL or similar.
fn status_error(status: reqwest::StatusCode) -> GatewayError {
    let retryable = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    if retryable {
        GatewayError::Unknown(format!("HTTP {status}"))
    } else {
        GatewayError::Protocol(format!("unexpected HTTP {status}"))
    }
}

/// The no-bill answer: `BILL_NOT_EXIST` in the old docs, `isp.bill_not_exist` (or similar)
/// in newer ones (A4.1; exact sub_code unsure), so match case-insensitively.
fn is_bill_not_exist(code: &str) -> bool {
    code.to_ascii_uppercase().contains("BILL_NOT_EXIST")
}

fn optional_str(node: &Map<String, Value>, field: &str) -> Option<String> {
    node.get(field)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn required_str(node: &Map<String, Value>, field: &str) -> Result<String, GatewayError> {
    optional_str(node, field)
        .ok_or_else(|| GatewayError::Protocol(format!("response lacks `{field}`")))
}

fn optional_time(
    node: &Map<String, Value>,
    field: &str,
) -> Result<Option<NaiveDateTime>, GatewayError> {
    optional_str(node, field)
        .map(|text| {
            NaiveDateTime::parse_from_str(&text, TIME_FORMAT)
                .map_err(|_| GatewayError::Protocol(format!("`{field}` is not a time: {text}")))
        })
        .transpose()
}

fn parse_fen(field: &str, text: &str) -> Result<i64, GatewayError> {
    yuan_to_fen(text).map_err(|e| GatewayError::Protocol(format!("`{field}`: {e}")))
}

fn parse_refund(node: &Map<String, Value>) -> Result<AlipayRefund, GatewayError> {
    let fund_change = match optional_str(node, "fund_change").as_deref() {
        Some("Y") => true,
        Some("N") | None => false,
        Some(other) => {
            return Err(GatewayError::Protocol(format!(
                "`fund_change` is neither Y nor N: {other}"
            )));
        }
    };
    Ok(AlipayRefund {
        trade_no: required_str(node, "trade_no")?,
        out_trade_no: required_str(node, "out_trade_no")?,
        fund_change,
        refund_fee: parse_fen("refund_fee", &required_str(node, "refund_fee")?)?,
        gmt_refund_pay: optional_time(node, "gmt_refund_pay")?,
    })
}

fn parse_refund_query(
    node: &Map<String, Value>,
    out_request_no: &str,
) -> Result<AlipayRefundQuery, GatewayError> {
    let Some(refund_amount) = optional_str(node, "refund_amount") else {
        return Ok(AlipayRefundQuery::NotFound);
    };
    Ok(AlipayRefundQuery::Found {
        out_request_no: optional_str(node, "out_request_no")
            .unwrap_or_else(|| out_request_no.to_owned()),
        refund_fen: parse_fen("refund_amount", &refund_amount)?,
        total_fen: parse_fen("total_amount", &required_str(node, "total_amount")?)?,
        refund_status: optional_str(node, "refund_status"),
    })
}

/// `REFUND_SUCCESS` or no status (synchronous refund API) is paid; `REFUND_FAIL` is a signed
/// statement that the refund was not executed; a different amount needs a person.
fn classify_refund_query(found: AlipayRefundQuery, refund_fen: i64) -> RefundAnswer {
    let AlipayRefundQuery::Found {
        out_request_no,
        refund_fen: found_fen,
        total_fen: _,
        refund_status,
    } = found
    else {
        return RefundAnswer::NotFound;
    };
    match refund_status.as_deref() {
        None | Some("REFUND_SUCCESS") if found_fen == refund_fen => RefundAnswer::Paid {
            gateway_refund_id: None,
        },
        None | Some("REFUND_SUCCESS") => RefundAnswer::NeedsAttention {
            why: format!(
                "Alipay refunded {found_fen} fen for request {out_request_no}, we asked for {refund_fen}"
            ),
        },
        Some("REFUND_PROCESSING") => RefundAnswer::Processing {
            gateway_refund_id: None,
        },
        Some("REFUND_FAIL") => RefundAnswer::Refused {
            code: "REFUND_FAIL".to_owned(),
            message: format!("the refund query says request {out_request_no} failed"),
        },
        Some(other) => RefundAnswer::Unknown {
            why: format!("unknown refund_status `{other}`"),
        },
    }
}

#[cfg(test)]
mod refund_tests {
    use super::*;

    fn found(refund_fen: i64, status: Option<&str>) -> AlipayRefundQuery {
        AlipayRefundQuery::Found {
            out_request_no: "RF-1".into(),
            refund_fen,
            total_fen: 10_000,
            refund_status: status.map(str::to_owned),
        }
    }

    #[test]
    fn a_refund_query_is_paid_only_for_our_amount_and_fails_only_on_refund_fail() {
        let paid = RefundAnswer::Paid {
            gateway_refund_id: None,
        };
        assert_eq!(classify_refund_query(found(6000, None), 6000), paid);
        assert_eq!(
            classify_refund_query(found(6000, Some("REFUND_SUCCESS")), 6000),
            paid
        );
        assert!(matches!(
            classify_refund_query(found(5999, Some("REFUND_SUCCESS")), 6000),
            RefundAnswer::NeedsAttention { .. }
        ));
        assert!(matches!(
            classify_refund_query(found(6000, Some("REFUND_PROCESSING")), 6000),
            RefundAnswer::Processing { .. }
        ));
        assert!(matches!(
            classify_refund_query(found(6000, Some("REFUND_FAIL")), 6000),
            RefundAnswer::Refused { .. }
        ));
        assert!(matches!(
            classify_refund_query(found(6000, Some("SOMETHING_NEW")), 6000),
            RefundAnswer::Unknown { .. }
        ));
        assert_eq!(
            classify_refund_query(AlipayRefundQuery::NotFound, 6000),
            RefundAnswer::NotFound
        );
    }

    #[test]
    fn a_signed_refund_answer_with_a_renamed_field_or_a_bad_time_is_not_understood() {
        let node = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect()
        };
        let good = [
            ("trade_no", "2026"),
            ("out_trade_no", "WB1"),
            ("fund_change", "Y"),
            ("refund_fee", "60.00"),
            ("gmt_refund_pay", "2026-12-04 12:00:00"),
        ];
        assert!(parse_refund(&node(&good)).is_ok_and(|r| r.fund_change));
        let mut renamed = good;
        renamed[0].0 = "tradeNo";
        assert!(parse_refund(&node(&renamed)).is_err());
        let mut bad_time = good;
        bad_time[4].1 = "yesterday afternoon";
        assert!(parse_refund(&node(&bad_time)).is_err());
        let mut odd_flag = good;
        odd_flag[2].1 = "YES";
        assert!(parse_refund(&node(&odd_flag)).is_err());
    }
}
