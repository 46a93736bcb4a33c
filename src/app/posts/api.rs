//! The posts API under `/api/posts`, JSON in and out. Field names are stable; times are
//! RFC 3339 in UTC, whole seconds (`2026-11-26T09:30:00Z`), `null` when unset.
//!
//! `GET /api/posts?page=N` — published posts, newest first, `app.posts_per_page` a page:
//!
//! ```json
//! {"posts": [{"slug": "hello", "title": "Hello", "excerpt": "The start, as text.", "author": "Ada",
//!             "published_at": "2026-11-26T09:30:00Z", "updated_at": "2026-11-26T09:30:00Z",
//!             "url": "/blog/hello"}],
//!  "page": 1, "per_page": 10, "has_next": true,
//!  "next": "/api/posts?page=2", "prev": null}
//! ```
//!
//! List items carry no bodies (a list stays one cheap query); `next`/`prev` are the
//! neighbouring pages' addresses or `null`. A page past the last is 404 (page 1 never is).
//!
//! `GET /api/posts/{slug}` — one published post (a draft or unknown slug is 404):
//!
//! ```json
//! {"slug": "hello", "title": "Hello", "body_markdown": "# Hi", "body_html": "<h1>Hi</h1>",
//!  "status": "published", "author": "Ada", "published_at": "2026-11-26T09:30:00Z",
//!  "created_at": "2026-11-26T09:00:00Z", "updated_at": "2026-11-26T09:30:00Z",
//!  "url": "/blog/hello"}
//! ```
//!
//! Writes need an author: `Authorization: Bearer <API token>`, or the session cookie with the
//! session's CSRF token in `X-CSRF-Token` (401 without either, 403 with a wrong token). The
//! bodies are JSON objects with any of `slug`, `title`, `body_markdown`, `status`
//! (`draft`|`published`), checked as `input` says (422 names each bad field):
//!
//! - `POST /api/posts` — a new post by the caller (`status` defaults to `draft`, `slug` to one
//!   made from the title): 201, `Location: /api/posts/{slug}`, the post as above;
//! - `PATCH /api/posts/{slug}` — changes the fields sent, keeps the others: 200, the post;
//! - `DELETE /api/posts/{slug}` — 204.
//!
//! A duplicate slug is 409 (`fields.slug`), and the post is left as it was. Only the post's
//! author or an admin may change or delete it (403 otherwise). With writer credentials,
//! `GET /api/posts/{slug}` shows drafts too.
//!
//! Errors are `{"error": {"status": 422, "message": "...", "fields": {"slug": "..."}}}`
//! (`fields` for 409 and 422 only); see [`AppError`].

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::super::auth::ApiWriter;
use super::super::cache::{self, Audience};
use super::super::error::AppError;
use super::super::json::JsonBody;
use super::super::state::State;
use super::input::{self, PostInput};
use super::{PageQuery, may_change, page, rfc3339};
use crate::db::posts::{self, PostDetail, PublicSummary, Status};

const JSON: &str = "application/json";

/// A list item.
#[derive(Debug, Serialize)]
struct Summary {
    slug: String,
    title: String,
    excerpt: String,
    author: String,
    published_at: Option<String>,
    updated_at: String,
    url: String,
}

impl From<PublicSummary> for Summary {
    fn from(post: PublicSummary) -> Self {
        Self {
            url: format!("/blog/{}", post.slug),
            slug: post.slug,
            title: post.title,
            excerpt: post.excerpt,
            author: post.author,
            published_at: post.published_at.map(rfc3339),
            updated_at: rfc3339(post.updated_at),
        }
    }
}

/// One page of the list.
#[derive(Debug, Serialize)]
struct List {
    posts: Vec<Summary>,
    page: u64,
    per_page: u64,
    has_next: bool,
    next: Option<String>,
    prev: Option<String>,
}

/// A whole post.
#[derive(Debug, Serialize)]
pub(super) struct Post {
    slug: String,
    title: String,
    body_markdown: String,
    body_html: String,
    status: Status,
    author: String,
    published_at: Option<String>,
    created_at: String,
    updated_at: String,
    url: String,
}

impl From<PostDetail> for Post {
    fn from(post: PostDetail) -> Self {
        Self {
            url: format!("/blog/{}", post.slug),
            slug: post.slug,
            title: post.title,
            body_markdown: post.body_markdown,
            body_html: post.body_html,
            status: post.status,
            author: post.author,
            published_at: post.published_at.map(rfc3339),
            created_at: rfc3339(post.created_at),
            updated_at: rfc3339(post.updated_at),
        }
    }
}

/// `value` as a JSON body (serialising these plain structs cannot fail; if it did, a 500).
fn to_json(value: &impl Serialize) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(format!("json: {e}")))
}

/// `GET /api/posts?page=N`.
pub(in crate::app) async fn list(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let page = page(query, state.config.posts_per_page)?;
    let listing = posts::list_published(&state.db, page).await?;
    if listing.items.is_empty() && page.number > 1 {
        return Err(AppError::NotFound);
    }
    let link = |n: u64| format!("/api/posts?page={n}");
    let body = List {
        page: page.number,
        per_page: page.per_page,
        has_next: listing.has_next,
        next: listing.has_next.then(|| link(page.number + 1)),
        prev: (page.number > 1).then(|| link(page.number - 1)),
        posts: listing.items.into_iter().map(Summary::from).collect(),
    };
    Ok(cache::respond(
        &headers,
        Audience::Public,
        JSON,
        to_json(&body)?,
    ))
}

/// The slug in the path, if it can be one (else 404 without asking the database).
fn slug_of(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    match path {
        Ok(Path(slug)) if input::is_slug(&slug) => Ok(slug),
        _ => Err(AppError::NotFound),
    }
}

/// `GET /api/posts/{slug}`: published posts for everyone, drafts too for a writer.
pub(in crate::app) async fn show(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    writer: Result<ApiWriter, AppError>,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let slug = slug_of(slug)?;
    let (post, audience) = match writer {
        Ok(_) => (posts::by_slug(&state.db, &slug).await?, Audience::Private),
        Err(_) => (
            posts::published_by_slug(&state.db, &slug).await?,
            Audience::Public,
        ),
    };
    let post = post.ok_or(AppError::NotFound)?;
    Ok(cache::respond(
        &headers,
        audience,
        JSON,
        to_json(&Post::from(post))?,
    ))
}

/// `POST /api/posts`: 201 with the new post.
pub(in crate::app) async fn create(
    axum::extract::State(state): axum::extract::State<State>,
    ApiWriter(writer): ApiWriter,
    JsonBody(document): JsonBody,
) -> Result<Response, AppError> {
    let fields = PostInput::from_json(document)?.create()?;
    let id = posts::insert(&state.db, fields, writer.id).await?;
    let post = written(&state, id).await?;
    tracing::info!(user = writer.email, slug = post.slug, "post created");
    let location = HeaderValue::from_str(&format!("/api/posts/{}", post.slug))
        .map_err(|e| AppError::Internal(format!("location: {e}")))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        json_response(&Post::from(post))?,
    )
        .into_response())
}

/// `PATCH /api/posts/{slug}`: 200 with the changed post.
pub(in crate::app) async fn update(
    axum::extract::State(state): axum::extract::State<State>,
    ApiWriter(writer): ApiWriter,
    slug: Result<Path<String>, PathRejection>,
    JsonBody(document): JsonBody,
) -> Result<Response, AppError> {
    let slug = slug_of(slug)?;
    let input = PostInput::from_json(document)?;
    let current = posts::by_slug(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    may_change(&writer, &current)?;
    let fields = input.update(&current)?;
    posts::update(&state.db, current.id, fields).await?;
    let post = written(&state, current.id).await?;
    tracing::info!(user = writer.email, slug = post.slug, "post updated");
    json_response(&Post::from(post))
}

/// `DELETE /api/posts/{slug}`: 204.
pub(in crate::app) async fn delete(
    axum::extract::State(state): axum::extract::State<State>,
    ApiWriter(writer): ApiWriter,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let slug = slug_of(slug)?;
    let current = posts::by_slug(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    may_change(&writer, &current)?;
    posts::delete(&state.db, current.id).await?;
    tracing::info!(user = writer.email, slug, "post deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The post just written (gone only if someone deleted it in between).
async fn written(state: &State, id: i64) -> Result<PostDetail, AppError> {
    posts::by_id(&state.db, id).await?.ok_or(AppError::NotFound)
}

/// `value` as a JSON response that no cache keeps (an answer to a write).
fn json_response(value: &impl Serialize) -> Result<Response, AppError> {
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        to_json(value)?,
    )
        .into_response())
}
