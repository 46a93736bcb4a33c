//! Images in posts: editors upload them (from the editor or through the API), everyone gets
//! them at `/images/{sha256}.{ext}`, and Markdown refers to them by that URL.
//!
//! - The type is read from the file's first bytes (its magic number), never from its name or
//!   the `Content-Type` sent: PNG, JPEG, WebP and GIF, nothing else (no SVG: it is a document
//!   that can carry scripts). Anything else is 415.
//! - An upload larger than `app.image_max_bytes` is 413 (and the web origin refuses any body
//!   past `web.max_body_bytes` before it reaches the application).
//! - The image is stored in the database ([`crate::db::images`]), so every box sharing it
//!   serves it, under the SHA-256 of its bytes: the same file uploaded twice is one image, and
//!   the bytes behind a name never change. So the response is cached for good
//!   (`Cache-Control: public, max-age=31536000, immutable`) with the hash as its strong ETag;
//!   a request whose `If-None-Match` names it gets 304 without touching the database.
//!
//! Routes:
//!
//! | route                | what                                                             |
//! |----------------------|------------------------------------------------------------------|
//! | `GET /images/{name}` | the image (`{sha256}.{png,jpg,webp,gif}`), 404 if there is none  |
//! | `POST /api/images`   | upload (the file is the request body; API token or session + CSRF): 201, or 200 when it was already there, `{"url", "markdown", "content_type", "bytes"}` |
//! | `GET /editor/images` | the editor's upload form (and, after an upload, its URL and Markdown) |
//! | `POST /editor/images`| upload from that form (`multipart/form-data`: `csrf`, `file`)    |

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Multipart, Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::{ApiWriter, SignedIn, see_other, token};
use super::cache::{self, Audience};
use super::error::{AppError, read_body};
use super::render::Viewer;
use super::state::State;
use crate::db::images::{self, NewImage};

/// What browsers and proxies may do with an image: keep it for a year, never revalidate.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The image types accepted: media type, the name's extension, and the file's first bytes.
const TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
];

/// The media type of an image file, read from its first bytes; `None` for anything else.
pub(super) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// The file name extension for a media type of [`TYPES`].
fn extension(content_type: &str) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(media, _)| *media == content_type)
        .map(|(_, ext)| *ext)
}

/// `{sha256}.{ext}` split and checked: 64 lower-case hex digits and a known extension.
fn parse_name(name: &str) -> Option<(&str, &str)> {
    let (id, ext) = name.split_once('.')?;
    let hex = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let known = TYPES.iter().any(|(_, e)| *e == ext);
    (hex && known).then_some((id, ext))
}

/// An image just uploaded, as the API and the editor show it.
#[derive(Debug, Serialize)]
struct Uploaded {
    /// `/images/{sha256}.{ext}`.
    url: String,
    /// `![](url)`, to paste into a post.
    markdown: String,
    content_type: &'static str,
    bytes: usize,
    /// Whether this upload stored it (false: the same file was there already).
    #[serde(skip)]
    created: bool,
}

/// Checks `data` (size, then type from its bytes) and stores it for `who`.
async fn store(state: &State, who: &Viewer, data: &[u8]) -> Result<Uploaded, AppError> {
    let limit = state.config.image_max_bytes;
    if data.len() as u64 > limit {
        return Err(AppError::TooLarge(format!(
            "the image is {} bytes; the limit is {limit} (app.image_max_bytes)",
            data.len()
        )));
    }
    let content_type = sniff(data).ok_or_else(|| {
        AppError::UnsupportedMediaType(
            "not a PNG, JPEG, WebP or GIF image (the type is read from the file's content)"
                .to_owned(),
        )
    })?;
    let id = token::sha256_hex(data);
    let created = images::insert(
        &state.db,
        NewImage {
            id: &id,
            content_type,
            data,
            uploader_id: who.id,
        },
    )
    .await?;
    let ext = extension(content_type).unwrap_or("bin");
    let url = format!("/images/{id}.{ext}");
    tracing::info!(
        user = who.email,
        url,
        bytes = data.len(),
        created,
        "image uploaded"
    );
    Ok(Uploaded {
        markdown: format!("![]({url})"),
        url,
        content_type,
        bytes: data.len(),
        created,
    })
}

/// `GET /images/{name}`.
pub(super) async fn show(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Ok(Path(name)) = name else {
        return Err(AppError::NotFound);
    };
    let (id, ext) = parse_name(&name).ok_or(AppError::NotFound)?;
    let etag = format!("\"{id}\"");
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    // The name is the content's hash: what the client holds under it is what we would send.
    if cache::matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let image = images::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if extension(&image.content_type) != Some(ext) {
        return Err(AppError::NotFound);
    }
    let content_type = HeaderValue::from_str(&image.content_type)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    response_headers.insert(header::CONTENT_TYPE, content_type);
    Ok((response_headers, image.data).into_response())
}

/// `POST /api/images`: the request body is the file.
pub(super) async fn upload(
    axum::extract::State(state): axum::extract::State<State>,
    ApiWriter(writer): ApiWriter,
    body: axum::body::Body,
) -> Result<Response, AppError> {
    let data = read_body(body).await?;
    if data.is_empty() {
        return Err(AppError::BadRequest(
            "send the image file as the request body".to_owned(),
        ));
    }
    let uploaded = store(&state, &writer, &data).await?;
    let status = if uploaded.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = HeaderValue::from_str(&uploaded.url)
        .map_err(|e| AppError::Internal(format!("location: {e}")))?;
    let json =
        serde_json::to_string(&uploaded).map_err(|e| AppError::Internal(format!("json: {e}")))?;
    Ok((
        status,
        [
            (header::LOCATION, location),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        json,
    )
        .into_response())
}

/// `?uploaded={name}` after an upload from the editor.
#[derive(Debug, Deserialize)]
pub(super) struct Done {
    uploaded: Option<String>,
}

/// `GET /editor/images`: the upload form, and the image just uploaded.
pub(super) async fn form(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
    done: Result<Query<Done>, QueryRejection>,
) -> Result<Response, AppError> {
    let uploaded = done
        .ok()
        .and_then(|Query(done)| done.uploaded)
        .filter(|name| parse_name(name).is_some())
        .map(|name| {
            let url = format!("/images/{name}");
            serde_json::json!({ "markdown": format!("![]({url})"), "url": url })
        });
    page(&state, &who, StatusCode::OK, uploaded, None)
}

/// `POST /editor/images`: `csrf` and `file` as `multipart/form-data`; 303 to the form showing
/// the image's URL and Markdown, or the form again with why it was refused.
pub(super) async fn submit(
    axum::extract::State(state): axum::extract::State<State>,
    who: SignedIn,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, AppError> {
    let mut multipart = multipart.map_err(|_| {
        AppError::BadRequest("the upload must be sent as multipart/form-data".to_owned())
    })?;
    let mut csrf = String::new();
    let mut file = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(multipart_error(&error)),
        };
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|e| multipart_error(&e))?,
            Some("file") => file = Some(field.bytes().await.map_err(|e| multipart_error(&e))?),
            _ => {}
        }
    }
    if !token::same(&csrf, &who.csrf) {
        return Err(AppError::Forbidden(
            "missing or wrong CSRF token: reload the form and try again".to_owned(),
        ));
    }
    let data = file.filter(|f| !f.is_empty());
    let Some(data) = data else {
        return page(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Choose an image file to upload.".to_owned()),
        );
    };
    match store(&state, &who.viewer, &data).await {
        Ok(uploaded) => {
            let name = uploaded.url.trim_start_matches("/images/");
            Ok(see_other(&format!("/editor/images?uploaded={name}"), None))
        }
        Err(error @ (AppError::TooLarge(_) | AppError::UnsupportedMediaType(_))) => {
            page(&state, &who, error.status(), None, Some(error.to_string()))
        }
        Err(other) => Err(other),
    }
}

/// A multipart body that could not be read: 413 past the web origin's limit, else 400.
fn multipart_error(error: &axum::extract::multipart::MultipartError) -> AppError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge(
            "the request body is larger than this server accepts (web.max_body_bytes)".to_owned(),
        )
    } else {
        AppError::BadRequest(format!(
            "the upload could not be read: {}",
            error.body_text()
        ))
    }
}

/// The editor's image page.
fn page(
    state: &State,
    who: &SignedIn,
    status: StatusCode,
    uploaded: Option<serde_json::Value>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let data = serde_json::json!({
        "uploaded": uploaded,
        "error": error,
        "max_bytes": state.config.image_max_bytes,
    });
    let html = state.page(
        "editor/images.html",
        Some(&who.viewer),
        Some(&who.csrf),
        data,
    )?;
    let mut response = cache::respond(
        &HeaderMap::new(),
        Audience::Private,
        "text/html; charset=utf-8",
        html,
    );
    *response.status_mut() = status;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some("image/gif"));
        assert_eq!(sniff(b"GIF87a"), Some("image/gif"));
        for refused in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"[..],
            b"<?xml version=\"1.0\"?><svg/>",
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"\x89PNG",
            b"",
            b"%PDF-1.7",
        ] {
            assert_eq!(sniff(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn names_are_a_hash_and_a_known_extension() {
        let hash = "a".repeat(64);
        assert_eq!(
            parse_name(&format!("{hash}.png")),
            Some((hash.as_str(), "png"))
        );
        assert_eq!(parse_name(&format!("{hash}.svg")), None);
        assert_eq!(parse_name(&format!("{}.png", "A".repeat(64))), None);
        assert_eq!(parse_name(&format!("{}.png", "a".repeat(63))), None);
        assert_eq!(parse_name(&format!("{hash}.png.png")), None);
        assert_eq!(parse_name("x.png"), None);
    }
}
