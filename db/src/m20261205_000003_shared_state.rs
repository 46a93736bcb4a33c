//! What several boxes sharing the database must agree on (issue 12):
//!
//! - `signin_failures`: failed sign-ins per client address and per e-mail address (by the
//!   SHA-256 of `client:<address>` or `email:<address>`), with the start of their window, so
//!   that a password guesser gets `app.signin_max_failures` tries in all, not per box;
//! - `counters`: named counters, made by their first bump (a new database holds no row, as a
//!   restore wants); `page_cache` is the generation of the pages: every write bumps it, and
//!   every box drops its cached pages when it sees it change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigninFailures {
    Table,
    Subject,
    WindowStartMs,
    Failures,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigninFailures::Table)
                    .col(string_len(SigninFailures::Subject, 64).primary_key())
                    .col(big_integer(SigninFailures::WindowStartMs))
                    .col(integer(SigninFailures::Failures))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string_len(Counters::Name, 64).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Counters::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SigninFailures::Table).to_owned())
            .await
    }
}
