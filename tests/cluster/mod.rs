//! Beyond one box (issue 12): two onebox boxes behind HAProxy, on a three-node MariaDB Galera
//! cluster, box B a secondary name server of box A; a client with an unmodified glibc resolver
//! asking a local unbound that knows both name servers. Each machine is a network namespace
//! (`world`), set up from the configurations shipped in `deploy/cluster/`.
//!
//! Under a continuous, bounded load from the client (`load`: lookups of new names through
//! unbound, GETs of `/`, `/blog` and a post over HTTPS by name, and an editor publishing a post
//! every second through the API, every acknowledged write recorded):
//!
//! 1. box A is killed (`kill -9`): lookups go on through B, HAProxy takes A out within its
//!    check interval and sends it nothing more; GETs do not fail (HAProxy sends a GET that
//!    found A dead to B);
//! 2. box A starts again: it serves what was written meanwhile, and HAProxy uses it again;
//! 3. the database node HAProxy sends the boxes to stops: the site goes on serving and writes
//!    resume on the next node; the node then starts again and catches up;
//! 4. a rolling upgrade, `onebox upgrade` on A then on B, the database carrying a migration
//!    newer than the binaries (played by SQL: both binaries are this build): not one failed
//!    attempt.
//!
//! Afterwards every acknowledged write must be in the database, on every node, and no write
//! may have been applied twice (the writer sends each slug once: a 409 "slug taken" means one
//! POST was applied twice on its way). Printed (run it with `--nocapture`; `make test-cluster`
//! does): per phase, the attempts that failed and the longest time without a successful one,
//! each failover's time, the writes lost, those answered with an error but stored anyway, and the
//! throughput of `/blog` with one box and with two (on a 2-core machine shared by everything,
//! which shows the mechanism, not the scale).
//!
//! Needs root (namespaces), HAProxy, galera-4, MariaDB, unbound, rsync, openssl and curl; without
//! root it prints `NOT RUN` unless `ONEBOX_TEST_REQUIRE_NETNS=1`. It takes a few minutes:
//! `#[ignore]`d, run by `make test-cluster` (and CI).

mod load;
mod world;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use load::{Attempt, Figures, Load, figures, now};
use world::{World, checked, ip};

/// How long each phase keeps the load on after its event.
const SETTLE: Duration = Duration::from_secs(8);

/// Requests of one throughput measurement.
const BURST: usize = 400;

/// The migration the upgrade's new release adds (unknown to this build).
const NEWER_MIGRATION: &str = "m20991231_000001_post_reactions";

/// One phase: its span and what was measured in it.
struct Phase {
    name: &'static str,
    from: f64,
    to: f64,
    notes: Vec<String>,
}

#[test]
#[ignore = "a few minutes, network namespaces and a Galera cluster: make test-cluster"]
fn a_box_a_database_node_and_an_upgrade_fail_under_load_and_no_acknowledged_write_is_lost() {
    let Some(mut world) = World::start("cluster") else {
        return;
    };
    publish(&world, "hello-cluster", "Hello, cluster");
    let load = Load::start(&world);
    let mut phases: Vec<Phase> = Vec::new();

    // 0. Both boxes serving.
    let from = now();
    std::thread::sleep(SETTLE);
    let two_boxes = throughput(&world);
    phases.push(Phase {
        name: "0 two boxes",
        from,
        to: now(),
        notes: vec![format!(
            "/blog throughput with two boxes: {two_boxes:.0} requests/s"
        )],
    });

    // 1. kill -9 box A.
    let from = now();
    world.boxes[0].kill9();
    let detected = world.wait_server("boxes_read", "a", "DOWN", Duration::from_secs(20));
    let (_, sent_to_a) = world.haproxy_stat("boxes_read", "a").expect("stat");
    std::thread::sleep(SETTLE / 2);
    let one_box = throughput(&world);
    std::thread::sleep(SETTLE / 2);
    let (_, sent_to_a_later) = world.haproxy_stat("boxes_read", "a").expect("stat");
    assert_eq!(
        sent_to_a, sent_to_a_later,
        "HAProxy sent requests to box A after marking it down"
    );
    phases.push(Phase {
        name: "1 kill -9 box A",
        from,
        to: now(),
        notes: vec![
            format!(
                "HAProxy marked A down {:.2} s after the kill",
                detected.as_secs_f64()
            ),
            format!("/blog throughput with one box: {one_box:.0} requests/s"),
        ],
    });

    // 2. Box A back.
    let from = now();
    let began = Instant::now();
    let (_, before) = world.haproxy_stat("boxes_read", "a").expect("stat");
    let mut a = world.boxes.remove(0);
    world.run_box(&mut a);
    world.boxes.insert(0, a);
    let serving = began.elapsed();
    let up = world.wait_server("boxes_read", "a", "UP", Duration::from_secs(30));
    std::thread::sleep(SETTLE);
    let (_, after) = world.haproxy_stat("boxes_read", "a").expect("stat");
    assert!(
        after > before,
        "HAProxy sends nothing to box A again ({before} → {after})"
    );
    // A serves what was written while it was down (the database is shared): the latest
    // acknowledged write, asked of A directly.
    let latest = load
        .attempts()
        .into_iter()
        .rev()
        .find(|a| a.kind == "write" && a.ok)
        .expect("an acknowledged write");
    let direct = get_from(&world, "a", &format!("/blog/{}", latest.what));
    assert_eq!(direct, "200", "box A does not serve {}", latest.what);
    let two_boxes_again = throughput(&world);
    let serials = ["a", "b"].map(|label| soa_serial(&world, label));
    assert_eq!(
        serials[0], serials[1],
        "A and B serve different versions of foobar.com"
    );
    phases.push(Phase {
        name: "2 box A back",
        from,
        to: now(),
        notes: vec![
            format!(
                "A ready {:.2} s after its start; HAProxy sending to it again {:.2} s after its start ({} requests in the next {}s)",
                serving.as_secs_f64(),
                (serving + up).as_secs_f64(),
                after - before,
                SETTLE.as_secs()
            ),
            format!("A serves {} (written while it was down); SOA serial {} on A and B", latest.what, serials[0]),
            format!("/blog throughput with two boxes again: {two_boxes_again:.0} requests/s"),
        ],
    });

    // 3. Stop the database node the boxes use.
    let from = now();
    let began = Instant::now();
    world.db("db1").begin_stop();
    let moved = world.wait_server("galera", "db1", "DOWN", Duration::from_secs(20));
    world.db("db1").stop();
    let db_down = began.elapsed();
    let resumed = wait_write_after(&load, from, Duration::from_secs(30));
    std::thread::sleep(SETTLE);
    let rejoin = Instant::now();
    world.restart_db("db1");
    for node in ["db1", "db2", "db3"] {
        world.db(node).wait_synced(3, Duration::from_secs(120));
    }
    let rejoined = rejoin.elapsed();
    phases.push(Phase {
        name: "3 stop db1",
        from,
        to: now(),
        notes: vec![
            format!(
                "HAProxy moved the boxes to db2 {:.2} s after the stop began; db1 had stopped after {:.2} s",
                moved.as_secs_f64(),
                db_down.as_secs_f64()
            ),
            format!("first acknowledged write {resumed:.2} s after the stop began"),
            format!("db1 started again and synced (IST) in {:.2} s", rejoined.as_secs_f64()),
        ],
    });

    // 4. Rolling upgrade. The new release adds a migration: its first box to start applies it,
    // and the boxes not yet upgraded go on serving the schema (it only adds). Here both
    // binaries are this build, so the migration is played by SQL, as that release's onebox
    // would apply it (a new table, and its row in SeaORM's table): neither binary knows it,
    // and both must serve and write on, each warning once.
    let from = now();
    let mut notes = Vec::new();
    world
        .db("db1")
        .sql(&format!(
            "CREATE TABLE onebox.post_reactions (id BIGINT NOT NULL PRIMARY KEY, \
             post_id BIGINT NOT NULL, kind VARCHAR(32) NOT NULL); \
             INSERT INTO onebox.seaql_migrations (version, applied_at) \
             VALUES ('{NEWER_MIGRATION}', UNIX_TIMESTAMP())"
        ))
        .unwrap_or_else(|e| panic!("the newer release's migration: {e}"));
    notes.push(format!(
        "the database carries {NEWER_MIGRATION}, newer than both binaries"
    ));
    for i in 0..2 {
        let label = world.boxes[i].label;
        let binary = world.boxes[i].binary.clone();
        let old = world.boxes[i].serving_pid().expect("pid");
        // A package upgrade puts a new file in place of the old one.
        let fresh = binary.with_extension("new");
        std::fs::copy(env!("CARGO_BIN_EXE_onebox"), &fresh).expect("copy the binary");
        std::fs::rename(&fresh, &binary).expect("replace the binary");
        let began = Instant::now();
        let said = world.box_cli(label, &["upgrade", "--no-backup"], "");
        let new = world.boxes[i].serving_pid().expect("pid");
        assert_ne!(old, new, "box {label}: {said}");
        notes.push(format!(
            "box {label}: `onebox upgrade` {:.2} s ({said})",
            began.elapsed().as_secs_f64()
        ));
        std::thread::sleep(SETTLE / 2);
    }
    std::thread::sleep(SETTLE / 2);
    for host in &world.boxes {
        let warned = host
            .logs()
            .iter()
            .flat_map(|log| log.entries())
            .any(|entry| {
                entry["level"] == "WARN" && entry["migrations"].as_str() == Some(NEWER_MIGRATION)
            });
        assert!(
            warned,
            "box {} did not warn of {NEWER_MIGRATION}",
            host.label
        );
    }
    phases.push(Phase {
        name: "4 rolling upgrade",
        from,
        to: now(),
        notes,
    });

    // 5. A graceful restart of box B (SIGTERM, then start again, as `systemctl restart` does
    // without the socket unit): HAProxy takes it out before it stops serving.
    let from = now();
    let stopped = world.boxes[1].terminate();
    let mut b = world.boxes.remove(1);
    let began = Instant::now();
    world.run_box(&mut b);
    world.boxes.insert(1, b);
    let ready = began.elapsed();
    world.wait_server("boxes_read", "b", "UP", Duration::from_secs(30));
    std::thread::sleep(SETTLE / 2);
    phases.push(Phase {
        name: "5 restart box B",
        from,
        to: now(),
        notes: vec![format!(
            "B stopped {:.2} s after SIGTERM, ready {:.2} s after its start",
            stopped.as_secs_f64(),
            ready.as_secs_f64()
        )],
    });

    let attempts = load.finish();
    let writes = stored_writes(&mut world, &attempts);
    let mut report = report(&phases, &attempts, &writes);
    for host in &world.boxes {
        let mut seen = BTreeSet::new();
        for entry in host.logs().iter().flat_map(|log| log.entries()) {
            if entry["level"] == "ERROR" || entry["level"] == "WARN" {
                let line = format!(
                    "{} {} {}",
                    entry["level"],
                    entry["message"],
                    if entry["error"].is_null() {
                        &entry["detail"]
                    } else {
                        &entry["error"]
                    }
                );
                if seen.insert(line.clone()) && seen.len() <= 12 {
                    let _ = writeln!(report, "box {}: {line}", host.label);
                }
            }
        }
    }
    eprintln!("{report}");
    keep_logs(&world, &report);

    // The claims.
    assert!(
        writes.lost.is_empty(),
        "acknowledged writes lost: {:?}\n{report}",
        writes.lost
    );
    // The writer sends each slug once: a 409 means one POST was applied twice on its way
    // (a balancer or a client sending it again after a box had applied it).
    assert!(
        writes.twice.is_empty(),
        "POSTs applied twice (answered 409, slug taken): {:?}\n{report}",
        writes.twice
    );
    assert!(
        detected < Duration::from_secs(3),
        "HAProxy took {detected:?} to take box A out (inter 500ms, fall 2)"
    );
    let by = |phase: &Phase, kind: &str| figures(&attempts, kind, phase.from, phase.to);
    for phase in &phases {
        let lookups = by(phase, "lookup");
        assert_eq!(
            lookups.failed,
            0,
            "{}: lookups failed: {:?}\nunbound's log:\n{}",
            phase.name,
            lookups.failures,
            world.unbound_log()
        );
        assert!(
            lookups.ok > 0 && by(phase, "get").ok > 0,
            "{}: no load",
            phase.name
        );
    }
    // Both boxes lose the database together while HAProxy moves them to the next node (and
    // each box's database watcher sees it back, within a second): dynamic pages answer 503
    // for that long, then everything is served again.
    let db = by(&phases[3], "get");
    assert!(
        db.longest_gap < Duration::from_secs(10),
        "the site stopped serving for {:?} when db1 stopped",
        db.longest_gap
    );
    let kill = by(&phases[1], "get");
    assert_eq!(
        kill.failed, 0,
        "GETs failed when box A died: {:?}",
        kill.failures
    );
    for (phase, kind) in [(4, "get"), (4, "write"), (5, "get"), (5, "write")] {
        let f = by(&phases[phase], kind);
        assert_eq!(f.failed, 0, "{}: {:?}", phases[phase].name, f.failures);
    }
}

/// Copies the logs (HAProxy's, each box's, each database node's, the load's) and the report to
/// `target/test-artifacts/cluster/`, for people to read after the run.
fn keep_logs(world: &World, report: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts/cluster");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the artifact directory");
    let _ = std::fs::write(dir.join("report.txt"), report);
    let _ = std::fs::copy(&world.haproxy.output, dir.join("haproxy.log"));
    for host in &world.boxes {
        let text: String = host.logs().iter().map(|log| log.text()).collect();
        let _ = std::fs::write(dir.join(format!("box-{}.log", host.label)), text);
    }
    for node in &world.db {
        let _ = std::fs::write(dir.join(format!("{}.log", node.name)), node.log());
    }
    if let Ok(entries) = std::fs::read_dir(world.dir.path().join("load")) {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), dir.join(entry.file_name()));
        }
    }
    eprintln!("cluster: logs kept in {}", dir.display());
}

/// Publishes a post through HAProxy as the editor, from the client host.
fn publish(world: &World, slug: &str, title: &str) {
    let body = serde_json::json!({
        "title": title,
        "slug": slug,
        "body_markdown": "Served by **two boxes**.",
        "status": "published",
    });
    let out = world
        .host("client")
        .command("curl")
        .args(["-sS", "--fail-with-body", "--max-time", "20", "--cacert"])
        .arg(&world.ca)
        .args(["-H", &format!("Authorization: Bearer {}", world.token)])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data", &body.to_string()])
        .arg("https://www.foobar.com/api/posts")
        .output()
        .expect("curl");
    checked("POST /api/posts", &out);
}

/// `GET https://www.foobar.com/PATH` from box `label` directly (not through HAProxy), from the
/// client host: the status.
fn get_from(world: &World, label: &str, path: &str) -> String {
    let out = world
        .host("client")
        .command("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg("--cacert")
        .arg(&world.ca)
        .arg("--resolve")
        .arg(format!("www.foobar.com:443:{}", ip(label)))
        .arg(format!("https://www.foobar.com{path}"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SOA serial box `label` serves for foobar.com (dig from the client host).
fn soa_serial(world: &World, label: &str) -> String {
    let out = world
        .host("client")
        .command("dig")
        .args([
            "+short",
            "+time=2",
            &format!("@{}", ip(label)),
            "foobar.com",
            "SOA",
        ])
        .output()
        .expect("dig");
    let text = checked("dig SOA", &out);
    text.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no SOA from box {label}: {text:?}"))
        .to_owned()
}

/// `/blog` fetched [`BURST`] times through HAProxy, 8 at a time (curl `--parallel`, HTTP/2):
/// requests per second.
fn throughput(world: &World) -> f64 {
    let list = world.dir.path().join("burst.curl");
    let mut text = String::new();
    for _ in 0..BURST {
        text.push_str("url = \"https://www.foobar.com/blog\"\noutput = \"/dev/null\"\n");
    }
    std::fs::write(&list, text).expect("curl config");
    let began = Instant::now();
    let out = world
        .host("client")
        .command("curl")
        .args([
            "-sS",
            "--parallel",
            "--parallel-max",
            "8",
            "-w",
            "%{http_code}\\n",
        ])
        .arg("--cacert")
        .arg(&world.ca)
        .arg("-K")
        .arg(&list)
        .output()
        .expect("curl");
    let took = began.elapsed();
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count();
    assert_eq!(
        ok,
        BURST,
        "throughput: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    BURST as f64 / took.as_secs_f64()
}

/// Waits for the first acknowledged write that started after `from`; its delay after `from`.
fn wait_write_after(load: &Load, from: f64, limit: Duration) -> f64 {
    let began = Instant::now();
    loop {
        if let Some(write) = load
            .attempts()
            .into_iter()
            .find(|a| a.kind == "write" && a.ok && a.start >= from)
        {
            return write.end - from;
        }
        assert!(
            began.elapsed() < limit,
            "no write acknowledged within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the database nodes hold of the editor's writes.
struct StoredWrites {
    /// Acknowledged writes (201) missing from a node: `slug on node`.
    lost: Vec<String>,
    /// Writes answered with an error that every node holds nonetheless: the box applied them
    /// and the answer was lost on the way back (a connection cut); the client cannot tell
    /// them from writes never applied.
    failed_but_stored: Vec<String>,
    /// Writes answered 409 (slug taken): the writer sends each slug once, so the same POST was
    /// applied twice on its way.
    twice: Vec<String>,
}

/// Checks the editor's writes against every database node.
fn stored_writes(world: &mut World, attempts: &[Attempt]) -> StoredWrites {
    let writes: Vec<&Attempt> = attempts.iter().filter(|a| a.kind == "write").collect();
    assert!(writes.iter().any(|a| a.ok), "no write was acknowledged");
    let mut found = StoredWrites {
        lost: Vec::new(),
        failed_but_stored: Vec::new(),
        twice: Vec::new(),
    };
    let mut on_every_node: Option<BTreeSet<String>> = None;
    for node in ["db1", "db2", "db3"] {
        let stored: BTreeSet<String> = world
            .db(node)
            .sql("SELECT slug FROM onebox.posts")
            .unwrap_or_else(|e| panic!("read the posts on {node}: {e}"))
            .lines()
            .map(str::to_owned)
            .collect();
        for write in writes.iter().filter(|a| a.ok) {
            if !stored.contains(&write.what) {
                found.lost.push(format!("{} on {node}", write.what));
            }
        }
        on_every_node = Some(match on_every_node {
            None => stored,
            Some(every) => every.intersection(&stored).cloned().collect(),
        });
    }
    let on_every_node = on_every_node.unwrap_or_default();
    for write in writes.iter().filter(|a| !a.ok) {
        if write.detail == "409" {
            found.twice.push(write.what.clone());
        } else if on_every_node.contains(&write.what) {
            found
                .failed_but_stored
                .push(format!("{} ({})", write.what, write.detail));
        }
    }
    found
}

/// The figures, one table row per phase and kind, then the notes.
fn report(phases: &[Phase], attempts: &[Attempt], stored: &StoredWrites) -> String {
    let mut out = String::from("\n=== cluster test: figures ===\n");
    let writes = attempts
        .iter()
        .filter(|a| a.kind == "write" && a.ok)
        .count();
    let _ = writeln!(
        out,
        "{:<20} {:<7} {:>6} {:>7} {:>12} {:>10}",
        "phase", "kind", "ok", "failed", "longest gap", "slowest"
    );
    for phase in phases {
        for kind in ["get", "lookup", "write"] {
            let f: Figures = figures(attempts, kind, phase.from, phase.to);
            let _ = writeln!(
                out,
                "{:<20} {:<7} {:>6} {:>7} {:>10.2} s {:>8.2} s",
                phase.name,
                kind,
                f.ok,
                f.failed,
                f.longest_gap.as_secs_f64(),
                f.slowest.as_secs_f64()
            );
            for failure in &f.failures {
                let _ = writeln!(out, "    {failure}");
            }
        }
        let _ = writeln!(out, "{:<20} ({:.1} s)", "", phase.to - phase.from);
        for note in &phase.notes {
            let _ = writeln!(out, "    {note}");
        }
    }
    let _ = writeln!(
        out,
        "acknowledged writes: {writes}; missing from a database node: {}; applied twice (409): {}; \
         answered with an error but stored: {} {:?}",
        stored.lost.len(),
        stored.twice.len(),
        stored.failed_but_stored.len(),
        stored.failed_but_stored
    );
    out
}
