//! The architecture, checked: dependencies between onebox's modules point one way, and each
//! module keeps to its job. The test reads every source file under `src/<module>/` and looks at
//! the modules (`crate::x`) and crates it names.
//!
//! - config and ops are the floor (ops may read config);
//! - dns uses config and ops only: it answers while the site or the database is down;
//! - web uses config, ops and app (the router it serves); never dns or db;
//! - app uses db, config and ops; never hyper, rustls, sockets or DNS;
//! - db uses config only; no HTTP, no axum;
//! - acme (beside cli: the ACME client) uses config, ops, the DNS module's zone reader and db
//!   (its storage, with `web.acme.storage = "database"`, through db's functions: no SeaORM of
//!   its own); never web or app: certificates and challenge answers reach the services
//!   through `ops` handles. Nothing but cli and doctor uses it, and db does not know it.
//! - backup (the archive of the whole box) uses db, config and ops; never the services (dns,
//!   web, app, acme): their keys and certificates are files in `state_dir`. Nothing but cli
//!   and doctor uses it.

use std::path::Path;

use crate::harness::repo;

/// (module, onebox modules it may name, crates it must not name)
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "config",
        &[],
        &["tokio", "hyper", "axum", "sea_orm", "hickory_proto"],
    ),
    (
        "ops",
        &["config"],
        &["hyper", "axum", "sea_orm", "hickory_proto"],
    ),
    (
        "dns",
        &["config", "ops"],
        &["hyper", "axum", "sea_orm", "rustls"],
    ),
    (
        "web",
        &["config", "ops", "app"],
        &["sea_orm", "hickory_proto", "migration"],
    ),
    (
        "app",
        &["db", "config", "ops"],
        &[
            "hyper",
            "rustls",
            "tokio_rustls",
            "hickory_proto",
            "socket2",
            "tokio::net",
        ],
    ),
    (
        "db",
        &["config"],
        &["axum", "hyper", "http::", "rustls", "minijinja"],
    ),
    (
        "acme",
        &["config", "ops", "dns", "db"],
        &["axum", "sea_orm", "minijinja", "migration", "hyper::server"],
    ),
    (
        "backup",
        &["db", "config", "ops"],
        &[
            "axum",
            "hyper",
            "rustls",
            "hickory_proto",
            "sea_orm",
            "migration",
        ],
    ),
];

const MODULES: &[&str] = &[
    "config", "ops", "dns", "web", "app", "db", "acme", "backup", "cli", "doctor",
];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn dependencies_point_one_way() {
    let mut broken = Vec::new();
    for (module, allowed, banned) in RULES {
        let mut files = Vec::new();
        sources(&repo().join("src").join(module), &mut files);
        assert!(!files.is_empty(), "src/{module}/ has sources");
        for (path, text) in &files {
            for line in text.lines().map(str::trim) {
                if line.starts_with("//") {
                    continue;
                }
                for other in MODULES
                    .iter()
                    .filter(|m| *m != module && !allowed.contains(m))
                {
                    if line.contains(&format!("crate::{other}::"))
                        || line.contains(&format!("crate::{other};"))
                        || line.contains(&format!("crate::{{{other}"))
                        || line.contains(&format!(", {other}}}"))
                            && line.starts_with("use crate::{")
                    {
                        broken.push(format!("{path}: {module} uses {other}: {line}"));
                    }
                }
                for krate in *banned {
                    let named = line.starts_with(&format!("use {krate}"))
                        || line.contains(&format!(" {krate}::"))
                        || line.contains(&format!("({krate}::"));
                    if named {
                        broken.push(format!("{path}: {module} names {krate}: {line}"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// acme may use one part of the DNS module: its zone reader (to know which zones onebox serves
/// and their name servers), not the server.
#[test]
fn acme_uses_only_the_zone_reader_of_dns() {
    let mut files = Vec::new();
    sources(&repo().join("src").join("acme"), &mut files);
    let broken: Vec<String> = files
        .iter()
        .flat_map(|(path, text)| {
            text.lines()
                .filter(|line| line.contains("crate::dns") && !line.contains("crate::dns::zone"))
                .map(move |line| format!("{path}: {}", line.trim()))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "acme uses more of dns than its zone reader:\n{}",
        broken.join("\n")
    );
}
