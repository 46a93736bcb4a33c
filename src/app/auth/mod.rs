//! Users, sessions, CSRF and sign-in.
//!
//! - `token`: random tokens, their SHA-256 digests (all the database keeps), constant-time
//!   comparison;
//! - `extract`: the extractors handlers use to say who may call them ([`SignedIn`],
//!   [`MaybeSignedIn`], [`Admin`], [`CsrfForm`], [`ApiWriter`]);
//! - `password`: argon2id hashes, checked off the runtime;
//! - `signin`: the sign-in form (`GET`/`POST /signin`) with its pre-session CSRF cookie;
//! - `throttle`: failed sign-ins counted per client and per e-mail address, in the database
//!   (shared by every box);
//! - `known`: sessions found in the database kept briefly, so that a signed-in reader's
//!   requests do not each cost a session lookup.

mod extract;
pub mod known;
pub mod password;
pub(super) mod signin;
pub mod throttle;
pub mod token;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use extract::{
    Admin, ApiWriter, CSRF_HEADER, CsrfForm, MaybeSignedIn, SESSION_COOKIE, SignedIn, cookie,
};
pub use known::KnownSessions;
pub use signin::{CSRF_COOKIE, DEFAULT_NEXT, safe_next};
pub use throttle::Throttle;

use super::state::State;

/// `POST /signout`: ends the session (server-side) and clears the cookie.
pub(super) async fn sign_out(
    axum::extract::State(state): axum::extract::State<State>,
    CsrfForm { who, .. }: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, crate::app::AppError> {
    state.sessions.forget(&who.session_id);
    crate::db::sessions::delete(&state.db, &who.session_id).await?;
    tracing::info!(user = who.viewer.email, "signed out");
    Ok(see_other("/", Some(&clear_session_cookie())))
}

/// The `Set-Cookie` value that stores a session token in the browser.
pub fn session_cookie(token: &str, max_age: std::time::Duration) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        max_age.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// 303 See Other to `location` (after a form post), optionally setting a cookie.
pub fn see_other(location: &str, set_cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(value) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
