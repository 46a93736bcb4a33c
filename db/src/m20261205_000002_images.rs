//! Images in posts: uploaded by editors, stored in the database (so that every box sharing it
//! serves them), named by the SHA-256 of their bytes (so an image never changes under its
//! name, and uploading the same file twice stores it once).
//!
//! The bytes are a `MEDIUMBLOB` (up to 16 MiB): MySQL's plain `BLOB` stops at 64 KiB. SQLite
//! takes the same type name with BLOB affinity, so one statement serves both.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Images {
    Table,
    Id,
    ContentType,
    ByteLen,
    Data,
    UploaderId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    // The SHA-256 of the bytes, in lower-case hex.
                    .col(string_len(Images::Id, 64).primary_key())
                    .col(string_len(Images::ContentType, 32))
                    .col(big_integer(Images::ByteLen))
                    .col(
                        ColumnDef::new(Images::Data)
                            .custom(Alias::new("mediumblob"))
                            .not_null(),
                    )
                    .col(big_integer(Images::UploaderId))
                    .col(date_time(Images::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_images_uploader")
                            .from(Images::Table, Images::UploaderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_images_created_at")
                    .table(Images::Table)
                    .col(Images::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Images::Table).to_owned())
            .await
    }
}
