//! onebox: the classic one-server web stack — authoritative DNS, web origin, application and
//! data — as one binary.
//!
//! The modules, in the order data flows through them:
//!
//! - [`config`]: defaults < TOML file < `ONEBOX_*` environment, validated once at start;
//! - [`ops`]: process plumbing every service shares: sockets bound or inherited, the accept
//!   loop, snapshots swapped on reload, signals, readiness, logging;
//! - [`dns`]: the authoritative DNS server for the zones in `zones/`;
//! - [`web`]: the web origin serving `site/` over HTTPS for the zone's names, and the
//!   application's routes;
//! - [`app`]: the application (blog, editor, JSON API) over [`db`], the data layer (SeaORM on
//!   MySQL/MariaDB or SQLite).
//!
//! - [`backup`]: the whole box (database dump, zones, site, keys and certificates) in one
//!   archive, and back; scheduled by `serve`.
//!
//! The binary (`src/main.rs` and `cli`) only wires these together: `cli` owns the one
//! lifecycle (configuration, every snapshot, every socket, run, reload, stop).

pub mod acme;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod db;
pub mod dns;
pub mod doctor;
pub mod ops;
pub mod web;
