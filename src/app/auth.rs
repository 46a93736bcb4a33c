//! Users, sessions, CSRF and sign-in (to be built).

use axum::Router;

use super::state::State;

/// The sign-in and sign-out routes.
pub(super) fn routes() -> Router<State> {
    Router::new()
}
