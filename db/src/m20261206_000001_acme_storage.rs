//! ACME's storage in the database, for `web.acme.storage = "database"` (issue 12: several boxes
//! serve one certificate):
//!
//! - `acme_store`: ACME's values by name, as the file store keeps them under
//!   `state_dir/acme/` (`accounts/<ca>.json`, `certs/<ca>/<name>/cert.pem`, `.../key.pem`):
//!   the account's key and the certificates' private keys among them. A `BLOB` (64 KiB on
//!   MySQL) holds any of them: a chain is a few KiB;
//! - `acme_challenges`: the http-01 answers of the order under way, by token, with an expiry
//!   (an answer left by a box that died is ignored after it), so that whichever box the CA's
//!   validation reaches can answer it.
//!
//! Who orders is decided by the lease table (`onebox_leases`), as for the migrations.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AcmeStore {
    Table,
    Name,
    Value,
    UpdatedMs,
}

#[derive(DeriveIden)]
enum AcmeChallenges {
    Table,
    Token,
    KeyAuthorization,
    ExpiresMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AcmeStore::Table)
                    .col(string_len(AcmeStore::Name, 512).primary_key())
                    .col(blob(AcmeStore::Value))
                    .col(big_integer(AcmeStore::UpdatedMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AcmeChallenges::Table)
                    .col(string_len(AcmeChallenges::Token, 255).primary_key())
                    .col(string_len(AcmeChallenges::KeyAuthorization, 512))
                    .col(big_integer(AcmeChallenges::ExpiresMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AcmeChallenges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AcmeStore::Table).to_owned())
            .await
    }
}
