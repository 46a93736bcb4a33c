//! The users aggregate: who may sign in, with which password hash and role.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entity::user;
use super::{Db, DbError};

/// The user with this e-mail address (compared lower-case).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<user::Model>, DbError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.to_lowercase()))
        .one(db.conn())
        .await?)
}

/// The user whose API token has this digest.
pub async fn by_api_token(db: &Db, digest: &str) -> Result<Option<user::Model>, DbError> {
    Ok(user::Entity::find()
        .filter(user::Column::ApiTokenHash.eq(digest))
        .one(db.conn())
        .await?)
}

/// Sets (or replaces) the digest of a user's API token.
pub async fn set_api_token(db: &Db, id: i64, digest: &str) -> Result<(), DbError> {
    user::ActiveModel {
        id: Set(id),
        api_token_hash: Set(Some(digest.to_owned())),
        updated_at: Set(Utc::now().naive_utc()),
        ..Default::default()
    }
    .update(db.conn())
    .await?;
    Ok(())
}
