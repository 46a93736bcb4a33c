//! The editor area, `/editor`: signed-in users list every post (drafts too), write new ones,
//! edit, publish, unpublish and delete them. Pages are rendered from
//! `site/.templates/editor/*.html`; every form posts the session's CSRF token (checked by
//! [`CsrfForm`]), and a successful post answers 303 to the page to look at next, with
//! `?done=...` for the message it shows. A form with bad fields is shown again with a message
//! per field (422, or 409 for a duplicate slug) and what was typed.
//!
//! Routes (`{id}` is the post's row id, stable when its slug changes):
//!
//! | route                               | what                                   |
//! |-------------------------------------|----------------------------------------|
//! | `GET /editor?page=N`                | every post, most recently changed first |
//! | `GET`/`POST /editor/new`            | the form for a new post / create it    |
//! | `GET`/`POST /editor/posts/{id}`     | the form for a post / save it          |
//! | `POST /editor/posts/{id}/publish`   | publish it                             |
//! | `POST /editor/posts/{id}/unpublish` | back to draft                          |
//! | `GET`/`POST /editor/posts/{id}/delete` | confirm / delete it                 |
//!
//! Without a session, the error layer sends the browser to sign in (401 → `/signin?next=`).

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::super::auth::{CsrfForm, SignedIn, see_other};
use super::super::cache::{self, Audience};
use super::super::error::AppError;
use super::super::state::State;
use super::input::PostInput;
use super::{PageQuery, human_date, may_change, page};
use crate::db::posts::{self, PostDetail, PostSummary, Status};

const HTML: &str = "text/html; charset=utf-8";

/// Posts per page of the editor's list.
const PER_PAGE: u64 = 50;

/// The fields of the post form (besides `csrf`).
#[derive(Debug, Default, Deserialize)]
pub(in crate::app) struct PostForm {
    slug: Option<String>,
    title: Option<String>,
    body_markdown: Option<String>,
    status: Option<String>,
}

impl From<PostForm> for PostInput {
    fn from(form: PostForm) -> Self {
        Self {
            slug: form.slug,
            title: form.title,
            body_markdown: form.body_markdown,
            status: form.status,
        }
    }
}

/// `?done=` after a redirect, and `?page=`.
#[derive(Debug, Deserialize)]
pub(in crate::app) struct Done {
    done: Option<String>,
}

/// The message for `?done=what`.
fn message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Post created.",
        "saved" => "Changes saved.",
        "published" => "Post published.",
        "unpublished" => "Post moved back to drafts.",
        "deleted" => "Post deleted.",
        _ => return None,
    })
}

/// A row of the editor's list.
#[derive(Debug, Serialize)]
struct Row {
    id: i64,
    slug: String,
    title: String,
    /// Shown as it is (`draft`, `published`).
    status: Status,
    /// Whether it is on the site.
    published: bool,
    author: String,
    updated: String,
    /// Whether the viewer may change it ([`Viewer::may_change`], the rule [`may_change`]
    /// applies to every change).
    ///
    /// [`Viewer::may_change`]: super::super::render::Viewer::may_change
    may_change: bool,
}

/// `GET /editor?page=N`.
pub(in crate::app) async fn list(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
    page_query: Result<Query<PageQuery>, QueryRejection>,
    done: Result<Query<Done>, QueryRejection>,
) -> Result<Response, AppError> {
    let page = page(page_query, PER_PAGE)?;
    let listing = posts::list_all(&state.db, page).await?;
    if listing.items.is_empty() && page.number > 1 {
        return Err(AppError::NotFound);
    }
    let rows: Vec<Row> = listing
        .items
        .into_iter()
        .map(|post: PostSummary| Row {
            may_change: who.viewer.may_change(post.author_id),
            id: post.id,
            slug: post.slug,
            title: post.title,
            published: post.status == Status::Published,
            status: post.status,
            author: post.author,
            updated: human_date(post.updated_at),
        })
        .collect();
    let data = serde_json::json!({
        "posts": rows,
        "page": page.number,
        "prev": (page.number > 1).then(|| page.number - 1),
        "next": listing.has_next.then(|| page.number + 1),
        "message": message(done.as_ref().ok().and_then(|d| d.done.as_deref())),
    });
    render(&state, &who, "editor/list.html", StatusCode::OK, data)
}

/// The form's data: the post as typed or stored, and a message per bad field.
#[derive(Debug, Serialize)]
struct FormPage {
    /// `new` or `edit`.
    mode: &'static str,
    id: Option<i64>,
    slug: String,
    title: String,
    body_markdown: String,
    /// The status chosen in the form (the stored one, or the one typed when refused).
    status: Status,
    /// Whether that is [`Status::Published`].
    published: bool,
    author: Option<String>,
    errors: BTreeMap<&'static str, String>,
    message: Option<&'static str>,
}

impl FormPage {
    fn new() -> Self {
        Self {
            mode: "new",
            id: None,
            slug: String::new(),
            title: String::new(),
            body_markdown: String::new(),
            status: Status::Draft,
            published: false,
            author: None,
            errors: BTreeMap::new(),
            message: None,
        }
    }

    fn edit(post: &PostDetail) -> Self {
        Self {
            mode: "edit",
            id: Some(post.id),
            slug: post.slug.clone(),
            title: post.title.clone(),
            body_markdown: post.body_markdown.clone(),
            status: post.status,
            published: post.status == Status::Published,
            author: Some(post.author.clone()),
            errors: BTreeMap::new(),
            message: None,
        }
    }

    /// The form again with what was typed and why it was refused.
    fn refused(
        mut self,
        typed: &PostInput,
        error: AppError,
    ) -> Result<(StatusCode, Self), AppError> {
        let status = error.status();
        match error {
            AppError::Invalid(fields) => self.errors = fields,
            AppError::Conflict { field, message } => {
                self.errors.insert(field, message);
            }
            other => return Err(other),
        }
        let keep = |typed: &Option<String>, slot: &mut String| {
            if let Some(value) = typed {
                slot.clone_from(value);
            }
        };
        keep(&typed.slug, &mut self.slug);
        keep(&typed.title, &mut self.title);
        keep(&typed.body_markdown, &mut self.body_markdown);
        if let Some(typed) = typed.status.as_deref().and_then(Status::parse) {
            self.status = typed;
            self.published = typed == Status::Published;
        }
        Ok((status, self))
    }
}

/// `GET /editor/new`.
pub(in crate::app) async fn new_form(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
) -> Result<Response, AppError> {
    render(
        &state,
        &who,
        "editor/form.html",
        StatusCode::OK,
        FormPage::new(),
    )
}

/// `POST /editor/new`.
pub(in crate::app) async fn create(
    axum::extract::State(state): axum::extract::State<State>,
    CsrfForm { who, form }: CsrfForm<PostForm>,
) -> Result<Response, AppError> {
    let input = PostInput::from(form);
    let written = match input.clone().create() {
        Ok(fields) => posts::insert(&state.db, fields, who.viewer.id)
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    match written {
        Ok(id) => {
            tracing::info!(user = who.viewer.email, id, "post created");
            Ok(see_other(&format!("/editor/posts/{id}?done=created"), None))
        }
        Err(error) => {
            let (status, page) = FormPage::new().refused(&input, error)?;
            render(&state, &who, "editor/form.html", status, page)
        }
    }
}

/// The post `{id}` names, if the viewer may change it.
async fn changeable(
    state: &State,
    who: &SignedIn,
    id: Result<Path<i64>, PathRejection>,
) -> Result<PostDetail, AppError> {
    let Ok(Path(id)) = id else {
        return Err(AppError::NotFound);
    };
    let post = posts::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    may_change(&who.viewer, &post)?;
    Ok(post)
}

/// `GET /editor/posts/{id}`.
pub(in crate::app) async fn edit_form(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
    id: Result<Path<i64>, PathRejection>,
    done: Result<Query<Done>, QueryRejection>,
) -> Result<Response, AppError> {
    let post = changeable(&state, &who, id).await?;
    let mut page = FormPage::edit(&post);
    page.message = message(done.as_ref().ok().and_then(|d| d.done.as_deref()));
    render(&state, &who, "editor/form.html", StatusCode::OK, page)
}

/// `POST /editor/posts/{id}`.
pub(in crate::app) async fn save(
    axum::extract::State(state): axum::extract::State<State>,
    id: Result<Path<i64>, PathRejection>,
    CsrfForm { who, form }: CsrfForm<PostForm>,
) -> Result<Response, AppError> {
    let current = changeable(&state, &who, id).await?;
    let input = PostInput::from(form);
    let written = match input.clone().update(&current) {
        Ok(fields) => posts::update(&state.db, current.id, fields)
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    match written {
        Ok(()) => {
            tracing::info!(user = who.viewer.email, id = current.id, "post saved");
            Ok(see_other(
                &format!("/editor/posts/{}?done=saved", current.id),
                None,
            ))
        }
        Err(error) => {
            let (status, page) = FormPage::edit(&current).refused(&input, error)?;
            render(&state, &who, "editor/form.html", status, page)
        }
    }
}

/// `POST /editor/posts/{id}/publish`.
pub(in crate::app) async fn publish(
    axum::extract::State(state): axum::extract::State<State>,
    id: Result<Path<i64>, PathRejection>,
    CsrfForm { who, .. }: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, AppError> {
    set_status(&state, &who, id, Status::Published).await
}

/// `POST /editor/posts/{id}/unpublish`.
pub(in crate::app) async fn unpublish(
    axum::extract::State(state): axum::extract::State<State>,
    id: Result<Path<i64>, PathRejection>,
    CsrfForm { who, .. }: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, AppError> {
    set_status(&state, &who, id, Status::Draft).await
}

async fn set_status(
    state: &State,
    who: &SignedIn,
    id: Result<Path<i64>, PathRejection>,
    status: Status,
) -> Result<Response, AppError> {
    let current = changeable(state, who, id).await?;
    let fields = PostInput {
        status: Some(status.as_str().to_owned()),
        ..PostInput::default()
    }
    .update(&current)?;
    posts::update(&state.db, current.id, fields).await?;
    tracing::info!(
        user = who.viewer.email,
        id = current.id,
        status = status.as_str(),
        "post status set"
    );
    let done = match status {
        Status::Draft => "unpublished",
        Status::Published => "published",
    };
    Ok(see_other(&format!("/editor?done={done}"), None))
}

/// `GET /editor/posts/{id}/delete`: "are you sure?".
pub(in crate::app) async fn confirm_delete(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, AppError> {
    let post = changeable(&state, &who, id).await?;
    let data = serde_json::json!({
        "id": post.id,
        "title": post.title,
        "slug": post.slug,
        "status": post.status,
    });
    render(&state, &who, "editor/delete.html", StatusCode::OK, data)
}

/// `POST /editor/posts/{id}/delete`.
pub(in crate::app) async fn delete(
    axum::extract::State(state): axum::extract::State<State>,
    id: Result<Path<i64>, PathRejection>,
    CsrfForm { who, .. }: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, AppError> {
    let post = changeable(&state, &who, id).await?;
    posts::delete(&state.db, post.id).await?;
    tracing::info!(
        user = who.viewer.email,
        id = post.id,
        slug = post.slug,
        "post deleted"
    );
    Ok(see_other("/editor?done=deleted", None))
}

/// An editor page: for this viewer only, never stored.
fn render(
    state: &State,
    who: &SignedIn,
    template: &str,
    status: StatusCode,
    data: impl Serialize,
) -> Result<Response, AppError> {
    let html = state.page(template, Some(&who.viewer), Some(&who.csrf), data)?;
    let mut response = cache::respond(&HeaderMap::new(), Audience::Private, HTML, html);
    *response.status_mut() = status;
    Ok(response)
}
