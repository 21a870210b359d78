//! [`AlipaySimulator`]: a loopback Alipay OpenAPI gateway in public-key mode (RSA2).
//!
//! `POST /gateway.do` takes the parameters from the query string and/or the form body, checks
//! `app_id`, `sign_type`, the request signature (with the merchant's public key) and the
//! Beijing `timestamp`, then dispatches on `method`: precreate, query, close, refund,
//! fastpay.refund.query and the bill download URL. Answers are `{"<node>_response":{...},
//! "sign":"..."}` signed over the raw node text, as Alipay does. Payments and refunds send
//! signed form-urlencoded notifications to the order's `notify_url`.
//!
//! Behaviour worth knowing (protocol notes A3): a precreated order does not exist for
//! query/close until it is scanned ([`AlipaySimulator::scan`], or paid); closing it before
//! the scan answers `ACQ.TRADE_NOT_EXIST` but locks it, so it can no longer be paid.

mod api;
pub mod bill;
mod notify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use super::SandboxError;
use super::delivery::{Deliverer, DeliveryPolicy, DeliveryRecord, lock};
use super::faults::Faults;
use super::ledger::{Ledger, SimTrade, SimTradeStatus, TRADES_MAX_DEFAULT};
use super::server::{
    BODY_BYTES_MAX, GatewayKeys, ServerGuard, SimClock, bind, fault_routes, gateway_keys,
    random_digits, spawn,
};
use crate::gateway::beijing::BEIJING;
use crate::gateway::keys::PublicKey;

/// How the simulated gateway knows the merchant.
#[derive(Debug, Clone)]
pub struct AlipaySimConfig {
    pub app_id: String,
    /// The merchant PID (`2088...`, 16 digits) sent as `seller_id`.
    pub seller_id: String,
    /// Verifies the merchant's request signatures.
    pub merchant_public_key: PublicKey,
    /// The gateway's private key (PKCS#8 or PKCS#1 PEM); `None` generates a 2048-bit key.
    pub gateway_key_pem: Option<String>,
    pub delivery: DeliveryPolicy,
    pub trades_max: usize,
}

impl AlipaySimConfig {
    pub fn new(app_id: &str, seller_id: &str, merchant_public_key: PublicKey) -> Self {
        Self {
            app_id: app_id.to_owned(),
            seller_id: seller_id.to_owned(),
            merchant_public_key,
            gateway_key_pem: None,
            delivery: DeliveryPolicy::default(),
            trades_max: TRADES_MAX_DEFAULT,
        }
    }
}

/// Issued bill files live this long, like Alipay's 30-second download URLs.
const BILL_URL_TTL_SECS: u64 = 30;
/// Bound on issued, unexpired bill URLs.
const BILL_URLS_MAX: usize = 64;

struct IssuedBill {
    zip: Vec<u8>,
    file_name: String,
    issued_at: Instant,
}

struct Inner {
    config: AlipaySimConfig,
    keys: GatewayKeys,
    deliverer: Arc<Deliverer>,
    clock: SimClock,
    base_url: String,
    ledger: Mutex<Ledger>,
    bills: Mutex<HashMap<String, IssuedBill>>,
}

/// A running simulator; dropping it stops the server.
pub struct AlipaySimulator {
    inner: Arc<Inner>,
    _server: ServerGuard,
}

impl AlipaySimulator {
    /// Binds `127.0.0.1:0` and serves. Returns the handle and the base URL
    /// (`http://127.0.0.1:PORT`); the gateway URL is `{base}/gateway.do`.
    pub async fn start(config: AlipaySimConfig) -> Result<(Self, String), SandboxError> {
        let keys = gateway_keys(config.gateway_key_pem.as_deref())?;
        let (listener, base_url) = bind().await?;
        let inner = Arc::new(Inner {
            deliverer: Arc::new(Deliverer::new(config.delivery)),
            ledger: Mutex::new(Ledger::new(config.trades_max)),
            config,
            keys,
            clock: SimClock::default(),
            base_url: base_url.clone(),
            bills: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/gateway.do", post(api::gateway))
            .route(
                "/downloadBillFile.resource",
                axum::routing::get(download_bill),
            )
            .route("/sandbox/pay", post(pay_route))
            .with_state(Arc::clone(&inner))
            .merge(fault_routes(Arc::clone(&inner.deliverer)))
            .layer(DefaultBodyLimit::max(BODY_BYTES_MAX));
        let server = spawn(listener, router);
        Ok((
            Self {
                inner,
                _server: server,
            },
            base_url,
        ))
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `{base}/gateway.do`, the merchant's `gateway_url`.
    pub fn gateway_url(&self) -> String {
        format!("{}/gateway.do", self.inner.base_url)
    }

    /// The "Alipay public key" the merchant verifies answers and notifications with.
    pub fn alipay_public_key(&self) -> PublicKey {
        self.inner.keys.public.clone()
    }

    /// The customer scans the QR code: the trade now exists as `WAIT_BUYER_PAY`.
    pub fn scan(&self, out_trade_no: &str) -> Result<String, SandboxError> {
        self.inner.scan(out_trade_no)
    }

    /// The customer pays (scanning first if needed); sends the `TRADE_SUCCESS` notification.
    /// Returns the 28-digit `trade_no`.
    pub fn pay(&self, out_trade_no: &str) -> Result<String, SandboxError> {
        self.inner.pay(out_trade_no)
    }

    pub fn trades(&self) -> Vec<SimTrade> {
        lock(&self.inner.ledger).iter().cloned().collect()
    }

    pub fn trade(&self, out_trade_no: &str) -> Option<SimTrade> {
        lock(&self.inner.ledger).get(out_trade_no).cloned()
    }

    pub fn faults(&self) -> Faults {
        self.inner.deliverer.faults()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.inner.deliverer.set_faults(faults);
    }

    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.inner.deliverer.records()
    }

    /// Shifts the simulator's business clock (payment, refund and bill times).
    pub fn set_clock_offset(&self, offset: Duration) {
        self.inner.clock.set_offset(offset);
    }
}

impl Inner {
    fn scan(&self, out_trade_no: &str) -> Result<String, SandboxError> {
        let mut ledger = lock(&self.ledger);
        let trade = ledger
            .get_mut(out_trade_no)
            .ok_or_else(|| SandboxError::UnknownTrade(out_trade_no.to_owned()))?;
        match trade.status {
            SimTradeStatus::Created => {
                let now = self.clock.now();
                let trade_no = format!(
                    "{}22001{}",
                    now.with_timezone(&BEIJING).format("%Y%m%d"),
                    random_digits(15)
                );
                trade.gateway_trade_no = Some(trade_no.clone());
                trade.buyer_id = Some(format!("2088{}", random_digits(12)));
                trade.status = SimTradeStatus::WaitBuyerPay;
                Ok(trade_no)
            }
            SimTradeStatus::WaitBuyerPay => Ok(trade.gateway_trade_no.clone().unwrap_or_default()),
            status => Err(SandboxError::NotPayable {
                out_trade_no: out_trade_no.to_owned(),
                state: status.describe(),
            }),
        }
    }

    fn pay(&self, out_trade_no: &str) -> Result<String, SandboxError> {
        let trade_no = self.scan(out_trade_no)?;
        let paid = {
            let mut ledger = lock(&self.ledger);
            let trade = ledger
                .get_mut(out_trade_no)
                .ok_or_else(|| SandboxError::UnknownTrade(out_trade_no.to_owned()))?;
            let now = self.clock.now();
            trade.status = SimTradeStatus::Paid;
            trade.paid_at = Some(now);
            trade.business_date = Some(now.with_timezone(&BEIJING).date_naive());
            trade.clone()
        };
        if let Some(notification) = self.payment_notification(&paid) {
            self.deliverer.dispatch(notification);
        }
        Ok(trade_no)
    }
}

#[derive(Deserialize)]
struct PayRequest {
    out_trade_no: String,
}

/// `POST /sandbox/pay {"out_trade_no": "..."}`.
async fn pay_route(State(inner): State<Arc<Inner>>, Json(request): Json<PayRequest>) -> Response {
    match inner.pay(&request.out_trade_no) {
        Ok(trade_no) => Json(json!({ "trade_no": trade_no })).into_response(),
        Err(e @ SandboxError::UnknownTrade(_)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct DownloadQuery {
    token: String,
}

/// `GET /downloadBillFile.resource?token=...`: the zip, unauthenticated, for 30 seconds.
async fn download_bill(
    State(inner): State<Arc<Inner>>,
    axum::extract::Query(query): axum::extract::Query<DownloadQuery>,
) -> Response {
    let bills = lock(&inner.bills);
    match bills.get(&query.token) {
        Some(bill) if bill.issued_at.elapsed().as_secs() < BILL_URL_TTL_SECS => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/zip".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", bill.file_name),
                ),
            ],
            bill.zip.clone(),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "bill URL unknown or expired").into_response(),
    }
}
