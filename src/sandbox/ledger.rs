//! What a simulator remembers: every trade with its refunds, each stamped with the Beijing
//! business date a statement (and later the reconciliation job) files it under.
//!
//! Bounded: at most `trades_max` trades; creating one more is refused, never evicts.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

/// Default bound on stored trades per simulator.
pub const TRADES_MAX_DEFAULT: usize = 1_000_000;
/// Refunds allowed per trade (WeChat documents 50 partial refunds per order).
pub const REFUNDS_PER_TRADE_MAX: usize = 50;

/// Where a trade is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimTradeStatus {
    /// The QR code / code_url exists; nobody scanned it (Alipay: the trade does not exist yet;
    /// WeChat: `NOTPAY`).
    Created,
    /// Alipay only: scanned, awaiting payment (`WAIT_BUYER_PAY`).
    WaitBuyerPay,
    Paid,
    /// Closed before payment. Alipay also locks an unscanned order whose close was attempted.
    Closed,
}

impl SimTradeStatus {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::WaitBuyerPay => "waiting for the buyer",
            Self::Paid => "paid",
            Self::Closed => "closed",
        }
    }
}

/// One refund of a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRefund {
    /// Alipay `out_request_no` / WeChat `out_refund_no`.
    pub out_refund_no: String,
    /// WeChat `refund_id`; for Alipay the trade number (refund rows reuse it).
    pub refund_id: String,
    pub amount_fen: i64,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    /// The simulators complete refunds synchronously.
    pub completed_at: DateTime<Utc>,
    /// Beijing date of the statement the refund row is on (Alipay: completion day; WeChat:
    /// request day; the same here because refunds complete at once).
    pub business_date: NaiveDate,
}

/// One order as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTrade {
    pub out_trade_no: String,
    /// Alipay `trade_no` (28 digits) / WeChat `transaction_id`, assigned on scan or payment.
    pub gateway_trade_no: Option<String>,
    /// Alipay `subject` / WeChat `description`.
    pub subject: String,
    pub amount_fen: i64,
    pub status: SimTradeStatus,
    /// The QR code content (Alipay) or `code_url` (WeChat).
    pub code_url: String,
    pub notify_url: Option<String>,
    /// Alipay `buyer_id` / WeChat `openid`, set on payment.
    pub buyer_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Beijing date of the payment: the statement day of the payment row.
    pub business_date: Option<NaiveDate>,
    pub refunds: Vec<SimRefund>,
    /// The create-request parameters that must match on a repeated create.
    pub(crate) fingerprint: String,
}

impl SimTrade {
    pub fn refunded_fen(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount_fen).sum()
    }

    pub fn refund(&self, out_refund_no: &str) -> Option<&SimRefund> {
        self.refunds
            .iter()
            .find(|r| r.out_refund_no == out_refund_no)
    }
}

/// Trades by `out_trade_no`, iterated in creation order.
#[derive(Debug)]
pub struct Ledger {
    trades: HashMap<String, SimTrade>,
    order: Vec<String>,
    trades_max: usize,
}

impl Ledger {
    pub fn new(trades_max: usize) -> Self {
        Self {
            trades: HashMap::new(),
            order: Vec::new(),
            trades_max,
        }
    }

    pub fn get(&self, out_trade_no: &str) -> Option<&SimTrade> {
        self.trades.get(out_trade_no)
    }

    pub fn get_mut(&mut self, out_trade_no: &str) -> Option<&mut SimTrade> {
        self.trades.get_mut(out_trade_no)
    }

    /// Adds a new trade; `false` when the ledger is full.
    pub fn insert(&mut self, trade: SimTrade) -> bool {
        if self.trades.len() >= self.trades_max {
            return false;
        }
        self.order.push(trade.out_trade_no.clone());
        self.trades.insert(trade.out_trade_no.clone(), trade);
        true
    }

    /// All trades, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &SimTrade> {
        self.order.iter().filter_map(|no| self.trades.get(no))
    }

    /// Trades paid on `day` (Beijing) and refunds filed on `day`, in creation order.
    pub fn day(&self, day: NaiveDate) -> (Vec<&SimTrade>, Vec<(&SimTrade, &SimRefund)>) {
        let payments = self
            .iter()
            .filter(|t| t.business_date == Some(day))
            .collect();
        let refunds = self
            .iter()
            .flat_map(|t| t.refunds.iter().map(move |r| (t, r)))
            .filter(|(_, r)| r.business_date == day)
            .collect();
        (payments, refunds)
    }
}
