//! The integration test suite, one binary: the real `onebox` on ephemeral loopback ports,
//! queried by real clients, with NSD as the reference where behaviour is subtle.
//!
//! `harness` starts the servers and holds the clients; each other module is one area of the
//! product (`dns`: issue 2, `web`: issue 3, `db` and `app`: issue 4, `resolver` and
//! `browser`: issue 5, `start`: issue 13, `lifecycle` and `metrics`: issue 10, `acme`: issue 9,
//! `cluster` and `shared` (several boxes on one database): issue 12).

mod acme;
mod app;
mod backup;
mod browser;
mod cluster;
mod db;
mod dns;
mod doctor;
mod harness;
mod layers;
mod lifecycle;
mod metrics;
mod resolver;
mod shared;
mod start;
mod web;
