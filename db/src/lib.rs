//! onebox's database schema, as versioned SeaORM migrations.
//!
//! One dated file per migration, applied in order and never edited once it has landed: a
//! change to the schema is a new file. The same migrations run on MySQL/MariaDB and on SQLite,
//! so they use only what sea-query emits for both — no engine-specific SQL.
//!
//! Ready for MySQL replication: every table has a primary key; nothing relies on `GET_LOCK`,
//! triggers, or statement-based replication quirks. Times are `DATETIME` in UTC.
//!
//! The binary applies them with `onebox migrate up|down|status` and, unless
//! `database.migrate_on_start = false`, when `onebox serve` starts.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20261126_000001_initial;
mod m20261205_000001_post_excerpts;
mod m20261205_000002_images;
mod m20261205_000003_shared_state;
mod m20261206_000001_acme_storage;

/// Every migration of the schema, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_initial::Migration),
            Box::new(m20261205_000001_post_excerpts::Migration),
            Box::new(m20261205_000002_images::Migration),
            Box::new(m20261205_000003_shared_state::Migration),
            Box::new(m20261206_000001_acme_storage::Migration),
        ]
    }
}
