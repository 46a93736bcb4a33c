//! Posts get an excerpt: the start of the body as plain text, made when a post is written, so
//! that lists (`/blog`, the home page, the API) and the feed show it without reading bodies.
//! Posts written before are given theirs by `onebox serve` once this migration has run.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Posts {
    Table,
    Excerpt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Posts::Table)
                    .add_column(string_len(Posts::Excerpt, 600).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Posts::Table)
                    .drop_column(Posts::Excerpt)
                    .to_owned(),
            )
            .await
    }
}
