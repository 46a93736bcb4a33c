//! One site, not two (issue 13): every page — the home page, the blog, a post, the sign-in,
//! the editor, a 404 for a file the site does not have — shares one layout and navigation;
//! the home page shows the latest posts with their excerpts; the feed, the sitemap and
//! robots.txt say where everything is by its canonical address; public pages carry canonical
//! and Open Graph tags; the route table decides how each group's errors read.

use quick_xml::events::Event;
use reqwest::StatusCode;

use super::posts::{App, error_of, json_of};
use super::support::{Backend, both};
use crate::web::names::passes_csp;

both!(
    every_page_shares_one_layout,
    the_home_page_shows_the_latest_posts_with_excerpts,
    feed_sitemap_and_robots_name_the_canonical_addresses,
    public_pages_have_canonical_and_open_graph_tags,
    each_route_group_answers_errors_its_own_way,
    posts_written_before_excerpts_get_theirs,
);

/// `https://www.foobar.com:PORT`: the canonical origin as the test server has it.
fn origin(app: &App) -> String {
    format!("https://www.foobar.com:{}", app.app.server.https.port())
}

/// The `<header class="bar">` of a page: the layout's navigation.
fn header_of(page: &str) -> &str {
    let start = page
        .find("<header class=\"bar\">")
        .unwrap_or_else(|| panic!("no layout header in {page}"));
    let end = page[start..].find("</header>").expect("</header>") + start;
    &page[start..end]
}

async fn every_page_shares_one_layout(backend: Backend) {
    let app = App::start(backend).await;
    let ed = app.user("Ed", "editor").await;
    app.post(&ed, "hello", "Hello", "Hi *there*.", "published")
        .await;
    let (_, _, home) = app.get("/").await;
    let layout = header_of(&home).to_owned();
    assert!(layout.contains("<a href=\"/blog\">Blog</a>"), "{layout}");
    assert!(
        layout.contains("<a href=\"/signin\">Sign in</a>"),
        "{layout}"
    );
    for (path, status) in [
        ("/blog", 200),
        ("/blog/hello", 200),
        ("/signin", 200),
        ("/blog/no-such-post", 404),
        ("/no/such/file.html", 404),
        ("/.hidden", 404),
    ] {
        let (code, headers, page) = app.get(path).await;
        assert_eq!(code.as_u16(), status, "{path}: {page}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(
            header_of(&page),
            layout,
            "{path} has the home page's layout"
        );
        assert!(page.contains("href=\"/style.css\""), "{path}");
    }
    // Signed in, every editor page: the same layout (with the viewer's links), and the CSP.
    let browser = app.app.visitor();
    browser.sign_in("ed@foobar.com").await;
    let signed_in = header_of(&browser.page("/", 200).await).to_owned();
    assert!(
        signed_in.contains("<a href=\"/editor\">Editor</a>"),
        "{signed_in}"
    );
    let client = app.client();
    for path in [
        "/editor",
        "/editor/new",
        "/editor/posts/1",
        "/editor/posts/1/delete",
    ] {
        let page = browser.page(path, 200).await;
        assert_eq!(header_of(&page), signed_in, "{path}");
        passes_csp(&client, &app.app.server, path, &page).await;
    }
    let (_, _, post) = app.get("/blog/hello").await;
    passes_csp(&client, &app.app.server, "/blog/hello", &post).await;
}

async fn the_home_page_shows_the_latest_posts_with_excerpts(backend: Backend) {
    let app = App::start(backend).await;
    let (_, _, empty) = app.get("/").await;
    assert!(empty.contains("Nothing published yet."), "{empty}");
    assert!(
        empty.contains("<a href=\"/signin\">Sign in</a> to write"),
        "{empty}"
    );
    let ed = app.user("Ed", "editor").await;
    for n in 1..=6 {
        let body = format!("# Heading {n}\n\nThe *opening* of post {n}.\n\n```\ncode {n}\n```\n");
        app.post(
            &ed,
            &format!("post-{n}"),
            &format!("Post {n}"),
            &body,
            "published",
        )
        .await;
    }
    app.post(&ed, "draft", "A draft", "Secret.", "draft").await;
    let (status, headers, home) = app.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache");
    // The five newest, newest first, each with its excerpt; then a way to the rest.
    let mut at = 0;
    for n in (2..=6).rev() {
        let link = format!("<a href=\"/blog/post-{n}\">Post {n}</a>");
        let found = home[at..]
            .find(&link)
            .unwrap_or_else(|| panic!("{link} in order: {home}"));
        at += found;
        let excerpt = format!("<p class=\"excerpt\">The opening of post {n}.</p>");
        assert!(home[at..].contains(&excerpt), "{excerpt}: {home}");
    }
    assert!(!home.contains("/blog/post-1\""), "only five: {home}");
    assert!(!home.contains("A draft"), "{home}");
    assert!(home.contains("<a href=\"/blog\">All posts →</a>"), "{home}");
    let (_, _, blog) = app.get("/blog").await;
    assert!(
        blog.contains("<p class=\"excerpt\">The opening of post 1.</p>"),
        "{blog}"
    );
    let (_, _, list) = app
        .api(reqwest::Method::GET, "/api/posts", None, None)
        .await;
    assert_eq!(list["posts"][0]["excerpt"], "The opening of post 6.");
}

/// Every element of an XML document, in order, as (name, text) — and panics if it is not
/// well-formed.
fn elements(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => out.push((
                String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                String::new(),
            )),
            Ok(Event::Text(text)) => {
                let text = text.decode().expect("utf-8").into_owned();
                let text = quick_xml::escape::unescape(&text)
                    .expect("entities")
                    .into_owned();
                if let Some(last) = out.last_mut() {
                    last.1.push_str(&text);
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                let name = reference.decode().expect("utf-8").into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .expect("entity")
                    .into_owned();
                if let Some(last) = out.last_mut() {
                    last.1.push_str(&text);
                }
            }
            Ok(Event::Eof) => return out,
            Ok(_) => {}
            Err(error) => panic!(
                "not well-formed at {}: {error}\n{xml}",
                reader.error_position()
            ),
        }
    }
}

/// The texts of the elements named `name`.
fn texts(elements: &[(String, String)], name: &str) -> Vec<String> {
    elements
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, t)| t.trim().to_owned())
        .collect()
}

async fn feed_sitemap_and_robots_name_the_canonical_addresses(backend: Backend) {
    let app = App::start(backend).await;
    let origin = origin(&app);
    let ed = app.user("Ed", "editor").await;
    app.post(
        &ed,
        "first",
        "First & <best>",
        "Body with <b>HTML</b> & [a link](/blog).",
        "published",
    )
    .await;
    app.post(&ed, "second", "Second", "Another.", "published")
        .await;
    app.post(&ed, "draft", "Draft", "Not yet.", "draft").await;

    let (status, headers, feed) = app.get("/feed.xml").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert!(headers.contains_key("etag"), "{headers:?}");
    let parsed = elements(&feed);
    assert_eq!(parsed[0].0, "feed");
    assert_eq!(texts(&parsed, "title")[0], "foobar.com");
    assert_eq!(
        texts(&parsed, "id"),
        [
            format!("{origin}/"),
            format!("{origin}/blog/second"),
            format!("{origin}/blog/first"),
        ],
        "newest first, no draft"
    );
    assert_eq!(texts(&parsed, "title")[2], "First & <best>");
    let content = &texts(&parsed, "content")[1];
    assert!(
        content.contains("<b>HTML</b>"),
        "the HTML, escaped once: {content}"
    );
    assert!(feed.contains(&format!("xml:base=\"{origin}/\"")), "{feed}");
    let (_, _, home) = app.get("/").await;
    assert!(
        home.contains("<link rel=\"alternate\" type=\"application/atom+xml\" title=\"foobar.com\" href=\"/feed.xml\">"),
        "{home}"
    );

    let (status, headers, sitemap) = app.get("/sitemap.xml").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/xml; charset=utf-8");
    let parsed = elements(&sitemap);
    assert_eq!(parsed[0].0, "urlset");
    assert_eq!(
        texts(&parsed, "loc"),
        [
            format!("{origin}/"),
            format!("{origin}/blog"),
            format!("{origin}/blog/second"),
            format!("{origin}/blog/first"),
        ]
    );
    assert_eq!(texts(&parsed, "lastmod").len(), 2);

    let (status, headers, robots) = app.get("/robots.txt").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(robots.starts_with("User-agent: *\n"), "{robots}");
    assert!(robots.contains("Disallow: /editor\n"), "{robots}");
    assert!(
        robots.contains(&format!("Sitemap: {origin}/sitemap.xml\n")),
        "{robots}"
    );
}

/// The `content` of `<meta property="NAME" ...>` or `<meta name="NAME" ...>`.
fn meta(page: &str, name: &str) -> Option<String> {
    for attribute in ["property", "name"] {
        let marker = format!("<meta {attribute}=\"{name}\" content=\"");
        if let Some(start) = page.find(&marker) {
            let rest = &page[start + marker.len()..];
            return Some(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    None
}

async fn public_pages_have_canonical_and_open_graph_tags(backend: Backend) {
    let app = App::start_with(backend, &["posts_per_page = 1"]).await;
    let origin = origin(&app);
    let ed = app.user("Ed", "editor").await;
    app.post(&ed, "one", "One", "The first post.", "published")
        .await;
    app.post(&ed, "two", "Two & more", "The *second* post.", "published")
        .await;
    for (path, canonical, kind, title) in [
        ("/", format!("{origin}/"), "website", "foobar.com"),
        (
            "/blog",
            format!("{origin}/blog"),
            "website",
            "Blog — foobar.com",
        ),
        (
            "/blog?page=2",
            format!("{origin}/blog?page=2"),
            "website",
            "Blog — foobar.com",
        ),
        (
            "/blog/two",
            format!("{origin}/blog/two"),
            "article",
            "Two &amp; more",
        ),
    ] {
        let (_, _, page) = app.get(path).await;
        assert!(
            page.contains(&format!("<link rel=\"canonical\" href=\"{canonical}\">")),
            "{path}: {page}"
        );
        assert_eq!(
            meta(&page, "og:url").as_deref(),
            Some(canonical.as_str()),
            "{path}"
        );
        assert_eq!(meta(&page, "og:type").as_deref(), Some(kind), "{path}");
        assert_eq!(meta(&page, "og:title").as_deref(), Some(title), "{path}");
        assert_eq!(
            meta(&page, "og:site_name").as_deref(),
            Some("foobar.com"),
            "{path}"
        );
        assert_eq!(meta(&page, "robots"), None, "{path}");
    }
    let (_, _, post) = app.get("/blog/two").await;
    assert_eq!(
        meta(&post, "og:description").as_deref(),
        Some("The second post.")
    );
    assert_eq!(
        meta(&post, "description").as_deref(),
        Some("The second post.")
    );
    // Pages that are not for search engines say so, and claim no address.
    for path in ["/signin", "/no/such/page"] {
        let (_, _, page) = app.get(path).await;
        assert_eq!(meta(&page, "robots").as_deref(), Some("noindex"), "{path}");
        assert!(!page.contains("rel=\"canonical\""), "{path}");
    }
}

async fn each_route_group_answers_errors_its_own_way(backend: Backend) {
    let app = App::start_with(backend, &[]).await;
    // The API: JSON, for every path under it, known or not.
    for path in [
        "/api",
        "/api/",
        "/api/nothing",
        "/api/posts/a/b",
        "/api/posts/NOT_A_SLUG",
    ] {
        let (status, headers, body) = app.api(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(error_of(&body).0, 404, "{path}");
    }
    let (status, headers, body) = app
        .api(reqwest::Method::PUT, "/api/posts", None, None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET,HEAD,POST");
    assert_eq!(error_of(&body).0, 405);
    // The site and the editor: pages in the layout.
    for path in ["/editor/nothing/here", "/blog/a/b", "/blog/Not_A_Slug"] {
        let (status, headers, page) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert!(
            page.contains("<h1>404 <span>Not Found</span></h1>"),
            "{path}: {page}"
        );
    }
    // A body larger than web.max_body_bytes, streamed without a length: 413 in the API's
    // own shape (the application reads it, the web origin counts it).
    let ed = app.user("Ed", "editor").await;
    let response = app
        .client()
        .post(app.url("/api/posts"))
        .bearer_auth(&ed.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap(Unsized(40)))
        .send()
        .await
        .expect("POST");
    let (status, _, body) = json_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_of(&body).0, 413);
}

/// A request body of this many 64 KiB chunks of spaces, its length not declared (chunked).
struct Unsized(usize);

impl http_body::Body for Unsized {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

async fn posts_written_before_excerpts_get_theirs(backend: Backend) {
    let app = App::start(backend).await;
    let ed = app.user("Ed", "editor").await;
    app.post(&ed, "old", "Old", "Written *before* excerpts.", "published")
        .await;
    // As a post stored before the migration that added the column is: no excerpt.
    app.app
        .execute("UPDATE `posts` SET `excerpt` = '' WHERE `slug` = 'old'")
        .await;
    let app = App {
        db: app.db,
        app: app.app.restart(),
    };
    let (_, _, blog) = app.get("/blog").await;
    assert!(
        blog.contains("<p class=\"excerpt\">Written before excerpts.</p>"),
        "{blog}"
    );
}
