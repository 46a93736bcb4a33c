//! JSON request bodies for the API, failing in the API's own error shape.
//!
//! axum's `Json` extractor answers a bad body itself, in plain text (and 415 or 422 by its own
//! rules). [`JsonBody`] reads the body as a JSON document and fails with
//! [`AppError::BadRequest`] instead — a missing or wrong `Content-Type`, or JSON that does not
//! parse (the message says where) — so every API error reads the same. The document's shape is
//! the handler's to check, field by field, for a 422 that names them.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::error::AppError;

/// A request body that is a JSON document (of any shape).
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = AppError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, AppError> {
        if !is_json(request.headers()) {
            return Err(AppError::BadRequest(
                "the body must be JSON, sent with Content-Type: application/json".to_owned(),
            ));
        }
        let bytes = super::error::read_body(request.into_body()).await?;
        parse(&bytes).map(Self)
    }
}

/// The document in `bytes`, or a 400 that says what is wrong and where.
fn parse(bytes: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(bytes).map_err(|e| AppError::BadRequest(format!("malformed JSON: {e}")))
}

/// `application/json`, or any `application/*+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn malformed_json_says_where() {
        let error = parse(b"{\"title\": ").expect_err("malformed");
        let AppError::BadRequest(message) = error else {
            panic!("{error:?}")
        };
        assert!(message.starts_with("malformed JSON: "), "{message}");
        assert!(message.contains("line 1"), "{message}");
        assert!(parse(b"{\"a\": [1, null]}").is_ok());
    }
}
