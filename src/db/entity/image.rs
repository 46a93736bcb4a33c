//! `images`: pictures uploaded for posts, named by the SHA-256 of their bytes.

use sea_orm::entity::prelude::*;

/// One image.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "images")]
pub struct Model {
    /// The SHA-256 of the bytes, lower-case hex: the image's name, never reused for others.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `image/png`, `image/jpeg`, `image/webp` or `image/gif`, as read from the bytes.
    pub content_type: String,
    /// The size of `data`.
    pub byte_len: i64,
    /// The file as uploaded.
    #[sea_orm(column_type = "Blob")]
    pub data: Vec<u8>,
    /// Who uploaded it first.
    pub uploader_id: i64,
    /// When (UTC).
    pub created_at: DateTime,
}

/// Links to other tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Who uploaded it.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UploaderId",
        to = "super::user::Column::Id",
        on_delete = "Restrict"
    )]
    Uploader,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Uploader.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
