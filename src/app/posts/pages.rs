//! The public pages: `GET /` (the home page: the site's title and tagline, the latest posts),
//! `GET /blog` (published posts, newest first, one page of `app.posts_per_page`, each with its
//! excerpt) and `GET /blog/{slug}` (one published post; drafts and unknown slugs are 404).
//! Rendered from `home.html`, `blog.html` and `post.html`, each with its canonical address;
//! cached as [`super::super::cache`] says. The lists' data reaches the templates as objects
//! read field by field (see [`super::super::render`]): an uncached list page renders on every
//! request of a signed-in reader.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use minijinja::Value;
use minijinja::value::{Enumerator, Object};
use serde::Serialize;

use super::super::auth::{MaybeSignedIn, SignedIn};
use super::super::cache::{self, Audience};
use super::super::error::AppError;
use super::super::render::Meta;
use super::super::routes::Origin;
use super::super::state::State;
use super::{PageQuery, human_date, input, page, rfc3339, with_dates};
use crate::db::posts::{self, PostDetail, PublicSummary};

const HTML: &str = "text/html; charset=utf-8";

/// Posts on the home page.
pub const HOME_POSTS: u64 = 5;

/// A post in a list, as `home.html` and `blog.html` see it: each field made a template value
/// once, from the row (a template reads some twice: `excerpt`), handed out without a copy.
#[derive(Debug)]
struct Item {
    slug: Value,
    title: Value,
    /// The start of the body as plain text.
    excerpt: Value,
    author: Value,
    /// `26 November 2026`.
    published: Value,
    /// RFC 3339, for `<time datetime>`.
    published_iso: Value,
}

impl From<PublicSummary> for Item {
    fn from(post: PublicSummary) -> Self {
        let (published, published_iso) = with_dates(
            post.published_at.unwrap_or(post.updated_at),
            |human, rfc3339| (Value::from(human), Value::from(rfc3339)),
        );
        Self {
            slug: Value::from(post.slug),
            title: Value::from(post.title),
            excerpt: Value::from(post.excerpt),
            author: Value::from(post.author),
            published,
            published_iso,
        }
    }
}

impl Object for Item {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let value = match key {
            "slug" => &self.slug,
            "title" => &self.title,
            "excerpt" => &self.excerpt,
            "author" => &self.author,
            "published" => &self.published,
            "published_iso" => &self.published_iso,
            _ => return None,
        };
        Some(value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&[
            "slug",
            "title",
            "excerpt",
            "author",
            "published",
            "published_iso",
        ])
    }
}

/// A list's posts as templates iterate them: one object per post.
fn items(posts: Vec<PublicSummary>) -> Value {
    Value::from(
        posts
            .into_iter()
            .map(|post| Value::from_object(Item::from(post)))
            .collect::<Vec<_>>(),
    )
}

/// `home.html`'s data.
#[derive(Debug)]
struct Home {
    /// The latest posts ([`items`]).
    posts: Value,
    /// Whether older posts exist (a link to `/blog`).
    more: bool,
    meta: Arc<Meta>,
}

impl Object for Home {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "posts" => Some(self.posts.clone()),
            "more" => Some(Value::from(self.more)),
            "meta" => Some(Value::from_dyn_object(Arc::clone(&self.meta))),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["posts", "more", "meta"])
    }
}

/// `blog.html`'s data.
#[derive(Debug)]
struct Index {
    /// The page's posts ([`items`]).
    posts: Value,
    page: u64,
    /// The newer page's number, if any.
    prev: Option<u64>,
    /// The older page's number, if any.
    next: Option<u64>,
    meta: Arc<Meta>,
}

impl Object for Index {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "posts" => Some(self.posts.clone()),
            "page" => Some(Value::from(self.page)),
            "prev" => Some(Value::from(self.prev)),
            "next" => Some(Value::from(self.next)),
            "meta" => Some(Value::from_dyn_object(Arc::clone(&self.meta))),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["posts", "page", "prev", "next", "meta"])
    }
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
        posts: items(listing.items),
        meta: Arc::new(Meta {
            canonical: [&*origin, "/"].concat(),
            title: site.title.clone(),
            description: site.tagline.clone(),
            kind: "website",
        }),
    };
    page_for(
        &state,
        &headers,
        who.as_ref(),
        "home.html",
        Value::from_object(data),
    )
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
        posts: items(listing.items),
        meta: Arc::new(Meta {
            canonical: match page.number {
                1 => [&*origin, "/blog"].concat(),
                n => format!("{origin}/blog?page={n}"),
            },
            title: ["Blog — ", &site.title].concat(),
            description: site.tagline.clone(),
            kind: "website",
        }),
    };
    page_for(
        &state,
        &headers,
        who.as_ref(),
        "blog.html",
        Value::from_object(data),
    )
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
    page_for(
        &state,
        &headers,
        who.as_ref(),
        "post.html",
        Value::from(minijinja::value::Serde(&data)),
    )
}

/// A public page as `who` sees it: cacheable for anonymous readers, private for a signed-in
/// one (it shows their name and carries their CSRF token).
fn page_for(
    state: &State,
    headers: &HeaderMap,
    who: Option<&SignedIn>,
    template: &str,
    data: Value,
) -> Result<Response, AppError> {
    let html = state.render(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::render::{SiteInfo, Templates, Viewer};
    use crate::db::users::Role;

    fn summary(n: i64, excerpt: &str) -> PublicSummary {
        let time = chrono::NaiveDate::from_ymd_opt(2026, 11, 6)
            .and_then(|d| d.and_hms_opt(9, 5, 7))
            .expect("valid");
        PublicSummary {
            slug: format!("post-{n}"),
            title: format!("Post <{n}> & \"more\" of a title longer than a short string"),
            excerpt: excerpt.to_owned(),
            author: "Ada 'L'".to_owned(),
            published_at: (n % 2 == 0).then_some(time),
            updated_at: time,
        }
    }

    /// The pager links to the newer page (`/blog` for the first), or holds its place.
    #[test]
    fn the_pager_links_to_the_newer_page() {
        let (templates, _) = Templates::load(None).expect("built-in templates load");
        let site = Arc::new(SiteInfo::default());
        for (page, prev, newer) in [
            (
                1,
                None,
                "    <nav class=\"pager\" aria-label=\"Pages\">\n      <span></span>\n",
            ),
            (2, Some(1), "<a rel=\"prev\" href=\"/blog\">← Newer</a>\n"),
            (
                5,
                Some(4),
                "<a rel=\"prev\" href=\"/blog?page=4\">← Newer</a>\n",
            ),
        ] {
            let index = Index {
                posts: items(vec![summary(1, "x")]),
                page,
                prev,
                next: Some(page + 1),
                meta: Arc::new(Meta {
                    canonical: "https://www.foobar.com/blog".to_owned(),
                    title: "Blog".to_owned(),
                    description: String::new(),
                    kind: "website",
                }),
            };
            let html = templates
                .render("blog.html", &site, None, None, Value::from_object(index))
                .map(String::from_utf8)
                .expect("renders")
                .expect("UTF-8");
            assert!(html.contains(newer), "{page}: {html}");
            assert_eq!(
                html.matches("Newer").count(),
                usize::from(prev.is_some()),
                "{html}"
            );
        }
    }

    /// The list pages read from objects exactly what they read from the same data converted
    /// through serde (as every other page's data is), signed in or not.
    #[test]
    fn list_objects_render_as_their_serde_data() {
        let (templates, _) = Templates::load(None).expect("built-in templates load");
        let site = Arc::new(SiteInfo::default());
        let viewer = Viewer {
            id: 7,
            email: "ada@foobar.com".to_owned(),
            display_name: "Ada <L>".to_owned(),
            role: Role::Admin,
        };
        let rows = || {
            vec![
                summary(1, "An excerpt with <b>tags</b> & ünïcode."),
                summary(2, ""),
            ]
        };
        let as_json = |row: PublicSummary| {
            let published_at = row.published_at.unwrap_or(row.updated_at);
            serde_json::json!({
                "slug": row.slug, "title": row.title, "excerpt": row.excerpt,
                "author": row.author, "published": human_date(published_at),
                "published_iso": rfc3339(published_at),
            })
        };
        let meta = || Meta {
            canonical: "https://www.foobar.com/blog?page=2".to_owned(),
            title: "Blog — foobar.com".to_owned(),
            description: "a \"tagline\"".to_owned(),
            kind: "website",
        };
        for (who, csrf) in [(None, None), (Some(&viewer), Some("token"))] {
            let index = Index {
                posts: items(rows()),
                page: 2,
                prev: Some(1),
                next: Some(3),
                meta: Arc::new(meta()),
            };
            let lazy = templates
                .render("blog.html", &site, who, csrf, Value::from_object(index))
                .map(String::from_utf8)
                .expect("renders")
                .expect("UTF-8");
            let json = serde_json::json!({
                "posts": rows().into_iter().map(as_json).collect::<Vec<_>>(),
                "page": 2, "prev": 1, "next": 3, "meta": meta(),
            });
            let whole = templates
                .page("blog.html", &site, who, csrf, json)
                .expect("renders");
            assert_eq!(lazy, whole);
            assert!(
                lazy.contains("Post &lt;1&gt; &amp; &quot;more&quot;"),
                "{lazy}"
            );
            assert_eq!(
                lazy.contains(r#"value="token">"#) && lazy.contains("Sign out Ada &lt;L&gt;"),
                who.is_some(),
                "{lazy}"
            );
            let home = Home {
                posts: items(rows()),
                more: true,
                meta: Arc::new(meta()),
            };
            let lazy = templates
                .render("home.html", &site, who, csrf, Value::from_object(home))
                .map(String::from_utf8)
                .expect("renders")
                .expect("UTF-8");
            let json = serde_json::json!({
                "posts": rows().into_iter().map(as_json).collect::<Vec<_>>(),
                "more": true, "meta": meta(),
            });
            let whole = templates
                .page("home.html", &site, who, csrf, json)
                .expect("renders");
            assert_eq!(lazy, whole);
        }
    }
}
