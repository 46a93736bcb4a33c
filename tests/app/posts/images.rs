//! Images in posts (issue 13): uploaded through the API and from the editor, the type read from
//! the bytes (an SVG or a text file named `.png` is 415), the size limit (`app.image_max_bytes`,
//! 413), stored in the database (a second box on the same database serves it), served with a
//! strong ETag (304) and immutable caching, and shown in a post whose Markdown names its URL.

use reqwest::StatusCode;
use serde_json::Value;

use super::{App, Backend, User, both, error_of, json_of, text_of};

both!(
    api_upload_is_served_for_good_and_shown_in_a_post,
    the_type_comes_from_the_bytes_and_the_size_is_limited,
    the_editor_uploads_with_its_form,
);

/// A valid PNG of `width` × `height` RGB pixels (every decoder accepts it), different for each
/// `seed`.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let v = (x * 31 + y * 17) as u8;
            raw.extend_from_slice(&[v, v.wrapping_add(seed), seed]);
        }
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&raw).expect("deflate");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib.finish().expect("deflate"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The SHA-256 of `bytes`, hex.
fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl App {
    /// `POST /api/images` with `body` as `user` (and `content_type` as declared).
    pub async fn upload(
        &self,
        user: Option<&User>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client()
            .post(self.url("/api/images"))
            .header("content-type", content_type)
            .body(body);
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        json_of(request.send().await.expect("upload")).await
    }
}

async fn api_upload_is_served_for_good_and_shown_in_a_post(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let image = png(7, 5, 1);
    let url = format!("/images/{}.png", sha256(&image));

    // Without credentials: 401, nothing stored.
    let (status, _, _) = app.upload(None, "image/png", image.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The declared type does not matter; the bytes do.
    let (status, headers, body) = app
        .upload(Some(&ada), "application/octet-stream", image.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers["location"], url.as_str());
    assert_eq!(body["url"], url.as_str());
    assert_eq!(body["markdown"], format!("![]({url})"));
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["bytes"], image.len());
    // The same file again is the same image (200, same URL), stored once.
    let (status, _, again) = app.upload(Some(&ada), "image/png", image.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["url"], url.as_str());
    assert_eq!(
        app.app.rows("SELECT `content_type` FROM `images`").await,
        ["image/png"]
    );

    // Anyone gets it, cached for good, with its hash as a strong ETag.
    let response = app.client().get(app.url(&url)).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256(&image)));
    assert_eq!(response.bytes().await.expect("body").as_ref(), &image[..]);
    let revalidated = app
        .client()
        .get(app.url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.expect("body").is_empty());

    // Another name for it, or a hash nobody uploaded: 404.
    for missing in [
        url.replace(".png", ".jpg"),
        format!("/images/{}.png", "0".repeat(64)),
        "/images/logo.png".to_owned(),
    ] {
        let (status, _, _) = app.get(&missing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }

    // A post refers to it by URL; the page shows it.
    let post = app
        .post(
            &ada,
            "with-a-picture",
            "With a picture",
            &format!("Look:\n\n![a gradient]({url})\n"),
            "published",
        )
        .await;
    assert!(
        post["body_html"]
            .as_str()
            .is_some_and(|html| html.contains(&format!(r#"<img src="{url}" alt="a gradient">"#))),
        "{post}"
    );
    let (status, _, page) = app.get("/blog/with-a-picture").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!(r#"<img src="{url}" alt="a gradient">"#)),
        "{page}"
    );

    // A second box on the same database serves it too.
    let second = super::super::support::App::start_on(&app.app.url);
    let response = crate::web::client(&second.server, crate::web::Proto::H2)
        .get(crate::web::url(&second.server, crate::web::WWW, &url))
        .send()
        .await
        .expect("get from the second box");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("body").as_ref(), &image[..]);
}

async fn the_type_comes_from_the_bytes_and_the_size_is_limited(backend: Backend) {
    let app = App::start_with(backend, &["image_max_bytes = 4096"]).await;
    let ada = app.user("Ada", "editor").await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>"#;
    for (declared, body) in [
        ("image/svg+xml", svg.to_vec()),
        // Named and declared a PNG, but it is not one.
        ("image/png", svg.to_vec()),
        ("image/png", b"just text".to_vec()),
    ] {
        let (status, _, error) = app.upload(Some(&ada), declared, body).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
        assert_eq!(error_of(&error).0, 415);
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("PNG, JPEG, WebP or GIF")),
            "{error}"
        );
    }
    // JPEG, WebP and GIF by their first bytes (the server checks no more than that).
    for (magic, media, ext) in [
        (&b"\xff\xd8\xff\xe0\0\x10JFIF\0"[..], "image/jpeg", "jpg"),
        (b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0", "image/webp", "webp"),
        (b"GIF89a\x01\0\x01\0\x80\0\0", "image/gif", "gif"),
    ] {
        let (status, _, body) = app.upload(Some(&ada), "text/plain", magic.to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["content_type"], media);
        assert!(
            body["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!(".{ext}"))),
            "{body}"
        );
        let (status, headers, _) = app.get(body["url"].as_str().expect("url")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], media);
    }
    // Past the limit: 413, naming the key; nothing stored.
    let mut big = png(2, 2, 9);
    big.resize(5000, 0);
    let (status, _, error) = app.upload(Some(&ada), "image/png", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("app.image_max_bytes") && m.contains("4096")),
        "{error}"
    );
    assert_eq!(
        app.app
            .rows("SELECT `content_type` FROM `images` ORDER BY `content_type`")
            .await,
        ["image/gif", "image/jpeg", "image/webp"]
    );
}

/// A `multipart/form-data` body with the fields `csrf` and `file` (named `name`).
fn form(csrf: &str, name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----onebox-test-boundary-7d1f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn the_editor_uploads_with_its_form(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let cookie = format!("__Host-onebox_session={}", ada.session);
    let send = |csrf: &str, name: &str, file: &[u8]| {
        let (content_type, body) = form(csrf, name, file);
        app.client()
            .post(app.url("/editor/images"))
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // The form is linked from the editor and carries the CSRF token.
    let page = |path: &str| {
        app.client()
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
    };
    let (status, _, list) = text_of(page("/editor").await.expect("get")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(r#"href="/editor/images""#), "{list}");
    let (status, _, upload_form) = text_of(page("/editor/images").await.expect("get")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        upload_form.contains(r#"enctype="multipart/form-data""#) && upload_form.contains(&ada.csrf),
        "{upload_form}"
    );

    // Without the session's CSRF token: 403, nothing stored.
    let image = png(3, 3, 4);
    let refused = send("not-the-token", "photo.png", &image)
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(app.app.rows("SELECT `id` FROM `images`").await.is_empty());

    // An SVG named .png: the form again, with why.
    let svg = send(
        &ada.csrf,
        "photo.png",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .await
    .expect("post");
    let (status, _, html) = text_of(svg).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        html.contains("not a PNG, JPEG, WebP or GIF image"),
        "{html}"
    );

    // A PNG: 303 to the form, which shows the URL and the Markdown to paste.
    let done = send(&ada.csrf, "photo.webp", &image).await.expect("post");
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let name = format!("{}.png", sha256(&image));
    assert_eq!(
        done.headers()["location"],
        format!("/editor/images?uploaded={name}").as_str()
    );
    let (status, _, shown) = text_of(
        page(&format!("/editor/images?uploaded={name}"))
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        shown.contains(&format!(r#"value="![](/images/{name})""#))
            && shown.contains(&format!(r#"<img class="uploaded" src="/images/{name}""#)),
        "{shown}"
    );
    let (status, headers, _) = app.get(&format!("/images/{name}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
}
