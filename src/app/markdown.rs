//! A post's Markdown to the HTML a page shows, rendered once when the post is written (so a
//! read only copies `body_html`) and sanitised, because Markdown lets raw HTML through.
//!
//! Two steps, each by a well-kept crate:
//!
//! 1. pulldown-cmark renders CommonMark with tables and strikethrough (raw HTML passes through
//!    as CommonMark says);
//! 2. ammonia parses the result as a browser would and keeps only an allow-list of elements
//!    and attributes: no `<script>`, `<style>`, `<iframe>`, forms or event handlers; URLs
//!    only `http:`, `https:`, `mailto:` or relative (so no `javascript:` or `data:`, in any
//!    case or encoding). Links get `rel="noopener noreferrer"`; not `nofollow`, since posts
//!    are written by the site's own editors, whose links the site vouches for.
//!
//! A code block keeps its `language-*` class (for a highlighter); no other class survives.

use std::borrow::Cow;
use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

/// The sanitiser, configured once.
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut cleaner = ammonia::Builder::default();
    cleaner
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer"))
        .add_tag_attributes("code", ["class"])
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("code", "class") => language_class(value).map(Cow::Borrowed),
            _ => Some(Cow::Borrowed(value)),
        });
    cleaner
});

/// Renders `markdown` to sanitised HTML.
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    CLEANER.clean(&unsafe_html).to_string()
}

/// The longest excerpt, in characters (before the ellipsis).
pub const EXCERPT_CHARS: usize = 280;

/// The start of `markdown` as plain text, for lists and feeds: the text of its paragraphs,
/// list items and quotes (not headings, code blocks, images or tables), whitespace folded, cut
/// at a word boundary near [`EXCERPT_CHARS`] with "…". Empty when the body has no such text.
pub fn excerpt(markdown: &str) -> String {
    use pulldown_cmark::{Event, Tag, TagEnd};
    let mut text = String::new();
    // Depth inside what an excerpt leaves out.
    let mut skipped = 0usize;
    let mut truncated = false;
    for event in Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    ) {
        match event {
            Event::Start(
                Tag::Heading { .. } | Tag::CodeBlock(_) | Tag::Image { .. } | Tag::Table(_),
            ) => {
                skipped += 1;
            }
            Event::End(TagEnd::Heading(_) | TagEnd::CodeBlock | TagEnd::Image | TagEnd::Table) => {
                skipped = skipped.saturating_sub(1);
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item) if skipped == 0 => text.push(' '),
            Event::Text(piece) | Event::Code(piece) if skipped == 0 => text.push_str(&piece),
            Event::SoftBreak | Event::HardBreak if skipped == 0 => text.push(' '),
            _ => {}
        }
        if text.chars().count() > EXCERPT_CHARS * 2 {
            truncated = true;
            break;
        }
    }
    let folded: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for word in &folded {
        if out.chars().count() + 1 + word.chars().count() > EXCERPT_CHARS {
            truncated = true;
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        // One word longer than the whole excerpt.
        out = folded
            .first()
            .map_or_else(String::new, |w| w.chars().take(EXCERPT_CHARS).collect());
    }
    if truncated && !out.is_empty() {
        out.push('…');
    }
    out
}

/// `language-xyz` as pulldown-cmark writes it for a fenced block, if that is all it is.
fn language_class(value: &str) -> Option<&str> {
    let name = value.strip_prefix("language-")?;
    let plain = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'#' | b'.'));
    plain.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_the_opening_text() {
        assert_eq!(
            excerpt(
                "# Title\n\nFirst *para*graph with `code`.\n\n```\nfn x() {}\n```\n\n- one\n- two\n"
            ),
            "First paragraph with code. one two"
        );
        assert_eq!(excerpt("![a cat](/images/x.png)\n\n## Only a heading"), "");
        assert_eq!(excerpt(""), "");
        let long = "word ".repeat(200);
        let cut = excerpt(&long);
        assert!(cut.ends_with("word…"), "{cut}");
        assert!(cut.chars().count() <= EXCERPT_CHARS + 1, "{cut}");
        let html = excerpt("<script>alert(1)</script> a <b>b</b> & c");
        assert!(!html.contains("<script"), "raw HTML is not text: {html}");
    }

    /// No element, attribute or URL in `html` that can run script. (ammonia's output is
    /// normalised: lower-case names, every attribute value in double quotes.)
    fn assert_inert(html: &str) {
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script", "<iframe", "<style", "<object", "<embed", "<form", "<input", "<svg",
            "<math", "<link", "<meta", "<base", "srcdoc=", "style=",
        ] {
            assert!(!lower.contains(bad), "{bad:?} survived in {html}");
        }
        for tag in lower.split('<').skip(1) {
            let inside = tag.split('>').next().unwrap_or_default();
            for attribute in inside.split_whitespace().skip(1) {
                assert!(!attribute.starts_with("on"), "{attribute} in {html}");
            }
        }
        for url_attribute in ["href=\"", "src=\"", "action=\"", "cite=\""] {
            for value in lower.split(url_attribute).skip(1) {
                let url = value.split('"').next().unwrap_or_default();
                let safe = url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("mailto:")
                    || !url.contains(':');
                assert!(safe, "{url_attribute}{url} in {html}");
            }
        }
    }

    #[test]
    fn the_check_catches_what_it_looks_for() {
        for unsafe_html in [
            "<a href=\"javascript:alert(1)\">x</a>",
            "<img src=\"data:image/png,x\">",
            "<p onclick=\"x\">y</p>",
            "<script>x</script>",
        ] {
            let caught = std::panic::catch_unwind(|| assert_inert(unsafe_html)).is_err();
            assert!(caught, "{unsafe_html}");
        }
    }

    #[test]
    fn script_elements_are_removed_with_their_content() {
        let html = render("Hello\n\n<script>alert(1)</script>\n\n<SCRIPT src=//x.js></SCRIPT>");
        assert_inert(&html);
        assert!(!html.contains("alert"), "{html}");
        assert!(html.contains("<p>Hello</p>"), "{html}");
    }

    #[test]
    fn event_handlers_are_removed() {
        let html = render(
            "<img src=x onerror=alert(1)> <p onclick=\"alert(2)\" OnMouseOver='x'>hi</p>\n\n\
             <a href=\"/ok\" onfocus=alert(3) autofocus>link</a>",
        );
        assert_inert(&html);
        assert!(html.contains(">hi</p>"), "{html}");
        assert!(html.contains("href=\"/ok\""), "{html}");
    }

    #[test]
    fn javascript_and_data_urls_are_removed() {
        for markdown in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<a href=\"java&#x09;script:alert(1)\">x</a>",
            "<a href=\"&#106;avascript:alert(1)\">x</a>",
            "<a href=\" javascript:alert(1)\">x</a>",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "![x](data:image/svg+xml,<svg onload=alert(1)>)",
            "<img src=\"data:image/png;base64,AAAA\">",
            "[x](vbscript:msgbox(1))",
            "[x]: javascript:alert(1)\n\n[link][x]",
        ] {
            let html = render(markdown);
            assert_inert(&html);
            assert!(!html.contains("alert("), "{markdown} → {html}");
        }
    }

    #[test]
    fn frames_styles_and_forms_are_removed() {
        let html = render(
            "<iframe src=\"https://evil.example/\"></iframe>\n\n<style>body{display:none}</style>\n\n\
             <form action=/x><input name=a><button>go</button></form>\n\n\
             <object data=x></object><embed src=x>\n\n<svg><script>alert(1)</script></svg>\n\n\
             <p style=\"background:url(javascript:alert(1))\">styled</p>",
        );
        assert_inert(&html);
        assert!(!html.contains("display:none"), "{html}");
        assert!(html.contains("styled"), "{html}");
    }

    #[test]
    fn links_get_rel_and_keep_safe_urls() {
        let html = render("[a](https://example.com/x?y=1) [b](/blog/c) <mailto:me@example.com>");
        assert!(
            html.contains(
                "<a href=\"https://example.com/x?y=1\" rel=\"noopener noreferrer\">a</a>"
            ),
            "{html}"
        );
        assert!(html.contains("href=\"/blog/c\""), "{html}");
        assert!(html.contains("href=\"mailto:me@example.com\""), "{html}");
    }

    #[test]
    fn ordinary_markdown_survives() {
        let html = render(
            "# Title\n\n## Sub\n\nSome *em* and **strong** and `code` and ~~gone~~.\n\n\
             - one\n- two\n\n1. first\n2. second\n\n> quoted\n\n\
             ```rust\nfn main() { println!(\"<hi>\"); }\n```\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n\n![logo](/logo.svg \"Logo\")\n\n---\n",
        );
        for expected in [
            "<h1>Title</h1>",
            "<h2>Sub</h2>",
            "<em>em</em>",
            "<strong>strong</strong>",
            "<code>code</code>",
            "<del>gone</del>",
            "<ul>\n<li>one</li>",
            "<ol>\n<li>first</li>",
            "<blockquote>",
            "<pre><code class=\"language-rust\">fn main() { println!(\"&lt;hi&gt;\"); }",
            "<table>",
            "<th>a</th>",
            "<td>2</td>",
            "<img src=\"/logo.svg\" alt=\"logo\" title=\"Logo\">",
            "<hr>",
        ] {
            assert!(html.contains(expected), "{expected:?} missing in {html}");
        }
    }

    #[test]
    fn only_language_classes_survive() {
        let html = render("<code class=\"language-js evil\">x</code> <p class=\"x\">y</p>");
        assert!(!html.contains("class"), "{html}");
        let html = render("```c++\nint x;\n```");
        assert!(html.contains("class=\"language-c++\""), "{html}");
    }
}
