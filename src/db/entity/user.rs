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
    /// What the user may do.
    pub role: Role,
    /// SHA-256 (hex) of the user's API token, if one was issued.
    #[sea_orm(unique)]
    pub api_token_hash: Option<String>,
    /// When the user was added (UTC).
    pub created_at: DateTime,
    /// When the user last changed (UTC).
    pub updated_at: DateTime,
}

/// What a user may do; stored as `admin` or `editor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the site's settings and anyone's posts.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Write, and change their own posts.
    #[sea_orm(string_value = "editor")]
    Editor,
}

impl Role {
    /// The role as stored and shown (`admin`, `editor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Editor => "editor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
