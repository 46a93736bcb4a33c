//! The user's own path: the shipped zone served by onebox, queried exactly as the README says
//! (`dig www.foobar.com @127.0.0.1 -p PORT`), and by hickory's client from Rust.

use std::str::FromStr;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::harness::Onebox;
use crate::harness::dig;

fn shipped() -> Onebox {
    Onebox::builder().shipped_zones().start()
}

#[test]
fn dig_www_foobar_com_gets_the_cname_then_the_apex_address() {
    let ob = shipped();
    let out = dig::dig_plain(ob.addr, "www.foobar.com");
    assert!(out.success, "dig failed:\n{}", out.text);
    assert_eq!(out.status.as_deref(), Some("NOERROR"), "{}", out.text);
    assert!(out.has_flag("aa"), "authoritative:\n{}", out.text);
    assert!(!out.has_flag("ra"), "no recursion offered:\n{}", out.text);
    assert!(!out.has_flag("tc"), "{}", out.text);
    assert_eq!(
        out.answer_lines(),
        [
            "www.foobar.com. 3600 IN CNAME foobar.com.",
            "foobar.com. 3600 IN A 8.8.8.8"
        ],
        "the CNAME, then the apex address:\n{}",
        out.text
    );
    assert!(
        out.text.contains("(UDP)"),
        "answered over UDP, no TCP retry:\n{}",
        out.text
    );
}

#[test]
fn dig_sees_the_rest_of_the_shipped_zone() {
    let ob = shipped();
    let ns = dig::dig(ob.addr, &["+norec", "foobar.com", "NS"]);
    let mut names: Vec<String> = ns.answer.iter().map(|r| r.rdata.clone()).collect();
    names.sort();
    assert_eq!(names, ["ns1.foobar.com.", "ns2.foobar.com."], "{}", ns.text);
    let soa = dig::dig(ob.addr, &["+norec", "foobar.com", "SOA"]);
    assert_eq!(soa.answer.len(), 1, "{}", soa.text);
    assert!(soa.answer[0].rdata.contains(" 2026112501 "), "{}", soa.text);
    let nx = dig::dig(ob.addr, &["+norec", "nope.foobar.com"]);
    assert_eq!(nx.status.as_deref(), Some("NXDOMAIN"), "{}", nx.text);
    assert_eq!(
        nx.authority.first().map(|r| (r.rtype.as_str(), r.ttl)),
        Some(("SOA", 300)),
        "{}",
        nx.text
    );
    let tcp = dig::dig(ob.addr, &["+tcp", "www.foobar.com"]);
    assert_eq!(tcp.answer.len(), 2, "over TCP too:\n{}", tcp.text);
}

#[tokio::test]
async fn hickory_client_resolves_www_foobar_com_over_udp_and_tcp() {
    let ob = shipped();
    let name = Name::from_str("www.foobar.com.").expect("name");
    let expected = [
        (
            "www.foobar.com.".to_owned(),
            RData::CNAME(hickory_proto::rr::rdata::CNAME(
                Name::from_str("foobar.com.").expect("name"),
            )),
        ),
        (
            "foobar.com.".to_owned(),
            RData::A("8.8.8.8".parse().expect("address")),
        ),
    ];

    let udp = UdpClientStream::builder(ob.addr, TokioRuntimeProvider::default()).build();
    let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(udp);
    tokio::spawn(background);
    let response = client
        .query(name.clone(), DNSClass::IN, RecordType::A)
        .await
        .expect("UDP query");
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative);
    let got: Vec<(String, RData)> = response
        .answers
        .iter()
        .map(|r| (r.name.to_ascii(), r.data.clone()))
        .collect();
    assert_eq!(got, expected, "over UDP");

    let (connect, sender) = TcpClientStream::new(ob.addr, None, None, TokioRuntimeProvider::new());
    let (mut client, background) =
        Client::<TokioRuntimeProvider>::new(connect.await.expect("TCP connect"), sender);
    tokio::spawn(background);
    let response = client
        .query(name, DNSClass::IN, RecordType::A)
        .await
        .expect("TCP query");
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    let got: Vec<(String, RData)> = response
        .answers
        .iter()
        .map(|r| (r.name.to_ascii(), r.data.clone()))
        .collect();
    assert_eq!(got, expected, "over TCP");
}
