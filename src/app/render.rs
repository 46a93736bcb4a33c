//! Pages rendered on the server from the templates in `app.templates_dir` (`site/.templates/`
//! by default: under the web root, so the site's look is one code base, but in a dot-directory,
//! which the web origin never serves as files).
//!
//! Every `*.html` file there is a MiniJinja template named by its path relative to the
//! directory; HTML is auto-escaped. All of them are compiled at start, so a broken template
//! stops `onebox serve` with `file:line: message` instead of failing a visitor's request.
//!
//! Every page gets the same context besides its own data: `site` (the settings: title,
//! tagline), `viewer` (the signed-in user, or none) and `csrf` (the token its forms carry).

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, Value};
use serde::Serialize;

use super::error::AppError;

/// A template directory that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The directory or a file in it could not be read.
    #[error("key app.templates_dir: {path}: {error}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why (in the message, not a separate cause: printed once).
        error: std::io::Error,
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
}

/// The settings every page shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SiteInfo {
    /// The site's title (`settings.title`).
    pub title: String,
    /// Its tagline (`settings.tagline`).
    pub tagline: String,
}

impl Default for SiteInfo {
    fn default() -> Self {
        Self {
            title: "foobar.com".to_owned(),
            tagline: "the whole stack on one box".to_owned(),
        }
    }
}

/// Who is looking at the page, as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    /// The user's id.
    pub id: i64,
    /// The user's e-mail address.
    pub email: String,
    /// The name shown.
    pub display_name: String,
    /// `admin` or `editor`.
    pub role: String,
}

impl Templates {
    /// Reads and compiles every `*.html` file under `dir`.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        for path in files {
            let source = std::fs::read_to_string(&path).map_err(|error| TemplateError::Read {
                path: path.clone(),
                error,
            })?;
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            env.add_template_owned(name, source)
                .map_err(|e| syntax(dir, &e))?;
        }
        Ok(Self { env })
    }

    /// Renders `name` with the common context and the page's own `data` (its fields become
    /// top-level variables).
    pub fn page(
        &self,
        name: &str,
        site: &SiteInfo,
        viewer: Option<&Viewer>,
        csrf: Option<&str>,
        data: impl Serialize,
    ) -> Result<String, AppError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| AppError::Internal(format!("template {name}: {e}")))?;
        let context = minijinja::context! {
            site => Value::from(Serde(site)),
            viewer => Value::from(Serde(viewer)),
            csrf => csrf,
            ..Value::from(Serde(&data))
        };
        template
            .render(context)
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), TemplateError> {
    let read_error = |error| TemplateError::Read {
        path: dir.to_owned(),
        error,
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

    fn templates(files: &[(&str, &str)]) -> Result<Templates, TemplateError> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write template");
        }
        Templates::load(dir.path())
    }

    #[test]
    fn the_shipped_templates_compile_and_escape() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("site/.templates");
        let templates = Templates::load(&dir).expect("shipped templates load");
        let site = SiteInfo {
            title: "<b>t</b>".to_owned(),
            tagline: "x".to_owned(),
        };
        let page = templates
            .page(
                "error.html",
                &site,
                None,
                None,
                serde_json::json!({"status": 404, "reason": "Not Found", "message": "<script>"}),
            )
            .expect("renders");
        assert!(page.contains("&lt;b&gt;t&lt;"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }

    #[test]
    fn a_broken_template_names_file_and_line() {
        let error = templates(&[("a.html", "line one\n{% if %}\n")]).expect_err("must fail");
        let text = error.to_string();
        assert!(text.contains("a.html:2: "), "{text}");
    }
}
