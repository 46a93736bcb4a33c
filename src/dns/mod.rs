//! Authoritative DNS for the zones in `dns.zones_dir`.
//!
//! The seams are NSD's: zone storage, answering, network I/O and transfers live apart.
//!
//! - [`zone`] reads master files (every type NSD reads, and RFC 3597's generic form) into
//!   validated, compact, immutable [`ZoneData`] versions (`onebox check` uses it too);
//! - `catalog` puts the zones in service in one immutable [`Catalog`] snapshot; a reload builds
//!   a new catalog off the hot path and swaps it whole; [`serial`] holds the serial rules every
//!   swap applies;
//! - `answer` turns one query packet plus the current snapshot into reply bytes (pure, no I/O):
//!   `lookup` finds what answers it in the zone, `reply` encodes that with name compression;
//! - `udp` is the fast path (batched `recvmmsg`/`sendmmsg` on a thread of its own), `tcp` serves
//!   length-prefixed queries with a connection cap, timeouts and pipelining, and `xfr` streams
//!   zone transfers over it; `notify` tells secondaries when a serial changes.
//!
//! The DNS service uses only `config` and `ops`: it answers while the web site or database is
//! down.

mod answer;
mod catalog;
mod lookup;
mod notify;
mod reply;
pub mod serial;
mod server;
mod tcp;
mod udp;
mod xfr;
pub mod zone;

pub use catalog::Catalog;
pub use server::{DnsError, serve};
pub use zone::ZoneData;
