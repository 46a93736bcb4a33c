//! `/api/posts`: the public reads with their pagination, the writes with their credentials,
//! and every error as the API's JSON document — 400 malformed, 401, 403, 404, 409 duplicate
//! slug, 422 per field — with a failed write leaving the post as it was.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{App, Backend, both, error_of, json_of};

both!(
    list_pages_and_their_links,
    drafts_only_for_writers,
    writes_need_credentials_and_the_right_user,
    duplicate_slug_is_409_and_changes_nothing,
    invalid_fields_are_422_each_named,
    malformed_json_is_400_as_json,
);

async fn list_pages_and_their_links(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let empty = app.api(Method::GET, "/api/posts", None, None).await;
    assert_eq!(empty.0, StatusCode::OK);
    assert_eq!(empty.2["posts"], json!([]));
    assert_eq!(empty.2["has_next"], false);
    for n in 1..=23 {
        app.post(
            &ada,
            &format!("p{n:02}"),
            &format!("Post {n}"),
            "text",
            "published",
        )
        .await;
    }
    app.post(&ada, "secret", "Draft", "text", "draft").await;

    let (status, headers, first) = app.api(Method::GET, "/api/posts", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(first["page"], 1);
    assert_eq!(first["per_page"], 10);
    assert_eq!(first["has_next"], true);
    assert_eq!(first["next"], "/api/posts?page=2");
    assert_eq!(first["prev"], Value::Null);
    let posts = first["posts"].as_array().expect("posts");
    assert_eq!(posts.len(), 10);
    let item = &posts[0];
    assert_eq!(item["slug"], "p23");
    assert_eq!(item["title"], "Post 23");
    assert_eq!(item["author"], "Ada");
    assert_eq!(item["url"], "/blog/p23");
    assert!(
        item.get("body_html").is_none(),
        "lists carry no bodies: {item}"
    );
    let published = item["published_at"].as_str().expect("published_at");
    assert!(
        published.len() == 20 && published.ends_with('Z') && published.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {published}"
    );

    let (_, _, last) = app.api(Method::GET, "/api/posts?page=3", None, None).await;
    let slugs: Vec<&str> = last["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| p["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["p03", "p02", "p01"]);
    assert_eq!(last["has_next"], false);
    assert_eq!(last["next"], Value::Null);
    assert_eq!(last["prev"], "/api/posts?page=2");

    let (status, _, body) = app.api(Method::GET, "/api/posts?page=4", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body).0, 404);
    for bad in ["0", "two", "-1"] {
        let (status, _, body) = app
            .api(Method::GET, &format!("/api/posts?page={bad}"), None, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(error_of(&body).0, 400);
    }
}

async fn drafts_only_for_writers(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let created = app.post(&ada, "soon", "Soon", "# Soon", "draft").await;
    assert_eq!(created["status"], "draft");
    assert_eq!(created["published_at"], Value::Null);
    let (status, _, body) = app.api(Method::GET, "/api/posts/soon", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, headers, draft) = app
        .api(Method::GET, "/api/posts/soon", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(draft["status"], "draft");
    assert_eq!(headers["cache-control"], "private, no-store");

    let publish = json!({"status": "published"});
    let (status, _, post) = app
        .api(Method::PATCH, "/api/posts/soon", Some(&ada), Some(&publish))
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["status"], "published");
    assert_eq!(post["title"], "Soon", "fields not sent are kept");
    assert_eq!(
        post["body_html"].as_str().map(str::trim),
        Some("<h1>Soon</h1>")
    );
    let (status, headers, public) = app.api(Method::GET, "/api/posts/soon", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public, post);
    assert_eq!(headers["cache-control"], "no-cache");
    for field in [
        "slug",
        "title",
        "body_markdown",
        "body_html",
        "status",
        "author",
        "published_at",
        "created_at",
        "updated_at",
        "url",
    ] {
        assert!(public.get(field).is_some(), "{field} missing: {public}");
    }
}

async fn writes_need_credentials_and_the_right_user(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let bob = app.user("Bob", "editor").await;
    let root = app.user("Root", "admin").await;
    let document = json!({"slug": "mine", "title": "Mine", "body_markdown": "x"});

    // No credentials, a wrong token: 401.
    let (status, _, body) = app
        .api(Method::POST, "/api/posts", None, Some(&document))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_of(&body).0, 401);
    let response = app
        .client()
        .post(app.url("/api/posts"))
        .bearer_auth("not-a-token")
        .header("content-type", "application/json")
        .body(document.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(response).await.0, StatusCode::UNAUTHORIZED);

    // A session without its CSRF token: 403; with it: 201 and a Location.
    let cookie = format!("__Host-onebox_session={}", ada.session);
    let by_session = |csrf: Option<&str>| {
        let mut request = app
            .client()
            .post(app.url("/api/posts"))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body(document.to_string());
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let (status, _, body) = json_of(by_session(None).await.expect("send")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = json_of(by_session(Some("wrong")).await.expect("send")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, headers, created) =
        json_of(by_session(Some(&ada.csrf)).await.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(headers["location"], "/api/posts/mine");
    assert_eq!(created["author"], "Ada");
    assert_eq!(created["status"], "draft");

    // Another editor may not change it; its author and an admin may.
    let change = json!({"title": "Bob was here"});
    let (status, _, body) = app
        .api(Method::PATCH, "/api/posts/mine", Some(&bob), Some(&change))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .api(Method::DELETE, "/api/posts/mine", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, post) = app
        .api(
            Method::PATCH,
            "/api/posts/mine",
            Some(&ada),
            Some(&json!({"title": "Ada's"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["title"], "Ada's");
    let (status, _, post) = app
        .api(
            Method::PATCH,
            "/api/posts/mine",
            Some(&root),
            Some(&json!({"slug": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["slug"], "renamed");
    assert_eq!(post["author"], "Ada", "the author stays the author");
    let (status, _, _) = app
        .api(Method::GET, "/api/posts/mine", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete: 204, then gone; deleting again or an unknown slug: 404.
    let (status, _, body) = app
        .api(Method::DELETE, "/api/posts/renamed", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, _, body) = app
        .api(Method::DELETE, "/api/posts/renamed", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body).0, 404);
    let (status, _, _) = app
        .api(
            Method::PATCH,
            "/api/posts/Not_A_Slug",
            Some(&ada),
            Some(&change),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn duplicate_slug_is_409_and_changes_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let first = app.post(&ada, "taken", "First", "one", "published").await;
    let second = app.post(&ada, "other", "Second", "two", "published").await;

    let again = json!({"slug": "taken", "title": "Again", "body_markdown": "x"});
    let (status, _, body) = app
        .api(Method::POST, "/api/posts", Some(&ada), Some(&again))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (code, fields) = error_of(&body);
    assert_eq!(code, 409);
    assert!(fields.contains_key("slug"), "{body}");

    // The update that would take the slug changes nothing, not even its other fields.
    let clash = json!({"slug": "taken", "title": "Changed", "body_markdown": "changed"});
    let (status, _, body) = app
        .api(Method::PATCH, "/api/posts/other", Some(&ada), Some(&clash))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).1.contains_key("slug"));
    let (_, _, now) = app.api(Method::GET, "/api/posts/other", None, None).await;
    assert_eq!(now, second);
    let (_, _, now) = app.api(Method::GET, "/api/posts/taken", None, None).await;
    assert_eq!(now, first);
    let (_, _, list) = app.api(Method::GET, "/api/posts", None, None).await;
    assert_eq!(list["posts"].as_array().map(Vec::len), Some(2));
}

async fn invalid_fields_are_422_each_named(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    let bad = json!({
        "slug": "Not A Slug",
        "title": "",
        "body_markdown": "x".repeat(50 * 1024),
        "status": "live",
    });
    let (status, headers, body) = app
        .api(Method::POST, "/api/posts", Some(&ada), Some(&bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let (code, fields) = error_of(&body);
    assert_eq!(code, 422);
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["body_markdown", "slug", "status", "title"],
        "{body}"
    );
    assert!(
        fields["slug"]
            .as_str()
            .is_some_and(|m| m.contains("lower-case")),
        "{body}"
    );

    let long = json!({"slug": "a".repeat(201), "title": "t".repeat(301)});
    let (status, _, body) = app
        .api(Method::POST, "/api/posts", Some(&ada), Some(&long))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_of(&body).1.len(), 2, "{body}");

    let typed = json!({"title": 7, "colour": "red"});
    let (status, _, body) = app
        .api(Method::POST, "/api/posts", Some(&ada), Some(&typed))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_of(&body).1;
    assert_eq!(fields["title"], "must be a string");
    assert!(
        fields["unknown"]
            .as_str()
            .is_some_and(|m| m.contains("colour")),
        "{body}"
    );

    // An update is checked the same way, and a refused one changes nothing.
    let post = app.post(&ada, "fine", "Fine", "body", "published").await;
    let (status, _, _) = app
        .api(
            Method::PATCH,
            "/api/posts/fine",
            Some(&ada),
            Some(&json!({"title": " ", "body_markdown": "new"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, _, now) = app.api(Method::GET, "/api/posts/fine", None, None).await;
    assert_eq!(now, post);

    // Nothing was written by the refused creations.
    let (_, _, list) = app.api(Method::GET, "/api/posts", None, None).await;
    assert_eq!(list["posts"].as_array().map(Vec::len), Some(1));
}

async fn malformed_json_is_400_as_json(backend: Backend) {
    let app = App::start(backend).await;
    let ada = app.user("Ada", "editor").await;
    for (content_type, body) in [
        ("application/json", "{\"title\": "),
        ("application/json", "not json"),
        ("application/json", "[1, 2]"),
        ("text/plain", "{\"title\": \"t\"}"),
    ] {
        let response = app
            .client()
            .post(app.url("/api/posts"))
            .bearer_auth(&ada.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        let (status, headers, document) = json_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {document}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(error_of(&document).0, 400);
        assert!(
            document["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (_, _, list) = app.api(Method::GET, "/api/posts", None, None).await;
    assert_eq!(list["posts"], json!([]));

    // A method the route does not have: 405, as JSON too, with Allow.
    let (status, headers, body) = app
        .api(Method::PUT, "/api/posts/x", Some(&ada), Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_of(&body).0, 405);
    let allow = headers["allow"].to_str().expect("allow");
    assert!(
        allow.contains("PATCH") && allow.contains("DELETE"),
        "{allow}"
    );
}
