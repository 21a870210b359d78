//! The webhook endpoints and their one mapping from outcomes to each gateway's answer format:
//! Alipay wants the body `success` (anything else means "resend"); WeChat Pay wants 200/204,
//! or 4xx/5xx with `{"code":"FAIL","message":...}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::app::notifications::{NotifyReply, RawNotification};

pub async fn alipay(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let headers = header_pairs(&headers);
    match app
        .alipay_notification(RawNotification {
            headers: &headers,
            body: &body,
        })
        .await
    {
        Ok(NotifyReply::Ack(_)) => (StatusCode::OK, "success").into_response(),
        Ok(NotifyReply::Refuse(status, reason)) => {
            tracing::warn!(%reason, "Alipay notification refused");
            (status_code(status), "fail").into_response()
        }
        Err(err) => {
            tracing::error!(error = ?err, "Alipay notification not recorded");
            (StatusCode::INTERNAL_SERVER_ERROR, "fail").into_response()
        }
    }
}

pub async fn wechat(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let headers = header_pairs(&headers);
    match app
        .wechat_notification(RawNotification {
            headers: &headers,
            body: &body,
        })
        .await
    {
        Ok(NotifyReply::Ack(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(NotifyReply::Refuse(status, reason)) => {
            tracing::warn!(%reason, "WeChat Pay notification refused");
            wechat_fail(status_code(status), &reason)
        }
        Err(err) => {
            tracing::error!(error = ?err, "WeChat Pay notification not recorded");
            wechat_fail(StatusCode::INTERNAL_SERVER_ERROR, "not recorded; resend")
        }
    }
}

fn wechat_fail(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "code": "FAIL", "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Header names and values as text; a value that is not visible ASCII is dropped.
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
