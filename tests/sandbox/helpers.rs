//! Fixture keys and a tiny axum webhook receiver that verifies what it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;
use water_billing::gateway::keys::{PrivateKey, PublicKey};

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/gateway/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn merchant_key() -> PrivateKey {
    PrivateKey::parse(&fixture("merchant_pkcs8.pem")).unwrap()
}

pub fn merchant_public_key() -> PublicKey {
    PublicKey::parse(&fixture("merchant_spki.pem")).unwrap()
}

/// The simulators' gateway key, loaded instead of generated to keep debug tests fast.
pub fn gateway_key_pem() -> String {
    fixture("gateway_pkcs8.pem")
}

/// A key the simulators do not know.
pub fn stranger_key() -> PrivateKey {
    PrivateKey::parse(&fixture("platform_pkcs8.pem")).unwrap()
}

/// One request the receiver got, with the outcome of its verification.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub verified: bool,
}

type Verify = Arc<dyn Fn(&[(String, String)], &[u8]) -> bool + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    verify: Verify,
    fail_first: Arc<AtomicU32>,
    sender: mpsc::UnboundedSender<Received>,
}

/// A webhook endpoint on loopback: verifies each request with `verify`, acknowledges
/// (200 `success`, good for both gateways) when it verifies, answers 500 `fail` otherwise
/// or while `fail_first` is not yet used up.
pub struct Receiver {
    pub url: String,
    pub received: mpsc::UnboundedReceiver<Received>,
    fail_first: Arc<AtomicU32>,
}

impl Receiver {
    pub async fn start(verify: Verify) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let (sender, received) = mpsc::unbounded_channel();
        let fail_first = Arc::new(AtomicU32::new(0));
        let state = ReceiverState {
            verify,
            fail_first: Arc::clone(&fail_first),
            sender,
        };
        let app = Router::new()
            .route("/notify", post(receive))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            fail_first,
        }
    }

    pub fn fail_first(&self, attempts: u32) {
        self.fail_first.store(attempts, Ordering::SeqCst);
    }

    /// The next request, or `None` after `ms` milliseconds.
    pub async fn next_within(&mut self, ms: u64) -> Option<Received> {
        tokio::time::timeout(Duration::from_millis(ms), self.received.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn next(&mut self) -> Received {
        self.next_within(5_000)
            .await
            .expect("a notification within 5 s")
    }
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let verified = (state.verify)(&pairs, &body);
    let failing = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let _ = state.sender.send(Received {
        headers: pairs,
        body: body.to_vec(),
        verified,
    });
    if verified && !failing {
        (StatusCode::OK, "success").into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "fail").into_response()
    }
}

/// Polls `condition` every 20 ms for up to 5 s.
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..250 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within 5 s");
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from(std::time::SystemTime::now())
}
