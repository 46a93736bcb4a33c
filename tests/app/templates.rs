//! The page templates are checked before anything is served: `onebox check` compiles them as
//! `serve` does and reports a broken one as `file:line: message` (exit 1), and `serve` refuses
//! to start with it rather than failing a visitor's request.

use crate::harness::{onebox_command, repo};

#[test]
fn a_broken_template_is_reported_by_check_and_stops_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    // The site's own blog.html, replacing the built-in one (a copy of it, to start with).
    std::fs::copy(
        repo().join("src/app/templates/blog.html"),
        templates.join("blog.html"),
    )
    .expect("copy");
    let config = dir.path().join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{state}'\n[dns]\nzones_dir = '{zones}'\n[app]\ntemplates_dir = '{templates}'\n",
            state = dir.path().join("state").display(),
            zones = repo().join("zones").display(),
            templates = templates.display(),
        ),
    )
    .expect("write config");
    let check = || {
        onebox_command()
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()
            .expect("run onebox check")
    };
    let good = check();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );

    let blog = templates.join("blog.html");
    let text = std::fs::read_to_string(&blog).expect("read blog.html");
    std::fs::write(
        &blog,
        text.replacen("{% block main %}", "{% block main %}\n{% if %}", 1),
    )
    .expect("break blog.html");
    let bad = check();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", blog.display())),
        "names the file and line: {stderr}"
    );

    let serve = onebox_command()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("ONEBOX_DNS__LISTEN", "[\"127.0.0.1:0\"]")
        .env("ONEBOX_WEB__HTTP_LISTEN", "[\"127.0.0.1:0\"]")
        .env("ONEBOX_WEB__HTTPS_LISTEN", "[\"127.0.0.1:0\"]")
        .output()
        .expect("run onebox serve");
    assert_eq!(serve.status.code(), Some(2), "serve refuses to start");
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(stderr.contains("blog.html:"), "{stderr}");
}
