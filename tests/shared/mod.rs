//! Several boxes on one database (issue 12: what onebox itself must do for several boxes),
//! each box a real `onebox serve` process, the database the suite's MariaDB:
//!
//! - `migrations`: boxes starting at once on a fresh database — exactly one applies the
//!   migrations, the others wait and then serve; `onebox migrate up` run twice at once, too;
//! - `signin`: failed sign-ins counted in the database, so two boxes count them together;
//! - `pages`: a write on one box ends the other box's cached pages within the TTL;
//! - `newer`: a rolling upgrade adding a migration — the box not yet upgraded serves the newer
//!   schema; a schema from another history is refused.

mod migrations;
mod newer;
mod pages;
mod signin;

use crate::harness::Onebox;

/// A box of the pair: the shipped zones, the database at `url`, and `app` lines in `[app]`.
pub fn a_box(url: &str, app: &[&str]) -> Onebox {
    let mut builder = Onebox::builder().shipped_zones().database(url);
    for line in app {
        builder = builder.app(line);
    }
    builder.start()
}

/// Two boxes on the database at `url`, started at the same moment (each from its own thread:
/// the harness's start waits for the process to listen).
pub fn two_boxes(url: &str, app: &[&str]) -> (Onebox, Onebox) {
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let start = || {
            barrier.wait();
            a_box(url, app)
        };
        let a = scope.spawn(start);
        let b = scope.spawn(start);
        (
            a.join().expect("box A started"),
            b.join().expect("box B started"),
        )
    })
}
