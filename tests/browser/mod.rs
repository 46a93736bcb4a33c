//! The browser's path (issue 5): an unmodified client on another host types
//! `https://www.foobar.com/`; its system resolver asks onebox for the name on port 53, and the
//! page comes from onebox on port 443, with the development CA trusted the way a user trusts it.
//!
//! Two network namespaces stand for the two hosts (harness `netns`; needs root, as CI runs):
//! onebox serves in the server namespace on 198.51.100.1 (DNS on :53, HTTP on :80, HTTPS on
//! :443) a copy of the shipped zone whose addresses point there; the client namespace's
//! `/etc/resolv.conf` says `nameserver 198.51.100.1`. Nothing is given `--resolve` or a hosts
//! entry: glibc's resolver (curl) and Chromium's own resolver reading `/etc/resolv.conf` find
//! the server by DNS alone.
//!
//! - curl, with `--cacert`, fetches the home page (the site's title and tagline, its latest
//!   posts);
//! - headless Chromium, trusting the CA through an NSS database under a temporary `HOME`, loads
//!   each page of [`PAGES`] (`--dump-dom`) and the test looks for text the page shows, including
//!   what `site/app.js` inserts (the protocol, the health check), so the scripts ran under the
//!   site's CSP, and the blog with a post an editor published through the API from the client
//!   (curl with an API token made by `onebox user token`), with an image it uploaded through the
//!   API (`POST /api/images`): the post page shows it decoded (`naturalWidth` > 0, written into
//!   the DOM by a script the test adds to its copy of the site: `image-check.js`, loaded by the
//!   built-in `post.html` plus that one line). A screenshot of each page is kept in
//!   `target/test-artifacts/browser/` (`home.png`, `blog.png`, `post.png`, `php.png`) for
//!   people to look at; nothing asserts on the pixels;
//! - the same Chromium loads `https://www.foobar.com/php/`: Debian's PHP-FPM, on the server
//!   host's loopback beside onebox, runs an `index.php` that onebox reaches over FastCGI
//!   (`[[web.proxy]]` with a `fastcgi://` upstream); the page shows what PHP computed and what
//!   it was told (HTTPS on, the host, the client host's address);
//! - then, through the DevTools protocol (`cdp`: Chromium driven over a pipe), what `--dump-dom`
//!   cannot show: every text's computed colour against what is painted behind it (WCAG AA) in
//!   the light and the dark scheme, the sign-in card centred on the page, and, at a phone's
//!   width of 390 CSS pixels, an editor signed in through the form writing a post, with no
//!   page wider than the screen (see [`looks`]).
//!
//! Without root, each test prints `NOT RUN` and passes, unless `ONEBOX_TEST_REQUIRE_NETNS=1`
//! (CI sets it), when it fails.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cdp;

use crate::harness::netns::{self, CLIENT_IP, Pair, SERVER_IP};
use crate::harness::phpfpm::PhpFpm;
use crate::harness::{DEADLINE, Onebox, repo};

/// Chromium headless with nothing of its own on the network (no QUIC, updates, sync): the
/// program and flags every run here starts from.
const CHROMIUM: &[&str] = &[
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A page the browser test loads, and text its rendered DOM must contain.
struct Page<'a> {
    /// The path on `https://www.foobar.com`.
    path: &'a str,
    /// The screenshot's file name in the artifact directory.
    shot: &'a str,
    /// Fragments of the DOM after the page's scripts ran.
    expect: &'a [&'a str],
}

/// The pages Chromium loads, one line each.
const PAGES: &[Page<'static>] = &[
    Page {
        path: "/",
        shot: "home.png",
        expect: &[
            // The site's title and tagline (site/.templates/home.html) ...
            "<h1>foobar.com <span>the whole stack on one box</span></h1>",
            // ... its latest post, with its excerpt ...
            r#"<a href="/blog/hello-from-the-client">Hello from the client</a>"#,
            // Inserted by site/app.js: the navigation went over HTTP/2 and TLS ...
            r#"<dd id="protocol">HTTP/2 over TLS</dd>"#,
            // ... and its fetch of /healthz succeeded.
            r#"<dd id="health">healthy</dd>"#,
        ],
    },
    // The blog, with the post `publish_a_post` wrote through the API: the list, then the post
    // with its Markdown rendered.
    Page {
        path: "/blog",
        shot: "blog.png",
        expect: &[
            "<h1>Blog <span>",
            r#"<a href="/blog/hello-from-the-client">Hello from the client</a>"#,
        ],
    },
    Page {
        path: "/blog/hello-from-the-client",
        shot: "post.png",
        expect: &[
            "<h1>Hello from the client</h1>",
            "<strong>one box</strong>",
            // The uploaded image, fetched from onebox and decoded: its real width.
            r#"alt="a gradient" data-natural-width="7""#,
        ],
    },
];

/// onebox in its own namespace, reachable from the client namespace by name.
struct World {
    // Dropped first: the processes go before their namespace.
    onebox: Onebox,
    /// PHP-FPM beside onebox on the server host, behind `/php/` (FastCGI).
    _php: Option<PhpFpm>,
    pair: Pair,
}

/// The PHP application the browser sees at `https://www.foobar.com/php/`, through onebox's
/// FastCGI proxy: what PHP-FPM was told of the request, and a page that works only if PHP ran.
const INDEX_PHP: &str = r#"<?php
header('X-App: php');
$sum = array_sum(range(1, 100));
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PHP behind onebox</title></head>
<body>
<h1>PHP-FPM behind onebox</h1>
<dl>
<dt>sum</dt><dd id="sum"><?= $sum ?></dd>
<dt>https</dt><dd id="https"><?= htmlspecialchars($_SERVER['HTTPS'] ?? 'off') ?></dd>
<dt>host</dt><dd id="host"><?= htmlspecialchars($_SERVER['HTTP_HOST'] ?? '') ?></dd>
<dt>client</dt><dd id="client"><?= htmlspecialchars($_SERVER['REMOTE_ADDR'] ?? '') ?></dd>
<dt>script</dt><dd id="script"><?= htmlspecialchars($_SERVER['SCRIPT_NAME'] ?? '') ?></dd>
<dt>gateway</dt><dd id="gateway"><?= htmlspecialchars($_SERVER['GATEWAY_INTERFACE'] ?? '') ?></dd>
</dl>
</body></html>
"#;

impl World {
    /// Sets up both hosts, or returns None (having said `NOT RUN`) without root.
    fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false)
    }

    /// [`World::start`]; with `php`, PHP-FPM on the server host's loopback serves
    /// [`INDEX_PHP`] at `/php/` through onebox (`fastcgi://`).
    fn start_with(test: &str, php: bool) -> Option<Self> {
        let pair = match Pair::new() {
            Ok(pair) => pair,
            Err(why) => {
                netns::not_run(test, &why);
                return None;
            }
        };
        let shipped = std::fs::read_to_string(repo().join("zones/foobar.com.zone"))
            .expect("read zones/foobar.com.zone");
        assert!(shipped.contains("8.8.8.8"), "the shipped zone's address");
        let zone = shipped.replace("8.8.8.8", &SERVER_IP.to_string());
        let on = |port: u16| format!("{SERVER_IP}:{port}");
        let php = php.then(|| {
            PhpFpm::start_in(
                &pair.server.exec_prefix(),
                &[("php/index.php", INDEX_PHP)],
                2,
            )
        });
        let proxy = php.as_ref().map_or(String::new(), |php| {
            format!(
                "[[web.proxy]]\npath = \"/php/\"\nupstreams = [\"fastcgi://{}\"]\n\
                 fastcgi_root = \"{}\"\n",
                php.addr,
                php.root().display()
            )
        });
        let onebox = Onebox::builder()
            .zone("foobar.com.zone", &zone)
            .toml(&proxy)
            .copy_site()
            .command_prefix(&pair.server.exec_prefix())
            .listen(&[&on(53)])
            .web_listen(&[&on(80)], &[&on(443)])
            .dns("query_log = true")
            .start();
        // Both hosts ask onebox: the client as a visitor's machine, the server for `doctor`.
        for host in [&pair.client, &pair.server] {
            host.resolv_conf(&format!("# onebox browser test\nnameserver {SERVER_IP}\n"));
        }
        Some(Self {
            onebox,
            _php: php,
            pair,
        })
    }

    /// Whether onebox logged a query for `qname` from the client's address.
    fn client_asked(&self, qname: &str) -> bool {
        let client = format!("{}:", netns::CLIENT_IP);
        self.onebox.log().entries().iter().any(|entry| {
            entry["message"] == "query"
                && entry["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&client))
                && entry["qname"]
                    .as_str()
                    .is_some_and(|q| q.eq_ignore_ascii_case(qname))
        })
    }

    /// onebox's log, for failure messages.
    fn log(&self) -> String {
        self.onebox.log().text()
    }
}

/// Where screenshots are kept: `target/test-artifacts/browser/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts/browser");
    std::fs::create_dir_all(&dir).expect("create the artifact directory");
    dir
}

/// Runs `command` in a process group of its own, output to files in `dir`; kills the group if it
/// has not finished within `limit`.
fn run_bounded(mut command: Command, dir: &Path, limit: Duration) -> Output {
    let stdout = dir.join("stdout");
    let stderr = dir.join("stderr");
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .process_group(0);
    let mut child = command.spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let pgid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
            // SAFETY: kill(2) on the process group we created (its leader is our child).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let status = child.wait().expect("wait");
            eprintln!("killed after {limit:?}: {command:?}");
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .expect("read output");
        bytes
    };
    Output {
        status,
        stdout: read(&stdout),
        stderr: read(&stderr),
    }
}

#[test]
fn curl_in_another_host_finds_www_foobar_com_by_dns_and_gets_the_home_page() {
    let Some(world) = World::start("curl_in_another_host") else {
        return;
    };
    world.onebox.wait_database();
    // glibc's resolver, as every program on the client uses it.
    let hosts = world
        .pair
        .client
        .command("getent")
        .args(["hosts", "www.foobar.com"])
        .output()
        .expect("run getent");
    let hosts = String::from_utf8_lossy(&hosts.stdout).into_owned();
    assert!(
        hosts.starts_with(&format!("{SERVER_IP} ")),
        "getent hosts www.foobar.com in the client: {hosts:?}\nonebox log:\n{}",
        world.log()
    );

    let out = world
        .pair
        .client
        .command("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "20"])
        .arg("--cacert")
        .arg(world.onebox.ca())
        .args(["--write-out", "\n%{remote_ip} %{http_version}"])
        .arg("https://www.foobar.com/")
        .output()
        .expect("run curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed ({}): {}\nonebox log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        world.log()
    );
    let (body, trailer) = text.rsplit_once('\n').expect("curl's --write-out line");
    assert!(
        body.contains("<h1>foobar.com <span>the whole stack on one box</span></h1>"),
        "the home page: {body}"
    );
    assert_eq!(
        trailer,
        format!("{SERVER_IP} 2"),
        "reached the server by its DNS name, over HTTP/2"
    );
    assert!(
        world.client_asked("www.foobar.com."),
        "onebox logged the client's query:\n{}",
        world.log()
    );
}

/// Headless Chromium in the client namespace, trusting onebox's development CA.
struct Chromium {
    /// `HOME` (with `.pki/nssdb`), the profile and the output files.
    home: tempfile::TempDir,
}

impl Chromium {
    /// An NSS database under a new `HOME` that trusts `ca` for web sites, as
    /// `certutil -A -t 'C,,'` does for a user.
    fn trusting(ca: &Path) -> Self {
        let home = tempfile::tempdir().expect("temp HOME");
        let db = home.path().join(".pki/nssdb");
        std::fs::create_dir_all(&db).expect("create .pki/nssdb");
        let db = format!("sql:{}", db.display());
        let certutil = |args: &[&str]| {
            let out = Command::new("certutil")
                .env("HOME", home.path())
                .args(["-d", &db])
                .args(args)
                .output()
                .expect("run certutil (apt-get install libnss3-tools)");
            assert!(
                out.status.success(),
                "certutil {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        certutil(&["-N", "--empty-password"]);
        let ca = ca.to_str().expect("CA path is UTF-8");
        certutil(&["-A", "-t", "C,,", "-n", "onebox-dev", "-i", ca]);
        Self { home }
    }

    /// Loads `https://www.foobar.com{page.path}` in the client namespace, checks the DOM after
    /// the page's scripts ran, and writes the screenshot. Panics with Chromium's stderr if it
    /// fails or the DOM lacks what the page should show.
    fn visit(&self, world: &World, page: &Page<'_>) {
        let url = format!("https://www.foobar.com{}", page.path);
        let shot = artifacts().join(page.shot);
        let _ = std::fs::remove_file(&shot);
        let run = |name: &str, output: &[String]| -> Output {
            let dir = self.home.path().join(name);
            std::fs::create_dir_all(&dir).expect("output dir");
            let mut command = world.pair.client.command("env");
            command
                .arg(format!("HOME={}", self.home.path().display()))
                .args(CHROMIUM)
                .args([
                    "--window-size=1280,900",
                    // Virtual time: wait for the page's fetches, not the wall clock.
                    "--virtual-time-budget=5000",
                ])
                .arg(format!(
                    "--user-data-dir={}",
                    self.home.path().join("profile").display()
                ))
                .args(output)
                .arg(&url);
            run_bounded(command, &dir, 3 * DEADLINE)
        };
        let mut dom = run("dom", &["--dump-dom".to_owned()]);
        // Chromium drops a load when it sees the host's network change, and the other tests'
        // namespaces coming and going can look like that: once more, then judge.
        if String::from_utf8_lossy(&dom.stderr).contains("net::ERR_NETWORK_CHANGED") {
            dom = run("dom", &["--dump-dom".to_owned()]);
        }
        let text = String::from_utf8_lossy(&dom.stdout).into_owned();
        let missing: Vec<&str> = page
            .expect
            .iter()
            .copied()
            .filter(|fragment| !text.contains(fragment))
            .collect();
        assert!(
            dom.status.success() && missing.is_empty(),
            "Chromium loading {url}: {}; missing from the DOM: {missing:#?}\nDOM:\n{text}\n\
             Chromium's stderr (without D-Bus noise):\n{}\nonebox log:\n{}",
            dom.status,
            quiet(&dom.stderr),
            world.log()
        );

        let screenshot = run("screenshot", &[format!("--screenshot={}", shot.display())]);
        let png = std::fs::read(&shot).unwrap_or_default();
        assert!(
            screenshot.status.success() && png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "Chromium's screenshot of {url} ({}): {} bytes at {}\n{}",
            screenshot.status,
            png.len(),
            shot.display(),
            quiet(&screenshot.stderr)
        );
    }
}

/// Chromium's stderr without the lines about the D-Bus it cannot find.
fn quiet(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.contains("dbus") && !l.contains("DBus"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn chromium_in_another_host_renders_the_site_by_its_name() {
    let Some(world) = World::start_with("chromium_in_another_host", true) else {
        return;
    };
    world.onebox.wait_database();
    check_images(&world.onebox.site());
    // Templates are read at start and on SIGHUP.
    let skip = world.onebox.log().line_count();
    world.onebox.sighup();
    let reloaded = world.onebox.log().wait_json_after(skip, |l| {
        l["message"] == "configuration reloaded"
            || l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed"))
    });
    assert!(
        reloaded.is_some_and(|l| l["message"] == "configuration reloaded"),
        "the reload with the image check:\n{}",
        world.log()
    );
    publish_a_post(&world);
    let browser = Chromium::trusting(&world.onebox.ca());
    for page in PAGES {
        browser.visit(&world, page);
    }
    // The PHP application behind onebox, through FastCGI over HTTPS.
    let client = format!(r#"<dd id="client">{CLIENT_IP}</dd>"#);
    let php = Page {
        path: "/php/",
        shot: "php.png",
        expect: &[
            "<h1>PHP-FPM behind onebox</h1>",
            // Computed by PHP: the source did not come through as text.
            r#"<dd id="sum">5050</dd>"#,
            r#"<dd id="https">on</dd>"#,
            r#"<dd id="host">www.foobar.com</dd>"#,
            &client,
            r#"<dd id="script">/php/index.php</dd>"#,
            r#"<dd id="gateway">CGI/1.1</dd>"#,
        ],
    };
    browser.visit(&world, &php);
    assert!(
        world.client_asked("www.foobar.com."),
        "onebox logged Chromium's query:\n{}",
        world.log()
    );
    looks(&world, &browser);
}

/// What a reader sees, measured in the browser (computed styles and layout, through the
/// DevTools protocol): every text readable against what is behind it (WCAG AA: 4.5:1, 3:1 for
/// large text) in the light and the dark scheme, on the public pages, the sign-in page with a
/// failed attempt's error, and every page of the editor; the sign-in card centred on the page;
/// and at a phone's width (390 CSS pixels) no page wider than the screen, the editor used there
/// to write a post with a long title and slug.
fn looks(world: &World, chromium: &Chromium) {
    let dir = chromium.home.path().join("devtools");
    std::fs::create_dir_all(&dir).expect("devtools dir");
    let mut command = world.pair.client.command("env");
    command
        .arg(format!("HOME={}", chromium.home.path().display()))
        .args(CHROMIUM)
        .arg(format!(
            "--user-data-dir={}",
            chromium.home.path().join("devtools-profile").display()
        ));
    let mut browser = cdp::Browser::start(command, &dir);
    let site = "https://www.foobar.com";
    let mut unreadable = Vec::new();
    let mut check_contrast = |browser: &mut cdp::Browser, what: &str| {
        for scheme in ["light", "dark"] {
            browser.color_scheme(scheme);
            let found = browser.eval(CONTRAST);
            for failure in found.as_array().expect("an array") {
                unreadable.push(format!(
                    "{what} ({scheme}): {}",
                    failure.as_str().unwrap_or("?")
                ));
            }
        }
    };

    // A desktop window: the public pages, and the sign-in card.
    browser.viewport(1280, 900, false);
    for path in ["/", "/blog", "/blog/hello-from-the-client", "/no-such-page"] {
        browser.go(&format!("{site}{path}"));
        check_contrast(&mut browser, path);
    }
    browser.go(&format!("{site}/signin"));
    let card = browser.eval(CARD);
    let number = |key: &str| card[key].as_f64().unwrap_or(f64::NAN);
    assert!(
        (number("left") - number("right")).abs() <= 2.0
            && (number("above") - number("below")).abs() <= 2.0
            && number("width") <= 640.0,
        "the sign-in card is not centred on the page (gaps to the page's edges in CSS pixels; \
         above and below: to the header and the footer): {card}"
    );
    // A failed attempt: its error message is readable too.
    browser.go_by(&sign_in_script("ed@foobar.com", "not the password"));
    assert_eq!(
        browser.eval("document.querySelector('p.error') !== null"),
        true,
        "a wrong password shows the error on the sign-in page"
    );
    check_contrast(&mut browser, "/signin after a wrong password");

    // A phone: sign in, write a post in the editor, and every page fits the screen.
    browser.viewport(390, 844, true);
    browser.go(&format!("{site}/signin?next=/editor"));
    browser.go_by(&sign_in_script("ed@foobar.com", "a long enough password"));
    assert_eq!(
        browser.eval("location.pathname"),
        "/editor",
        "signed in, the browser is in the editor"
    );
    browser.go(&format!("{site}/editor/new"));
    browser.go_by(
        "document.getElementById('title').value = \
           'A rather long title, the kind people write when they have a lot to say about it';\
         document.getElementById('slug').value = \
           'a-rather-long-slug-the-kind-people-write-when-they-have-a-lot-to-say-about-it';\
         document.getElementById('body_markdown').value = 'Written on a phone.';\
         document.querySelector('form.post-form').requestSubmit();",
    );
    let saved: String = browser
        .eval("location.pathname")
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        saved.starts_with("/editor/posts/"),
        "the new post's form was saved (now at {saved:?})"
    );
    let mut too_wide = Vec::new();
    for path in [
        "/editor",
        "/editor/new",
        &saved,
        &format!("{saved}/delete"),
        "/editor/images",
        "/editor/settings",
        "/",
        "/blog",
        "/blog/hello-from-the-client",
        "/signin",
    ] {
        browser.go(&format!("{site}{path}"));
        let fit = browser.eval(FITS);
        if fit["scrollWidth"].as_f64() > Some(390.0) {
            too_wide.push(format!("{path}: {fit}"));
        }
        check_contrast(&mut browser, path);
    }
    assert!(
        too_wide.is_empty(),
        "pages wider than a 390-px phone screen (document scrollWidth, and the elements that \
         stick out):\n{}",
        too_wide.join("\n")
    );
    assert!(
        unreadable.is_empty(),
        "text below WCAG AA contrast against what is behind it:\n{}",
        unreadable.join("\n")
    );
}

/// Fills in the sign-in form on the current page and submits it.
fn sign_in_script(email: &str, password: &str) -> String {
    format!(
        "document.getElementById('email').value = {email:?};\
         document.getElementById('password').value = {password:?};\
         document.querySelector('form[action=\"/signin\"]').requestSubmit();"
    )
}

/// The sign-in card's gaps to the page: left and right to the window's edges, above and below
/// to the header and the footer; and its width.
const CARD: &str = r#"(() => {
  const card = document.querySelector("main form[action='/signin']").closest("section");
  const r = card.getBoundingClientRect();
  const header = document.querySelector("body > header").getBoundingClientRect();
  const footer = document.querySelector("body > footer").getBoundingClientRect();
  return { left: r.left, right: document.documentElement.clientWidth - r.right,
           above: r.top - header.bottom, below: footer.top - r.bottom, width: r.width };
})()"#;

/// The document's width, and the elements reaching past the window's right edge.
const FITS: &str = r#"(() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll("body *")) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 0.5) {
      out.push(`${e.tagName.toLowerCase()}.${e.className} right=${Math.round(r.right)}`);
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, clientWidth: width,
           outside: out.slice(0, 8) };
})()"#;

/// Every visible element with text of its own whose colour against what is painted behind it
/// falls below WCAG AA (4.5:1; 3:1 for large text: 24 px, or 18.66 px bold). Behind it: the
/// background colours and gradient stops of it and its ancestors, up to the first opaque
/// colour, each layer over the ones below; each stop of a gradient counts as a background
/// the text may sit on, and so does each combination of overlapping gradients' stops.
const CONTRAST: &str = r##"(() => {
  const parse = (text) => {
    const m = text.match(/^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/);
    if (!m) throw new Error("a colour this check cannot read: " + text);
    return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]];
  };
  const stops = (image) => (image.match(/rgba?\([^)]*\)/g) || []).map(parse);
  const over = (top, under) =>
    [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const behind = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      layers.push(style);
      if (parse(style.backgroundColor)[3] === 1) break;
    }
    let under = [[255, 255, 255, 1]];
    for (const style of layers.reverse()) {
      const colour = parse(style.backgroundColor);
      if (colour[3] > 0) under = under.map((c) => over(colour, c));
      // Gradients, the last listed painted first: each stop over what is below.
      const gradients = style.backgroundImage.split(/(?=(?:repeating-)?(?:linear|radial|conic)-gradient\()/);
      for (const gradient of gradients.reverse()) {
        const colours = stops(gradient);
        if (colours.length) under = colours.flatMap((stop) => under.map((c) => over(stop, c)));
      }
    }
    return under;
  };
  const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  const failures = [];
  for (const element of document.querySelectorAll("body *")) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || element.getClientRects().length === 0) continue;
    const style = getComputedStyle(element);
    if (style.visibility !== "visible" || +style.opacity === 0) continue;
    const colour = parse(style.color);
    if (colour[3] === 0) continue;  // text painted by its background (a gradient heading)
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && +style.fontWeight >= 700);
    const needed = large ? 3 : 4.5;
    for (const background of behind(element)) {
      const got = ratio(over(colour, background), background);
      if (got < needed) {
        const text = element.textContent.trim().replace(/\s+/g, " ").slice(0, 40);
        failures.push(`<${element.tagName.toLowerCase()} class="${element.className}"> "${text}": ` +
          `${hex(colour)} on ${hex(background)} is ${got.toFixed(2)}:1, needs ${needed}:1`);
        break;
      }
    }
  }
  return failures;
})()"##;

/// Adds to the test's copy of the site a script that writes each post image's `naturalWidth`
/// into the DOM (0 unless the browser fetched and decoded it), and the built-in `post.html`
/// with one line more that loads it.
fn check_images(site: &Path) {
    std::fs::write(
        site.join("image-check.js"),
        "\"use strict\";\nwindow.addEventListener(\"load\", () => {\n  \
         for (const img of document.querySelectorAll(\".post .body img\")) {\n    \
         img.setAttribute(\"data-natural-width\", String(img.naturalWidth));\n  }\n});\n",
    )
    .expect("write image-check.js");
    let post = std::fs::read_to_string(repo().join("src/app/templates/post.html"))
        .expect("the built-in post.html");
    let extends = "{% extends \"base.html\" %}\n";
    assert!(post.contains(extends), "post.html extends base.html");
    let post = post.replacen(
        extends,
        &format!(
            "{extends}{{% block head %}}<script src=\"/image-check.js\"></script>{{% endblock %}}\n"
        ),
        1,
    );
    std::fs::create_dir_all(site.join(".templates")).expect("create .templates");
    std::fs::write(site.join(".templates/post.html"), post).expect("write post.html");
}

/// An editor made with `onebox user add` on the server uploads an image and publishes a post
/// showing it with an API token, from the client host, by name (curl).
fn publish_a_post(world: &World) {
    let cli = |args: &[&str], stdin: &str| -> String {
        let mut child = world
            .pair
            .server
            .command(env!("CARGO_BIN_EXE_onebox"))
            .arg("--config")
            .arg(&world.onebox.config)
            .args(args)
            .current_dir(world.onebox.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run onebox");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait for onebox");
        assert!(
            out.status.success(),
            "onebox {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    cli(
        &[
            "user",
            "add",
            "--email",
            "ed@foobar.com",
            "--name",
            "Ed",
            "--admin",
        ],
        "a long enough password\n",
    );
    let token = cli(&["user", "token", "--email", "ed@foobar.com"], "");
    let image = tempfile::NamedTempFile::new().expect("image file");
    std::fs::write(image.path(), crate::app::posts::images::png(7, 5, 3)).expect("write image");
    let out = world
        .pair
        .client
        .command("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--max-time",
            "20",
        ])
        .arg("--cacert")
        .arg(world.onebox.ca())
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: image/png"])
        .arg("--data-binary")
        .arg(format!("@{}", image.path().display()))
        .arg("https://www.foobar.com/api/images")
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "POST /api/images: {}{}\nonebox log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        world.log()
    );
    let uploaded: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the upload's JSON");
    let url = uploaded["url"].as_str().expect("the image's URL");
    let post = serde_json::json!({
        "title": "Hello from the client",
        "body_markdown": format!("Written on **one box**.\n\n![a gradient]({url})\n"),
        "status": "published",
    });
    let out = world
        .pair
        .client
        .command("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--max-time",
            "20",
        ])
        .arg("--cacert")
        .arg(world.onebox.ca())
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data", &post.to_string()])
        .arg("https://www.foobar.com/api/posts")
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "POST /api/posts: {}{}\nonebox log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        world.log()
    );
}

/// `onebox doctor` on the server host, where everything is right (the system resolver asks
/// onebox, the addresses are the host's own, the development CA signs the site's
/// certificate): every check passes and the exit status is 0.
#[test]
fn doctor_on_a_healthy_box_finds_nothing_wrong() {
    let Some(world) = World::start("doctor_on_a_healthy_box") else {
        return;
    };
    world.onebox.wait_database();
    let out = world
        .pair
        .server
        .command(env!("CARGO_BIN_EXE_onebox"))
        .arg("--config")
        .arg(&world.onebox.config)
        .arg("doctor")
        .current_dir(world.onebox.dir.path())
        .output()
        .expect("run onebox doctor");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "doctor failed ({}):\n{report}{}\nonebox log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        world.log()
    );
    for line in [
        &format!("ok    dns www.foobar.com. → {SERVER_IP}"),
        &format!("ok    resolver www.foobar.com → {SERVER_IP}"),
        "ok    https://www.foobar.com/readyz → 200",
        "ok    https://foobar.com/ → 301",
        "ok    certificate for www.foobar.com: valid for",
        "ok    database sqlite://",
    ] {
        assert!(
            report.contains(line),
            "doctor's report lacks {line:?}:\n{report}"
        );
    }
    assert!(report.contains("checks passed"), "{report}");
    assert!(
        !report.contains("FAIL") && !report.contains("warn"),
        "{report}"
    );
}
