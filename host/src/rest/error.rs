//! One error type for every route: `{ "error": code, "message": text }` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::worker::WorkerError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: std::borrow::Cow<'static, str>,
    message: String,
}

impl ApiError {
    /// Any status with `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: message.into(),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        let (status, code) = match &e {
            WorkerError::UnknownClass { .. } => {
                (StatusCode::BAD_REQUEST, "unknown_connector_class")
            }
            WorkerError::MissingKey(_) => (StatusCode::BAD_REQUEST, "missing_config_key"),
            WorkerError::InvalidConfig(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
            WorkerError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            WorkerError::Exists(_) => (StatusCode::CONFLICT, "connector_exists"),
            WorkerError::NotFound(_) => (StatusCode::NOT_FOUND, "connector_not_found"),
            WorkerError::NoSuchTask(..) => (StatusCode::NOT_FOUND, "task_not_found"),
            WorkerError::NotStopped(_) => (StatusCode::CONFLICT, "connector_not_stopped"),
            WorkerError::StillStopping(..) => (StatusCode::CONFLICT, "connector_still_stopping"),
            WorkerError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_failed"),
            WorkerError::Cluster(_) => (StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable"),
            WorkerError::NotLeader(..) => (StatusCode::SERVICE_UNAVAILABLE, "not_leader"),
            // The leader's answer to a forwarded write, passed on as it was.
            WorkerError::Forwarded {
                status,
                code,
                message,
            } => {
                return ApiError {
                    status: StatusCode::from_u16(*status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    code: code.clone().into(),
                    message: message.clone(),
                };
            }
        };
        ApiError {
            status,
            code: code.into(),
            message: e.to_string(),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than httpMaxBodyBytes",
            );
        }
        ApiError::bad_request("malformed_json", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

/// Turns a JSON object into a connector config; numbers and booleans are taken as their text.
pub fn config_from_json(
    value: serde_json::Value,
) -> Result<crate::config::ConnectorConfig, ApiError> {
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "malformed_config",
            "config must be a JSON object of strings",
        ));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(ApiError::bad_request(
                "malformed_config",
                format!("config value of `{k}` must be a string, not {other}"),
            )),
        })
        .collect()
}
