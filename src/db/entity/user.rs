//! `users`: who may sign in, and what they may do.

use sea_orm::entity::prelude::*;

/// One user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The sign-in name, stored lower-case; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// The name shown as a post's author.
    pub display_name: String,
    /// The argon2id hash of the password, in PHC string format.
    pub password_hash: String,
    /// `admin` or `editor`.
    pub role: String,
    /// SHA-256 (hex) of the user's API token, if one was issued.
    #[sea_orm(unique)]
    pub api_token_hash: Option<String>,
    /// When the user was added (UTC).
    pub created_at: DateTime,
    /// When the user last changed (UTC).
    pub updated_at: DateTime,
}

/// Links to other tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user's sessions.
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    /// The user's posts.
    #[sea_orm(has_many = "super::post::Entity")]
    Post,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::post::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Post.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
