//! What every request passes before a handler: a bound on concurrent requests and on their
//! time, a refusal of cross-site browser requests, the bearer token, and (for the seed's
//! state-changing GET routes) `legacyGetWrites`. Answers leave scrubbed of known secrets.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::HttpLimits;
use crate::security::Secret;
use crate::security::secrets::scrub;

/// Routes anyone may call: liveness and readiness (what an orchestrator's probes call; they
/// say whether the worker works, nothing about its connectors).
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];
/// The largest answer scrubbed in memory; larger ones are refused rather than sent unscrubbed.
const MAX_SCRUBBED_ANSWER: usize = 64 << 20;

/// The REST server's admission rules, from `connect.conf`.
pub struct RequestGuard {
    token: Option<Secret>,
    legacy_get_writes: bool,
    limits: HttpLimits,
    permits: Arc<tokio::sync::Semaphore>,
}

impl RequestGuard {
    /// Rules for a worker with `token` (`restAuthToken`), `legacy_get_writes` and `limits`.
    pub fn new(token: Option<Secret>, legacy_get_writes: bool, limits: HttpLimits) -> Arc<Self> {
        Arc::new(RequestGuard {
            token,
            legacy_get_writes,
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent)),
            limits,
        })
    }

    /// The body limit (`httpMaxBodyBytes`).
    pub fn max_body_bytes(&self) -> usize {
        self.limits.max_body_bytes
    }
}

/// The middleware over every route.
pub async fn admit(
    State(guard): State<Arc<RequestGuard>>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + guard.limits.request_timeout;
    let timed_out = || {
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "the request did not finish within {:?} (httpRequestTimeoutMs); it may still apply",
                guard.limits.request_timeout
            ),
        )
    };
    let Ok(Ok(_permit)) =
        tokio::time::timeout_at(deadline, guard.permits.clone().acquire_owned()).await
    else {
        return timed_out();
    };
    if let Some(refusal) = refuse_cross_site(request.headers()) {
        return refusal;
    }
    let path = request.uri().path();
    if !OPEN_PATHS.contains(&path)
        && let Some(token) = &guard.token
        && !bearer(request.headers()).is_some_and(|t| token.matches(t))
    {
        let mut answer = api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this worker requires `Authorization: Bearer <restAuthToken>`".into(),
        );
        answer
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answer;
    }
    match tokio::time::timeout_at(deadline, next.run(request)).await {
        Ok(response) => scrubbed(response).await,
        Err(_) => timed_out(),
    }
}

/// The gate over the seed's state-changing GET routes: 405 when `legacyGetWrites=false`.
pub async fn legacy_write(
    State(guard): State<Arc<RequestGuard>>,
    request: Request,
    next: Next,
) -> Response {
    if guard.legacy_get_writes {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let instead = if path.starts_with("/connectors/create/") {
        "POST /connectors"
    } else if path.starts_with("/connectors/update/") || path.starts_with("/connectors/taskNum/") {
        "PUT /connectors/{name}/config"
    } else if path.starts_with("/connectors/single/") && path.ends_with("/remove") {
        "DELETE /connectors/{name}"
    } else if path.starts_with("/connectors/single/") {
        "PUT /connectors/{name}/stop or PUT /connectors/{name}/resume"
    } else if path.starts_with("/logMsgDetail/") {
        "PUT /logMsgDetail/{true|false}"
    } else if path.starts_with("/connectors/all/") {
        "the per-connector routes (DELETE /connectors/{name}, PUT /connectors/{name}/stop|resume)"
    } else {
        "POST /plugins/reload"
    };
    api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "legacy_get_writes_disabled",
        format!(
            "state-changing GET routes are disabled on this worker (legacyGetWrites=false); use {instead}"
        ),
    )
}

/// A browser request made by a page of another site: refused, token or not. Browsers mark
/// their requests with `Sec-Fetch-Site` and `Origin`; other clients send neither.
fn refuse_cross_site(headers: &HeaderMap) -> Option<Response> {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.split_once("://").map_or(o, |(_, rest)| rest));
    let foreign_origin = match (origin_host, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        (Some(_), None) => true,
        (None, _) => false,
    };
    (matches!(site, "cross-site" | "same-site") || foreign_origin).then(|| {
        api_error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "requests from another site's web page are refused".into(),
        )
    })
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| &value[7..])
}

/// The answer with every remembered secret value replaced by `[hidden]`.
async fn scrubbed(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SCRUBBED_ANSWER).await else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "answer_too_large",
            "the answer could not be checked for secrets".into(),
        );
    };
    if (parts.status.is_client_error() || parts.status.is_server_error())
        && parts.headers.get(header::CONTENT_TYPE)
            != Some(&HeaderValue::from_static("application/json"))
    {
        return as_json_error(parts.status, &bytes);
    }
    let body = match std::str::from_utf8(&bytes) {
        Ok(text) => match scrub(text) {
            std::borrow::Cow::Owned(clean) => Body::from(clean),
            std::borrow::Cow::Borrowed(_) => Body::from(bytes),
        },
        Err(_) => Body::from(bytes),
    };
    let mut response = Response::from_parts(parts, body);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// An error answered by the framework itself (a path or query that does not parse, a method
/// the route does not have), in the same `{error, message}` shape as every other error.
fn as_json_error(status: StatusCode, body: &[u8]) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_request",
        s if s.is_server_error() => "internal_error",
        _ => "request_refused",
    };
    let text = String::from_utf8_lossy(body);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("refused").to_string(),
        t => scrub(t).into_owned(),
    };
    api_error(status, code, message)
}

fn api_error(status: StatusCode, code: &'static str, message: String) -> Response {
    ApiError::new(status, code, message).into_response()
}
