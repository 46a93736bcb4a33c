//! A raw HTTP/2 client for requests no real client would send: frames and HPACK written by
//! hand (literal fields, no Huffman, no table), over TLS with ALPN `h2`. It reads the answer
//! to stream 1: a response (its `:status`), a stream reset or a connection error.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::{Proto, WWW, tls_config};
use crate::harness::DEADLINE;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// The largest frame payload a peer must accept (RFC 9113 §4.2).
const MAX_FRAME: usize = 16_384;

/// How the server answered stream 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status.
    Status(u16),
    /// RST_STREAM with this error code (1 = PROTOCOL_ERROR).
    Reset(u32),
    /// GOAWAY with this error code.
    GoAway(u32),
    /// The connection closed without any of those.
    Closed,
}

impl Answer {
    /// The request was refused as malformed: a reset, a connection error, or a 400.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Status(status) => *status == 400,
            Self::Reset(code) | Self::GoAway(code) => *code != 0,
            Self::Closed => false,
        }
    }
}

/// Sends one request with exactly these `fields` (pseudo-header fields included, in order)
/// and `body` (if any) on stream 1, and reads how the server answers it.
pub fn request(
    addr: SocketAddr,
    ca: &Path,
    fields: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let config = Arc::new(tls_config(ca, Proto::H2));
    let name = ServerName::try_from(WWW).expect("name");
    let tls = rustls::ClientConnection::new(config, name).expect("TLS client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut stream = rustls::StreamOwned::new(tls, tcp);

    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let block = hpack(fields);
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut kind = HEADERS;
    while let Some(chunk) = chunks.next() {
        let mut flags = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        if kind == HEADERS && body.is_none() {
            flags |= END_STREAM;
        }
        out.extend(frame(kind, flags, 1, chunk));
        kind = CONTINUATION;
    }
    if let Some(body) = body {
        out.extend(frame(DATA, END_STREAM, 1, body));
    }
    stream.write_all(&out).expect("send");
    stream.flush().expect("flush");

    loop {
        let mut head = [0u8; 9];
        match stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                return Answer::Closed;
            }
            Err(e) => panic!("reading a frame: {e}"),
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("frame payload");
        match kind {
            SETTINGS if flags & 1 == 0 => {
                stream.write_all(&frame(SETTINGS, 1, 0, &[])).expect("ack");
            }
            HEADERS if id == 1 => return Answer::Status(status(&payload, flags)),
            RST_STREAM if id == 1 => return Answer::Reset(code(&payload[..4])),
            GOAWAY => return Answer::GoAway(code(&payload[4..8])),
            _ => {}
        }
    }
}

/// The usual pseudo-header fields of a GET of `path` for the canonical name.
pub fn get(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".to_owned()),
        (":scheme", "https".to_owned()),
        (":authority", WWW.to_owned()),
        (":path", path.to_owned()),
    ]
}

fn code(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("four bytes"))
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("frame length")
        .to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// Literal header fields without indexing, new names, no Huffman (RFC 7541 §6.2.2).
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        for text in [name.as_bytes(), value.as_bytes()] {
            integer(&mut out, 0, 7, text.len());
            out.extend(text);
        }
    }
    out
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | u8::try_from(value).expect("fits the prefix"));
        return;
    }
    out.push(first | u8::try_from(max).expect("prefix"));
    value -= max;
    while value >= 128 {
        out.push(u8::try_from(value % 128).expect("seven bits") | 0x80);
        value /= 128;
    }
    out.push(u8::try_from(value).expect("seven bits"));
}

/// The `:status` at the start of the first response's header block: an indexed field of the
/// static table (200, 204, 206, 304, 400, 404, 500), or a literal with name index 8 whose
/// value is three digits, Huffman-coded or not (RFC 7541 §6, Appendix A and B).
fn status(payload: &[u8], flags: u8) -> u16 {
    let mut block = payload;
    if flags & 0x8 != 0 {
        let pad = usize::from(block[0]);
        block = &block[1..block.len() - pad];
    }
    if flags & 0x20 != 0 {
        block = &block[5..];
    }
    let first = block[0];
    if first & 0x80 != 0 {
        return match first & 0x7f {
            8 => 200,
            9 => 204,
            10 => 206,
            11 => 304,
            12 => 400,
            13 => 404,
            14 => 500,
            other => panic!("indexed field {other} first in a response"),
        };
    }
    assert!(
        matches!(first, 0x48 | 0x08 | 0x18),
        "the first field is not :status: {block:?}"
    );
    let (huffman, len) = (block[1] & 0x80 != 0, usize::from(block[1] & 0x7f));
    let value = &block[2..2 + len];
    let digits = if huffman {
        huffman_digits(value)
    } else {
        String::from_utf8(value.to_vec()).expect("ASCII status")
    };
    digits.parse().expect("three digits")
}

/// Decodes a Huffman string made of digits only: '0'–'2' are 5-bit codes 0–2, '3'–'9' are
/// 6-bit codes 0x19–0x1f; the padding is ones.
fn huffman_digits(bytes: &[u8]) -> String {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1))
        .collect();
    let take = |at: usize, n: usize| -> Option<u8> {
        (at + n <= bits.len()).then(|| bits[at..at + n].iter().fold(0, |acc, b| acc << 1 | b))
    };
    let mut out = String::new();
    let mut at = 0;
    while let Some(five) = take(at, 5) {
        if five < 3 {
            out.push(char::from(b'0' + five));
            at += 5;
        } else if let Some(six @ 0x19..=0x1f) = take(at, 6) {
            out.push(char::from(b'3' + (six - 0x19)));
            at += 6;
        } else {
            break;
        }
    }
    out
}

#[test]
fn huffman_digits_decode() {
    // "421": 011010 00010 00001, exactly two bytes.
    assert_eq!(huffman_digits(&[0b0110_1000, 0b0100_0001]), "421");
    // "000": three 5-bit zeros, padded with a one.
    assert_eq!(huffman_digits(&[0b0000_0000, 0b0000_0001]), "000");
}
