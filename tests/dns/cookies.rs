//! DNS cookies (`[dns.cookies]`, RFC 7873 with RFC 9018's server cookies): `dig +cookie` gets
//! a server cookie over UDP and TCP; a valid server cookie exempts its client from rate
//! limiting, and a rate-limited client that sent a cookie is told BADCOOKIE with a fresh one; a
//! malformed COOKIE option is FORMERR; NSD and onebox, sharing a secret, accept each other's
//! cookies; `onebox check` refuses a bad secret.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use super::EXAMPLE_ZONE;
use crate::harness::dig::dig;
use crate::harness::nsd::{Nsd, NsdOptions};
use crate::harness::wire::{self, EdnsQuery, Query, Reply, rcode};
use crate::harness::{Onebox, run, uninterrupted};
use crate::metrics::value;

/// The RCODE a rate-limited client that sent a cookie gets (RFC 7873 §8).
const BADCOOKIE: u16 = 23;

/// The secret of the tests that share one (NSD's `cookie-secret` form).
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

/// `www.example.com. A` with a COOKIE option holding `cookie` (the raw option data).
fn query_with_cookie(cookie: &[u8]) -> Query {
    let mut query = Query::new("www.example.com.", RecordType::A);
    query.edns = Some(EdnsQuery {
        payload: 1232,
        version: 0,
        dnssec_ok: false,
        options: vec![(10, cookie.to_vec())],
    });
    query
}

/// The `; COOKIE: ...` line dig prints for the reply's cookie: (hex, dig's verdict).
fn dig_cookie(text: &str) -> Option<(String, String)> {
    let line = text.lines().find(|l| l.starts_with("; COOKIE: "))?;
    let rest = line.trim_start_matches("; COOKIE: ");
    let (hex, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((hex.to_owned(), verdict.to_owned()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// onebox serving example.com. with `extra` TOML.
fn onebox(extra: &str) -> Onebox {
    Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .dns("udp_workers = 1")
        .toml(extra)
        .start()
}

#[test]
fn dig_gets_a_server_cookie_over_udp_and_tcp_and_sends_it_back() {
    let ob = onebox("");
    for transport in ["+notcp", "+tcp"] {
        let out = dig(ob.addr, &["+cookie", transport, "www.example.com", "A"]);
        assert_eq!(out.status.as_deref(), Some("NOERROR"), "{}", out.text);
        let (cookie, verdict) = dig_cookie(&out.text).unwrap_or_else(|| panic!("{}", out.text));
        // dig checks that its own client cookie came back.
        assert_eq!(verdict, "(good)", "{}", out.text);
        // 8 bytes of client cookie, 16 of server cookie: version 1, 3 reserved zero bytes.
        assert_eq!(cookie.len(), 48, "{cookie}");
        assert_eq!(&cookie[16..24], "01000000", "{cookie}");
        // Sent back (dig +cookie=...): valid, so it comes back as it went (less than half an
        // hour old).
        let again = dig(
            ob.addr,
            &[
                &format!("+cookie={cookie}"),
                transport,
                "www.example.com",
                "A",
            ],
        );
        let (echoed, verdict) = dig_cookie(&again.text).unwrap_or_else(|| panic!("{}", again.text));
        assert_eq!(
            (echoed.as_str(), verdict.as_str()),
            (cookie.as_str(), "(good)")
        );
    }
    // Without a cookie, none comes back.
    let out = dig(ob.addr, &["+nocookie", "www.example.com", "A"]);
    assert!(dig_cookie(&out.text).is_none(), "{}", out.text);
    let text = ob.scrape();
    for (series, expected) in [
        ("{transport=\"udp\",result=\"client_only\"}", 1.0),
        ("{transport=\"udp\",result=\"valid\"}", 1.0),
        ("{transport=\"tcp\",result=\"client_only\"}", 1.0),
        ("{transport=\"tcp\",result=\"valid\"}", 1.0),
        ("{transport=\"udp\",result=\"invalid\"}", 0.0),
    ] {
        let series = format!("onebox_dns_cookies_total{series}");
        assert_eq!(value(&text, &series), expected, "{series}:\n{text}");
    }
}

#[test]
fn cookies_are_off_when_disabled() {
    let ob = onebox("[dns.cookies]\nenabled = false\n");
    let out = dig(ob.addr, &["+cookie", "www.example.com", "A"]);
    assert_eq!(out.status.as_deref(), Some("NOERROR"), "{}", out.text);
    assert!(dig_cookie(&out.text).is_none(), "{}", out.text);
    // Not even a malformed option is looked at.
    let reply = wire::udp(ob.addr, &query_with_cookie(&[1, 2, 3])).expect("a reply");
    assert_eq!(reply.rcode, rcode::NOERROR);
}

#[test]
fn a_malformed_cookie_option_is_formerr_over_udp_and_tcp() {
    let ob = onebox("");
    for len in [1, 7, 9, 15, 41] {
        let query = query_with_cookie(&vec![0x5a; len]);
        for reply in [
            wire::udp(ob.addr, &query).expect("a reply"),
            wire::tcp(ob.addr, &query.clone().renew()),
        ] {
            assert_eq!(reply.rcode, rcode::FORMERR, "{len} bytes: {reply:?}");
            assert!(reply.opt.is_some(), "FORMERR keeps the OPT: {reply:?}");
            assert_eq!(reply.cookie, None, "no cookie in a FORMERR (RFC 7873 §5.2)");
        }
    }
    // A server cookie of another server's format (8 to 32 bytes) is well-formed, not valid:
    // answered, with a new server cookie of ours.
    let reply = wire::udp(ob.addr, &query_with_cookie(&[0x5a; 8 + 20])).expect("a reply");
    assert_eq!(reply.rcode, rcode::NOERROR);
    let cookie = reply.cookie.expect("a cookie");
    assert_eq!((cookie.len(), &cookie[..8]), (24, &[0x5a; 8][..]));
    // Only the first COOKIE option counts.
    let mut query = query_with_cookie(&[1; 8]);
    if let Some(edns) = query.edns.as_mut() {
        edns.options.push((10, vec![2; 3]));
    }
    let reply = wire::udp(ob.addr, &query).expect("a reply");
    assert_eq!(reply.rcode, rcode::NOERROR);
    assert_eq!(&reply.cookie.expect("a cookie")[..8], &[1; 8]);
    let text = ob.scrape();
    assert_eq!(
        value(
            &text,
            "onebox_dns_cookies_total{transport=\"udp\",result=\"malformed\"}"
        ),
        5.0,
        "{text}"
    );
}

/// Sends `count` copies of `query` (fresh IDs) from `socket` in quick bursts while another
/// thread reads the replies, until none comes for a second: the replies.
fn flood(socket: &UdpSocket, to: SocketAddr, query: &Query, count: usize) -> Vec<Reply> {
    let reader = socket.try_clone().expect("clone");
    reader
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let replies = std::thread::spawn(move || {
        let mut replies = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((len, _)) = uninterrupted(|| reader.recv_from(&mut buf)) {
            replies.push(Reply::parse(&buf[..len]).expect("a well-formed reply"));
        }
        replies
    });
    let mut query = query.clone();
    for i in 0..count {
        query = query.renew();
        socket.send_to(&query.to_bytes(), to).expect("send");
        // Bursts of 10, 2 ms apart: limited at 10/s all the same, and no query lost in a busy
        // machine's socket buffers.
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    replies.join().expect("the reader")
}

/// RCODE and TC of each reply.
fn verdicts(replies: &[Reply]) -> Vec<(u16, bool)> {
    replies.iter().map(|r| (r.rcode, r.tc)).collect()
}

#[test]
fn a_valid_server_cookie_exempts_its_client_from_rate_limiting() {
    let ob = onebox("[dns.rate_limit]\nresponses_per_second = 10\nslip = 2\nexempt = []\n");
    // 127.0.1.1: one client, one /24 of its own.
    let socket = UdpSocket::bind("127.0.1.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let client = [0x11; 8];
    socket
        .send_to(&query_with_cookie(&client).to_bytes(), ob.addr)
        .expect("send");
    let mut buf = [0u8; 2048];
    let (len, _) = uninterrupted(|| socket.recv_from(&mut buf)).expect("a reply");
    let cookie = Reply::parse(&buf[..len])
        .expect("a reply")
        .cookie
        .expect("a server cookie");

    // With the server cookie: every reply, in full.
    let replies = verdicts(&flood(&socket, ob.addr, &query_with_cookie(&cookie), 400));
    assert_eq!(replies.len(), 400, "every query answered");
    assert!(
        replies.iter().all(|&r| r == (rcode::NOERROR, false)),
        "{replies:?}"
    );

    // With the client cookie only: held to the limit; the slipped replies are BADCOOKIE
    // (with a fresh server cookie), not truncated.
    let replies = flood(&socket, ob.addr, &query_with_cookie(&client), 400);
    let fresh = replies
        .iter()
        .find(|r| r.rcode == BADCOOKIE)
        .and_then(|r| r.cookie.clone())
        .expect("a BADCOOKIE reply with a server cookie");
    let replies = verdicts(&replies);
    let full = replies
        .iter()
        .filter(|&&r| r == (rcode::NOERROR, false))
        .count();
    let bad = replies.iter().filter(|&&(rc, _)| rc == BADCOOKIE).count();
    assert!(full <= 30, "{full} full replies with a limit of 10/s");
    assert!(bad > 100 && bad + full == replies.len(), "{replies:?}");
    assert!(replies.iter().all(|&(_, tc)| !tc), "{replies:?}");
    // The BADCOOKIE reply's cookie is valid: with it, the client is answered in full again.
    let replies = verdicts(&flood(&socket, ob.addr, &query_with_cookie(&fresh), 100));
    assert_eq!(replies.len(), 100);
    assert!(
        replies.iter().all(|&r| r == (rcode::NOERROR, false)),
        "{replies:?}"
    );
    // The cookie is bound to the address it was given to: from another, not valid, limited.
    let other = UdpSocket::bind("127.0.1.2:0").expect("bind");
    let replies = flood(&other, ob.addr, &query_with_cookie(&fresh), 200);
    assert!(replies.len() < 200, "{} answered", replies.len());
    // Without any cookie: held to the limit, the slips truncated (TC) as before.
    let query = Query::new("www.example.com.", RecordType::A);
    let replies = verdicts(&flood(&socket, ob.addr, &query, 200));
    assert!(replies.iter().any(|&(_, tc)| tc), "{replies:?}");
}

#[test]
fn nsd_and_onebox_sharing_a_secret_accept_each_others_cookies() {
    let ob = onebox(&format!("[dns.cookies]\nsecret = \"{SECRET}\"\n"));
    let nsd = Nsd::primary_with(
        &[("example.com", EXAMPLE_ZONE)],
        &NsdOptions {
            cookie_secret: Some(SECRET.to_owned()),
            ..NsdOptions::default()
        },
    );
    let cookie_from = |server: SocketAddr, sent: &[u8]| {
        let reply = wire::udp(server, &query_with_cookie(sent)).expect("a reply");
        assert_eq!(reply.rcode, rcode::NOERROR, "{reply:?}");
        reply.cookie.expect("a cookie")
    };
    for (issuer, verifier) in [(ob.addr, nsd.addr), (nsd.addr, ob.addr)] {
        let issued = cookie_from(issuer, &[0x42; 8]);
        assert_eq!(issued.len(), 24);
        // A second later a new cookie would carry a new timestamp: the verifier sends this one
        // back unchanged only if it found it valid.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            hex(&cookie_from(verifier, &issued)),
            hex(&issued),
            "{issuer} made it, {verifier} checked it"
        );
    }
    let text = ob.scrape();
    assert_eq!(
        value(
            &text,
            "onebox_dns_cookies_total{transport=\"udp\",result=\"valid\"}"
        ),
        1.0,
        "NSD's cookie is valid at onebox:\n{text}"
    );
    // Another secret: not valid, a new cookie.
    let other = onebox("[dns.cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n");
    let issued = cookie_from(ob.addr, &[0x42; 8]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_ne!(cookie_from(other.addr, &issued), issued);
}

#[test]
fn the_generated_secret_is_private_and_kept_across_restarts() {
    use std::os::unix::fs::PermissionsExt;

    let mut ob = onebox("");
    let file = ob.dir.path().join("state/dns/cookie_secret");
    let mode = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let issued = wire::udp(ob.addr, &query_with_cookie(&[7; 8]))
        .expect("a reply")
        .cookie
        .expect("a cookie");
    assert!(ob.terminate().is_some(), "onebox stops on SIGTERM");
    let ob = ob.restart();
    std::thread::sleep(Duration::from_millis(1100));
    let again = wire::udp(ob.addr, &query_with_cookie(&issued))
        .expect("a reply")
        .cookie
        .expect("a cookie");
    assert_eq!(hex(&again), hex(&issued), "still valid after the restart");
}

#[test]
fn check_refuses_a_bad_secret_or_a_secret_file_others_may_read() {
    let ob = onebox("");
    let config = ob.config.to_str().expect("utf-8");
    let check = |env: &[(&str, &str)]| {
        let out = run(ob.dir.path(), &["--config", config, "check"], env);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&[("ONEBOX_DNS__COOKIES__SECRET", "e5e973e5")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("dns.cookies.secret") && stderr.contains("32 hex digits"),
        "{stderr}"
    );
    let file = ob.dir.path().join("cookie-secrets");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write");
    let path = file.to_str().expect("utf-8");
    let (code, stderr) = check(&[("ONEBOX_DNS__COOKIES__SECRET_FILE", path)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("dns.cookies.secret_file") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (code, stderr) = check(&[("ONEBOX_DNS__COOKIES__SECRET_FILE", path)]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = check(&[
        ("ONEBOX_DNS__COOKIES__SECRET_FILE", path),
        ("ONEBOX_DNS__COOKIES__SECRET", SECRET),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not both"), "{stderr}");
}
