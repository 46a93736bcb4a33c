//! Two boxes, one database (`web.acme.storage = "database"`, issue 12): two `onebox serve`
//! processes started at the same moment on one SQLite file or one MariaDB database, both
//! with ACME on, http-01, and Pebble's validations sent to the box that did **not** order.
//!
//! - exactly one box orders (one `acme: order placed` in both logs, one order at Pebble), and
//!   both serve that certificate (the same leaf, over TLS verified against Pebble's root);
//! - the CA's http-01 validation is answered by the other box, from the database: Pebble
//!   validates through a forwarder that sends each connection to the box without an order in
//!   flight;
//! - a renewal (the CA's renewal window, through the front) is ordered by one box, and the
//!   other serves the renewed certificate within a minute (its storage poll is 1 s here);
//! - `onebox backup` holds the certificate: a box restored from it serves it without ordering;
//! - with dns-01, the zone's primary orders and its secondary (a onebox copying the zone by
//!   NOTIFY and transfer) serves the certificate without ordering; Pebble asks the secondary.

use std::sync::Mutex;
use std::time::Instant;

use super::front::Front;
use super::*;
use crate::harness::log::Log;

/// How long a box may take to serve what the other stored (the issue: within a minute).
const PICK_UP: Duration = Duration::from_secs(60);

/// The lines of `[web.acme]` both boxes share, besides the CA.
const SHARED: &str = "challenge = \"http-01\"\nstorage = \"database\"\nstorage_poll = \"1s\"";

/// Both boxes' logs and plain-HTTP addresses, once they run.
type Boxes = Arc<Mutex<Option<[(Arc<Log>, SocketAddr); 2]>>>;

/// A TCP forwarder for Pebble's http-01 validations: each connection goes to the box that has
/// no order in flight (by its log), and the choice is recorded.
struct Forwarder {
    port: u16,
    boxes: Boxes,
    /// Per connection: the box it went to, and the box ordering then.
    routed: Arc<Mutex<Vec<(usize, usize)>>>,
}

/// Whether the box of `log` has an order in flight: placed, and neither obtained nor failed.
fn ordering(log: &Log) -> bool {
    let entries = log.entries();
    let count = |message: &str| entries.iter().filter(|e| e["message"] == message).count();
    count("acme: order placed")
        > count("acme: certificate obtained and now served")
            + count("acme: could not obtain a certificate")
}

impl Forwarder {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let boxes: Boxes = Arc::default();
        let routed: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
        let (known, record) = (boxes.clone(), routed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (known, record) = (known.clone(), record.clone());
                tokio::spawn(async move {
                    // The box ordering, once exactly one is (the log may lag a moment).
                    let deadline = Instant::now() + Duration::from_secs(10);
                    let choice = loop {
                        let boxes = known.lock().expect("lock").clone();
                        if let Some(boxes) = boxes {
                            let flying: Vec<usize> =
                                (0..2).filter(|&i| ordering(&boxes[i].0)).collect();
                            if let [orderer] = flying[..] {
                                break Some((1 - orderer, orderer, boxes[1 - orderer].1));
                            }
                        }
                        if Instant::now() > deadline {
                            break None;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    let Some((target, orderer, addr)) = choice else {
                        return;
                    };
                    record.lock().expect("lock").push((target, orderer));
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            boxes,
            routed,
        }
    }

    fn routed(&self) -> Vec<(usize, usize)> {
        self.routed.lock().expect("lock").clone()
    }
}

/// One box of the pair on `ports`, its ACME certificate kept in the database at `url`.
fn a_box(ports: &Ports, url: &str, table: &str) -> Onebox {
    Onebox::builder()
        .zone("foobar.com.zone", ZONE)
        .listen(&[&ports.dns.to_string()])
        .web_listen(&[&ports.http.to_string()], &[&ports.https.to_string()])
        .database(url)
        .toml(table)
        .start()
}

/// The leaf each box serves for www.foobar.com, once both serve one that verifies against
/// `root` and is not `old`; panics with the logs after `within`.
async fn both_serve(
    boxes: &[&Onebox; 2],
    root: &Path,
    old: Option<&CertificateDer<'static>>,
    within: Duration,
    pebble: &Pebble,
) -> [CertificateDer<'static>; 2] {
    let deadline = Instant::now() + within;
    loop {
        let mut served = Vec::new();
        for onebox in boxes {
            match leaf(onebox.https, "www.foobar.com", root).await {
                Ok(leaf) if Some(&leaf) != old => served.push(leaf),
                _ => break,
            }
        }
        if let [a, b] = &served[..] {
            return [a.clone(), b.clone()];
        }
        assert!(
            Instant::now() < deadline,
            "not both serving a new certificate within {within:?}\nbox A:\n{}\nbox B:\n{}\npebble:\n{}",
            boxes[0].log().text(),
            boxes[1].log().text(),
            pebble.log().text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The SHA-256 of a certificate, in hex.
fn fingerprint(der: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many entries with `message` both boxes logged, and which box logged them.
fn logged(boxes: &[&Onebox; 2], message: &str) -> [usize; 2] {
    boxes.map(|onebox| {
        onebox
            .log()
            .entries()
            .iter()
            .filter(|e| e["message"] == message)
            .count()
    })
}

async fn two_boxes_one_certificate(url: &str) {
    let (ports_a, ports_b) = (Ports::free(), Ports::free());
    let forwarder = Forwarder::start().await;
    let pebble = Pebble::start(Validation {
        dns: ports_a.dns,
        http_port: forwarder.port,
        tls_port: ports_a.https.port(),
    });
    let front = Front::start(&pebble).await;
    let table = acme_table(&front.directory, &pebble.tls_ca(), SHARED);
    // Started at the same moment, each from its own thread (start waits until it listens).
    let barrier = std::sync::Barrier::new(2);
    let start = |ports: &Ports| {
        barrier.wait();
        a_box(ports, url, &table)
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| start(&ports_a));
        let b = scope.spawn(|| start(&ports_b));
        (a.join().expect("box A"), b.join().expect("box B"))
    });
    *forwarder.boxes.lock().expect("lock") =
        Some([(a.log_handle(), a.http), (b.log_handle(), b.http)]);
    let boxes = [&a, &b];
    let root = pebble.root_file();

    let [first_a, first_b] =
        both_serve(&boxes, &root, None, ORDER_DEADLINE + PICK_UP, &pebble).await;
    assert_eq!(
        fingerprint(&first_a),
        fingerprint(&first_b),
        "both boxes serve the same certificate"
    );
    // Anything either box would still do, it has had time to start.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let placed = logged(&boxes, "acme: order placed");
    assert_eq!(
        placed.iter().sum::<usize>(),
        1,
        "exactly one box ordered: {placed:?}"
    );
    assert_eq!(pebble.orders(), 1, "{}", pebble.log().text());
    let orderer = usize::from(placed[1] == 1);
    let follower = 1 - orderer;
    assert_eq!(
        logged(
            &boxes,
            "acme: serving the certificate another onebox process stored"
        )[follower],
        1,
        "the other box serves what the first stored"
    );
    // `onebox cert status` on the box that did not order reads the certificate from the
    // database.
    let status = crate::harness::onebox::cli(
        &boxes[follower].config,
        boxes[follower].dir.path(),
        &["cert", "status"],
        "",
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success()
            && text.contains("kept in the database")
            && text.contains("issuer:"),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let routed = forwarder.routed();
    assert!(!routed.is_empty(), "Pebble validated through the forwarder");
    assert!(
        routed
            .iter()
            .all(|&(to, ordering)| to == follower && ordering == orderer),
        "every validation went to the box that did not order: {routed:?}"
    );

    // The CA wants the certificate replaced: one box renews, the other serves the new one.
    let obtained = "acme: certificate obtained and now served";
    let before = logged(&boxes, obtained);
    front.renew_now();
    let deadline = Instant::now() + ORDER_DEADLINE;
    let renewer = loop {
        let now = logged(&boxes, obtained);
        if let Some(i) = (0..2).find(|&i| now[i] > before[i]) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no renewal within {ORDER_DEADLINE:?}\nbox A:\n{}\nbox B:\n{}\npebble:\n{}",
            a.log().text(),
            b.log().text(),
            pebble.log().text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let obtained_at = Instant::now();
    let [second_a, second_b] = both_serve(&boxes, &root, Some(&first_a), PICK_UP, &pebble).await;
    assert_eq!(
        fingerprint(&second_a),
        fingerprint(&second_b),
        "both boxes serve the renewed certificate"
    );
    assert!(obtained_at.elapsed() < PICK_UP);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        logged(&boxes, obtained).iter().sum::<usize>(),
        2,
        "one issuance, then one renewal, in both boxes together"
    );
    let renewal = &forwarder.routed()[routed.len()..];
    assert!(!renewal.is_empty(), "the renewal was validated too");
    assert!(
        renewal
            .iter()
            .all(|&(to, ordering)| to != ordering && ordering == renewer),
        "the renewal's validations went to the box that did not renew: {renewal:?}"
    );

    // A backup of the database restores a box that serves the certificate without ordering
    // (restored into a fresh SQLite file, whichever engine the pair used).
    let orders = pebble.orders();
    let archive = crate::backup::backup(&a.config, &a.dir.path().join("backups"));
    let target = crate::backup::BoxDirs::new("", "");
    crate::backup::ok(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "restore",
    );
    let ports_c = Ports::free();
    let c = Onebox::builder()
        .zone("foobar.com.zone", ZONE)
        .listen(&[&ports_c.dns.to_string()])
        .web_listen(&[&ports_c.http.to_string()], &[&ports_c.https.to_string()])
        .state_dir(&target.path("state"))
        .toml(&table)
        .start();
    wait_message(&c, &pebble, 0, "acme: serving the stored certificate");
    let restored = leaf(c.https, "www.foobar.com", &root)
        .await
        .expect("the restored box's certificate");
    assert_eq!(fingerprint(&restored), fingerprint(&second_a));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pebble.orders(), orders, "the restored box did not order");
}

/// dns-01 across a primary and a secondary: box A serves foobar.com and notifies box B, which
/// copies it (`[[dns.secondary]]`); both keep the certificate in one database. A orders and
/// publishes the TXT record; B never orders and serves what A stored. Pebble asks B's DNS, so
/// validation succeeds only if the record reached B (NOTIFY, transfer) before A asked for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dns_01_the_zones_primary_orders_and_its_secondary_serves_the_certificate() {
    let (ports_a, ports_b) = (Ports::free(), Ports::free());
    let pebble = Pebble::start(Validation {
        dns: ports_b.dns,
        ..ports_a.validation()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let table = acme_table(
        &pebble.directory,
        &pebble.tls_ca(),
        "storage = \"database\"\nstorage_poll = \"1s\"",
    );
    // B first: A's NOTIFY must find it listening.
    let b = Onebox::builder()
        .listen(&[&ports_b.dns.to_string()])
        .web_listen(&[&ports_b.http.to_string()], &[&ports_b.https.to_string()])
        .database(&url)
        .toml(&format!(
            "{table}\n[[dns.secondary]]\nzone = \"foobar.com\"\nprimaries = [\"{}\"]\n",
            ports_a.dns
        ))
        .start();
    let a = Onebox::builder()
        .zone("foobar.com.zone", ZONE)
        .listen(&[&ports_a.dns.to_string()])
        .web_listen(&[&ports_a.http.to_string()], &[&ports_a.https.to_string()])
        .transfer(&format!("notify = [\"{}\"]", ports_b.dns))
        .database(&url)
        .toml(&table)
        .start();
    let boxes = [&a, &b];
    let root = pebble.root_file();
    let [from_a, from_b] = both_serve(&boxes, &root, None, ORDER_DEADLINE + PICK_UP, &pebble).await;
    assert_eq!(fingerprint(&from_a), fingerprint(&from_b));
    let propagated = wait_message(
        &a,
        &pebble,
        0,
        "dns-01: every reachable name server answers the challenge",
    );
    assert!(
        propagated["servers"]
            .as_str()
            .is_some_and(|s| s.contains(&ports_b.dns.to_string())),
        "A waited for B: {propagated}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A alone orders (more than once only if B had not copied the zone yet when A first
    // checked, and so was not waited for: then that validation failed, and A tried again).
    let placed = logged(&boxes, "acme: order placed");
    assert!(
        placed[0] >= 1 && placed[1] == 0,
        "A alone orders: {placed:?}"
    );
    assert_eq!(pebble.orders(), placed[0], "{}", pebble.log().text());
    let status = crate::harness::onebox::cli(&b.config, b.dir.path(), &["cert", "status"], "");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("ordered by the zone's primary"),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_on_one_sqlite_file_share_one_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    two_boxes_one_certificate(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_on_one_mariadb_database_share_one_certificate() {
    let url = crate::harness::mariadb::shared().create_database();
    two_boxes_one_certificate(&url).await;
}
