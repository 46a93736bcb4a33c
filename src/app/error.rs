//! [`AppError`]: the one way a handler fails.
//!
//! A handler returns the error; [`render`], the last step of its route group's layer
//! (`routes`), turns it into the response the group declares (`routes::Errors`): JSON (`{"error": {"status": 422, "message":
//! "...", "fields": {...}}}`) for the API, an HTML page in the site's layout elsewhere. Database errors become 503 when the database is unreachable, 500
//! otherwise (logged, never shown).

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::routes::Errors;
use super::state::State;
use crate::db::DbError;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: signing in (or an API token) is needed.
    #[error("sign-in required")]
    Unauthorized,
    /// 403: not allowed (wrong role, missing or wrong CSRF token).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("not found")]
    NotFound,
    /// 405: the path exists, the method does not (`Allow` lists those that do).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the request body is larger than allowed; the message says what the limit is.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the body is not of a type accepted here (an upload that is not an image).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 409: it conflicts with what exists (a duplicate slug).
    #[error("{message}")]
    Conflict {
        /// The field in conflict.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 422: the input is invalid; one message per field.
    #[error("invalid input")]
    Invalid(BTreeMap<&'static str, String>),
    /// 429: too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    TooMany(u64),
    /// 503: the database is unreachable or too slow.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// 500: a bug or an unexpected database error (the detail is logged, not shown).
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as the JSON document of the API.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "status": self.status().as_u16(),
            "message": self.to_string(),
        });
        match self {
            Self::Invalid(fields) => error["fields"] = serde_json::json!(fields),
            Self::Conflict { field, message } => {
                error["fields"] = serde_json::json!({ *field: message });
            }
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match &error {
            _ if error.is_unavailable() => Self::Unavailable,
            _ => Self::Internal(crate::ops::chain(&error).to_string()),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        DbError::from(error).into()
    }
}

/// The error travels to [`render`] in the response's extensions.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// What a route group's layer does last: gives every [`AppError`] in `response` its body, as
/// the group's `errors` says. `uri` is the request's (a page that needs a session redirects
/// to sign in and back to it).
pub(super) fn render(state: &State, errors: Errors, uri: &Uri, response: Response) -> Response {
    let api = errors == Errors::Json;
    let error = match response.extensions().get::<AppError>() {
        Some(error) => error.clone(),
        // axum's own 405 (a route without that method) has no body: give it ours.
        None if response.status() == StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        None => return response,
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    if !api && matches!(error, AppError::Unauthorized) {
        // A page that needs a session: sign in first, then come back.
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let next: String = url_encode(target);
        return super::auth::see_other(&format!("/signin?next={next}"), None);
    }
    if let AppError::Internal(detail) = &error {
        tracing::error!(detail, "app: internal error");
    }
    let mut rendered = if api {
        (error.status(), axum::Json(error.to_json())).into_response()
    } else {
        (
            error.status(),
            axum::response::Html(state.error_page(&error)),
        )
            .into_response()
    };
    let retry_after = match &error {
        AppError::TooMany(seconds) => Some(*seconds),
        AppError::Unavailable => Some(2),
        _ => None,
    };
    if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        rendered.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if let Some(allow) = allow {
        rendered.headers_mut().insert(header::ALLOW, allow);
    }
    rendered
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rendered
}

/// The whole request body (the web origin hands it over as it arrives, within
/// `web.max_body_bytes`): 413 past that limit, 400 if the client broke off.
pub async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, AppError> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|error| {
            // The limit's error arrives wrapped (axum's body, then `to_bytes` itself).
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            let mut limited = false;
            while let Some(error) = cause {
                limited |= error.is::<http_body_util::LengthLimitError>();
                cause = error.source();
            }
            if limited {
                AppError::TooLarge(
                    "the request body is larger than this server accepts (web.max_body_bytes)"
                        .to_owned(),
                )
            } else {
                AppError::BadRequest("the request body could not be read".to_owned())
            }
        })
}

/// Percent-encodes `text` for a query parameter.
fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}
