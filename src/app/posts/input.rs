//! What a writer submits for a post (JSON from the API, a form from the editor), checked once
//! here so that both doors apply the same rules, and turned into the [`PostFields`] the data
//! layer stores — the Markdown rendered and sanitised on the way.
//!
//! The rules, each failure a message for its field (a 422 lists them all at once):
//!
//! - `slug`: `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 200 characters; when left out or empty on
//!   creation, made from the title (lower-case letters and digits, dashes between words);
//! - `title`: 1 to 300 characters after trimming, no control characters;
//! - `body_markdown`: at most [`MAX_BODY_BYTES`] bytes, and its HTML at most
//!   [`MAX_HTML_BYTES`] (the column is a `TEXT`, 64 KiB on MySQL);
//! - `status`: `draft` or `published` (default `draft`).
//!
//! On an update every field is optional: what is left out keeps its current value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::error::AppError;
use super::super::markdown;
use crate::db::posts::{PostDetail, PostFields, Status};

/// The longest slug, in characters (the column's width).
pub const MAX_SLUG_CHARS: usize = 200;
/// The longest title, in characters (the column's width).
pub const MAX_TITLE_CHARS: usize = 300;
/// The largest Markdown body, in bytes.
pub const MAX_BODY_BYTES: usize = 48 * 1024;
/// The largest rendered body, in bytes (MySQL's `TEXT` holds 65 535).
pub const MAX_HTML_BYTES: usize = 65_535;

/// The fields a writer may send; `None` for a field left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostInput {
    /// The slug.
    pub slug: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The body, in Markdown.
    pub body_markdown: Option<String>,
    /// `draft` or `published`.
    pub status: Option<String>,
}

impl PostInput {
    /// The input from a JSON document: an object whose known members are strings. Anything
    /// else is a 422 naming the member; a body that is not an object is a 400.
    pub fn from_json(document: Value) -> Result<Self, AppError> {
        let Value::Object(members) = document else {
            return Err(AppError::BadRequest(
                "the body must be a JSON object".to_owned(),
            ));
        };
        let mut input = Self::default();
        let mut errors = BTreeMap::new();
        let mut unknown = Vec::new();
        for (name, value) in members {
            let (field, slot) = match name.as_str() {
                "slug" => ("slug", &mut input.slug),
                "title" => ("title", &mut input.title),
                "body_markdown" => ("body_markdown", &mut input.body_markdown),
                "status" => ("status", &mut input.status),
                _ => {
                    unknown.push(name);
                    continue;
                }
            };
            match value {
                Value::String(text) => *slot = Some(text),
                Value::Null => {}
                _ => {
                    errors.insert(field, "must be a string".to_owned());
                }
            }
        }
        if !unknown.is_empty() {
            unknown.sort();
            errors.insert(
                UNKNOWN_FIELD,
                format!(
                    "unknown field(s) {}: the fields are slug, title, body_markdown, status",
                    unknown.join(", ")
                ),
            );
        }
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// Checks a new post's fields and renders its body.
    pub fn create(self) -> Result<PostFields, AppError> {
        self.check(None)
    }

    /// Checks an update of `current` and renders its body: fields left out keep their value.
    pub fn update(self, current: &PostDetail) -> Result<PostFields, AppError> {
        self.check(Some(current))
    }

    fn check(self, current: Option<&PostDetail>) -> Result<PostFields, AppError> {
        let mut errors = BTreeMap::new();
        let title = match (self.title, current) {
            (Some(title), _) => title.trim().to_owned(),
            (None, Some(current)) => current.title.clone(),
            (None, None) => String::new(),
        };
        if let Err(message) = check_title(&title) {
            errors.insert("title", message);
        }
        let slug = match (self.slug.map(|s| s.trim().to_owned()), current) {
            (Some(slug), _) if !slug.is_empty() => slug,
            (_, Some(current)) => current.slug.clone(),
            (_, None) => slugify(&title),
        };
        if let Err(message) = check_slug(&slug) {
            errors.insert("slug", message);
        }
        let status = match (self.status.as_deref().map(str::trim), current) {
            (Some(value), _) => Status::parse(value),
            (None, Some(current)) => Some(current.status),
            (None, None) => Some(Status::Draft),
        };
        if status.is_none() {
            errors.insert("status", "must be draft or published".to_owned());
        }
        let (body_markdown, body_html, excerpt) = match (self.body_markdown, current) {
            (Some(body), _) => {
                let fits = body.len() <= MAX_BODY_BYTES;
                let html = fits.then(|| markdown::render(&body));
                let excerpt = if fits {
                    markdown::excerpt(&body)
                } else {
                    String::new()
                };
                (body, html, excerpt)
            }
            (None, Some(current)) => (
                current.body_markdown.clone(),
                Some(current.body_html.clone()),
                current.excerpt.clone(),
            ),
            (None, None) => (String::new(), Some(String::new()), String::new()),
        };
        match &body_html {
            None => {
                errors.insert(
                    "body_markdown",
                    format!("must be at most {MAX_BODY_BYTES} bytes"),
                );
            }
            Some(html) if html.len() > MAX_HTML_BYTES => {
                errors.insert(
                    "body_markdown",
                    format!("renders to more than {MAX_HTML_BYTES} bytes of HTML; shorten it"),
                );
            }
            Some(_) => {}
        }
        match (status, body_html) {
            (Some(status), Some(body_html)) if errors.is_empty() => Ok(PostFields {
                slug,
                title,
                body_markdown,
                body_html,
                excerpt,
                status,
            }),
            _ => Err(AppError::Invalid(errors)),
        }
    }
}

/// The key under which unknown members are reported (the error map's keys are the known
/// fields' names, fixed at compile time).
const UNKNOWN_FIELD: &str = "unknown";

/// Whether `slug` is a valid slug.
pub fn is_slug(slug: &str) -> bool {
    check_slug(slug).is_ok()
}

fn check_slug(slug: &str) -> Result<(), String> {
    if slug.is_empty() {
        return Err("is required (lower-case letters, digits and dashes)".to_owned());
    }
    if slug.len() > MAX_SLUG_CHARS {
        return Err(format!("must be at most {MAX_SLUG_CHARS} characters"));
    }
    let words_ok = slug.split('-').all(|word| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !words_ok {
        return Err(
            "must be lower-case letters and digits, words joined by single dashes (my-first-post)"
                .to_owned(),
        );
    }
    Ok(())
}

fn check_title(title: &str) -> Result<(), String> {
    let chars = title.chars().count();
    if chars == 0 {
        return Err("is required".to_owned());
    }
    if chars > MAX_TITLE_CHARS {
        return Err(format!("must be at most {MAX_TITLE_CHARS} characters"));
    }
    if title.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// A slug made from `title`: ASCII letters and digits lower-cased, every other run of
/// characters one dash, cut to [`MAX_SLUG_CHARS`] at a word boundary when it can be.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    if slug.len() > MAX_SLUG_CHARS {
        slug.truncate(MAX_SLUG_CHARS);
        if let Some(cut) = slug.rfind('-').filter(|&i| i > 0) {
            slug.truncate(cut);
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_fields(result: Result<PostFields, AppError>) -> BTreeMap<&'static str, String> {
        match result {
            Err(AppError::Invalid(fields)) => fields,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    fn input(slug: &str, title: &str, body: &str, status: Option<&str>) -> PostInput {
        PostInput {
            slug: Some(slug.to_owned()),
            title: Some(title.to_owned()),
            body_markdown: Some(body.to_owned()),
            status: status.map(str::to_owned),
        }
    }

    #[test]
    fn slugs() {
        for good in ["a", "hello-world", "2026-11-26-notes", &"a".repeat(200)] {
            assert!(is_slug(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "Hello",
            "a_b",
            "a b",
            "é",
            "a/b",
            "..",
            &"a".repeat(201),
        ] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert_eq!(
            slugify("  Hello, World! Ça va? 2026 "),
            "hello-world-a-va-2026"
        );
        assert_eq!(slugify("!!!"), "");
        let long = slugify(&"word ".repeat(100));
        assert!(long.len() <= 200 && is_slug(&long), "{long}");
    }

    #[test]
    fn a_valid_post_is_rendered() {
        let fields = input("hi", " Hi ", "# Hi <script>x</script>", Some("published"))
            .create()
            .expect("valid");
        assert_eq!(fields.title, "Hi");
        assert_eq!(fields.status, Status::Published);
        assert_eq!(fields.body_html.trim(), "<h1>Hi </h1>");
    }

    #[test]
    fn every_bad_field_is_named() {
        let fields = invalid_fields(
            input(
                "Bad Slug",
                "",
                &"x".repeat(MAX_BODY_BYTES + 1),
                Some("live"),
            )
            .create(),
        );
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            ["body_markdown", "slug", "status", "title"]
        );
        let fields = invalid_fields(input("ok", &"t".repeat(301), "", None).create());
        assert!(fields["title"].contains("300"), "{fields:?}");
        let fields = invalid_fields(input("ok", "a\u{7}b", "", None).create());
        assert!(fields.contains_key("title"), "{fields:?}");
    }

    #[test]
    fn html_too_large_is_refused() {
        // Each "<" becomes "&lt;": four times the bytes.
        let body = "<".repeat(MAX_BODY_BYTES - 10);
        let fields = invalid_fields(input("ok", "t", &body, None).create());
        assert!(fields["body_markdown"].contains("HTML"), "{fields:?}");
    }

    #[test]
    fn slug_comes_from_the_title_when_left_out() {
        let fields = PostInput {
            title: Some("My First Post".to_owned()),
            ..PostInput::default()
        }
        .create()
        .expect("valid");
        assert_eq!(fields.slug, "my-first-post");
        assert_eq!(fields.status, Status::Draft);
        let fields = invalid_fields(
            PostInput {
                title: Some("???".to_owned()),
                ..PostInput::default()
            }
            .create(),
        );
        assert!(fields.contains_key("slug"), "{fields:?}");
    }

    #[test]
    fn json_members_must_be_known_strings() {
        let error = PostInput::from_json(serde_json::json!([1])).expect_err("not an object");
        assert!(matches!(error, AppError::BadRequest(_)), "{error:?}");
        let error = PostInput::from_json(serde_json::json!({"title": 5, "author": "x"}))
            .expect_err("bad members");
        let AppError::Invalid(fields) = error else {
            panic!("{error:?}")
        };
        assert_eq!(fields["title"], "must be a string");
        assert!(fields["unknown"].contains("unknown field"), "{fields:?}");
        let input =
            PostInput::from_json(serde_json::json!({"title": "t", "status": null})).expect("valid");
        assert_eq!(input.title.as_deref(), Some("t"));
        assert_eq!(input.status, None);
    }
}
