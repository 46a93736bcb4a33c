//! `posts`: the blog's content.

use sea_orm::entity::prelude::*;

/// One post.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The post's address under `/blog/`; unique.
    #[sea_orm(unique)]
    pub slug: String,
    /// The title.
    pub title: String,
    /// The body as written (Markdown).
    #[sea_orm(column_type = "Text")]
    pub body_markdown: String,
    /// The body rendered to HTML and sanitised, when it was written.
    #[sea_orm(column_type = "Text")]
    pub body_html: String,
    /// `draft` or `published`.
    pub status: String,
    /// Who wrote it.
    pub author_id: i64,
    /// When it was first published (UTC); `None` for a draft never published.
    pub published_at: Option<DateTime>,
    /// When it was created (UTC).
    pub created_at: DateTime,
    /// When it last changed (UTC).
    pub updated_at: DateTime,
}

/// Links to other tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The post's author.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::AuthorId",
        to = "super::user::Column::Id",
        on_delete = "Restrict"
    )]
    Author,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Author.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
