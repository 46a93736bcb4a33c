//! Authoritative DNS for the zones in `dns.zones_dir`.
//!
//! The seams are NSD's: zone storage, answering, network I/O and transfers live apart.
//!
//! - [`zone`] reads master files (every type NSD reads, and RFC 3597's generic form) into
//!   validated, compact, immutable [`ZoneData`] versions (`onebox check` uses it too);
//! - `catalog` puts the zones in service in one immutable [`Catalog`] snapshot; a reload builds
//!   a new catalog off the hot path and swaps it whole; [`serial`] holds the serial rules;
//! - `versions` is the one path through which a zone's served version changes (a file read,
//!   the ACME DNS-01 overlay): the serial rule, the IXFR journal (`journal`), the versions kept
//!   in `state_dir/dns/` (`stored`), the swap, NOTIFY;
//! - `answer` turns one query packet plus the current snapshot into reply bytes (pure, no I/O):
//!   `lookup` finds what answers it in the zone, `reply` encodes that with name compression;
//! - `cookie` makes and checks DNS cookies (RFC 7873, server cookies as RFC 9018 makes them):
//!   a valid server cookie exempts its client from response rate limiting (`rrl`);
//! - `udp` is the fast path (batched `recvmmsg`/`sendmmsg` on a thread of its own per socket,
//!   `dns.udp_workers` sockets per address), `tcp` serves length-prefixed queries on
//!   connections accepted by the shared `ops::accept` loop, and `xfr` streams zone transfers
//!   over it (AXFR, or IXFR from the journal); `notify` tells secondaries when a serial changes;
//! - `secondary` serves the zones of `[[dns.secondary]]`: transferred from their primaries
//!   (IXFR or AXFR, TSIG-signed), refreshed on the SOA timers and on NOTIFY, expired as NSD does;
//! - `metrics` counts queries (per UDP worker, summed when scraped), transfers and NOTIFY, and
//!   reports each zone's serial and size;
//! - `server` is the service ([`Dns`]): built (zones loaded) before any socket exists, handed
//!   its sockets and each reloaded configuration by the lifecycle in `cli`.
//!
//! The DNS service uses only `config` and `ops`: it answers while the web site or database is
//! down.

mod answer;
mod catalog;
mod cookie;
pub mod dnssec;
mod journal;
mod lookup;
mod metrics;
mod notify;
mod reply;
mod rrl;
pub mod secondary;
pub mod serial;
mod server;
mod stored;
mod tcp;
mod tsig;
mod udp;
mod versions;
mod xfr;
pub mod zone;

pub use catalog::{Catalog, ZoneData};
pub use server::{Dns, DnsError};
pub use zone::Zone;
