//! Renewal and restarts: the CA's renewal window (ARI, RFC 9773) renews the certificate while
//! an HTTP/2 connection opened before keeps working; a restart reuses the account and the
//! certificate without a new order.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::front::Front;
use super::*;

/// An HTTP/2 connection to onebox for `www.foobar.com`, trusting `root`: the sender, and the
/// leaf certificate it was opened with.
async fn h2_connection(
    addr: SocketAddr,
    root: &Path,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    CertificateDer<'static>,
) {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(trusting(&[root], &[b"h2"])));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = connector
        .connect(ServerName::try_from("www.foobar.com").expect("name"), tcp)
        .await
        .expect("handshake");
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    (sender, leaf)
}

async fn get_file(sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>) -> u16 {
    let request = http::Request::get("https://www.foobar.com/style.css")
        .body(Empty::new())
        .expect("request");
    sender
        .send_request(request)
        .await
        .expect("the connection still answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cas_renewal_window_renews_while_an_h2_connection_stays_open() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let front = Front::start(&pebble).await;
    let onebox = onebox_on(&ports)
        .toml(&acme_table(&front.directory, &pebble.tls_ca(), ""))
        .start();
    obtained(&onebox, &pebble, 0);
    // The CA's window, a year ahead, replaces renew_before.
    wait_message(
        &onebox,
        &pebble,
        0,
        "acme: the CA's renewal window (ARI) sets the renewal time",
    );
    let root = pebble.root_file();
    let (mut sender, first) = h2_connection(onebox.https, &root).await;
    assert_eq!(get_file(&mut sender).await, 200);

    let skip = onebox.log().line_count();
    front.renew_now();
    obtained(&onebox, &pebble, skip);
    let second = leaf(onebox.https, "www.foobar.com", &root)
        .await
        .expect("new handshake");
    assert_ne!(second, first, "new handshakes get the renewed certificate");
    assert_eq!(
        get_file(&mut sender).await,
        200,
        "the connection opened before the renewal keeps working"
    );
    // Pebble 2.4 knows nothing of `replaces`: onebox ordered without it.
    assert!(
        onebox
            .log()
            .text()
            .contains("did not take the order as a replacement"),
        "{}",
        onebox.log().text()
    );
    // Renewed once: the new certificate has a window a year ahead.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pebble.orders(), 3, "{}", pebble.log().text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reuses_the_account_and_the_certificate() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let state = tempfile::tempdir().expect("state dir");
    let table = acme_table(&pebble.directory, &pebble.tls_ca(), "");
    let mut first = onebox_on(&ports)
        .state_dir(state.path())
        .toml(&table)
        .start();
    obtained(&first, &pebble, 0);
    let root = pebble.root_file();
    let served = leaf(first.https, "www.foobar.com", &root)
        .await
        .expect("first");
    let accounts = state.path().join("acme/accounts");
    let account = std::fs::read_dir(&accounts)
        .expect("accounts")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("account"))
        .collect::<Vec<_>>();
    assert_eq!(account.len(), 1, "one account");
    assert!(first.terminate().is_some_and(|s| s.success()));
    let orders = pebble.orders();

    let second = onebox_on(&ports)
        .state_dir(state.path())
        .toml(&table)
        .start();
    let line = wait_message(&second, &pebble, 0, "acme: serving the stored certificate");
    assert_eq!(line["names"], "www.foobar.com foobar.com");
    assert_eq!(
        leaf(second.https, "www.foobar.com", &root)
            .await
            .expect("second"),
        served,
        "the same certificate, from the first handshake on"
    );
    // Give it time to do anything it would do; it must not order.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pebble.orders(), orders, "{}", pebble.log().text());
    assert!(
        !second.log().text().contains("acme: ordering"),
        "{}",
        second.log().text()
    );
    let again = std::fs::read_dir(&accounts)
        .expect("accounts")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("account"))
        .collect::<Vec<_>>();
    assert_eq!(again, account, "the same account");
}
