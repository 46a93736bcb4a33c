//! Pages rendered on the server from MiniJinja templates: the built-in ones (compiled into the
//! binary from `src/app/templates/`), each of which a site may replace with a file of the same
//! name in its own template directory (`app.templates_dir`, by default `.templates/` in the web
//! root, which the web origin never serves as files). A site without one uses the built-in
//! templates: a plain static site starts as it is.
//!
//! Every `*.html` file of the directory is a template named by its path relative to it
//! (`post.html`, `editor/form.html`); one with a built-in's name replaces that one, others are
//! added (for the overrides to include). HTML is auto-escaped. All of them are compiled at
//! start, so a broken template stops `onebox serve` with `file:line: message` instead of
//! failing a visitor's request.
//!
//! Every page gets the same context besides its own data: `site` (the settings: title,
//! tagline), `viewer` (the signed-in user, or none: `id`, `email`, `display_name`, `role` to
//! show, `is_admin` to decide on) and `csrf` (the token its forms carry). What a viewer may do
//! is decided in Rust ([`Viewer::is_admin`], [`Viewer::may_change`]) and reaches templates as
//! booleans: they compare no role or status names.
//!
//! Templates read that data as MiniJinja objects ([`minijinja::value::Object`]): each field is
//! made a [`Value`] when a template asks for it, from the Rust value as it is. Converting a
//! page's whole data through serde instead (a map built per struct, every key and string copied
//! in) was the largest part of rendering a list page. Pages off the hot paths pass any
//! `Serialize` data ([`Templates::page`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::{Enumerator, Object, Serde};
use minijinja::{Environment, Value};
use serde::Serialize;

use super::error::AppError;
use crate::db::users::Role;

/// A template directory that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The directory or a file in it could not be read.
    #[error("key app.templates_dir: {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The template's file.
        path: PathBuf,
        /// The line of the error.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Per template, the buffer to render it into ([`Templates::render`]): a little more than
    /// its last page, so that a page is written into one allocation instead of one doubled
    /// as it grows.
    sizes: Vec<(String, AtomicUsize)>,
}

/// The most a page's buffer is made ready for ahead (a larger page grows its own).
const MAX_PAGE_HINT: usize = 1 << 20;

/// The settings every page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// The site's title (`settings.title`).
    pub title: String,
    /// Its tagline (`settings.tagline`).
    pub tagline: String,
}

impl Object for SiteInfo {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "title" => Some(Value::from(self.title.as_str())),
            "tagline" => Some(Value::from(self.tagline.as_str())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["title", "tagline"])
    }
}

impl Default for SiteInfo {
    fn default() -> Self {
        Self {
            title: "foobar.com".to_owned(),
            tagline: "the whole stack on one box".to_owned(),
        }
    }
}

/// What a public page says about itself in `<head>`: its canonical address and the Open Graph
/// tags (a page without is marked `noindex`).
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// The page's absolute canonical URL.
    pub canonical: String,
    /// Its title (without the site's).
    pub title: String,
    /// One or two sentences about it.
    pub description: String,
    /// `website` or `article` (Open Graph's `og:type`).
    pub kind: &'static str,
}

impl Object for Meta {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "canonical" => Some(Value::from(self.canonical.as_str())),
            "title" => Some(Value::from(self.title.as_str())),
            "description" => Some(Value::from(self.description.as_str())),
            "kind" => Some(Value::from(self.kind)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["canonical", "title", "description", "kind"])
    }
}

/// Who is looking at the page. Templates see its fields and `is_admin` ([`Viewer::is_admin`]),
/// so that no template compares role names.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user's id.
    pub id: i64,
    /// The user's e-mail address.
    pub email: String,
    /// The name shown.
    pub display_name: String,
    /// What they may do.
    pub role: Role,
}

impl Viewer {
    /// Whether the viewer is an admin (the site's settings, anyone's posts).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the viewer may change (edit, publish, delete) a post by `author_id`: its
    /// author may, and an admin may change anyone's.
    pub fn may_change(&self, author_id: i64) -> bool {
        self.is_admin() || self.id == author_id
    }
}

impl Object for Viewer {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "id" => Some(Value::from(self.id)),
            "email" => Some(Value::from(self.email.as_str())),
            "display_name" => Some(Value::from(self.display_name.as_str())),
            "role" => Some(Value::from(self.role.as_str())),
            "is_admin" => Some(Value::from(self.is_admin())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["id", "email", "display_name", "role", "is_admin"])
    }
}

/// What every template sees at its top level: the common context (`site`, `viewer`, `csrf`)
/// over the page's own data, whose fields are looked up only for the other names.
#[derive(Debug)]
struct Context {
    site: Value,
    viewer: Value,
    csrf: Value,
    data: Value,
}

impl Context {
    /// The root value of a page: the common context over `data`.
    fn root(
        site: &Arc<SiteInfo>,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: Value,
    ) -> Value {
        Value::from_object(Self {
            site: Value::from_dyn_object(Arc::clone(site)),
            viewer: viewer.map_or(Value::from(()), |viewer| Value::from_object(viewer.clone())),
            csrf: Value::from(csrf),
            data,
        })
    }
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "site" => Some(self.site.clone()),
            "viewer" => Some(self.viewer.clone()),
            "csrf" => Some(self.csrf.clone()),
            _ => self.data.get_attr(key).ok().filter(|v| !v.is_undefined()),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys = vec![
            Value::from("site"),
            Value::from("viewer"),
            Value::from("csrf"),
        ];
        if let Ok(data) = self.data.try_iter() {
            keys.extend(
                data.filter(|key| !matches!(key.as_str(), Some("site" | "viewer" | "csrf"))),
            );
        }
        Enumerator::Values(keys)
    }
}

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("home.html", include_str!("templates/home.html")),
    ("post-list.html", include_str!("templates/post-list.html")),
    ("blog.html", include_str!("templates/blog.html")),
    ("post.html", include_str!("templates/post.html")),
    ("error.html", include_str!("templates/error.html")),
    ("signin.html", include_str!("templates/signin.html")),
    (
        "editor/list.html",
        include_str!("templates/editor/list.html"),
    ),
    (
        "editor/form.html",
        include_str!("templates/editor/form.html"),
    ),
    (
        "editor/delete.html",
        include_str!("templates/editor/delete.html"),
    ),
    (
        "editor/settings.html",
        include_str!("templates/editor/settings.html"),
    ),
    (
        "editor/images.html",
        include_str!("templates/editor/images.html"),
    ),
];

impl Templates {
    /// The built-in templates, with every `*.html` file under `dir` (when given) replacing the
    /// built-in of the same name or added beside them. Returns the names `dir` replaced.
    pub fn load(dir: Option<&Path>) -> Result<(Self, Vec<String>), TemplateError> {
        let mut env = Environment::new();
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_formatter(format);
        let mut files = Vec::new();
        if let Some(dir) = dir {
            collect(dir, &mut files)?;
        }
        let mut overridden = Vec::new();
        let mut own = Vec::with_capacity(files.len());
        for path in files {
            let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            })?;
            let name = path
                .strip_prefix(dir.unwrap_or(Path::new("")))
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if BUILT_IN.iter().any(|(built_in, _)| *built_in == name) {
                overridden.push(name.clone());
            }
            own.push((name, source, path));
        }
        for (name, source) in BUILT_IN {
            if !own.iter().any(|(own, _, _)| own == name) {
                env.add_template(name, source)
                    .map_err(|e| syntax(Path::new("src/app/templates"), &e))?;
            }
        }
        let mut sizes: Vec<(String, AtomicUsize)> = BUILT_IN
            .iter()
            .map(|(name, _)| ((*name).to_owned(), AtomicUsize::new(0)))
            .collect();
        for (name, source, _) in own {
            if !sizes.iter().any(|(known, _)| *known == name) {
                sizes.push((name.clone(), AtomicUsize::new(0)));
            }
            env.add_template_owned(name, source)
                .map_err(|e| syntax(dir.unwrap_or(Path::new("")), &e))?;
        }
        Ok((Self { env, sizes }, overridden))
    }

    /// Renders `name` with the common context and the page's own `data` (its fields become
    /// top-level variables), converted to template values whole.
    pub fn page(
        &self,
        name: &str,
        site: &Arc<SiteInfo>,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: impl Serialize,
    ) -> Result<String, AppError> {
        let context = Context::root(site, viewer, csrf, Value::from(Serde(&data)));
        self.template(name)?
            .render(context)
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))
    }

    /// [`Templates::page`] with data that is already a template value (an [`Object`] whose
    /// fields are read as the template asks for them, or a map), as the bytes of the page
    /// (UTF-8), written into one buffer sized from the last page of that template.
    pub fn render(
        &self,
        name: &str,
        site: &Arc<SiteInfo>,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: Value,
    ) -> Result<Vec<u8>, AppError> {
        let template = self.template(name)?;
        let size = self
            .sizes
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, size)| size);
        let mut page = Vec::with_capacity(size.map_or(0, |size| size.load(Ordering::Relaxed)));
        template
            .render_captured_to(Context::root(site, viewer, csrf, data), &mut page)
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))?;
        if let Some(size) = size {
            size.store(
                (page.len() + page.len() / 8).min(MAX_PAGE_HINT),
                Ordering::Relaxed,
            );
        }
        Ok(page)
    }

    fn template(&self, name: &str) -> Result<minijinja::Template<'_, '_>, AppError> {
        self.env
            .get_template(name)
            .map_err(|e| AppError::Internal(format!("template {name}: {e}")))
    }
}

/// How a value prints: MiniJinja's own rules, except that HTML escaping leaves `/` alone
/// (MiniJinja writes it as `&#x2f;`, which HTML does not need), so that addresses read as
/// they are in the page's source. A page prints dozens of values, most of them short (names,
/// slugs, dates) and most with nothing to escape: each is written in as few pieces as its
/// characters to escape allow ([`escape`]).
fn format(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match (state.auto_escape(), value.as_str()) {
        (minijinja::AutoEscape::Html, Some(text)) if !value.is_safe() => {
            escape(out, text)?;
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// From this many bytes on, a value's characters to escape are found with `memchr` (two
/// searches, whose set-up costs more than scanning a shorter value eight bytes at a time).
const LONG: usize = 96;

/// The entity of a character HTML needs escaped in text and attribute values, if `byte` is one.
fn entity(byte: u8) -> Option<&'static str> {
    match byte {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\'' => Some("&#x27;"),
        _ => None,
    }
}

/// Writes `text` with its characters to escape as entities: the runs between them whole.
fn escape(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    if text.len() >= LONG {
        return escape_long(out, text);
    }
    let bytes = text.as_bytes();
    let mut last = 0;
    while let Some(at) = next_to_escape(bytes, last) {
        // `at` is an ASCII character's: both slices end on character boundaries.
        out.write_str(text.get(last..at).unwrap_or(""))?;
        out.write_str(bytes.get(at).and_then(|&byte| entity(byte)).unwrap_or(""))?;
        last = at + 1;
    }
    out.write_str(text.get(last..).unwrap_or(""))
}

/// Eight bytes of 1 each.
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// The top bit of each byte of `word` that is zero, and no other bit (each byte is tested on
/// its own: nothing carries from one to the next).
const fn zero_bytes(word: u64) -> u64 {
    let low = ONES * 0x7f;
    !(((word & low) + low) | word) & (ONES * 0x80)
}

/// The top bit of each byte of `word` that HTML escapes: `"` (0x22); `&` and `'` (0x26, 0x27)
/// are the bytes that are 0x27 with their lowest bit set, `<` and `>` (0x3c, 0x3e) those that
/// are 0x3e with their second bit set.
const fn bytes_to_escape(word: u64) -> u64 {
    zero_bytes(word ^ (ONES * 0x22))
        | zero_bytes((word | ONES) ^ (ONES * 0x27))
        | zero_bytes((word | (ONES * 2)) ^ (ONES * 0x3e))
}

/// Where the first character to escape at or after `from` is in `bytes`, eight bytes tested
/// at a time (the first of them in the lowest byte of the word).
fn next_to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(word) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
        let found = bytes_to_escape(u64::from_le_bytes(*word));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if at >= bytes.len() {
        return None;
    }
    // Fewer than eight bytes are left: the text's last eight, less those before `at` (some
    // of which may have been escaped already), or byte by byte in a text shorter than that.
    let start = bytes.len().saturating_sub(8);
    match bytes.get(start..).and_then(|rest| rest.first_chunk::<8>()) {
        Some(word) => {
            let found =
                bytes_to_escape(u64::from_le_bytes(*word)) & (u64::MAX << ((at - start) * 8));
            (found != 0).then(|| start + (found.trailing_zeros() / 8) as usize)
        }
        None => bytes
            .get(at..)?
            .iter()
            .position(|&byte| entity(byte).is_some())
            .map(|offset| at + offset),
    }
}

fn escape_long(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let bytes = text.as_bytes();
    let mut markup = memchr::memchr3_iter(b'&', b'<', b'>', bytes).peekable();
    let mut quotes = memchr::memchr2_iter(b'"', b'\'', bytes).peekable();
    let mut last = 0;
    loop {
        let at = match (markup.peek().copied(), quotes.peek().copied()) {
            (Some(m), Some(q)) if m < q => markup.next(),
            (Some(_), Some(_)) | (None, Some(_)) => quotes.next(),
            (Some(_), None) => markup.next(),
            (None, None) => None,
        };
        let Some(at) = at else { break };
        out.write_str(&text[last..at])?;
        // Both searches find only characters that have an entity.
        out.write_str(entity(bytes[at]).unwrap_or(""))?;
        last = at + 1;
    }
    out.write_str(&text[last..])
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), TemplateError> {
    let read_error = |source| TemplateError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "html") {
            files.push(path);
        }
    }
    files.sort();
    Ok(())
}

fn syntax(dir: &Path, error: &minijinja::Error) -> TemplateError {
    TemplateError::Syntax {
        path: dir.join(error.name().unwrap_or("?")),
        line: error.line().unwrap_or(0),
        message: error.detail().unwrap_or("syntax error").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(files: &[(&str, &str)]) -> Result<(Templates, Vec<String>), TemplateError> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write template");
        }
        Templates::load(Some(dir.path()))
    }

    #[test]
    fn a_site_replaces_built_in_templates_file_by_file() {
        let (templates, overridden) = templates(&[
            ("post.html", "mine: {{ post.title }}"),
            ("editor/list.html", "{% extends \"base.html\" %}"),
            ("extra.html", "extra"),
        ])
        .expect("loads");
        assert_eq!(overridden, ["editor/list.html", "post.html"]);
        let site = Arc::new(SiteInfo::default());
        let post = templates
            .page(
                "post.html",
                &site,
                None,
                None,
                serde_json::json!({"post": {"title": "T"}}),
            )
            .expect("renders");
        assert_eq!(post, "mine: T");
        let blog = templates
            .page(
                "blog.html",
                &site,
                None,
                None,
                serde_json::json!({"posts": [], "page": 1}),
            )
            .expect("the built-in blog.html is still there");
        assert!(blog.contains("Nothing published yet"), "{blog}");
    }

    #[test]
    fn a_missing_directory_named_explicitly_is_an_error() {
        let error =
            Templates::load(Some(Path::new("/nonexistent/templates"))).expect_err("missing");
        assert!(
            error.to_string().contains("/nonexistent/templates"),
            "{error}"
        );
    }

    #[test]
    fn the_shipped_templates_compile_and_escape() {
        let (templates, overridden) = Templates::load(None).expect("built-in templates load");
        assert!(overridden.is_empty());
        let site = Arc::new(SiteInfo {
            title: "<b>t</b>".to_owned(),
            tagline: "x".to_owned(),
        });
        let page = templates
            .page(
                "error.html",
                &site,
                None,
                None,
                serde_json::json!({"status": 404, "reason": "Not Found", "message": "<script>"}),
            )
            .expect("renders");
        assert!(page.contains("&lt;b&gt;t&lt;/b&gt;"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        let escaped = templates
            .page(
                "error.html",
                &site,
                None,
                None,
                serde_json::json!({"message": "\"x\" & 'y' /z"}),
            )
            .expect("renders");
        assert!(
            escaped.contains("&quot;x&quot; &amp; &#x27;y&#x27; /z"),
            "{escaped}"
        );
        // Every character to escape, side by side, first and last, among multi-byte ones.
        let mixed = templates
            .page(
                "error.html",
                &site,
                None,
                None,
                serde_json::json!({"message": "<a href='/é'>&\"ü\"</a>>"}),
            )
            .expect("renders");
        assert!(
            mixed.contains("&lt;a href=&#x27;/é&#x27;&gt;&amp;&quot;ü&quot;&lt;/a&gt;&gt;"),
            "{mixed}"
        );
        // The same through a whole page, in values scanned eight bytes at a time (at the edges
        // of a word) and searched with memchr (at the edges of that length); every place is
        // tested in `escaping_finds_every_character_at_every_place`.
        let long = format!("&{}'", "x".repeat(LONG - 2));
        let shorter = format!("&{}'", "x".repeat(LONG - 3));
        for text in [
            "<a href='/é'>&\"ü\"</a>><a href='/é'>&\"ü\"</a>>",
            "&xxxxxx'",
            "&xxxxxxx'",
            "xxxxxxx'",
            long.as_str(),
            shorter.as_str(),
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx plain",
        ] {
            let page = templates
                .page(
                    "error.html",
                    &site,
                    None,
                    None,
                    serde_json::json!({ "message": text }),
                )
                .expect("renders");
            let expected = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#x27;");
            assert!(page.contains(&expected), "{text}: {page}");
        }
    }

    /// What `escape` writes, as the plain replacements write it.
    fn escaped(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
    }

    #[test]
    fn escaping_finds_every_character_at_every_place() {
        // Characters to escape; bytes next to them in value ('#', '=', '?', '%', digits);
        // multi-byte characters whose bytes are a character to escape plus 0x80 (Ц is d0 a6,
        // § c2 a7, ¢ c2 a2, ü c3 bc, þ c3 be).
        let fill = ["x", "#", "=", "?", "%", "7", "Ц", "§", "¢", "ü", "þ", " "];
        let mut text = String::new();
        let mut out = String::new();
        for length in 0..=(LONG + 9) {
            for special in ["&", "<", ">", "\"", "'"] {
                for at in 0..=length {
                    for (n, with) in [(0, ""), (1, "<"), (2, "'")] {
                        text.clear();
                        for place in 0..length {
                            text.push_str(if place == at {
                                special
                            } else if n > 0 && place == (at + n * 5) % length.max(1) {
                                with
                            } else {
                                fill[(place + at + n) % fill.len()]
                            });
                        }
                        out.clear();
                        escape(&mut out, &text).expect("writes");
                        assert_eq!(out, escaped(&text), "{text:?}");
                    }
                }
            }
        }
        for text in [
            "",
            "plain",
            "é",
            "<<<<<<<<<",
            "&&&&&&&&&&&&&&&&&",
            "\"'\"'\"'\"'",
        ] {
            out.clear();
            escape(&mut out, text).expect("writes");
            assert_eq!(out, escaped(text), "{text:?}");
        }
    }

    #[test]
    fn a_broken_template_names_file_and_line() {
        let error = templates(&[("a.html", "line one\n{% if %}\n")]).expect_err("must fail");
        let text = error.to_string();
        assert!(text.contains("a.html:2: "), "{text}");
    }
}
