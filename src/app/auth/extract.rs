//! Who is asking, as axum extractors. Handlers name what they need in their signature:
//!
//! - [`MaybeSignedIn`]: public pages (the navigation differs for a signed-in viewer);
//! - [`SignedIn`]: the editor area; without a live session, 401 — which the error layer turns
//!   into a redirect to `/signin?next=…` on pages;
//! - [`Admin`]: a signed-in admin, else 403;
//! - [`CsrfForm`]: a form post of a signed-in user whose `csrf` field matches the session's
//!   token, else 403;
//! - [`ApiWriter`]: an API write: `Authorization: Bearer <api token>`, or the session cookie
//!   with the session's token in `X-CSRF-Token`; 401 without credentials, 403 with a wrong
//!   CSRF token.
//!
//! The session cookie is `__Host-onebox_session` (HttpOnly, Secure, SameSite=Lax, Path=/):
//! the `__Host-` prefix makes browsers refuse it from any other origin or without TLS.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::token;
use crate::app::{AppError, State, Viewer};
use crate::db::{self, sessions};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-onebox_session";

/// The header an API write made with a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in user (live session).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub viewer: Viewer,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    /// The session's id (its token's digest).
    pub session_id: String,
}

/// A signed-in user, or nobody.
#[derive(Debug, Clone)]
pub struct MaybeSignedIn(pub Option<SignedIn>);

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Admin(pub SignedIn);

/// A form post of a signed-in user that carried the session's CSRF token.
#[derive(Debug, Clone)]
pub struct CsrfForm<T> {
    /// Who posted it.
    pub who: SignedIn,
    /// The form's fields.
    pub form: T,
}

/// The author of an API write, by API token or by session plus CSRF token.
#[derive(Debug, Clone)]
pub struct ApiWriter(pub Viewer);

impl From<&db::entity::user::Model> for Viewer {
    fn from(user: &db::entity::user::Model) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

async fn session(parts: &Parts, state: &State) -> Result<Option<SignedIn>, AppError> {
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id = token::digest(token);
    if let Some(known) = state.sessions.get(&id) {
        return Ok(Some(known));
    }
    let Some(live) = sessions::find(&state.db, &id).await? else {
        return Ok(None);
    };
    let who = SignedIn {
        viewer: Viewer::from(&live.user),
        csrf: live.session.csrf_token,
        session_id: id,
    };
    state.sessions.keep(&who, live.session.expires_at);
    Ok(Some(who))
}

impl FromRequestParts<State> for MaybeSignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, AppError> {
        if let Some(found) = parts.extensions.get::<SignedIn>() {
            return Ok(Self(Some(found.clone())));
        }
        let found = session(parts, state).await?;
        if let Some(found) = &found {
            parts.extensions.insert(found.clone());
        }
        Ok(Self(found))
    }
}

impl FromRequestParts<State> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, AppError> {
        MaybeSignedIn::from_request_parts(parts, state)
            .await?
            .0
            .ok_or(AppError::Unauthorized)
    }
}

impl FromRequestParts<State> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, AppError> {
        let who = SignedIn::from_request_parts(parts, state).await?;
        if !who.viewer.is_admin() {
            return Err(AppError::Forbidden("only an admin may do that".to_owned()));
        }
        Ok(Self(who))
    }
}

/// The field every form carries its CSRF token in.
#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + Send> FromRequest<State> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &State) -> Result<Self, AppError> {
        let (mut parts, body) = request.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, state).await?;
        let bytes = crate::app::error::read_body(body).await?;
        let field: CsrfField = parse_form(&bytes)?;
        if !token::same(&field.csrf, &who.csrf) {
            return Err(AppError::Forbidden(
                "missing or wrong CSRF token: reload the form and try again".to_owned(),
            ));
        }
        let form: T = parse_form(&bytes)?;
        Ok(Self { who, form })
    }
}

/// Parses a form body (`application/x-www-form-urlencoded`).
fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| AppError::BadRequest(format!("bad form: {e}")))
}

impl FromRequestParts<State> for ApiWriter {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, AppError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let bearer = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                // The scheme is case-insensitive (RFC 9110 §11.1).
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, credentials)| credentials.trim())
                .ok_or(AppError::Unauthorized)?;
            let user = db::users::by_api_token(&state.db, &token::digest(bearer))
                .await?
                .ok_or(AppError::Unauthorized)?;
            return Ok(Self(Viewer::from(&user)));
        }
        let who = SignedIn::from_request_parts(parts, state).await?;
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !token::same(sent, &who.csrf) {
            return Err(AppError::Forbidden(format!(
                "missing or wrong CSRF token: send the session's token in {CSRF_HEADER}"
            )));
        }
        Ok(Self(who.viewer))
    }
}
