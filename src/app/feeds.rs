//! What machines read: the Atom feed (`/feed.xml`, RFC 4287), the sitemap (`/sitemap.xml`,
//! sitemaps.org 0.9) and `robots.txt`. Addresses in them are absolute, on the site's canonical
//! origin ([`Origin`]); each is a public read, revalidated by ETag like the pages.

use axum::http::HeaderMap;
use axum::response::Response;

use super::cache::{self, Audience};
use super::error::AppError;
use super::routes::Origin;
use super::state::State;
use crate::db::posts::{self, Timestamp};

/// Entries in the feed.
pub const FEED_ENTRIES: u64 = 20;

/// URLs in the sitemap at most (the format's limit is 50 000 per file).
pub const SITEMAP_URLS: u64 = 50_000;

/// `GET /feed.xml`: the latest published posts, whole.
pub(super) async fn atom(
    axum::extract::State(state): axum::extract::State<State>,
    Origin(origin): Origin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let entries = posts::feed(&state.db, FEED_ENTRIES).await?;
    let site = state.site.load();
    let updated = entries
        .iter()
        .map(|e| e.updated_at)
        .max()
        .map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), rfc3339);
    let mut xml = String::with_capacity(4096);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:base=\"{origin}/\">\n\
         \x20 <title>{title}</title>\n\
         \x20 <subtitle>{tagline}</subtitle>\n\
         \x20 <id>{origin}/</id>\n\
         \x20 <link rel=\"self\" type=\"application/atom+xml\" href=\"{origin}/feed.xml\"/>\n\
         \x20 <link rel=\"alternate\" type=\"text/html\" href=\"{origin}/blog\"/>\n\
         \x20 <updated>{updated}</updated>\n",
        origin = escape(&origin),
        title = escape(&site.title),
        tagline = escape(&site.tagline),
    ));
    for entry in entries {
        let url = format!("{}/blog/{}", escape(&origin), escape(&entry.slug));
        let published = rfc3339(entry.published_at.unwrap_or(entry.updated_at));
        xml.push_str(&format!(
            "  <entry>\n\
             \x20   <title>{title}</title>\n\
             \x20   <id>{url}</id>\n\
             \x20   <link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\n\
             \x20   <published>{published}</published>\n\
             \x20   <updated>{updated}</updated>\n\
             \x20   <author><name>{author}</name></author>\n\
             \x20   <summary>{summary}</summary>\n\
             \x20   <content type=\"html\">{content}</content>\n\
             \x20 </entry>\n",
            title = escape(&entry.title),
            updated = rfc3339(entry.updated_at),
            author = escape(&entry.author),
            summary = escape(&entry.excerpt),
            content = escape(&entry.body_html),
        ));
    }
    xml.push_str("</feed>\n");
    Ok(cache::respond(
        &headers,
        Audience::Public,
        "application/atom+xml; charset=utf-8",
        xml,
    ))
}

/// `GET /sitemap.xml`: the home page, the blog, and every published post.
pub(super) async fn sitemap(
    axum::extract::State(state): axum::extract::State<State>,
    Origin(origin): Origin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let located = posts::locations(&state.db, SITEMAP_URLS - 2).await?;
    let origin = escape(&origin);
    let mut xml = String::with_capacity(128 + located.len() * 128);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    xml.push_str(&format!("  <url><loc>{origin}/</loc></url>\n"));
    xml.push_str(&format!("  <url><loc>{origin}/blog</loc></url>\n"));
    for post in located {
        xml.push_str(&format!(
            "  <url><loc>{origin}/blog/{slug}</loc><lastmod>{lastmod}</lastmod></url>\n",
            slug = escape(&post.slug),
            lastmod = rfc3339(post.updated_at),
        ));
    }
    xml.push_str("</urlset>\n");
    Ok(cache::respond(
        &headers,
        Audience::Public,
        "application/xml; charset=utf-8",
        xml,
    ))
}

/// `GET /robots.txt`: everything public may be crawled; the sign-in, the editor and the API
/// are not pages for a search engine; where the sitemap is.
pub(super) async fn robots(Origin(origin): Origin, headers: HeaderMap) -> Response {
    let text = format!(
        "User-agent: *\n\
         Disallow: /editor\n\
         Disallow: /signin\n\
         Disallow: /signout\n\
         Disallow: /api/\n\
         \n\
         Sitemap: {origin}/sitemap.xml\n"
    );
    cache::respond(
        &headers,
        Audience::Public,
        "text/plain; charset=utf-8",
        text,
    )
}

/// `text` escaped for XML character data and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all (a title cannot hold them; a body might).
            c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 3339, UTC, whole seconds, as Atom and sitemaps want it.
fn rfc3339(time: Timestamp) -> String {
    time.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">Tom & Jerry's</a>\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;"
        );
    }
}
