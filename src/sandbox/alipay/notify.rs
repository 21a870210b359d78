//! The signed form-urlencoded notifications of the Alipay simulator (protocol notes A2.2):
//! `TRADE_SUCCESS` on payment; on refund `TRADE_SUCCESS` (partial) or `TRADE_CLOSED` (full)
//! with the cumulative `refund_fee`, `gmt_refund` and `out_biz_no`. The signature covers all
//! params except `sign` and `sign_type`, as receivers verify it.

use super::Inner;
use super::api::TIME_FORMAT;
use crate::gateway::alipay::notify::notification_sign_content;
use crate::gateway::alipay::sign::{Params, form_body};
use crate::gateway::amount::fen_to_yuan;
use crate::gateway::beijing::BEIJING;
use crate::sandbox::delivery::{Ack, Notification};
use crate::sandbox::ledger::SimTrade;
use crate::sandbox::server::random_digits;

fn beijing_text(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&BEIJING).format(TIME_FORMAT).to_string()
}

impl Inner {
    pub(super) fn payment_notification(&self, trade: &SimTrade) -> Option<Notification> {
        let params = self.trade_params(trade, "TRADE_SUCCESS");
        self.notification(trade, params, "TRADE_SUCCESS")
    }

    pub(super) fn refund_notification(
        &self,
        trade: &SimTrade,
        out_request_no: &str,
    ) -> Option<Notification> {
        let refund = trade.refund(out_request_no)?;
        let full = trade.refunded_fen() >= trade.amount_fen;
        let status = if full {
            "TRADE_CLOSED"
        } else {
            "TRADE_SUCCESS"
        };
        let mut params = self.trade_params(trade, status);
        let refunded_at = refund
            .completed_at
            .with_timezone(&BEIJING)
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        params.insert("refund_fee".to_owned(), fen_to_yuan(trade.refunded_fen()));
        params.insert("gmt_refund".to_owned(), refunded_at);
        params.insert("out_biz_no".to_owned(), out_request_no.to_owned());
        if full {
            params.insert("gmt_close".to_owned(), beijing_text(refund.completed_at));
        }
        self.notification(trade, params, &format!("REFUND {out_request_no}"))
    }

    fn trade_params(&self, trade: &SimTrade, status: &str) -> Params {
        let now = self.clock.now();
        let amount = fen_to_yuan(trade.amount_fen);
        let paid_at = trade.paid_at.unwrap_or(now);
        let fund_bill_list = format!(r#"[{{"amount":"{amount}","fundChannel":"ALIPAYACCOUNT"}}]"#);
        let fields = [
            ("notify_time", beijing_text(now)),
            ("notify_type", "trade_status_sync".to_owned()),
            (
                "notify_id",
                format!(
                    "{}{}",
                    now.with_timezone(&BEIJING).format("%Y%m%d"),
                    random_digits(26)
                ),
            ),
            ("app_id", self.config.app_id.clone()),
            ("auth_app_id", self.config.app_id.clone()),
            ("charset", "utf-8".to_owned()),
            ("version", "1.0".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            (
                "trade_no",
                trade.gateway_trade_no.clone().unwrap_or_default(),
            ),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("buyer_id", trade.buyer_id.clone().unwrap_or_default()),
            ("buyer_logon_id", "138****0000".to_owned()),
            ("seller_id", self.config.seller_id.clone()),
            ("trade_status", status.to_owned()),
            ("total_amount", amount.clone()),
            ("receipt_amount", amount.clone()),
            ("invoice_amount", amount.clone()),
            ("buyer_pay_amount", amount),
            ("point_amount", "0.00".to_owned()),
            ("subject", trade.subject.clone()),
            ("gmt_create", beijing_text(trade.created_at)),
            ("gmt_payment", beijing_text(paid_at)),
            ("fund_bill_list", fund_bill_list),
        ];
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }

    /// Applies the build-time faults, signs, and wraps the params for delivery.
    fn notification(
        &self,
        trade: &SimTrade,
        mut params: Params,
        label: &str,
    ) -> Option<Notification> {
        let url = trade.notify_url.clone()?;
        let faults = self.deliverer.take_build_faults();
        if faults.wrong_amount {
            params.insert("total_amount".to_owned(), fen_to_yuan(trade.amount_fen + 1));
        }
        let mut content = notification_sign_content(&params);
        if faults.bad_signature {
            content.push_str("&tampered=1");
        }
        let sign = self.keys.private.sign_base64(content.as_bytes()).ok()?;
        params.insert("sign".to_owned(), sign);
        Some(Notification {
            url,
            body: form_body(&params).into_bytes(),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            headers: Vec::new(),
            ack: Ack::AlipaySuccess,
            label: format!("{label} {}", trade.out_trade_no),
        })
    }
}
