//! `sessions`: signed-in browsers, kept server-side and expiring.

use sea_orm::entity::prelude::*;

/// One session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// SHA-256 (hex) of the token in the browser's cookie; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Whose session it is.
    pub user_id: i64,
    /// The token every form post and API write of this session must carry.
    pub csrf_token: String,
    /// When it began (UTC).
    pub created_at: DateTime,
    /// When it ends (UTC).
    pub expires_at: DateTime,
}

/// Links to other tables.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session's user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
