//! The integration test suite, one binary: the real `onebox` on ephemeral loopback ports,
//! queried by real clients, with NSD as the reference where behaviour is subtle.
//!
//! `harness` starts the servers and holds the clients; each other module is one area of the
//! product (`dns`: issue 2, `web`: issue 3, `db`: issue 4, so far the harness's own MariaDB).

mod db;
mod dns;
mod harness;
mod web;
