//! The tables as SeaORM entities, one file each; the schema itself is `db/` (the migrations).
//!
//! Times are UTC, stored as `DATETIME` without a zone (the same on MySQL and SQLite).

pub mod image;
pub mod post;
pub mod session;
pub mod setting;
pub mod user;
