//! The public pages: `GET /` (the home page: the site's title and tagline, the latest posts),
//! `GET /blog` (published posts, newest first, one page of `app.posts_per_page`, each with its
//! excerpt) and `GET /blog/{slug}` (one published post; drafts and unknown slugs are 404).
//! Rendered from `home.html`, `blog.html` and `post.html`, each with its canonical address;
//! cached as [`super::super::cache`] says.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::super::auth::{MaybeSignedIn, SignedIn};
use super::super::cache::{self, Audience};
use super::super::error::AppError;
use super::super::render::Meta;
use super::super::routes::Origin;
use super::super::state::State;
use super::{PageQuery, human_date, input, page, rfc3339};
use crate::db::posts::{self, PostDetail, PostSummary};

const HTML: &str = "text/html; charset=utf-8";

/// Posts on the home page.
pub const HOME_POSTS: u64 = 5;

/// A post in a list, as `home.html` and `blog.html` see it.
#[derive(Debug, Serialize)]
struct Item {
    slug: String,
    title: String,
    /// The start of the body as plain text.
    excerpt: String,
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
            excerpt: post.excerpt,
            author: post.author,
            published: human_date(published_at),
            published_iso: rfc3339(published_at),
        }
    }
}

/// `home.html`'s data.
#[derive(Debug, Serialize)]
struct Home {
    /// The latest posts.
    posts: Vec<Item>,
    /// Whether older posts exist (a link to `/blog`).
    more: bool,
    meta: Meta,
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
    meta: Meta,
}

/// `post.html`'s data.
#[derive(Debug, Serialize)]
struct Show {
    post: Article,
    meta: Meta,
}

/// One post, as `post.html` sees it.
#[derive(Debug, Serialize)]
struct Article {
    slug: String,
    title: String,
    author: String,
    /// Sanitised when it was written: the template prints it as it is.
    body_html: String,
    /// The start of the body as plain text (the page's description).
    excerpt: String,
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
            excerpt: post.excerpt,
            published: human_date(published_at),
            published_iso: rfc3339(published_at),
            updated: human_date(post.updated_at),
            updated_iso: rfc3339(post.updated_at),
            revised: post.updated_at.date() > published_at.date(),
        }
    }
}

/// `GET /`.
pub(in crate::app) async fn home(
    axum::extract::State(state): axum::extract::State<State>,
    Origin(origin): Origin,
    headers: HeaderMap,
    MaybeSignedIn(who): MaybeSignedIn,
) -> Result<Response, AppError> {
    let page = posts::Page {
        number: 1,
        per_page: HOME_POSTS,
    };
    let listing = posts::list_published(&state.db, page).await?;
    let site = state.site.load();
    let data = Home {
        more: listing.has_next,
        posts: listing.items.into_iter().map(Item::from).collect(),
        meta: Meta {
            canonical: format!("{origin}/"),
            title: site.title.clone(),
            description: site.tagline.clone(),
            kind: "website",
        },
    };
    page_for(&state, &headers, who.as_ref(), "home.html", data)
}

/// `GET /blog?page=N`.
pub(in crate::app) async fn index(
    axum::extract::State(state): axum::extract::State<State>,
    Origin(origin): Origin,
    headers: HeaderMap,
    MaybeSignedIn(who): MaybeSignedIn,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let page = page(query, state.config.posts_per_page)?;
    let listing = posts::list_published(&state.db, page).await?;
    if listing.items.is_empty() && page.number > 1 {
        return Err(AppError::NotFound);
    }
    let site = state.site.load();
    let data = Index {
        page: page.number,
        prev: (page.number > 1).then(|| page.number - 1),
        next: listing.has_next.then(|| page.number + 1),
        posts: listing.items.into_iter().map(Item::from).collect(),
        meta: Meta {
            canonical: match page.number {
                1 => format!("{origin}/blog"),
                n => format!("{origin}/blog?page={n}"),
            },
            title: format!("Blog — {}", site.title),
            description: site.tagline.clone(),
            kind: "website",
        },
    };
    page_for(&state, &headers, who.as_ref(), "blog.html", data)
}

/// `GET /blog/{slug}`.
pub(in crate::app) async fn show(
    axum::extract::State(state): axum::extract::State<State>,
    Origin(origin): Origin,
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
    let site = state.site.load();
    let description = if post.excerpt.is_empty() {
        site.tagline.clone()
    } else {
        post.excerpt.clone()
    };
    let data = Show {
        meta: Meta {
            canonical: format!("{origin}/blog/{}", post.slug),
            title: post.title.clone(),
            description,
            kind: "article",
        },
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
