//! The public blog as a reader gets it: `/blog` in pages of ten, `/blog/{slug}`, drafts and
//! unknown slugs 404, Markdown with script in it served inert, and what caches may keep.

use reqwest::StatusCode;

use super::{App, Backend, both, text_of};

both!(
    blog_pages_paginate,
    drafts_are_not_public,
    markdown_with_script_is_served_inert,
    public_pages_revalidate_and_private_ones_are_not_stored,
    anonymous_reads_are_kept_until_a_write,
);

/// The titles of the posts listed on a `/blog` page, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("<h2><a href=\"/blog/")
        .skip(1)
        .filter_map(|rest| Some(rest.split_once("\">")?.1.split_once("</a>")?.0.to_owned()))
        .collect()
}

async fn blog_pages_paginate(backend: Backend) {
    let app = App::start(backend).await;
    let (status, _, empty) = app.get("/blog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("Nothing published yet."), "{empty}");

    let ada = app.user("Ada", "editor").await;
    for n in 1..=23 {
        app.post(
            &ada,
            &format!("p{n:02}"),
            &format!("Post {n:02}"),
            "x",
            "published",
        )
        .await;
    }
    let (status, headers, first) = app.get("/blog").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let expected: Vec<String> = (14..=23).rev().map(|n| format!("Post {n:02}")).collect();
    assert_eq!(listed(&first), expected);
    assert!(first.contains("href=\"/blog?page=2\""), "{first}");
    assert!(!first.contains("rel=\"prev\""), "{first}");
    assert!(first.contains("Ada · <time datetime=\""), "{first}");
    assert!(
        first.contains("<link rel=\"stylesheet\" href=\"/style.css\">"),
        "the site's look"
    );

    let (status, _, second) = app.get("/blog?page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&second).first().map(String::as_str), Some("Post 13"));
    assert!(second.contains("href=\"/blog\""), "page 1's link is /blog");
    let (status, _, last) = app.get("/blog?page=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&last), ["Post 03", "Post 02", "Post 01"]);
    assert!(!last.contains("rel=\"next\""), "{last}");
    assert!(last.contains("href=\"/blog?page=2\""), "{last}");

    let (status, headers, past) = app.get("/blog?page=4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(past.contains("404"), "{past}");
    for bad in ["0", "x", "2.5", ""] {
        let (status, _, _) = app.get(&format!("/blog?page={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "page={bad}");
    }
    let (status, headers, _) = app.get("/blog/").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers["location"], "/blog");
}

async fn drafts_are_not_public(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    app.post(
        &ada,
        "out",
        "Out in the open",
        "Hello **world**",
        "published",
    )
    .await;
    app.post(&ada, "hidden", "Hidden draft", "secret words", "draft")
        .await;

    let (status, _, page) = app.get("/blog/out").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>Out in the open</h1>"), "{page}");
    assert!(
        page.contains("<p>Hello <strong>world</strong></p>"),
        "{page}"
    );
    assert!(page.contains("<title>Out in the open — "), "{page}");

    let (status, _, page) = app.get("/blog/hidden").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("secret words"));
    let (_, _, list) = app.get("/blog").await;
    assert_eq!(listed(&list), ["Out in the open"]);
    for unknown in ["/blog/nope", "/blog/UPPER", "/blog/a/b", "/blog/%ff"] {
        let (status, _, _) = app.get(unknown).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    }
}

async fn markdown_with_script_is_served_inert(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let body = "# Safe heading\n\n\
        <script>alert('script')</script>\n\n\
        <img src=x onerror=\"alert('onerror')\">\n\n\
        <p onclick=\"alert('onclick')\">click</p>\n\n\
        [js](javascript:alert('link')) [mixed](JaVaScRiPt:alert('mixed'))\n\n\
        <a href=\"jav&#x09;ascript:alert('entity')\">entity</a>\n\n\
        [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n\
        <iframe src=\"https://evil.example/\"></iframe><style>body{display:none}</style>\n\n\
        [fine](https://example.com/)";
    let title = "<script>alert('title')</script> & more";
    app.post(&ada, "xss", title, body, "published").await;

    let (status, _, page) = app.get("/blog/xss").await;
    assert_eq!(status, StatusCode::OK);
    let article = page
        .split("<article class=\"post\">")
        .nth(1)
        .and_then(|rest| rest.split("</article>").next())
        .expect("the article");
    let lower = article.to_ascii_lowercase();
    for bad in [
        "<script",
        "onerror",
        "onclick",
        "javascript:",
        "data:text",
        "<iframe",
        "<style",
        "alert('title')</script>",
    ] {
        assert!(!lower.contains(bad), "{bad} in the served page:\n{article}");
    }
    assert!(
        article.contains("&lt;script&gt;alert("),
        "the title is escaped: {article}"
    );
    assert!(article.contains("<h1>Safe heading</h1>"), "{article}");
    assert!(
        article.contains("<a href=\"https://example.com/\" rel=\"noopener noreferrer\">fine</a>"),
        "{article}"
    );
    assert!(article.contains(">click</p>"), "{article}");
    // The whole page runs no script at all (the site's own pages have none either).
    assert!(!page.to_ascii_lowercase().contains("<script"), "{page}");
    // The listing escapes the title too.
    let (_, _, list) = app.get("/blog").await;
    assert!(!list.contains("<script>alert"), "{list}");
}

async fn public_pages_revalidate_and_private_ones_are_not_stored(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    app.post(&ada, "cached", "Cached", "body", "published")
        .await;
    for path in ["/blog", "/blog/cached", "/api/posts", "/api/posts/cached"] {
        let (status, headers, _) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        let response = app
            .client()
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("revalidate");
        let (status, headers, body) = text_of(response).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(headers["etag"], etag.as_str());
        assert!(body.is_empty());
    }
    // A change shows at once: the old tag no longer matches.
    let (_, headers, _) = app.get("/blog/cached").await;
    let old = headers["etag"].to_str().expect("etag").to_owned();
    let change = serde_json::json!({"title": "Changed"});
    app.api(
        reqwest::Method::PATCH,
        "/api/posts/cached",
        Some(&ada),
        Some(&change),
    )
    .await;
    let response = app
        .client()
        .get(app.url("/blog/cached"))
        .header("if-none-match", &old)
        .send()
        .await
        .expect("get");
    let (status, _, page) = text_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>Changed</h1>"));

    // A signed-in reader's page names them: never stored.
    let response = app
        .client()
        .get(app.url("/blog/cached"))
        .header("cookie", format!("__Host-onebox_session={}", ada.session))
        .send()
        .await
        .expect("get");
    let (status, headers, page) = text_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "private, no-store");
    assert!(headers.get("etag").is_none());
    assert!(page.contains("Sign out Ada"), "{page}");
}

/// The micro-cache (`app.page_cache_ttl`, here an hour so that nothing depends on timing): an
/// anonymous reader gets the kept page even after the database changed behind onebox's back
/// (another box's write), a signed-in reader never does, and a write through onebox ends it at
/// once.
async fn anonymous_reads_are_kept_until_a_write(backend: Backend) {
    let app = App::start_with(backend, &["page_cache_ttl = \"1h\""]).await;
    let ada = app.user("Ada", "editor").await;
    app.post(&ada, "one", "One", "x", "published").await;
    let (_, _, page) = app.get("/blog").await;
    assert_eq!(listed(&page), ["One"]);
    let (_, _, json) = app.get("/api/posts").await;
    assert!(json.contains("\"One\""), "{json}");

    app.app
        .execute("UPDATE posts SET title = 'Changed elsewhere' WHERE slug = 'one'")
        .await;
    let (status, headers, kept) = app.get("/blog").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&kept), ["One"], "served from the cache");
    let tag = headers["etag"].to_str().expect("etag").to_owned();
    let again = app
        .client()
        .get(app.url("/blog"))
        .header("if-none-match", &tag)
        .send()
        .await
        .expect("GET");
    assert_eq!(
        again.status(),
        StatusCode::NOT_MODIFIED,
        "a hit revalidates too"
    );
    let (_, _, json) = app.get("/api/posts").await;
    assert!(json.contains("\"One\""), "{json}");

    // A signed-in reader reaches the database.
    let (_, _, own) = text_of(
        app.client()
            .get(app.url("/blog"))
            .header("cookie", format!("__Host-onebox_session={}", ada.session))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(listed(&own), ["Changed elsewhere"]);

    // Any write through onebox starts afresh.
    app.post(&ada, "two", "Two", "y", "draft").await;
    let (_, _, fresh) = app.get("/blog").await;
    assert_eq!(listed(&fresh), ["Changed elsewhere"]);
    let (_, _, json) = app.get("/api/posts").await;
    assert!(json.contains("\"Changed elsewhere\""), "{json}");
}
