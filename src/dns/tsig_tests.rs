//! TSIG against hickory-proto's own implementation (an independent reading of RFC 8945), and
//! every rejection.

use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::*;

const SECRET: &[u8] = b"a shared secret of some length..";
const NOW: u64 = 1_700_000_000;

fn key(algorithm: Algorithm) -> Arc<Key> {
    Arc::new(Key::new("xfr.example", algorithm, SECRET).unwrap())
}

fn keyring(algorithm: Algorithm) -> Keyring {
    Keyring {
        keys: vec![key(algorithm)],
    }
}

fn hickory(algorithm: TsigAlgorithm) -> TSigner {
    TSigner::new(
        SECRET.to_vec(),
        algorithm,
        Name::from_str("xfr.example.").unwrap(),
        FUDGE,
    )
    .unwrap()
}

fn query(qtype: RecordType) -> Message {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_str("example.org.").unwrap(), qtype));
    message
}

/// `message` signed by hickory at `time`: the bytes and the MAC.
fn signed_by_hickory(signer: &TSigner, mut message: Message, time: u64) -> (Vec<u8>, Vec<u8>) {
    let (tsig, _) = signer.sign_message(&message, time).unwrap();
    let mac = tsig.data.mac.clone();
    message.signature = Some(tsig);
    (message.to_vec().unwrap(), mac)
}

fn tsig_of(message: &[u8]) -> Tsig {
    let start = locate(message).unwrap().expect("a TSIG");
    read(message, start).expect("readable")
}

/// A response to `request`: header, question, `records` A records (as a transfer message).
fn response(id: u16, records: u8) -> Vec<u8> {
    let mut message = query(RecordType::AXFR);
    message.metadata.id = id;
    message.metadata.message_type = MessageType::Response;
    for i in 0..records {
        message.add_answer(hickory_proto::rr::Record::from_rdata(
            Name::from_str(&format!("h{i}.example.org.")).unwrap(),
            60,
            hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, i)),
        ));
    }
    let mut bytes = Vec::new();
    message.emit(&mut BinEncoder::new(&mut bytes)).unwrap();
    bytes
}

#[test]
fn a_request_signed_by_hickory_verifies_and_our_replies_verify_in_hickory() {
    for (ours, theirs) in [
        (Algorithm::HmacSha256, TsigAlgorithm::HmacSha256),
        (Algorithm::HmacSha384, TsigAlgorithm::HmacSha384),
        (Algorithm::HmacSha512, TsigAlgorithm::HmacSha512),
    ] {
        let signer = hickory(theirs.clone());
        let (request, request_mac) = signed_by_hickory(&signer, query(RecordType::AXFR), NOW);
        let tsig = tsig_of(&request);
        let mut ours = verify_request(&keyring(ours), &request, &tsig, NOW + 10)
            .unwrap_or_else(|e| panic!("{theirs:?}: {e:?}"));
        // A transfer of three messages, each signed; hickory verifies the chain.
        let mut previous = request_mac;
        for (i, records) in [3u8, 2, 1].into_iter().enumerate() {
            let mut message = response(0x4242, records);
            ours.sign(&mut message);
            let (mac, time, _) = signer
                .verify_message_byte(&message, Some(&previous), i == 0)
                .unwrap_or_else(|e| panic!("{theirs:?} message {i}: {e}"));
            assert_eq!(time, NOW + 10);
            previous = mac;
        }
    }
}

#[test]
fn our_request_verifies_in_hickory_and_a_chain_verifies_in_ours() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::IXFR).to_vec().unwrap();
    let mac = sign_request(&key, &mut request, NOW);
    let (_, time, range) = hickory(TsigAlgorithm::HmacSha256)
        .verify_message_byte(&request, None, true)
        .unwrap();
    assert_eq!(time, NOW);
    assert!(range.contains(&NOW));
    assert_eq!(tsig_of(&request).mac, mac);

    // Our server side signs, our client side verifies, with unsigned messages in between.
    let tsig = tsig_of(&request);
    let mut signer = verify_request(&keyring(Algorithm::HmacSha256), &request, &tsig, NOW).unwrap();
    let mut verifier = Verifier::new(key.clone(), mac);
    let mut first = response(0x4242, 2);
    signer.sign(&mut first);
    verifier.verify(&first, NOW).unwrap();
    // The signer signs every message; a sender that signs fewer is accepted too, the unsigned
    // ones being covered by the next MAC (RFC 8945 §5.3.1).
    let unsigned = response(0x4242, 1);
    verifier.verify(&unsigned, NOW).unwrap();
    assert!(
        verifier.finished().is_err(),
        "a transfer must not end unsigned"
    );
    let mut context = hmac::Context::with_key(&key.hmac);
    context.update(&(signer.prior.len() as u16).to_be_bytes());
    context.update(&signer.prior);
    context.update(&unsigned);
    let mut last = response(0x4242, 3);
    context.update(&last);
    update_timers(&mut context, NOW, FUDGE);
    let mac = context.sign();
    append_rr(
        &mut last,
        &key.wire,
        key.algorithm.wire(),
        NOW,
        FUDGE,
        mac.as_ref(),
        0x4242,
        0,
        &[],
    );
    verifier.verify(&last, NOW).unwrap();
    verifier.finished().unwrap();
}

#[test]
fn a_changed_message_or_secret_is_badsig() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::AXFR).to_vec().unwrap();
    sign_request(&key, &mut request, NOW);
    let mut tampered = request.clone();
    tampered[3] ^= 0x10; // the CD bit
    let tsig = tsig_of(&tampered);
    assert!(matches!(
        verify_request(&keyring(Algorithm::HmacSha256), &tampered, &tsig, NOW),
        Err(Rejection::Unsigned(BADSIG))
    ));
    let other = Keyring {
        keys: vec![Arc::new(
            Key::new("xfr.example", Algorithm::HmacSha256, b"another secret").unwrap(),
        )],
    };
    let tsig = tsig_of(&request);
    assert!(matches!(
        verify_request(&other, &request, &tsig, NOW),
        Err(Rejection::Unsigned(BADSIG))
    ));
}

#[test]
fn an_unknown_key_or_algorithm_is_badkey_answered_unsigned() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::AXFR).to_vec().unwrap();
    sign_request(&key, &mut request, NOW);
    let tsig = tsig_of(&request);
    for ring in [Keyring::default(), keyring(Algorithm::HmacSha512)] {
        assert!(matches!(
            verify_request(&ring, &request, &tsig, NOW),
            Err(Rejection::Unsigned(BADKEY))
        ));
    }
    // The error reply carries an empty MAC and the error (§5.3.2).
    let mut reply = request[..tsig.start].to_vec();
    reply[10..12].copy_from_slice(&0u16.to_be_bytes());
    append_unsigned(&mut reply, &tsig, BADKEY, NOW);
    let back = tsig_of(&reply);
    assert!(back.mac.is_empty());
    assert_eq!(back.error, BADKEY);
    let mut verifier = Verifier::new(key, tsig.mac.clone());
    assert_eq!(
        verifier.verify(&reply, NOW),
        Err(VerifyError::Remote(BADKEY))
    );
}

#[test]
fn a_stale_request_is_badtime_answered_signed_with_the_servers_time() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::AXFR).to_vec().unwrap();
    let mac = sign_request(&key, &mut request, NOW);
    let tsig = tsig_of(&request);
    let later = NOW + u64::from(FUDGE) + 1;
    let Err(Rejection::Signed(mut signer)) =
        verify_request(&keyring(Algorithm::HmacSha256), &request, &tsig, later)
    else {
        panic!("not BADTIME");
    };
    let mut reply = response(0x4242, 0);
    signer.sign(&mut reply);
    let back = tsig_of(&reply);
    assert_eq!(back.error, BADTIME);
    assert_eq!(back.time_signed, NOW, "the request's time");
    assert_eq!(
        back.other,
        later.to_be_bytes()[2..].to_vec(),
        "the server's time"
    );
    // Signed: the client can tell it came from the server.
    let mut verifier = Verifier::new(key, mac);
    assert_eq!(
        verifier.verify(&reply, NOW),
        Err(VerifyError::Remote(BADTIME))
    );
}

#[test]
fn a_truncated_mac_is_badtrunc_or_formerr() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::AXFR).to_vec().unwrap();
    sign_request(&key, &mut request, NOW);
    let tsig = tsig_of(&request);
    // Rebuild the RR with the MAC cut to `len` bytes.
    let cut = |len: usize| {
        let mut message = request[..tsig.start].to_vec();
        message[10..12].copy_from_slice(&0u16.to_be_bytes());
        append_rr(
            &mut message,
            &tsig.key,
            &tsig.algorithm,
            tsig.time_signed,
            tsig.fudge,
            &tsig.mac[..len],
            tsig.original_id,
            0,
            &[],
        );
        message
    };
    let ring = keyring(Algorithm::HmacSha256);
    let half = cut(16);
    assert!(matches!(
        verify_request(&ring, &half, &tsig_of(&half), NOW),
        Err(Rejection::Signed(Signer {
            error: BADTRUNC,
            ..
        }))
    ));
    let short = cut(8);
    assert!(matches!(
        verify_request(&ring, &short, &tsig_of(&short), NOW),
        Err(Rejection::Malformed)
    ));
}

#[test]
fn a_tsig_that_is_not_last_cannot_be_located() {
    let key = key(Algorithm::HmacSha256);
    let mut request = query(RecordType::AXFR).to_vec().unwrap();
    sign_request(&key, &mut request, NOW);
    // An OPT record after the TSIG.
    request.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
    let arcount = u16::from_be_bytes([request[10], request[11]]) + 1;
    request[10..12].copy_from_slice(&arcount.to_be_bytes());
    assert_eq!(locate(&request), Err(()));
}
