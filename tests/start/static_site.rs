//! A plain static site (an `index.html`, no `.templates/`) starts: with `app.enabled = false`
//! it is DNS and those files alone, no database; with the application, the built-in templates
//! render its pages, and a `.templates/` file replaces one of them, file by file.

use crate::harness::Onebox;
use crate::web::{Proto, WWW, url};

/// A site directory with only an `index.html` (and, if given, `.templates/` files).
fn plain_site(server_dir: &std::path::Path, templates: &[(&str, &str)]) -> std::path::PathBuf {
    let site = server_dir.join("plain-site");
    std::fs::create_dir_all(&site).expect("mkdir");
    std::fs::write(site.join("index.html"), "<h1>Just files</h1>\n").expect("index");
    for (name, text) in templates {
        let path = site.join(".templates").join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("template");
    }
    site
}

#[tokio::test]
async fn a_static_site_alone_is_dns_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = plain_site(dir.path(), &[]);
    let server = Onebox::builder()
        .shipped_zones()
        .site_dir(&site)
        .app("enabled = false")
        .start();
    let client = crate::web::client(&server, Proto::H1);
    let home = client
        .get(url(&server, WWW, "/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(home.status(), 200);
    assert_eq!(home.text().await.expect("body"), "<h1>Just files</h1>\n");
    // No application: its paths are files like any other (here: missing).
    for path in ["/blog", "/signin", "/api/posts"] {
        let response = client
            .get(url(&server, WWW, path))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 404, "{path}");
    }
    let ready = client
        .get(url(&server, WWW, "/readyz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ready.text().await.expect("body"), "ready\n");
    assert!(
        !server.dir.path().join("state/onebox.db").exists(),
        "no database was opened"
    );
}

#[tokio::test]
async fn the_built_in_templates_serve_a_site_without_its_own_and_yield_file_by_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = plain_site(dir.path(), &[]);
    let server = Onebox::builder().shipped_zones().site_dir(&site).start();
    server.wait_database();
    let client = crate::web::client(&server, Proto::H1);
    let blog = client
        .get(url(&server, WWW, "/blog"))
        .send()
        .await
        .expect("GET");
    assert_eq!(blog.status(), 200);
    assert!(
        blog.text()
            .await
            .expect("body")
            .contains("Nothing published yet")
    );
    drop(server);

    let site = plain_site(
        dir.path(),
        &[(
            "blog.html",
            "{% extends \"base.html\" %}{% block main %}<p>my own blog page</p>{% endblock %}",
        )],
    );
    let server = Onebox::builder().shipped_zones().site_dir(&site).start();
    server.wait_database();
    let client = crate::web::client(&server, Proto::H1);
    let blog = client
        .get(url(&server, WWW, "/blog"))
        .send()
        .await
        .expect("GET");
    let blog = blog.text().await.expect("body");
    assert!(blog.contains("<p>my own blog page</p>"), "{blog}");
    assert!(
        blog.contains("href=\"/signin\""),
        "the built-in base.html around it: {blog}"
    );
    let signin = client
        .get(url(&server, WWW, "/signin"))
        .send()
        .await
        .expect("GET");
    assert!(
        signin
            .text()
            .await
            .expect("body")
            .contains("action=\"/signin\""),
        "the other pages keep the built-in templates"
    );
}
