//! Loopback gateway simulators that speak the real Alipay and WeChat Pay protocols, for
//! tests and local runs: no mocks of our own interfaces, real signatures both ways.
//!
//! Each simulator is an axum app on a `127.0.0.1:0` listener with its own gateway RSA key.
//! It verifies the merchant's request signatures (and rejects bad ones the way the real
//! gateway does), keeps a bounded ledger of trades and refunds with their Beijing business
//! dates, signs every answer, delivers signed notifications to the order's `notify_url` with
//! bounded retries, serves the daily statement in the gateway's exact file layout, and lets a
//! test inject notification faults at any time.
//!
//! - [`ledger`]: the recorded trades and refunds ([`ledger::SimTrade`]), shared by both.
//! - [`faults`]: the fault-injection knobs ([`faults::Faults`]).
//! - [`delivery`]: notification delivery with retries and the delivery-time faults.
//! - [`server`]: binding, serving and stopping; gateway key loading; the simulator clock.
//! - [`alipay`]: [`alipay::AlipaySimulator`], `POST /gateway.do` and the bill zip.
//! - [`wechat`]: [`wechat::WechatSimulator`], the v3 REST API and the trade bill.
//!
//! Both simulators also serve `POST /sandbox/pay` (`{"out_trade_no": "..."}`: the customer
//! pays) and `GET`/`POST /sandbox/faults` (read or replace the fault knobs). These control
//! routes are unauthenticated: the simulators only ever listen on loopback.

pub mod alipay;
pub mod delivery;
pub mod faults;
pub mod ledger;
pub mod server;
pub mod wechat;

use crate::gateway::keys::KeyError;

/// Why a simulator could not start or a control call could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("binding the loopback listener: {0}")]
    Bind(String),
    #[error("gateway key: {0}")]
    Key(#[from] KeyError),
    #[error("gateway key generation or encoding failed: {0}")]
    KeyGeneration(String),
    #[error("no trade `{0}`")]
    UnknownTrade(String),
    #[error("trade `{out_trade_no}` cannot be paid: it is {state}")]
    NotPayable {
        out_trade_no: String,
        state: &'static str,
    },
}
