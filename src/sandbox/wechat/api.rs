//! The `/v3/...` routes of the WeChat simulator: request authentication, dispatch, the
//! handlers, and response signing.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{NaiveDate, SecondsFormat};
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Digest as _;

use super::bill::BillDay;
use super::{BILL_URL_TTL_SECS, BILL_URLS_MAX, Inner, IssuedBill};
use crate::gateway::beijing::{BEIJING, beijing_date};
use crate::gateway::wechat::sign::{
    SIGNATURE_SCHEME, TIMESTAMP_SKEW_MAX_SECS, verification_message,
};
use crate::sandbox::delivery::lock;
use crate::sandbox::faults::RefundFaults;
use crate::sandbox::ledger::{REFUNDS_PER_TRADE_MAX, SimRefund, SimTrade, SimTradeStatus};
use crate::sandbox::server::{random_alnum, random_digits, real_now};

/// An answer before signing: status and JSON body (`None` = empty body, e.g. 204).
struct Answer {
    status: StatusCode,
    body: Option<Value>,
}

fn ok(body: Value) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: Some(body),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer {
        status,
        body: Some(json!({ "code": code, "message": message })),
    }
}

fn bad_request(code: &str, message: &str) -> Answer {
    error(StatusCode::BAD_REQUEST, code, message)
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&BEIJING)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The fallback handler: everything that is not a `/sandbox` route.
pub(super) async fn v3(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    if let Err(answer) = inner.authenticate(&method, &path_and_query, &headers, &body) {
        return inner.signed(answer);
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let query = uri.query().unwrap_or("");
    if method == Method::GET && segments == ["v3", "billdownload", "file"] {
        return inner.bill_file(query);
    }
    let refund_call = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "refund", "domestic", "refunds"]) => Some(true),
        ("GET", ["v3", "refund", "domestic", "refunds", _]) => Some(false),
        _ => None,
    };
    let faults = refund_call
        .map(|request| inner.deliverer.take_refund_faults(request))
        .unwrap_or_default();
    if faults.unavailable {
        return inner.signed(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SYSTEM_ERROR",
            "系统繁忙，请稍后重试",
        ));
    }
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "pay", "transactions", "native"]) => inner.native(&body),
        ("GET", ["v3", "pay", "transactions", "out-trade-no", no]) => inner.query(no, query),
        ("POST", ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => {
            inner.close(no, &body)
        }
        ("POST", ["v3", "refund", "domestic", "refunds"]) => inner.refund(&body, &faults),
        ("GET", ["v3", "refund", "domestic", "refunds", no]) => inner.refund_query(no),
        ("GET", ["v3", "bill", "tradebill"]) => inner.trade_bill(query),
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "模拟器不支持该接口"),
    };
    if faults.answer_delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.answer_delay_ms)).await;
    }
    inner.signed(answer)
}

/// The fields of `Authorization: WECHATPAY2-SHA256-RSA2048 k="v",...`.
#[derive(Default)]
struct Authorization {
    mchid: String,
    nonce_str: String,
    timestamp: String,
    serial_no: String,
    signature: String,
}

fn parse_authorization(header: &str) -> Option<Authorization> {
    let pairs = header.strip_prefix(SIGNATURE_SCHEME)?.strip_prefix(' ')?;
    let mut auth = Authorization::default();
    for pair in pairs.split(',') {
        let (name, value) = pair.trim().split_once('=')?;
        let value = value.strip_prefix('"')?.strip_suffix('"')?.to_owned();
        match name {
            "mchid" => auth.mchid = value,
            "nonce_str" => auth.nonce_str = value,
            "timestamp" => auth.timestamp = value,
            "serial_no" => auth.serial_no = value,
            "signature" => auth.signature = value,
            _ => return None,
        }
    }
    Some(auth)
}

impl Inner {
    fn authenticate(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Answer> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("user-agent").is_none_or(str::is_empty) || header("accept").is_none() {
            return Err(bad_request(
                "INVALID_REQUEST",
                "Http头缺少Accept或User-Agent",
            ));
        }
        let sign_error = || error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误");
        let auth = header("authorization")
            .and_then(parse_authorization)
            .ok_or_else(sign_error)?;
        let serial_ok = self
            .config
            .merchant_serial_no
            .as_ref()
            .is_none_or(|serial| serial.eq_ignore_ascii_case(&auth.serial_no));
        let timestamp: i64 = auth.timestamp.parse().map_err(|_| sign_error())?;
        let fresh = real_now().timestamp().abs_diff(timestamp) < TIMESTAMP_SKEW_MAX_SECS;
        if auth.mchid != self.config.mch_id || !serial_ok || !fresh {
            return Err(sign_error());
        }
        let mut message = format!(
            "{}\n{path_and_query}\n{}\n{}\n",
            method.as_str(),
            auth.timestamp,
            auth.nonce_str
        )
        .into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        let verified = BASE64
            .decode(&auth.signature)
            .is_ok_and(|signature| self.config.merchant_public_key.verify(&message, &signature));
        if verified { Ok(()) } else { Err(sign_error()) }
    }

    /// Serializes and signs an answer with the `Wechatpay-*` headers.
    fn signed(&self, answer: Answer) -> Response {
        let body = answer.body.map(|b| b.to_string()).unwrap_or_default();
        let (timestamp, nonce) = (real_now().timestamp().to_string(), random_alnum(32));
        let message = verification_message(&timestamp, &nonce, body.as_bytes());
        let signature = self.keys.private.sign_base64(&message).unwrap_or_default();
        let mut response = (answer.status, body).into_response();
        let headers = response.headers_mut();
        let pairs = [
            ("wechatpay-timestamp", timestamp),
            ("wechatpay-nonce", nonce),
            ("wechatpay-signature", signature),
            ("wechatpay-serial", self.config.public_key_id.clone()),
            ("wechatpay-signature-type", SIGNATURE_SCHEME.to_owned()),
            ("request-id", random_alnum(24)),
        ];
        for (name, value) in pairs {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        if answer.status != StatusCode::NO_CONTENT {
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
        }
        response
    }

    fn native(&self, body: &[u8]) -> Answer {
        #[derive(Deserialize)]
        struct Amount {
            total: i64,
        }
        #[derive(Deserialize)]
        struct Prepay {
            appid: String,
            mchid: String,
            description: String,
            out_trade_no: String,
            time_expire: Option<String>,
            notify_url: String,
            amount: Amount,
        }
        let Ok(request) = serde_json::from_slice::<Prepay>(body) else {
            return bad_request("PARAM_ERROR", "参数错误");
        };
        if request.mchid != self.config.mch_id || request.appid != self.config.app_id {
            return bad_request("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配");
        }
        let no_ok = (6..=32).contains(&request.out_trade_no.len())
            && request
                .out_trade_no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-*|".contains(&b));
        if !no_ok || request.amount.total < 1 || !request.notify_url.starts_with("http") {
            return bad_request("PARAM_ERROR", "参数错误");
        }
        let fingerprint = format!(
            "{}|{}|{}|{}",
            request.description,
            request.amount.total,
            request.notify_url,
            request.time_expire.as_deref().unwrap_or("")
        );
        let mut ledger = lock(&self.ledger);
        if let Some(trade) = ledger.get(&request.out_trade_no) {
            return match trade.status {
                SimTradeStatus::Paid => error(StatusCode::FORBIDDEN, "ORDERPAID", "订单已支付"),
                SimTradeStatus::Closed => bad_request("ORDER_CLOSED", "订单已关闭"),
                _ if trade.fingerprint != fingerprint => {
                    bad_request("INVALID_REQUEST", "订单号重复且参数与首次请求不一致")
                }
                _ => ok(json!({ "code_url": trade.code_url })),
            };
        }
        let code_url = format!("weixin://wxpay/bizpayurl?pr={}", random_alnum(9));
        let trade = SimTrade {
            out_trade_no: request.out_trade_no,
            gateway_trade_no: None,
            subject: request.description,
            amount_fen: request.amount.total,
            status: SimTradeStatus::Created,
            code_url: code_url.clone(),
            notify_url: Some(request.notify_url),
            buyer_id: None,
            created_at: self.clock.now(),
            paid_at: None,
            closed_at: None,
            business_date: None,
            refunds: Vec::new(),
            fingerprint,
        };
        if !ledger.insert(trade) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SYSTEM_ERROR",
                "模拟器交易数已满",
            );
        }
        ok(json!({ "code_url": code_url }))
    }

    fn query(&self, out_trade_no: &str, query: &str) -> Answer {
        let mchid_ok = form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name == "mchid" && value == self.config.mch_id.as_str());
        if !mchid_ok {
            return bad_request("PARAM_ERROR", "mchid 参数错误");
        }
        let ledger = lock(&self.ledger);
        match ledger.get(out_trade_no) {
            Some(trade) => ok(self.transaction_json(trade)),
            None => error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"),
        }
    }

    /// The Transaction object of query answers and payment notifications.
    pub(super) fn transaction_json(&self, trade: &SimTrade) -> Value {
        let (state, desc) = match trade.status {
            SimTradeStatus::Paid if !trade.refunds.is_empty() => ("REFUND", "转入退款"),
            SimTradeStatus::Paid => ("SUCCESS", "支付成功"),
            SimTradeStatus::Closed => ("CLOSED", "已关闭"),
            _ => ("NOTPAY", "订单未支付"),
        };
        let mut value = json!({
            "appid": self.config.app_id,
            "mchid": self.config.mch_id,
            "out_trade_no": trade.out_trade_no,
            "trade_type": "NATIVE",
            "trade_state": state,
            "trade_state_desc": desc,
            "attach": "",
            "amount": { "total": trade.amount_fen, "currency": "CNY", "payer_currency": "CNY" },
        });
        if let (Some(paid_at), Value::Object(map)) = (trade.paid_at, &mut value) {
            map.insert("transaction_id".to_owned(), json!(trade.gateway_trade_no));
            map.insert("bank_type".to_owned(), json!("OTHERS"));
            map.insert("success_time".to_owned(), json!(rfc3339(paid_at)));
            map.insert("payer".to_owned(), json!({ "openid": trade.buyer_id }));
            map.insert(
                "amount".to_owned(),
                json!({ "total": trade.amount_fen, "payer_total": trade.amount_fen,
                        "currency": "CNY", "payer_currency": "CNY" }),
            );
        }
        value
    }

    fn close(&self, out_trade_no: &str, body: &[u8]) -> Answer {
        let mchid = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("mchid").and_then(Value::as_str).map(str::to_owned));
        if mchid.as_deref() != Some(self.config.mch_id.as_str()) {
            return bad_request("PARAM_ERROR", "mchid 参数错误");
        }
        let mut ledger = lock(&self.ledger);
        let Some(trade) = ledger.get_mut(out_trade_no) else {
            return error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
        };
        if trade.status == SimTradeStatus::Paid {
            return error(StatusCode::FORBIDDEN, "ORDERPAID", "订单已支付");
        }
        if trade.status != SimTradeStatus::Closed {
            trade.status = SimTradeStatus::Closed;
            trade.closed_at = Some(self.clock.now());
        }
        Answer {
            status: StatusCode::NO_CONTENT,
            body: None,
        }
    }

    fn refund(&self, body: &[u8], faults: &RefundFaults) -> Answer {
        #[derive(Deserialize)]
        struct Amount {
            refund: i64,
            total: i64,
        }
        #[derive(Deserialize)]
        struct RefundRequest {
            out_trade_no: String,
            out_refund_no: String,
            #[serde(default)]
            reason: String,
            notify_url: Option<String>,
            amount: Amount,
        }
        let Ok(request) = serde_json::from_slice::<RefundRequest>(body) else {
            return bad_request("PARAM_ERROR", "参数错误");
        };
        if let Some(status) = &faults.status {
            return self.odd_refund(
                &request.out_trade_no,
                &request.out_refund_no,
                request.amount.refund,
                status,
            );
        }
        let (answer, notify) = {
            let mut ledger = lock(&self.ledger);
            let Some(trade) = ledger.get_mut(&request.out_trade_no) else {
                return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
            };
            if trade.status != SimTradeStatus::Paid {
                return bad_request("INVALID_REQUEST", "订单未支付");
            }
            if request.amount.total != trade.amount_fen {
                return bad_request("INVALID_REQUEST", "订单金额与原订单不一致");
            }
            let fresh = match trade.refund(&request.out_refund_no) {
                Some(r) if r.amount_fen == request.amount.refund => false,
                Some(_) => return bad_request("INVALID_REQUEST", "请使用与原退款相同的参数"),
                None if request.amount.refund < 1 => {
                    return bad_request("PARAM_ERROR", "退款金额错误");
                }
                None if trade.refunded_fen() + request.amount.refund > trade.amount_fen => {
                    return bad_request("INVALID_REQUEST", "申请退款金额超过订单可退金额");
                }
                None if trade.refunds.len() >= REFUNDS_PER_TRADE_MAX => {
                    return bad_request("INVALID_REQUEST", "退款次数超过限制");
                }
                None => true,
            };
            if fresh {
                let now = self.clock.now();
                let day = now.with_timezone(&BEIJING).format("%Y%m%d");
                trade.refunds.push(SimRefund {
                    out_refund_no: request.out_refund_no.clone(),
                    refund_id: format!("503{day}{}", random_digits(18)),
                    amount_fen: request.amount.refund,
                    reason: request.reason,
                    requested_at: now,
                    completed_at: now,
                    business_date: beijing_date(now),
                });
                lock(&self.refund_index)
                    .insert(request.out_refund_no.clone(), trade.out_trade_no.clone());
            }
            let answer = self.refund_json(trade, &request.out_refund_no);
            (answer, fresh.then(|| trade.clone()))
        };
        if let Some(trade) = notify {
            let url = request.notify_url.or_else(|| trade.notify_url.clone());
            if let Some(notification) =
                self.refund_notification(&trade, &request.out_refund_no, url)
            {
                self.deliverer.dispatch(notification);
            }
        }
        if faults.refused_but_paid {
            return bad_request("INVALID_REQUEST", "退款请求失败");
        }
        if faults.garbled {
            let mut answer = answer;
            if let Some(fields) = answer.as_object_mut()
                && let Some(status) = fields.remove("status")
            {
                fields.insert("refund_status".to_owned(), status);
            }
            return ok(answer);
        }
        ok(answer)
    }

    /// A refund that ends `status` (`CLOSED`, `ABNORMAL`) without moving money; remembered
    /// so the refund query answers the same.
    fn odd_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        refund_fen: i64,
        status: &str,
    ) -> Answer {
        let ledger = lock(&self.ledger);
        let Some(trade) = ledger
            .get(out_trade_no)
            .filter(|t| t.status == SimTradeStatus::Paid)
        else {
            return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
        };
        let now = self.clock.now();
        let day = now.with_timezone(&BEIJING).format("%Y%m%d");
        let answer = json!({
            "refund_id": format!("503{day}{}", random_digits(18)),
            "out_refund_no": out_refund_no,
            "transaction_id": trade.gateway_trade_no,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": rfc3339(now),
            "status": status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": trade.amount_fen, "refund": refund_fen,
                "payer_total": trade.amount_fen, "payer_refund": refund_fen,
                "settlement_total": trade.amount_fen, "settlement_refund": refund_fen,
                "discount_refund": 0, "currency": "CNY", "from": [],
            },
        });
        lock(&self.odd_refunds).insert(out_refund_no.to_owned(), answer.clone());
        ok(answer)
    }

    fn refund_json(&self, trade: &SimTrade, out_refund_no: &str) -> Value {
        let Some(refund) = trade.refund(out_refund_no) else {
            return json!({});
        };
        json!({
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": trade.gateway_trade_no,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "success_time": rfc3339(refund.completed_at),
            "create_time": rfc3339(refund.requested_at),
            "status": "SUCCESS",
            "funds_account": "AVAILABLE",
            "amount": {
                "total": trade.amount_fen, "refund": refund.amount_fen,
                "payer_total": trade.amount_fen, "payer_refund": refund.amount_fen,
                "settlement_total": trade.amount_fen, "settlement_refund": refund.amount_fen,
                "discount_refund": 0, "currency": "CNY", "from": [],
            },
        })
    }

    fn refund_query(&self, out_refund_no: &str) -> Answer {
        if let Some(answer) = lock(&self.odd_refunds).get(out_refund_no) {
            return ok(answer.clone());
        }
        let out_trade_no = lock(&self.refund_index).get(out_refund_no).cloned();
        let ledger = lock(&self.ledger);
        match out_trade_no.and_then(|no| ledger.get(&no)) {
            Some(trade) => ok(self.refund_json(trade, out_refund_no)),
            None => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
        }
    }

    fn trade_bill(&self, query: &str) -> Answer {
        let mut day = None;
        let mut gzip = false;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match (name.as_ref(), value.as_ref()) {
                ("bill_date", date) => day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok(),
                ("bill_type", "ALL") => {}
                ("bill_type", _) => return bad_request("PARAM_ERROR", "模拟器只支持 ALL 账单"),
                ("tar_type", "GZIP") => gzip = true,
                _ => return bad_request("PARAM_ERROR", "参数错误"),
            }
        }
        let Some(day) = day else {
            return bad_request("PARAM_ERROR", "bill_date 参数错误");
        };
        let now = self.clock.now();
        if day >= beijing_date(now) {
            return bad_request("STATEMENT_CREATING", "账单生成中");
        }
        let file = {
            let ledger = lock(&self.ledger);
            let (payments, refunds) = ledger.day(day);
            if payments.is_empty() && refunds.is_empty() {
                return bad_request("NO_STATEMENT_EXIST", "请求的账单文件不存在");
            }
            let bill = BillDay {
                app_id: &self.config.app_id,
                mch_id: &self.config.mch_id,
                payments: &payments,
                refunds: &refunds,
            };
            bill.text().into_bytes()
        };
        let hash_value = hex::encode(sha1::Sha1::digest(&file));
        let body = if gzip {
            match super::bill::gzip(&file) {
                Ok(body) => body,
                Err(_) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "SYSTEM_ERROR",
                        "系统错误",
                    );
                }
            }
        } else {
            file
        };
        let token = random_alnum(32);
        let mut bills = lock(&self.bills);
        bills.retain(|_, bill| bill.issued_at.elapsed().as_secs() < BILL_URL_TTL_SECS);
        if bills.len() >= BILL_URLS_MAX {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "FREQUENCY_LIMITED",
                "频率超限",
            );
        }
        bills.insert(
            token.clone(),
            IssuedBill {
                body,
                issued_at: Instant::now(),
            },
        );
        ok(json!({
            "hash_type": "SHA1",
            "hash_value": hash_value,
            "download_url": format!("{}/v3/billdownload/file?token={token}", self.base_url),
        }))
    }

    /// The bill file: authenticated like any request, but answered without signature headers.
    fn bill_file(&self, query: &str) -> Response {
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let bills = lock(&self.bills);
        match bills.get(&token) {
            Some(bill) if bill.issued_at.elapsed().as_secs() < BILL_URL_TTL_SECS => (
                [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
                bill.body.clone(),
            )
                .into_response(),
            _ => self.signed(error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_EXISTS",
                "账单下载地址无效或已过期",
            )),
        }
    }
}
