//! Where a bad value came from, for the one line each configuration error prints: the
//! environment variable with its value, or the file and line; then the key and what is wrong.
//!
//! ```text
//! environment variable ONEBOX_DNS__LISTEN='["garbage"]': key dns.listen[0]: invalid socket address syntax (found "garbage")
//! config/onebox.toml:121: key app.posts_per_page: must be between 1 and 100 (found 1000)
//! ```

use std::path::Path;

use figment::error::Kind;
use figment::{Figment, Metadata, Source};

use super::{ENV_PREFIX, is_not_configuration};

/// One line per error of an extraction.
pub(super) fn describe(error: figment::Error, figment: &Figment) -> String {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
            // serde's type errors show the value found; messages of our types' own parsers
            // (an address that does not parse) do not.
            let show_value = matches!(e.kind, Kind::Message(_));
            line(
                figment,
                e.metadata.as_ref(),
                &path,
                &e.kind.to_string(),
                show_value,
            )
        })
        .collect();
    lines.join("\n")
}

/// `source: key k: message (found v)` for the value at `path`.
pub(super) fn line(
    figment: &Figment,
    metadata: Option<&Metadata>,
    path: &[&str],
    message: &str,
    show_value: bool,
) -> String {
    let key = if path.is_empty() {
        String::new()
    } else {
        format!("key {}: ", key_name(path))
    };
    let found = show_value
        .then(|| value_at(figment, path))
        .flatten()
        .and_then(|value| serde_json::to_string(&value).ok())
        .map(|value| format!(" (found {value})"))
        .unwrap_or_default();
    let Some(metadata) = metadata else {
        return format!("{key}{message}{found}");
    };
    if metadata.name.contains("environment") {
        if let Some((name, value)) = variable(path) {
            // The variable's value is on the line already.
            return format!(
                "environment variable {name}={}: {key}{message}",
                quoted(&value)
            );
        }
        return format!("{}: {key}{message}{found}", metadata.name);
    }
    match &metadata.source {
        Some(Source::File(file)) => {
            let at = line_of(file, path)
                .map(|n| format!(":{n}"))
                .unwrap_or_default();
            format!("{}{at}: {key}{message}{found}", file.display())
        }
        // Only the defaults are made in code (`Serialized::defaults`); where in onebox's source
        // means nothing to an operator.
        Some(Source::Code(_)) => format!("built-in default: {key}{message}{found}"),
        Some(other) => format!("{other}: {key}{message}{found}"),
        None => format!("{}: {key}{message}{found}", metadata.name),
    }
}

/// The merged value at `path`, list indices included.
fn value_at(figment: &Figment, path: &[&str]) -> Option<figment::value::Value> {
    use figment::value::Value;
    let mut value = figment.find_value(path.first()?).ok()?;
    for part in &path[1..] {
        value = match (value, part.parse::<usize>()) {
            (Value::Array(_, mut items), Ok(index)) if index < items.len() => {
                items.swap_remove(index)
            }
            (Value::Dict(_, mut entries), _) => entries.remove(*part)?,
            _ => return None,
        };
    }
    Some(value)
}

/// `dns.listen[0]`, `web.tls.certs[1].key`.
fn key_name(path: &[&str]) -> String {
    let mut name = String::new();
    for part in path {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            name.push_str(&format!("[{part}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(part);
        }
    }
    name
}

/// The `ONEBOX_*` variable that set the value at `path` (it may set a whole list or table
/// above it), with its value.
fn variable(path: &[&str]) -> Option<(String, String)> {
    std::env::vars()
        .filter_map(|(name, value)| {
            let rest = name.get(ENV_PREFIX.len()..)?;
            let prefixed = name[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX);
            if !prefixed || is_not_configuration(rest) {
                return None;
            }
            let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let covers = keys.len() <= path.len()
                && keys
                    .iter()
                    .zip(path)
                    .all(|(k, p)| k.eq_ignore_ascii_case(p));
            covers.then_some((keys.len(), name, value))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, name, value)| (name, value))
}

/// A value as a shell would need it quoted.
fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@+,".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The 1-based line of the value at `path` in the TOML `file`, if it can be found.
fn line_of(file: &Path, path: &[&str]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let document = toml_edit::ImDocument::parse(text.as_str()).ok()?;
    let mut item = document.as_table().get(path.first()?)?;
    let mut span = item.span();
    let mut value: Option<&toml_edit::Value> = None;
    for part in &path[1..] {
        let next = match (value, part.parse::<usize>()) {
            (Some(toml_edit::Value::Array(array)), Ok(index)) => array.get(index),
            (Some(toml_edit::Value::InlineTable(table)), _) => table.get(part),
            (Some(_), _) => None,
            (None, Ok(index)) => item.as_array().and_then(|a| a.get(index)),
            (None, Err(_)) => match item.as_table_like().and_then(|t| t.get(part)) {
                Some(found) => {
                    item = found;
                    span = item.span().or(span);
                    continue;
                }
                None => None,
            },
        };
        let Some(next) = next else { break };
        span = next.span().or(span);
        value = Some(next);
    }
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_written() {
        assert_eq!(key_name(&["dns", "listen", "0"]), "dns.listen[0]");
        assert_eq!(
            key_name(&["web", "tls", "certs", "1", "key"]),
            "web.tls.certs[1].key"
        );
        assert_eq!(quoted("1000"), "1000");
        assert_eq!(quoted(r#"["garbage"]"#), r#"'["garbage"]'"#);
    }

    #[test]
    fn a_default_is_named_as_such() {
        let figment = Figment::from(figment::providers::Serialized::defaults(
            serde_json::json!({ "app": { "posts_per_page": 10 } }),
        ));
        let metadata = figment.find_metadata("app.posts_per_page");
        assert_eq!(
            line(
                &figment,
                metadata,
                &["app", "posts_per_page"],
                "must be at most 5",
                true
            ),
            "built-in default: key app.posts_per_page: must be at most 5 (found 10)"
        );
    }

    #[test]
    fn the_line_of_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(
            &file,
            "state_dir = \"s\"\n\n[app]\n# comment\nposts_per_page = 1000\n\n[dns]\nlisten = [\n  \"127.0.0.1:53\",\n  \"garbage\",\n]\n\n[web.tls]\ncerts = [{ cert = \"a\", key = \"b\" }]\n",
        )
        .expect("write");
        assert_eq!(line_of(&file, &["app", "posts_per_page"]), Some(5));
        assert_eq!(line_of(&file, &["dns", "listen", "1"]), Some(10));
        assert_eq!(
            line_of(&file, &["web", "tls", "certs", "0", "key"]),
            Some(14)
        );
        assert_eq!(line_of(&file, &["app", "nothing"]), Some(3));
    }
}
