//! The outbound WeChat Pay API v3 client: Native prepay, query, close, refund, refund query,
//! trade bill apply and download (protocol notes B2, B3, B5, B6.1, B6.2).
//!
//! Every request is signed with the merchant key (`Authorization`) and carries `Accept`,
//! `Content-Type`, `User-Agent` and, when configured, `Wechatpay-Serial` naming the WeChat
//! Pay public key we verify with. Every 2xx answer except the bill file must carry valid
//! `Wechatpay-*` signature headers over its raw body; one that does not is
//! [`GatewayError::Unknown`] (possibly forged, possibly mangled by a proxy: query again).
//! The bill file is checked by the SHA-1 given in the (signed) apply answer instead.

use std::fmt;
use std::io::Read as _;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;
use sha1::Digest as _;

use super::resource::{RefundStatus, WechatTransaction, rfc3339};
use super::sign::{MerchantSigner, RequestToSign, SignedHeaders, WechatKeySet, verify_signature};
use crate::gateway::error::{BILL_BYTES_MAX, GatewayError, RESPONSE_BYTES_MAX, read_body_bounded};
use crate::gateway::keys::ApiV3Key;
use crate::gateway::refund::RefundAnswer;

/// Length of the random request nonce, as the official SDKs use.
pub const NONCE_LEN: usize = 32;
pub const USER_AGENT: &str = concat!("water-billing/", env!("CARGO_PKG_VERSION"));
const SYSTEM_ERROR: &str = "SYSTEM_ERROR";
const ORDER_NOT_EXIST: &str = "ORDER_NOT_EXIST";
/// The refund query's "no such refund" (B5.5 lists `ORDER_NOT_EXIST` for 404; the refund
/// API answers `RESOURCE_NOT_EXISTS`), so either is accepted.
const RESOURCE_NOT_EXISTS: &str = "RESOURCE_NOT_EXISTS";
const NO_STATEMENT_EXIST: &str = "NO_STATEMENT_EXIST";
const STATEMENT_CREATING: &str = "STATEMENT_CREATING";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Merchant identity and keys for API v3.
#[derive(Clone)]
pub struct WechatConfig {
    pub mch_id: String,
    pub app_id: String,
    pub signer: MerchantSigner,
    /// WeChat's keys we verify responses and notifications with.
    pub keys: WechatKeySet,
    /// `PUB_KEY_ID_...`, sent as `Wechatpay-Serial` so WeChat signs with that key.
    pub public_key_id: Option<String>,
    pub api_v3_key: ApiV3Key,
    /// `https://api.mch.weixin.qq.com` in production, no trailing slash.
    pub base_url: String,
    pub notify_url: String,
}

impl fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatConfig")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("public_key_id", &self.public_key_id)
            .field("base_url", &self.base_url)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

/// A refund as the refund API and refund query answer it (B5.4); not the notification
/// resource, whose status field is named differently.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WechatRefundResponse {
    pub refund_id: String,
    pub out_refund_no: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub channel: Option<String>,
    pub user_received_account: Option<String>,
    #[serde(default, deserialize_with = "optional_time")]
    pub success_time: Option<DateTime<FixedOffset>>,
    #[serde(deserialize_with = "rfc3339")]
    pub create_time: DateTime<FixedOffset>,
    /// `PROCESSING` is not final: wait for the notification or query again.
    pub status: RefundStatus,
    pub amount: RefundResponseAmount,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundResponseAmount {
    pub total: i64,
    pub refund: i64,
    pub payer_total: i64,
    pub payer_refund: i64,
    pub currency: Option<String>,
}

/// `tar_type` of the bill apply request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillTarType {
    /// Plain UTF-8 text.
    Plain,
    /// A gzip stream; [`WechatClient::download_bill`] gunzips it.
    Gzip,
}

/// What `GET /v3/bill/tradebill` said about a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeBill {
    /// Download within 5 minutes and check the SHA-1 of the uncompressed file.
    Ready {
        hash_value: String,
        download_url: String,
    },
    /// `NO_STATEMENT_EXIST`: no payments or refunds that day.
    NoStatement,
    /// `STATEMENT_CREATING`: retry later (after 10:00 Beijing, every 30 minutes).
    NotReady,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct PrepayBody {
    code_url: String,
}

#[derive(Deserialize)]
struct BillApplyBody {
    hash_type: String,
    hash_value: String,
    download_url: String,
}

/// One answer: status and raw body (signature already verified for 2xx).
struct Answer {
    status: reqwest::StatusCode,
    body: Vec<u8>,
}

#[derive(Debug)]
pub struct WechatClient {
    config: WechatConfig,
    http: reqwest::Client,
}

impl WechatClient {
    /// `http` should come from [`crate::gateway::error::http_client`] (explicit timeouts).
    pub fn new(config: WechatConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn config(&self) -> &WechatConfig {
        &self.config
    }

    /// Creates a Native (QR) order and returns its `code_url` (valid 2 hours).
    pub async fn native_prepay(
        &self,
        out_trade_no: &str,
        description: &str,
        amount_fen: i64,
        time_expire: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> Result<String, GatewayError> {
        let body = json!({
            "appid": self.config.app_id,
            "mchid": self.config.mch_id,
            "description": description,
            "out_trade_no": out_trade_no,
            "time_expire": time_expire.to_rfc3339_opts(SecondsFormat::Secs, false),
            "notify_url": self.config.notify_url,
            "amount": { "total": amount_fen, "currency": "CNY" },
        });
        let path = "/v3/pay/transactions/native";
        let answer = self.send("POST", path, &body.to_string(), now).await?;
        let answer = success_or_error(answer)?;
        Ok(parse_json::<PrepayBody>(&answer.body)?.code_url)
    }

    /// The order by our number; `None` when WeChat does not know it (404 `ORDER_NOT_EXIST`).
    pub async fn query(
        &self,
        out_trade_no: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WechatTransaction>, GatewayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            path_segment(out_trade_no)?,
            self.config.mch_id
        );
        let answer = self.send("GET", &path, "", now).await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND
            && error_code(&answer.body).as_deref() == Some(ORDER_NOT_EXIST)
        {
            return Ok(None);
        }
        let answer = success_or_error(answer)?;
        parse_json(&answer.body).map(Some)
    }

    /// Closes an unpaid order; WeChat answers 204 with an empty (signed) body.
    pub async fn close(&self, out_trade_no: &str, now: DateTime<Utc>) -> Result<(), GatewayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            path_segment(out_trade_no)?
        );
        let body = json!({ "mchid": self.config.mch_id }).to_string();
        success_or_error(self.send("POST", &path, &body, now).await?).map(|_| ())
    }

    /// Refunds `refund_fen` of the order whose total was `total_fen`. Retry an unknown
    /// outcome with the same `out_refund_no` and amounts. An error answer must be signed
    /// like a success (else [`GatewayError::Unknown`]): an unsigned 4xx may come from
    /// anything between us and WeChat and proves nothing about the refund.
    pub async fn refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        refund_fen: i64,
        total_fen: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<WechatRefundResponse, GatewayError> {
        let body = json!({
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "reason": reason,
            "notify_url": self.config.notify_url,
            "amount": { "refund": refund_fen, "total": total_fen, "currency": "CNY" },
        });
        let path = "/v3/refund/domestic/refunds";
        let answer = self
            .send_checked("POST", path, &body.to_string(), true, now)
            .await?;
        parse_json(&success_or_error(answer)?.body)
    }

    pub async fn refund_query(
        &self,
        out_refund_no: &str,
        now: DateTime<Utc>,
    ) -> Result<WechatRefundResponse, GatewayError> {
        let path = format!(
            "/v3/refund/domestic/refunds/{}",
            path_segment(out_refund_no)?
        );
        let answer = success_or_error(self.send("GET", &path, "", now).await?)?;
        parse_json(&answer.body)
    }

    /// [`Self::refund`], classified (B5.4, B5.5): only a signed business error is a refusal.
    pub async fn request_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        refund_fen: i64,
        total_fen: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> RefundAnswer {
        match self
            .refund(
                out_trade_no,
                out_refund_no,
                refund_fen,
                total_fen,
                reason,
                now,
            )
            .await
        {
            Ok(refund) => classify_refund(&refund, refund_fen),
            Err(error) => RefundAnswer::from_request_error(error),
        }
    }

    /// [`Self::refund_query`] about our refund of `refund_fen`, classified; a 404 is a
    /// refund WeChat has no record of.
    pub async fn query_refund(
        &self,
        out_refund_no: &str,
        refund_fen: i64,
        now: DateTime<Utc>,
    ) -> RefundAnswer {
        match self.refund_query(out_refund_no, now).await {
            Ok(refund) => classify_refund(&refund, refund_fen),
            Err(error)
                if error
                    .rejection_code()
                    .is_some_and(|code| code == RESOURCE_NOT_EXISTS || code == ORDER_NOT_EXIST) =>
            {
                RefundAnswer::NotFound
            }
            Err(error) => RefundAnswer::from_query_error(error),
        }
    }

    /// Applies for the `ALL` trade bill of `bill_date` (a Beijing calendar day).
    pub async fn trade_bill(
        &self,
        bill_date: NaiveDate,
        tar_type: BillTarType,
        now: DateTime<Utc>,
    ) -> Result<TradeBill, GatewayError> {
        let mut path = format!(
            "/v3/bill/tradebill?bill_date={}&bill_type=ALL",
            bill_date.format("%Y-%m-%d")
        );
        if tar_type == BillTarType::Gzip {
            path.push_str("&tar_type=GZIP");
        }
        let answer = self.send("GET", &path, "", now).await?;
        if answer.status == reqwest::StatusCode::BAD_REQUEST {
            match error_code(&answer.body).as_deref() {
                Some(NO_STATEMENT_EXIST) => return Ok(TradeBill::NoStatement),
                Some(STATEMENT_CREATING) => return Ok(TradeBill::NotReady),
                _ => {}
            }
        }
        let answer = success_or_error(answer)?;
        let apply: BillApplyBody = parse_json(&answer.body)?;
        if !apply.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(GatewayError::Protocol(format!(
                "bill hash_type `{}` is not SHA1",
                apply.hash_type
            )));
        }
        Ok(TradeBill::Ready {
            hash_value: apply.hash_value,
            download_url: apply.download_url,
        })
    }

    /// Downloads a bill file (signed GET, unsigned answer), gunzips it if it is a gzip
    /// stream, and checks the SHA-1 of the uncompressed bytes against `expected_sha1`.
    pub async fn download_bill(
        &self,
        download_url: &str,
        expected_sha1: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, GatewayError> {
        let canonical_url = self.same_origin_path(download_url)?;
        let response = self
            .request("GET", download_url, &canonical_url, "", now)?
            .send()
            .await
            .map_err(|e| GatewayError::transport(&e))?;
        let status = response.status();
        let body = read_body_bounded(response, BILL_BYTES_MAX).await?;
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        let file = if body.starts_with(&GZIP_MAGIC) {
            gunzip(&body)?
        } else {
            body
        };
        let actual = hex::encode(sha1::Sha1::digest(&file));
        if !actual.eq_ignore_ascii_case(expected_sha1) {
            return Err(GatewayError::Protocol(format!(
                "bill SHA-1 {actual} does not match {expected_sha1}"
            )));
        }
        Ok(file)
    }

    /// The download URL must point at the configured API host: we sign it with our key.
    fn same_origin_path(&self, download_url: &str) -> Result<String, GatewayError> {
        let parse = |text: &str| {
            url::Url::parse(text)
                .map_err(|e| GatewayError::Protocol(format!("bad URL {text}: {e}")))
        };
        let download = parse(download_url)?;
        let base = parse(&self.config.base_url)?;
        if download.origin() != base.origin() {
            return Err(GatewayError::Protocol(format!(
                "bill download URL is not on {}",
                self.config.base_url
            )));
        }
        Ok(match download.query() {
            Some(query) => format!("{}?{query}", download.path()),
            None => download.path().to_owned(),
        })
    }

    /// Signs and sends one request and reads the answer; a 2xx must verify.
    async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Answer, GatewayError> {
        self.send_checked(method, path_and_query, body, false, now)
            .await
    }

    /// [`Self::send`], and with `verify_errors` an error answer must verify too (an
    /// unverified one is [`GatewayError::Unknown`]).
    async fn send_checked(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        verify_errors: bool,
        now: DateTime<Utc>,
    ) -> Result<Answer, GatewayError> {
        let url = format!("{}{path_and_query}", self.config.base_url);
        let response = self
            .request(method, &url, path_and_query, body, now)?
            .send()
            .await
            .map_err(|e| GatewayError::transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body_bounded(response, RESPONSE_BYTES_MAX).await?;
        if status.is_success() || (verify_errors && !status.is_server_error()) {
            self.verify(&headers, &body, now)?;
        }
        Ok(Answer { status, body })
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        canonical_url: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<reqwest::RequestBuilder, GatewayError> {
        let nonce = nonce();
        let authorization = self
            .config
            .signer
            .authorization(&RequestToSign {
                method,
                canonical_url,
                timestamp: now,
                nonce: &nonce,
                body,
            })
            .map_err(|e| GatewayError::Protocol(format!("signing the request: {e}")))?;
        let http_method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| GatewayError::Protocol(format!("bad HTTP method {method}")))?;
        let mut builder = self
            .http
            .request(http_method, url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, USER_AGENT);
        if let Some(key_id) = &self.config.public_key_id {
            builder = builder.header("Wechatpay-Serial", key_id);
        }
        if !body.is_empty() {
            builder = builder.body(body.to_owned());
        }
        Ok(builder)
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), GatewayError> {
        let pairs = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), header_text(value)?)));
        let signed = SignedHeaders::from_pairs(pairs)
            .map_err(|e| GatewayError::Unknown(format!("unsigned 2xx response: {e}")))?;
        verify_signature(&signed, body, &self.config.keys, now)
            .map_err(|e| GatewayError::Unknown(format!("response signature not verified: {e}")))
    }
}

fn header_text(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok()
}

/// 32 characters of `[0-9A-Za-z]` from the thread-local CSPRNG.
fn nonce() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect()
}

/// Merchant numbers are `[0-9A-Za-z_-|*@]`; anything else would change the signed URL.
fn path_segment(value: &str) -> Result<&str, GatewayError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-*@".contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(GatewayError::Protocol(format!(
            "merchant number `{value}` has characters that are not allowed"
        )))
    }
}

fn success_or_error(answer: Answer) -> Result<Answer, GatewayError> {
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(error_from(answer.status, &answer.body))
    }
}

fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|e| e.code)
}

/// 5xx, 429 and `SYSTEM_ERROR` are unknown outcomes; other error bodies are rejections.
fn error_from(status: reqwest::StatusCode, body: &[u8]) -> GatewayError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let unknown = status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || parsed.as_ref().is_some_and(|e| e.code == SYSTEM_ERROR);
    match parsed {
        _ if unknown => GatewayError::Unknown(format!("HTTP {status}")),
        Some(error) => GatewayError::Rejected {
            code: error.code,
            sub_code: None,
            message: error.message,
        },
        None => GatewayError::Protocol(format!("HTTP {status} without an error body")),
    }
}

/// A verified refund answer: `SUCCESS` of our amount is paid, `PROCESSING` is not final,
/// `CLOSED` and `ABNORMAL` need a person (B4.4, B5.4). (A body we could not parse never gets
/// here: it is a protocol error, which a refund call classifies as unknown.)
fn classify_refund(refund: &WechatRefundResponse, refund_fen: i64) -> RefundAnswer {
    let gateway_refund_id = Some(refund.refund_id.clone());
    if refund.amount.refund != refund_fen {
        return RefundAnswer::NeedsAttention {
            why: format!(
                "WeChat refund {} is of {} fen, we asked for {refund_fen}",
                refund.out_refund_no, refund.amount.refund
            ),
        };
    }
    match refund.status {
        RefundStatus::Success => RefundAnswer::Paid { gateway_refund_id },
        RefundStatus::Processing => RefundAnswer::Processing { gateway_refund_id },
        status @ (RefundStatus::Closed | RefundStatus::Abnormal) => RefundAnswer::NeedsAttention {
            why: format!("WeChat refund {} is {status:?}", refund.out_refund_no),
        },
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| GatewayError::Protocol(format!("response JSON: {e}")))
}

/// Gunzips at most [`BILL_BYTES_MAX`] bytes, so a gzip bomb fails instead of filling memory.
fn gunzip(compressed: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let mut file = Vec::new();
    let limit = u64::try_from(BILL_BYTES_MAX).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(compressed)
        .take(limit.saturating_add(1))
        .read_to_end(&mut file)
        .map_err(|e| GatewayError::Protocol(format!("bill is not valid gzip: {e}")))?;
    if file.len() > BILL_BYTES_MAX {
        return Err(GatewayError::Protocol(format!(
            "uncompressed bill larger than {BILL_BYTES_MAX} bytes"
        )));
    }
    Ok(file)
}

fn optional_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.filter(|text| !text.is_empty())
        .map(|text| DateTime::parse_from_rfc3339(&text))
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod refund_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(status: &str, refund_fen: i64) -> WechatRefundResponse {
        serde_json::from_value(json!({
            "refund_id": "503", "out_refund_no": "RF-1", "transaction_id": "42",
            "out_trade_no": "WB1", "create_time": "2026-12-04T12:00:00+08:00",
            "status": status,
            "amount": { "total": 10000, "refund": refund_fen, "payer_total": 10000,
                        "payer_refund": refund_fen },
        }))
        .unwrap()
    }

    #[test]
    fn closed_abnormal_and_another_amount_need_a_person_and_only_success_is_paid() {
        assert!(matches!(
            classify_refund(&answer("SUCCESS", 6000), 6000),
            RefundAnswer::Paid { .. }
        ));
        assert!(matches!(
            classify_refund(&answer("PROCESSING", 6000), 6000),
            RefundAnswer::Processing { .. }
        ));
        for status in ["CLOSED", "ABNORMAL"] {
            assert!(matches!(
                classify_refund(&answer(status, 6000), 6000),
                RefundAnswer::NeedsAttention { .. }
            ));
        }
        assert!(matches!(
            classify_refund(&answer("SUCCESS", 5000), 6000),
            RefundAnswer::NeedsAttention { .. }
        ));
    }
}
