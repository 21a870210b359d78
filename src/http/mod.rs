//! The HTTP adapter (axum): the health check and the gateways' webhooks. Bodies are bounded,
//! read raw (never re-serialised before verification) and acknowledged only after commit.

mod notify;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::app::App;

/// Largest request body the listener reads; real notifications are a few KiB.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/notify/alipay", post(notify::alipay))
        .route("/notify/wechat", post(notify::wechat))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(app)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(app): State<App>) -> (StatusCode, &'static str) {
    match crate::db::ping(&app.db).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(err) => {
            tracing::warn!(error = ?err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
