//! `GET /signin` and `POST /signin`: the sign-in form and what it posts to.
//!
//! 1. The form carries a CSRF token although there is no session yet (login CSRF: a foreign
//!    page must not sign a visitor in to the attacker's account). It is a double-submit
//!    cookie: [`CSRF_COOKIE`] (random; HttpOnly, Secure, SameSite=Strict, `__Host-`, so no
//!    other origin can set it) and the same value in the form's hidden `csrf` field; a post
//!    where the two differ, or either is missing, gets 403.
//! 2. Failures are throttled per client and per e-mail address ([`super::throttle`], counted
//!    in the database so that every box sharing it counts them): 429 with `Retry-After` once
//!    there were too many.
//! 3. The password is checked off the runtime ([`super::password::verify`]); an unknown
//!    address is checked against a dummy hash, so it takes as long and reads the same.
//! 4. A failure re-renders the form with status 401 and one message for every cause ("wrong
//!    e-mail address or password").
//! 5. Success starts a new session (never reusing one the browser had, which is ended), sets
//!    the session cookie and redirects (303) to `next` when it is a path on this site, else to
//!    `/editor`. (Expired sessions are purged by the database watcher, `app::health`.)

use axum::extract::{RawQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::throttle::ClientIp;
use super::{MaybeSignedIn, cookie, password, see_other, session_cookie, token};
use crate::app::metrics::Count;
use crate::app::{AppError, State};
use crate::db::{sessions, users};

/// The pre-session CSRF cookie of the sign-in form.
pub const CSRF_COOKIE: &str = "__Host-onebox_csrf";

/// Where a sign-in leads when the form names no (acceptable) `next`.
pub const DEFAULT_NEXT: &str = "/editor";

/// The one message for a failed sign-in, whatever the cause.
pub const FAILED: &str = "Wrong e-mail address or password.";

/// The sign-in form's fields.
#[derive(Debug, Default, Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `GET /signin?next=…`.
pub(in crate::app) async fn form(
    Shared(state): Shared<State>,
    MaybeSignedIn(who): MaybeSignedIn,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    #[derive(Deserialize, Default)]
    struct Query {
        #[serde(default)]
        next: String,
    }
    let query: Query = query
        .and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default();
    let (csrf, fresh) = match cookie(&headers, CSRF_COOKIE).filter(|v| well_formed(v)) {
        Some(existing) => (existing.to_owned(), false),
        None => (token::new()?, true),
    };
    let page = render(
        &state,
        who.as_ref(),
        &csrf,
        safe_next(&query.next),
        "",
        None,
    )?;
    let mut response = (StatusCode::OK, Html(page)).into_response();
    if fresh {
        set_cookie(&mut response, &csrf_cookie(&csrf));
    }
    no_store(&mut response);
    Ok(response)
}

/// `POST /signin`.
pub(in crate::app) async fn submit(
    Shared(state): Shared<State>,
    MaybeSignedIn(who): MaybeSignedIn,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, AppError> {
    let body = crate::app::error::read_body(body).await?;
    let form: SignInForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("bad form: {e}")))?;
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !token::same(&form.csrf, expected) {
        return Err(AppError::Forbidden(
            "missing or wrong CSRF token: reload the sign-in page and try again".to_owned(),
        ));
    }
    let next = safe_next(&form.next);
    let email = form.email.trim().to_lowercase();
    if let Some(wait) = state.throttle.check(&state.db, client, &email).await? {
        state.metrics.inc(Count::SigninThrottled);
        tracing::warn!(email, client = ?client, wait, "sign-in refused: too many failures");
        return Err(AppError::TooMany(wait));
    }
    let user = users::by_email(&state.db, &email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (password::verify(form.password, hash).await?, user) {
        (true, Some(user)) => user,
        _ => {
            state.throttle.failed(&state.db, client, &email).await?;
            state.metrics.inc(Count::SigninFailed);
            tracing::info!(email, client = ?client, "sign-in failed");
            let page = render(&state, None, expected, next, &email, Some(FAILED))?;
            let mut response = (StatusCode::UNAUTHORIZED, Html(page)).into_response();
            no_store(&mut response);
            return Ok(response);
        }
    };
    state.throttle.succeeded(&state.db, &email).await?;
    if let Some(old) = who {
        state.sessions.forget(&old.session_id);
        sessions::delete(&state.db, &old.session_id).await?;
    }
    let token = token::new()?;
    let ttl = state.config.session_ttl;
    let expires_at = Utc::now().naive_utc()
        + chrono::TimeDelta::from_std(ttl)
            .map_err(|_| AppError::Internal("app.session_ttl is too long".to_owned()))?;
    sessions::create(
        &state.db,
        token::digest(&token),
        user.id,
        token::new()?,
        expires_at,
    )
    .await?;
    tracing::info!(email, client = ?client, "signed in");
    let mut response = see_other(next, Some(&session_cookie(&token, ttl)));
    set_cookie(&mut response, &clear_csrf_cookie());
    Ok(response)
}

/// The sign-in page.
fn render(
    state: &State,
    who: Option<&super::SignedIn>,
    signin_csrf: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> Result<String, AppError> {
    let data = serde_json::json!({
        "signin_csrf": signin_csrf,
        "next": next,
        "email": email,
        "error": error,
    });
    state.page(
        "signin.html",
        who.map(|w| &w.viewer),
        who.map(|w| w.csrf.as_str()),
        data,
    )
}

/// `next` if it is a path on this site, else [`DEFAULT_NEXT`]: a sign-in never leads
/// elsewhere (no open redirect). Accepted: printable ASCII starting with one `/` — not `//`
/// (another host), no `\` (which browsers read as `/`), no scheme.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local { next } else { DEFAULT_NEXT }
}

/// Whether a CSRF cookie's value looks like one of ours (64 hex digits).
fn well_formed(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn csrf_cookie(value: &str) -> String {
    format!("{CSRF_COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

fn clear_csrf_cookie() -> String {
    format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_site() {
        for good in ["/editor", "/blog/hello?x=1", "/", "/editor/settings#top"] {
            assert_eq!(safe_next(good), good);
        }
        for bad in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/ok\r\nSet-Cookie: x=y",
            "/\tevil",
            "/é",
        ] {
            assert_eq!(safe_next(bad), DEFAULT_NEXT, "{bad:?}");
        }
    }

    #[test]
    fn csrf_cookie_values() {
        assert!(well_formed(&token::new().expect("token")));
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"g".repeat(64)));
        let set = csrf_cookie("v");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(set.starts_with("__Host-"));
    }
}
