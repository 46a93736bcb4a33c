//! The site's settings (title, tagline): edited by an admin at `/editor/settings`, shown by
//! every page through the [`SiteInfo`] snapshot in [`State::site`].
//!
//! The snapshot is read from the database by [`refresh`]: when the database watcher first sees
//! the database usable (at start, and again after an outage), and right after an admin saves.
//! A key never saved keeps [`SiteInfo`]'s default. Pages read the snapshot, never the table:
//! showing the title costs no query. (With several boxes on one database, another box sees a
//! change after its next outage or restart; onebox is one box.)

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State as Shared};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Admin, CsrfForm, SignedIn, see_other};
use super::{AppError, SiteInfo, State};
use crate::db;
use crate::ops::snapshot::RebuildError;

/// The longest title, in characters.
pub const TITLE_MAX: usize = 80;

/// The longest tagline, in characters.
pub const TAGLINE_MAX: usize = 200;

impl SiteInfo {
    /// The defaults, overridden by the stored settings that exist.
    pub fn with_settings(mut settings: BTreeMap<String, String>) -> Self {
        let mut site = Self::default();
        if let Some(title) = settings.remove("title") {
            site.title = title;
        }
        if let Some(tagline) = settings.remove("tagline") {
            site.tagline = tagline;
        }
        site
    }
}

/// Reads the settings from the database into the snapshot pages use.
pub async fn refresh(state: &State) -> Result<(), db::DbError> {
    let read = async {
        db::settings::all(&state.db)
            .await
            .map(SiteInfo::with_settings)
    };
    match state.site.rebuild_async(read).await {
        Ok(_) => Ok(()),
        Err(RebuildError::Build(error)) => Err(error),
        Err(RebuildError::Panicked(_)) => Ok(()),
    }
}

/// The form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct SettingsForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    tagline: String,
}

/// `GET /editor/settings` (admin).
pub(super) async fn show(
    Shared(state): Shared<State>,
    Admin(who): Admin,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, AppError> {
    let site = state.site.get();
    let saved = query.is_some_and(|q| q.split('&').any(|pair| pair == "saved=1"));
    page(
        &state,
        &who,
        &site.title,
        &site.tagline,
        saved,
        &BTreeMap::new(),
    )
    .map(Html)
}

/// `POST /editor/settings` (admin, CSRF token): 422 with the form and its messages when a
/// value is invalid; else saves both in one transaction and redirects (303) to the page.
pub(super) async fn save(
    Shared(state): Shared<State>,
    Admin(_): Admin,
    CsrfForm { who, form }: CsrfForm<SettingsForm>,
) -> Result<Response, AppError> {
    let title = form.title.trim();
    let tagline = form.tagline.trim();
    let mut errors = BTreeMap::new();
    if let Err(message) = check("title", title, TITLE_MAX) {
        errors.insert("title", message);
    }
    if let Err(message) = check("tagline", tagline, TAGLINE_MAX) {
        errors.insert("tagline", message);
    }
    if !errors.is_empty() {
        let page = page(&state, &who, title, tagline, false, &errors)?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response());
    }
    db::settings::set_many(&state.db, &[("title", title), ("tagline", tagline)]).await?;
    refresh(&state).await?;
    tracing::info!(user = who.viewer.email, "site settings saved");
    Ok(see_other("/editor/settings?saved=1", None))
}

/// A setting's value is one line of 1 to `max` characters.
fn check(name: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("The {name} must not be empty."));
    }
    if value.chars().count() > max {
        return Err(format!("The {name} may have at most {max} characters."));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("The {name} must be one line of text."));
    }
    Ok(())
}

fn page(
    state: &State,
    who: &SignedIn,
    title: &str,
    tagline: &str,
    saved: bool,
    errors: &BTreeMap<&'static str, String>,
) -> Result<String, AppError> {
    let data = serde_json::json!({
        "title": title,
        "tagline": tagline,
        "title_max": TITLE_MAX,
        "tagline_max": TAGLINE_MAX,
        "saved": saved,
        "errors": errors,
    });
    state.page(
        "editor/settings.html",
        Some(&who.viewer),
        Some(&who.csrf),
        data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_settings_override_the_defaults() {
        assert_eq!(
            SiteInfo::with_settings(BTreeMap::new()),
            SiteInfo::default()
        );
        let site = SiteInfo::with_settings(BTreeMap::from([
            ("title".to_owned(), "Mine".to_owned()),
            ("unknown".to_owned(), "ignored".to_owned()),
        ]));
        assert_eq!(site.title, "Mine");
        assert_eq!(site.tagline, SiteInfo::default().tagline);
    }

    #[test]
    fn values_are_checked() {
        assert!(check("title", "A title", TITLE_MAX).is_ok());
        assert!(check("title", "", TITLE_MAX).is_err());
        assert!(check("title", &"é".repeat(TITLE_MAX), TITLE_MAX).is_ok());
        assert!(check("title", &"é".repeat(TITLE_MAX + 1), TITLE_MAX).is_err());
        assert!(check("title", "two\nlines", TITLE_MAX).is_err());
    }
}
