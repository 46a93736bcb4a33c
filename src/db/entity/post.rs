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
    /// Draft or published.
    pub status: Status,
    /// The start of the body as plain text, for lists and feeds (made when the post is written).
    #[sea_orm(column_type = "String(StringLen::N(600))")]
    pub excerpt: String,
    /// Who wrote it.
    pub author_id: i64,
    /// When it was first published (UTC); `None` for a draft never published.
    pub published_at: Option<DateTime>,
    /// When it was created (UTC).
    pub created_at: DateTime,
    /// When it last changed (UTC).
    pub updated_at: DateTime,
}

/// A post's state: only published posts are public. Stored as `draft` or `published`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Seen only in the editor.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// On the site, in the feed and in the public API.
    #[sea_orm(string_value = "published")]
    Published,
}

impl Status {
    /// The value stored and shown in the API (`draft`, `published`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    /// The status a submitted value names; `None` if it is neither.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(Self::Draft),
            "published" => Some(Self::Published),
            _ => None,
        }
    }
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
