//! [`WechatSimulator`]: a loopback WeChat Pay API v3 server (Native payments).
//!
//! Every `/v3/...` request must carry a valid merchant `Authorization` header (SHA256withRSA
//! over `METHOD\nURL\nTS\nNONCE\nBODY\n`, timestamp within 5 minutes) and a `User-Agent`;
//! otherwise 401 `SIGN_ERROR` / 400 `INVALID_REQUEST`, as WeChat answers. Every answer except
//! the bill file carries `Wechatpay-Timestamp/-Nonce/-Signature/-Serial` headers signed with
//! the simulator key, whose id is the configured `PUB_KEY_ID_...`. Payments and refunds send
//! JSON notifications with an AES-256-GCM encrypted resource (APIv3 key) and signed headers.
//! Refunds complete synchronously (`SUCCESS`), unlike the real gateway's `PROCESSING` first.

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
    random_alnum, random_digits, spawn,
};
use crate::gateway::beijing::{BEIJING, beijing_date};
use crate::gateway::keys::{ApiV3Key, PublicKey};

/// How the simulated gateway knows the merchant.
#[derive(Debug, Clone)]
pub struct WechatSimConfig {
    pub mch_id: String,
    pub app_id: String,
    /// Verifies the merchant's `Authorization` signatures.
    pub merchant_public_key: PublicKey,
    /// When set, `serial_no` in `Authorization` must equal it.
    pub merchant_serial_no: Option<String>,
    pub api_v3_key: ApiV3Key,
    /// The id the simulator signs under (`Wechatpay-Serial`), `PUB_KEY_ID_...`.
    pub public_key_id: String,
    /// The gateway's private key (PKCS#8 or PKCS#1 PEM); `None` generates a 2048-bit key.
    pub gateway_key_pem: Option<String>,
    pub delivery: DeliveryPolicy,
    pub trades_max: usize,
}

impl WechatSimConfig {
    pub fn new(
        mch_id: &str,
        app_id: &str,
        merchant_public_key: PublicKey,
        api_v3_key: ApiV3Key,
    ) -> Self {
        Self {
            mch_id: mch_id.to_owned(),
            app_id: app_id.to_owned(),
            merchant_public_key,
            merchant_serial_no: None,
            api_v3_key,
            public_key_id: "PUB_KEY_ID_0000000000000024101100397200000006".to_owned(),
            gateway_key_pem: None,
            delivery: DeliveryPolicy::default(),
            trades_max: TRADES_MAX_DEFAULT,
        }
    }
}

/// Download URLs live 5 minutes (current merchant docs).
const BILL_URL_TTL_SECS: u64 = 300;
const BILL_URLS_MAX: usize = 64;

struct IssuedBill {
    body: Vec<u8>,
    issued_at: Instant,
}

struct Inner {
    config: WechatSimConfig,
    keys: GatewayKeys,
    deliverer: Arc<Deliverer>,
    clock: SimClock,
    base_url: String,
    ledger: Mutex<Ledger>,
    /// `out_refund_no` → `out_trade_no`.
    refund_index: Mutex<HashMap<String, String>>,
    /// Refunds a fault ended `CLOSED` or `ABNORMAL` (no money moved), by `out_refund_no`:
    /// the refund query answers them as they are.
    odd_refunds: Mutex<HashMap<String, serde_json::Value>>,
    bills: Mutex<HashMap<String, IssuedBill>>,
}

/// A running simulator; dropping it stops the server.
pub struct WechatSimulator {
    inner: Arc<Inner>,
    _server: ServerGuard,
}

impl WechatSimulator {
    /// Binds `127.0.0.1:0` and serves. Returns the handle and the base URL
    /// (`http://127.0.0.1:PORT`, the merchant's `base_url`).
    pub async fn start(config: WechatSimConfig) -> Result<(Self, String), SandboxError> {
        let keys = gateway_keys(config.gateway_key_pem.as_deref())?;
        let (listener, base_url) = bind().await?;
        let inner = Arc::new(Inner {
            deliverer: Arc::new(Deliverer::new(config.delivery)),
            ledger: Mutex::new(Ledger::new(config.trades_max)),
            config,
            keys,
            clock: SimClock::default(),
            base_url: base_url.clone(),
            refund_index: Mutex::new(HashMap::new()),
            odd_refunds: Mutex::new(HashMap::new()),
            bills: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/sandbox/pay", post(pay_route))
            .fallback(api::v3)
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

    /// The WeChat Pay public key the merchant verifies with, under [`Self::public_key_id`].
    pub fn wechat_public_key(&self) -> PublicKey {
        self.inner.keys.public.clone()
    }

    pub fn public_key_id(&self) -> &str {
        &self.inner.config.public_key_id
    }

    /// The customer pays; sends the `TRADE_SUCCESS` notification. Returns `transaction_id`.
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
    fn pay(&self, out_trade_no: &str) -> Result<String, SandboxError> {
        let paid = {
            let mut ledger = lock(&self.ledger);
            let trade = ledger
                .get_mut(out_trade_no)
                .ok_or_else(|| SandboxError::UnknownTrade(out_trade_no.to_owned()))?;
            if trade.status != SimTradeStatus::Created {
                return Err(SandboxError::NotPayable {
                    out_trade_no: out_trade_no.to_owned(),
                    state: trade.status.describe(),
                });
            }
            let now = self.clock.now();
            let day = now.with_timezone(&BEIJING).format("%Y%m%d");
            trade.gateway_trade_no = Some(format!("4200{day}{}", random_digits(16)));
            trade.buyer_id = Some(format!("o{}", random_alnum(27)));
            trade.status = SimTradeStatus::Paid;
            trade.paid_at = Some(now);
            trade.business_date = Some(beijing_date(now));
            trade.clone()
        };
        if let Some(notification) = self.transaction_notification(&paid) {
            self.deliverer.dispatch(notification);
        }
        Ok(paid.gateway_trade_no.unwrap_or_default())
    }
}

#[derive(Deserialize)]
struct PayRequest {
    out_trade_no: String,
}

/// `POST /sandbox/pay {"out_trade_no": "..."}`.
async fn pay_route(State(inner): State<Arc<Inner>>, Json(request): Json<PayRequest>) -> Response {
    match inner.pay(&request.out_trade_no) {
        Ok(transaction_id) => Json(json!({ "transaction_id": transaction_id })).into_response(),
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
