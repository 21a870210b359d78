//! What both simulators share around their protocol code: the loopback listener and its
//! shutdown, the gateway key pair, the simulator clock, random identifiers, and the
//! `/sandbox/faults` control routes.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::SandboxError;
use super::delivery::{Deliverer, lock};
use super::faults::Faults;
use crate::gateway::keys::{PrivateKey, PublicKey, RSA_BITS_MIN};

/// Bound on a request body to a simulator; real API requests are a few KiB.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// A running simulator's server; dropping it stops the server.
#[derive(Debug)]
pub struct ServerGuard {
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; nothing to do then.
            let _ = shutdown.send(());
        }
    }
}

/// Binds `127.0.0.1:0` and returns the listener with its `http://127.0.0.1:PORT` base URL.
pub(crate) async fn bind() -> Result<(TcpListener, String), SandboxError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| SandboxError::Bind(e.to_string()))?;
    let address = listener
        .local_addr()
        .map_err(|e| SandboxError::Bind(e.to_string()))?;
    Ok((listener, format!("http://{address}")))
}

/// Serves `router` on `listener` until the returned guard is dropped.
pub(crate) fn spawn(listener: TcpListener, router: Router) -> ServerGuard {
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                // Fires on send and when the guard is dropped without sending.
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "simulator server stopped with an error");
        }
    });
    ServerGuard {
        shutdown: Some(shutdown),
    }
}

/// The gateway's own key pair: signs answers and notifications.
#[derive(Debug, Clone)]
pub struct GatewayKeys {
    pub private: PrivateKey,
    pub public: PublicKey,
}

/// Loads the key from PEM (PKCS#8 or PKCS#1), or generates a fresh 2048-bit key (slow in
/// debug builds: tests should pass the fixture key).
pub fn gateway_keys(pem: Option<&str>) -> Result<GatewayKeys, SandboxError> {
    let generation = |e: &dyn std::fmt::Display| SandboxError::KeyGeneration(e.to_string());
    let rsa_key = match pem {
        Some(pem) => RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| generation(&e))?,
        None => {
            RsaPrivateKey::new(&mut rand::thread_rng(), RSA_BITS_MIN).map_err(|e| generation(&e))?
        }
    };
    let private_pem = rsa_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| generation(&e))?;
    let public_pem = RsaPublicKey::from(&rsa_key)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| generation(&e))?;
    Ok(GatewayKeys {
        private: PrivateKey::parse(&private_pem)?,
        public: PublicKey::parse(&public_pem)?,
    })
}

/// The simulator's business clock: real time plus an offset a test can set, so trades can
/// be placed on past days for statements. Request timestamp checks use real time.
#[derive(Debug, Default)]
pub struct SimClock {
    offset: Mutex<Duration>,
}

impl SimClock {
    pub fn now(&self) -> DateTime<Utc> {
        real_now() + *lock(&self.offset)
    }

    pub fn set_offset(&self, offset: Duration) {
        *lock(&self.offset) = offset;
    }
}

/// The real wall clock (chrono's `clock` feature is not enabled in this crate).
pub fn real_now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

pub(crate) fn random_digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

pub(crate) fn random_alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `GET /sandbox/faults` (current knobs) and `POST /sandbox/faults` (replace them).
pub(crate) fn fault_routes(deliverer: Arc<Deliverer>) -> Router {
    Router::new()
        .route("/sandbox/faults", get(get_faults).post(set_faults))
        .with_state(deliverer)
}

async fn get_faults(State(deliverer): State<Arc<Deliverer>>) -> Json<Faults> {
    Json(deliverer.faults())
}

async fn set_faults(
    State(deliverer): State<Arc<Deliverer>>,
    Json(faults): Json<Faults>,
) -> Json<Faults> {
    deliverer.set_faults(faults);
    Json(deliverer.faults())
}
