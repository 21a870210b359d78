//! `POST /gateway.do`: authentication and the per-method handlers of the Alipay simulator.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse as _, Response};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};

use super::bill::BillDay;
use super::{BILL_URL_TTL_SECS, BILL_URLS_MAX, Inner, IssuedBill};
use crate::gateway::alipay::client::{
    METHOD_BILL_URL, METHOD_CLOSE, METHOD_PRECREATE, METHOD_QUERY, METHOD_REFUND,
    METHOD_REFUND_QUERY,
};
use crate::gateway::alipay::notify::parse_form;
use crate::gateway::alipay::sign::{
    ERROR_RESPONSE_NODE, Params, decode_sign, request_sign_content, response_node_name,
};
use crate::gateway::amount::{fen_to_yuan, yuan_to_fen};
use crate::gateway::beijing::{BEIJING, beijing_date};
use crate::sandbox::delivery::lock;
use crate::sandbox::faults::RefundFaults;
use crate::sandbox::ledger::{REFUNDS_PER_TRADE_MAX, SimRefund, SimTrade, SimTradeStatus};
use crate::sandbox::server::{random_alnum, real_now};

type Node = Map<String, Value>;

const METHODS: [&str; 6] = [
    METHOD_PRECREATE,
    METHOD_QUERY,
    METHOD_CLOSE,
    METHOD_REFUND,
    METHOD_REFUND_QUERY,
    METHOD_BILL_URL,
];
/// Alipay refuses requests whose `timestamp` is far from its clock (`isv.invalid-timestamp`).
const TIMESTAMP_SKEW_MAX_SECS: i64 = 15 * 60;
/// Precreate amount range in fen: [0.01, 100000000] yuan (A3.1).
const AMOUNT_FEN_MAX: i64 = 10_000_000_000;
const OUT_TRADE_NO_LEN_MAX: usize = 64;
pub(super) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

fn success(fields: Value) -> Node {
    let mut node = match fields {
        Value::Object(map) => map,
        _ => Node::new(),
    };
    node.insert("code".to_owned(), json!("10000"));
    node.insert("msg".to_owned(), json!("Success"));
    node
}

fn failure(code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Node {
    let mut node = Node::new();
    node.insert("code".to_owned(), json!(code));
    node.insert("msg".to_owned(), json!(msg));
    node.insert("sub_code".to_owned(), json!(sub_code));
    node.insert("sub_msg".to_owned(), json!(sub_msg));
    node
}

fn business(sub_code: &str, sub_msg: &str) -> Node {
    failure("40004", "Business Failed", sub_code, sub_msg)
}

fn invalid(sub_code: &str, sub_msg: &str) -> Node {
    failure("40002", "Invalid Arguments", sub_code, sub_msg)
}

fn missing(sub_code: &str, sub_msg: &str) -> Node {
    failure("40001", "Missing Required Arguments", sub_code, sub_msg)
}

/// The axum handler: the answer is HTTP 200 with a signed JSON body, like Alipay, except
/// where a refund fault says the gateway is down (503) or slow.
pub(super) async fn gateway(State(inner): State<Arc<Inner>>, uri: Uri, body: Bytes) -> Response {
    let mut faults = RefundFaults::default();
    let (node_name, node) = inner.handle(uri.query().unwrap_or("").as_bytes(), &body, &mut faults);
    if faults.unavailable {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable",
        )
            .into_response();
    }
    if faults.answer_delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.answer_delay_ms)).await;
    }
    let node_json = Value::Object(node).to_string();
    let sign = inner
        .keys
        .private
        .sign_base64(node_json.as_bytes())
        .unwrap_or_default();
    let body = format!("{{\"{node_name}\":{node_json},\"sign\":\"{sign}\"}}");
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json;charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// A signed success a careless gateway release might send: `trade_no` and `fund_change`
/// renamed, `gmt_refund_pay` not a time.
fn garbled(mut node: Node) -> Node {
    for (from, to) in [("trade_no", "tradeNo"), ("fund_change", "fundChange")] {
        if let Some(value) = node.remove(from) {
            node.insert(to.to_owned(), value);
        }
    }
    node.insert("gmt_refund_pay".to_owned(), json!("yesterday afternoon"));
    node
}

fn str_field<'a>(biz: &'a Value, field: &str) -> Option<&'a str> {
    biz.get(field)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

fn beijing_text(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&BEIJING).format(TIME_FORMAT).to_string()
}

impl Inner {
    /// Returns the response node name and the node; `faults` receives the refund faults
    /// this call took (with `unavailable`, nothing was executed).
    fn handle(&self, query: &[u8], body: &[u8], faults: &mut RefundFaults) -> (String, Node) {
        let error_node = || ERROR_RESPONSE_NODE.to_owned();
        let params = match merged_params(query, body) {
            Ok(params) => params,
            Err(reason) => return (error_node(), invalid("isv.invalid-parameter", &reason)),
        };
        let Some(method) = params.get("method").cloned() else {
            return (
                error_node(),
                missing("isv.missing-method", "缺少方法名参数"),
            );
        };
        if !METHODS.contains(&method.as_str()) {
            return (
                error_node(),
                invalid("isv.invalid-method", "不存在的方法名"),
            );
        }
        let node_name = response_node_name(&method);
        if let Err(node) = self.authenticate(&params) {
            return (node_name, node);
        }
        let biz: Value = match params.get("biz_content") {
            None => json!({}),
            Some(text) => match serde_json::from_str(text) {
                Ok(value @ Value::Object(_)) => value,
                _ => {
                    return (
                        node_name,
                        invalid("isv.invalid-parameter", "biz_content 不是 JSON 对象"),
                    );
                }
            },
        };
        if method == METHOD_REFUND || method == METHOD_REFUND_QUERY {
            *faults = self.deliverer.take_refund_faults(method == METHOD_REFUND);
            if faults.unavailable {
                return (node_name, Node::new());
            }
        }
        let node = match method.as_str() {
            METHOD_PRECREATE => self.precreate(&params, &biz),
            METHOD_QUERY => self.query(&biz),
            METHOD_CLOSE => self.close(&biz),
            METHOD_REFUND => self.refund(&biz, faults),
            METHOD_REFUND_QUERY => self.refund_query(&biz),
            _ => self.bill_url(&biz),
        };
        (node_name, node)
    }

    fn authenticate(&self, params: &Params) -> Result<(), Node> {
        if params.get("app_id") != Some(&self.config.app_id) {
            return Err(invalid("isv.invalid-app-id", "无效的AppID参数"));
        }
        if params.get("sign_type").map(String::as_str) != Some("RSA2") {
            return Err(invalid("isv.invalid-signature-type", "无效的签名类型"));
        }
        let Some(sign) = params.get("sign").filter(|s| !s.is_empty()) else {
            return Err(missing("isv.missing-signature", "缺少签名参数"));
        };
        let verified = decode_sign(sign).is_ok_and(|signature| {
            let content = request_sign_content(params);
            self.config
                .merchant_public_key
                .verify(content.as_bytes(), &signature)
        });
        if !verified {
            return Err(invalid("isv.invalid-signature", "验签出错"));
        }
        let timestamp = params
            .get("timestamp")
            .and_then(|t| NaiveDateTime::parse_from_str(t, TIME_FORMAT).ok())
            .and_then(|t| t.and_local_timezone(BEIJING).single());
        let fresh = timestamp.is_some_and(|t| {
            (real_now() - t.to_utc()).num_seconds().abs() <= TIMESTAMP_SKEW_MAX_SECS
        });
        if !fresh {
            return Err(invalid("isv.invalid-timestamp", "非法的时间戳参数"));
        }
        Ok(())
    }

    fn precreate(&self, params: &Params, biz: &Value) -> Node {
        let out_trade_no = match str_field(biz, "out_trade_no") {
            Some(no) if valid_out_trade_no(no) => no,
            _ => return invalid("isv.invalid-parameter", "out_trade_no 不合法"),
        };
        let amount = match str_field(biz, "total_amount").map(yuan_to_fen) {
            Some(Ok(fen)) if (1..=AMOUNT_FEN_MAX).contains(&fen) => fen,
            _ => return invalid("isv.invalid-parameter", "total_amount 不合法"),
        };
        let Some(subject) = str_field(biz, "subject") else {
            return missing("isv.missing-parameter", "缺少 subject");
        };
        let mut ledger = lock(&self.ledger);
        if let Some(trade) = ledger.get(out_trade_no) {
            return match trade.status {
                SimTradeStatus::Paid => business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"),
                SimTradeStatus::Closed => business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"),
                _ if trade.amount_fen != amount || trade.subject != subject => {
                    business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
                }
                _ => success(json!({ "out_trade_no": out_trade_no, "qr_code": trade.code_url })),
            };
        }
        let now = self.clock.now();
        let code_url = format!(
            "https://qr.alipay.com/bax{}",
            random_alnum(20).to_ascii_lowercase()
        );
        let trade = SimTrade {
            out_trade_no: out_trade_no.to_owned(),
            gateway_trade_no: None,
            subject: subject.to_owned(),
            amount_fen: amount,
            status: SimTradeStatus::Created,
            code_url: code_url.clone(),
            notify_url: params.get("notify_url").filter(|u| !u.is_empty()).cloned(),
            buyer_id: None,
            created_at: now,
            paid_at: None,
            closed_at: None,
            business_date: None,
            refunds: Vec::new(),
            fingerprint: String::new(),
        };
        if !ledger.insert(trade) {
            return business("ACQ.SYSTEM_ERROR", "系统错误(模拟器交易数已满)");
        }
        success(json!({ "out_trade_no": out_trade_no, "qr_code": code_url }))
    }

    fn query(&self, biz: &Value) -> Node {
        let ledger = lock(&self.ledger);
        let trade = str_field(biz, "out_trade_no").and_then(|no| ledger.get(no));
        let Some(trade) = trade.filter(|t| t.gateway_trade_no.is_some()) else {
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
        };
        let fully_refunded = trade.refunded_fen() >= trade.amount_fen;
        let status = match trade.status {
            SimTradeStatus::Paid if fully_refunded => "TRADE_CLOSED",
            SimTradeStatus::Paid => "TRADE_SUCCESS",
            SimTradeStatus::Closed => "TRADE_CLOSED",
            _ => "WAIT_BUYER_PAY",
        };
        let mut node = success(json!({
            "trade_no": trade.gateway_trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "138****0000",
            "buyer_user_id": trade.buyer_id,
            "trade_status": status,
            "total_amount": fen_to_yuan(trade.amount_fen),
        }));
        if let Some(paid_at) = trade.paid_at {
            let amount = fen_to_yuan(trade.amount_fen);
            for field in ["buyer_pay_amount", "receipt_amount", "invoice_amount"] {
                node.insert(field.to_owned(), json!(amount));
            }
            node.insert("point_amount".to_owned(), json!("0.00"));
            node.insert("send_pay_date".to_owned(), json!(beijing_text(paid_at)));
            node.insert(
                "fund_bill_list".to_owned(),
                json!([{ "fund_channel": "ALIPAYACCOUNT", "amount": amount }]),
            );
        }
        node
    }

    fn close(&self, biz: &Value) -> Node {
        let mut ledger = lock(&self.ledger);
        let Some(trade) = str_field(biz, "out_trade_no").and_then(|no| ledger.get_mut(no)) else {
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
        };
        let now = self.clock.now();
        match trade.status {
            SimTradeStatus::Created => {
                // Not scanned: Alipay does not know the trade yet, but the attempt locks it.
                trade.status = SimTradeStatus::Closed;
                trade.closed_at = Some(now);
                business("ACQ.TRADE_NOT_EXIST", "交易不存在")
            }
            SimTradeStatus::WaitBuyerPay => {
                trade.status = SimTradeStatus::Closed;
                trade.closed_at = Some(now);
                success(
                    json!({ "trade_no": trade.gateway_trade_no, "out_trade_no": trade.out_trade_no }),
                )
            }
            SimTradeStatus::Paid | SimTradeStatus::Closed => {
                business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            }
        }
    }

    fn refund(&self, biz: &Value, faults: &RefundFaults) -> Node {
        let Some(out_trade_no) = str_field(biz, "out_trade_no") else {
            return missing("isv.missing-parameter", "缺少 out_trade_no");
        };
        let amount = match str_field(biz, "refund_amount").map(yuan_to_fen) {
            Some(Ok(fen)) if fen > 0 => fen,
            _ => return business("ACQ.INVALID_PARAMETER", "refund_amount 不合法"),
        };
        // Without out_request_no Alipay treats the call as the full refund keyed by the order.
        let request_no = str_field(biz, "out_request_no").unwrap_or(out_trade_no);
        let reason = str_field(biz, "refund_reason").unwrap_or("");
        let (node, notify) = {
            let mut ledger = lock(&self.ledger);
            let Some(trade) = ledger.get_mut(out_trade_no) else {
                return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
            };
            match self.apply_refund(trade, amount, request_no, reason) {
                Ok((node, fresh)) => (node, fresh.then(|| trade.clone())),
                Err(node) => return node,
            }
        };
        if let Some(trade) = notify
            && let Some(notification) = self.refund_notification(&trade, request_no)
        {
            self.deliverer.dispatch(notification);
        }
        if faults.refused_but_paid {
            return business("ACQ.REFUND_FEE_ERROR", "退款金额无效");
        }
        if faults.garbled {
            return garbled(node);
        }
        node
    }

    /// Records the refund (or recognises a retry of it); `true` when money moved now.
    fn apply_refund(
        &self,
        trade: &mut SimTrade,
        amount: i64,
        request_no: &str,
        reason: &str,
    ) -> Result<(Node, bool), Node> {
        if trade.status != SimTradeStatus::Paid {
            return Err(business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
        }
        let fresh = match trade.refund(request_no) {
            Some(existing) if existing.amount_fen == amount => false,
            Some(_) => {
                return Err(business(
                    "ACQ.DISCORDANT_REPEAT_REQUEST",
                    "前后请求参数不一致",
                ));
            }
            None if trade.refunded_fen() + amount > trade.amount_fen => {
                return Err(business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"));
            }
            None if trade.refunds.len() >= REFUNDS_PER_TRADE_MAX => {
                return Err(business("ACQ.TRADE_NOT_ALLOW_REFUND", "退款次数超限"));
            }
            None => true,
        };
        let now = self.clock.now();
        if fresh {
            trade.refunds.push(SimRefund {
                out_refund_no: request_no.to_owned(),
                refund_id: trade.gateway_trade_no.clone().unwrap_or_default(),
                amount_fen: amount,
                reason: reason.to_owned(),
                requested_at: now,
                completed_at: now,
                business_date: beijing_date(now),
            });
        }
        let refunded_at = trade.refund(request_no).map_or(now, |r| r.completed_at);
        let node = success(json!({
            "trade_no": trade.gateway_trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "138****0000",
            "buyer_user_id": trade.buyer_id,
            "fund_change": if fresh { "Y" } else { "N" },
            "refund_fee": fen_to_yuan(trade.refunded_fen()),
            "send_back_fee": fen_to_yuan(amount),
            "gmt_refund_pay": beijing_text(refunded_at),
        }));
        Ok((node, fresh))
    }

    fn refund_query(&self, biz: &Value) -> Node {
        let ledger = lock(&self.ledger);
        let trade = str_field(biz, "out_trade_no").and_then(|no| ledger.get(no));
        let Some(trade) = trade.filter(|t| t.gateway_trade_no.is_some()) else {
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
        };
        let Some(request_no) = str_field(biz, "out_request_no") else {
            return missing("isv.missing-parameter", "缺少 out_request_no");
        };
        let mut node = success(json!({
            "trade_no": trade.gateway_trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": request_no,
        }));
        if let Some(refund) = trade.refund(request_no) {
            node.insert(
                "refund_amount".to_owned(),
                json!(fen_to_yuan(refund.amount_fen)),
            );
            node.insert(
                "total_amount".to_owned(),
                json!(fen_to_yuan(trade.amount_fen)),
            );
            node.insert("refund_status".to_owned(), json!("REFUND_SUCCESS"));
            node.insert(
                "gmt_refund_pay".to_owned(),
                json!(beijing_text(refund.completed_at)),
            );
        }
        node
    }

    fn bill_url(&self, biz: &Value) -> Node {
        if str_field(biz, "bill_type") != Some("trade") {
            return invalid("isv.invalid-parameter", "模拟器只支持 bill_type=trade");
        }
        let day =
            str_field(biz, "bill_date").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let now = self.clock.now();
        let Some(day) = day.filter(|day| *day < beijing_date(now)) else {
            // Today's (or a future, or a monthly) bill cannot be requested: 参数不合法.
            return invalid("isv.invalid-parameter", "参数不合法");
        };
        let issued = {
            let ledger = lock(&self.ledger);
            let (payments, refunds) = ledger.day(day);
            if payments.is_empty() && refunds.is_empty() {
                return business("isp.bill_not_exist", "There is no report for the day");
            }
            let bill = BillDay {
                seller_id: &self.config.seller_id,
                day,
                payments: &payments,
                refunds: &refunds,
                exported_at: now,
            };
            bill.zip().map(|zip| IssuedBill {
                zip,
                file_name: format!("{}.csv.zip", bill.file_stem()),
                issued_at: Instant::now(),
            })
        };
        let Ok(issued) = issued else {
            return failure(
                "20000",
                "Service Currently Unavailable",
                "isp.unknow-error",
                "系统繁忙",
            );
        };
        let token = random_alnum(32);
        let url = format!(
            "{}/downloadBillFile.resource?bizType=trade&fileType=csv.zip&bizDates={}&downloadFileName={}&token={token}",
            self.base_url,
            day.format("%Y%m%d"),
            issued.file_name
        );
        let mut bills = lock(&self.bills);
        bills.retain(|_, bill| bill.issued_at.elapsed().as_secs() < BILL_URL_TTL_SECS);
        if bills.len() >= BILL_URLS_MAX {
            return failure(
                "20000",
                "Service Currently Unavailable",
                "isp.unknow-error",
                "系统繁忙",
            );
        }
        bills.insert(token, issued);
        success(json!({ "bill_download_url": url }))
    }
}

/// Query-string and body parameters together; a name in both is refused.
fn merged_params(query: &[u8], body: &[u8]) -> Result<Params, String> {
    let mut params = parse_form(query).map_err(|e| e.to_string())?;
    for (name, value) in parse_form(body).map_err(|e| e.to_string())? {
        if params.insert(name.clone(), value).is_some() {
            return Err(format!("参数 {name} 重复"));
        }
    }
    Ok(params)
}

fn valid_out_trade_no(no: &str) -> bool {
    no.len() <= OUT_TRADE_NO_LEN_MAX && no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
