//! Answering: one query packet plus the current catalog snapshot in, reply bytes out.
//!
//! Pure: no sockets, no clocks, no locks. Both transports call [`Responder::respond`].

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;

use super::catalog::{Catalog, ZoneData};

/// The transport a query arrived on; it decides the reply size limit and what may be transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Datagrams: replies are truncated to the client's payload size (TC set).
    Udp,
    /// Streams: full replies, and zone transfers.
    Tcp,
}

/// What the transport should do with a query.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `out` holds one complete reply message (no TCP length prefix).
    Reply,
    /// Send nothing (a response, or a packet too short to answer).
    Drop,
    /// TCP only: stream a full zone transfer (AXFR, or IXFR answered with AXFR); `out` is empty.
    Transfer(Transfer),
}

/// An allowed zone transfer, for `xfr` to stream.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The zone snapshot to send (it stays consistent even if a reload happens meanwhile).
    pub zone: Arc<ZoneData>,
    /// The query's ID, echoed in every message.
    pub id: u16,
    /// The query's question section bytes (QNAME as sent, QTYPE, QCLASS), echoed in the first
    /// message.
    pub question: Vec<u8>,
}

/// Answers queries from the current catalog; the catalog is swapped whole on reload.
pub(crate) struct Responder {
    catalog: ArcSwap<Catalog>,
    transfer_allow: Vec<IpNet>,
    query_log: bool,
}

impl Responder {
    pub(crate) fn new(catalog: Catalog, transfer_allow: Vec<IpNet>, query_log: bool) -> Self {
        Self {
            catalog: ArcSwap::from_pointee(catalog),
            transfer_allow,
            query_log,
        }
    }

    /// The snapshot in service now.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Puts a new snapshot in service; queries already running finish on the old one.
    pub(crate) fn swap(&self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
    }

    /// Answers one query. `out` is cleared first; on [`Outcome::Reply`] it holds the reply.
    pub(crate) fn respond(
        &self,
        packet: &[u8],
        peer: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        let _ = (
            packet,
            peer,
            transport,
            self.query_log,
            &self.transfer_allow,
        );
        Outcome::Drop
    }
}
