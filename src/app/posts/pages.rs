//! The public blog: `GET /blog` (published posts, newest first, one page of
//! `app.posts_per_page`) and `GET /blog/{slug}` (one published post; drafts and unknown slugs
//! are 404). Rendered from `site/.templates/blog.html` and `post.html`, cached as
//! [`super::super::cache`] says.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::super::auth::{MaybeSignedIn, SignedIn};
use super::super::cache::{self, Audience};
use super::super::error::AppError;
use super::super::state::State;
use super::{PageQuery, human_date, input, page, rfc3339};
use crate::db::posts::{self, PostDetail, PostSummary};

const HTML: &str = "text/html; charset=utf-8";

/// A post in the list, as `blog.html` sees it.
#[derive(Debug, Serialize)]
struct Item {
    slug: String,
    title: String,
    author: String,
    /// `26 November 2026`.
    published: String,
    /// RFC 3339, for `<time datetime>`.
    published_iso: String,
}

impl From<PostSummary> for Item {
    fn from(post: PostSummary) -> Self {
        let published_at = post.published_at.unwrap_or(post.updated_at);
        Self {
            slug: post.slug,
            title: post.title,
            author: post.author,
            published: human_date(published_at),
            published_iso: rfc3339(published_at),
        }
    }
}

/// `blog.html`'s data.
#[derive(Debug, Serialize)]
struct Index {
    posts: Vec<Item>,
    page: u64,
    /// The newer page's number, if any.
    prev: Option<u64>,
    /// The older page's number, if any.
    next: Option<u64>,
}

/// `post.html`'s data.
#[derive(Debug, Serialize)]
struct Show {
    post: Article,
}

/// One post, as `post.html` sees it.
#[derive(Debug, Serialize)]
struct Article {
    slug: String,
    title: String,
    author: String,
    /// Sanitised when it was written: the template prints it as it is.
    body_html: String,
    published: String,
    published_iso: String,
    updated: String,
    updated_iso: String,
    /// Changed after it was published (on another day).
    revised: bool,
}

impl From<PostDetail> for Article {
    fn from(post: PostDetail) -> Self {
        let published_at = post.published_at.unwrap_or(post.created_at);
        Self {
            slug: post.slug,
            title: post.title,
            author: post.author,
            body_html: post.body_html,
            published: human_date(published_at),
            published_iso: rfc3339(published_at),
            updated: human_date(post.updated_at),
            updated_iso: rfc3339(post.updated_at),
            revised: post.updated_at.date() > published_at.date(),
        }
    }
}

/// `GET /blog?page=N`.
pub(super) async fn index(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    MaybeSignedIn(who): MaybeSignedIn,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let page = page(query, state.config.posts_per_page)?;
    let listing = posts::list_published(&state.db, page).await?;
    if listing.items.is_empty() && page.number > 1 {
        return Err(AppError::NotFound);
    }
    let data = Index {
        page: page.number,
        prev: (page.number > 1).then(|| page.number - 1),
        next: listing.has_next.then(|| page.number + 1),
        posts: listing.items.into_iter().map(Item::from).collect(),
    };
    page_for(&state, &headers, who.as_ref(), "blog.html", data)
}

/// `GET /blog/{slug}`.
pub(super) async fn show(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    MaybeSignedIn(who): MaybeSignedIn,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Ok(Path(slug)) = slug else {
        return Err(AppError::NotFound);
    };
    if !input::is_slug(&slug) {
        return Err(AppError::NotFound);
    }
    let post = posts::published_by_slug(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    let data = Show {
        post: Article::from(post),
    };
    page_for(&state, &headers, who.as_ref(), "post.html", data)
}

/// A public page as `who` sees it: cacheable for anonymous readers, private for a signed-in
/// one (it shows their name and carries their CSRF token).
fn page_for(
    state: &State,
    headers: &HeaderMap,
    who: Option<&SignedIn>,
    template: &str,
    data: impl Serialize,
) -> Result<Response, AppError> {
    let html = state.page(
        template,
        who.map(|w| &w.viewer),
        who.map(|w| w.csrf.as_str()),
        data,
    )?;
    let audience = if who.is_some() {
        Audience::Private
    } else {
        Audience::Public
    };
    Ok(cache::respond(headers, audience, HTML, html))
}
