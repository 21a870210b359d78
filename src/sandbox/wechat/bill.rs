//! The WeChat `ALL` trade bill (protocol notes B6.3): UTF-8 text, a 27-column detail header,
//! one row per payment (on its payment day, `SUCCESS`) and per refund (on its request day,
//! `REFUND`), every value prefixed by a backtick, then the 7-column summary header and row.
//! Lines end with `\n` (unconfirmed in the sources; parsers should accept `\r\n` too).
//!
//! Fees use a fixed 0.60% rate, which in units of 0.00001 yuan is exactly `fen * 6`, so the
//! 5-decimal fee column needs no rounding; refund rows return the fee (negative).

use std::io::Write as _;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::gateway::amount::fen_to_yuan;
use crate::gateway::beijing::BEIJING;
use crate::sandbox::ledger::{SimRefund, SimTrade};

pub const DETAIL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
pub const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";
pub const FEE_RATE: &str = "0.60%";
/// Fee in 0.00001 yuan per fen at 0.60%: 1 fen = 1000 units, 0.6% of that = 6.
const FEE_UNITS_PER_FEN: i64 = 6;
const FEE_UNITS_PER_YUAN: u64 = 100_000;
const ZERO: &str = "0.00";

/// The day's trades as the bill sees them.
pub struct BillDay<'a> {
    pub app_id: &'a str,
    pub mch_id: &'a str,
    pub payments: &'a [&'a SimTrade],
    pub refunds: &'a [(&'a SimTrade, &'a SimRefund)],
}

/// `0.21480`, `-0.06000`: a fee in 0.00001 yuan units with 5 decimals.
pub fn fee_text(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    format!(
        "{sign}{}.{:05}",
        abs / FEE_UNITS_PER_YUAN,
        abs % FEE_UNITS_PER_YUAN
    )
}

fn bill_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&BEIJING)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn backticked(fields: &[String]) -> String {
    fields
        .iter()
        .map(|field| format!("`{field}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl BillDay<'_> {
    fn common(&self, trade: &SimTrade, at: DateTime<Utc>, state: &str) -> Vec<String> {
        vec![
            bill_time(at),
            self.app_id.to_owned(),
            self.mch_id.to_owned(),
            "0".to_owned(),
            String::new(),
            trade.gateway_trade_no.clone().unwrap_or_default(),
            trade.out_trade_no.clone(),
            trade.buyer_id.clone().unwrap_or_default(),
            "NATIVE".to_owned(),
            state.to_owned(),
            "OTHERS".to_owned(),
            "CNY".to_owned(),
        ]
    }

    fn payment_row(&self, trade: &SimTrade) -> String {
        let amount = fen_to_yuan(trade.amount_fen);
        let mut fields = self.common(trade, trade.paid_at.unwrap_or(trade.created_at), "SUCCESS");
        fields.extend([
            amount.clone(),
            ZERO.to_owned(),
            "0".to_owned(),
            "0".to_owned(),
            ZERO.to_owned(),
            ZERO.to_owned(),
            String::new(),
            String::new(),
            trade.subject.clone(),
            String::new(),
            fee_text(trade.amount_fen * FEE_UNITS_PER_FEN),
            FEE_RATE.to_owned(),
            amount,
            ZERO.to_owned(),
            String::new(),
        ]);
        backticked(&fields)
    }

    fn refund_row(&self, trade: &SimTrade, refund: &SimRefund) -> String {
        let amount = fen_to_yuan(refund.amount_fen);
        let mut fields = self.common(trade, refund.requested_at, "REFUND");
        fields.extend([
            ZERO.to_owned(),
            ZERO.to_owned(),
            refund.refund_id.clone(),
            refund.out_refund_no.clone(),
            amount.clone(),
            ZERO.to_owned(),
            "ORIGINAL".to_owned(),
            "SUCCESS".to_owned(),
            trade.subject.clone(),
            String::new(),
            fee_text(-refund.amount_fen * FEE_UNITS_PER_FEN),
            FEE_RATE.to_owned(),
            ZERO.to_owned(),
            amount,
            String::new(),
        ]);
        backticked(&fields)
    }

    /// The whole file.
    pub fn text(&self) -> String {
        let mut lines = vec![DETAIL_HEADER.to_owned()];
        lines.extend(self.payments.iter().map(|trade| self.payment_row(trade)));
        lines.extend(self.refunds.iter().map(|(t, r)| self.refund_row(t, r)));
        let paid: i64 = self.payments.iter().map(|t| t.amount_fen).sum();
        let refunded: i64 = self.refunds.iter().map(|(_, r)| r.amount_fen).sum();
        let count = self.payments.len() + self.refunds.len();
        lines.push(SUMMARY_HEADER.to_owned());
        lines.push(backticked(&[
            count.to_string(),
            fen_to_yuan(paid),
            fen_to_yuan(refunded),
            ZERO.to_owned(),
            fee_text((paid - refunded) * FEE_UNITS_PER_FEN),
            fen_to_yuan(paid),
            fen_to_yuan(refunded),
        ]));
        lines.join("\n") + "\n"
    }
}

pub fn gzip(file: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(file)?;
    encoder.finish()
}
