//! The HTTP adapter (axum): the health check now, the gateways' webhooks later. Bodies are
//! bounded and every request has a timeout.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_orm::DatabaseConnection;

/// Largest request body the listener reads.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

pub fn router(db: DatabaseConnection) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(db)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(db): State<DatabaseConnection>) -> (StatusCode, &'static str) {
    match crate::db::ping(&db).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(err) => {
            tracing::warn!(error = ?err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
